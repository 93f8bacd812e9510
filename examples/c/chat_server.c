/*
 * wirehub-chat-server: a multi-room chat on engine topics.
 *
 *   wirehub-chat-server [--host 127.0.0.1] [--port 8080]
 *
 * Every client starts in room "lobby" under a generated nickname. A text
 * message is relayed as "nick: text" to everyone in the sender's room, the
 * sender included (so a client sees the order the room saw). Commands:
 *   /nick NAME   change nickname
 *   /join ROOM   leave the current room for ROOM
 *   /who         how many connections the server has
 * Notices start with "* "; errors sent back to one client start with "! ".
 *
 * Rooms are engine topics ("room:NAME"): the engine frames each relayed
 * message once and shares the bytes among the room's subscribers, so the
 * application keeps no member lists of its own.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_main.h"
#include "wirehub.h"

#define MAX_NAME 32          /* nick and room names, bytes */
#define MAX_TEXT 4096        /* largest accepted chat message */
#define TOPIC_PREFIX "room:" /* keeps room topics apart from any other topic */

typedef struct client {
  char nick[MAX_NAME + 1];
  char room[MAX_NAME + 1];
} client;

/* Nicknames only need to be distinct, not dense; atomic so the example stays
 * correct if someone raises io_threads. */
static atomic_uint next_guest = 1;

static void topic_of(const char* room, char* out, size_t cap) {
  snprintf(out, cap, TOPIC_PREFIX "%s", room);
}

static void report(const char* what, int rc) {
  /* WH_ECLOSED only means the peer went away meanwhile (its CLOSE event
   * follows and cleans up) and WH_ESHUTDOWN that we are stopping: neither is
   * worth a line on stderr. */
  if (rc < 0 && rc != WH_ECLOSED && rc != WH_ESHUTDOWN) fprintf(stderr, "chat: %s: %s\n", what, wh_strerror(rc));
}

/* Publish a printf-formatted line to a room; `except` is skipped (may be NULL). */
static void room_say(wh_server* server, const char* room, wh_conn* except, const char* fmt, ...) {
  char line[MAX_TEXT + 2 * MAX_NAME + 16];
  char topic[sizeof TOPIC_PREFIX + MAX_NAME];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1; /* cannot happen: inputs are bounded */
  topic_of(room, topic, sizeof topic);
  int rc = wh_server_publish(server, topic, line, (size_t)n, WH_TEXT, except);
  report("publish", rc);
}

static void tell(wh_conn* conn, const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  report("send", wh_conn_send(conn, line, (size_t)n, WH_TEXT));
}

/* A name is 1..MAX_NAME bytes with no spaces or control characters, so that
 * it reads unambiguously in "nick: text" and in notices. */
static int valid_name(const char* s, size_t len) {
  if (len == 0 || len > MAX_NAME) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f || c == ':') return 0;
  }
  return 1;
}

static int enter_room(wh_conn* conn, client* c, const char* room) {
  char topic[sizeof TOPIC_PREFIX + MAX_NAME];
  topic_of(room, topic, sizeof topic);
  int rc = wh_conn_subscribe(conn, topic);
  if (rc < 0) return rc;
  snprintf(c->room, sizeof c->room, "%s", room);
  return 0;
}

static void on_open(wh_server* server, wh_conn* conn) {
  client* c = calloc(1, sizeof *c);
  if (!c) {
    fprintf(stderr, "chat: out of memory\n");
    report("close", wh_conn_close(conn, 1011, "out of memory", 13));
    return;
  }
  snprintf(c->nick, sizeof c->nick, "guest-%u", atomic_fetch_add(&next_guest, 1));
  int rc = wh_conn_set_user_data(conn, c);
  if (rc < 0) {
    report("set_user_data", rc);
    free(c);
    return; /* only fails on a conn already closing: its CLOSE event follows */
  }
  rc = enter_room(conn, c, "lobby");
  if (rc < 0) {
    report("subscribe", rc);
    return; /* the CLOSE event frees c */
  }
  room_say(server, c->room, NULL, "* %s joined %s", c->nick, c->room);
}

static void cmd_nick(wh_server* server, wh_conn* conn, client* c, const char* arg, size_t len) {
  if (!valid_name(arg, len)) {
    tell(conn, "! a nickname is 1-%d characters without spaces or ':'", MAX_NAME);
    return;
  }
  char old[MAX_NAME + 1];
  memcpy(old, c->nick, sizeof old);
  memcpy(c->nick, arg, len);
  c->nick[len] = '\0';
  room_say(server, c->room, NULL, "* %s is now %s", old, c->nick);
}

