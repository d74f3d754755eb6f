// vmm/agent/main.cpp — warren-agent: PID 1 (or its direct child) of every sandbox. Parses the
// command line, sets up signals and the root fd, then runs the event loop forever. It must never
// die from a signal sent inside the sandbox and must reap every orphan.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vmm/agent/server.hpp"

namespace {

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: warren-agent (--listen-fd N | --listen PATH) [--root DIR]\n"
               "  --listen-fd N  serve on an already bound, listening unix socket fd\n"
               "  --listen PATH  bind a unix socket at PATH (replacing a stale one)\n"
               "  --root DIR     confine file operations to DIR (default /)\n");
  std::exit(2);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "warren-agent: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

int bind_listener(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "warren-agent: socket path too long: %s\n", path.c_str());
    std::exit(2);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (listen(fd, 64) != 0) die("listen");
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  int listen_fd = -1;
  std::string listen_path, root = "/";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--listen-fd") listen_fd = std::atoi(argv[++i]);
    else if (a == "--listen") listen_path = argv[++i];
    else if (a == "--root") root = argv[++i];
    else usage();
  }
  if ((listen_fd < 0) == listen_path.empty()) usage();

  // Signals: SIGCHLD is read from a signalfd; SIGPIPE becomes EPIPE. As PID 1 the kernel already
  // drops signals we have no handler for; as a direct child we become the subreaper instead.
  signal(SIGPIPE, SIG_IGN);
  if (getpid() == 1) {
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU})
      signal(s, SIG_IGN);
  } else {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");

  warren::agent::context ctx;
  ctx.root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ctx.root_fd < 0) die(("--root " + root).c_str());
  ctx.root_is_slash = root == "/";

  if (listen_fd >= 0) {
    fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  } else {
    listen_fd = bind_listener(listen_path);
  }

  ctx.loop.add(sfd, EPOLLIN, [&ctx, sfd](uint32_t) {
    signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    }
    warren::agent::reap_children(ctx);
  });
  warren::agent::server srv(ctx, listen_fd);
  srv.start();
  warren::agent::reap_children(ctx);  // children that exited before the signalfd existed
  ctx.loop.run();
}
