// vmm/agent/shell_session.cpp — see shell_session.hpp and docs/design/shell.md. All state lives
// on the agent client's strand; only the timeout timers run elsewhere and hop back to it.
#include "vmm/agent/shell_session.hpp"

#include <boost/asio.hpp>
#include <charconv>

#include "core/ids.hpp"

namespace warren::agent {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

std::string_view to_string(shell_errc c) {
  switch (c) {
    case shell_errc::timeout: return "timeout";
    case shell_errc::shell_closed: return "shell_closed";
    case shell_errc::unavailable: return "unavailable";
    case shell_errc::bad_request: return "bad_request";
    case shell_errc::internal: return "internal";
  }
  return "internal";
}

namespace {

// Read by bash before anything else. fd 0 → /dev/null (bash keeps reading this script through
// its own CLOEXEC fd 255); 62/63 keep the real stdout/stderr for the completion records.
// SIGURG (default: ignored, so a stray one is harmless) makes bash return from the sourced
// command: that aborts loops and builtins after a timeout. errexit is switched off first so
// that the non-zero return does not end the shell; the run's epilogue restores it.
constexpr std::string_view boot_script =
    "exec </dev/null 62>&1 63>&2\n"
    "shopt -s expand_aliases\n"
    "trap '(( ${#BASH_SOURCE[@]} > 1 )) && { [[ $- == *e* ]] && __w_e=1; \\builtin set +e; "
    "\\builtin return 124; }' URG\n";

// Runs in a separate exec after a timeout, with $1 = bash's pid. It pins the run's tag (bash's
// fd 61, the here-document pipe every process of the run inherits) as its own fd 9, then until
// bash's fd 61 is something else (the run is over): SIGURG to bash, SIGKILL to every other
// process that holds the tag. Exit 0: the run ended; 3: gave up after ~2 s.
constexpr std::string_view kill_script =
    "b=$1\n"
    "exec 9</proc/$b/fd/61 || exit 0\n"
    "i=0\n"
    "while [ /proc/$b/fd/61 -ef /proc/$$/fd/9 ]; do\n"
    "  kill -URG $b 2>/dev/null\n"
    "  for d in /proc/[0-9]*; do\n"
    "    [ $d != /proc/$b ] && [ $d != /proc/$$ ] && [ $d/fd/61 -ef /proc/$$/fd/9 ] &&"
    " kill -9 ${d#/proc/} 2>/dev/null\n"
    "  done\n"
    "  i=$((i+1)); [ $i -ge 40 ] && exit 3\n"
    "  sleep 0.05 2>/dev/null || sleep 1\n"
    "done\n"
    "exit 0\n";

constexpr std::string_view record_tag = "\x1ewarren:";

// The text bash reads for one run. Everything of ours runs with xtrace off (saved in __w_x and
// re-enabled as the first line of the sourced text) or with its trace sent to /dev/null, so
// `set -x` traces only the user's commands. Names are `\builtin`-qualified so aliases and
// functions the user defines cannot change what the frame does; `exec` cannot be (its
// redirections would then apply to `builtin` and be undone): `\exec` only escapes aliases.
std::string run_text(std::string_view command, std::string_view nonce, std::string_view delim) {
  std::string rec = "\\builtin printf '\\036warren:";
  rec += nonce;
  rec += ":%d\\n' \"$__w_s\"";
  std::string t;
  t.reserve(command.size() + 600);
  t += "{ __w_x=$-; \\builtin set +x; } 2>/dev/null; \\exec 1>&62 2>&63; "
       "\\builtin . /dev/fd/61 61<<'";
  t += delim;
  t += "' 62>&- 63>&-; { __w_s=$?; [[ -n ${__w_e-} ]] && \\builtin set -e; "
       "\\builtin unset __w_e; ";
  t += rec + " >&62; " + rec + " >&63; \\builtin unset __w_s; } 2>/dev/null\n";
  t += "[[ $__w_x == *x* ]] && { \\builtin unset __w_x; \\builtin set -x; } || "
       "\\builtin unset __w_x\n";
  t += command;
  if (!command.empty() && command.back() != '\n') t += '\n';
  t += delim;
  t += '\n';
  return t;
}

// A per-run delimiter that no line of the command equals.
std::string pick_delimiter(std::string_view command) {
  for (;;) {
    std::string d = "WARREN_EOF_" + random_hex(8);
    std::string line = "\n" + d + "\n";
    if (command.find(line) == std::string_view::npos && command.rfind(d + "\n", 0) != 0)
      return d;
  }
}

}  // namespace

struct shell_session::job {
  std::string command;
  std::chrono::milliseconds timeout{0};
  run_handler done;
  bool internal = false;  // the boot run: answers open() instead
};

// One stream of one run: user bytes until the completion record, capped; the tail that might
// be the start of the record is held back until more bytes decide.
struct shell_session::capture {
  std::string data;
  bool truncated = false;
  std::string hold;
  bool done = false;
  int status = -1;

