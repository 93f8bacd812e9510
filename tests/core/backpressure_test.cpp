// backpressure_test.cpp — send() results against a peer that does not read:
// WH_SENT, then WH_QUEUED above high_water, then WH_EDROPPED above
// max_buffered; wh_conn_buffered(); WH_EV_DRAIN once the peer catches up,
// never before the bytes of a concurrent send are counted, and never lost.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
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

// Regression test of the drain race fixed in 48b0b90: a send from another
// thread armed the drain before counting its bytes, so a flush running in
// between emitted WH_EV_DRAIN while those bytes were still queued, and no
// drain ever followed them. Every message here is larger than high_water, so
// every send returns WH_QUEUED and owes a drain, and bursts of sends race the
// I/O thread's flushes while the peer reads as fast as it can. Each round
// then requires a drain that the I/O thread handled after the round's last
// send had started and that saw buffered() <= low_water: a drain emitted
// early for that send (before its bytes were counted) and none after it fails
// the round. The pre-fix window is a few instructions wide: this stress run
// guards the invariant, it does not reproduce the old interleaving on demand
// (100,000 rounds against 48b0b90^ passed on a 2-core machine).
TEST_F(Backpressure, ConcurrentSendsNeverLoseOrAdvanceTheDrain) {
  constexpr size_t kHigh = 1024, kLow = 512, kLen = 2048;
  constexpr int kRounds = 20000;
  const auto deadline = Clock::now() + std::chrono::seconds(3);

  // What the I/O thread's handler touches lives as long as the handler
  // (a copy of it may still run while the test returns).
  struct shared_state {
    std::atomic<wh_conn*> watched{nullptr};
    std::atomic<uint64_t> clock{0};          // orders send starts and drains
    std::atomic<uint64_t> good_drain_at{0};  // clock of the last drain that saw <= low_water
    std::atomic<uint64_t> drains{0}, drains_above_low{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto st = std::make_shared<shared_state>();
  auto& watched = st->watched;
  auto& clock = st->clock;
  auto& good_drain_at = st->good_drain_at;
  auto& drains = st->drains;
  auto& drains_above_low = st->drains_above_low;
  auto& mu = st->mu;
  auto& cv = st->cv;
  hub_.set_handler([st](wh_hub*, const wh_event& ev) {
    if (ev.type != WH_EV_DRAIN || ev.conn != st->watched.load()) return;
    const uint64_t at = st->clock.fetch_add(1) + 1;
    size_t b = 0;
    wh_conn_buffered(ev.conn, &b);
    st->drains.fetch_add(1);
    if (b > kLow) {
      st->drains_above_low.fetch_add(1);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(st->mu);
      st->good_drain_at.store(at);
    }
    st->cv.notify_all();
  });

  wh_server_options o = server_options();
  o.limits.high_water = kHigh;
  o.limits.low_water = kLow;
  server_ = hub_.listen(o);
  ASSERT_NE(server_, nullptr);
  ASSERT_TRUE(c_.connect(wh_server_port(server_)));
  ASSERT_EQ(c_.upgrade("/").status, 101);
  conn_ = hub_.rec().wait_server_conn(c_.local_port());
  ASSERT_NE(conn_, nullptr);
  watched.store(conn_);

  // The peer reads and discards everything, as fast as it can.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> received{0};
  std::thread reader([&] {
    char buf[65536];
    while (!stop.load()) {
      pollfd p{c_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::read(c_.fd(), buf, sizeof buf);
      if (n <= 0) break;
      received.fetch_add(static_cast<uint64_t>(n));
    }
  });

  const std::string m(kLen, 'x');
  int rounds = 0, sends = 0;
  std::string failure;
  for (; rounds < kRounds && Clock::now() < deadline && failure.empty(); ++rounds) {
    const int burst = 1 + rounds % 6;
    uint64_t last_start = 0;
    for (int i = 0; i < burst; ++i) {
      last_start = clock.fetch_add(1) + 1;
      int rc = wh_conn_send(conn_, m.data(), m.size(), WH_BINARY);
      ++sends;
      if (rc != WH_QUEUED) {
        failure = "send " + std::to_string(sends) + " of a message above high_water returned " +
                  std::to_string(rc) + ", not WH_QUEUED";
        break;
      }
    }
    if (!failure.empty()) break;
    std::unique_lock<std::mutex> lk(mu);
    if (!cv.wait_for(lk, Ms(2000), [&] { return good_drain_at.load() > last_start; })) {
      size_t b = 0;
      wh_conn_buffered(conn_, &b);
      failure = "round " + std::to_string(rounds) + ": no WH_EV_DRAIN at or under low_water after " +
                "the round's last WH_QUEUED send (buffered now " + std::to_string(b) + ")";
    }
  }
  stop.store(true);
  reader.join();

  EXPECT_EQ(failure, "");
  EXPECT_GE(rounds, 100) << "too few rounds ran to exercise the race";
  EXPECT_GE(drains.load(), static_cast<uint64_t>(rounds)) << "at least one drain per round";
  // A drain that saw more than low_water is legitimate only when a later send
  // of the same burst counted its bytes between the flush and the handler; it
  // is never the round's last drain (checked above). Reported for the record.
  RecordProperty("rounds", rounds);
  RecordProperty("drains_above_low_water", static_cast<int>(drains_above_low.load()));
}
