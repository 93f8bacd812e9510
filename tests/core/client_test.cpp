// client_test.cpp — wh_connect(): against our own server for the happy paths,
// against a raw TCP fake server for the client's own protocol checks.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace wht;

namespace {

// Our own server with an echo handler, plus a client on the same hub.
class Client : public ::testing::Test {
 protected:
  void SetUp() override { start(server_options()); }
  // Stop the I/O threads before any member a handler may use goes away.
  void TearDown() override { hub_.destroy(); }
  void start(wh_server_options o) {
    hub_.set_handler(echo_handler);
    server_ = hub_.listen(o);
    ASSERT_NE(server_, nullptr);
    port_ = wh_server_port(server_);
    ASSERT_GT(port_, 0);
  }
  wh_conn* connect(const std::string& url, const wh_client_options* o = nullptr) {
    wh_client_options def = client_options();
    wh_conn* c = nullptr;
    int rc = wh_connect(hub_.get(), url.c_str(), o ? o : &def, &c);
    EXPECT_EQ(rc, 0) << url << ": " << wh_err_name(rc);
    EXPECT_NE(c, nullptr);
    return rc == 0 ? c : nullptr;
  }
  bool wait_open(wh_conn* c) {
    auto e = hub_.rec().wait_event(0, c);  // the first event of a conn
    if (!e) {
      ADD_FAILURE() << "no event for conn " << c << " within " << kTimeoutMs << " ms\n" << hub_.rec().dump();
      return false;
    }
    EXPECT_EQ(e->type, WH_EV_OPEN) << hub_.rec().dump();
    return e->type == WH_EV_OPEN;
  }
  Event wait_close(wh_conn* c) {
    auto e = hub_.rec().wait_event(WH_EV_CLOSE, c);
    EXPECT_TRUE(e.has_value()) << "no WH_EV_CLOSE\n" << hub_.rec().dump();
    return e.value_or(Event{});
  }

  TestHub hub_;
  wh_server* server_ = nullptr;
  int port_ = 0;
};

// Fake server: runs `script` on the first accepted socket in a thread.
class FakeServer {
 public:
  explicit FakeServer(std::function<void(RawClient&)> script) {
    thread_ = std::thread([this, script] {
      auto s = listener_.accept(kTimeoutMs);
      if (!s) return;
      accepted_ = true;
      script(*s);
    });
  }
  ~FakeServer() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return listener_.port(); }
  bool accepted() const { return accepted_; }

 private:
  RawListener listener_;
  std::atomic<bool> accepted_{false};
  std::thread thread_;
};

// Answers the upgrade request read from `s` with 101 and `extra` headers; the
// accept value is correct unless `accept` is given.
std::string answer_101(RawClient& s, const std::string& extra = {}, const char* accept = nullptr) {
  auto head = s.read_http_head();
  if (!head) return {};
  auto key = head_header(*head, "Sec-WebSocket-Key").value_or("");
  std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: " +
                     (accept ? std::string(accept) : websocket_accept(key)) + "\r\n" + extra + "\r\n";
  s.send_raw(resp);
  return *head;
}

}  // namespace

TEST_F(Client, OpensSendsAndReceivesEcho) {
  static int marker;
  wh_client_options o = client_options();
  o.user_data = &marker;
  wh_conn* c = connect(ws_url(port_, "/echo"), &o);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(wait_open(c));
  auto open = hub_.rec().wait_event(WH_EV_OPEN, c);
  EXPECT_EQ(open->server, nullptr) << "client conns belong to no server";
  EXPECT_EQ(open->status_text, "Switching Protocols") << "the 101's own reason phrase";
  for (const Event& e : hub_.rec().events(WH_EV_OPEN)) {
    if (e.server) {
      EXPECT_TRUE(e.status_text_null) << "a server conn's OPEN has no response";
    }
  }
  EXPECT_EQ(open->user_data, &marker);
  EXPECT_EQ(wh_conn_user_data(c), &marker);

  ASSERT_GE(wh_conn_send(c, "hi", 2, WH_TEXT), 0);
  std::string bin = random_bytes(70000);
  ASSERT_GE(wh_conn_send(c, bin.data(), bin.size(), WH_BINARY), 0);
  ASSERT_TRUE(hub_.rec().wait_count(WH_EV_MESSAGE, 2, c)) << hub_.rec().dump();
  auto msgs = hub_.rec().events(WH_EV_MESSAGE, c);
  EXPECT_EQ(msgs[0].data, "hi");
  EXPECT_EQ(msgs[0].flags & (WH_TEXT | WH_BINARY), WH_TEXT);
  EXPECT_EQ(msgs[0].user_data, &marker);
  EXPECT_TRUE(msgs[1].data == bin);
  EXPECT_EQ(msgs[1].flags & (WH_TEXT | WH_BINARY), WH_BINARY);

  ASSERT_TRUE(hub_.rec().wait_for([](const std::vector<Event>& evs) {
    for (auto& e : evs)
      if (e.type == WH_EV_OPEN && e.server) return true;
    return false;
  }));

  ASSERT_EQ(wh_conn_close(c, 1000, "done", 4), 0);
  Event e = wait_close(c);
  EXPECT_EQ(e.code, 1000);
  EXPECT_EQ(e.error, 0) << wh_err_name(e.error);
  // The server side saw the same close.
  ASSERT_TRUE(hub_.rec().wait_for([](const std::vector<Event>& evs) {
    for (auto& e : evs)
      if (e.type == WH_EV_CLOSE && e.server) return e.code == 1000 && e.data == "done";
    return false;
  })) << hub_.rec().dump();
}

