// server_handshake_test.cpp — the server's side of the opening handshake
// (RFC 6455 section 4.2), plain HTTP answers, the upgrade hook and limits.
#include <atomic>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace wht;

namespace {

struct Server {
  TestHub hub;
  wh_server* server = nullptr;
  int port = 0;
  explicit Server(wh_server_options o = server_options()) {
    server = hub.listen(o);
    if (server) port = wh_server_port(server);
  }
};

}  // namespace

TEST(ServerHandshake, Answers101WithCorrectAcceptHeaders) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  ASSERT_GT(s.port, 0);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/", {}, kSampleKey);
  ASSERT_TRUE(r.ok) << r.head;
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_EQ(r.header("Sec-WebSocket-Accept"), std::string(kSampleAccept)) << r.head;
  ASSERT_TRUE(r.header("Upgrade").has_value()) << r.head;
  EXPECT_EQ(lower(*r.header("Upgrade")), "websocket");
  ASSERT_TRUE(r.header("Connection").has_value()) << r.head;
  EXPECT_TRUE(header_has_token(*r.header("Connection"), "upgrade")) << r.head;
  EXPECT_FALSE(r.has_header("Sec-WebSocket-Protocol")) << "no subprotocol was offered";
  EXPECT_FALSE(r.has_header("Sec-WebSocket-Extensions")) << "no extension was offered";

  auto open = s.hub.rec().wait_event(WH_EV_OPEN);
  ASSERT_TRUE(open.has_value()) << s.hub.rec().dump();
  EXPECT_EQ(open->server, s.server);
  EXPECT_NE(open->conn, nullptr);
  EXPECT_EQ(open->remote_port, c.local_port());
}

TEST(ServerHandshake, AcceptsRandomKeysAndMixedCaseHeaderValues) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  std::string key = random_key();
  std::string req = "GET /x HTTP/1.1\r\nHost: localhost\r\nupgrade: WebSocket\r\n"
                    "connection: keep-alive, Upgrade\r\nsec-websocket-key: " + key +
                    "\r\nsec-websocket-version: 13\r\n\r\n";
  ASSERT_TRUE(c.send_raw(req));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_EQ(r.header("Sec-WebSocket-Accept"), websocket_accept(key));
}

TEST(ServerHandshake, ConnectionCountFollowsOpenAndClose) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  EXPECT_EQ(wh_server_connections(s.server), 0);
  RawClient a, b;
  ASSERT_TRUE(a.open(s.port));
  ASSERT_TRUE(b.open(s.port));
  EXPECT_TRUE(eventually([&] { return wh_server_connections(s.server) == 2; }))
      << wh_server_connections(s.server);
  a.send_close(1000);
  EXPECT_TRUE(a.wait_eof());
  EXPECT_TRUE(eventually([&] { return wh_server_connections(s.server) == 1; }))
      << wh_server_connections(s.server) << "\n" << s.hub.rec().dump();
}

namespace {
void expect_400_and_closed(int port, const std::string& request) {
  RawClient c;
  ASSERT_TRUE(c.connect(port));
  ASSERT_TRUE(c.send_raw(request));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok) << "no HTTP answer to:\n" << request;
  EXPECT_EQ(r.status, 400) << r.head;
  EXPECT_TRUE(c.wait_eof()) << "socket must be closed after a 400";
}
}  // namespace

TEST(ServerHandshake, MissingKeyGets400AndClose) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  expect_400_and_closed(s.port, upgrade_request("/", {}, /*key=*/""));
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
}

TEST(ServerHandshake, KeyThatIsNot16BytesOfBase64Gets400AndClose) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  expect_400_and_closed(s.port, upgrade_request("/", {}, "c2hvcnQ="));  // "short"
  expect_400_and_closed(s.port, upgrade_request("/", {}, "not base64 at all!!!!!!!"));
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
}

