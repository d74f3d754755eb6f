// vmm/jail/jail_init.cpp — the `warren __jail-init` helper: a fresh single-threaded process
// (posix_spawn'd by the daemon) that builds one sandbox and exits, leaving the sandbox's PID 1
// reparented to the host's init. It must never return before the agent is exec'd or failed.
//
//   helper H (host root)          C1 (becomes ns root)               C2 = sandbox PID 1
//   join cgroups, fork C1 ──────► unshare(USER)          'u' ──►
//   write uid/gid maps     ◄──'m'
//                                 unshare(NS NET UTS IPC CGROUP PID)
//                                 make / rprivate        'n' ──►
//   setns(C1's mnt ns), idmapped lower + overlay, veth → C1's netns
//                          ──'g'► lo/eth0/route, hostname, fork ─────► setsid, /proc /dev,
//   read C2's pid          ◄──pid  exit                                 pivot_root, caps,
//   wait for exec (CLOEXEC error pipe hits EOF)                          seccomp, execveat(agent)
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "vmm/jail/jail_driver.hpp"
#include "vmm/jail/launch_plan.hpp"
#include "vmm/jail/netlink.hpp"
#include "vmm/jail/rootfs.hpp"
#include "vmm/jail/seccomp.hpp"
#include "vmm/jail/userns.hpp"

