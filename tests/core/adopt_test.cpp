// adopt_test.cpp — wh_server_adopt: a host that already read the upgrade
// request (Node's http.Server 'upgrade' event) hands the socket over, and the
// connection continues exactly as an accepted one. Also WH_SERVER_NO_LISTEN
// and WH_SERVER_SKIP_UTF8.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "test_util.hpp"

using namespace wht;

namespace {

class Adopt : public ::testing::Test {
 protected:
  void SetUp() override { hub_.set_handler(echo_handler); }
  void TearDown() override {
    peer_.close();
    hub_.destroy();
  }
  void start(int flags) {
    auto o = server_options();
    o.flags = flags;
    server_ = hub_.listen(o);
    ASSERT_NE(server_, nullptr);
  }
  // A connected pair: ours stays a RawClient, the other end is returned for adoption.
  int make_pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    peer_ = RawClient(sv[0]);
    return sv[1];
  }
  // The server side's only conn, from its OPEN event.
  wh_conn* server_conn() {
    auto ev = hub_.rec().wait_event(WH_EV_OPEN);
    return ev ? ev->conn : nullptr;
  }

  TestHub hub_;
  wh_server* server_ = nullptr;
  RawClient peer_;
};

}  // namespace

TEST_F(Adopt, NoListenServerHasNoPortAndAdoptsAnAlreadyReadRequest) {
  start(WH_SERVER_NO_LISTEN);
  EXPECT_EQ(wh_server_port(server_), 0);
  const int fd = make_pair();
  const std::string req = upgrade_request("/chat");
  ASSERT_EQ(wh_server_adopt(server_, fd, req.data(), req.size(), "192.0.2.7", 4242), 0);
  auto res = peer_.read_http_response();
  ASSERT_TRUE(res.ok) << res.head;
  EXPECT_EQ(res.status, 101);
  EXPECT_EQ(res.header("Sec-WebSocket-Accept"), std::string(kSampleAccept));
  wh_conn* c = server_conn();
  ASSERT_NE(c, nullptr);
  EXPECT_STREQ(wh_conn_remote_address(c), "192.0.2.7");
  EXPECT_EQ(wh_conn_remote_port(c), 4242);
  ASSERT_TRUE(peer_.send_text("hello"));
  auto f = peer_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "hello");
}

TEST_F(Adopt, FramesReadTogetherWithTheRequestAreNotLost) {
  start(WH_SERVER_NO_LISTEN);
  const int fd = make_pair();
  const std::string head = upgrade_request() + encode_frame(OP_TEXT, "early") + encode_frame(OP_BINARY, "bird");
  ASSERT_EQ(wh_server_adopt(server_, fd, head.data(), head.size(), nullptr, 0), 0);
  ASSERT_EQ(peer_.read_http_response().status, 101);
  auto a = peer_.read_data_frame();
  auto b = peer_.read_data_frame();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payload, "early");
  EXPECT_EQ(a->opcode, OP_TEXT);
  EXPECT_EQ(b->payload, "bird");
  EXPECT_EQ(b->opcode, OP_BINARY);
}

TEST_F(Adopt, PartialRequestIsCompletedFromTheSocket) {
  start(WH_SERVER_NO_LISTEN);
  const int fd = make_pair();
  const std::string req = upgrade_request();
  const size_t half = req.size() / 2;
  ASSERT_EQ(wh_server_adopt(server_, fd, req.data(), half, nullptr, 0), 0);
  EXPECT_TRUE(peer_.quiet_for(100)) << "answered before the request was complete";
  ASSERT_TRUE(peer_.send_raw(std::string_view(req).substr(half)));
  EXPECT_EQ(peer_.read_http_response().status, 101);
}

TEST_F(Adopt, EmptyHeadReadsTheWholeRequestFromTheSocket) {
  start(WH_SERVER_NO_LISTEN);
  const int fd = make_pair();
  ASSERT_EQ(wh_server_adopt(server_, fd, nullptr, 0, nullptr, 0), 0);
  ASSERT_TRUE(peer_.send_raw(upgrade_request()));
  EXPECT_EQ(peer_.read_http_response().status, 101);
}

