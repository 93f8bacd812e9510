/*
 * wirehub-client: a command-line WebSocket client.
 *
 *   wirehub-client ws://127.0.0.1:8080/
 *
 * Each line read from stdin is sent as a text message (without its line end);
 * each message received is written to stdout followed by a newline. When
 * stdin ends, the client closes with 1000 and waits for the server's close
 * frame; when the server closes, the client exits.
 *
 * Exit status: 0 after a clean close, 1 if the connection failed or ended
 * abnormally, 2 on bad usage.
 *
 * It uses the hub in queue mode: one thread, one poll() over stdin and the
 * hub's event descriptor, the shape an event loop (asyncio, libuv) takes.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wirehub.h"

#define MAX_LINE (16u << 20) /* the engine's default max message size */
#define CLOSE_WAIT_MS 10000  /* give up on the close handshake after this */

enum state { CONNECTING, OPEN, CLOSING, DONE };

typedef struct client {
  const char* url;
  wh_hub* hub;
  wh_conn* conn;
  enum state state;
  int we_closed;      /* we started the close handshake */
  int stdin_eof;
  int backpressured;  /* a send returned WH_QUEUED: wait for WH_EV_DRAIN */
  int exit_code;
  int input_failed;   /* stdin could not be read: exit 1 even after a clean close */
  char* line;         /* bytes read from stdin, not yet sent */
  size_t len, cap;
  unsigned long lines_sent;
} client;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_close(client* c) {
  if (c->state != OPEN) return;
  c->state = CLOSING;
  c->we_closed = 1;
  int rc = wh_conn_close(c->conn, 1000, NULL, 0);
  /* WH_ECLOSED: the server closed first; its CLOSE event is on its way. */
  if (rc < 0 && rc != WH_ECLOSED)
    fprintf(stderr, "wirehub-client: close: %s\n", wh_strerror(rc));
}

static void send_line(client* c, const char* s, size_t n) {
  if (n > 0 && s[n - 1] == '\r') n--;
  int rc = wh_conn_send(c->conn, s, n, WH_TEXT);
  if (rc == WH_QUEUED) {
    c->backpressured = 1;
  } else if (rc == WH_ECLOSED) {
    /* The CLOSE event will say why; stop reading input meanwhile. */
    c->stdin_eof = 1;
  } else if (rc < 0) {
    /* One bad line (e.g. not UTF-8) should not end the session. */
    fprintf(stderr, "wirehub-client: line %lu not sent: %s\n", c->lines_sent + 1, wh_strerror(rc));
  }
  c->lines_sent++;
}

/* Send every complete line in the buffer; keep the unfinished tail. */
static void send_lines(client* c) {
  size_t start = 0;
  for (;;) {
    char* nl = memchr(c->line + start, '\n', c->len - start);
    if (!nl) break;
    size_t n = (size_t)(nl - (c->line + start));
    send_line(c, c->line + start, n);
    start += n + 1;
    /* Stop at backpressure, or at a closed conn: the rest waits in the
     * buffer (or is dropped with the connection). */
    if (c->backpressured || c->state != OPEN || c->stdin_eof) break;
  }
  memmove(c->line, c->line + start, c->len - start);
  c->len -= start;
}

static int read_stdin(client* c) {
  if (c->cap - c->len < 4096) {
    size_t cap = c->cap ? c->cap * 2 : 65536;
    if (cap > MAX_LINE + 4096) {
      fprintf(stderr, "wirehub-client: input line longer than %u bytes\n", MAX_LINE);
      return -1;
    }
    char* p = realloc(c->line, cap);
    if (!p) {
      fprintf(stderr, "wirehub-client: out of memory\n");
      return -1;
    }
    c->line = p;
    c->cap = cap;
  }
  ssize_t n = read(STDIN_FILENO, c->line + c->len, c->cap - c->len);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return 0;
    perror("wirehub-client: stdin");
    return -1;
  }
  if (n == 0) {
    c->stdin_eof = 1;
    /* A last line without a newline is still a line. */
    if (c->len > 0 && c->state == OPEN) send_line(c, c->line, c->len);
    c->len = 0;
    start_close(c);
    return 0;
  }
  c->len += (size_t)n;
  send_lines(c);
  return 0;
}

static void on_close(client* c, const wh_event* ev) {
  if (c->state == CONNECTING) {
    if (ev->error == WH_ESTATUS)
      fprintf(stderr, "wirehub-client: cannot connect to %s: %s (HTTP %d)\n", c->url,
              wh_strerror(ev->error), ev->status);
    else
      fprintf(stderr, "wirehub-client: cannot connect to %s: %s\n", c->url,
              wh_strerror(ev->error ? ev->error : WH_EIO));
    c->exit_code = 1;
  } else if (ev->error != 0) {
    fprintf(stderr, "wirehub-client: connection lost: %s (code %d)\n", wh_strerror(ev->error), ev->code);
    c->exit_code = 1;
  } else if (!c->we_closed) {
    fprintf(stderr, "wirehub-client: server closed the connection: %d%s%.*s\n", ev->code,
            ev->len ? " " : "", (int)ev->len, ev->data ? ev->data : "");
    /* 1000 Normal and 1001 Going Away (server shutdown) are ordinary ends;
     * anything else is the server telling us something went wrong. */
    c->exit_code = (ev->code == 1000 || ev->code == 1001 || ev->code == 1005) ? 0 : 1;
  } else {
    c->exit_code = 0;
  }
  /* The handle dies once this event has been handled. */
  c->conn = NULL;
  c->state = DONE;
}

