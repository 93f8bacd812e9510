// pubsub_test.cpp — topics: subscribe/unsubscribe/publish (with `except`),
// broadcast, and publishing to a mix of compressed and plain peers.
#include <array>
#include <string>

#include "test_util.hpp"

using namespace wht;

namespace {

class PubSub : public ::testing::Test {
 protected:
  void SetUp() override { start(server_options()); }
  void TearDown() override {
    for (auto& c : c_) c.close();
    hub_.destroy();
  }
  void start(const wh_server_options& o) {
    server_ = hub_.listen(o);
    ASSERT_NE(server_, nullptr);
    for (size_t i = 0; i < c_.size(); ++i) {
      ASSERT_TRUE(c_[i].open(wh_server_port(server_)));
      conn_[i] = hub_.rec().wait_server_conn(c_[i].local_port());
      ASSERT_NE(conn_[i], nullptr);
    }
  }
  // The next data frame received by client i, or "(none)".
  std::string next(size_t i, int timeout_ms = kTimeoutMs) {
    auto f = c_[i].read_data_frame(timeout_ms);
    return f ? f->payload : std::string("(none)");
  }
  // Client i receives nothing for a while.
  bool nothing_for(size_t i) { return c_[i].quiet_for(150); }

  TestHub hub_;
  wh_server* server_ = nullptr;
  std::array<RawClient, 3> c_;
  std::array<wh_conn*, 3> conn_{};
};

}  // namespace

TEST_F(PubSub, PublishReachesOnlySubscribers) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "news"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[1], "news"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[2], "sports"), 0);
  EXPECT_EQ(wh_server_publish(server_, "news", "headline", 8, WH_TEXT, nullptr), 2);
  EXPECT_EQ(next(0), "headline");
  EXPECT_EQ(next(1), "headline");
  EXPECT_TRUE(nothing_for(2));
  EXPECT_EQ(wh_server_publish(server_, "sports", "goal", 4, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(2), "goal");
  EXPECT_TRUE(nothing_for(0));
}

TEST_F(PubSub, PublishedFramesCarryTheType) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "t"), 0);
  ASSERT_EQ(wh_server_publish(server_, "t", "\x01\x02", 2, WH_BINARY, nullptr), 1);
  auto f = c_[0].read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_BINARY);
  EXPECT_TRUE(f->fin);
  EXPECT_EQ(f->payload, "\x01\x02");
  ASSERT_EQ(wh_server_publish(server_, "t", "txt", 3, WH_TEXT, nullptr), 1);
  f = c_[0].read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opcode, OP_TEXT);
}

TEST_F(PubSub, PublishSkipsExcept) {
  for (auto* c : conn_) ASSERT_EQ(wh_conn_subscribe(c, "room"), 0);
  EXPECT_EQ(wh_server_publish(server_, "room", "hi all", 6, WH_TEXT, conn_[1]), 2);
  EXPECT_EQ(next(0), "hi all");
  EXPECT_EQ(next(2), "hi all");
  EXPECT_TRUE(nothing_for(1));
}

TEST_F(PubSub, UnsubscribeStopsDelivery) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "a"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[1], "a"), 0);
  ASSERT_EQ(wh_conn_unsubscribe(conn_[0], "a"), 0);
  EXPECT_EQ(wh_server_publish(server_, "a", "x", 1, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(1), "x");
  EXPECT_TRUE(nothing_for(0));
}

TEST_F(PubSub, SubscribingTwiceDeliversOnce) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "dup"), 0);
  EXPECT_EQ(wh_conn_subscribe(conn_[0], "dup"), 0);
  EXPECT_EQ(wh_server_publish(server_, "dup", "once", 4, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(0), "once");
  EXPECT_TRUE(nothing_for(0));
  // One unsubscribe is enough.
  EXPECT_EQ(wh_conn_unsubscribe(conn_[0], "dup"), 0);
  EXPECT_EQ(wh_server_publish(server_, "dup", "gone", 4, WH_TEXT, nullptr), 0);
}

TEST_F(PubSub, UnsubscribeFromUnknownTopicIsHarmless) {
  EXPECT_GE(wh_conn_unsubscribe(conn_[0], "never"), 0);
}

TEST_F(PubSub, PublishToTopicWithoutSubscribersReturnsZero) {
  EXPECT_EQ(wh_server_publish(server_, "empty", "x", 1, WH_TEXT, nullptr), 0);
  for (size_t i = 0; i < c_.size(); ++i) EXPECT_TRUE(nothing_for(i));
}

TEST_F(PubSub, TopicsAreIndependentOfEachOther) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "a"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "b"), 0);
  EXPECT_EQ(wh_server_publish(server_, "a", "1", 1, WH_TEXT, nullptr), 1);
  EXPECT_EQ(wh_server_publish(server_, "b", "2", 1, WH_TEXT, nullptr), 1);
  EXPECT_EQ(wh_server_publish(server_, "ab", "3", 1, WH_TEXT, nullptr), 0);
  EXPECT_EQ(next(0), "1");
  EXPECT_EQ(next(0), "2");
}

