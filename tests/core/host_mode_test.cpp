// host_mode_test.cpp — WH_EVENTS_HOST: the thread that creates the hub runs
// the engine through wh_hub_event_fd() + wh_hub_poll(); no I/O thread exists.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <chrono>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace wht;

namespace {

int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

// A host loop on its own thread, as an asyncio or libuv loop would be: it
// creates the hub, waits on the descriptor, polls, echoes messages, and runs
// the test's calls between polls.
class Host {
 public:
  // watch_max > 0: the host watches the sockets itself (wh_hub_set_watch)
  // while there are at most that many, as the Python package does.
  explicit Host(int watch_max = 0) : watch_max_(watch_max) {
    std::promise<void> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, &ready] { run(ready); });
    started.wait();
  }
  ~Host() { stop(); }

  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
  }

  // Runs f on the host thread between two polls and returns its result.
  template <class F>
  auto on_host(F f) -> decltype(f()) {
    using R = decltype(f());
    auto p = std::make_shared<std::promise<R>>();
    auto fut = p->get_future();
    {
      std::lock_guard<std::mutex> lk(mu_);
      calls_.push_back([p, f]() mutable { p->set_value(f()); });
    }
    return fut.get();
  }

  // Connects c to the host's server; the server side's conn, or nullptr.
  wh_conn* open(RawClient& c) {
    if (!c.open(port_)) return nullptr;
    return rec_.wait_server_conn(c.local_port());
  }

  wh_hub* hub() const { return hub_; }
  int port() const { return port_; }
  int create_rc() const { return create_rc_; }
  int threads_before() const { return threads_before_; }
  int threads_after() const { return threads_after_; }
  int destroy_rc() const { return destroy_rc_; }
  EventRecorder& rec() { return rec_; }

  // What the engine asked the host to watch, now and over time.
  struct WatchLog {
    std::vector<int> watched;           // fds handed out now
    std::vector<std::pair<int, int>> calls;  // (fd, read) in order
    int off_after_close = 0;            // "off" for an fd already closed: a bug
    int messages_by_fd = 0;             // messages that came through wh_hub_poll_fd()
  };
  WatchLog watch_log() {
    std::lock_guard<std::mutex> lk(watch_mu_);
    return log_;
  }
  // Waits until the handed-out set is `n` fds (the engine acts on its next input).
  bool wait_watched(std::size_t n, int timeout_ms = 3000) {
    for (int waited = 0; waited < timeout_ms; waited += 5) {
      if (watch_log().watched.size() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  static void on_watch(int fd, int read, void* self) {
    auto* h = static_cast<Host*>(self);
    std::lock_guard<std::mutex> lk(h->watch_mu_);
    h->log_.calls.emplace_back(fd, read);
    auto& w = h->log_.watched;
    if (read) {
      EXPECT_EQ(std::count(w.begin(), w.end(), fd), 0) << "fd " << fd << " handed out twice";
      w.push_back(fd);
    } else {
      EXPECT_EQ(std::count(w.begin(), w.end(), fd), 1) << "fd " << fd << " taken back but not handed out";
      w.erase(std::remove(w.begin(), w.end(), fd), w.end());
      if (::fcntl(fd, F_GETFD) < 0) ++h->log_.off_after_close;
    }
  }

  void handle(wh_event* batch, int n, bool by_fd) {
    for (int i = 0; i < n; ++i) {
      EventRecorder::callback(hub_, &batch[i], &rec_);
      if (batch[i].type == WH_EV_MESSAGE && batch[i].server) {
        if (by_fd) {
          std::lock_guard<std::mutex> lk(watch_mu_);
          ++log_.messages_by_fd;
        }
        EXPECT_GE(wh_conn_send(batch[i].conn, batch[i].data, batch[i].len,
                               (batch[i].flags & WH_BINARY) ? WH_BINARY : WH_TEXT), 0);
      }
    }
  }

  void run(std::promise<void>& ready) {
    threads_before_ = thread_count();
    wh_hub_options o{};
    o.size = sizeof o;
    o.event_mode = WH_EVENTS_HOST;
    create_rc_ = wh_hub_create(&o, &hub_);
    if (create_rc_ == 0 && watch_max_ > 0) {
      EXPECT_EQ(wh_hub_set_watch(hub_, watch_max_, &Host::on_watch, this), 0);
    }
    wh_server_options so = server_options();
    wh_server* s = nullptr;
    if (create_rc_ == 0 && wh_server_listen(hub_, &so, &s) == 0) port_ = wh_server_port(s);
    threads_after_ = thread_count();
    int fd = -1;
    if (hub_) wh_hub_event_fd(hub_, &fd);
    ready.set_value();
    if (!hub_) return;
    while (!stop_) {
      std::vector<pollfd> fds{{fd, POLLIN, 0}};
      for (int w : watch_log().watched) fds.push_back({w, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 5);
      wh_event batch[64];
      int n;
      for (std::size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents) {
          n = wh_hub_poll_fd(hub_, fds[i].fd, batch, 64);
          EXPECT_GE(n, 0);
          handle(batch, n, true);
        }
      while ((n = wh_hub_poll(hub_, batch, 64)) > 0) handle(batch, n, false);
      std::vector<std::function<void()>> calls;
      {
        std::lock_guard<std::mutex> lk(mu_);
        calls.swap(calls_);
      }
      for (auto& c : calls) c();
    }
    destroy_rc_ = wh_hub_destroy(hub_, 1000);
  }

  int watch_max_ = 0;
  std::mutex watch_mu_;
  WatchLog log_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::function<void()>> calls_;
  wh_hub* hub_ = nullptr;
  int port_ = 0;
  int create_rc_ = -1;
  int threads_before_ = 0, threads_after_ = 0;
  int destroy_rc_ = -1;
  EventRecorder rec_;
};

}  // namespace

TEST(HostMode, TheCreatingThreadRunsTheEngineAndNoIoThreadIsStarted) {
  Host host;
  ASSERT_EQ(host.create_rc(), 0);
  ASSERT_GT(host.port(), 0);
  EXPECT_EQ(host.threads_after(), host.threads_before()) << "host mode starts no thread";
  RawClient c;
  ASSERT_TRUE(c.open(host.port()));
  ASSERT_TRUE(c.send_text("hello"));
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "hello");
  auto msg = host.rec().wait_event(WH_EV_MESSAGE);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->data, "hello");
  c.close();
  ASSERT_TRUE(host.rec().wait_event(WH_EV_CLOSE).has_value());
  host.stop();
  EXPECT_EQ(host.destroy_rc(), 0);
}

