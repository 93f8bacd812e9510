#include "connection.hpp"

#include "client.hpp"
#include "hub.hpp"
#include "loop.hpp"
#include "server.hpp"

#include <boost/asio/post.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace wirehub {

namespace bwd = boost::beast::websocket::detail;
using frame::header;

namespace {
const endpoint_config& default_config() {
  static const endpoint_config c;
  return c;
}
}  // namespace

// Issue 11's memory bar: an idle connection is this object and little
// else. It was 520 bytes before the cold fields moved to side_state.
static_assert(sizeof(connection) <= 280, "connection grew: move what idle connections do not use to side_state");

connection::side_state::side_state() = default;
connection::side_state::~side_state() = default;

hub& connection::owner_hub() const { return loop_.owner(); }

const std::string& connection::no_name() {
  static const std::string empty;
  return empty;
}

connection::connection(hub& h, loop& l, role r, int fd)
    : loop_(l),
      fd_(fd),
      rx_(r == role::server ? protocol::role::server : protocol::role::client, default_config()),
      role_(r),
      pmd_server_no_ctx_(false),
      pmd_client_no_ctx_(false),
      write_armed_(false),
      paused_(false),
      peer_hup_(false),
      close_sent_(false),
      close_received_(false),
      failed_(false),
      close_answer_waits_(false),
      read_posted_(false),
      close_after_flush_(false),
      shut_wr_(false),
      ping_pending_(false),
      opened_(false),
      tls_want_write_(false),
      tls_handshaking_(false),
      input_held_(false),
      queue_held_(false),
      pong_pending_(false),
      handshake_counted_(false),
      terminating_(false),
      deflate_active_(false) {
  (void)h;  // the loop's owner: loop_.owner()
}

connection::~connection() {
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);  // never started (hub torn down first)
  delete topics_;
  delete[] peer_text_.load(std::memory_order_relaxed);
  if (role_ == role::client) delete cfg_;
  forget_local_address();
}

void connection::drop_side() {
  // Only while open: a handshake, a close and their callers hold on to
  // what is in it. Everything below is what an open connection may still
  // need from it.
  if (!side_ || state_ != state::open) return;
  const side_state& s = *side_;
  if (s.shs || s.chs || s.deflate || !s.deferred.empty() || pong_pending_ || !s.pong_owed.empty() ||
      !s.close_reason.empty() || s.park_due || ping_pending_ || timers_on_rx())
    return;
  side_.reset();
}

void connection::release() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

bool connection::peer_keeps_context() const {
  return role_ == role::server ? !pmd_client_no_ctx_ : !pmd_server_no_ctx_;
}
bool connection::we_keep_context() const {
  return role_ == role::server ? !pmd_server_no_ctx_ : !pmd_client_no_ctx_;
}

// ------------------------------------------------------------------ raw I/O

long connection::io_read(std::uint8_t* p, std::size_t n) {
  if (!ssl_) {
    for (;;) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
  }
  ERR_clear_error();
  int r = SSL_read(ssl_, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
  if (r > 0) return r;
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
      tls_want_write_ = true;
      arm_write();
      return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      return errno ? -errno : 0;
    default:
      return -EPROTO;
  }
}

long connection::io_write(const std::uint8_t* p, std::size_t n) {
  if (!ssl_) {
    for (;;) {
      ssize_t r = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
  }
  ERR_clear_error();
  int r = SSL_write(ssl_, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
  if (r > 0) return r;
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_WRITE:
      return -EAGAIN;
    case SSL_ERROR_WANT_READ:
      return -EAGAIN;  // a TLS record must be read first: on_readable flushes again
    default:
      return -EPIPE;
  }
}

void connection::arm_write() {
  if (state_ == state::closed) return;
  write_armed_ = true;  // the next EPOLLOUT edge calls on_writable()
}

void connection::on_io(std::uint32_t events) {
  if (state_ == state::closed) return;
  try {
    if ((events & EPOLLOUT) && write_armed_) {
      write_armed_ = false;
      on_writable();
      if (state_ == state::closed) return;
    }
    // A short read usually means drained, but a FIN that arrived with the
    // data raises no further edge: when the peer hung up, read on until EOF.
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_hup_ = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable();
  } catch (const std::bad_alloc&) {
    fail_internal(WH_ENOMEM);
  } catch (...) {
    fail_internal(WH_EINTERNAL);
  }
}

void connection::fail_internal(int error) {
  // Serving this connection failed (out of memory, an exception): it ends,
  // with 1011 if it was open, and nothing else does.
  if (state_ == state::closed) return;
  if (opened_ && !failed_) {
    fail(WH_CLOSE_INTERNAL_ERROR, "internal error", error);
    // Its buffers may be what ran out: do not wait on the peer.
    try {
      flush();
    } catch (...) {
    }
  }
  if (state_ != state::closed) finish(error);
}

void connection::on_writable() {
  if (state_ == state::closed) return;
  if (tls_handshaking_) {
    tls_handshake_step();
    return;
  }
  flush();
  if (tls_want_write_) {
    tls_want_write_ = false;
    on_readable();
  }
}

bool connection::tls_handshake_step() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    tls_handshaking_ = false;
    if (role_ == role::client) client_send_request();
    else on_readable();
    return true;
  }
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      return false;  // the next EPOLLIN edge continues the handshake
    case SSL_ERROR_WANT_WRITE:
      arm_write();
      return false;
    default: {
      char buf[256];
      unsigned long e = ERR_get_error();
      const long verify = role_ == role::client ? SSL_get_verify_result(ssl_) : X509_V_OK;
      if (verify != X509_V_OK) {
        // Which check failed, in OpenSSL's words and number (as Node's tls
        // reports it: the number names the error code a binding gives).
        std::snprintf(buf, sizeof buf, "certificate verify failed: %s (X509 %ld)",
                      X509_verify_cert_error_string(verify), verify);
      } else if (e) {
        ERR_error_string_n(e, buf, sizeof buf);
      } else {
        std::snprintf(buf, sizeof buf, "TLS handshake failed");
      }
      if (role_ == role::client) client_fail(WH_ETLS, buf);
      else finish(WH_ETLS);
      return false;
    }
  }
}

void connection::input_interest(bool on) {
  if (!loop_.has_watch() || fd_ < 0 || read_off_ != on) return;
  read_off_ = !on;
  if (loop_.host_watches()) loop_.host_watch(fd_, on);
}