TEST_F(Adopt, AdoptedUpgradeGoesThroughTheHook) {
  start(WH_SERVER_NO_LISTEN | WH_SERVER_UPGRADE_HOOK);
  hub_.set_handler([](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_UPGRADE) wh_request_respond(ev.request, 401, nullptr, "no\n", 3);
  });
  const int fd = make_pair();
  const std::string req = upgrade_request("/private");
  ASSERT_EQ(wh_server_adopt(server_, fd, req.data(), req.size(), "127.0.0.1", 1), 0);
  auto up = hub_.rec().wait_event(WH_EV_UPGRADE);
  ASSERT_TRUE(up.has_value());
  auto res = peer_.read_http_response();
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, "no\n");
}

TEST_F(Adopt, MalformedAdoptedRequestGets400) {
  start(WH_SERVER_NO_LISTEN);
  const int fd = make_pair();
  const std::string junk = "NOT HTTP AT ALL\r\n\r\n";
  ASSERT_EQ(wh_server_adopt(server_, fd, junk.data(), junk.size(), nullptr, 0), 0);
  EXPECT_EQ(peer_.read_http_response().status, 400);
}

TEST_F(Adopt, ListeningServerAlsoAdopts) {
  start(0);
  EXPECT_GT(wh_server_port(server_), 0);
  const int fd = make_pair();
  const std::string req = upgrade_request();
  ASSERT_EQ(wh_server_adopt(server_, fd, req.data(), req.size(), nullptr, 0), 0);
  EXPECT_EQ(peer_.read_http_response().status, 101);
  EXPECT_TRUE(eventually([&] { return wh_server_connections(server_) == 1; }));
}

TEST_F(Adopt, ClosingServerRefusesAndClosesTheSocket) {
  start(0);
  // A peer that does not answer the 1001 keeps the closing server (and its
  // handle) alive for the close timeout.
  RawClient lingering;
  ASSERT_TRUE(lingering.open(wh_server_port(server_)));
  ASSERT_NE(server_conn(), nullptr);
  ASSERT_EQ(wh_server_close(server_, 2000), 0);
  const int fd = make_pair();
  const std::string req = upgrade_request();
  EXPECT_EQ(wh_server_adopt(server_, fd, req.data(), req.size(), nullptr, 0), WH_ESHUTDOWN);
  EXPECT_TRUE(peer_.wait_eof()) << "the refused socket must be closed, not leaked";
  // The lingering peer holds the server open: its handle is still valid.
  EXPECT_EQ(hub_.rec().count(WH_EV_SERVER_CLOSED), 0u);
  auto f = lingering.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1001);
  lingering.close();
  EXPECT_TRUE(hub_.rec().wait_event(WH_EV_SERVER_CLOSED).has_value());
}

TEST_F(Adopt, InvalidArgumentsAreRejectedAndTheSocketIsStillClosed) {
  start(WH_SERVER_NO_LISTEN);
  EXPECT_EQ(wh_server_adopt(server_, -1, nullptr, 0, nullptr, 0), WH_EINVAL);
  int fd = make_pair();
  EXPECT_EQ(wh_server_adopt(nullptr, fd, nullptr, 0, nullptr, 0), WH_EINVAL);
  EXPECT_TRUE(peer_.wait_eof());
  fd = make_pair();
  EXPECT_EQ(wh_server_adopt(server_, fd, nullptr, 5, nullptr, 0), WH_EINVAL);
  EXPECT_TRUE(peer_.wait_eof());
  fd = make_pair();
  EXPECT_EQ(wh_server_adopt(server_, fd, nullptr, 0, nullptr, 70000), WH_EINVAL);
  EXPECT_TRUE(peer_.wait_eof());
}

TEST_F(Adopt, SkipUtf8DeliversInvalidTextInsteadOfClosingWith1007) {
  auto o = server_options();
  o.flags = WH_SERVER_SKIP_UTF8;
  server_ = hub_.listen(o);
  ASSERT_NE(server_, nullptr);
  ASSERT_TRUE(peer_.open(wh_server_port(server_)));
  const std::string bad = "ab\xff\xfe";
  ASSERT_TRUE(peer_.send_text(bad));
  auto f = peer_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_TEXT);
  EXPECT_EQ(f->payload, bad);
}

TEST_F(Adopt, WithoutSkipUtf8InvalidTextStillCloses1007) {
  start(0);
  ASSERT_TRUE(peer_.open(wh_server_port(server_)));
  ASSERT_TRUE(peer_.send_text("ab\xff\xfe"));
  expect_failed_with(peer_, 1007);
}

