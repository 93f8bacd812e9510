// hardening_test.cpp — what one peer can make a server hold or do, through the
// C ABI, each test one finding of issue 11: memory bounded by bytes that
// arrived, every send queue capped, refused upgrades read nothing more,
// aggregate limits (handshakes, idle, unfinished messages, memory budget),
// and callbacks that never nest.
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace wht;

#if defined(__SANITIZE_ADDRESS__)
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace {

// Bytes the program has allocated and not freed (ASan replaces malloc, and
// mallinfo then reports nothing: ask its allocator instead).
std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  // Blocks from mmap (large buffers: a big frame, a send buffer) are
  // outside the arenas' count.
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

// A server whose upgrades wait for the handler's WH_EV_UPGRADE to decide.
wh_server* listen_with_upgrade_hook(TestHub& hub) {
  auto o = server_options();
  o.flags = WH_SERVER_UPGRADE_HOOK;
  return hub.listen(o);
}

TEST(Hardening, AnnouncedLengthsCostOnlyTheBytesThatArrived) {
  // Finding 1: 16 connections, each a header announcing ~16 MiB and one byte.
  TestHub hub;
  hub.set_handler(echo_handler);
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  std::vector<RawClient> peers(16);
  for (auto& c : peers) ASSERT_TRUE(c.open(wh_server_port(s)));
  ASSERT_TRUE(hub.rec().wait_count(WH_EV_OPEN, peers.size()));
  const std::size_t before = heap_in_use();
  for (auto& c : peers) {
    std::string f = encode_frame(OP_BINARY, "x", FrameOpts().announce((16 << 20) - 100));
    ASSERT_TRUE(c.send_raw(f.substr(0, 14)));
    ASSERT_TRUE(c.send_raw(f.substr(14, 1)));
  }
  // Both segments are read (a ping behind them on another connection is
  // answered, so the loop has gone past them).
  RawClient probe;
  ASSERT_TRUE(probe.open(wh_server_port(s)));
  ASSERT_TRUE(probe.send_frame(OP_PING, "probe"));
  auto pong = probe.read_frame();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->opcode, OP_PONG);
  const std::size_t grew = heap_in_use() > before ? heap_in_use() - before : 0;
  EXPECT_LT(grew, 256u << 10) << "16 x 15 bytes received must not cost " << grew << " bytes";
}

class TinyReader : public ::testing::Test {
 protected:
  // A peer whose receive buffer is tiny and never read: what we send it
  // stays with us.
  void start(wh_server_options o) {
    hub_.set_handler(echo_handler);
    s_ = hub_.listen(o);
    ASSERT_NE(s_, nullptr);
    ASSERT_TRUE(c_.connect(wh_server_port(s_), "127.0.0.1", kTimeoutMs, 4096));
    ASSERT_TRUE(c_.upgrade().status == 101);
    conn_ = hub_.rec().wait_server_conn(c_.local_port());
    ASSERT_NE(conn_, nullptr);
    // Held while the test reads it: the peer's close at teardown may free
    // the connection on the I/O thread, and a retained handle orders those
    // reads before that (TSan saw a relaxed read race the delete).
    wh_conn_retain(conn_);
  }
  void TearDown() override {
    if (conn_) wh_conn_release(conn_);
  }
  std::size_t buffered() {
    std::size_t b = 0;
    wh_conn_buffered(conn_, &b);
    return b;
  }
  TestHub hub_;
  wh_server* s_ = nullptr;
  RawClient c_;
  wh_conn* conn_ = nullptr;
};

TEST_F(TinyReader, PongsStopAtHighWaterForAPeerThatNeverReads) {
  // Finding 2: pings from a peer that never reads.
  start(server_options());
  const std::string ping = encode_frame(OP_PING, std::string(125, 'p'));
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += ping;
  std::size_t peak = 0;
  for (int i = 0; i < 400; ++i) {  // 40,000 pings, 5.3 MB
    ASSERT_TRUE(c_.send_raw(batch));
    peak = std::max(peak, buffered());
  }
  ASSERT_TRUE(eventually([&] { return hub_.rec().count(WH_EV_PING, conn_) == 40000; }, 10000))
      << hub_.rec().count(WH_EV_PING, conn_);
  peak = std::max(peak, buffered());
  EXPECT_LE(peak, (64u << 10) + 200) << "pongs past the 64 KiB high-water mark";
}

