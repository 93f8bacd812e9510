// engine.hpp — the engine's objects and how they refer to each other.
//
//   hub ── owns ─▶ loop × io_threads   (one io_context + one thread each)
//    │                 └─ owns the per-thread shared buffers (receive, deflate)
//    ├── owns ─▶ server × N            (acceptor on loop 0, conns on any loop)
//    └── event_sink                    (callback on the I/O thread, or queue)
//   connection: one per socket, pinned to one loop for life, ref-counted so a
//   handle held by a binding or a queued event outlives the socket safely.
//
// Each class lives in its own file: loop.hpp, connection.hpp, server.hpp,
// hub.hpp. This header only forward-declares and holds the shared config.
#pragma once

#include "wirehub.h"
#include "wirehub/permessage_deflate.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace wirehub {

class hub;
class loop;
class server;
class connection;
struct request;

// Limits and behaviour of one endpoint (a server, or one client connection),
// with every default resolved.
struct endpoint_config {
  std::size_t max_message_size = 16u << 20;
  std::size_t max_header_bytes = 8192;
  std::size_t high_water = 64u << 10;
  std::size_t low_water = 16u << 10;
  std::size_t max_buffered = 32u << 20;
  int handshake_timeout_ms = 10000;
  int close_timeout_ms = 5000;
  int ping_interval_ms = 0;
  int ping_timeout_ms = 0;
  int idle_timeout_ms = 0;          // 0 = off
  int message_timeout_ms = 60000;   // 0 = off
  std::uint32_t max_fragments = 131072;  // non-empty fragments of one message; 0 = no limit (ws's maxFragments)
  // Reads buffered for one frame not yet whole, counted as ws's receiver
  // counts its chunks; 0 = no limit (ws's maxBufferedChunks).
  std::uint32_t max_buffered_chunks = 1048576;
  bool validate_utf8 = true;  // WH_SERVER_SKIP_UTF8 turns it off
  bool auto_pong = true;      // WH_SERVER_NO_AUTO_PONG / WH_CLIENT_NO_AUTO_PONG turn it off
  bool bare_close = false;    // WH_SERVER_BARE_CLOSE / WH_CLIENT_BARE_CLOSE
  bool host_mask = false;     // WH_CLIENT_HOST_MASK
  deflate_config deflate;
};

// Fills `out` from the C structs; returns WH_EINVAL for out-of-range values.
int resolve_config(const wh_limits& limits, const wh_deflate_options& deflate, endpoint_config& out);
// The timeouts of wh_server_options/wh_client_options (0 = default, -1 = off
// where allowed); WH_EINVAL out of range.
int resolve_timeouts(int idle_ms, int message_ms, endpoint_config& out);
// max_fragments of the options: 0 = 131072, -1 = none.
int resolve_fragments(int max_fragments, endpoint_config& out);
// max_buffered_chunks of the options: 0 = 1048576, SIZE_MAX = none.
int resolve_chunks(std::size_t max_buffered_chunks, endpoint_config& out);

std::uint64_t now_ms();

// Asio opens, accepts and connects sockets without close-on-exec, so every
// descriptor it hands us goes through this: a child process the application
// spawns (a redis-server, a CGI) must not keep our port bound, a peer's
// connection or our Redis link open after we closed them.
void set_cloexec(int fd);

}  // namespace wirehub
