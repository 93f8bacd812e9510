#include "hub.hpp"

#include <cstring>

#include "client.hpp"
#include "connection.hpp"
#include "loop.hpp"
#include "server.hpp"

#include "handshake.hpp"

#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <future>
#include <memory>
#include <thread>

namespace wirehub {

int resolve_config(const wh_limits& l, const wh_deflate_options& d, endpoint_config& c) {
  if (l.handshake_timeout_ms < 0 || l.close_timeout_ms < 0 || l.ping_interval_ms < 0 || l.ping_timeout_ms < 0)
    return WH_EINVAL;
  if (l.max_message_size) c.max_message_size = l.max_message_size;
  if (l.max_header_bytes) {
    if (l.max_header_bytes < 256 || l.max_header_bytes > (1u << 24)) return WH_EINVAL;
    c.max_header_bytes = l.max_header_bytes;
  }
  if (l.high_water) c.high_water = l.high_water;
  c.low_water = l.low_water ? l.low_water : c.high_water / 4;
  if (c.low_water > c.high_water) return WH_EINVAL;
  c.max_buffered = l.max_buffered ? l.max_buffered : (16u << 20) + c.max_message_size;
  if (c.max_buffered < c.high_water) return WH_EINVAL;
  if (l.handshake_timeout_ms) c.handshake_timeout_ms = l.handshake_timeout_ms;
  if (l.close_timeout_ms) c.close_timeout_ms = l.close_timeout_ms;
  c.ping_interval_ms = l.ping_interval_ms;
  c.ping_timeout_ms = l.ping_timeout_ms ? l.ping_timeout_ms : l.ping_interval_ms;

  c.deflate.enabled = d.enabled != 0;
  auto bits = [](int b, int& out) {
    if (b == 0) return true;
    if (b < 8 || b > 15) return false;
    out = b;
    return true;
  };
  if (!bits(d.server_max_window_bits, c.deflate.server_max_window_bits) ||
      !bits(d.client_max_window_bits, c.deflate.client_max_window_bits))
    return WH_EINVAL;
  // A zeroed struct means "defaults", and the default is the shared
  // compressor; ask for context takeover with a negative value.
  c.deflate.server_no_context_takeover = d.server_no_context_takeover >= 0;
  c.deflate.client_no_context_takeover = d.client_no_context_takeover > 0;
  if (d.level < 0 || d.level > 9 || d.mem_level < 0 || d.mem_level > 9) return WH_EINVAL;
  c.deflate.level = d.level ? d.level : 1;
  c.deflate.mem_level = d.mem_level ? d.mem_level : 8;
  c.deflate.threshold = d.threshold ? d.threshold : 1024;
  return 0;
}

int resolve_fragments(int max_fragments, endpoint_config& c) {
  if (max_fragments < -1) return WH_EINVAL;
  c.max_fragments = max_fragments < 0 ? 0 : max_fragments ? static_cast<std::uint32_t>(max_fragments) : 131072;
  return 0;
}

int resolve_chunks(std::size_t max_buffered_chunks, endpoint_config& c) {
  if (max_buffered_chunks == SIZE_MAX) c.max_buffered_chunks = 0;
  else if (max_buffered_chunks > INT_MAX) return WH_EINVAL;
  else c.max_buffered_chunks = max_buffered_chunks ? static_cast<std::uint32_t>(max_buffered_chunks) : 1048576;
  return 0;
}

int resolve_timeouts(int idle_ms, int message_ms, endpoint_config& c) {
  if (idle_ms < 0 || message_ms < -1) return WH_EINVAL;
  c.idle_timeout_ms = idle_ms;
  c.message_timeout_ms = message_ms < 0 ? 0 : message_ms ? message_ms : 60000;
  return 0;
}

hub::hub(const wh_hub_options& o)
    : on_event_(o.on_event), batch_end_((o.flags & WH_HUB_BATCH_END) != 0), user_data_(o.user_data) {
  hosted_ = o.event_mode == WH_EVENTS_HOST;
  if (o.event_mode != WH_EVENTS_CALLBACK) queue_ = std::make_unique<event_queue>(!hosted_);
  const int n = hosted_ ? 1 : o.io_threads > 0 ? o.io_threads : 1;
  for (int i = 0; i < n; ++i) loops_.push_back(std::make_unique<loop>(*this, i));
  if (hosted_) loops_[0]->start_hosted();
  else
    for (auto& l : loops_) l->start();
}

int hub::event_fd() {
  if (hosted_) return loops_[0]->host_fd();
  return queue_->fd();
}

int hub::poll(wh_event* out, int max) {
  if (hosted_) {
    if (!loops_[0]->is_host_thread()) return WH_ESTATE;
    loops_[0]->run_hosted();
  }
  return queue_->poll(out, max);
}

int hub::poll_fd(int fd, wh_event* out, int max) {
  loops_[0]->run_hosted_fd(fd);
  return queue_->poll(out, max);
}

hub::~hub() {
  for (auto& l : loops_) l->stop_and_join();
  if (queue_) queue_->clear();
}

bool hub::on_io_thread() const {
  loop* l = loop::current();
  return l && &l->owner() == this;
}

void hub::emit(const wh_event& ev) {
  if (queue_) {
    queue_->push(ev);
    return;
  }
  if (!on_event_) return;
  on_event_(handle(), &ev, user_data_);
  if (batch_end_ && ev.type != WH_EV_BATCH_END)
    if (loop* l = loop::current()) l->defer_batch_end();
}

bool hub::host_mask(connection* c, std::uint32_t& key) {
  const wh_mask_cb cb = mask_cb_.load(std::memory_order_acquire);
  if (!cb) return false;
  unsigned char k[4] = {0, 0, 0, 0};
  // A host's failure here (a C++ exception through its callback) must not
  // take the I/O thread down: the frame gets a random key instead.
  try {
    cb(handle(), reinterpret_cast<wh_conn*>(c), k, mask_user_data_.load(std::memory_order_acquire));
  } catch (...) {
    return false;
  }
  std::memcpy(&key, k, 4);  // wire order, as wh_conn_set_mask takes it
  return true;
}

void hub::end_batch() {
  wh_event ev{};
  ev.type = WH_EV_BATCH_END;
  on_event_(handle(), &ev, user_data_);
}

loop& hub::next_loop() { return *loops_[rr_.fetch_add(1, std::memory_order_relaxed) % loops_.size()]; }

int hub::listen(const wh_server_options& o, server** out) {
  if (shutting_down_) return WH_ESHUTDOWN;
  endpoint_config cfg;
  // With WH_SERVER_WS_DEFLATE_ANSWER the deflate settings are ws's options,
  // where -1 is a window's `false`; resolve_config takes -1 for no size.
  const bool ws_deflate = (o.flags & WH_SERVER_WS_DEFLATE_ANSWER) != 0;
  wh_deflate_options d = o.deflate;
  if (ws_deflate && d.server_max_window_bits == -1) d.server_max_window_bits = 0;
  if (ws_deflate && d.client_max_window_bits == -1) d.client_max_window_bits = 0;
  int rc = resolve_config(o.limits, d, cfg);
  if (rc) return rc;
  if (ws_deflate) {
    cfg.deflate.ws_answer_rules = true;
    // ws's default keeps the compressor's context unless the client asks.
    cfg.deflate.server_no_context_takeover = o.deflate.server_no_context_takeover > 0;
    cfg.deflate.refuse_server_no_context_takeover = o.deflate.server_no_context_takeover < 0;
    if (o.deflate.server_max_window_bits == -1) cfg.deflate.server_max_window_bits = kNoServerWindowBits;
    if (o.deflate.client_max_window_bits == -1) cfg.deflate.client_max_window_bits = kNoClientWindowBits;
  }
  if (o.max_connections < 0 || o.backlog < 0 || o.max_handshakes < -1) return WH_EINVAL;
  rc = resolve_timeouts(o.idle_timeout_ms, o.message_timeout_ms, cfg);
  if (rc) return rc;
  rc = resolve_fragments(o.max_fragments, cfg);
  if (rc) return rc;
  rc = resolve_chunks(o.max_buffered_chunks, cfg);
  if (rc) return rc;
  cfg.validate_utf8 = !(o.flags & WH_SERVER_SKIP_UTF8);
  cfg.auto_pong = !(o.flags & WH_SERVER_NO_AUTO_PONG);
  cfg.bare_close = (o.flags & WH_SERVER_BARE_CLOSE) != 0;
  auto s = std::make_unique<server>(*this, o, std::move(cfg));
  rc = s->listen(o);
  if (rc) return rc;
  std::lock_guard<std::mutex> lk(mu_);
  servers_.insert(s.get());
  *out = s.release();
  return 0;
}

int hub::connect(const char* url, const wh_client_options& o, connection** out) {
  if (shutting_down_) return WH_ESHUTDOWN;
  auto cfg = std::make_unique<endpoint_config>();
  loop& l = next_loop();
  auto hs = std::make_unique<client_handshake>(l.ioc());
  int rc = prepare_client(url, o, *cfg, *hs);
  if (rc) return rc;
  auto* c = new connection(*this, l, connection::role::client, -1);
  c->cfg_ = cfg.release();
  c->set_user_data(o.user_data);
  track(c);
  c->retain();  // the caller's handle until its WH_EV_CLOSE: see wirehub.h
  l.dispatch([c, hs = std::move(hs)]() mutable {
    c->start_client(std::move(hs));
    c->release();
  });
  *out = c;
  return 0;
}

int hub::adopt_client(int fd, const wh_client_options& o, const char* subprotocol, const char* extensions,
                      std::string head, connection** out) {
  // The hub owns fd from here on, on every path (as wh_server_adopt).
  struct fd_guard {
    int fd;
    ~fd_guard() {
      if (fd >= 0) ::close(fd);
    }
  } guard{fd};
  if (shutting_down_) return WH_ESHUTDOWN;
  auto cfg = std::make_unique<endpoint_config>();
  int rc = resolve_client_config(o, *cfg);
  if (rc) return rc;
  std::string proto = subprotocol ? subprotocol : "";
  std::string ext = extensions ? extensions : "";
  if (!handshake::valid_header_value(proto) || !handshake::valid_header_value(ext)) return WH_EINVAL;
  // The host checked the answer against its offer; the engine still reads
  // the extension parameters it will run with, and refuses what it cannot.
  deflate_params params;
  const bool pmd = !ext.empty();
  if (pmd) {
    std::string why;
    if (!cfg->deflate.enabled || !pmd_client_accept(ext, cfg->deflate, params, why)) return WH_EHANDSHAKE;
  }
  loop& l = next_loop();
  auto* c = new connection(*this, l, connection::role::client, fd);
  guard.fd = -1;
  c->cfg_ = cfg.release();
  c->set_user_data(o.user_data);
  track(c);
  c->retain();  // the caller's handle until its WH_EV_CLOSE, as for wh_connect
  l.dispatch([c, proto = std::move(proto), ext = std::move(ext), params, pmd, head = std::move(head)]() mutable {
    c->start_adopted_client(std::move(proto), std::move(ext), pmd ? &params : nullptr, std::move(head));
    c->release();
  });
  *out = c;
  return 0;
}

void hub::track(connection* c) {
  std::lock_guard<std::mutex> lk(mu_);
  conns_.insert(c);
}

void hub::untrack(connection* c) {
  std::lock_guard<std::mutex> lk(mu_);
  conns_.erase(c);
}

void hub::server_gone(server* s) {
  // Freed on its own loop, after the handler that called us has returned.
  // It stays listed until then, so destroy() frees it if the loop stops first.
  loops_[0]->post([this, s] {
    {
      std::lock_guard<std::mutex> lk(mu_);
      servers_.erase(s);
    }
    delete s;
  });
}

int hub::destroy(int timeout_ms) {
  if (on_io_thread()) return WH_ESTATE;
  // Host mode: only the host thread can run the close handshakes (checked
  // before anything is shut, so a refused call leaves the hub working).
  if (hosted_ && !loops_[0]->is_host_thread()) return WH_ESTATE;
  loop::drop_host_cork(*this);  // what this thread corked still goes out first
  shutting_down_ = true;
  const int t = timeout_ms > 0 ? timeout_ms : 5000;
  // Client connections (servers own theirs), each retained while we use it.
  auto clients = [this] {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<connection*> out(conns_.begin(), conns_.end());
    for (connection* c : out) c->retain();
    return out;
  };
  auto wait_idle = [this](int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (conns_.empty() && servers_.empty()) return;
      }
      if (std::chrono::steady_clock::now() > deadline) return;
      // In host mode nobody else runs the engine: the close handshakes
      // happen here, on the host's thread.
      if (hosted_) loops_[0]->run_hosted_for(2);
      else std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  };
  {
    // Under the lock: a server the application closed earlier may be freed
    // by its loop at any moment, but not while it is still listed.
    std::lock_guard<std::mutex> lk(mu_);
    // Servers drop their own stragglers after t; clients get the same time.
    for (server* s : servers_) s->close(t);
  }
  for (connection* c : clients()) {
    c->close(WH_CLOSE_GOING_AWAY, "going away", 10);
    c->release();
  }
  wait_idle(t + 200);
  for (connection* c : clients()) {  // did not close in time
    c->terminate();
    c->release();
  }
  wait_idle(500);
  // Work already handed to the loops runs before they stop: a close that
  // raced the peer's EOF, a flush. Such a task holds a reference to its
  // connection, and a task dropped unrun would keep it forever (LSan:
  // an adopted client, finished and untracked, its close task still in
  // the inbox). Through the inbox first, then Asio's queue behind what
  // those tasks posted.
  if (!hosted_) {
    std::vector<std::future<void>> drained;
    for (auto& l : loops_) {
      auto done = std::make_shared<std::promise<void>>();
      drained.push_back(done->get_future());
      loop* lp = l.get();
      lp->post([lp, done] { lp->post([done] { done->set_value(); }); });
    }
    for (auto& f : drained) f.wait_for(std::chrono::milliseconds(500));
  }
  for (auto& l : loops_) l->stop_and_join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (server* s : servers_) delete s;
    servers_.clear();
  }
  delete this;
  return 0;
}

}  // namespace wirehub
