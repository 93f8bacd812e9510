/*
 * wirehub.h — the stable C ABI of the wirehub WebSocket engine.
 *
 * Every language binding crosses this one boundary. Conventions (libuv/SQLite):
 *   - one prefix, wh_; opaque handles (wh_hub, wh_server, wh_conn, wh_request);
 *   - every function returns int: 0 (or a documented non-negative value) on
 *     success, a negative WH_E* code on error; wh_strerror()/wh_err_name()
 *     describe it;
 *   - an error return means no callback and no event will follow for that call;
 *   - options structs start with `size_t size` (set it to sizeof the struct) so
 *     they can grow without breaking old callers; zeroed fields mean "default";
 *   - callbacks take `void* user_data` last; no C++ type or exception crosses.
 *   - codes are only ever appended, never renumbered.
 *
 * THREADING MODEL
 *   A wh_hub owns `io_threads` I/O threads (default 1). Every connection lives
 *   on exactly one I/O thread for its whole life.
 *   Events reach the application in one of two ways, chosen per hub:
 *     WH_EVENTS_CALLBACK: on_event() runs on the I/O thread that owns the
 *       connection (or the server's first I/O thread for server-level events).
 *       Pointers in the event are valid only until the callback returns. The
 *       callback must not block: it holds up every connection on that thread.
 *     WH_EVENTS_QUEUE: events are queued; wh_hub_event_fd() returns a file
 *       descriptor that is readable while events are waiting, and the host
 *       drains them in batches with wh_hub_poll() on ONE thread of its choice
 *       (an asyncio loop, a libuv loop, a goroutine). Pointers in an event
 *       stay valid until the next wh_hub_poll() call on that hub.
 *   Functions marked [any thread] may be called from any thread, including
 *   from inside an event callback. Functions marked [not I/O thread] block and
 *   return WH_ESTATE if called from an I/O thread of the same hub.
 *
 * HANDLE LIFETIME
 *   wh_conn: valid from the event that first names it (WH_EV_OPEN, or the
 *     return of wh_connect) until its WH_EV_CLOSE event has been handled (the
 *     callback returned / the next wh_hub_poll()). Every conn gets exactly one
 *     WH_EV_CLOSE and it is its last event. To keep a handle longer (a binding
 *     object that may outlive the connection), wh_conn_retain() it and
 *     wh_conn_release() it later; calls on a closed-but-retained conn return
 *     WH_ECLOSED.
 *   wh_request: valid until it is answered (accept/reject/respond).
 *   wh_server: valid until wh_server_close() has returned.
 */
#ifndef WIREHUB_H
#define WIREHUB_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(WIREHUB_BUILDING_SHARED)
#    define WH_EXTERN __declspec(dllexport)
#  elif defined(WIREHUB_USING_SHARED)
#    define WH_EXTERN __declspec(dllimport)
#  else
#    define WH_EXTERN
#  endif
#else
#  define WH_EXTERN __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ version */
#define WH_VERSION_MAJOR 0
#define WH_VERSION_MINOR 1
#define WH_VERSION_PATCH 0
#define WH_VERSION_HEX ((WH_VERSION_MAJOR << 16) | (WH_VERSION_MINOR << 8) | WH_VERSION_PATCH)
/* Bumped on any incompatible change to this header; same value = same ABI. */
#define WH_ABI_VERSION 1

WH_EXTERN unsigned wh_version(void);            /* WH_VERSION_HEX of the loaded library */
WH_EXTERN const char* wh_version_string(void);  /* "0.1.0" */
WH_EXTERN int wh_abi_version(void);             /* WH_ABI_VERSION of the loaded library */

/* ------------------------------------------------------------------- errors */
/* X(name, value, message). Append only. */
#define WH_ERRNO_MAP(X)                                                              \
  X(EINVAL, -1, "invalid argument")                                                  \
  X(ENOMEM, -2, "out of memory")                                                     \
  X(ECLOSED, -3, "connection is closed or closing")                                  \
  X(EDROPPED, -4, "message dropped: send buffer above its hard cap")                 \
  X(ESTATE, -5, "operation not valid in the current state")                          \
  X(EADDRINUSE, -6, "address already in use")                                        \
  X(ERESOLVE, -7, "host name could not be resolved")                                 \
  X(ECONNREFUSED, -8, "connection refused")                                          \
  X(ETIMEDOUT, -9, "operation timed out")                                            \
  X(EHANDSHAKE, -10, "WebSocket handshake failed")                                   \
  X(ETLS, -11, "TLS error")                                                          \
  X(EIO, -12, "I/O error")                                                           \
  X(EPROTO, -13, "protocol error")                                                   \
  X(EUTF8, -14, "invalid UTF-8 in a text message")                                   \
  X(ETOOBIG, -15, "message larger than the maximum message size")                    \
  X(ELIMIT, -16, "connection limit reached")                                         \
  X(EURL, -17, "invalid URL")                                                        \
  X(ENOTSUP, -18, "not supported")                                                   \
  X(EAGAIN, -19, "no event waiting")                                                 \
  X(ESHUTDOWN, -20, "server or hub is shutting down")                                \
  X(ECLOSECODE, -21, "invalid close code or close reason")                           \
  X(EPINGTIMEOUT, -22, "peer did not answer a ping in time")                         \
  X(ESTATUS, -23, "handshake refused: server answered with a non-101 HTTP status")   \
  X(EADDR, -24, "invalid address")                                                   \
  X(EACCES, -25, "permission denied")                                                \
  X(ERESET, -26, "connection reset by peer")                                         \
  X(EINTERNAL, -27, "internal error")                                                \
  X(EIDLE, -28, "nothing received from the peer within the idle timeout")           \
  X(EBUDGET, -29, "server memory budget exceeded")                                   \
  X(EMFILE, -30, "too many open files")                                             \
  X(EBROKER, -31, "broker (Redis) error")

typedef enum wh_errno {
  WH_OK = 0,
#define WH_ERRNO_ENUM_(name, value, msg) WH_##name = value,
  WH_ERRNO_MAP(WH_ERRNO_ENUM_)
#undef WH_ERRNO_ENUM_
  WH_ERRNO_LAST_ = -32
} wh_errno;

