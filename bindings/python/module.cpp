// wirehub._wirehub: the Python extension over the C ABI (capi/wirehub.h).
//
// The asyncio package's hub runs in WH_EVENTS_HOST mode: the loop's thread
// runs the engine inside Hub.poll(), which drains a whole batch of events and
// turns it into Python tuples in one go. Events no Python code reads make no
// object at all: pings (the engine sent their pongs) and pongs while no
// ping() waits (Conn.want_pongs), so a peer's flood of them costs the host
// a skipped event each. The blocking client's hub has an I/O thread
// (WH_EVENTS_CALLBACK) that never touches Python: its callback copies each
// event Python reads (the same rule) into this module's own queue, signals
// an eventfd the caller waits on, and pauses the connection's reading once
// queue_high messages are unread (python-websockets' max_queue), so a peer
// cannot grow that queue while the application is not reading. Sends go
// straight to wh_conn_send from the calling thread.
//
// Identity: every connection's wh user_data is the address of its native
// Conn, so an event finds the Python connection object (Conn.owner) without
// a lookup. The hub keeps each Conn (and so its owner) alive until its
// WH_EV_CLOSE has been converted; after that the Conn keeps a retained
// wh_conn so late calls answer WH_ECLOSED instead of touching freed memory.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "wirehub.h"

namespace py = pybind11;

namespace {

// Payloads at least this big are sent with the GIL released (the copy into
// the engine's buffer is then worth letting other threads run).
constexpr size_t kReleaseGilBytes = 64 * 1024;

struct Conn {
  wh_conn* c = nullptr;
  py::object owner;  // the Python connection; dropped after WH_EV_CLOSE
  bool closed = false;
  // Pongs the Python side waits for (its ping() calls still unanswered).
  // While 0 a pong becomes no Python object at all: a peer's unsolicited
  // pongs (a flood of them) cost the host nothing but the engine's event.
  // Set under the GIL, read by a threaded hub's I/O thread too.
  std::atomic<int> want_pongs{0};
  ~Conn() {
    if (c) wh_conn_release(c);
  }
};
using ConnPtr = std::shared_ptr<Conn>;

struct Server {
  wh_server* s = nullptr;  // nullptr once wh_server_close was called
  py::object owner;
};
using ServerPtr = std::shared_ptr<Server>;

struct Hub;

struct Request {
  wh_request* r = nullptr;  // nullptr once answered
  Hub* hub = nullptr;
  std::shared_ptr<bool> hub_alive;  // false once the hub is destroyed: `hub` must not be used
  bool upgrade = false;
  bool usable() const { return r && hub_alive && *hub_alive; }
  // The engine keeps an unanswered request (and its socket) forever: one
  // dropped without an answer is refused here.
  ~Request();
};

// Borrow the bytes of str / bytes / bytearray / memoryview without copying.
// Returns the WH_TEXT/WH_BINARY flag that fits the object's type.
struct View {
  const char* data = nullptr;
  Py_ssize_t len = 0;
  int type = 0;
  Py_buffer buf{};
  bool has_buf = false;
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  explicit View(PyObject* o) {
    if (PyUnicode_Check(o)) {
      data = PyUnicode_AsUTF8AndSize(o, &len);
      if (!data) throw py::error_already_set();
      type = WH_TEXT;
    } else if (PyBytes_Check(o)) {
      data = PyBytes_AS_STRING(o);
      len = PyBytes_GET_SIZE(o);
      type = WH_BINARY;
    } else if (PyObject_CheckBuffer(o)) {
      if (PyObject_GetBuffer(o, &buf, PyBUF_SIMPLE) != 0) throw py::error_already_set();
      has_buf = true;
      data = static_cast<const char*>(buf.buf);
      len = buf.len;
      type = WH_BINARY;
    } else {
      throw py::type_error(std::string("message must be str or bytes-like, not ") + Py_TYPE(o)->tp_name);
    }
  }
  ~View() {
    if (has_buf) PyBuffer_Release(&buf);
  }
};

const char* opt_cstr(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

void fill_limits(wh_limits& l, const py::dict& o) {
  auto get = [&](const char* k, long long d) -> long long {
    if (o.contains(k) && !o[k].is_none()) return o[k].cast<long long>();
    return d;
  };
  l.max_message_size = static_cast<size_t>(get("max_size", 0));
  l.max_header_bytes = static_cast<size_t>(get("max_header_bytes", 0));
  l.high_water = static_cast<size_t>(get("high_water", 0));
  l.low_water = static_cast<size_t>(get("low_water", 0));
  l.max_buffered = static_cast<size_t>(get("max_buffered", 0));
  l.handshake_timeout_ms = static_cast<int>(get("handshake_timeout_ms", 0));
  l.close_timeout_ms = static_cast<int>(get("close_timeout_ms", 0));
  l.ping_interval_ms = static_cast<int>(get("ping_interval_ms", 0));
  l.ping_timeout_ms = static_cast<int>(get("ping_timeout_ms", 0));
}

// The hardening limits (appended option fields), already validated and
// converted to the engine's units by wirehub._runtime.limit_options().
template <class T>
T dget(const py::dict& o, const char* k) {
  return o.contains(k) && !o[k].is_none() ? o[k].cast<T>() : T{};
}

void fill_deflate(wh_deflate_options& d, const py::dict& o) {
  if (o.contains("deflate") && py::bool_(o["deflate"])) {
    d.enabled = 1;
    if (o.contains("deflate_threshold") && !o["deflate_threshold"].is_none())
      d.threshold = o["deflate_threshold"].cast<size_t>();
  }
}

std::string dstr(const py::dict& o, const char* k) {
  if (o.contains(k) && !o[k].is_none()) return o[k].cast<std::string>();
  return std::string();
}

py::object decode_text(const char* data, size_t len) {
  PyObject* s = PyUnicode_DecodeUTF8(data, static_cast<Py_ssize_t>(len), "replace");
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(s);
}

py::object to_bytes(const char* data, size_t len) {
  return py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(data ? data : "", static_cast<Py_ssize_t>(len)));
}

// An event the I/O thread copied for the blocking client: its pointers are
// set to the copies when it is converted. A conn it names is retained, as a
// callback's conn is only valid during the callback.
struct OwnedEvent {
  wh_event e;
  std::string data, headers, status_text;
};

struct Hub {
  wh_hub* h = nullptr;
  int fd = -1;
  std::vector<wh_event> batch;
  // The last poll took as many events as it asked for: more may wait, even
  // when the list it returned is shorter (events nobody wants are dropped).
  bool more = false;
  // Threaded hubs (the blocking client): the callback's queue, guarded by mu.
  bool threaded = false;
  std::mutex mu;
  std::deque<OwnedEvent> queue;
  std::vector<OwnedEvent> taken;  // the batch being converted
  size_t unread = 0;              // messages queued or handed out and not yet consumed()
  size_t queue_high = 0, queue_low = 0;
  bool paused = false;
  // Alive until their WH_EV_CLOSE / WH_EV_SERVER_CLOSED has been converted.
  std::unordered_map<Conn*, ConnPtr> conns;
  std::unordered_map<Server*, ServerPtr> servers;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  py::object watch;  // set_watch()

