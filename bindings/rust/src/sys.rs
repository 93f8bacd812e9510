//! Raw declarations of `capi/wirehub.h` (hand-written: the header is small
//! and append-only, and this keeps the crate free of a bindgen/libclang
//! build dependency). Layouts must match the header exactly: tests/layout.rs
//! compiles a C program against the header and compares every struct's size
//! and field offsets, and every constant, with these declarations.
#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_char, c_int, c_uint, c_void};

pub const WH_ABI_VERSION: c_int = 1;

pub const WH_OK: c_int = 0;
pub const WH_EINVAL: c_int = -1;
pub const WH_ENOMEM: c_int = -2;
pub const WH_ECLOSED: c_int = -3;
pub const WH_EDROPPED: c_int = -4;
pub const WH_ESTATE: c_int = -5;
pub const WH_EADDRINUSE: c_int = -6;
pub const WH_ERESOLVE: c_int = -7;
pub const WH_ECONNREFUSED: c_int = -8;
pub const WH_ETIMEDOUT: c_int = -9;
pub const WH_EHANDSHAKE: c_int = -10;
pub const WH_ETLS: c_int = -11;
pub const WH_EIO: c_int = -12;
pub const WH_EPROTO: c_int = -13;
pub const WH_EUTF8: c_int = -14;
pub const WH_ETOOBIG: c_int = -15;
pub const WH_ELIMIT: c_int = -16;
pub const WH_EURL: c_int = -17;
pub const WH_ENOTSUP: c_int = -18;
pub const WH_EAGAIN: c_int = -19;
pub const WH_ESHUTDOWN: c_int = -20;
pub const WH_ECLOSECODE: c_int = -21;
pub const WH_EPINGTIMEOUT: c_int = -22;
pub const WH_ESTATUS: c_int = -23;
pub const WH_EADDR: c_int = -24;
pub const WH_EACCES: c_int = -25;
pub const WH_ERESET: c_int = -26;
pub const WH_EINTERNAL: c_int = -27;
pub const WH_EIDLE: c_int = -28;
pub const WH_EBUDGET: c_int = -29;
pub const WH_EMFILE: c_int = -30;
pub const WH_EBROKER: c_int = -31;

pub const WH_CLOSE_NORMAL: c_int = 1000;
pub const WH_CLOSE_GOING_AWAY: c_int = 1001;
pub const WH_CLOSE_PROTOCOL_ERROR: c_int = 1002;
pub const WH_CLOSE_UNSUPPORTED_DATA: c_int = 1003;
pub const WH_CLOSE_NO_STATUS: c_int = 1005;
pub const WH_CLOSE_ABNORMAL: c_int = 1006;
pub const WH_CLOSE_INVALID_DATA: c_int = 1007;
pub const WH_CLOSE_POLICY: c_int = 1008;
pub const WH_CLOSE_TOO_BIG: c_int = 1009;
pub const WH_CLOSE_MANDATORY_EXTENSION: c_int = 1010;
pub const WH_CLOSE_INTERNAL_ERROR: c_int = 1011;
pub const WH_CLOSE_SERVICE_RESTART: c_int = 1012;
pub const WH_CLOSE_TRY_AGAIN_LATER: c_int = 1013;
pub const WH_CLOSE_BAD_GATEWAY: c_int = 1014;

pub const WH_EV_OPEN: c_int = 1;
pub const WH_EV_MESSAGE: c_int = 2;
pub const WH_EV_PING: c_int = 3;
pub const WH_EV_PONG: c_int = 4;
pub const WH_EV_CLOSE: c_int = 5;
pub const WH_EV_DRAIN: c_int = 6;
pub const WH_EV_UPGRADE: c_int = 7;
pub const WH_EV_HTTP: c_int = 8;
pub const WH_EV_SERVER_CLOSED: c_int = 9;
pub const WH_EV_ERROR: c_int = 10;
pub const WH_EV_BATCH_END: c_int = 11;
pub const WH_HUB_BATCH_END: c_int = 0x1;

