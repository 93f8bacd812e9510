// fuzz_util.hpp — what every fuzz target shares: a reader that splits one
// input into settings (from the front) and chunk sizes (from the back), so
// libFuzzer's mutations of either stay local, and a check that aborts with a
// message (an abort is what libFuzzer and the replay runner both report).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace wirehub::fuzz {

class input {
 public:
  input(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}

  std::size_t remaining() const { return n_; }
  bool empty() const { return n_ == 0; }

  // One byte from the front (0 when exhausted).
  std::uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  bool flag() { return byte() & 1; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16()) | (static_cast<std::uint32_t>(u16()) << 16); }
  // An integer in [lo, hi] from the front.
  int range(int lo, int hi) { return lo + static_cast<int>(u16() % static_cast<unsigned>(hi - lo + 1)); }

  // A string from the front: a length byte, then that many bytes.
  std::string_view str(std::size_t max = 255) {
    std::size_t len = byte();
    if (len > max) len = max;
    return take(len);
  }
  // Up to n bytes from the front.
  std::string_view take(std::size_t n) {
    if (n > n_) n = n_;
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    n_ -= n;
    return s;
  }
  std::string_view rest() { return take(n_); }

  // Up to n bytes from the BACK: the split points of a target that feeds its
  // data in pieces live there, so the data keeps its shape while they mutate.
  std::string_view take_back(std::size_t n) {
    if (n > n_) n = n_;
    n_ -= n;
    return std::string_view(reinterpret_cast<const char*>(p_ + n_), n);
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// Chunk sizes read from a run of bytes, cycling; no bytes = one whole piece.
class splitter {
 public:
  explicit splitter(std::string_view sizes) : s_(sizes) {}
  // The next chunk size in [1, max] (max must be >= 1).
  std::size_t next(std::size_t max) {
    if (s_.empty()) return max;
    const auto b = static_cast<std::uint8_t>(s_[i_++ % s_.size()]);
    // Mostly small pieces (header and UTF-8 boundaries), some large ones.
    std::size_t c = b < 192 ? std::size_t{1} + b % 24 : std::size_t{1} + std::size_t(b - 192) * 131;
    return c > max ? max : c;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace wirehub::fuzz