namespace warren::vmm {
namespace {

using jail::launch_plan;
using jail::launch_result;

// One failure record on the O_DIRECT (packet) error pipe; whoever fails first writes it.
struct wire_error {
  char step[60];
  int err;
};

constexpr int listen_fd = 3;

[[noreturn]] void report(int err_fd, const char* step, int err) {
  wire_error w{};
  snprintf(w.step, sizeof w.step, "%s", step);
  w.err = err < 0 ? -err : err;
  ssize_t n = write(err_fd, &w, sizeof w);
  (void)n;
  _exit(1);
}

bool send_byte(int fd, char c) { return write(fd, &c, 1) == 1; }
bool expect_byte(int fd, char c) {
  char got = 0;
  ssize_t n;
  do n = read(fd, &got, 1);
  while (n < 0 && errno == EINTR);
  return n == 1 && got == c;
}

// 'g' travels with the overlay root's fd (SCM_RIGHTS): the sandbox's root uid may not be
// allowed to walk the host path to it (data_dir can be 0700).
bool send_byte_with_fd(int sock, char c, int fd) {
  char cbuf[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{&c, 1};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  cmsghdr* cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  return sendmsg(sock, &m, MSG_NOSIGNAL) == 1;
}

int expect_byte_with_fd(int sock, char want) {
  char c = 0, cbuf[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{&c, 1};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  ssize_t n;
  do n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  cmsghdr* cm = CMSG_FIRSTHDR(&m);
  if (n != 1 || c != want || !cm || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

uint32_t parse_ipv4(const std::string& s) {
  in_addr a{};
  inet_pton(AF_INET, s.c_str(), &a);
  return ntohl(a.s_addr);
}

std::vector<std::string> agent_env(const launch_plan& p) {
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOME=/root", "HOSTNAME=" + p.id, "LANG=C.UTF-8"};
  for (auto& [k, v] : p.env) {
    std::string prefix = k + "=";
    bool replaced = false;
    for (auto& e : env)
      if (e.compare(0, prefix.size(), prefix) == 0) e = prefix + v, replaced = true;
    if (!replaced) env.push_back(prefix + v);
  }
  return env;
}

// C2: PID 1 of the new pid namespace. Ends in the agent or in report().
[[noreturn]] void run_pid1(const launch_plan& p, int err_fd, int agent_fd, int log_fd, int root_fd) {
  const char* step = "";
  if (setsid() < 0) report(err_fd, "setsid", errno);
  if (int rc = jail::enter_root(p, root_fd, &step)) report(err_fd, step, rc);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) report(err_fd, "open /dev/null", errno);
  if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) report(err_fd, "dup2 stdio", errno);
  if (fcntl(listen_fd, F_SETFD, 0) < 0) report(err_fd, "agent socket fd 3", errno);
  // Nothing but 0-3 may reach the agent; the error pipe and agent fd go at exec (CLOEXEC).
  if (syscall(SYS_close_range, 4u, ~0u, CLOSE_RANGE_CLOEXEC) < 0) report(err_fd, "close_range", errno);
  std::vector<std::string> env = agent_env(p);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char a0[] = "warren-agent", a1[] = "--listen-fd", a2[] = "3";
  char* argv[] = {a0, a1, a2, nullptr};
  if (int rc = jail::install_seccomp()) report(err_fd, "seccomp", rc);
  if (int rc = jail::drop_capabilities()) report(err_fd, "drop capabilities", rc);
  syscall(SYS_execveat, agent_fd, "", argv, envp.data(), AT_EMPTY_PATH);
  report(err_fd, "execveat agent", errno);
}

// C1: creates the namespaces, configures the inside of the netns, forks PID 1, exits.
[[noreturn]] void run_c1(const launch_plan& p, int rd, int wr, int err_fd, int agent_fd, int log_fd) {

  if (unshare(CLONE_NEWUSER) < 0) report(err_fd, "unshare user", errno);
  if (!send_byte(wr, 'u') || !expect_byte(rd, 'm')) _exit(1);  // the helper reports its own error
  if (int rc = jail::become_ns_root()) report(err_fd, "setresuid in userns", rc);
  if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWPID) < 0)
    report(err_fd, "unshare namespaces", errno);
  // Nothing mounted from here on may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) report(err_fd, "make / rprivate", errno);
  if (!send_byte(wr, 'n')) _exit(1);
  int root_fd = expect_byte_with_fd(rd, 'g');  // the overlay, mounted by the helper
  if (root_fd < 0) _exit(1);

  int lo = jail::nl::link_index("lo");
  if (lo < 0 || jail::nl::link_up(lo) < 0) report(err_fd, "lo up", lo < 0 ? lo : errno);
  int eth = jail::nl::link_index("eth0");
  if (eth < 0) report(err_fd, "find eth0", eth);
  if (int rc = jail::nl::add_ipv4(eth, parse_ipv4(p.guest_addr), p.prefix)) report(err_fd, "eth0 address", rc);
  if (int rc = jail::nl::link_up(eth)) report(err_fd, "eth0 up", rc);
  if (int rc = jail::nl::add_default_route(parse_ipv4(p.host_addr))) report(err_fd, "default route", rc);
  if (sethostname(p.id.data(), p.id.size()) < 0) report(err_fd, "sethostname", errno);

  pid_t c2 = fork();
  if (c2 < 0) report(err_fd, "fork pid 1", errno);
  if (c2 == 0) {
    close(rd);
    close(wr);
    run_pid1(p, err_fd, agent_fd, log_fd, root_fd);
  }
  int32_t pid = c2;  // C1 is still in the host pid ns: this is the host's pid of PID 1
  ssize_t n = write(wr, &pid, sizeof pid);
  _exit(n == sizeof pid ? 0 : 1);
}

launch_result fail(const char* step, int err, const std::string& detail = {}) {
  launch_result r;
  r.step = step;
  r.err = err < 0 ? -err : err;
  r.detail = detail;
  return r;
}

// The error a child reported, if any (non-blocking: records are written before exit).
bool child_error(int err_rd, launch_result& out) {
  wire_error w{};
  ssize_t n;
  do n = read(err_rd, &w, sizeof w);
  while (n < 0 && errno == EINTR);
  if (n != sizeof w) return false;
  w.step[sizeof w.step - 1] = 0;
  out = fail(w.step, w.err);
  return true;
}

// Joins the sandbox's v1 cgroups by writing 0 to `tasks`: that moves only this (single-threaded)
// process and skips the global cgroup_threadgroup_rwsem, whose write side waits for an RCU
// grace period (~13 ms at HZ=250 without CONFIG_CGROUP_FAVOR_DYNMODS) — cgroup.procs takes it.
// A cgroup2 dir (no `tasks`) is returned as an fd for clone3(CLONE_INTO_CGROUP) instead.
launch_result join_cgroups(const launch_plan& p, int& cgroup2_fd, std::string& cgroup2_dir) {
  cgroup2_fd = -1;
  for (auto& d : p.cgroup_dirs) {
    std::string tasks = d + "/tasks";
    int fd = open(tasks.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      cgroup2_fd = open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (cgroup2_fd < 0) return fail("open cgroup2 dir", errno, d);
      cgroup2_dir = d;
      continue;
    }
    bool ok = fd >= 0 && write(fd, "0", 1) == 1;
    int e = errno;
    if (fd >= 0) close(fd);
    if (!ok) return fail("join cgroup", e, d);
  }
  launch_result r;
  r.ok = true;
  return r;
}

// fork() that starts the child in the cgroup2 dir (if any): no migration, so no grace period.
// Raw clone3 without CLONE_VM behaves like fork for this single-threaded process (no atfork
// handlers registered). Falls back to cgroup.procs on a kernel without CLONE_INTO_CGROUP.
pid_t fork_into_cgroup(int cgroup2_fd, const std::string& dir) {
  if (cgroup2_fd < 0) return fork();
  struct {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
  } args{};
  args.flags = 0x200000000ULL;  // CLONE_INTO_CGROUP (Linux 5.7)
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup2_fd);
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL)) return static_cast<pid_t>(pid);
  std::string procs = dir + "/cgroup.procs", me = std::to_string(getpid());
  int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && write(fd, me.data(), me.size()) == static_cast<ssize_t>(me.size());
  if (fd >= 0) close(fd);
  return ok ? fork() : -1;
}