void connection::on_readable() {
  if (state_ == state::closed) return;
  if (tls_handshaking_) {
    tls_handshake_step();
    return;
  }
  if (state_ == state::connecting) return;
  // Whatever this read leads to (a failure, the application's terminate)
  // may drop the engine's reference: keep this alive until the cork below
  // is settled. Callers from the epoll loop hold one already; the first
  // read of an accepted socket (start_server) does not.
  struct keep_alive {
    connection* c;
    explicit keep_alive(connection* cc) : c(cc) { c->retain(); }
    ~keep_alive() { c->release(); }
  } alive(this);
  struct cork_guard {
    connection* c;
    bool owner;
    explicit cork_guard(connection* cc) : c(cc), owner(cc->loop_.corked() == nullptr) {
      if (owner) c->loop_.set_corked(c);
    }
    ~cork_guard() {
      if (owner) c->uncork();
    }
  } cork(this);
  turn_events_ = 0;
  // Read until the socket is drained: epoll is edge-triggered. A very busy
  // peer gets 8 reads (4 MiB) or 4096 events (a flood of tiny frames is
  // thousands of events a read), then the others (and in host mode the
  // host) get their turn and we come back.
  for (int round = 0;; ++round) {
    if (turn_events_ >= max_turn_events || round == 8) {
      // What this read left waits in the protocol: come back for it even
      // when the socket has nothing new (no edge, no level). After 8 full
      // reads a level-triggered host comes back by itself.
      if (turn_events_ < max_turn_events && loop_.host_watches()) return;
      // One continuation at a time: a turn that ran from one must not add
      // another each time, or the turns grow (fragment flood: 40 -> 345 ms).
      if (!read_posted_) {
        read_posted_ = true;
        retain();
        loop_.post_next_turn([this] {
          read_posted_ = false;
          on_readable();
          release();
        });
      }
      return;
    }
    if (!paused_ && state_ == state::open && pause_requested_.load(std::memory_order_relaxed)) paused_ = true;
    if ((paused_ && state_ == state::open) || (shs() && shs()->pending && !read_while_pending())) {
      input_interest(false);
      return;
    }
    // A peer that does not read what we send is not read from either, until
    // it has taken most of it (after_write_progress resumes us).
    if (!input_held_ && backed_up()) input_held_ = true;
    if (input_held_ || queue_held_) {
      input_interest(false);
      return;
    }
    // Input a stopped feed kept (the output backed up mid-read) goes first.
    if (rx_.stopped() && rx_reading()) {
      rx_input(nullptr, 0);
      if (state_ == state::closed) return;
      if (rx_.stopped()) continue;  // stopped again: the hold above applies
    }
    if (read_off_) input_interest(true);
    long n;
    std::size_t cap;
    // A large frame in progress is read straight into the protocol's own
    // buffer (one copy per large message); everything else into the loop's
    // shared buffer, parsed in place.
    const auto win = rx_reading() ? rx_.window(loop::rbuf_size) : std::pair<std::uint8_t*, std::size_t>{};
    if (win.first) {
      cap = win.second;
      n = io_read(win.first, cap);
      if (n > 0) {
        if (timers_on_rx()) side().last_rx = now_ms();
        rx_input(nullptr, static_cast<std::size_t>(n), true);
      }
    } else {
      std::uint8_t* p = loop_.rbuf();
      cap = loop::rbuf_size;
      n = io_read(p, cap);
      if (n > 0) {
        if (timers_on_rx()) side().last_rx = now_ms();
        if (state_ == state::handshaking) {
          if (role_ == role::server) server_handshake_input(p, static_cast<std::size_t>(n));
          else client_handshake_input(p, static_cast<std::size_t>(n));
        } else if (rx_reading()) {
          rx_input(p, static_cast<std::size_t>(n));
        }
        // Else closing: the rest of the input is discarded until the peer's EOF.
      }
    }
    if (state_ == state::closed) return;
    if (n > 0) {
      // Part of this read waits in the protocol (the turn's share is used,
      // or the host or the peer is behind): the checks at the top decide
      // when it goes on. A short read must not end the turn here, or those
      // bytes would wait for input that may never come.
      if (rx_.stopped()) continue;
      if (!ssl_ && !peer_hup_ && static_cast<std::size_t>(n) < cap) break;
      continue;
    }
    if (n == 0) {
      on_eof();
      return;
    }
    if (n == -EAGAIN) break;
    finish(n == -ECONNRESET ? WH_ERESET : WH_EIO);
    return;
  }
  // TLS: a write may have waited for this read.
  if (ssl_ && woff_ < wbuf_.size() && !write_armed_) flush();
}

// The application decides on the request: reading goes on, so that the
// peer's FIN is seen (ws drops a client that half-closed meanwhile, see
// answer_upgrade), keeping what the client sent behind its request up to
// the header limit; past that, and after the FIN, reading stops until the
// answer.
bool connection::read_while_pending() {
  const server_handshake& hs = *shs();
  return !hs.peer_eof && hs.buf.size() - hs.consumed < cfg_->max_header_bytes;
}

void connection::on_eof() {
  if (role_ == role::server && !opened_) {
    if (shs() && shs()->pending) {
      // The answer decides: a refusal is still written (the peer may read),
      // an accept is dropped.
      shs()->peer_eof = true;
      shs()->pending->peer_gone.store(true, std::memory_order_release);
      input_interest(false);
      return;
    }
    finish(0);
    return;
  }
  if (role_ == role::client && !opened_) {
    client_handshake* hs = chs();
    if (hs && hs->parser.is_header_done() && hs->parser.get().result_int() != 101) {
      capture_response(*hs);
      client_fail(WH_ESTATUS, "Unexpected server response: " + std::to_string(hs->status));
      return;
    }
    client_fail(WH_EHANDSHAKE, "Connection closed during the handshake");
    return;
  }
  // A close still waiting for the host counts as answered: the peer is gone.
  if (close_received_ && (close_sent_ || close_answer_waits_)) finish(failed_ ? error_ : 0);
  else finish(error_ ? int(error_) : int(WH_ERESET));
}

// ------------------------------------------------------------------- frames

