#include "server.hpp"

#include <fcntl.h>

#include <climits>

#include "connection.hpp"
#include "hub.hpp"
#include "loop.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/ip/v6_only.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <future>

#include <unistd.h>

namespace wirehub {

namespace net = boost::asio;
using tcp = net::ip::tcp;

server::server(hub& h, const wh_server_options& o, endpoint_config cfg)
    : hub_(h),
      cfg_(std::move(cfg)),
      flags_(o.flags),
      max_connections_(o.max_connections),
      subprotocols_(o.subprotocols ? o.subprotocols : ""),
      user_data_(o.user_data),
      acceptor_(h.loop_at(0).ioc()),
      max_handshakes_(o.max_handshakes > 0 ? o.max_handshakes : o.max_handshakes < 0 ? INT_MAX : 1024),
      max_memory_(o.max_memory ? o.max_memory : std::size_t(1) << 30) {}

server::~server() {
  // On loop 0's thread, or after the loops stopped: the broker's Redis
  // callbacks run there, so none runs concurrently with this.
  if (broker_owner_) broker_owner_->detach();
  if (tls_) SSL_CTX_free(tls_);
}

static int map_bind_error(const boost::system::error_code& ec) {
  if (ec == net::error::address_in_use) return WH_EADDRINUSE;
  if (ec == net::error::access_denied) return WH_EACCES;
  if (ec == boost::system::errc::address_not_available) return WH_EADDR;
  if (ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system) return WH_EMFILE;
  return WH_EIO;
}

int server::listen(const wh_server_options& o) {
  if (o.tls.cert_file || o.tls.key_file) {
    if (!o.tls.cert_file || !o.tls.key_file) return WH_EINVAL;
    tls_ = SSL_CTX_new(TLS_server_method());
    if (!tls_) return WH_ENOMEM;
    SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(tls_, o.tls.cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls_, o.tls.key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(tls_) != 1)
      return WH_ETLS;
  }
  if (o.flags & WH_SERVER_NO_LISTEN) return 0;  // fed by adopt() only
  std::string host = o.host && *o.host ? o.host : "0.0.0.0";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  net::ip::address addr = net::ip::make_address(host, ec);
  if (ec) {
    // A name such as "localhost": take the first address it resolves to.
    net::io_context tmp;
    tcp::resolver r(tmp);
    auto res = r.resolve(host, std::to_string(o.port), ec);
    if (ec || res.empty()) return WH_ERESOLVE;
    addr = res.begin()->endpoint().address();
  }
  if (o.port < 0 || o.port > 65535) return WH_EINVAL;
  tcp::endpoint ep(addr, static_cast<unsigned short>(o.port));
  acceptor_.open(ep.protocol(), ec);
  if (ec) return map_bind_error(ec);
  set_cloexec(acceptor_.native_handle());
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (o.flags & WH_SERVER_REUSE_PORT) {
    int one = 1;
    ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (addr.is_v6()) acceptor_.set_option(net::ip::v6_only((o.flags & WH_SERVER_IPV6_ONLY) != 0), ec);
  acceptor_.bind(ep, ec);
  if (ec) return map_bind_error(ec);
  acceptor_.listen(o.backlog > 0 ? o.backlog : 511, ec);
  if (ec) return map_bind_error(ec);
  const tcp::endpoint bound = acceptor_.local_endpoint(ec);
  port_ = bound.port();
  // Connections accepted on a wildcard address each have the one their
  // peer reached; on any other, the listening address: no getsockname then.
  if (!ec && !bound.address().is_unspecified()) shared_local_ = connection::shared_local(bound.data());
  hub_.loop_at(0).post([this] { accept_next(); });
  return 0;
}

void server::accept_next() {
  if (closing_ || unlistened_) return;
  loop& target = hub_.loop_at(next_loop_++ % hub_.loop_count());
  acceptor_.async_accept(target.ioc(), accept_peer_, [this, &target](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted || closing_ || unlistened_) return;
    if (ec) {
      // Out of descriptors and the like: tell the application, keep serving.
      wh_event ev{};
      ev.type = WH_EV_ERROR;
      ev.server = reinterpret_cast<wh_server*>(this);
      ev.code = WH_EIO;
      std::string msg = "accept failed: " + ec.message();
      ev.data = msg.data();
      ev.len = msg.size();
      ev.user_data = user_data_;
      hub_.emit(ev);
      auto t = std::make_shared<net::steady_timer>(acceptor_.get_executor(), std::chrono::milliseconds(50));
      t->async_wait([this, t](const boost::system::error_code&) { accept_next(); });
      return;
    }
    boost::system::error_code rec;
    const int fd = sock.release(rec);
    if (rec || fd < 0) {
      accept_next();
      return;
    }
    set_cloexec(fd);
    // Sockets still in their handshake cost us and nothing to the peer:
    // past the cap a new one is closed at once, before any byte is read.
    if (!handshake_begin()) {
      ::close(fd);
      accept_next();
      return;
    }
    auto* c = new connection(hub_, target, connection::role::server, fd);
    c->server_ = this;
    c->handshake_counted_ = true;
    c->store_peer(accept_peer_.data());
    add(c);
    target.dispatch([this, c] { c->start_server(*this); });
    accept_next();
  });
}

int server::adopt(int fd, std::string head, const char* remote_address, int remote_port) {
  if (closing_) {
    ::close(fd);
    return WH_ESHUTDOWN;
  }
  // TLS bytes already read cannot be handed to a fresh SSL object.
  if (tls_ && !head.empty()) {
    ::close(fd);
    return WH_ENOTSUP;
  }
  if (!handshake_begin()) {
    ::close(fd);
    return WH_ELIMIT;
  }
  loop& target = hub_.next_loop();
  auto* c = new connection(hub_, target, connection::role::server, fd);
  c->server_ = this;
  c->handshake_counted_ = true;
  add(c);
  std::string addr = remote_address ? remote_address : "";
  target.dispatch([this, c, head = std::move(head), addr = std::move(addr), remote_port] {
    c->start_server(*this, &head, addr.empty() ? nullptr : addr.c_str(), remote_port);
  });
  return 0;
}

void server::add(connection* c) {
  std::lock_guard<std::mutex> lk(mu_);
  c->server_index_ = static_cast<std::uint32_t>(conns_.size());
  conns_.push_back(c);
}

void server::remove(connection* c, bool was_open) {
  bool empty;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const std::uint32_t i = c->server_index_;
    if (i < conns_.size() && conns_[i] == c) {
      conns_[i] = conns_.back();
      conns_[i]->server_index_ = i;
      conns_.pop_back();
    }
    if (c->topics_) {
      for (const auto& t : *c->topics_) {
        auto it = topics_.find(t);
        if (it == topics_.end()) continue;
        auto& v = it->second;
        v.erase(std::remove(v.begin(), v.end(), c), v.end());
        if (v.empty()) {
          if (broker* b = broker_.load(std::memory_order_relaxed)) b->interest(t, false);
          topics_.erase(it);
        }
      }
      c->topics_->clear();
    }
    empty = conns_.empty();
  }
  if (was_open) count_.fetch_sub(1, std::memory_order_relaxed);
  if (closing_ && empty) hub_.loop_at(0).post([this] { check_closed(); });
}

