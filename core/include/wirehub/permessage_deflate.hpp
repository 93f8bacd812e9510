// permessage_deflate.hpp — RFC 7692 negotiation and the zlib compressor and
// decompressor one message at a time. No Asio here: the connection calls in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace wirehub {

// What the application configures (mirrors wh_deflate_options).
struct deflate_config {
  bool enabled = false;
  // Server: answer server_no_context_takeover even when not offered (RFC 7692
  // 7.1.1.1 allows it), so one shared compressor serves every connection.
  bool server_no_context_takeover = true;
  // Server: demand it in the answer; client: offer it.
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;  // 8..15
  int client_max_window_bits = 15;  // 8..15
  int level = 1;
  int mem_level = 8;
  std::size_t threshold = 1024;
};

// What was agreed for one connection.
struct deflate_params {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;
  int client_max_window_bits = 15;
};

// Server side: walk the offers in a Sec-WebSocket-Extensions value (several
// headers joined with ", "), accept the first acceptable permessage-deflate
// offer and write the response extension value into `response`.
// Returns false (and leaves `response` empty) when there is no acceptable
// offer or the header is malformed: the connection then goes on uncompressed.
bool pmd_negotiate_server(std::string_view offers, const deflate_config& cfg, deflate_params& out,
                          std::string& response);

// Client side: the offer to send, e.g. "permessage-deflate; client_max_window_bits".
std::string pmd_client_offer(const deflate_config& cfg);

// Client side: validate the server's answer against what we offered.
// Returns true and fills `out` when it is acceptable; false (with a reason in
// `error`) when the server answered something we did not offer or that is
// malformed: the client must then fail the connection (RFC 6455 9.1).
bool pmd_client_accept(std::string_view response, const deflate_config& cfg, deflate_params& out,
                       std::string& error);

// Compresses whole messages. `window_bits` is our sending window (for a server
// the agreed server_max_window_bits, for a client client_max_window_bits).
// With no_context_takeover the stream is reset after each message.
class deflater {
 public:
  deflater(int window_bits, int level, int mem_level, bool no_context_takeover);
  ~deflater();
  deflater(const deflater&) = delete;
  deflater& operator=(const deflater&) = delete;
  // Appends the compressed message (without the trailing 00 00 ff ff) to out.
  // Returns false only on a zlib failure.
  bool compress(const std::uint8_t* data, std::size_t len, std::string& out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Decompresses whole messages (the payload of every frame of one message is
// fed in order, then finish()).
class inflater {
 public:
  enum class result { ok, too_big, error };
  inflater(int window_bits, bool no_context_takeover);
  ~inflater();
  inflater(const inflater&) = delete;
  inflater& operator=(const inflater&) = delete;
  // Appends inflated bytes to out; fails with too_big as soon as out would
  // exceed max_size (checked while inflating, so a zip bomb never expands).
  result feed(const std::uint8_t* data, std::size_t len, std::string& out, std::size_t max_size);
  // Ends the message (feeds 00 00 ff ff); resets the stream if no context takeover.
  result finish(std::string& out, std::size_t max_size);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wirehub