TEST_F(Client, RemoteAddressAndPortAreTheServers) {
  wh_conn* c = connect(ws_url(port_));
  ASSERT_TRUE(wait_open(c));
  const char* addr = wh_conn_remote_address(c);
  ASSERT_NE(addr, nullptr);
  EXPECT_STREQ(addr, "127.0.0.1");
  EXPECT_EQ(wh_conn_remote_port(c), port_);
  const char* sp = wh_conn_subprotocol(c);
  ASSERT_NE(sp, nullptr);
  EXPECT_STREQ(sp, "") << "no subprotocol negotiated";
  const char* ext = wh_conn_extensions(c);
  ASSERT_NE(ext, nullptr);
  EXPECT_STREQ(ext, "");
}

TEST_F(Client, PingIsAnsweredByServer) {
  wh_conn* c = connect(ws_url(port_));
  ASSERT_TRUE(wait_open(c));
  ASSERT_EQ(wh_conn_ping(c, "abc", 3), 0);
  auto p = hub_.rec().wait_event(WH_EV_PONG, c);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->data, "abc");
}

class ClientChatServer : public Client {
 protected:
  void SetUp() override {
    wh_server_options o = server_options();
    o.subprotocols = "chat, superchat";
    start(o);
  }
};

TEST_F(ClientChatServer, SubprotocolFollowsServerPreference) {
  wh_client_options o = client_options();
  o.subprotocols = "superchat, chat";
  wh_conn* c = connect(ws_url(port_), &o);
  ASSERT_TRUE(wait_open(c));
  ASSERT_NE(wh_conn_subprotocol(c), nullptr);
  EXPECT_STREQ(wh_conn_subprotocol(c), "chat");
}

TEST_F(ClientChatServer, OfferedSubprotocolsUnansweredFailLikeBrowsers) {
  // RFC 6455 would let the client go on without a subprotocol; browsers (and
  // this engine) fail the handshake instead, so an application that asked for
  // one never runs without it.
  wh_client_options o = client_options();
  o.subprotocols = "other";
  wh_conn* c = connect(ws_url(port_), &o);
  ASSERT_NE(c, nullptr);
  Event e = wait_close(c);
  EXPECT_EQ(e.error, WH_EHANDSHAKE) << wh_err_name(e.error);
  EXPECT_EQ(hub_.rec().count(WH_EV_OPEN, c), 0u);
}

class ClientHooked : public Client {
 protected:
  struct Seen {
    std::mutex mu;
    std::string target, path, query, token, other, origin, protos;
  };
  void SetUp() override {
    wh_server_options o = server_options();
    o.flags = WH_SERVER_UPGRADE_HOOK;
    seen_ = std::make_shared<Seen>();
    auto seen = seen_;
    auto& status = status_;
    start(o);
    hub_.set_handler([seen, &status](wh_hub*, const wh_event& ev) {
      if (ev.type == WH_EV_MESSAGE && ev.server) echo_handler(nullptr, ev);
      if (ev.type != WH_EV_UPGRADE) return;
      auto str = [](const char* p) { return p ? std::string(p) : std::string("(null)"); };
      {
        std::lock_guard<std::mutex> lk(seen->mu);
        seen->target = str(wh_request_target(ev.request));
        seen->path = str(wh_request_path(ev.request));
        seen->query = str(wh_request_query(ev.request));
        seen->token = str(wh_request_header(ev.request, "X-Token"));
        seen->other = str(wh_request_header(ev.request, "X-Other"));
        seen->origin = str(wh_request_header(ev.request, "Origin"));
        seen->protos = str(wh_request_subprotocols(ev.request));
      }
      int st = status.load();
      const char* offered = wh_request_subprotocols(ev.request);
      const bool v1 = offered && header_has_token(offered, "v1");
      if (st == 101)
        wh_request_accept(ev.request, v1 ? "v1" : nullptr, "X-Server: yes\r\n", nullptr);
      else
        wh_request_respond(ev.request, st, "WWW-Authenticate: Bearer realm=\"test\"\r\n", "denied", 6);
    });
  }
  std::shared_ptr<Seen> seen_;
  std::atomic<int> status_{101};
};

