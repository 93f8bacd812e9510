// loop.hpp — one I/O thread: its io_context and the state every connection on
// it shares, so that an idle connection holds almost nothing of its own.
#pragma once

#include "engine.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace wirehub {

class loop {
 public:
  loop(hub& h, int index);
  ~loop();

  void start();
  void stop_and_join();

  // WH_EVENTS_HOST: no thread; the creating (host) thread runs the loop
  // through run_hosted() when host_fd() is readable.
  void start_hosted();
  int host_fd();
  int asio_fd();
  bool is_host_thread() const { return hosted_ && std::this_thread::get_id() == host_thread_; }
  void run_hosted();              // the ready work, without blocking
  // Host mode, on the host thread between polls: f runs now, as on the loop.
  // What the first such call after a poll writes leaves at once (a reply's
  // latency); what later ones write waits for the host's next turn, which
  // this wakes, so a handler answering a batch makes one write per
  // connection. While the host thread holds a cork, the uncork writes.
  template <class F>
  void on_host(F& f) {
    {
      as_current scope(this);
      host_inline_ = true;
      f();
      host_inline_ = false;
    }
    if (host_corked() || !host_turn_) return;
    if (!std::exchange(host_wrote_since_poll_, true)) host_turn_end();
    else wake_host();
  }
  void host_turn_end();
  // WH_BORROW: the bytes are the host thread's until its uncork, whose
  // flush writes or copies them.
  bool host_borrow_ok() const { return hosted_ && is_host_thread() && host_corked(); }
  void wake_host();
  void run_hosted_for(int ms);    // blocks up to ms (hub destroy)

  // wh_hub_set_watch(): while this loop has at most max_direct sockets the
  // host watches each for input itself and calls run_hosted_fd() when one
  // is readable, so a message costs the host its own wait only (not also
  // ours on the set nested in it). Past max_direct every socket comes back
  // into our set: then one wait and one poll serve a whole batch of sockets,
  // where per-socket callbacks would cost the host one dispatch each. They
  // go back to the host at max_direct / 2 or fewer. Writability always
  // stays in our set (edges after a send would have blocked: rare). False
  // once a socket is watched: those are in our set already.
  using watch_fn = void (*)(int fd, int read, void* user_data);
  bool set_watch(watch_fn fn, void* user_data, std::size_t max_direct);
  bool has_watch() const { return watch_fn_ != nullptr; }
  bool host_watches() const { return direct_; }  // the sockets are the host's to watch now
  void host_watch(int fd, bool on) { watch_fn_(fd, on ? 1 : 0, watch_ud_); }
  void run_hosted_fd(int fd);
  bool on_this_thread() const { return current_ == this; }
  static loop* current() { return current_; }

  boost::asio::io_context& ioc() { return ioc_; }
  hub& owner() { return hub_; }
  int index() const { return index_; }

  // Runs f on this loop's thread (now if already on it). From a host thread
  // that corked the hub (wh_hub_cork), f waits for the uncork, which hands
  // every loop its share in one post: one wake-up instead of one per call.
  template <class F>
  void dispatch(F&& f) {
    if (on_this_thread()) f();
    else if (is_host_thread()) on_host(f);
    else if (host_corked()) defer_from_host(std::make_unique<task_of<std::decay_t<F>>>(std::forward<F>(f)));
    else post_remote(std::make_unique<task_of<std::decay_t<F>>>(std::forward<F>(f)));
  }

  // Runs f on this loop's thread later, never inline; from another thread
  // in the same order as that thread's dispatch() calls.
  template <class F>
  void post(F&& f) {
    // Not from a host-thread call (on_host): Asio would queue it without
    // waking the host, so it goes through the inbox, which does.
    if (on_this_thread() && !host_inline_) {
      asio_due_ = true;  // host mode: run_hosted() polls Asio for it
      boost::asio::post(ioc_, std::forward<F>(f));
    } else post_remote(std::make_unique<task_of<std::decay_t<F>>>(std::forward<F>(f)));
  }

  // Runs f on this loop's thread at its next turn. In host mode that is the
  // host's next poll, so the host gets its own turn first (Asio would run f
  // inside the same poll: a peer that never stops sending would keep the
  // host's loop from ever running again).
  template <class F>
  void post_next_turn(F&& f) {
    if (hosted_) post_remote(std::make_unique<task_of<std::decay_t<F>>>(std::forward<F>(f)));
    else post(std::forward<F>(f));
  }

