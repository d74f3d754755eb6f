// vmm/agent/client.cpp — the host-side agent client: one unix socket, one strand, a map of
// streams. Never blocks; every byte in either direction is bounded by protocol credit.
#include "vmm/agent/client.hpp"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <map>
#include <memory>

namespace warren::agent {

namespace asio = boost::asio;
using proto::msg;

errc errc_from_agent_code(std::string_view code) {
  if (code == "connection_refused") return errc::bad_gateway;
  for (int c = static_cast<int>(errc::bad_request); c <= static_cast<int>(errc::timeout); ++c)
    if (to_string(static_cast<errc>(c)) == code) return static_cast<errc>(c);
  return errc::internal;
}

namespace detail {

enum class kind { exec, read, write, stat, list, remove, mkdir, watch, port, ping };

struct pending_write {
  std::string data;
  std::size_t pos = 0;
  std::function<void(status)> done;
};

struct stream_state {
  std::shared_ptr<client_impl> owner;
  uint32_t id = 0;
  kind k = kind::ping;
  bool finished = false;
  // agent → host
  uint32_t window = proto::default_window;
  uint32_t consumed = 0;
  bool paused = false;
  // host → agent
  uint64_t send_credit = 0;
  std::deque<pending_write> sendq;
  bool eof_queued = false;
  // callbacks (the ones of this stream's kind are set)
  exec_callbacks exec;
  read_callbacks read;
  std::function<void(expected<uint64_t>)> write_done;
  std::function<void(expected<file_info>)> stat_done;
  std::function<void(expected<std::vector<file_info>>)> list_done;
  std::vector<file_info> listed;
  std::function<void(status)> status_done;
  watch_callbacks watch;
  port_callbacks port;
};

class client_impl : public std::enable_shared_from_this<client_impl> {
 public:
  explicit client_impl(asio::io_context& io) : strand_(asio::make_strand(io)), sock_(strand_) {}

  template <class F>
  void run(F&& f) {
    asio::dispatch(strand_, std::forward<F>(f));
  }
  template <class F>
  void later(F&& f) {
    asio::post(strand_, std::forward<F>(f));
  }

  uint32_t next_id() {
    uint32_t id = next_id_.fetch_add(1);
    if (id == 0) id = next_id_.fetch_add(1);  // 0 is the connection's own stream
    return id;
  }

  std::shared_ptr<stream_state> new_stream(kind k) {
    auto st = std::make_shared<stream_state>();
    st->owner = shared_from_this();
    st->id = next_id();
    st->k = k;
    return st;
  }

  void connect(std::string path, client::connect_handler done) {
    on_connect_ = std::move(done);
    path_ = std::move(path);
    auto self = shared_from_this();
    sock_.async_connect(asio::local::stream_protocol::endpoint(path_),
                        [self](const boost::system::error_code& ec) {
                          if (ec)
                            return self->lost("cannot connect to agent at " + self->path_ + ": " +
                                              ec.message());
                          proto::hello h;
                          h.agent = "warren-client/" WARREN_VERSION;
                          self->send(msg::hello, 0, proto::encode(h));
                          self->read_loop();
                        });
  }

  // On the strand: registers the stream and sends its request (unless the connection is gone).
  void open(const std::shared_ptr<stream_state>& st, msg type, std::string payload) {
    if (closed_) return fail(*st, make_error(errc::unavailable, "agent connection is closed"));
    streams_.emplace(st->id, st);
    send(type, st->id, payload);
  }

  void send(msg type, uint32_t id, std::string_view payload = {}) {
    if (closed_) return;
    proto::append_frame(out_, type, id, payload);
    if (!writing_) write_loop();
  }

  // After a data callback returned: hand the window back unless the consumer paused.
  void consumed(stream_state& st, std::size_t n) {
    st.consumed += static_cast<uint32_t>(n);
    maybe_grant(st);
  }

  void maybe_grant(stream_state& st) {
    if (st.finished || st.paused || st.consumed == 0) return;
    if (st.consumed < st.window / 2) return;
    send(msg::credit, st.id, proto::encode(proto::credit{st.consumed}));
    st.consumed = 0;
  }

  void resume(stream_state& st) {
    st.paused = false;
    if (st.finished || st.consumed == 0) return;
    send(msg::credit, st.id, proto::encode(proto::credit{st.consumed}));
    st.consumed = 0;
  }

