// connection.hpp — one WebSocket connection, either role, plain or TLS.
//
// I/O is reactor-style: we wait for readiness, then read with a non-blocking
// recv into the loop's shared buffer and hand it to the protocol core
// (protocol.hpp), which parses every frame in it before we read again. Only a
// partial frame left at the end of a read is kept (by the protocol, growing
// with the bytes that arrive), so an idle connection owns no buffer at all.
// Messages are handed to the application as a view into that buffer.
#pragma once

#include "engine.hpp"
#include "protocol.hpp"
#include "wirehub/frame_codec.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

typedef struct ssl_st SSL;
struct sockaddr;

namespace wirehub {

struct server_handshake;
struct client_handshake;
struct prepared_message;

class connection {
 public:
  enum class role : std::uint8_t { server, client };
  enum class state : std::uint8_t { connecting, handshaking, open, closing, closed };

  connection(hub& h, loop& l, role r, int fd);
  ~connection();

  // Reference counting (any thread). The engine holds one reference while
  // the socket is alive; queued events and async operations hold one each.
  void retain() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release();

  // ---- called from the C ABI (any thread) ---------------------------------
  int send(const void* data, std::size_t len, int flags);
  int ping(const void* data, std::size_t len, bool pong);
  // wh_conn_set_mask: the key of the next frame this thread's next call
  // frames (nullptr: none). Only where calls frame at once.
  int set_mask(const unsigned char* key);
  int close(int code, const char* reason, std::size_t len);
  int terminate();
  int pause(bool paused);
  int flush_now();  // wh_conn_flush
  std::size_t buffered() const { return buffered_.load(std::memory_order_relaxed); }
  bool is_closed() const { return closed_flag_.load(std::memory_order_acquire); }
  bool is_open() const { return api_state_.load(std::memory_order_acquire) == 1; }

  void* user_data() const { return user_data_.load(std::memory_order_relaxed); }
  void set_user_data(void* p) { user_data_.store(p, std::memory_order_relaxed); }
  const std::string& subprotocol() const { return names_ ? names_->subprotocol : no_name(); }
  const std::string& extensions() const { return names_ ? names_->extensions : no_name(); }
  // Formatted on the first call (any thread), then kept: most connections
  // are never asked, and 16 bytes in binary hold what takes 46 in text.
  const char* remote_address() const;
  int remote_port() const { return remote_port_; }
  // Our end of the socket, taken when the peer's is (local_address.cpp).
  const char* local_address() const;
  int local_port() const { return static_cast<int>(local_.load(std::memory_order_acquire) & 0xFFFF); }
  server* owner_server() const { return server_; }
  loop& owner_loop() { return loop_; }

  // ---- engine internals (this connection's loop thread only) --------------
  // head: non-null for an adopted socket (the bytes the host read, maybe
  // none); remote_address: its peer as the host knows it. An accepted one
  // has its peer from accept() (store_peer) already.
  void start_server(server& s, const std::string* head = nullptr, const char* remote_address = nullptr,
                    int remote_port = 0);
  void start_client(std::unique_ptr<client_handshake> hs);
  // wh_client_adopt: the host did the opening handshake on fd_ itself.
  void start_adopted_client(std::string subprotocol, std::string extensions, const deflate_params* pmd,
                            std::string head);
  void send_prepared(const std::shared_ptr<const prepared_message>& m);
  void answer_upgrade(request& req, const std::string* subprotocol, std::string headers, void* user_data,
                      int status, std::string body);
  void flush();
  void on_deadline(std::uint64_t now);
  // Readiness from the loop's epoll set.
  void on_io(std::uint32_t events);
  std::uint64_t deadline() const { return deadline_; }

  // Intrusive links: the loop's connection list, the loop's dirty list
  // membership, the server's connection table.
  connection* next_ = nullptr;
  connection* prev_ = nullptr;
  std::vector<std::string>* topics_ = nullptr;  // allocated on first subscribe
  std::uint32_t server_index_ = 0;
  bool dirty_ = false;
  // With a host watch (wh_hub_set_watch): the application wants no input
  // now (paused, or an upgrade it is deciding), so a host watching this
  // socket itself, level-triggered, must not be woken by it.
  bool read_off_ = false;

 private:
  friend class server;
  friend class hub;
  friend struct client_handshake;

  // Here, in what would be padding after the public fields above.
  std::uint16_t close_code_ = WH_CLOSE_ABNORMAL;