TEST_F(ClientHooked, ExtraHeadersOriginPathAndSubprotocolsReachTheUpgradeHook) {
  wh_client_options o = client_options();
  o.headers = "X-Token: abc\r\nX-Other: 1\r\n";
  o.origin = "http://example.test";
  o.subprotocols = "v2, v1";
  wh_conn* c = connect(ws_url(port_, "/room/7?a=b&c=d"), &o);
  ASSERT_TRUE(wait_open(c));
  {
    std::lock_guard<std::mutex> lk(seen_->mu);
    EXPECT_EQ(seen_->target, "/room/7?a=b&c=d");
    EXPECT_EQ(seen_->path, "/room/7");
    EXPECT_EQ(seen_->query, "a=b&c=d");
    EXPECT_EQ(seen_->token, "abc");
    EXPECT_EQ(seen_->other, "1");
    EXPECT_EQ(seen_->origin, "http://example.test");
    EXPECT_EQ(seen_->protos, "v2, v1");
  }
  ASSERT_NE(wh_conn_subprotocol(c), nullptr);
  EXPECT_STREQ(wh_conn_subprotocol(c), "v1");
  // The client's WH_EV_OPEN carries the server's 101 headers as sent.
  auto open = hub_.rec().events(WH_EV_OPEN, c);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_NE(open[0].headers.find("X-Server: yes\r\n"), std::string::npos) << open[0].headers;
  EXPECT_NE(open[0].headers.find("Sec-WebSocket-Accept: "), std::string::npos) << open[0].headers;
}

TEST_F(ClientHooked, WsUnixUrlConnectsThroughTheSocketAndRequestsThePathAfterTheColon) {
  // ws's form: ws+unix:///socket/path:/request/path. The server end is a
  // UNIX listener whose accepted socket the server adopts.
  const std::string path = "/tmp/wirehub-test-" + std::to_string(::getpid()) + ".sock";
  const int lfd = unix_listen(path);
  ASSERT_GE(lfd, 0);
  std::atomic<int> adopted{1};
  std::thread acceptor = adopt_one(lfd, server_, adopted);
  wh_conn* c = connect("ws+unix://" + path + ":/room/7?a=b");
  const bool opened = wait_open(c);
  acceptor.join();
  ::close(lfd);
  ::unlink(path.c_str());
  EXPECT_EQ(adopted.load(), 0);
  ASSERT_TRUE(opened);
  std::lock_guard<std::mutex> lk(seen_->mu);
  EXPECT_EQ(seen_->target, "/room/7?a=b");
}

TEST_F(ClientHooked, UrlWithoutPathRequestsSlash) {
  wh_conn* c = connect("ws://127.0.0.1:" + std::to_string(port_));
  ASSERT_TRUE(wait_open(c));
  std::lock_guard<std::mutex> lk(seen_->mu);
  EXPECT_EQ(seen_->target, "/");
  EXPECT_EQ(seen_->query, "");
}

TEST_F(ClientHooked, UrlWithQueryButNoPathRequestsSlashWithQuery) {
  wh_conn* c = connect("ws://127.0.0.1:" + std::to_string(port_) + "?x=1");
  ASSERT_TRUE(wait_open(c));
  std::lock_guard<std::mutex> lk(seen_->mu);
  EXPECT_EQ(seen_->path, "/");
  EXPECT_EQ(seen_->query, "x=1");
}

TEST_F(ClientHooked, RefusedHandshakeGivesCloseWithESTATUSAnd401) {
  status_ = 401;
  wh_conn* c = connect(ws_url(port_, "/private"));
  ASSERT_NE(c, nullptr);
  Event e = wait_close(c);
  EXPECT_EQ(e.error, WH_ESTATUS) << wh_err_name(e.error);
  EXPECT_EQ(e.status, 401);
  EXPECT_NE(e.headers.find("WWW-Authenticate"), std::string::npos) << e.headers;
  EXPECT_FALSE(e.status_text_null);
  EXPECT_EQ(e.status_text, "Unauthorized");
  EXPECT_EQ(hub_.rec().count(WH_EV_OPEN, c), 0u) << "a refused conn never opens";
  EXPECT_EQ(hub_.rec().events(0, c).size(), 1u) << "CLOSE is the only event\n" << hub_.rec().dump();
}

