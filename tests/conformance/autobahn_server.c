/*
 * Echo server for the Autobahn|Testsuite "fuzzingclient" role (the suite
 * drives this server). Uses only the public C ABI, in callback mode, so the
 * conformance run tests exactly what bindings will see.
 *
 *   autobahn_server [--host 127.0.0.1] [--port N] [--threads N]
 *
 * Prints "listening PORT" once bound (port 0 picks a free one) and runs until
 * SIGINT or SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirehub.h"

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  if (ev->type == WH_EV_MESSAGE) {
    /* Compress the echo when the peer compressed: the 12.x/13.x cases send
     * small messages that would otherwise fall under the default threshold
     * and leave our compressor untested. */
    int flags = ev->flags & (WH_TEXT | WH_BINARY);
    if (ev->flags & WH_COMPRESSED) flags |= WH_COMPRESS;
    int rc = wh_conn_send(ev->conn, ev->data, ev->len, flags);
    if (rc < 0 && rc != WH_ECLOSED) {
      fprintf(stderr, "autobahn_server: send: %s\n", wh_err_name(rc));
    }
  } else if (ev->type == WH_EV_ERROR) {
    fprintf(stderr, "autobahn_server: server error %d: %.*s\n", ev->code, (int)ev->len,
            ev->data ? ev->data : "");
  }
}

static void usage(void) {
  fprintf(stderr, "usage: autobahn_server [--host H] [--port N] [--threads N]\n");
  exit(2);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 9001;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--threads") == 0) {
      threads = atoi(argv[++i]);
    } else {
      usage();
    }
  }

  /* Block the stop signals before the I/O threads start so they inherit the
   * mask and only sigwait() below ever sees them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  wh_hub_options hopt;
  memset(&hopt, 0, sizeof hopt);
  hopt.size = sizeof hopt;
  hopt.io_threads = threads;
  hopt.event_mode = WH_EVENTS_CALLBACK;
  hopt.on_event = on_event;
  wh_hub* hub = NULL;
  int rc = wh_hub_create(&hopt, &hub);
  if (rc != 0) {
    fprintf(stderr, "autobahn_server: wh_hub_create: %s\n", wh_strerror(rc));
    return 1;
  }

  wh_server_options sopt;
  memset(&sopt, 0, sizeof sopt);
  sopt.size = sizeof sopt;
  sopt.host = host;
  sopt.port = port;
  /* Case 9.x sends messages up to 16 MiB; leave ample headroom. */
  sopt.limits.max_message_size = (size_t)64 << 20;
  /* Accept every permessage-deflate parameter the client offers: window
   * bits 8..15 both ways and either no_context_takeover. */
  sopt.deflate.enabled = 1;
  sopt.deflate.server_max_window_bits = 15;
  sopt.deflate.client_max_window_bits = 15;
  wh_server* server = NULL;
  rc = wh_server_listen(hub, &sopt, &server);
  if (rc != 0) {
    fprintf(stderr, "autobahn_server: wh_server_listen %s:%d: %s\n", host, port, wh_strerror(rc));
    wh_hub_destroy(hub, 1000);
    return 1;
  }
  printf("listening %d\n", wh_server_port(server));
  fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  wh_hub_destroy(hub, 2000);
  return 0;
}
