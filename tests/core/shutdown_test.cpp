// shutdown_test.cpp — wh_server_close() and wh_hub_destroy() with live
// connections: 1001 Going Away, nothing queued is lost, bounded waits.
#include <array>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace wht;

namespace {

bool server_closed(const std::vector<Event>& evs) {
  for (auto& e : evs)
    if (e.type == WH_EV_SERVER_CLOSED) return true;
  return false;
}

// Nobody listens on `port` any more, and a new server can listen on it.
void expect_port_free(TestHub& hub, int port) {
  RawClient c;
  EXPECT_FALSE(c.connect(port)) << "the listening socket must be closed";
  wh_server_options o = server_options();
  o.port = port;
  EXPECT_NE(hub.listen(o), nullptr) << "the port must be free again";
}

}  // namespace

TEST(Shutdown, ServerCloseSends1001ToEveryClientThenServerClosedEvent) {
  TestHub hub;
  static int server_marker;
  wh_server_options o = server_options();
  o.user_data = &server_marker;
  wh_server* s = hub.listen(o);
  ASSERT_NE(s, nullptr);
  int port = wh_server_port(s);
  std::array<RawClient, 3> c;
  std::array<wh_conn*, 3> conns{};
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(c[i].open(port));
    conns[i] = hub.rec().wait_server_conn(c[i].local_port());
    ASSERT_NE(conns[i], nullptr);
  }
  ASSERT_EQ(wh_server_close(s, 2000), 0);
  for (size_t i = 0; i < c.size(); ++i) {
    auto f = c[i].read_until_close();
    ASSERT_TRUE(f.has_value()) << "client " << i << " got no close frame";
    EXPECT_EQ(f->close_code(), 1001) << "client " << i;
    c[i].send_close(1001);
    EXPECT_TRUE(c[i].wait_eof());
  }
  ASSERT_TRUE(hub.rec().wait_for(server_closed)) << hub.rec().dump();
  // Every conn closed (cleanly, 1001) before the server-closed event.
  auto all = hub.rec().all();
  size_t closed_at = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].type == WH_EV_SERVER_CLOSED) closed_at = i;
  EXPECT_EQ(all[closed_at].server, s);
  EXPECT_EQ(all[closed_at].conn, nullptr);
  EXPECT_EQ(all[closed_at].user_data, &server_marker);
  for (auto* conn : conns) {
    bool found = false;
    for (size_t i = 0; i < closed_at; ++i)
      if (all[i].type == WH_EV_CLOSE && all[i].conn == conn) {
        found = true;
        EXPECT_EQ(all[i].code, 1001);
        EXPECT_EQ(all[i].error, 0) << wh_err_name(all[i].error);
      }
    EXPECT_TRUE(found) << "conn " << conn << " had no WH_EV_CLOSE before WH_EV_SERVER_CLOSED\n" << hub.rec().dump();
  }
  EXPECT_EQ(hub.rec().count(WH_EV_SERVER_CLOSED), 1u);
}

TEST(Shutdown, ClosedServerRefusesNewConnections) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  int port = wh_server_port(s);
  ASSERT_EQ(wh_server_close(s, 1000), 0);
  ASSERT_TRUE(hub.rec().wait_for(server_closed));
  expect_port_free(hub, port);
}

TEST(Shutdown, UnlistenFreesThePortAndKeepsOpenConnections) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  const int port = wh_server_port(s);
  RawClient c;
  ASSERT_TRUE(c.open(port));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(conn, nullptr);
  ASSERT_EQ(wh_server_unlisten(s), 0);
  EXPECT_EQ(wh_server_unlisten(s), 0) << "a second call is a no-op";
  // Free at once: another server takes it while this one still serves.
  expect_port_free(hub, port);
  ASSERT_EQ(wh_conn_send(conn, "still here", 10, WH_TEXT), WH_SENT);
  auto f = c.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "still here");
  EXPECT_EQ(hub.rec().count(WH_EV_CLOSE, conn), 0u);
  ASSERT_EQ(wh_server_close(s, 1000), 0);
  auto close = c.read_until_close();
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->close_code(), 1001);
}

TEST(Shutdown, ServerCloseWithoutConnectionsCompletesQuickly) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  auto t0 = Clock::now();
  ASSERT_EQ(wh_server_close(s, 5000), 0);
  ASSERT_TRUE(hub.rec().wait_for(server_closed, 2000)) << "no need to wait for the timeout without conns";
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 2000);
}

TEST(Shutdown, ServerCloseRacingItsLastConnectionLeavingFreesTheServerOnce) {
  // The last connection can leave between wh_server_close() marking the
  // server closing and its close task running; the server must outlive that
  // task. Racy by nature: repeated, and the sanitizer builds watch it.
  for (int round = 0; round < 20; ++round) {
    TestHub hub;
    wh_server* s = hub.listen(server_options());
    ASSERT_NE(s, nullptr);
    RawClient c;
    ASSERT_TRUE(c.open(wh_server_port(s)));
    ASSERT_NE(hub.rec().wait_server_conn(c.local_port()), nullptr);
    std::thread leaver([&c] { c.close(); });
    ASSERT_EQ(wh_server_close(s, 1000), 0);
    leaver.join();
    ASSERT_TRUE(hub.rec().wait_for(server_closed, 3000)) << "round " << round << "\n" << hub.rec().dump();
    EXPECT_EQ(hub.rec().count(WH_EV_SERVER_CLOSED), 1u);
  }
}

