// cluster_load: the load generator of bench/cluster (pub/sub over K nodes).
//
// Raw sockets and epoll, no WebSocket library, so wirehub and Socket.IO are
// measured with one yardstick. It speaks two protocols over plain ws://:
//
//   wirehub (bench/cluster/node_server.c), text messages:
//     client "S <topic>"            subscribe; the node answers "s"
//     client "P <topic> <payload>"  publish <payload> to <topic>
//     node   "<payload>"            a message of a topic this conn joined
//   socketio (bench/cluster/socketio_node.js), Engine.IO v4 / Socket.IO v5
//   packets, one per WebSocket frame:
//     GET /socket.io/?EIO=4&transport=websocket; server "0{...}" (open),
//     client "40" (join "/"), server "40{...}"; server "2" (ping), client "3"
//     client 420["s","<topic>"]     join the room; the node acks with 430[]
//     client 42["p","<topic>","<payload>"]  io.to(topic).emit("m", payload)
//     node   42["m","<payload>"]
//
// The payload is 64 bytes of ASCII: "<node>:<send time, ns, CLOCK_MONOTONIC>:"
// padded with 'x', so a subscriber measures publish-to-receive latency and
// tells a local delivery (publisher on its own node) from a remote one.
//
// It opens --subs subscriber connections, subscriber i on node i % K and on
// topic i % T, and --pubs-per-node publishers on every node. Then, for each
// rate of --rates (publishes per second, all publishers together): publish at
// that rate for --warmup s, measure for --duration s, stop publishing and let
// what is in flight arrive (at most 3 s). One "step key=value ..." line per
// rate: delivered/s, expected/s, latency percentiles (all, local, remote),
// losses, and the CPU seconds per second of every --pid NAME=PID (and of
// itself, "load") over exactly the measured window, read from /proc, with
// the machine's busy % from /proc/stat. With --stop-p99-ms the ramp stops
// after the first step above it, or one that lost messages, or one where the
// publishers skipped more than 0.1 % of their sends (a publisher more than
// 20 ms behind its schedule skips rather than bursts: a starved load
// generator must not pass for a slow server).
//
// Every wait is bounded; --max-seconds (default 240) ends the process.
//
// Build: g++ -O2 -std=c++17 -pthread -o cluster_load cluster_load.cpp

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

enum class Proto { Wirehub, SocketIO };

constexpr size_t kPayload = 64;
constexpr size_t kMaxWbuf = 4 << 20;  // a publisher this far behind skips sends

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "cluster_load: %s: %s\n", what, errno ? strerror(errno) : "failed");
  exit(1);
}

// Latency histogram: 1 us buckets below 10 ms, 100 us buckets up to 10 s.
struct Hist {
  static constexpr int kFine = 10000, kCoarse = 100000;
  std::vector<uint64_t> b = std::vector<uint64_t>(kFine + kCoarse + 1, 0);
  uint64_t n = 0, max_us = 0;
  void add(uint64_t us) {
    size_t i = us < uint64_t(kFine) ? us : std::min<uint64_t>(kFine + (us - kFine) / 100, kFine + kCoarse);
    ++b[i];
    ++n;
    if (us > max_us) max_us = us;
  }
  void merge(const Hist& o) {
    for (size_t i = 0; i < b.size(); ++i) b[i] += o.b[i];
    n += o.n;
    max_us = std::max(max_us, o.max_us);
  }
  void clear() {
    std::fill(b.begin(), b.end(), 0);
    n = max_us = 0;
  }
  double pct(double p) const {  // microseconds; -1 without samples
    if (!n) return -1;
    uint64_t want = uint64_t(std::ceil(p / 100.0 * double(n))), acc = 0;
    if (want == 0) want = 1;
    for (size_t i = 0; i < b.size(); ++i) {
      acc += b[i];
      if (acc >= want) return i < size_t(kFine) ? double(i) : double(kFine) + double(i - kFine) * 100.0 + 50.0;
    }
    return double(max_us);
  }
};

enum State { kWaitOpen, kWaitConnect, kWaitSub, kReady };

struct Conn {
  int fd = -1;
  int node = 0;
  int topic = 0;
  bool publisher = false;
  int pub_index = 0;  // among all publishers
  State state = kWaitSub;
  std::vector<char> rbuf;
  size_t rhead = 0;
  std::string wbuf;
  bool want_out = false;
  uint64_t sent_in_step = 0;
};

