// write_floor: what the kernel alone charges for one delivery, the floor
// under any server's "deliveries per CPU-second" in bench/cluster.
//
//   write_floor SOCKETS RATE SECONDS [FRAMES_PER_WRITE]
//
// Opens SOCKETS loopback TCP connections (TCP_NODELAY on the sending side,
// as every WebSocket server sets) whose far ends a forked reader drains with
// epoll, as cluster_load does; then, RATE times a second for SECONDS, writes
// one 66-byte frame (a 64-byte WebSocket message with its 2-byte header) to
// every socket with one write() each: what a server does for each delivery
// when messages come one at a time, as they do at bench/cluster's fixed rate.
// FRAMES_PER_WRITE > 1 writes that many frames per write() instead (a server
// that holds messages back to batch them). Prints, as its last line:
//   floor sockets=N rate=R frames_per_write=F writes=W deliveries_per_s=D cpu_s_per_s=C us_per_write=U deliveries_per_cpu_s=P
// where the CPU is the sending process's (user + system, from getrusage):
// on loopback the sender's system time also carries the receiving side's TCP
// work and the reader's wake-up, as a server's does in the real run.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: write_floor SOCKETS RATE SECONDS [FRAMES_PER_WRITE]\n");
    return 2;
  }
  const int n = atoi(argv[1]), rate = atoi(argv[2]), secs = atoi(argv[3]);
  const int frames = argc > 4 ? atoi(argv[4]) : 1;
  if (n < 1 || n > 10000 || rate < 1 || secs < 1 || secs > 600 || frames < 1 || frames > 64) {
    fprintf(stderr, "write_floor: arguments out of range\n");
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 1024) ||
      getsockname(ls, (struct sockaddr*)&a, &al)) {
    perror("write_floor: listen");
    return 1;
  }
  int* cs = malloc(n * sizeof(int));
  int* ss = malloc(n * sizeof(int));
  for (int i = 0; i < n; i++) {
    cs[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (cs[i] < 0 || connect(cs[i], (struct sockaddr*)&a, sizeof a) || (ss[i] = accept(ls, NULL, NULL)) < 0) {
      perror("write_floor: connect");
      return 1;
    }
    int one = 1;
    setsockopt(ss[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  pid_t reader = fork();
  if (reader == 0) {
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
      struct epoll_event e = {.events = EPOLLIN, .data.fd = cs[i]};
      epoll_ctl(ep, EPOLL_CTL_ADD, cs[i], &e);
    }
    static char buf[65536];
    struct epoll_event ev[256];
    const double end = now() + secs + 2;
    while (now() < end) {
      int k = epoll_wait(ep, ev, 256, 100);
      for (int j = 0; j < k; j++)
        if (read(ev[j].data.fd, buf, sizeof buf) <= 0) _exit(0);
    }
    _exit(0);
  }
  for (int i = 0; i < n; i++) close(cs[i]);

  static char msg[66 * 64];
  for (int f = 0; f < frames; f++) {
    msg[f * 66] = (char)0x82;  // FIN + binary
    msg[f * 66 + 1] = 64;
    memset(msg + f * 66 + 2, 'x', 64);
  }
  const double t0 = now(), c0 = cpu();
  long writes = 0;
  for (long r = 0;; r++) {
    const double due = t0 + (double)r / rate;
    double t;
    while ((t = now()) < due) {
      struct timespec s = {0, (long)((due - t) * 1e9)};
      nanosleep(&s, NULL);
    }
    if (t - t0 >= secs) break;
    for (int i = 0; i < n; i++) {
      if (write(ss[i], msg, 66 * frames) != 66 * frames) {
        perror("write_floor: write");
        return 1;
      }
      writes++;
    }
  }
  const double c = cpu() - c0, el = now() - t0;
  for (int i = 0; i < n; i++) close(ss[i]);
  waitpid(reader, NULL, 0);
  printf("floor sockets=%d rate=%d frames_per_write=%d writes=%ld deliveries_per_s=%.0f cpu_s_per_s=%.4f "
         "us_per_write=%.3f deliveries_per_cpu_s=%.0f\n",
         n, rate, frames, writes, (double)writes * frames / el, c / el, c / writes * 1e6,
         (double)writes * frames / c);
  return 0;
}
