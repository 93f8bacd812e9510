/*
 * Client for the Autobahn|Testsuite "fuzzingserver" role (the suite is the
 * server and tests this client). Uses only the public C ABI, in queue mode
 * (the server uses callback mode, so the conformance run covers both).
 *
 *   autobahn_client --port N [--host 127.0.0.1] [--agent wirehub]
 *                   [--case-timeout SECONDS]
 *
 * Reads /getCaseCount, runs /runCase?case=N&agent=A for N = 1..count one at a
 * time, echoing every message with its type until the suite closes, then
 * opens /updateReports?agent=A so the suite writes its reports. Exits 0 when
 * every step completed; pass/fail per case is in the suite's report.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wirehub.h"

#define MAX_EVENTS 64

static wh_hub* hub;
static int event_fd = -1;
static const char* host = "127.0.0.1";
static int port = 0;
static const char* agent = "wirehub";
static int case_timeout_s = 600;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct session {
  wh_conn* conn;
  int closed;
  int close_code;
  int close_error;
  long count;  /* getCaseCount's answer, -1 until it arrives */
} session;

static void handle(session* s, const wh_event* ev) {
  /* Only one session is alive at a time, and WH_EV_CLOSE is a conn's last
   * event, so anything not naming the current conn is ignorable. */
  if (ev->conn != s->conn) return;
  switch (ev->type) {
    case WH_EV_MESSAGE: {
      if (s->count == -1) {
        char buf[32];
        size_t n = ev->len < sizeof buf - 1 ? ev->len : sizeof buf - 1;
        memcpy(buf, ev->data, n);
        buf[n] = '\0';
        s->count = strtol(buf, NULL, 10);
        break;
      }
      int flags = ev->flags & (WH_TEXT | WH_BINARY);
      if (ev->flags & WH_COMPRESSED) flags |= WH_COMPRESS;
      int rc = wh_conn_send(ev->conn, ev->data, ev->len, flags);
      if (rc < 0 && rc != WH_ECLOSED) fprintf(stderr, "autobahn_client: send: %s\n", wh_err_name(rc));
      break;
    }
    case WH_EV_CLOSE:
      s->closed = 1;
      s->close_code = ev->code;
      s->close_error = ev->error;
      break;
    default:
      break;
  }
}

/* Runs one connection to `path` until it closes or `timeout_s` passes.
 * Returns 0 if it closed by itself, -1 otherwise. */
static int run_session(const char* path, session* s, int timeout_s) {
  char url[512];
  snprintf(url, sizeof url, "ws://%s:%d%s", host, port, path);

  wh_client_options copt;
  memset(&copt, 0, sizeof copt);
  copt.size = sizeof copt;
  copt.limits.max_message_size = (size_t)64 << 20;
  /* Offer everything the 13.x cases may answer: the suite's server only
   * replies with client_no_context_takeover / client_max_window_bits when the
   * offer says the client accepts them. */
  copt.deflate.enabled = 1;
  copt.deflate.client_no_context_takeover = 1;
  copt.deflate.client_max_window_bits = 15;
  copt.deflate.server_max_window_bits = 15;

  s->closed = 0;
  s->conn = NULL;
  int rc = wh_connect(hub, url, &copt, &s->conn);
  if (rc != 0) {
    fprintf(stderr, "autobahn_client: wh_connect %s: %s\n", url, wh_strerror(rc));
    return -1;
  }

  double deadline = now_s() + timeout_s;
  int terminated = 0;
  wh_event evs[MAX_EVENTS];
  while (!s->closed) {
    double left = deadline - now_s();
    if (left <= 0) {
      if (terminated) {
        fprintf(stderr, "autobahn_client: %s: no close event after terminate\n", path);
        return -1;
      }
      fprintf(stderr, "autobahn_client: %s: timed out after %d s, terminating\n", path, timeout_s);
      wh_conn_terminate(s->conn);
      terminated = 1;
      deadline = now_s() + 10;
      continue;
    }
    int n = wh_hub_poll(hub, evs, MAX_EVENTS);
    if (n < 0) {
      fprintf(stderr, "autobahn_client: wh_hub_poll: %s\n", wh_strerror(n));
      return -1;
    }
    if (n == 0) {
      struct pollfd p = {event_fd, POLLIN, 0};
      int ms = left > 1.0 ? 1000 : (int)(left * 1000) + 1;
      poll(&p, 1, ms);
      continue;
    }
    for (int i = 0; i < n; ++i) handle(s, &evs[i]);
  }
  return terminated ? -1 : 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: autobahn_client --port N [--host H] [--agent NAME] [--case-timeout SECONDS]\n");
  exit(2);
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0) {
      port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--agent") == 0) {
      agent = argv[++i];
    } else if (strcmp(argv[i], "--case-timeout") == 0) {
      case_timeout_s = atoi(argv[++i]);
    } else {
      usage();
    }
  }
  if (port <= 0 || case_timeout_s <= 0) usage();

  wh_hub_options hopt;
  memset(&hopt, 0, sizeof hopt);
  hopt.size = sizeof hopt;
  hopt.event_mode = WH_EVENTS_QUEUE;
  int rc = wh_hub_create(&hopt, &hub);
  if (rc != 0) {
    fprintf(stderr, "autobahn_client: wh_hub_create: %s\n", wh_strerror(rc));
    return 1;
  }
  rc = wh_hub_event_fd(hub, &event_fd);
  if (rc != 0) {
    fprintf(stderr, "autobahn_client: wh_hub_event_fd: %s\n", wh_strerror(rc));
    wh_hub_destroy(hub, 1000);
    return 1;
  }

  int failures = 0;
  session s;
  memset(&s, 0, sizeof s);
  s.count = -1;
  if (run_session("/getCaseCount", &s, 30) != 0 || s.count <= 0) {
    fprintf(stderr, "autobahn_client: no case count (got %ld)\n", s.count);
    wh_hub_destroy(hub, 1000);
    return 1;
  }
  long count = s.count;
  fprintf(stderr, "autobahn_client: %ld cases\n", count);

  double started = now_s();
  for (long n = 1; n <= count; ++n) {
    char path[256];
    snprintf(path, sizeof path, "/runCase?case=%ld&agent=%s", n, agent);
    memset(&s, 0, sizeof s);
    s.count = -2; /* not a count session: echo everything */
    if (run_session(path, &s, case_timeout_s) != 0) ++failures;
    if (n % 50 == 0 || n == count) {
      fprintf(stderr, "autobahn_client: %ld/%ld cases run (%.0f s)\n", n, count, now_s() - started);
    }
  }

  char path[256];
  snprintf(path, sizeof path, "/updateReports?agent=%s", agent);
  memset(&s, 0, sizeof s);
  s.count = -2;
  if (run_session(path, &s, 60) != 0) {
    fprintf(stderr, "autobahn_client: updateReports did not complete\n");
    ++failures;
  }

  wh_hub_destroy(hub, 2000);
  if (failures) fprintf(stderr, "autobahn_client: %d sessions did not end by themselves\n", failures);
  return failures ? 1 : 0;
}
