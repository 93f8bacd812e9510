// cloexec_test.cpp — no socket of the engine outlives an exec: a child the
// application spawns (a redis-server it starts, a CGI) must not inherit the
// listening socket (the port would stay bound) or a connection (its peer would
// never see it close). Found with a Redis restart: the restarted redis-server
// held a client socket, so the server side never saw the client's FIN.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test_util.hpp"

using namespace wht;

namespace {

// The sockets of this process that would survive an exec.
std::vector<std::string> inheritable_sockets() {
  std::vector<std::string> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == ::dirfd(d)) continue;
    char target[256] = {0};
    const std::string path = std::string("/proc/self/fd/") + e->d_name;
    if (::readlink(path.c_str(), target, sizeof target - 1) <= 0) continue;
    if (std::string(target).rfind("socket:", 0) != 0) continue;
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) out.push_back(std::to_string(fd) + " " + target);
  }
  ::closedir(d);
  return out;
}

}  // namespace

TEST(CloseOnExec, NoEngineSocketIsInheritedByAChildProcess) {
  ASSERT_TRUE(inheritable_sockets().empty()) << "the test process had inheritable sockets already";
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  wh_client_options co = client_options();
  wh_conn* client = nullptr;
  ASSERT_EQ(wh_connect(hub.get(), ws_url(wh_server_port(s)).c_str(), &co, &client), 0);
  // Both ends open: the server's and the client's.
  ASSERT_TRUE(hub.rec().wait_count(WH_EV_OPEN, 2));
  const auto leaked = inheritable_sockets();
  std::string list;
  for (const auto& l : leaked) list += l + "; ";
  EXPECT_TRUE(leaked.empty()) << list;
  hub.destroy();
}
