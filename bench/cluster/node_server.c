/*
 * node_server: one wirehub node of bench/cluster, on the C ABI.
 *
 *   node_server --port P [--broker redis://127.0.0.1:PORT/0] [--prefix PREFIX] [--threads N]
 *
 * The protocol (text messages; cluster_load.cpp speaks it, socketio_node.js
 * is the same in Socket.IO events):
 *   "S <topic>"            subscribe this connection to <topic>; answered "s"
 *   "P <topic> <payload>"  wh_server_publish(<payload>) to <topic>, as text
 * With --broker the publish also reaches the topic's subscribers on every
 * node attached to the same Redis and prefix. Listens on 127.0.0.1 until
 * SIGINT/SIGTERM, then prints the broker's counters.
 *
 * Like bench/bench_server.c: callback mode, no copy of a payload on our side
 * (the event's view goes straight to wh_server_publish), one I/O thread by
 * default.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench_common.h"

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  if (ev->type == WH_EV_MESSAGE) {
    const char* p = ev->data;
    size_t len = ev->len;
    if (len < 3 || p[1] != ' ') return;
    if (p[0] == 'P') {
      const char* sp = memchr(p + 2, ' ', len - 2);
      size_t tlen = sp ? (size_t)(sp - (p + 2)) : 0;
      char topic[256];
      if (!sp || tlen == 0 || tlen >= sizeof topic) return;
      memcpy(topic, p + 2, tlen);
      topic[tlen] = 0;
      const char* payload = sp + 1;
      int rc = wh_server_publish(ev->server, topic, payload, len - (size_t)(payload - p), WH_TEXT, NULL);
      if (rc < 0 && rc != WH_ESHUTDOWN) fprintf(stderr, "node_server: publish: %s\n", wh_strerror(rc));
    } else if (p[0] == 'S') {
      char topic[256];
      size_t tlen = len - 2;
      if (tlen == 0 || tlen >= sizeof topic) return;
      memcpy(topic, p + 2, tlen);
      topic[tlen] = 0;
      int rc = wh_conn_subscribe(ev->conn, topic);
      if (rc < 0) {
        fprintf(stderr, "node_server: subscribe: %s\n", wh_strerror(rc));
        return;
      }
      wh_conn_send(ev->conn, "s", 1, WH_TEXT);
    }
  } else if (ev->type == WH_EV_ERROR) {
    fprintf(stderr, "node_server: server error: %s: %.*s\n", wh_strerror(ev->code), (int)ev->len,
            ev->data ? ev->data : "");
  }
}

static void usage(void) {
  fprintf(stderr, "usage: node_server --port P [--broker URL] [--prefix PREFIX] [--threads N]\n");
  exit(2);
}

static long parse_int(const char* s, long lo, long hi) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) usage();
  return v;
}

int main(int argc, char** argv) {
  long port = -1, threads = 1;
  const char* broker = NULL;
  const char* prefix = NULL;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) usage();
    if (!strcmp(argv[i], "--port")) port = parse_int(argv[++i], 0, 65535);
    else if (!strcmp(argv[i], "--broker")) broker = argv[++i];
    else if (!strcmp(argv[i], "--prefix")) prefix = argv[++i];
    else if (!strcmp(argv[i], "--threads")) threads = parse_int(argv[++i], 1, 64);
    else usage();
  }
  if (port < 0) usage();

  bench_raise_fd_limit("node_server");
  sigset_t stop;
  bench_block_stop_signals(&stop);
  wh_hub* hub = NULL;
  wh_server* server = NULL;
  if (bench_listen("node_server", (int)threads, on_event, port, &hub, &server) < 0) return 1;
  if (broker) {
    wh_broker_options bo;
    memset(&bo, 0, sizeof bo);
    bo.size = sizeof bo;
    bo.url = broker;
    bo.prefix = prefix;
    int rc = wh_server_set_broker(server, &bo);
    if (rc < 0) {
      fprintf(stderr, "node_server: broker %s: %s\n", broker, wh_strerror(rc));
      wh_hub_destroy(hub, 0);
      return 1;
    }
  }
  printf("listening on ws://127.0.0.1:%d%s%s\n", wh_server_port(server), broker ? ", broker " : "",
         broker ? broker : "");
  fflush(stdout);

  int sig;
  sigwait(&stop, &sig);
  if (broker) {
    wh_broker_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (wh_server_broker_stats(server, &st) == 0)
      printf("broker connected=%d channels=%d published=%" PRIu64 " received=%" PRIu64 " dropped=%" PRIu64
             " malformed=%" PRIu64 " reconnects=%" PRIu64 "\n",
             st.connected, st.channels, st.published, st.received, st.dropped, st.malformed, st.reconnects);
    fflush(stdout);
  }
  return wh_hub_destroy(hub, 500) < 0 ? 1 : 0;
}