WH_EXTERN const char* wh_strerror(int err);  /* [any thread] static string */
WH_EXTERN const char* wh_err_name(int err);  /* [any thread] "WH_ECLOSED" */

/* -------------------------------------------------------------- close codes */
/* RFC 6455 7.4.1. The engine closes with these; every binding exports them. */
#define WH_CLOSE_NORMAL 1000              /* purpose fulfilled */
#define WH_CLOSE_GOING_AWAY 1001          /* server shutting down, idle timeout */
#define WH_CLOSE_PROTOCOL_ERROR 1002      /* a frame broke RFC 6455 */
#define WH_CLOSE_UNSUPPORTED_DATA 1003    /* a type of data the endpoint cannot take */
#define WH_CLOSE_NO_STATUS 1005           /* reported only: the close frame had no code */
#define WH_CLOSE_ABNORMAL 1006            /* reported only: no close frame at all */
#define WH_CLOSE_INVALID_DATA 1007        /* invalid UTF-8, corrupt compressed data (error
                                             WH_EPROTO, reason zlib's own message, e.g.
                                             "invalid distance too far back") */
#define WH_CLOSE_POLICY 1008              /* a limit other than size: a message too slow,
                                             a peer that does not read, the memory budget */
#define WH_CLOSE_TOO_BIG 1009             /* a message above max_message_size */
#define WH_CLOSE_MANDATORY_EXTENSION 1010 /* client: an extension the server did not accept */
#define WH_CLOSE_INTERNAL_ERROR 1011      /* the endpoint failed (an exception, out of memory) */
#define WH_CLOSE_SERVICE_RESTART 1012
#define WH_CLOSE_TRY_AGAIN_LATER 1013
#define WH_CLOSE_BAD_GATEWAY 1014

/* ------------------------------------------------------------------ handles */
typedef struct wh_hub wh_hub;
typedef struct wh_server wh_server;
typedef struct wh_conn wh_conn;
typedef struct wh_request wh_request;

/* ------------------------------------------------------------------- events */
typedef enum wh_event_type {
  WH_EV_OPEN = 1,     /* conn is open (server: handshake accepted; client: connected) */
  WH_EV_MESSAGE = 2,  /* a whole message: flags has WH_TEXT or WH_BINARY */
  WH_EV_PING = 3,     /* a ping arrived (the pong was sent automatically) */
  WH_EV_PONG = 4,     /* a pong arrived */
  WH_EV_CLOSE = 5,    /* conn closed: code, data=reason; error != 0 if not clean */
  WH_EV_DRAIN = 6,    /* buffered bytes fell below the low-water mark */
  WH_EV_UPGRADE = 7,  /* server, with WH_SERVER_UPGRADE_HOOK: answer `request` */
  WH_EV_HTTP = 8,     /* server, with WH_SERVER_HTTP: a plain HTTP request */
  WH_EV_SERVER_CLOSED = 9, /* wh_server_close() finished: every conn is gone */
  WH_EV_ERROR = 10,   /* a non-fatal, server-level error (e.g. accept failed): code, data */
  WH_EV_BATCH_END = 11 /* with WH_HUB_BATCH_END: this I/O thread delivered events in this
                          turn and is about to wait for I/O; conn and server are NULL */
} wh_event_type;

/* Message and send flags. */
#define WH_TEXT 0x1         /* text message (UTF-8) */
#define WH_BINARY 0x2       /* binary message */
#define WH_COMPRESSED 0x4   /* event: the message arrived compressed */
#define WH_NO_COMPRESS 0x8  /* send: do not compress this message */
#define WH_COMPRESS 0x10    /* send: compress even below the threshold */
#define WH_MORE 0x20        /* send: a fragment; more fragments follow (like MSG_MORE) */
#define WH_BORROW 0x40      /* send, host mode: the bytes stay valid and unchanged until this
                               thread's wh_hub_uncork() returns, so the engine may write them
                               from there instead of copying them. Ignored unless the calling
                               thread is the host's and holds a cork on the hub. */
#define WH_PEER_CLOSED 0x80 /* CLOSE event: the peer's close frame arrived (else `code` is the
                               one we sent, or 1006; ws reports 1006 without one) */

typedef struct wh_event {
  int type;               /* wh_event_type */
  int flags;              /* MESSAGE: WH_TEXT|WH_BINARY [|WH_COMPRESSED]; CLOSE: WH_PEER_CLOSED */
  wh_conn* conn;          /* the connection, or NULL for server-level events */
  wh_server* server;      /* the server it belongs to; NULL for client conns */
  wh_request* request;    /* UPGRADE, HTTP */
  const char* data;       /* MESSAGE/PING/PONG payload; CLOSE reason (or, for a client
                             refused at handshake, the response body); ERROR message.
                             In callback mode a MESSAGE's data points into the receive
                             buffer (no copy) and is valid only during the callback. */
  size_t len;
  int code;               /* CLOSE: the code the peer sent (1005: none); if we failed the
                             connection, the code we sent (1002, 1007, 1009, 1011); if no
                             close frame was exchanged, 1006. ERROR: a WH_E* code */
  int error;              /* CLOSE: 0 if the close handshake completed, else WH_E* why
                             (WH_EPROTO, WH_EUTF8, WH_ETOOBIG, WH_ERESET, WH_ETIMEDOUT,
                             WH_EPINGTIMEOUT, WH_ECLOSED after wh_conn_terminate, ...) */
  int status;             /* CLOSE of a client conn refused at handshake: the HTTP status */
  const char* headers;    /* CLOSE after WH_ESTATUS: raw response headers "Name: v\r\n...";
                             CLOSE after WH_EHANDSHAKE on a 101 that failed the checks:
                             that 101's headers (data: the reason);
                             OPEN of a client conn: the server's 101 response headers */
  size_t headers_len;
  void* user_data;        /* conn's user data (wh_conn_set_user_data), else server's */
  const char* status_text; /* wherever headers is a client's handshake response: that
                              response's reason phrase as the server sent it ("Forbidden",
                              "Switching Protocols", or "" for none); else NULL. Not
                              NUL-terminated; valid as long as headers is. Appended:
                              the engine owns every wh_event, so no host sees a
                              shorter one */
  size_t status_text_len;
} wh_event;

