// backpressure_test.cpp — send() results against a peer that does not read:
// WH_SENT, then WH_QUEUED above high_water, then WH_EDROPPED above
// max_buffered; wh_conn_buffered(); WH_EV_DRAIN once the peer catches up.
#include <cstring>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace wht;

namespace {

constexpr size_t kMsg = 16 * 1024;
constexpr int kMaxSends = 3000;  // 48 MiB at most: bounded even if nothing ever queues

std::string numbered(int i) {
  std::string m(kMsg, static_cast<char>('a' + i % 26));
  std::memcpy(&m[0], &i, sizeof i);
  return m;
}

int number_of(const std::string& m) {
  int i = -1;
  if (m.size() >= sizeof i) std::memcpy(&i, m.data(), sizeof i);
  return i;
}

class Backpressure : public ::testing::Test {
 protected:
  void start(size_t high_water, size_t max_buffered) {
    wh_server_options o = server_options();
    o.limits.high_water = high_water;
    o.limits.max_buffered = max_buffered;
    server_ = hub_.listen(o);
    ASSERT_NE(server_, nullptr);
    // A tiny receive window so the kernel buffers fill quickly.
    ASSERT_TRUE(c_.connect(wh_server_port(server_), "127.0.0.1", kTimeoutMs, 4096));
    HttpResponse r = c_.upgrade("/");
    ASSERT_EQ(r.status, 101);
    conn_ = hub_.rec().wait_server_conn(c_.local_port());
    ASSERT_NE(conn_, nullptr);
  }
  void TearDown() override {
    c_.close();
    hub_.destroy();
  }

  size_t buffered() {
    size_t b = 0;
    EXPECT_EQ(wh_conn_buffered(conn_, &b), 0);
    return b;
  }

  // Reads `n` numbered binary messages in order.
  void read_all(int n) {
    for (int i = 0; i < n; ++i) {
      auto f = c_.read_data_frame(5000);
      ASSERT_TRUE(f.has_value()) << "message " << i << " of " << n << " never arrived";
      ASSERT_EQ(f->opcode, OP_BINARY);
      ASSERT_EQ(f->payload.size(), kMsg);
      ASSERT_EQ(number_of(f->payload), i) << "messages out of order or lost";
    }
  }

  TestHub hub_;
  wh_server* server_ = nullptr;
  RawClient c_;
  wh_conn* conn_ = nullptr;
};

}  // namespace

TEST_F(Backpressure, SendReturnsQueuedAboveHighWaterThenDrainFires) {
  start(64 * 1024, 0);
  EXPECT_EQ(buffered(), 0u);
  int sent = 0, first_queued = -1;
  for (int i = 0; i < kMaxSends; ++i) {
    std::string m = numbered(i);
    int rc = wh_conn_send(conn_, m.data(), m.size(), WH_BINARY);
    ASSERT_TRUE(rc == WH_SENT || rc == WH_QUEUED) << "send " << i << ": " << rc;
    ++sent;
    if (rc == WH_QUEUED) {
      first_queued = i;
      break;
    }
  }
  ASSERT_GE(first_queued, 0) << "never WH_QUEUED after " << sent << " sends to a peer that does not read";
  EXPECT_GT(buffered(), 0u) << "bytes are waiting for the socket";
  EXPECT_EQ(hub_.rec().count(WH_EV_DRAIN, conn_), 0u) << "nothing drained while the peer does not read";

  read_all(sent);
  auto d = hub_.rec().wait_event(WH_EV_DRAIN, conn_);
  ASSERT_TRUE(d.has_value()) << "WH_EV_DRAIN must follow once the peer has read everything";
  EXPECT_TRUE(eventually([&] { return buffered() == 0; }));
  // And sending works normally again.
  std::string m = numbered(0);
  EXPECT_EQ(wh_conn_send(conn_, m.data(), m.size(), WH_BINARY), WH_SENT);
}

