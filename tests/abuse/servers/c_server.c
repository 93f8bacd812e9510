/*
 * The C server of the abuse suite: the echo example's event handler
 * (examples/c/echo_server.c: send back, pause on WH_QUEUED, resume on
 * WH_EV_DRAIN) plus the chat example's engine publish, on one port with the
 * engine's default limits:
 *
 *   c_server [--host H] [--port P] [--deflate] [--hook] [--message-timeout-ms MS]
 *
 * A message whose payload starts with "broadcast:" is published to every
 * connection (all subscribe to the topic "all" when they open, as the chat
 * example's rooms do); any other goes back to its sender. --hook turns on the
 * upgrade hook and refuses the path /refuse with 403 (answered 20 ms later
 * from another thread); --deflate negotiates
 * permessage-deflate; --message-timeout-ms sets the hardening option when
 * wirehub.h has it. The rest (hub, signals, "listening on" line) is the
 * examples' serve_main.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve_main.h"
#include "wirehub.h"

static const char BROADCAST[] = "broadcast:";
static int opt_deflate, opt_hook, opt_message_timeout_ms = -2;

static void report(const char* what, int rc) {
  if (rc < 0 && rc != WH_ECLOSED && rc != WH_ESHUTDOWN) fprintf(stderr, "c_server: %s: %s\n", what, wh_strerror(rc));
}

/* /refuse is answered from another thread a little later, as a hook that
 * looks the client up somewhere would: meanwhile the engine has the
 * request's pipelined frames in hand and must hold them back. */
static void* refuse_later(void* req) {
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  report("respond", wh_request_respond(req, 403, NULL, "refused\n", 8));
  return NULL;
}

static void refuse(wh_request* req) {
  pthread_t t;
  if (pthread_create(&t, NULL, refuse_later, req) != 0) {
    report("respond", wh_request_respond(req, 403, NULL, "refused\n", 8));
    return;
  }
  pthread_detach(t);
}

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  switch (ev->type) {
    case WH_EV_UPGRADE:
      if (!strcmp(wh_request_path(ev->request), "/refuse"))
        refuse(ev->request);
      else
        report("accept", wh_request_accept(ev->request, NULL, NULL, NULL));
      break;
    case WH_EV_OPEN:
      report("subscribe", wh_conn_subscribe(ev->conn, "all"));
      break;
    case WH_EV_MESSAGE: {
      const int type = ev->flags & (WH_TEXT | WH_BINARY);
      if (ev->len >= sizeof BROADCAST - 1 && !memcmp(ev->data, BROADCAST, sizeof BROADCAST - 1)) {
        report("publish", wh_server_publish(ev->server, "all", ev->data, ev->len, type, NULL));
        break;
      }
      int rc = wh_conn_send(ev->conn, ev->data, ev->len, type);
      if (rc == WH_QUEUED) {
        report("pause", wh_conn_pause(ev->conn));
      } else if (rc == WH_EDROPPED) {
        report("close", wh_conn_close(ev->conn, 1011, "send buffer full", 16));
      } else {
        report("send", rc);
      }
      break;
    }
    case WH_EV_DRAIN:
      report("resume", wh_conn_resume(ev->conn));
      break;
    case WH_EV_ERROR:
      fprintf(stderr, "c_server: server error: %s: %.*s\n", wh_strerror(ev->code), (int)ev->len,
              ev->data ? ev->data : "");
      break;
    default:
      break;
  }
}

static void tune(wh_server_options* so) {
  if (opt_hook) so->flags |= WH_SERVER_UPGRADE_HOOK;
  if (opt_deflate) so->deflate.enabled = 1;
#ifdef WH_CLOSE_POLICY /* came with the hardening options (issue 11) */
  if (opt_message_timeout_ms != -2) so->message_timeout_ms = opt_message_timeout_ms;
#else
  if (opt_message_timeout_ms != -2) fprintf(stderr, "c_server: this wirehub.h has no message_timeout_ms\n");
#endif
}

int main(int argc, char** argv) {
  /* Take our own flags out; serve_main parses the rest. */
  char** rest = calloc((size_t)argc + 1, sizeof *rest);
  if (!rest) return 1;
  int n = 0;
  rest[n++] = argv[0];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--deflate")) opt_deflate = 1;
    else if (!strcmp(argv[i], "--hook")) opt_hook = 1;
    else if (!strcmp(argv[i], "--message-timeout-ms") && i + 1 < argc) opt_message_timeout_ms = atoi(argv[++i]);
    else rest[n++] = argv[i];
  }
  int rc = serve_main("c_server", n, rest, on_event, tune);
  free(rest);
  return rc;
}
