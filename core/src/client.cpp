// client.cpp — a client connection from wh_connect() to WH_EV_OPEN:
// resolve, connect, TLS, send the upgrade, check the answer.
#include "client.hpp"

#include <fcntl.h>

#include "connection.hpp"
#include "hub.hpp"
#include "loop.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace wirehub {

namespace net = boost::asio;
namespace http = boost::beast::http;

client_handshake::~client_handshake() {
  if (tls) SSL_CTX_free(tls);
}

static SSL_CTX* make_client_ctx(const wh_client_options& o, int& err) {
  const wh_tls_options& t = o.tls;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    err = WH_ENOMEM;
    return nullptr;
  }
  auto refuse = [&](int code) -> SSL_CTX* {
    SSL_CTX_free(ctx);
    err = code;
    return nullptr;
  };
  auto known = [](int v) { return v == 0 || v == TLS1_2_VERSION || v == TLS1_3_VERSION; };
  if (!known(o.tls_min_version) || !known(o.tls_max_version) ||
      (o.tls_min_version && o.tls_max_version && o.tls_min_version > o.tls_max_version))
    return refuse(WH_EINVAL);
  SSL_CTX_set_min_proto_version(ctx, o.tls_min_version ? o.tls_min_version : TLS1_2_VERSION);
  if (o.tls_max_version) SSL_CTX_set_max_proto_version(ctx, o.tls_max_version);
  if (o.tls_ciphers && SSL_CTX_set_cipher_list(ctx, o.tls_ciphers) != 1) return refuse(WH_EINVAL);
  // A client certificate, for servers that ask for one (mutual TLS).
  if ((t.cert_file != nullptr) != (t.key_file != nullptr)) return refuse(WH_EINVAL);
  if (t.cert_file && (SSL_CTX_use_certificate_chain_file(ctx, t.cert_file) != 1 ||
                      SSL_CTX_use_PrivateKey_file(ctx, t.key_file, SSL_FILETYPE_PEM) != 1 ||
                      SSL_CTX_check_private_key(ctx) != 1))
    return refuse(WH_ETLS);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (t.ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, t.ca_file, nullptr) != 1) {
      SSL_CTX_free(ctx);
      err = WH_ETLS;
      return nullptr;
    }
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  SSL_CTX_set_verify(ctx, t.insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  return ctx;
}

int resolve_client_config(const wh_client_options& o, endpoint_config& cfg) {
  // A client may leave client_max_window_bits out of its offer (-1); a
  // server has no such setting.
  wh_deflate_options d = o.deflate;
  const bool no_client_bits = d.client_max_window_bits == -1;
  if (no_client_bits) d.client_max_window_bits = 0;
  int rc = resolve_config(o.limits, d, cfg);
  if (rc) return rc;
  if (no_client_bits) cfg.deflate.client_max_window_bits = kNoClientWindowBits;
  cfg.deflate.request_server_no_context_takeover = o.deflate.server_no_context_takeover > 0;
  rc = resolve_timeouts(o.idle_timeout_ms, o.message_timeout_ms, cfg);
  if (rc) return rc;
  rc = resolve_fragments(o.max_fragments, cfg);
  if (rc) return rc;
  rc = resolve_chunks(o.max_buffered_chunks, cfg);
  if (rc) return rc;
  if (o.flags & ~(WH_CLIENT_SKIP_UTF8 | WH_CLIENT_NO_AUTO_PONG | WH_CLIENT_WS_DEFLATE_ANSWER | WH_CLIENT_BARE_CLOSE |
                  WH_CLIENT_HOST_MASK))
    return WH_EINVAL;
  cfg.bare_close = (o.flags & WH_CLIENT_BARE_CLOSE) != 0;
  cfg.host_mask = (o.flags & WH_CLIENT_HOST_MASK) != 0;
  cfg.deflate.ws_answer_rules = (o.flags & WH_CLIENT_WS_DEFLATE_ANSWER) != 0;
  cfg.deflate.refuse_client_no_context_takeover = o.deflate.client_no_context_takeover < 0;
  cfg.validate_utf8 = !(o.flags & WH_CLIENT_SKIP_UTF8);
  cfg.auto_pong = !(o.flags & WH_CLIENT_NO_AUTO_PONG);
  return 0;
}

