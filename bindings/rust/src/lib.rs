//! Safe Rust bindings to wirehub, a native WebSocket engine, over its C ABI
//! (`capi/wirehub.h`).
//!
//! ```no_run
//! use wirehub::{Event, Server, ServerOptions};
//! let server = Server::listen(ServerOptions::new().port(8080), |ev: &Event| {
//!     if let Event::Message { conn, message, .. } = ev {
//!         let _ = conn.send(*message); // echo
//!     }
//! })?;
//! # Ok::<(), wirehub::Error>(())
//! ```
//!
//! Events are delivered to one closure per [`Hub`], called on the hub's I/O
//! threads (the C ABI's callback mode): it must not block, and borrowed data in
//! an [`Event`] (a message's bytes, the `&Connection`) lives only for the call.
//! Clone a [`Connection`] to keep it (a `wh_conn_retain`); its `Drop` releases
//! it. A clone outlives the connection safely: calls on it then return
//! [`Code::Closed`].
//!
//! Threading: every `wh_conn_*`, `wh_server_*` and `wh_connect` call is
//! documented "any thread" by the C ABI, so [`Connection`], [`Server`],
//! [`ServerRef`], [`Hub`] and [`Client`] are `Send + Sync`. An
//! [`UpgradeRequest`] must be answered inside its callback, so it is neither.

pub mod sys;

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::mem::ManuallyDrop;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

// ------------------------------------------------------------------ errors

/// The C ABI's error codes (`WH_E*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    InvalidArgument,
    NoMemory,
    Closed,
    Dropped,
    State,
    AddrInUse,
    Resolve,
    ConnectionRefused,
    TimedOut,
    Handshake,
    Tls,
    Io,
    Protocol,
    Utf8,
    TooBig,
    Limit,
    Url,
    NotSupported,
    Again,
    Shutdown,
    CloseCode,
    PingTimeout,
    /// The server answered the handshake with a non-101 HTTP status.
    Status,
    Addr,
    Access,
    Reset,
    Internal,
    /// Nothing arrived from the peer within the idle timeout.
    Idle,
    /// The server's memory budget (`max_memory`) was exceeded.
    Budget,
    /// Too many open files (EMFILE).
    TooManyFiles,
    /// The broker (Redis) failed in a way no other code names: a refused
    /// command, an unexpected answer (see [`ServerOptions::broker`]).
    Broker,
    /// A code this version of the crate does not know (the ABI only appends).
    Other(i32),
}

impl Code {
    pub fn from_raw(rc: i32) -> Code {
        use Code::*;
        match rc {
            -1 => InvalidArgument,
            -2 => NoMemory,
            -3 => Closed,
            -4 => Dropped,
            -5 => State,
            -6 => AddrInUse,
            -7 => Resolve,
            -8 => ConnectionRefused,
            -9 => TimedOut,
            -10 => Handshake,
            -11 => Tls,
            -12 => Io,
            -13 => Protocol,
            -14 => Utf8,
            -15 => TooBig,
            -16 => Limit,
            -17 => Url,
            -18 => NotSupported,
            -19 => Again,
            -20 => Shutdown,
            -21 => CloseCode,
            -22 => PingTimeout,
            -23 => Status,
            -24 => Addr,
            -25 => Access,
            -26 => Reset,
            -27 => Internal,
            -28 => Idle,
            -29 => Budget,
            -30 => TooManyFiles,
            -31 => Broker,
            n => Other(n),
        }
    }

    /// The `WH_E*` value.
    pub fn raw(self) -> i32 {
        use Code::*;
        match self {
            InvalidArgument => -1,
            NoMemory => -2,
            Closed => -3,
            Dropped => -4,
            State => -5,
            AddrInUse => -6,
            Resolve => -7,
            ConnectionRefused => -8,
            TimedOut => -9,
            Handshake => -10,
            Tls => -11,
            Io => -12,
            Protocol => -13,
            Utf8 => -14,
            TooBig => -15,
            Limit => -16,
            Url => -17,
            NotSupported => -18,
            Again => -19,
            Shutdown => -20,
            CloseCode => -21,
            PingTimeout => -22,
            Status => -23,
            Addr => -24,
            Access => -25,
            Reset => -26,
            Internal => -27,
            Idle => -28,
            Budget => -29,
            TooManyFiles => -30,
            Broker => -31,
            Other(n) => n,
        }
    }

    /// `"WH_ECLOSED"`, from the library.
    pub fn name(self) -> &'static str {
        unsafe { static_str(sys::wh_err_name(self.raw())) }
    }

    /// The library's description (`wh_strerror`).
    pub fn description(self) -> &'static str {
        unsafe { static_str(sys::wh_strerror(self.raw())) }
    }
}

/// RFC 6455 close codes (the C ABI's `WH_CLOSE_*`), for
/// [`Connection::close`] and the `code` of a close event. The names follow
/// the RFC's registry; `NO_STATUS` and `ABNORMAL` are only ever reported,
/// never sent.
///
/// ```no_run
/// # fn f(conn: &wirehub::Connection) -> wirehub::Result<()> {
/// use wirehub::CloseCode;
/// conn.close(CloseCode::POLICY, "too slow")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct CloseCode;

impl CloseCode {
    /// Purpose fulfilled.
    pub const NORMAL: u16 = sys::WH_CLOSE_NORMAL as u16;
    /// Going away: a server shutting down, an idle timeout.
    pub const GOING_AWAY: u16 = sys::WH_CLOSE_GOING_AWAY as u16;
    /// A frame broke RFC 6455.
    pub const PROTOCOL_ERROR: u16 = sys::WH_CLOSE_PROTOCOL_ERROR as u16;
    /// A type of data the endpoint cannot take.
    pub const UNSUPPORTED_DATA: u16 = sys::WH_CLOSE_UNSUPPORTED_DATA as u16;
    /// Reported only: the close frame carried no code.
    pub const NO_STATUS: u16 = sys::WH_CLOSE_NO_STATUS as u16;
    /// Reported only: the connection ended without a close frame.
    pub const ABNORMAL: u16 = sys::WH_CLOSE_ABNORMAL as u16;
    /// Invalid UTF-8 in a text message, corrupt compressed data.
    pub const INVALID_DATA: u16 = sys::WH_CLOSE_INVALID_DATA as u16;
    /// A limit other than size: a message too slow, a peer that does not
    /// read, the memory budget.
    pub const POLICY: u16 = sys::WH_CLOSE_POLICY as u16;
    /// A message above the maximum message size.
    pub const TOO_BIG: u16 = sys::WH_CLOSE_TOO_BIG as u16;
    /// Client: an extension the server did not accept.
    pub const MANDATORY_EXTENSION: u16 = sys::WH_CLOSE_MANDATORY_EXTENSION as u16;
    /// The endpoint failed (an exception, out of memory).
    pub const INTERNAL_ERROR: u16 = sys::WH_CLOSE_INTERNAL_ERROR as u16;
    /// The server is restarting.
    pub const SERVICE_RESTART: u16 = sys::WH_CLOSE_SERVICE_RESTART as u16;
    /// Overloaded: try again later.
    pub const TRY_AGAIN_LATER: u16 = sys::WH_CLOSE_TRY_AGAIN_LATER as u16;
    /// A gateway got an invalid answer upstream.
    pub const BAD_GATEWAY: u16 = sys::WH_CLOSE_BAD_GATEWAY as u16;
}

