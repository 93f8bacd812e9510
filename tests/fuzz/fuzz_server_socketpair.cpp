// fuzz_server_socketpair — a whole server through the C ABI: the input is
// what a client sends on a socket the server adopted (wh_server_adopt, as
// Node's { server } option does), over a UNIX socketpair.
//
// One hub (callback mode, one I/O thread) serves every input, with two
// servers that never listen: a plain one and one with permessage-deflate,
// both with small limits so limits are reached. Per input:
//   [mode][head (len+bytes), only with mode bit1][n][client bytes...][n split sizes]
// mode bit0: the deflate server; bit1: the head is the input's own bytes
// instead of a valid upgrade request; bit2: the handler echoes each message.
// The client bytes are written in the chosen pieces while the server's
// answer is drained, then the client half-closes and reads to EOF.
// Invariants: no event names a conn before its WH_EV_OPEN; each opened conn
// gets exactly one WH_EV_CLOSE, within a few seconds of the client's EOF;
// nothing leaks (ASan) and nothing crashes.
#include "fuzz_util.hpp"
#include "wirehub.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

using wirehub::fuzz::input;

namespace {

std::mutex mu;
std::condition_variable cv;
std::set<wh_conn*> open_conns;
std::size_t opened_total = 0;
std::atomic<bool> echo{false};

void on_event(wh_hub*, const wh_event* ev, void*) {
  std::lock_guard<std::mutex> lock(mu);
  switch (ev->type) {
    case WH_EV_OPEN:
      FUZZ_CHECK(ev->conn != nullptr);
      FUZZ_CHECK(open_conns.insert(ev->conn).second);
      ++opened_total;
      break;
    case WH_EV_MESSAGE:
    case WH_EV_PING:
    case WH_EV_PONG:
    case WH_EV_DRAIN:
      FUZZ_CHECK(open_conns.count(ev->conn) == 1);
      if (ev->type == WH_EV_MESSAGE && echo.load())
        wh_conn_send(ev->conn, ev->data, ev->len, ev->flags & (WH_TEXT | WH_BINARY));
      break;
    case WH_EV_CLOSE:
      // Exactly one, and only for a conn that opened.
      FUZZ_CHECK(open_conns.erase(ev->conn) == 1);
      cv.notify_all();
      break;
    case WH_EV_UPGRADE:
    case WH_EV_HTTP:
      FUZZ_CHECK(false);  // neither server asked for these
      break;
    default:
      break;
  }
}

struct fixture {
  wh_hub* hub = nullptr;
  wh_server* plain = nullptr;
  wh_server* deflate = nullptr;

  fixture() {
    wh_hub_options ho{};
    ho.size = sizeof ho;
    ho.io_threads = 1;
    ho.event_mode = WH_EVENTS_CALLBACK;
    ho.on_event = on_event;
    FUZZ_CHECK(wh_hub_create(&ho, &hub) == 0);
    wh_server_options so{};
    so.size = sizeof so;
    so.flags = WH_SERVER_NO_LISTEN;
    so.subprotocols = "chat, superchat";
    so.limits.max_message_size = 64 * 1024;
    so.limits.max_header_bytes = 4096;
    so.limits.handshake_timeout_ms = 1000;
    so.limits.close_timeout_ms = 300;
    so.max_memory = 1u << 20;
    so.message_timeout_ms = 2000;
    FUZZ_CHECK(wh_server_listen(hub, &so, &plain) == 0);
    so.deflate.enabled = 1;
    so.deflate.threshold = 16;
    so.deflate.client_max_window_bits = 10;
    FUZZ_CHECK(wh_server_listen(hub, &so, &deflate) == 0);
  }
  ~fixture() { wh_hub_destroy(hub, 2000); }
};

fixture& the_fixture() {
  static fixture* f = [] {
    auto* p = new fixture();
    // Destroyed before the leak check at exit (LeakSanitizer's own atexit
    // handler was registered first, so it runs last).
    std::atexit([] { delete &the_fixture(); });
    return p;
  }();
  return *f;
}

constexpr const char* kRequest =
    "GET /chat?room=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: chat\r\n";
constexpr const char* kDeflateOffer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

using clock_type = std::chrono::steady_clock;

// Reads whatever the server sent; false once it closed its end.
bool drain(int fd) {
  char buf[16384];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r > 0) continue;
    if (r == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? true : false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fixture& fx = the_fixture();
  input in(data, size);
  const std::uint8_t mode = in.byte();
  const bool use_deflate = mode & 1;
  std::string head;
  if (mode & 2) {
    head = std::string(in.str());
  } else {
    head = kRequest;
    if (use_deflate) head += kDeflateOffer;
    head += "\r\n";
  }
  echo = (mode & 4) != 0;
  wirehub::fuzz::splitter split(in.take_back(in.byte()));
  const std::string_view body = in.rest();

  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  const int client = sv[0];
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL, 0) | O_NONBLOCK);
  FUZZ_CHECK(wh_server_adopt(use_deflate ? fx.deflate : fx.plain, sv[1], head.data(), head.size(), "127.0.0.1",
                             40000) == 0);

  const auto deadline = clock_type::now() + std::chrono::seconds(5);
  bool server_open = true;
  std::size_t pos = 0;
  while (pos < body.size() && server_open && clock_type::now() < deadline) {
    const std::size_t n = split.next(body.size() - pos);
    std::size_t off = 0;
    while (off < n && server_open && clock_type::now() < deadline) {
      const ssize_t w = ::send(client, body.data() + pos + off, n - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd pfd{client, POLLIN | POLLOUT, 0};
        ::poll(&pfd, 1, 50);
      } else {
        server_open = false;  // the server closed its end (EPIPE)
      }
      server_open = server_open && drain(client);
    }
    pos += n;
  }
  ::shutdown(client, SHUT_WR);
  while (server_open && clock_type::now() < deadline) {
    pollfd pfd{client, POLLIN, 0};
    ::poll(&pfd, 1, 50);
    server_open = drain(client);
  }
  FUZZ_CHECK(!server_open);  // the server lets go of a client that sent EOF
  ::close(client);

  std::unique_lock<std::mutex> lock(mu);
  const bool all_closed = cv.wait_until(lock, deadline, [] { return open_conns.empty(); });
  if (!all_closed) std::fprintf(stderr, "%zu conn(s) opened and never closed\n", open_conns.size());
  FUZZ_CHECK(all_closed);
  return 0;
}
