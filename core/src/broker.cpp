// broker.cpp — Redis pub/sub for a server's topics (see broker.hpp).
//
// Boost.Redis, not a hand-written RESP codec: it is Asio's own Redis client
// (RESP3, TLS, health checks), so it runs on our loops' io_context without a
// thread of its own. Its automatic reconnection (a fixed wait) is off: each
// attempt here is a fresh connection, so that the wait backs off and the
// subscriptions are sent again, in one command, once Redis answers (Boost.Redis
// resubscribes by itself only from 1.91 on).
#include "broker.hpp"

#include "loop.hpp"
#include "server.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/detail/utf8_checker.hpp>
#include <boost/redis/connection.hpp>
#include <boost/redis/ignore.hpp>
#include <boost/redis/request.hpp>
#include <boost/redis/response.hpp>
#include <boost/redis/src.hpp>  // Boost.Redis is compiled here, once

#include <fcntl.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

namespace wirehub {

namespace net = boost::asio;
namespace redis = boost::redis;

// ------------------------------------------------------------------- url

static bool decode_percent(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

int parse_broker_url(const char* url, broker_config& out) {
  if (!url) return WH_EURL;
  std::string_view u(url);
  for (char c : u)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return WH_EURL;
  if (u.rfind("redis://", 0) == 0) {
    out.tls = false;
    u.remove_prefix(8);
  } else if (u.rfind("rediss://", 0) == 0) {
    out.tls = true;
    u.remove_prefix(9);
  } else {
    return WH_EURL;
  }
  if (u.find_first_of("?#") != std::string_view::npos) return WH_EURL;
  std::string_view path;
  if (auto slash = u.find('/'); slash != std::string_view::npos) {
    path = u.substr(slash + 1);
    u = u.substr(0, slash);
  }
  if (auto at = u.rfind('@'); at != std::string_view::npos) {
    std::string_view info = u.substr(0, at);
    u = u.substr(at + 1);
    auto colon = info.find(':');
    if (colon == std::string_view::npos) {
      // redis://password@host is how many clients read a lone userinfo.
      if (!decode_percent(info, out.password)) return WH_EURL;
    } else {
      if (!decode_percent(info.substr(0, colon), out.user)) return WH_EURL;
      if (!decode_percent(info.substr(colon + 1), out.password)) return WH_EURL;
    }
  }
  std::string_view host = u, port;
  if (!u.empty() && u.front() == '[') {
    auto close = u.find(']');
    if (close == std::string_view::npos) return WH_EURL;
    host = u.substr(1, close - 1);
    std::string_view rest = u.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return WH_EURL;
      port = rest.substr(1);
      if (port.empty()) return WH_EURL;
    }
  } else if (auto colon = u.rfind(':'); colon != std::string_view::npos) {
    host = u.substr(0, colon);
    port = u.substr(colon + 1);
    if (port.empty()) return WH_EURL;
  }
  if (host.empty() || host.find_first_of(":@[]") != std::string_view::npos) {
    // An IPv6 address must be in brackets; a bare one is ambiguous.
    if (host.empty() || u.front() != '[') return WH_EURL;
  }
  out.host = std::string(host);
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return WH_EURL;
    const int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return WH_EURL;
    out.port = std::string(port);
  } else {
    out.port = "6379";
  }
  if (!path.empty()) {
    if (path.size() > 5 || path.find_first_not_of("0123456789") != std::string_view::npos) return WH_EURL;
    out.db = std::stoi(std::string(path));
  } else {
    out.db = 0;
  }
  return 0;
}

// ------------------------------------------------------------------ wire

namespace broker_wire {
void write_header(char* out, bool text, std::uint64_t node) {
  out[0] = 'W';
  out[1] = 'H';
  out[2] = 1;
  out[3] = text ? 1 : 2;
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<char>(node >> (8 * i));
}

bool read(const char* msg, std::size_t len, bool& text, std::uint64_t& node, const char*& payload,
          std::size_t& payload_len) {
  if (len < header_size || msg[0] != 'W' || msg[1] != 'H' || msg[2] != 1) return false;
  if (msg[3] != 1 && msg[3] != 2) return false;
  text = msg[3] == 1;
  node = 0;
  for (int i = 0; i < 8; ++i) node |= std::uint64_t(static_cast<unsigned char>(msg[4 + i])) << (8 * i);
  payload = msg + header_size;
  payload_len = len - header_size;
  return true;
}
}  // namespace broker_wire