TEST_F(TinyReader, PublishClosesASubscriberThatReachesItsCap) {
  // Finding 3: a subscriber that never reads cannot make us hold more than
  // max_buffered; it is closed with 1008 and WH_EDROPPED, and told.
  auto o = server_options();
  o.limits.max_buffered = 1 << 20;
  o.limits.high_water = 64 << 10;
  start(o);
  ASSERT_EQ(wh_conn_subscribe(conn_, "room"), 0);
  const std::string msg(64 << 10, 'm');
  std::size_t peak = 0;
  for (int i = 0; i < 200 && !hub_.rec().count(WH_EV_CLOSE, conn_); ++i) {
    wh_server_publish(s_, "room", msg.data(), msg.size(), WH_BINARY, nullptr);
    std::this_thread::sleep_for(Ms(1));
    peak = std::max(peak, buffered());
  }
  auto e = hub_.rec().wait_event(WH_EV_CLOSE, conn_, 8000);
  ASSERT_TRUE(e.has_value()) << "the slow subscriber was never closed";
  EXPECT_EQ(e->error, WH_EDROPPED);
  EXPECT_LE(peak, (1u << 20) + msg.size() + 64);
}

TEST_F(TinyReader, InputStopsWhileThePeerDoesNotReadAndResumesWhenItDoes) {
  auto o = server_options();
  o.limits.max_buffered = 256 << 10;
  start(o);
  // The echo handler answers every message; the peer does not read until
  // all of its 12.8 MB are out, which takes the server reading again.
  const int n = 200;
  const std::string frame = encode_frame(OP_BINARY, std::string(64 << 10, 'e'));
  std::atomic<bool> all_sent{false};
  std::thread sender([&] {
    std::string all;
    for (int i = 0; i < n; ++i) all += frame;
    std::size_t off = 0;
    const auto deadline = Clock::now() + Ms(20000);
    while (off < all.size() && Clock::now() < deadline) {
      ssize_t k = ::send(c_.fd(), all.data() + off, all.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (k > 0) off += static_cast<std::size_t>(k);
      else std::this_thread::sleep_for(Ms(1));
    }
    all_sent = off == all.size();
  });
  std::this_thread::sleep_for(Ms(500));
  EXPECT_LE(buffered(), (256u << 10) + frame.size()) << "the send buffer passed max_buffered";
  EXPECT_LT(hub_.rec().count(WH_EV_MESSAGE, conn_), static_cast<std::size_t>(n))
      << "input went on while the peer did not read";
  // Reading drains it and input resumes: every message comes back.
  int got = 0;
  while (got < n) {
    auto f = c_.read_data_frame(5000);
    if (!f) break;
    ++got;
  }
  sender.join();
  EXPECT_TRUE(all_sent.load());
  EXPECT_EQ(got, n);
}

TEST(Hardening, ARefusedUpgradeReadsNoFramesBehindItsRequest) {
  // Finding 4: frames pipelined behind a request the hook refuses.
  TestHub hub;
  hub.set_handler([](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_UPGRADE) wh_request_respond(ev.request, 403, nullptr, "no", 2);
  });
  wh_server* s = listen_with_upgrade_hook(hub);
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(wh_server_port(s)));
  ASSERT_TRUE(c.send_raw(upgrade_request() + encode_frame(OP_TEXT, "smuggled") + encode_frame(OP_PING, "x")));
  EXPECT_EQ(c.read_http_response().status, 403);
  EXPECT_TRUE(c.wait_eof());
  std::this_thread::sleep_for(Ms(50));
  EXPECT_EQ(hub.rec().count(WH_EV_MESSAGE), 0u) << hub.rec().dump();
  EXPECT_EQ(hub.rec().count(WH_EV_PING), 0u) << hub.rec().dump();
}