// wh_client_adopt: the host did a client's opening handshake itself (Node's
// http.request through a proxy agent) and hands the upgraded socket over.
namespace {

class ClientAdopt : public ::testing::Test {
 protected:
  void TearDown() override {
    server_side_.close();
    hub_.destroy();
  }
  // A connected pair: the test plays the server on one end, the engine's
  // client gets the other.
  int make_pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    server_side_ = RawClient(sv[0]);
    return sv[1];
  }
  TestHub hub_;
  RawClient server_side_;
};

std::string server_frame(uint8_t op, std::string_view payload) {
  return encode_frame(op, payload, FrameOpts().unmasked());
}

}  // namespace

TEST_F(ClientAdopt, OpensAtOnceAndReadsTheFramesTheHostReadPastTheResponse) {
  wh_client_options o = client_options();
  const std::string head = server_frame(OP_TEXT, "already read");
  wh_conn* conn = nullptr;
  ASSERT_EQ(wh_client_adopt(hub_.get(), make_pair(), &o, "chat", nullptr, head.data(), head.size(), &conn), 0);
  ASSERT_NE(conn, nullptr);
  auto open = hub_.rec().wait_event(WH_EV_OPEN, conn);
  ASSERT_TRUE(open.has_value());
  EXPECT_STREQ(wh_conn_subprotocol(conn), "chat");
  auto first = hub_.rec().wait_event(WH_EV_MESSAGE, conn);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->data, "already read");
  // Both ways, as any client: the server's frames are read, ours are masked.
  ASSERT_TRUE(server_side_.send_raw(server_frame(OP_TEXT, "from the server")));
  ASSERT_TRUE(hub_.rec().wait_count(WH_EV_MESSAGE, 2, conn));
  ASSERT_EQ(wh_conn_send(conn, "from the client", 15, WH_TEXT), WH_SENT);
  auto f = server_side_.read_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->masked);
  EXPECT_EQ(f->payload, "from the client");
  ASSERT_EQ(wh_conn_close(conn, 1000, "bye", 3), 0);
  auto cl = server_side_.read_until_close();
  ASSERT_TRUE(cl.has_value());
  EXPECT_EQ(cl->close_code(), 1000);
}

TEST_F(ClientAdopt, RunsTheDeflateParametersTheServerAnswered) {
  wh_client_options o = client_options();
  o.deflate.enabled = 1;
  o.deflate.threshold = 1;
  wh_conn* conn = nullptr;
  ASSERT_EQ(wh_client_adopt(hub_.get(), make_pair(), &o, nullptr,
                            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10", nullptr, 0,
                            &conn),
            0);
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_OPEN, conn).has_value());
  const std::string text(4000, 'a');
  ASSERT_GE(wh_conn_send(conn, text.data(), text.size(), WH_TEXT | WH_COMPRESS), 0);
  auto f = server_side_.read_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->rsv & 4, 4) << "sent compressed";
  EXPECT_LT(f->payload.size(), text.size());
}

TEST_F(ClientAdopt, AnExtensionTheOptionsDoNotAllowIsRefusedAndTheSocketClosed) {
  wh_client_options o = client_options();  // no deflate offered
  wh_conn* conn = nullptr;
  EXPECT_EQ(wh_client_adopt(hub_.get(), make_pair(), &o, nullptr, "permessage-deflate", nullptr, 0, &conn),
            WH_EHANDSHAKE);
  EXPECT_EQ(conn, nullptr);
  EXPECT_TRUE(server_side_.wait_eof()) << "the hub owns the socket on every path";
}

TEST_F(ClientAdopt, ABadArgumentStillClosesTheSocket) {
  wh_conn* conn = nullptr;
  EXPECT_EQ(wh_client_adopt(hub_.get(), make_pair(), nullptr, nullptr, nullptr, nullptr, 5, &conn), WH_EINVAL);
  EXPECT_TRUE(server_side_.wait_eof());
}

TEST_F(ClientAdopt, PingsAreAnsweredUnlessTheClientAsksToPongItself) {
  for (int flags : {0, WH_CLIENT_NO_AUTO_PONG}) {
    TestHub hub;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    RawClient server_side(sv[0]);
    wh_client_options o = client_options();
    o.flags = flags;
    wh_conn* conn = nullptr;
    ASSERT_EQ(wh_client_adopt(hub.get(), sv[1], &o, nullptr, nullptr, nullptr, 0, &conn), 0);
    ASSERT_TRUE(server_side.send_raw(server_frame(OP_PING, "are you there")));
    ASSERT_TRUE(hub.rec().wait_event(WH_EV_PING, conn).has_value()) << "the ping is an event either way";
    if (flags) {
      EXPECT_TRUE(server_side.quiet_for(100)) << "autoPong off: no pong unless the application sends one";
      ASSERT_EQ(wh_conn_pong(conn, "mine", 4), 0);
    }
    auto pong = server_side.read_frame();
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(pong->opcode, OP_PONG);
    EXPECT_EQ(pong->payload, flags ? "mine" : "are you there");
    server_side.close();
  }
}