// What the protocol core reports, acted on by the connection. Built on the
// stack for each feed: a connection keeps no handler object.
struct rx_events final : protocol::handler {
  connection& c;
  explicit rx_events(connection& cc) : c(cc) {}
  bool on_message(const std::uint8_t* data, std::size_t len, int flags) override {
    return c.deliver(data, len, flags);
  }
  bool on_ping(const std::uint8_t* data, std::size_t len) override {
    c.on_peer_ping(data, len);
    return c.state_ != connection::state::closed && !c.failed_ && !c.hold_for_host() &&
           ++c.turn_events_ < connection::max_turn_events;
  }
  bool on_pong(const std::uint8_t* data, std::size_t len) override {
    if (c.ping_pending_) {
      c.ping_pending_ = false;
      if (c.state_ == connection::state::open) c.next_deadline(now_ms());
    }
    c.emit_simple(WH_EV_PONG, data, len);
    return c.state_ != connection::state::closed && !c.failed_ && !c.hold_for_host() &&
           ++c.turn_events_ < connection::max_turn_events;
  }
  void on_close(unsigned code, std::string_view reason) override { c.on_peer_close(code, reason); }
  void on_fail(int close_code, std::string_view reason, int error) override { c.fail(close_code, reason, error); }
  void* place_payload(std::size_t len) override { return c.owner_hub().place_payload(len); }
  bool on_fragment() override { return ++c.turn_events_ < connection::max_turn_events; }
  bool reserve(std::size_t more) override { return !c.server_ || c.server_->reserve(more); }
  void unreserve(std::size_t less) override {
    if (c.server_) c.server_->unreserve(less);
  }
};

bool connection::rx_reading() const {
  return state_ != state::handshaking && state_ != state::connecting && state_ != state::closed && !shut_wr_ &&
         !close_received_ && !failed_ && !terminating_ && !rx_.done();
}

void connection::rx_input(std::uint8_t* p, std::size_t n, bool window) {
  rx_events ev(*this);
  const bool was_mid = rx_.mid_message();
  if (window) rx_.feed_window(n, ev);
  else rx_.feed(p, n, ev);
  if (state_ == state::closed) return;
  // The message timeout runs from the first byte of a message to its last.
  const bool mid = rx_.mid_message();
  if (mid != was_mid && cfg_->message_timeout_ms) {
    msg_started_ = mid ? now_ms() : 0;
    if (state_ == state::open) next_deadline(now_ms());
  }
  if (!mid) rx_.trim();
  if (rx_.inflating()) deflate_used();
  if (!mid) drop_side();
}

void connection::deflate_used() {
  // zlib's state (~40 KB inflating, ~200 KB deflating) is parked once the
  // connection has had no compressed traffic for a second: restoring it
  // costs a few microseconds, too much per message, nothing per second.
  deflate_active_ = true;
  if (state_ == state::open && !side().park_due) {
    const std::uint64_t now = now_ms();
    side_->park_due = now + 1000;
    next_deadline(now);
  }
}

void connection::rx_leftover(std::string bytes) {
  if (bytes.empty() || !rx_reading()) return;
  rx_input(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size());
}

void connection::rx_close() {
  rx_events ev(*this);
  rx_.close(ev);
}

void connection::emit_simple(int type, const std::uint8_t* data, std::size_t len) {
  wh_event ev{};
  ev.type = type;
  ev.conn = reinterpret_cast<wh_conn*>(this);
  ev.server = reinterpret_cast<wh_server*>(server_);
  ev.data = reinterpret_cast<const char*>(data);
  ev.len = len;
  ev.user_data = user_data();
  owner_hub().emit(ev);
}

void connection::on_peer_ping(const std::uint8_t* data, std::size_t len) {
  if (state_ == state::open && !close_sent_ && cfg_->auto_pong) {
    // A peer that pings and never reads must not grow our send buffer: past
    // high water only the latest ping is answered, once it reads again.
    if (pending_bytes() > cfg_->high_water) {
      side().pong_owed.assign(reinterpret_cast<const char*>(data), len);
      pong_pending_ = true;
    } else {
      queue_frame(frame::op_pong, true, false, data, len);
    }
  }
  emit_simple(WH_EV_PING, data, len);
}

void connection::on_peer_close(unsigned code, std::string_view reason) {
  // A batching host answers the messages before this close at the batch's
  // end: end it now, while those answers can still be sent.
  loop_.batch_point();
  close_received_ = true;
  close_code_ = static_cast<std::uint16_t>(code);
  set_close_reason(std::string(reason));
  if (!close_sent_ && state_ == state::open && owner_hub().queue()) {
    // A host that polls has not run its handlers for the messages before
    // this close yet; a reply they send (request, then close: ws delivers
    // it) must go out before our close frame. The queue tells us when the
    // host has taken them; meanwhile nothing more is read.
    close_answer_waits_ = true;
    owner_hub().queue()->push_close_marker(this);
    return;
  }
  answer_peer_close();
}

void connection::host_took_close() {
  retain();
  loop_.post([this] {
    answer_peer_close();
    release();
  });
}

void connection::answer_peer_close() {
  close_answer_waits_ = false;
  if (state_ == state::closed) return;
  if (!close_sent_) {
    // Echo code and reason, as ws does: the initiator learns both back.
    queue_close(close_code_ == WH_CLOSE_NO_STATUS ? 0 : static_cast<int>(close_code_), close_reason());
    close_sent_ = true;
  }
  state_ = state::closing;
  api_state_.store(2, std::memory_order_release);
  deadline_ = now_ms() + cfg_->close_timeout_ms;
  // The server closes TCP first (RFC 6455 7.1.1); a client waits for it.
  if (role_ == role::server) close_after_flush_ = true;
  mark_dirty();
}

bool connection::deliver(const std::uint8_t* data, std::size_t len, int flags) {
  wh_event ev{};
  ev.type = WH_EV_MESSAGE;
  ev.flags = flags;
  ev.conn = reinterpret_cast<wh_conn*>(this);
  ev.server = reinterpret_cast<wh_server*>(server_);
  ev.data = reinterpret_cast<const char*>(data);
  ev.len = len;
  ev.user_data = user_data();
  owner_hub().emit(ev);
  if (state_ == state::closed || failed_ || close_received_ || terminating_) return false;
  // A pause holds input while open (once closing, the rest is read as usual).
  if (state_ == state::open && (paused_ || pause_requested_.load(std::memory_order_relaxed))) {
    paused_ = true;
    return false;
  }
  // What the application answered is not going out: stop reading here, the
  // rest of this input waits in the protocol (python-websockets' model: the
  // handler's send waits for the drain, and so does its next receive).
  if (backed_up()) {
    input_held_ = true;
    return false;
  }
  return !hold_for_host() && ++turn_events_ < max_turn_events;
}

bool connection::backed_up() {
  // Servers only: a client reads its one server whatever it sends, so two
  // wirehub ends that both write a lot before reading never wait for each
  // other (each holding its input until the other reads).
  if (role_ != role::server || state_ != state::open || buffered() <= cfg_->high_water) return false;
  // Bytes only waiting for this turn's write are not backed up: write them
  // now and see what the socket refuses (a large echo goes out at once).
  if (loop_.corked() == this) {
    uncork();
    if (state_ != state::closed) loop_.set_corked(this);
  } else if (!write_armed_) {
    flush();
  }
  return state_ == state::open && buffered() > cfg_->high_water;
}

