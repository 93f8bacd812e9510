// broker_test.cpp — topics across servers through a real redis-server:
// cross-node publish, interest-based subscription (PUBSUB NUMSUB), order,
// Redis killed and restarted mid-stream, bad URL and password, a foreign
// publisher's garbage, max_pending, and rediss:// with a certificate. Each
// test starts Debian's redis-server on a free loopback port, without
// persistence.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace wht;

namespace {

// A blocking RESP client for the test's own look at Redis.
class RedisProbe {
 public:
  explicit RedisProbe(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RedisProbe() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  // Sends a command and returns the raw reply (read until it is quiet).
  std::string cmd(const std::vector<std::string>& args, const std::string& password = {}) {
    std::string out;
    if (!password.empty()) out += resp({"AUTH", password});
    out += resp(args);
    if (fd_ < 0 || ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return {};
    std::string reply;
    char buf[4096];
    for (int waited = 0; waited < 2000;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, reply.empty() ? 100 : 30) <= 0) {
        if (!reply.empty()) break;
        waited += 100;
        continue;
      }
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    return reply;
  }
  // PUBSUB NUMSUB channel: the number of subscribers Redis counts.
  int numsub(const std::string& channel) {
    std::string r = cmd({"PUBSUB", "NUMSUB", channel});
    auto colon = r.rfind(':');
    return colon == std::string::npos ? -1 : std::atoi(r.c_str() + colon + 1);
  }

 private:
  static std::string resp(const std::vector<std::string>& args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return s;
  }
  int fd_ = -1;
};

class RedisServer {
 public:
  explicit RedisServer(std::string password = {}) : password_(std::move(password)) { port_ = unused_port(); }
  // TLS only (rediss://), with this PEM certificate and key.
  RedisServer(std::string cert, std::string key) : cert_(std::move(cert)), key_(std::move(key)) {
    port_ = unused_port();
  }
  ~RedisServer() { stop(); }
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      std::vector<const char*> argv = {"redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                       "--loglevel", "warning"};
      if (cert_.empty()) {
        argv.insert(argv.end(), {"--port", port.c_str()});
      } else {
        argv.insert(argv.end(), {"--port", "0", "--tls-port", port.c_str(), "--tls-cert-file", cert_.c_str(),
                                 "--tls-key-file", key_.c_str(), "--tls-ca-cert-file", cert_.c_str(),
                                 "--tls-auth-clients", "no"});
      }
      if (!password_.empty()) {
        argv.push_back("--requirepass");
        argv.push_back(password_.c_str());
      }
      argv.push_back(nullptr);
      // Its start-up warnings (overcommit, say) are not the test's output.
      if (int null = ::open("/dev/null", O_WRONLY); null >= 0) ::dup2(null, 1);
      ::execvp("redis-server", const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      RedisProbe p(port_);
      if (p.ok()) return true;
      std::this_thread::sleep_for(Ms(20));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }
  std::string url() const {
    if (!cert_.empty()) return "rediss://127.0.0.1:" + std::to_string(port_) + "/0";
    return (password_.empty() ? "redis://127.0.0.1:" : "redis://:" + password_ + "@127.0.0.1:") +
           std::to_string(port_) + "/0";
  }

 private:
  std::string password_;
  std::string cert_, key_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// `url` must outlive the options.
wh_broker_options broker_options(const std::string& url, const char* prefix = "test:") {
  wh_broker_options o{};
  o.size = sizeof o;
  o.url = url.c_str();
  o.prefix = prefix;
  o.connect_timeout_ms = 2000;
  return o;
}

wh_broker_stats stats_of(wh_server* s) {
  wh_broker_stats st{};
  st.size = sizeof st;
  EXPECT_EQ(wh_server_broker_stats(s, &st), 0);
  return st;
}

template <class F>
bool eventually(F f, int ms = 3000) {
  const auto end = Clock::now() + Ms(ms);
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(Ms(10));
  }
  return f();
}

// Two servers ("nodes") on one Redis, one hub each, with two clients on each.
class Broker : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << "redis-server did not start (is it installed?)";
    for (int n = 0; n < 2; ++n) {
      node_[n] = hub_[n].listen(server_options());
      ASSERT_NE(node_[n], nullptr);
      const std::string url = redis_.url();
      auto o = broker_options(url);
      ASSERT_EQ(wh_server_set_broker(node_[n], &o), 0);
      for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(c_[n][i].open(wh_server_port(node_[n])));
        conn_[n][i] = hub_[n].rec().wait_server_conn(c_[n][i].local_port());
        ASSERT_NE(conn_[n][i], nullptr);
      }
    }
  }
  void TearDown() override {
    for (auto& node : c_)
      for (auto& c : node) c.close();
    for (auto& h : hub_) h.destroy();
  }
  // The channel that `topic` is on, and whether Redis counts n subscribers.
  bool redis_counts(const std::string& topic, int n) {
    return eventually([&] {
      RedisProbe p(redis_.port());
      return p.numsub("test:" + topic) == n;
    });
  }
  // The first client of each node (c_[0][0], c_[1][0]) subscribes to
  // `topic`, and Redis counts both nodes' subscriptions.
  void subscribe_one_on_each_node(const char* topic) {
    ASSERT_EQ(wh_conn_subscribe(conn_[0][0], topic), 0);
    ASSERT_EQ(wh_conn_subscribe(conn_[1][0], topic), 0);
    ASSERT_TRUE(redis_counts(topic, 2));
  }
  std::string next(int node, int i, int timeout_ms = kTimeoutMs) {
    auto f = c_[node][i].read_data_frame(timeout_ms);
    return f ? f->payload : std::string("(none)");
  }

