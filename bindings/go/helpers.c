#include <string.h>

#include "wirehub_go.h"
#include "_cgo_export.h"

/* The engine marks the end of each I/O turn (WH_EV_BATCH_END, opt-in through
 * wh_hub_options.flags), so messages are copied here and cross
 * into Go once per batch instead of once per message: a C-to-Go transition
 * costs about a fifth of what the engine spends on a small echoed message.
 * Any other event flushes the batch first, so Go sees every event in the
 * engine's order. One buffer per I/O thread. */
#define WH_GO_BATCH_ITEMS 256
#define WH_GO_BATCH_BYTES 65536
#define WH_GO_BATCH_MAX_MESSAGE 4096
static __thread struct {
  wh_go_item items[WH_GO_BATCH_ITEMS];
  char buf[WH_GO_BATCH_BYTES];
  int n;
  size_t used;
  uintptr_t hub;
} wh_go_batch;

static void wh_go_flush(void) {
  if (wh_go_batch.n) {
    int n = wh_go_batch.n;
    wh_go_batch.n = 0;
    wh_go_batch.used = 0;
    goWirehubBatch(wh_go_batch.hub, wh_go_batch.items, n, wh_go_batch.buf);
  }
}

void wh_go_trampoline(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  if (ev->type == WH_EV_MESSAGE && ev->len <= WH_GO_BATCH_MAX_MESSAGE) {
    if (wh_go_batch.n && wh_go_batch.hub != (uintptr_t)user_data) wh_go_flush();
    if (wh_go_batch.n == WH_GO_BATCH_ITEMS || wh_go_batch.used + ev->len > WH_GO_BATCH_BYTES)
      wh_go_flush();
    wh_go_item* it = &wh_go_batch.items[wh_go_batch.n++];
    it->id = (uintptr_t)ev->user_data;
    it->flags = ev->flags;
    it->len = ev->len;
    it->off = wh_go_batch.used;
    if (ev->len) memcpy(wh_go_batch.buf + wh_go_batch.used, ev->data, ev->len);
    wh_go_batch.used += ev->len;
    wh_go_batch.hub = (uintptr_t)user_data;
    return;
  }
  wh_go_flush();
  if (ev->type == WH_EV_BATCH_END) return;
  goWirehubEvent((wh_event*)ev, (uintptr_t)user_data, (uintptr_t)ev->user_data);
}

int wh_go_hub_create(int io_threads, uintptr_t handle, wh_hub** out) {
  wh_hub_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.io_threads = io_threads;
  o.event_mode = WH_EVENTS_CALLBACK;
  o.on_event = wh_go_trampoline;
  o.user_data = (void*)handle;
  o.flags = WH_HUB_BATCH_END;
  return wh_hub_create(&o, out);
}

int wh_go_set_conn_handle(wh_conn* conn, uintptr_t handle) {
  return wh_conn_set_user_data(conn, (void*)handle);
}

int wh_go_request_accept(wh_request* req, const char* subprotocol) {
  return wh_request_accept(req, subprotocol, NULL, NULL);
}

int wh_go_connect(wh_hub* hub, const char* url, wh_client_options* o, uintptr_t handle,
                  wh_conn** out) {
  o->size = sizeof *o;
  o->user_data = (void*)handle;
  return wh_connect(hub, url, o, out);
}

int wh_go_listen(wh_hub* hub, wh_server_options* o, wh_server** out) {
  o->size = sizeof *o;
  return wh_server_listen(hub, o, out);
}

int wh_go_send(wh_conn* conn, uintptr_t data, size_t len, int flags) {
  return wh_conn_send(conn, (const void*)data, len, flags);
}

int wh_go_broadcast(wh_server* server, uintptr_t data, size_t len, int flags, wh_conn* except) {
  return wh_server_broadcast(server, (const void*)data, len, flags, except);
}
