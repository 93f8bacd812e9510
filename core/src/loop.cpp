#include "loop.hpp"

#include "connection.hpp"
#include "event_queue.hpp"
#include "hub.hpp"

#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <random>
#include <utility>

namespace wirehub {

thread_local loop* loop::current_ = nullptr;

std::uint64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void set_cloexec(int fd) { ::fcntl(fd, F_SETFD, FD_CLOEXEC); }

loop::loop(hub& h, int index)
    : hub_(h),
      index_(index),
      rbuf_(new std::uint8_t[rbuf_size]),
      sweep_timer_(ioc_),
      epfd_(::epoll_create1(EPOLL_CLOEXEC)),
      epoll_desc_(ioc_) {
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  epoll_desc_.assign(epfd_);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = nullptr;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  std::random_device rd;
  prng_ = (std::uint64_t(rd()) << 32) ^ rd() ^ std::uint64_t(index + 1) * 0x9E3779B97F4A7C15ull;
  if (!prng_) prng_ = 0x2545F4914F6CDD1Dull;
}

loop::~loop() {
  {
    std::lock_guard<std::mutex> lk(remote_->mu);
    remote_->l = nullptr;
  }
  stop_and_join();
  inbox_.clear();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (hosted_) ::close(epfd_);  // released from Asio, which would have closed it
}

void loop::to_inbox(std::unique_ptr<task>* ts, std::size_t n) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(inbox_mu_);
    for (std::size_t i = 0; i < n; ++i) inbox_.push_back(std::move(ts[i]));
    wake = !std::exchange(inbox_woken_, true);
  }
  if (wake) {  // after the unlock: see post_remote
    std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
}

void loop::post_remote(std::unique_ptr<task> t) { to_inbox(&t, 1); }

void loop::post_remote(std::vector<std::unique_ptr<task>> ts) { to_inbox(ts.data(), ts.size()); }

void loop::run_inbox() {
  // Read first: a task queued after the swap below then wakes us again.
  std::uint64_t v;
  while (::read(wake_fd_, &v, sizeof v) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> lk(inbox_mu_);
    inbox_running_.swap(inbox_);
    inbox_woken_ = false;
  }
  for (auto& t : inbox_running_) run_guarded([&] { t->run(); });
  inbox_running_.clear();
}

void loop::start() {
  arm_sweep();
  arm_epoll();
  thread_ = std::thread([this] {
    current_ = this;
    auto guard = boost::asio::make_work_guard(ioc_);
    // A handler that throws has failed its own work only: the thread, and
    // every other connection on it, carry on (run() resumes where it was).
    for (;;) {
      try {
        ioc_.run();
        break;
      } catch (...) {
      }
    }
    current_ = nullptr;
  });
}

// Asio keeps its epoll descriptor private and offers no accessor; host mode
// needs it as the one descriptor a host loop waits on (it covers sockets,
// Asio's timerfd and its wake-ups). Explicit instantiation may name private
// members, so this reads it without touching Asio.
namespace {
#if defined(BOOST_ASIO_HAS_EPOLL)
using reactor_fd_ptr = int boost::asio::detail::epoll_reactor::*;
struct reactor_fd_tag {
  friend reactor_fd_ptr member(reactor_fd_tag);
};
template <reactor_fd_ptr M>
struct reactor_fd_access {
  friend reactor_fd_ptr member(reactor_fd_tag) { return M; }
};
template struct reactor_fd_access<&boost::asio::detail::epoll_reactor::epoll_fd_>;
#endif
}  // namespace

void loop::start_hosted() {
  hosted_ = true;
  host_thread_ = std::this_thread::get_id();
  // poll() would stop the io_context for good once it ran out of work.
  host_work_ = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
      ioc_.get_executor());
  // The host waits on our epoll set, and Asio's descriptor (timers, accepts,
  // connects, its own wake-ups) sits inside it, not the other way round: a
  // message then costs one epoll_wait on the sockets, instead of Asio's
  // wait, ours, Asio's re-arm of ours and Asio's second look (3 syscalls a
  // turn saved). Asio's part only runs when it has something ready.
  epoll_desc_.release();
  epoll_event ev{};
  ev.events = EPOLLIN;  // level: Asio's ready list empties as Asio runs
  ev.data.ptr = &asio_tag_;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, asio_fd(), &ev) < 0) throw std::runtime_error("epoll_ctl failed");
  arm_sweep();
}