launch_result build(const launch_plan& p) {
  int cgroup2_fd = -1;
  std::string cgroup2_dir;
  if (auto j = join_cgroups(p, cgroup2_fd, cgroup2_dir); !j.ok) return j;
  int agent_fd = open(p.agent_path.c_str(), O_PATH | O_CLOEXEC);
  if (agent_fd < 0) return fail("open agent binary", errno, p.agent_path);
  std::string log = p.run_dir + "/agent.log";
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return fail("open agent.log", errno);
  int to_c1[2], from_c1[2], err[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to_c1) || pipe2(from_c1, O_CLOEXEC) ||
      pipe2(err, O_CLOEXEC | O_DIRECT))
    return fail("pipe", errno);

  pid_t c1 = fork_into_cgroup(cgroup2_fd, cgroup2_dir);
  if (c1 < 0) return fail("fork", errno);
  if (c1 == 0) {
    if (cgroup2_fd >= 0) close(cgroup2_fd);
    close(to_c1[1]);
    close(from_c1[0]);
    close(err[0]);
    run_c1(p, to_c1[0], from_c1[1], err[1], agent_fd, log_fd);
  }
  close(to_c1[0]);
  close(from_c1[1]);
  close(err[1]);
  launch_result r;
  auto abort_with = [&](launch_result res) {
    kill(c1, SIGKILL);
    waitpid(c1, nullptr, 0);
    launch_result child;
    return child_error(err[0], child) ? child : res;
  };
  if (!expect_byte(from_c1[0], 'u')) return abort_with(fail("child exited before userns", EPIPE));
  if (int rc = jail::write_id_maps(c1, p.uid_base, p.uid_count)) return abort_with(fail("write uid_map", rc));
  send_byte(to_c1[1], 'm');
  if (!expect_byte(from_c1[0], 'n')) return abort_with(fail("child exited before namespaces", EPIPE));

  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", c1);
  int userns_fd = open(path, O_RDONLY | O_CLOEXEC);
  snprintf(path, sizeof path, "/proc/%d/ns/mnt", c1);
  int mntns_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (userns_fd < 0 || mntns_fd < 0) return abort_with(fail("open namespace fds", errno));
  // Host root joins the sandbox's mount namespace: mounts made here are fresh (not MNT_LOCKED
  // copies) and may use an idmapping, which needs privilege over the image's filesystem.
  if (setns(mntns_fd, CLONE_NEWNS) < 0) return abort_with(fail("setns mnt", errno));
  const char* step = "";
  if (int rc = jail::mount_overlay_root(p, userns_fd, &step)) return abort_with(fail(step, rc));
  if (int rc = jail::nl::create_veth(p.host_if.c_str(), "eth0", c1)) return abort_with(fail("create veth", rc, p.host_if));
  int idx = jail::nl::link_index(p.host_if.c_str());
  if (idx < 0) return abort_with(fail("find host veth", idx));
  if (int rc = jail::nl::add_ipv4(idx, parse_ipv4(p.host_addr), p.prefix)) return abort_with(fail("host veth address", rc));
  if (int rc = jail::nl::link_up(idx)) return abort_with(fail("host veth up", rc));
  std::string root = p.run_dir + "/root";
  int root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return abort_with(fail("open overlay root", errno));
  if (!send_byte_with_fd(to_c1[1], 'g', root_fd)) return abort_with(fail("pass overlay root", errno));
  close(root_fd);

  int32_t pid1 = 0;
  ssize_t n;
  do n = read(from_c1[0], &pid1, sizeof pid1);
  while (n < 0 && errno == EINTR);
  int st = 0;
  waitpid(c1, &st, 0);
  launch_result child;
  // Blocks until PID 1 execs the agent (its CLOEXEC copy closes) or reports a failure.
  if (child_error(err[0], child)) return child;
  if (n != sizeof pid1) return fail("fork pid 1", EPIPE);
  r.ok = true;
  r.init_pid = pid1;
  return r;
}

}  // namespace

int jail_init_main(int, char**) {
  signal(SIGPIPE, SIG_IGN);
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  launch_result r;
  if (auto plan = jail::decode_launch_plan(text)) r = build(*plan);
  else r = fail("decode plan", EINVAL);
  std::string out = jail::encode(r) + "\n";
  ssize_t n = write(1, out.data(), out.size());
  (void)n;
  return r.ok ? 0 : 1;
}

}  // namespace warren::vmm