struct Options {
  Proto proto = Proto::Wirehub;
  std::vector<int> ports;
  int subs = 200;
  int topics = 1;
  int pubs_per_node = 1;
  int threads = 1;
  std::vector<double> rates{1000};
  double warmup = 1.5, duration = 4;
  double stop_p99_ms = 0;  // 0 = run every rate
  double max_seconds = 240;
  std::vector<std::pair<std::string, int>> pids;
};

Options g_opt;
std::vector<int> g_topic_subs;  // subscribers per topic

// Control shared with the workers: the main thread changes the phase and
// bumps the epoch; every worker acknowledges the epoch it has seen.
enum Phase { kIdle, kRun, kMeasure, kStop };
std::atomic<int> g_phase{kIdle};
std::atomic<uint64_t> g_epoch{0};
std::atomic<double> g_rate{0};
std::atomic<uint64_t> g_step_start{0};

struct Worker {
  int ep = -1;
  std::vector<Conn*> conns, pubs;
  Hist local, remote;
  std::atomic<uint64_t> received{0}, published{0}, expected{0}, skipped{0}, ready{0}, errors{0};
  std::atomic<uint64_t> seen_epoch{0};
  std::thread th;
};

std::vector<Worker*> g_workers;
int g_total_pubs = 0;

void make_payload(char* out, int node, uint64_t ts) {
  int n = snprintf(out, kPayload + 1, "%d:%llu:", node, (unsigned long long)ts);
  memset(out + n, 'x', kPayload - size_t(n));
}

// A client frame: FIN + opcode, masked with the all-zero key (legal, RFC 6455
// 5.3: the server still unmasks; the client saves the XOR).
void put_frame(std::string& w, int opcode, const char* data, size_t len) {
  w.push_back(char(0x80 | opcode));
  if (len < 126) {
    w.push_back(char(0x80 | len));
  } else if (len < 65536) {
    w.push_back(char(0x80 | 126));
    w.push_back(char(len >> 8));
    w.push_back(char(len & 0xff));
  } else {
    w.push_back(char(0x80 | 127));
    for (int i = 7; i >= 0; --i) w.push_back(char((uint64_t(len) >> (8 * i)) & 0xff));
  }
  w.append(4, '\0');
  w.append(data, len);
}

void put_text(std::string& w, const std::string& s) { put_frame(w, 1, s.data(), s.size()); }

std::string sub_message(int topic) {
  if (g_opt.proto == Proto::Wirehub) return "S t" + std::to_string(topic);
  return "420[\"s\",\"t" + std::to_string(topic) + "\"]";
}

void set_out(Worker& w, Conn& c, bool on) {
  if (c.want_out == on) return;
  c.want_out = on;
  epoll_event ev{};
  ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.ptr = &c;
  epoll_ctl(w.ep, EPOLL_CTL_MOD, c.fd, &ev);
}

