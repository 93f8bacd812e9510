// frame_codec.hpp — RFC 6455 section 5 frame headers, masking and close
// payloads. No Asio and no allocation: the connection calls in with raw bytes,
// so the codec can be unit-tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace wirehub::frame {

enum opcode : std::uint8_t {
  op_continuation = 0x0,
  op_text = 0x1,
  op_binary = 0x2,
  op_close = 0x8,
  op_ping = 0x9,
  op_pong = 0xA,
};

inline bool is_control(std::uint8_t op) { return (op & 0x8) != 0; }

// Close reasons we send when failing a connection (RFC 6455 7.4.1).
namespace reason {
constexpr std::string_view protocol = "protocol error";
constexpr std::string_view invalid_utf8 = "invalid UTF-8";
constexpr std::string_view too_big = "message too big";
constexpr std::string_view going_away = "going away";
constexpr std::string_view ping_timeout = "keepalive ping timeout";
}  // namespace reason

struct header {
  bool fin = false;
  bool rsv1 = false;
  bool masked = false;
  std::uint8_t opcode = 0;
  std::uint32_t mask = 0;       // the 4 mask bytes in wire order, as loaded from memory
  std::uint64_t length = 0;     // payload length
  std::uint8_t header_size = 0; // bytes before the payload (2..14)
};

enum class parse_result { ok, need_more, bad_reserved_bits, bad_opcode, bad_control, bad_length };

// Decodes one frame header from [p, p+n). Checks only what the header alone
// can tell: RSV2/RSV3 must be clear (RSV1 is left to the caller, who knows
// whether deflate was negotiated), opcodes must be known, control frames must
// be final and at most 125 bytes, the 64-bit length must have its top bit clear
// and lengths must use the shortest form is NOT required (RFC allows either).
inline parse_result parse_header(const std::uint8_t* p, std::size_t n, header& h) {
  if (n < 2) return parse_result::need_more;
  const std::uint8_t b0 = p[0], b1 = p[1];
  h.fin = (b0 & 0x80) != 0;
  h.rsv1 = (b0 & 0x40) != 0;
  if (b0 & 0x30) return parse_result::bad_reserved_bits;
  h.opcode = b0 & 0x0F;
  switch (h.opcode) {
    case op_continuation: case op_text: case op_binary: case op_close: case op_ping: case op_pong:
      break;
    default:
      return parse_result::bad_opcode;
  }
  h.masked = (b1 & 0x80) != 0;
  std::uint64_t len = b1 & 0x7F;
  // A control frame's length never needs the extended forms: refused from
  // its first two bytes, as ws does, not after reading an extended 0.
  if (is_control(h.opcode) && (!h.fin || len > 125)) return parse_result::bad_control;
  std::size_t pos = 2;
  if (len == 126) {
    if (n < 4) return parse_result::need_more;
    len = (std::uint64_t(p[2]) << 8) | p[3];
    pos = 4;
  } else if (len == 127) {
    if (n < 10) return parse_result::need_more;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    if (len >> 63) return parse_result::bad_length;
    pos = 10;
  }
  if (is_control(h.opcode) && (!h.fin || len > 125)) return parse_result::bad_control;
  if (h.masked) {
    if (n < pos + 4) return parse_result::need_more;
    std::memcpy(&h.mask, p + pos, 4);
    pos += 4;
  } else {
    h.mask = 0;
  }
  h.length = len;
  h.header_size = static_cast<std::uint8_t>(pos);
  return parse_result::ok;
}

constexpr std::size_t max_header_size = 14;

// The size write_header will produce for a payload of len bytes.
constexpr std::size_t header_size(std::uint64_t len, bool masked) {
  return (len < 126 ? 2 : len <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
}

// Writes a header into out (at least max_header_size bytes); returns its size.
// mask is written as given (wire order) when masked.
inline std::size_t write_header(std::uint8_t* out, std::uint8_t opcode, bool fin, bool rsv1,
                                std::uint64_t len, bool masked, std::uint32_t mask) {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
  const std::uint8_t m = masked ? 0x80 : 0;
  std::size_t pos;
  if (len < 126) {
    out[1] = static_cast<std::uint8_t>(m | len);
    pos = 2;
  } else if (len <= 0xFFFF) {
    out[1] = m | 126;
    out[2] = static_cast<std::uint8_t>(len >> 8);
    out[3] = static_cast<std::uint8_t>(len);
    pos = 4;
  } else {
    out[1] = m | 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(len >> (56 - 8 * i));
    pos = 10;
  }
  if (masked) {
    std::memcpy(out + pos, &mask, 4);
    pos += 4;
  }
  return pos;
}

// XORs src with the mask into dst (which may be src: in place). `offset` is
// how many payload bytes of this frame were already unmasked, so a frame can
// be unmasked in pieces; unmasking into another buffer copies and unmasks in
// one pass. Works 8 bytes at a time: frames arrive back to back in one read,
// so data is not aligned; memcpy keeps the unaligned loads legal and
// compiles to movs.
inline void copy_mask(std::uint8_t* dst, const std::uint8_t* src, std::size_t len, std::uint32_t mask,
                      std::size_t offset = 0) {
  if (len == 0) return;
  std::uint8_t key[4];
  std::memcpy(key, &mask, 4);
  std::uint8_t rot[4];
  for (int i = 0; i < 4; ++i) rot[i] = key[(offset + i) & 3];
  std::uint32_t k32;
  std::memcpy(&k32, rot, 4);
  const std::uint64_t k64 = (std::uint64_t(k32) << 32) | k32;
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= k64;
    std::memcpy(dst + i, &v, 8);
  }
  for (; i < len; ++i) dst[i] = src[i] ^ rot[i & 3];
}

inline void apply_mask(std::uint8_t* data, std::size_t len, std::uint32_t mask, std::size_t offset = 0) {
  copy_mask(data, data, len, mask, offset);
}

// Close codes a peer may send (RFC 6455 7.4.1/7.4.2 and the IANA registry).
inline bool is_valid_close_code(unsigned code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008: case 1009: case 1010:
    case 1011: case 1012: case 1013: case 1014:
      return true;
    default:
      return false;
  }
}

}  // namespace wirehub::frame
