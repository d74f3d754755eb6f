// vmm/agent/client.hpp — the host side of the agent protocol (docs/design/agent.md), on
// Boost.Asio. Callback-based and non-blocking: the daemon never blocks a thread on an agent.
//
// Threading: every method of client and of the stream handles is thread-safe (it is dispatched
// onto the client's strand). EVERY CALLBACK RUNS ON THE CLIENT'S STRAND, one at a time; calling
// back into the client or a handle from inside a callback takes effect immediately.
//
// Flow control: each agent→host stream (exec output, file read, watch events, port bytes) has a
// window (default 256 KiB). The client grants more as the callbacks return, unless the handle is
// paused: pause_output() stops granting, so at most one window more arrives and the agent then
// stops reading the child's pipe / the file / the socket (the child blocks; memory stays bounded).
// Host→agent bytes (stdin, uploads, port writes) are sent only as the agent grants credit; the
// per-chunk completion callbacks let a producer send the next chunk only when the previous left.
//
// Lifetime: destroying the client (or close()) drops the connection; every unfinished stream then
// fails with errc::unavailable, and the agent kills the process groups of this connection's execs.
// A lost connection does the same. Handles may outlive the client; their methods then do nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "vmm/agent/protocol.hpp"

namespace boost::asio {
class io_context;
}

namespace warren::agent {

// What to run: argv (PATH-searched) or `command` (run by /bin/sh -c); env is merged over the
// agent's environment; cwd absolute; pty with cols/rows; timeout_ms (0 = none) enforced by the
// agent, which then kills the whole process group.
using exec_request = proto::exec_request;
using file_info = proto::file_info;    // type: file|dir|symlink|other; mode: permission bits
using watch_event = proto::watch_event;  // event: create|modify|delete|rename|overflow

struct exit_info {
  int exit_code = 0;   // 128+signal when killed by a signal, like a shell reports it
  int signal = 0;      // the signal that killed the leader, 0 if it exited
  bool timed_out = false;
  double duration_ms = 0;
};

namespace detail {
struct stream_state;
class client_impl;
}  // namespace detail

// Common to every streaming handle.
class stream_handle {
 public:
  virtual ~stream_handle();
  void cancel();         // abort on the agent (an exec's process group is SIGKILLed); no more callbacks
  void pause_output();   // stop granting credit (see the header comment)
  void resume_output();
  uint32_t id() const;

 protected:
  explicit stream_handle(std::shared_ptr<detail::stream_state> st);
  std::shared_ptr<detail::stream_state> st_;
};

struct exec_callbacks {
  std::function<void(int64_t pid)> on_start;          // optional
  std::function<void(std::string_view)> on_stdout;    // a pty's whole output arrives here
  std::function<void(std::string_view)> on_stderr;
  std::function<void(const exit_info&)> on_exit;      // exactly one of on_exit / on_error,
  std::function<void(const error&)> on_error;         // called once
};

class process : public stream_handle {
 public:
  using stream_handle::stream_handle;
  // `done` runs once the bytes were handed to the connection (or failed): send the next chunk then.
  void write_stdin(std::string data, std::function<void(status)> done = {});
  void close_stdin();  // after queued stdin; on a pty this sends ^D
  void signal(int sig);  // to the process group
  void resize(uint16_t cols, uint16_t rows);
  void kill();  // SIGKILL to the process group; on_exit still reports it
};

struct read_callbacks {
  std::function<void(std::string_view)> on_data;
  std::function<void(expected<uint64_t>)> on_done;  // total size, or why it failed
};
class file_reader : public stream_handle {
 public:
  using stream_handle::stream_handle;
};

class file_writer : public stream_handle {
 public:
  using stream_handle::stream_handle;
  // Queue a chunk; `done` fires when it left (within the agent's credit) — then send the next.
  void write(std::string chunk, std::function<void(status)> done = {});
  // No more chunks: the agent closes the file; the write_file callback gets the final size.
  void finish();
};

struct watch_callbacks {
  std::function<void()> on_ready;  // the inotify watches are in place
  std::function<void(const watch_event&)> on_event;
  std::function<void(const error&)> on_error;  // the watch ended (cancel() ends it silently)
};
class watcher : public stream_handle {
 public:
  using stream_handle::stream_handle;
};

struct port_callbacks {
  std::function<void()> on_connected;
  std::function<void(std::string_view)> on_data;
  std::function<void()> on_eof;                // the sandbox side shut down its writing half
  std::function<void(status)> on_close;        // both halves done (ok) or failed; called once.
                                               // Nothing listening: errc::bad_gateway
};
class port_stream : public stream_handle {
 public:
  using stream_handle::stream_handle;
  void write(std::string data, std::function<void(status)> done = {});
  void shutdown_write();  // half-close after queued writes
};

struct write_options {
  std::optional<uint32_t> mode;  // permission bits; default 0644 (umask applies only then)
  std::string user;  // the file and the parents it creates are owned by this sandbox user ("" = root)
  // Replace the file's metadata (user.e2b.* xattrs) with these; nullopt leaves it alone.
  std::optional<std::map<std::string, std::string>> meta;
};

class client {
 public:
  using connect_handler = std::function<void(expected<std::shared_ptr<client>>)>;

  // Connects, exchanges hello (protocol version check), then calls `done` on the strand.
  static void connect(boost::asio::io_context& io, std::string socket_path, connect_handler done);

  ~client();  // closes the connection
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  std::shared_ptr<process> exec(exec_request req, exec_callbacks cb);

  std::shared_ptr<file_reader> read_file(std::string path, read_callbacks cb);
  std::shared_ptr<file_writer> write_file(std::string path, write_options opts,
                                          std::function<void(expected<uint64_t>)> on_done);
  // with_meta: also each file's metadata (file_info::meta).
  void stat(std::string path, std::function<void(expected<file_info>)> done, bool with_meta = false);
  void list(std::string path, std::function<void(expected<std::vector<file_info>>)> done, bool with_meta = false);
  void remove(std::string path, bool recursive, std::function<void(status)> done);
  void mkdir(std::string path, std::optional<uint32_t> mode, std::function<void(status)> done,
             std::string user = {});  // created directories owned by this sandbox user
  // rename(2) inside the sandbox root (missing parents of `to` created, owned by `user`); the
  // file_info of the new path.
  void rename(std::string from, std::string to, std::string user, std::function<void(expected<file_info>)> done);
  std::shared_ptr<watcher> watch(std::string path, bool recursive, watch_callbacks cb);

  std::shared_ptr<port_stream> connect_port(uint16_t port, port_callbacks cb);

  void ping(std::function<void(status)> done);
  void close();
  bool connected() const;
  const proto::hello& agent_hello() const;

  explicit client(std::shared_ptr<detail::client_impl> impl);  // use connect()

 private:
  std::shared_ptr<detail::client_impl> impl_;
};

// The protocol's error code string ("not_found", "connection_refused", ...) → errc.
errc errc_from_agent_code(std::string_view code);

}  // namespace warren::agent