void flush(Worker& w, Conn& c) {
  while (!c.wbuf.empty()) {
    ssize_t n = send(c.fd, c.wbuf.data(), c.wbuf.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.wbuf.erase(0, size_t(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      w.errors.fetch_add(1, std::memory_order_relaxed);
      c.wbuf.clear();
      break;
    }
  }
  set_out(w, c, !c.wbuf.empty());
}

void on_payload(Worker& w, Conn& c, const char* p, size_t len, bool measure, uint64_t now) {
  if (len < 4) return;
  char* end = nullptr;
  long node = strtol(p, &end, 10);
  if (end == p || *end != ':') return;
  unsigned long long ts = strtoull(end + 1, &end, 10);
  if (*end != ':') return;
  w.received.fetch_add(1, std::memory_order_relaxed);
  if (measure) {
    uint64_t us = now > ts ? (now - ts) / 1000 : 0;
    (node == c.node ? w.local : w.remote).add(us);
  }
}

void on_message(Worker& w, Conn& c, const char* p, size_t len, bool measure, uint64_t now) {
  if (g_opt.proto == Proto::Wirehub) {
    if (c.state == kWaitSub && len == 1 && p[0] == 's') {
      c.state = kReady;
      w.ready.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    on_payload(w, c, p, len, measure, now);
    return;
  }
  // Socket.IO: the hot path first.
  static const char kMsg[] = "42[\"m\",\"";
  if (len > sizeof kMsg - 1 && memcmp(p, kMsg, sizeof kMsg - 1) == 0) {
    on_payload(w, c, p + sizeof kMsg - 1, len - (sizeof kMsg - 1), measure, now);
    return;
  }
  if (len == 1 && p[0] == '2') {  // Engine.IO ping
    put_text(c.wbuf, "3");
    flush(w, c);
  } else if (c.state == kWaitOpen && len > 0 && p[0] == '0') {
    c.state = kWaitConnect;
    put_text(c.wbuf, "40");
    flush(w, c);
  } else if (c.state == kWaitConnect && len >= 2 && p[0] == '4' && p[1] == '0') {
    if (c.publisher) {
      c.state = kReady;
      w.ready.fetch_add(1, std::memory_order_relaxed);
    } else {
      c.state = kWaitSub;
      put_text(c.wbuf, sub_message(c.topic));
      flush(w, c);
    }
  } else if (c.state == kWaitSub && len >= 3 && memcmp(p, "430", 3) == 0) {
    c.state = kReady;
    w.ready.fetch_add(1, std::memory_order_relaxed);
  } else if (len >= 2 && p[0] == '4' && p[1] == '4') {
    fprintf(stderr, "cluster_load: socket.io connect error: %.*s\n", int(std::min<size_t>(len, 200)), p);
    w.errors.fetch_add(1, std::memory_order_relaxed);
  }
}

// Parse every whole frame in the read buffer.
void parse(Worker& w, Conn& c, bool measure, uint64_t now) {
  for (;;) {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(c.rbuf.data() + c.rhead);
    size_t avail = c.rbuf.size() - c.rhead;
    if (avail < 2) break;
    int opcode = b[0] & 0x0f;
    if (b[1] & 0x80) {  // a server never masks
      w.errors.fetch_add(1, std::memory_order_relaxed);
      c.rbuf.clear();
      c.rhead = 0;
      return;
    }
    uint64_t len = b[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t(b[2]) << 8) | b[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
      hdr = 10;
    }
    if (avail < hdr + len) break;
    const char* p = reinterpret_cast<const char*>(b + hdr);
    if (opcode == 1 || opcode == 2) {
      on_message(w, c, p, size_t(len), measure, now);
    } else if (opcode == 9) {
      put_frame(c.wbuf, 10, p, size_t(len));
      flush(w, c);
    } else if (opcode == 8) {
      w.errors.fetch_add(1, std::memory_order_relaxed);
    }
    c.rhead += hdr + size_t(len);
  }
  if (c.rhead == c.rbuf.size()) {
    c.rbuf.clear();
    c.rhead = 0;
  } else if (c.rhead > (1u << 16)) {
    c.rbuf.erase(c.rbuf.begin(), c.rbuf.begin() + long(c.rhead));
    c.rhead = 0;
  }
}

void on_readable(Worker& w, Conn& c, bool measure) {
  char buf[1 << 16];
  ssize_t n = recv(c.fd, buf, sizeof buf, 0);
  if (n > 0) {
    c.rbuf.insert(c.rbuf.end(), buf, buf + n);
    parse(w, c, measure, now_ns());
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    fprintf(stderr, "cluster_load: a connection to node %d closed\n", c.node);
    w.errors.fetch_add(1, std::memory_order_relaxed);
    epoll_ctl(w.ep, EPOLL_CTL_DEL, c.fd, nullptr);
  }
}

void publish_due(Worker& w, uint64_t now) {
  double rate = g_rate.load(std::memory_order_relaxed) / double(g_total_pubs);
  uint64_t start = g_step_start.load(std::memory_order_relaxed);
  if (rate <= 0 || now < start) return;
  // At most 20 ms worth of messages in one burst: a publisher that fell
  // further behind skips (and counts) the rest rather than flood.
  uint64_t cap = std::max<uint64_t>(1, uint64_t(rate * 0.02));
  char payload[kPayload + 1];
  for (Conn* c : w.pubs) {
    uint64_t due = uint64_t(rate * double(now - start) / 1e9);
    if (due <= c->sent_in_step) continue;
    uint64_t n = due - c->sent_in_step;
    c->sent_in_step = due;
    uint64_t send_n = std::min(n, cap);
    if (c->wbuf.size() > kMaxWbuf) send_n = 0;
    w.skipped.fetch_add(n - send_n, std::memory_order_relaxed);
    if (!send_n) continue;
    uint64_t ts = now_ns();
    uint64_t exp = 0;
    for (uint64_t i = 0; i < send_n; ++i) {
      int topic = int((uint64_t(c->pub_index) + c->sent_in_step + i) % uint64_t(g_opt.topics));
      make_payload(payload, c->node, ts);
      std::string m;
      if (g_opt.proto == Proto::Wirehub) {
        m = "P t" + std::to_string(topic) + " ";
        m.append(payload, kPayload);
      } else {
        m = "42[\"p\",\"t" + std::to_string(topic) + "\",\"";
        m.append(payload, kPayload);
        m += "\"]";
      }
      put_text(c->wbuf, m);
      exp += uint64_t(g_topic_subs[size_t(topic)]);
    }
    w.published.fetch_add(send_n, std::memory_order_relaxed);
    w.expected.fetch_add(exp, std::memory_order_relaxed);
    flush(w, *c);
  }
}

void worker_loop(Worker* wp) {
  Worker& w = *wp;
  for (Conn* c : w.conns) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(w.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
    c->want_out = false;
    if (!c->rbuf.empty()) parse(w, *c, false, now_ns());
    flush(w, *c);
  }
  int phase = kIdle;
  uint64_t epoch = 0;
  epoll_event evs[256];
  for (;;) {
    uint64_t e = g_epoch.load(std::memory_order_acquire);
    if (e != epoch) {
      epoch = e;
      int np = g_phase.load(std::memory_order_acquire);
      if (np == kRun && phase != kRun && phase != kMeasure)
        for (Conn* c : w.pubs) c->sent_in_step = 0;
      phase = np;
      w.seen_epoch.store(e, std::memory_order_release);
    }
    if (phase == kStop) return;
    int n = epoll_wait(w.ep, evs, 256, 1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    bool measure = phase == kMeasure;
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(evs[i].data.ptr);
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(w, c, measure);
      if (evs[i].events & EPOLLOUT) flush(w, c);
    }
    if (phase == kRun || phase == kMeasure) publish_due(w, now_ns());
  }
}

// Set a phase and wait (bounded) until every worker has seen it.
void set_phase(int phase) {
  g_phase.store(phase, std::memory_order_release);
  uint64_t e = g_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  uint64_t deadline = now_ns() + 2000000000ull;
  for (Worker* w : g_workers)
    while (w->seen_epoch.load(std::memory_order_acquire) < e && now_ns() < deadline) usleep(200);
}

// The blocking part of a connection: TCP connect and the HTTP upgrade.
Conn* open_conn(int port, int node) {
  auto* c = new Conn;
  c->node = node;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) die("socket");
  timeval tv{5, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  const char* path = g_opt.proto == Proto::SocketIO ? "/socket.io/?EIO=4&transport=websocket" : "/";
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, port);
  if (send(c->fd, req, size_t(n), MSG_NOSIGNAL) != n) die("send upgrade");
  std::string resp;
  char buf[4096];
  size_t end = std::string::npos;
  while ((end = resp.find("\r\n\r\n")) == std::string::npos) {
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r <= 0) die("upgrade response");
    resp.append(buf, size_t(r));
    if (resp.size() > 16384) die("upgrade response too long");
  }
  if (resp.compare(0, 12, "HTTP/1.1 101") != 0) {
    fprintf(stderr, "cluster_load: node on port %d refused the upgrade: %.*s\n", port,
            int(std::min<size_t>(resp.size(), 200)), resp.data());
    exit(1);
  }
  c->rbuf.assign(resp.begin() + long(end + 4), resp.end());
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  return c;
}

struct CpuSample {
  std::vector<double> proc;  // seconds, per --pid, then self
  uint64_t busy = 0, total = 0;
  uint64_t t = 0;
};

double proc_cpu_seconds(int pid) {
  char path[64];
  snprintf(path, sizeof path, pid ? "/proc/%d/stat" : "/proc/self/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  char line[2048];
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = 0;
  const char* p = strrchr(line, ')');
  if (!p) return -1;
  // Fields after the command: state is field 3; utime and stime are 14, 15.
  unsigned long long ut = 0, st = 0;
  int field = 2;
  for (const char* q = p + 1; *q && field < 15; ++q) {
    if (*q == ' ') {
      ++field;
      if (field == 14) ut = strtoull(q + 1, nullptr, 10);
      if (field == 15) st = strtoull(q + 1, nullptr, 10);
    }
  }
  return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}

CpuSample sample_cpu() {
  CpuSample s;
  s.t = now_ns();
  for (auto& [name, pid] : g_opt.pids) s.proc.push_back(proc_cpu_seconds(pid));
  s.proc.push_back(proc_cpu_seconds(0));
  FILE* f = fopen("/proc/stat", "r");
  if (f) {
    unsigned long long v[10] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) == 8) {
      for (int i = 0; i < 8; ++i) s.total += v[i];
      s.busy = s.total - v[3] - v[4];
    }
    fclose(f);
  }
  return s;
}