int server::subscribe(connection* c, const std::string& topic, bool on) {
  if (c->is_closed()) return WH_ECLOSED;
  std::lock_guard<std::mutex> lk(mu_);
  if (c->is_closed()) return WH_ECLOSED;
  if (!c->topics_) c->topics_ = new std::vector<std::string>();
  auto& mine = *c->topics_;
  auto it = std::find(mine.begin(), mine.end(), topic);
  if (on) {
    if (it != mine.end()) return 0;
    mine.push_back(topic);
    auto& v = topics_[topic];
    if (v.empty())
      if (broker* b = broker_.load(std::memory_order_relaxed)) b->interest(topic, true);
    v.push_back(c);
  } else {
    if (it == mine.end()) return 0;
    mine.erase(it);
    auto t = topics_.find(topic);
    if (t != topics_.end()) {
      auto& v = t->second;
      v.erase(std::remove(v.begin(), v.end(), c), v.end());
      if (v.empty()) {
        if (broker* b = broker_.load(std::memory_order_relaxed)) b->interest(topic, false);
        topics_.erase(t);
      }
    }
  }
  return 0;
}

// ------------------------------------------------------- prepared_message

std::atomic<std::uint64_t> prepared_message::compressions{0};

std::shared_ptr<prepared_message> prepared_message::make(const void* data, std::size_t len, int flags,
                                                         const deflate_config& cfg) {
  auto m = std::make_shared<prepared_message>();
  m->flags = flags & (WH_TEXT | WH_BINARY | WH_NO_COMPRESS | WH_COMPRESS);
  if (!(m->flags & WH_TEXT)) m->flags |= WH_BINARY;
  const std::uint8_t op = (m->flags & WH_TEXT) ? frame::op_text : frame::op_binary;
  std::uint8_t hdr[frame::max_header_size];
  m->header_size = frame::write_header(hdr, op, true, false, len, false, 0);
  m->frame.reserve(m->header_size + len);
  m->frame.append(reinterpret_cast<const char*>(hdr), m->header_size);
  m->frame.append(static_cast<const char*>(data), len);
  // Compression waits for a subscriber that agreed on deflate: a publish to
  // none costs nothing, and each window size present is compressed once.
  m->compressible = cfg.enabled && !(flags & WH_NO_COMPRESS) && (len >= cfg.threshold || (flags & WH_COMPRESS));
  m->level = cfg.level;
  m->mem_level = cfg.mem_level;
  return m;
}