TEST_F(Client, ClosedPortGivesECONNREFUSED) {
  int port = unused_port();
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub_.get(), ws_url(port).c_str(), &o, &c), 0)
      << "connection errors are reported by WH_EV_CLOSE, not by wh_connect";
  Event e = wait_close(c);
  EXPECT_EQ(e.error, WH_ECONNREFUSED) << wh_err_name(e.error);
  EXPECT_EQ(e.code, 1006);
  EXPECT_EQ(hub_.rec().count(WH_EV_OPEN, c), 0u);
}

TEST_F(Client, BadUrlsFailSynchronouslyWithEURL) {
  const std::string p = std::to_string(port_);
  const std::string urls[] = {
      "",
      "127.0.0.1:" + p + "/",          // no scheme
      "http://127.0.0.1:" + p + "/",   // not a WebSocket scheme
      "ftp://127.0.0.1/",
      "ws://",                         // no host
      "ws:///path",
      "ws://:" + p + "/",
      "ws://127.0.0.1:99999/",         // port out of range
      "ws://127.0.0.1:-1/",
      "ws://127.0.0.1:abc/",
      "ws://[::1/",                    // unterminated IPv6 literal
      "ws//127.0.0.1/",
      "ws+unix://",                    // no socket path
      "ws+unix://:/chat",
      "ws+unix://relative.sock:/",
  };
  for (auto& u : urls) {
    wh_conn* c = nullptr;
    wh_client_options o = client_options();
    EXPECT_EQ(wh_connect(hub_.get(), u.c_str(), &o, &c), WH_EURL) << "'" << u << "'";
  }
  // "an error return means no callback and no event will follow"
  EXPECT_FALSE(hub_.rec().wait_count(WH_EV_CLOSE, 1, nullptr, 200)) << hub_.rec().dump();
}

TEST_F(Client, ControlCharactersOrSpacesInTheUrlFailWithEURLAndSendNothing) {
  // The path and query are copied into the request line: a CR/LF there would
  // let a URL forge headers or a second request (request-line injection).
  RawListener listener;
  const std::string base = "ws://127.0.0.1:" + std::to_string(listener.port());
  const std::string urls[] = {
      base + "/a\r\nX-Injected: 1\r\n\r\nGET /b",
      base + "/a\nb",
      base + "/a\rb",
      base + "/?q=1\r\nX-Injected: 1",
      base + "/a b",
      base + "/a HTTP/1.1\r\nHost: elsewhere",
      base + "/a\tb",
      base + "/a\x7f",
      base + "/a\x01",
      "ws://127.0.0.1\r\n:" + std::to_string(listener.port()) + "/",
      "ws+unix:///tmp/x.sock:/a\r\nX-Injected: 1",
      "ws+unix:///tmp/x.sock:/a b",
      "ws+unix:///tmp/x\n.sock:/",
  };
  for (auto& u : urls) {
    wh_conn* c = nullptr;
    wh_client_options o = client_options();
    EXPECT_EQ(wh_connect(hub_.get(), u.c_str(), &o, &c), WH_EURL) << "'" << u << "'";
    EXPECT_EQ(c, nullptr);
  }
  EXPECT_FALSE(listener.accept(200).has_value()) << "nothing may be sent for a refused URL";
  EXPECT_FALSE(hub_.rec().wait_count(WH_EV_CLOSE, 1, nullptr, 50)) << hub_.rec().dump();
}

TEST_F(Client, CrLfOrNulInHeadersOrOriginFailWithEINVAL) {
  // Header injection through the options: each value is copied into the
  // request, so anything that could end a line or the head is refused.
  const std::string url = ws_url(port_);
  const char* bad_headers[] = {
      "X-A: 1\r\n\r\nGET /smuggled HTTP/1.1\r\n",  // an empty line ends the head
      "X-A: 1\nX-B: 2\r\n",                          // bare LF
      "X-A: 1\rX-B: 2\r\n",                          // bare CR
      "X-A: 1\r\nno colon here\r\n",
      "X-A: \x01\r\n",
      "X A: 1\r\n",                                   // a name must be a token
      ": 1\r\n",
      "\r\n",
  };
  for (const char* h : bad_headers) {
    wh_client_options o = client_options();
    o.headers = h;
    wh_conn* c = nullptr;
    EXPECT_EQ(wh_connect(hub_.get(), url.c_str(), &o, &c), WH_EINVAL) << "headers '" << h << "'";
  }
  const char* bad_origins[] = {"http://a.test\r\nX-Injected: 1", "http://a.test\n", "http://a\x7f.test"};
  for (const char* origin : bad_origins) {
    wh_client_options o = client_options();
    o.origin = origin;
    wh_conn* c = nullptr;
    EXPECT_EQ(wh_connect(hub_.get(), url.c_str(), &o, &c), WH_EINVAL) << "origin '" << origin << "'";
  }
  const char* bad_protocols[] = {"v1\r\nX-Injected: 1", "v1, v2\n", "v1\r"};
  for (const char* p : bad_protocols) {
    wh_client_options o = client_options();
    o.subprotocols = p;
    wh_conn* c = nullptr;
    EXPECT_EQ(wh_connect(hub_.get(), url.c_str(), &o, &c), WH_EINVAL) << "subprotocols '" << p << "'";
  }
  EXPECT_FALSE(hub_.rec().wait_count(WH_EV_CLOSE, 1, nullptr, 100)) << hub_.rec().dump();
  // Well-formed blocks still pass: several lines, a last line without CRLF,
  // an empty value, HTAB and obs-text in a value.
  wh_client_options o = client_options();
  o.headers = "X-A: 1\r\nX-Empty:\r\nX-Tab: a\tb\r\nX-Latin: \xe9t\xe9";
  o.origin = "http://example.test";
  wh_conn* c = connect(url, &o);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(wait_open(c));
}