  struct task {
    virtual ~task() = default;
    virtual void run() = 0;
  };
  // Work handed over by another thread. Not Asio's post: that wakes this
  // thread while still holding the scheduler's lock, so on a shared core
  // the woken thread runs, blocks on that lock and hands the core back;
  // two extra context switches per call. The inbox wakes us after its lock
  // is released, once per batch of tasks.
  void post_remote(std::unique_ptr<task> t);
  void post_remote(std::vector<std::unique_ptr<task>> ts);

  // For a thread of ours that may outlive the hub (a name resolution in
  // host mode): it posts through this and the post is dropped once the loop
  // is gone.
  struct remote_ref {
    explicit remote_ref(loop* owner) : l(owner) {}
    std::mutex mu;
    loop* l;
  };
  std::shared_ptr<remote_ref> remote() { return remote_; }
  // The calling (host) thread's cork, per hub (wh_hub_cork/uncork).
  static int cork_host(hub& h);
  static int uncork_host(hub& h);
  static void drop_host_cork(hub& h);  // hub destroy: run nothing, release nothing twice

  // Signals the hub's event queue once this turn's events are all in, so the
  // host thread wakes once per turn instead of racing the I/O thread for the
  // core after the first event.
  void defer_signal(class event_queue* q);
  // WH_EV_BATCH_END once the events of this turn are delivered.
  void defer_batch_end();
  // This turn's writes wait for the handlers Asio has queued so far (the
  // broker's write to Redis): one more trip through Asio's queue. With a
  // host the order is already so (Asio is polled before the writes).
  void flush_after_asio() { flush_after_asio_ = !hosted_; }
  // Ends a pending batch at once (before a close makes sends fail).
  void batch_point();

  // Corking: a connection with new bytes to send registers here, and every
  // registered connection is flushed once, after all completions of the
  // current reactor turn ran. So a batch of messages read together, or a
  // broadcast to many connections, costs one write per connection.
  void want_flush(connection* c);

  // Connections' sockets live in this loop's own epoll set, which Asio
  // watches as one descriptor. So a connection costs the engine no Asio
  // object and no pending operation: an idle one is just its own struct.
  void watch(int fd, connection* c);
  void unwatch(int fd);

  // The connection whose input is being handled: what it sends meanwhile
  // (an echo, a reply) goes into one shared buffer that is written with a
  // single send when its read is done, so a busy connection neither
  // allocates nor waits for the posted flush.
  connection* corked() const { return corked_; }
  void set_corked(connection* c) { corked_ = c; }
  std::string& cork_buf() { return cork_; }

  // Send buffers of connections that flushed everything, kept for the next
  // connection with a large frame to queue: idle connections still hold no
  // buffer, and a burst of large sends does not map, fault in and unmap a
  // fresh buffer each time (malloc serves ≥128 KiB with mmap).
  void take_send_buffer(std::string& into) {
    if (spare_bufs_.empty()) return;
    into.swap(spare_bufs_.back());
    spare_bufs_.pop_back();
  }
  void give_send_buffer(std::string& from) {
    if (from.capacity() >= 4096 && from.capacity() <= (4u << 20) && spare_bufs_.size() < 16) {
      from.clear();
      spare_bufs_.push_back(std::move(from));
    }
    std::string().swap(from);
  }

  // Every connection of this loop, for the timer sweep.
  void attach(connection* c);
  void detach(connection* c);

  // The receive buffer all connections of this loop read into.
  std::uint8_t* rbuf() { return rbuf_.get(); }
  static constexpr std::size_t rbuf_size = 512 * 1024;

  // Scratch space for single-frame messages: what we inflate is handed to
  // the application while it may send (and so deflate) in the same call,
  // hence two buffers.
  std::string& inflate_scratch() { return inflate_scratch_; }
  std::string& deflate_scratch() { return deflate_scratch_; }
  // Shared zlib streams for connections that agreed on no context takeover
  // (and for publish on this thread): one per (window_bits, level,
  // mem_level), and one inflater per peer window size.
  deflater& shared_deflater(int window_bits, int level, int mem_level) { return deflaters_.get(window_bits, level, mem_level); }
  inflater& shared_inflater(int window_bits = 15);
  // Frees the shared inflaters (a failed message already leaves them clean).
  void reset_shared_inflater() {
    for (auto& i : inflaters_) i.reset();
  }