// A PUBLISH argument made of two parts (the channel: prefix + topic; the
// message: header + payload), written straight into the request without
// joining them in a string of their own first.
struct joined {
  std::string_view first;
  std::string_view second;
};
void boost_redis_to_bulk(std::string& to, const joined& j) {
  redis::resp3::add_header(to, redis::resp3::type::blob_string, j.first.size() + j.second.size());
  to.append(j.first);
  to.append(j.second);
  redis::resp3::add_separator(to);
}

// ------------------------------------------------------------- connection

namespace {

redis::config redis_config(const broker_config& c) {
  redis::config rc;
  rc.use_ssl = c.tls;
  rc.addr.host = c.host;
  rc.addr.port = c.port;
  rc.username = c.user.empty() ? "default" : c.user;
  rc.password = c.password;
  rc.clientname = "wirehub";
  rc.database_index = c.db;
  rc.health_check_id = "wirehub";
  const auto t = std::chrono::milliseconds(c.connect_timeout_ms);
  rc.resolve_timeout = t;
  rc.connect_timeout = t;
  rc.ssl_handshake_timeout = t;
  // A Redis that stops answering (not only one that goes away) is noticed.
  rc.health_check_interval = std::chrono::seconds(2);
  rc.reconnect_wait_interval = std::chrono::seconds(0);  // ours backs off
  return rc;
}

std::shared_ptr<redis::connection> make_connection(net::any_io_executor ex, const broker_config& c) {
  net::ssl::context ctx{net::ssl::context::tls_client};
  if (c.tls) {
    if (c.insecure) {
      ctx.set_verify_mode(net::ssl::verify_none);
    } else {
      ctx.set_verify_mode(net::ssl::verify_peer);
      if (!c.ca_file.empty()) ctx.load_verify_file(c.ca_file);
      else ctx.set_default_verify_paths();
    }
  }
  // What one message may cost us: the largest we deliver, with room for the
  // RESP framing and a few queued behind it. Past it the connection is
  // dropped (and the message with it) rather than grown.
  const std::size_t max_read = std::max<std::size_t>(c.max_message_size * 2 + (1u << 20), 4u << 20);
  auto conn = std::make_shared<redis::connection>(ex, std::move(ctx), max_read);
  if (c.tls) {
    SSL* ssl = conn->next_layer().native_handle();
    SSL_set_tlsext_host_name(ssl, c.host.c_str());
    if (!c.insecure) conn->next_layer().set_verify_callback(net::ssl::host_name_verification(c.host));
  }
  return conn;
}

int map_error(const boost::system::error_code& ec, const std::string& diagnostic) {
  if (diagnostic.find("WRONGPASS") != std::string::npos || diagnostic.find("NOAUTH") != std::string::npos ||
      diagnostic.find("NOPERM") != std::string::npos)
    return WH_EACCES;
  if (ec == net::error::connection_refused) return WH_ECONNREFUSED;
  if (ec == net::error::host_not_found || ec == net::error::host_not_found_try_again ||
      ec == net::error::no_data || ec == redis::error::resolve_timeout)
    return ec == redis::error::resolve_timeout ? WH_ETIMEDOUT : WH_ERESOLVE;
  if (ec == redis::error::connect_timeout || ec == net::error::timed_out ||
      ec == redis::error::ssl_handshake_timeout)
    return WH_ETIMEDOUT;
  if (ec.category() == net::error::get_ssl_category() || ec == net::ssl::error::stream_truncated) return WH_ETLS;
  return WH_EBROKER;
}

}  // namespace

struct broker::redis_state {
  explicit redis_state(net::io_context& ioc) : timer(ioc) {}
  std::shared_ptr<redis::connection> conn;
  redis::generic_response pushes;
  net::steady_timer timer;
  std::unique_ptr<redis::request> pending;  // guarded by broker::mu_
};