static void cmd_join(wh_server* server, wh_conn* conn, client* c, const char* arg, size_t len) {
  if (!valid_name(arg, len)) {
    tell(conn, "! a room name is 1-%d characters without spaces or ':'", MAX_NAME);
    return;
  }
  char room[MAX_NAME + 1];
  memcpy(room, arg, len);
  room[len] = '\0';
  if (!strcmp(room, c->room)) {
    tell(conn, "! you are already in %s", room);
    return;
  }
  char topic[sizeof TOPIC_PREFIX + MAX_NAME];
  topic_of(c->room, topic, sizeof topic);
  int rc = wh_conn_unsubscribe(conn, topic);
  if (rc < 0) {
    report("unsubscribe", rc);
    return;
  }
  /* Unsubscribed first, so the leaver does not get its own leave notice. */
  room_say(server, c->room, NULL, "* %s left %s", c->nick, c->room);
  rc = enter_room(conn, c, room);
  if (rc < 0) {
    report("subscribe", rc);
    c->room[0] = '\0';
    return;
  }
  room_say(server, c->room, NULL, "* %s joined %s", c->nick, c->room);
}

static void on_text(wh_server* server, wh_conn* conn, client* c, const char* text, size_t len) {
  /* Clients that send whole lines may keep the line end. */
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
  if (len > 0 && text[0] == '/') {
    size_t cmd_len = 1;
    while (cmd_len < len && text[cmd_len] != ' ') cmd_len++;
    const char* arg = text + cmd_len;
    size_t arg_len = len - cmd_len;
    while (arg_len > 0 && *arg == ' ') arg++, arg_len--;
    while (arg_len > 0 && arg[arg_len - 1] == ' ') arg_len--;
    if (cmd_len == 5 && !memcmp(text, "/nick", 5)) {
      cmd_nick(server, conn, c, arg, arg_len);
    } else if (cmd_len == 5 && !memcmp(text, "/join", 5)) {
      cmd_join(server, conn, c, arg, arg_len);
    } else if (cmd_len == 4 && !memcmp(text, "/who", 4)) {
      tell(conn, "* %d connected", wh_server_connections(server));
    } else {
      tell(conn, "! unknown command; try /nick NAME, /join ROOM or /who");
    }
    return;
  }
  if (c->room[0] == '\0') {
    tell(conn, "! you are in no room; /join ROOM");
    return;
  }
  room_say(server, c->room, NULL, "%s: %.*s", c->nick, (int)len, text);
}

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  switch (ev->type) {
    case WH_EV_OPEN:
      on_open(ev->server, ev->conn);
      break;
    case WH_EV_MESSAGE: {
      client* c = wh_conn_user_data(ev->conn);
      if (!c) break; /* its open failed; it is being closed */
      if (ev->flags & WH_BINARY)
        tell(ev->conn, "! binary messages are not relayed");
      else
        on_text(ev->server, ev->conn, c, ev->data, ev->len);
      break;
    }
    case WH_EV_CLOSE: {
      client* c = wh_conn_user_data(ev->conn);
      if (!c) break;
      /* The engine drops the closed conn's subscriptions itself; it only
       * remains to tell the room. */
      if (c->room[0]) room_say(ev->server, c->room, ev->conn, "* %s left %s", c->nick, c->room);
      /* The handle dies with this event, but clear it anyway so a stale
       * pointer can never be read back. */
      report("set_user_data", wh_conn_set_user_data(ev->conn, NULL));
      free(c);
      break;
    }
    case WH_EV_ERROR:
      fprintf(stderr, "chat: server error: %s: %.*s\n", wh_strerror(ev->code), (int)ev->len,
              ev->data ? ev->data : "");
      break;
    default:
      break;
  }
}

static void tune(wh_server_options* so) {
  /* A chat line is small; refusing big messages at the protocol level (1009)
   * keeps one client from making the server format megabytes per member. */
  so->limits.max_message_size = MAX_TEXT;
  /* Idle chat clients are normal; pings find the ones that vanished. */
  so->limits.ping_interval_ms = 30000;
}

int main(int argc, char** argv) { return serve_main("wirehub-chat-server", argc, argv, on_event, tune); }
