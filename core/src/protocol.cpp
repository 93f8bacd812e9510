#include "protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <new>

namespace wirehub {

namespace bwd = boost::beast::websocket::detail;
using frame::header;

// 2^53 - 1, the largest length a JavaScript number holds exactly.
constexpr std::uint64_t kMaxSafeInteger = (std::uint64_t{1} << 53) - 1;

// ---------------------------------------------------------------- grow_buffer

grow_buffer::~grow_buffer() { std::free(b_); }

std::uint8_t* grow_buffer::prepare(std::size_t more, std::size_t need_total) {
  if (!b_ && !more) return nullptr;
  const std::size_t n = size(), cap = capacity();
  if (cap - n < more) {
    // Doubling keeps appends amortised; the cap at what the frame needs
    // keeps a buffer from outgrowing its frame; neither depends on what a
    // header announces beyond the bytes being added now.
    std::size_t want = std::max(n + more, std::min(std::max<std::size_t>(cap * 2, 256), need_total));
    if (want > SIZE_MAX - sizeof(block)) throw std::bad_alloc();
    void* q = std::realloc(b_, sizeof(block) + want);
    if (!q) throw std::bad_alloc();
    b_ = static_cast<block*>(q);
    b_->n = n;
    b_->cap = want;
  }
  return bytes() + n;
}

void grow_buffer::append(const std::uint8_t* p, std::size_t n, std::size_t need_total) {
  if (!n) return;
  std::memcpy(prepare(n, need_total), p, n);
  b_->n += n;
}

void grow_buffer::consume_front(std::size_t n) {
  if (!b_) return;
  if (n >= b_->n) {
    b_->n = 0;
    return;
  }
  std::memmove(bytes(), bytes() + n, b_->n - n);
  b_->n -= n;
}

void grow_buffer::release() {
  std::free(b_);
  b_ = nullptr;
}

// ------------------------------------------------------------------- protocol

namespace {

// Whole compressed messages from peers that reset their context after each
// message need no per-connection inflater: one per thread serves them all,
// with one scratch output buffer.
struct thread_rx {
  std::unique_ptr<inflater> shared;
  std::string scratch;
};
thread_local thread_rx tl_rx;

// Messages fail with these reasons (RFC 6455 7.4.1 codes from wirehub.h).
constexpr std::string_view reason_budget = "server memory budget exceeded";
// Reported to the host only: ws closes with 1008 alone (connection::fail).
constexpr std::string_view reason_chunks = "too many buffered chunks";

// How many bytes of a partial frame ws's receiver has consumed: it takes a
// frame's first two bytes, then its extended length, then its mask, each as
// soon as they are all in, and the payload only whole. The reads holding
// bytes past this point are the chunks it keeps buffered.
std::size_t ws_consumed(const std::uint8_t* p, std::size_t n) {
  if (n < 2) return 0;
  std::size_t at = 2;
  const unsigned len7 = p[1] & 0x7F;
  const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  if (n < at + ext) return at;
  at += ext;
  if (p[1] & 0x80) {
    if (n < at + 4) return at;
    at += 4;
  }
  return at;
}

}  // namespace

// Every connection holds one (issue 11's memory bar): what only some
// messages need is in message_state. It was 136 bytes.
static_assert(sizeof(protocol) <= 40, "protocol grew: move what idle connections do not use to message_state");

protocol::protocol(role r, const endpoint_config& cfg)
    : cfg_(&cfg), role_(r), pmd_(false), peer_no_ctx_(false), done_(false), stopped_(false), msg_compressed_(false) {}
protocol::~protocol() = default;

void protocol::set_deflate(const deflate_params& p) {
  pmd_ = true;
  // The peer compresses with its own window and context rules.
  peer_bits_ = static_cast<std::uint8_t>(role_ == role::server ? p.client_max_window_bits : p.server_max_window_bits);
  peer_no_ctx_ = role_ == role::server ? p.client_no_context_takeover : p.server_no_context_takeover;
}

bool protocol::peer_keeps_context() const { return !peer_no_ctx_; }

bool protocol::finished(handler& h) {
  // Nothing more will be read: what was held goes back to the budget.
  partial_.release();
  msg_.reset();  // the message being built and the inflater
  track(h);
  return false;
}

bool protocol::fail(handler& h, int close_code, std::string_view reason, int error) {
  done_ = true;
  h.on_fail(close_code, reason, error);
  return false;
}

bool protocol::track(handler& h) {
  const std::size_t now =
      partial_.size() + (msg_ ? msg_->buf.size() + (msg_->inflate ? msg_->inflate->held_bytes() : 0) : 0);
  if (now > reserved_) {
    if (!h.reserve(now - reserved_)) {
      if (!done_) fail(h, WH_CLOSE_POLICY, reason_budget, WH_EBUDGET);
      // Nothing more is held for a connection that is failing.
      return finished(h);
    }
  } else if (now < reserved_) {
    h.unreserve(reserved_ - now);
  }
  reserved_ = now;
  return true;
}

void protocol::count_read(bool same_frame, std::size_t before) {
  const std::size_t size = partial_.size();
  if (size == 0 || stopped_) {
    chunks_ = 0;
    return;
  }
  const std::size_t now = ws_consumed(partial_.data(), size);
  // ws lets go of every read up to the point it has consumed: when that
  // point moved, only this read can still hold bytes beyond it.
  if (!same_frame || now > before) chunks_ = now < size ? 1 : 0;
  else if (chunks_ < UINT32_MAX) ++chunks_;
}

bool protocol::feed(std::uint8_t* p, std::size_t n, handler& h) {
  if (done_) return false;
  stopped_ = false;
  // ws's receiver refuses a read when it already holds maxBufferedChunks of
  // them for a frame it could not finish (1008, no reason).
  const bool counted = p != nullptr && n != 0;
  if (counted && !partial_.empty() && chunks_full()) {
    fail(h, WH_CLOSE_POLICY, reason_chunks, WH_ELIMIT);
    return finished(h);
  }
  const std::size_t size_before = partial_.size();
  const std::size_t consumed_before = size_before ? ws_consumed(partial_.data(), size_before) : 0;
  if (counted) {
    const bool ok = feed_bytes(p, n, h);
    // The frame held before is still the one held (nothing was taken out)
    // only if every new byte went onto it.
    if (ok) count_read(size_before != 0 && partial_.size() == size_before + n, consumed_before);
    return ok;
  }
  const bool ok = feed_bytes(p, n, h);
  if (partial_.empty()) chunks_ = 0;
  return ok;
}

bool protocol::feed_bytes(std::uint8_t* p, std::size_t n, handler& h) {
  std::size_t used = 0;
  // First whatever was kept: a frame the last feed could not complete, or
  // the rest of a feed a handler stopped.
  while (!partial_.empty()) {
    // Complete the kept frame with as many new bytes as it still needs (or,
    // its header incomplete, as a header can need), then run what is whole.
    header fh;
    std::size_t want = 0, need_total = frame::max_header_size;
    auto r = frame::parse_header(partial_.data(), partial_.size(), fh);
    if (r == frame::parse_result::need_more) {
      want = frame::max_header_size - partial_.size();
    } else if (r == frame::parse_result::ok) {
      need_total = static_cast<std::size_t>(std::min<std::uint64_t>(fh.header_size + fh.length, SIZE_MAX));
      if (need_total > partial_.size()) want = need_total - partial_.size();
    }
    const std::size_t take = std::min(want, n - used);
    partial_.append(p + used, take, need_total);
    used += take;
    std::size_t done_bytes = 0;
    run(partial_.data(), partial_.size(), done_bytes, h);
    partial_.consume_front(done_bytes);
    if (done_) return finished(h);
    if (stopped_) {
      // Keep the unread input too, in order, for the resumed feed.
      partial_.append(p + used, n - used, partial_.size() + n - used);
      track(h);
      return true;
    }
    // Still incomplete with nothing left to add: it waits for more bytes.
    if (!partial_.empty() && used == n) return track(h);
  }
  if (partial_.capacity() > (64u << 10)) partial_.release();  // a large frame is done
  std::size_t done_bytes = 0;
  run(p + used, n - used, done_bytes, h);
  used += done_bytes;
  if (done_) return finished(h);
  if (used < n) {
    // A partial frame (or, stopped, the unread rest): only its bytes are
    // kept, however long its header says the frame is.
    header fh;
    std::size_t need_total = n - used;
    if (!stopped_ && frame::parse_header(p + used, n - used, fh) == frame::parse_result::ok)
      need_total = std::max<std::size_t>(need_total, std::min<std::uint64_t>(fh.header_size + fh.length,
                                                                              (n - used) * 2));
    partial_.append(p + used, n - used, need_total);
  }
  return track(h);
}

std::pair<std::uint8_t*, std::size_t> protocol::window(std::size_t max_read) {
  // Only a frame that already brought a good part of itself: a trickle is
  // read through the loop's buffer and kept byte for byte.
  if (done_ || stopped_ || partial_.size() < (64u << 10)) return {nullptr, 0};
  header fh;
  if (frame::parse_header(partial_.data(), partial_.size(), fh) != frame::parse_result::ok) return {nullptr, 0};
  const std::size_t total = fh.header_size + fh.length;
  if (total <= max_read / 2 || total <= partial_.size()) return {nullptr, 0};
  // Room for as many bytes again as the frame has so far, at most: the
  // buffer grows with what arrives, never to what the header announces.
  const std::size_t room = std::min({total - partial_.size(), max_read, partial_.size()});
  return {partial_.prepare(room, total), room};
}

bool protocol::feed_window(std::size_t n, handler& h) {
  // A read like any other for maxBufferedChunks (a window is only offered
  // for a frame whose header ws has consumed long ago: one more chunk).
  if (chunks_full()) {
    fail(h, WH_CLOSE_POLICY, reason_chunks, WH_ELIMIT);
    return finished(h);
  }
  partial_.commit(n);
  const std::size_t size = partial_.size();
  // What arrived is in place: feed() completes the frame from partial_.
  const bool ok = feed(nullptr, 0, h);
  if (ok && partial_.size() == size && !stopped_ && chunks_ < UINT32_MAX) ++chunks_;
  return ok;
}

void protocol::trim() {
  if (partial_.empty()) partial_.release();
  if (!msg_) return;
  if (msg_->buf.empty() && msg_->buf.capacity()) std::string().swap(msg_->buf);
  // Between messages, and no inflater keeps a context: nothing to keep
  // (a new message starts its UTF-8 check and fragment count afresh).
  if (!msg_opcode_ && !msg_->inflate && msg_->buf.empty()) msg_.reset();
}

void protocol::run(std::uint8_t* p, std::size_t n, std::size_t& used, handler& h) {
  std::size_t off = 0;
  const bool server_role = role_ == role::server;
  const std::size_t max = cfg_->max_message_size;
  while (off < n) {
    header fh;
    auto r = frame::parse_header(p + off, n - off, fh);
    if (r == frame::parse_result::need_more) break;
    // Each violation is named in ws's words (its receiver's messages), so a
    // host can tell them apart; ws itself sends the code alone.
    if (r != frame::parse_result::ok) {
      std::string why = "protocol error";
      if (r == frame::parse_result::bad_reserved_bits) why = "RSV2 and RSV3 must be clear";
      else if (r == frame::parse_result::bad_opcode) why = "invalid opcode " + std::to_string(p[off] & 0x0F);
      else if (r == frame::parse_result::bad_control) why = (p[off] & 0x80) ? "invalid payload length " + std::to_string(p[off + 1] & 0x7F) : "FIN must be set";
      else if (r == frame::parse_result::bad_length) why = "payload length > 2^63 - 1";
      fail(h, WH_CLOSE_PROTOCOL_ERROR, why, WH_EPROTO);
      break;
    }
    // RFC 6455 5.1: clients mask, servers never do.
    if (fh.masked != server_role) {
      fail(h, WH_CLOSE_PROTOCOL_ERROR, server_role ? "MASK must be set" : "MASK must be clear", WH_EPROTO);
      break;
    }
    if (fh.rsv1 && (!pmd_ || frame::is_control(fh.opcode) || fh.opcode == frame::op_continuation)) {
      fail(h, WH_CLOSE_PROTOCOL_ERROR, "RSV1 must be clear", WH_EPROTO);
      break;
    }
    if (!frame::is_control(fh.opcode)) {
      if ((fh.opcode == frame::op_continuation) != (msg_opcode_ != 0)) {
        fail(h, WH_CLOSE_PROTOCOL_ERROR, "invalid opcode " + std::to_string(fh.opcode), WH_EPROTO);
        break;
      }
      // ws's receiver refuses a length a JavaScript number cannot hold
      // before any limit (WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH): a host
      // closing as ws does (bare_close) is told so in the reason.
      if (cfg_->bare_close && fh.length > kMaxSafeInteger) {
        fail(h, WH_CLOSE_TOO_BIG, "payload length > 2^53 - 1", WH_ETOOBIG);
        break;
      }
      // Refuse an oversized message from its header, before buffering it.
      // Compressed input is bounded loosely here and exactly when inflated.
      const std::uint64_t so_far = fh.opcode == frame::op_continuation ? msg_size() : 0;
      const bool compressed = fh.opcode == frame::op_continuation ? msg_compressed_ : fh.rsv1;
      if (so_far + fh.length > (compressed ? max + 1024 + max / 8 : max)) {
        fail(h, WH_CLOSE_TOO_BIG, frame::reason::too_big, WH_ETOOBIG);
        break;
      }
    }
    const std::uint64_t total = fh.header_size + fh.length;
    if (total > n - off) break;
    std::uint8_t* payload = p + off + fh.header_size;
    const std::size_t len = static_cast<std::size_t>(fh.length);
    if (fh.masked) {
      // A whole message in one plain frame, for a host that owns its
      // payloads: unmasked straight into the host's memory, one pass.
      void* dst = nullptr;
      if (fh.fin && !fh.rsv1 && (fh.opcode == frame::op_binary || fh.opcode == frame::op_text) && !msg_opcode_)
        dst = h.place_payload(len);
      if (dst) {
        frame::copy_mask(static_cast<std::uint8_t*>(dst), payload, len, fh.mask);
        payload = static_cast<std::uint8_t*>(dst);
      } else {
        frame::apply_mask(payload, len, fh.mask);
      }
    }
    off += total;
    const bool go_on = frame::is_control(fh.opcode) ? control(fh, payload, len, h) : data(fh, payload, len, h);
    if (!go_on) {
      if (!done_) stopped_ = true;
      break;
    }
  }
  used = off;
}

bool protocol::control(const header& fh, std::uint8_t* payload, std::size_t len, handler& h) {
  if (fh.opcode == frame::op_ping) return h.on_ping(payload, len);
  if (fh.opcode == frame::op_pong) return h.on_pong(payload, len);
  // Close (RFC 6455 5.5.1, 7.1.5, 7.4).
  if (len == 1) return fail(h, WH_CLOSE_PROTOCOL_ERROR, "invalid payload length 1", WH_EPROTO);
  unsigned code = WH_CLOSE_NO_STATUS;
  std::string_view reason;
  if (len >= 2) {
    code = (unsigned(payload[0]) << 8) | payload[1];
    if (!frame::is_valid_close_code(code))
      return fail(h, WH_CLOSE_PROTOCOL_ERROR, "invalid status code " + std::to_string(code), WH_EPROTO);
    reason = std::string_view(reinterpret_cast<const char*>(payload + 2), len - 2);
    if (!bwd::check_utf8(reason.data(), reason.size()))
      return fail(h, WH_CLOSE_INVALID_DATA, frame::reason::invalid_utf8, WH_EUTF8);
  }
  done_ = true;
  h.on_close(code, reason);
  return false;
}

bool protocol::data(const header& fh, std::uint8_t* payload, std::size_t len, handler& h) {
  const bool first = fh.opcode != frame::op_continuation;
  if (first) {
    msg_opcode_ = fh.opcode;
    msg_compressed_ = fh.rsv1;
    if (msg_) {  // else a new one starts in that state
      msg_->utf8.reset();
      msg_->fragments = 0;
    }
  }
  const bool text = msg_opcode_ == frame::op_text;
  const bool check = text && cfg_->validate_utf8;
  const int flags = (text ? WH_TEXT : WH_BINARY) | (msg_compressed_ ? WH_COMPRESSED : 0);
  const std::size_t max = cfg_->max_message_size;

  if (first && fh.fin) {
    msg_opcode_ = 0;
    if (!msg_compressed_) {
      // The common case: a whole message in one frame, handed out in place.
      if (check && !bwd::check_utf8(reinterpret_cast<const char*>(payload), len))
        return fail(h, WH_CLOSE_INVALID_DATA, frame::reason::invalid_utf8, WH_EUTF8);
      return h.on_message(payload, len, flags);
    }
    const bool shared = !peer_keeps_context();
    if (!shared && !ms().inflate) ms().inflate = std::make_unique<inflater>(peer_bits_, false);
    if (shared && !tl_rx.shared) tl_rx.shared = std::make_unique<inflater>(15, true);
    inflater& inf = shared ? *tl_rx.shared : *msg_->inflate;
    std::string& out = tl_rx.scratch;
    out.clear();
    auto r = inf.feed(payload, len, out, max);
    if (r == inflater::result::ok) r = inf.finish(out, max);
    if (r != inflater::result::ok) {
      // zlib's words, as ws reports them (1007, its error's message).
      const std::string_view why = inf.error_message();
      if (shared) tl_rx.shared.reset();  // its stream is broken
      // A refused bomb must not leave the thread holding its output.
      if (out.capacity() > (1u << 20)) std::string().swap(out);
      if (r == inflater::result::too_big) return fail(h, WH_CLOSE_TOO_BIG, frame::reason::too_big, WH_ETOOBIG);
      return fail(h, WH_CLOSE_INVALID_DATA, why, WH_EPROTO);
    }
    if (check && !bwd::check_utf8(out.data(), out.size()))
      return fail(h, WH_CLOSE_INVALID_DATA, frame::reason::invalid_utf8, WH_EUTF8);
    // The scratch serves the whole thread: it may keep a common size, not
    // the largest message ever inflated.
    std::string msg;
    if (out.capacity() > (1u << 20)) msg.swap(out);
    const std::string& m = msg.empty() ? out : msg;
    return h.on_message(reinterpret_cast<const std::uint8_t*>(m.data()), m.size(), flags);
  }

  // A fragment: build the message in msgbuf_, checking UTF-8 as it grows so
  // an invalid text fails before its last fragment arrives.
  // As ws's maxFragments: non-empty fragments only (empty ones hold nothing).
  message_state& m = ms();
  if (len && cfg_->max_fragments && ++m.fragments > cfg_->max_fragments)
    return fail(h, WH_CLOSE_POLICY, {}, WH_ELIMIT);  // ws sends no reason
  std::string& msgbuf = m.buf;
  const std::size_t before = msgbuf.size();
  if (msg_compressed_) {
    // Fragments of one message go through one stream, never the shared one.
    if (!m.inflate) m.inflate = std::make_unique<inflater>(peer_bits_, !peer_keeps_context());
    auto r = m.inflate->feed(payload, len, msgbuf, max);
    if (r == inflater::result::ok && fh.fin) r = m.inflate->finish(msgbuf, max);
    if (r != inflater::result::ok) {
      if (r == inflater::result::too_big) return fail(h, WH_CLOSE_TOO_BIG, frame::reason::too_big, WH_ETOOBIG);
      return fail(h, WH_CLOSE_INVALID_DATA, m.inflate->error_message(), WH_EPROTO);
    }
  } else {
    if (before + len > max) return fail(h, WH_CLOSE_TOO_BIG, frame::reason::too_big, WH_ETOOBIG);
    msgbuf.append(reinterpret_cast<const char*>(payload), len);
  }
  if (!track(h)) return false;
  if (check && !m.utf8.write(reinterpret_cast<const std::uint8_t*>(msgbuf.data()) + before, msgbuf.size() - before))
    return fail(h, WH_CLOSE_INVALID_DATA, frame::reason::invalid_utf8, WH_EUTF8);
  if (!fh.fin) return h.on_fragment();
  msg_opcode_ = 0;
  if (check && !m.utf8.finish()) return fail(h, WH_CLOSE_INVALID_DATA, frame::reason::invalid_utf8, WH_EUTF8);
  std::string msg;
  msg.swap(msgbuf);
  track(h);
  return h.on_message(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size(), flags);
}

}  // namespace wirehub