  // I/O primitives over plain TCP or TLS: >0 bytes, 0 = EOF, <0 = -errno
  // (-EAGAIN when it would block in the direction stored in tls_want_write_).
  long io_read(std::uint8_t* p, std::size_t n);
  long io_write(const std::uint8_t* p, std::size_t n);
  // Writes buf from off on: 0 when all is out, -EAGAIN, or another -errno.
  long write_out(const std::string& buf, std::size_t& off);
  // wbuf_ with the runs in place, by sendmsg, until all is out or the
  // socket is full. 0, -EAGAIN or another -errno.
  long write_runs();
  // Takes `n` written bytes off the front: wbuf_ from woff_ to the next
  // run, that run, and so on.
  void consume_written(std::size_t n);
  // The borrow ends: the caller's bytes not yet written are copied into
  // wbuf_; shared runs stay runs.
  void own_borrowed();
  bool has_runs() const { return runs_ && runs_->head < runs_->v.size(); }
  std::size_t borrowed_bytes() const { return runs_ ? runs_->bytes : 0; }
  void arm_write();
  void input_interest(bool on);
  void on_readable();
  void on_writable();
  bool tls_handshake_step();

  // Handshakes.
  void server_handshake_input(const std::uint8_t* p, std::size_t n);
  void client_handshake_input(const std::uint8_t* p, std::size_t n);
  void client_connected();     // the Asio socket is connected: take its fd
  void client_connected_fd();  // fd_ is connected: TLS or the upgrade request
  void connect_unix();         // ws+unix:
  // response_headers: a client's 101 header block, handed over in WH_EV_OPEN.
  void become_open(std::string subprotocol, std::string extensions, const deflate_params* pmd,
                   std::string_view response_headers = {}, std::string_view status_text = {});
  void write_raw_and_close(std::string bytes);

  // Frames: the protocol core's input and its events (rx_events in
  // connection.cpp). window: the bytes were read into rx_.window().
  void rx_input(std::uint8_t* p, std::size_t n, bool window = false);
  void rx_leftover(std::string bytes);  // frames that came behind the handshake
  bool rx_reading() const;              // input still goes to the protocol
  void rx_close();                      // the protocol hands back what it held
  friend struct rx_events;
  bool deliver(const std::uint8_t* data, std::size_t len, int flags);
  void on_peer_ping(const std::uint8_t* data, std::size_t len);
  void emit_simple(int type, const std::uint8_t* data, std::size_t len);
  void fail_internal(int error);
  bool hold_for_host();
  // Our output to the peer stays above high water once what only waited
  // for this turn's write went to the socket: the peer is not reading.
  bool backed_up();  // true: the host is behind, input stops until it polls
  void end_handshake();  // no longer counts toward max_handshakes
  // An upgrade answered from the application: read on from the loop, never
  // inline (the caller may be inside another connection's callback, whose
  // event still points into the loop's shared receive buffer).
  void resume_reading();

 public:
  // The host polled the events it was behind on (event_queue::hold). Any thread.
  void resume_after_backlog();

 private:
  void on_peer_close(unsigned code, std::string_view reason);
  void next_deadline(std::uint64_t now);  // the earliest of ping, idle, message timeouts
  void deflate_used();  // a message was inflated or deflated with a kept context
  void fail(int close_code, std::string_view reason, int error);
  // borrow: data stays valid until the host thread's uncork (WH_BORROW), so
  // the frame may be written from it instead of a copy.
  void queue_frame(std::uint8_t opcode, bool fin, bool rsv1, const std::uint8_t* data, std::size_t len,
                   bool borrow = false);
  void queue_message(const std::uint8_t* data, std::size_t len, int flags);
  void queue_close(int code, std::string_view reason);
  void mark_dirty();
  void answer_peer_close();
 public:
  // event_queue: the host has taken every event pushed before this
  // connection's close marker and come back for more. [polling thread]
  void host_took_close();
 private:
  void uncork();
  std::string& out_buf();
  std::size_t pending_bytes() const;
  void sync_buffered(std::size_t pending);
  void after_write_progress();
  void finish(int error);
  void emit_close();
  bool read_while_pending();
  void on_eof();
  void start_close(int code, std::string reason);
  void do_send(const std::uint8_t* data, std::size_t len, int flags);
  void after_close_flushed();
  void client_send_request();
  void client_fail(int error, std::string message);
  bool peer_keeps_context() const;
  bool we_keep_context() const;
  hub& owner_hub() const;  // the loop's owner
  static const std::string& no_name();