  void emit(std::string_view s, std::size_t cap) {
    if (data.size() < cap) {
      std::size_t n = std::min(s.size(), cap - data.size());
      data.append(s.substr(0, n));
      if (n < s.size()) truncated = true;
    } else if (!s.empty()) {
      truncated = true;
    }
  }

  // Returns the bytes after the record (they belong to whatever comes next).
  std::string feed(std::string_view needle, std::string_view in, std::size_t cap) {
    hold.append(in);
    auto pos = hold.find(needle);
    if (pos == std::string::npos) {
      std::size_t keep = std::min(hold.size(), needle.size() - 1);
      emit(std::string_view(hold).substr(0, hold.size() - keep), cap);
      hold.erase(0, hold.size() - keep);
      return {};
    }
    emit(std::string_view(hold).substr(0, pos), cap);
    hold.erase(0, pos);
    auto nl = hold.find('\n', needle.size());
    if (nl == std::string::npos) return {};
    int st = -1;
    std::from_chars(hold.data() + needle.size(), hold.data() + nl, st);
    status = st;
    done = true;
    std::string rest = hold.substr(nl + 1);
    hold.clear();
    return rest;
  }

  void flush(std::size_t cap) {  // the shell ended: what was held back is user output
    emit(hold, cap);
    hold.clear();
  }
};

struct shell_session::run_state {
  job j;
  uint64_t seq = 0;
  std::string needle;
  capture cap[2];
  clock::time_point started;
  bool timed_out = false;
  std::shared_ptr<asio::steady_timer> timer;
};

namespace {
using timer_strand = asio::strand<asio::io_context::executor_type>;
}

shell_session::shell_session(private_tag, asio::io_context& io, std::shared_ptr<client> c,
                             shell_options opts)
    : io_(io), client_(std::move(c)), opts_(std::move(opts)),
      timer_strand_(std::make_shared<timer_strand>(asio::make_strand(io))) {}

shell_session::~shell_session() {
  if (proc_) proc_->cancel();  // the agent SIGKILLs bash's process group
  if (cur_ && cur_->timer) {
    auto t = cur_->timer;
    asio::post(*std::static_pointer_cast<timer_strand>(timer_strand_), [t] { t->cancel(); });
  }
}

void shell_session::open(asio::io_context& io, std::shared_ptr<client> c, shell_options opts,
                         open_handler done) {
  auto s = std::make_shared<shell_session>(private_tag{}, io, std::move(c), std::move(opts));
  s->start(std::move(done));
}

void shell_session::start(open_handler done) {
  // Nobody else holds the session until `done` hands it out: the handler keeps it alive.
  opened_ = [self = shared_from_this(), done = std::move(done)](
                expected<std::shared_ptr<shell_session>> r) { done(std::move(r)); };
  exec_request req;
  req.argv = {opts_.shell, "--noprofile", "--norc", "/dev/stdin"};
  req.env = opts_.env;
  req.cwd = opts_.cwd;
  req.window = 1u << 20;
  std::weak_ptr<shell_session> weak = shared_from_this();
  exec_callbacks cb;
  cb.on_start = [weak](int64_t pid) {
    if (auto s = weak.lock()) s->pid_ = pid;
  };
  cb.on_stdout = [weak](std::string_view b) {
    if (auto s = weak.lock()) s->on_output(0, b);
  };
  cb.on_stderr = [weak](std::string_view b) {
    if (auto s = weak.lock()) s->on_output(1, b);
  };
  cb.on_exit = [weak](const exit_info& x) {
    if (auto s = weak.lock()) s->on_exit(x);
  };
  cb.on_error = [weak](const error& e) {
    if (auto s = weak.lock()) s->on_error(e);
  };
  proc_ = client_->exec(std::move(req), std::move(cb));
  proc_->write_stdin(std::string(boot_script));
  // The first run is an empty command: its completion says the shell is up and framing works.
  auto self = shared_from_this();
  on_strand([self] {
    job j;
    j.internal = true;
    self->queue_.push_front(std::move(j));
    self->pump();
  });
}

// Hops onto the client's strand: an empty stdin write completes at once, on the strand.
void shell_session::on_strand(std::function<void()> f) {
  proc_->write_stdin(std::string(), [f = std::move(f)](status) { f(); });
}

void shell_session::run(std::string command, std::chrono::milliseconds timeout, run_handler done) {
  auto self = shared_from_this();
  on_strand([self, c = std::move(command), timeout, d = std::move(done)]() mutable {
    if (self->phase_ == phase::closed) {
      shell_reply r;
      r.result.closed = true;
      r.error = shell_error{shell_errc::shell_closed, "shell is closed" + self->closed_why_};
      return d(std::move(r));
    }
    self->queue_.push_back(job{std::move(c), timeout, std::move(d)});
    self->pump();
  });
}

bool shell_session::closed() const { return phase_ == phase::closed; }

void shell_session::pause_output() { proc_->pause_output(); }
void shell_session::resume_output() { proc_->resume_output(); }

void shell_session::pump() {
  while (!cur_ && !queue_.empty() && phase_ != phase::closed) {
    job j = std::move(queue_.front());
    queue_.pop_front();
    if (j.command.find('\0') != std::string::npos) {
      shell_reply r;
      r.error = shell_error{shell_errc::bad_request, "a shell command cannot contain a NUL byte"};
      j.done(std::move(r));
      continue;
    }
    begin(std::move(j));
  }
}

void shell_session::begin(job j) {
  phase_ = phase_ == phase::starting ? phase::starting : phase::running;
  cur_ = std::make_unique<run_state>();
  cur_->seq = ++seq_;
  std::string nonce = random_hex(16);
  cur_->needle = std::string(record_tag) + nonce + ":";
  cur_->started = clock::now();
  auto text = run_text(j.command.empty() ? ":" : j.command, nonce, pick_delimiter(j.command));
  auto timeout = j.timeout;
  cur_->j = std::move(j);
  proc_->write_stdin(std::move(text));
  if (timeout.count() > 0) arm_timer(cur_->seq, timeout);
  // Output that arrived while no run was active belongs to this one.
  for (int s = 0; s < 2; ++s) {
    if (carry_[s].empty()) continue;
    std::string c = std::move(carry_[s]);
    carry_[s].clear();
    on_output(s, c);
  }
}

void shell_session::on_output(int stream, std::string_view bytes) {
  if (!cur_ || cur_->cap[stream].done) {
    auto& c = carry_[stream];
    c.append(bytes.substr(0, opts_.output_cap > c.size() ? opts_.output_cap - c.size() : 0));
    return;
  }
  auto rest = cur_->cap[stream].feed(cur_->needle, bytes, opts_.output_cap);
  if (!rest.empty()) carry_[stream].append(rest);
  maybe_finish();
}

void shell_session::maybe_finish() {
  if (!cur_ || !cur_->cap[0].done || !cur_->cap[1].done) return;
  std::optional<shell_error> err;
  if (cur_->timed_out)
    err = shell_error{shell_errc::timeout, "the command ran past its timeout and was killed"};
  finish(std::move(err), false, cur_->cap[0].status);
}

void shell_session::finish(std::optional<shell_error> err, bool closed_now, int exit_code) {
  auto r = std::move(cur_);
  cur_.reset();
  if (r->timer) {
    auto t = r->timer;
    asio::post(*std::static_pointer_cast<timer_strand>(timer_strand_), [t] { t->cancel(); });
  }
  shell_reply reply;
  reply.error = std::move(err);
  auto& res = reply.result;
  res.exit_code = exit_code;
  res.stdout_data = std::move(r->cap[0].data);
  res.stderr_data = std::move(r->cap[1].data);
  res.stdout_truncated = r->cap[0].truncated;
  res.stderr_truncated = r->cap[1].truncated;
  res.duration_ms = std::chrono::duration<double, std::milli>(clock::now() - r->started).count();
  res.closed = closed_now;
  if (phase_ != phase::closed) phase_ = phase::ready;
  if (r->j.internal) {
    auto done = std::move(opened_);
    opened_ = nullptr;
    if (!done) return;
    if (reply.error || res.closed || res.exit_code != 0)
      return done(make_error(errc::internal, "the shell failed to start: " + res.stderr_data));
    done(shared_from_this());
  } else if (r->j.done) {
    r->j.done(std::move(reply));
  }
  pump();
}

void shell_session::arm_timer(uint64_t seq, std::chrono::milliseconds timeout) {
  auto& strand = *std::static_pointer_cast<timer_strand>(timer_strand_);
  auto t = std::make_shared<asio::steady_timer>(strand, timeout);
  cur_->timer = t;
  std::weak_ptr<shell_session> weak = shared_from_this();
  asio::post(strand, [t, weak, seq] {
    t->async_wait([t, weak, seq](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto s = weak.lock()) s->on_strand([weak, seq] {
          if (auto s2 = weak.lock()) s2->on_timeout(seq);
        });
    });
  });
}