/// An error: the C ABI's code, its message, and what was being done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
    status: Option<u16>,
}

impl Error {
    fn from_rc(rc: c_int, context: &str) -> Error {
        let code = Code::from_raw(rc);
        let message = if context.is_empty() {
            code.description().to_string()
        } else {
            format!("{}: {}", context, code.description())
        };
        Error {
            code,
            message,
            status: None,
        }
    }

    fn invalid(message: String) -> Error {
        Error {
            code: Code::InvalidArgument,
            message,
            status: None,
        }
    }

    /// The `WH_E*` code, as an enum.
    pub fn code(&self) -> Code {
        self.code
    }
    /// The raw negative `WH_E*` value.
    pub fn raw_code(&self) -> i32 {
        self.code.raw()
    }
    /// The message: context plus the library's description of the code.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// For [`Code::Status`]: the HTTP status the server refused the handshake with.
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(rc: c_int, context: &str) -> Result<c_int> {
    if rc < 0 {
        Err(Error::from_rc(rc, context))
    } else {
        Ok(rc)
    }
}

unsafe fn static_str(p: *const c_char) -> &'static str {
    if p.is_null() {
        ""
    } else {
        CStr::from_ptr(p).to_str().unwrap_or("")
    }
}

unsafe fn owned_str(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{} contains a NUL byte", what)))
}

fn opt_cstring(s: &Option<String>, what: &str) -> Result<Option<CString>> {
    match s {
        Some(s) => cstring(s, what).map(Some),
        None => Ok(None),
    }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

/// The loaded library's version, e.g. `"0.1.0"`.
pub fn version() -> &'static str {
    unsafe { static_str(sys::wh_version_string()) }
}

/// The loaded library's ABI version; this crate speaks [`sys::WH_ABI_VERSION`].
pub fn abi_version() -> i32 {
    unsafe { sys::wh_abi_version() }
}

// ---------------------------------------------------------------- messages

/// A borrowed message: what an event carries and what `send` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
    /// A copy that outlives the callback.
    pub fn to_owned(&self) -> OwnedMessage {
        match *self {
            Message::Text(s) => OwnedMessage::Text(s.to_string()),
            Message::Binary(b) => OwnedMessage::Binary(b.to_vec()),
        }
    }
    fn flags(&self) -> c_int {
        match self {
            Message::Text(_) => sys::WH_TEXT,
            Message::Binary(_) => sys::WH_BINARY,
        }
    }
}

impl<'a> From<&'a str> for Message<'a> {
    fn from(s: &'a str) -> Self {
        Message::Text(s)
    }
}
impl<'a> From<&'a [u8]> for Message<'a> {
    fn from(b: &'a [u8]) -> Self {
        Message::Binary(b)
    }
}

/// An owned message (see [`Message::to_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedMessage {
    Text(String),
    Binary(Vec<u8>),
}

impl OwnedMessage {
    pub fn as_message(&self) -> Message<'_> {
        match self {
            OwnedMessage::Text(s) => Message::Text(s),
            OwnedMessage::Binary(b) => Message::Binary(b),
        }
    }
}

/// What `send` did with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Written to the socket (or corked for this I/O turn).
    Sent,
    /// Accepted, but the send buffer is above its high-water mark: an
    /// [`Event::Drain`] follows when it falls below the low-water mark.
    Queued,
}

// -------------------------------------------------------------- connection

/// A WebSocket connection (server- or client-side).
///
/// In an event the connection is borrowed; `clone()` keeps it (retain) and
/// dropping the clone releases it. Dropping a handle does not close the
/// connection (its hub owns it): call [`close`](Self::close). Equality and
/// hashing are by identity.
pub struct Connection {
    raw: NonNull<sys::wh_conn>,
}

// SAFETY: every wh_conn_* function is [any thread] and the reference count is
// atomic, so a retained handle may move and be shared between threads.
unsafe impl Send for Connection {}
unsafe impl Sync for Connection {}

impl Clone for Connection {
    fn clone(&self) -> Self {
        unsafe { sys::wh_conn_retain(self.raw.as_ptr()) };
        Connection { raw: self.raw }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        unsafe { sys::wh_conn_release(self.raw.as_ptr()) };
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for Connection {}
impl std::hash::Hash for Connection {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.raw.hash(h)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({:p})", self.raw.as_ptr())
    }
}

impl Connection {
    /// A stable identity for maps (the handle's address).
    pub fn id(&self) -> usize {
        self.raw.as_ptr() as usize
    }

    /// The raw handle, for calling `sys` directly.
    pub fn as_raw(&self) -> *mut sys::wh_conn {
        self.raw.as_ptr()
    }

    /// Send a message. `Err(Closed)` once the connection is closing or closed,
    /// `Err(Dropped)` when the send buffer is above its hard cap.
    #[inline]
    pub fn send<'m, M: Into<Message<'m>>>(&self, message: M) -> Result<SendStatus> {
        let m = message.into();
        let b = m.as_bytes();
        let rc =
            unsafe { sys::wh_conn_send(self.raw.as_ptr(), b.as_ptr() as *const c_void, b.len(), m.flags()) };
        match rc {
            sys::WH_SENT => Ok(SendStatus::Sent),
            sys::WH_QUEUED => Ok(SendStatus::Queued),
            rc => Err(Error::from_rc(rc, "send")),
        }
    }

    /// Send one fragment of a message (a frame of it): the first fragment's
    /// type is the message's type (later ones' is ignored); `last` ends the
    /// message. A message's fragments come from one thread, with no other
    /// send on this connection between them.
    pub fn send_fragment<'m, M: Into<Message<'m>>>(&self, fragment: M, last: bool) -> Result<SendStatus> {
        let m = fragment.into();
        let b = m.as_bytes();
        let flags = m.flags() | if last { 0 } else { sys::WH_MORE };
        let rc = unsafe { sys::wh_conn_send(self.raw.as_ptr(), b.as_ptr() as *const c_void, b.len(), flags) };
        match rc {
            sys::WH_SENT => Ok(SendStatus::Sent),
            sys::WH_QUEUED => Ok(SendStatus::Queued),
            rc => Err(Error::from_rc(rc, "send fragment")),
        }
    }

    pub fn send_text(&self, text: &str) -> Result<SendStatus> {
        self.send(Message::Text(text))
    }

    pub fn send_binary(&self, data: &[u8]) -> Result<SendStatus> {
        self.send(Message::Binary(data))
    }

    /// Ping with at most 125 bytes; the answer is an [`Event::Pong`].
    pub fn ping(&self, data: &[u8]) -> Result<()> {
        let rc = unsafe { sys::wh_conn_ping(self.raw.as_ptr(), data.as_ptr() as *const c_void, data.len()) };
        check(rc, "ping").map(|_| ())
    }

    /// Start the close handshake. `code` 0 sends no code; reason: ≤ 123 bytes.
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        let rc = unsafe {
            sys::wh_conn_close(
                self.raw.as_ptr(),
                code as c_int,
                reason.as_ptr() as *const c_char,
                reason.len(),
            )
        };
        check(rc, "close").map(|_| ())
    }

