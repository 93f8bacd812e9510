/*
 * relay_server: the interop room. Every connection joins the topic "room" on
 * open, and every message goes to everyone in the room, the sender included,
 * so every client sees one global order:
 *   - kinds 1 and 4 (the small text ending in a 3-byte UTF-8 character, and
 *     the 1 MiB binary; the kind is the number in the "<NAME>|<kind>|" prefix)
 *     are re-sent to each receiver as several frames with WH_MORE, cut inside
 *     that UTF-8 character and with an empty continuation frame, so every
 *     client's reassembly runs;
 *   - every other message is published whole through the engine's pub/sub.
 * When a connection closes it prints
 *   STATS <name> <messages received> <of them compressed> <messages sent fragmented> <send errors>
 * (name: the prefix of its first message, "?" if it sent none).
 *
 *   relay_server PORT     (0 = any; prints "PORT <n>" once listening)
 *   relay_server PORT REDIS_URL NODE PEERS
 *
 * The second form is one node of a room that spans several servers on one
 * Redis (run_interop.py --cluster): this node's connections subscribe to
 * "room@NODE"; what they send reaches them as above (published to
 * "room@NODE", or fragmented), and every other node (PEERS, comma-separated)
 * through the broker, published whole to "room@PEER", a topic this node has
 * no subscriber of, so only Redis carries it.
 *
 * One I/O thread: the order messages are read in is the order everyone gets
 * them. Runs until stdin closes.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wirehub.h"

#define MAX_PEERS 256

typedef struct peer {
  wh_conn* conn;
  char name[64];
  long received, compressed, fragmented_out, send_errors;
} peer;

/* Touched only on the one I/O thread (callback mode, io_threads = 1). */
static wh_server* server;
static peer* peers[MAX_PEERS];
static int npeers;
static char room[80] = "room";     /* this node's topic */
static char remote[8][80];         /* the other nodes' topics */
static int nremote;

/* The kind of a "<NAME>|<kind>|..." message, or -1. */
static int kind_of(const char* d, size_t len, size_t* name_len) {
  const char* bar = memchr(d, '|', len < 64 ? len : 64);
  if (!bar) return -1;
  size_t n = (size_t)(bar - d);
  if (n + 3 > len || d[n + 1] < '0' || d[n + 1] > '9' || d[n + 2] != '|') return -1;
  *name_len = n;
  return d[n + 1] - '0';
}

static int send_counted(peer* to, const char* data, size_t len, int flags) {
  int rc = wh_conn_send(to->conn, data, len, flags);
  if (rc < 0 && rc != WH_ECLOSED) {
    fprintf(stderr, "relay_server: send to %s: %s\n", to->name, wh_strerror(rc));
    ++to->send_errors;
  }
  return rc;
}

/* The message as consecutive frames, cut at `cuts` (ascending offsets; a
 * repeated offset makes an empty frame). */
static void send_fragmented(peer* to, const char* d, size_t len, int type, const size_t* cuts, int ncuts) {
  size_t at = 0;
  for (int i = 0; i < ncuts; ++i) {
    if (send_counted(to, d + at, cuts[i] - at, (i == 0 ? type : 0) | WH_MORE) < 0) return;
    at = cuts[i];
  }
  if (send_counted(to, d + at, len - at, 0) >= 0) ++to->fragmented_out;
}