bool connection::hold_for_host() {
  if (!owner_hub().backlogged()) return false;
  queue_held_ = true;
  owner_hub().queue()->hold(this);
  return true;
}

void connection::resume_after_backlog() {
  retain();
  // Called from the host's poll: in host mode a plain post would wait for
  // the loop's next timer, not run at its next turn.
  loop_.post_next_turn([this] {
    if (queue_held_ && state_ != state::closed) {
      queue_held_ = false;
      on_readable();
    }
    release();
  });
}

void connection::fail(int close_code, std::string_view reason, int error) {
  if (state_ == state::closed) return;
  loop_.batch_point();  // as for a close frame: answers to earlier messages go first
  failed_ = true;
  if (!error_) error_ = static_cast<std::int16_t>(error);
  if (!close_sent_ && (state_ == state::open || state_ == state::closing)) {
    // ws's receiver limits (maxFragments, maxBufferedChunks) close with the
    // code alone, and with WH_*_BARE_CLOSE so does every violation its
    // receiver reports; the host still learns which from the reason.
    const bool bare = error == WH_ELIMIT ||
                      (cfg_ && cfg_->bare_close && (error == WH_EPROTO || error == WH_EUTF8 || error == WH_ETOOBIG));
    queue_close(close_code, bare ? std::string_view() : reason);
    close_sent_ = true;
  }
  if (!close_received_) {
    close_code_ = static_cast<std::uint16_t>(close_code);
    set_close_reason(std::string(reason));
  }
  state_ = state::closing;
  api_state_.store(2, std::memory_order_release);
  close_after_flush_ = true;
  deadline_ = now_ms() + cfg_->close_timeout_ms;
  mark_dirty();
}

// --------------------------------------------------------------------- send

// Where a frame goes: the loop's cork while this connection's input is being
// handled, else its own send buffer.
inline std::string& connection::out_buf() { return loop_.corked() == this ? loop_.cork_buf() : wbuf_; }

std::size_t connection::pending_bytes() const {
  return wbuf_.size() - woff_ + borrowed_bytes() + (loop_.corked() == this ? loop_.cork_buf().size() : 0);
}

void connection::sync_buffered(std::size_t pending) {
  // Unsigned wrap-around makes a negative delta subtract.
  buffered_.fetch_add(pending - counted_ - credit_, std::memory_order_relaxed);
  if (server_ && pending != counted_) server_->account(pending - counted_);
  counted_ = pending;
  credit_ = 0;
}

void connection::mark_dirty() {
  if (dirty_ || state_ == state::closed || loop_.corked() == this) return;
  dirty_ = true;
  loop_.want_flush(this);
}

void connection::queue_frame(std::uint8_t opcode, bool fin, bool rsv1, const std::uint8_t* data, std::size_t len,
                             bool borrow) {
  std::uint8_t hdr[frame::max_header_size];
  const bool mask = role_ == role::client;
  std::uint32_t key = 0;
  if (mask && !loop_.take_frame_mask(this, key) && !(cfg_->host_mask && owner_hub().host_mask(this, key)))
    key = loop_.random_mask();
  const std::size_t hn = frame::write_header(hdr, opcode, fin, rsv1, len, mask, key);
  std::string& out = out_buf();
  if (borrow && len && !mask && !ssl_ && &out == &wbuf_) {
    out.append(reinterpret_cast<const char*>(hdr), hn);
    if (!runs_) runs_ = std::make_unique<run_list>();
    runs_->v.push_back(borrowed{out.size(), data, len, nullptr});
    runs_->bytes += len;
    sync_buffered(pending_bytes());
    mark_dirty();
    return;
  }
  if (out.empty() && &out == &wbuf_ && len >= 4096) loop_.take_send_buffer(wbuf_);
  out.append(reinterpret_cast<const char*>(hdr), hn);
  const std::size_t at = out.size();
  if (len) out.append(reinterpret_cast<const char*>(data), len);
  if (mask) frame::apply_mask(reinterpret_cast<std::uint8_t*>(&out[at]), len, key);
  sync_buffered(pending_bytes());
  mark_dirty();
}

void connection::queue_message(const std::uint8_t* data, std::size_t len, int flags) {
  const std::uint8_t op = (flags & WH_TEXT) ? frame::op_text : frame::op_binary;
  const bool compress = pmd_server_bits_ && !(flags & WH_NO_COMPRESS) &&
                        (len >= cfg_->deflate.threshold || (flags & WH_COMPRESS));
  if (!compress) {
    queue_frame(op, true, false, data, len, (flags & WH_BORROW) != 0);
    return;
  }
  const int bits = role_ == role::server ? pmd_server_bits_ : pmd_client_bits_;
  deflater* d;
  if (we_keep_context()) {
    auto& kept = side().deflate;
    if (!kept) kept = std::make_unique<deflater>(bits, cfg_->deflate.level, cfg_->deflate.mem_level, false);
    d = kept.get();
    deflate_used();
  } else {
    d = &loop_.shared_deflater(bits, cfg_->deflate.level, cfg_->deflate.mem_level);
  }
  std::string& out = loop_.deflate_scratch();
  out.clear();
  if (!d->compress(data, len, out)) {
    fail(WH_CLOSE_INTERNAL_ERROR, "compression failed", WH_EINTERNAL);
    return;
  }
  queue_frame(op, true, true, reinterpret_cast<const std::uint8_t*>(out.data()), out.size());
}

void connection::queue_close(int code, std::string_view reason) {
  std::uint8_t payload[125] = {0};
  std::size_t n = 0;
  if (code) {
    payload[0] = static_cast<std::uint8_t>(code >> 8);
    payload[1] = static_cast<std::uint8_t>(code);
    n = 2 + std::min<std::size_t>(reason.size(), 123);
    if (n > 2) std::memcpy(payload + 2, reason.data(), n - 2);
  }
  queue_frame(frame::op_close, true, false, payload, n);
}

void connection::do_send(const std::uint8_t* data, std::size_t len, int flags) {
  if (state_ != state::open || close_sent_) return;
  if ((flags & WH_MORE) || send_opcode_) {
    const bool first = send_opcode_ == 0;
    const std::uint8_t op = first ? ((flags & WH_TEXT) ? frame::op_text : frame::op_binary) : frame::op_continuation;
    if (first) send_opcode_ = op;
    const bool fin = !(flags & WH_MORE);
    queue_frame(op, fin, false, data, len);
    if (fin) {
      send_opcode_ = 0;
      if (side_ && !side_->deferred.empty()) {
        // Messages published while our fragments were going out.
        auto pending = std::move(side_->deferred);
        side_->deferred.clear();
        for (auto& m : pending) send_prepared(m);
      }
    }
    return;
  }
  queue_message(data, len, flags);
}