    /// Drop the TCP connection now (the close event follows with 1006).
    pub fn terminate(&self) -> Result<()> {
        check(unsafe { sys::wh_conn_terminate(self.raw.as_ptr()) }, "terminate").map(|_| ())
    }

    /// Bytes accepted by `send` but not yet written.
    pub fn buffered(&self) -> Result<usize> {
        let mut n = 0usize;
        check(
            unsafe { sys::wh_conn_buffered(self.raw.as_ptr(), &mut n) },
            "buffered",
        )?;
        Ok(n)
    }

    /// Stop reading from the peer until [`resume`](Self::resume).
    pub fn pause(&self) -> Result<()> {
        check(unsafe { sys::wh_conn_pause(self.raw.as_ptr()) }, "pause").map(|_| ())
    }

    pub fn resume(&self) -> Result<()> {
        check(unsafe { sys::wh_conn_resume(self.raw.as_ptr()) }, "resume").map(|_| ())
    }

    /// Subscribe to a topic of this connection's server (see [`ServerRef::publish`]).
    pub fn subscribe(&self, topic: &str) -> Result<()> {
        let t = cstring(topic, "topic")?;
        check(
            unsafe { sys::wh_conn_subscribe(self.raw.as_ptr(), t.as_ptr()) },
            "subscribe",
        )
        .map(|_| ())
    }

    pub fn unsubscribe(&self, topic: &str) -> Result<()> {
        let t = cstring(topic, "topic")?;
        check(
            unsafe { sys::wh_conn_unsubscribe(self.raw.as_ptr(), t.as_ptr()) },
            "unsubscribe",
        )
        .map(|_| ())
    }

    /// The negotiated subprotocol, `""` if none.
    pub fn subprotocol(&self) -> String {
        unsafe { owned_str(sys::wh_conn_subprotocol(self.raw.as_ptr())) }
    }

    /// The negotiated extensions header value, `""` if none.
    pub fn extensions(&self) -> String {
        unsafe { owned_str(sys::wh_conn_extensions(self.raw.as_ptr())) }
    }

    /// The peer's address and port.
    pub fn remote_addr(&self) -> (String, u16) {
        unsafe {
            let a = owned_str(sys::wh_conn_remote_address(self.raw.as_ptr()));
            let p = sys::wh_conn_remote_port(self.raw.as_ptr());
            (a, if p < 0 { 0 } else { p as u16 })
        }
    }

    /// This end's address and port: the ones the peer reached on a server's
    /// connection, the ones its socket got on a client's; `""` and 0 over a
    /// UNIX socket, as for [`remote_addr`](Self::remote_addr).
    pub fn local_addr(&self) -> (String, u16) {
        unsafe {
            let a = owned_str(sys::wh_conn_local_address(self.raw.as_ptr()));
            let p = sys::wh_conn_local_port(self.raw.as_ptr());
            (a, if p < 0 { 0 } else { p as u16 })
        }
    }
}

// ------------------------------------------------------------------ events

/// How a connection ended (the payload of [`Event::Close`]).
#[derive(Debug, Clone, Copy)]
pub struct CloseInfo<'a> {
    /// The close code (1005: none sent; 1006: no close frame exchanged).
    pub code: u16,
    /// The close reason; for a client refused at handshake, the response body
    /// if it is UTF-8.
    pub reason: &'a str,
    /// `None` after a clean close handshake, else why it was not clean.
    pub error: Option<Code>,
    /// For a client refused at handshake: the HTTP status.
    pub http_status: Option<u16>,
}

/// An event, borrowed for the duration of the handler call.
#[non_exhaustive]
pub enum Event<'a> {
    /// The connection is open (server: handshake accepted; client: connected).
    Open {
        conn: &'a Connection,
        server: Option<&'a ServerRef>,
    },
    /// A whole message. Its bytes are the engine's receive buffer (no copy).
    Message {
        conn: &'a Connection,
        message: Message<'a>,
        server: Option<&'a ServerRef>,
    },
    /// A ping arrived; the pong was already sent.
    Ping {
        conn: &'a Connection,
        data: &'a [u8],
    },
    Pong {
        conn: &'a Connection,
        data: &'a [u8],
    },
    /// The connection's last event.
    Close {
        conn: &'a Connection,
        info: CloseInfo<'a>,
        server: Option<&'a ServerRef>,
    },
    /// The send buffer fell below the low-water mark after a `Queued` send.
    Drain {
        conn: &'a Connection,
    },
    /// With [`ServerOptions::upgrade_hook`]: accept or reject the handshake
    /// before the handler returns. Left unanswered, or if the handler panics,
    /// it is refused with HTTP 500 and an [`Event::Error`] follows.
    Upgrade {
        request: &'a UpgradeRequest,
        server: Option<&'a ServerRef>,
    },
    /// A server finished closing: every connection is gone.
    ServerClosed,
    /// A non-fatal server-level error (e.g. accept failed).
    Error {
        error: Error,
    },
}

impl<'a> fmt::Debug for Event<'a> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Open { conn, .. } => write!(f, "Open({:?})", conn),
            Event::Message { conn, message, .. } => write!(f, "Message({:?}, {:?})", conn, message),
            Event::Ping { conn, data } => write!(f, "Ping({:?}, {:?})", conn, data),
            Event::Pong { conn, data } => write!(f, "Pong({:?}, {:?})", conn, data),
            Event::Close { conn, info, .. } => write!(f, "Close({:?}, {:?})", conn, info),
            Event::Drain { conn } => write!(f, "Drain({:?})", conn),
            Event::Upgrade { request, .. } => write!(f, "Upgrade({})", request.target()),
            Event::ServerClosed => write!(f, "ServerClosed"),
            Event::Error { error } => write!(f, "Error({})", error),
        }
    }
}

/// A handshake to accept or reject (see [`Event::Upgrade`]).
pub struct UpgradeRequest {
    raw: *mut sys::wh_request,
    answered: Cell<bool>,
}

impl UpgradeRequest {
    fn get(&self, f: unsafe extern "C" fn(*mut sys::wh_request) -> *const c_char) -> String {
        if self.answered.get() {
            return String::new();
        }
        unsafe { owned_str(f(self.raw)) }
    }
    pub fn method(&self) -> String {
        self.get(sys::wh_request_method)
    }
    /// `/path?query` as sent.
    pub fn target(&self) -> String {
        self.get(sys::wh_request_target)
    }
    pub fn path(&self) -> String {
        self.get(sys::wh_request_path)
    }
    pub fn query(&self) -> String {
        self.get(sys::wh_request_query)
    }
    /// The subprotocols offered by the client, as sent.
    pub fn subprotocols(&self) -> String {
        self.get(sys::wh_request_subprotocols)
    }
    pub fn remote_addr(&self) -> (String, u16) {
        let a = self.get(sys::wh_request_remote_address);
        let p = if self.answered.get() {
            0
        } else {
            unsafe { sys::wh_request_remote_port(self.raw) }
        };
        (a, if p < 0 { 0 } else { p as u16 })
    }
    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        if self.answered.get() {
            return None;
        }
        let n = CString::new(name).ok()?;
        let p = unsafe { sys::wh_request_header(self.raw, n.as_ptr()) };
        if p.is_null() {
            None
        } else {
            Some(unsafe { owned_str(p) })
        }
    }

    fn answer(&self) -> Result<()> {
        if self.answered.replace(true) {
            return Err(Error::from_rc(sys::WH_ESTATE, "upgrade request already answered"));
        }
        Ok(())
    }

    /// Accept, choosing `subprotocol` (one of the offered ones) or none.
    pub fn accept(&self, subprotocol: Option<&str>) -> Result<()> {
        let sp = match subprotocol {
            Some(s) => Some(cstring(s, "subprotocol")?),
            None => None,
        };
        self.answer()?;
        let rc = unsafe { sys::wh_request_accept(self.raw, opt_ptr(&sp), ptr::null(), ptr::null_mut()) };
        check(rc, "accept").map(|_| ())
    }

    /// Refuse with an HTTP `status` (e.g. 403) and a body; the socket closes.
    pub fn reject(&self, status: u16, body: &str) -> Result<()> {
        self.answer()?;
        let rc = unsafe {
            sys::wh_request_respond(
                self.raw,
                status as c_int,
                ptr::null(),
                body.as_ptr() as *const c_void,
                body.len(),
            )
        };
        check(rc, "reject").map(|_| ())
    }
}