TEST(ServerHandshake, UpgradeWithPostMethodIsRefused) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  std::string req = upgrade_request("/");
  req.replace(0, 3, "POST");
  req.insert(req.find("\r\n\r\n"), "\r\nContent-Length: 0");
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw(req));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok);
  EXPECT_GE(r.status, 400) << r.head;
  EXPECT_LT(r.status, 500) << r.head;
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
}

TEST(ServerHandshake, GarbageRequestLineGets400AndClose) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  expect_400_and_closed(s.port, "HELLO THERE\r\n\r\n");
}

TEST(ServerHandshake, WrongVersionGets426WithSupportedVersion) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw(upgrade_request("/", {}, kSampleKey, "8")));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 426) << r.head;
  EXPECT_EQ(r.header("Sec-WebSocket-Version"), std::string("13")) << r.head;
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
}

TEST(ServerHandshake, OversizedHeaderBlockGets431) {
  wh_server_options o = server_options();
  o.limits.max_header_bytes = 1024;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw(upgrade_request("/", "X-Big: " + std::string(2000, 'a') + "\r\n")));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok) << "expected an HTTP answer, got eof=" << c.eof();
  EXPECT_EQ(r.status, 431) << r.head;
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
}

TEST(ServerHandshake, DefaultHeaderLimitIs8KiB) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  {
    RawClient c;  // ~6 KiB of headers: fine
    ASSERT_TRUE(c.connect(s.port));
    ASSERT_TRUE(c.send_raw(upgrade_request("/", "X-Big: " + std::string(6000, 'a') + "\r\n")));
    HttpResponse r = c.read_http_response();
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.status, 101) << r.head;
  }
  {
    RawClient c;  // ~12 KiB: too big
    ASSERT_TRUE(c.connect(s.port));
    ASSERT_TRUE(c.send_raw(upgrade_request("/", "X-Big: " + std::string(12000, 'a') + "\r\n")));
    HttpResponse r = c.read_http_response();
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.status, 431) << r.head;
  }
}

TEST(ServerHandshake, PlainHttpGetGets426WithoutHttpFlag) {
  Server s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 426) << r.head;
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(s.hub.rec().count(WH_EV_HTTP), 0u);
}

TEST(ServerHandshake, PlainHttpGetReachesHandlerWithHttpFlag) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_HTTP;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  struct Seen {
    std::string method, target, path, query, agent;
    int rc = 1;
  };
  auto seen = std::make_shared<Seen>();
  s.hub.set_handler([seen](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_HTTP) return;
    wh_request* q = ev.request;
    seen->method = wh_request_method(q) ? wh_request_method(q) : "(null)";
    seen->target = wh_request_target(q) ? wh_request_target(q) : "(null)";
    seen->path = wh_request_path(q) ? wh_request_path(q) : "(null)";
    seen->query = wh_request_query(q) ? wh_request_query(q) : "(null)";
    const char* ua = wh_request_header(q, "user-agent");
    seen->agent = ua ? ua : "(null)";
    seen->rc = wh_request_respond(q, 200, "Content-Type: text/plain\r\nX-Served-By: wirehub-test\r\n",
                                  "hello", 5);
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw("GET /status?verbose=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: gtest\r\n\r\n"));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.header("X-Served-By"), std::string("wirehub-test"));
  EXPECT_EQ(r.header("Content-Type"), std::string("text/plain"));
  EXPECT_TRUE(c.wait_eof()) << "keep-alive is not offered: the socket closes after the answer";

  auto ev = s.hub.rec().wait_event(WH_EV_HTTP);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->server, s.server);
  EXPECT_EQ(ev->conn, nullptr);
  EXPECT_EQ(seen->rc, 0);
  EXPECT_EQ(seen->method, "GET");
  EXPECT_EQ(seen->target, "/status?verbose=1");
  EXPECT_EQ(seen->path, "/status");
  EXPECT_EQ(seen->query, "verbose=1");
  EXPECT_EQ(seen->agent, "gtest");
}