static void forward_fragmented(const wh_event* ev, int kind, int type) {
  size_t len = ev->len, cuts[5];
  int ncuts;
  if (kind == 1 && len >= 8) {
    /* kind 1 ends in "✓" (e2 9c 93): frames end inside it, after e2 and after 9c. */
    cuts[0] = 3;
    cuts[1] = len - 2;
    cuts[2] = len - 1;
    ncuts = 3;
  } else if (kind == 4 && len >= (1u << 17)) {
    /* 1 byte, 64 KiB + 1 (a 64-bit length), an empty frame, 5 bytes, the rest. */
    cuts[0] = 1;
    cuts[1] = (1u << 16) + 2;
    cuts[2] = cuts[1];
    cuts[3] = cuts[1] + 5;
    ncuts = 4;
  } else {
    cuts[0] = len / 2;
    ncuts = 1;
  }
  for (int i = 0; i < npeers; ++i) send_fragmented(peers[i], ev->data, len, type, cuts, ncuts);
}

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  switch (ev->type) {
    case WH_EV_OPEN: {
      peer* p = calloc(1, sizeof *p);
      if (!p || npeers == MAX_PEERS) {
        fprintf(stderr, "relay_server: too many connections\n");
        free(p);
        wh_conn_close(ev->conn, 1013, "full", 4);
        break;
      }
      p->conn = ev->conn;
      strcpy(p->name, "?");
      peers[npeers++] = p;
      wh_conn_set_user_data(ev->conn, p);
      wh_conn_subscribe(ev->conn, room);
      break;
    }
    case WH_EV_MESSAGE: {
      peer* from = ev->user_data;
      const int type = ev->flags & (WH_TEXT | WH_BINARY);
      size_t name_len = 0;
      const int kind = kind_of(ev->data, ev->len, &name_len);
      if (from) {
        if (from->received++ == 0 && kind >= 0 && name_len < sizeof from->name) {
          memcpy(from->name, ev->data, name_len);
          from->name[name_len] = '\0';
        }
        if (ev->flags & WH_COMPRESSED) ++from->compressed;
      }
      if (kind == 1 || kind == 4) {
        forward_fragmented(ev, kind, type);
      } else {
        int rc = wh_server_publish(server, room, ev->data, ev->len, type, NULL);
        if (rc < 0) fprintf(stderr, "relay_server: publish: %s\n", wh_strerror(rc));
      }
      for (int i = 0; i < nremote; ++i) {
        int rc = wh_server_publish(server, remote[i], ev->data, ev->len, type, NULL);
        if (rc < 0) fprintf(stderr, "relay_server: publish to %s: %s\n", remote[i], wh_strerror(rc));
      }
      break;
    }
    case WH_EV_CLOSE: {
      peer* p = ev->user_data;
      if (ev->error)
        fprintf(stderr, "relay_server: %s closed with %d (%s)\n", p ? p->name : "a client", ev->code,
                wh_strerror(ev->error));
      if (!p) break;
      printf("STATS %s %ld %ld %ld %ld\n", p->name, p->received, p->compressed, p->fragmented_out,
             p->send_errors);
      fflush(stdout);
      for (int i = 0; i < npeers; ++i) {
        if (peers[i] == p) {
          memmove(peers + i, peers + i + 1, (size_t)(npeers - i - 1) * sizeof *peers);
          --npeers;
          break;
        }
      }
      free(p);
      break;
    }
    default:
      break;
  }
}

int main(int argc, char** argv) {
  if (argc != 2 && argc != 5) {
    fprintf(stderr, "usage: relay_server PORT [REDIS_URL NODE PEERS]\n");
    return 2;
  }
  if (argc == 5) {
    snprintf(room, sizeof room, "room@%s", argv[3]);
    char peers_arg[512];
    snprintf(peers_arg, sizeof peers_arg, "%s", argv[4]);
    for (char* save = NULL, *p = strtok_r(peers_arg, ",", &save); p && nremote < 8; p = strtok_r(NULL, ",", &save))
      snprintf(remote[nremote++], sizeof remote[0], "room@%s", p);
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
  if (argc == 5) {
    wh_broker_options bo = {0};
    bo.size = sizeof bo;
    bo.url = argv[2];
    bo.prefix = "interop:";
    /* The room's 1 MiB messages, from every client at once. */
    bo.max_pending = 256u << 20;
    rc = wh_server_set_broker(server, &bo);
    if (rc) {
      fprintf(stderr, "relay_server: broker %s: %s\n", argv[2], wh_strerror(rc));
      return 1;
    }
  }
  printf("PORT %d\n", wh_server_port(server));
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  wh_hub_destroy(hub, 2000);
  return 0;
}
