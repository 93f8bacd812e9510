"""Close codes, named as in python-websockets' ``websockets.frames``."""
from __future__ import annotations

import enum

from . import _wirehub as _native

__all__ = ["CloseCode"]


class CloseCode(enum.IntEnum):
    """RFC 6455 close codes: the engine's ``WH_CLOSE_*``, for ``close(code)``
    and ``ConnectionClosed.code``. ``NO_STATUS_RCVD``, ``ABNORMAL_CLOSURE``
    and ``TLS_HANDSHAKE`` are only ever reported, never sent."""

    NORMAL_CLOSURE = _native.CLOSE_NORMAL
    GOING_AWAY = _native.CLOSE_GOING_AWAY
    PROTOCOL_ERROR = _native.CLOSE_PROTOCOL_ERROR
    UNSUPPORTED_DATA = _native.CLOSE_UNSUPPORTED_DATA
    # 1004 is reserved
    NO_STATUS_RCVD = _native.CLOSE_NO_STATUS
    ABNORMAL_CLOSURE = _native.CLOSE_ABNORMAL
    INVALID_DATA = _native.CLOSE_INVALID_DATA
    POLICY_VIOLATION = _native.CLOSE_POLICY
    MESSAGE_TOO_BIG = _native.CLOSE_TOO_BIG
    MANDATORY_EXTENSION = _native.CLOSE_MANDATORY_EXTENSION
    INTERNAL_ERROR = _native.CLOSE_INTERNAL_ERROR
    SERVICE_RESTART = _native.CLOSE_SERVICE_RESTART
    TRY_AGAIN_LATER = _native.CLOSE_TRY_AGAIN_LATER
    BAD_GATEWAY = _native.CLOSE_BAD_GATEWAY
    TLS_HANDSHAKE = 1015  # RFC 6455 7.4.1; websockets has it too, the engine never reports it
