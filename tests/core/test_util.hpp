// test_util.hpp — helpers for the wirehub behaviour tests.
//
// Behaviour tests use only the C ABI (wirehub.h). This header gives them:
//   - RawClient: a blocking POSIX-socket WebSocket peer that sends exactly the
//     bytes a test asks for (arbitrary upgrade requests, hand-made frames with
//     any opcode/RSV/FIN/mask/length) and decodes what the server sends back.
//     Every read has a deadline, so no test can hang on it.
//   - RawListener: a plain TCP listener, to play a (misbehaving) server for
//     wh_connect() tests.
//   - EventRecorder: records every event of a callback-mode hub (deep copies)
//     and lets the test thread wait for a predicate with a deadline. An
//     optional handler runs on the I/O thread first (echo, answer upgrades...).
//   - TestHub: RAII hub in callback mode wired to an EventRecorder.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "wirehub.h"

namespace wht {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

// Default deadline of every wait in the suite.
inline constexpr int kTimeoutMs = 3000;

// ----------------------------------------------------------------- encoding
enum : uint8_t {
  OP_CONT = 0x0,
  OP_TEXT = 0x1,
  OP_BINARY = 0x2,
  OP_CLOSE = 0x8,
  OP_PING = 0x9,
  OP_PONG = 0xA,
};
enum : uint8_t { RSV1 = 0x4, RSV2 = 0x2, RSV3 = 0x1 };  // as 3 bits: rsv1 is the high one

// Sec-WebSocket-Accept for a key (RFC 6455 4.2.2).
std::string websocket_accept(std::string_view key);
// A fresh random 16-byte base64 key.
std::string random_key();
// The RFC 6455 1.3 sample key and its accept value.
inline constexpr const char* kSampleKey = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr const char* kSampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// permessage-deflate payload of one message (raw deflate, final 00 00 ff ff
// removed, RFC 7692 7.2.1) and the reverse.
std::string pmd_compress(std::string_view data);
std::optional<std::string> pmd_decompress(std::string_view data);

struct FrameOpts {
  bool fin = true;
  uint8_t rsv = 0;          // 3 bits: RSV1 | RSV2 | RSV3
  bool mask = true;         // clients must mask
  int64_t length = -1;      // >= 0: announce this payload length instead of the real one
  int length_form = 0;      // 0 = shortest; 16 or 64 = force that extended length form

  FrameOpts& not_final() { fin = false; return *this; }
  FrameOpts& with_rsv(uint8_t r) { rsv = r; return *this; }
  FrameOpts& unmasked() { mask = false; return *this; }
  FrameOpts& announce(int64_t n) { length = n; return *this; }
  FrameOpts& form(int bits) { length_form = bits; return *this; }
};
// Options of a non-final fragment.
inline FrameOpts more() { return FrameOpts().not_final(); }
std::string encode_frame(uint8_t opcode, std::string_view payload, const FrameOpts& o = {});
// Close frame payload: 2-byte code + reason.
std::string close_payload(int code, std::string_view reason = {});

struct Frame {
  bool fin = false;
  uint8_t rsv = 0;
  uint8_t opcode = 0;
  bool masked = false;
  std::string mask_key;  // the 4 key bytes as on the wire, when masked
  std::string payload;
  // Close frames: the code (1005 if the payload is empty) and reason.
  int close_code() const;
  std::string close_reason() const;
};

struct HttpResponse {
  bool ok = false;  // a complete status line and header block were read
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string head;  // raw head, for diagnostics
  // First header with this (case-insensitive) name, or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  bool has_header(std::string_view name) const { return header(name).has_value(); }
};

// Lower-case copy.
std::string lower(std::string_view s);
// True if the comma-separated header value contains `token` (case-insensitive).
bool header_has_token(std::string_view value, std::string_view token);
// Value of the first header `name` (case-insensitive) in a raw HTTP head.
std::optional<std::string> head_header(std::string_view head, std::string_view name);

// An HTTP/1.1 WebSocket upgrade request. `extra` is "Name: v\r\n..." lines.
std::string upgrade_request(std::string_view target = "/", std::string_view extra = {},
                            std::string_view key = kSampleKey, std::string_view version = "13");

// ---------------------------------------------------------------- RawClient
class RawClient {
 public:
  RawClient() = default;
  explicit RawClient(int adopted_fd);
  ~RawClient();
  RawClient(RawClient&& o) noexcept;
  RawClient& operator=(RawClient&& o) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // rcvbuf > 0: SO_RCVBUF set before connecting (small window for backpressure tests).
  bool connect(int port, const char* host = "127.0.0.1", int timeout_ms = kTimeoutMs,
               int rcvbuf = 0);
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  int local_port() const;

