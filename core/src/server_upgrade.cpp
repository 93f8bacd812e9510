// server_upgrade.cpp — a server connection from accept() to WH_EV_OPEN:
// read the HTTP request, let the application decide, answer it.
#include "client.hpp"
#include "connection.hpp"
#include "hub.hpp"
#include "loop.hpp"
#include "server.hpp"

#include <boost/asio/buffer.hpp>

#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

namespace wirehub {

namespace http = boost::beast::http;

// Peer address as text; an IPv4 peer of a dual-stack socket shows as IPv4.
void peer_address(int fd, char* out, std::size_t n, std::uint16_t& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  out[0] = 0;
  port = 0;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, out, n);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) ::inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], out, n);
    else ::inet_ntop(AF_INET6, &a->sin6_addr, out, n);
  }
}

void connection::take_peer_address() {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  remote_port_ = 0;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  store_peer(reinterpret_cast<const sockaddr*>(&ss));
}

void connection::store_peer(const sockaddr* sa) {
  std::uint8_t family = 0;
  remote_port_ = 0;
  if (sa->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(peer_addr_, &a->sin_addr, 4);
    remote_port_ = ntohs(a->sin_port);
    family = 4;
  } else if (sa->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    remote_port_ = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      std::memcpy(peer_addr_, &a->sin6_addr.s6_addr[12], 4);
      family = 4;
    } else {
      std::memcpy(peer_addr_, &a->sin6_addr, 16);
      family = 6;
    }
  }
  peer_family_.store(family, std::memory_order_release);
}

void connection::set_remote_address(const char* text) {
  // As the 46-byte field it replaces kept it: at most 45 characters.
  const std::size_t n = ::strnlen(text, 45);
  char* t = new char[n + 1];
  std::memcpy(t, text, n);
  t[n] = 0;
  delete[] peer_text_.exchange(t, std::memory_order_acq_rel);
}

void connection::format_peer(char* out) const {
  out[0] = 0;
  switch (peer_family_.load(std::memory_order_acquire)) {
    case 4:
      ::inet_ntop(AF_INET, peer_addr_, out, 46);
      break;
    case 6:
      ::inet_ntop(AF_INET6, peer_addr_, out, 46);
      break;
    default:
      break;
  }
}

const char* connection::remote_address() const {
  if (char* t = peer_text_.load(std::memory_order_acquire)) return t;
  if (peer_family_.load(std::memory_order_acquire) == 0) return "";  // none yet (a client not connected)
  char buf[46];
  format_peer(buf);
  const std::size_t n = std::strlen(buf);
  char* mine = new char[n + 1];
  std::memcpy(mine, buf, n + 1);
  char* expected = nullptr;
  // Two threads asking at once: one text is kept, the same for both.
  if (peer_text_.compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) return mine;
  delete[] mine;
  return expected;
}

void prepare_socket(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int fl = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void connection::start_server(server& s, const std::string* head, const char* remote_address, int remote_port) {
  server_ = &s;
  cfg_ = &s.config();
  rx_.configure(protocol::role::server, *cfg_);
  const bool adopted = head != nullptr;
  if (remote_address) {
    set_remote_address(remote_address);
    remote_port_ = static_cast<std::uint16_t>(remote_port);
  } else if (adopted) {
    take_peer_address();
  }
  // An adopted socket was accepted by the host, on an address of its own.
  take_local_address(adopted ? 0 : s.shared_local());
  prepare_socket(fd_);
  loop_.attach(this);
  loop_.watch(fd_, this);
  state_ = state::handshaking;
  deadline_ = now_ms() + cfg_->handshake_timeout_ms;
  server_handshake& shs = *(side().shs = std::make_unique<server_handshake>());
  shs.parser.header_limit(static_cast<std::uint32_t>(cfg_->max_header_bytes));
  shs.parser.eager(false);
  if (s.closing()) {
    finish(WH_ESHUTDOWN);
    return;
  }
  if (s.tls()) {
    ssl_ = SSL_new(s.tls());
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
      finish(WH_ETLS);
      return;
    }
    SSL_set_accept_state(ssl_);
    tls_handshaking_ = true;
    tls_handshake_step();
    return;
  }
  if (head && !head->empty()) {
    server_handshake_input(reinterpret_cast<const std::uint8_t*>(head->data()), head->size());
  }
  // Read now: the request may already be here, and the reactor only reports
  // new readiness (edge-triggered).
  on_readable();
}