static void on_event(client* c, const wh_event* ev) {
  switch (ev->type) {
    case WH_EV_OPEN:
      c->state = OPEN;
      fprintf(stderr, "wirehub-client: connected to %s\n", c->url);
      /* Input that arrived while connecting has waited in the pipe. */
      break;
    case WH_EV_MESSAGE:
      fwrite(ev->data, 1, ev->len, stdout);
      fputc('\n', stdout);
      break;
    case WH_EV_DRAIN:
      c->backpressured = 0;
      /* Lines read before the backpressure began still wait in the buffer. */
      if (c->state == OPEN) send_lines(c);
      break;
    case WH_EV_CLOSE:
      on_close(c, ev);
      break;
    default:
      break;
  }
}

/* Drain every waiting event; returns -1 on a hub error. */
static int drain_events(client* c) {
  wh_event evs[64];
  for (;;) {
    int n = wh_hub_poll(c->hub, evs, 64);
    if (n == WH_EAGAIN || n == 0) return 0;
    if (n < 0) {
      fprintf(stderr, "wirehub-client: poll: %s\n", wh_strerror(n));
      return -1;
    }
    for (int i = 0; i < n; i++) on_event(c, &evs[i]);
    /* One write per batch, not per message, yet nothing waits in stdio
     * while we block in poll(). */
    fflush(stdout);
  }
}

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    FILE* f = argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? stdout : stderr;
    fprintf(f, "usage: wirehub-client ws://HOST:PORT/PATH\n"
               "Sends each stdin line as a text message; prints each message received.\n");
    return f == stdout ? 0 : 2;
  }
  client c;
  memset(&c, 0, sizeof c);
  c.url = argv[1];
  c.exit_code = 1;

  wh_hub_options ho;
  memset(&ho, 0, sizeof ho);
  ho.size = sizeof ho;
  ho.event_mode = WH_EVENTS_QUEUE;
  int rc = wh_hub_create(&ho, &c.hub);
  if (rc < 0) {
    fprintf(stderr, "wirehub-client: cannot start: %s\n", wh_strerror(rc));
    return 1;
  }
  int efd = -1;
  rc = wh_hub_event_fd(c.hub, &efd);
  if (rc < 0) {
    fprintf(stderr, "wirehub-client: event fd: %s\n", wh_strerror(rc));
    wh_hub_destroy(c.hub, 0);
    return 1;
  }

  wh_client_options co;
  memset(&co, 0, sizeof co);
  co.size = sizeof co;
  rc = wh_connect(c.hub, c.url, &co, &c.conn);
  if (rc < 0) {
    fprintf(stderr, "wirehub-client: cannot connect to %s: %s\n", c.url, wh_strerror(rc));
    wh_hub_destroy(c.hub, 0);
    return rc == WH_EURL ? 2 : 1;
  }

  long long close_deadline = -1;
  while (c.state != DONE) {
    struct pollfd pfd[2];
    int nfds = 1;
    pfd[0].fd = efd;
    pfd[0].events = POLLIN;
    if (c.state == OPEN && !c.stdin_eof && !c.backpressured) {
      pfd[1].fd = STDIN_FILENO;
      pfd[1].events = POLLIN;
      nfds = 2;
    }
    int timeout = -1;
    if (c.state == CLOSING) {
      if (close_deadline < 0) close_deadline = now_ms() + CLOSE_WAIT_MS;
      long long left = close_deadline - now_ms();
      if (left <= 0) {
        fprintf(stderr, "wirehub-client: no close frame from the server within %d ms\n", CLOSE_WAIT_MS);
        break;
      }
      timeout = (int)left;
    }
    int n = poll(pfd, (nfds_t)nfds, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("wirehub-client: poll");
      break;
    }
    if (pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      if (drain_events(&c) < 0) break;
    }
    if (nfds == 2 && c.state == OPEN && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (read_stdin(&c) < 0) {
        /* Unreadable input: still close politely. */
        c.stdin_eof = 1;
        c.input_failed = 1;
        start_close(&c);
      }
    }
  }
  int code = c.state == DONE && !c.input_failed ? c.exit_code : 1;
  free(c.line);
  rc = wh_hub_destroy(c.hub, 1000);
  if (rc < 0) {
    fprintf(stderr, "wirehub-client: shutdown: %s\n", wh_strerror(rc));
    code = 1;
  }
  return code;
}