  Hub(int io_threads, bool hosted, size_t high, size_t low)
      : batch(1024), threaded(!hosted), queue_high(high), queue_low(low) {
    if (threaded) {
      fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) throw std::runtime_error("wirehub: cannot create hub: eventfd failed");
    }
    wh_hub_options o;
    std::memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.io_threads = hosted ? 0 : io_threads;
    o.event_mode = hosted ? WH_EVENTS_HOST : WH_EVENTS_CALLBACK;
    o.on_event = hosted ? nullptr : &Hub::on_io_event;
    o.user_data = this;
    int rc = wh_hub_create(&o, &h);
    if (rc < 0) {
      if (threaded) ::close(fd);
      if (rc == WH_EMFILE) {  // OSError(EMFILE), as socket() would raise
        errno = EMFILE;
        PyErr_SetFromErrno(PyExc_OSError);
        throw py::error_already_set();
      }
      throw std::runtime_error(std::string("wirehub: cannot create hub: ") + wh_strerror(rc));
    }
    if (!threaded) wh_hub_event_fd(h, &fd);
  }

  // Whether an event becomes a Python object. A ping's pong went out
  // already (the engine answers it) and no API reports pings; a pong
  // matters only to a ping() still waiting. The rest always does.
  static bool wanted(const wh_event& e) {
    if (e.type == WH_EV_PING) return false;
    if (e.type == WH_EV_PONG) {
      auto* c = static_cast<Conn*>(e.user_data);
      return c && c->want_pongs.load(std::memory_order_relaxed) > 0;
    }
    return true;
  }

  // The I/O thread, without the GIL.
  static void on_io_event(wh_hub*, const wh_event* ev, void* user_data) {
    auto* self = static_cast<Hub*>(user_data);
    // Not queued at all: what nobody reads would grow this queue with
    // every ping (or pong) a peer sends.
    if (!wanted(*ev)) return;
    OwnedEvent o;
    o.e = *ev;
    if (ev->data && ev->len) o.data.assign(ev->data, ev->len);
    if (ev->headers && ev->headers_len) o.headers.assign(ev->headers, ev->headers_len);
    if (ev->status_text) o.status_text.assign(ev->status_text, ev->status_text_len);
    if (ev->conn) wh_conn_retain(ev->conn);
    std::lock_guard<std::mutex> lock(self->mu);
    if (ev->type == WH_EV_MESSAGE) {
      ++self->unread;
      // Stop reading at the high-water mark: what is queued then is bounded
      // by what the engine already read, not by what the peer sends.
      if (self->queue_high && !self->paused && self->unread >= self->queue_high && ev->conn) {
        self->paused = true;
        wh_conn_pause(ev->conn);
      }
    }
    const bool was_empty = self->queue.empty();
    self->queue.push_back(std::move(o));
    if (was_empty) {
      uint64_t one = 1;
      ssize_t w = ::write(self->fd, &one, sizeof one);
      (void)w;
    }
  }