void connection::server_handshake_input(const std::uint8_t* p, std::size_t n) {
  server_handshake& hs = *shs();
  hs.buf.append(reinterpret_cast<const char*>(p), n);
  if (hs.pending) return;
  boost::beast::error_code ec;
  while (!hs.parser.is_header_done()) {
    std::size_t used =
        hs.parser.put(boost::asio::buffer(hs.buf.data() + hs.consumed, hs.buf.size() - hs.consumed), ec);
    hs.consumed += used;
    if (ec == http::error::need_more) {
      // Beast wants the unparsed tail presented again with more bytes.
      return;
    }
    if (ec) {
      const bool too_big = ec == http::error::header_limit || ec == http::error::buffer_overflow;
      write_raw_and_close(too_big ? handshake::response_status(431, {}, "Request header fields too large\n")
                                  : handshake::response_status(400, {}, "Malformed HTTP request\n"));
      return;
    }
    if (used == 0) return;
  }

  auto* req = new request();
  const int flags = server_->flags();
  // Raw: the host validates the upgrade itself and answers what it finds
  // wrong in its own words (the Node package answers as ws does).
  req->raw = (flags & WH_SERVER_RAW_UPGRADE) && (flags & WH_SERVER_UPGRADE_HOOK);
  auto kind = req->raw ? handshake::classify_raw(hs.parser.get(), req->info)
                       : handshake::classify(hs.parser.get(), req->info);
  if (char* given = peer_text_.load(std::memory_order_acquire)) {
    req->info.remote_address = given;
  } else {
    // Formatted for the request only: kept, it would cost every connection.
    char addr[46];
    format_peer(addr);
    req->info.remote_address = addr;
  }
  req->info.remote_port = remote_port_;
  switch (kind) {
    case handshake::request_kind::bad_request:
      delete req;
      write_raw_and_close(handshake::response_status(400, {}, "Invalid WebSocket upgrade request\n"));
      return;
    case handshake::request_kind::bad_version:
      delete req;
      write_raw_and_close(handshake::response_status(426, "Sec-WebSocket-Version: 13\r\n",
                                                     "Unsupported WebSocket version: use 13\n"));
      return;
    case handshake::request_kind::plain_http:
      if (!(flags & WH_SERVER_HTTP)) {
        delete req;
        write_raw_and_close(handshake::response_status(426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                                                       "Upgrade Required\n"));
        return;
      }
      break;
    case handshake::request_kind::websocket:
      if (server_->closing() || server_->at_limit()) {
        delete req;
        write_raw_and_close(handshake::response_status(503, {}, "Server unavailable\n"));
        return;
      }
      req->upgrade = true;
      if (!(flags & WH_SERVER_UPGRADE_HOOK)) {
        answer_upgrade(*req, nullptr, {}, nullptr, 101, {});
        delete req;
        return;
      }
      break;
  }
  // The application answers, from any thread, through wh_request_*.
  retain();  // released when the request is answered
  req->conn = this;
  hs.pending = req;
  wh_event ev{};
  ev.type = req->upgrade ? WH_EV_UPGRADE : WH_EV_HTTP;
  ev.server = reinterpret_cast<wh_server*>(server_);
  ev.request = reinterpret_cast<wh_request*>(req);
  ev.user_data = server_->user_data();
  owner_hub().emit(ev);
}

void connection::answer_upgrade(request& req, const std::string* subprotocol, std::string headers, void* user_data,
                                int status, std::string body) {
  if (state_ != state::handshaking || !shs()) return;
  server_handshake& hs = *shs();
  // Answered later by the application: reading may have stopped meanwhile
  // (at the FIN, or with enough buffered), resume it.
  // Answered at once (no hook): we are inside on_readable, which goes on.
  const bool resume = hs.pending != nullptr;
  hs.pending = nullptr;
  if (status != 101 || !req.upgrade) {
    write_raw_and_close(handshake::response_status(status, headers, body));
    if (resume) resume_reading();
    return;
  }
  if (hs.peer_eof && req.dropped) {
    // As ws's completeUpgrade: a client that is no longer readable is
    // dropped once accepted, with nothing written. (A FIN that came after
    // the host's accept returned opens the connection, which then closes.)
    finish(0);
    return;
  }
  if (server_->closing() || server_->at_limit()) {
    write_raw_and_close(handshake::response_status(503, {}, "Server unavailable\n"));
    if (resume) resume_reading();
    return;
  }
  std::string proto = subprotocol ? *subprotocol : handshake::select_subprotocol(server_->subprotocols(), req.info.protocols);
  deflate_params params;
  std::string ext;
  bool pmd = cfg_->deflate.enabled && pmd_negotiate_server(req.info.extensions, cfg_->deflate, params, ext);
  wbuf_.append(handshake::response_101(req.info.key, proto, pmd ? ext : std::string(), headers));
  mark_dirty();
  std::string leftover = hs.buf.substr(hs.consumed);
  side_->shs.reset();  // the parser and request bytes are not needed any more
  if (user_data) set_user_data(user_data);
  become_open(std::move(proto), pmd ? std::move(ext) : std::string(), pmd ? &params : nullptr);
  if (state_ != state::open) return;
  // Frames the client sent right behind its request.
  rx_leftover(std::move(leftover));
  if (resume && state_ != state::closed) resume_reading();
}

}  // namespace wirehub
