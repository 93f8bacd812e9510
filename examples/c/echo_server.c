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

#include "serve_main.h"
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

int main(int argc, char** argv) { return serve_main("wirehub-echo-server", argc, argv, on_event, NULL); }