  // Sends queued host→agent bytes as far as the agent's credit allows.
  void pump_send(stream_state& st) {
    while (!st.finished && !st.sendq.empty() && st.send_credit > 0) {
      auto& w = st.sendq.front();
      std::size_t n = std::min<std::size_t>({w.data.size() - w.pos, st.send_credit, proto::max_chunk});
      send(msg::data, st.id, std::string_view(w.data).substr(w.pos, n));
      w.pos += n;
      st.send_credit -= n;
      if (w.pos == w.data.size()) {
        auto done = std::move(w.done);
        st.sendq.pop_front();
        if (done) done(ok());
      }
    }
    if (!st.finished && st.sendq.empty() && st.eof_queued) {
      st.eof_queued = false;
      send(msg::eof, st.id);
    }
  }

  void enqueue(stream_state& st, std::string data, std::function<void(status)> done) {
    if (st.finished) {
      if (done) done(make_error(errc::conflict, "the stream has ended"));
      return;
    }
    if (data.empty()) {
      if (done) done(ok());
      return;
    }
    st.sendq.push_back({std::move(data), 0, std::move(done)});
    pump_send(st);
  }

  void cancel(stream_state& st) {
    if (st.finished) return;
    send(msg::cancel, st.id);
    forget(st, make_error(errc::conflict, "the stream was cancelled"));
  }

  void close(const std::string& why) {
    if (closed_) return;
    boost::system::error_code ec;
    sock_.close(ec);
    lost(why);
  }

  bool closed() const { return closed_; }
  const proto::hello& hello() const { return hello_; }

 private:
  void write_loop() {
    if (out_.empty() || closed_) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(wbuf_),
                      [self](const boost::system::error_code& ec, std::size_t) {
                        self->writing_ = false;
                        self->wbuf_.clear();
                        if (ec) return self->lost("writing to the agent failed: " + ec.message());
                        self->write_loop();
                      });
  }

  void read_loop() {
    auto self = shared_from_this();
    // Allocated at the first read and never zero-filled: an idle connection touches only the
    // pages its few frames land in (a zeroed 256 KiB array cost ~260 KiB RSS per sandbox).
    if (!rbuf_) rbuf_.reset(new char[rbuf_size]);
    sock_.async_read_some(asio::buffer(rbuf_.get(), rbuf_size), [self](const boost::system::error_code& ec,
                                                      std::size_t n) {
      if (self->closed_) return;
      if (ec) {
        return self->lost(ec == asio::error::eof ? "the agent closed the connection"
                                                 : "reading from the agent failed: " + ec.message());
      }
      self->dec_.feed(self->rbuf_.get(), n);
      proto::frame f;
      for (;;) {
        auto st = self->dec_.next(f);
        if (st == proto::decoder::status::need_more) break;
        if (st == proto::decoder::status::bad)
          return self->close("agent protocol error: " + self->dec_.why());
        self->on_frame(f);
        if (self->closed_) return;
      }
      self->read_loop();
    });
  }

  void on_frame(proto::frame& f) {
    if (f.type == msg::hello) return on_hello(f);
    auto it = streams_.find(f.stream);
    if (it == streams_.end()) return;  // cancelled or already finished
    auto st = it->second;               // keep alive across callbacks
    switch (f.type) {
      case msg::opened: return on_opened(*st, f);
      case msg::credit: {
        proto::credit c;
        std::string why;
        if (!proto::decode(f.payload, c, why)) return close("bad credit from agent: " + why);
        st->send_credit += c.bytes;
        return pump_send(*st);
      }
      case msg::out:
      case msg::data:
        if (st->k == kind::exec && st->exec.on_stdout) st->exec.on_stdout(f.payload);
        else if (st->k == kind::read && st->read.on_data) st->read.on_data(f.payload);
        else if (st->k == kind::port && st->port.on_data) st->port.on_data(f.payload);
        return consumed(*st, f.payload.size());
      case msg::err:
        if (st->exec.on_stderr) st->exec.on_stderr(f.payload);
        return consumed(*st, f.payload.size());
      case msg::event: {
        proto::watch_event ev;
        std::string why;
        if (proto::decode(f.payload, ev, why) && st->watch.on_event) st->watch.on_event(ev);
        return consumed(*st, f.payload.size());
      }
      case msg::entries: {
        proto::entries e;
        std::string why;
        if (!proto::decode(f.payload, e, why)) return close("bad entries from agent: " + why);
        for (auto& i : e.items) st->listed.push_back(std::move(i));
        return;
      }
      case msg::eof:
        if (st->port.on_eof) st->port.on_eof();
        return;
      case msg::pong: return finish_ok(*st, f);
      case msg::exit: {
        proto::exit_status x;
        std::string why;
        if (!proto::decode(f.payload, x, why)) return close("bad exit from agent: " + why);
        streams_.erase(st->id);
        st->finished = true;
        fail_writes(*st, make_error(errc::conflict, "the process has exited"));
        if (st->exec.on_exit) st->exec.on_exit(exit_info{x.exit_code, x.signal, x.timed_out, x.duration_ms});
        return;
      }
      case msg::result: return finish_ok(*st, f);
      case msg::error: {
        proto::error_reply e;
        std::string why;
        if (!proto::decode(f.payload, e, why)) e = {"internal", "undecodable error from agent"};
        return forget(*st, make_error(errc_from_agent_code(e.code), e.message), true);
      }
      default: return close("unexpected " + std::string(proto::name(f.type)) + " from agent");
    }
  }

