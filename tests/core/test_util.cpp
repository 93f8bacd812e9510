// test_util.cpp — see test_util.hpp.
#include "test_util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <sstream>

namespace wht {

// ----------------------------------------------------------------- encoding
static std::string base64(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string websocket_accept(std::string_view key) {
  std::string s(key);
  s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return base64(md, sizeof md);
}

std::string random_key() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    std::mt19937 g(static_cast<unsigned>(Clock::now().time_since_epoch().count()));
    for (auto& c : b) c = static_cast<unsigned char>(g());
  }
  return base64(b, sizeof b);
}

std::string pmd_compress(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_SYNC_FLUSH);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string("\x00\x00\xff\xff", 4)) == 0)
    out.resize(out.size() - 4);
  return out;
}

std::optional<std::string> pmd_decompress(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) return std::nullopt;
  std::string in(data);
  in.append("\x00\x00\xff\xff", 4);
  zs.next_in = reinterpret_cast<Bytef*>(&in[0]);
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char tmp[65536];
  int rc = Z_OK;
  while (zs.avail_in > 0 && out.size() < (256u << 20)) {
    zs.next_out = reinterpret_cast<Bytef*>(tmp);
    zs.avail_out = sizeof tmp;
    rc = inflate(&zs, Z_SYNC_FLUSH);
    out.append(tmp, sizeof tmp - zs.avail_out);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (rc == Z_BUF_ERROR && zs.avail_out != 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return std::nullopt;
  return out;
}

std::string encode_frame(uint8_t opcode, std::string_view payload, const FrameOpts& o) {
  std::string f;
  uint64_t len = o.length >= 0 ? static_cast<uint64_t>(o.length) : payload.size();
  f.push_back(static_cast<char>((o.fin ? 0x80 : 0) | ((o.rsv & 7) << 4) | (opcode & 0x0F)));
  uint8_t m = o.mask ? 0x80 : 0;
  if ((o.length_form == 0 && len < 126) && o.length_form != 16 && o.length_form != 64) {
    f.push_back(static_cast<char>(m | len));
  } else if ((o.length_form == 0 && len <= 0xFFFF) || o.length_form == 16) {
    f.push_back(static_cast<char>(m | 126));
    f.push_back(static_cast<char>((len >> 8) & 0xFF));
    f.push_back(static_cast<char>(len & 0xFF));
  } else {
    f.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((len >> (8 * i)) & 0xFF));
  }
  if (o.mask) {
    static std::mt19937 gen(12345);
    static std::mutex gen_mu;
    unsigned char key[4];
    {
      std::lock_guard<std::mutex> lk(gen_mu);
      for (auto& k : key) k = static_cast<unsigned char>(gen());
    }
    f.append(reinterpret_cast<char*>(key), 4);
    size_t start = f.size();
    f.append(payload.data(), payload.size());
    for (size_t i = 0; i < payload.size(); ++i) f[start + i] = static_cast<char>(f[start + i] ^ key[i & 3]);
  } else {
    f.append(payload.data(), payload.size());
  }
  return f;
}

std::string close_payload(int code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>((code >> 8) & 0xFF));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason.data(), reason.size());
  return p;
}

int Frame::close_code() const {
  if (payload.size() < 2) return 1005;
  return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

std::string Frame::close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

static std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

bool header_has_token(std::string_view value, std::string_view token) {
  std::string v = lower(value), t = lower(token);
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    if (trim(std::string_view(v).substr(pos, comma - pos)) == t) return true;
    pos = comma + 1;
  }
  return false;
}

static void parse_headers(std::string_view block, std::vector<std::pair<std::string, std::string>>& out) {
  size_t pos = 0;
  while (pos < block.size()) {
    size_t eol = block.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = block.size();
    std::string_view line = block.substr(pos, eol - pos);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos)
      out.emplace_back(std::string(line.substr(0, colon)), trim(line.substr(colon + 1)));
    pos = eol + 2;
  }
}

std::optional<std::string> head_header(std::string_view head, std::string_view name) {
  std::vector<std::pair<std::string, std::string>> hs;
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  parse_headers(head.substr(eol + 2), hs);
  std::string n = lower(name);
  for (auto& h : hs)
    if (lower(h.first) == n) return h.second;
  return std::nullopt;
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  std::string n = lower(name);
  for (auto& h : headers)
    if (lower(h.first) == n) return h.second;
  return std::nullopt;
}