// --------------------------------------------------------------------- hub

type Handler = dyn Fn(&Event<'_>) + Send + Sync + 'static;

struct Shared {
    // Held across wh_connect + retain, and taken by a client connection's
    // close callback: the engine frees the handle after that callback, so a
    // connection failing at once cannot be freed before we retained it.
    connect_lock: Mutex<()>,
    handler: Box<Handler>,
}

struct HubInner {
    raw: *mut sys::wh_hub,
    handler: *mut Shared,
}

struct SendPtrs(*mut sys::wh_hub, *mut Shared);
unsafe impl Send for SendPtrs {}

// SAFETY: wh_hub_destroy is the only call made through it besides [any
// thread] ones, and the handler is Send + Sync.
unsafe impl Send for HubInner {}
unsafe impl Sync for HubInner {}

impl Drop for HubInner {
    fn drop(&mut self) {
        let rc = unsafe { sys::wh_hub_destroy(self.raw, 0) };
        if rc == sys::WH_ESTATE {
            // Dropped inside a callback (on an I/O thread of this hub), where
            // destroy cannot wait for its own thread: finish on another one.
            // The handler box is freed only after the I/O threads stopped.
            let p = SendPtrs(self.raw, self.handler);
            std::thread::spawn(move || {
                let p = p;
                unsafe {
                    sys::wh_hub_destroy(p.0, 0);
                    drop(Box::from_raw(p.1));
                }
            });
            return;
        }
        unsafe { drop(Box::from_raw(self.handler)) };
    }
}

unsafe extern "C" fn trampoline(_hub: *mut sys::wh_hub, ev: *const sys::wh_event, ud: *mut c_void) {
    let shared = &*(ud as *const Shared);
    let ev = &*ev;
    if ev.type_ == sys::WH_EV_CLOSE && ev.server.is_null() {
        drop(shared.connect_lock.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let handler = &*shared.handler;
    // A panic must never unwind into C.
    let r = catch_unwind(AssertUnwindSafe(|| dispatch(handler, ev)));
    if r.is_err() {
        eprintln!(
            "wirehub: the event handler panicked (event type {}); continuing",
            ev.type_
        );
    }
}

#[inline]
unsafe fn bytes<'a>(p: *const c_char, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p as *const u8, len)
    }
}

#[inline]
unsafe fn dispatch(handler: &Handler, ev: &sys::wh_event) {
    // Borrowed views: no retain/release per event, nothing to drop.
    let conn = NonNull::new(ev.conn).map(|raw| ManuallyDrop::new(Connection { raw }));
    let server = NonNull::new(ev.server).map(ServerRef);
    let server = server.as_ref();
    match ev.type_ {
        sys::WH_EV_MESSAGE => {
            if let Some(conn) = conn.as_ref() {
                let b = bytes(ev.data, ev.len);
                let message = if ev.flags & sys::WH_TEXT != 0 {
                    // The engine validated the UTF-8 (this crate never sets
                    // WH_SERVER_SKIP_UTF8).
                    Message::Text(std::str::from_utf8_unchecked(b))
                } else {
                    Message::Binary(b)
                };
                handler(&Event::Message {
                    conn,
                    message,
                    server,
                });
            }
        }
        sys::WH_EV_OPEN => {
            if let Some(conn) = conn.as_ref() {
                handler(&Event::Open { conn, server });
            }
        }
        sys::WH_EV_PING | sys::WH_EV_PONG => {
            if let Some(conn) = conn.as_ref() {
                let data = bytes(ev.data, ev.len);
                if ev.type_ == sys::WH_EV_PING {
                    handler(&Event::Ping { conn, data })
                } else {
                    handler(&Event::Pong { conn, data })
                }
            }
        }
        sys::WH_EV_CLOSE => {
            if let Some(conn) = conn.as_ref() {
                let info = CloseInfo {
                    code: ev.code as u16,
                    reason: std::str::from_utf8(bytes(ev.data, ev.len)).unwrap_or(""),
                    error: if ev.error != 0 {
                        Some(Code::from_raw(ev.error))
                    } else {
                        None
                    },
                    http_status: if ev.status > 0 {
                        Some(ev.status as u16)
                    } else {
                        None
                    },
                };
                handler(&Event::Close { conn, info, server });
            }
        }
        sys::WH_EV_DRAIN => {
            if let Some(conn) = conn.as_ref() {
                handler(&Event::Drain { conn });
            }
        }
        sys::WH_EV_UPGRADE => {
            if ev.request.is_null() {
                return;
            }
            let request = UpgradeRequest {
                raw: ev.request,
                answered: Cell::new(false),
            };
            // Fail closed: a handler that panics or returns without an
            // answer must not let the client in. It is refused with 500 and
            // the handler hears why through an Error event.
            let r = catch_unwind(AssertUnwindSafe(|| {
                handler(&Event::Upgrade {
                    request: &request,
                    server,
                })
            }));
            if request.answered.get() && r.is_ok() {
                return;
            }
            let why = if r.is_err() {
                "the handler panicked on the upgrade request"
            } else {
                "the handler returned without answering the upgrade request"
            };
            if !request.answered.get() {
                let _ = request.reject(500, "Internal Server Error\n");
            }
            eprintln!("wirehub: {}; refused with 500", why);
            handler(&Event::Error {
                error: Error {
                    code: Code::Internal,
                    message: format!("{}: refused with HTTP 500", why),
                    status: Some(500),
                },
            });
        }
        sys::WH_EV_SERVER_CLOSED => handler(&Event::ServerClosed),
        sys::WH_EV_ERROR => {
            let detail = String::from_utf8_lossy(bytes(ev.data, ev.len)).into_owned();
            let mut error = Error::from_rc(ev.code, &detail);
            if ev.code >= 0 {
                error.code = Code::Internal;
            }
            handler(&Event::Error { error });
        }
        _ => {}
    }
}

/// Options of a [`Hub`].
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// I/O threads (default 1).
    pub io_threads: usize,
}

