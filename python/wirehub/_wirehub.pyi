"""Type stubs of the native extension (pybind11 over capi/wirehub.h)."""
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

_Message = Union[str, bytes, bytearray, memoryview]

EV_OPEN: int
EV_MESSAGE: int
EV_PING: int
EV_PONG: int
EV_CLOSE: int
EV_DRAIN: int
EV_UPGRADE: int
EV_HTTP: int
EV_SERVER_CLOSED: int
EV_ERROR: int
TEXT: int
BINARY: int
COMPRESSED: int
NO_COMPRESS: int
COMPRESS: int
MORE: int
SERVER_UPGRADE_HOOK: int
SERVER_HTTP: int
SERVER_IPV6_ONLY: int
SERVER_REUSE_PORT: int
SENT: int
QUEUED: int
EINVAL: int
ENOMEM: int
ECLOSED: int
EDROPPED: int
ESTATE: int
EADDRINUSE: int
ERESOLVE: int
ECONNREFUSED: int
ETIMEDOUT: int
EHANDSHAKE: int
ETLS: int
EIO: int
EPROTO: int
EUTF8: int
ETOOBIG: int
ELIMIT: int
EURL: int
ENOTSUP: int
EAGAIN: int
ESHUTDOWN: int
ECLOSECODE: int
EPINGTIMEOUT: int
ESTATUS: int
EADDR: int
EACCES: int
ERESET: int
EINTERNAL: int
EIDLE: int
EBUDGET: int
EMFILE: int
EBROKER: int

def version() -> str: ...
def strerror(err: int) -> str: ...
def err_name(err: int) -> str: ...
def parse_headers(raw: bytes) -> List[Tuple[str, str]]: ...
def broadcast(connections: Iterable[Any], message: _Message, flags: int = 0) -> int: ...

class Conn:
    """Native handle of one connection."""
    subprotocol: str
    extensions: str
    remote_address: Optional[Tuple[str, int]]
    local_address: Optional[Tuple[str, int]]
    want_pongs: int  # ping() calls awaiting their pong; while 0, pongs are not delivered
    def send(self, message: _Message, flags: int = 0) -> int: ...
    def ping(self, data: bytes) -> int: ...
    def pong(self, data: bytes) -> int: ...
    def close(self, code: int, reason: str) -> int: ...
    def terminate(self) -> int: ...
    def pause(self) -> int: ...
    def resume(self) -> int: ...
    def subscribe(self, topic: str) -> int: ...
    def unsubscribe(self, topic: str) -> int: ...
    def buffered(self) -> int: ...

class Server:
    """Native handle of one listening server."""
    port: int
    connections: int
    def close(self, timeout_ms: int) -> int: ...
    def publish(self, topic: str, message: _Message, flags: int = 0, except_: Optional[Conn] = None) -> int: ...
    def broadcast(self, message: _Message, flags: int = 0, except_: Optional[Conn] = None) -> int: ...
    def set_broker(self, url: str, prefix: Optional[str] = None, ca_file: Optional[str] = None,
                   insecure: bool = False, connect_timeout_ms: int = 0, max_pending: int = 0) -> int: ...
    def broker_stats(self) -> Optional[Tuple[bool, int, int, int, int, int, int]]: ...

class Request:
    """An upgrade or plain HTTP request waiting for its answer."""
    upgrade: bool
    def info(self) -> Optional[Tuple[str, str, str, str, List[Tuple[str, str]], str, int, str]]: ...
    def accept(self, subprotocol: Optional[str], headers: str, owner: Any) -> Tuple[int, Optional[Conn]]: ...
    def respond(self, status: int, headers: str, body: bytes) -> int: ...

class Hub:
    """One engine hub in queue mode, or in host mode (hosted=True: the creating thread runs it in poll())."""
    fd: int
    closed: bool
    live_connections: int
    live_servers: int
    more: bool  # the last poll took all it asked for: poll again (pings, unawaited pongs are not delivered)
    def __init__(self, io_threads: int = 1, hosted: bool = False) -> None: ...
    def poll(self, max: int = 1024) -> List[tuple]: ...
    def set_watch(self, watch: Optional[Callable[[int, bool], None]], max_sockets: int) -> None: ...
    def poll_fd(self, fd: int, max: int = 1024) -> List[tuple]: ...
    def take(self, max: int = 1024) -> List[tuple]: ...
    def cork(self) -> int: ...
    def uncork(self) -> int: ...
    def listen(self, owner: Any, options: dict) -> Tuple[int, Optional[Server]]: ...
    def connect(self, owner: Any, url: str, options: dict) -> Tuple[int, Optional[Conn]]: ...
    def destroy(self, timeout_ms: int = 0) -> int: ...