  RedisServer redis_;
  std::array<TestHub, 2> hub_;
  std::array<wh_server*, 2> node_{};
  std::array<std::array<RawClient, 2>, 2> c_;
  std::array<std::array<wh_conn*, 2>, 2> conn_{};
};

}  // namespace

TEST_F(Broker, PublishReachesSubscribersOnEveryNode) {
  ASSERT_NO_FATAL_FAILURE(subscribe_one_on_each_node("room"));
  // The count is of local subscribers: the remote ones are Redis's business.
  EXPECT_EQ(wh_server_publish(node_[0], "room", "hello", 5, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(0, 0), "hello");
  EXPECT_EQ(next(1, 0), "hello");
  // Exactly once each: the publishing node skips its own message from Redis.
  EXPECT_TRUE(c_[0][0].quiet_for(200));
  EXPECT_TRUE(c_[1][1].quiet_for(50));
  EXPECT_TRUE(eventually([&] { return stats_of(node_[0]).published == 1u; }));
  EXPECT_EQ(stats_of(node_[1]).received, 1u);
}

TEST_F(Broker, TheKindOfAMessageCrossesNodes) {
  ASSERT_EQ(wh_conn_subscribe(conn_[1][0], "k"), 0);
  ASSERT_TRUE(redis_counts("k", 1));
  ASSERT_EQ(wh_server_publish(node_[0], "k", "\x00\xff", 2, WH_BINARY, nullptr), 0);
  ASSERT_EQ(wh_server_publish(node_[0], "k", "text", 4, WH_TEXT, nullptr), 0);
  auto f = c_[1][0].read_data_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, OP_BINARY);
  EXPECT_EQ(f->payload, std::string("\x00\xff", 2));
  f = c_[1][0].read_data_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, OP_TEXT);
  EXPECT_EQ(f->payload, "text");
}

TEST_F(Broker, ExceptAppliesOnThePublishingNodeOnly) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0][0], "x"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[0][1], "x"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[1][0], "x"), 0);
  ASSERT_TRUE(redis_counts("x", 2));
  EXPECT_EQ(wh_server_publish(node_[0], "x", "m", 1, WH_TEXT, conn_[0][0]), 1);
  EXPECT_EQ(next(0, 1), "m");
  EXPECT_EQ(next(1, 0), "m");
  EXPECT_TRUE(c_[0][0].quiet_for(200));
}

TEST_F(Broker, ANodeSubscribesToATopicOnlyWhileItHasSubscribers) {
  RedisProbe probe(redis_.port());
  EXPECT_EQ(probe.numsub("test:lobby"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[1][0], "lobby"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[1][1], "lobby"), 0);
  // Two local subscribers, one Redis subscription.
  EXPECT_TRUE(redis_counts("lobby", 1));
  ASSERT_EQ(wh_conn_unsubscribe(conn_[1][0], "lobby"), 0);
  EXPECT_TRUE(redis_counts("lobby", 1));
  EXPECT_EQ(stats_of(node_[1]).channels, 1);
  // The last one leaving (here by closing) takes the subscription with it.
  c_[1][1].close();
  EXPECT_TRUE(redis_counts("lobby", 0));
  EXPECT_TRUE(eventually([&] { return stats_of(node_[1]).channels == 0; }));
  // Node 0 has no subscriber of "lobby": what node 1 publishes to it does
  // not reach node 0 at all.
  for (int i = 0; i < 20; ++i) wh_server_publish(node_[1], "lobby", "x", 1, WH_TEXT, nullptr);
  ASSERT_EQ(wh_conn_subscribe(conn_[1][0], "other"), 0);
  ASSERT_TRUE(redis_counts("other", 1));
  EXPECT_EQ(stats_of(node_[0]).received, 0u);
  EXPECT_EQ(stats_of(node_[0]).malformed, 0u);
}