TEST(ServerHandshake, HttpHandlerSeesPostMethod) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_HTTP;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  auto method = std::make_shared<std::string>();
  s.hub.set_handler([method](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_HTTP) return;
    *method = wh_request_method(ev.request) ? wh_request_method(ev.request) : "(null)";
    wh_request_respond(ev.request, 404, nullptr, nullptr, 0);
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"));
  HttpResponse r = c.read_http_response();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 404) << r.head;
  ASSERT_TRUE(s.hub.rec().wait_event(WH_EV_HTTP).has_value());
  EXPECT_EQ(*method, "POST");
}

TEST(ServerHandshake, UpgradeHookSeesTheRequestAndAcceptsWithSubprotocolAndHeader) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  static int marker = 42;
  struct Seen {
    std::string method, target, path, query, token, missing, headers, remote, protos;
    int remote_port = 0, rc = 1;
  };
  auto seen = std::make_shared<Seen>();
  s.hub.set_handler([seen](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_UPGRADE) return;
    wh_request* q = ev.request;
    auto str = [](const char* p) { return p ? std::string(p) : std::string("(null)"); };
    seen->method = str(wh_request_method(q));
    seen->target = str(wh_request_target(q));
    seen->path = str(wh_request_path(q));
    seen->query = str(wh_request_query(q));
    seen->token = str(wh_request_header(q, "x-TOKEN"));
    seen->missing = str(wh_request_header(q, "X-Not-There"));
    size_t len = 0;
    const char* h = wh_request_headers(q, &len);
    seen->headers = h ? std::string(h, len) : "(null)";
    seen->remote = str(wh_request_remote_address(q));
    seen->remote_port = wh_request_remote_port(q);
    seen->protos = str(wh_request_subprotocols(q));
    seen->rc = wh_request_accept(q, "beta", "X-Extra: yes\r\n", &marker);
  });

  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/chat?room=1&x=2",
                             "X-Token: abc\r\nSec-WebSocket-Protocol: alpha, beta\r\n");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_EQ(r.header("Sec-WebSocket-Accept"), std::string(kSampleAccept));
  EXPECT_EQ(r.header("Sec-WebSocket-Protocol"), std::string("beta")) << r.head;
  EXPECT_EQ(r.header("X-Extra"), std::string("yes")) << r.head;

  auto up = s.hub.rec().wait_event(WH_EV_UPGRADE);
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->server, s.server);
  EXPECT_NE(up->request, nullptr);
  EXPECT_EQ(seen->rc, 0);
  EXPECT_EQ(seen->method, "GET");
  EXPECT_EQ(seen->target, "/chat?room=1&x=2");
  EXPECT_EQ(seen->path, "/chat");
  EXPECT_EQ(seen->query, "room=1&x=2");
  EXPECT_EQ(seen->token, "abc");
  EXPECT_EQ(seen->missing, "(null)");
  EXPECT_NE(seen->headers.find("X-Token: abc\r\n"), std::string::npos) << seen->headers;
  EXPECT_EQ(seen->remote, "127.0.0.1");
  EXPECT_EQ(seen->remote_port, c.local_port());
  EXPECT_EQ(seen->protos, "alpha, beta");

  auto open = s.hub.rec().wait_event(WH_EV_OPEN);
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->user_data, &marker) << "accept's user_data becomes the conn's user data";
  EXPECT_EQ(wh_conn_user_data(open->conn), &marker);
  const char* sp = wh_conn_subprotocol(open->conn);
  ASSERT_NE(sp, nullptr);
  EXPECT_STREQ(sp, "beta");
}

TEST(ServerHandshake, UpgradeHookQueryIsEmptyWithoutQuestionMark) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  auto query = std::make_shared<std::string>("unset");
  s.hub.set_handler([query](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_UPGRADE) return;
    const char* q = wh_request_query(ev.request);
    *query = q ? q : "(null)";
    const char* p = wh_request_subprotocols(ev.request);
    if (!p || *p) *query += "|bad-subprotocols";
    wh_request_accept(ev.request, nullptr, nullptr, nullptr);
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/plain");
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_FALSE(r.has_header("Sec-WebSocket-Protocol"));
  ASSERT_TRUE(s.hub.rec().wait_event(WH_EV_UPGRADE).has_value());
  EXPECT_EQ(*query, "");
}

