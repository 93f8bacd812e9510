// fuzz_url — handshake::parse_url on any string (what wh_connect gets from
// every binding).
// Invariants of an accepted URL: a ws+unix URL names an absolute socket path
// that fits sockaddr_un and a target starting with '/'; a ws/wss URL has a
// non-empty host with no whitespace, '/' or control bytes, a port of 1..65535
// in digits, a target starting with '/', and a Host header that is the host
// (bracketed when IPv6) with ":port" only when the port is not the scheme's
// default; the upgrade request written from it parses back as one request
// with that target and Host. A refused URL says why. Parsing is a function of
// the URL alone.
#include "fuzz_util.hpp"
#include "handshake.hpp"

#include <boost/asio/buffer.hpp>

#include <cstdlib>
#include <iterator>

namespace hs = wirehub::handshake;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  hs::parsed_url u;
  std::string error;
  const bool ok = hs::parse_url(url, u, error);
  if (!ok) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(!u.target.empty() && u.target[0] == '/');
  FUZZ_CHECK(url.find('#') == std::string_view::npos);
  if (!u.unix_path.empty()) {
    FUZZ_CHECK(u.unix_path[0] == '/' && u.unix_path.size() < 108);
    FUZZ_CHECK(!u.tls);
  } else {
    FUZZ_CHECK(!u.host.empty());
    for (char c : u.host) FUZZ_CHECK(c != ' ' && c != '/' && static_cast<unsigned char>(c) >= 0x21);
    FUZZ_CHECK(!u.port.empty() && u.port.size() <= 5);
    for (char c : u.port) FUZZ_CHECK(c >= '0' && c <= '9');
    const long port = std::strtol(u.port.c_str(), nullptr, 10);
    FUZZ_CHECK(port >= 1 && port <= 65535);
    const bool v6 = u.host.find(':') != std::string::npos;
    std::string host_header = v6 ? "[" + u.host + "]" : u.host;
    const bool default_port = u.port == (u.tls ? "443" : "80");
    if (!default_port) host_header += ":" + u.port;
    FUZZ_CHECK(u.host_header == host_header);
  }
  // The upgrade request written from an accepted URL is one well-formed
  // request with that target and Host (no header smuggled in through the URL).
  const std::string req = hs::client_request(u.host_header, u.target, "dGhlIHNhbXBsZSBub25jZQ==", {}, {}, {}, {});
  hs::request_parser p;
  boost::beast::error_code ec;
  const std::size_t used = p.put(boost::asio::buffer(req), ec);
  FUZZ_CHECK(!ec && p.is_header_done() && used == req.size());
  FUZZ_CHECK(std::string(p.get().target()) == u.target);
  FUZZ_CHECK(p.get().count(boost::beast::http::field::host) == 1);
  FUZZ_CHECK(std::string(p.get()[boost::beast::http::field::host]) == u.host_header);
  FUZZ_CHECK(std::distance(p.get().begin(), p.get().end()) == 5);
  // Deterministic: the same URL parses the same way again.
  hs::parsed_url again;
  std::string error2;
  FUZZ_CHECK(hs::parse_url(url, again, error2));
  FUZZ_CHECK(again.tls == u.tls && again.host == u.host && again.port == u.port && again.target == u.target &&
             again.host_header == u.host_header && again.unix_path == u.unix_path);
  return 0;
}