  // What an open, idle connection does not need (the handshake, closing,
  // deflate with context takeover, timers that are off by default, a pong
  // owed, publishes held back): one side struct, allocated on first use
  // and freed once nothing in it is needed (drop_side), so an idle
  // connection pays 8 bytes for all of it. Loop thread only.
  struct side_state {
    side_state();
    ~side_state();
    std::unique_ptr<server_handshake> shs;
    std::unique_ptr<client_handshake> chs;
    std::unique_ptr<deflater> deflate;  // only with context takeover
    std::vector<std::shared_ptr<const prepared_message>> deferred;  // published mid-fragment
    // A pong owed while the send buffer was above high water: only the
    // latest ping is answered (RFC 6455 5.5.3), when the peer reads again.
    std::string pong_owed;
    std::string close_reason;
    std::uint64_t last_rx = 0;      // with a ping interval or an idle timeout only
    std::uint64_t ping_due = 0;     // when the pong to our keepalive ping is late
    std::uint64_t park_due = 0;     // when to look whether deflate went quiet
  };
  side_state& side() {
    if (!side_) side_ = std::make_unique<side_state>();
    return *side_;
  }
  server_handshake* shs() const { return side_ ? side_->shs.get() : nullptr; }
  client_handshake* chs() const { return side_ ? side_->chs.get() : nullptr; }
  const std::string& close_reason() const { return side_ ? side_->close_reason : no_name(); }
  void set_close_reason(std::string r) {
    if (!r.empty() || side_) side().close_reason = std::move(r);
  }
  bool timers_on_rx() const { return cfg_ && (cfg_->ping_interval_ms || cfg_->idle_timeout_ms); }
  void drop_side();  // frees the side struct when nothing in it is needed
  // The socket's peer (getpeername), or as the host gave it (adopted).
  void take_peer_address();
  void store_peer(const sockaddr* sa);  // as accept() or getpeername() gave it
  // Our end as local_ packs it, when it is shared by a server's connections
  // (a listening address that is not a wildcard); 0 otherwise.
  static std::uint32_t shared_local(const sockaddr* sa);
  // known: shared_local()'s answer, else getsockname() is asked.
  void take_local_address(std::uint32_t known = 0);
  void forget_local_address();  // the destructor's
  void set_remote_address(const char* text);
  // The text of the binary address into out[46]; "" when there is none.
  void format_peer(char* out) const;

  // Hot fields, ordered so that nothing pads: what every open connection
  // uses. sizeof(connection) is checked in connection.cpp (issue 11).
  loop& loop_;  // its owner() is the hub
  server* server_ = nullptr;
  SSL* ssl_ = nullptr;
  std::atomic<int> refs_{1};
  int fd_ = -1;  // in the loop's epoll set from open to finish()

  // Receive side.
  protocol rx_;
  std::unique_ptr<side_state> side_;

  // Send side.
  std::string wbuf_;
  std::size_t woff_ = 0;
  // Runs of bytes that are not in wbuf_ but go out after its byte `at`:
  //  - a frame whose payload is the caller's memory (WH_BORROW, no `keep`),
  //    which never outlives the flush at the host's uncork;
  //  - a published frame (`keep` holds it) queued behind bytes the peer
  //    has not taken: every slow subscriber of a publish holds the one
  //    copy, instead of one each (issue 11).
  // Written runs leave from the front (`head`); a partly written one
  // moves its p/len on. Allocated on first use, kept.
  struct borrowed {
    std::size_t at;
    const std::uint8_t* p;
    std::size_t len;
    std::shared_ptr<const prepared_message> keep;
  };
  struct run_list {
    std::vector<borrowed> v;
    std::size_t head = 0;   // first run not yet written
    std::size_t bytes = 0;  // bytes of the runs not yet written
  };
  std::unique_ptr<run_list> runs_;
  // What buffered() reports: bytes queued here plus sends posted from other
  // threads and not yet queued. One atomic, moved by deltas, so a reader never
  // sees a posted send counted twice or not at all.
  std::atomic<std::size_t> buffered_{0};
  std::size_t counted_ = 0;  // the part of buffered_ that is queued here (loop thread)
  std::size_t credit_ = 0;   // a posted send, already in buffered_, being queued now
  std::atomic<void*> user_data_{nullptr};

  // Set once before WH_EV_OPEN, read from any thread after it: not in
  // side_, which the loop frees and allocates again.
  struct names {
    std::string subprotocol, extensions;
  };
  std::unique_ptr<names> names_;
  // A server's connections share its config; a client owns its own, freed
  // with it (role_ tells which): one pointer instead of a second for the
  // owner, which an idle server connection would carry for nothing.
  const endpoint_config* cfg_ = nullptr;

  // Timers: one deadline checked by the loop's sweep (the times it is the
  // earliest of are in side_).
  std::uint64_t deadline_ = 0;
  // When the message in progress began (the message timeout, on by
  // default): set by every read that ends inside a frame, so not in side_.
  std::uint64_t msg_started_ = 0;
  mutable std::atomic<char*> peer_text_{nullptr};  // remote_address() once formatted, or as adopted