int connection::send(const void* data, std::size_t len, int flags) {
  if (!data && len) return WH_EINVAL;
  if ((flags & WH_TEXT) && (flags & WH_BINARY)) return WH_EINVAL;
  // A message needs a type; only the continuation of a fragmented send may
  // leave it out. Fragments come from one thread, so this flag is the API's
  // view of that sequence (the loop keeps its own, send_opcode_).
  const bool continuing = api_fragmenting_.load(std::memory_order_relaxed);
  if (!continuing && !(flags & (WH_TEXT | WH_BINARY))) return WH_EINVAL;
  const auto st = api_state_.load(std::memory_order_acquire);
  if (st == 0) return WH_ESTATE;
  if (st != 1) return WH_ECLOSED;
  const std::size_t b = buffered();
  if (b + len > cfg_->max_buffered) return WH_EDROPPED;
  if (server_ && !server_->has_room(len)) return WH_EDROPPED;
  api_fragmenting_.store((flags & WH_MORE) != 0, std::memory_order_relaxed);
  // Decide the answer before handing the bytes over: once posted, the
  // connection may finish and be freed before this thread runs again.
  const std::size_t high = cfg_->high_water;
  if (loop_.on_this_thread() || loop_.is_host_thread()) {
    // On the loop's thread, or the host's in host mode: framed straight from
    // the caller's bytes, no copy to hand over.
    // WH_BORROW holds only while this host thread keeps the hub corked.
    if ((flags & WH_BORROW) && !loop_.host_borrow_ok()) flags &= ~WH_BORROW;
    auto direct = [&] { do_send(static_cast<const std::uint8_t*>(data), len, flags); };
    if (loop_.on_this_thread()) direct();
    else loop_.on_host(direct);
    if (state_ == state::closed) return WH_ECLOSED;
    if (pending_bytes() <= high) return WH_SENT;
    drain_armed_.store(true, std::memory_order_relaxed);
    return WH_QUEUED;
  }
  flags &= ~WH_BORROW;  // copied below
  const bool queued = b + len > high;
  // Counted as the frame it becomes (compression only shrinks it), so
  // buffered() never rises when the loop turns a posted send into a frame.
  const std::size_t framed = len + frame::header_size(len, role_ == role::client);
  buffered_.fetch_add(framed, std::memory_order_relaxed);
  // WH_QUEUED promises a WH_EV_DRAIN: armed before the loop can flush these
  // bytes, and after they are counted, so that a flush running meanwhile
  // (after_write_progress) sees them when it sees the arming.
  if (queued) drain_armed_.store(true, std::memory_order_release);
  retain();
  std::string copy(static_cast<const char*>(data), len);
  loop_.dispatch([this, copy = std::move(copy), flags, framed] {
    credit_ = framed;  // the frame's bytes are already counted
    do_send(reinterpret_cast<const std::uint8_t*>(copy.data()), copy.size(), flags);
    if (credit_) sync_buffered(counted_);  // nothing was queued (closed meanwhile)
    if (!dirty_) after_write_progress();  // nothing to flush: still settle the drain
    release();
  });
  return queued ? WH_QUEUED : WH_SENT;
}

void connection::send_prepared(const std::shared_ptr<const prepared_message>& m) {
  if (state_ != state::open || close_sent_) return;
  if (send_opcode_) {
    // Data frames of two messages must not interleave (RFC 6455 5.4).
    side().deferred.push_back(m);
    return;
  }
  // [deflate helper, issue 11 finding 9] prepared_message compresses once per
  // agreed window size, on demand; only context takeover compresses here.
  if (role_ == role::client) {  // client frames are masked per connection
    queue_message(m->payload(), m->payload_size(), m->flags);
    return;
  }
  // A subscriber that does not read cannot make us hold more than its cap:
  // it is closed (told as 1008, error WH_EDROPPED), never silently skipped.
  if (pending_bytes() + m->frame.size() > cfg_->max_buffered) {
    fail(WH_CLOSE_POLICY, "slow consumer", WH_EDROPPED);
    return;
  }
  if (server_ && !server_->has_room(m->frame.size())) {
    fail(WH_CLOSE_POLICY, "server memory budget exceeded", WH_EBUDGET);
    return;
  }
  const std::string* bytes = &m->frame;
  if (pmd_server_bits_ && m->compressible) {
    if (we_keep_context()) {
      // Our compressor's window must see what the peer's inflater sees.
      queue_message(m->payload(), m->payload_size(), m->flags);
      return;
    }
    if (const std::string* z = m->deflated(pmd_server_bits_)) bytes = z;
  }
  // [end deflate helper]
  if (!ssl_ && loop_.corked() != this && (write_armed_ || pending_bytes() > 0)) {
    // Behind bytes the peer has not taken yet: keep the publish's own frame
    // instead of a copy. A broadcast to slow subscribers then costs one
    // copy, not one per subscriber (sendmsg writes it in place; TLS copies).
    if (!runs_) runs_ = std::make_unique<run_list>();
    runs_->v.push_back(
        borrowed{wbuf_.size(), reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size(), m});
    runs_->bytes += bytes->size();
  } else {
    out_buf().append(*bytes);
  }
  const std::size_t b = pending_bytes();
  sync_buffered(b);
  // A publisher is not told per connection; the drain event still is.
  if (b > cfg_->high_water) drain_armed_.store(true, std::memory_order_relaxed);
  mark_dirty();
}

int connection::flush_now() {
  if (is_closed()) return WH_ECLOSED;
  // dispatch() writes in the call on the loop's thread and the host's.
  retain();
  loop_.dispatch([this] {
    if (state_ != state::closed) flush();
    release();
  });
  return 0;
}

int connection::set_mask(const unsigned char* key) {
  if (role_ != role::client) return WH_ESTATE;  // servers never mask
  // Elsewhere the frame would be made later, on another thread.
  if (!loop_.on_this_thread() && !loop_.is_host_thread()) return WH_ESTATE;
  std::uint32_t k = 0;
  if (key) std::memcpy(&k, key, 4);  // wire order, as write_header writes it
  loop_.set_frame_mask(key ? this : nullptr, k);
  return 0;
}

