// local_address_test.cpp — wh_conn_local_address/wh_conn_local_port: a
// connection's own end, on every way a conn is made (accepted, dialled,
// adopted by a server or a client), over IPv4, IPv6 and UNIX sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <vector>
#include <cstdio>
#include <ostream>
#include <string>
#include <thread>

#include "connection.hpp"  // the spill hook
#include "test_util.hpp"

using namespace wht;

namespace {

struct End {
  std::string address;
  int port = -1;
  bool operator==(const End& o) const { return address == o.address && port == o.port; }
};

std::ostream& operator<<(std::ostream& os, const End& e) { return os << e.address << " port " << e.port; }

// Read under a reference of ours: the I/O thread may free the conn right
// after (its peer, a socket of the test's, closes), and the release orders
// these reads before that.
End local_of(wh_conn* c) {
  wh_conn_retain(c);
  const char* a = wh_conn_local_address(c);
  End e{a ? a : "(null)", wh_conn_local_port(c)};
  wh_conn_release(c);
  return e;
}
End remote_of(wh_conn* c) {
  wh_conn_retain(c);
  const char* a = wh_conn_remote_address(c);
  End e{a ? a : "(null)", wh_conn_remote_port(c)};
  wh_conn_release(c);
  return e;
}

// The socket's own end as the kernel says, for the test's sockets.
End sock_end(int fd, bool peer = false) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return {};
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    return {text, ntohs(a->sin_port)};
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
  return {text, ntohs(a->sin6_port)};
}

// A blocking TCP connect to host:port; -1 on failure.
int tcp_connect(const char* host, int port) {
  sockaddr_storage ss{};
  socklen_t len;
  if (std::string(host).find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET6, host, &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host, &a->sin_addr);
    len = sizeof *a;
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class LocalAddress : public ::testing::Test {
 protected:
  void SetUp() override { hub_.set_handler(echo_handler); }
  void TearDown() override { hub_.destroy(); }

  wh_server* listen(const char* host, int flags = 0) {
    wh_server_options o = server_options();
    o.host = host;
    o.flags = flags;
    return hub_.listen(o);
  }
  // An engine client to url, open; nullptr if it did not open.
  wh_conn* dial(const std::string& url) {
    wh_client_options o = client_options();
    wh_conn* c = nullptr;
    if (wh_connect(hub_.get(), url.c_str(), &o, &c) != 0) return nullptr;
    auto first = hub_.rec().wait_event(0, c);
    return first && first->type == WH_EV_OPEN ? c : nullptr;
  }
  // The server's conn of the engine client `c` (its peer is c's local port).
  wh_conn* server_side_of(wh_conn* c) { return hub_.rec().wait_server_conn(wh_conn_local_port(c)); }

  // Both engine ends over host: each one's local end is the other's remote.
  void dial_and_compare(const char* host, const char* shown) {
    wh_server* s = listen(host);
    ASSERT_NE(s, nullptr);
    const int port = wh_server_port(s);
    wh_conn* c = dial(ws_url(port, "/", host));
    ASSERT_NE(c, nullptr) << hub_.rec().dump();
    wh_conn* sc = server_side_of(c);
    ASSERT_NE(sc, nullptr) << hub_.rec().dump();
    EXPECT_EQ(local_of(sc), (End{shown, port}));
    EXPECT_EQ(remote_of(c), (End{shown, port}));
    EXPECT_EQ(local_of(c).address, shown);
    EXPECT_GT(local_of(c).port, 0);
    EXPECT_NE(local_of(c).port, port);
    EXPECT_EQ(local_of(c), remote_of(sc));
  }

  TestHub hub_;
};

}  // namespace

TEST(LocalAddressArgs, ANullConnIsInvalid) {
  EXPECT_EQ(wh_conn_local_address(nullptr), nullptr);
  EXPECT_EQ(wh_conn_local_port(nullptr), WH_EINVAL);
}

TEST_F(LocalAddress, IPv4ServerAndClientEachAnswerTheirOwnEnd) { dial_and_compare("127.0.0.1", "127.0.0.1"); }

TEST_F(LocalAddress, IPv6ServerAndClientEachAnswerTheirOwnEnd) {
  if (!ipv6_available()) GTEST_SKIP() << "no IPv6 loopback";
  dial_and_compare("::1", "::1");
}

TEST_F(LocalAddress, AWildcardServerAnswersTheAddressEachPeerReached) {
  // 0.0.0.0: each connection asks its socket (not the listening address).
  wh_server* s = listen("0.0.0.0");
  ASSERT_NE(s, nullptr);
  const int port = wh_server_port(s);
  RawClient raw;
  ASSERT_TRUE(raw.connect(port, "127.0.0.1"));
  ASSERT_TRUE(raw.send_raw(upgrade_request()));
  ASSERT_EQ(raw.read_http_response().status, 101);
  wh_conn* sc = hub_.rec().wait_server_conn(raw.local_port());
  ASSERT_NE(sc, nullptr);
  EXPECT_EQ(local_of(sc), (End{"127.0.0.1", port}));
  EXPECT_EQ(remote_of(sc), sock_end(raw.fd()));
}