TEST_F(Broker, OnePublishersMessagesArriveInOrderOnEveryNode) {
  ASSERT_NO_FATAL_FAILURE(subscribe_one_on_each_node("seq"));
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i) {
    std::string m = std::to_string(i);
    ASSERT_GE(wh_server_publish(node_[0], "seq", m.data(), m.size(), WH_TEXT, nullptr), 0);
  }
  for (int node = 0; node < 2; ++node)
    for (int i = 0; i < n; ++i) ASSERT_EQ(next(node, 0), std::to_string(i)) << "node " << node;
  EXPECT_EQ(stats_of(node_[0]).dropped, 0u);
}

TEST_F(Broker, RedisGoingAwayAndComingBack) {
  ASSERT_NO_FATAL_FAILURE(subscribe_one_on_each_node("live"));
  ASSERT_EQ(wh_server_publish(node_[0], "live", "before", 6, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(1, 0), "before");
  EXPECT_EQ(next(0, 0), "before");

  redis_.stop();
  ASSERT_TRUE(eventually([&] { return stats_of(node_[0]).connected == 0; }));
  // Local delivery goes on; what the other node misses is counted.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(wh_server_publish(node_[0], "live", "local", 5, WH_TEXT, nullptr), 1);
    EXPECT_EQ(next(0, 0), "local");
  }
  EXPECT_GE(stats_of(node_[0]).dropped, 10u);
  EXPECT_TRUE(c_[1][0].quiet_for(100));

  ASSERT_TRUE(redis_.start());
  // Both nodes reconnect and subscribe again, in one command each.
  ASSERT_TRUE(eventually([&] { return stats_of(node_[0]).connected && stats_of(node_[1]).connected; }, 8000));
  ASSERT_TRUE(redis_counts("live", 2));
  EXPECT_GE(stats_of(node_[0]).reconnects, 1u);
  ASSERT_EQ(wh_server_publish(node_[0], "live", "after", 5, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(0, 0), "after");
  EXPECT_EQ(next(1, 0), "after");
}

TEST_F(Broker, AForeignPublishersGarbageIsDroppedAndCounted) {
  ASSERT_EQ(wh_conn_subscribe(conn_[1][0], "g"), 0);
  ASSERT_TRUE(redis_counts("g", 1));
  RedisProbe probe(redis_.port());
  probe.cmd({"PUBLISH", "test:g", "not a wirehub message"});
  probe.cmd({"PUBLISH", "test:g", ""});
  // Text that is not UTF-8 would make the subscriber's client fail the
  // connection (1007): the node drops it instead.
  probe.cmd({"PUBLISH", "test:g", std::string("WH\x01\x01", 4) + std::string(8, '\x07') + "\xff\xfe"});
  probe.cmd({"PUBLISH", "test:g", std::string("WH\x09\x01", 4) + std::string(8, '\x07') + "v9"});
  EXPECT_TRUE(eventually([&] { return stats_of(node_[1]).malformed == 4; }));
  EXPECT_TRUE(c_[1][0].quiet_for(100));
  // ...and the channel still works.
  ASSERT_EQ(wh_server_publish(node_[0], "g", "fine", 4, WH_TEXT, nullptr), 0);
  EXPECT_EQ(next(1, 0), "fine");
}

TEST_F(Broker, ABroadcastStaysOnItsNode) {
  EXPECT_EQ(wh_server_broadcast(node_[0], "all", 3, WH_TEXT, nullptr), 2);
  EXPECT_EQ(next(0, 0), "all");
  EXPECT_TRUE(c_[1][0].quiet_for(200));
  EXPECT_EQ(stats_of(node_[0]).published, 0u);
}

TEST(BrokerSetup, AMessageLargerThanTheReceivingServerTakesIsDropped) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  TestHub a, b;
  wh_server* sa = a.listen(server_options());
  auto so = server_options();
  so.limits.max_message_size = 1024;
  wh_server* sb = b.listen(so);
  const std::string url = redis.url();
  auto o = broker_options(url);
  ASSERT_EQ(wh_server_set_broker(sa, &o), 0);
  ASSERT_EQ(wh_server_set_broker(sb, &o), 0);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(sb)));
  wh_conn* conn = b.rec().wait_server_conn(c.local_port());
  ASSERT_EQ(wh_conn_subscribe(conn, "big"), 0);
  ASSERT_TRUE(eventually([&] { return RedisProbe(redis.port()).numsub("test:big") == 1; }));
  std::string big(4096, 'b');
  ASSERT_EQ(wh_server_publish(sa, "big", big.data(), big.size(), WH_BINARY, nullptr), 0);
  ASSERT_EQ(wh_server_publish(sa, "big", "ok", 2, WH_BINARY, nullptr), 0);
  auto f = c.read_data_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "ok");
  EXPECT_EQ(stats_of(sb).malformed, 1u);
  c.close();
  a.destroy();
  b.destroy();
}

