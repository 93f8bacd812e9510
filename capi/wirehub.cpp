// wirehub.cpp — the C ABI over the engine: argument checks, handle casts,
// error codes. Nothing here may throw across the boundary: every entry point
// catches and maps to WH_ENOMEM / WH_EINTERNAL.
#include "wirehub.h"

#include "connection.hpp"
#include "hub.hpp"
#include "loop.hpp"
#include "server.hpp"

#include <boost/system/system_error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <system_error>

#include <unistd.h>

using namespace wirehub;

namespace {

hub* H(wh_hub* h) { return reinterpret_cast<hub*>(h); }
server* S(wh_server* s) { return reinterpret_cast<server*>(s); }
connection* C(wh_conn* c) { return reinterpret_cast<connection*>(c); }
request* R(wh_request* r) { return reinterpret_cast<request*>(r); }

// Out of descriptors is the application's to handle (raise the limit, shed
// load), not an internal error.
int errno_code(int e) { return e == EMFILE || e == ENFILE ? WH_EMFILE : WH_EINTERNAL; }

template <class F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return WH_ENOMEM;
  } catch (const std::system_error& e) {  // the engine's own descriptors (epoll, eventfd)
    return errno_code(e.code().value());
  } catch (const boost::system::system_error& e) {  // Asio's (its reactor's epoll, eventfd)
    return errno_code(e.code().value());
  } catch (...) {
    return WH_EINTERNAL;
  }
}

// Copies an options struct. `size` names the struct's version: ABI 1 has one
// layout per struct, so only sizeof(T) is valid; when a struct grows, the
// older sizes are accepted here and their missing fields stay zero (default).
template <class T>
constexpr std::size_t oldest_size() { return sizeof(T); }
// wh_hub_options gained `flags` after `user_data`.
template <>
constexpr std::size_t oldest_size<wh_hub_options>() { return offsetof(wh_hub_options, flags); }
// wh_server_options and wh_client_options gained their hardening limits
// after `user_data`.
template <>
constexpr std::size_t oldest_size<wh_server_options>() { return offsetof(wh_server_options, max_handshakes); }
template <>
constexpr std::size_t oldest_size<wh_client_options>() { return offsetof(wh_client_options, idle_timeout_ms); }

// Sizes between the oldest and the current one, for structs that grew twice.
template <class T>
constexpr std::size_t middle_size() { return oldest_size<T>(); }
template <class T>
constexpr std::size_t later_size() { return middle_size<T>(); }
// wh_client_options then gained `flags`, `max_fragments` and the TLS
// versions and ciphers after `message_timeout_ms`, wh_server_options
// `max_fragments` after `max_memory`.
template <>
constexpr std::size_t middle_size<wh_client_options>() { return offsetof(wh_client_options, flags); }
template <>
constexpr std::size_t middle_size<wh_server_options>() { return offsetof(wh_server_options, max_fragments); }
template <>
constexpr std::size_t later_size<wh_client_options>() { return offsetof(wh_client_options, tls_min_version); }

// Then both gained `max_buffered_chunks` at their end, and the client `key`.
template <class T>
constexpr std::size_t latest_size() { return later_size<T>(); }
template <class T>
constexpr std::size_t chunks_size() { return latest_size<T>(); }
template <>
constexpr std::size_t chunks_size<wh_client_options>() { return offsetof(wh_client_options, key); }
template <>
constexpr std::size_t latest_size<wh_server_options>() { return offsetof(wh_server_options, max_buffered_chunks); }
template <>
constexpr std::size_t latest_size<wh_client_options>() { return offsetof(wh_client_options, max_buffered_chunks); }

template <class T>
bool read_options(const T* in, T& out) {
  std::memset(&out, 0, sizeof out);
  if (!in) return true;
  if (in->size != sizeof(T) && in->size != oldest_size<T>() && in->size != middle_size<T>() &&
      in->size != later_size<T>() && in->size != latest_size<T>() && in->size != chunks_size<T>())
    return false;
  std::memcpy(&out, in, in->size);
  return true;
}

}  // namespace