TEST_F(Client, MissingUnixSocketGivesECONNREFUSED) {
  const std::string path = "/tmp/wirehub-test-missing-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  wh_conn* c = connect("ws+unix://" + path + ":/");
  Event e = wait_close(c);
  EXPECT_EQ(e.error, WH_ECONNREFUSED) << wh_err_name(e.error);
  EXPECT_EQ(e.code, 1006);
}

TEST_F(Client, UppercaseSchemeIsAccepted) {
  wh_conn* c = connect("WS://127.0.0.1:" + std::to_string(port_) + "/");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(wait_open(c));
}

TEST(ClientIPv6, ConnectsToIPv6Loopback) {
  if (!ipv6_available()) GTEST_SKIP() << "no IPv6 loopback";
  TestHub hub;
  hub.set_handler(echo_handler);
  wh_server_options so = server_options();
  so.host = "::1";
  wh_server* s = hub.listen(so);
  ASSERT_NE(s, nullptr);
  int port = wh_server_port(s);
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(port, "/", "::1").c_str(), &o, &c), 0);
  auto first = hub.rec().wait_event(0, c);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->type, WH_EV_OPEN) << hub.rec().dump();
  ASSERT_GE(wh_conn_send(c, "six", 3, WH_TEXT), 0);
  auto m = hub.rec().wait_event(WH_EV_MESSAGE, c);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->data, "six");
  ASSERT_NE(wh_conn_remote_address(c), nullptr);
  EXPECT_STREQ(wh_conn_remote_address(c), "::1");
}

TEST(ClientDns, ConnectsByHostNameLocalhost) {
  // localhost may resolve to ::1 first: the client must try every address.
  TestHub hub;
  hub.set_handler(echo_handler);
  wh_server* s = hub.listen(server_options());  // 127.0.0.1 only
  ASSERT_NE(s, nullptr);
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(wh_server_port(s), "/", "localhost").c_str(), &o, &c), 0);
  auto first = hub.rec().wait_event(0, c);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->type, WH_EV_OPEN) << hub.rec().dump();
}

TEST(ClientDns, ServerListensOnLocalhostName) {
  TestHub hub;
  wh_server_options so = server_options();
  so.host = "localhost";
  wh_server* s = hub.listen(so);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(wh_server_port(s), 0);
}

TEST(ServerPort, PortZeroPicksDistinctFreePorts) {
  TestHub hub;
  wh_server* a = hub.listen(server_options());
  wh_server* b = hub.listen(server_options());
  ASSERT_TRUE(a && b);
  int pa = wh_server_port(a), pb = wh_server_port(b);
  EXPECT_GT(pa, 0);
  EXPECT_LT(pa, 65536);
  EXPECT_GT(pb, 0);
  EXPECT_NE(pa, pb);
  RawClient c;
  EXPECT_TRUE(c.open(pa));
}

// ------------------------------------------------------ fake-server checks
TEST(ClientFake, AGivenKeyIsTheOneSentAndChecked) {
  // A host that shows the request it sent (Node's ClientRequest) chooses
  // the key; the engine sends it and checks the server's accept against it.
  const char* key = "AAECAwQFBgcICQoLDA0ODw==";
  std::string head;
  FakeServer fake([&](RawClient& s) { head = answer_101(s); });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.key = key;
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto first = hub.rec().wait_event(0, c);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->type, WH_EV_OPEN) << "the accept for the given key passes\n" << hub.rec().dump();
  fake.join();
  EXPECT_EQ(head_header(head, "Sec-WebSocket-Key"), std::string(key)) << head;
}

