// event_queue.hpp — events for a host that runs its own event loop.
//
// I/O threads append events (payload copied into an arena, or in host mode
// into memory the host allocates: set_payload_alloc); the host's thread
// takes them in batches. An eventfd is readable while the queue is
// non-empty, so the host polls it with its own loop (add_reader, uv_poll).
// Two arenas swap on each batch: what the host holds stays valid until its
// next poll, and producers never wait for the host.
#pragma once

#include "wirehub.h"

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace wirehub {

class connection;

class event_queue {
 public:
  // signals=false: host mode, where the host polls after running the engine
  // itself and the descriptor is not the one it waits on.
  explicit event_queue(bool signals = true);
  ~event_queue();
  int fd() const { return fd_; }
  void push(const wh_event& ev);
  // Makes the descriptor readable if events wait (end of an I/O turn).
  void signal();
  int poll(wh_event* out, int max);
  // Drops everything waiting (hub shutdown), releasing connection references.
  void clear();

  // The queue is a bounded buffer between the engine and a host that may
  // fall behind: past max_backlog bytes, or max_backlog_events events, not
  // yet taken by poll(), connections stop reading (a flood of empty frames is
  // read no faster than the host takes its events). The count matters for a
  // host that makes an object of every event: 64 MiB of 6-byte frames would
  // be half a million events, hundreds of MB once a Python or JS host has
  // turned them into objects. backlogged() is the engine's test; hold()
  // parks a connection until the host's next poll takes the backlog.
  static constexpr std::size_t max_backlog = 64u << 20;
  static constexpr std::size_t max_backlog_events = 16384;
  bool backlogged() const {
    return backlog_.load(std::memory_order_relaxed) > max_backlog ||
           backlog_events_.load(std::memory_order_relaxed) + front_left_.load(std::memory_order_relaxed) >=
               max_backlog_events;
  }
  void hold(connection* c);
  // A marker after the connection's events so far: once the host has taken
  // them all and polls again (its handlers for them have run),
  // c->host_took_close() is called. Not an event: poll() never returns it.
  void push_close_marker(connection* c);
  // Host mode (wh_hub_set_payload_alloc): message payloads of at least
  // min_len bytes go to memory the host allocates, not to the arena.
  // Host memory for a message payload the engine is about to build (it
  // unmasks a frame straight into it): the push that carries it then keeps
  // it where it is. nullptr: no allocator, a smaller payload, or none left.
  void* place(std::size_t len) {
    if (!alloc_ || len < alloc_min_ || !len) return nullptr;
    placed_ = alloc_(len, alloc_user_data_);
    placed_len_ = len;
    return placed_;
  }
  void set_payload_alloc(std::size_t min_len, wh_payload_alloc_cb alloc, void* user_data) {
    alloc_min_ = min_len;
    alloc_ = alloc;
    alloc_user_data_ = user_data;
  }

 private:
  struct item {
    wh_event ev;
    std::size_t data_off, headers_off;
    const char* host_data;  // the payload in the host's memory, else in the arena
  };
  static constexpr int marker_type = -1;  // push_close_marker's item
  void release_delivered();
  // After a push, under the lock: true if the caller must wake() the host
  // (after releasing the lock); an I/O thread's pushes signal at its turn's end.
  bool must_wake_locked();
  void wake();
  void unwake();

  int fd_ = -1;
  bool signals_ = true;
  std::mutex mu_;
  bool signaled_ = false;
  bool deferred_ = false;  // an I/O thread will signal at the end of its turn
  std::vector<item> back_;
  std::string back_arena_;
  // Consumer side (the polling thread only).
  std::vector<item> front_;
  std::string front_arena_;
  std::size_t front_pos_ = 0;
  std::vector<wh_conn*> delivered_;
  std::vector<wh_conn*> markers_taken_;  // close markers passed in the last batch
  std::atomic<std::size_t> backlog_{0};  // bytes of back_: items and payloads
  std::atomic<std::size_t> backlog_events_{0};  // events in back_
  // Events swapped to the host's side but not handed over yet: they count
  // toward the cap too, or a host taking a few at a time would let twice
  // the cap wait.
  std::atomic<std::size_t> front_left_{0};
  std::vector<connection*> held_;         // retained, resumed by the next poll
  // Called on the only thread that pushes in host mode: the host's.
  wh_payload_alloc_cb alloc_ = nullptr;
  void* alloc_user_data_ = nullptr;
  std::size_t alloc_min_ = 0;
  void* placed_ = nullptr;
  std::size_t placed_len_ = 0;
};

}  // namespace wirehub