int loop::asio_fd() {
#if defined(BOOST_ASIO_HAS_EPOLL)
  return boost::asio::use_service<boost::asio::detail::epoll_reactor>(ioc_).*member(reactor_fd_tag{});
#else
  return -1;
#endif
}

int loop::host_fd() { return epfd_; }

void loop::host_turn_end() {
  if (!std::exchange(host_turn_, false)) return;
  as_current scope(this);
  const bool posted = turn_posted_;
  turn_end();
  turn_posted_ = posted;  // a turn end already posted still runs (harmlessly)
}

void loop::wake_host() { to_inbox(nullptr, 0); }

template <class F>
void loop::hosted_turn(F&& io) {
  host_wrote_since_poll_ = false;
  host_turn_end();  // what waited for this turn (or a cork never undone) goes now
  as_current scope(this);
  // The sockets' input first; what that hands to Asio (a post, an accept or
  // connect started from the inbox), and what Asio's own descriptor
  // reports, runs in one poll of Asio after it. Asio must see its posts at
  // once: outside its run it does not wake for them.
  host_direct_ = true;
  asio_due_ = false;
  io();
  host_direct_ = false;
  if (std::exchange(asio_due_, false)) run_guarded([&] { ioc_.poll(); });
  host_turn_end();  // the turn's writes, one per connection
}

void loop::run_hosted() {
  hosted_turn([this] { drain_epoll(); });  // sockets and the inbox, from our set
}

void loop::run_hosted_fd(int fd) {
  hosted_turn([this, fd] {
    // Unknown: closed or taken back since the host's wait reported it.
    if (connection* c = fd >= 0 && std::size_t(fd) < by_fd_.size() ? by_fd_[fd] : nullptr) {
      c->retain();
      c->on_io(EPOLLIN);
      c->release();
    }
  });
}

bool loop::set_watch(watch_fn fn, void* user_data, std::size_t max_direct) {
  if (watched_) return false;
  watch_fn_ = fn;
  watch_ud_ = user_data;
  max_direct_ = max_direct;
  direct_ = fn != nullptr;
  return true;
}

void loop::set_direct(bool direct) {
  direct_ = direct;
  for (std::size_t fd = 0; fd < by_fd_.size(); ++fd) {
    connection* c = by_fd_[fd];
    if (!c) continue;
    epoll_event ev{};
    // Edge-triggered input reported at once if some is waiting already.
    ev.events = direct ? EPOLLOUT | EPOLLET : EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    ::epoll_ctl(epfd_, EPOLL_CTL_MOD, int(fd), &ev);
    if (!c->read_off_) host_watch(int(fd), direct);
  }
}

void loop::run_hosted_for(int ms) {
  // Wait without taking: the sockets are edge-triggered, and run_hosted()
  // must see the events. Sockets the host watches are waited on here too:
  // the host is not running its loop while it destroys the hub.
  std::vector<pollfd> fds{{epfd_, POLLIN, 0}};
  if (direct_)
    for (std::size_t fd = 0; fd < by_fd_.size(); ++fd)
      if (by_fd_[fd] && !by_fd_[fd]->read_off_) fds.push_back({int(fd), POLLIN, 0});
  ::poll(fds.data(), fds.size(), ms);
  for (std::size_t i = 1; i < fds.size(); ++i)
    if (fds[i].revents) run_hosted_fd(fds[i].fd);
  run_hosted();
}

void loop::stop_and_join() {
  if (thread_.joinable()) {
    ioc_.stop();
    thread_.join();
  }
  // A connection waiting for this turn's flush holds a reference, which
  // the turn's end would have dropped; that end will not run now. Without
  // this, a connection finished just before the hub stopped its loops was
  // never freed (LSan, under load: the destroy found no client left while
  // the turn end was still queued).
  for (connection* c : dirty_) {
    c->dirty_ = false;
    c->release();
  }
  dirty_.clear();
}