  std::atomic<std::uint32_t> pause_gen_{0};  // wh_conn_pause/resume calls so far
  // Our end: the port in the low 16 bits, the address's number in
  // local_address.cpp's table in the high 16 (0: none). One atomic, so a
  // reader on another thread sees both or neither.
  std::atomic<std::uint32_t> local_{0};
  std::int16_t error_ = 0;  // close_code_ is at the top, the close reason in side_
  std::uint16_t remote_port_ = 0;
  // Events this read turn delivered: past max_turn_events the connection
  // yields to the others (the protocol keeps what it has not parsed).
  static constexpr std::uint16_t max_turn_events = 4096;
  std::uint16_t turn_events_ = 0;
  std::uint8_t pmd_server_bits_ = 0, pmd_client_bits_ = 0;  // 0 = no deflate
  role role_;
  state state_ = state::connecting;
  std::uint8_t send_opcode_ = 0;  // opcode of a fragmented message being sent

  // Written from other threads: atomics, each its own byte.
  std::atomic<bool> closed_flag_{false};
  // What the C ABI may do, readable from any thread: 0 connecting, 1 open,
  // 2 closing or closed (no more sends).
  std::atomic<std::uint8_t> api_state_{0};
  std::atomic<bool> api_fragmenting_{false};
  std::atomic<bool> drain_armed_{false};      // a send answered WH_QUEUED: WH_EV_DRAIN is owed
  std::atomic<bool> pause_requested_{false};  // wh_conn_pause() from another thread, not yet run

  // Flags of the loop thread (handshake_counted_ is set by the server
  // before the connection reaches its loop): one bit each.
  bool pmd_server_no_ctx_ : 1, pmd_client_no_ctx_ : 1;
  bool write_armed_ : 1, paused_ : 1, peer_hup_ : 1;
  bool close_sent_ : 1, close_received_ : 1, failed_ : 1;
  // The peer's close arrived while its earlier messages were still queued
  // for the host: the answer waits until the host has taken them (queue
  // and host modes), so what it sends in reply still goes out.
  bool close_answer_waits_ : 1;
  bool read_posted_ : 1;  // a read-again continuation is waiting (on_readable)
  bool close_after_flush_ : 1, shut_wr_ : 1, ping_pending_ : 1;
  bool opened_ : 1, tls_want_write_ : 1, tls_handshaking_ : 1;
  // Input stops while the peer does not read what we send (the send buffer
  // above max_buffered) and resumes below low water.
  bool input_held_ : 1;
  bool queue_held_ : 1;         // the host is behind on its events (event_queue::hold)
  bool pong_pending_ : 1;       // side_->pong_owed holds a ping's payload (maybe empty)
  bool handshake_counted_ : 1;  // counts toward the server's max_handshakes
  bool terminating_ : 1;        // wh_conn_terminate() from this loop's thread: no more events
  bool deflate_active_ : 1;     // compressed traffic since the last look (side_->park_due)
  // The peer's address in binary (take_peer_address): 4 (IPv4, also an
  // IPv4-mapped IPv6 peer), 6 (IPv6), or 0 (none, or given as text).
  // Stored before the family, which publishes it to remote_address().
  std::atomic<std::uint8_t> peer_family_{0};
  std::uint8_t peer_addr_[16] = {0};
};

// A message published to many connections: framed once, shared by all, and
// compressed at most once per window size that its receivers agreed on.
struct prepared_message {
  std::string frame;            // uncompressed frame, unmasked (server to client)
  std::size_t header_size = 0;  // frame = header + payload
  int flags = 0;
  bool compressible = false;  // deflate on, not WH_NO_COMPRESS, over the threshold or WH_COMPRESS
  int level = 1, mem_level = 8;

  // Frames `data` once; compresses nothing yet.
  static std::shared_ptr<prepared_message> make(const void* data, std::size_t len, int flags,
                                                const deflate_config& cfg);
  const std::uint8_t* payload() const { return reinterpret_cast<const std::uint8_t*>(frame.data()) + header_size; }
  std::size_t payload_size() const { return frame.size() - header_size; }
  // The compressed frame (no context takeover) for a receiver whose agreed
  // server_max_window_bits is `window_bits`: built by the first receiver that
  // asks, on its own thread, then shared. nullptr when not compressible or
  // compression failed (send `frame` then).
  const std::string* deflated(int window_bits) const;
  // Test hook: compressed frames built by all prepared messages so far.
  static std::atomic<std::uint64_t> compressions;

 private:
  struct slot {
    std::once_flag once;
    std::string frame;
    bool ok = false;
  };
  mutable slot slots_[7];  // window bits 9..15 (8 compresses as 9, see permessage_deflate.cpp)
};

// Tests only (local_address.cpp): every local address taken from now on is
// kept per connection, as past the shared table's 4095 entries, without
// needing that many addresses; and how many connections keep one now.
void local_address_spill_for_test(bool on);
std::size_t local_address_spilled_for_test();

}  // namespace wirehub