  // The blocking client consumed one message; True when reading should
  // resume (it fell to the low-water mark while paused).
  bool consumed() {
    std::lock_guard<std::mutex> lock(mu);
    if (unread) --unread;
    if (paused && unread <= queue_low) {
      paused = false;
      return true;
    }
    return false;
  }

  // The blocking client is closing: the peer's close frame must be read, so
  // no more pausing. True when reading was paused (resume it).
  bool stop_pausing() {
    std::lock_guard<std::mutex> lock(mu);
    queue_high = 0;
    const bool was = paused;
    paused = false;
    return was;
  }

  void release_owned(std::deque<OwnedEvent>& q) {
    for (auto& o : q)
      if (o.e.conn) wh_conn_release(o.e.conn);
    q.clear();
  }
  ~Hub() {
    watch = py::object();  // being collected: the loop is not ours to touch now
    destroy(0);
  }

  int destroy(int timeout_ms) {
    if (!h) return 0;
    wh_hub* hh = h;
    h = nullptr;
    *alive = false;
    int rc;
    {
      py::gil_scoped_release nogil;
      rc = wh_hub_destroy(hh, timeout_ms);
    }
    if (threaded) {
      // The I/O thread is gone: nothing adds to the queue any more.
      release_owned(queue);
      for (auto& o : taken)
        if (o.e.conn) wh_conn_release(o.e.conn);
      taken.clear();
      ::close(fd);
      fd = -1;
    }
    // Break the Conn <-> owner cycles of connections that never saw CLOSE.
    for (auto& kv : conns) {
      kv.second->closed = true;
      kv.second->owner = py::none();
    }
    conns.clear();
    for (auto& kv : servers) {
      kv.second->s = nullptr;
      kv.second->owner = py::none();
    }
    servers.clear();
    watch = py::object();  // it holds the runtime that holds us
    return rc;
  }

  void check() const {
    if (!h) throw std::runtime_error("wirehub: hub is closed");
  }

  ConnPtr adopt_shell(py::object owner) {
    auto c = std::make_shared<Conn>();
    c->owner = std::move(owner);
    conns.emplace(c.get(), c);
    return c;
  }

  // (rc, Server|None)
  py::tuple listen(py::object owner, const py::dict& o) {
    check();
    std::string host = dstr(o, "host"), subs = dstr(o, "subprotocols"), cert = dstr(o, "cert_file"),
                key = dstr(o, "key_file");
    auto srv = std::make_shared<Server>();
    wh_server_options so;
    std::memset(&so, 0, sizeof so);
    so.size = sizeof so;
    so.host = opt_cstr(host);
    so.port = o.contains("port") ? o["port"].cast<int>() : 0;
    so.backlog = o.contains("backlog") ? o["backlog"].cast<int>() : 0;
    so.flags = o.contains("flags") ? o["flags"].cast<int>() : 0;
    so.subprotocols = opt_cstr(subs);
    so.max_connections = o.contains("max_connections") ? o["max_connections"].cast<int>() : 0;
    fill_limits(so.limits, o);
    fill_deflate(so.deflate, o);
    so.tls.cert_file = opt_cstr(cert);
    so.tls.key_file = opt_cstr(key);
    so.user_data = srv.get();
    so.max_handshakes = dget<int>(o, "max_handshakes");
    so.idle_timeout_ms = dget<int>(o, "idle_timeout_ms");
    so.message_timeout_ms = dget<int>(o, "message_timeout_ms");
    so.max_memory = dget<size_t>(o, "max_memory");
    wh_server* s = nullptr;
    int rc;
    {
      py::gil_scoped_release nogil;
      rc = wh_server_listen(h, &so, &s);
    }
    if (rc < 0) return py::make_tuple(rc, py::none());
    srv->s = s;
    srv->owner = std::move(owner);
    servers.emplace(srv.get(), srv);
    return py::make_tuple(rc, py::cast(srv));
  }

  // (rc, Conn|None)
  py::tuple connect(py::object owner, const std::string& url, const py::dict& o) {
    check();
    std::string subs = dstr(o, "subprotocols"), headers = dstr(o, "headers"), origin = dstr(o, "origin"),
                ca = dstr(o, "ca_file"), sni = dstr(o, "server_name");
    wh_client_options co;
    std::memset(&co, 0, sizeof co);
    co.size = sizeof co;
    co.subprotocols = opt_cstr(subs);
    co.headers = opt_cstr(headers);
    co.origin = opt_cstr(origin);
    fill_limits(co.limits, o);
    fill_deflate(co.deflate, o);
    co.tls.ca_file = opt_cstr(ca);
    co.tls.insecure = (o.contains("insecure") && py::bool_(o["insecure"])) ? 1 : 0;
    co.tls.server_name = opt_cstr(sni);
    co.idle_timeout_ms = dget<int>(o, "idle_timeout_ms");
    co.message_timeout_ms = dget<int>(o, "message_timeout_ms");
    ConnPtr c = adopt_shell(std::move(owner));
    co.user_data = c.get();
    wh_conn* wc = nullptr;
    int rc = wh_connect(h, url.c_str(), &co, &wc);
    if (rc < 0) {
      conns.erase(c.get());
      c->owner = py::none();
      c->closed = true;
      return py::make_tuple(rc, py::none());
    }
    wh_conn_retain(wc);
    c->c = wc;
    return py::make_tuple(rc, py::cast(c));
  }

