// threads_test.cpp — several I/O threads and calls from non-I/O threads.
// Labelled "tsan": run under -DWIREHUB_TSAN=ON with `ctest -L tsan`.
#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace wht;

TEST(Threads, ManyClientsOnTwoIoThreadsEchoAndStayOnTheirThread) {
  TestHub hub(2);
  ASSERT_TRUE(hub.ok());
  hub.set_handler(echo_handler);
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  const int kClients = 12, kMsgs = 20;
  std::vector<wh_conn*> clients;
  for (int i = 0; i < kClients; ++i) {
    wh_conn* c = nullptr;
    wh_client_options o = client_options();
    ASSERT_EQ(wh_connect(hub.get(), ws_url(wh_server_port(s)).c_str(), &o, &c), 0);
    clients.push_back(c);
  }
  for (auto* c : clients) ASSERT_TRUE(hub.rec().wait_event(WH_EV_OPEN, c).has_value()) << hub.rec().dump();
  for (int m = 0; m < kMsgs; ++m)
    for (int i = 0; i < kClients; ++i) {
      std::string msg = std::to_string(i) + ":" + std::to_string(m);
      ASSERT_GE(wh_conn_send(clients[static_cast<size_t>(i)], msg.data(), msg.size(), WH_TEXT), 0);
    }
  for (int i = 0; i < kClients; ++i) {
    wh_conn* c = clients[static_cast<size_t>(i)];
    ASSERT_TRUE(hub.rec().wait_count(WH_EV_MESSAGE, kMsgs, c, 5000)) << "client " << i;
    auto msgs = hub.rec().events(WH_EV_MESSAGE, c);
    for (int m = 0; m < kMsgs; ++m)
      EXPECT_EQ(msgs[static_cast<size_t>(m)].data, std::to_string(i) + ":" + std::to_string(m));
  }
  // Every conn's events come from one thread; both I/O threads are used.
  std::map<wh_conn*, std::set<std::thread::id>> threads_of;
  std::set<std::thread::id> all_threads;
  for (auto& e : hub.rec().all())
    if (e.conn) {
      threads_of[e.conn].insert(e.thread);
      all_threads.insert(e.thread);
    }
  for (auto& [conn, ids] : threads_of) EXPECT_EQ(ids.size(), 1u) << "conn " << conn << " moved between threads";
  EXPECT_EQ(all_threads.size(), 2u) << "io_threads=2 should spread 24 conns over both threads";
  EXPECT_EQ(all_threads.count(std::this_thread::get_id()), 0u) << "callbacks run on I/O threads";
}

TEST(Threads, ConcurrentSendsFromSeveralThreadsKeepFramesIntactAndOrdered) {
  TestHub hub(2);
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(conn, nullptr);
  const int kThreads = 4, kPer = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t)
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        std::string m = std::to_string(t) + " " + std::to_string(i) + " " + std::string(static_cast<size_t>(i % 300), 'x');
        if (wh_conn_send(conn, m.data(), m.size(), WH_TEXT) < 0) failures++;
      }
    });
  // Read while they send, so the socket never fills.
  std::vector<int> next(kThreads, 0);
  int total = 0;
  for (; total < kThreads * kPer; ++total) {
    auto f = c.read_data_frame(5000);
    ASSERT_TRUE(f.has_value()) << "after " << total << " frames";
    ASSERT_EQ(f->opcode, OP_TEXT);
    ASSERT_TRUE(f->fin);
    int t = -1, i = -1;
    ASSERT_EQ(std::sscanf(f->payload.c_str(), "%d %d", &t, &i), 2) << f->payload.substr(0, 40);
    ASSERT_TRUE(t >= 0 && t < kThreads);
    EXPECT_EQ(i, next[static_cast<size_t>(t)]) << "thread " << t << "'s messages out of order";
    next[static_cast<size_t>(t)] = i + 1;
    EXPECT_EQ(f->payload.size(), std::to_string(t).size() + 1 + std::to_string(i).size() + 1 + static_cast<size_t>(i % 300));
  }
  for (auto& th : senders) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(total, kThreads * kPer);
}

