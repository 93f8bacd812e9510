// local_address.cpp — a connection's own end of its socket (wh_conn_local_address).
//
// Every connection would otherwise carry the 17 bytes of a binary address
// and a pointer to its text, as it does for its peer. But local addresses
// are this host's own: an interface or two and the loopbacks, each shared by
// every connection made on it. So each is kept once, process-wide, with its
// text, and a connection holds its number (2 bytes) beside its port.
#include "connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace wirehub {

namespace {

// Family (4 or 6), then the address (4 or 16 bytes, the rest zero).
using local_key = std::array<std::uint8_t, 17>;

class local_table {
 public:
  // Numbers 1..max_entries name entries; 0 is none; spill says the
  // connection's text is kept for it alone. Past max_entries (an AnyIP
  // route or transparent proxying can make local addresses as many as the
  // peers) new addresses spill instead of growing the table for good.
  static constexpr std::size_t chunk_size = 64, chunks = 64;
  static constexpr std::uint16_t max_entries = chunk_size * chunks - 1;
  static constexpr std::uint16_t spill = 0xFFFF;

  std::uint16_t intern(const local_key& k) {
    if (spill_all_.load(std::memory_order_relaxed)) return spill;
    // Most connections of a thread are made on the address its previous one
    // was: no lock for them.
    thread_local local_key last_key{};
    thread_local std::uint16_t last = 0;
    if (last && k == last_key) return last;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = numbers_.find(k);
    std::uint16_t n;
    if (it != numbers_.end()) {
      n = it->second;
    } else {
      if (count_ == max_entries) return spill;
      const std::size_t i = count_;
      if (!chunk_[i / chunk_size]) chunk_[i / chunk_size] = std::make_unique<entry[]>(chunk_size);
      format(k, chunk_[i / chunk_size][i % chunk_size].text);
      n = static_cast<std::uint16_t>(++count_);
      numbers_.emplace(k, n);
    }
    last_key = k;
    last = n;
    return n;
  }

  // Entries never move nor go, so the text outlives every connection. The
  // caller got n through the connection's release store, after the entry
  // was written under the lock.
  const char* text(std::uint16_t n) const {
    const std::size_t i = n - 1u;
    return chunk_[i / chunk_size][i % chunk_size].text;
  }

  void spill_text(const connection* c, const local_key& k) {
    char t[46];
    format(k, t);
    std::lock_guard<std::mutex> lk(mu_);
    spilled_[c] = t;
  }
  const char* spilled_text(const connection* c) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = spilled_.find(c);
    return it == spilled_.end() ? "" : it->second.c_str();
  }
  void forget(const connection* c) {
    std::lock_guard<std::mutex> lk(mu_);
    spilled_.erase(c);
  }
  std::size_t spilled_count() {
    std::lock_guard<std::mutex> lk(mu_);
    return spilled_.size();
  }
  // Tests: as if the table were full, whatever it holds.
  void spill_all(bool on) { spill_all_.store(on, std::memory_order_relaxed); }

  static void format(const local_key& k, char* out) {
    out[0] = 0;
    ::inet_ntop(k[0] == 4 ? AF_INET : AF_INET6, k.data() + 1, out, 46);
  }

 private:
  struct entry {
    char text[46];
  };
  std::mutex mu_;
  std::map<local_key, std::uint16_t> numbers_;
  std::unique_ptr<entry[]> chunk_[chunks];
  std::size_t count_ = 0;
  std::unordered_map<const connection*, std::string> spilled_;
  std::atomic<bool> spill_all_{false};
};

// Never destroyed: a connection may be freed after static destructors ran
// (a host that exits with its hub still up).
local_table& table() {
  static local_table* t = new local_table;
  return *t;
}

// An IPv4 peer of a dual-stack socket reaches an IPv4-mapped address of
// ours: shown as IPv4, as the peer's is (take_peer_address).
bool key_of(const sockaddr* sa, local_key& k, std::uint16_t& port) {
  k.fill(0);
  if (sa->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    k[0] = 4;
    std::memcpy(k.data() + 1, &a->sin_addr, 4);
    port = ntohs(a->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      k[0] = 4;
      std::memcpy(k.data() + 1, &a->sin6_addr.s6_addr[12], 4);
    } else {
      k[0] = 6;
      std::memcpy(k.data() + 1, &a->sin6_addr, 16);
    }
    return true;
  }
  return false;  // AF_UNIX: none, as for the peer
}

}  // namespace

std::uint32_t connection::shared_local(const sockaddr* sa) {
  local_key k;
  std::uint16_t port = 0;
  if (!key_of(sa, k, port)) return 0;
  const std::uint16_t n = table().intern(k);
  return n == local_table::spill ? 0 : (std::uint32_t{n} << 16) | port;
}

void connection::take_local_address(std::uint32_t known) {
  if (!known) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
    local_key k;
    std::uint16_t port = 0;
    if (!key_of(reinterpret_cast<const sockaddr*>(&ss), k, port)) return;
    const std::uint16_t n = table().intern(k);
    if (n == local_table::spill) table().spill_text(this, k);
    known = (std::uint32_t{n} << 16) | port;
  }
  local_.store(known, std::memory_order_release);
}

const char* connection::local_address() const {
  const std::uint16_t n = static_cast<std::uint16_t>(local_.load(std::memory_order_acquire) >> 16);
  if (n == 0) return "";  // none yet (a client not connected), or not IP
  if (n == local_table::spill) return table().spilled_text(this);
  return table().text(n);
}

void connection::forget_local_address() {
  if ((local_.load(std::memory_order_relaxed) >> 16) == local_table::spill) table().forget(this);
}

void local_address_spill_for_test(bool on) { table().spill_all(on); }
std::size_t local_address_spilled_for_test() { return table().spilled_count(); }

}  // namespace wirehub