  py::object owner_of_conn(const wh_event& e) {
    auto* c = static_cast<Conn*>(e.user_data);
    if (!c) return py::none();
    return c->owner;
  }

  py::object owner_of_server(const wh_event& e) {
    auto* s = static_cast<Server*>(e.user_data);
    if (!s) return py::none();
    return s->owner;
  }

  py::list poll(int max) { return poll_fd(-1, max); }

  // The loop watches the sockets itself while there are at most
  // max_sockets (wh_hub_set_watch): watch(fd, True) / watch(fd, False).
  // None turns it off; only before the first socket.
  void set_watch(py::object fn, int max_sockets) {
    check();
    int rc = wh_hub_set_watch(h, max_sockets, fn.is_none() ? nullptr : &Hub::on_watch, this);
    if (rc < 0) throw std::runtime_error(std::string("wirehub: set_watch: ") + wh_strerror(rc));
    watch = std::move(fn);
  }

  static void on_watch(int fd, int read, void* user_data) {
    // Inside some call on the loop's thread, which may have released the GIL.
    py::gil_scoped_acquire gil;
    auto* self = static_cast<Hub*>(user_data);
    if (!self->watch || self->watch.is_none()) return;
    try {
      self->watch(fd, read != 0);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("wirehub: socket watch");
    }
  }

  // fd, handed out through set_watch(), is readable: its input, then
  // events. fd -1: the hub's descriptor (wh_hub_poll).
  py::list poll_fd(int fd, int max) {
    check();
    if (max <= 0 || max > static_cast<int>(batch.size())) max = static_cast<int>(batch.size());
    if (threaded) return poll_owned(max);
    int n = fd < 0 ? wh_hub_poll(h, batch.data(), max) : wh_hub_poll_fd(h, fd, batch.data(), max);
    if (n < 0) throw std::runtime_error(std::string("wirehub: poll: ") + wh_strerror(n));
    more = n == max;
    return convert(n);
  }

  // Host mode: the events an earlier poll left, without running the engine
  // (no new input is read, so a host that takes everything before it polls
  // again bounds the engine's queue by one turn of input). Needs a watch:
  // wh_hub_poll_fd() with an fd the engine never handed out only moves
  // events. Otherwise, and for threaded hubs, what poll() does.
  py::list take(int max) {
    check();
    if (threaded || !watch || watch.is_none()) return poll(max);
    if (max <= 0 || max > static_cast<int>(batch.size())) max = static_cast<int>(batch.size());
    int n = wh_hub_poll_fd(h, -1, batch.data(), max);
    if (n < 0) throw std::runtime_error(std::string("wirehub: poll: ") + wh_strerror(n));
    more = n == max;
    return convert(n);
  }