  void on_hello(proto::frame& f) {
    proto::hello h;
    std::string why;
    if (!proto::decode(f.payload, h, why)) return close("bad hello from agent: " + why);
    if (h.version != proto::version)
      return close("agent speaks protocol version " + std::to_string(h.version));
    hello_ = h;
    if (auto done = std::move(on_connect_)) {
      on_connect_ = nullptr;
      done(std::make_shared<client>(shared_from_this()));
    }
  }

  void on_opened(stream_state& st, proto::frame& f) {
    if (st.k == kind::exec && st.exec.on_start) {
      proto::opened o;
      std::string why;
      proto::decode(f.payload, o, why);
      st.exec.on_start(o.pid);
    } else if (st.k == kind::watch && st.watch.on_ready) {
      st.watch.on_ready();
    } else if (st.k == kind::port && st.port.on_connected) {
      st.port.on_connected();
    }
  }

  void finish_ok(stream_state& st, proto::frame& f) {
    streams_.erase(st.id);
    st.finished = true;
    fail_writes(st, make_error(errc::conflict, "the stream has ended"));
    std::string why;
    proto::file_result r;
    switch (st.k) {
      case kind::read:
        proto::decode(f.payload, r, why);
        if (st.read.on_done) st.read.on_done(r.size);
        return;
      case kind::write:
        proto::decode(f.payload, r, why);
        if (st.write_done) st.write_done(r.size);
        return;
      case kind::stat: {
        file_info fi;
        if (!proto::decode(f.payload, fi, why))
          return st.stat_done(make_error(errc::internal, "bad stat reply: " + why));
        return st.stat_done(std::move(fi));
      }
      case kind::list: return st.list_done(std::move(st.listed));
      case kind::port:
        if (st.port.on_close) st.port.on_close(ok());
        return;
      case kind::exec:
      case kind::watch:
        return;
      default:
        if (st.status_done) st.status_done(ok());
        return;
    }
  }

  void fail_writes(stream_state& st, const error& e) {
    auto q = std::move(st.sendq);
    st.sendq.clear();
    for (auto& w : q)
      if (w.done) w.done(e);
  }

  // Ends a stream with an error; `notify` = tell its owner (false for a cancel).
  void forget(stream_state& st, const error& e, bool notify = false) {
    streams_.erase(st.id);
    if (st.finished) return;
    st.finished = true;
    fail_writes(st, e);
    if (notify) fail(st, e);
  }

  void fail(stream_state& st, const error& e) {
    st.finished = true;
    switch (st.k) {
      case kind::exec: if (st.exec.on_error) st.exec.on_error(e); return;
      case kind::read: if (st.read.on_done) st.read.on_done(e); return;
      case kind::write: if (st.write_done) st.write_done(e); return;
      case kind::stat: if (st.stat_done) st.stat_done(e); return;
      case kind::list: if (st.list_done) st.list_done(e); return;
      case kind::watch: if (st.watch.on_error) st.watch.on_error(e); return;
      case kind::port: if (st.port.on_close) st.port.on_close(e); return;
      default: if (st.status_done) st.status_done(e); return;
    }
  }

