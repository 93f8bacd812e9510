"""TLS options: the engine does TLS itself (OpenSSL), so it needs file names."""
from __future__ import annotations

import os
import ssl as _ssl
from typing import Any, Dict, Optional, Tuple

__all__ = ["SSLContext", "server_tls_files", "client_tls_options"]


class SSLContext(_ssl.SSLContext):
    """An ``ssl.SSLContext`` that remembers the files it loads.

    Use it exactly like ``ssl.SSLContext``; wirehub hands the remembered
    certificate, key and CA files to its native TLS layer::

        ctx = wirehub.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("cert.pem", "key.pem")
        await wirehub.serve(handler, "127.0.0.1", 8443, ssl=ctx)
    """

    def load_cert_chain(self, certfile, keyfile=None, password=None):  # type: ignore[override]
        """Load a certificate chain and key (as ``ssl.SSLContext``) and remember the files for the engine."""
        super().load_cert_chain(certfile, keyfile, password)
        if password is not None:
            raise ValueError("wirehub cannot use password-protected keys; decrypt the key file first")
        self._wh_cert_file = os.fspath(certfile)
        self._wh_key_file = os.fspath(keyfile if keyfile is not None else certfile)

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):  # type: ignore[override]
        """Trust these CAs (as ``ssl.SSLContext``); ``cafile`` is passed to the engine."""
        super().load_verify_locations(cafile, capath, cadata)
        if cafile is not None:
            self._wh_ca_file = os.fspath(cafile)


def server_tls_files(ssl: Any) -> Tuple[Optional[str], Optional[str]]:
    """(cert_file, key_file) for the engine from serve()'s ``ssl`` argument."""
    if ssl is None or ssl is False:
        return None, None
    if isinstance(ssl, (tuple, list)) and len(ssl) == 2:
        return os.fspath(ssl[0]), os.fspath(ssl[1])
    if isinstance(ssl, dict):
        return os.fspath(ssl["certfile"]), os.fspath(ssl.get("keyfile") or ssl["certfile"])
    if isinstance(ssl, _ssl.SSLContext):
        cert = getattr(ssl, "_wh_cert_file", None)
        if cert is None:
            raise TypeError("wirehub terminates TLS natively and cannot read a certificate back out of an "
                            "ssl.SSLContext: use wirehub.SSLContext (same API) with load_cert_chain(), "
                            "or pass ssl=(certfile, keyfile)")
        return cert, ssl._wh_key_file  # type: ignore[attr-defined]
    raise TypeError(f"ssl must be a wirehub.SSLContext, a (certfile, keyfile) tuple or None, not {type(ssl).__name__}")


def client_tls_options(ssl: Any, server_hostname: Optional[str] = None) -> Dict[str, Any]:
    """Engine TLS options from connect()'s ``ssl`` argument (None/True: the system's CAs)."""
    out: Dict[str, Any] = {}
    if server_hostname:
        out["server_name"] = server_hostname
    if ssl is None or ssl is True or ssl is False:
        return out
    if isinstance(ssl, _ssl.SSLContext):
        if ssl.verify_mode == _ssl.CERT_NONE:
            out["insecure"] = True
        ca = getattr(ssl, "_wh_ca_file", None)
        if ca:
            out["ca_file"] = ca
        return out
    if isinstance(ssl, dict):
        if ssl.get("cafile"):
            out["ca_file"] = os.fspath(ssl["cafile"])
        if ssl.get("insecure"):
            out["insecure"] = True
        return out
    raise TypeError(f"ssl must be an ssl.SSLContext, True or None, not {type(ssl).__name__}")