const std::string* prepared_message::deflated(int window_bits) const {
  if (!compressible) return nullptr;
  // 8 compresses exactly as 9 (see permessage_deflate.cpp), so they share one.
  const int bits = std::clamp(window_bits, 9, 15);
  slot& s = slots_[bits - 9];
  std::call_once(s.once, [&] {
    // Keyed by all three settings: servers with different levels on one
    // thread each get their own stream. A loop thread shares its loop's.
    loop* l = loop::current();
    deflater& d = l ? l->shared_deflater(bits, level, mem_level) : thread_deflaters().get(bits, level, mem_level);
    std::string z;
    if (!d.compress(payload(), payload_size(), z)) return;
    compressions.fetch_add(1, std::memory_order_relaxed);
    const std::uint8_t op = (flags & WH_TEXT) ? frame::op_text : frame::op_binary;
    std::uint8_t hdr[frame::max_header_size];
    const std::size_t hn = frame::write_header(hdr, op, true, true, z.size(), false, 0);
    s.frame.reserve(hn + z.size());
    s.frame.append(reinterpret_cast<const char*>(hdr), hn);
    s.frame.append(z);
    s.ok = true;
  });
  return s.ok ? &s.frame : nullptr;
}

// ------------------------------------------------------------------ publish

int server::publish(const std::string_view* topic, const void* data, std::size_t len, int flags, connection* except) {
  if ((flags & WH_TEXT) && (flags & WH_BINARY)) return WH_EINVAL;
  if (flags & WH_MORE) return WH_EINVAL;
  // The other nodes' copy first: it is only queued here (the broker writes
  // it to Redis at the end of the loop's turn, ahead of this turn's local
  // writes), so a subscriber here waits for no round trip, and one on
  // another node does not wait for this node's local writes, hundreds of
  // write() calls for a large topic.
  if (topic)
    if (broker* b = broker_.load(std::memory_order_acquire)) b->publish(*topic, data, len, flags);
  return publish_local(topic, data, len, flags, except);
}

int server::publish_local(const std::string_view* topic, const void* data, std::size_t len, int flags,
                          connection* except) {
  // Connections on this thread get the bytes now; those of other loops in
  // one posted batch per loop.
  loop* here = loop::current();
  std::vector<std::vector<connection*>> remote;
  std::shared_ptr<const prepared_message> shared;
  int count = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const std::vector<connection*>* targets = &conns_;
    if (topic) {
      auto it = topics_.find(*topic);
      // No subscriber here (a publisher whose readers are all on other
      // nodes): no frame to build, no copy of the payload.
      if (it == topics_.end()) return 0;
      targets = &it->second;
    }
    // Frame once; every subscriber shares these bytes (and the compressed
    // frames the first subscriber of each window size builds).
    shared = prepared_message::make(data, len, flags, cfg_.deflate);
    for (connection* c : *targets) {
      if (c == except || !c->is_open()) continue;
      ++count;
      if (&c->owner_loop() == here) {
        c->send_prepared(shared);
      } else {
        if (remote.empty()) remote.resize(hub_.loop_count());
        c->retain();
        remote[c->owner_loop().index()].push_back(c);
      }
    }
  }
  for (std::size_t i = 0; i < remote.size(); ++i) {
    if (remote[i].empty()) continue;
    // dispatch, not post: a corked host thread's publishes leave together.
    hub_.loop_at(i).dispatch([batch = std::move(remote[i]), shared] {
      for (connection* c : batch) {
        c->send_prepared(shared);
        c->release();
      }
    });
  }
  return count;
}