int prepare_client(const char* url, const wh_client_options& o, endpoint_config& cfg, client_handshake& hs) {
  std::string why;
  if (!handshake::parse_url(url, hs.url, why)) return WH_EURL;
  int rc = resolve_client_config(o, cfg);
  if (rc) return rc;
  if (o.subprotocols) {
    // Validate: tokens, no duplicates (ws: 'An invalid or duplicated subprotocol was specified').
    std::string_view list = o.subprotocols;
    std::vector<std::string> seen;
    while (!list.empty()) {
      auto comma = list.find(',');
      auto item = handshake::trim(list.substr(0, comma));
      if (item.empty()) return WH_EINVAL;
      for (char c : item)
        if (c <= 0x20 || c >= 0x7f || std::string_view("()<>@,;:\\\"/[]?={}").find(c) != std::string_view::npos)
          return WH_EINVAL;
      for (auto& s : seen)
        if (s == item) return WH_EINVAL;
      seen.emplace_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    hs.protocols = o.subprotocols;
  }
  // Both are copied into the request as they are: no CR/LF smuggled in.
  if (o.headers && !handshake::valid_header_block(o.headers)) return WH_EINVAL;
  if (o.origin && !handshake::valid_header_value(o.origin)) return WH_EINVAL;
  if (o.headers) hs.headers = o.headers;
  if (!hs.headers.empty() && hs.headers.size() >= 2 && hs.headers.compare(hs.headers.size() - 2, 2, "\r\n") != 0)
    hs.headers += "\r\n";
  if (o.origin) hs.origin = o.origin;
  if (cfg.deflate.enabled) hs.offer = pmd_client_offer(cfg.deflate);
  if (o.key && !handshake::valid_key(o.key)) return WH_EINVAL;
  hs.key = o.key ? std::string(o.key) : handshake::make_key();
  if (hs.url.tls) {
    int err = 0;
    hs.tls = make_client_ctx(o, err);
    if (!hs.tls) return err;
    hs.verify = !o.tls.insecure;
    hs.server_name = o.tls.server_name ? o.tls.server_name : hs.url.host;
  }
  return 0;
}

// Asio's range connect reports a socket it could not open as
// operation_aborted, without the reason; a process out of descriptors is
// told so (WH_EMFILE), anything else stays WH_EIO.
static int socket_failure_code() {
  const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    ::close(probe);
    return WH_EIO;
  }
  return errno == EMFILE || errno == ENFILE ? WH_EMFILE : WH_EIO;
}

void connection::start_client(std::unique_ptr<client_handshake> hs) {
  client_handshake& first = *(side().chs = std::move(hs));
  rx_.configure(protocol::role::client, *cfg_);
  loop_.attach(this);
  state_ = state::connecting;
  deadline_ = now_ms() + cfg_->handshake_timeout_ms;
  retain();
  if (!first.url.unix_path.empty()) {
    // Posted, as a resolution is: a failure is never reported from inside
    // wh_connect() when it is called on this loop's thread.
    loop_.post([this] {
      connect_unix();
      release();
    });
    return;
  }
  auto on_resolved = [this](const boost::system::error_code& ec, net::ip::tcp::resolver::results_type results) {
        if (state_ == state::closed) {
          release();
          return;
        }
        if (ec) {
          client_fail(WH_ERESOLVE, "getaddrinfo " + ec.message() + " " + chs()->url.host);
          release();
          return;
        }
        net::async_connect(chs()->sock, results,
                           [this](const boost::system::error_code& ec2, const net::ip::tcp::endpoint& ep) {
                             if (state_ != state::closed) {
                               if (ec2) {
                                 const int code = ec2 == net::error::connection_refused ? WH_ECONNREFUSED
                                                  : ec2 == net::error::timed_out        ? WH_ETIMEDOUT
                                                  : ec2 == net::error::operation_aborted ? socket_failure_code()
                                                                                         : WH_EIO;
                                 client_fail(code, "connect " + ec2.message() + " " + ep.address().to_string());
                               } else {
                                 (void)ep;
                                 set_cloexec(chs()->sock.native_handle());
                                 client_connected();
                                 if (fd_ >= 0) {
                                   take_peer_address();
                                   take_local_address();
                                 }
                               }
                             }
                             release();
                           });
  };
  if (loop_.is_host_thread()) {
    // Asio resolves on a thread of its own and then posts to a scheduler
    // that only wakes a thread blocked in it, which a host loop never is.
    // So an address is taken as is, and a name resolves on a thread of ours
    // that comes back through the loop's inbox.
    boost::system::error_code ec;
    auto numeric = first.resolver.resolve(first.url.host, first.url.port,
                                          net::ip::tcp::resolver::numeric_host, ec);
    if (!ec) {
      loop_.post([numeric = std::move(numeric), on_resolved]() mutable { on_resolved({}, std::move(numeric)); });
      return;
    }
    std::thread([ref = loop_.remote(), host = first.url.host, port = first.url.port, on_resolved]() mutable {
      net::io_context ctx;
      net::ip::tcp::resolver r(ctx);
      boost::system::error_code ec;
      auto results = r.resolve(host, port, ec);
      std::lock_guard<std::mutex> lk(ref->mu);
      if (ref->l)  // else the hub is gone, and this connection with it
        ref->l->post([ec, results = std::move(results), on_resolved]() mutable { on_resolved(ec, std::move(results)); });
    }).detach();
    return;
  }
  first.resolver.async_resolve(first.url.host, first.url.port, std::move(on_resolved));
}