TEST(BrokerSetup, APublishPastMaxPendingIsDroppedForOtherNodesAndCounted) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  TestHub a, b;
  wh_server* sa = a.listen(server_options());
  wh_server* sb = b.listen(server_options());
  const std::string url = redis.url();
  auto o = broker_options(url);
  o.max_pending = 512;  // bytes handed to Redis and not yet written
  ASSERT_EQ(wh_server_set_broker(sa, &o), 0);
  auto ob = broker_options(url);
  ASSERT_EQ(wh_server_set_broker(sb, &ob), 0);
  RawClient local, remote;
  ASSERT_TRUE(local.open(wh_server_port(sa)));
  ASSERT_TRUE(remote.open(wh_server_port(sb)));
  wh_conn* lc = a.rec().wait_server_conn(local.local_port());
  wh_conn* rc = b.rec().wait_server_conn(remote.local_port());
  ASSERT_EQ(wh_conn_subscribe(lc, "t"), 0);
  ASSERT_EQ(wh_conn_subscribe(rc, "t"), 0);
  ASSERT_TRUE(eventually([&] { return RedisProbe(redis.port()).numsub("test:t") == 2; }));
  const std::string big(2048, 'x');
  // Local subscribers get it all the same; the other node's copy is dropped.
  ASSERT_EQ(wh_server_publish(sa, "t", big.data(), big.size(), WH_BINARY, nullptr), 1);
  ASSERT_EQ(wh_server_publish(sa, "t", "small", 5, WH_BINARY, nullptr), 1);
  auto f = local.read_data_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload.size(), big.size());
  f = remote.read_data_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "small");
  EXPECT_EQ(stats_of(sa).dropped, 1u);
  // Counted when Redis acknowledges it, which may come after node b got it.
  EXPECT_TRUE(eventually([&] { return stats_of(sa).published == 1u; }));
  local.close();
  remote.close();
  a.destroy();
  b.destroy();
}

TEST(BrokerSetup, TopicsSubscribedBeforeTheBrokerAreSubscribedOnRedis) {
  RedisServer redis;
  ASSERT_TRUE(redis.start());
  TestHub h;
  wh_server* s = h.listen(server_options());
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = h.rec().wait_server_conn(c.local_port());
  ASSERT_EQ(wh_conn_subscribe(conn, "early"), 0);
  const std::string url = redis.url();
  auto o = broker_options(url);
  ASSERT_EQ(wh_server_set_broker(s, &o), 0);
  EXPECT_TRUE(eventually([&] { return RedisProbe(redis.port()).numsub("test:early") == 1; }));
  EXPECT_EQ(wh_server_set_broker(s, &o), WH_ESTATE);
  c.close();
  h.destroy();
}

TEST(BrokerSetup, BadUrlsAreRefusedWithWH_EURL) {
  TestHub h;
  wh_server* s = h.listen(server_options());
  for (const char* url : {"", "http://127.0.0.1:6379", "redis://", "redis://127.0.0.1:0", "redis://127.0.0.1:99999",
                          "redis://127.0.0.1:6379/x", "redis://::1:6379", "redis://host name", "redis://h:1?x=1"}) {
    const std::string u = url;
    auto o = broker_options(u);
    EXPECT_EQ(wh_server_set_broker(s, &o), WH_EURL) << url;
  }
  wh_broker_options o{};
  o.size = sizeof o;  // and no url
  EXPECT_EQ(wh_server_set_broker(s, &o), WH_EINVAL);
  wh_broker_stats st{};
  st.size = sizeof st;
  EXPECT_EQ(wh_server_broker_stats(s, &st), WH_ESTATE);
  h.destroy();
}

