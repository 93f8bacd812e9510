// protocol.hpp — the receive side of RFC 6455 and RFC 7692, free of I/O.
//
// Bytes in, events out: the frame loop, fragment assembly, control frames,
// close payloads, UTF-8 checks, inflate and every size limit live here, with
// no socket, hub or loop (as uWebSockets' WebSocketProtocol and
// python-websockets' Protocol). The connection feeds it what it reads and
// acts on what it reports; unit tests and fuzzers feed it bytes directly.
//
// Memory: the protocol holds only what arrived. A frame that does not fit
// in one feed is kept in a buffer that grows with the bytes received (never
// to the length a header announces, never zero-filled); a fragmented or
// compressed message grows as its data arrives and is inflated. held()
// counts both, and every growth is first asked of the handler (reserve), so
// a server can keep one budget over all its connections.
#pragma once

#include "engine.hpp"
#include "wirehub/frame_codec.hpp"
#include "wirehub/permessage_deflate.hpp"

#include <boost/beast/websocket/detail/utf8_checker.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace wirehub {

// A byte buffer that grows as bytes are appended (geometrically, capped at
// what a caller says it will need), without zero-filling. One pointer while
// empty: its size and capacity live in front of the bytes they describe.
class grow_buffer {
 public:
  grow_buffer() = default;
  ~grow_buffer();
  grow_buffer(const grow_buffer&) = delete;
  grow_buffer& operator=(const grow_buffer&) = delete;
  std::uint8_t* data() { return b_ ? bytes() : nullptr; }
  std::size_t size() const { return b_ ? b_->n : 0; }
  std::size_t capacity() const { return b_ ? b_->cap : 0; }
  bool empty() const { return size() == 0; }
  // Room for at least `more` bytes after size(), growing to at most
  // max(need_total, size()+more) and otherwise doubling. Returns the free
  // space's start; commit() what was written there.
  std::uint8_t* prepare(std::size_t more, std::size_t need_total);
  void commit(std::size_t n) {
    if (n) b_->n += n;
  }
  void append(const std::uint8_t* p, std::size_t n, std::size_t need_total);
  void consume_front(std::size_t n);
  void clear() {
    if (b_) b_->n = 0;
  }
  void release();  // frees the memory

 private:
  struct block {
    std::size_t n, cap;  // the bytes follow
  };
  std::uint8_t* bytes() const { return reinterpret_cast<std::uint8_t*>(b_ + 1); }
  block* b_ = nullptr;
};

class protocol {
 public:
  enum class role : std::uint8_t { server, client };

  // What the protocol reports. The message/ping/pong handlers return false
  // to stop this feed (the connection closed, paused or was terminated
  // meanwhile): the protocol then returns at once, keeping the rest.
  struct handler {
    virtual ~handler() = default;
    // A whole message. flags: WH_TEXT or WH_BINARY, |WH_COMPRESSED if it
    // arrived compressed. data is valid only during the call.
    virtual bool on_message(const std::uint8_t* data, std::size_t len, int flags) = 0;
    virtual bool on_ping(const std::uint8_t* data, std::size_t len) = 0;
    virtual bool on_pong(const std::uint8_t* data, std::size_t len) = 0;
    // The peer's close frame, already checked: code 1005 when it had none.
    virtual void on_close(unsigned code, std::string_view reason) = 0;
    // The peer broke the protocol or a limit: close with close_code
    // (WH_CLOSE_*) and reason, error is the WH_E* code to report.
    virtual void on_fail(int close_code, std::string_view reason, int error) = 0;
    // Host-owned memory for a whole plain message of len bytes about to be
    // unmasked (wh_hub_set_payload_alloc), or nullptr.
    virtual void* place_payload(std::size_t) { return nullptr; }
    // A fragment was added to the message being built; false stops the
    // feed after it (a turn's share of work: a flood of tiny fragments is
    // no cheaper to take than a flood of tiny messages).
    virtual bool on_fragment() { return true; }
    // The protocol is about to hold `more` bytes beyond held(); false
    // refuses (the protocol then fails with 1008, WH_EBUDGET).
    virtual bool reserve(std::size_t) { return true; }
    // It holds `less` bytes fewer than it reserved.
    virtual void unreserve(std::size_t) {}
  };

  protocol(role r, const endpoint_config& cfg);
  // Set (again) which limits apply: a connection learns them after it is
  // built (its server's, or a client's own).
  void configure(role r, const endpoint_config& cfg) {
    role_ = r;
    cfg_ = &cfg;
  }
  ~protocol();
  protocol(const protocol&) = delete;
  protocol& operator=(const protocol&) = delete;