TEST(ClientFake, AHostAmongTheHeadersIsSentInsteadOfTheEnginesOwn) {
  std::string head;
  FakeServer fake([&](RawClient& s) { head = answer_101(s); });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.headers = "host: example.test\r\nX-A: 1\r\n";
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_OPEN, c).has_value()) << hub.rec().dump();
  fake.join();
  EXPECT_EQ(head_header(head, "Host"), std::string("example.test")) << head;
  EXPECT_EQ(head.find("Host: 127.0.0.1"), std::string::npos) << "one Host only\n" << head;
}

// WH_CLIENT_HOST_MASK: ws's generateMask also keys the frames the engine
// makes on its own; the host's callback gives the key.
struct MaskHost {
  std::atomic<int> calls{0};
  static void cb(wh_hub*, wh_conn*, unsigned char key[4], void* ud) {
    auto* self = static_cast<MaskHost*>(ud);
    const int n = ++self->calls;
    key[0] = static_cast<unsigned char>(n);
    key[1] = 0xA1;
    key[2] = 0xB2;
    key[3] = 0xC3;
  }
};

// Opens a client with `flags` against a fake server that runs `script`
// after its 101, and returns what the script read.
static std::vector<Frame> host_masked(int flags, MaskHost& host, std::function<void(RawClient&, std::vector<Frame>&)> script,
                                      std::function<void(wh_conn*)> after_open = {}) {
  std::vector<Frame> got;
  FakeServer fake([&](RawClient& s) {
    answer_101(s);
    script(s, got);
  });
  TestHub hub;
  EXPECT_EQ(wh_hub_set_mask_cb(hub.get(), &MaskHost::cb, &host), 0);
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.flags = flags;
  EXPECT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  EXPECT_TRUE(hub.rec().wait_event(WH_EV_OPEN, c).has_value()) << hub.rec().dump();
  if (after_open) after_open(c);
  fake.join();
  return got;
}

TEST(ClientFake, HostMaskKeysTheAnswerToThePeersClose) {
  MaskHost host;
  auto got = host_masked(WH_CLIENT_HOST_MASK, host, [](RawClient& s, std::vector<Frame>& out) {
    s.send_frame(OP_CLOSE, close_payload(1000, "bye"), FrameOpts().unmasked());
    if (auto f = s.read_frame()) out.push_back(*f);
  });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].opcode, OP_CLOSE);
  EXPECT_EQ(got[0].mask_key, std::string("\x01\xA1\xB2\xC3", 4));
  EXPECT_EQ(got[0].close_code(), 1000);
  EXPECT_EQ(host.calls.load(), 1);
}

TEST(ClientFake, HostMaskKeysTheCloseAfterAProtocolError) {
  MaskHost host;
  auto got = host_masked(WH_CLIENT_HOST_MASK, host, [](RawClient& s, std::vector<Frame>& out) {
    s.send_frame(0x3, "x", FrameOpts().unmasked());  // a reserved opcode: 1002
    if (auto f = s.read_frame()) out.push_back(*f);
  });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].opcode, OP_CLOSE);
  EXPECT_EQ(got[0].close_code(), 1002);
  EXPECT_EQ(got[0].mask_key, std::string("\x01\xA1\xB2\xC3", 4));
}

TEST(ClientFake, ASendWithoutASetKeyAsksTheHostMaskToo) {
  MaskHost host;
  auto got = host_masked(
      WH_CLIENT_HOST_MASK, host,
      [](RawClient& s, std::vector<Frame>& out) {
        if (auto f = s.read_frame()) out.push_back(*f);
      },
      [](wh_conn* c) {
        const unsigned char k[4] = {9, 8, 7, 6};
        ASSERT_EQ(wh_conn_set_mask(c, k), WH_ESTATE) << "not on the I/O thread: refused";
        EXPECT_GE(wh_conn_send(c, "hi", 2, WH_TEXT), 0);
      });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "hi");
  EXPECT_EQ(host.calls.load(), 1) << "a frame the host sends without a set key asks the callback too";
}

TEST(ClientFake, WithoutTheFlagTheMaskCallbackIsNotCalled) {
  MaskHost host;
  auto got = host_masked(0, host, [](RawClient& s, std::vector<Frame>& out) {
    s.send_frame(OP_CLOSE, close_payload(1000, "bye"), FrameOpts().unmasked());
    if (auto f = s.read_frame()) out.push_back(*f);
  });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].opcode, OP_CLOSE);
  EXPECT_EQ(host.calls.load(), 0);
}

