// broker.hpp — a server's topics across processes and machines, through Redis.
//
// A publish goes to the local subscribers directly (server::publish) and, with
// a broker, to the Redis channel prefix + topic as one PUBLISH. Every node
// subscribes to the channel of a topic only while it has a local subscriber of
// it (interest), and hands what arrives to its own subscribers as a local
// publish: framed and compressed once per node.
//
// On the wire (the channel's message): "WH" 0x01, the kind (1 text, 2 binary),
// the publishing node's 8-byte id, then the payload. A node skips its own
// messages (its subscribers had them directly) and drops, counting them,
// messages that are not in this form.
//
// Threading: the Redis connection, its timers and every Redis callback run on
// the server's first loop. publish() and interest() may be called from any
// thread: they queue under a mutex and post one flush per turn to the loop.
#pragma once

#include "engine.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace boost::redis {
class connection;
}

namespace wirehub {

struct broker_config {
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string user;       // empty: the default user
  std::string password;   // empty: no AUTH
  int db = 0;
  bool tls = false;
  std::string ca_file;
  bool insecure = false;
  std::string prefix = "wirehub:";
  int connect_timeout_ms = 5000;
  std::size_t max_pending = 8u << 20;
  std::size_t max_message_size = 16u << 20;  // the server's: larger is dropped
};

// redis://[[user]:password@]host[:port][/db] or rediss://. WH_EURL if malformed.
int parse_broker_url(const char* url, broker_config& out);

// Wire format of one message on a channel.
namespace broker_wire {
constexpr std::size_t header_size = 12;
void write_header(char* out, bool text, std::uint64_t node);
// False if `msg` is not a wirehub message; else its parts.
bool read(const char* msg, std::size_t len, bool& text, std::uint64_t& node, const char*& payload,
          std::size_t& payload_len);
}  // namespace broker_wire

class broker : public std::enable_shared_from_this<broker> {
 public:
  broker(server& s, loop& l, broker_config cfg);
  ~broker();

  // Connects once, from the calling thread, and waits for Redis to answer
  // PING: 0, or the WH_E* code of what went wrong.
  static int check(const broker_config& cfg);

  // On any thread, once: subscribe `topics`, connect and keep connected.
  void start(std::vector<std::string> topics);
  // The server is going: no more deliveries, no reconnect. Safe on any
  // thread once the loop no longer runs, else on the loop's thread.
  void detach();

  // [any thread]
  void publish(std::string_view topic, const void* data, std::size_t len, int flags);
  void interest(const std::string& topic, bool on);
  void stats(wh_broker_stats& out) const;

 private:
  struct redis_state;  // Boost.Redis objects, kept out of this header

  void connect();                 // loop thread
  void on_lost();                 // loop thread
  void flush();                   // loop thread
  void receive();                 // loop thread
  void deliver(const std::string& channel, const std::string& msg);  // loop thread
  void post_flush();              // with mu_ held
  void send_interest(const std::shared_ptr<boost::redis::connection>& conn, const std::vector<std::string>& sub,
                     const std::vector<std::string>& unsub);  // loop thread

  server* server_;
  loop& loop_;
  broker_config cfg_;
  std::uint64_t node_id_;
  std::unique_ptr<redis_state> rs_;  // loop thread only

  mutable std::mutex mu_;
  // Publishes waiting for the loop: RESP commands, ready to write.
  std::string pending_;
  std::size_t pending_count_ = 0;
  std::size_t unwritten_ = 0;       // bytes handed over and not yet written (pending_ included)
  std::unordered_map<std::string, bool> changes_;  // topic -> subscribe?
  bool flush_posted_ = false;
  bool detached_ = false;

  // loop thread
  std::unordered_set<std::string> channels_;  // wanted on Redis
  int backoff_ms_ = 0;
  bool ever_connected_ = false;
  std::uint64_t generation_ = 0;    // one per connection attempt

  std::atomic<bool> connected_{false};
  std::atomic<bool> first_up_{false};  // the first connection came up once
  std::atomic<int> channel_count_{0};
  std::atomic<std::uint64_t> published_{0}, received_{0}, dropped_{0}, malformed_{0}, reconnects_{0};
};

}  // namespace wirehub