// As ws's completeUpgrade: a client that half-closed while the hook decided
// is dropped when accepted, with nothing written and no WH_EV_OPEN; the
// accept says so (WH_ECLOSED). A refusal is still written: the peer may read.
TEST(Hardening, AnUpgradeWhosePeerEndedWhileTheHookDecidedIsDroppedOnAccept) {
  for (bool refuse : {false, true}) {
    SCOPED_TRACE(refuse ? "refused" : "accepted");
    TestHub hub;
    std::atomic<wh_request*> pending{nullptr};
    hub.set_handler([&](wh_hub*, const wh_event& ev) {
      if (ev.type == WH_EV_UPGRADE) pending.store(ev.request);
    });
    wh_server* s = listen_with_upgrade_hook(hub);
    ASSERT_NE(s, nullptr);
    RawClient c;
    ASSERT_TRUE(c.connect(wh_server_port(s)));
    ASSERT_TRUE(c.send_raw(upgrade_request()));
    for (int i = 0; i < 200 && !pending.load(); ++i) std::this_thread::sleep_for(Ms(10));
    ASSERT_NE(pending.load(), nullptr);
    c.shutdown_write();
    std::this_thread::sleep_for(Ms(100));  // the FIN reaches the engine
    if (refuse) {
      EXPECT_EQ(wh_request_respond(pending.load(), 403, nullptr, "no", 2), 0);
      EXPECT_EQ(c.read_http_response().status, 403);
    } else {
      EXPECT_EQ(wh_request_accept(pending.load(), nullptr, nullptr, nullptr), WH_ECLOSED);
      std::string got;
      char buf[256];
      for (;;) {
        const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      EXPECT_EQ(got, "");
      std::this_thread::sleep_for(Ms(50));
      EXPECT_EQ(hub.rec().count(WH_EV_OPEN), 0u) << hub.rec().dump();
    }
  }
}

TEST(Hardening, FramesPastATurnsShareInOneShortReadAreStillDelivered) {
  // A turn delivers at most 4096 events; the rest of that read waits in the
  // protocol for the next turn. When the read was short (the socket had no
  // more), nothing new will arrive to wake us: the rest must go on anyway.
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  std::string burst;
  for (int i = 0; i < 5000; ++i) burst += encode_frame(OP_BINARY, "");  // 30 KB: one short read
  ASSERT_TRUE(c.send_raw(burst));
  EXPECT_TRUE(hub.rec().wait_count(WH_EV_MESSAGE, 5000, conn, 5000))
      << hub.rec().count(WH_EV_MESSAGE) << " of 5000 delivered";
}

TEST(Hardening, HandshakesPastTheCapAreClosedAtOnce) {
  TestHub hub;
  hub.set_handler(echo_handler);
  auto o = server_options();
  o.max_handshakes = 4;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  std::vector<RawClient> idle(4);
  for (auto& c : idle) ASSERT_TRUE(c.connect(wh_server_port(s)));  // silent: never send a request
  std::this_thread::sleep_for(Ms(100));
  RawClient fifth;
  ASSERT_TRUE(fifth.connect(wh_server_port(s)));
  EXPECT_TRUE(fifth.wait_eof(2000)) << "a fifth half-open handshake is closed";
  // Once one finishes its handshake, a new one is served again.
  ASSERT_EQ(idle[0].upgrade().status, 101);
  RawClient next;
  EXPECT_TRUE(next.open(wh_server_port(s)));
}

TEST(Hardening, IdleConnectionsCloseWith1001AndEIDLE) {
  TestHub hub;
  hub.set_handler(echo_handler);
  auto o = server_options();
  o.idle_timeout_ms = 200;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  // Traffic keeps it open past the timeout...
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(Ms(100));
    ASSERT_TRUE(c.send_text("alive"));
  }
  EXPECT_EQ(hub.rec().count(WH_EV_CLOSE, conn), 0u);
  // ...silence closes it.
  auto f = c.read_until_close(2000);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), WH_CLOSE_GOING_AWAY);
  c.send_close(1000);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, conn);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, WH_EIDLE);
}

TEST(Hardening, AnUnfinishedMessageClosesWith1008AtTheMessageTimeout) {
  TestHub hub;
  hub.set_handler(echo_handler);
  auto o = server_options();
  o.message_timeout_ms = 300;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  // A fragmented message that never ends, trickled slower than its timeout.
  ASSERT_TRUE(c.send_frame(OP_TEXT, "begin", more()));
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(Ms(120));
    c.send_frame(OP_CONT, "more", more());
  }
  auto f = c.read_until_close(2000);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), WH_CLOSE_POLICY);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, conn);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, WH_ETIMEDOUT);
  EXPECT_EQ(hub.rec().count(WH_EV_MESSAGE, conn), 0u);
}

