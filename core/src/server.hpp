// server.hpp — a listening socket, its connections, and their topics.
#pragma once

#include "engine.hpp"
#include "broker.hpp"
#include "handshake.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;

namespace wirehub {

// The parsed request a server hands to the application (WH_EV_UPGRADE/HTTP).
struct request {
  handshake::request_info info;
  connection* conn = nullptr;   // retained until answered
  bool upgrade = false;
  bool raw = false;             // WH_SERVER_RAW_UPGRADE: not validated, the host did it
  std::atomic<bool> answered{false};
  // The peer closed its side, or the socket failed, while the host decided:
  // an accept is then dropped unanswered (wh_request_accept: WH_ECLOSED).
  std::atomic<bool> peer_gone{false};
  bool dropped = false;  // the host's accept was told so (set before the answer is dispatched)
  std::string header_value;  // what wh_request_header() returned last
};

// The upgrade being read: freed as soon as the connection is open.
struct server_handshake {
  handshake::request_parser parser;
  std::string buf;
  std::size_t consumed = 0;
  request* pending = nullptr;  // handed to the application, awaiting an answer
  bool peer_eof = false;       // the peer's FIN came while `pending` waited
};

class server {
 public:
  server(hub& h, const wh_server_options& o, endpoint_config cfg);
  ~server();

  int listen(const wh_server_options& o);
  // A connected socket whose request the host already read (head). Owns fd.
  int adopt(int fd, std::string head, const char* remote_address, int remote_port);
  int port() const { return port_; }
  int connections() const { return count_.load(std::memory_order_relaxed); }
  int close(int timeout_ms);
  int unlisten();

  // topic == nullptr: every open connection (broadcast).
  int publish(const std::string_view* topic, const void* data, std::size_t len, int flags, connection* except);
  // To this node's subscribers only (what the broker delivers from others).
  int publish_local(const std::string_view* topic, const void* data, std::size_t len, int flags,
                    connection* except);
  int set_broker(const wh_broker_options& o);
  int broker_stats(wh_broker_stats& out) const;
  int subscribe(connection* c, const std::string& topic, bool on);

  // Called by connections (their loop thread).
  void add(connection* c);
  void remove(connection* c, bool was_open);
  void opened() { count_.fetch_add(1, std::memory_order_relaxed); }
  bool at_limit() const { return max_connections_ > 0 && count_.load() >= max_connections_; }

  // max_handshakes: a socket counts from accept (or adopt) until it opens or
  // goes. begin refuses one more past the cap.
  bool handshake_begin() {
    if (handshakes_.fetch_add(1, std::memory_order_relaxed) >= max_handshakes_) {
      handshakes_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void handshake_done() { handshakes_.fetch_sub(1, std::memory_order_relaxed); }
  int handshakes() const { return handshakes_.load(std::memory_order_relaxed); }

  // max_memory: bytes held for peers by every connection (receive side
  // through reserve/unreserve, send buffers through account).
  bool reserve(std::size_t more) {
    if (held_.fetch_add(more, std::memory_order_relaxed) + more > max_memory_) {
      held_.fetch_sub(more, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void unreserve(std::size_t less) { held_.fetch_sub(less, std::memory_order_relaxed); }
  void account(std::size_t delta) { held_.fetch_add(delta, std::memory_order_relaxed); }  // wraps to subtract
  bool has_room(std::size_t more) const { return held_.load(std::memory_order_relaxed) + more <= max_memory_; }
  std::size_t held() const { return held_.load(std::memory_order_relaxed); }

  hub& owner() { return hub_; }
  const endpoint_config& config() const { return cfg_; }
  int flags() const { return flags_; }
  const std::string& subprotocols() const { return subprotocols_; }
  void* user_data() const { return user_data_; }
  SSL_CTX* tls() const { return tls_; }
  bool closing() const { return closing_.load(); }
  // The local end every accepted connection shares (connection::local_'s
  // packing), or 0 when it listens on a wildcard address and each one asks.
  std::uint32_t shared_local() const { return shared_local_; }

 private:
  void accept_next();
  void check_closed();

  hub& hub_;
  endpoint_config cfg_;
  int flags_;
  int max_connections_;
  std::string subprotocols_;
  void* user_data_;
  SSL_CTX* tls_ = nullptr;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::uint32_t shared_local_ = 0;  // set by listen(), before the first accept
  // Filled by accept() itself, so a connection's peer costs no getpeername;
  // one accept is outstanding at a time.
  boost::asio::ip::tcp::endpoint accept_peer_;
  unsigned next_loop_ = 0;
  std::atomic<int> count_{0};
  int max_handshakes_;
  std::size_t max_memory_;
  std::atomic<int> handshakes_{0};
  std::atomic<std::size_t> held_{0};
  std::atomic<bool> closing_{false};
  std::atomic<bool> unlistened_{false};
  bool close_ran_ = false;  // the posted close task has started (acceptor's thread)
  bool closed_emitted_ = false;

  std::mutex mu_;  // guards conns_ and topics_ (publish may come from any thread)
  std::vector<connection*> conns_;
  // Looked up by string_view (transparent), so neither the C ABI's
  // publish nor a message from the broker builds a std::string for it.
  struct topic_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return boost::hash<std::string_view>()(s); }
  };
  boost::unordered_flat_map<std::string, std::vector<connection*>, topic_hash, std::equal_to<>> topics_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_;
  // Set once (under mu_), read by publish on any thread; freed with us.
  std::shared_ptr<broker> broker_owner_;
  std::atomic<broker*> broker_{nullptr};
  friend class hub;
};

}  // namespace wirehub
