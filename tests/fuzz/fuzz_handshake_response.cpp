// fuzz_handshake_response — the client's side of the opening handshake, as
// client.cpp's client_handshake_input() reads the server's answer. That
// function is a member of a connection (it needs a socket and a hub), so this
// target runs the same steps on the same parts: Beast's response parser with
// the client's header and body limits, fed in pieces (the unparsed tail
// presented again with each new piece), then the Upgrade, Connection,
// Sec-WebSocket-Accept, subprotocol and extension checks, in that order.
//
// The client's key is the one of RFC 6455 section 1.3, so seeds can carry
// its accept value (s3pPLMBiTxaQ9kYGzzhZRbK+xOo=).
// Input: [header-limit byte][deflate flags byte][window-bits byte]
//        [offered subprotocols (len+bytes)][n][response bytes...][n split sizes]
// Invariants: a response accepted as an open connection is a 101 carrying the
// key's accept value, a subprotocol the client offered (one, or none when none
// was offered) and an extension only when one was offered, with window bits
// the client allows; the bytes after the header block are kept for the frame
// reader, and the parser never holds more than its limits.
#include "fuzz_util.hpp"
#include "handshake.hpp"
#include "wirehub/permessage_deflate.hpp"

#include <boost/asio/buffer.hpp>

namespace hs = wirehub::handshake;
namespace http = boost::beast::http;
using wirehub::fuzz::input;

namespace {

constexpr const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";

enum class outcome { waiting, bad_http, bad_status, bad_upgrade, bad_connection, bad_accept, bad_protocol,
                     bad_extension, open };

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  const std::uint8_t limit_byte = in.byte();
  const std::size_t header_limit = limit_byte == 0 ? 8192 : std::size_t{limit_byte} * 64;
  wirehub::deflate_config dcfg;
  const std::uint8_t dflags = in.byte();
  dcfg.enabled = dflags & 1;
  dcfg.client_no_context_takeover = dflags & 2;
  const std::uint8_t bits = in.byte();
  dcfg.server_max_window_bits = 7 + (bits & 0x0f) % 10;
  dcfg.client_max_window_bits = 7 + (bits >> 4) % 10;
  const std::string protocols(in.str(64));
  const std::string offer = dcfg.enabled ? wirehub::pmd_client_offer(dcfg) : std::string();
  wirehub::fuzz::splitter split(in.take_back(in.byte()));
  const std::string_view response = in.rest();

  hs::response_parser parser;
  parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser.body_limit(64 * 1024);
  std::string buf;
  std::size_t consumed = 0, fed = 0;
  boost::beast::error_code ec;
  outcome result = outcome::waiting;
  bool header_ready = false;
  while (fed < response.size() && !header_ready && result == outcome::waiting) {
    const std::size_t n = split.next(response.size() - fed);
    buf.append(response.substr(fed, n));
    fed += n;
    while (!parser.is_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(buf.data() + consumed, buf.size() - consumed), ec);
      consumed += used;
      FUZZ_CHECK(consumed <= buf.size());
      if (ec == http::error::need_more) break;
      if (ec) {
        if (parser.is_header_done() && parser.get().result_int() != 101) {
          header_ready = true;  // body trouble: the status is still reported
        } else {
          result = outcome::bad_http;
        }
        break;
      }
      if (used == 0) break;
      if (parser.is_header_done() && parser.get().result_int() == 101) break;
    }
    if (parser.is_done() || (parser.is_header_done() && parser.get().result_int() == 101)) header_ready = true;
    if (!header_ready && result == outcome::waiting) {
      // What the client holds while it waits: bounded by the limits, not by
      // what the server sends.
      FUZZ_CHECK(buf.size() - consumed <= header_limit + 64 * 1024 + 16 * 1024);
    }
  }
  if (!header_ready) return 0;

  const auto& res = parser.get();
  auto field = [&](http::field f) {
    std::string out;
    for (auto it = res.find(f); it != res.end() && it->name() == f; ++it) {
      if (!out.empty()) out += ", ";
      out.append(it->value().data(), it->value().size());
    }
    return out;
  };
  std::string proto, ext;
  wirehub::deflate_params params;
  bool pmd = false;
  if (res.result_int() != 101) {
    result = outcome::bad_status;
  } else if (!hs::list_contains(field(http::field::upgrade), "websocket")) {
    result = outcome::bad_upgrade;
  } else if (!hs::list_contains(field(http::field::connection), "upgrade")) {
    result = outcome::bad_connection;
  } else if (std::string(hs::trim(field(http::field::sec_websocket_accept))) != hs::accept_key(kKey)) {
    result = outcome::bad_accept;
  } else {
    proto = std::string(hs::trim(field(http::field::sec_websocket_protocol)));
    ext = std::string(hs::trim(field(http::field::sec_websocket_extensions)));
    if (!proto.empty() && (protocols.empty() || !hs::list_contains(protocols, proto) ||
                           proto.find(',') != std::string::npos)) {
      result = outcome::bad_protocol;
    } else if (proto.empty() && !protocols.empty()) {
      result = outcome::bad_protocol;
    } else if (!ext.empty()) {
      std::string why;
      if (offer.empty() || !wirehub::pmd_client_accept(ext, dcfg, params, why)) {
        FUZZ_CHECK(offer.empty() || !why.empty());  // a refusal says why
        result = outcome::bad_extension;
      } else {
        pmd = true;
        result = outcome::open;
      }
    } else {
      result = outcome::open;
    }
  }
  if (result != outcome::open) return 0;

  FUZZ_CHECK(res.result_int() == 101);
  FUZZ_CHECK(proto.empty() || hs::list_contains(protocols, proto));
  if (pmd) {
    FUZZ_CHECK(dcfg.enabled);
    // The server may only shrink what the client allows.
    const int client_cap = dcfg.client_max_window_bits >= 8 && dcfg.client_max_window_bits <= 15
                               ? std::max(dcfg.client_max_window_bits, 9) : 15;
    FUZZ_CHECK(params.client_max_window_bits >= 8 && params.client_max_window_bits <= client_cap);
    FUZZ_CHECK(params.server_max_window_bits >= 8 && params.server_max_window_bits <= 15);
    if (dcfg.client_no_context_takeover) FUZZ_CHECK(params.client_no_context_takeover);
    // Both inflaters the client may need can be made with what was agreed.
    wirehub::inflater inf(params.server_max_window_bits, params.server_no_context_takeover);
    std::string out;
    const std::uint8_t empty_message[1] = {0x00};  // what a deflater sends for ""
    FUZZ_CHECK(inf.feed(empty_message, 1, out, 16) == wirehub::inflater::result::ok);
    FUZZ_CHECK(inf.finish(out, 16) == wirehub::inflater::result::ok && out.empty());
  }
  // Frames that came right behind the 101 go to the frame reader.
  const std::string leftover = buf.substr(consumed);
  FUZZ_CHECK(consumed + leftover.size() == buf.size());
  return 0;
}
