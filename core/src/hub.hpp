// hub.hpp — the engine instance: I/O threads, servers, and where events go.
#pragma once

#include "engine.hpp"
#include "event_queue.hpp"
#include "loop.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace wirehub {

class hub {
 public:
  explicit hub(const wh_hub_options& o);
  ~hub();

  int destroy(int timeout_ms);
  wh_hub* handle() { return reinterpret_cast<wh_hub*>(this); }
  void* user_data() const { return user_data_; }
  bool queue_mode() const { return queue_ != nullptr; }
  bool hosted() const { return hosted_; }
  int event_fd();                     // queue or host mode
  int poll(wh_event* out, int max);   // queue or host mode
  int poll_fd(int fd, wh_event* out, int max);  // host mode with a host watch
  event_queue* queue() { return queue_.get(); }
  bool on_io_thread() const;

  // Delivers an event: the callback now (on this I/O thread), or the queue.
  void emit(const wh_event& ev);
  // Host mode with a payload allocator: where to build a message payload
  // of len bytes so that its event needs no copy (else nullptr).
  void* place_payload(std::size_t len) { return hosted_ && queue_ ? queue_->place(len) : nullptr; }
  void end_batch();  // WH_EV_BATCH_END, from the loop at the end of a turn
  // Queue and host modes: the host is behind on its events; a connection
  // that just emitted one stops reading until the next poll (event_queue).
  bool backlogged() const { return queue_ && queue_->backlogged(); }

  loop& next_loop();
  loop& loop_at(std::size_t i) { return *loops_[i]; }
  std::size_t loop_count() const { return loops_.size(); }

  int listen(const wh_server_options& o, server** out);
  int connect(const char* url, const wh_client_options& o, connection** out);
  int adopt_client(int fd, const wh_client_options& o, const char* subprotocol, const char* extensions,
                   std::string head, connection** out);

  // Every live connection, so destroy() can close them.
  void track(connection* c);
  void untrack(connection* c);
  void server_gone(server* s);
  bool shutting_down() const { return shutting_down_.load(); }

  // wh_hub_set_mask_cb: the key of a WH_CLIENT_HOST_MASK client's own frame.
  void set_mask_cb(wh_mask_cb cb, void* user_data) {
    std::lock_guard<std::mutex> lk(mu_);
    mask_cb_.store(cb, std::memory_order_release);
    mask_user_data_.store(user_data, std::memory_order_release);
  }
  bool host_mask(connection* c, std::uint32_t& key);

 private:
  std::vector<std::unique_ptr<loop>> loops_;
  std::atomic<unsigned> rr_{0};
  wh_event_cb on_event_;
  bool batch_end_ = false;  // WH_HUB_BATCH_END
  bool hosted_ = false;     // WH_EVENTS_HOST
  void* user_data_;
  std::unique_ptr<event_queue> queue_;
  std::mutex mu_;
  std::set<connection*> conns_;
  std::set<server*> servers_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<wh_mask_cb> mask_cb_{nullptr};
  std::atomic<void*> mask_user_data_{nullptr};
};

}  // namespace wirehub
