// fuzz_handshake_request — the server's side of the opening handshake, as
// server_upgrade.cpp drives it: Beast's request parser fed in pieces (the
// unparsed tail presented again with each new piece), then classify(),
// subprotocol selection, permessage-deflate negotiation and response_101().
//
// Input: [header-limit byte][flags byte][server subprotocols (len+bytes)]
//        [deflate byte][window-bits byte][n][request bytes...][n split sizes]
// Invariants: a request classified as websocket has a 24-character key that
// decodes to 16 bytes and version 13; the chosen subprotocol is one the
// server prefers and the client offered; the 101 written back is a response
// Beast parses as 101 with the key's accept value and the negotiated
// extension, and the client accepts that extension answer.
#include "fuzz_util.hpp"
#include "handshake.hpp"
#include "wirehub/permessage_deflate.hpp"

#include <boost/asio/buffer.hpp>

namespace hs = wirehub::handshake;
namespace http = boost::beast::http;
using wirehub::fuzz::input;

namespace {

// The 101 must read back as the client reads it (client.cpp).
void check_response(const std::string& wire, const hs::request_info& info, const std::string& proto,
                    const std::string& ext) {
  hs::response_parser p;
  p.header_limit(64 * 1024);
  p.body_limit(64 * 1024);
  boost::beast::error_code ec;
  const std::size_t used = p.put(boost::asio::buffer(wire), ec);
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(p.is_header_done());
  FUZZ_CHECK(used == wire.size());
  const auto& res = p.get();
  FUZZ_CHECK(res.result_int() == 101);
  FUZZ_CHECK(hs::trim(std::string(res[http::field::sec_websocket_accept])) == hs::accept_key(info.key));
  FUZZ_CHECK(hs::trim(std::string(res[http::field::sec_websocket_protocol])) == proto);
  FUZZ_CHECK(hs::trim(std::string(res[http::field::sec_websocket_extensions])) == ext);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  const std::uint8_t limit_byte = in.byte();
  const std::size_t header_limit = limit_byte == 0 ? 8192 : std::size_t{limit_byte} * 64;
  const std::uint8_t flags = in.byte();
  const std::string server_protocols(in.str(64));
  wirehub::deflate_config dcfg;
  dcfg.enabled = true;
  const std::uint8_t dflags = in.byte();
  dcfg.server_no_context_takeover = dflags & 1;
  dcfg.client_no_context_takeover = dflags & 2;
  const std::uint8_t bits = in.byte();
  dcfg.server_max_window_bits = 7 + (bits & 0x0f) % 10;  // 7..16: out of range means default
  dcfg.client_max_window_bits = 7 + (bits >> 4) % 10;
  wirehub::fuzz::splitter split(in.take_back(in.byte()));
  const std::string_view request = in.rest();

  hs::request_parser parser;
  parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser.eager(false);
  std::string buf;
  std::size_t consumed = 0, fed = 0;
  boost::beast::error_code ec;
  bool failed = false;
  while (!parser.is_header_done() && !failed) {
    if (fed == request.size()) break;  // the peer sent no more: the server waits, then times out
    const std::size_t n = split.next(request.size() - fed);
    buf.append(request.substr(fed, n));
    fed += n;
    while (!parser.is_header_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(buf.data() + consumed, buf.size() - consumed), ec);
      consumed += used;
      FUZZ_CHECK(consumed <= buf.size());
      if (ec == http::error::need_more) break;
      if (ec) {
        failed = true;  // answered with 400 or 431
        break;
      }
      if (used == 0) break;
    }
    // The header limit bounds what the server holds for an unfinished request.
    // (the unparsed tail is at most the limit plus the piece that passed it).
    if (!parser.is_header_done() && !failed) FUZZ_CHECK(buf.size() - consumed <= header_limit + 16 * 1024);
  }
  if (failed || !parser.is_header_done()) return 0;

  hs::request_info info;
  const auto kind = hs::classify(parser.get(), info);
  FUZZ_CHECK(info.target == info.path + (info.target.find('?') == std::string::npos ? "" : "?" + info.query));
  // Every header the request carried is in info.headers, found by name.
  for (const auto& f : parser.get()) {
    if (f.name_string().empty()) continue;
    const std::string all = info.header(std::string(f.name_string()));
    FUZZ_CHECK(all.find(std::string(hs::trim(std::string(f.value())))) != std::string::npos);
  }
  if (kind != hs::request_kind::websocket) return 0;

  FUZZ_CHECK(parser.get().method() == http::verb::get);
  FUZZ_CHECK(info.key.size() == 24);
  FUZZ_CHECK(hs::accept_key(info.key).size() == 28);
  FUZZ_CHECK(hs::trim(info.header("Sec-WebSocket-Version")) == "13");

  const std::string proto = hs::select_subprotocol(server_protocols, info.protocols);
  if (!proto.empty()) {
    FUZZ_CHECK(hs::list_contains(server_protocols, proto));
    FUZZ_CHECK(hs::list_contains(info.protocols, proto));
  }
  wirehub::deflate_params params;
  std::string ext;
  const bool pmd = (flags & 1) && wirehub::pmd_negotiate_server(info.extensions, dcfg, params, ext);
  if (!pmd) ext.clear();
  if (pmd) {
    FUZZ_CHECK(params.server_max_window_bits >= 8 && params.server_max_window_bits <= 15);
    FUZZ_CHECK(params.client_max_window_bits >= 8 && params.client_max_window_bits <= 15);
  }
  // Application headers are the application's business; an empty set keeps
  // the check on what the engine itself writes.
  const std::string wire = hs::response_101(info.key, proto, ext, {});
  check_response(wire, info, proto, ext);
  return 0;
}
