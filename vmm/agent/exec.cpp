// vmm/agent/exec.cpp — one exec stream: a child in its own session (setsid) with pipes or a pty,
// output forwarded only while the host has granted credit (so a host that stops reading makes
// the child block on a full pipe), stdin written as the pipe accepts it, timeout → SIGKILL to
// the whole process group. Never leaves a process group behind when its connection drops.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <vector>

#include "vmm/agent/inbound.hpp"
#include "vmm/agent/pty.hpp"
#include "vmm/agent/server.hpp"
#include "vmm/agent/users.hpp"

extern char** environ;

namespace warren::agent {

namespace {

using proto::msg;
using clock = std::chrono::steady_clock;
constexpr auto exit_grace = std::chrono::milliseconds(100);

// What the child reports through its CLOEXEC pipe when it cannot exec.
struct child_failure {
  int stage;  // 1 = chdir, 2 = exec, 3 = become the user
  int err;
};

// Kills the child's process group and every other group of its session: under job control (an
// interactive shell on a pty) background jobs and the foreground job get groups of their own,
// and a terminal's socket closing must end them too. Processes that called setsid are not ours.
void kill_session(pid_t sid) {
  kill(-sid, SIGKILL);
  DIR* d = opendir("/proc");
  if (!d) return;
  while (auto* e = readdir(d)) {
    char* end = nullptr;
    long p = std::strtol(e->d_name, &end, 10);
    if (*end || p <= 1 || p == getpid()) continue;
    if (getsid(static_cast<pid_t>(p)) != sid) continue;
    pid_t g = getpgid(static_cast<pid_t>(p));
    if (g > 1) kill(-g, SIGKILL);  // the whole job, children forked meanwhile included
    kill(static_cast<pid_t>(p), SIGKILL);
  }
  closedir(d);
}

std::vector<std::string> merged_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// In the child between fork and exec: only async-signal-safe calls from here on would be the
// textbook rule; the agent is single-threaded, so the allocator is in a sane state as well.
[[noreturn]] void run_child(int in, int out, int err, bool pty, const std::string& cwd, const user_entry* user,
                            std::vector<char*>& argv, std::vector<char*>& envp, int report) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // the agent blocks SIGCHLD; exec'd code must not
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
  setsid();
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  if (pty) ioctl(0, TIOCSCTTY, 0);  // controlling terminal → job control, ^C, SIGWINCH
  child_failure f{};
  // As the user: its groups, then its gid, then its uid (after which none can be changed back).
  if (user && (setgroups(user->groups.size(), user->groups.data()) != 0 || setgid(user->gid) != 0 ||
               setuid(user->uid) != 0)) {
    f = {3, errno};
    (void)!write(report, &f, sizeof f);
    _exit(127);
  }
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
    f = {1, errno};
    (void)!write(report, &f, sizeof f);
    _exit(127);
  }
  environ = envp.data();  // execvp searches the PATH of the merged env
  execvp(argv[0], argv.data());
  f = {2, errno};
  (void)!write(report, &f, sizeof f);
  _exit(127);
}

class exec_stream final : public stream {
 public:
  exec_stream(connection& c, uint32_t id, const proto::exec_request& req)
      : stream(c, id), credit_(std::min(req.window, proto::max_window)), stdin_(proto::default_window),
        pty_(req.pty) {}

  ~exec_stream() override { release(); }