TEST(ServerHandshake, UpgradeHookRejectsWith401AndBody) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  auto rc = std::make_shared<std::atomic<int>>(1);
  s.hub.set_handler([rc](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_UPGRADE) return;
    *rc = wh_request_respond(ev.request, 401, "WWW-Authenticate: Bearer\r\n", "go away", 7);
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/secret");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 401) << r.head;
  EXPECT_EQ(r.body, "go away");
  EXPECT_EQ(r.header("WWW-Authenticate"), std::string("Bearer"));
  EXPECT_FALSE(r.has_header("Sec-WebSocket-Accept"));
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
  EXPECT_EQ(s.hub.rec().count(WH_EV_CLOSE), 0u) << "a refused upgrade never became a conn";
  EXPECT_EQ(wh_server_connections(s.server), 0);
}

TEST(ServerHandshake, UpgradeHookMayAnswerLaterFromAnotherThread) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw(upgrade_request("/later")));
  auto up = s.hub.rec().wait_event(WH_EV_UPGRADE);
  ASSERT_TRUE(up.has_value());
  EXPECT_TRUE(c.quiet_for(100)) << "nothing is answered before the application decides";
  const char* path = wh_request_path(up->request);
  ASSERT_NE(path, nullptr);
  EXPECT_STREQ(path, "/later");
  int rc = -100;
  std::thread t([&] { rc = wh_request_accept(up->request, nullptr, nullptr, nullptr); });
  t.join();
  EXPECT_EQ(rc, 0);
  HttpResponse r = c.read_http_response();
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_TRUE(s.hub.rec().wait_event(WH_EV_OPEN).has_value());
}

TEST(ServerHandshake, AcceptWithSubprotocolNotOfferedIsRejected) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  auto rc = std::make_shared<std::atomic<int>>(1);
  s.hub.set_handler([rc](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_UPGRADE) return;
    *rc = wh_request_accept(ev.request, "gamma", nullptr, nullptr);
    if (*rc != 0) wh_request_respond(ev.request, 400, nullptr, nullptr, 0);
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/", "Sec-WebSocket-Protocol: alpha, beta\r\n");
  ASSERT_TRUE(s.hub.rec().wait_event(WH_EV_UPGRADE).has_value());
  EXPECT_EQ(*rc, WH_EINVAL) << "accept must only pick one of the offered subprotocols";
  EXPECT_NE(r.status, 101) << r.head;
}

TEST(ServerHandshake, SubprotocolNegotiationFollowsServerPreference) {
  wh_server_options o = server_options();
  o.subprotocols = "superchat, chat";
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  struct Case {
    const char* offered;
    const char* expected;  // nullptr: no header
  } cases[] = {
      {"chat, superchat", "superchat"},
      {"chat", "chat"},
      {"other, chat", "chat"},
      {"other", nullptr},
  };
  for (auto& k : cases) {
    RawClient c;
    ASSERT_TRUE(c.connect(s.port));
    HttpResponse r = c.upgrade("/", std::string("Sec-WebSocket-Protocol: ") + k.offered + "\r\n");
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.status, 101) << "offered " << k.offered << "\n" << r.head;
    if (k.expected)
      EXPECT_EQ(r.header("Sec-WebSocket-Protocol"), std::string(k.expected)) << "offered " << k.offered;
    else
      EXPECT_FALSE(r.has_header("Sec-WebSocket-Protocol")) << "offered " << k.offered;
  }
  // Several Sec-WebSocket-Protocol headers are one list.
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/", "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: superchat\r\n");
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(r.header("Sec-WebSocket-Protocol"), std::string("superchat")) << r.head;
  auto peer = s.hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(peer, nullptr);
  ASSERT_NE(wh_conn_subprotocol(peer), nullptr);
  EXPECT_STREQ(wh_conn_subprotocol(peer), "superchat");
}