extern "C" {

unsigned wh_version(void) { return WH_VERSION_HEX; }
const char* wh_version_string(void) { return "0.1.0"; }
int wh_abi_version(void) { return WH_ABI_VERSION; }

const char* wh_strerror(int err) {
  switch (err) {
    case 0:
      return "success";
#define WH_STRERROR_CASE_(name, value, msg) \
  case value:                               \
    return msg;
      WH_ERRNO_MAP(WH_STRERROR_CASE_)
#undef WH_STRERROR_CASE_
    default:
      return "unknown error";
  }
}

const char* wh_err_name(int err) {
  switch (err) {
    case 0:
      return "WH_OK";
#define WH_ERRNAME_CASE_(name, value, msg) \
  case value:                              \
    return "WH_" #name;
      WH_ERRNO_MAP(WH_ERRNAME_CASE_)
#undef WH_ERRNAME_CASE_
    default:
      return "WH_EUNKNOWN";
  }
}

// --------------------------------------------------------------------- hub

int wh_hub_create(const wh_hub_options* options, wh_hub** out) {
  if (!out) return WH_EINVAL;
  *out = nullptr;
  wh_hub_options o;
  if (!read_options(options, o)) return WH_EINVAL;
  if (o.io_threads < 0 || o.io_threads > 256) return WH_EINVAL;
  if (o.event_mode != WH_EVENTS_CALLBACK && o.event_mode != WH_EVENTS_QUEUE && o.event_mode != WH_EVENTS_HOST)
    return WH_EINVAL;
  if (o.event_mode == WH_EVENTS_HOST && o.io_threads > 1) return WH_EINVAL;
  if (o.event_mode == WH_EVENTS_CALLBACK && !o.on_event) return WH_EINVAL;
  return guarded([&]() -> int {
    auto* h = new hub(o);
    if (h->queue_mode() && h->event_fd() < 0) {
      h->destroy(1);
      return WH_EIO;
    }
    *out = h->handle();
    return 0;
  });
}

int wh_hub_cork(wh_hub* h) {
  if (!h) return WH_EINVAL;
  return guarded([&]() -> int { return loop::cork_host(*H(h)); });
}

int wh_hub_uncork(wh_hub* h) {
  if (!h) return WH_EINVAL;
  return guarded([&]() -> int { return loop::uncork_host(*H(h)); });
}

int wh_hub_destroy(wh_hub* h, int timeout_ms) {
  if (!h) return WH_EINVAL;
  return guarded([&]() -> int { return H(h)->destroy(timeout_ms); });
}

int wh_hub_event_fd(wh_hub* h, int* fd) {
  if (!h || !fd) return WH_EINVAL;
  if (!H(h)->queue_mode()) return WH_ESTATE;
  *fd = H(h)->event_fd();
  return *fd >= 0 ? 0 : WH_ENOTSUP;
}

int wh_hub_poll(wh_hub* h, wh_event* out, int max) {
  if (!h || !out || max <= 0) return WH_EINVAL;
  if (!H(h)->queue_mode()) return WH_ESTATE;
  return guarded([&]() -> int { return H(h)->poll(out, max); });
}

int wh_hub_set_payload_alloc(wh_hub* h, size_t min_len, wh_payload_alloc_cb alloc, void* user_data) {
  if (!h) return WH_EINVAL;
  if (!H(h)->hosted() || !H(h)->loop_at(0).is_host_thread()) return WH_ESTATE;
  H(h)->queue()->set_payload_alloc(min_len, alloc, user_data);
  return 0;
}

int wh_hub_set_watch(wh_hub* h, int max_sockets, wh_watch_cb watch, void* user_data) {
  if (!h || (watch && max_sockets < 1)) return WH_EINVAL;
  if (!H(h)->hosted() || !H(h)->loop_at(0).is_host_thread()) return WH_ESTATE;
  return H(h)->loop_at(0).set_watch(watch, user_data, static_cast<std::size_t>(max_sockets)) ? 0 : WH_ESTATE;
}

int wh_hub_poll_fd(wh_hub* h, int fd, wh_event* out, int max) {
  if (!h || !out || max <= 0) return WH_EINVAL;
  if (!H(h)->hosted() || !H(h)->loop_at(0).is_host_thread() || !H(h)->loop_at(0).has_watch()) return WH_ESTATE;
  return guarded([&]() -> int { return H(h)->poll_fd(fd, out, max); });
}

void* wh_hub_user_data(wh_hub* h) { return h ? H(h)->user_data() : nullptr; }

int wh_hub_set_mask_cb(wh_hub* h, wh_mask_cb cb, void* user_data) {
  if (!h) return WH_EINVAL;
  H(h)->set_mask_cb(cb, user_data);
  return 0;
}

// ------------------------------------------------------------------ server

int wh_server_listen(wh_hub* h, const wh_server_options* options, wh_server** out) {
  if (!h || !options || !out) return WH_EINVAL;
  *out = nullptr;
  wh_server_options o;
  if (!read_options(options, o)) return WH_EINVAL;
  return guarded([&]() -> int {
    server* s = nullptr;
    int rc = H(h)->listen(o, &s);
    if (rc == 0) *out = reinterpret_cast<wh_server*>(s);
    return rc;
  });
}

int wh_server_adopt(wh_server* s, int fd, const void* head, size_t head_len, const char* remote_address,
                    int remote_port) {
  if (fd < 0) return WH_EINVAL;
  if (!s || (!head && head_len) || remote_port < 0 || remote_port > 65535) {
    ::close(fd);  // owned from the call on, errors included
    return WH_EINVAL;
  }
  return guarded([&]() -> int {
    std::string bytes = head_len ? std::string(static_cast<const char*>(head), head_len) : std::string();
    return S(s)->adopt(fd, std::move(bytes), remote_address, remote_port);
  });
}

int wh_server_port(wh_server* s) { return s ? S(s)->port() : WH_EINVAL; }
int wh_server_connections(wh_server* s) { return s ? S(s)->connections() : WH_EINVAL; }

int wh_server_close(wh_server* s, int timeout_ms) {
  if (!s || timeout_ms < 0) return WH_EINVAL;
  return guarded([&]() -> int { return S(s)->close(timeout_ms); });
}

int wh_server_unlisten(wh_server* s) {
  if (!s) return WH_EINVAL;
  return guarded([&]() -> int { return S(s)->unlisten(); });
}

int wh_server_publish(wh_server* s, const char* topic, const void* data, size_t len, int flags, wh_conn* except) {
  if (!s || !topic || (!data && len)) return WH_EINVAL;
  if (S(s)->closing()) return WH_ESHUTDOWN;
  return guarded([&]() -> int {
    const std::string_view t(topic);
    return S(s)->publish(&t, data, len, flags, C(except));
  });
}

int wh_server_set_broker(wh_server* s, const wh_broker_options* options) {
  if (!s || !options) return WH_EINVAL;
  wh_broker_options o;
  if (!read_options(options, o)) return WH_EINVAL;
  if (!o.url) return WH_EINVAL;
  // It waits for Redis: on an I/O thread that would stall every connection
  // on it. The host thread of a host-mode hub may wait (it owns the loop).
  loop* l = loop::current();
  if (l && !l->owner().hosted()) return WH_ESTATE;
  if (S(s)->closing()) return WH_ESHUTDOWN;
  return guarded([&]() -> int { return S(s)->set_broker(o); });
}

int wh_server_broker_stats(wh_server* s, wh_broker_stats* out) {
  if (!s || !out || out->size != sizeof(wh_broker_stats)) return WH_EINVAL;
  const std::size_t size = out->size;
  std::memset(out, 0, sizeof *out);
  out->size = size;
  return S(s)->broker_stats(*out);
}

int wh_server_broadcast(wh_server* s, const void* data, size_t len, int flags, wh_conn* except) {
  if (!s || (!data && len)) return WH_EINVAL;
  if (S(s)->closing()) return WH_ESHUTDOWN;
  return guarded([&]() -> int { return S(s)->publish(nullptr, data, len, flags, C(except)); });
}

// ----------------------------------------------------------------- request

const char* wh_request_method(wh_request* r) { return r ? R(r)->info.method.c_str() : nullptr; }
const char* wh_request_target(wh_request* r) { return r ? R(r)->info.target.c_str() : nullptr; }
const char* wh_request_path(wh_request* r) { return r ? R(r)->info.path.c_str() : nullptr; }
const char* wh_request_query(wh_request* r) { return r ? R(r)->info.query.c_str() : nullptr; }
const char* wh_request_remote_address(wh_request* r) { return r ? R(r)->info.remote_address.c_str() : nullptr; }
int wh_request_remote_port(wh_request* r) { return r ? R(r)->info.remote_port : WH_EINVAL; }
const char* wh_request_local_address(wh_request* r) {
  if (!r) return nullptr;
  return R(r)->conn ? R(r)->conn->local_address() : "";
}
int wh_request_local_port(wh_request* r) {
  if (!r) return WH_EINVAL;
  return R(r)->conn ? R(r)->conn->local_port() : 0;
}
const char* wh_request_subprotocols(wh_request* r) { return r ? R(r)->info.protocols.c_str() : nullptr; }

const char* wh_request_headers(wh_request* r, size_t* len) {
  if (!r) return nullptr;
  if (len) *len = R(r)->info.headers.size();
  return R(r)->info.headers.c_str();
}

const char* wh_request_header(wh_request* r, const char* name) {
  if (!r || !name) return nullptr;
  try {
    // The value is kept in the request so the pointer lives as long as it.
    std::string v = R(r)->info.header(name);
    std::string needle = std::string(name) + ":";
    bool present = false;
    std::string_view all = R(r)->info.headers;
    for (std::size_t pos = 0; pos < all.size();) {
      auto eol = all.find("\r\n", pos);
      auto line = all.substr(pos, eol - pos);
      if (line.size() >= needle.size() && handshake::iequals(line.substr(0, needle.size()), needle)) present = true;
      if (eol == std::string_view::npos) break;
      pos = eol + 2;
    }
    if (!present) return nullptr;
    R(r)->header_value = std::move(v);
    return R(r)->header_value.c_str();
  } catch (...) {
    return nullptr;
  }
}

static int answer(wh_request* r, int status, const char* subprotocol, const char* headers, const void* body,
                  size_t len, void* user_data) {
  if (!r || (!body && len)) return WH_EINVAL;
  if (status < 100 || status > 999) return WH_EINVAL;
  request* req = R(r);
  if (status == 101 && !req->upgrade) return WH_EINVAL;
  if (subprotocol && *subprotocol) {
    if (req->raw) {
      // The host may answer a protocol the client did not offer (ws does;
      // the client then fails the handshake), but only as a header value.
      for (const char* p = subprotocol; *p; ++p)
        if (static_cast<unsigned char>(*p) < 0x21 || *p == 0x7f || *p == ',') return WH_EINVAL;
    } else if (!handshake::list_contains(req->info.protocols, subprotocol)) {
      return WH_EINVAL;
    }
  }
  if (status == 101 && req->raw && !handshake::valid_key(req->info.key)) return WH_EINVAL;
  std::string extra = headers ? headers : "";
  if (!extra.empty() && (extra.size() < 2 || extra.compare(extra.size() - 2, 2, "\r\n") != 0)) extra += "\r\n";
  if (extra.find("\r\n\r\n") != std::string::npos) return WH_EINVAL;
  // A host that writes its own Content-Length must write the body's.
  const std::string cl = handshake::header_in_block(extra, "content-length");
  if (!cl.empty() && cl != std::to_string(len)) return WH_EINVAL;
  bool expected = false;
  if (!req->answered.compare_exchange_strong(expected, true)) return WH_ESTATE;
  // Read before the answer is handed over: the loop frees `req`.
  const bool gone = status == 101 && req->peer_gone.load(std::memory_order_acquire);
  req->dropped = gone;
  const int rc = guarded([&]() -> int {
    connection* c = req->conn;
    std::string sub = subprotocol ? subprotocol : "";
    std::string b(static_cast<const char*>(body ? body : ""), len);
    c->owner_loop().dispatch([c, req, sub = std::move(sub), extra = std::move(extra), b = std::move(b), status,
                              user_data]() mutable {
      c->answer_upgrade(*req, &sub, std::move(extra), user_data, status, std::move(b));
      delete req;
      c->release();
    });
    return 0;
  });
  return rc == 0 && gone ? WH_ECLOSED : rc;
}

int wh_request_accept(wh_request* r, const char* subprotocol, const char* headers, void* user_data) {
  return answer(r, 101, subprotocol, headers, nullptr, 0, user_data);
}

int wh_request_respond(wh_request* r, int status, const char* headers, const void* body, size_t len) {
  if (status == 101) return WH_EINVAL;
  return answer(r, status, nullptr, headers, body, len, nullptr);
}

// -------------------------------------------------------------- connection

int wh_conn_send(wh_conn* c, const void* data, size_t len, int flags) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->send(data, len, flags); });
}
int wh_conn_ping(wh_conn* c, const void* data, size_t len) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->ping(data, len, false); });
}
int wh_conn_set_mask(wh_conn* c, const unsigned char* key) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->set_mask(key); });
}
int wh_conn_pong(wh_conn* c, const void* data, size_t len) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->ping(data, len, true); });
}
int wh_conn_close(wh_conn* c, int code, const char* reason, size_t len) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->close(code, reason, len); });
}
int wh_conn_terminate(wh_conn* c) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->terminate(); });
}
int wh_conn_buffered(wh_conn* c, size_t* out) {
  if (!c || !out) return WH_EINVAL;
  *out = C(c)->buffered();
  return 0;
}
int wh_conn_flush(wh_conn* c) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->flush_now(); });
}
int wh_conn_pause(wh_conn* c) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->pause(true); });
}
int wh_conn_resume(wh_conn* c) {
  if (!c) return WH_EINVAL;
  return guarded([&]() -> int { return C(c)->pause(false); });
}
int wh_conn_subscribe(wh_conn* c, const char* topic) {
  if (!c || !topic) return WH_EINVAL;
  if (!C(c)->owner_server()) return WH_ENOTSUP;
  return guarded([&]() -> int { return C(c)->owner_server()->subscribe(C(c), topic, true); });
}
int wh_conn_unsubscribe(wh_conn* c, const char* topic) {
  if (!c || !topic) return WH_EINVAL;
  if (!C(c)->owner_server()) return WH_ENOTSUP;
  return guarded([&]() -> int { return C(c)->owner_server()->subscribe(C(c), topic, false); });
}
int wh_conn_set_user_data(wh_conn* c, void* user_data) {
  if (!c) return WH_EINVAL;
  C(c)->set_user_data(user_data);
  return 0;
}
void* wh_conn_user_data(wh_conn* c) { return c ? C(c)->user_data() : nullptr; }
const char* wh_conn_subprotocol(wh_conn* c) { return c ? C(c)->subprotocol().c_str() : nullptr; }
const char* wh_conn_extensions(wh_conn* c) { return c ? C(c)->extensions().c_str() : nullptr; }
const char* wh_conn_remote_address(wh_conn* c) { return c ? C(c)->remote_address() : nullptr; }
int wh_conn_remote_port(wh_conn* c) { return c ? C(c)->remote_port() : WH_EINVAL; }
const char* wh_conn_local_address(wh_conn* c) { return c ? C(c)->local_address() : nullptr; }
int wh_conn_local_port(wh_conn* c) { return c ? C(c)->local_port() : WH_EINVAL; }
int wh_conn_retain(wh_conn* c) {
  if (!c) return WH_EINVAL;
  C(c)->retain();
  return 0;
}
int wh_conn_release(wh_conn* c) {
  if (!c) return WH_EINVAL;
  C(c)->release();
  return 0;
}

