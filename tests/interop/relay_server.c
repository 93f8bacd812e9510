/*
 * relay_server: the interop room. Every message is published to the topic
 * "room", which every connection joins on open; the sender gets its own
 * message back too, so every client sees one global order.
 *
 *   relay_server PORT     (0 = any; prints "PORT <n>" once listening)
 *
 * One I/O thread: the order messages are read in is the order everyone gets
 * them. Runs until stdin closes.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wirehub.h"

static wh_server* server;

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  switch (ev->type) {
    case WH_EV_OPEN:
      wh_conn_subscribe(ev->conn, "room");
      break;
    case WH_EV_MESSAGE: {
      int rc = wh_server_publish(server, "room", ev->data, ev->len, ev->flags & (WH_TEXT | WH_BINARY), NULL);
      if (rc < 0) fprintf(stderr, "relay_server: publish: %s\n", wh_strerror(rc));
      break;
    }
    case WH_EV_CLOSE:
      if (ev->error) fprintf(stderr, "relay_server: a client closed with %d (%s)\n", ev->code, wh_strerror(ev->error));
      break;
    default:
      break;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: relay_server PORT\n");
    return 2;
  }
  wh_hub_options ho = {0};
  ho.size = sizeof ho;
  ho.on_event = on_event;
  wh_hub* hub = NULL;
  int rc = wh_hub_create(&ho, &hub);
  if (rc) {
    fprintf(stderr, "relay_server: hub: %s\n", wh_strerror(rc));
    return 1;
  }
  wh_server_options so = {0};
  so.size = sizeof so;
  so.host = "127.0.0.1";
  so.port = atoi(argv[1]);
  so.deflate.enabled = 1;
  /* 1 MiB messages, several in flight per client: room for all of them. */
  so.limits.max_message_size = 4u << 20;
  so.limits.max_buffered = 256u << 20;
  rc = wh_server_listen(hub, &so, &server);
  if (rc) {
    fprintf(stderr, "relay_server: listen: %s\n", wh_strerror(rc));
    return 1;
  }
  printf("PORT %d\n", wh_server_port(server));
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  wh_hub_destroy(hub, 2000);
  return 0;
}