TEST_F(LocalAddress, ADualStackServerShowsAnIPv4PeersEndAsIPv4AndAnIPv6OnesAsIPv6) {
  if (!ipv6_available()) GTEST_SKIP() << "no IPv6 loopback";
  wh_server* s = listen("::");
  ASSERT_NE(s, nullptr);
  const int port = wh_server_port(s);
  wh_conn* four = dial(ws_url(port, "/", "127.0.0.1"));
  ASSERT_NE(four, nullptr) << hub_.rec().dump();
  wh_conn* six = dial(ws_url(port, "/", "::1"));
  ASSERT_NE(six, nullptr) << hub_.rec().dump();
  wh_conn* s4 = server_side_of(four);
  wh_conn* s6 = server_side_of(six);
  ASSERT_TRUE(s4 && s6) << hub_.rec().dump();
  EXPECT_EQ(local_of(s4), (End{"127.0.0.1", port}));
  EXPECT_EQ(remote_of(s4), local_of(four));
  EXPECT_EQ(local_of(s6), (End{"::1", port}));
  EXPECT_EQ(remote_of(s6), local_of(six));
}

TEST_F(LocalAddress, AnUpgradeRequestAnswersTheServersEndBeforeItIsAccepted) {
  // The host's upgrade hook sees both ends of the request's socket (ws's
  // request.socket does), on a wildcard server too.
  wh_server* s = listen("0.0.0.0", WH_SERVER_UPGRADE_HOOK);
  ASSERT_NE(s, nullptr);
  const int port = wh_server_port(s);
  struct Seen {
    std::mutex mu;
    std::vector<End> ends;
  } seen;
  hub_.set_handler([&seen](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_UPGRADE) return;
    {
      std::lock_guard<std::mutex> lk(seen.mu);
      const char* a = wh_request_local_address(ev.request);
      seen.ends.push_back({a ? a : "(null)", wh_request_local_port(ev.request)});
    }
    wh_request_accept(ev.request, nullptr, nullptr, nullptr);
  });
  RawClient raw;
  ASSERT_TRUE(raw.connect(port, "127.0.0.1"));
  ASSERT_TRUE(raw.send_raw(upgrade_request()));
  ASSERT_EQ(raw.read_http_response().status, 101);
  std::lock_guard<std::mutex> lk(seen.mu);
  ASSERT_EQ(seen.ends.size(), 1u);
  EXPECT_EQ(seen.ends[0], (End{"127.0.0.1", port}));
  EXPECT_EQ(wh_request_local_address(nullptr), nullptr);
  EXPECT_EQ(wh_request_local_port(nullptr), WH_EINVAL);
}

TEST_F(LocalAddress, ManyConnectionsOnOneAddressShareOneText) {
  // The text is kept once per address, not per connection; each still has
  // its own port.
  wh_server* s = listen("127.0.0.1");
  ASSERT_NE(s, nullptr);
  wh_conn* a = dial(ws_url(wh_server_port(s)));
  wh_conn* b = dial(ws_url(wh_server_port(s)));
  ASSERT_TRUE(a && b) << hub_.rec().dump();
  EXPECT_EQ(wh_conn_local_address(a), wh_conn_local_address(b));
  EXPECT_NE(wh_conn_local_port(a), wh_conn_local_port(b));
}

TEST_F(LocalAddress, AClosedButRetainedConnStillAnswers) {
  wh_server* s = listen("127.0.0.1");
  ASSERT_NE(s, nullptr);
  wh_conn* c = dial(ws_url(wh_server_port(s)));
  ASSERT_NE(c, nullptr);
  const End before = local_of(c);
  ASSERT_EQ(wh_conn_retain(c), 0);
  ASSERT_EQ(wh_conn_close(c, 1000, nullptr, 0), 0);
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_CLOSE, c).has_value());
  EXPECT_EQ(local_of(c), before);
  EXPECT_EQ(wh_conn_release(c), 0);
}

TEST_F(LocalAddress, AClientThatNeverConnectedHasNone) {
  wh_client_options o = client_options();
  wh_conn* c = nullptr;
  ASSERT_EQ(wh_connect(hub_.get(), ws_url(unused_port()).c_str(), &o, &c), 0);
  ASSERT_EQ(wh_conn_retain(c), 0);
  auto cl = hub_.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(cl.has_value());
  EXPECT_EQ(cl->error, WH_ECONNREFUSED) << wh_err_name(cl->error);
  EXPECT_EQ(local_of(c), (End{"", 0}));
  EXPECT_EQ(remote_of(c), (End{"", 0}));
  EXPECT_EQ(wh_conn_release(c), 0);
}

