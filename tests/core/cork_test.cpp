// cork_test.cpp — wh_hub_cork/wh_hub_uncork: a host thread's calls reach the
// I/O thread in one hand-off at the uncork, in order, with their results
// decided at the call.
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace wht;

namespace {

class Cork : public OneConnection {
 protected:
  void SetUp() override { open_with(server_options()); }
};

}  // namespace

TEST_F(Cork, CorkedSendsLeaveAtTheUncorkInOrder) {
  ASSERT_EQ(wh_hub_cork(hub_.get()), 0);
  for (const char* m : {"one", "two", "three"}) EXPECT_EQ(wh_conn_send(conn_, m, std::strlen(m), WH_TEXT), WH_SENT);
  size_t buffered = 0;
  ASSERT_EQ(wh_conn_buffered(conn_, &buffered), 0);
  EXPECT_GT(buffered, 0u) << "corked sends count as buffered";
  EXPECT_TRUE(c_.quiet_for(100)) << "nothing leaves before the uncork";
  ASSERT_EQ(wh_hub_uncork(hub_.get()), 0);
  for (const char* m : {"one", "two", "three"}) {
    auto f = c_.read_data_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->payload, m);
  }
}

TEST_F(Cork, CorksNestAndOnlyTheOutermostUncorkSends) {
  ASSERT_EQ(wh_hub_cork(hub_.get()), 0);
  ASSERT_EQ(wh_hub_cork(hub_.get()), 0);
  EXPECT_EQ(wh_conn_send(conn_, "x", 1, WH_TEXT), WH_SENT);
  ASSERT_EQ(wh_hub_uncork(hub_.get()), 0);
  EXPECT_TRUE(c_.quiet_for(100));
  ASSERT_EQ(wh_hub_uncork(hub_.get()), 0);
  auto f = c_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "x");
}

TEST_F(Cork, CloseAfterCorkedSendsKeepsTheOrder) {
  ASSERT_EQ(wh_hub_cork(hub_.get()), 0);
  EXPECT_EQ(wh_conn_send(conn_, "last words", 10, WH_TEXT), WH_SENT);
  EXPECT_EQ(wh_conn_close(conn_, 1000, "bye", 3), 0);
  ASSERT_EQ(wh_hub_uncork(hub_.get()), 0);
  std::vector<Frame> before;
  auto f = c_.read_until_close(kTimeoutMs, &before);
  ASSERT_TRUE(f.has_value());
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].payload, "last words");
  EXPECT_EQ(f->close_code(), 1000);
}

TEST_F(Cork, MisuseIsRefused) {
  EXPECT_EQ(wh_hub_cork(nullptr), WH_EINVAL);
  EXPECT_EQ(wh_hub_uncork(hub_.get()), WH_ESTATE) << "uncork without cork";
  TestHub other;
  ASSERT_EQ(wh_hub_cork(hub_.get()), 0);
  EXPECT_EQ(wh_hub_cork(other.get()), WH_ESTATE) << "one hub at a time per thread";
  EXPECT_EQ(wh_hub_uncork(other.get()), WH_ESTATE);
  ASSERT_EQ(wh_hub_uncork(hub_.get()), 0);
  // On an I/O thread the engine already batches: corking there is refused.
  std::atomic<int> rc{1};
  hub_.set_handler([&rc](wh_hub* h, const wh_event& ev) {
    if (ev.type == WH_EV_MESSAGE) rc = wh_hub_cork(h);
  });
  ASSERT_TRUE(c_.send_text("go"));
  ASSERT_TRUE(eventually([&] { return rc.load() != 1; }));
  EXPECT_EQ(rc.load(), WH_ESTATE);
  hub_.set_handler(nullptr);
}

TEST_F(Cork, DestroyingACorkedHubStillHandsTheCallsOver) {
  ASSERT_EQ(wh_hub_cork(hub_.get()), 0);
  EXPECT_EQ(wh_conn_send(conn_, "bye", 3, WH_TEXT), WH_SENT);
  EXPECT_EQ(hub_.destroy(200), 0);
  auto f = c_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "bye");
  EXPECT_EQ(wh_hub_uncork(hub_.get()), WH_EINVAL) << "the hub is gone (get() is null)";
}