typedef void (*wh_event_cb)(wh_hub* hub, const wh_event* event, void* user_data);

/* ---------------------------------------------------------------------- hub */
#define WH_EVENTS_CALLBACK 0
#define WH_EVENTS_QUEUE 1
/* The host's own thread runs the engine: no I/O thread is started, and
 * wh_hub_event_fd() is readable when the engine has work (a socket, a timer,
 * a call from another thread). The host then calls wh_hub_poll(), which runs
 * that work and returns the resulting events, as in WH_EVENTS_QUEUE. So a
 * single-threaded runtime (asyncio) pays no thread hand-off per message.
 * The thread that creates the hub is its I/O thread: wh_hub_poll() and
 * wh_hub_destroy() are called there; any thread may still send (the call is
 * queued and wakes the descriptor). io_threads must be 0 or 1. Linux only
 * (WH_ENOTSUP elsewhere). */
#define WH_EVENTS_HOST 2

typedef struct wh_hub_options {
  size_t size;            /* sizeof(wh_hub_options) */
  int io_threads;         /* I/O threads; 0 = 1 */
  int event_mode;         /* WH_EVENTS_CALLBACK (default), WH_EVENTS_QUEUE or WH_EVENTS_HOST */
  wh_event_cb on_event;   /* required with WH_EVENTS_CALLBACK */
  void* user_data;        /* passed to on_event */
  int flags;              /* WH_HUB_*; absent from the first layout of this struct, whose
                             size is still accepted (flags then 0) */
} wh_hub_options;

/* Callback mode: after each I/O turn that delivered events, the I/O thread
 * calls on_event once more with WH_EV_BATCH_END. A host that crosses into
 * another runtime per event (cgo, a VM) can buffer events and hand a whole
 * turn over at once; sends made then still leave in one write per socket. */
#define WH_HUB_BATCH_END 0x1

/* Create a hub and start its I/O threads. [any thread] */
WH_EXTERN int wh_hub_create(const wh_hub_options* options, wh_hub** out);
/* Gracefully close every server and connection (1001 Going Away), wait up to
 * timeout_ms (0 = 5000) for close handshakes, stop the I/O threads and free the
 * hub. Queued events not yet polled are discarded. [not I/O thread] */
WH_EXTERN int wh_hub_destroy(wh_hub* hub, int timeout_ms);

/* Batching for a host thread that sends many messages at once (a JS or
 * Python loop handling a batch of events): sends, pings, closes and request
 * answers made by this thread between wh_hub_cork() and wh_hub_uncork() reach
 * each I/O thread in one hand-off at the uncork, instead of one wake-up per
 * call. Their results are decided at the call, as without the cork (WH_SENT,
 * WH_QUEUED, errors). Pairs nest; a thread corks one hub at a time; destroying
 * the hub uncorks it. Forgetting the uncork delays those calls, nothing else.
 * [not I/O thread: WH_ESTATE there, the I/O thread batches its own work] */
WH_EXTERN int wh_hub_cork(wh_hub* hub);
WH_EXTERN int wh_hub_uncork(wh_hub* hub);
/* WH_EVENTS_QUEUE and WH_EVENTS_HOST: a descriptor readable while events (or,
 * in host mode, engine work) wait. Do not read or close it; wh_hub_poll()
 * resets it. [any thread] */
WH_EXTERN int wh_hub_event_fd(wh_hub* hub, int* fd);
/* WH_EVENTS_QUEUE and WH_EVENTS_HOST: move up to `max` waiting events into
 * `out`; returns the number moved (0 if none). Invalidates the pointers of the
 * previous batch. Call from one thread at a time; in host mode from the thread
 * that created the hub (WH_ESTATE elsewhere), where it first runs the
 * engine's ready work without blocking. */
WH_EXTERN int wh_hub_poll(wh_hub* hub, wh_event* out, int max);
/* WH_EVENTS_HOST: message payloads in memory the host owns, so a binding can
 * hand them to its runtime (a JS Buffer, say) without copying them again.
 * For each WH_EV_MESSAGE of at least min_len bytes the engine calls
 * alloc(len, user_data), copies the payload there and points the event's
 * data at it; the memory is the host's from that call on, including for
 * events a hub destroy discards. A NULL return keeps the default for that
 * message (its payload lives in the hub until the next wh_hub_poll()).
 * alloc runs on the host thread, inside wh_hub_poll(), and must not call
 * into the hub. alloc = NULL turns it off. [host thread: WH_ESTATE
 * elsewhere and in other event modes] */
typedef void* (*wh_payload_alloc_cb)(size_t len, void* user_data);
WH_EXTERN int wh_hub_set_payload_alloc(wh_hub* hub, size_t min_len, wh_payload_alloc_cb alloc, void* user_data);
/* WH_EVENTS_HOST: the host watches the sockets for input itself, next to
 * its other descriptors, while there are few of them. A message then costs
 * the host one wait (its own) instead of two (its own on wh_hub_event_fd(),
 * then the engine's on the sockets inside it); with many sockets one wait
 * and one wh_hub_poll() for a whole batch of them cost less than a callback
 * per socket. So: while the hub has at most max_sockets sockets (>= 1), the
 * engine calls watch(fd, 1, user_data) for each socket the host should
 * watch for readability, and watch(fd, 0, user_data) when it should not any
 * more (before the socket is closed, while its input is paused, or when the
 * hub goes past max_sockets and takes every socket back into its own set;
 * it hands them out again at max_sockets / 2 or fewer). The host calls
 * wh_hub_poll_fd() whenever a watched fd is readable (level-triggered: it
 * stays readable while input is left). wh_hub_event_fd() still needs
 * watching: timers, accepts, writability, other threads' calls and the
 * sockets the engine keeps arrive there. watch runs on the host thread,
 * inside whichever wh_* call made the change (wh_hub_poll*, a send, a close,
 * wh_hub_destroy), and must not call into the hub. Set it before the first
 * socket exists (WH_ESTATE after); watch = NULL turns it off (same rule).
 * [host thread: WH_ESTATE elsewhere and in other event modes] */
