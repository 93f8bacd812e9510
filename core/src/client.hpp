// client.hpp — what a client connection needs until its handshake is done.
#pragma once

#include "engine.hpp"
#include "handshake.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace wirehub {

struct client_handshake {
  explicit client_handshake(boost::asio::io_context& ioc) : resolver(ioc), sock(ioc) {}
  ~client_handshake();

  handshake::parsed_url url;
  std::string key;
  std::string protocols;
  std::string offer;        // our Sec-WebSocket-Extensions offer, or ""
  std::string headers;      // extra request headers
  std::string origin;
  SSL_CTX* tls = nullptr;   // owned reference (SSL_CTX_up_ref'ed)
  bool verify = true;
  std::string server_name;

  boost::asio::ip::tcp::resolver resolver;
  boost::asio::ip::tcp::socket sock;  // until connected; then the fd is the connection's
  handshake::response_parser parser;
  std::string buf;
  std::size_t consumed = 0;

  // The server's answer: a refusal (WH_EV_CLOSE) or the 101's headers (WH_EV_OPEN).
  int status = 0;
  std::string reason;  // the status line's text, as sent (ws shows it as statusMessage)
  std::string response_headers;
  std::string body;
};

// Socket helpers shared by both roles.
void peer_address(int fd, char* out, std::size_t n, std::uint16_t& port);
void prepare_socket(int fd);

// Copies the server's answer (status, headers, body so far): a refusal for
// WH_EV_CLOSE, or a 101's headers for WH_EV_OPEN.
void capture_response(client_handshake& hs);

// Builds a client connection's config and handshake state from the C options.
// The limits, timeouts and flags of a client's options, for wh_connect and
// wh_client_adopt alike.
int resolve_client_config(const wh_client_options& o, endpoint_config& cfg);
int prepare_client(const char* url, const wh_client_options& o, endpoint_config& cfg,
                   client_handshake& hs);

}  // namespace wirehub