  void lost(const std::string& why) {
    closed_ = true;
    boost::system::error_code ec;
    sock_.close(ec);
    auto err = make_error(errc::unavailable, why);
    if (auto done = std::move(on_connect_)) {
      on_connect_ = nullptr;
      done(err);
    }
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, st] : streams) {
      if (st->finished) continue;
      fail_writes(*st, err);
      fail(*st, err);
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  asio::local::stream_protocol::socket sock_;
  std::string path_;
  client::connect_handler on_connect_;
  proto::hello hello_;
  proto::decoder dec_;
  // 64 KiB per read_some keeps large transfers at full speed; the decoder joins frames across reads.
  static constexpr std::size_t rbuf_size = 64 * 1024;
  std::unique_ptr<char[]> rbuf_;
  std::string out_, wbuf_;
  bool writing_ = false;
  bool closed_ = false;
  std::atomic<uint32_t> next_id_{1};
  std::map<uint32_t, std::shared_ptr<stream_state>> streams_;
};

}  // namespace detail

using detail::kind;
using detail::stream_state;

// ---- handles -------------------------------------------------------------------------------

namespace {
template <class F>
void on_strand(const std::shared_ptr<stream_state>& st, F f) {
  st->owner->run([st, f = std::move(f)]() mutable { f(*st); });
}
}  // namespace

stream_handle::stream_handle(std::shared_ptr<stream_state> st) : st_(std::move(st)) {}
stream_handle::~stream_handle() = default;
uint32_t stream_handle::id() const { return st_->id; }

void stream_handle::cancel() {
  on_strand(st_, [](stream_state& s) { s.owner->cancel(s); });
}
void stream_handle::pause_output() {
  on_strand(st_, [](stream_state& s) { s.paused = true; });
}
void stream_handle::resume_output() {
  on_strand(st_, [](stream_state& s) { s.owner->resume(s); });
}

void process::write_stdin(std::string data, std::function<void(status)> done) {
  on_strand(st_, [d = std::move(data), done = std::move(done)](stream_state& s) mutable {
    s.owner->enqueue(s, std::move(d), std::move(done));
  });
}
void process::close_stdin() {
  on_strand(st_, [](stream_state& s) {
    if (s.finished) return;
    s.eof_queued = true;
    s.owner->pump_send(s);
  });
}
void process::signal(int sig) {
  on_strand(st_, [sig](stream_state& s) {
    if (!s.finished) s.owner->send(msg::signal, s.id, proto::encode(proto::signal_request{sig}));
  });
}
void process::resize(uint16_t cols, uint16_t rows) {
  on_strand(st_, [cols, rows](stream_state& s) {
    if (!s.finished)
      s.owner->send(msg::resize, s.id, proto::encode(proto::resize_request{cols, rows}));
  });
}
void process::kill() { signal(9); }

void file_writer::write(std::string chunk, std::function<void(status)> done) {
  on_strand(st_, [d = std::move(chunk), done = std::move(done)](stream_state& s) mutable {
    s.owner->enqueue(s, std::move(d), std::move(done));
  });
}
void file_writer::finish() {
  on_strand(st_, [](stream_state& s) {
    if (s.finished) return;
    s.eof_queued = true;
    s.owner->pump_send(s);
  });
}

void port_stream::write(std::string data, std::function<void(status)> done) {
  on_strand(st_, [d = std::move(data), done = std::move(done)](stream_state& s) mutable {
    s.owner->enqueue(s, std::move(d), std::move(done));
  });
}
void port_stream::shutdown_write() {
  on_strand(st_, [](stream_state& s) {
    if (s.finished) return;
    s.eof_queued = true;
    s.owner->pump_send(s);
  });
}

// ---- client --------------------------------------------------------------------------------

void client::connect(asio::io_context& io, std::string socket_path, connect_handler done) {
  auto impl = std::make_shared<detail::client_impl>(io);
  impl->run([impl, p = std::move(socket_path), done = std::move(done)]() mutable {
    impl->connect(std::move(p), std::move(done));
  });
}

client::client(std::shared_ptr<detail::client_impl> impl) : impl_(std::move(impl)) {}

client::~client() {
  // Posted, not dispatched: the client may be destroyed inside one of its own callbacks.
  auto impl = impl_;
  impl->later([impl] { impl->close("the client was closed"); });
}

void client::close() {
  auto impl = impl_;
  impl->run([impl] { impl->close("the client was closed"); });
}

bool client::connected() const { return !impl_->closed(); }
const proto::hello& client::agent_hello() const { return impl_->hello(); }