std::string upgrade_request(std::string_view target, std::string_view extra, std::string_view key,
                            std::string_view version) {
  std::string r = "GET ";
  r += target;
  r += " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  if (!key.empty()) r += "Sec-WebSocket-Key: " + std::string(key) + "\r\n";
  if (!version.empty()) r += "Sec-WebSocket-Version: " + std::string(version) + "\r\n";
  r += extra;
  r += "\r\n";
  return r;
}

// ---------------------------------------------------------------- RawClient
RawClient::RawClient(int adopted_fd) : fd_(adopted_fd) {
  timeval tv{kTimeoutMs / 1000, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

RawClient::~RawClient() { close(); }

RawClient::RawClient(RawClient&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)), eof_(o.eof_) {
  o.fd_ = -1;
}

RawClient& RawClient::operator=(RawClient&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    buf_ = std::move(o.buf_);
    eof_ = o.eof_;
    o.fd_ = -1;
  }
  return *this;
}

bool RawClient::connect(int port, const char* host, int timeout_ms, int rcvbuf) {
  close();
  buf_.clear();
  eof_ = false;
  sockaddr_storage ss{};
  socklen_t sl = 0;
  int family = AF_INET;
  if (std::strchr(host, ':')) {
    family = AF_INET6;
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return false;
    sl = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return false;
    sl = sizeof *a;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Non-blocking connect with a deadline, then back to blocking.
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), sl);
  if (rc != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return false;
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) != 1) {
      ::close(fd);
      return false;
    }
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      ::close(fd);
      return false;
    }
  }
  ::fcntl(fd, F_SETFL, fl);
  timeval tv{kTimeoutMs / 1000, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  fd_ = fd;
  return true;
}

int RawClient::local_port() const {
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return -1;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

bool RawClient::send_raw(std::string_view bytes) {
  if (fd_ < 0) return false;
  size_t off = 0;
  auto deadline = Clock::now() + Ms(kTimeoutMs);
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) && Clock::now() < deadline)
      continue;
    return false;
  }
  return true;
}

int RawClient::recv_some(Clock::time_point deadline) {
  if (fd_ < 0) return -1;
  for (int spins = 0; spins < 1000; ++spins) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
    if (left < 0) left = 0;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r == 0) return -2;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return 1;
    }
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    if (errno == EINTR || errno == EAGAIN) continue;
    eof_ = true;
    return -1;
  }
  return -2;
}

bool RawClient::fill(size_t n, Clock::time_point deadline) {
  while (buf_.size() < n) {
    if (recv_some(deadline) != 1) return false;
  }
  return true;
}

std::optional<std::string> RawClient::read_http_head(int timeout_ms) {
  auto deadline = Clock::now() + Ms(timeout_ms);
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (buf_.size() > (1u << 20)) return std::nullopt;
    if (recv_some(deadline) != 1) return std::nullopt;
  }
  std::string head = buf_.substr(0, end + 4);
  buf_.erase(0, end + 4);
  return head;
}

HttpResponse RawClient::read_http_response(int timeout_ms) {
  HttpResponse r;
  auto deadline = Clock::now() + Ms(timeout_ms);
  auto head = read_http_head(timeout_ms);
  if (!head) return r;
  r.head = *head;
  size_t eol = head->find("\r\n");
  std::string status_line = head->substr(0, eol);
  // "HTTP/1.1 101 Switching Protocols"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return r;
  r.status = std::atoi(status_line.c_str() + 9);
  r.reason = status_line.size() > 13 ? status_line.substr(13) : "";
  parse_headers(std::string_view(*head).substr(eol + 2), r.headers);
  r.ok = true;
  if (r.status == 101) return r;
  if (auto cl = r.header("Content-Length")) {
    size_t n = static_cast<size_t>(std::strtoull(cl->c_str(), nullptr, 10));
    if (n > (64u << 20)) return r;
    fill(n, deadline);
    size_t take = std::min(n, buf_.size());
    r.body = buf_.substr(0, take);
    buf_.erase(0, take);
  } else if (auto te = r.header("Transfer-Encoding"); te && header_has_token(*te, "chunked")) {
    for (int chunks = 0; chunks < 10000; ++chunks) {
      size_t le;
      while ((le = buf_.find("\r\n")) == std::string::npos)
        if (recv_some(deadline) != 1) return r;
      size_t n = static_cast<size_t>(std::strtoull(buf_.c_str(), nullptr, 16));
      buf_.erase(0, le + 2);
      if (!fill(n + 2, deadline)) return r;
      r.body += buf_.substr(0, n);
      buf_.erase(0, n + 2);
      if (n == 0) break;
    }
  } else if (r.status >= 200 && r.status != 204 && r.status != 304) {
    // Body delimited by EOF.
    while (recv_some(deadline) == 1) {
    }
    r.body = buf_;
    buf_.clear();
  }
  return r;
}