TEST(HostMode, PollAndDestroyFromAnotherThreadFailWithESTATE) {
  Host host;
  ASSERT_EQ(host.create_rc(), 0);
  wh_event ev[4];
  EXPECT_EQ(wh_hub_poll(host.hub(), ev, 4), WH_ESTATE);
  EXPECT_EQ(wh_hub_destroy(host.hub(), 100), WH_ESTATE);
}

TEST(HostMode, MoreThanOneIoThreadIsInvalid) {
  wh_hub_options o{};
  o.size = sizeof o;
  o.event_mode = WH_EVENTS_HOST;
  o.io_threads = 2;
  wh_hub* h = nullptr;
  EXPECT_EQ(wh_hub_create(&o, &h), WH_EINVAL);
  EXPECT_EQ(h, nullptr);
}

TEST(HostMode, SendFromAnotherThreadWakesTheHost) {
  Host host;
  RawClient c;
  wh_conn* conn = host.open(c);
  ASSERT_NE(conn, nullptr);
  // This thread is not the host: the send is queued and wakes its descriptor.
  ASSERT_GE(wh_conn_send(conn, "from elsewhere", 14, WH_TEXT), 0);
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "from elsewhere");
}

TEST(HostMode, ClientByNameConnectsAndDestroyClosesEverything) {
  Host host;
  const std::string url = "ws://localhost:" + std::to_string(host.port()) + "/";
  wh_client_options co = client_options();
  wh_conn* client = nullptr;
  ASSERT_EQ(host.on_host([&] { return wh_connect(host.hub(), url.c_str(), &co, &client); }), 0);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(host.rec().wait_event(WH_EV_OPEN, client).has_value()) << host.rec().dump();
  ASSERT_EQ(host.on_host([&] { return wh_conn_send(client, "ping", 4, WH_TEXT); }), WH_SENT);
  // Our own server echoes it back to our own client.
  ASSERT_TRUE(host.rec().wait_count(WH_EV_MESSAGE, 2)) << host.rec().dump();
  ASSERT_EQ(host.on_host([&] { return wh_conn_close(client, 1000, "bye", 3); }), 0);
  ASSERT_TRUE(host.rec().wait_count(WH_EV_CLOSE, 2)) << host.rec().dump();
  // Destroy runs the close handshakes on the host thread: a peer still
  // connected gets its 1001.
  RawClient c;
  ASSERT_NE(host.open(c), nullptr);
  std::thread answer([&c] {
    auto f = c.read_until_close();
    EXPECT_TRUE(f.has_value());
    if (f) {
      EXPECT_EQ(f->close_code(), 1001);
    }
    c.send_close(1001);
  });
  host.stop();
  answer.join();
  EXPECT_EQ(host.destroy_rc(), 0);
}