TEST(ServerHandshake, IdleSocketIsClosedAfterHandshakeTimeout) {
  wh_server_options o = server_options();
  o.limits.handshake_timeout_ms = 300;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  RawClient idle, partial;
  ASSERT_TRUE(idle.connect(s.port));
  ASSERT_TRUE(partial.connect(s.port));
  ASSERT_TRUE(partial.send_raw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));  // never finished
  auto t0 = Clock::now();
  EXPECT_TRUE(idle.wait_eof(3000)) << "an idle socket must be closed after handshake_timeout_ms";
  EXPECT_TRUE(partial.wait_eof(3000)) << "a half-sent request must be closed after handshake_timeout_ms";
  EXPECT_GE(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 150);
  EXPECT_EQ(s.hub.rec().count(WH_EV_OPEN), 0u);
}

TEST(ServerHandshake, HandshakeTimeoutDoesNotCloseOpenConnections) {
  wh_server_options o = server_options();
  o.limits.handshake_timeout_ms = 200;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  s.hub.set_handler(echo_handler);
  RawClient c;
  ASSERT_TRUE(c.open(s.port));
  EXPECT_TRUE(c.quiet_for(500));
  ASSERT_TRUE(c.send_text("still here"));
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "still here");
}

TEST(ServerHandshake, ConnectionLimitAnswers503AboveMaxConnections) {
  wh_server_options o = server_options();
  o.max_connections = 2;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  RawClient a, b, c;
  ASSERT_TRUE(a.open(s.port));
  ASSERT_TRUE(b.open(s.port));
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 503) << r.head;
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(wh_server_connections(s.server), 2);

  // Once one leaves, there is room again.
  a.send_close(1000);
  EXPECT_TRUE(a.wait_eof());
  ASSERT_TRUE(eventually([&] { return wh_server_connections(s.server) == 1; }))
      << wh_server_connections(s.server) << "\n" << s.hub.rec().dump();
  RawClient d;
  EXPECT_TRUE(d.open(s.port));
}

TEST(ServerHandshake, ListenOnPortInUseFailsWithEADDRINUSE) {
  TestHub hub;
  wh_server* first = hub.listen(server_options());
  ASSERT_NE(first, nullptr);
  wh_server_options o = server_options();
  o.port = wh_server_port(first);
  wh_server* second = nullptr;
  EXPECT_EQ(wh_server_listen(hub.get(), &o, &second), WH_EADDRINUSE);
}

TEST(ServerHandshake, ListenOnInvalidHostFailsSynchronously) {
  TestHub hub;
  wh_server_options o = server_options();
  o.host = "300.1.2.3";
  wh_server* s = nullptr;
  int rc = wh_server_listen(hub.get(), &o, &s);
  EXPECT_LT(rc, 0);
  EXPECT_TRUE(rc == WH_EADDR || rc == WH_ERESOLVE) << wh_err_name(rc);
}

// WH_SERVER_RAW_UPGRADE: the host validates upgrades itself (the Node
// package answers as ws does), so the engine hands it what it would refuse.
namespace {

struct RawHookServer : Server {
  std::shared_ptr<std::atomic<int>> accept_rc = std::make_shared<std::atomic<int>>(1);
  explicit RawHookServer(std::string answer_subprotocol = {}) : Server(raw_options()) {
    auto rc = accept_rc;
    hub.set_handler([rc, answer_subprotocol](wh_hub*, const wh_event& ev) {
      if (ev.type != WH_EV_UPGRADE) return;
      const std::string method = wh_request_method(ev.request);
      const char* version = wh_request_header(ev.request, "sec-websocket-version");
      if (method != "GET") {
        wh_request_respond(ev.request, 405, "Allow: GET\r\n", "Invalid HTTP method", 19);
        return;
      }
      if (!version || (std::string(version) != "8" && std::string(version) != "13")) {
        wh_request_respond(ev.request, 400, nullptr, "bad version", 11);
        return;
      }
      *rc = wh_request_accept(ev.request, answer_subprotocol.empty() ? nullptr : answer_subprotocol.c_str(),
                              nullptr, nullptr);
      if (*rc != 0) wh_request_respond(ev.request, 400, nullptr, "refused", 7);
    });
  }
  static wh_server_options raw_options() {
    wh_server_options o = server_options();
    o.flags = WH_SERVER_UPGRADE_HOOK | WH_SERVER_RAW_UPGRADE;
    return o;
  }
};

}  // namespace