int connection::ping(const void* data, std::size_t len, bool pong) {
  if (len > 125 || (!data && len)) return WH_EINVAL;
  const auto st = api_state_.load(std::memory_order_acquire);
  if (st == 0) return WH_ESTATE;
  if (st != 1) return WH_ECLOSED;
  retain();
  std::string copy(static_cast<const char*>(data ? data : ""), len);
  loop_.dispatch([this, copy = std::move(copy), pong] {
    if (state_ == state::open && !close_sent_)
      queue_frame(pong ? frame::op_pong : frame::op_ping, true, false,
                  reinterpret_cast<const std::uint8_t*>(copy.data()), copy.size());
    release();
  });
  return 0;
}

int connection::close(int code, const char* reason, std::size_t len) {
  if (code != 0 && !frame::is_valid_close_code(static_cast<unsigned>(code))) return WH_ECLOSECODE;
  if (len > 123 || (code == 0 && len) || (!reason && len)) return WH_ECLOSECODE;
  if (len && !bwd::check_utf8(reason, len)) return WH_ECLOSECODE;
  std::uint8_t expected = 1;
  if (!api_state_.compare_exchange_strong(expected, 2)) {
    if (expected == 0) return terminate();  // closing while connecting aborts
    return WH_ECLOSED;
  }
  retain();
  loop_.dispatch([this, code, r = std::string(reason ? reason : "", len)]() mutable {
    start_close(code, std::move(r));
    release();
  });
  return 0;
}

void connection::start_close(int code, std::string reason) {
  if (state_ != state::open || close_sent_) return;
  queue_close(code, reason);
  close_sent_ = true;
  if (close_answer_waits_) {
    // The peer's close came first: its code is the one to report, and as
    // for any answered close the server closes TCP once this is written.
    answer_peer_close();
    return;
  }
  close_code_ = static_cast<std::uint16_t>(code ? code : WH_CLOSE_NO_STATUS);
  set_close_reason(std::move(reason));
  state_ = state::closing;
  deadline_ = now_ms() + cfg_->close_timeout_ms;
}

int connection::terminate() {
  if (closed_flag_.load(std::memory_order_acquire)) return WH_ECLOSED;
  api_state_.store(2, std::memory_order_release);
  retain();
  auto drop = [this] {
    if (state_ != state::closed) {
      if (role_ == role::client && !opened_) client_fail(WH_ECLOSED, "Connection closed before it was established");
      else finish(WH_ECLOSED);
    }
    release();
  };
  if (loop_.on_this_thread()) {
    // From inside an event callback: its WH_EV_CLOSE must not arrive nested
    // in that callback, and no further event of this connection comes first.
    terminating_ = true;
    loop_.post(std::move(drop));
  } else {
    loop_.dispatch(std::move(drop));
  }
  return 0;
}

int connection::pause(bool p) {
  if (closed_flag_.load(std::memory_order_acquire)) return WH_ECLOSED;
  // Only the latest call counts: a host that pauses and resumes once per
  // batch must not leave a trail of posted resumes, each running a read.
  const std::uint32_t gen = pause_gen_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (p && loop_.on_this_thread() && state_ != state::closed) {
    // From an event callback: no further message of this read is delivered
    // (the protocol keeps the rest), so a reader's queue stays at its mark.
    paused_ = true;
    return 0;
  }
  // Seen by the next read at once, before the posted task runs: a message
  // that arrives right after wh_conn_pause() returns is held too.
  if (p) pause_requested_.store(true, std::memory_order_relaxed);
  retain();
  // Posted, not run inline: resuming from inside an event callback must not
  // parse new input (and emit events) in the middle of that callback.
  loop_.post([this, p, gen] {
    if (pause_gen_.load(std::memory_order_acquire) != gen) {
      release();  // a later pause or resume decides
      return;
    }
    if (!p) pause_requested_.store(false, std::memory_order_relaxed);
    if (state_ != state::closed && paused_ != p) {
      paused_ = p;
      if (!p) on_readable();  // data may have arrived while paused
    }
    release();
  });
  return 0;
}

long connection::write_out(const std::string& buf, std::size_t& off) {
  while (off < buf.size()) {
    long n = io_write(reinterpret_cast<const std::uint8_t*>(buf.data()) + off, buf.size() - off);
    if (n <= 0) return n == 0 ? -EPIPE : n;
    off += static_cast<std::size_t>(n);
  }
  return 0;
}

void connection::flush() {
  // Whatever happens here, no borrowed byte outlives it.
  struct end_borrow {
    connection* c;
    ~end_borrow() {
      if (c->has_runs()) c->own_borrowed();
    }
  } borrow_ends{this};
  if (state_ == state::closed || write_armed_ || tls_handshaking_ || state_ == state::connecting) return;
  for (;;) {
    const long rc = has_runs() ? write_runs() : write_out(wbuf_, woff_);
    if (rc == -EAGAIN) {
      if (woff_ > (1u << 20) && woff_ * 2 > wbuf_.size()) {
        wbuf_.erase(0, woff_);
        if (runs_)
          for (std::size_t i = runs_->head; i < runs_->v.size(); ++i) runs_->v[i].at -= woff_;
        woff_ = 0;
      }
      arm_write();
      after_write_progress();
      return;
    }
    if (rc) {
      finish(rc == -ECONNRESET || rc == -EPIPE ? WH_ERESET : WH_EIO);
      return;
    }
    // Idle connections keep no send buffer (the loop keeps a few spares).
    loop_.give_send_buffer(wbuf_);
    woff_ = 0;
    // The drain callback may send, or resume reading and so queue replies:
    // write those too before deciding the connection is done talking.
    after_write_progress();
    if (state_ == state::closed || write_armed_) return;
    if (woff_ == wbuf_.size() && !has_runs()) break;
  }
  if (close_after_flush_ && !shut_wr_) after_close_flushed();
}