/// The engine: I/O threads plus one event handler. Servers and client
/// connections live on a hub; dropping the last clone of it closes them all
/// (1001 Going Away, up to 5 s for close handshakes) and stops its threads.
///
/// Keep no `Hub`/`Server`/`Client` inside the hub's own handler: that is a
/// reference cycle and the hub would never be destroyed.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// Start a hub whose events all go to `handler`, on its I/O threads.
    pub fn new<F>(options: HubOptions, handler: F) -> Result<Hub>
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        if options.io_threads > 256 {
            return Err(Error::invalid("io_threads must be at most 256".into()));
        }
        let boxed = Box::new(Shared {
            connect_lock: Mutex::new(()),
            handler: Box::new(handler),
        });
        let handler = Box::into_raw(boxed);
        let opts = sys::wh_hub_options {
            size: std::mem::size_of::<sys::wh_hub_options>(),
            io_threads: options.io_threads as c_int,
            event_mode: sys::WH_EVENTS_CALLBACK,
            on_event: Some(trampoline),
            user_data: handler as *mut c_void,
            flags: 0,
        };
        let mut raw = ptr::null_mut();
        let rc = unsafe { sys::wh_hub_create(&opts, &mut raw) };
        if rc < 0 {
            unsafe { drop(Box::from_raw(handler)) };
            return Err(Error::from_rc(rc, "hub"));
        }
        Ok(Hub {
            inner: Arc::new(HubInner { raw, handler }),
        })
    }

    /// Listen with a server on this hub. With a
    /// [`broker`](ServerOptions::broker) this blocks until Redis answers, so
    /// it must not be called from a handler (that fails with [`Code::State`]).
    pub fn listen(&self, options: &ServerOptions) -> Result<Server> {
        let host = opt_cstring(&options.host, "host")?;
        let subprotocols = opt_cstring(&options.subprotocols, "subprotocols")?;
        let cert = opt_cstring(&options.tls_cert_file, "tls cert file")?;
        let key = opt_cstring(&options.tls_key_file, "tls key file")?;
        let (max_handshakes, idle_timeout_ms, message_timeout_ms, max_memory) = options.hardening()?;
        let mut flags = 0;
        if options.upgrade_hook {
            flags |= sys::WH_SERVER_UPGRADE_HOOK;
        }
        if options.reuse_port {
            flags |= sys::WH_SERVER_REUSE_PORT;
        }
        let so = sys::wh_server_options {
            size: std::mem::size_of::<sys::wh_server_options>(),
            host: if host.is_some() {
                opt_ptr(&host)
            } else {
                b"127.0.0.1\0".as_ptr() as *const c_char
            },
            port: options.port as c_int,
            backlog: options.backlog as c_int,
            flags,
            subprotocols: opt_ptr(&subprotocols),
            max_connections: options.max_connections as c_int,
            limits: options.limits.to_sys(),
            deflate: sys::wh_deflate_options {
                enabled: options.deflate as c_int,
                ..Default::default()
            },
            tls: sys::wh_tls_options {
                cert_file: opt_ptr(&cert),
                key_file: opt_ptr(&key),
                ca_file: ptr::null(),
                insecure: 0,
                server_name: ptr::null(),
            },
            user_data: ptr::null_mut(),
            max_handshakes,
            idle_timeout_ms,
            message_timeout_ms,
            max_memory,
            max_fragments: 0,
            max_buffered_chunks: 0,
        };
        let mut raw = ptr::null_mut();
        let rc = unsafe { sys::wh_server_listen(self.inner.raw, &so, &mut raw) };
        if rc < 0 {
            let host = options.host.as_deref().unwrap_or("127.0.0.1");
            return Err(Error::from_rc(
                rc,
                &format!("listen on {}:{}", host, options.port),
            ));
        }
        let server = Server {
            r: ServerRef(NonNull::new(raw).unwrap()),
            hub: self.clone(),
            closed: false,
        };
        // On failure the server is dropped, which closes it.
        options.attach_broker(&server.r)?;
        Ok(server)
    }

    /// Start connecting to `ws://` or `wss://` `url` and return at once; the
    /// outcome is an [`Event::Open`] or an [`Event::Close`] with `error` set.
    /// A malformed URL fails here with [`Code::Url`].
    pub fn connect(&self, url: &str, options: &ClientOptions) -> Result<Connection> {
        let c_url = cstring(url, "url")?;
        let subprotocols = opt_cstring(&options.subprotocols, "subprotocols")?;
        let headers = opt_cstring(&options.headers, "headers")?;
        let origin = opt_cstring(&options.origin, "origin")?;
        let ca = opt_cstring(&options.tls_ca_file, "tls ca file")?;
        let idle_timeout_ms = idle_ms(options.idle_timeout)?;
        let message_timeout_ms = timeout_ms(options.message_timeout, -1, "message_timeout")?;
        let co = sys::wh_client_options {
            size: std::mem::size_of::<sys::wh_client_options>(),
            subprotocols: opt_ptr(&subprotocols),
            headers: opt_ptr(&headers),
            origin: opt_ptr(&origin),
            limits: options.limits.to_sys(),
            deflate: sys::wh_deflate_options {
                enabled: options.deflate as c_int,
                ..Default::default()
            },
            tls: sys::wh_tls_options {
                cert_file: ptr::null(),
                key_file: ptr::null(),
                ca_file: opt_ptr(&ca),
                insecure: options.tls_insecure as c_int,
                server_name: ptr::null(),
            },
            user_data: ptr::null_mut(),
            idle_timeout_ms,
            message_timeout_ms,
            flags: 0,
            max_fragments: 0,
            tls_min_version: 0,
            tls_max_version: 0,
            tls_ciphers: ptr::null(),
            max_buffered_chunks: 0,
            key: ptr::null(),
        };
        let mut raw = ptr::null_mut();
        let shared = unsafe { &*self.inner.handler };
        let _guard = shared.connect_lock.lock().unwrap_or_else(|e| e.into_inner());
        let rc = unsafe { sys::wh_connect(self.inner.raw, c_url.as_ptr(), &co, &mut raw) };
        if rc < 0 {
            return Err(Error::from_rc(rc, &format!("connect {}", url)));
        }
        let raw = NonNull::new(raw).ok_or_else(|| Error::from_rc(sys::WH_EINTERNAL, "connect"))?;
        let borrowed = ManuallyDrop::new(Connection { raw });
        Ok((*borrowed).clone())
    }
}

// ------------------------------------------------------------------ limits

/// Size and time limits (zero fields = the engine's defaults).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_message_size: usize,
    pub high_water: usize,
    pub max_buffered: usize,
    pub handshake_timeout: Option<Duration>,
    pub close_timeout: Option<Duration>,
    pub ping_interval: Option<Duration>,
}

fn ms(d: Option<Duration>) -> c_int {
    d.map_or(0, |d| d.as_millis().min(i32::MAX as u128).max(1) as c_int)
}

impl Limits {
    fn to_sys(&self) -> sys::wh_limits {
        sys::wh_limits {
            max_message_size: self.max_message_size,
            high_water: self.high_water,
            max_buffered: self.max_buffered,
            handshake_timeout_ms: ms(self.handshake_timeout),
            close_timeout_ms: ms(self.close_timeout),
            ping_interval_ms: ms(self.ping_interval),
            ..Default::default()
        }
    }
}

/// A limit the engine defaults, that is set, or that is turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting<T> {
    /// The engine's default (see each option).
    Default,
    Set(T),
    /// No limit.
    Off,
}

impl<T> Default for Setting<T> {
    fn default() -> Self {
        Setting::Default
    }
}