uint64_t sum(std::atomic<uint64_t> Worker::*field) {
  uint64_t t = 0;
  for (Worker* w : g_workers) t += (w->*field).load(std::memory_order_relaxed);
  return t;
}

void sleep_s(double s) {
  timespec ts{time_t(s), long((s - double(time_t(s))) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::vector<double> parse_list(const char* s) {
  std::vector<double> v;
  for (const char* p = s; *p;) {
    char* end;
    double x = strtod(p, &end);
    if (end == p) break;
    v.push_back(x);
    p = *end == ',' ? end + 1 : end;
  }
  return v;
}

void usage() {
  fprintf(stderr,
          "usage: cluster_load --proto wirehub|socketio --ports P1,P2,... [--subs M] [--topics T]\n"
          "       [--pubs-per-node N] [--rates R1,R2,...] [--warmup s] [--duration s]\n"
          "       [--stop-p99-ms ms] [--threads n] [--pid NAME=PID]... [--max-seconds s]\n");
  exit(2);
}

void parse_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--proto") {
      std::string v = val();
      if (v == "wirehub") g_opt.proto = Proto::Wirehub;
      else if (v == "socketio") g_opt.proto = Proto::SocketIO;
      else usage();
    } else if (a == "--ports") {
      for (double p : parse_list(val())) g_opt.ports.push_back(int(p));
    } else if (a == "--subs") g_opt.subs = atoi(val());
    else if (a == "--topics") g_opt.topics = atoi(val());
    else if (a == "--pubs-per-node") g_opt.pubs_per_node = atoi(val());
    else if (a == "--threads") g_opt.threads = atoi(val());
    else if (a == "--rates") g_opt.rates = parse_list(val());
    else if (a == "--warmup") g_opt.warmup = atof(val());
    else if (a == "--duration") g_opt.duration = atof(val());
    else if (a == "--stop-p99-ms") g_opt.stop_p99_ms = atof(val());
    else if (a == "--max-seconds") g_opt.max_seconds = atof(val());
    else if (a == "--pid") {
      std::string v = val();
      size_t eq = v.find('=');
      if (eq == std::string::npos) usage();
      g_opt.pids.emplace_back(v.substr(0, eq), atoi(v.c_str() + eq + 1));
    } else usage();
  }
  if (g_opt.ports.empty() || g_opt.subs < 1 || g_opt.topics < 1 || g_opt.pubs_per_node < 1 ||
      g_opt.threads < 1 || g_opt.rates.empty() || g_opt.duration <= 0)
    usage();
}

}  // namespace

