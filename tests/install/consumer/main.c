/* A program built only from the installed wirehub: header, library, and
 * the package files that find them. It opens a server and a client on the
 * same hub and checks one message goes round. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wirehub.h>

static volatile int got = 0;

static void on_event(wh_hub* hub, const wh_event* ev, void* user_data) {
  (void)hub;
  (void)user_data;
  if (ev->type == WH_EV_MESSAGE && ev->server) wh_conn_send(ev->conn, ev->data, ev->len, ev->flags);
  if (ev->type == WH_EV_MESSAGE && !ev->server && ev->len == 5 && memcmp(ev->data, "hello", 5) == 0) got = 1;
  if (ev->type == WH_EV_OPEN && !ev->server) wh_conn_send(ev->conn, "hello", 5, WH_TEXT);
}

int main(void) {
  if (wh_abi_version() != WH_ABI_VERSION) return 2;
  wh_hub_options ho = {sizeof ho, 1, WH_EVENTS_CALLBACK, on_event, NULL};
  wh_hub* hub;
  if (wh_hub_create(&ho, &hub) != 0) return 3;
  wh_server_options so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.host = "127.0.0.1";
  wh_server* server;
  int rc = wh_server_listen(hub, &so, &server);
  if (rc != 0) {
    fprintf(stderr, "listen: %s\n", wh_strerror(rc));
    return 4;
  }
  char url[64];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/", wh_server_port(server));
  wh_conn* conn;
  if (wh_connect(hub, url, NULL, &conn) != 0) return 5;
  for (int i = 0; i < 500 && !got; ++i) usleep(10000);
  wh_hub_destroy(hub, 1000);
  printf("wirehub %s: %s\n", wh_version_string(), got ? "echo ok" : "no echo");
  return got ? 0 : 1;
}
