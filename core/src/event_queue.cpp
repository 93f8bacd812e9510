#include "event_queue.hpp"

#include "connection.hpp"
#include "loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace wirehub {

event_queue::event_queue(bool signals) : signals_(signals) {
  if (signals_) {
    fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");  // wh_hub_create maps it
  }
}

event_queue::~event_queue() {
  clear();
  if (fd_ >= 0) ::close(fd_);
}

static void retain(wh_conn* c) {
  if (c) reinterpret_cast<connection*>(c)->retain();
}
static void release(wh_conn* c) {
  if (c) reinterpret_cast<connection*>(c)->release();
}

void event_queue::push(const wh_event& ev) {
  retain(ev.conn);  // the handle must outlive the event, even past WH_EV_CLOSE
  const char* host_data = nullptr;
  if (placed_ && ev.type == WH_EV_MESSAGE && ev.data == placed_ && ev.len == placed_len_) {
    host_data = ev.data;  // built in place (see place())
    placed_ = nullptr;
  } else if (alloc_ && ev.type == WH_EV_MESSAGE && ev.len && ev.len >= alloc_min_) {
    if (void* p = alloc_(ev.len, alloc_user_data_)) {
      std::memcpy(p, ev.data, ev.len);
      host_data = static_cast<const char*>(p);
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    item it{ev, back_arena_.size(), 0, host_data};
    if (ev.len && !host_data) back_arena_.append(ev.data, ev.len);
    it.headers_off = back_arena_.size();
    if (ev.headers_len) back_arena_.append(ev.headers, ev.headers_len);
    if (ev.status_text_len) back_arena_.append(ev.status_text, ev.status_text_len);
    back_.push_back(it);
    // Under the lock: a plain store, no locked read-modify-write per event.
    backlog_.store(backlog_.load(std::memory_order_relaxed) + sizeof(item) + ev.len + ev.headers_len +
                       ev.status_text_len,
                   std::memory_order_relaxed);
    backlog_events_.store(back_.size(), std::memory_order_relaxed);
    if (!must_wake_locked()) return;
  }
  wake();
}

bool event_queue::must_wake_locked() {
  if (!signals_ || signaled_ || deferred_) return false;
  // On an I/O thread: once, at the end of its turn.
  if (loop* l = loop::current()) {
    deferred_ = true;
    l->defer_signal(this);
    return false;
  }
  signaled_ = true;
  return true;
}

void event_queue::signal() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    deferred_ = false;
    if (back_.empty() || signaled_) return;
    signaled_ = true;
  }
  wake();
}

// Outside the lock: the write wakes the host, which may take the core at
// once and would then block on a lock its waker still holds.
void event_queue::wake() {
  if (!signals_) return;
  std::uint64_t one = 1;
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void event_queue::unwake() {
  if (!signals_) return;
  std::uint64_t v;
  while (::read(fd_, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

void event_queue::release_delivered() {
  for (wh_conn* c : delivered_) release(c);
  delivered_.clear();
  // The host is back: it has run its handlers for the batch those markers
  // ended.
  std::vector<wh_conn*> taken;
  taken.swap(markers_taken_);
  for (wh_conn* c : taken) {
    reinterpret_cast<connection*>(c)->host_took_close();
    release(c);
  }
}

void event_queue::push_close_marker(connection* c) {
  wh_event ev{};
  ev.type = static_cast<wh_event_type>(marker_type);
  ev.conn = reinterpret_cast<wh_conn*>(c);
  retain(ev.conn);
  {
    std::lock_guard<std::mutex> lk(mu_);
    back_.push_back(item{ev, back_arena_.size(), back_arena_.size(), nullptr});
    if (!must_wake_locked()) return;
  }
  wake();
}

int event_queue::poll(wh_event* out, int max) {
  release_delivered();
  if (front_pos_ == front_.size()) {
    front_.clear();
    front_arena_.clear();
    front_pos_ = 0;
    // Read even when no signal is pending: a waker marks signaled_ under
    // the lock but writes after it, so a write can land after we took its
    // events; this read then clears it (one spurious wake-up, never a
    // descriptor left readable).
    unwake();
    std::vector<connection*> resume;
    {
      std::lock_guard<std::mutex> lk(mu_);
      signaled_ = false;
      front_.swap(back_);
      front_arena_.swap(back_arena_);
      backlog_.store(0, std::memory_order_relaxed);
      backlog_events_.store(0, std::memory_order_relaxed);
      resume.swap(held_);
    }
    // The host took the backlog: connections held for it read again.
    for (connection* c : resume) {
      c->resume_after_backlog();
      c->release();  // hold()'s reference
    }
  }
  int n = 0;
  while (n < max && front_pos_ < front_.size()) {
    item& it = front_[front_pos_++];
    if (static_cast<int>(it.ev.type) == marker_type) {
      if (n == 0) {
        // Nothing handed over in this call: the host's handlers for what
        // came before have run.
        reinterpret_cast<connection*>(it.ev.conn)->host_took_close();
        release(it.ev.conn);
      } else {
        markers_taken_.push_back(it.ev.conn);
      }
      continue;
    }
    wh_event ev = it.ev;
    ev.data = it.host_data ? it.host_data : ev.len ? front_arena_.data() + it.data_off : nullptr;
    ev.headers = ev.headers_len ? front_arena_.data() + it.headers_off : nullptr;
    // "" stays a non-null "" (a response with no reason phrase).
    if (ev.status_text) ev.status_text = front_arena_.data() + it.headers_off + ev.headers_len;
    out[n++] = ev;
    if (ev.conn) delivered_.push_back(ev.conn);
  }
  front_left_.store(front_.size() - front_pos_, std::memory_order_relaxed);
  if (front_pos_ < front_.size() || !markers_taken_.empty()) {
    // More than `max` waited, or a close waits for the host to be done
    // with this batch: keep the descriptor readable so the host comes back.
    wake();
  }
  return n;
}

void event_queue::hold(connection* c) {
  c->retain();
  std::lock_guard<std::mutex> lk(mu_);
  held_.push_back(c);
}

void event_queue::clear() {
  // Shutting down: nothing is answered any more.
  for (wh_conn* c : markers_taken_) release(c);
  markers_taken_.clear();
  release_delivered();
  std::vector<connection*> held;
  {
    std::lock_guard<std::mutex> lk(mu_);
    held.swap(held_);
  }
  for (connection* c : held) c->release();
  std::vector<item> a, b;
  {
    std::lock_guard<std::mutex> lk(mu_);
    a.swap(back_);
    back_arena_.clear();
  }
  b.swap(front_);
  for (std::size_t i = front_pos_; i < b.size(); ++i) release(b[i].ev.conn);
  for (auto& it : a) release(it.ev.conn);
  front_pos_ = 0;
  front_arena_.clear();
  front_left_.store(0, std::memory_order_relaxed);
}

}  // namespace wirehub