namespace {
template <class Handle>
std::shared_ptr<Handle> make_handle(std::shared_ptr<stream_state> st) {
  struct enabler : Handle {
    explicit enabler(std::shared_ptr<stream_state> s) : Handle(std::move(s)) {}
  };
  return std::make_shared<enabler>(std::move(st));
}

void open(const std::shared_ptr<stream_state>& st, msg type, std::string payload) {
  st->owner->run([st, type, p = std::move(payload)] { st->owner->open(st, type, p); });
}

proto::file_request path_req(std::string path, uint32_t window = proto::default_window) {
  proto::file_request r;
  r.path = std::move(path);
  r.window = window;
  return r;
}
}  // namespace

std::shared_ptr<process> client::exec(exec_request req, exec_callbacks cb) {
  auto st = impl_->new_stream(kind::exec);
  st->exec = std::move(cb);
  if (req.window == 0) req.window = proto::default_window;
  st->window = req.window;
  open(st, msg::exec, proto::encode(req));
  return make_handle<process>(st);
}

std::shared_ptr<file_reader> client::read_file(std::string path, read_callbacks cb) {
  auto st = impl_->new_stream(kind::read);
  st->read = std::move(cb);
  open(st, msg::file_read, proto::encode(path_req(std::move(path), st->window)));
  return make_handle<file_reader>(st);
}

std::shared_ptr<file_writer> client::write_file(std::string path, write_options opts,
                                                std::function<void(expected<uint64_t>)> on_done) {
  auto st = impl_->new_stream(kind::write);
  st->write_done = std::move(on_done);
  auto r = path_req(std::move(path));
  r.mode = opts.mode;
  r.user = std::move(opts.user);
  r.set_meta = std::move(opts.meta);
  open(st, msg::file_write, proto::encode(r));
  return make_handle<file_writer>(st);
}

void client::stat(std::string path, std::function<void(expected<file_info>)> done, bool with_meta) {
  auto st = impl_->new_stream(kind::stat);
  st->stat_done = std::move(done);
  auto r = path_req(std::move(path));
  r.meta = with_meta;
  open(st, msg::stat, proto::encode(r));
}

void client::list(std::string path, std::function<void(expected<std::vector<file_info>>)> done, bool with_meta) {
  auto st = impl_->new_stream(kind::list);
  st->list_done = std::move(done);
  auto r = path_req(std::move(path));
  r.meta = with_meta;
  open(st, msg::list, proto::encode(r));
}

void client::remove(std::string path, bool recursive, std::function<void(status)> done) {
  auto st = impl_->new_stream(kind::remove);
  st->status_done = std::move(done);
  auto r = path_req(std::move(path));
  r.recursive = recursive;
  open(st, msg::remove, proto::encode(r));
}

void client::mkdir(std::string path, std::optional<uint32_t> mode, std::function<void(status)> done,
                   std::string user) {
  auto st = impl_->new_stream(kind::mkdir);
  st->status_done = std::move(done);
  auto r = path_req(std::move(path));
  r.mode = mode;
  r.user = std::move(user);
  open(st, msg::mkdir, proto::encode(r));
}

void client::rename(std::string from, std::string to, std::string user,
                    std::function<void(expected<file_info>)> done) {
  auto st = impl_->new_stream(kind::stat);  // answered like stat: the new path's file_info
  st->stat_done = std::move(done);
  auto r = path_req(std::move(from));
  r.to = std::move(to);
  r.user = std::move(user);
  r.meta = true;
  open(st, msg::rename, proto::encode(r));
}

std::shared_ptr<watcher> client::watch(std::string path, bool recursive, watch_callbacks cb) {
  auto st = impl_->new_stream(kind::watch);
  st->watch = std::move(cb);
  auto r = path_req(std::move(path), st->window);
  r.recursive = recursive;
  open(st, msg::watch, proto::encode(r));
  return make_handle<watcher>(st);
}

std::shared_ptr<port_stream> client::connect_port(uint16_t port, port_callbacks cb) {
  auto st = impl_->new_stream(kind::port);
  st->port = std::move(cb);
  open(st, msg::port_connect, proto::encode(proto::port_request{port, st->window}));
  return make_handle<port_stream>(st);
}

void client::ping(std::function<void(status)> done) {
  auto st = impl_->new_stream(kind::ping);
  st->status_done = std::move(done);
  open(st, msg::ping, {});
}

}  // namespace warren::agent
