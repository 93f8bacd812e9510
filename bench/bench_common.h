/*
 * The start-up both C benchmark servers share (bench/bench_server.c and
 * bench/cluster/node_server.c): the descriptor limit, the stop signals, a
 * callback-mode hub and a listener on 127.0.0.1. Header-only, so that each
 * program stays one `cc` line (bench/cluster/run.sh) or one CMake target
 * (bench/CMakeLists.txt): both find it next to, or one folder above, the
 * program's own source.
 *
 * Include it after the _POSIX_C_SOURCE define, for pthread_sigmask and
 * sigwait.
 */
#ifndef WIREHUB_BENCH_COMMON_H
#define WIREHUB_BENCH_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "wirehub.h"

/* connect-5k, memory-5k and the cluster's subscribers hold thousands of
 * sockets; a soft limit of 1024 would make accept() fail and measure the
 * limit, not the server. */
static inline void bench_raise_fd_limit(const char* who) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) fprintf(stderr, "%s: setrlimit: %s\n", who, strerror(errno));
  }
}

/* Blocks SIGINT and SIGTERM in the calling thread before the hub starts: its
 * I/O threads inherit the mask, so the signals reach only sigwait(stop). */
static inline void bench_block_stop_signals(sigset_t* stop) {
  sigemptyset(stop);
  sigaddset(stop, SIGINT);
  sigaddset(stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, stop, NULL);
}

/* A hub in callback mode (no queue hop, no copy of a payload) with
 * io_threads I/O threads, and its server listening on 127.0.0.1:port.
 * Returns 0, or -1 after saying why on stderr (the hub, if any, destroyed). */
static inline int bench_listen(const char* who, int io_threads, wh_event_cb on_event, long port,
                               wh_hub** hub_out, wh_server** server_out) {
  wh_hub_options ho;
  memset(&ho, 0, sizeof ho);
  ho.size = sizeof ho;
  ho.io_threads = io_threads;
  ho.event_mode = WH_EVENTS_CALLBACK;
  ho.on_event = on_event;
  wh_hub* hub = NULL;
  int rc = wh_hub_create(&ho, &hub);
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", who, wh_strerror(rc));
    return -1;
  }

  wh_server_options so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.host = "127.0.0.1";
  so.port = (int)port;
  /* connect-5k opens connections in bursts of 200 */
  so.backlog = 4096;
  wh_server* server = NULL;
  rc = wh_server_listen(hub, &so, &server);
  if (rc < 0) {
    fprintf(stderr, "%s: listen on 127.0.0.1:%ld: %s\n", who, port, wh_strerror(rc));
    wh_hub_destroy(hub, 0);
    return -1;
  }
  *hub_out = hub;
  *server_out = server;
  return 0;
}

#endif