void shell_session::on_timeout(uint64_t seq) {
  if (!cur_ || cur_->seq != seq || cur_->timed_out || phase_ == phase::closed) return;
  cur_->timed_out = true;
  kill_run(seq);
}

void shell_session::kill_run(uint64_t seq) {
  exec_request req;
  req.argv = {"/bin/sh", "-c", std::string(kill_script), "warren-shell-kill",
              std::to_string(pid_)};
  std::weak_ptr<shell_session> weak = shared_from_this();
  auto give_up = [weak, seq] {
    auto s = weak.lock();
    // bash did not come back: stop the command the hard way, with the shell.
    if (s && s->cur_ && s->cur_->seq == seq && s->phase_ != phase::closed) s->proc_->kill();
  };
  exec_callbacks cb;
  cb.on_exit = [give_up](const exit_info& x) {
    if (x.exit_code != 0) give_up();
  };
  cb.on_error = [give_up](const error&) { give_up(); };
  client_->exec(std::move(req), std::move(cb))->close_stdin();
}

void shell_session::on_exit(const exit_info& x) {
  bool was_closed = phase_ == phase::closed;
  phase_ = phase::closed;
  closed_why_ = " (the shell exited with code " + std::to_string(x.exit_code) + ")";
  if (cur_) {
    for (auto& c : cur_->cap) c.flush(opts_.output_cap);
    std::optional<shell_error> err;
    if (cur_->timed_out)
      err = shell_error{shell_errc::timeout,
                        "the command ran past its timeout; the shell had to be killed"};
    finish(std::move(err), true, x.exit_code);
  } else if (opened_) {
    auto done = std::move(opened_);
    opened_ = nullptr;
    done(make_error(errc::internal, "the shell exited at start" + closed_why_));
  }
  fail_all(shell_errc::shell_closed, "shell is closed" + closed_why_);
  if (!was_closed) reap_group();
}