void connection::start_adopted_client(std::string subprotocol, std::string extensions, const deflate_params* pmd,
                                      std::string head) {
  rx_.configure(protocol::role::client, *cfg_);
  loop_.attach(this);
  prepare_socket(fd_);
  take_peer_address();
  take_local_address();
  loop_.watch(fd_, this);
  state_ = state::handshaking;
  become_open(std::move(subprotocol), std::move(extensions), pmd, {});
  // Frames the server sent right behind its answer, read by the host.
  if (state_ == state::open && !head.empty()) rx_leftover(std::move(head));
}

void connection::connect_unix() {
  if (state_ == state::closed) return;
  const std::string& path = chs()->url.unix_path;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());  // parse_url bounds its length
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int e = errno;
    client_fail(e == EMFILE || e == ENFILE ? WH_EMFILE : WH_EIO, std::string("socket ") + std::strerror(e));
    return;
  }
  // A local connect completes (or fails) at once; EAGAIN is a full backlog.
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    ::close(fd);
    client_fail(e == ECONNREFUSED || e == ENOENT ? WH_ECONNREFUSED : WH_EIO,
                "connect " + std::string(std::strerror(e)) + " " + path);
    return;
  }
  fd_ = fd;
  client_connected_fd();
}

void connection::client_connected() {
  boost::system::error_code ec;
  fd_ = chs()->sock.release(ec);
  if (ec || fd_ < 0) {
    fd_ = -1;
    client_fail(WH_EIO, "connect: " + ec.message());
    return;
  }
  client_connected_fd();
}

void connection::client_connected_fd() {
  prepare_socket(fd_);
  loop_.watch(fd_, this);
  client_handshake& hs = *chs();
  if (hs.tls) {
    ssl_ = SSL_new(hs.tls);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
      client_fail(WH_ETLS, "TLS setup failed");
      return;
    }
    SSL_set_connect_state(ssl_);
    const std::string& name = hs.server_name;
    boost::system::error_code aec;
    net::ip::make_address(name, aec);
    if (aec) SSL_set_tlsext_host_name(ssl_, name.c_str());  // SNI is for names only
    if (hs.verify) {
      if (aec) SSL_set1_host(ssl_, name.c_str());
      else X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str());
    }
    tls_handshaking_ = true;
    state_ = state::handshaking;
    tls_handshake_step();
    return;
  }
  client_send_request();
}

void connection::client_send_request() {
  client_handshake& hs = *chs();
  state_ = state::handshaking;
  hs.parser.header_limit(static_cast<std::uint32_t>(cfg_->max_header_bytes));
  hs.parser.body_limit(64 * 1024);
  wbuf_.append(handshake::client_request(hs.url.host_header, hs.url.target, hs.key, hs.protocols, hs.offer,
                                         hs.origin, hs.headers));
  mark_dirty();
  on_readable();
}

void connection::client_fail(int error, std::string message) {
  if (state_ == state::closed) return;
  set_close_reason(std::move(message));
  finish(error);
}

