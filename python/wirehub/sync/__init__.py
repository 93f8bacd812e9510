"""Synchronous (blocking) API for scripts: :func:`wirehub.sync.client.connect`."""
from .client import ClientConnection, connect

__all__ = ["connect", "ClientConnection"]