TEST(ServerHandshakeRaw, ANonGetUpgradeReachesTheHostWhichAnswersIt) {
  RawHookServer s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  std::string req = upgrade_request();
  req.replace(0, 3, "PUT");
  ASSERT_TRUE(c.send_raw(req));
  HttpResponse r = c.read_http_response();
  EXPECT_EQ(r.status, 405) << r.head;
  EXPECT_EQ(r.header("allow").value_or(""), "GET");
  EXPECT_EQ(r.body, "Invalid HTTP method");
}

TEST(ServerHandshakeRaw, Version8IsTheHostsToAccept) {
  RawHookServer s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw(upgrade_request("/", {}, kSampleKey, "8")));
  HttpResponse r = c.read_http_response();
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_EQ(*s.accept_rc, 0);
}

TEST(ServerHandshakeRaw, AcceptStillNeedsAValidKey) {
  RawHookServer s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/", {}, "not-a-key");
  ASSERT_TRUE(s.hub.rec().wait_event(WH_EV_UPGRADE).has_value());
  EXPECT_EQ(*s.accept_rc, WH_EINVAL);
  EXPECT_EQ(r.status, 400) << r.head;
}

TEST(ServerHandshakeRaw, TheHostMayAnswerASubprotocolTheClientDidNotOffer) {
  // As ws's handleProtocols may: the client then fails the handshake.
  RawHookServer s("gamma");
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/", "Sec-WebSocket-Protocol: alpha\r\n");
  EXPECT_EQ(r.status, 101) << r.head;
  EXPECT_EQ(r.header("sec-websocket-protocol").value_or(""), "gamma");
}

TEST(ServerHandshakeRaw, ASubprotocolThatIsNotAHeaderTokenIsRefused) {
  RawHookServer s("a\r\nX-Injected: 1");
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  HttpResponse r = c.upgrade("/", "Sec-WebSocket-Protocol: alpha\r\n");
  EXPECT_EQ(*s.accept_rc, WH_EINVAL);
  EXPECT_EQ(r.status, 400) << r.head;
}

TEST(ServerHandshakeRaw, APlainRequestIsStillPlainHttp) {
  RawHookServer s;
  ASSERT_NE(s.server, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"));  // no Connection: upgrade
  HttpResponse r = c.read_http_response();
  EXPECT_EQ(r.status, 426) << r.head;
  EXPECT_EQ(s.hub.rec().count(WH_EV_UPGRADE), 0u);
}

TEST(ServerHandshakeRaw, HeadersWithTheirOwnContentLengthAreWrittenAsTheyAre) {
  // ws's refusals: Connection, Content-Type, Content-Length, in that order.
  wh_server_options o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK | WH_SERVER_RAW_UPGRADE;
  Server s(o);
  ASSERT_NE(s.server, nullptr);
  auto bad_rc = std::make_shared<std::atomic<int>>(1);
  s.hub.set_handler([bad_rc](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_UPGRADE) return;
    *bad_rc = wh_request_respond(ev.request, 400, "Content-Length: 3\r\n", "four", 4);
    int rc = wh_request_respond(ev.request, 400,
                                "Connection: close\r\nContent-Type: text/html\r\nContent-Length: 22\r\n",
                                "Invalid Upgrade header", 22);
    if (rc != 0) wh_request_respond(ev.request, 500, nullptr, nullptr, 0);
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.port));
  ASSERT_TRUE(c.send_raw(upgrade_request()));
  HttpResponse r = c.read_http_response();
  EXPECT_EQ(*bad_rc, WH_EINVAL) << "a Content-Length that is not the body's";
  EXPECT_EQ(r.head,
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 22\r\n\r\n");
  EXPECT_EQ(r.body, "Invalid Upgrade header");
}
