// fuzz_inflate — the permessage-deflate inflater under random size limits and
// split points: what a peer's compressed frames do to the receiver's memory.
//
// Input: [window bits][flags][n] then messages, each
//          [op][limit bytes][blob length (2, little-endian)][blob]
//        and at the back n split sizes.
// op bit 0x40: the blob is plain text that a wirehub deflater (same window
// and context mode) compresses first, so the inflated result is known;
// otherwise the blob is fed as compressed bytes as it is.
// op bit 0x80: the message ends with finish() (else it is abandoned, as when
// a connection fails mid-message).
// Properties, after every feed() and finish():
//   ok       -> out.size() <= limit
//   too_big  -> out.size() <= limit + 1, and the string's capacity never
//               grew past twice that (the bomb never expands)
//   a known message inflates to exactly its text when it fits the limit and
//   is too_big when it does not.
#include "fuzz_util.hpp"
#include "wirehub/permessage_deflate.hpp"

#include <algorithm>
#include <string>

using wirehub::fuzz::input;
using result = wirehub::inflater::result;

namespace {

std::size_t limit_from(input& in, std::uint8_t op) {
  switch (op & 0x7) {
    case 0: return 0;
    case 1: return 1;
    case 2: return in.byte();
    case 3: return in.u16();
    case 4: return std::size_t{in.byte()} << 12;
    case 5: return 1u << 20;
    case 6: return 125;
    default: return 16u << 20;  // the engine's default max_message_size
  }
}

// Feeds `blob` in pieces and then maybe finish(); checks the bounds after
// every call. Returns the last result.
result run_message(wirehub::inflater& inf, std::string_view blob, std::size_t limit, bool finish,
                   wirehub::fuzz::splitter& split, std::string& out) {
  out.clear();
  std::size_t fed = 0;
  result r = result::ok;
  auto check = [&](std::size_t cap_before) {
    if (r == result::ok) FUZZ_CHECK(out.size() <= limit);
    if (r == result::too_big) FUZZ_CHECK(out.size() <= limit + 1);
    // Growth stays within twice limit + 1 (or what the string already had):
    // libstdc++'s reserve() rounds a small request up to twice the old
    // capacity (an SSO string's 15 becomes 30), never more.
    FUZZ_CHECK(out.capacity() <= std::max<std::size_t>({cap_before, 2 * (limit + 1), 30}));
  };
  while (fed < blob.size()) {
    const std::size_t n = split.next(blob.size() - fed);
    const std::size_t cap_before = out.capacity();
    r = inf.feed(reinterpret_cast<const std::uint8_t*>(blob.data() + fed), n, out, limit);
    fed += n;
    check(cap_before);
    if (r != result::ok) return r;
  }
  if (finish) {
    const std::size_t cap_before = out.capacity();
    r = inf.finish(out, limit);
    check(cap_before);
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  const int bits = 8 + in.byte() % 8;
  const bool no_ctx = in.flag();
  wirehub::fuzz::splitter split(in.take_back(in.byte()));
  wirehub::inflater inf(bits, no_ctx);
  // The sender of known messages: same window and context mode as the peer
  // that negotiated them.
  wirehub::deflater def(bits, 1 + (bits % 9), 8, no_ctx);
  bool in_sync = true;  // the deflater's and inflater's contexts match
  std::string out;
  int messages = 0;
  while (!in.empty() && messages++ < 64) {
    const std::uint8_t op = in.byte();
    const std::size_t limit = limit_from(in, op);
    const std::string_view blob = in.take(in.u16());
    const bool finish = op & 0x80;
    if (op & 0x40) {
      std::string z;
      FUZZ_CHECK(def.compress(reinterpret_cast<const std::uint8_t*>(blob.data()), blob.size(), z));
      const result r = run_message(inf, z, limit, true, split, out);
      if (in_sync) {
        if (blob.size() <= limit) {
          FUZZ_CHECK(r == result::ok);
          FUZZ_CHECK(out == blob);
        } else {
          FUZZ_CHECK(r == result::too_big);
        }
      }
      // A failed message resets the inflater; the deflater keeps its window.
      if (r != result::ok && !no_ctx) in_sync = false;
    } else {
      const result r = run_message(inf, blob, limit, finish, split, out);
      // Foreign bytes leave the inflater's context unknown to the deflater.
      if (!no_ctx || r != result::ok || !finish) in_sync = false;
    }
  }
  return 0;
}