TEST(BrokerSetup, AnUnreachableRedisIsRefusedAtOnce) {
  TestHub h;
  wh_server* s = h.listen(server_options());
  const std::string url = "redis://127.0.0.1:" + std::to_string(unused_port());
  auto o = broker_options(url);
  const auto t0 = Clock::now();
  EXPECT_EQ(wh_server_set_broker(s, &o), WH_ECONNREFUSED);
  EXPECT_LT(Clock::now() - t0, Ms(1500));
  h.destroy();
}

TEST(BrokerSetup, AWrongPasswordIsWH_EACCES) {
  RedisServer redis("s3cret");
  ASSERT_TRUE(redis.start());
  TestHub h;
  wh_server* s = h.listen(server_options());
  const std::string bad = "redis://:wrong@127.0.0.1:" + std::to_string(redis.port());
  auto o = broker_options(bad);
  EXPECT_EQ(wh_server_set_broker(s, &o), WH_EACCES);
  const std::string none = "redis://127.0.0.1:" + std::to_string(redis.port());
  o = broker_options(none);
  EXPECT_EQ(wh_server_set_broker(s, &o), WH_EACCES);
  const std::string good = redis.url();
  o = broker_options(good);
  EXPECT_EQ(wh_server_set_broker(s, &o), 0);
  EXPECT_TRUE(eventually([&] { return stats_of(s).connected == 1; }));
  h.destroy();
}

// A self-signed certificate for 127.0.0.1, made with the openssl command
// (install-deps.sh installs it), in a fresh temporary directory.
struct TestCert {
  std::string dir, cert, key;
  bool ok = false;
  TestCert() {
    char tmpl[] = "/tmp/wirehub-redis-tls-XXXXXX";
    dir = ::mkdtemp(tmpl);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                            "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                            key + " -out " + cert + " >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~TestCert() { std::system(("rm -rf " + dir).c_str()); }
};

TEST(BrokerTls, RedissCarriesTopicsOverTlsAndChecksTheCertificate) {
  TestCert tc;
  ASSERT_TRUE(tc.ok) << "openssl could not make a certificate";
  RedisServer redis(tc.cert, tc.key);
  ASSERT_TRUE(redis.start());
  const std::string url = redis.url();
  TestHub a, b;
  wh_server* sa = a.listen(server_options());
  wh_server* sb = b.listen(server_options());
  // Not trusted: the system's CAs do not know a self-signed certificate.
  auto o = broker_options(url);
  EXPECT_EQ(wh_server_set_broker(sa, &o), WH_ETLS);
  // A plain client on a TLS port never gets an answer it can read.
  const std::string plain = "redis://127.0.0.1:" + std::to_string(redis.port());
  auto p = broker_options(plain);
  p.connect_timeout_ms = 500;
  EXPECT_LT(wh_server_set_broker(sa, &p), 0);
  // Trusted through ca_file on one node, unverified on the other.
  o.ca_file = tc.cert.c_str();
  ASSERT_EQ(wh_server_set_broker(sa, &o), 0);
  auto ob = broker_options(url);
  ob.insecure = 1;
  ASSERT_EQ(wh_server_set_broker(sb, &ob), 0);

  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(sb)));
  wh_conn* conn = b.rec().wait_server_conn(c.local_port());
  ASSERT_EQ(wh_conn_subscribe(conn, "secure"), 0);
  ASSERT_TRUE(eventually([&] { return stats_of(sb).channels == 1 && stats_of(sb).connected == 1; }));
  // The SUBSCRIBE may still be on its way to Redis (the test cannot ask
  // Redis in plain text here): publish until one arrives.
  std::optional<Frame> f;
  for (int i = 0; i < 30 && !f; ++i) {
    ASSERT_EQ(wh_server_publish(sa, "secure", "over tls", 8, WH_TEXT, nullptr), 0);
    f = c.read_data_frame(100);
  }
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "over tls");
  EXPECT_GE(stats_of(sb).received, 1u);
  c.close();
  a.destroy();
  b.destroy();
}