  // After the handshake: permessage-deflate as agreed.
  void set_deflate(const deflate_params& p);
  bool deflate_on() const { return pmd_; }

  // Feeds received bytes; they may be modified (unmasked in place). Bytes
  // that do not complete a frame are kept. Returns false once the protocol
  // is done: a close frame arrived or it failed (the handler was told), and
  // later input is to be discarded. A handler returning false also ends the
  // call early, with `stopped()` true and the unread rest kept: the caller
  // resumes with feed(nullptr, 0).
  bool feed(std::uint8_t* p, std::size_t n, handler& h);
  bool done() const { return done_; }
  // The connection ends: nothing more is read, and what was held goes back
  // to the budget (unreserve).
  void close(handler& h) {
    done_ = true;
    finished(h);
  }
  bool stopped() const { return stopped_; }

  // A large frame in progress: where to read its next bytes straight into
  // the protocol's own buffer (one copy per large message), and how many.
  // {nullptr, 0} when there is no such frame. After reading, feed_window(n).
  std::pair<std::uint8_t*, std::size_t> window(std::size_t max_read);
  bool feed_window(std::size_t n, handler& h);

  // Bytes held for the peer: a partial frame plus a message being built.
  std::size_t held() const { return reserved_; }
  // Memory its buffers took (capacity, not size): what an attacker costs.
  std::size_t footprint() const { return partial_.capacity() + (msg_ ? msg_->buf.capacity() : 0); }
  // A frame or a fragmented message has begun and is not complete.
  bool mid_message() const { return !partial_.empty() || msg_opcode_ != 0; }
  // Frees the buffers a connection between messages does not need.
  void trim();
  // A connection gone quiet: its inflater keeps only the history it needs
  // (permessage_deflate.hpp), hundreds of bytes instead of ~40 KB.
  void park() {
    if (msg_ && msg_->inflate && !msg_->inflate->mid_message()) msg_->inflate->park();
  }
  bool inflating() const { return msg_ && msg_->inflate && !msg_->inflate->parked(); }

 private:
  bool feed_bytes(std::uint8_t* p, std::size_t n, handler& h);
  // Runs every whole frame in [p, p+n); `used` is what it got through.
  void run(std::uint8_t* p, std::size_t n, std::size_t& used, handler& h);
  bool control(const frame::header& fh, std::uint8_t* payload, std::size_t len, handler& h);
  bool data(const frame::header& fh, std::uint8_t* payload, std::size_t len, handler& h);
  bool fail(handler& h, int close_code, std::string_view reason, int error);
  bool track(handler& h);  // reserves/unreserves to match what is held
  bool finished(handler& h);  // done: frees what it held
  bool peer_keeps_context() const;

  // What only a fragmented or compressed message needs: allocated by the
  // first one and freed between messages (trim) unless an inflater that
  // keeps its context must stay. An idle connection's protocol is 40 bytes.
  struct message_state {
    std::string buf;  // a fragmented or inflated message being built
    boost::beast::websocket::detail::utf8_checker utf8;
    std::uint32_t fragments = 0;  // non-empty fragments of the message being built
    std::unique_ptr<inflater> inflate;
  };
  message_state& ms() {
    if (!msg_) msg_ = std::make_unique<message_state>();
    return *msg_;
  }
  std::size_t msg_size() const { return msg_ ? msg_->buf.size() : 0; }

  // ws's maxBufferedChunks: after a read that left `partial_` holding a
  // frame, how many reads ws's receiver would now hold (see count_read).
  void count_read(bool same_frame, std::size_t before);
  bool chunks_full() const { return cfg_->max_buffered_chunks && chunks_ >= cfg_->max_buffered_chunks; }

  const endpoint_config* cfg_;
  grow_buffer partial_;  // a frame that did not fit in the bytes fed so far
  std::size_t reserved_ = 0;
  std::unique_ptr<message_state> msg_;
  role role_;
  std::uint8_t peer_bits_ = 15;
  std::uint8_t msg_opcode_ = 0;
  // One byte of flags, so that the read count fits in the 40 bytes.
  bool pmd_ : 1, peer_no_ctx_ : 1, done_ : 1, stopped_ : 1, msg_compressed_ : 1;
  std::uint32_t chunks_ = 0;  // reads held for the partial frame, as ws counts them
};

}  // namespace wirehub