fn invalid(what: &str) -> Error {
    Error::invalid(what.to_string())
}

/// A timeout in the C ABI's int milliseconds: `Default` is 0, `Off` is -1.
/// A set timeout must be at least 1 ms and fit an int.
fn timeout_ms(t: Setting<Duration>, off: c_int, what: &str) -> Result<c_int> {
    match t {
        Setting::Default => Ok(0),
        Setting::Off => Ok(off),
        Setting::Set(d) => {
            let m = d.as_millis();
            if m == 0 || m > i32::MAX as u128 {
                Err(invalid(&format!(
                    "{} must be between 1 ms and {} ms",
                    what,
                    i32::MAX
                )))
            } else {
                Ok(m as c_int)
            }
        }
    }
}

// ------------------------------------------------------------------ server

/// Options of a server (builder style). Its `Debug` hides the password of
/// the [`broker`](Self::broker) URL, so logging the options leaks nothing.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// Default `127.0.0.1`.
    pub host: Option<String>,
    /// 0 = pick a free port (see [`ServerRef::port`]).
    pub port: u16,
    pub backlog: u32,
    pub subprotocols: Option<String>,
    pub max_connections: u32,
    /// Emit [`Event::Upgrade`] for every handshake.
    pub upgrade_hook: bool,
    pub reuse_port: bool,
    pub deflate: bool,
    pub limits: Limits,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    /// I/O threads of the hub [`Server::listen`] creates (default 1).
    pub io_threads: usize,
    /// Sockets accepted but not yet open (TLS and HTTP upgrade, including
    /// handshakes the upgrade hook is deciding); a socket past it is closed
    /// at once. Default 1024.
    pub max_handshakes: Setting<u32>,
    /// Close an open connection with 1001 ([`Code::Idle`]) when nothing
    /// arrived from the peer for this long. Default off.
    pub idle_timeout: Setting<Duration>,
    /// A frame or fragmented message that has begun must be complete within
    /// this, else the connection closes with 1008. Default 60 s.
    pub message_timeout: Setting<Duration>,
    /// Server-wide budget in bytes for what is held for peers (partial
    /// frames, messages being assembled, send buffers): input past it closes
    /// that connection with 1008, a send past it fails with
    /// [`Code::Dropped`]. Default 1 GiB.
    pub max_memory: Setting<usize>,
    /// Scale-out: `redis://[[user]:password@]host[:port][/db]`, or
    /// `rediss://` for TLS. With it, [`ServerRef::publish`] also reaches the
    /// subscribers of the topic on every server attached to the same Redis
    /// with the same [`broker_prefix`](Self::broker_prefix);
    /// [`ServerRef::broadcast`] stays local. Listening then waits (up to
    /// [`broker_connect_timeout`](Self::broker_connect_timeout)) for Redis
    /// to answer, and fails if it does not: [`Code::Url`] for a malformed
    /// URL, [`Code::ConnectionRefused`], [`Code::Resolve`] or
    /// [`Code::TimedOut`] for an unreachable Redis, [`Code::Access`] for a
    /// refused password, [`Code::Tls`], else [`Code::Broker`]. After that,
    /// Redis going away never fails a publish: local subscribers still get
    /// it, what other nodes miss is counted in
    /// [`BrokerStats::dropped`], and the engine reconnects by itself.
    pub broker: Option<String>,
    /// The Redis channel prefix (a topic's channel is prefix + topic), so
    /// applications can share one Redis. Default `"wirehub:"`.
    pub broker_prefix: Option<String>,
    /// `rediss://`: trust the CAs in this PEM file (else the system's).
    pub broker_ca_file: Option<String>,
    /// `rediss://`: do not verify the Redis server's certificate.
    pub broker_insecure: bool,
    /// How long listening waits for Redis, and each reconnect attempt.
    /// Default 5 s.
    pub broker_connect_timeout: Option<Duration>,
    /// Bytes of publishes handed to Redis but not yet written; past it a
    /// publish for other nodes is dropped and counted. 0 = 8 MiB.
    pub broker_max_pending: usize,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("backlog", &self.backlog)
            .field("subprotocols", &self.subprotocols)
            .field("max_connections", &self.max_connections)
            .field("upgrade_hook", &self.upgrade_hook)
            .field("reuse_port", &self.reuse_port)
            .field("deflate", &self.deflate)
            .field("limits", &self.limits)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("io_threads", &self.io_threads)
            .field("max_handshakes", &self.max_handshakes)
            .field("idle_timeout", &self.idle_timeout)
            .field("message_timeout", &self.message_timeout)
            .field("max_memory", &self.max_memory)
            .field("broker", &self.broker.as_deref().map(redact_url))
            .field("broker_prefix", &self.broker_prefix)
            .field("broker_ca_file", &self.broker_ca_file)
            .field("broker_insecure", &self.broker_insecure)
            .field("broker_connect_timeout", &self.broker_connect_timeout)
            .field("broker_max_pending", &self.broker_max_pending)
            .finish()
    }
}