// ------------------------------------------------------------------- broker

int server::set_broker(const wh_broker_options& o) {
  broker_config cfg;
  if (int rc = parse_broker_url(o.url, cfg); rc < 0) return rc;
  if (o.prefix) cfg.prefix = o.prefix;
  if (o.ca_file) cfg.ca_file = o.ca_file;
  cfg.insecure = o.insecure != 0;
  if (o.connect_timeout_ms < 0) return WH_EINVAL;
  if (o.connect_timeout_ms) cfg.connect_timeout_ms = o.connect_timeout_ms;
  if (o.max_pending) cfg.max_pending = o.max_pending;
  cfg.max_message_size = cfg_.max_message_size;
  if (closing_) return WH_ESHUTDOWN;
  if (broker_.load()) return WH_ESTATE;
  if (int rc = broker::check(cfg); rc < 0) return rc;
  auto b = std::make_shared<broker>(*this, hub_.loop_at(0), std::move(cfg));
  std::vector<std::string> topics;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (broker_.load()) return WH_ESTATE;
    // From here subscribe() tells the broker; what is subscribed already
    // goes with start().
    broker_owner_ = b;
    broker_.store(b.get(), std::memory_order_release);
    topics.reserve(topics_.size());
    for (const auto& kv : topics_) topics.push_back(kv.first);
  }
  b->start(std::move(topics));
  return 0;
}

int server::broker_stats(wh_broker_stats& out) const {
  broker* b = broker_.load(std::memory_order_acquire);
  if (!b) return WH_ESTATE;
  b->stats(out);
  return 0;
}

int server::unlisten() {
  if (unlistened_.exchange(true)) return 0;
  // Closed here, not posted: the caller may bind the port again next. The
  // acceptor's pending accept completes with operation_aborted on its loop.
  loop& l = hub_.loop_at(0);
  auto close_acceptor = [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  };
  if (l.on_this_thread() || l.is_host_thread()) {
    close_acceptor();
    return 0;
  }
  std::promise<void> done;
  l.post([&] {
    close_acceptor();
    done.set_value();
  });
  done.get_future().wait();
  return 0;
}

int server::close(int timeout_ms) {
  bool expected = false;
  if (!closing_.compare_exchange_strong(expected, true)) return WH_ESTATE;
  const int t = timeout_ms > 0 ? timeout_ms : 5000;
  // Through the loop's queue: what this thread sent before still goes first.
  hub_.loop_at(0).post([this, t] {
    close_ran_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::vector<connection*> all;
    {
      std::lock_guard<std::mutex> lk(mu_);
      all = conns_;
      for (connection* c : all) c->retain();
    }
    for (connection* c : all) {
      c->close(WH_CLOSE_GOING_AWAY, frame::reason::going_away.data(), frame::reason::going_away.size());
      c->release();
    }
    close_timer_ = std::make_unique<net::steady_timer>(acceptor_.get_executor(), std::chrono::milliseconds(t));
    close_timer_->async_wait([this](const boost::system::error_code& e) {
      if (e) return;
      // Peers that did not finish the close handshake in time are dropped.
      std::vector<connection*> rest;
      {
        std::lock_guard<std::mutex> lk(mu_);
        rest = conns_;
        for (connection* c : rest) c->retain();
      }
      for (connection* c : rest) {
        c->terminate();
        c->release();
      }
    });
    check_closed();
  });
  return 0;
}

void server::check_closed() {
  // closing_ is set before this close task is posted: a connection leaving in
  // between must not free the server under the task still queued for it.
  if (!close_ran_) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_emitted_ || !conns_.empty()) return;
  }
  closed_emitted_ = true;
  if (close_timer_) close_timer_->cancel();
  wh_event ev{};
  ev.type = WH_EV_SERVER_CLOSED;
  ev.server = reinterpret_cast<wh_server*>(this);
  ev.user_data = user_data_;
  hub_.emit(ev);
  hub_.server_gone(this);
}

}  // namespace wirehub