void loop::want_flush(connection* c) {
  c->retain();
  dirty_.push_back(c);
  arm_turn_end();
}

void loop::defer_signal(event_queue* q) {
  signal_queue_ = q;
  arm_turn_end();
}

void loop::arm_turn_end() {
  if (host_inline_ || host_direct_) {
    host_turn_ = true;  // run by on_host(), run_hosted() or the uncork, not posted
    return;
  }
  if (turn_posted_) return;
  turn_posted_ = true;
  // Posted work runs after the completions already queued for this turn,
  // so everything written during this turn leaves in one send per socket.
  boost::asio::post(ioc_, [this] { turn_end(); });
}

void loop::turn_end() {
  if (std::exchange(flush_after_asio_, false)) {
    boost::asio::post(ioc_, [this] { turn_end(); });  // turn_posted_ stays set
    return;
  }
  // The batch end first: a batching host replies there, and those replies
  // belong to this turn's flush.
  if (batch_pending_) {
    batch_pending_ = false;
    hub_.end_batch();
  }
  turn_posted_ = false;  // what the flush itself causes gets a turn end of its own
  flush_all();
  // Last, so the host wakes once this turn's writes are out.
  if (event_queue* q = std::exchange(signal_queue_, nullptr)) q->signal();
}

namespace {
// A host thread's cork: the hub it corked, how deep, and what waits per loop.
struct host_cork {
  hub* owner = nullptr;
  int depth = 0;
  std::vector<std::pair<loop*, std::unique_ptr<loop::task>>> tasks;
};
thread_local host_cork tl_cork;
}  // namespace

bool loop::host_corked() const { return tl_cork.owner == &hub_; }

void loop::defer_from_host(std::unique_ptr<task> t) { tl_cork.tasks.emplace_back(this, std::move(t)); }

int loop::cork_host(hub& h) {
  if (current_) return WH_ESTATE;  // an I/O thread already batches its own work
  if (tl_cork.owner && tl_cork.owner != &h) return WH_ESTATE;
  tl_cork.owner = &h;
  ++tl_cork.depth;
  return 0;
}

int loop::uncork_host(hub& h) {
  if (tl_cork.owner != &h) return WH_ESTATE;
  if (--tl_cork.depth > 0) return 0;
  tl_cork.owner = nullptr;
  if (h.hosted()) {
    // Host mode: the calls already ran on this thread; write what they queued.
    h.loop_at(0).host_turn_end();
    return 0;
  }
  auto tasks = std::move(tl_cork.tasks);
  tl_cork.tasks.clear();
  // Group by loop, keeping each loop's order (and so each connection's).
  while (!tasks.empty()) {
    loop* l = tasks.front().first;
    std::vector<std::unique_ptr<task>> mine;
    std::vector<std::pair<loop*, std::unique_ptr<task>>> rest;
    for (auto& [tl, t] : tasks) {
      if (tl == l) mine.push_back(std::move(t));
      else rest.emplace_back(tl, std::move(t));
    }
    tasks.swap(rest);
    l->post_remote(std::move(mine));
  }
  return 0;
}

void loop::drop_host_cork(hub& h) {
  if (tl_cork.owner != &h) return;
  // Still hand the work over: sends hold references the tasks release.
  tl_cork.depth = 1;
  uncork_host(h);
}

void loop::defer_batch_end() {
  batch_pending_ = true;
  arm_turn_end();
}

void loop::batch_point() {
  if (batch_pending_) {
    batch_pending_ = false;
    hub_.end_batch();
  }
}

void loop::flush_all() {
  flushing_.swap(dirty_);
  for (connection* c : flushing_) {
    c->dirty_ = false;
    c->flush();
  }
  for (connection* c : flushing_) c->release();
  flushing_.clear();
}

