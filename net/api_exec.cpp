// net/api_exec.cpp — one-shot exec and streaming exec (SSE). Bytes go straight between the
// agent connection and the HTTP session: no actor message per chunk. Output is capped per
// stream (memory stays bounded whatever the command prints) and made valid UTF-8 (U+FFFD).
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/utf8.hpp"
#include "net/api.hpp"
#include "net/json_body.hpp"
#include "net/send_window.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

constexpr size_t output_cap = 16 * 1024 * 1024;      // per stream, then "truncated": true
constexpr size_t sse_pause_bytes = 1024 * 1024;       // unsent SSE bytes before we pause the agent
constexpr size_t sse_resume_bytes = 256 * 1024;

const std::vector<field> exec_fields = {
    {"command", json_kind::string, true},
    {"timeout", json_kind::integer, false, 1, 86400},
    {"env", json_kind::string_map},
    {"cwd", json_kind::string},
    {"stdin", json_kind::string},
};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct exec_body {
  agent::exec_request req;
  std::string stdin_data;
};

expected<exec_body> parse_exec(const http_request& r) {
  auto b = parse_body(r.body, exec_fields);
  if (!b) return b.err();
  exec_body e;
  e.req.command = (*b)["command"].get<std::string>();
  if (e.req.command.empty()) return make_error(errc::bad_request, "field \"command\" must not be empty");
  e.req.env = b->value("env", std::map<std::string, std::string>{});
  e.req.cwd = b->value("cwd", std::string());
  if (!e.req.cwd.empty() && e.req.cwd[0] != '/')
    return make_error(errc::bad_request, "field \"cwd\" must be an absolute path, got \"" + e.req.cwd + "\"");
  if (b->contains("timeout")) e.req.timeout_ms = (*b)["timeout"].get<uint64_t>() * 1000;
  e.stdin_data = b->value("stdin", std::string());
  return e;
}

// For the admin console's counters (actors/sandbox_link.hpp activity).
void count_exec(const actors::sandbox_link& link, const exec_body& b) {
  ++link.act->execs;
  link.act->bytes_in += b.req.command.size() + b.stdin_data.size();
}

// Feeds stdin (if any) then EOF: commands that read stdin never wait for more.
void feed_stdin(const std::shared_ptr<agent::process>& p, std::string data) {
  if (!data.empty()) p->write_stdin(std::move(data));
  p->close_stdin();
}

struct collected {
  std::string out, err;
  bool truncated = false;
  std::unique_ptr<actors::stream_guard> busy;
  void add(std::string& to, std::string_view chunk) {
    if (to.size() >= output_cap) {
      truncated = true;
      return;
    }
    auto take = std::min(chunk.size(), output_cap - to.size());
    to.append(chunk.substr(0, take));
    if (take < chunk.size()) truncated = true;
  }
};

}  // namespace

void api::exec(const context& c) {
  auto body = parse_exec(c.req());
  if (!body) return c.ex->respond(error_response(body.err()));
  auto ex = c.ex;
  with_link(c, [ex, body = std::move(*body)](const actors::sandbox_link_ptr& link) mutable {
    if (body.req.timeout_ms == 0) body.req.timeout_ms = static_cast<uint64_t>(link->default_timeout_s) * 1000;
    auto col = std::make_shared<collected>();
    col->busy = std::make_unique<actors::stream_guard>(link->act);
    agent::exec_callbacks cb;
    cb.on_stdout = [col, act = link->act](std::string_view d) { act->bytes_out += d.size(), col->add(col->out, d); };
    cb.on_stderr = [col, act = link->act](std::string_view d) { act->bytes_out += d.size(), col->add(col->err, d); };
    cb.on_exit = [ex, col, link](const agent::exit_info& e) {
      col->busy.reset();
      // The output moves into the JSON, the JSON is rendered and freed, the text moves into
      // the response: at most two copies of (capped) output exist at any time.
      http_response resp;
      {
        json j;
        if (e.timed_out) {
          resp.status = http_status(errc::timeout);
          j = {{"error", {{"code", "timeout"},
                          {"message", "command exceeded its timeout; its process group was killed"},
                          {"stdout", std::move(col->out)}, {"stderr", std::move(col->err)},
                          {"duration_ms", e.duration_ms}, {"truncated", col->truncated}}}};
        } else {
          resp.status = 200;
          j = {{"exit_code", e.exit_code}, {"stdout", std::move(col->out)}, {"stderr", std::move(col->err)},
               {"duration_ms", e.duration_ms}, {"truncated", col->truncated}};
        }
        col->out = std::string();
        col->err = std::string();
        resp.body = dump(j);
      }
      ex->respond(std::move(resp));
    };
    cb.on_error = [ex, col](const error& e) {
      col->busy.reset();
      ex->respond(error_response(e));
    };
    count_exec(*link, body);
    feed_stdin(link->agent->exec(body.req, std::move(cb)), std::move(body.stdin_data));
  });
}