pub const WH_TEXT: c_int = 0x1;
pub const WH_BINARY: c_int = 0x2;
pub const WH_COMPRESSED: c_int = 0x4;
pub const WH_NO_COMPRESS: c_int = 0x8;
pub const WH_COMPRESS: c_int = 0x10;
pub const WH_MORE: c_int = 0x20;
pub const WH_BORROW: c_int = 0x40;

pub const WH_EVENTS_CALLBACK: c_int = 0;
pub const WH_EVENTS_QUEUE: c_int = 1;
pub const WH_EVENTS_HOST: c_int = 2;

pub const WH_SERVER_UPGRADE_HOOK: c_int = 0x1;
pub const WH_SERVER_HTTP: c_int = 0x2;
pub const WH_SERVER_IPV6_ONLY: c_int = 0x4;
pub const WH_SERVER_REUSE_PORT: c_int = 0x8;
pub const WH_SERVER_NO_LISTEN: c_int = 0x10;
pub const WH_SERVER_SKIP_UTF8: c_int = 0x20;
pub const WH_SERVER_RAW_UPGRADE: c_int = 0x40;
pub const WH_SERVER_NO_AUTO_PONG: c_int = 0x80;
pub const WH_SERVER_BARE_CLOSE: c_int = 0x100;
pub const WH_SERVER_WS_DEFLATE_ANSWER: c_int = 0x200;
pub const WH_CLIENT_SKIP_UTF8: c_int = 0x1;
pub const WH_CLIENT_NO_AUTO_PONG: c_int = 0x2;
pub const WH_CLIENT_WS_DEFLATE_ANSWER: c_int = 0x4;
pub const WH_CLIENT_BARE_CLOSE: c_int = 0x8;
pub const WH_CLIENT_HOST_MASK: c_int = 0x10;
pub const WH_PEER_CLOSED: c_int = 0x80;

pub const WH_SENT: c_int = 0;
pub const WH_QUEUED: c_int = 1;

#[repr(C)]
pub struct wh_hub {
    _p: [u8; 0],
}
#[repr(C)]
pub struct wh_server {
    _p: [u8; 0],
}
#[repr(C)]
pub struct wh_conn {
    _p: [u8; 0],
}
#[repr(C)]
pub struct wh_request {
    _p: [u8; 0],
}

#[repr(C)]
pub struct wh_event {
    pub type_: c_int,
    pub flags: c_int,
    pub conn: *mut wh_conn,
    pub server: *mut wh_server,
    pub request: *mut wh_request,
    pub data: *const c_char,
    pub len: usize,
    pub code: c_int,
    pub error: c_int,
    pub status: c_int,
    pub headers: *const c_char,
    pub headers_len: usize,
    pub user_data: *mut c_void,
    pub status_text: *const c_char,
    pub status_text_len: usize,
}

pub type wh_payload_alloc_cb =
    Option<unsafe extern "C" fn(len: usize, user_data: *mut c_void) -> *mut c_void>;
pub type wh_watch_cb = Option<unsafe extern "C" fn(fd: c_int, read: c_int, user_data: *mut c_void)>;
pub type wh_mask_cb = Option<
    unsafe extern "C" fn(hub: *mut wh_hub, conn: *mut wh_conn, key: *mut u8, user_data: *mut c_void),
>;
pub type wh_event_cb =
    Option<unsafe extern "C" fn(hub: *mut wh_hub, event: *const wh_event, user_data: *mut c_void)>;