int broker::check(const broker_config& cfg) {
  net::io_context ioc;
  std::shared_ptr<redis::connection> conn;
  try {
    conn = make_connection(ioc.get_executor(), cfg);
  } catch (const boost::system::system_error&) {
    return WH_ETLS;  // the CA file could not be read
  }
  redis::request req;
  req.get_config().cancel_if_unresponded = true;
  req.push("PING");
  redis::response<std::string> resp;
  boost::system::error_code run_ec, exec_ec;
  bool run_done = false, exec_done = false;
  conn->async_run(redis_config(cfg), redis::logger{}, [&](boost::system::error_code ec) {
    run_ec = ec;
    run_done = true;
  });
  conn->async_exec(req, resp, [&](boost::system::error_code ec, std::size_t) {
    exec_ec = ec;
    exec_done = true;
    conn->cancel();
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.connect_timeout_ms);
  while (!(run_done && exec_done) && std::chrono::steady_clock::now() < deadline) {
    ioc.run_one_for(std::chrono::milliseconds(50));
    if (run_done && !exec_done) conn->cancel();
  }
  if (!(run_done && exec_done)) {
    conn->cancel();
    ioc.run_for(std::chrono::milliseconds(100));
    return WH_ETIMEDOUT;
  }
  const auto& r = std::get<0>(resp);
  if (!exec_ec && r.has_value()) return 0;
  const std::string diag = r.has_value() ? std::string() : r.error().diagnostic;
  if (!diag.empty()) return map_error({}, diag);
  // The run's own error says why (refused, resolve, TLS) when it failed first.
  if (run_ec && run_ec != net::error::operation_aborted) return map_error(run_ec, diag);
  return map_error(exec_ec, diag);
}

// ----------------------------------------------------------------- broker

broker::broker(server& s, loop& l, broker_config cfg)
    : server_(&s), loop_(l), cfg_(std::move(cfg)), rs_(std::make_unique<redis_state>(l.ioc())) {
  std::random_device rd;
  node_id_ = (std::uint64_t(rd()) << 32) ^ rd() ^ std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
}

broker::~broker() = default;

void broker::start(std::vector<std::string> topics) {
  auto self = shared_from_this();
  loop_.post([self, topics = std::move(topics)] {
    for (const auto& t : topics) self->channels_.insert(self->cfg_.prefix + t);
    self->channel_count_ = static_cast<int>(self->channels_.size());
    self->connect();
  });
}

void broker::detach() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    detached_ = true;
    rs_->pending.reset();
  }
  server_ = nullptr;
  connected_ = false;
  ++generation_;
  rs_->timer.cancel();
  if (rs_->conn) rs_->conn->cancel();
}

void broker::connect() {
  if (detached_) return;
  const std::uint64_t gen = ++generation_;
  std::shared_ptr<redis::connection> conn;
  try {
    conn = make_connection(loop_.ioc().get_executor(), cfg_);
  } catch (const std::exception&) {
    on_lost();
    return;
  }
  rs_->conn = conn;
  rs_->pushes = redis::generic_response{};
  conn->set_receive_response(rs_->pushes);
  auto self = shared_from_this();
  conn->async_run(redis_config(cfg_), redis::logger{}, [self, gen, conn](boost::system::error_code) {
    if (gen == self->generation_) self->on_lost();
  });
  // Every wanted channel again, then a PING whose answer says Redis is ours.
  auto req = std::make_shared<redis::request>();
  if (!channels_.empty()) req->push_range("SUBSCRIBE", channels_.begin(), channels_.end());
  req->push("PING");
  auto resp = std::make_shared<redis::response<std::string>>();
  auto sent = std::make_shared<std::unordered_set<std::string>>(channels_);
  conn->async_exec(*req, *resp, [self, gen, conn, req, resp, sent](boost::system::error_code ec, std::size_t) {
    if (gen != self->generation_) return;
    if (ec || !std::get<0>(*resp).has_value()) {
      conn->cancel();  // the run ends, and on_lost() retries
      return;
    }
    // Interest that changed while this connection was being made (flush()
    // sends nothing while we are away).
    std::vector<std::string> sub, unsub;
    for (const auto& ch : self->channels_)
      if (!sent->count(ch)) sub.push_back(ch);
    for (const auto& ch : *sent)
      if (!self->channels_.count(ch)) unsub.push_back(ch);
    self->send_interest(conn, sub, unsub);
    set_cloexec(conn->next_layer().next_layer().native_handle());
    if (self->ever_connected_) self->reconnects_.fetch_add(1, std::memory_order_relaxed);
    self->ever_connected_ = true;
    self->backoff_ms_ = 0;
    self->connected_ = true;
    self->first_up_ = true;
    self->receive();
    std::lock_guard<std::mutex> lk(self->mu_);
    self->post_flush();  // interest that changed while we were away
  });
}