namespace {

// One SSE exec: the agent's strand produces events, the HTTP session's strand sends them.
struct sse_exec : std::enable_shared_from_this<sse_exec> {
  exchange_ptr ex;
  actors::sandbox_link_ptr link;
  std::unique_ptr<actors::stream_guard> busy;
  // Guards proc and gone. proc is set after exec() returns and is the only strong reference
  // to the agent stream handle (without it cancel/pause/resume have nothing to act on); it is
  // dropped when the exec ends, which breaks the cycle through the stream's callbacks.
  std::mutex mu;
  std::shared_ptr<agent::process> proc;
  bool gone = false;  // the client left (maybe before proc was set)
  bool started = false, finished = false;  // agent strand only
  bool finished_ = false;                  // under mu: the exec ended, keep no handle
  utf8_stream utf_out, utf_err;            // a chunk boundary never splits a character
  std::shared_ptr<send_window> window;

  std::shared_ptr<agent::process> process() {
    std::lock_guard lk(mu);
    return proc;
  }

  void set_process(std::shared_ptr<agent::process> p) {
    bool cancel = false;
    {
      std::lock_guard lk(mu);
      if (gone) cancel = true;
      else if (!finished_) proc = p;
    }
    if (cancel) p->cancel();
  }

  std::shared_ptr<agent::process> drop_process() {
    std::lock_guard lk(mu);
    finished_ = true;
    return std::move(proc);
  }

  void start() {
    if (started) return;
    started = true;
    auto self = shared_from_this();
    ex->start_stream(200, "text/event-stream", {{"X-Accel-Buffering", "no"}}, [self] {
      // The client left: kill the process group (API.md: "If the client disconnects...").
      std::shared_ptr<agent::process> p;
      {
        std::lock_guard lk(self->mu);
        self->gone = true;
        p = std::move(self->proc);
      }
      if (p) p->cancel();
      self->busy.reset();
    });
  }

  void send(const char* event, const json& data) {
    start();
    auto text = std::string("event: ") + event + "\ndata: " + dump(data) + "\n\n";
    auto done = window->sent(text.size());
    ex->write(std::move(text), std::move(done));
  }

  void output(const char* event, utf8_stream& utf, std::string_view chunk) {
    auto text = utf.feed(chunk);
    if (!text.empty()) send(event, json{{"data", std::move(text)}});
  }

  void flush_carry() {
    if (auto t = utf_out.finish(); !t.empty()) send("stdout", json{{"data", t}});
    if (auto t = utf_err.finish(); !t.empty()) send("stderr", json{{"data", t}});
  }

  void finish() {
    finished = true;
    busy.reset();
    drop_process();
    ex->end();
  }
};

}  // namespace

void api::exec_stream(const context& c) {
  auto body = parse_exec(c.req());
  if (!body) return c.ex->respond(error_response(body.err()));
  auto ex = c.ex;
  with_link(c, [ex, body = std::move(*body)](const actors::sandbox_link_ptr& link) mutable {
    if (body.req.timeout_ms == 0) body.req.timeout_ms = static_cast<uint64_t>(link->default_timeout_s) * 1000;
    auto s = std::make_shared<sse_exec>();
    s->ex = ex;
    s->link = link;
    s->busy = std::make_unique<actors::stream_guard>(link->act);
    std::weak_ptr<sse_exec> w = s;
    s->window = std::make_shared<send_window>(
        sse_pause_bytes, sse_resume_bytes,
        [w] { if (auto s = w.lock()) if (auto p = s->process()) p->pause_output(); },
        [w] { if (auto s = w.lock()) if (auto p = s->process()) p->resume_output(); });
    agent::exec_callbacks cb;
    cb.on_start = [s](int64_t) { s->start(); };
    cb.on_stdout = [s](std::string_view d) { s->link->act->bytes_out += d.size(), s->output("stdout", s->utf_out, d); };
    cb.on_stderr = [s](std::string_view d) { s->link->act->bytes_out += d.size(), s->output("stderr", s->utf_err, d); };
    cb.on_exit = [s](const agent::exit_info& e) {
      s->flush_carry();
      if (e.timed_out)
        s->send("error", json{{"error", {{"code", "timeout"},
                                         {"message", "command exceeded its timeout; its process group was killed"}}},
                              {"duration_ms", e.duration_ms}});
      else
        s->send("exit", json{{"exit_code", e.exit_code}, {"duration_ms", e.duration_ms}});
      s->finish();
    };
    cb.on_error = [s](const error& e) {
      if (!s->started) {  // refused before it ran (bad cwd, ...): a plain JSON error
        s->busy.reset();
        s->drop_process();
        return s->ex->respond(error_response(e));
      }
      s->flush_carry();
      s->send("error", json{{"error", {{"code", to_string(e.code)}, {"message", e.message}}}});
      s->finish();
    };
    count_exec(*link, body);
    auto p = link->agent->exec(body.req, std::move(cb));
    s->set_process(p);
    feed_stdin(p, std::move(body.stdin_data));
  });
}

}  // namespace warren::net