  std::uint32_t random_mask();
  // ws's generateMask: the key the host chose for the next frame it makes
  // `conn` send (wh_conn_set_mask), taken once; every other frame, and
  // every frame while none is set, gets the hub's wh_mask_cb key
  // (WH_CLIENT_HOST_MASK) or random_mask().
  void set_frame_mask(const void* conn, std::uint32_t key) {
    mask_for_ = conn;
    mask_key_ = key;
  }
  // True, with the key, when the host set one for conn's next frame.
  bool take_frame_mask(const void* conn, std::uint32_t& key) {
    if (mask_for_ != conn) return false;
    mask_for_ = nullptr;
    key = mask_key_;
    return true;
  }

 private:
  void arm_turn_end();
  void turn_end();
  void flush_all();
  void arm_epoll();
  void drain_epoll();
  void set_direct(bool direct);
  // One host turn: io() reads the ready input, then Asio runs if it has
  // work, then the turn's writes leave.
  template <class F>
  void hosted_turn(F&& io);
  void run_inbox();
  // Runs f; an exception from it (a task for one connection that ran out of
  // memory, say) ends that task, not the turn, the thread or the process.
  template <class F>
  static void run_guarded(F&& f) {
    try {
      f();
    } catch (...) {
    }
  }
  // Queues n tasks (none: just a wake-up) and makes wake_fd_ readable once.
  void to_inbox(std::unique_ptr<task>* ts, std::size_t n);
  // This loop is loop::current() for a scope on the host's thread.
  struct as_current {
    explicit as_current(loop* l) : outer(std::exchange(current_, l)) {}
    ~as_current() { current_ = outer; }
    as_current(const as_current&) = delete;
    as_current& operator=(const as_current&) = delete;
    loop* outer;
  };
  void arm_sweep();
  void sweep();

  hub& hub_;
  int index_;
  boost::asio::io_context ioc_{1};
  std::thread thread_;
  bool hosted_ = false;
  bool host_inline_ = false;  // running a host-thread call (on_host)
  bool host_turn_ = false;    // a turn end is owed to the host thread
  bool host_wrote_since_poll_ = false;
  bool host_direct_ = false;  // run_hosted() is handling our epoll set itself
  bool asio_due_ = false;     // ... and has handed Asio work to run after it
  char asio_tag_ = 0;         // host mode: Asio's descriptor's entry in epfd_
  std::thread::id host_thread_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> host_work_;
  std::unique_ptr<std::uint8_t[]> rbuf_;
  std::string inflate_scratch_;
  std::string deflate_scratch_;
  connection* corked_ = nullptr;
  std::string cork_;
  std::vector<std::string> spare_bufs_;
  std::vector<connection*> dirty_;
  std::vector<connection*> flushing_;
  // One posted handler per turn runs what waits for the turn's end: the
  // batch end, the flush of dirty_, the event queue's signal.
  bool turn_posted_ = false;
  bool flush_after_asio_ = false;
  bool batch_pending_ = false;
  class event_queue* signal_queue_ = nullptr;
  connection* head_ = nullptr;  // intrusive list of this loop's connections
  boost::asio::steady_timer sweep_timer_;
  int epfd_ = -1;
  watch_fn watch_fn_ = nullptr;
  void* watch_ud_ = nullptr;
  std::size_t max_direct_ = 0;
  bool direct_ = false;             // the host watches the sockets' input
  std::vector<connection*> by_fd_;  // with a watch: every socket, by descriptor
  std::size_t watched_ = 0;         // sockets in epfd_
  int wake_fd_ = -1;  // eventfd in epfd_ (data.ptr == nullptr): the inbox has work
  std::shared_ptr<remote_ref> remote_ = std::make_shared<remote_ref>(this);
  std::mutex inbox_mu_;
  std::vector<std::unique_ptr<task>> inbox_;
  bool inbox_woken_ = false;  // a wake-up is on its way (inbox_mu_)
  std::vector<std::unique_ptr<task>> inbox_running_;
  boost::asio::posix::stream_descriptor epoll_desc_;
  deflater_pool deflaters_;
  std::unique_ptr<inflater> inflaters_[8];  // by window bits 8..15
  std::uint64_t prng_;
  const void* mask_for_ = nullptr;  // set_frame_mask
  std::uint32_t mask_key_ = 0;
  static thread_local loop* current_;

  template <class F>
  struct task_of final : task {
    explicit task_of(F&& f) : fn(std::move(f)) {}
    explicit task_of(const F& f) : fn(f) {}
    void run() override { fn(); }
    F fn;
  };
  bool host_corked() const;
  void defer_from_host(std::unique_ptr<task> t);
};

}  // namespace wirehub