TEST(Hardening, TheMemoryBudgetClosesTheConnectionThatWouldPassIt) {
  TestHub hub;
  hub.set_handler(echo_handler);
  auto o = server_options();
  o.max_memory = 256 << 10;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  RawClient small, big;
  ASSERT_TRUE(small.open(wh_server_port(s)));
  ASSERT_TRUE(big.open(wh_server_port(s)));
  wh_conn* big_conn = hub.rec().wait_server_conn(big.local_port());
  // A frame of 1 MiB, of which 400 KiB arrive: more than the whole budget.
  std::string f = encode_frame(OP_BINARY, std::string(1 << 20, 'b'));
  ASSERT_TRUE(big.send_raw(f.substr(0, 400 << 10)));
  auto closing = big.read_until_close(3000);
  ASSERT_TRUE(closing.has_value());
  EXPECT_EQ(closing->close_code(), WH_CLOSE_POLICY);
  big.close();  // a failed connection waits for the peer's EOF, not its close frame
  auto e = hub.rec().wait_event(WH_EV_CLOSE, big_conn);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, WH_EBUDGET);
  // The other connection is still served.
  ASSERT_TRUE(small.send_text("still here"));
  auto echo = small.read_data_frame();
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->payload, "still here");
}

TEST(Hardening, AnUpgradeAcceptedInsideAnotherCallbackDoesNotReadIntoItsEvent) {
  // Finding 7: B's deferred upgrade is accepted from A's message callback;
  // B's pipelined frames must not be read into the buffer A's event points at.
  TestHub hub;
  std::atomic<wh_request*> pending{nullptr};
  std::atomic<bool> intact{false}, checked{false};
  hub.set_handler([&](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_UPGRADE) {
      if (std::string(wh_request_path(ev.request) ? wh_request_path(ev.request) : "") == "/later") pending = ev.request;
      else wh_request_accept(ev.request, nullptr, nullptr, nullptr);
    } else if (ev.type == WH_EV_MESSAGE && ev.server && pending.load()) {
      const std::string before(ev.data, ev.len);
      wh_request_accept(pending.exchange(nullptr), nullptr, nullptr, nullptr);
      intact = std::string(ev.data, ev.len) == before;
      checked = true;
    }
  });
  wh_server* s = listen_with_upgrade_hook(hub);
  ASSERT_NE(s, nullptr);
  RawClient a, b;
  ASSERT_TRUE(a.open(wh_server_port(s)));
  ASSERT_TRUE(b.connect(wh_server_port(s)));
  ASSERT_TRUE(b.send_raw(upgrade_request("/later") + encode_frame(OP_TEXT, std::string(1000, 'B'))));
  ASSERT_TRUE(eventually([&] { return pending.load() != nullptr; }));
  // B's frame arrives while its upgrade waits.
  std::this_thread::sleep_for(Ms(50));
  ASSERT_TRUE(a.send_text(std::string(1000, 'A')));
  ASSERT_TRUE(eventually([&] { return checked.load(); }));
  EXPECT_TRUE(intact.load()) << "A's message changed under its callback";
  EXPECT_TRUE(hub.rec().wait_count(WH_EV_MESSAGE, 2));
}

TEST(Hardening, TerminateInsideACallbackDeliversCloseAfterItReturns) {
  // Finding 11: no WH_EV_CLOSE nested in the callback that terminated.
  TestHub hub;
  std::atomic<int> depth{0};
  std::atomic<bool> nested{false};
  std::atomic<int> after_terminate{0};
  std::atomic<bool> terminated{false};
  hub.set_handler([&](wh_hub*, const wh_event& ev) {
    if (!ev.server) return;
    if (depth.fetch_add(1) > 0) nested = true;
    if (ev.type == WH_EV_MESSAGE) {
      if (terminated) ++after_terminate;
      else {
        terminated = true;
        wh_conn_terminate(ev.conn);
      }
    }
    depth.fetch_sub(1);
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  // Three messages in one segment: the first terminates.
  ASSERT_TRUE(c.send_raw(encode_frame(OP_TEXT, "1") + encode_frame(OP_TEXT, "2") + encode_frame(OP_TEXT, "3")));
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_CLOSE, conn).has_value());
  EXPECT_FALSE(nested.load()) << "an event arrived inside another's callback";
  EXPECT_EQ(after_terminate.load(), 0) << "messages delivered after wh_conn_terminate";
}

}  // namespace

