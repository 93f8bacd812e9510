/* C helpers of the Go binding (helpers.c). cgo cannot convert between
 * uintptr and void* without tripping go vet, nor take the address of an
 * exported Go function, so these few lines live on the C side. */
#ifndef WIREHUB_GO_H
#define WIREHUB_GO_H
#include <stdint.h>
#include <stdlib.h>
#include "wirehub.h"

/* The hub callback: forwards to goWirehubEvent(ev, hub handle, conn registry id). */
void wh_go_trampoline(wh_hub* hub, const wh_event* ev, void* user_data);
/* One buffered message of a batch (see helpers.c). */
typedef struct wh_go_item {
  uintptr_t id; /* the connection's registry id */
  int flags;
  size_t len;
  size_t off; /* in the batch's byte buffer */
} wh_go_item;

int wh_go_hub_create(int io_threads, uintptr_t handle, wh_hub** out);
int wh_go_set_conn_handle(wh_conn* conn, uintptr_t handle);
int wh_go_request_accept(wh_request* req, const char* subprotocol);
int wh_go_connect(wh_hub* hub, const char* url, wh_client_options* o, uintptr_t handle,
                  wh_conn** out);
int wh_go_send(wh_conn* conn, uintptr_t data, size_t len, int flags);
int wh_go_broadcast(wh_server* server, uintptr_t data, size_t len, int flags, wh_conn* except);
int wh_go_listen(wh_hub* hub, wh_server_options* o, wh_server** out);
#endif