TEST(ClientFake, AKeyThatIsNotBase64Of16BytesFailsWithEINVAL) {
  TestHub hub;
  for (const char* bad : {"", "abc", "AAECAwQFBgcICQoLDA0ODw", "AAECAwQFBgcICQoLDA0ODxA=", "AAECAwQFBgcICQoLDA0OD\r\n"}) {
    wh_client_options o = client_options();
    o.key = bad;
    wh_conn* c = nullptr;
    EXPECT_EQ(wh_connect(hub.get(), "ws://127.0.0.1:9/", &o, &c), WH_EINVAL) << "key '" << bad << "'";
  }
}

TEST(ClientFake, TheLayoutBeforeKeyIsStillAccepted) {
  std::string head;
  FakeServer fake([&](RawClient& s) { head = answer_101(s); });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.size = offsetof(wh_client_options, key);
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto first = hub.rec().wait_event(0, c);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->type, WH_EV_OPEN) << hub.rec().dump();
  fake.join();
  EXPECT_EQ(head_header(head, "Sec-WebSocket-Key").value_or("").size(), 24u) << "the engine's own key";
}

TEST(ClientFake, HandshakeRequestIsWellFormedAndFramesAreMasked) {
  std::string head;
  std::optional<Frame> frame;
  FakeServer fake([&](RawClient& s) {
    head = answer_101(s);
    frame = s.read_frame();
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port(), "/p?q=1").c_str(), &o, &c), 0);
  auto first = hub.rec().wait_event(0, c);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->type, WH_EV_OPEN) << hub.rec().dump();
  ASSERT_GE(wh_conn_send(c, "masked?", 7, WH_TEXT), 0);
  fake.join();
  ASSERT_FALSE(head.empty());
  EXPECT_EQ(head.rfind("GET /p?q=1 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_TRUE(head_header(head, "Host").has_value()) << head;
  EXPECT_TRUE(header_has_token(head_header(head, "Upgrade").value_or(""), "websocket")) << head;
  EXPECT_TRUE(header_has_token(head_header(head, "Connection").value_or(""), "upgrade")) << head;
  EXPECT_EQ(head_header(head, "Sec-WebSocket-Version"), std::string("13")) << head;
  auto key = head_header(head, "Sec-WebSocket-Key").value_or("");
  EXPECT_EQ(key.size(), 24u) << "16 random bytes in base64";
  ASSERT_TRUE(frame.has_value());
  EXPECT_TRUE(frame->masked) << "a client must mask every frame";
  EXPECT_EQ(frame->opcode, OP_TEXT);
  EXPECT_EQ(frame->payload, "masked?");
}

TEST(ClientFake, WrongAcceptValueFailsWithEHANDSHAKE) {
  FakeServer fake([](RawClient& s) {
    answer_101(s, {}, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    s.wait_eof(kTimeoutMs);
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->error, WH_EHANDSHAKE) << wh_err_name(e->error);
  EXPECT_EQ(hub.rec().count(WH_EV_OPEN, c), 0u);
}

TEST(ClientFake, SubprotocolNotOfferedFailsWithEHANDSHAKE) {
  FakeServer fake([](RawClient& s) {
    answer_101(s, "Sec-WebSocket-Protocol: evil\r\n");
    s.wait_eof(kTimeoutMs);
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.subprotocols = "good";
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->error, WH_EHANDSHAKE) << wh_err_name(e->error);
  EXPECT_EQ(hub.rec().count(WH_EV_OPEN, c), 0u);
}

TEST(ClientFake, ExtensionNotOfferedFailsWithEHANDSHAKE) {
  FakeServer fake([](RawClient& s) {
    answer_101(s, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    s.wait_eof(kTimeoutMs);
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();  // deflate not enabled
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->error, WH_EHANDSHAKE) << wh_err_name(e->error);
}

TEST(ClientFake, SilentServerHitsHandshakeTimeout) {
  FakeServer fake([](RawClient& s) { s.wait_eof(kTimeoutMs); });  // reads, never answers
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.limits.handshake_timeout_ms = 300;
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->error, WH_ETIMEDOUT) << wh_err_name(e->error);
}

TEST(ClientFake, MaskedFrameFromServerFailsWith1002) {
  std::optional<Frame> reply;
  FakeServer fake([&](RawClient& s) {
    answer_101(s);
    s.send_frame(OP_TEXT, "masked by server", FrameOpts());  // servers must not mask
    reply = s.read_until_close();
    if (reply) s.send_close(reply->close_code());
    s.close();  // the server closes TCP first (RFC 6455 7.1.1)
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  fake.join();
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->code, 1002);
  EXPECT_EQ(e->error, WH_EPROTO) << wh_err_name(e->error);
  EXPECT_EQ(hub.rec().count(WH_EV_MESSAGE, c), 0u);
  ASSERT_TRUE(reply.has_value()) << "client must send a close frame";
  EXPECT_EQ(reply->close_code(), 1002);
  EXPECT_TRUE(reply->masked);
}

TEST(ClientFake, InvalidUtf8FromServerFailsWith1007) {
  std::optional<Frame> reply;
  FakeServer fake([&](RawClient& s) {
    answer_101(s);
    s.send_frame(OP_TEXT, "\xFF", FrameOpts().unmasked());
    reply = s.read_until_close();
    if (reply) s.send_close(reply->close_code());
    s.close();  // the server closes TCP first (RFC 6455 7.1.1)
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  fake.join();
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->code, 1007);
  EXPECT_EQ(e->error, WH_EUTF8) << wh_err_name(e->error);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->close_code(), 1007);
}

TEST(ClientFake, ServerCloseIsEchoedAndReportedClean) {
  std::optional<Frame> reply;
  FakeServer fake([&](RawClient& s) {
    answer_101(s);
    s.send_frame(OP_CLOSE, close_payload(1001, "restart"), FrameOpts().unmasked());
    reply = s.read_until_close();
    s.close();
  });
  TestHub hub;
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, c);
  fake.join();
  ASSERT_TRUE(e.has_value()) << hub.rec().dump();
  EXPECT_EQ(e->code, 1001);
  EXPECT_EQ(e->data, "restart");
  EXPECT_EQ(e->error, 0) << wh_err_name(e->error);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->close_code(), 1001);
}

// wh_conn_set_mask (ws's generateMask): the key a host chose goes on the
// wire for the next frame its call makes, and only that frame.
TEST(ClientFake, SetMaskKeysTheNextFrameOfTheCallOnly) {
  std::string wire;
  FakeServer fake([&](RawClient& s) {
    answer_101(s);
    // Nothing follows the request before the 101: the frames are read raw
    // from the socket, keys and all.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    while (wire.size() < 8 + 8 + 7 + 8 && std::chrono::steady_clock::now() < deadline) {
      pollfd p{s.fd(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char b[256];
      const ssize_t n = ::recv(s.fd(), b, sizeof b, 0);
      if (n <= 0) break;
      wire.append(b, static_cast<std::size_t>(n));
    }
    s.wait_eof(kTimeoutMs);
  });
  TestHub hub;
  std::atomic<int> from_io{1};
  hub.set_handler([&](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_OPEN) return;
    const unsigned char k1[4] = {1, 2, 3, 4}, k2[4] = {9, 9, 9, 9}, k3[4] = {7, 7, 7, 7};
    from_io = wh_conn_set_mask(ev.conn, k1);
    wh_conn_send(ev.conn, "hi", 2, WH_TEXT);
    wh_conn_send(ev.conn, "hi", 2, WH_TEXT);  // the key was taken: a random one
    wh_conn_set_mask(ev.conn, k2);
    wh_conn_ping(ev.conn, "p", 1);
    wh_conn_set_mask(ev.conn, k3);
    wh_conn_set_mask(ev.conn, nullptr);  // forgotten before any frame took it
    wh_conn_close(ev.conn, 1000, nullptr, 0);
  });
  wh_conn* c = nullptr;
  wh_client_options o = client_options();
  o.limits.close_timeout_ms = 200;  // the fake server never answers the close
  ASSERT_EQ(wh_connect(hub.get(), ws_url(fake.port()).c_str(), &o, &c), 0);
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_OPEN, c).has_value()) << hub.rec().dump();
  const unsigned char k[4] = {5, 5, 5, 5};
  EXPECT_EQ(wh_conn_set_mask(c, k), WH_ESTATE) << "not from a thread that frames at once";
  hub.rec().wait_event(WH_EV_CLOSE, c);
  fake.join();
  EXPECT_EQ(from_io.load(), 0);
  ASSERT_GE(wire.size(), 8u + 8u + 7u + 8u);
  EXPECT_EQ(wire.substr(0, 8), std::string("\x81\x82\x01\x02\x03\x04", 6) + char('h' ^ 1) + char('i' ^ 2));
  EXPECT_NE(wire.substr(10, 4), std::string("\x01\x02\x03\x04", 4)) << "the second send has its own key";
  EXPECT_EQ(wire.substr(16, 7), std::string("\x89\x81\x09\x09\x09\x09", 6) + char('p' ^ 9));
  EXPECT_EQ(static_cast<unsigned char>(wire[23]), 0x88);
  EXPECT_NE(wire.substr(25, 4), std::string("\x07\x07\x07\x07", 4)) << "a forgotten key is not used";
}