TEST(HostMode, HostThreadSendsRunAtOnceAndACorkedBurstLeavesAtTheUncork) {
  Host host;
  RawClient c;
  wh_conn* conn = host.open(c);
  ASSERT_NE(conn, nullptr);
  // Outside a poll, on the host thread: the send runs and is written in the call.
  ASSERT_EQ(host.on_host([&] { return wh_conn_send(conn, "now", 3, WH_TEXT); }), WH_SENT);
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "now");
  ASSERT_EQ(host.on_host([&] {
              int rc = wh_hub_cork(host.hub());
              for (const char* m : {"a", "b", "c"}) rc |= wh_conn_send(conn, m, 1, WH_TEXT);
              return rc | wh_hub_uncork(host.hub());
            }),
            0);
  for (const char* m : {"a", "b", "c"}) {
    auto g = c.read_data_frame();
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->payload, m);
  }
}

TEST(HostMode, FlushWritesWhatACorkHoldsAndBufferedThenCountsOnlyWhatTheSocketLeft) {
  Host host;
  RawClient c;
  wh_conn* conn = host.open(c);
  ASSERT_NE(conn, nullptr);
  size_t before = 0, after = 1;
  ASSERT_EQ(host.on_host([&] {
              int rc = wh_hub_cork(host.hub());
              rc |= wh_conn_send(conn, "held", 4, WH_TEXT) < 0;
              rc |= wh_conn_buffered(conn, &before);
              // ws's bufferedAmount right after a send: what the socket did not take.
              rc |= wh_conn_flush(conn);
              rc |= wh_conn_buffered(conn, &after);
              return rc;
            }),
            0);
  EXPECT_GT(before, 0u) << "a corked send is held until the uncork";
  EXPECT_EQ(after, 0u) << "flushed: the socket took it all";
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value()) << "written before the uncork";
  EXPECT_EQ(f->payload, "held");
  ASSERT_EQ(host.on_host([&] { return wh_hub_uncork(host.hub()); }), 0);
  EXPECT_TRUE(c.quiet_for(100)) << "the uncork has nothing left to send";
  ASSERT_EQ(host.on_host([&] { return wh_conn_flush(nullptr); }), WH_EINVAL);
}

namespace {
// A host's payload allocator: it owns what it hands out.
struct PayloadStore {
  std::mutex mu;
  std::vector<std::unique_ptr<char[]>> blocks;
  std::vector<std::size_t> sizes;
  static void* alloc(std::size_t len, void* self) {
    auto* s = static_cast<PayloadStore*>(self);
    std::lock_guard<std::mutex> lk(s->mu);
    s->blocks.emplace_back(new char[len]);
    s->sizes.push_back(len);
    return s->blocks.back().get();
  }
  std::vector<std::size_t> seen() {
    std::lock_guard<std::mutex> lk(mu);
    return sizes;
  }
};
}  // namespace

TEST(HostMode, LargeMessagePayloadsArriveInMemoryTheHostAllocates) {
  Host host;
  PayloadStore store;
  EXPECT_EQ(wh_hub_set_payload_alloc(host.hub(), 1000, PayloadStore::alloc, &store), WH_ESTATE)
      << "only the host thread may set it";
  ASSERT_EQ(host.on_host([&] { return wh_hub_set_payload_alloc(host.hub(), 1000, PayloadStore::alloc, &store); }),
            0);
  RawClient c;
  ASSERT_NE(host.open(c), nullptr);
  const std::string big(5000, 'x'), small = "tiny";
  ASSERT_TRUE(c.send_frame(OP_BINARY, big));
  ASSERT_TRUE(c.send_text(small));
  // The host echoes each event's data: what it got is the message.
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, big);
  auto g = c.read_data_frame();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->payload, small);
  EXPECT_EQ(store.seen(), std::vector<std::size_t>{5000}) << "below min_len, a payload stays in the hub";
  // Off again: payloads stay in the hub.
  ASSERT_EQ(host.on_host([&] { return wh_hub_set_payload_alloc(host.hub(), 0, nullptr, nullptr); }), 0);
  ASSERT_TRUE(c.send_frame(OP_BINARY, big));
  auto h = c.read_data_frame();
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->payload, big);
  EXPECT_EQ(store.seen().size(), 1u);
}