long connection::write_runs() {
  for (;;) {
    constexpr int max_iov = 64;
    iovec iov[max_iov];
    int k = 0;
    std::size_t pos = woff_, total = 0;
    const std::vector<borrowed>& runs = runs_->v;
    std::size_t i = runs_->head;
    for (; i < runs.size() && k + 2 <= max_iov; ++i) {
      const borrowed& b = runs[i];
      if (b.at > pos) {
        iov[k++] = iovec{&wbuf_[pos], b.at - pos};
        total += b.at - pos;
      }
      iov[k++] = iovec{const_cast<std::uint8_t*>(b.p), b.len};
      total += b.len;
      pos = b.at;
    }
    if (i == runs.size() && wbuf_.size() > pos && k < max_iov) {
      iov[k++] = iovec{&wbuf_[pos], wbuf_.size() - pos};
      total += wbuf_.size() - pos;
    }
    if (total == 0) break;
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = static_cast<std::size_t>(k);
    ssize_t n;
    do {
      n = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    consume_written(static_cast<std::size_t>(n));
    if (!has_runs() && woff_ == wbuf_.size()) break;
  }
  return 0;
}

void connection::consume_written(std::size_t n) {
  auto& runs = runs_->v;
  std::size_t& runs_head_ = runs_->head;
  std::size_t& runs_bytes_ = runs_->bytes;
  while (n && runs_head_ < runs.size()) {
    borrowed& b = runs[runs_head_];
    if (woff_ < b.at) {
      const std::size_t k = std::min(n, b.at - woff_);
      woff_ += k;
      n -= k;
      continue;
    }
    const std::size_t k = std::min(n, b.len);
    b.p += k;
    b.len -= k;
    runs_bytes_ -= k;
    n -= k;
    if (b.len == 0) {
      b.keep.reset();  // the last subscriber to write a publish frees it
      ++runs_head_;
    }
  }
  woff_ += n;
  if (runs_head_ == runs.size()) {
    runs.clear();
    runs_head_ = 0;
  }
}

void connection::own_borrowed() {
  auto& runs = runs_->v;
  std::size_t& runs_head_ = runs_->head;
  std::size_t& runs_bytes_ = runs_->bytes;
  bool borrowed_left = false;
  for (std::size_t i = runs_head_; i < runs.size(); ++i) borrowed_left |= !runs[i].keep;
  if (!borrowed_left) return;  // shared runs may stay as long as they must
  std::string rest;
  rest.reserve(wbuf_.size() - woff_ + runs_bytes_);
  std::vector<borrowed> kept;
  std::size_t pos = woff_;
  for (std::size_t i = runs_head_; i < runs.size(); ++i) {
    borrowed& b = runs[i];
    rest.append(wbuf_.data() + pos, b.at - pos);
    pos = b.at;
    if (b.keep) {
      kept.push_back(borrowed{rest.size(), b.p, b.len, std::move(b.keep)});
    } else {
      rest.append(reinterpret_cast<const char*>(b.p), b.len);
      runs_bytes_ -= b.len;
    }
  }
  rest.append(wbuf_.data() + pos, wbuf_.size() - pos);
  wbuf_.swap(rest);
  woff_ = 0;
  runs.swap(kept);
  runs_head_ = 0;
}

void connection::uncork() {
  if (has_runs()) own_borrowed();  // no borrowed byte outlives the cork
  loop_.set_corked(nullptr);
  std::string& ck = loop_.cork_buf();
  if (state_ == state::closed) {
    ck.clear();
    return;
  }
  if (!ck.empty()) {
    if (woff_ < wbuf_.size() || has_runs() || write_armed_ || tls_handshaking_ || state_ == state::connecting) {
      wbuf_.append(ck);  // older bytes are still waiting: keep the order
    } else {
      std::size_t off = 0;
      const long rc = write_out(ck, off);
      if (rc == -EAGAIN) {
        wbuf_.assign(ck, off, std::string::npos);
        woff_ = 0;
        arm_write();
      } else if (rc) {
        ck.clear();
        finish(rc == -ECONNRESET || rc == -EPIPE ? WH_ERESET : WH_EIO);
        return;
      }
    }
    if (ck.capacity() > (1u << 20)) std::string().swap(ck);
    else ck.clear();
  }
  // What went straight into wbuf_ while corked (a handshake answer), the
  // drain event and a pending half-close: flush() settles them all.
  flush();
}

void connection::after_write_progress() {
  const std::size_t b = wbuf_.size() - woff_ + borrowed_bytes();
  sync_buffered(b);
  if (pong_pending_ && b <= cfg_->high_water && state_ == state::open && !close_sent_) {
    pong_pending_ = false;
    std::string payload;
    payload.swap(side().pong_owed);
    queue_frame(frame::op_pong, true, false, reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
  }
  if (input_held_ && b <= cfg_->low_water) {
    input_held_ = false;
    resume_reading();  // edge-triggered: what arrived meanwhile raises no new edge
  }
  if (buffered() <= cfg_->low_water &&
      drain_armed_.exchange(false, std::memory_order_acq_rel)) {
    // Another thread's send may have counted its bytes and armed the drain
    // since the check above: it is not drained yet, and the flush of those
    // bytes emits it.
    if (buffered() > cfg_->low_water) {
      drain_armed_.store(true, std::memory_order_relaxed);
      return;
    }
    if (state_ == state::open) {
      wh_event ev{};
      ev.type = WH_EV_DRAIN;
      ev.conn = reinterpret_cast<wh_conn*>(this);
      ev.server = reinterpret_cast<wh_server*>(server_);
      ev.user_data = user_data();
      owner_hub().emit(ev);
    }
  }
}

void connection::after_close_flushed() {
  // Everything we had to say is out: half-close, then wait (bounded by the
  // close timeout) for the peer's EOF so it reads all of it before any RST.
  shut_wr_ = true;
  if (ssl_) SSL_shutdown(ssl_);
  ::shutdown(fd_, SHUT_WR);
  if (deadline_ == 0) deadline_ = now_ms() + cfg_->close_timeout_ms;
}

// ------------------------------------------------------------------- timers

void connection::on_deadline(std::uint64_t now) {
  if (state_ == state::closed) return;
  switch (state_) {
    case state::connecting:
    case state::handshaking:
      if (role_ == role::client) client_fail(WH_ETIMEDOUT, "Opening handshake has timed out");
      else finish(WH_ETIMEDOUT);
      return;
    case state::closing:
      finish(error_ ? int(error_) : int(WH_ETIMEDOUT));
      return;
    case state::open: {
      if (side_ && side_->park_due && now >= side_->park_due) {
        if (deflate_active_) {
          deflate_active_ = false;
          side_->park_due = now + 1000;
        } else {
          rx_.park();
          if (side_->deflate) side_->deflate->park();
          side_->park_due = 0;
        }
      }
      auto give_up = [&](int code, std::string_view why, int error) {
        fail(code, why, error);
        // A peer that went quiet will not answer our close either.
        deadline_ = now + std::min(cfg_->close_timeout_ms, std::max(cfg_->ping_timeout_ms, 100));
      };
      // Reads keep last_rx while a ping interval or an idle timeout is on.
      const std::uint64_t last_rx = side_ ? side_->last_rx : 0;
      if (cfg_->idle_timeout_ms && now >= last_rx + cfg_->idle_timeout_ms) {
        give_up(WH_CLOSE_GOING_AWAY, "idle timeout", WH_EIDLE);
        return;
      }
      if (msg_started_ && cfg_->message_timeout_ms && now >= msg_started_ + cfg_->message_timeout_ms) {
        give_up(WH_CLOSE_POLICY, "message timeout", WH_ETIMEDOUT);
        return;
      }
      if (ping_pending_ && now >= side().ping_due) {
        give_up(WH_CLOSE_INTERNAL_ERROR, frame::reason::ping_timeout, WH_EPINGTIMEOUT);
        return;
      }
      if (cfg_->ping_interval_ms && !ping_pending_ && now >= last_rx + cfg_->ping_interval_ms) {
        queue_frame(frame::op_ping, true, false, nullptr, 0);
        ping_pending_ = true;
        side().ping_due = now + (cfg_->ping_timeout_ms ? cfg_->ping_timeout_ms : cfg_->ping_interval_ms);
      }
      next_deadline(now);
      drop_side();
      return;
    }
    default:
      return;
  }
}

void connection::next_deadline(std::uint64_t now) {
  std::uint64_t d = 0;
  auto earliest = [&](std::uint64_t t) {
    if (t && (!d || t < d)) d = t;
  };
  const std::uint64_t last_rx = side_ ? side_->last_rx : 0;
  if (cfg_->idle_timeout_ms) earliest(last_rx + cfg_->idle_timeout_ms);
  if (msg_started_ && cfg_->message_timeout_ms) earliest(msg_started_ + cfg_->message_timeout_ms);
  if (side_) earliest(side_->park_due);
  if (ping_pending_) earliest(side().ping_due);
  else if (cfg_->ping_interval_ms) earliest(last_rx + cfg_->ping_interval_ms);
  deadline_ = d ? std::max(d, now) : 0;
}

// ------------------------------------------------------------------- finish

void connection::finish(int error) {
  if (state_ == state::closed) return;
  state_ = state::closed;
  if (error && !error_) error_ = static_cast<std::int16_t>(error);
  api_state_.store(2, std::memory_order_release);
  closed_flag_.store(true, std::memory_order_release);
  deadline_ = 0;
  if (fd_ >= 0) {
    loop_.unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  if (client_handshake* hs = chs()) {
    hs->resolver.cancel();
    boost::system::error_code ec;
    hs->sock.close(ec);
  }
  loop_.detach(this);
  if (runs_) {
    // Shared publish frames go back to their other subscribers now, not
    // when the last handle to this connection is released.
    runs_->v.clear();
    runs_->head = 0;
    runs_->bytes = 0;
  }
  rx_close();  // what the protocol held goes back to the server's budget
  if (server_) {
    sync_buffered(0);  // and so do the bytes never sent
    end_handshake();
    server_->remove(this, opened_);
  }
  if (!server_) owner_hub().untrack(this);  // the hub tracks clients; servers track theirs
  if (shs() && shs()->pending) {
    // The request still holds a reference; its accept now fails.
    shs()->pending->peer_gone.store(true, std::memory_order_release);
    shs()->pending = nullptr;
  }
  if (opened_ || role_ == role::client) emit_close();
  // Its resolver and socket belong to this loop's io_context, which a
  // retained handle may outlive: free them here, on the loop thread.
  if (side_) {
    side_->chs.reset();
    side_->deflate.reset();
  }
  release();  // the engine's reference
}

void connection::emit_close() {
  wh_event ev{};
  ev.type = WH_EV_CLOSE;
  ev.conn = reinterpret_cast<wh_conn*>(this);
  ev.server = reinterpret_cast<wh_server*>(server_);
  ev.user_data = user_data();
  ev.error = error_;
  ev.code = (close_received_ || failed_ || (close_sent_ && !error_)) ? close_code_ : WH_CLOSE_ABNORMAL;
  if (close_received_) ev.flags = WH_PEER_CLOSED;
  if (!opened_) ev.code = WH_CLOSE_ABNORMAL;
  ev.data = close_reason().data();
  ev.len = close_reason().size();
  client_handshake* hs = chs();
  if (hs && hs->status) {
    // The answer the handshake failed on; for a 101 whose headers failed
    // the checks too, so the host can show it (ws emits 'upgrade' with it
    // before its checks). `status` stays the refusal's only.
    ev.headers = hs->response_headers.data();
    ev.headers_len = hs->response_headers.size();
    ev.status_text = hs->reason.data();
    ev.status_text_len = hs->reason.size();
    if (hs->status != 101) {
      ev.status = hs->status;
      ev.data = hs->body.data();
      ev.len = hs->body.size();
    }
  }
  owner_hub().emit(ev);
}

void connection::become_open(std::string subprotocol, std::string extensions, const deflate_params* pmd,
                             std::string_view response_headers, std::string_view status_text) {
  if (!subprotocol.empty() || !extensions.empty())
    names_.reset(new names{std::move(subprotocol), std::move(extensions)});
  if (pmd) {
    pmd_server_bits_ = static_cast<std::uint8_t>(pmd->server_max_window_bits);
    pmd_client_bits_ = static_cast<std::uint8_t>(pmd->client_max_window_bits);
    pmd_server_no_ctx_ = pmd->server_no_context_takeover;
    pmd_client_no_ctx_ = pmd->client_no_context_takeover;
  }
  if (pmd) rx_.set_deflate(*pmd);
  state_ = state::open;
  opened_ = true;
  if (server_) {
    server_->opened();
    end_handshake();
  }
  api_state_.store(1, std::memory_order_release);
  const std::uint64_t now = now_ms();
  if (timers_on_rx()) side().last_rx = now;
  next_deadline(now);
  drop_side();  // the handshake is over: an idle connection keeps nothing there
  wh_event ev{};
  ev.type = WH_EV_OPEN;
  ev.conn = reinterpret_cast<wh_conn*>(this);
  ev.server = reinterpret_cast<wh_server*>(server_);
  ev.user_data = user_data();
  ev.headers = response_headers.empty() ? nullptr : response_headers.data();
  ev.headers_len = response_headers.size();
  if (ev.headers) {
    ev.status_text = status_text.data();
    ev.status_text_len = status_text.size();
  }
  owner_hub().emit(ev);
}

void connection::resume_reading() {
  retain();
  loop_.post([this] {
    on_readable();
    release();
  });
}

void connection::end_handshake() {
  if (handshake_counted_) {
    handshake_counted_ = false;
    server_->handshake_done();
  }
}

void connection::write_raw_and_close(std::string bytes) {
  // An answer that is not 101: the connection never opens, and whatever the
  // client sent behind its request (frames) is never read.
  failed_ = true;
  wbuf_.append(bytes);
  state_ = state::closing;
  api_state_.store(2, std::memory_order_release);
  close_after_flush_ = true;
  deadline_ = now_ms() + cfg_->close_timeout_ms;
  mark_dirty();
}

}  // namespace wirehub
