// vmm/jail/sandbox_process.cpp — spawn/answer/reap of the helper; pid identity; agent socket.
// Only posix_spawn here: after fork() in a multithreaded daemon nothing else would be safe.
#include "vmm/jail/sandbox_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/owned_fd.hpp"
#include "vmm/jail/host_file.hpp"
#include "vmm/jail/jail_driver.hpp"

extern char** environ;

namespace warren::vmm::jail {

expected<launch_result> run_helper(const std::string& helper_path, const launch_plan& plan, int listen_fd,
                                   int timeout_ms) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return make_error(errc::internal, "pipe: " + errno_name(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return make_error(errc::internal, "pipe: " + errno_name(errno));
  }
  owned_fd in_w{in[1]}, out_r{out[0]}, in_r{in[0]}, out_w{out[1]};
  // dup2 onto 3 clears CLOEXEC only when the numbers differ: make sure they do.
  owned_fd lfd{fcntl(listen_fd, F_DUPFD_CLOEXEC, 10)};
  if (lfd.get() < 0) return make_error(errc::internal, "dup listen fd: " + errno_name(errno));

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, lfd.get(), 3);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // The daemon's threads block signals and ignore SIGPIPE; the sandbox must start clean. Its own
  // session keeps a terminal's hangup or Ctrl-C aimed at the daemon away from the sandboxes.
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  std::string sub = jail_init_subcommand;
  char* argv[] = {const_cast<char*>(helper_path.c_str()), sub.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, helper_path.c_str(), &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) return make_error(errc::internal, "spawn " + helper_path + ": " + errno_name(rc));
  in_r.reset();
  out_w.reset();

  std::string text = encode(plan);
  for (size_t off = 0; off < text.size();) {
    ssize_t n = write(in_w.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the helper died; its exit tells the rest
    off += static_cast<size_t>(n);
  }
  in_w.reset();

  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out_r.get(), POLLIN, 0};
    int pr = poll(&p, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    char buf[1024];
    ssize_t n = read(out_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  if (timed_out) return make_error(errc::timeout, "sandbox " + plan.id + " step jail-init: timed out");
  auto r = decode_launch_result(answer);
  if (!r) return make_error(errc::internal, "sandbox " + plan.id + " step jail-init: no answer (status " +
                                                std::to_string(st) + ")");
  return *r;
}

std::optional<uint64_t> process_start_time(int pid) {
  if (pid <= 0) return std::nullopt;
  auto s = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!s) return std::nullopt;
  auto rp = s->rfind(')');  // comm may contain spaces and parentheses
  if (rp == std::string::npos) return std::nullopt;
  const char* c = s->c_str() + rp + 2;  // field 3 (state)
  for (int field = 3; field < 22; ++field) {
    c = strchr(c, ' ');
    if (!c) return std::nullopt;
    ++c;
  }
  return strtoull(c, nullptr, 10);
}

bool same_process(int pid, uint64_t start_time) {
  auto t = process_start_time(pid);
  return t && *t == start_time;
}

expected<int> listen_unix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return make_error(errc::internal, "agent socket path too long (" + path + "): shorten data_dir");
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(errc::internal, "socket: " + errno_name(errno));
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 128) != 0) {
    int e = errno;
    close(fd);
    return make_error(errc::internal, "bind " + path + ": " + errno_name(e));
  }
  chmod(path.c_str(), 0600);  // only the daemon (root) talks to agents
  return fd;
}

bool connect_unix(const std::string& path, int timeout_ms) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return false;
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  do {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

}  // namespace warren::vmm::jail