  py::list poll_owned(int max) {
    {
      std::lock_guard<std::mutex> lock(mu);
      const size_t n = std::min(queue.size(), static_cast<size_t>(max));
      for (size_t i = 0; i < n; ++i) {
        taken.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      more = !queue.empty();
      if (queue.empty()) {  // readable again at the next event
        uint64_t v;
        ssize_t r = ::read(fd, &v, sizeof v);
        (void)r;
      }
    }
    const int n = static_cast<int>(taken.size());
    for (int i = 0; i < n; ++i) {
      OwnedEvent& o = taken[i];
      batch[i] = o.e;
      // A pointer the engine gave (even to nothing) stays non-null.
      batch[i].data = o.e.data ? o.data.data() : nullptr;
      batch[i].len = o.data.size();
      batch[i].headers = o.e.headers ? o.headers.data() : nullptr;
      batch[i].headers_len = o.headers.size();
      batch[i].status_text = o.e.status_text ? o.status_text.data() : nullptr;
      batch[i].status_text_len = o.status_text.size();
    }
    struct Release {
      std::vector<OwnedEvent>& t;
      ~Release() {
        for (auto& o : t)
          if (o.e.conn) wh_conn_release(o.e.conn);
        t.clear();
      }
    } release{taken};
    return convert(n);
  }

  // A client's handshake response's reason phrase, as the server wrote it
  // (python-websockets' Response.reason_phrase); None where there is none.
  static py::object status_text(const wh_event& e) {
    return e.status_text ? decode_text(e.status_text, e.status_text_len) : py::none();
  }

  py::list convert(int n) {
    py::list out(n);
    int k = 0;  // items made: events nobody wants make none
    for (int i = 0; i < n; ++i) {
      const wh_event& e = batch[i];
      if (!wanted(e)) continue;
      py::object item;
      switch (e.type) {
        case WH_EV_MESSAGE: {
          auto* c = static_cast<Conn*>(e.user_data);
          py::object payload = (e.flags & WH_TEXT) ? decode_text(e.data, e.len) : to_bytes(e.data, e.len);
          item = py::make_tuple(static_cast<int>(WH_EV_MESSAGE), c ? c->owner : py::none(), std::move(payload));
          break;
        }
        case WH_EV_OPEN: {
          auto* c = static_cast<Conn*>(e.user_data);
          if (c && !c->c) {  // a server conn accepted through Request.accept
            c->c = e.conn;
            wh_conn_retain(e.conn);
          }
          if (!c) {
            // Not ours (cannot happen with the upgrade hook always on).
            wh_conn_terminate(e.conn);
            item = py::make_tuple(0, py::none());
            break;
          }
          auto it = conns.find(c);
          // A client's OPEN carries the server's 101 headers.
          item = py::make_tuple(static_cast<int>(WH_EV_OPEN), c->owner,
                                it != conns.end() ? py::cast(it->second) : py::none(),
                                e.headers_len ? py::cast(std::string(e.headers, e.headers_len)) : py::none(),
                                status_text(e));
          break;
        }
        case WH_EV_PONG:  // awaited (wanted()); pings never get here
          item = py::make_tuple(e.type, owner_of_conn(e), to_bytes(e.data, e.len));
          break;
        case WH_EV_DRAIN:
          item = py::make_tuple(static_cast<int>(WH_EV_DRAIN), owner_of_conn(e));
          break;
        case WH_EV_CLOSE: {
          auto* c = static_cast<Conn*>(e.user_data);
          py::object owner = c ? c->owner : py::none();
          item = py::make_tuple(static_cast<int>(WH_EV_CLOSE), owner, e.code, decode_text(e.data, e.data ? e.len : 0), e.error,
                                e.status, decode_text(e.headers, e.headers ? e.headers_len : 0),
                                to_bytes(e.data, e.data ? e.len : 0), status_text(e));
          if (c) {
            c->closed = true;
            if (!c->c && e.conn) {  // closed before OPEN: keep a valid handle for late calls
              c->c = e.conn;
              wh_conn_retain(e.conn);
            }
            c->owner = py::none();
            conns.erase(c);
          }
          break;
        }
        case WH_EV_UPGRADE:
        case WH_EV_HTTP: {
          auto r = std::make_shared<Request>();
          r->r = e.request;
          r->hub = this;
          r->hub_alive = alive;
          r->upgrade = e.type == WH_EV_UPGRADE;
          item = py::make_tuple(e.type, owner_of_server(e), py::cast(r));
          break;
        }
        case WH_EV_SERVER_CLOSED: {
          auto* s = static_cast<Server*>(e.user_data);
          py::object owner = s ? s->owner : py::none();
          item = py::make_tuple(static_cast<int>(WH_EV_SERVER_CLOSED), owner);
          if (s) {
            s->s = nullptr;
            s->owner = py::none();
            servers.erase(s);
          }
          break;
        }
        case WH_EV_ERROR:
          item = py::make_tuple(static_cast<int>(WH_EV_ERROR), owner_of_server(e), e.code, decode_text(e.data, e.data ? e.len : 0));
          break;
        default:
          item = py::make_tuple(0, py::none());
      }
      PyList_SET_ITEM(out.ptr(), k++, item.release().ptr());
    }
    if (k < n && PyList_SetSlice(out.ptr(), k, n, nullptr) != 0) throw py::error_already_set();
    return out;
  }
};

// Once its CLOSE was converted (or the hub destroyed) a conn answers
// WH_ECLOSED here, without reaching an engine that may be gone.
inline bool gone(const Conn& c) { return c.closed || !c.c; }

Request::~Request() {
  if (usable()) wh_request_respond(r, 500, nullptr, nullptr, 0);
}

int conn_send(Conn& c, py::handle msg, int flags) {
  if (gone(c)) return WH_ECLOSED;
  View v(msg.ptr());
  if (!(flags & (WH_TEXT | WH_BINARY))) flags |= v.type;
  if (static_cast<size_t>(v.len) >= kReleaseGilBytes) {
    py::gil_scoped_release nogil;
    return wh_conn_send(c.c, v.data, static_cast<size_t>(v.len), flags);
  }
  return wh_conn_send(c.c, v.data, static_cast<size_t>(v.len), flags);
}

// Send one message to many connections: the conversion to bytes happens once.
// Returns the number of connections it was accepted for.
int broadcast_conns(py::iterable conns, py::handle msg, int flags) {
  View v(msg.ptr());
  if (!(flags & (WH_TEXT | WH_BINARY))) flags |= v.type;
  std::vector<wh_conn*> targets;
  for (py::handle h : conns) {
    py::object native = py::getattr(h, "_native", py::none());
    if (native.is_none()) continue;
    Conn& c = native.cast<Conn&>();
    if (!gone(c)) targets.push_back(c.c);
  }
  int sent = 0;
  py::gil_scoped_release nogil;
  for (wh_conn* c : targets)
    if (wh_conn_send(c, v.data, static_cast<size_t>(v.len), flags) >= 0) ++sent;
  return sent;
}

std::vector<std::pair<std::string, std::string>> parse_headers(const char* p, size_t len) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!p) return out;
  std::string s(p, len);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t eol = s.find("\r\n", pos);
    if (eol == std::string::npos) eol = s.size();
    std::string line = s.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    size_t vs = colon + 1;
    while (vs < line.size() && (line[vs] == ' ' || line[vs] == '\t')) ++vs;
    size_t ve = line.size();
    while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t')) --ve;
    out.emplace_back(name, line.substr(vs, ve - vs));
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_wirehub, m) {
  m.doc() = "Native core of wirehub (pybind11 over the wirehub C ABI). Use the `wirehub` package instead.";

  m.def("version", []() { return std::string(wh_version_string()); }, "Version of the linked engine.");
  m.def("strerror", [](int e) { return std::string(wh_strerror(e)); }, "Message of a WH_E* code.");
  m.def("err_name", [](int e) { return std::string(wh_err_name(e)); }, "Name of a WH_E* code.");
  m.def("parse_headers", [](py::bytes raw) {
    std::string s = raw;
    return parse_headers(s.data(), s.size());
  }, "Split a raw 'Name: value\\r\\n' block into (name, value) pairs.");
  m.def("broadcast", &broadcast_conns, py::arg("connections"), py::arg("message"), py::arg("flags") = 0,
        "Send one message to every connection of an iterable; returns how many accepted it.");

#define WH_CONST(name) m.attr(#name) = static_cast<int>(WH_##name)
  WH_CONST(EV_OPEN); WH_CONST(EV_MESSAGE); WH_CONST(EV_PING); WH_CONST(EV_PONG); WH_CONST(EV_CLOSE);
  WH_CONST(EV_DRAIN); WH_CONST(EV_UPGRADE); WH_CONST(EV_HTTP); WH_CONST(EV_SERVER_CLOSED); WH_CONST(EV_ERROR);
  WH_CONST(TEXT); WH_CONST(BINARY); WH_CONST(COMPRESSED); WH_CONST(NO_COMPRESS); WH_CONST(COMPRESS); WH_CONST(MORE);
  WH_CONST(SERVER_UPGRADE_HOOK); WH_CONST(SERVER_HTTP); WH_CONST(SERVER_IPV6_ONLY); WH_CONST(SERVER_REUSE_PORT);
  WH_CONST(SENT); WH_CONST(QUEUED);
  WH_CONST(CLOSE_NORMAL); WH_CONST(CLOSE_GOING_AWAY); WH_CONST(CLOSE_PROTOCOL_ERROR);
  WH_CONST(CLOSE_UNSUPPORTED_DATA); WH_CONST(CLOSE_NO_STATUS); WH_CONST(CLOSE_ABNORMAL);
  WH_CONST(CLOSE_INVALID_DATA); WH_CONST(CLOSE_POLICY); WH_CONST(CLOSE_TOO_BIG);
  WH_CONST(CLOSE_MANDATORY_EXTENSION); WH_CONST(CLOSE_INTERNAL_ERROR); WH_CONST(CLOSE_SERVICE_RESTART);
  WH_CONST(CLOSE_TRY_AGAIN_LATER); WH_CONST(CLOSE_BAD_GATEWAY);
#define WH_ERR_CONST(name, value, msg) m.attr(#name) = static_cast<int>(value);
  WH_ERRNO_MAP(WH_ERR_CONST)
#undef WH_ERR_CONST
#undef WH_CONST

  py::class_<Conn, ConnPtr>(m, "Conn", "Native handle of one connection (retained until garbage-collected).")
      .def("send", &conn_send, py::arg("message"), py::arg("flags") = 0,
           "wh_conn_send; returns SENT, QUEUED or a negative WH_E* code.")
      .def("ping", [](Conn& c, py::bytes data) {
        if (gone(c)) return static_cast<int>(WH_ECLOSED);
        std::string s = data;
        return wh_conn_ping(c.c, s.data(), s.size());
      })
      .def("pong", [](Conn& c, py::bytes data) {
        if (gone(c)) return static_cast<int>(WH_ECLOSED);
        std::string s = data;
        return wh_conn_pong(c.c, s.data(), s.size());
      })
      .def("close", [](Conn& c, int code, const std::string& reason) {
        if (gone(c)) return static_cast<int>(WH_ECLOSED);
        return wh_conn_close(c.c, code, reason.data(), reason.size());
      })
      .def("terminate", [](Conn& c) { return gone(c) ? static_cast<int>(WH_ECLOSED) : wh_conn_terminate(c.c); })
      .def("pause", [](Conn& c) { return gone(c) ? static_cast<int>(WH_ECLOSED) : wh_conn_pause(c.c); })
      .def("resume", [](Conn& c) { return gone(c) ? static_cast<int>(WH_ECLOSED) : wh_conn_resume(c.c); })
      .def("subscribe", [](Conn& c, const std::string& t) {
        return gone(c) ? static_cast<int>(WH_ECLOSED) : wh_conn_subscribe(c.c, t.c_str());
      })
      .def("unsubscribe", [](Conn& c, const std::string& t) {
        return gone(c) ? static_cast<int>(WH_ECLOSED) : wh_conn_unsubscribe(c.c, t.c_str());
      })
      .def_property("want_pongs", [](Conn& c) { return c.want_pongs.load(std::memory_order_relaxed); },
                    [](Conn& c, int n) { c.want_pongs.store(n < 0 ? 0 : n, std::memory_order_relaxed); },
                    "Pongs awaited (ping() calls unanswered); while 0, pongs are not delivered")
      .def("buffered", [](Conn& c) {
        size_t n = 0;
        if (!c.c) return size_t(0);
        wh_conn_buffered(c.c, &n);
        return n;
      })
      .def_property_readonly("subprotocol", [](Conn& c) {
        const char* s = c.c ? wh_conn_subprotocol(c.c) : nullptr;
        return std::string(s ? s : "");
      })
      .def_property_readonly("extensions", [](Conn& c) {
        const char* s = c.c ? wh_conn_extensions(c.c) : nullptr;
        return std::string(s ? s : "");
      })
      .def_property_readonly("remote_address", [](Conn& c) -> py::object {
        if (!c.c) return py::none();
        const char* a = wh_conn_remote_address(c.c);
        return py::make_tuple(std::string(a ? a : ""), wh_conn_remote_port(c.c));
      })
      .def_property_readonly("local_address", [](Conn& c) -> py::object {
        if (!c.c) return py::none();
        const char* a = wh_conn_local_address(c.c);
        return py::make_tuple(std::string(a ? a : ""), wh_conn_local_port(c.c));
      });

  py::class_<Server, ServerPtr>(m, "Server", "Native handle of one listening server.")
      .def_property_readonly("port", [](Server& s) { return s.s ? wh_server_port(s.s) : -1; })
      .def_property_readonly("connections", [](Server& s) { return s.s ? wh_server_connections(s.s) : 0; })
      .def("close", [](Server& s, int timeout_ms) {
        if (!s.s) return static_cast<int>(WH_ESHUTDOWN);
        wh_server* sv = s.s;
        // The handle must not be used once close() has returned.
        s.s = nullptr;
        return wh_server_close(sv, timeout_ms);
      })
      .def("publish", [](Server& s, const std::string& topic, py::handle msg, int flags, Conn* except) {
        if (!s.s) return static_cast<int>(WH_ESHUTDOWN);
        View v(msg.ptr());
        if (!(flags & (WH_TEXT | WH_BINARY))) flags |= v.type;
        wh_conn* ex = except ? except->c : nullptr;
        py::gil_scoped_release nogil;
        return wh_server_publish(s.s, topic.c_str(), v.data, static_cast<size_t>(v.len), flags, ex);
      }, py::arg("topic"), py::arg("message"), py::arg("flags") = 0, py::arg("except_") = nullptr)
      .def("broadcast", [](Server& s, py::handle msg, int flags, Conn* except) {
        if (!s.s) return static_cast<int>(WH_ESHUTDOWN);
        View v(msg.ptr());
        if (!(flags & (WH_TEXT | WH_BINARY))) flags |= v.type;
        wh_conn* ex = except ? except->c : nullptr;
        py::gil_scoped_release nogil;
        return wh_server_broadcast(s.s, v.data, static_cast<size_t>(v.len), flags, ex);
      }, py::arg("message"), py::arg("flags") = 0, py::arg("except_") = nullptr)
      // Blocks until Redis answers (up to connect_timeout_ms): called off the
      // loop's thread, without the GIL. The caller keeps the server open
      // until it returns.
      .def("set_broker", [](Server& s, const std::string& url, py::object prefix, py::object ca_file,
                            bool insecure, int connect_timeout_ms, size_t max_pending) {
        if (!s.s) return static_cast<int>(WH_ESHUTDOWN);
        const bool has_prefix = !prefix.is_none(), has_ca = !ca_file.is_none();
        const std::string pfx = has_prefix ? prefix.cast<std::string>() : std::string();
        const std::string ca = has_ca ? ca_file.cast<std::string>() : std::string();
        wh_broker_options bo;
        std::memset(&bo, 0, sizeof bo);
        bo.size = sizeof bo;
        bo.url = url.c_str();
        bo.prefix = has_prefix ? pfx.c_str() : nullptr;
        bo.ca_file = has_ca ? ca.c_str() : nullptr;
        bo.insecure = insecure ? 1 : 0;
        bo.connect_timeout_ms = connect_timeout_ms;
        bo.max_pending = max_pending;
        wh_server* sv = s.s;
        py::gil_scoped_release nogil;
        return wh_server_set_broker(sv, &bo);
      }, py::arg("url"), py::arg("prefix") = py::none(), py::arg("ca_file") = py::none(),
         py::arg("insecure") = false, py::arg("connect_timeout_ms") = 0, py::arg("max_pending") = 0)
      .def("broker_stats", [](Server& s) -> py::object {
        if (!s.s) return py::none();
        wh_broker_stats st;
        std::memset(&st, 0, sizeof st);
        st.size = sizeof st;
        if (wh_server_broker_stats(s.s, &st) < 0) return py::none();
        return py::make_tuple(st.connected != 0, st.channels, st.published, st.received, st.dropped, st.malformed,
                              st.reconnects);
      }, "(connected, channels, published, received, dropped, malformed, reconnects), None without a broker");

  py::class_<Request, std::shared_ptr<Request>>(m, "Request", "An upgrade or plain HTTP request waiting for an answer.")
      .def_readonly("upgrade", &Request::upgrade)
      .def("info", [](Request& r) -> py::object {
        if (!r.usable()) return py::none();
        size_t hl = 0;
        const char* h = wh_request_headers(r.r, &hl);
        return py::make_tuple(std::string(wh_request_method(r.r)), std::string(wh_request_target(r.r)),
                              std::string(wh_request_path(r.r)), std::string(wh_request_query(r.r)),
                              parse_headers(h, hl), std::string(wh_request_remote_address(r.r)),
                              wh_request_remote_port(r.r), std::string(wh_request_subprotocols(r.r)));
      }, "(method, target, path, query, [(name, value)], remote_address, remote_port, subprotocols)")
      .def("accept", [](Request& r, py::object subprotocol, const std::string& headers, py::object owner) -> py::tuple {
        if (!r.usable()) return py::make_tuple(static_cast<int>(WH_ESTATE), py::none());
        std::string sub = subprotocol.is_none() ? std::string() : subprotocol.cast<std::string>();
        ConnPtr c = r.hub->adopt_shell(std::move(owner));
        int rc = wh_request_accept(r.r, opt_cstr(sub), opt_cstr(headers), c.get());
        // Answered on success, and on WH_ECLOSED (the peer left while the
        // request waited: the engine dropped it); any other refused accept
        // can still be responded to.
        if (rc >= 0 || rc == WH_ESTATE || rc == WH_ECLOSED) r.r = nullptr;
        if (rc < 0) {
          r.hub->conns.erase(c.get());
          c->owner = py::none();
          c->closed = true;
          return py::make_tuple(rc, py::none());
        }
        return py::make_tuple(rc, py::cast(c));
      })
      .def("respond", [](Request& r, int status, const std::string& headers, py::bytes body) {
        if (!r.usable()) return static_cast<int>(WH_ESTATE);
        std::string b = body;
        int rc = wh_request_respond(r.r, status, opt_cstr(headers), b.data(), b.size());
        if (rc >= 0 || rc == WH_ESTATE) r.r = nullptr;
        return rc;
      });

  py::class_<Hub>(m, "Hub", "One engine hub in queue or host mode; poll() it when fd is readable.")
      .def(py::init<int, bool, size_t, size_t>(), py::arg("io_threads") = 1, py::arg("hosted") = false,
           py::arg("queue_high") = 0, py::arg("queue_low") = 0,
           "hosted=True: no I/O thread; the creating thread runs the engine in poll(). Otherwise "
           "I/O threads queue the events for poll() and pause a connection's reading at queue_high "
           "unread messages (0: never) until consumed() brings them down to queue_low")
      .def("consumed", &Hub::consumed,
           "A threaded hub's message was consumed; True when the connection should resume reading")
      .def("stop_pausing", &Hub::stop_pausing,
           "A threaded hub's connection is closing: never pause again; True if it was paused")
      .def_property_readonly("unread", [](Hub& h) {
        std::lock_guard<std::mutex> lock(h.mu);
        return h.unread;
      }, "A threaded hub's messages queued or handed out and not yet consumed()")
      .def_readonly("fd", &Hub::fd)
      .def_readonly("more", &Hub::more,
                    "The last poll took all it asked for: poll again (its list may be shorter: pings, and "
                    "pongs nobody awaits, are not delivered)")
      .def_property_readonly("closed", [](Hub& h) { return h.h == nullptr; })
      .def("poll", &Hub::poll, py::arg("max") = 1024)
      .def("set_watch", &Hub::set_watch, py::arg("watch"), py::arg("max_sockets"),
           "Host mode: watch(fd, on) while at most max_sockets sockets exist (wh_hub_set_watch)")
      .def("poll_fd", &Hub::poll_fd, py::arg("fd"), py::arg("max") = 1024,
           "A socket handed out by set_watch is readable: run its input, then poll()")
      .def("take", &Hub::take, py::arg("max") = 1024,
           "Host mode with a watch: the events waiting, without running the engine (no new input)")
      .def("cork", [](Hub& h) { return h.h ? wh_hub_cork(h.h) : WH_ESTATE; },
           "Hold this thread's writes until uncork() (wh_hub_cork)")
      .def("uncork", [](Hub& h) { return h.h ? wh_hub_uncork(h.h) : WH_ESTATE; })
      .def("listen", &Hub::listen)
      .def("connect", &Hub::connect)
      .def("destroy", &Hub::destroy, py::arg("timeout_ms") = 0)
      .def_property_readonly("live_connections", [](Hub& h) { return h.conns.size(); })
      .def_property_readonly("live_servers", [](Hub& h) { return h.servers.size(); });
}
