// batch_end_test.cpp — WH_HUB_BATCH_END: after an I/O turn that delivered
// events, the callback gets WH_EV_BATCH_END, so a host that crosses into
// another runtime per call (cgo) can hand a whole turn over at once.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"

using namespace wht;

TEST(BatchEnd, MessagesReadTogetherAreFollowedByOneBatchEnd) {
  TestHub hub(1, WH_HUB_BATCH_END);
  auto o = server_options();
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_OPEN).has_value());
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_BATCH_END).has_value()) << "the open was a turn's event too";
  const size_t before = hub.rec().count(WH_EV_BATCH_END);
  // Three frames in one write: one read, one turn.
  ASSERT_TRUE(c.send_raw(encode_frame(OP_TEXT, "a") + encode_frame(OP_TEXT, "b") + encode_frame(OP_TEXT, "c")));
  ASSERT_TRUE(hub.rec().wait_count(WH_EV_BATCH_END, before + 1));
  auto all = hub.rec().all();
  std::string order;
  for (const auto& e : all) {
    if (e.type == WH_EV_MESSAGE) order += e.data;
    if (e.type == WH_EV_BATCH_END) {
      EXPECT_EQ(e.conn, nullptr);
      EXPECT_EQ(e.server, nullptr);
      order += "|";
    }
  }
  EXPECT_EQ(order.substr(order.size() - 4), "abc|") << order;
  c.close();
  hub.destroy();
}

TEST(BatchEnd, WithoutTheFlagThereIsNoBatchEnd) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  ASSERT_TRUE(c.send_text("x"));
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_MESSAGE).has_value());
  EXPECT_EQ(hub.rec().count(WH_EV_BATCH_END), 0u);
  c.close();
}

TEST(BatchEnd, SendsMadeAtBatchEndStillLeave) {
  TestHub hub(1, WH_HUB_BATCH_END);
  // Echo only at the end of the batch, the way a batching host replies.
  std::vector<std::pair<wh_conn*, std::string>>* pending = new std::vector<std::pair<wh_conn*, std::string>>();
  hub.set_handler([pending](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_MESSAGE) pending->emplace_back(ev.conn, std::string(ev.data, ev.len));
    if (ev.type == WH_EV_BATCH_END) {
      for (auto& [conn, m] : *pending) wh_conn_send(conn, m.data(), m.size(), WH_TEXT);
      pending->clear();
    }
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  ASSERT_TRUE(c.send_raw(encode_frame(OP_TEXT, "one") + encode_frame(OP_TEXT, "two")));
  auto a = c.read_data_frame();
  auto b = c.read_data_frame();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payload, "one");
  EXPECT_EQ(b->payload, "two");
  c.close();
  hub.destroy();
  delete pending;
}

TEST(BatchEnd, TheFirstLayoutOfHubOptionsIsStillAccepted) {
  wh_hub_options o{};
  o.size = offsetof(wh_hub_options, flags);
  o.on_event = &EventRecorder::callback;
  EventRecorder rec;
  o.user_data = &rec;
  wh_hub* h = nullptr;
  ASSERT_EQ(wh_hub_create(&o, &h), 0);
  EXPECT_EQ(wh_hub_destroy(h, 100), 0);
  o.size = offsetof(wh_hub_options, flags) + 1;
  EXPECT_EQ(wh_hub_create(&o, &h), WH_EINVAL);
}

TEST(BatchEnd, MessagesBeforeACloseAreAnsweredBeforeTheCloseReply) {
  TestHub hub(1, WH_HUB_BATCH_END);
  auto* pending = new std::vector<std::pair<wh_conn*, std::string>>();
  hub.set_handler([pending](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_MESSAGE) pending->emplace_back(ev.conn, std::string(ev.data, ev.len));
    if (ev.type == WH_EV_BATCH_END) {
      for (auto& [conn, m] : *pending) EXPECT_GE(wh_conn_send(conn, m.data(), m.size(), WH_TEXT), 0);
      pending->clear();
    }
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  // Two messages and the close in one write: the batch ends before the close.
  ASSERT_TRUE(c.send_raw(encode_frame(OP_TEXT, "one") + encode_frame(OP_TEXT, "two") +
                         encode_frame(OP_CLOSE, close_payload(1000, "bye"))));
  std::vector<Frame> before;
  auto f = c.read_until_close(kTimeoutMs, &before);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1000);
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0].payload, "one");
  EXPECT_EQ(before[1].payload, "two");
  c.close();
  hub.destroy();
  delete pending;
}
