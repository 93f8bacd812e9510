/*
 * serve_main.h: the part of an example server that is not about WebSockets,
 * shared by echo_server.c and chat_server.c: the command line (--host,
 * --port), a callback-mode hub and its server, the "listening on" line, and a
 * graceful shutdown (every client gets 1001) on SIGINT/SIGTERM. Only
 * wirehub.h is used.
 */
#ifndef WIREHUB_EXAMPLE_SERVE_MAIN_H
#define WIREHUB_EXAMPLE_SERVE_MAIN_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirehub.h"

static int serve_parse_port(const char* s, int* out) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > 65535) return -1;
  *out = (int)v;
  return 0;
}

/* Runs the server until SIGINT/SIGTERM; returns main()'s exit status.
 * `tune` (may be NULL) adjusts the server options before listening. */
static int serve_main(const char* name, int argc, char** argv, wh_event_cb on_event,
                      void (*tune)(wh_server_options*)) {
  const char* host = "127.0.0.1";
  int port = 8080;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) {
      host = argv[++i];
    } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
      if (serve_parse_port(argv[++i], &port) < 0) {
        fprintf(stderr, "%s: invalid port '%s'\n", name, argv[i]);
        return 2;
      }
    } else {
      const int help = !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
      fprintf(help ? stdout : stderr, "usage: %s [--host HOST] [--port PORT]\n", name);
      return help ? 0 : 2;
    }
  }

  /* Block the signals before the hub starts its threads: they inherit the
   * mask, so SIGINT/SIGTERM can only be taken by sigwait() below and never
   * interrupt an I/O thread. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
    fprintf(stderr, "%s: cannot block signals\n", name);
    return 1;
  }

  wh_hub_options ho;
  memset(&ho, 0, sizeof ho);
  ho.size = sizeof ho;
  ho.event_mode = WH_EVENTS_CALLBACK;
  ho.on_event = on_event;
  wh_hub* hub = NULL;
  int rc = wh_hub_create(&ho, &hub);
  if (rc < 0) {
    fprintf(stderr, "%s: cannot start: %s\n", name, wh_strerror(rc));
    return 1;
  }

  wh_server_options so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.host = host;
  so.port = port;
  if (tune) tune(&so);
  wh_server* server = NULL;
  rc = wh_server_listen(hub, &so, &server);
  if (rc < 0) {
    fprintf(stderr, "%s: cannot listen on %s port %d: %s\n", name, host, port, wh_strerror(rc));
    wh_hub_destroy(hub, 0);
    return 1;
  }
  int bound = wh_server_port(server);
  if (bound < 0) {
    fprintf(stderr, "%s: %s\n", name, wh_strerror(bound));
    wh_hub_destroy(hub, 0);
    return 1;
  }
  /* Scripts (and the tests) wait for this line, so it must not sit in a
   * pipe's buffer. */
  printf(strchr(host, ':') ? "listening on ws://[%s]:%d\n" : "listening on ws://%s:%d\n", host, bound);
  fflush(stdout);

  int sig = 0;
  if (sigwait(&stop, &sig) != 0) sig = 0;
  fprintf(stderr, "%s: %s, shutting down\n", name, sig == SIGINT ? "SIGINT" : "SIGTERM");
  /* Closes every client with 1001 Going Away; their CLOSE events free what
   * the application kept per client. */
  rc = wh_hub_destroy(hub, 2000);
  if (rc < 0) {
    fprintf(stderr, "%s: shutdown: %s\n", name, wh_strerror(rc));
    return 1;
  }
  return 0;
}

#endif
