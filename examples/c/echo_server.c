/*
 * wirehub-echo-server: sends every message back to its sender, same type.
 *
 *   wirehub-echo-server [--host 127.0.0.1] [--port 8080]
 *
 * The smallest complete server on the C ABI: callback mode, flow control with
 * pause/resume, and a clean shutdown on SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirehub.h"

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  switch (ev->type) {
    case WH_EV_MESSAGE: {
      int rc = wh_conn_send(ev->conn, ev->data, ev->len, ev->flags & (WH_TEXT | WH_BINARY));
      if (rc == WH_QUEUED) {
        /* The peer reads slower than it writes: stop reading from it until
         * its send buffer drains, so memory stays bounded. */
        int prc = wh_conn_pause(ev->conn);
        if (prc < 0 && prc != WH_ECLOSED)
          fprintf(stderr, "echo: pause: %s\n", wh_strerror(prc));
      } else if (rc == WH_EDROPPED) {
        /* An echo server that silently loses messages is broken, so end the
         * connection instead of carrying on with a gap. */
        fprintf(stderr, "echo: %s:%d: %s\n", wh_conn_remote_address(ev->conn),
                wh_conn_remote_port(ev->conn), wh_strerror(rc));
        int crc = wh_conn_close(ev->conn, 1011, "send buffer full", 16);
        if (crc < 0 && crc != WH_ECLOSED) fprintf(stderr, "echo: close: %s\n", wh_strerror(crc));
      } else if (rc < 0 && rc != WH_ECLOSED) {
        fprintf(stderr, "echo: send: %s\n", wh_strerror(rc));
      }
      break;
    }
    case WH_EV_DRAIN: {
      int rc = wh_conn_resume(ev->conn);
      if (rc < 0 && rc != WH_ECLOSED) fprintf(stderr, "echo: resume: %s\n", wh_strerror(rc));
      break;
    }
    case WH_EV_ERROR:
      fprintf(stderr, "echo: server error: %s: %.*s\n", wh_strerror(ev->code), (int)ev->len,
              ev->data ? ev->data : "");
      break;
    default:
      break;
  }
}

static void usage(FILE* f) {
  fprintf(f, "usage: wirehub-echo-server [--host HOST] [--port PORT]\n");
}

static int parse_port(const char* s, int* out) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > 65535) return -1;
  *out = (int)v;
  return 0;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8080;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) {
      host = argv[++i];
    } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
      if (parse_port(argv[++i], &port) < 0) {
        fprintf(stderr, "wirehub-echo-server: invalid port '%s'\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
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
    fprintf(stderr, "wirehub-echo-server: cannot block signals\n");
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
    fprintf(stderr, "wirehub-echo-server: cannot start: %s\n", wh_strerror(rc));
    return 1;
  }

  wh_server_options so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.host = host;
  so.port = port;
  wh_server* server = NULL;
  rc = wh_server_listen(hub, &so, &server);
  if (rc < 0) {
    fprintf(stderr, "wirehub-echo-server: cannot listen on %s port %d: %s\n", host, port,
            wh_strerror(rc));
    wh_hub_destroy(hub, 0);
    return 1;
  }
  int bound = wh_server_port(server);
  if (bound < 0) {
    fprintf(stderr, "wirehub-echo-server: %s\n", wh_strerror(bound));
    wh_hub_destroy(hub, 0);
    return 1;
  }
  /* Scripts (and the tests) wait for this line, so it must not sit in a
   * pipe's buffer. */
  printf(strchr(host, ':') ? "listening on ws://[%s]:%d\n" : "listening on ws://%s:%d\n", host, bound);
  fflush(stdout);

  int sig = 0;
  if (sigwait(&stop, &sig) != 0) sig = 0;
  fprintf(stderr, "wirehub-echo-server: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  rc = wh_hub_destroy(hub, 2000);
  if (rc < 0) {
    fprintf(stderr, "wirehub-echo-server: shutdown: %s\n", wh_strerror(rc));
    return 1;
  }
  return 0;
}