impl ServerOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }
    pub fn subprotocols(mut self, list: &str) -> Self {
        self.subprotocols = Some(list.to_string());
        self
    }
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
    pub fn upgrade_hook(mut self, on: bool) -> Self {
        self.upgrade_hook = on;
        self
    }
    /// `SO_REUSEPORT`: several servers (each with this set) may listen on one
    /// port, and the kernel spreads new connections between them.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
    pub fn deflate(mut self, on: bool) -> Self {
        self.deflate = on;
        self
    }
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    pub fn tls(mut self, cert_file: &str, key_file: &str) -> Self {
        self.tls_cert_file = Some(cert_file.to_string());
        self.tls_key_file = Some(key_file.to_string());
        self
    }
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n;
        self
    }
    /// See [`ServerOptions::max_handshakes`]; `Setting::Off` for no cap.
    pub fn max_handshakes(mut self, n: Setting<u32>) -> Self {
        self.max_handshakes = n;
        self
    }
    /// See [`ServerOptions::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Setting::Set(timeout);
        self
    }
    /// See [`ServerOptions::message_timeout`]; `Setting::Off` turns it off.
    pub fn message_timeout(mut self, timeout: Setting<Duration>) -> Self {
        self.message_timeout = timeout;
        self
    }
    /// See [`ServerOptions::max_memory`]; `Setting::Off` for no budget.
    pub fn max_memory(mut self, bytes: Setting<usize>) -> Self {
        self.max_memory = bytes;
        self
    }
    /// See [`ServerOptions::broker`]: the Redis URL of the scale-out broker.
    ///
    /// ```no_run
    /// use wirehub::{Event, Server, ServerOptions};
    /// let options = ServerOptions::new()
    ///     .port(8080)
    ///     .broker("redis://:secret@10.0.0.5:6379/0")
    ///     .broker_prefix("chat:");
    /// let server = Server::listen(options, |_: &Event| {})?;
    /// server.publish("room", "reaches every node", None)?;
    /// println!("{:?}", server.broker_stats()?);
    /// # Ok::<(), wirehub::Error>(())
    /// ```
    pub fn broker(mut self, url: &str) -> Self {
        self.broker = Some(url.to_string());
        self
    }
    /// See [`ServerOptions::broker_prefix`].
    pub fn broker_prefix(mut self, prefix: &str) -> Self {
        self.broker_prefix = Some(prefix.to_string());
        self
    }
    /// See [`ServerOptions::broker_ca_file`].
    pub fn broker_ca_file(mut self, path: &str) -> Self {
        self.broker_ca_file = Some(path.to_string());
        self
    }
    /// See [`ServerOptions::broker_insecure`].
    pub fn broker_insecure(mut self, on: bool) -> Self {
        self.broker_insecure = on;
        self
    }
    /// See [`ServerOptions::broker_connect_timeout`].
    pub fn broker_connect_timeout(mut self, timeout: Duration) -> Self {
        self.broker_connect_timeout = Some(timeout);
        self
    }
    /// See [`ServerOptions::broker_max_pending`].
    pub fn broker_max_pending(mut self, bytes: usize) -> Self {
        self.broker_max_pending = bytes;
        self
    }

    /// Attach the broker, if any, to a server that just started listening.
    fn attach_broker(&self, server: &ServerRef) -> Result<()> {
        let url = match &self.broker {
            Some(u) => u,
            None if self.broker_prefix.is_some()
                || self.broker_ca_file.is_some()
                || self.broker_insecure
                || self.broker_connect_timeout.is_some()
                || self.broker_max_pending != 0 =>
            {
                return Err(invalid("broker options without a broker URL"))
            }
            None => return Ok(()),
        };
        // The URL may carry a password: errors name it without one.
        let context = format!("broker {}", redact_url(url));
        let c_url = cstring(url, "broker url")?;
        let prefix = opt_cstring(&self.broker_prefix, "broker prefix")?;
        let ca = opt_cstring(&self.broker_ca_file, "broker ca file")?;
        let connect_timeout_ms = match self.broker_connect_timeout {
            None => 0,
            Some(d) => timeout_ms(Setting::Set(d), 0, "broker_connect_timeout")?,
        };
        let o = sys::wh_broker_options {
            size: std::mem::size_of::<sys::wh_broker_options>(),
            url: c_url.as_ptr(),
            prefix: opt_ptr(&prefix),
            ca_file: opt_ptr(&ca),
            insecure: self.broker_insecure as c_int,
            connect_timeout_ms,
            max_pending: self.broker_max_pending,
        };
        let rc = unsafe { sys::wh_server_set_broker(server.0.as_ptr(), &o) };
        check(rc, &context).map(|_| ())
    }

    fn hardening(&self) -> Result<(c_int, c_int, c_int, usize)> {
        let handshakes = match self.max_handshakes {
            Setting::Default => 0,
            Setting::Off => -1,
            Setting::Set(n) if n >= 1 && n <= i32::MAX as u32 => n as c_int,
            Setting::Set(_) => {
                return Err(invalid(&format!(
                    "max_handshakes must be between 1 and {}",
                    i32::MAX
                )))
            }
        };
        let memory = match self.max_memory {
            Setting::Default => 0,
            Setting::Off => usize::MAX,
            Setting::Set(n) if n >= 1 && n < usize::MAX => n,
            Setting::Set(_) => return Err(invalid("max_memory must be at least 1 byte")),
        };
        Ok((
            handshakes,
            idle_ms(self.idle_timeout)?,
            timeout_ms(self.message_timeout, -1, "message_timeout")?,
            memory,
        ))
    }
}

/// `scheme://host...` with any `user:password@` replaced by `***@`.
fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// The idle timeout: off by default, so `Default` and `Off` are both 0.
fn idle_ms(t: Setting<Duration>) -> Result<c_int> {
    timeout_ms(t, 0, "idle_timeout")
}

/// A server handle valid for the duration of an event (or borrowed from a
/// [`Server`]): broadcast, publish, inspect.
#[repr(transparent)]
pub struct ServerRef(NonNull<sys::wh_server>);

// SAFETY: every wh_server_* call used here is [any thread].
unsafe impl Send for ServerRef {}
unsafe impl Sync for ServerRef {}

impl ServerRef {
    /// The bound port.
    pub fn port(&self) -> u16 {
        let p = unsafe { sys::wh_server_port(self.0.as_ptr()) };
        if p < 0 {
            0
        } else {
            p as u16
        }
    }
    /// Open connections.
    pub fn connections(&self) -> usize {
        let n = unsafe { sys::wh_server_connections(self.0.as_ptr()) };
        if n < 0 {
            0
        } else {
            n as usize
        }
    }
    /// Send to every open connection but `except`, framing the message once.
    /// Returns how many connections it was queued for.
    #[inline]
    pub fn broadcast<'m, M: Into<Message<'m>>>(
        &self,
        message: M,
        except: Option<&Connection>,
    ) -> Result<usize> {
        let m = message.into();
        let b = m.as_bytes();
        let rc = unsafe {
            sys::wh_server_broadcast(
                self.0.as_ptr(),
                b.as_ptr() as *const c_void,
                b.len(),
                m.flags(),
                except.map_or(ptr::null_mut(), |c| c.raw.as_ptr()),
            )
        };
        check(rc, "broadcast").map(|n| n as usize)
    }
    /// Send to every subscriber of `topic` but `except`.
    pub fn publish<'m, M: Into<Message<'m>>>(
        &self,
        topic: &str,
        message: M,
        except: Option<&Connection>,
    ) -> Result<usize> {
        let t = cstring(topic, "topic")?;
        let m = message.into();
        let b = m.as_bytes();
        let rc = unsafe {
            sys::wh_server_publish(
                self.0.as_ptr(),
                t.as_ptr(),
                b.as_ptr() as *const c_void,
                b.len(),
                m.flags(),
                except.map_or(ptr::null_mut(), |c| c.raw.as_ptr()),
            )
        };
        check(rc, "publish").map(|n| n as usize)
    }
    /// The broker's counters; [`Code::State`] for a server without one
    /// (see [`ServerOptions::broker`]).
    pub fn broker_stats(&self) -> Result<BrokerStats> {
        let mut st = sys::wh_broker_stats {
            size: std::mem::size_of::<sys::wh_broker_stats>(),
            ..Default::default()
        };
        check(
            unsafe { sys::wh_server_broker_stats(self.0.as_ptr(), &mut st) },
            "broker stats",
        )?;
        Ok(BrokerStats {
            connected: st.connected != 0,
            channels: st.channels.max(0) as usize,
            published: st.published,
            received: st.received,
            dropped: st.dropped,
            malformed: st.malformed,
            reconnects: st.reconnects,
        })
    }
}

/// The counters of a server's broker ([`ServerRef::broker_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// The connection to Redis is up.
    pub connected: bool,
    /// Redis channels this node is subscribed to now: one per topic with at
    /// least one local subscriber.
    pub channels: usize,
    /// Messages written to Redis for other nodes.
    pub published: u64,
    /// Messages from other nodes delivered to local subscribers.
    pub received: u64,
    /// Publishes other nodes did not get: Redis was down, or more than
    /// [`ServerOptions::broker_max_pending`] bytes were waiting for it.
    pub dropped: u64,
    /// Messages on this server's channels dropped as unreadable (another
    /// publisher's, text that is not UTF-8, above the maximum message size).
    pub malformed: u64,
    /// Times the connection to Redis came back after a loss.
    pub reconnects: u64,
}

/// A listening WebSocket server. Dropping it closes it (1001 to every
/// connection) and, if it owned its hub, stops the hub.
pub struct Server {
    r: ServerRef,
    hub: Hub,
    closed: bool,
}