  // Returns false after having answered with an error.
  bool spawn(const proto::exec_request& req, const std::optional<user_entry>& user) {
    std::vector<std::string> args = req.argv;
    if (!req.command.empty()) args = {"/bin/sh", "-c", req.command};
    std::map<std::string, std::string> extra;
    std::string cwd = req.cwd;
    if (user) {  // a login-like environment of that user; the request's env still wins
      extra = {{"HOME", user->home}, {"USER", user->name}, {"LOGNAME", user->name}};
      if (!user->shell.empty()) extra["SHELL"] = user->shell;
      struct stat st{};
      if (cwd.empty() && ::stat(user->home.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) cwd = user->home;
    }
    for (auto& [k, v] : req.env) extra[k] = v;
    auto env = merged_env(extra);
    auto argv = c_strings(args);
    auto envp = c_strings(env);

    int child_in = -1, child_out = -1, child_err = -1;
    if (pty_) {
      pty_pair p;
      std::string why;
      if (!open_pty(req.cols, req.rows, p, why)) return fail("internal", why);
      out_fd_ = p.master;
      in_fd_ = fcntl(p.master, F_DUPFD_CLOEXEC, 3);  // separate epoll registration for writes
      child_in = child_out = child_err = p.slave;
    } else {
      int i[2], o[2], e[2];
      if (pipe2(i, O_CLOEXEC) || pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC))
        return fail("internal", std::string("pipe2: ") + std::strerror(errno));
      in_fd_ = i[1], child_in = i[0];
      out_fd_ = o[0], child_out = o[1];
      err_fd_ = e[0], child_err = e[1];
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
      return fail("internal", std::string("pipe2: ") + std::strerror(errno));

    started_ = clock::now();
    pid_ = fork();
    if (pid_ == 0) run_child(child_in, child_out, child_err, pty_, cwd, user ? &*user : nullptr, argv, envp, report[1]);
    int fork_errno = errno;
    ::close(report[1]);
    ::close(child_in);  // on a pty all three are the one slave fd
    if (!pty_) {
      ::close(child_out);
      ::close(child_err);
    }
    if (pid_ < 0) {
      ::close(report[0]);
      return fail("internal", std::string("fork: ") + std::strerror(fork_errno));
    }
    // Blocks only until the child has exec'd (or failed to): the report pipe is CLOEXEC.
    child_failure f{};
    ssize_t n;
    do n = read(report[0], &f, sizeof f);
    while (n < 0 && errno == EINTR);
    ::close(report[0]);
    if (n == static_cast<ssize_t>(sizeof f)) {
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      if (f.stage == 1) return fail("bad_request", "cannot chdir to " + cwd + ": " + std::strerror(f.err));
      if (f.stage == 3)
        return fail("forbidden", "cannot become user " + req.user + ": " + std::strerror(f.err));
      if (f.err == ENOENT) return fail("not_found", "no such executable: " + args[0]);
      return fail("bad_request", "cannot execute " + args[0] + ": " + std::strerror(f.err));
    }
    return true;
  }

  void start(const proto::exec_request& req) {
    auto& ctx = conn_.ctx();
    std::weak_ptr<exec_stream> weak = std::static_pointer_cast<exec_stream>(shared_from_this());
    ctx.children[pid_] = [weak](int status) {
      if (auto s = weak.lock()) s->on_reaped(status);
    };
    set_nonblock(out_fd_);
    set_nonblock(in_fd_);
    out_watch_ = ctx.loop.add(out_fd_, EPOLLIN, [weak](uint32_t) {
      if (auto s = weak.lock()) s->pump_output(s->out_fd_, msg::out);
    });
    if (err_fd_ >= 0) {
      set_nonblock(err_fd_);
      err_watch_ = ctx.loop.add(err_fd_, EPOLLIN, [weak](uint32_t) {
        if (auto s = weak.lock()) s->pump_output(s->err_fd_, msg::err);
      });
    }
    in_watch_ = ctx.loop.add(in_fd_, 0, [weak](uint32_t) {
      if (auto s = weak.lock()) s->pump_stdin();
    });
    if (req.timeout_ms) {
      timeout_timer_ = ctx.loop.after(std::chrono::milliseconds(req.timeout_ms), [weak] {
        if (auto s = weak.lock()) s->on_timeout();
      });
    }
    conn_.send(msg::opened, id_, proto::encode(proto::opened{pid_}));
    conn_.send(msg::credit, id_, proto::encode(proto::credit{stdin_.window()}));
  }

  void on_frame(proto::frame& f) override {
    switch (f.type) {
      case msg::data:
        if (!stdin_.push(f.payload)) return conn_.protocol_error("stdin beyond granted credit");
        pump_stdin();
        break;
      case msg::eof:
        stdin_eof_ = true;
        pump_stdin();
        break;
      case msg::credit: {
        if (!take_credit(f, credit_)) return;
        update_output_interest();
        if (exited_) try_finish();
        break;
      }
      case msg::signal: {
        proto::signal_request s;
        std::string why;
        if (!proto::decode(f.payload, s, why) || s.signal < 1 || s.signal >= NSIG) break;
        if (!exited_) s.signal == SIGKILL ? kill_session(pid_) : (void)kill(-pid_, s.signal);
        break;
      }
      case msg::resize: {
        proto::resize_request r;
        std::string why;
        if (pty_ && out_fd_ >= 0 && proto::decode(f.payload, r, why))
          set_winsize(out_fd_, r.cols, r.rows);  // the kernel sends SIGWINCH to the fg group
        break;
      }
      default: break;
    }
  }

  void abort() override {
    if (done_) return;
    done_ = true;
    if (pid_ > 0 && !exited_) kill_session(pid_);
    release();
  }

 private:
  bool fail(const char* code, std::string message) {
    done_ = true;
    release();
    conn_.fail(id_, code, std::move(message));
    return false;
  }

  void pump_output(int fd, msg type) {
    if (done_ || fd < 0) return;
    if (credit_ == 0) return update_output_interest();
    char buf[proto::max_chunk];
    ssize_t n = read(fd, buf, std::min<std::size_t>(credit_, sizeof buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {  // EOF, or EIO on a pty master once every slave fd is closed
      close_output(fd);
      if (exited_) try_finish();
      return;
    }
    credit_ -= static_cast<uint32_t>(n);
    conn_.send(type, id_, std::string_view(buf, static_cast<std::size_t>(n)));
    if (credit_ == 0) update_output_interest();
  }

  void close_output(int fd) {
    auto& loop = conn_.ctx().loop;
    if (fd == out_fd_) {
      loop.remove(out_watch_);
      ::close(out_fd_);
      out_fd_ = -1;
    } else if (fd == err_fd_) {
      loop.remove(err_watch_);
      ::close(err_fd_);
      err_fd_ = -1;
    }
  }

  void update_output_interest() {
    auto& loop = conn_.ctx().loop;
    uint32_t ev = credit_ > 0 ? uint32_t{EPOLLIN} : 0u;
    if (out_fd_ >= 0) loop.modify(out_watch_, ev);
    if (err_fd_ >= 0) loop.modify(err_watch_, ev);
  }

  void pump_stdin() {
    if (done_) return;
    if (in_fd_ < 0) {
      stdin_.discard();
    } else if (!stdin_.write_to(in_fd_)) {  // EPIPE: the child closed its stdin; drop the rest
      stdin_.discard();
      close_stdin();
    } else if (stdin_.empty() && stdin_eof_) {
      if (pty_) {
        // A pty has no half-close: ^D ends input for a reader in canonical mode.
        (void)!write(in_fd_, "\x04", 1);
        stdin_eof_ = false;
      } else {
        close_stdin();
      }
    }
    if (in_fd_ >= 0) conn_.ctx().loop.modify(in_watch_, stdin_.empty() ? 0u : uint32_t{EPOLLOUT});
    if (uint32_t g = stdin_.take_grant()) conn_.send(msg::credit, id_, proto::encode(proto::credit{g}));
  }

  void close_stdin() {
    if (in_fd_ < 0) return;
    conn_.ctx().loop.remove(in_watch_);
    ::close(in_fd_);
    in_fd_ = -1;
  }

  void on_timeout() {
    timeout_timer_ = 0;
    if (exited_ || done_) return;
    timed_out_ = true;
    kill_session(pid_);
  }

  void on_reaped(int status) {
    exited_ = true;
    status_ = status;
    ended_ = clock::now();
    if (timeout_timer_) conn_.ctx().loop.cancel(timeout_timer_);
    timeout_timer_ = 0;
    try_finish();
    if (!done_) arm_grace();
  }

  // Background processes may keep the output open after the leader exits. Give them a moment,
  // then send exit with what was drained (never dropping bytes the host has credit for).
  void arm_grace() {
    std::weak_ptr<exec_stream> weak = std::static_pointer_cast<exec_stream>(shared_from_this());
    grace_timer_ = conn_.ctx().loop.after(exit_grace, [weak] {
      auto s = weak.lock();
      if (!s || s->done_) return;
      s->grace_timer_ = 0;
      if (s->credit_ == 0) return s->arm_grace();  // the host is slow; wait for it
      for (int fd : {s->out_fd_, s->err_fd_}) {
        if (fd < 0) continue;
        char buf[proto::max_chunk];
        for (;;) {
          if (s->credit_ == 0) return s->arm_grace();
          ssize_t n = read(fd, buf, std::min<std::size_t>(s->credit_, sizeof buf));
          if (n <= 0) break;
          s->credit_ -= static_cast<uint32_t>(n);
          s->conn_.send(fd == s->out_fd_ ? msg::out : msg::err, s->id_,
                        std::string_view(buf, static_cast<std::size_t>(n)));
        }
      }
      s->close_output(s->out_fd_);
      s->close_output(s->err_fd_);
      s->try_finish();
    });
  }

  void try_finish() {
    if (done_ || !exited_ || out_fd_ >= 0 || err_fd_ >= 0) return;
    proto::exit_status x;
    if (WIFEXITED(status_)) {
      x.exit_code = WEXITSTATUS(status_);
    } else if (WIFSIGNALED(status_)) {
      x.signal = WTERMSIG(status_);
      x.exit_code = 128 + x.signal;  // what a shell would report
    }
    x.timed_out = timed_out_;
    x.duration_ms = std::chrono::duration<double, std::milli>(ended_ - started_).count();
    done_ = true;
    release();
    conn_.finish(id_, msg::exit, proto::encode(x));
  }

  void release() {
    auto& loop = conn_.ctx().loop;
    close_output(out_fd_);
    close_output(err_fd_);
    close_stdin();
    if (timeout_timer_) loop.cancel(timeout_timer_);
    if (grace_timer_) loop.cancel(grace_timer_);
    timeout_timer_ = grace_timer_ = 0;
  }

  uint32_t credit_;
  inbound stdin_;
  bool pty_;
  bool stdin_eof_ = false;
  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  event_loop::watch_id in_watch_ = 0, out_watch_ = 0, err_watch_ = 0;
  event_loop::timer_id timeout_timer_ = 0, grace_timer_ = 0;
  bool exited_ = false, timed_out_ = false;
  int status_ = 0;
  clock::time_point started_, ended_;
};

}  // namespace

std::shared_ptr<stream> start_exec(connection& c, uint32_t id, std::string_view payload) {
  proto::exec_request req;
  std::string why;
  if (!proto::decode(payload, req, why)) {
    c.fail(id, "bad_request", "bad exec request: " + why);
    return nullptr;
  }
  if (req.argv.empty() == req.command.empty()) {
    c.fail(id, "bad_request", "exec needs exactly one of argv or command");
    return nullptr;
  }
  if (!req.cwd.empty()) {
    struct stat st{};
    if (req.cwd[0] != '/') {
      c.fail(id, "bad_request", "cwd " + req.cwd + " is not an absolute path");
      return nullptr;
    }
    if (::stat(req.cwd.c_str(), &st) != 0) {
      c.fail(id, "bad_request", "cwd " + req.cwd + " does not exist");
      return nullptr;
    }
    if (!S_ISDIR(st.st_mode)) {
      c.fail(id, "bad_request", "cwd " + req.cwd + " is not a directory");
      return nullptr;
    }
  }
  if (req.pty && (req.cols == 0 || req.rows == 0)) {
    c.fail(id, "bad_request", "pty cols and rows must be positive");
    return nullptr;
  }
  std::optional<user_entry> user;
  if (!req.user.empty() && !(user = lookup_user(c.ctx().root_fd, req.user))) {
    c.fail(id, "bad_request", "no user " + req.user + " in the sandbox's /etc/passwd");
    return nullptr;
  }
  auto s = std::make_shared<exec_stream>(c, id, req);
  if (!s->spawn(req, user)) return nullptr;
  s->start(req);
  return s;
}

}  // namespace warren::agent