#[repr(C)]
pub struct wh_hub_options {
    pub size: usize,
    pub io_threads: c_int,
    pub event_mode: c_int,
    pub on_event: wh_event_cb,
    pub user_data: *mut c_void,
    pub flags: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct wh_deflate_options {
    pub enabled: c_int,
    pub server_no_context_takeover: c_int,
    pub client_no_context_takeover: c_int,
    pub server_max_window_bits: c_int,
    pub client_max_window_bits: c_int,
    pub level: c_int,
    pub mem_level: c_int,
    pub threshold: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct wh_limits {
    pub max_message_size: usize,
    pub max_header_bytes: usize,
    pub high_water: usize,
    pub low_water: usize,
    pub max_buffered: usize,
    pub handshake_timeout_ms: c_int,
    pub close_timeout_ms: c_int,
    pub ping_interval_ms: c_int,
    pub ping_timeout_ms: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct wh_tls_options {
    pub cert_file: *const c_char,
    pub key_file: *const c_char,
    pub ca_file: *const c_char,
    pub insecure: c_int,
    pub server_name: *const c_char,
}

#[repr(C)]
pub struct wh_server_options {
    pub size: usize,
    pub host: *const c_char,
    pub port: c_int,
    pub backlog: c_int,
    pub flags: c_int,
    pub subprotocols: *const c_char,
    pub max_connections: c_int,
    pub limits: wh_limits,
    pub deflate: wh_deflate_options,
    pub tls: wh_tls_options,
    pub user_data: *mut c_void,
    // Appended hardening limits (see the header).
    pub max_handshakes: c_int,
    pub idle_timeout_ms: c_int,
    pub message_timeout_ms: c_int,
    pub max_memory: usize,
    // Appended later: 0 = 131072, -1 = no limit (ws's maxFragments).
    pub max_fragments: c_int,
    // Appended later: 0 = 1048576, usize::MAX = no limit (ws's maxBufferedChunks).
    pub max_buffered_chunks: usize,
}

#[repr(C)]
pub struct wh_client_options {
    pub size: usize,
    pub subprotocols: *const c_char,
    pub headers: *const c_char,
    pub origin: *const c_char,
    pub limits: wh_limits,
    pub deflate: wh_deflate_options,
    pub tls: wh_tls_options,
    pub user_data: *mut c_void,
    pub idle_timeout_ms: c_int,
    pub message_timeout_ms: c_int,
    // Appended later (see the header): WH_CLIENT_*, ws's maxFragments, and
    // the TLS versions and ciphers.
    pub flags: c_int,
    pub max_fragments: c_int,
    pub tls_min_version: c_int,
    pub tls_max_version: c_int,
    pub tls_ciphers: *const c_char,
    pub max_buffered_chunks: usize,
    pub key: *const c_char,
}

/// `wh_server_set_broker`'s options (scale-out through Redis).
#[repr(C)]
pub struct wh_broker_options {
    pub size: usize,
    pub url: *const c_char,
    pub prefix: *const c_char,
    pub ca_file: *const c_char,
    pub insecure: c_int,
    pub connect_timeout_ms: c_int,
    pub max_pending: usize,
}

/// `wh_server_broker_stats`'s counters.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct wh_broker_stats {
    pub size: usize,
    pub connected: c_int,
    pub channels: c_int,
    pub published: u64,
    pub received: u64,
    pub dropped: u64,
    pub malformed: u64,
    pub reconnects: u64,
}

extern "C" {
    pub fn wh_version() -> c_uint;
    pub fn wh_version_string() -> *const c_char;
    pub fn wh_abi_version() -> c_int;
    pub fn wh_strerror(err: c_int) -> *const c_char;
    pub fn wh_err_name(err: c_int) -> *const c_char;

    pub fn wh_hub_create(options: *const wh_hub_options, out: *mut *mut wh_hub) -> c_int;
    pub fn wh_hub_destroy(hub: *mut wh_hub, timeout_ms: c_int) -> c_int;
    pub fn wh_hub_event_fd(hub: *mut wh_hub, fd: *mut c_int) -> c_int;
    pub fn wh_hub_poll(hub: *mut wh_hub, out: *mut wh_event, max: c_int) -> c_int;
    pub fn wh_hub_cork(hub: *mut wh_hub) -> c_int;
    pub fn wh_hub_uncork(hub: *mut wh_hub) -> c_int;
    pub fn wh_hub_set_payload_alloc(
        hub: *mut wh_hub,
        min_len: usize,
        alloc: wh_payload_alloc_cb,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn wh_hub_set_watch(
        hub: *mut wh_hub,
        max_sockets: c_int,
        watch: wh_watch_cb,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn wh_hub_poll_fd(hub: *mut wh_hub, fd: c_int, out: *mut wh_event, max: c_int) -> c_int;
    pub fn wh_hub_set_mask_cb(hub: *mut wh_hub, cb: wh_mask_cb, user_data: *mut c_void) -> c_int;
    pub fn wh_hub_user_data(hub: *mut wh_hub) -> *mut c_void;

    pub fn wh_server_listen(
        hub: *mut wh_hub,
        options: *const wh_server_options,
        out: *mut *mut wh_server,
    ) -> c_int;
    pub fn wh_server_port(server: *mut wh_server) -> c_int;
    pub fn wh_server_connections(server: *mut wh_server) -> c_int;
    pub fn wh_server_close(server: *mut wh_server, timeout_ms: c_int) -> c_int;
    pub fn wh_server_unlisten(server: *mut wh_server) -> c_int;
    pub fn wh_server_adopt(
        server: *mut wh_server,
        fd: c_int,
        head: *const c_void,
        head_len: usize,
        remote_address: *const c_char,
        remote_port: c_int,
    ) -> c_int;
    pub fn wh_server_publish(
        server: *mut wh_server,
        topic: *const c_char,
        data: *const c_void,
        len: usize,
        flags: c_int,
        except: *mut wh_conn,
    ) -> c_int;
    pub fn wh_server_broadcast(
        server: *mut wh_server,
        data: *const c_void,
        len: usize,
        flags: c_int,
        except: *mut wh_conn,
    ) -> c_int;
    pub fn wh_server_set_broker(server: *mut wh_server, options: *const wh_broker_options) -> c_int;
    pub fn wh_server_broker_stats(server: *mut wh_server, out: *mut wh_broker_stats) -> c_int;

    pub fn wh_request_method(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_target(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_path(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_query(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_header(req: *mut wh_request, name: *const c_char) -> *const c_char;
    pub fn wh_request_headers(req: *mut wh_request, len: *mut usize) -> *const c_char;
    pub fn wh_request_remote_address(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_remote_port(req: *mut wh_request) -> c_int;
    pub fn wh_request_local_address(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_local_port(req: *mut wh_request) -> c_int;
    pub fn wh_request_subprotocols(req: *mut wh_request) -> *const c_char;
    pub fn wh_request_accept(
        req: *mut wh_request,
        subprotocol: *const c_char,
        headers: *const c_char,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn wh_request_respond(
        req: *mut wh_request,
        status: c_int,
        headers: *const c_char,
        body: *const c_void,
        len: usize,
    ) -> c_int;

    pub fn wh_conn_send(conn: *mut wh_conn, data: *const c_void, len: usize, flags: c_int) -> c_int;
    pub fn wh_conn_ping(conn: *mut wh_conn, data: *const c_void, len: usize) -> c_int;
    pub fn wh_conn_pong(conn: *mut wh_conn, data: *const c_void, len: usize) -> c_int;
    pub fn wh_conn_close(conn: *mut wh_conn, code: c_int, reason: *const c_char, len: usize) -> c_int;
    pub fn wh_conn_terminate(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_buffered(conn: *mut wh_conn, out: *mut usize) -> c_int;
    pub fn wh_conn_flush(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_set_mask(conn: *mut wh_conn, key: *const u8) -> c_int;
    pub fn wh_conn_pause(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_resume(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_subscribe(conn: *mut wh_conn, topic: *const c_char) -> c_int;
    pub fn wh_conn_unsubscribe(conn: *mut wh_conn, topic: *const c_char) -> c_int;
    pub fn wh_conn_set_user_data(conn: *mut wh_conn, user_data: *mut c_void) -> c_int;
    pub fn wh_conn_user_data(conn: *mut wh_conn) -> *mut c_void;
    pub fn wh_conn_subprotocol(conn: *mut wh_conn) -> *const c_char;
    pub fn wh_conn_extensions(conn: *mut wh_conn) -> *const c_char;
    pub fn wh_conn_remote_address(conn: *mut wh_conn) -> *const c_char;
    pub fn wh_conn_remote_port(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_local_address(conn: *mut wh_conn) -> *const c_char;
    pub fn wh_conn_local_port(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_retain(conn: *mut wh_conn) -> c_int;
    pub fn wh_conn_release(conn: *mut wh_conn) -> c_int;

    pub fn wh_connect(
        hub: *mut wh_hub,
        url: *const c_char,
        options: *const wh_client_options,
        out: *mut *mut wh_conn,
    ) -> c_int;
}