typedef void (*wh_watch_cb)(int fd, int read, void* user_data);
WH_EXTERN int wh_hub_set_watch(wh_hub* hub, int max_sockets, wh_watch_cb watch, void* user_data);
/* With wh_hub_set_watch(): fd, which the engine asked the host to watch, is
 * readable. Reads and handles that socket's input, then moves up to `max`
 * waiting events into `out` as wh_hub_poll() does. An fd the engine no
 * longer hands out is not an error (the host's wait may report a socket
 * closed or taken back since): then it only moves events. When it returns
 * `max`, more events may wait: take them with wh_hub_poll(). [host thread:
 * WH_ESTATE elsewhere, in other event modes, or without a watch] */
WH_EXTERN int wh_hub_poll_fd(wh_hub* hub, int fd, wh_event* out, int max);
/* The hub's user_data. [any thread] */
WH_EXTERN void* wh_hub_user_data(wh_hub* hub);

/* -------------------------------------------------------------- compression */
typedef struct wh_deflate_options {
  int enabled;                     /* negotiate permessage-deflate (RFC 7692) */
  int server_no_context_takeover;  /* server: 0 = default = yes (one shared compressor per
                                      I/O thread, low memory); -1 = keep context per connection.
                                      client: > 0 = offer it (ask the server not to keep
                                      context), else not offered.
                                      WH_SERVER_WS_DEFLATE_ANSWER: ws's serverNoContextTakeover,
                                      > 0 = true (always answered), 0 = not given (answered
                                      when offered), -1 = false (offers with it refused) */
  int client_no_context_takeover;  /* ask/allow the client not to keep context. client:
                                      > 0 = offer it; -1 = refuse an answer that has it
                                      (ws's clientNoContextTakeover: false); 0 = allow it.
                                      WH_SERVER_WS_DEFLATE_ANSWER: > 0 = always answered, else
                                      answered when offered */
  int server_max_window_bits;      /* 8..15; 0 = 15. client: offered when 8..15 (8 too: the
                                      server may answer 8 or more), not when 0.
                                      WH_SERVER_WS_DEFLATE_ANSWER: ws's serverMaxWindowBits,
                                      8..15 = always answered, offers of less refused; 0 = not
                                      given (the offered value, else 15); -1 = false (offers
                                      with it refused) */
  int client_max_window_bits;      /* 8..15; 0 = 15. client: offered with this value when
                                      8..15 (8 too: the engine then compresses with 9, whose
                                      distances stay within 250 bytes), without a value when
                                      0, not at all when -1.
                                      WH_SERVER_WS_DEFLATE_ANSWER: ws's clientMaxWindowBits,
                                      8..15 = answered, offers without it refused; 0 = not
                                      given (an offered value answered, else none); -1 =
                                      false (never answered) */
  int level;                       /* zlib level 1..9; 0 = 1 (fast) */
  int mem_level;                   /* zlib memLevel 1..9; 0 = 8 */
  size_t threshold;                /* compress messages of at least this size; 0 = 1024 */
} wh_deflate_options;

/* ------------------------------------------------------------------- server */
#define WH_SERVER_UPGRADE_HOOK 0x1  /* emit WH_EV_UPGRADE; else every upgrade is accepted */
#define WH_SERVER_HTTP 0x2          /* emit WH_EV_HTTP for plain requests; else 426 */
#define WH_SERVER_IPV6_ONLY 0x4     /* with host "::", do not also accept IPv4 */
#define WH_SERVER_REUSE_PORT 0x8    /* SO_REUSEPORT */
#define WH_SERVER_NO_LISTEN 0x10    /* no listening socket: connections arrive only through
                                       wh_server_adopt (host/port/backlog are ignored) */