TEST_F(PubSub, ClosedConnectionLeavesItsTopics) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "t"), 0);
  ASSERT_EQ(wh_conn_subscribe(conn_[1], "t"), 0);
  c_[0].send_close(1000);
  ASSERT_TRUE(c_[0].wait_eof());
  ASSERT_TRUE(hub_.rec().wait_event(WH_EV_CLOSE, conn_[0]).has_value());
  EXPECT_EQ(wh_server_publish(server_, "t", "x", 1, WH_TEXT, nullptr), 1);
  EXPECT_EQ(next(1), "x");
}

TEST_F(PubSub, BroadcastReachesEveryOpenConnection) {
  EXPECT_EQ(wh_server_broadcast(server_, "all", 3, WH_TEXT, nullptr), 3);
  for (size_t i = 0; i < c_.size(); ++i) EXPECT_EQ(next(i), "all") << i;
  EXPECT_EQ(wh_server_broadcast(server_, "most", 4, WH_TEXT, conn_[2]), 2);
  EXPECT_EQ(next(0), "most");
  EXPECT_EQ(next(1), "most");
  EXPECT_TRUE(nothing_for(2));
}

TEST_F(PubSub, SubscribeFromInsideTheCallback) {
  // A fourth client, subscribed by the handler on its OPEN.
  hub_.set_handler([](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_OPEN && ev.server) wh_conn_subscribe(ev.conn, "late");
  });
  RawClient d;
  ASSERT_TRUE(d.open(wh_server_port(server_)));
  ASSERT_NE(hub_.rec().wait_server_conn(d.local_port()), nullptr);
  EXPECT_EQ(wh_server_publish(server_, "late", "welcome", 7, WH_TEXT, nullptr), 1);
  auto f = d.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "welcome");
}

TEST_F(PubSub, PublishOrderIsPreservedPerSubscriber) {
  ASSERT_EQ(wh_conn_subscribe(conn_[0], "seq"), 0);
  for (int i = 0; i < 100; ++i) {
    std::string m = std::to_string(i);
    ASSERT_EQ(wh_server_publish(server_, "seq", m.data(), m.size(), WH_TEXT, nullptr), 1);
  }
  for (int i = 0; i < 100; ++i) ASSERT_EQ(next(0), std::to_string(i));
}

TEST_F(PubSub, InvalidArgumentsAreRejected) {
  EXPECT_EQ(wh_conn_subscribe(conn_[0], nullptr), WH_EINVAL);
  EXPECT_EQ(wh_conn_unsubscribe(conn_[0], nullptr), WH_EINVAL);
  EXPECT_EQ(wh_server_publish(server_, nullptr, "x", 1, WH_TEXT, nullptr), WH_EINVAL);
  EXPECT_EQ(wh_server_publish(server_, "t", nullptr, 1, WH_TEXT, nullptr), WH_EINVAL);
  EXPECT_EQ(wh_server_broadcast(server_, nullptr, 1, WH_TEXT, nullptr), WH_EINVAL);
}

// Publishing to subscribers that negotiated deflate and to ones that did not.
TEST(PubSubDeflate, MixedCompressedAndPlainSubscribersAllGetTheMessage) {
  TestHub hub;
  wh_server_options o = server_options();
  o.deflate.enabled = 1;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  int port = wh_server_port(s);
  RawClient z, p;
  ASSERT_TRUE(z.open(port, "/", "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
  ASSERT_TRUE(p.open(port));
  wh_conn* zc = hub.rec().wait_server_conn(z.local_port());
  wh_conn* pc = hub.rec().wait_server_conn(p.local_port());
  ASSERT_TRUE(zc && pc);
  ASSERT_EQ(wh_conn_subscribe(zc, "big"), 0);
  ASSERT_EQ(wh_conn_subscribe(pc, "big"), 0);
  std::string text = compressible_text(10000);
  ASSERT_EQ(wh_server_publish(s, "big", text.data(), text.size(), WH_TEXT, nullptr), 2);

  auto fz = z.read_data_frame();
  ASSERT_TRUE(fz.has_value());
  EXPECT_EQ(fz->rsv, RSV1) << "the deflate peer gets it compressed";
  auto inflated = pmd_decompress(fz->payload);
  ASSERT_TRUE(inflated.has_value());
  EXPECT_TRUE(*inflated == text);

  auto fp = p.read_data_frame();
  ASSERT_TRUE(fp.has_value());
  EXPECT_EQ(fp->rsv, 0) << "the plain peer gets it uncompressed";
  EXPECT_TRUE(fp->payload == text);
}
