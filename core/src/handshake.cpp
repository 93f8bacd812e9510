#include "handshake.hpp"

#include <boost/beast/websocket/detail/hybi13.hpp>
#include <boost/beast/core/detail/base64.hpp>

#include <cctype>
#include <cstdlib>

namespace wirehub::handshake {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool list_contains(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim(list.substr(0, comma));
    if (iequals(item, name)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string request_info::header(std::string_view name) const {
  std::string out;
  std::string_view all = headers;
  while (!all.empty()) {
    auto eol = all.find("\r\n");
    auto line = all.substr(0, eol);
    auto colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      if (!out.empty()) out += ", ";
      out += trim(line.substr(colon + 1));
    }
    if (eol == std::string_view::npos) break;
    all.remove_prefix(eol + 2);
  }
  return out;
}

static std::string joined(const request_parser::value_type& req, http::field f) {
  std::string out;
  for (auto it = req.find(f); it != req.end() && it->name() == f; ++it) {
    if (!out.empty()) out += ", ";
    out.append(it->value().data(), it->value().size());
  }
  return out;
}

bool valid_key(std::string_view key) {
  // A base64 encoding of 16 bytes is 24 characters ending in "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  unsigned char raw[18];
  auto r = boost::beast::detail::base64::decode(raw, key.data(), key.size());
  return r.first == 16;
}

static void fill(const request_parser::value_type& req, request_info& out) {
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  auto q = out.target.find('?');
  out.path = out.target.substr(0, q);
  out.query = q == std::string::npos ? std::string() : out.target.substr(q + 1);
  out.headers.clear();
  for (const auto& f : req) {
    out.headers.append(f.name_string().data(), f.name_string().size());
    out.headers += ": ";
    out.headers.append(f.value().data(), f.value().size());
    out.headers += "\r\n";
  }
}

request_kind classify_raw(const request_parser::value_type& req, request_info& out) {
  fill(req, out);
  out.key = std::string(trim(joined(req, http::field::sec_websocket_key)));
  out.protocols = joined(req, http::field::sec_websocket_protocol);
  out.extensions = joined(req, http::field::sec_websocket_extensions);
  if (joined(req, http::field::upgrade).empty()) return request_kind::plain_http;
  if (!list_contains(joined(req, http::field::connection), "upgrade")) return request_kind::plain_http;
  return request_kind::websocket;
}

request_kind classify(const request_parser::value_type& req, request_info& out) {
  fill(req, out);
  const std::string upgrade = joined(req, http::field::upgrade);
  if (!list_contains(upgrade, "websocket")) return request_kind::plain_http;
  // From here on the client asked for a WebSocket: anything wrong is a 400.
  if (req.method() != http::verb::get || req.version() < 11) return request_kind::bad_request;
  if (!list_contains(joined(req, http::field::connection), "upgrade")) return request_kind::bad_request;
  if (joined(req, http::field::host).empty()) return request_kind::bad_request;
  out.key = std::string(trim(joined(req, http::field::sec_websocket_key)));
  if (!valid_key(out.key)) return request_kind::bad_request;
  if (trim(joined(req, http::field::sec_websocket_version)) != "13") return request_kind::bad_version;
  out.protocols = joined(req, http::field::sec_websocket_protocol);
  out.extensions = joined(req, http::field::sec_websocket_extensions);
  return request_kind::websocket;
}

std::string accept_key(std::string_view key) {
  boost::beast::websocket::detail::sec_ws_accept_type acc;
  boost::beast::websocket::detail::make_sec_ws_accept(acc, boost::beast::string_view(key.data(), key.size()));
  return std::string(acc.data(), acc.size());
}

std::string make_key() {
  boost::beast::websocket::detail::sec_ws_key_type key;
  boost::beast::websocket::detail::make_sec_ws_key(key);
  return std::string(key.data(), key.size());
}

std::string response_101(std::string_view key, std::string_view subprotocol, std::string_view extensions,
                         std::string_view extra_headers) {
  std::string r;
  r.reserve(160 + extra_headers.size());
  r += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  r += accept_key(key);
  r += "\r\n";
  if (!subprotocol.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    r += subprotocol;
    r += "\r\n";
  }
  if (!extensions.empty()) {
    r += "Sec-WebSocket-Extensions: ";
    r += extensions;
    r += "\r\n";
  }
  r += extra_headers;
  r += "\r\n";
  return r;
}

std::string header_in_block(std::string_view block, std::string_view name) {
  while (!block.empty()) {
    auto eol = block.find('\n');
    auto line = block.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto colon = line.find(':');
    if (colon != std::string_view::npos && iequals(trim(line.substr(0, colon)), name))
      return std::string(trim(line.substr(colon + 1)));
    if (eol == std::string_view::npos) break;
    block.remove_prefix(eol + 1);
  }
  return {};
}

std::string response_status(int status, std::string_view extra_headers, std::string_view body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " ";
  r += std::string(http::obsolete_reason(static_cast<http::status>(status)));
  r += "\r\n";
  if (!header_in_block(extra_headers, "content-length").empty()) {
    // The host wrote the whole header block (ws's refusals: Connection,
    // Content-Type, Content-Length, in that order): as it is, with only a
    // Connection: close it left out.
    if (header_in_block(extra_headers, "connection").empty()) r += "Connection: close\r\n";
    r += extra_headers;
    r += "\r\n";
    r += body;
    return r;
  }
  r += "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  const bool has_type = !header_in_block(extra_headers, "content-type").empty();
  if (!body.empty() && !has_type) r += "Content-Type: text/plain; charset=utf-8\r\n";
  r += extra_headers;
  r += "\r\n";
  r += body;
  return r;
}

std::string select_subprotocol(std::string_view server_pref, std::string_view offered) {
  while (!server_pref.empty()) {
    auto comma = server_pref.find(',');
    auto item = trim(server_pref.substr(0, comma));
    if (!item.empty() && list_contains(offered, item)) return std::string(item);
    if (comma == std::string_view::npos) break;
    server_pref.remove_prefix(comma + 1);
  }
  return {};
}

std::string client_request(std::string_view host_header, std::string_view target, std::string_view key,
                           std::string_view protocols, std::string_view extensions, std::string_view origin,
                           std::string_view extra_headers) {
  std::string r;
  r += "GET ";
  r += target;
  r += " HTTP/1.1\r\n";
  // A Host among the host's headers is the one sent, in its place (ws and
  // Node's http send a user's Host instead of their own).
  if (header_in_block(extra_headers, "Host").empty()) {
    r += "Host: ";
    r += host_header;
    r += "\r\n";
  }
  r += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
  r += key;
  r += "\r\nSec-WebSocket-Version: 13\r\n";
  if (!protocols.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    r += protocols;
    r += "\r\n";
  }
  if (!extensions.empty()) {
    r += "Sec-WebSocket-Extensions: ";
    r += extensions;
    r += "\r\n";
  }
  if (!origin.empty()) {
    r += "Origin: ";
    r += origin;
    r += "\r\n";
  }
  r += extra_headers;
  r += "\r\n";
  return r;
}

// A control character or DEL in a URL or header value. CR and LF above all:
// copied into the request they would end the line, and what follows would
// become headers (or a second request) the caller never wrote.
static bool is_ctl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// RFC 9110 5.6.2 tchar.
static bool is_tchar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool valid_header_value(std::string_view v) {
  // As Node's http (and so ws) checks a header value: HTAB, SP, VCHAR and
  // obs-text only.
  for (char c : v)
    if (is_ctl(c) && c != '\t') return false;
  return true;
}

bool valid_header_block(std::string_view block) {
  while (!block.empty()) {
    const auto eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;  // also an empty line: the head's end
    for (char c : line.substr(0, colon))
      if (!is_tchar(c)) return false;
    if (!valid_header_value(line.substr(colon + 1))) return false;  // a bare CR or LF is a CTL
    if (eol == std::string_view::npos) break;
    block.remove_prefix(eol + 2);
  }
  return true;
}

bool parse_url(std::string_view url, parsed_url& out, std::string& error) {
  for (char c : url)
    if (is_ctl(c)) {
      error = "Invalid URL: control character";
      return false;
    }
  std::string_view rest;
  if (url.size() >= 10 && iequals(url.substr(0, 10), "ws+unix://")) {
    rest = url.substr(10);
    const auto colon = rest.find(':');
    const std::string_view path = rest.substr(0, colon);
    if (path.empty() || path[0] != '/') {
      error = "The URL's pathname is empty";
      return false;
    }
    if (path.size() >= 108) {  // sockaddr_un::sun_path
      error = "Invalid URL: socket path too long";
      return false;
    }
    if (rest.find('#') != std::string_view::npos) {
      error = "The URL contains a fragment identifier";
      return false;
    }
    out.tls = false;
    out.unix_path = std::string(path);
    std::string_view target = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (target.find(' ') != std::string_view::npos) {
      error = "Invalid URL: space in the path";
      return false;
    }
    out.target = target.empty() || target[0] != '/' ? "/" + std::string(target) : std::string(target);
    out.host = "localhost";  // what ws (through Node's http) sends as Host
    out.port = "80";
    out.host_header = "localhost";
    return true;
  }
  if (url.size() >= 5 && iequals(url.substr(0, 5), "ws://")) {
    out.tls = false;
    rest = url.substr(5);
  } else if (url.size() >= 6 && iequals(url.substr(0, 6), "wss://")) {
    out.tls = true;
    rest = url.substr(6);
  } else {
    error = "The URL's protocol must be one of \"ws:\" or \"wss:\"";
    return false;
  }
  auto hash = rest.find('#');
  if (hash != std::string_view::npos) {
    error = "The URL contains a fragment identifier";
    return false;
  }
  auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.target.find(' ') != std::string::npos) {
    error = "Invalid URL: space in the path";  // it would end the request line's target
    return false;
  }
  if (!out.target.empty() && out.target[0] == '?') out.target = "/" + out.target;
  auto at = authority.rfind('@');
  if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host, port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "Invalid URL: unterminated IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        error = "Invalid URL: bad port";
        return false;
      }
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    error = "Invalid URL: missing host";
    return false;
  }
  for (char c : host)
    if (c == ' ' || c == '/' || static_cast<unsigned char>(c) < 0x21) {
      error = "Invalid URL: bad host";
      return false;
    }
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    if (port.size() > 5) {
      error = "Invalid URL: bad port";
      return false;
    }
    for (char c : port)
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        error = "Invalid URL: bad port";
        return false;
      }
    long p = std::strtol(std::string(port).c_str(), nullptr, 10);
    if (p <= 0 || p > 65535) {
      error = "Invalid URL: bad port";
      return false;
    }
    out.port = std::string(port);
  }
  out.host = std::string(host);
  bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = v6 ? "[" + out.host + "]" : out.host;
  bool default_port = (out.tls && out.port == "443") || (!out.tls && out.port == "80");
  if (!default_port) out.host_header += ":" + out.port;
  return true;
}

}  // namespace wirehub::handshake