TEST_F(LocalAddress, AnAdoptedTcpSocketAnswersItsOwnEndNotTheServers) {
  // The host accepted on a listener of its own: the adopting server (no
  // listening socket of its own here) answers that socket's end.
  wh_server* s = listen("127.0.0.1", WH_SERVER_NO_LISTEN);
  ASSERT_NE(s, nullptr);
  RawListener host;
  ASSERT_TRUE(host.ok());
  RawClient peer;
  ASSERT_TRUE(peer.connect(host.port(), "127.0.0.1"));
  auto accepted = host.accept();
  ASSERT_TRUE(accepted.has_value());
  const int fd = ::dup(accepted->fd());
  ASSERT_GE(fd, 0);
  accepted->close();
  const std::string req = upgrade_request();
  ASSERT_EQ(wh_server_adopt(s, fd, req.data(), req.size(), "192.0.2.7", 4242), 0);
  ASSERT_EQ(peer.read_http_response().status, 101);
  wh_conn* sc = hub_.rec().wait_server_conn(4242);
  ASSERT_NE(sc, nullptr) << hub_.rec().dump();
  EXPECT_EQ(local_of(sc), (End{"127.0.0.1", host.port()}));
  EXPECT_EQ(remote_of(sc), (End{"192.0.2.7", 4242})) << "the host's word for the peer is kept";
}

TEST_F(LocalAddress, AListeningServerAdoptingATcpSocketAnswersThatSocketsEnd) {
  // Not the listening address it would have shared with accepted conns.
  wh_server* s = listen("127.0.0.1");
  ASSERT_NE(s, nullptr);
  RawListener host;
  ASSERT_TRUE(host.ok());
  ASSERT_NE(host.port(), wh_server_port(s));
  RawClient peer;
  ASSERT_TRUE(peer.connect(host.port(), "127.0.0.1"));
  auto accepted = host.accept();
  ASSERT_TRUE(accepted.has_value());
  const int fd = ::dup(accepted->fd());
  accepted->close();
  const std::string req = upgrade_request();
  ASSERT_EQ(wh_server_adopt(s, fd, req.data(), req.size(), nullptr, 0), 0);
  ASSERT_EQ(peer.read_http_response().status, 101);
  wh_conn* sc = hub_.rec().wait_server_conn(peer.local_port());
  ASSERT_NE(sc, nullptr) << hub_.rec().dump();
  EXPECT_EQ(local_of(sc), (End{"127.0.0.1", host.port()}));
}

TEST_F(LocalAddress, AnAdoptedSocketpairEndHasNoneAsItHasNoPeerAddress) {
  wh_server* s = listen("127.0.0.1", WH_SERVER_NO_LISTEN);
  ASSERT_NE(s, nullptr);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  RawClient peer(sv[0]);
  const std::string req = upgrade_request();
  ASSERT_EQ(wh_server_adopt(s, sv[1], req.data(), req.size(), nullptr, 0), 0);
  ASSERT_EQ(peer.read_http_response().status, 101);
  auto open = hub_.rec().wait_event(WH_EV_OPEN);
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(local_of(open->conn), (End{"", 0}));
  EXPECT_EQ(remote_of(open->conn), (End{"", 0}));
}

TEST_F(LocalAddress, AnAdoptedClientSocketAnswersItsOwnEnd) {
  // TCP: the host dialled and did the handshake (a proxy agent, say).
  RawListener server;
  ASSERT_TRUE(server.ok());
  const int fd = tcp_connect("127.0.0.1", server.port());
  ASSERT_GE(fd, 0);
  const End mine = sock_end(fd);
  auto far = server.accept();
  ASSERT_TRUE(far.has_value());
  wh_client_options o = client_options();
  wh_conn* c = nullptr;
  ASSERT_EQ(wh_client_adopt(hub_.get(), fd, &o, nullptr, nullptr, nullptr, 0, &c), 0);
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_OPEN, c).has_value());
  EXPECT_EQ(local_of(c), mine);
  EXPECT_EQ(local_of(c).address, "127.0.0.1");
  EXPECT_EQ(remote_of(c), (End{"127.0.0.1", server.port()}));

  // A socketpair end: none, as for the peer.
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  RawClient other(sv[0]);
  wh_conn* p = nullptr;
  ASSERT_EQ(wh_client_adopt(hub_.get(), sv[1], &o, nullptr, nullptr, nullptr, 0, &p), 0);
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_OPEN, p).has_value());
  EXPECT_EQ(local_of(p), (End{"", 0}));
  EXPECT_EQ(remote_of(p), (End{"", 0}));
}