void shell_session::on_error(const error& e) {
  phase_ = phase::closed;
  closed_why_ = " (" + e.message + ")";
  if (opened_) {
    auto done = std::move(opened_);
    opened_ = nullptr;
    cur_.reset();
    // The sandbox exists; what is missing is a feature of its image: 503 naming it, not 404.
    if (e.code == errc::not_found)
      return done(make_error(errc::unavailable, opts_.shell + " is not installed in the sandbox's image"));
    return done(e);
  }
  auto code = e.code == errc::unavailable ? shell_errc::unavailable : shell_errc::internal;
  if (cur_) finish(shell_error{code, e.message}, true, -1);
  fail_all(code, e.message);
}

void shell_session::fail_all(shell_errc code, const std::string& message) {
  auto q = std::move(queue_);
  queue_.clear();
  for (auto& j : q) {
    if (!j.done) continue;
    shell_reply r;
    r.result.closed = true;
    r.error = shell_error{code, message};
    j.done(std::move(r));
  }
}

// bash is gone but background jobs may live on in its process group.
void shell_session::reap_group() {
  if (pid_ <= 0) return;
  exec_request req;
  req.argv = {"/bin/sh", "-c", "kill -9 -$1 2>/dev/null; exit 0", "warren-shell-reap",
              std::to_string(pid_)};
  client_->exec(std::move(req), {})->close_stdin();
}

void shell_session::close() {
  auto self = shared_from_this();
  on_strand([self] {
    if (self->phase_ == phase::closed) return;
    self->phase_ = phase::closed;
    self->closed_why_ = " (closed)";
    self->proc_->cancel();  // SIGKILL to bash's process group; no more callbacks
    if (self->cur_) {
      for (auto& c : self->cur_->cap) c.flush(self->opts_.output_cap);
      self->finish(shell_error{shell_errc::shell_closed, "shell is closed"}, true, -1);
    }
    self->fail_all(shell_errc::shell_closed, "shell is closed");
  });
}

}  // namespace warren::agent