HttpResponse RawClient::upgrade(std::string_view target, std::string_view extra, std::string_view key) {
  if (!send_raw(upgrade_request(target, extra, key))) return {};
  return read_http_response();
}

bool RawClient::open(int port, std::string_view target, std::string_view extra, const char* host,
                     HttpResponse* out) {
  if (!connect(port, host)) return false;
  std::string key = random_key();
  if (!send_raw(upgrade_request(target, extra, key))) return false;
  HttpResponse r = read_http_response();
  bool ok = r.ok && r.status == 101 && r.header("Sec-WebSocket-Accept") == websocket_accept(key);
  if (out) *out = std::move(r);
  return ok;
}

std::optional<Frame> RawClient::read_frame(int timeout_ms) {
  auto deadline = Clock::now() + Ms(timeout_ms);
  if (!fill(2, deadline)) return std::nullopt;
  auto b = [&](size_t i) { return static_cast<unsigned char>(buf_[i]); };
  Frame f;
  f.fin = (b(0) & 0x80) != 0;
  f.rsv = static_cast<uint8_t>((b(0) >> 4) & 7);
  f.opcode = b(0) & 0x0F;
  f.masked = (b(1) & 0x80) != 0;
  uint64_t len = b(1) & 0x7F;
  size_t hdr = 2;
  if (len == 126) {
    if (!fill(4, deadline)) return std::nullopt;
    len = (uint64_t(b(2)) << 8) | b(3);
    hdr = 4;
  } else if (len == 127) {
    if (!fill(10, deadline)) return std::nullopt;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | b(2 + i);
    hdr = 10;
  }
  if (len > (256u << 20)) return std::nullopt;
  size_t mask_at = hdr;
  if (f.masked) hdr += 4;
  if (!fill(hdr + len, deadline)) return std::nullopt;
  f.payload = buf_.substr(hdr, len);
  if (f.masked) f.mask_key = buf_.substr(mask_at, 4);
  if (f.masked)
    for (size_t i = 0; i < len; ++i) f.payload[i] = static_cast<char>(f.payload[i] ^ buf_[mask_at + (i & 3)]);
  buf_.erase(0, hdr + len);
  return f;
}

std::optional<Frame> RawClient::read_data_frame(int timeout_ms) {
  auto deadline = Clock::now() + Ms(timeout_ms);
  for (int i = 0; i < 10000; ++i) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
    auto f = read_frame(static_cast<int>(std::max<long long>(left, 0)));
    if (!f) return std::nullopt;
    if (f->opcode == OP_PING) {
      send_frame(OP_PONG, f->payload);
      continue;
    }
    if (f->opcode == OP_PONG) continue;
    return f;
  }
  return std::nullopt;
}

std::optional<Frame> RawClient::read_until_close(int timeout_ms, std::vector<Frame>* others) {
  auto deadline = Clock::now() + Ms(timeout_ms);
  for (int i = 0; i < 100000; ++i) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
    auto f = read_frame(static_cast<int>(std::max<long long>(left, 0)));
    if (!f) return std::nullopt;
    if (f->opcode == OP_CLOSE) return f;
    if (others) others->push_back(std::move(*f));
  }
  return std::nullopt;
}

bool RawClient::wait_eof(int timeout_ms) {
  if (fd_ < 0) return true;
  auto deadline = Clock::now() + Ms(timeout_ms);
  for (;;) {
    buf_.clear();
    int r = recv_some(deadline);
    if (r == 0 || r == -1) {
      close();  // like any peer that reads EOF: close our side too
      return true;
    }
    if (r == -2) return false;
  }
}

bool RawClient::quiet_for(int ms) {
  if (!buf_.empty()) return false;
  return recv_some(Clock::now() + Ms(ms)) == -2;
}

void RawClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void expect_failed_with(RawClient& c, int code, int timeout_ms) {
  std::vector<Frame> others;
  auto f = c.read_until_close(timeout_ms, &others);
  ASSERT_TRUE(f.has_value()) << "expected a close frame with code " << code
                             << " but the connection ended or timed out (eof=" << c.eof() << ")";
  EXPECT_EQ(f->close_code(), code) << "close reason: '" << f->close_reason() << "'";
  EXPECT_FALSE(f->masked) << "server frames must not be masked";
  EXPECT_LE(f->payload.size(), 125u);
  // Answer like a well-behaved client; the server must then close TCP.
  c.send_close(f->close_code() == 1005 ? 1000 : f->close_code());
  EXPECT_TRUE(c.wait_eof(timeout_ms)) << "server did not close the TCP connection";
}

// -------------------------------------------------------------- RawListener
RawListener::RawListener() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return;
  }
  socklen_t sl = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &sl);
  port_ = ntohs(a.sin_port);
  fd_ = fd;
}

RawListener::~RawListener() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<RawClient> RawListener::accept(int timeout_ms) {
  if (fd_ < 0) return std::nullopt;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
  int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return std::nullopt;
  return RawClient(c);
}

int unix_listen(const std::string& path) {
  ::unlink(path.c_str());
  const int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return -1;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd, 4) != 0) {
    ::close(lfd);
    return -1;
  }
  return lfd;
}

std::thread adopt_one(int lfd, wh_server* server, std::atomic<int>& rc) {
  return std::thread([lfd, server, &rc] {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, kTimeoutMs) != 1) return;
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) rc = wh_server_adopt(server, fd, nullptr, 0, nullptr, 0);
  });
}

int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t sl = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &sl);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool ipv6_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// ----------------------------------------------------------------- events
const char* event_name(int type) {
  switch (type) {
    case WH_EV_OPEN: return "OPEN";
    case WH_EV_MESSAGE: return "MESSAGE";
    case WH_EV_PING: return "PING";
    case WH_EV_PONG: return "PONG";
    case WH_EV_CLOSE: return "CLOSE";
    case WH_EV_DRAIN: return "DRAIN";
    case WH_EV_UPGRADE: return "UPGRADE";
    case WH_EV_HTTP: return "HTTP";
    case WH_EV_SERVER_CLOSED: return "SERVER_CLOSED";
    case WH_EV_ERROR: return "ERROR";
    default: return "?";
  }
}

void EventRecorder::set_handler(Handler h) {
  std::lock_guard<std::mutex> lk(handler_mu_);
  handler_ = std::move(h);
}

void EventRecorder::callback(wh_hub* hub, const wh_event* ev, void* user_data) {
  static_cast<EventRecorder*>(user_data)->handle(hub, *ev);
}