TEST_F(LocalAddress, AnAdoptedIPv6ClientSocketAnswersItsOwnEnd) {
  if (!ipv6_available()) GTEST_SKIP() << "no IPv6 loopback";
  wh_server* s = listen("::1");
  ASSERT_NE(s, nullptr);
  const int fd = tcp_connect("::1", wh_server_port(s));
  ASSERT_GE(fd, 0);
  const End mine = sock_end(fd);
  // The engine's server answers the upgrade; the client is adopted after.
  RawClient handshake(fd);
  ASSERT_TRUE(handshake.send_raw(upgrade_request()));
  ASSERT_EQ(handshake.read_http_response().status, 101);
  wh_client_options o = client_options();
  wh_conn* c = nullptr;
  ASSERT_EQ(wh_client_adopt(hub_.get(), ::dup(fd), &o, nullptr, nullptr, nullptr, 0, &c), 0);
  handshake.close();
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_OPEN, c).has_value());
  EXPECT_EQ(mine.address, "::1");
  EXPECT_EQ(local_of(c), mine);
  EXPECT_EQ(remote_of(c), (End{"::1", wh_server_port(s)}));
}

TEST_F(LocalAddress, AWsUnixClientAndTheServerThatAdoptedItsPeerHaveNone) {
  wh_server* s = listen("127.0.0.1", WH_SERVER_NO_LISTEN);
  ASSERT_NE(s, nullptr);
  const std::string path = "/tmp/wirehub-local-" + std::to_string(::getpid()) + ".sock";
  const int lfd = unix_listen(path);
  ASSERT_GE(lfd, 0);
  std::atomic<int> adopted{1};
  std::thread acceptor = adopt_one(lfd, s, adopted);
  wh_conn* c = dial("ws+unix://" + path + ":/");
  acceptor.join();
  ::close(lfd);
  ::unlink(path.c_str());
  ASSERT_EQ(adopted.load(), 0);
  ASSERT_NE(c, nullptr) << hub_.rec().dump();
  EXPECT_EQ(local_of(c), (End{"", 0}));
  EXPECT_EQ(remote_of(c), (End{"", 0}));
  ASSERT_TRUE(hub_.rec().wait_count(WH_EV_OPEN, 2)) << hub_.rec().dump();
  wh_conn* sc = nullptr;
  for (auto& e : hub_.rec().events(WH_EV_OPEN))
    if (e.server) sc = e.conn;
  ASSERT_NE(sc, nullptr);
  EXPECT_EQ(local_of(sc), (End{"", 0}));
}

TEST_F(LocalAddress, PastTheSharedTablesSizeEachConnKeepsItsOwnText) {
  // Past the 4095 addresses the process-wide table keeps (an AnyIP route
  // makes local addresses as many as the peers), the rest are kept per
  // connection, still answer, and go with their connection. The hook makes
  // every address spill, so 127.0.0.1 and ::1 are enough.
  wh_server* s = listen("::");
  ASSERT_NE(s, nullptr);
  const int port = wh_server_port(s);
  const std::size_t before = wirehub::local_address_spilled_for_test();
  wirehub::local_address_spill_for_test(true);
  struct Reset {
    ~Reset() { wirehub::local_address_spill_for_test(false); }
  } reset;
  wh_conn* v4 = dial(ws_url(port));
  wh_conn* v6 = dial("ws://[::1]:" + std::to_string(port) + "/");
  ASSERT_NE(v4, nullptr);
  ASSERT_NE(v6, nullptr);
  ASSERT_TRUE(hub_.rec().wait_count(WH_EV_OPEN, 4)) << hub_.rec().dump();
  std::vector<End> servers;
  for (auto& e : hub_.rec().events(WH_EV_OPEN))
    if (e.server) servers.push_back(local_of(e.conn));
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0].port, port);
  EXPECT_EQ(servers[1].port, port);
  EXPECT_TRUE((servers[0].address == "127.0.0.1" && servers[1].address == "::1") ||
              (servers[0].address == "::1" && servers[1].address == "127.0.0.1"))
      << servers[0] << ", " << servers[1];
  EXPECT_EQ(local_of(v4).address, "127.0.0.1");
  EXPECT_EQ(local_of(v6).address, "::1");
  EXPECT_EQ(wirehub::local_address_spilled_for_test(), before + 4) << "two clients, two server conns";
  ASSERT_EQ(wh_conn_close(v4, 1000, nullptr, 0), 0);
  ASSERT_EQ(wh_conn_close(v6, 1000, nullptr, 0), 0);
  ASSERT_TRUE(hub_.rec().wait_count(WH_EV_CLOSE, 4)) << hub_.rec().dump();
  hub_.destroy();  // every conn freed: nothing of theirs is kept
  EXPECT_EQ(wirehub::local_address_spilled_for_test(), before);
}