// ------------------------------------------------------------------ client

int wh_connect(wh_hub* h, const char* url, const wh_client_options* options, wh_conn** out) {
  if (!h || !url || !out) return WH_EINVAL;
  *out = nullptr;
  wh_client_options o;
  if (!read_options(options, o)) return WH_EINVAL;
  return guarded([&]() -> int {
    connection* c = nullptr;
    int rc = H(h)->connect(url, o, &c);
    if (rc == 0) *out = reinterpret_cast<wh_conn*>(c);
    return rc;
  });
}

int wh_client_adopt(wh_hub* h, int fd, const wh_client_options* options, const char* subprotocol,
                    const char* extensions, const void* head, size_t head_len, wh_conn** out) {
  if (out) *out = nullptr;
  wh_client_options o;
  if (!h || fd < 0 || !out || (!head && head_len) || !read_options(options, o)) {
    if (fd >= 0) ::close(fd);
    return WH_EINVAL;
  }
  return guarded([&]() -> int {
    connection* c = nullptr;
    int rc = H(h)->adopt_client(fd, o, subprotocol, extensions,
                                std::string(static_cast<const char*>(head ? head : ""), head_len), &c);
    if (rc == 0) *out = reinterpret_cast<wh_conn*>(c);
    return rc;
  });
}

}  // extern "C"