void capture_response(client_handshake& hs) {
  const auto& res = hs.parser.get();
  hs.status = res.result_int();
  // From the status line itself: Beast's reason() answers the standard text
  // for an empty one, where Node (and so ws) gives "". The parser has
  // checked the line: "HTTP/1.1 NNN" then, after a space, the text.
  const std::string_view head(hs.buf);
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  hs.reason.assign(line.size() > 13 ? line.substr(13) : std::string_view());
  hs.response_headers.clear();
  for (const auto& f : res) {
    hs.response_headers.append(f.name_string().data(), f.name_string().size());
    hs.response_headers += ": ";
    hs.response_headers.append(f.value().data(), f.value().size());
    hs.response_headers += "\r\n";
  }
  hs.body = res.body();
}

void connection::client_handshake_input(const std::uint8_t* p, std::size_t n) {
  client_handshake& hs = *chs();
  hs.buf.append(reinterpret_cast<const char*>(p), n);
  boost::beast::error_code ec;
  while (!hs.parser.is_done()) {
    std::size_t used = hs.parser.put(net::buffer(hs.buf.data() + hs.consumed, hs.buf.size() - hs.consumed), ec);
    hs.consumed += used;
    if (ec == http::error::need_more) return;
    if (ec) {
      if (hs.parser.is_header_done() && hs.parser.get().result_int() != 101) break;  // body trouble: report the status
      client_fail(WH_EHANDSHAKE, "Invalid HTTP response: " + ec.message());
      return;
    }
    if (used == 0) return;
    if (hs.parser.is_header_done() && hs.parser.get().result_int() == 101) break;
  }
  const auto& res = hs.parser.get();
  const int status = res.result_int();
  capture_response(hs);  // reported with WH_EV_CLOSE if a check below fails
  if (status != 101) {
    client_fail(WH_ESTATUS, "Unexpected server response: " + std::to_string(status));
    return;
  }
  auto field = [&](http::field f) {
    std::string out;
    for (auto it = res.find(f); it != res.end() && it->name() == f; ++it) {
      if (!out.empty()) out += ", ";
      out.append(it->value().data(), it->value().size());
    }
    return out;
  };
  if (!handshake::list_contains(field(http::field::upgrade), "websocket")) {
    client_fail(WH_EHANDSHAKE, "Invalid Upgrade header");
    return;
  }
  if (!handshake::list_contains(field(http::field::connection), "upgrade")) {
    client_fail(WH_EHANDSHAKE, "Invalid Connection header");
    return;
  }
  if (std::string(handshake::trim(field(http::field::sec_websocket_accept))) != handshake::accept_key(hs.key)) {
    client_fail(WH_EHANDSHAKE, "Invalid Sec-WebSocket-Accept header");
    return;
  }
  std::string proto(handshake::trim(field(http::field::sec_websocket_protocol)));
  if (!proto.empty() && (hs.protocols.empty() || !handshake::list_contains(hs.protocols, proto) ||
                         proto.find(',') != std::string::npos)) {
    client_fail(WH_EHANDSHAKE, "Server sent an invalid subprotocol");
    return;
  }
  if (proto.empty() && !hs.protocols.empty()) {
    client_fail(WH_EHANDSHAKE, "Server sent no subprotocol");
    return;
  }
  std::string ext(handshake::trim(field(http::field::sec_websocket_extensions)));
  deflate_params params;
  bool pmd = false;
  if (!ext.empty()) {
    std::string why;
    if (hs.offer.empty() || !pmd_client_accept(ext, cfg_->deflate, params, why)) {
      client_fail(WH_EHANDSHAKE, "Server indicated an extension that was not requested" +
                                     (why.empty() ? std::string() : ": " + why));
      return;
    }
    pmd = true;
  }
  std::string leftover = hs.buf.substr(hs.consumed);
  capture_response(hs);
  const std::string response_headers = std::move(hs.response_headers);
  const std::string reason = std::move(hs.reason);
  side_->chs.reset();
  become_open(std::move(proto), std::move(ext), pmd ? &params : nullptr, response_headers, reason);
  if (state_ != state::open) return;
  if (!leftover.empty()) {
    rx_leftover(std::move(leftover));
  }
}

}  // namespace wirehub
