/*
 * The interop client on the C ABI (see ../README.md for the script).
 *   c_client URL NAME COMPRESS
 * Callback mode: events arrive on the I/O thread, which prints RECV lines;
 * the main thread reads GO from stdin and sends.
 */
#define _POSIX_C_SOURCE 200809L
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirehub.h"

#define MIB (1024u * 1024u)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int opened, closed, failed;
static long received, total = -1;
static wh_conn* conn;

static void print_digest(const char* what, int text, const void* data, size_t len) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  char hex[65];
  for (unsigned i = 0; i < 32; ++i) sprintf(hex + 2 * i, "%02x", md[i]);
  printf("%s %c %zu %s\n", what, text ? 'T' : 'B', len, hex);
  fflush(stdout);
}

static void maybe_finish(void) { /* mu held */
  if (total >= 0 && received == total) wh_conn_close(conn, 1000, "done", 4);
}

static void on_event(wh_hub* hub, const wh_event* ev, void* ud) {
  (void)hub;
  (void)ud;
  pthread_mutex_lock(&mu);
  switch (ev->type) {
    case WH_EV_OPEN:
      opened = 1;
      break;
    case WH_EV_MESSAGE:
      print_digest("RECV", (ev->flags & WH_TEXT) != 0, ev->data, ev->len);
      ++received;
      maybe_finish();
      break;
    case WH_EV_CLOSE:
      closed = 1;
      if (ev->error) {
        failed = 1;
        fprintf(stderr, "c_client: closed: %s (code %d)\n", wh_strerror(ev->error), ev->code);
      }
      break;
    default:
      break;
  }
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void send_or_die(const void* data, size_t len, int flags, int text) {
  int rc = wh_conn_send(conn, data, len, flags);
  if (rc < 0) {
    fprintf(stderr, "c_client: send: %s\n", wh_strerror(rc));
    exit(1);
  }
  if (text >= 0) print_digest("SENT", text, data, len);
}

static char* prefixed(const char* name, int idx, size_t total_len, size_t* plen) {
  char* p = malloc(total_len);
  if (!p) exit(1);
  *plen = (size_t)snprintf(p, total_len, "%s|%d|", name, idx);
  return p;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: c_client URL NAME COMPRESS\n");
    return 2;
  }
  const char* name = argv[2];
  wh_hub_options ho = {0};
  ho.size = sizeof ho;
  ho.on_event = on_event;
  wh_hub* hub = NULL;
  int rc = wh_hub_create(&ho, &hub);
  if (rc) return 1;
  wh_client_options co = {0};
  co.size = sizeof co;
  co.deflate.enabled = atoi(argv[3]);
  co.limits.max_buffered = 64u * MIB;
  pthread_mutex_lock(&mu);
  rc = wh_connect(hub, argv[1], &co, &conn);
  if (rc) {
    fprintf(stderr, "c_client: connect: %s\n", wh_strerror(rc));
    return 1;
  }
  while (!opened && !closed) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  if (!opened) return 1;
  const char* ext = wh_conn_extensions(conn);
  printf("EXTENSIONS %s\nREADY\n", ext && *ext ? ext : "-");
  fflush(stdout);

  long go = -1;
  if (scanf("GO %ld", &go) != 1 || go < 0) {
    fprintf(stderr, "c_client: expected GO <total>\n");
    return 1;
  }
  pthread_mutex_lock(&mu);
  total = go;
  maybe_finish();
  pthread_mutex_unlock(&mu);

  char small[128];
  int n = snprintf(small, sizeof small, "%s|1|hello from %s \xe2\x9c\x93", name, name);
  send_or_die(small, (size_t)n, WH_TEXT, 1);

  size_t len;
  char* b = prefixed(name, 2, 64 + 64, &len);
  for (int i = 0; i < 64; ++i) b[len++] = (char)i;
  send_or_die(b, len, WH_BINARY, 0);
  free(b);

  char* t = prefixed(name, 3, MIB, &len);
  for (size_t i = 0; len < MIB; ++i) t[len++] = "abcdefghijklmnopqrstuvwxyz"[i % 26];
  send_or_die(t, MIB, WH_TEXT, 1);
  free(t);

  char* bin = prefixed(name, 4, MIB, &len);
  for (size_t i = 0; len < MIB; ++i) bin[len++] = (char)((i * 31 + 7) & 255);
  send_or_die(bin, MIB, WH_BINARY, 0);
  free(bin);

  char f1[64];
  int n1 = snprintf(f1, sizeof f1, "%s|5|", name);
  const char* f2 = "part two, ";
  const char* f3 = "part three \xe2\x9c\x93";
  send_or_die(f1, (size_t)n1, WH_TEXT | WH_MORE, -1);
  send_or_die(f2, strlen(f2), WH_MORE, -1);
  send_or_die(f3, strlen(f3), 0, -1);
  char whole[128];
  int nw = snprintf(whole, sizeof whole, "%s%s%s", f1, f2, f3);
  print_digest("SENT", 1, whole, (size_t)nw);

  pthread_mutex_lock(&mu);
  while (!closed) pthread_cond_wait(&cv, &mu);
  int ok = !failed && received == total;
  pthread_mutex_unlock(&mu);
  wh_hub_destroy(hub, 2000);
  if (!ok) return 1;
  printf("DONE\n");
  return 0;
}