TEST(HostMode, PayloadAllocatorIsForHostModeOnly) {
  wh_hub_options o{};
  o.size = sizeof o;
  o.event_mode = WH_EVENTS_QUEUE;
  wh_hub* h = nullptr;
  ASSERT_EQ(wh_hub_create(&o, &h), 0);
  PayloadStore store;
  EXPECT_EQ(wh_hub_set_payload_alloc(h, 0, PayloadStore::alloc, &store), WH_ESTATE);
  EXPECT_EQ(wh_hub_set_payload_alloc(nullptr, 0, PayloadStore::alloc, &store), WH_EINVAL);
  EXPECT_EQ(wh_hub_destroy(h, 100), 0);
}

TEST(HostMode, ALargeMessageRefusedAfterItsPayloadWasPlacedStillClosesWith1007) {
  Host host;
  PayloadStore store;
  ASSERT_EQ(host.on_host([&] { return wh_hub_set_payload_alloc(host.hub(), 1000, PayloadStore::alloc, &store); }),
            0);
  RawClient c;
  ASSERT_NE(host.open(c), nullptr);
  std::string bad(3000, 'a');
  bad[1500] = '\xff';  // not UTF-8: found once the frame sits in the host's memory
  ASSERT_TRUE(c.send_text(bad));
  auto f = c.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1007);
  EXPECT_EQ(store.seen(), std::vector<std::size_t>{3000}) << "the host owns what it allocated, delivered or not";
}

TEST(HostMode, BorrowedBytesLeaveInOrderAndWhatDidNotFitIsCopiedByTheUncork) {
  Host host;
  RawClient c;
  wh_conn* conn = host.open(c);
  ASSERT_NE(conn, nullptr);
  // More than the socket takes at once: the uncork writes part of it from
  // the caller's memory and must copy the rest before the caller reuses it.
  std::string big(6 << 20, '\0'), mid(100000, 'm');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  const std::string big_copy = big, mid_copy = mid;
  ASSERT_EQ(host.on_host([&] {
              int rc = wh_hub_cork(host.hub());
              rc |= wh_conn_send(conn, mid.data(), mid.size(), WH_BINARY | WH_BORROW) < 0;
              rc |= wh_conn_send(conn, "small", 5, WH_TEXT) < 0;
              rc |= wh_conn_send(conn, big.data(), big.size(), WH_BINARY | WH_BORROW) < 0;
              rc |= wh_hub_uncork(host.hub());
              // The borrow is over: the caller may change its bytes.
              std::fill(big.begin(), big.end(), 'X');
              std::fill(mid.begin(), mid.end(), 'X');
              return rc;
            }),
            0);
  // Without a cork the flag is ignored (the bytes are copied at once).
  std::string later(5000, 'L');
  ASSERT_GE(host.on_host([&] {
              int rc = wh_conn_send(conn, later.data(), later.size(), WH_BINARY | WH_BORROW);
              later.assign(later.size(), 'X');  // before the write this call ends with
              return rc;
            }),
            0);
  for (const std::string* want : {&mid_copy}) {
    auto f = c.read_data_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_TRUE(f->payload == *want);
  }
  auto s = c.read_data_frame();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->payload, "small");
  auto b = c.read_data_frame(20000);
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(b->payload.size(), big_copy.size());
  EXPECT_TRUE(b->payload == big_copy);
  auto l = c.read_data_frame();
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->payload, std::string(5000, 'L'));
}

// ------------------------------------------------------------ host watch

TEST(HostWatch, FewSocketsAreWatchedByTheHostAndItsPollFdEchoes) {
  Host host(4);
  RawClient c;
  wh_conn* conn = host.open(c);
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(host.wait_watched(1));
  for (const char* m : {"one", "two", "three"}) {
    ASSERT_TRUE(c.send_text(m));
    auto f = c.read_data_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->payload, m);
  }
  EXPECT_EQ(host.watch_log().messages_by_fd, 3) << "the messages came through the host's own wait";
  c.close();
  ASSERT_TRUE(host.rec().wait_event(WH_EV_CLOSE).has_value());
  ASSERT_TRUE(host.wait_watched(0));
  EXPECT_EQ(host.watch_log().off_after_close, 0) << "taken back before the close";
}