int main(int argc, char** argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, [](int) {
    static const char m[] = "cluster_load: --max-seconds reached\n";
    (void)!write(2, m, sizeof m - 1);
    _exit(3);
  });
  alarm(unsigned(g_opt.max_seconds));
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  int k = int(g_opt.ports.size());
  g_topic_subs.assign(size_t(g_opt.topics), 0);
  for (int i = 0; i < g_opt.threads; ++i) {
    auto* w = new Worker;
    w->ep = epoll_create1(0);
    if (w->ep < 0) die("epoll_create1");
    g_workers.push_back(w);
  }
  uint64_t t0 = now_ns();
  int n_conns = 0;
  State first = g_opt.proto == Proto::SocketIO ? kWaitOpen : kWaitSub;
  for (int i = 0; i < g_opt.subs; ++i) {
    Conn* c = open_conn(g_opt.ports[size_t(i % k)], i % k);
    c->topic = i % g_opt.topics;
    c->state = first;
    ++g_topic_subs[size_t(c->topic)];
    if (g_opt.proto == Proto::Wirehub) put_text(c->wbuf, sub_message(c->topic));
    g_workers[size_t(n_conns++ % g_opt.threads)]->conns.push_back(c);
  }
  for (int node = 0; node < k; ++node) {
    for (int j = 0; j < g_opt.pubs_per_node; ++j) {
      Conn* c = open_conn(g_opt.ports[size_t(node)], node);
      c->publisher = true;
      c->pub_index = g_total_pubs++;
      c->state = first;
      Worker* w = g_workers[size_t(n_conns++ % g_opt.threads)];
      w->conns.push_back(c);
      w->pubs.push_back(c);
      if (g_opt.proto == Proto::Wirehub) {
        c->state = kReady;
        w->ready.fetch_add(1);
      }
    }
  }
  for (Worker* w : g_workers) w->th = std::thread(worker_loop, w);
  // Every subscription acknowledged by its node before the first publish.
  uint64_t deadline = now_ns() + 20000000000ull;
  while (sum(&Worker::ready) < uint64_t(n_conns) && now_ns() < deadline) usleep(1000);
  if (sum(&Worker::ready) < uint64_t(n_conns)) {
    fprintf(stderr, "cluster_load: only %llu of %d connections ready after 20 s\n",
            (unsigned long long)sum(&Worker::ready), n_conns);
    return 1;
  }
  printf("ready conns=%d subs=%d publishers=%d nodes=%d topics=%d setup_ms=%.0f\n", n_conns, g_opt.subs,
         g_total_pubs, k, g_opt.topics, double(now_ns() - t0) / 1e6);
  fflush(stdout);
  // Subscriptions a node forwards to Redis (the broker's interest) settle.
  sleep_s(0.5);

  int rc = 0;
  uint64_t lost_before = 0;
  for (double rate : g_opt.rates) {
    g_rate.store(rate);
    g_step_start.store(now_ns());
    set_phase(kRun);
    sleep_s(g_opt.warmup);
    for (Worker* w : g_workers) {  // not written outside kMeasure
      w->local.clear();
      w->remote.clear();
    }
    uint64_t r0 = sum(&Worker::received), p0 = sum(&Worker::published), e0 = sum(&Worker::expected);
    uint64_t s0 = sum(&Worker::skipped);
    CpuSample c0 = sample_cpu();
    set_phase(kMeasure);
    sleep_s(g_opt.duration);
    set_phase(kRun);  // histograms stop; publishing goes on until the sample
    CpuSample c1 = sample_cpu();
    uint64_t r1 = sum(&Worker::received), p1 = sum(&Worker::published), e1 = sum(&Worker::expected);
    uint64_t s1 = sum(&Worker::skipped);
    set_phase(kIdle);
    // Let what is in flight arrive, then count what never did.
    uint64_t drain_end = now_ns() + 3000000000ull;
    while (sum(&Worker::received) < sum(&Worker::expected) && now_ns() < drain_end) usleep(2000);
    uint64_t lost_total = sum(&Worker::expected) - std::min(sum(&Worker::expected), sum(&Worker::received));
    uint64_t lost = lost_total - std::min(lost_total, lost_before);
    lost_before = lost_total;

    Hist all, local, remote;
    for (Worker* w : g_workers) {
      local.merge(w->local);
      remote.merge(w->remote);
    }
    all.merge(local);
    all.merge(remote);
    double win = double(c1.t - c0.t) / 1e9;
    printf("step proto=%s nodes=%d subs=%d topics=%d rate=%.0f pub_per_s=%.0f delivered_per_s=%.0f "
           "expected_per_s=%.0f skipped=%llu lost=%llu p50_us=%.0f p99_us=%.0f max_us=%llu "
           "p50_local_us=%.0f p99_local_us=%.0f p50_remote_us=%.0f p99_remote_us=%.0f",
           g_opt.proto == Proto::Wirehub ? "wirehub" : "socketio", k, g_opt.subs, g_opt.topics, rate,
           double(p1 - p0) / win, double(r1 - r0) / win, double(e1 - e0) / win,
           (unsigned long long)(s1 - s0), (unsigned long long)lost, all.pct(50), all.pct(99),
           (unsigned long long)all.max_us, local.pct(50), local.pct(99), remote.pct(50), remote.pct(99));
    for (size_t i = 0; i < g_opt.pids.size(); ++i)
      printf(" cpu_%s=%.3f", g_opt.pids[i].first.c_str(), (c1.proc[i] - c0.proc[i]) / win);
    printf(" cpu_load=%.3f busy_pct=%.1f window_s=%.2f errors=%llu\n",
           (c1.proc.back() - c0.proc.back()) / win,
           c1.total > c0.total ? 100.0 * double(c1.busy - c0.busy) / double(c1.total - c0.total) : -1.0, win,
           (unsigned long long)sum(&Worker::errors));
    fflush(stdout);
    if (sum(&Worker::errors)) {
      rc = 1;
      break;
    }
    if (g_opt.stop_p99_ms > 0 &&
        (all.pct(99) > g_opt.stop_p99_ms * 1000 || lost > 0 || all.n == 0 ||
         double(s1 - s0) > 0.001 * double(p1 - p0)))
      break;
  }
  set_phase(kStop);
  for (Worker* w : g_workers) w->th.join();
  printf("done\n");
  return rc;
}
