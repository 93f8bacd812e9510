// keepalive_test.cpp — limits.ping_interval_ms / ping_timeout_ms: the server
// pings silent peers and drops the ones that never answer.
#include <string>

#include "test_util.hpp"

using namespace wht;

namespace {

class Keepalive : public OneConnection {
 protected:
  void SetUp() override {
    wh_server_options o = server_options();
    o.limits.ping_interval_ms = 100;
    o.limits.ping_timeout_ms = 200;
    hub_.set_handler(echo_handler);
    open_with(o);
  }
};

}  // namespace

TEST_F(Keepalive, SilentConnectionGetsPinged) {
  auto f = c_.read_frame(2000);
  ASSERT_TRUE(f.has_value()) << "no ping within 2 s with ping_interval_ms=100";
  EXPECT_EQ(f->opcode, OP_PING);
  EXPECT_FALSE(f->masked);
  EXPECT_LE(f->payload.size(), 125u);
}

TEST_F(Keepalive, PeerAnsweringPingsStaysOpen) {
  auto until = Clock::now() + Ms(800);  // 4 intervals, several timeouts
  int pings = 0;
  while (Clock::now() < until) {
    auto f = c_.read_frame(300);
    if (!f) continue;
    ASSERT_NE(f->opcode, OP_CLOSE) << "closed although every ping was answered: " << f->close_code();
    if (f->opcode == OP_PING) {
      ++pings;
      ASSERT_TRUE(c_.send_frame(OP_PONG, f->payload));
    }
  }
  EXPECT_GE(pings, 2);
  ASSERT_TRUE(c_.send_text("alive"));
  auto echo = c_.read_data_frame();
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->payload, "alive");
  EXPECT_EQ(hub_.rec().count(WH_EV_CLOSE, conn_), 0u);
}

TEST_F(Keepalive, PeerThatNeverAnswersIsClosedWith1011AfterPingTimeout) {
  // Read (to see the frames) but never answer a ping.
  std::optional<Frame> close;
  auto until = Clock::now() + Ms(3000);
  while (Clock::now() < until && !c_.eof()) {
    auto f = c_.read_frame(200);
    if (f && f->opcode == OP_CLOSE) {
      close = f;
      break;
    }
  }
  ASSERT_TRUE(close.has_value()) << "not closed within 3 s (eof=" << c_.eof() << ")";
  EXPECT_EQ(close->close_code(), 1011);
  auto e = hub_.rec().wait_event(WH_EV_CLOSE, conn_);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, WH_EPINGTIMEOUT) << wh_err_name(e->error);
  EXPECT_TRUE(c_.wait_eof());
}

TEST_F(Keepalive, ClientPingIntervalPingsTheServer) {
  // A wh_connect client with keepalive: its server conn sees WH_EV_PING.
  wh_client_options o = client_options();
  o.limits.ping_interval_ms = 100;
  wh_conn* c = nullptr;
  ASSERT_EQ(wh_connect(hub_.get(), ws_url(wh_server_port(server_)).c_str(), &o, &c), 0);
  ASSERT_TRUE(hub_.rec().wait_for([](const std::vector<Event>& evs) {
    for (auto& e : evs)
      if (e.type == WH_EV_PING && e.server && e.conn) return true;
    return false;
  })) << hub_.rec().dump();
}

TEST(KeepaliveOff, NoPingsByDefault) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  EXPECT_TRUE(c.quiet_for(400)) << "ping_interval_ms=0 means no keepalive pings";
}