TEST_F(ClientAdopt, SkipUtf8DeliversTextAsItCame) {
  wh_client_options o = client_options();
  o.flags = WH_CLIENT_SKIP_UTF8;
  wh_conn* conn = nullptr;
  ASSERT_EQ(wh_client_adopt(hub_.get(), make_pair(), &o, nullptr, nullptr, nullptr, 0, &conn), 0);
  ASSERT_TRUE(server_side_.send_raw(server_frame(OP_TEXT, "\xff\xfe")));
  auto m = hub_.rec().wait_event(WH_EV_MESSAGE, conn);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->data, "\xff\xfe");
}

TEST_F(ClientAdopt, UnknownClientFlagsAreRefused) {
  wh_client_options o = client_options();
  o.flags = 0x100;
  wh_conn* conn = nullptr;
  EXPECT_EQ(wh_client_adopt(hub_.get(), make_pair(), &o, nullptr, nullptr, nullptr, 0, &conn), WH_EINVAL);
  EXPECT_EQ(wh_connect(hub_.get(), "ws://127.0.0.1:1/", &o, &conn), WH_EINVAL);
}

TEST_F(ClientAdopt, TheLayoutBeforeFlagsIsStillAccepted) {
  wh_client_options o = client_options();
  o.size = offsetof(wh_client_options, flags);
  wh_conn* conn = nullptr;
  EXPECT_EQ(wh_client_adopt(hub_.get(), make_pair(), &o, nullptr, nullptr, nullptr, 0, &conn), 0);
}

TEST_F(Adopt, ServerPingsAreNotAnsweredWithNoAutoPong) {
  start(WH_SERVER_NO_LISTEN | WH_SERVER_NO_AUTO_PONG);
  const int fd = make_pair();
  const std::string req = upgrade_request("/");
  ASSERT_EQ(wh_server_adopt(server_, fd, req.data(), req.size(), "127.0.0.1", 1), 0);
  ASSERT_EQ(peer_.read_http_response().status, 101);
  wh_conn* conn = server_conn();
  ASSERT_TRUE(peer_.send_frame(OP_PING, "x"));
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_PING, conn).has_value());
  EXPECT_TRUE(peer_.quiet_for(100));
}

TEST_F(Adopt, MaxFragmentsClosesAMessageOfTooManyFragmentsWith1008) {
  wh_server_options o = server_options();
  o.flags = WH_SERVER_NO_LISTEN;
  o.max_fragments = 2;
  server_ = hub_.listen(o);
  ASSERT_NE(server_, nullptr);
  const int fd = make_pair();
  const std::string req = upgrade_request("/");
  ASSERT_EQ(wh_server_adopt(server_, fd, req.data(), req.size(), "127.0.0.1", 1), 0);
  ASSERT_EQ(peer_.read_http_response().status, 101);
  ASSERT_TRUE(peer_.send_frame(OP_TEXT, "a", FrameOpts().not_final()));
  ASSERT_TRUE(peer_.send_frame(OP_CONT, "b", FrameOpts().not_final()));
  ASSERT_TRUE(peer_.send_frame(OP_CONT, "c"));
  auto cl = peer_.read_until_close();
  ASSERT_TRUE(cl.has_value());
  EXPECT_EQ(cl->close_code(), 1008);
  EXPECT_EQ(cl->close_reason(), "") << "as ws: the code alone";
}

TEST(OptionsLayout, MaxFragmentsBelowMinusOneIsRefused) {
  TestHub hub;
  wh_server_options o = server_options();
  o.max_fragments = -2;
  int err = 0;
  EXPECT_EQ(hub.listen(o, &err), nullptr);
  EXPECT_EQ(err, WH_EINVAL);
  o.max_fragments = 0;
  o.size = offsetof(wh_server_options, max_fragments);  // the layout before it
  EXPECT_NE(hub.listen(o), nullptr);
}
