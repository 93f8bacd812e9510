/*
 * wirehub-bench-server: the benchmark server on the C ABI.
 *
 *   wirehub-bench-server echo|broadcast PORT
 *
 * echo: every message goes back to its sender with the same type.
 * broadcast: every message goes to every open connection, sender included.
 * Listens on 127.0.0.1:PORT until SIGINT/SIGTERM. The contract is the one of
 * shared/bench/README.md (bench/servers.txt).
 *
 * Written for speed: callback mode (no queue hop, no copy of the payload: the
 * event's view is handed straight back to send/broadcast, which copy it once
 * into the frame), one I/O thread (wsbench pins the server to one core), and
 * nothing per message but the send call.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

static int g_broadcast;

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  if (ev->type == WH_EV_MESSAGE) {
    int type = ev->flags & (WH_TEXT | WH_BINARY);
    if (g_broadcast) {
      /* Framed once, shared by every connection; a slow reader that crosses
       * its hard cap loses messages (WH_EDROPPED per conn, inside the engine)
       * rather than slowing the others. */
      int rc = wh_server_broadcast(ev->server, ev->data, ev->len, type, NULL);
      if (rc < 0 && rc != WH_ESHUTDOWN) fprintf(stderr, "bench: broadcast: %s\n", wh_strerror(rc));
    } else {
      /* WH_QUEUED is not acted on: wsload bounds what each connection has in
       * flight, and pausing the reader until the writes drain would
       * serialize reading with writing for big messages (echo-1m). The hard
       * cap still bounds memory; a dropped echo would fake the figures, so
       * that connection ends instead. */
      int rc = wh_conn_send(ev->conn, ev->data, ev->len, type);
      if (rc < 0 && rc != WH_ECLOSED) {
        fprintf(stderr, "bench: send: %s\n", wh_strerror(rc));
        wh_conn_terminate(ev->conn);
      }
    }
  } else if (ev->type == WH_EV_ERROR) {
    /* e.g. accept() hitting the descriptor limit during connect-5k */
    fprintf(stderr, "bench: server error: %s: %.*s\n", wh_strerror(ev->code), (int)ev->len,
            ev->data ? ev->data : "");
  }
}

int main(int argc, char** argv) {
  if (argc != 3 || (strcmp(argv[1], "echo") && strcmp(argv[1], "broadcast"))) {
    fprintf(stderr, "usage: wirehub-bench-server echo|broadcast PORT\n");
    return 2;
  }
  g_broadcast = !strcmp(argv[1], "broadcast");
  char* end;
  errno = 0;
  long port = strtol(argv[2], &end, 10);
  if (errno || end == argv[2] || *end || port < 0 || port > 65535) {
    fprintf(stderr, "wirehub-bench-server: invalid port '%s'\n", argv[2]);
    return 2;
  }
  bench_raise_fd_limit("wirehub-bench-server");
  sigset_t stop;
  bench_block_stop_signals(&stop);
  /* echo-1m keeps 8 MiB in flight; the default 16 MiB limit covers it. The
   * anchors do not compress, neither do we (deflate stays off). */
  wh_hub* hub = NULL;
  wh_server* server = NULL;
  if (bench_listen("wirehub-bench-server", 1, on_event, port, &hub, &server) < 0) return 1;
  printf("listening on ws://127.0.0.1:%d (%s)\n", wh_server_port(server), argv[1]);
  fflush(stdout);

  int sig;
  sigwait(&stop, &sig);
  /* Short: wsbench kills the group 5 s after SIGTERM anyway. */
  return wh_hub_destroy(hub, 500) < 0 ? 1 : 0;
}