void loop::watch(int fd, connection* c) {
  ++watched_;
  if (watch_fn_) {
    if (direct_ && watched_ > max_direct_) set_direct(false);
    if (std::size_t(fd) >= by_fd_.size()) by_fd_.resize(std::size_t(fd) + 1);
    by_fd_[fd] = c;
    c->read_off_ = false;
  }
  epoll_event ev{};
  ev.events = direct_ ? EPOLLOUT | EPOLLET : EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = c;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  if (direct_) host_watch(fd, true);
}

void loop::unwatch(int fd) {
  --watched_;
  if (watch_fn_ && std::size_t(fd) < by_fd_.size()) {
    // Before the close: the host must drop the descriptor while it is still
    // this socket's (its number is reused at once).
    connection* c = std::exchange(by_fd_[fd], nullptr);
    if (c && direct_ && !c->read_off_) host_watch(fd, false);
  }
  epoll_event ev{};
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
  if (watch_fn_ && !direct_ && watched_ <= max_direct_ / 2) set_direct(true);
}

void loop::arm_epoll() {
  epoll_desc_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& ec) {
                           if (ec) return;
                           drain_epoll();
                           arm_epoll();
                         });
}

void loop::drain_epoll() {
  constexpr int max = 256;
  epoll_event evs[max];
  for (;;) {
    const int n = ::epoll_wait(epfd_, evs, max, 0);
    if (n <= 0) return;
    // Hold every connection of the batch: handling one event runs
    // application callbacks, which may close any other connection.
    for (int i = 0; i < n; ++i)
      if (evs[i].data.ptr && evs[i].data.ptr != &asio_tag_) static_cast<connection*>(evs[i].data.ptr)->retain();
    for (int i = 0; i < n; ++i) {
      void* p = evs[i].data.ptr;
      if (p == &asio_tag_) {  // host mode: Asio has something ready
        asio_due_ = true;
        continue;
      }
      if (!p) {
        run_inbox();
        asio_due_ = true;  // what a task starts may be Asio's
        continue;
      }
      auto* c = static_cast<connection*>(p);
      c->on_io(evs[i].events);
      c->release();
    }
    if (n < max) return;
  }
}

void loop::attach(connection* c) {
  c->prev_ = nullptr;
  c->next_ = head_;
  if (head_) head_->prev_ = c;
  head_ = c;
}

void loop::detach(connection* c) {
  if (c->prev_) c->prev_->next_ = c->next_;
  else if (head_ == c) head_ = c->next_;
  if (c->next_) c->next_->prev_ = c->prev_;
  c->next_ = c->prev_ = nullptr;
}

void loop::arm_sweep() {
  // One timer per thread instead of one per connection: timeouts have a
  // 50 ms granularity and an idle connection carries no timer object.
  sweep_timer_.expires_after(std::chrono::milliseconds(50));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    sweep();
    arm_sweep();
  });
}

void loop::sweep() {
  const std::uint64_t now = now_ms();
  // Collect first: handling one deadline runs application callbacks, which
  // may close any other connection of this loop.
  std::vector<connection*> due;
  for (connection* c = head_; c; c = c->next_) {
    if (c->deadline() && c->deadline() <= now) {
      c->retain();
      due.push_back(c);
    }
  }
  for (connection* c : due) {
    c->on_deadline(now);
    c->release();
  }
}

inflater& loop::shared_inflater(int window_bits) {
  const int bits = window_bits >= 8 && window_bits <= 15 ? window_bits : 15;
  auto& i = inflaters_[bits - 8];
  if (!i) i = std::make_unique<inflater>(bits, true);
  return *i;
}

std::uint32_t loop::random_mask() {
  // xorshift64*: masks only need to be unpredictable to a script in a page
  // (RFC 6455 10.3), and the seed comes from std::random_device.
  prng_ ^= prng_ >> 12;
  prng_ ^= prng_ << 25;
  prng_ ^= prng_ >> 27;
  return static_cast<std::uint32_t>((prng_ * 0x2545F4914F6CDD1Dull) >> 32);
}

}  // namespace wirehub