#define WH_SERVER_SKIP_UTF8 0x20    /* deliver text messages without UTF-8 validation
                                       (ws's skipUTF8Validation) */
#define WH_SERVER_RAW_UPGRADE 0x40  /* with WH_SERVER_UPGRADE_HOOK: every request with a
                                       Connection: upgrade and an Upgrade header (any value,
                                       method, version or key) reaches WH_EV_UPGRADE
                                       unvalidated, for the host to check and refuse in its
                                       own words; wh_request_accept then needs only a valid
                                       Sec-WebSocket-Key, and any subprotocol token */
#define WH_SERVER_NO_AUTO_PONG 0x80 /* pings arrive as WH_EV_PING and are not answered: the
                                       application pongs itself (ws's autoPong: false) */
#define WH_SERVER_BARE_CLOSE 0x100  /* a peer's protocol violation (WH_EPROTO, WH_EUTF8,
                                       WH_ETOOBIG) closes with the code alone, as ws does;
                                       WH_EV_CLOSE still carries the reason. Without it the
                                       close frame names the violation. With it, as ws's
                                       receiver, a frame longer than 2^53 - 1 fails at once
                                       (1009, WH_ETOOBIG, reason "payload length > 2^53 - 1"),
                                       whatever max_message_size is */
#define WH_SERVER_WS_DEFLATE_ANSWER 0x200 /* choose the permessage-deflate offer and word
                                       the answer as ws 8 does (acceptAsServer, format), not
                                       as RFC 7692 asks: `deflate` then holds ws's options
                                       (see wh_deflate_options); the offer's parameters keep
                                       their order and ours follow; an offer of a smaller
                                       server window than ours is refused, a client window
                                       is answered as set even above the offer and inflated
                                       with; a header ws refuses with 400 gets no answer
                                       (the host refuses the handshake) */

typedef struct wh_limits {
  size_t max_message_size;      /* 0 = 16 MiB; applies to the inflated size */
  size_t max_header_bytes;      /* handshake request/response header block; 0 = 8 KiB */
  size_t high_water;            /* send() returns WH_QUEUED above this; 0 = 64 KiB */
  size_t low_water;             /* WH_EV_DRAIN when buffered falls below; 0 = high_water/4 */
  size_t max_buffered;          /* hard cap: send() drops with WH_EDROPPED; 0 = 16 MiB + max_message_size */
  int handshake_timeout_ms;     /* 0 = 10000 */
  int close_timeout_ms;         /* wait for the peer's close frame; 0 = 5000 */
  int ping_interval_ms;         /* send a ping every N ms of silence; 0 = off */
  int ping_timeout_ms;          /* close with 1011 if no pong within; 0 = ping_interval */
} wh_limits;

typedef struct wh_tls_options {
  const char* cert_file;   /* server: PEM certificate chain (enables wss); client: the
                              certificate chain to present when the server asks */
  const char* key_file;    /* server: PEM private key; client: the key of cert_file */
  const char* ca_file;     /* client: trust these CAs (else the system's) */
  int insecure;            /* client: do not verify the server certificate */
  const char* server_name; /* client: SNI/verification name; default: the URL host */
} wh_tls_options;

typedef struct wh_server_options {
  size_t size;                 /* sizeof(wh_server_options) */
  const char* host;            /* "127.0.0.1", "::1", "::", "localhost"; NULL = "0.0.0.0" */
  int port;                    /* 0 = pick a free port (see wh_server_port) */
  int backlog;                 /* 0 = 511 */
  int flags;                   /* WH_SERVER_* */
  const char* subprotocols;    /* "chat, superchat": server preference order */
  int max_connections;         /* 0 = unlimited; above it new upgrades get 503 */
  wh_limits limits;
  wh_deflate_options deflate;
  wh_tls_options tls;
  void* user_data;             /* the event's user_data for server-level events */
  /* Hardening limits, appended: the layout without them (up to user_data) is
   * still accepted, with every one of them at its default. */
  int max_handshakes;          /* sockets accepted but not yet open (TLS and HTTP upgrade,
                                  including requests the upgrade hook is deciding); a new
                                  socket past it is closed at once. 0 = 1024, -1 = unlimited */
  int idle_timeout_ms;         /* close an open connection with 1001 (error WH_EIDLE) when
                                  nothing arrived from the peer for this long; 0 = off */
  int message_timeout_ms;      /* a frame or fragmented message that has begun must be
                                  complete within this, else close 1008 (WH_ETIMEDOUT);
                                  0 = 60000, -1 = off */
  size_t max_memory;           /* server-wide budget for bytes held for peers (partial frames,
                                  messages being assembled or inflated, send buffers); a
                                  connection whose input would pass it is closed with 1008
                                  (WH_EBUDGET), a send past it returns WH_EDROPPED.
                                  0 = 1 GiB, SIZE_MAX = unlimited */
  /* Appended later: the layouts up to user_data and up to max_memory are
   * still accepted. */
  int max_fragments;           /* non-empty fragments in one message (ws's maxFragments);
                                  past it, close 1008 without a reason, as ws (WH_ELIMIT).
                                  0 = 131072, -1 = none */
  /* Appended later still: the layouts up to user_data, max_memory and
   * max_fragments are still accepted. A size_t, so that the struct grows
   * (an int would sit in the padding after max_fragments, and an older
   * caller's sizeof would not tell its uninitialised padding apart). */
  size_t max_buffered_chunks;  /* reads buffered for one frame not yet whole (ws's
                                  maxBufferedChunks): counted as ws's receiver counts its
                                  chunks, which it lets go as it takes a frame's header,
                                  extended length, mask and then whole payload. A read
                                  arriving while this many are held closes with 1008
                                  without a reason (WH_ELIMIT; the reported reason is "too
                                  many buffered chunks"). 0 = 1048576, SIZE_MAX = none,
                                  at most INT_MAX otherwise */
} wh_server_options;

/* Bind, listen and start accepting. Binding errors are returned here. [any thread] */
WH_EXTERN int wh_server_listen(wh_hub* hub, const wh_server_options* options, wh_server** out);
/* The bound port (useful with port 0). [any thread] */
WH_EXTERN int wh_server_port(wh_server* server);
/* Number of open connections. [any thread] */
WH_EXTERN int wh_server_connections(wh_server* server);
/* Stop accepting, close every connection with 1001 and wait up to timeout_ms
 * (0 = 5000) before dropping the rest; then emit WH_EV_SERVER_CLOSED and free
 * the server. Nothing already queued for a peer is lost while it reads.
 * [any thread; returns at once, completion is the event] */
WH_EXTERN int wh_server_close(wh_server* server, int timeout_ms);
/* Close the listening socket (the port is free again once this returns) and
 * keep every open connection, as ws's server.close() does; the server still
 * publishes, adopts sockets (wh_server_adopt) and is freed by
 * wh_server_close(). Calling it again is a no-op. [any thread] */
WH_EXTERN int wh_server_unlisten(wh_server* server);

/* Hand over a connected stream socket (TCP or a UNIX socketpair end) whose
 * HTTP upgrade request was already read by the host (Node's http.Server
 * 'upgrade' event, say). The server owns `fd` from this call on, on every path
 * including errors, and closes it. `head`: the bytes read so far, starting with
 * the request line ("GET /path HTTP/1.1\r\n...\r\n\r\n" plus any frames that
 * followed); copied. remote_address/remote_port: the peer as the host knows it
 * (NULL/0 = ask the socket). From here the connection goes through exactly the
 * path of an accepted one: upgrade hook, handshake timeout, WH_EV_OPEN.
 * Errors: WH_EINVAL (fd < 0, or head NULL with head_len > 0), WH_ESHUTDOWN
 * (server closing). [any thread] */
WH_EXTERN int wh_server_adopt(wh_server* server, int fd, const void* head, size_t head_len,
                              const char* remote_address, int remote_port);

/* Pub/sub: a published message is framed (and compressed, once per window
 * size its subscribers agreed on) once for every subscriber; a subscriber
 * whose socket takes it at once costs no copy, one that is behind keeps a
 * copy in its send buffer. A subscriber whose send buffer would pass
 * max_buffered is closed with 1008 (WH_EV_CLOSE error WH_EDROPPED) instead.
 * `except` (may be NULL) is skipped. Returns the number of connections it
 * was queued for. [any thread] */
WH_EXTERN int wh_server_publish(wh_server* server, const char* topic, const void* data, size_t len,
                                int flags, wh_conn* except);
/* Every open connection of the server. [any thread] */
WH_EXTERN int wh_server_broadcast(wh_server* server, const void* data, size_t len, int flags,
                                  wh_conn* except);

/* ------------------------------------------------------------------- broker */
/* Scale-out: with a broker, wh_server_publish() also reaches the subscribers
 * of the topic on every other server (process, machine) attached to the same
 * Redis with the same prefix. Local subscribers get the message directly, as
 * without a broker; the others through the Redis channel prefix + topic, and
 * each node frames (and compresses) what it receives once for all its
 * subscribers. wh_server_broadcast() stays local.
 *
 * Interest: a node subscribes to a topic's channel only while at least one of
 * its connections is subscribed to the topic, so a node without subscribers
 * of a topic receives no traffic for it. Changes are sent in batches, one
 * SUBSCRIBE/UNSUBSCRIBE per I/O turn.
 *
 * Order: what one thread publishes reaches every subscriber, on every node,
 * in publish order; the kind (WH_TEXT/WH_BINARY) is kept; `except` applies on
 * the publishing node only.
 *
 * Redis down: local delivery goes on; publishes meant for other nodes are
 * dropped and counted (wh_broker_stats.dropped), never queued past
 * max_pending and never waited for; the engine reconnects with backoff
 * (100 ms doubling to 5 s) and resubscribes every channel in one command.
 * Messages on our channels that are not ours to read (another publisher's
 * garbage, a text message that is not UTF-8, one above max_message_size)
 * are dropped and counted (wh_broker_stats.malformed).
 *
 * The client is Boost.Redis (RESP3, Redis 6 or later). It runs on the
 * server's first I/O thread and never blocks it. */
typedef struct wh_broker_options {
  size_t size;              /* sizeof(wh_broker_options) */
  const char* url;          /* redis://[[user]:password@]host[:port][/db], or rediss:// for
                               TLS; the port defaults to 6379, db to 0. Required. */
  const char* prefix;       /* channel prefix, so applications can share one Redis;
                               NULL = "wirehub:" */
  const char* ca_file;      /* rediss://: trust these CAs (else the system's) */
  int insecure;             /* rediss://: do not verify the server certificate */
  int connect_timeout_ms;   /* the check at wh_server_set_broker and each reconnect
                               attempt; 0 = 5000 */
  size_t max_pending;       /* bytes of publishes handed to Redis but not yet written;
                               past it a publish is dropped and counted. 0 = 8 MiB */
} wh_broker_options;

/* Attach a broker to the server. Checks the URL (WH_EURL), then connects once
 * and waits, up to connect_timeout_ms, for Redis to answer: an unreachable
 * Redis gives WH_ECONNREFUSED, WH_ERESOLVE or WH_ETIMEDOUT, a refused
 * password WH_EACCES, a TLS failure WH_ETLS, anything else WH_EBROKER. After
 * that the connection is kept up in the background; publishes made before it
 * is first up (a few ms) wait for it, within max_pending. Topics already
 * subscribed are subscribed on Redis at once. One broker per server
 * (WH_ESTATE for a second). [not I/O thread: it blocks until Redis answers] */
WH_EXTERN int wh_server_set_broker(wh_server* server, const wh_broker_options* options);

typedef struct wh_broker_stats {
  size_t size;              /* sizeof(wh_broker_stats), set by the caller */
  int connected;            /* 1 while the connection to Redis is up */
  int channels;             /* Redis channels this node is subscribed to now */
  uint64_t published;       /* messages written to Redis for other nodes */
  uint64_t received;        /* messages from other nodes delivered to local subscribers */
  uint64_t dropped;         /* publishes that could not be sent (Redis down, max_pending) */
  uint64_t malformed;       /* messages on our channels dropped as unreadable */
  uint64_t reconnects;      /* times the connection to Redis came back after a loss */
} wh_broker_stats;

/* Counters of the server's broker (WH_ESTATE without one). [any thread] */
WH_EXTERN int wh_server_broker_stats(wh_server* server, wh_broker_stats* out);

/* ------------------------------------------------------------------ request */
/* The upgrade (WH_EV_UPGRADE) or plain HTTP request (WH_EV_HTTP) of a server.
 * Getters return pointers valid until the request is answered. [any thread] */
WH_EXTERN const char* wh_request_method(wh_request* req);
WH_EXTERN const char* wh_request_target(wh_request* req);  /* "/path?query" as sent */
WH_EXTERN const char* wh_request_path(wh_request* req);    /* "/path" */
WH_EXTERN const char* wh_request_query(wh_request* req);   /* "query" (no '?'), or "" */
/* Header by case-insensitive name; NULL if absent. Repeated headers are joined
 * with ", ". The pointer is valid until the next call of this function on the
 * same request, or until it is answered. */
WH_EXTERN const char* wh_request_header(wh_request* req, const char* name);
/* All headers as "Name: value\r\n..." */
WH_EXTERN const char* wh_request_headers(wh_request* req, size_t* len);
WH_EXTERN const char* wh_request_remote_address(wh_request* req); /* "127.0.0.1" */
WH_EXTERN int wh_request_remote_port(wh_request* req);
/* The server's own end of the request's socket, as wh_conn_local_address
 * gives it ("" for a UNIX socket). */
WH_EXTERN const char* wh_request_local_address(wh_request* req);
WH_EXTERN int wh_request_local_port(wh_request* req);
/* The subprotocols offered by the client, as sent ("a, b"), or "". */
WH_EXTERN const char* wh_request_subprotocols(wh_request* req);

/* Accept an upgrade. subprotocol: one of the offered ones, or NULL for none
 * (the server's `subprotocols` preference is not applied when the hook
 * decides). headers: extra response headers "Name: v\r\n..." or NULL.
 * user_data: the new conn's user data. The conn arrives with WH_EV_OPEN.
 * The engine keeps reading while the request waits (up to max_header_bytes
 * behind it): if the peer ended its side (FIN) or the socket failed
 * meanwhile, the accept returns WH_ECLOSED and the socket is closed with
 * nothing written, as ws does; no WH_EV_OPEN follows, the request is answered
 * all the same. (From another thread, a FIN that arrives as the accept is
 * made may still open the conn, which then closes.) */
WH_EXTERN int wh_request_accept(wh_request* req, const char* subprotocol, const char* headers,
                                void* user_data);
/* Refuse an upgrade or answer a plain HTTP request with `status`, extra headers
 * ("Name: v\r\n...", may be NULL) and a body; then the socket is closed
 * (keep-alive is not offered). The engine adds Connection: close and
 * Content-Length (and a text Content-Type for a body); headers that carry
 * their own Content-Length (which must be `len`, else WH_EINVAL) are written
 * as they are, in their order, after the status line. */
WH_EXTERN int wh_request_respond(wh_request* req, int status, const char* headers, const void* body,
                                 size_t len);

/* --------------------------------------------------------------- connection */
/* Non-negative results of wh_conn_send/publish. */
#define WH_SENT 0    /* written to the socket or corked for this I/O turn */
#define WH_QUEUED 1  /* accepted, but buffered bytes are above the high-water mark */

/* Send a message [any thread]. flags: WH_TEXT or WH_BINARY, optionally
 * WH_NO_COMPRESS/WH_COMPRESS, optionally WH_MORE to send it as a fragment:
 * the first call with WH_MORE picks the type; later calls (type ignored) send
 * continuation frames; the call without WH_MORE ends the message.
 * Returns WH_SENT, WH_QUEUED, or WH_ECLOSED / WH_EDROPPED / WH_EINVAL. */
WH_EXTERN int wh_conn_send(wh_conn* conn, const void* data, size_t len, int flags);
/* Ping with a payload of at most 125 bytes; the pong arrives as WH_EV_PONG. [any thread] */
WH_EXTERN int wh_conn_ping(wh_conn* conn, const void* data, size_t len);
/* An unsolicited pong. [any thread] */
WH_EXTERN int wh_conn_pong(wh_conn* conn, const void* data, size_t len);
/* Start the close handshake. code 0 sends a close frame without a code (the
 * peer sees 1005); else 1000-1003, 1007-1014 or 3000-4999. reason:
 * at most 123 bytes of UTF-8. Data already queued is sent first. [any thread] */
WH_EXTERN int wh_conn_close(wh_conn* conn, int code, const char* reason, size_t len);
/* Drop the TCP connection now (WH_EV_CLOSE follows with 1006). [any thread] */
WH_EXTERN int wh_conn_terminate(wh_conn* conn);
/* The masking key of the next frame a client connection sends (ws's
 * generateMask): key[0..3] as they go on the wire, taken by the first frame
 * the next wh_conn_send/ping/pong/close call makes; NULL forgets a key no
 * frame took (a send refused before framing). Only where those calls frame
 * at once: on the conn's I/O thread, or on the host thread in
 * WH_EVENTS_HOST mode; elsewhere, and for a server's conns, WH_ESTATE. The
 * frames the engine makes on its own (automatic pongs, the answer to the
 * peer's close, a close after a protocol error) keep a random key; without
 * this call every frame has one, at no cost. [I/O thread or host thread] */
WH_EXTERN int wh_conn_set_mask(wh_conn* conn, const unsigned char* key);
/* For clients connected with WH_CLIENT_HOST_MASK: the frames the engine makes
 * on its own (the answer to the peer's close, a close after a protocol
 * error, an automatic pong) take their key from `cb`, which fills key[4],
 * instead of a random one; a key set with wh_conn_set_mask still wins for
 * the frame it was set for. cb runs on the thread that frames them: the
 * conn's I/O thread, or the host thread in host mode, in the middle of the
 * engine's work: it must only fill the key (no call into the engine).
 * NULL removes it (random keys again). ws's generateMask, which ws calls
 * for those frames too. [any thread, before the connections that use it] */
typedef void (*wh_mask_cb)(wh_hub* hub, wh_conn* conn, unsigned char key[4], void* user_data);
WH_EXTERN int wh_hub_set_mask_cb(wh_hub* hub, wh_mask_cb cb, void* user_data);
/* Bytes accepted by send() but not yet written to the socket. [any thread] */
WH_EXTERN int wh_conn_buffered(wh_conn* conn, size_t* out);
/* Write what is queued for the conn now, instead of at the end of the I/O
 * thread's turn or at the host thread's uncork (wh_hub_cork): for a host
 * whose wh_conn_buffered() right after a send must mean what the socket did
 * not take, as ws's bufferedAmount does. On the conn's I/O thread, or the
 * host thread in host mode, the write happens in the call; from another
 * thread it is handed to the I/O thread (at the uncork if that thread corked
 * the hub). What the socket does not take stays queued, as always.
 * WH_ECLOSED once closed. [any thread] */
WH_EXTERN int wh_conn_flush(wh_conn* conn);
/* Stop/resume reading from the peer (flow control for the application). [any thread] */
WH_EXTERN int wh_conn_pause(wh_conn* conn);
WH_EXTERN int wh_conn_resume(wh_conn* conn);
/* Topics of the conn's server (see wh_server_publish). [any thread] */
WH_EXTERN int wh_conn_subscribe(wh_conn* conn, const char* topic);
WH_EXTERN int wh_conn_unsubscribe(wh_conn* conn, const char* topic);
/* Per-connection user data. [any thread] */
WH_EXTERN int wh_conn_set_user_data(wh_conn* conn, void* user_data);
WH_EXTERN void* wh_conn_user_data(wh_conn* conn);
/* Negotiated subprotocol ("" if none) and extensions header value ("" if none);
 * valid while the handle is. [any thread, after WH_EV_OPEN] */
WH_EXTERN const char* wh_conn_subprotocol(wh_conn* conn);
WH_EXTERN const char* wh_conn_extensions(wh_conn* conn);
/* Peer address as text and port. [any thread] */
WH_EXTERN const char* wh_conn_remote_address(wh_conn* conn);
WH_EXTERN int wh_conn_remote_port(wh_conn* conn);
/* Our own end of the connection as text and port: the address and port a
 * server's peer reached, or those a client's socket got. Taken from the
 * socket once it is connected (for wh_server_adopt and wh_client_adopt, the
 * socket handed over); an IPv4 address of a dual-stack socket shows as IPv4,
 * as the peer's does. "" and 0 where the peer's address is: a client not yet
 * connected, ws+unix:, a UNIX socketpair end. The text stays valid while the
 * handle is. [any thread] */
WH_EXTERN const char* wh_conn_local_address(wh_conn* conn);
WH_EXTERN int wh_conn_local_port(wh_conn* conn);
/* Handle reference counting (see HANDLE LIFETIME). [any thread] */
WH_EXTERN int wh_conn_retain(wh_conn* conn);
WH_EXTERN int wh_conn_release(wh_conn* conn);

/* ------------------------------------------------------------------- client */
typedef struct wh_client_options {
  size_t size;                  /* sizeof(wh_client_options) */
  const char* subprotocols;     /* offered, "a, b"; NULL = none */
  const char* headers;          /* extra request headers "Name: v\r\n..."; a Host
                                   here is sent instead of the engine's own */
  const char* origin;           /* Origin header, or NULL */
  wh_limits limits;             /* handshake_timeout_ms is the open timeout */
  wh_deflate_options deflate;   /* enabled = offer permessage-deflate */
  wh_tls_options tls;           /* for wss:// */
  void* user_data;              /* the conn's initial user data */
  /* Appended: the layout without them (up to user_data) is still accepted. */
  int idle_timeout_ms;          /* as in wh_server_options; 0 = off */
  int message_timeout_ms;       /* as in wh_server_options; 0 = 60000, -1 = off */
  /* Appended later: the layouts up to user_data and up to message_timeout_ms
   * are still accepted. */
  int flags;                    /* WH_CLIENT_* */
  int max_fragments;            /* as in wh_server_options; 0 = 131072, -1 = none */
  int tls_min_version;          /* wss://: 0x0303 TLS 1.2, 0x0304 TLS 1.3; 0 = TLS 1.2 */
  int tls_max_version;          /* 0 = the highest OpenSSL offers */
  const char* tls_ciphers;      /* OpenSSL cipher list for TLS 1.2, or NULL for its default */
  /* Appended later still: every layout above (up to user_data,
   * message_timeout_ms and tls_ciphers) is still accepted. */
  size_t max_buffered_chunks;   /* as in wh_server_options; 0 = 1048576, SIZE_MAX = none */
  /* Appended last: every layout above (up to user_data, message_timeout_ms,
   * tls_ciphers and max_buffered_chunks) is still accepted. */
  const char* key;              /* the Sec-WebSocket-Key to send: base64 of 16 bytes
                                   (24 characters), best random; NULL = the engine makes
                                   one. For a host that shows the request it sent (the
                                   Node package's http.ClientRequest, as ws's). Else
                                   WH_EINVAL */
} wh_client_options;

#define WH_CLIENT_SKIP_UTF8 0x1     /* as WH_SERVER_SKIP_UTF8 (ws's skipUTF8Validation) */
#define WH_CLIENT_NO_AUTO_PONG 0x2  /* as WH_SERVER_NO_AUTO_PONG (ws's autoPong: false) */
#define WH_CLIENT_WS_DEFLATE_ANSWER 0x4 /* take the permessage-deflate answer as ws 8 does,
                                       not as RFC 7692 7.1.2.1 asks: a server_max_window_bits
                                       above the offered one is used as answered, and one
                                       offered but not answered means 15 (both refused
                                       without the flag); our context is dropped only when
                                       the answer has client_no_context_takeover */
#define WH_CLIENT_BARE_CLOSE 0x8    /* as WH_SERVER_BARE_CLOSE */
#define WH_CLIENT_HOST_MASK 0x10    /* the engine's own frames take the hub's wh_mask_cb key
                                       (wh_hub_set_mask_cb; ws's generateMask) */

/* Connect to ws://host[:port]/path?query or wss://. Returns the conn at once
 * (connecting); WH_EV_OPEN or, on failure, WH_EV_CLOSE with error set follows.
 * Bad URLs fail here with WH_EURL. [any thread] */
WH_EXTERN int wh_connect(wh_hub* hub, const char* url, const wh_client_options* options,
                         wh_conn** out);

/* A client connection on a socket whose opening handshake the host did
 * itself: Node's http.request through an `agent` (a proxy), a
 * `createConnection` or a `lookup` of the user's, say. `fd` is connected
 * and upgraded (plain TCP: TLS state cannot be handed over). `subprotocol`
 * and `extensions` are the server's Sec-WebSocket-Protocol and
 * Sec-WebSocket-Extensions answers (NULL or "" for none), already checked
 * by the host against its offer; the engine runs with those parameters and
 * refuses (WH_EHANDSHAKE) an extension answer that `options->deflate` does
 * not allow. `head`: bytes the host read after the response (frames).
 * Of the options, limits, deflate, timeouts and user_data apply; the URL's
 * parts (subprotocols, headers, origin, tls) were the host's business.
 * The conn arrives with WH_EV_OPEN, as from wh_connect. The hub owns `fd`
 * from this call on, on every path: it is closed on failure. [any thread] */
WH_EXTERN int wh_client_adopt(wh_hub* hub, int fd, const wh_client_options* options, const char* subprotocol,
                              const char* extensions, const void* head, size_t head_len, wh_conn** out);

#ifdef __cplusplus
}
#endif
#endif /* WIREHUB_H */