  bool send_raw(std::string_view bytes);
  bool send_frame(uint8_t opcode, std::string_view payload, const FrameOpts& o = {}) {
    return send_raw(encode_frame(opcode, payload, o));
  }
  bool send_text(std::string_view s) { return send_frame(OP_TEXT, s); }
  bool send_close(int code, std::string_view reason = {}) {
    return send_frame(OP_CLOSE, close_payload(code, reason));
  }

  // Reads an HTTP response head (and body, per Content-Length / chunked / until
  // EOF for non-101 answers). For 101 the bytes after the head stay buffered.
  HttpResponse read_http_response(int timeout_ms = kTimeoutMs);
  // Reads an HTTP request head (fake-server side); nullopt on timeout/EOF.
  std::optional<std::string> read_http_head(int timeout_ms = kTimeoutMs);
  // Sends upgrade_request(target, extra, key) and reads the answer.
  HttpResponse upgrade(std::string_view target = "/", std::string_view extra = {},
                       std::string_view key = kSampleKey);
  // connect() + upgrade(); true if the answer is 101 with the right accept.
  bool open(int port, std::string_view target = "/", std::string_view extra = {},
            const char* host = "127.0.0.1", HttpResponse* out = nullptr);

  // The next frame; nullopt on timeout, EOF, reset or a malformed frame.
  std::optional<Frame> read_frame(int timeout_ms = kTimeoutMs);
  // The next non-control data frame, answering pings with pongs on the way.
  std::optional<Frame> read_data_frame(int timeout_ms = kTimeoutMs);
  // Reads (and keeps in `others`) frames until a close frame arrives.
  std::optional<Frame> read_until_close(int timeout_ms = kTimeoutMs,
                                        std::vector<Frame>* others = nullptr);
  // True once the peer closed TCP (EOF or reset) within the deadline; then
  // closes our socket too, as a real peer does. Discards data.
  bool wait_eof(int timeout_ms = kTimeoutMs);
  // True if nothing at all (no byte, no EOF) arrives within `ms`.
  bool quiet_for(int ms);
  // True if the last read hit EOF / reset.
  bool eof() const { return eof_; }
  void shutdown_write();
  void close();