TEST(HostWatch, PastMaxSocketsTheEngineTakesThemBackAndHandsThemOutAgainAtHalf) {
  Host host(2);
  RawClient a, b, c;
  ASSERT_NE(host.open(a), nullptr);
  ASSERT_NE(host.open(b), nullptr);
  ASSERT_TRUE(host.wait_watched(2));
  ASSERT_NE(host.open(c), nullptr);
  ASSERT_TRUE(host.wait_watched(0)) << "a third socket: all back in the engine's set";
  int before = host.watch_log().messages_by_fd;
  for (RawClient* x : {&a, &b, &c}) {
    ASSERT_TRUE(x->send_text("batched"));
    auto f = x->read_data_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->payload, "batched");
  }
  EXPECT_EQ(host.watch_log().messages_by_fd, before) << "served through wh_hub_poll()";
  a.close();
  ASSERT_TRUE(host.rec().wait_count(WH_EV_CLOSE, 1));
  EXPECT_TRUE(host.watch_log().watched.empty()) << "two left: still above max / 2";
  b.close();
  ASSERT_TRUE(host.rec().wait_count(WH_EV_CLOSE, 2));
  ASSERT_TRUE(host.wait_watched(1)) << "one left: handed out again";
  ASSERT_TRUE(c.send_text("direct again"));
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "direct again");
  EXPECT_EQ(host.watch_log().messages_by_fd, before + 1);
  EXPECT_EQ(host.watch_log().off_after_close, 0);
}

TEST(HostWatch, PausedInputIsTakenBackUntilResumedAndNothingIsLost) {
  Host host(4);
  RawClient c;
  wh_conn* conn = host.open(c);
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(host.wait_watched(1));
  ASSERT_EQ(host.on_host([&] { return wh_conn_pause(conn); }), 0);
  host.on_host([] { return 0; });  // the pause runs at the host's next poll, before this
  ASSERT_TRUE(c.send_text("held"));
  // The engine sees input it must not read and tells the host to stop
  // watching (a level-triggered host would otherwise spin on it).
  ASSERT_TRUE(host.wait_watched(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(host.rec().count(WH_EV_MESSAGE), 0u);
  ASSERT_EQ(host.on_host([&] { return wh_conn_resume(conn); }), 0);
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "held");
  ASSERT_TRUE(host.wait_watched(1));
}

TEST(HostWatch, DestroyRunsTheCloseHandshakesOfSocketsTheHostWatches) {
  Host host(4);
  RawClient c;
  ASSERT_NE(host.open(c), nullptr);
  ASSERT_TRUE(host.wait_watched(1));
  std::thread answer([&c] {
    auto f = c.read_until_close();
    EXPECT_TRUE(f.has_value());
    if (f) {
      EXPECT_EQ(f->close_code(), 1001);
    }
    c.send_close(1001);
    c.close();
  });
  const auto t0 = std::chrono::steady_clock::now();
  host.stop();
  answer.join();
  EXPECT_EQ(host.destroy_rc(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900))
      << "the answer was read, not waited out";
  EXPECT_TRUE(host.watch_log().watched.empty());
  EXPECT_EQ(host.watch_log().off_after_close, 0);
}

TEST(HostWatch, SetWatchRulesAndPollFdOfASocketNoLongerHandedOut) {
  static auto noop = [](int, int, void*) {};
  {
    Host host;  // listening, no socket yet
    EXPECT_EQ(host.on_host([&] { return wh_hub_set_watch(host.hub(), 0, noop, nullptr); }), WH_EINVAL);
    EXPECT_EQ(wh_hub_set_watch(host.hub(), 4, noop, nullptr), WH_ESTATE) << "not the host thread";
    wh_event ev[4];
    EXPECT_EQ(host.on_host([&] { return wh_hub_poll_fd(host.hub(), 0, ev, 4); }), WH_ESTATE) << "no watch";
    RawClient c;
    ASSERT_NE(host.open(c), nullptr);
    EXPECT_EQ(host.on_host([&] { return wh_hub_set_watch(host.hub(), 4, noop, nullptr); }), WH_ESTATE)
        << "a socket exists already";
  }
  Host host(4);
  wh_event ev[4];
  EXPECT_EQ(host.on_host([&] { return wh_hub_poll_fd(host.hub(), 12345, ev, 4); }), 0) << "unknown: no events";
  EXPECT_EQ(host.on_host([&] { return wh_hub_poll_fd(host.hub(), 3, ev, 0); }), WH_EINVAL);
  EXPECT_EQ(wh_hub_poll_fd(host.hub(), 3, ev, 4), WH_ESTATE) << "not the host thread";
  wh_hub_options o{};
  o.size = sizeof o;
  o.event_mode = WH_EVENTS_QUEUE;
  wh_hub* q = nullptr;
  ASSERT_EQ(wh_hub_create(&o, &q), 0);
  EXPECT_EQ(wh_hub_set_watch(q, 4, noop, nullptr), WH_ESTATE) << "host mode only";
  wh_hub_destroy(q, 100);
}
