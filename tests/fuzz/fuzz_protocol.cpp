// fuzz_protocol — the sans-I/O receive side (core/src/protocol.hpp) in both
// roles, with and without permessage-deflate, fed in pieces the input
// chooses, sometimes through window()/feed_window() as the connection reads
// large frames, with a handler that stops feeds, refuses memory and takes
// payloads into host memory when the input says so.
//
// Input: [flags][max-size choice][deflate flags][window bits][budget]
//        [handler behaviour (len+bytes)][n][wire bytes...][n split sizes]
// flags: bit0 client role (frames from a server: unmasked), bit1 deflate,
//        bit2 skip UTF-8 checks, bit3 use window(), bit4 host payloads.
// Invariants checked after every call:
//   held() <= bytes fed so far + 64 KiB, and <= 2 * max_message_size + 64 KiB;
//   what the handler was asked to reserve minus what it got back == held();
//   a message is at most max_message_size, text or binary, compressed only
//   with deflate on, valid UTF-8 when checked; pings and pongs <= 125 bytes;
//   a close code is 1005 or a valid one, its reason valid UTF-8;
//   at most one on_close/on_fail, and no handler call after it, not even when
//   more bytes are fed to a done protocol.
#include "fuzz_util.hpp"
#include "protocol.hpp"

#include <boost/beast/websocket/detail/utf8_checker.hpp>

#include <cstdlib>
#include <vector>

using wirehub::fuzz::input;
namespace bwd = boost::beast::websocket::detail;

namespace {

constexpr std::size_t kSlack = 64 * 1024;

struct checker final : wirehub::protocol::handler {
  const wirehub::endpoint_config* cfg = nullptr;
  const wirehub::protocol* proto = nullptr;
  std::string_view behaviour;  // one byte per call: bit0 = stop this feed
  std::size_t step = 0;
  std::size_t budget = SIZE_MAX;
  std::size_t reserved = 0;
  bool ended = false;
  bool host_payloads = false;
  std::vector<void*> host_memory;

  ~checker() override {
    for (void* p : host_memory) std::free(p);
  }
  std::uint8_t next() {
    return behaviour.empty() ? 0 : static_cast<std::uint8_t>(behaviour[step++ % behaviour.size()]);
  }
  void called() { FUZZ_CHECK(!ended); }
  bool go_on() { return !(next() & 1); }