impl Server {
    /// Listen on a new hub whose events go to `handler`.
    pub fn listen<F>(options: ServerOptions, handler: F) -> Result<Server>
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        let hub = Hub::new(
            HubOptions {
                io_threads: options.io_threads,
            },
            handler,
        )?;
        hub.listen(&options)
    }

    /// The hub the server runs on (to connect clients on it too, say).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Close now: stop accepting, close every connection with 1001 and wait
    /// (up to `timeout`) for their close handshakes before dropping the rest.
    pub fn close(mut self, timeout: Duration) -> Result<()> {
        self.closed = true;
        let rc = unsafe { sys::wh_server_close(self.r.0.as_ptr(), ms(Some(timeout))) };
        check(rc, "close server").map(|_| ())
    }
}

impl std::ops::Deref for Server {
    type Target = ServerRef;
    fn deref(&self) -> &ServerRef {
        &self.r
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.closed {
            unsafe { sys::wh_server_close(self.r.0.as_ptr(), 0) };
        }
    }
}

// ------------------------------------------------------------------ client

/// Options of a client connection (builder style).
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub subprotocols: Option<String>,
    /// Extra request headers, `"Name: v\r\n..."`.
    pub headers: Option<String>,
    pub origin: Option<String>,
    pub deflate: bool,
    /// `handshake_timeout` is the whole open timeout (default 10 s).
    pub limits: Limits,
    pub tls_ca_file: Option<String>,
    pub tls_insecure: bool,
    /// As [`ServerOptions::idle_timeout`]. Default off.
    pub idle_timeout: Setting<Duration>,
    /// As [`ServerOptions::message_timeout`]. Default 60 s.
    pub message_timeout: Setting<Duration>,
}

impl ClientOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn subprotocols(mut self, list: &str) -> Self {
        self.subprotocols = Some(list.to_string());
        self
    }
    /// Adds a request header. A name or value with a CR or LF (which would
    /// forge further header lines) makes the connect fail with
    /// [`Code::InvalidArgument`], as one with a NUL does.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let h = self.headers.get_or_insert_with(String::new);
        if [name, value].iter().any(|s| s.contains(|c| c == '\r' || c == '\n')) {
            // An empty line, which the engine refuses as the end of the head.
            h.push_str("\r\n");
        } else {
            h.push_str(&format!("{}: {}\r\n", name, value));
        }
        self
    }
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_string());
        self
    }
    pub fn deflate(mut self, on: bool) -> Self {
        self.deflate = on;
        self
    }
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handshake_timeout = Some(timeout);
        self
    }
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// wss://: trust the CAs in this PEM file (else the system's).
    pub fn tls_ca_file(mut self, path: &str) -> Self {
        self.tls_ca_file = Some(path.to_string());
        self
    }
    /// wss://: do not verify the server certificate.
    pub fn tls_insecure(mut self, on: bool) -> Self {
        self.tls_insecure = on;
        self
    }
    /// See [`ClientOptions::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Setting::Set(timeout);
        self
    }
    /// See [`ClientOptions::message_timeout`]; `Setting::Off` turns it off.
    pub fn message_timeout(mut self, timeout: Setting<Duration>) -> Self {
        self.message_timeout = timeout;
        self
    }
}

/// A client connection on its own hub, open once [`Client::connect`]
/// returns. Derefs to its [`Connection`]. Dropping it closes with 1001.
pub struct Client {
    // Declared first: released before the hub is destroyed.
    conn: Connection,
    _hub: Hub,
}

type OpenSlot = Arc<(Mutex<Option<Result<()>>>, Condvar)>;

impl Client {
    /// Connect and wait until the connection is open (or failed: refused,
    /// handshake refused with an HTTP status, timed out, bad URL). Every event
    /// of the connection, `Open` included, also goes to `handler`.
    pub fn connect<F>(url: &str, options: ClientOptions, handler: F) -> Result<Client>
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        let slot: OpenSlot = Arc::new((Mutex::new(None), Condvar::new()));
        let s2 = slot.clone();
        let hub = Hub::new(HubOptions::default(), move |ev: &Event<'_>| {
            let outcome = match ev {
                Event::Open { .. } => Some(Ok(())),
                Event::Close { info, .. } => {
                    let code = info.error.unwrap_or(Code::Closed);
                    let mut e = Error::from_rc(code.raw(), "connect");
                    e.status = info.http_status;
                    Some(Err(e))
                }
                _ => None,
            };
            if let Some(o) = outcome {
                let mut g = s2.0.lock().unwrap_or_else(|e| e.into_inner());
                if g.is_none() {
                    *g = Some(o);
                    s2.1.notify_all();
                }
            }
            handler(ev);
        })?;
        let conn = hub.connect(url, &options)?;
        let mut g = slot.0.lock().unwrap_or_else(|e| e.into_inner());
        while g.is_none() {
            g = slot.1.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        let outcome = g.take().unwrap();
        drop(g);
        match outcome {
            Ok(()) => Ok(Client { conn, _hub: hub }),
            Err(mut e) => {
                e.message = match e.status {
                    Some(s) => format!("connect {}: handshake refused with HTTP {}", url, s),
                    None => format!("connect {}: {}", url, e.code.description()),
                };
                Err(e)
            }
        }
    }

    /// Connect and receive the connection's events on a channel instead of a
    /// closure (the receiver sees `Open` first, `Close` last).
    pub fn connect_channel(
        url: &str,
        options: ClientOptions,
    ) -> Result<(Client, mpsc::Receiver<OwnedEvent>)> {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let client = Client::connect(url, options, move |ev: &Event<'_>| {
            if let Some(o) = OwnedEvent::from_event(ev) {
                let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(o);
            }
        })?;
        Ok((client, rx))
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::Deref for Client {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// Connect with default options (see [`Client::connect`]).
pub fn connect<F>(url: &str, handler: F) -> Result<Client>
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    Client::connect(url, ClientOptions::default(), handler)
}

/// A client connection's event, owned (what [`Client::connect_channel`] sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedEvent {
    Open,
    Message(OwnedMessage),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Drain,
    Close {
        code: u16,
        reason: String,
        error: Option<Code>,
    },
}

impl OwnedEvent {
    /// The owned copy of a connection event (`None` for server-level ones).
    pub fn from_event(ev: &Event<'_>) -> Option<OwnedEvent> {
        Some(match ev {
            Event::Open { .. } => OwnedEvent::Open,
            Event::Message { message, .. } => OwnedEvent::Message(message.to_owned()),
            Event::Ping { data, .. } => OwnedEvent::Ping(data.to_vec()),
            Event::Pong { data, .. } => OwnedEvent::Pong(data.to_vec()),
            Event::Drain { .. } => OwnedEvent::Drain,
            Event::Close { info, .. } => OwnedEvent::Close {
                code: info.code,
                reason: info.reason.to_string(),
                error: info.error,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn debug_of_server_options_hides_the_broker_password() {
        let o = ServerOptions::new().broker("redis://:s3cret@127.0.0.1:6379/0");
        let shown = format!("{:?}", o);
        assert!(!shown.contains("s3cret"), "{}", shown);
        assert!(shown.contains("redis://***@127.0.0.1:6379/0"), "{}", shown);
    }
}