 private:
  // 1 = got bytes, 0 = EOF, -1 = error, -2 = timeout.
  int recv_some(Clock::time_point deadline);
  bool fill(size_t n, Clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// Protocol-error helper: reads until the server's close frame, checks its code,
// answers it like a well-behaved client and checks that TCP is then closed.
void expect_failed_with(RawClient& c, int code, int timeout_ms = kTimeoutMs);

// A plain TCP listener on 127.0.0.1 (fake server for client tests).
class RawListener {
 public:
  RawListener();
  ~RawListener();
  int port() const { return port_; }
  bool ok() const { return fd_ >= 0; }
  std::optional<RawClient> accept(int timeout_ms = kTimeoutMs);

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A TCP port on 127.0.0.1 that nothing listens on (bound then released).
int unused_port();

// A UNIX listening socket at `path` (unlinked first), or -1; and a thread
// that accepts one connection on it (within kTimeoutMs) and hands it to
// wh_server_adopt(server), storing the result in `rc`. ws+unix: clients.
int unix_listen(const std::string& path);
std::thread adopt_one(int lfd, wh_server* server, std::atomic<int>& rc);
bool ipv6_available();

// ----------------------------------------------------------------- events
// Deep copy of a wh_event.
struct Event {
  int type = 0;
  int flags = 0;
  wh_conn* conn = nullptr;
  wh_server* server = nullptr;
  wh_request* request = nullptr;  // dangling once answered: identity only
  std::string data;
  bool data_null = false;
  int code = 0;
  int error = 0;
  int status = 0;
  std::string headers;
  std::string status_text;
  bool status_text_null = true;
  void* user_data = nullptr;
  int remote_port = 0;  // OPEN: wh_conn_remote_port(conn) read on the I/O thread
  std::thread::id thread;
};

const char* event_name(int type);

class EventRecorder {
 public:
  // Runs on the I/O thread (or the polling thread) before the event is recorded.
  using Handler = std::function<void(wh_hub*, const wh_event&)>;

  void set_handler(Handler h);
  // The wh_event_cb to give the hub; user_data = this.
  static void callback(wh_hub* hub, const wh_event* ev, void* user_data);
  void handle(wh_hub* hub, const wh_event& ev);

  // Waits until pred(events) is true; false at the deadline.
  template <class Pred>
  bool wait_for(Pred pred, int timeout_ms = kTimeoutMs) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, Ms(timeout_ms), [&] { return pred(events_); });
  }
  // The first event of `type` (for `conn` if given), waiting for it.
  std::optional<Event> wait_event(int type, wh_conn* conn = nullptr, int timeout_ms = kTimeoutMs);
  // Waits for `n` events of `type` (for `conn` if given).
  bool wait_count(int type, size_t n, wh_conn* conn = nullptr, int timeout_ms = kTimeoutMs);
  // The server-side conn whose peer uses local port `peer_port`, from its OPEN.
  wh_conn* wait_server_conn(int peer_port, int timeout_ms = kTimeoutMs);

  size_t count(int type, wh_conn* conn = nullptr) const;
  std::vector<Event> events(int type = 0, wh_conn* conn = nullptr) const;
  std::vector<Event> all() const;
  std::string dump() const;  // for failure messages

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::mutex handler_mu_;
  Handler handler_;
};

// Server conns echo every message back with the same type (client conns don't).
void echo_handler(wh_hub* hub, const wh_event& ev);

// A callback-mode hub recording every event.
class TestHub {
 public:
  explicit TestHub(int io_threads = 1, int flags = 0);
  ~TestHub();
  TestHub(const TestHub&) = delete;
  TestHub& operator=(const TestHub&) = delete;

  wh_hub* get() const { return hub_; }
  bool ok() const { return hub_ != nullptr; }
  EventRecorder& rec() { return rec_; }
  void set_handler(EventRecorder::Handler h) { rec_.set_handler(std::move(h)); }
  // Listens with `opts` (host/port defaulted by server_options()); nullptr on error.
  wh_server* listen(const wh_server_options& opts, int* err = nullptr);
  // Short default: tests close their peers first; this only bounds teardown.
  int destroy(int timeout_ms = 1000);

 private:
  EventRecorder rec_;
  wh_hub* hub_ = nullptr;
};

// A server with one RawClient connected to it, the shape of the tests about
// one connection: open_with() in SetUp, torn down by TearDown.
class OneConnection : public ::testing::Test {
 protected:
  // Listens with `o`, connects c_ and waits for the server side's conn_.
  void open_with(const wh_server_options& o);
  void TearDown() override {
    c_.close();
    hub_.destroy();
  }
  TestHub hub_;
  wh_server* server_ = nullptr;
  RawClient c_;
  wh_conn* conn_ = nullptr;
};

// Zeroed options with `size` set; server: 127.0.0.1, port 0.
wh_server_options server_options();
wh_client_options client_options();
std::string ws_url(int port, std::string_view path = "/", std::string_view host = "127.0.0.1");

// Polls `cond` every few ms until true or the deadline.
bool eventually(const std::function<bool()>& cond, int timeout_ms = kTimeoutMs);

// n bytes of repetitive, compressible text.
std::string compressible_text(size_t n);
// n bytes of pseudo-random binary data.
std::string random_bytes(size_t n, uint32_t seed = 1);

}  // namespace wht
