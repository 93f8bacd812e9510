// handshake.hpp — the RFC 6455 section 4 opening handshake, both roles.
// Beast's HTTP parser reads the request/response; this file decides what it
// means and writes the answer. No sockets here.
#pragma once

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>
#include <string_view>

namespace wirehub::handshake {

namespace http = boost::beast::http;
using request_parser = http::request_parser<http::empty_body>;
using response_parser = http::response_parser<http::string_body>;

// The parts of a request the engine and the application care about, copied
// out of the parser so the parser can be freed right after the handshake.
struct request_info {
  std::string method;
  std::string target;
  std::string path;
  std::string query;
  std::string headers;       // "Name: value\r\n..." as received
  std::string key;           // Sec-WebSocket-Key
  std::string protocols;     // Sec-WebSocket-Protocol (joined with ", ")
  std::string extensions;    // Sec-WebSocket-Extensions (joined with ", ")
  std::string remote_address;
  int remote_port = 0;
  // Headers looked up by name (case-insensitive); "" if absent; repeated
  // headers joined with ", " (RFC 9110 5.3).
  std::string header(std::string_view name) const;
};

enum class request_kind {
  websocket,        // a valid upgrade
  plain_http,       // no Upgrade: websocket: an ordinary HTTP request
  bad_request,      // claims to be an upgrade but is malformed: 400
  bad_version,      // Sec-WebSocket-Version is not 13: 426
};

request_kind classify(const request_parser::value_type& req, request_info& out);
// WH_SERVER_RAW_UPGRADE: fills `out` as classify() does but checks nothing
// beyond what makes a request an upgrade for an HTTP server (Node's http:
// a Connection header naming "upgrade" and an Upgrade header, any value,
// any method): websocket or plain_http.
request_kind classify_raw(const request_parser::value_type& req, request_info& out);
// A Sec-WebSocket-Key: base64 of 16 bytes.
bool valid_key(std::string_view key);
// The value of header `name` in a "Name: v\r\n..." block, trimmed; "" if absent.
std::string header_in_block(std::string_view block, std::string_view name);

// Sec-WebSocket-Accept for a key (SHA-1 + base64, via Beast).
std::string accept_key(std::string_view key);
// A fresh random Sec-WebSocket-Key (via Beast).
std::string make_key();

std::string response_101(std::string_view key, std::string_view subprotocol,
                         std::string_view extensions, std::string_view extra_headers);
// A complete HTTP/1.1 response that closes the connection.
std::string response_status(int status, std::string_view extra_headers, std::string_view body);

// Picks the first of the server's preferred subprotocols that the client
// offered; "" if none.
std::string select_subprotocol(std::string_view server_pref, std::string_view offered);
// True if `name` is one of the comma-separated tokens in `list`.
bool list_contains(std::string_view list, std::string_view name);

// Client role. A Host in extra_headers replaces the one made of host_header.
std::string client_request(std::string_view host_header, std::string_view target, std::string_view key,
                           std::string_view protocols, std::string_view extensions,
                           std::string_view origin, std::string_view extra_headers);

struct parsed_url {
  bool tls = false;
  std::string host;      // without brackets
  std::string port;      // always set
  std::string target;    // "/path?query"
  std::string host_header;
  std::string unix_path;  // ws+unix: the local socket to connect to
};
// Parses ws://, wss:// and ws+unix:///socket/path:/request/path URLs (the
// last as ws does: the socket's path, then after a ':' the request target);
// false with a reason otherwise. A control character anywhere, or a space in
// the request target, is refused: the target is copied into the request line.
bool parse_url(std::string_view url, parsed_url& out, std::string& error);

// A client's extra request headers, "Name: value" lines each ended by CRLF
// (the last CRLF may be missing): false for an empty line, a name that is not
// a token, or a control character other than HTAB in a value (a bare CR or
// LF included), anything that would let the block end the head or forge a
// line.
bool valid_header_block(std::string_view block);
// A header value (the Origin): HTAB, SP, VCHAR and obs-text only.
bool valid_header_value(std::string_view value);

// Trims optional whitespace.
std::string_view trim(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

}  // namespace wirehub::handshake