TEST_F(Backpressure, SendDropsAboveMaxBufferedAndMemoryStaysBounded) {
  const size_t high = 64 * 1024, cap = 1024 * 1024;
  start(high, cap);
  int accepted = 0, first_queued = -1, first_dropped = -1;
  size_t peak = 0;
  for (int i = 0; i < kMaxSends; ++i) {
    std::string m = numbered(accepted);  // numbers stay contiguous over accepted messages
    int rc = wh_conn_send(conn_, m.data(), m.size(), WH_BINARY);
    size_t b = buffered();
    peak = std::max(peak, b);
    ASSERT_LE(b, cap + kMsg) << "buffered grew past max_buffered at send " << i;
    if (rc == WH_EDROPPED) {
      first_dropped = i;
      break;
    }
    ASSERT_TRUE(rc == WH_SENT || rc == WH_QUEUED) << "send " << i << ": " << rc;
    if (rc == WH_QUEUED && first_queued < 0) first_queued = i;
    ++accepted;
  }
  ASSERT_GE(first_queued, 0) << "never WH_QUEUED";
  ASSERT_GE(first_dropped, 0) << "never WH_EDROPPED with max_buffered=" << cap;
  EXPECT_LT(first_queued, first_dropped) << "QUEUED comes before DROPPED";
  EXPECT_GT(peak, high);

  // Let the I/O thread fill the kernel buffers, top up to the cap again; from
  // then on nothing moves while the peer does not read: every send drops.
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(Ms(100));
    for (int i = 0; i < kMaxSends; ++i) {
      std::string m = numbered(accepted);
      int rc = wh_conn_send(conn_, m.data(), m.size(), WH_BINARY);
      ASSERT_LE(buffered(), cap + kMsg);
      if (rc == WH_EDROPPED) break;
      ASSERT_TRUE(rc == WH_SENT || rc == WH_QUEUED) << rc;
      ++accepted;
    }
  }
  size_t before = buffered();
  for (int i = 0; i < 20; ++i) {
    std::string m = numbered(9999);
    EXPECT_EQ(wh_conn_send(conn_, m.data(), m.size(), WH_BINARY), WH_EDROPPED);
  }
  EXPECT_LE(buffered(), before);
  EXPECT_EQ(hub_.rec().count(WH_EV_CLOSE, conn_), 0u) << "a drop does not close the connection";

  // Everything accepted arrives, in order, without the dropped ones.
  read_all(accepted);
  EXPECT_TRUE(hub_.rec().wait_event(WH_EV_DRAIN, conn_).has_value());
  EXPECT_TRUE(c_.quiet_for(200)) << "a dropped message was sent anyway";
}

TEST_F(Backpressure, BufferedGrowsWhileThePeerDoesNotRead) {
  start(64 * 1024, 0);
  size_t last = 0;
  bool grew = false;
  for (int i = 0; i < kMaxSends && !grew; ++i) {
    std::string m = numbered(i);
    ASSERT_GE(wh_conn_send(conn_, m.data(), m.size(), WH_BINARY), 0);
    size_t b = buffered();
    if (b >= 4 * kMsg && b > last) grew = true;
    last = b;
  }
  EXPECT_TRUE(grew) << "wh_conn_buffered never reported the bytes waiting for the socket";
}

TEST_F(Backpressure, NoDrainWithoutPriorQueued) {
  start(64 * 1024, 0);
  // Three messages stay under the high-water mark even if none was written yet.
  for (int i = 0; i < 3; ++i) {
    std::string m = numbered(i);
    ASSERT_EQ(wh_conn_send(conn_, m.data(), m.size(), WH_BINARY), WH_SENT);
  }
  read_all(3);
  EXPECT_FALSE(hub_.rec().wait_count(WH_EV_DRAIN, 1, conn_, 200))
      << "WH_EV_DRAIN only follows a WH_QUEUED";
}

TEST_F(Backpressure, PausedConnectionStillSends) {
  start(64 * 1024, 0);
  ASSERT_EQ(wh_conn_pause(conn_), 0);
  std::string m = numbered(0);
  ASSERT_EQ(wh_conn_send(conn_, m.data(), m.size(), WH_BINARY), WH_SENT);
  read_all(1);
}
