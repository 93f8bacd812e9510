// permessage_deflate.hpp — RFC 7692 negotiation and the zlib compressor and
// decompressor one message at a time. No Asio here: the connection calls in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wirehub {

// What the application configures (mirrors wh_deflate_options).
struct deflate_config {
  bool enabled = false;
  // Server: answer server_no_context_takeover even when not offered (RFC 7692
  // 7.1.1.1 allows it), so one shared compressor serves every connection.
  bool server_no_context_takeover = true;
  // Server: demand it in the answer; client: offer it.
  bool client_no_context_takeover = false;
  // Client: offer server_no_context_takeover (ask the server to drop its
  // context after each message).
  bool request_server_no_context_takeover = false;
  // 8..15; 0 (the default) or anything else means 15. A server answers with
  // these (never below 9, see permessage_deflate.cpp). A client offers them
  // as they are, the way ws words its offer: server_max_window_bits when
  // 8..15, else not at all; client_max_window_bits with its value when
  // 8..15, without one otherwise, and not at all when kNoClientWindowBits.
  int server_max_window_bits = 0;
  int client_max_window_bits = 0;
  int level = 1;
  int mem_level = 8;
  std::size_t threshold = 1024;
  // Client: take the server's answer as ws 8 does (its PerMessageDeflate#
  // acceptAsClient) instead of as RFC 7692 7.1.2.1 asks: a
  // server_max_window_bits above the offered one is used as answered, and an
  // offered one left out of the answer means 15; our own context is dropped
  // only when the answer says client_no_context_takeover. A drop-in for ws
  // must connect wherever ws connects.
  //
  // Server: choose the offer and word the answer as ws 8's acceptAsServer and
  // extension.format do, so that a client sees the same
  // Sec-WebSocket-Extensions from us as from ws. The settings above then mean
  // ws's options: server_no_context_takeover and client_no_context_takeover
  // are added to the answer when true (and an offered one is kept when
  // false); a window of 8..15 refuses offers asking for a smaller server
  // window (server) or offering no client window (client) and is answered
  // as it is; 0 is ws's option left out; kNoServerWindowBits and
  // kNoClientWindowBits are ws's false.
  bool ws_answer_rules = false;
  // Client: refuse an answer carrying client_no_context_takeover (ws's
  // clientNoContextTakeover: false, given explicitly).
  bool refuse_client_no_context_takeover = false;
  // Server with ws_answer_rules: refuse offers carrying
  // server_no_context_takeover (ws's serverNoContextTakeover: false).
  bool refuse_server_no_context_takeover = false;
};

// client_max_window_bits: not offered at all (ws's clientMaxWindowBits:
// false); a server with ws_answer_rules leaves it out of the answer.
constexpr int kNoClientWindowBits = -1;
// server_max_window_bits, server with ws_answer_rules: ws's
// serverMaxWindowBits: false, every offer carrying the parameter is refused.
constexpr int kNoServerWindowBits = -1;

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
// With cfg.ws_answer_rules the header is read as ws reads it, and a header
// ws refuses (the handshake fails with 400 there) is declined as a whole:
// refusing the handshake is the host's call (Node's WebSocketServer does).
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

// Memory. A zlib stream is costly to keep (a 15-bit inflater holds about
// 40 KB, a deflater about 260 KB at mem_level 8), and most connections are
// idle most of the time. Both classes therefore create their zlib state on
// the first message and can be parked between messages: park() keeps only
// the history the next message may refer to (what was actually produced, at
// most the window, in a buffer of exactly that size) and frees the rest; the
// next message restores it (inflateInit2/deflateInit2 plus SetDictionary).
// Parking preserves RFC 7692 context takeover exactly: the history is the
// last bytes of the uncompressed stream, which is all the LZ77 window is.
// Without context takeover park() frees everything.

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
  // Between messages: frees the zlib state, keeping only the history (see above).
  // Costs a deflateInit2 plus re-hashing the history on the next message
  // (about 70 us with 32 KiB of history), so call it when the connection
  // goes idle, never after every message.
  void park();
  bool parked() const;
  // Heap bytes held now: zlib's allocations plus the parked history.
  std::size_t held_bytes() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Compressors without context takeover shared by everything that compresses
// whole messages on one thread, one per distinct (window_bits, level,
// mem_level) after normalising them as deflater does: two servers with
// different levels never share one.
class deflater_pool {
 public:
  deflater_pool();
  ~deflater_pool();
  deflater_pool(const deflater_pool&) = delete;
  deflater_pool& operator=(const deflater_pool&) = delete;
  deflater& get(int window_bits, int level, int mem_level);
  std::size_t size() const;  // compressors built so far
  std::size_t held_bytes() const;

 private:
  struct entry;
  std::vector<entry> all_;
};

// This thread's pool, for a thread that is not running a loop (a host thread
// publishing); a loop uses its own (loop::shared_deflater).
deflater_pool& thread_deflaters();

// Decompresses whole messages (the payload of every frame of one message is
// fed in order, then finish()). `window_bits` is the peer's sending window
// (for a server the agreed client_max_window_bits, for a client
// server_max_window_bits): back-references beyond it fail the message.
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
  // Frees the zlib state, keeping only the history actually produced (at most
  // the window). Does nothing in the middle of a message (after feed() and
  // before finish()). The next feed() restores the state: an inflateInit2
  // plus a copy of the history, a few microseconds with 32 KiB of it
  // (PermessageDeflate.ParkingAfterEveryMessage... prints the figures), so
  // park when the connection goes idle rather than after every message.
  void park();
  bool parked() const;
  // A message has been fed and not finished yet.
  bool mid_message() const;
  // Why the last feed()/finish() returned error: zlib's own words (its
  // strm.msg, e.g. "invalid distance too far back"), which ws reports as its
  // error's message; a static string.
  const char* error_message() const;
  // Heap bytes held now: zlib's allocations plus the parked history.
  std::size_t held_bytes() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wirehub