  bool on_message(const std::uint8_t* data, std::size_t len, int flags) override {
    called();
    FUZZ_CHECK(len <= cfg->max_message_size);
    FUZZ_CHECK(len == 0 || data != nullptr);
    const int kind = flags & (WH_TEXT | WH_BINARY);
    FUZZ_CHECK(kind == WH_TEXT || kind == WH_BINARY);
    FUZZ_CHECK((flags & ~(WH_TEXT | WH_BINARY | WH_COMPRESSED)) == 0);
    if (flags & WH_COMPRESSED) FUZZ_CHECK(proto->deflate_on());
    if (kind == WH_TEXT && cfg->validate_utf8) FUZZ_CHECK(bwd::check_utf8(reinterpret_cast<const char*>(data), len));
    return go_on();
  }
  bool on_ping(const std::uint8_t*, std::size_t len) override {
    called();
    FUZZ_CHECK(len <= 125);
    return go_on();
  }
  bool on_pong(const std::uint8_t*, std::size_t len) override {
    called();
    FUZZ_CHECK(len <= 125);
    return go_on();
  }
  void on_close(unsigned code, std::string_view reason) override {
    called();
    ended = true;
    FUZZ_CHECK(code == WH_CLOSE_NO_STATUS || wirehub::frame::is_valid_close_code(code));
    FUZZ_CHECK(reason.size() <= 123);
    FUZZ_CHECK(reason.empty() || bwd::check_utf8(reason.data(), reason.size()));
  }
  void on_fail(int close_code, std::string_view reason, int error) override {
    called();
    ended = true;
    FUZZ_CHECK(close_code >= 1000 && close_code <= 1014 && close_code != WH_CLOSE_NO_STATUS &&
               close_code != WH_CLOSE_ABNORMAL);
    FUZZ_CHECK(!reason.empty() && reason.size() <= 123);
    FUZZ_CHECK(error < 0);
  }
  void* place_payload(std::size_t len) override {
    FUZZ_CHECK(!ended);
    if (!host_payloads || len == 0) return nullptr;
    void* p = std::malloc(len);
    host_memory.push_back(p);
    return p;
  }
  bool reserve(std::size_t more) override {
    FUZZ_CHECK(more > 0);
    if (reserved + more > budget) return false;
    reserved += more;
    return true;
  }
  void unreserve(std::size_t less) override {
    FUZZ_CHECK(less > 0 && less <= reserved);
    reserved -= less;
  }
};

std::size_t max_size_from(std::uint8_t b) {
  switch (b % 8) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 125;
    case 3: return 1000;
    case 4: return 70000;
    case 5: return 1u << 20;
    case 6: return std::size_t{b} * 16;
    default: return 16u << 20;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  const std::uint8_t flags = in.byte();
  wirehub::endpoint_config cfg;
  cfg.max_message_size = max_size_from(in.byte());
  cfg.validate_utf8 = !(flags & 4);
  const std::uint8_t dflags = in.byte();
  const std::uint8_t bits = in.byte();
  wirehub::deflate_params dp;
  dp.server_no_context_takeover = dflags & 1;
  dp.client_no_context_takeover = dflags & 2;
  dp.server_max_window_bits = 8 + (bits & 0x0f) % 8;
  dp.client_max_window_bits = 8 + (bits >> 4) % 8;
  const std::uint8_t budget = in.byte();
  checker h;
  h.cfg = &cfg;
  h.budget = budget == 0 || budget >= 128 ? SIZE_MAX : std::size_t{budget} * 512;
  h.host_payloads = flags & 16;
  h.behaviour = in.str(32);
  wirehub::fuzz::splitter split(in.take_back(in.byte()));
  const std::string_view wire_in = in.rest();
  // The protocol unmasks in place: it gets its own copy, as a read buffer.
  std::vector<std::uint8_t> wire(wire_in.begin(), wire_in.end());

  wirehub::protocol p((flags & 1) ? wirehub::protocol::role::client : wirehub::protocol::role::server, cfg);
  h.proto = &p;
  if (flags & 2) p.set_deflate(dp);
  FUZZ_CHECK(p.deflate_on() == bool(flags & 2));
  const bool use_window = flags & 8;

  std::size_t fed = 0;
  auto check = [&] {
    FUZZ_CHECK(p.held() <= fed + kSlack);
    const std::size_t cap = cfg.max_message_size > SIZE_MAX / 4 ? SIZE_MAX : cfg.max_message_size * 2 + kSlack;
    FUZZ_CHECK(p.held() <= cap);
    FUZZ_CHECK(h.reserved == p.held());
  };
  // Feeds n bytes at `at`; resumes a stopped feed until it is through.
  auto feed = [&](std::uint8_t* at, std::size_t n) {
    fed += n;
    bool alive = p.feed(at, n, h);
    check();
    for (int i = 0; alive && p.stopped() && i < 100000; ++i) {
      alive = p.feed(nullptr, 0, h);
      check();
    }
    if (!alive) FUZZ_CHECK(p.done() && h.ended);
    return alive;
  };

  std::size_t pos = 0;
  while (pos < wire.size() && !p.done()) {
    std::size_t n = split.next(wire.size() - pos);
    if (use_window) {
      // The connection reads a large frame's rest straight into the protocol.
      auto [dst, room] = p.window(n * 4);
      if (dst) {
        const std::size_t take = std::min(room, n);
        std::memcpy(dst, wire.data() + pos, take);
        pos += take;
        n -= take;
        fed += take;
        bool alive = p.feed_window(take, h);
        check();
        for (int i = 0; alive && p.stopped() && i < 100000; ++i) {
          alive = p.feed(nullptr, 0, h);
          check();
        }
        if (!alive || n == 0) continue;
      }
    }
    feed(wire.data() + pos, n);
    pos += n;
  }
  if (p.done()) {
    // A done protocol ignores whatever else arrives.
    FUZZ_CHECK(h.ended);
    std::uint8_t more[16] = {0x81, 0x85, 1, 2, 3, 4, 0x49, 0x67, 0x6f, 0x68, 0x6e, 0x88, 0x00};
    FUZZ_CHECK(!p.feed(more, sizeof more, h));
    FUZZ_CHECK(h.reserved == p.held());
  } else {
    FUZZ_CHECK(!h.ended);
    p.trim();
    check();
  }
  return 0;
}