TEST(Threads, PublishAndBroadcastFromOtherThreadsWhileClientsComeAndGo) {
  TestHub hub(2);
  hub.set_handler([](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_OPEN && ev.server) wh_conn_subscribe(ev.conn, "tick");
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  int port = wh_server_port(s);
  std::atomic<bool> stop{false};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    for (int i = 0; i < 5000 && !stop; ++i) {
      std::string m = "tick " + std::to_string(i);
      int rc = wh_server_publish(s, "tick", m.data(), m.size(), WH_TEXT, nullptr);
      if (rc >= 0) published++;
      if (i % 2 == 0) wh_server_broadcast(s, "b", 1, WH_BINARY, nullptr);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  // Clients connect, read a little and leave, several times.
  int opened = 0;
  for (int round = 0; round < 10; ++round) {
    RawClient a, b;
    ASSERT_TRUE(a.open(port));
    ASSERT_TRUE(b.open(port));
    opened += 2;
    EXPECT_TRUE(a.read_data_frame(2000).has_value());
    if (round % 2) {
      b.send_close(1000);
      b.read_until_close(1000);
    }
  }
  stop = true;
  publisher.join();
  EXPECT_GT(published.load(), 0);
  EXPECT_TRUE(hub.rec().wait_count(WH_EV_CLOSE, static_cast<size_t>(opened), nullptr, 5000))
      << hub.rec().count(WH_EV_CLOSE) << " of " << opened;
  EXPECT_TRUE(eventually([&] { return wh_server_connections(s) == 0; }));
}

TEST(Threads, CloseFromAnotherThreadWhileTheIoThreadSends) {
  TestHub hub(2);
  // Every message triggers 20 echoes from the I/O thread.
  hub.set_handler([](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_MESSAGE && ev.server)
      for (int i = 0; i < 20; ++i) wh_conn_send(ev.conn, ev.data, ev.len, WH_TEXT);
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(conn, nullptr);
  ASSERT_EQ(wh_conn_retain(conn), 0);
  for (int i = 0; i < 50; ++i) c.send_text("go");
  std::thread closer([&] { wh_conn_close(conn, 1000, "enough", 6); });
  closer.join();
  auto f = c.read_until_close(5000);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1000);
  c.send_close(1000);
  EXPECT_TRUE(c.wait_eof());
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_CLOSE, conn).has_value());
  EXPECT_EQ(wh_conn_send(conn, "x", 1, WH_TEXT), WH_ECLOSED);
  EXPECT_EQ(wh_conn_release(conn), 0);
}

TEST(Threads, RetainReleaseAndGettersFromManyThreads) {
  TestHub hub(2);
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(conn, nullptr);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (wh_conn_retain(conn) != 0) bad++;
        size_t b = 0;
        if (wh_conn_buffered(conn, &b) != 0) bad++;
        if (wh_conn_remote_port(conn) <= 0) bad++;
        if (wh_server_connections(s) != 1) bad++;
        if (wh_conn_release(conn) != 0) bad++;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Threads, QueueModeWithTwoIoThreadsPolledFromTheMainThread) {
  wh_hub_options o{};
  o.size = sizeof o;
  o.io_threads = 2;
  o.event_mode = WH_EVENTS_QUEUE;
  wh_hub* hub = nullptr;
  ASSERT_EQ(wh_hub_create(&o, &hub), 0);
  wh_server_options so = server_options();
  wh_server* s = nullptr;
  ASSERT_EQ(wh_server_listen(hub, &so, &s), 0);
  const int kClients = 6, kMsgs = 30;
  std::vector<RawClient> cs(kClients);
  for (auto& c : cs) ASSERT_TRUE(c.open(wh_server_port(s)));
  std::thread writer([&] {
    for (int m = 0; m < kMsgs; ++m)
      for (auto& c : cs) c.send_text("m" + std::to_string(m));
  });
  int opens = 0, msgs = 0;
  auto deadline = Clock::now() + Ms(5000);
  while ((opens < kClients || msgs < kClients * kMsgs) && Clock::now() < deadline) {
    wh_event batch[32];
    int n = wh_hub_poll(hub, batch, 32);
    ASSERT_GE(n, 0);
    for (int i = 0; i < n; ++i) {
      opens += batch[i].type == WH_EV_OPEN;
      if (batch[i].type == WH_EV_MESSAGE) {
        ++msgs;
        wh_conn_send(batch[i].conn, batch[i].data, batch[i].len, WH_TEXT);  // echo from the poller
      }
    }
    if (n == 0) std::this_thread::sleep_for(Ms(1));
  }
  writer.join();
  EXPECT_EQ(opens, kClients);
  EXPECT_EQ(msgs, kClients * kMsgs);
  for (auto& c : cs) {
    auto f = c.read_data_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->payload, "m0");
  }
  EXPECT_EQ(wh_hub_destroy(hub, 2000), 0);
}