void EventRecorder::handle(wh_hub* hub, const wh_event& ev) {
  Handler h;
  {
    std::lock_guard<std::mutex> lk(handler_mu_);
    h = handler_;
  }
  if (h) h(hub, ev);
  Event e;
  e.type = ev.type;
  e.flags = ev.flags;
  e.conn = ev.conn;
  e.server = ev.server;
  e.request = ev.request;
  e.data_null = ev.data == nullptr;
  if (ev.data && ev.len) e.data.assign(ev.data, ev.len);
  e.code = ev.code;
  e.error = ev.error;
  e.status = ev.status;
  if (ev.headers && ev.headers_len) e.headers.assign(ev.headers, ev.headers_len);
  e.status_text_null = ev.status_text == nullptr;
  if (ev.status_text) e.status_text.assign(ev.status_text, ev.status_text_len);
  e.user_data = ev.user_data;
  if (ev.type == WH_EV_OPEN && ev.conn) e.remote_port = wh_conn_remote_port(ev.conn);
  e.thread = std::this_thread::get_id();
  {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

static bool matches(const Event& e, int type, wh_conn* conn) {
  return (type == 0 || e.type == type) && (conn == nullptr || e.conn == conn);
}

std::optional<Event> EventRecorder::wait_event(int type, wh_conn* conn, int timeout_ms) {
  std::optional<Event> found;
  wait_for(
      [&](const std::vector<Event>& evs) {
        for (auto& e : evs)
          if (matches(e, type, conn)) {
            found = e;
            return true;
          }
        return false;
      },
      timeout_ms);
  return found;
}

bool EventRecorder::wait_count(int type, size_t n, wh_conn* conn, int timeout_ms) {
  return wait_for(
      [&](const std::vector<Event>& evs) {
        size_t c = 0;
        for (auto& e : evs) c += matches(e, type, conn);
        return c >= n;
      },
      timeout_ms);
}

wh_conn* EventRecorder::wait_server_conn(int peer_port, int timeout_ms) {
  wh_conn* found = nullptr;
  wait_for(
      [&](const std::vector<Event>& evs) {
        for (auto& e : evs)
          if (e.type == WH_EV_OPEN && e.server != nullptr && e.remote_port == peer_port) {
            found = e.conn;
            return true;
          }
        return false;
      },
      timeout_ms);
  return found;
}

size_t EventRecorder::count(int type, wh_conn* conn) const {
  std::lock_guard<std::mutex> lk(mu_);
  size_t c = 0;
  for (auto& e : events_) c += matches(e, type, conn);
  return c;
}

std::vector<Event> EventRecorder::events(int type, wh_conn* conn) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Event> r;
  for (auto& e : events_)
    if (matches(e, type, conn)) r.push_back(e);
  return r;
}

std::vector<Event> EventRecorder::all() const { return events(0, nullptr); }

std::string EventRecorder::dump() const {
  std::ostringstream os;
  for (auto& e : all()) {
    os << event_name(e.type) << "(conn=" << e.conn << " server=" << e.server << " flags=" << e.flags
       << " code=" << e.code << " error=" << e.error << " status=" << e.status << " len=" << e.data.size();
    if (e.type == WH_EV_CLOSE || e.type == WH_EV_ERROR) os << " data='" << e.data << "'";
    os << ")\n";
  }
  return os.str();
}

void echo_handler(wh_hub*, const wh_event& ev) {
  if (ev.type == WH_EV_MESSAGE && ev.conn && ev.server)
    wh_conn_send(ev.conn, ev.data, ev.len, ev.flags & (WH_TEXT | WH_BINARY));
}

TestHub::TestHub(int io_threads, int flags) {
  wh_hub_options o{};
  o.size = sizeof o;
  o.io_threads = io_threads;
  o.flags = flags;
  o.event_mode = WH_EVENTS_CALLBACK;
  o.on_event = &EventRecorder::callback;
  o.user_data = &rec_;
  int rc = wh_hub_create(&o, &hub_);
  EXPECT_EQ(rc, 0) << "wh_hub_create: " << wh_err_name(rc);
  if (rc != 0) hub_ = nullptr;
}

TestHub::~TestHub() { destroy(); }

void OneConnection::open_with(const wh_server_options& o) {
  server_ = hub_.listen(o);
  ASSERT_NE(server_, nullptr);
  ASSERT_TRUE(c_.open(wh_server_port(server_)));
  conn_ = hub_.rec().wait_server_conn(c_.local_port());
  ASSERT_NE(conn_, nullptr);
}

int TestHub::destroy(int timeout_ms) {
  if (!hub_) return 0;
  int rc = wh_hub_destroy(hub_, timeout_ms);
  hub_ = nullptr;
  return rc;
}

wh_server* TestHub::listen(const wh_server_options& opts, int* err) {
  wh_server* s = nullptr;
  int rc = hub_ ? wh_server_listen(hub_, &opts, &s) : WH_EINVAL;
  if (err) *err = rc;
  if (!err) {
    EXPECT_EQ(rc, 0) << "wh_server_listen: " << wh_err_name(rc);
  }
  return rc == 0 ? s : nullptr;
}

wh_server_options server_options() {
  wh_server_options o{};
  o.size = sizeof o;
  o.host = "127.0.0.1";
  o.port = 0;
  return o;
}

wh_client_options client_options() {
  wh_client_options o{};
  o.size = sizeof o;
  return o;
}

std::string ws_url(int port, std::string_view path, std::string_view host) {
  std::string h(host);
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return "ws://" + h + ":" + std::to_string(port) + std::string(path);
}

bool eventually(const std::function<bool()>& cond, int timeout_ms) {
  auto deadline = Clock::now() + Ms(timeout_ms);
  for (;;) {
    if (cond()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Ms(5));
  }
}

std::string compressible_text(size_t n) {
  static const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta "};
  std::string s;
  s.reserve(n + 16);
  for (size_t i = 0; s.size() < n; ++i) s += words[(i * 7 + i / 5) % 6];
  s.resize(n);
  return s;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

}  // namespace wht