namespace {

TEST(HardeningQueue, AHostThatFallsBehindStopsReadingNotMemory) {
  // Finding 6: every 6-byte empty frame is an event; a host that does not
  // poll must not make the engine queue them without bound. Reading stops
  // at the backlog cap and resumes with the next poll; none is lost.
  wh_hub_options ho{};
  ho.size = sizeof ho;
  ho.event_mode = WH_EVENTS_QUEUE;
  wh_hub* hub = nullptr;
  ASSERT_EQ(wh_hub_create(&ho, &hub), 0);
  wh_server_options so = server_options();
  wh_server* s = nullptr;
  ASSERT_EQ(wh_server_listen(hub, &so, &s), 0);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  const int n = 1500000;  // 9 MB of empty masked frames, ~200 MB as events
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    const std::string one = encode_frame(OP_BINARY, "");
    std::string chunk;
    for (int i = 0; i < 10000; ++i) chunk += one;
    bool ok = true;
    for (int i = 0; i < n / 10000 && ok; ++i) ok = c.send_raw(chunk);
    sent = ok;
  });
  std::this_thread::sleep_for(Ms(1500));  // the host is busy elsewhere
  std::vector<wh_event> batch(1 << 20);
  int first = wh_hub_poll(hub, batch.data(), static_cast<int>(batch.size()));
  // The cap counts events as well as bytes: a host that makes an object of
  // each must not be handed half a million (64 MiB of 6-byte frames).
  EXPECT_GT(first, 0);
  EXPECT_LE(first, 16384 + 1) << "the queue grew past its cap";
  long total = 0;
  for (int i = 0; i < first; ++i) total += batch[i].type == WH_EV_MESSAGE;
  const auto deadline = Clock::now() + Ms(30000);
  while (total < n && Clock::now() < deadline) {
    int k = wh_hub_poll(hub, batch.data(), 4096);
    for (int i = 0; i < k; ++i) total += batch[i].type == WH_EV_MESSAGE;
    if (k == 0) std::this_thread::sleep_for(Ms(1));
  }
  sender.join();
  EXPECT_TRUE(sent.load());
  EXPECT_EQ(total, n) << "messages lost or stuck after the backlog";
  c.close();
  EXPECT_EQ(wh_hub_destroy(hub, 2000), 0);
}

}  // namespace

namespace {

TEST(HardeningDeflate, AQuietConnectionKeepsNoZlibState) {
  // Finding 9: a peer that keeps its compression context made us keep a
  // 32 KiB window (40-75 KB a connection) after one small message. After a
  // second with no compressed traffic only the history it produced is kept.
  TestHub hub;
  hub.set_handler([](wh_hub*, const wh_event&) {});
  auto o = server_options();
  o.deflate.enabled = 1;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  std::vector<RawClient> peers(200);
  for (auto& c : peers) {
    ASSERT_TRUE(c.connect(wh_server_port(s)));
    ASSERT_EQ(c.upgrade("/", "Sec-WebSocket-Extensions: permessage-deflate\r\n").status, 101);
  }
  ASSERT_TRUE(hub.rec().wait_count(WH_EV_OPEN, peers.size()));
  const std::size_t before = heap_in_use();
  for (auto& c : peers) ASSERT_TRUE(c.send_frame(OP_TEXT, pmd_compress("hello, compressed world"), FrameOpts().with_rsv(RSV1)));
  ASSERT_TRUE(hub.rec().wait_count(WH_EV_MESSAGE, peers.size()));
  const std::size_t busy = heap_in_use();
  EXPECT_GT(busy, before + peers.size() * (20u << 10)) << "inflating holds zlib state (the premise)";
  ASSERT_TRUE(eventually([&] { return heap_in_use() < before + peers.size() * 1024; }, 4000))
      << "still " << (heap_in_use() - before) / peers.size() << " bytes a connection after going quiet";
}

}  // namespace

