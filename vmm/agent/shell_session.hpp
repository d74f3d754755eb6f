// vmm/agent/shell_session.hpp — one long-lived bash in a sandbox, driven through the agent
// client, running commands one at a time with exact, separated stdout/stderr and exit codes.
// Must never let a command's output, stdin reads or fd games break the framing (see below and
// docs/design/shell.md), and never buffer more than the output cap per stream.
//
// How it works (details in docs/design/shell.md):
// - bash runs as `bash --noprofile --norc /dev/stdin` over pipes (no pty). bash reads its script
//   from the exec's stdin through its own close-on-exec fd 255, and the boot script's first line
//   points fd 0 at /dev/null: the control channel (the pipe we write commands into) is never
//   visible to a command or anything it starts; a command reading stdin gets EOF.
// - Each command travels as a quoted here-document with a random per-run delimiter, and is run
//   with `. /dev/fd/61` at top level, in the shell itself: cd, export, declare, functions, aliases
//   and jobs persist. No quoting of the command ever happens, so nothing in it can break out.
// - When the source returns, bash writes a completion record `\x1ewarren:<nonce>:<status>\n` to
//   dups of the original stdout and stderr (fds 62/63, closed while the command runs). The
//   nonce is 128 random bits drawn per run and exists only in bash's parsed command line, never
//   in a variable, function, argument or the environment; a command cannot print it unless it
//   reads bash's memory. Records are single writes (< PIPE_BUF, atomic) after the command's own
//   output on the same pipes, so once both records are seen both streams are complete.
// - Timeout: fd 61 (the here-document pipe) is inherited by every process the run starts and by
//   nothing else, so it tags them. A helper exec SIGKILLs every process holding that pipe and
//   sends SIGURG to bash, whose trap `return`s from the sourced command (aborting loops and
//   builtins). The shell and its state survive. If bash does not come back within ~2 s it is
//   killed and the reply says closed.
// - Close / exit: the agent kills bash's process group (background jobs are in it: no job
//   control); after `exit N` a helper kills what is left of the group.
//
// Threading: every method is thread-safe (dispatched onto the agent client's strand); every
// callback runs on that strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "vmm/agent/client.hpp"

namespace boost::asio {
class io_context;
}

namespace warren::agent {

struct shell_options {
  std::map<std::string, std::string> env;  // merged over the agent's environment
  std::string cwd;                         // absolute; empty = the agent's cwd
  std::size_t output_cap = 16u << 20;      // per stream and per run; beyond it: truncated
  std::string shell = "bash";              // the program; it must be bash (>= 4)
};

struct shell_result {
  int exit_code = 0;
  std::string stdout_data, stderr_data;  // raw bytes; render with to_valid_utf8 (core/utf8.hpp)
  bool stdout_truncated = false, stderr_truncated = false;
  double duration_ms = 0;
  bool closed = false;  // the command ended the shell (exit, exec, kill $$, …)
};

enum class shell_errc {
  timeout,       // the command ran past its timeout and was killed; `result` has its partial output
  shell_closed,  // the shell had already ended (or was closed) before this command ran
  unavailable,   // the agent connection died
  bad_request,   // the command cannot be run by a shell (it contains a NUL byte)
  internal,      // the shell misbehaved (e.g. it could not be started)
};
std::string_view to_string(shell_errc c);  // "timeout", "shell_closed", ... (API.md codes)

struct shell_error {
  shell_errc code;
  std::string message;
};

// One reply. On success error is empty. On timeout, result carries the partial output, the
// duration and `closed` (true only if the shell had to be killed to stop the command).
struct shell_reply {
  shell_result result;
  std::optional<shell_error> error;
  bool ok() const { return !error; }
};

class shell_session : public std::enable_shared_from_this<shell_session> {
 public:
  using open_handler = std::function<void(expected<std::shared_ptr<shell_session>>)>;
  using run_handler = std::function<void(shell_reply)>;

  // Starts the shell and calls `done` once it is ready to run commands (or why it failed:
  // not_found when bash is missing from the sandbox, unavailable when the agent is gone).
  // `io` runs the timeout timers; it must be the io_context the client runs on.
  static void open(boost::asio::io_context& io, std::shared_ptr<client> c, shell_options opts,
                   open_handler done);

  // Queues a command; commands run one at a time and replies come strictly in order.
  // timeout <= 0 means none.
  void run(std::string command, std::chrono::milliseconds timeout, run_handler done);

  // Ends bash and every process of its process group (background jobs included). Queued and
  // running commands are answered shell_closed. Idempotent. The destructor does the same
  // without replying.
  void close();

  // Backpressure: while paused the engine stops granting the agent credit, so bash (and the
  // command) block on a full pipe instead of the engine buffering. Output is bounded anyway
  // by output_cap per stream and run; pausing bounds it to the agent's window.
  void pause_output();
  void resume_output();

  int64_t pid() const { return pid_; }  // bash's pid (in the sandbox's pid namespace)
  bool closed() const;

  ~shell_session();
  shell_session(const shell_session&) = delete;
  shell_session& operator=(const shell_session&) = delete;

  struct private_tag {};
  shell_session(private_tag, boost::asio::io_context& io, std::shared_ptr<client> c,
                shell_options opts);

 private:
  struct job;
  struct capture;
  struct run_state;

  void start(open_handler done);
  void on_output(int stream, std::string_view bytes);
  void on_exit(const exit_info& x);
  void on_error(const error& e);
  void pump();
  void begin(job j);
  void maybe_finish();
  void finish(std::optional<shell_error> err, bool closed_now, int exit_code);
  void arm_timer(uint64_t seq, std::chrono::milliseconds timeout);
  void on_timeout(uint64_t seq);
  void kill_run(uint64_t seq);
  void fail_all(shell_errc code, const std::string& message);
  void reap_group();
  void on_strand(std::function<void()> f);

  boost::asio::io_context& io_;
  std::shared_ptr<client> client_;
  shell_options opts_;
  std::shared_ptr<process> proc_;
  int64_t pid_ = 0;
  enum class phase { starting, ready, running, closed } phase_ = phase::starting;
  open_handler opened_;
  std::deque<job> queue_;
  std::unique_ptr<run_state> cur_;
  std::string carry_[2];  // output that arrived between runs (background jobs), capped
  uint64_t seq_ = 0;
  std::string closed_why_;
  std::shared_ptr<void> timer_strand_;  // the timers' own strand (asio types stay in the .cpp)
};

}  // namespace warren::agent
