// vmm/agent/server.hpp — the agent's listener, host connections and the stream interface that
// exec, files, watch and port implement. Lifecycle rule: a stream belongs to the connection that
// opened it; when that connection drops, its streams are aborted (exec'd process groups killed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "vmm/agent/event_loop.hpp"
#include "vmm/agent/protocol.hpp"

namespace warren::agent {

// Process-wide state every connection shares.
struct context {
  event_loop loop;
  int root_fd = -1;          // the directory file ops are confined to ("/" inside a sandbox)
  bool root_is_slash = true;
  // Exec'd process leaders → what to do when they are reaped. Orphans are reaped silently.
  std::unordered_map<pid_t, std::function<void(int wait_status)>> children;
};

class connection;

class stream : public std::enable_shared_from_this<stream> {
 public:
  stream(connection& c, uint32_t id) : conn_(c), id_(id) {}
  virtual ~stream() = default;
  uint32_t id() const { return id_; }
  bool finished() const { return done_; }
  // In-stream frames from the host (data, eof, credit, signal, resize).
  virtual void on_frame(proto::frame& f) = 0;
  // The connection is gone or the host cancelled: release everything; send nothing.
  virtual void abort() = 0;

 protected:
  // Adds a host credit grant (a `credit` frame) to `credit`, capped at the largest window.
  // false after reporting a malformed frame: the caller returns at once.
  bool take_credit(const proto::frame& f, uint32_t& credit);

  connection& conn_;
  uint32_t id_;
  bool done_ = false;  // set once the stream has sent its final frame or was aborted
};

// One host connection: decodes frames, routes them to streams, queues output. Output is bounded
// by the credit each stream was granted plus small control replies; if the host stops reading
// anyway, the connection stops reading requests once `out_` passes a high-water mark.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(context& ctx, int fd, std::function<void(connection*)> on_closed);
  ~connection();
  void start();

  context& ctx() { return ctx_; }
  void send(proto::msg type, uint32_t stream, std::string_view payload = {});
  // Sends the stream's final frame (exit/result/error) and forgets the stream.
  void finish(uint32_t stream, proto::msg type, std::string_view payload);
  void fail(uint32_t stream, std::string_view code, std::string message);
  // The host broke the protocol: drop the connection (and its streams).
  void protocol_error(const std::string& why);
  std::size_t out_pending() const { return out_.size() - out_pos_; }

 private:
  void on_events(uint32_t ev);
  void read_some();
  void flush();
  void dispatch(proto::frame& f);
  void open_stream(proto::frame& f);
  void update_interest();
  void close();

  context& ctx_;
  int fd_;
  event_loop::watch_id watch_ = 0;
  std::function<void(connection*)> on_closed_;
  proto::decoder dec_;
  std::string out_;
  std::size_t out_pos_ = 0;
  bool closed_ = false;
  std::map<uint32_t, std::shared_ptr<stream>> streams_;
};

// Accepts host connections on a listening unix socket until the process ends.
class server {
 public:
  server(context& ctx, int listen_fd);
  void start();

 private:
  void on_accept();
  context& ctx_;
  int listen_fd_;
  std::map<connection*, std::shared_ptr<connection>> conns_;
};

// Stream factories, one per file that implements them. Each validates its request and either
// returns a live stream, or has already sent the stream's final frame (an error, or the result
// of a one-shot op like stat) and returns nullptr.
std::shared_ptr<stream> start_exec(connection& c, uint32_t id, std::string_view payload);
std::shared_ptr<stream> start_file_op(connection& c, uint32_t id, proto::msg type,
                                      std::string_view payload);
std::shared_ptr<stream> start_watch(connection& c, uint32_t id, std::string_view payload);
std::shared_ptr<stream> start_port(connection& c, uint32_t id, std::string_view payload);

// Reaps every exited child (SIGCHLD via signalfd); calls the registered callbacks.
void reap_children(context& ctx);

}  // namespace warren::agent