namespace {

TEST(HardeningShared, SlowSubscribersShareOnePublishedCopy) {
  // A publish is framed once. A subscriber that is behind used to append
  // its own copy of every frame it had not taken: 4 slow subscribers held
  // 4 copies (issue 11's slow-consumer case, ~60 MB each before the cap).
  // Now the frames queued behind a slow peer are the publish's own bytes,
  // held once for all of them.
  TestHub hub;
  auto o = server_options();
  o.limits.max_buffered = 64u << 20;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  std::vector<RawClient> subs(4);
  for (auto& c : subs) {
    ASSERT_TRUE(c.connect(wh_server_port(s), "127.0.0.1", kTimeoutMs, 4096));
    ASSERT_EQ(c.upgrade().status, 101);
    wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
    ASSERT_NE(conn, nullptr);
    ASSERT_EQ(wh_conn_subscribe(conn, "room"), 0);
  }
  const std::string msg(64u << 10, 'm');
  const int n = 160;  // 10 MiB published; none of it read
  const std::size_t before = heap_in_use();
  for (int i = 0; i < n; ++i) ASSERT_GE(wh_server_publish(s, "room", msg.data(), msg.size(), WH_BINARY, nullptr), 0);
  // What the sockets did not take is held for each subscriber: buffered.
  std::this_thread::sleep_for(Ms(500));
  std::size_t held = 0;
  for (auto& ev : hub.rec().events(WH_EV_OPEN)) {
    std::size_t b = 0;
    wh_conn_buffered(ev.conn, &b);
    held += b;
  }
  ASSERT_GT(held, 4 * msg.size() * 40) << "the subscribers took what was published";
  // Held once, not once per subscriber (then it would be `held`).
  const std::size_t grown = heap_in_use() - before;
  EXPECT_LT(grown, held / 2) << (grown >> 20) << " MiB in the heap for " << (held >> 20)
                             << " MiB held for 4 subscribers: each keeps its own copy";
  EXPECT_EQ(hub.rec().count(WH_EV_CLOSE), 0u);
}

}  // namespace

namespace {

// Blocking: a socket that did the opening handshake, with no heap of ours
// (the test's own allocations would blur the server's).
int open_raw(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char buf[512];
  std::size_t got = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return -1;
  }
  while (got < sizeof buf - 1) {
    const ssize_t n = ::recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    buf[got] = 0;
    if (std::strstr(buf, "\r\n\r\n")) return std::strncmp(buf, "HTTP/1.1 101", 12) == 0 ? fd : (::close(fd), -1);
  }
  ::close(fd);
  return -1;
}

TEST(HardeningIdle, AnOpenIdleConnectionKeepsItsObjectAndNothingElse) {
  // Issue 11's memory bar: at most 0.5 KB an idle connection in the
  // benchmark (uWebSockets 0.25). The connection object is 280 bytes (a
  // static_assert in connection.cpp holds it; it was 520); this holds the
  // rest: what the handshake allocated (the request parser, the side
  // struct) is freed once open, and an idle connection keeps no buffer.
  std::atomic<int> opens{0};
  wh_hub_options ho{};
  ho.size = sizeof ho;
  ho.io_threads = 1;
  ho.event_mode = WH_EVENTS_CALLBACK;
  ho.on_event = [](wh_hub*, const wh_event* ev, void* u) {
    if (ev->type == WH_EV_OPEN) static_cast<std::atomic<int>*>(u)->fetch_add(1);
  };
  ho.user_data = &opens;
  wh_hub* hub = nullptr;
  ASSERT_EQ(wh_hub_create(&ho, &hub), 0);
  wh_server_options so = server_options();
  wh_server* s = nullptr;
  ASSERT_EQ(wh_server_listen(hub, &so, &s), 0);
  const int port = wh_server_port(s);
  const std::string request = upgrade_request();
  constexpr int warm = 32, n = 256;
  std::vector<int> fds;
  fds.reserve(warm + n);
  // The first ones grow what every later one shares (the loop's spare
  // buffers, its tables): not what a connection costs.
  for (int i = 0; i < warm; ++i) fds.push_back(open_raw(port, request));
  ASSERT_TRUE(eventually([&] { return opens.load() == warm; }));
  const long long before = static_cast<long long>(heap_in_use());
  for (int i = 0; i < n; ++i) fds.push_back(open_raw(port, request));
  for (int fd : fds) ASSERT_GE(fd, 0);
  ASSERT_TRUE(eventually([&] { return opens.load() == warm + n; }));
  // The server's tables grow by doubling: 400 bytes leaves them room,
  // and not the 520-byte object this test was written against.
  long long per = 0;
  const bool small = eventually([&] {
    per = (static_cast<long long>(heap_in_use()) - before) / n;
    return per <= 400;
  }, 2000);
  EXPECT_TRUE(small) << per << " bytes in the heap for each idle connection";
  for (int fd : fds) ::close(fd);
  wh_hub_destroy(hub, 1000);
}

}  // namespace