TEST(Shutdown, DataSentJustBeforeCloseArrivesBeforeTheCloseFrame) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(conn, nullptr);
  std::string big = random_bytes(1 << 20);
  for (int i = 0; i < 50; ++i) {
    std::string m = "msg " + std::to_string(i);
    ASSERT_GE(wh_conn_send(conn, m.data(), m.size(), WH_TEXT), 0);
  }
  ASSERT_GE(wh_conn_send(conn, big.data(), big.size(), WH_BINARY), 0);
  ASSERT_GE(wh_conn_send(conn, "last", 4, WH_TEXT), 0);
  ASSERT_EQ(wh_server_close(s, 3000), 0);

  std::vector<Frame> data;
  auto cl = c.read_until_close(5000, &data);
  ASSERT_TRUE(cl.has_value()) << "no close frame; got " << data.size() << " frames";
  EXPECT_EQ(cl->close_code(), 1001);
  ASSERT_EQ(data.size(), 52u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(data[static_cast<size_t>(i)].payload, "msg " + std::to_string(i));
  EXPECT_TRUE(data[50].payload == big);
  EXPECT_EQ(data[51].payload, "last");
  c.send_close(1001);
  EXPECT_TRUE(c.wait_eof());
  EXPECT_TRUE(hub.rec().wait_for(server_closed));
}

TEST(Shutdown, PeerThatNeverAnswersIsDroppedAfterTheTimeout) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  wh_conn* conn = hub.rec().wait_server_conn(c.local_port());
  ASSERT_NE(conn, nullptr);
  auto t0 = Clock::now();
  ASSERT_EQ(wh_server_close(s, 300), 0);
  // The client never reads nor answers.
  ASSERT_TRUE(hub.rec().wait_for(server_closed, 3000)) << hub.rec().dump();
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 3000);
  auto e = hub.rec().wait_event(WH_EV_CLOSE, conn);
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->error, 0) << "the close handshake did not complete";
  EXPECT_TRUE(c.wait_eof());
}

TEST(Shutdown, HubDestroyWithOpenConnectionsReturnsAndSendsGoingAway) {
  auto hub = std::make_unique<TestHub>();
  hub->set_handler(echo_handler);
  wh_server* s = hub->listen(server_options());
  ASSERT_NE(s, nullptr);
  int port = wh_server_port(s);
  RawClient a, b;
  ASSERT_TRUE(a.open(port));
  ASSERT_TRUE(b.open(port));
  wh_conn* client = nullptr;
  wh_client_options o = client_options();
  ASSERT_EQ(wh_connect(hub->get(), ws_url(port).c_str(), &o, &client), 0);
  ASSERT_TRUE(hub->rec().wait_event(WH_EV_OPEN, client).has_value());
  ASSERT_TRUE(hub->rec().wait_count(WH_EV_OPEN, 4));  // a, b, client, and client's server side

  // `a` answers the close in a helper thread; `b` stays silent.
  std::optional<Frame> a_close;
  std::thread answer([&] {
    a_close = a.read_until_close(5000);
    if (a_close) {
      a.send_close(1001);
      a.wait_eof(3000);
    }
  });
  auto t0 = Clock::now();
  EXPECT_EQ(hub->destroy(1000), 0);
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  answer.join();
  EXPECT_LT(took, 4000) << "wh_hub_destroy must not wait much past its timeout";
  ASSERT_TRUE(a_close.has_value());
  EXPECT_EQ(a_close->close_code(), 1001);
  auto bf = b.read_until_close(1000);
  ASSERT_TRUE(bf.has_value()) << "the silent peer was sent a close frame too";
  EXPECT_EQ(bf->close_code(), 1001);
  EXPECT_TRUE(b.wait_eof(1000)) << "after destroy every socket is closed";
}

TEST(Shutdown, HubDestroyWithoutServersIsImmediate) {
  wh_hub_options o{};
  o.size = sizeof o;
  o.on_event = &EventRecorder::callback;
  EventRecorder rec;
  o.user_data = &rec;
  wh_hub* hub = nullptr;
  ASSERT_EQ(wh_hub_create(&o, &hub), 0);
  auto t0 = Clock::now();
  EXPECT_EQ(wh_hub_destroy(hub, 0), 0);
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 1000);
}

TEST(Shutdown, HubDestroyFromAnIoThreadFailsWithESTATE) {
  TestHub hub;
  auto rc = std::make_shared<std::atomic<int>>(1);
  hub.set_handler([rc](wh_hub* h, const wh_event& ev) {
    if (ev.type == WH_EV_OPEN) *rc = wh_hub_destroy(h, 0);
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  ASSERT_TRUE(hub.rec().wait_event(WH_EV_OPEN).has_value());
  EXPECT_EQ(rc->load(), WH_ESTATE);
  // The hub still works.
  EXPECT_EQ(wh_server_connections(s), 1);
}

TEST(Shutdown, ServerCloseFromInsideTheCallbackWorks) {
  TestHub hub;
  auto rc = std::make_shared<std::atomic<int>>(1);
  hub.set_handler([rc](wh_hub*, const wh_event& ev) {
    if (ev.type == WH_EV_MESSAGE && ev.server) *rc = wh_server_close(ev.server, 1000);
  });
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.open(wh_server_port(s)));
  ASSERT_TRUE(c.send_text("shut down please"));
  auto f = c.read_until_close();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->close_code(), 1001);
  c.send_close(1001);
  EXPECT_TRUE(c.wait_eof());
  EXPECT_TRUE(hub.rec().wait_for(server_closed)) << hub.rec().dump();
  EXPECT_EQ(rc->load(), 0);
}