void broker::on_lost() {
  if (detached_) return;
  ++generation_;  // what the old connection still completes is ignored
  connected_ = false;
  if (rs_->conn) {
    rs_->conn->cancel();
    rs_->conn.reset();
  }
  backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, 5000) : 100;
  rs_->timer.expires_after(std::chrono::milliseconds(backoff_ms_));
  auto self = shared_from_this();
  rs_->timer.async_wait([self](boost::system::error_code ec) {
    if (!ec) self->connect();
  });
}

void broker::receive() {
  auto conn = rs_->conn;
  if (!conn) return;
  const std::uint64_t gen = generation_;
  auto self = shared_from_this();
  conn->async_receive([self, conn, gen](boost::system::error_code ec, std::size_t) {
    if (gen != self->generation_) return;
    if (ec) {
      // The connection is gone (Boost.Redis 1.85 ends its run only when the
      // health check next fails, seconds later): move on to a new one now.
      self->on_lost();
      return;
    }
    auto& r = self->rs_->pushes;
    if (r.has_value()) {
      // Pushes parsed since the last turn: [kind, channel, payload] each.
      // The parser may be inside the next one: its nodes stay for later.
      auto& nodes = r.value();
      std::size_t i = 0;
      while (i < nodes.size()) {
        const auto& head = nodes[i];
        const std::size_t n = head.depth == 0 ? head.aggregate_size : 0;
        if (i + n >= nodes.size()) break;
        if (n == 3 && nodes[i + 1].value == "message") self->deliver(nodes[i + 2].value, nodes[i + 3].value);
        i += 1 + n;
      }
      nodes.erase(nodes.begin(), nodes.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      r = redis::generic_response{};
    }
    self->receive();
  });
}

void broker::deliver(const std::string& channel, const std::string& msg) {
  if (!server_ || detached_) return;
  bool text;
  std::uint64_t node;
  const char* payload;
  std::size_t len;
  if (channel.size() < cfg_.prefix.size() || channel.compare(0, cfg_.prefix.size(), cfg_.prefix) != 0 ||
      !broker_wire::read(msg.data(), msg.size(), text, node, payload, len)) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (node == node_id_) return;  // ours: our subscribers had it already
  if (len > cfg_.max_message_size) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (text) {
    boost::beast::websocket::detail::utf8_checker utf8;
    if (!utf8.write(reinterpret_cast<const std::uint8_t*>(payload), len) || !utf8.finish()) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  const std::string_view topic = std::string_view(channel).substr(cfg_.prefix.size());
  server_->publish_local(&topic, payload, len, text ? WH_TEXT : WH_BINARY, nullptr);
  received_.fetch_add(1, std::memory_order_relaxed);
}

// ------------------------------------------------------------ any thread

void broker::post_flush() {
  if (flush_posted_ || detached_) return;
  flush_posted_ = true;
  auto self = shared_from_this();
  loop_.post([self] { self->flush(); });
}

void broker::publish(std::string_view topic, const void* data, std::size_t len, int flags) {
  char hdr[broker_wire::header_size];
  broker_wire::write_header(hdr, (flags & WH_TEXT) != 0, node_id_);
  std::lock_guard<std::mutex> lk(mu_);
  if (detached_) return;
  // Redis down: the other nodes miss it, and the application can tell.
  // Never queued: a Redis that is away for minutes must not cost memory.
  // Until the first connection is up (a few ms after set_broker returned)
  // publishes wait for it, within max_pending, so none made right after
  // start-up is lost.
  if ((!connected_.load(std::memory_order_relaxed) && first_up_.load(std::memory_order_relaxed)) ||
      unwritten_ + len + topic.size() + cfg_.prefix.size() + 64 > cfg_.max_pending) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!rs_->pending) {
    rs_->pending = std::make_unique<redis::request>();
    auto& rc = rs_->pending->get_config();
    rc.cancel_if_not_connected = true;
    rc.cancel_on_connection_lost = true;
  }
  auto& req = *rs_->pending;
  const std::size_t before = req.payload().size();
  req.push("PUBLISH", joined{cfg_.prefix, topic},
           joined{std::string_view(hdr, sizeof hdr), std::string_view(static_cast<const char*>(data), len)});
  unwritten_ += req.payload().size() - before;
  ++pending_count_;
  post_flush();
}

void broker::interest(const std::string& topic, bool on) {
  std::lock_guard<std::mutex> lk(mu_);
  if (detached_) return;
  changes_[topic] = on;
  post_flush();
}

void broker::stats(wh_broker_stats& out) const {
  out.connected = connected_.load() ? 1 : 0;
  out.channels = channel_count_.load();
  out.published = published_.load();
  out.received = received_.load();
  out.dropped = dropped_.load();
  out.malformed = malformed_.load();
  out.reconnects = reconnects_.load();
}

// ------------------------------------------------------------ loop thread

void broker::send_interest(const std::shared_ptr<redis::connection>& conn, const std::vector<std::string>& sub,
                           const std::vector<std::string>& unsub) {
  if (sub.empty() && unsub.empty()) return;
  auto req = std::make_shared<redis::request>();
  if (!sub.empty()) req->push_range("SUBSCRIBE", sub.begin(), sub.end());
  if (!unsub.empty()) req->push_range("UNSUBSCRIBE", unsub.begin(), unsub.end());
  conn->async_exec(*req, redis::ignore, [req](boost::system::error_code, std::size_t) {});
}

void broker::flush() {
  std::unique_ptr<redis::request> pubs;
  std::size_t count;
  std::unordered_map<std::string, bool> changes;
  {
    std::lock_guard<std::mutex> lk(mu_);
    flush_posted_ = false;
    if (detached_) return;
    // Before the first connection, publishes wait for it (see publish()).
    if (ever_connected_) {
      pubs = std::move(rs_->pending);
      count = std::exchange(pending_count_, 0);
    } else {
      count = 0;
    }
    changes.swap(changes_);
  }
  std::vector<std::string> sub, unsub;
  for (auto& [topic, on] : changes) {
    std::string ch = cfg_.prefix + topic;
    if (on) {
      if (channels_.insert(ch).second) sub.push_back(std::move(ch));
    } else if (channels_.erase(ch)) {
      unsub.push_back(std::move(ch));
    }
  }
  channel_count_ = static_cast<int>(channels_.size());
  auto conn = connected_ ? rs_->conn : nullptr;
  // While away, connect() subscribes channels_ as it is then.
  if (conn) send_interest(conn, sub, unsub);
  if (!pubs) return;
  const std::size_t bytes = pubs->payload().size();
  if (!conn) {
    dropped_.fetch_add(count, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lk(mu_);
    unwritten_ -= bytes;
    return;
  }
  std::shared_ptr<redis::request> req(std::move(pubs));
  auto self = shared_from_this();
  conn->async_exec(*req, redis::ignore, [self, req, count, bytes](boost::system::error_code ec, std::size_t) {
    (ec ? self->dropped_ : self->published_).fetch_add(count, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lk(self->mu_);
    self->unwritten_ -= bytes;
  });
  // Boost.Redis writes it from a handler it has just queued: let that run
  // before this turn's local writes (see server::publish).
  loop_.flush_after_asio();
}

}  // namespace wirehub
