// fuzz_server_socketpair — a whole server through the C ABI: the input is
// what a client sends on a socket the server adopted (wh_server_adopt, as
// Node's { server } option does), over a UNIX socketpair.
//
// One hub serves every input, with two servers that never listen: a plain
// one and one with permessage-deflate, both with small limits so limits are
// reached. The hub runs in host mode (WH_EVENTS_HOST): the fuzzer's thread
// is its I/O thread, so an input ends with every byte it caused the engine
// to allocate freed again. With an I/O thread of its own, the connection was
// still being freed there when the input returned; libFuzzer then saw more
// mallocs than frees after most inputs, ran each of them twice plus a full
// LeakSanitizer scan (most of the time went there: 100-700 execs/s), and
// after 1000 such scans gave up checking for leaks per input at all. It
// also makes an input's run deterministic: each piece the client writes is
// read and handled before the next one is written. Per input:
//   [mode][head (len+bytes), only with mode bit1][n][client bytes...][n split sizes]
// mode bit0: the deflate server; bit1: the head is the input's own bytes
// instead of a valid upgrade request; bit2: the handler echoes each message.
// The client bytes are written in the chosen pieces, the engine runs after
// each and the server's answer is drained; then the client half-closes and
// reads to EOF. The engine is waited for (its descriptor, not a sleep) only
// when it has nothing ready: a timer of its own is due, or the socket is
// full. Invariants: no event names a conn before its WH_EV_OPEN; each opened
// conn gets exactly one WH_EV_CLOSE, within a few seconds of the client's
// EOF; the heap grows with the bytes received (under ASan, after each piece);
// nothing leaks (ASan, per input) and nothing crashes.
#include "fuzz_util.hpp"
#include "wirehub.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <string>

using wirehub::fuzz::input;

// The heap in use, from the sanitizers' allocator; null without one (the
// replay build with gcc and no ASan checks no memory bound).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes() __attribute__((weak));

namespace {

std::set<wh_conn*> open_conns;
bool echo = false;

void on_event(const wh_event* ev) {
  switch (ev->type) {
    case WH_EV_OPEN:
      FUZZ_CHECK(ev->conn != nullptr);
      FUZZ_CHECK(open_conns.insert(ev->conn).second);
      break;
    case WH_EV_MESSAGE:
    case WH_EV_PING:
    case WH_EV_PONG:
    case WH_EV_DRAIN:
      FUZZ_CHECK(open_conns.count(ev->conn) == 1);
      if (ev->type == WH_EV_MESSAGE && echo)
        wh_conn_send(ev->conn, ev->data, ev->len, ev->flags & (WH_TEXT | WH_BINARY));
      break;
    case WH_EV_CLOSE:
      // Exactly one, and only for a conn that opened.
      FUZZ_CHECK(open_conns.erase(ev->conn) == 1);
      break;
    case WH_EV_UPGRADE:
    case WH_EV_HTTP:
    case WH_EV_ERROR:
      FUZZ_CHECK(false);  // neither server asked for these, nor fails as a whole
      break;
    default:
      break;
  }
}

struct fixture {
  wh_hub* hub = nullptr;
  wh_server* plain = nullptr;
  wh_server* deflate = nullptr;
  int fd = -1;  // readable while the engine has work: a socket, a timer

  fixture() {
    wh_hub_options ho{};
    ho.size = sizeof ho;
    ho.event_mode = WH_EVENTS_HOST;
    FUZZ_CHECK(wh_hub_create(&ho, &hub) == 0);
    FUZZ_CHECK(wh_hub_event_fd(hub, &fd) == 0);
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

  // Runs what the engine has ready (without blocking) and checks its events.
  // The events of one poll stay valid, and their conns referenced, until the
  // next: a last call after the closes lets them go.
  void run() {
    wh_event evs[64];
    for (;;) {
      const int n = wh_hub_poll(hub, evs, 64);
      FUZZ_CHECK(n >= 0);
      for (int i = 0; i < n; ++i) on_event(&evs[i]);
      if (n < 64) return;
    }
  }
};

fixture& the_fixture() {
  static fixture* f = [] {
    auto* p = new fixture();
    // Destroyed before the leak check at exit (LeakSanitizer's own atexit
    // handler was registered first, so it runs last), on the thread that
    // created it, as host mode requires: libFuzzer's and the replay
    // program's main thread run both the inputs and exit().
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

// What the engine holds for one client follows what that client sent, not
// what its frames claim (a length, a deflate ratio): the heap in use never
// grows by more than kMemSlack plus kMemPerByte times the bytes received.
// The slack covers a connection's own state and the first use of what the
// deflate server shares (its compressor: 280 KB); the factor, the copies of
// those bytes (assembled, inflated, echoed). Seen over the corpus: at most
// 30 KB past that first use, for 5 KB received.
constexpr std::size_t kMemSlack = 512u << 10;
constexpr std::size_t kMemPerByte = 8;
struct memory_bound {
  std::size_t base = allocated();
  static std::size_t allocated() {
    return __sanitizer_get_current_allocated_bytes ? __sanitizer_get_current_allocated_bytes() : 0;
  }
  void check(std::size_t received) const {
    const std::size_t now = allocated();
    const std::size_t grown = now > base ? now - base : 0;
    if (grown <= kMemSlack + kMemPerByte * received) return;
    std::fprintf(stderr, "heap grew by %zu bytes after %zu received\n", grown, received);
    FUZZ_CHECK(grown <= kMemSlack + kMemPerByte * received);
  }
};

// Waits up to ms for the engine to have work or for the client's socket to
// be readable (and, with out, writable).
void wait(int engine, int client, bool out, int ms) {
  pollfd p[2] = {{engine, POLLIN, 0}, {client, static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0}};
  ::poll(p, 2, ms);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fixture& fx = the_fixture();
  memory_bound mem;
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
  std::size_t received = head.size();
  fx.run();  // the adopted socket and its head
  mem.check(received);
  bool server_open = drain(client);
  std::size_t pos = 0;
  while (pos < body.size() && server_open && clock_type::now() < deadline) {
    const std::size_t n = split.next(body.size() - pos);
    std::size_t off = 0;
    while (off < n && server_open && clock_type::now() < deadline) {
      const ssize_t w = ::send(client, body.data() + pos + off, n - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
        received += static_cast<std::size_t>(w);
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wait(fx.fd, client, true, 50);  // the socket is full: the server reads when it will
      } else {
        server_open = false;  // the server closed its end (EPIPE)
      }
      fx.run();
      mem.check(received);
      server_open = server_open && drain(client);
    }
    pos += n;
  }
  ::shutdown(client, SHUT_WR);
  fx.run();
  while ((server_open = drain(client)) && clock_type::now() < deadline) {
    wait(fx.fd, client, false, 50);  // a timer of the engine's, or its answer
    fx.run();
    mem.check(received);
  }
  FUZZ_CHECK(!server_open);  // the server lets go of a client that sent EOF
  ::close(client);

  fx.run();
  while (!open_conns.empty() && clock_type::now() < deadline) {
    wait(fx.fd, -1, false, 50);
    fx.run();
  }
  if (!open_conns.empty()) std::fprintf(stderr, "%zu conn(s) opened and never closed\n", open_conns.size());
  FUZZ_CHECK(open_conns.empty());
  fx.run();  // releases the last events' conns: the input ends with nothing of it allocated
  return 0;
}
