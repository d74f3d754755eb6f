// net/e2b/envd_process.cpp — envd's process.Process service on the agent's exec streams:
// Start (server stream: start, data…, end), Connect (re-attach by pid or tag), List, SendInput,
// SendSignal, CloseStdin, Update (pty size). A process outlives the request that started it
// (the stream may go; the process stays until it exits, is killed, or its deadline passes).
#include <csignal>

#include "net/e2b/envd.hpp"
#include "net/e2b/process_table.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net::e2b {

using json = nlohmann::json;

namespace {

constexpr size_t pause_bytes = 4 * 1024 * 1024;  // queued for the slowest subscriber
constexpr size_t resume_bytes = 1024 * 1024;

// Subscribes a stream; when its queue drains, a process paused for backpressure resumes.
void attach(const process_ptr& p, const std::shared_ptr<event_stream>& s) {
  std::weak_ptr<process_entry> weak = p;
  s->on_low_water(resume_bytes, [weak] {
    auto e = weak.lock();
    if (!e || !e->paused || e->max_queued() > resume_bytes) return;
    if (e->paused.exchange(false))
      if (auto h = e->handle) h->resume_output();
  });
  p->subscribe(s);
}
constexpr const char* keepalive_event = R"({"event":{"keepalive":{}}})";

json event(const char* kind, json body) { return json{{"event", {{kind, std::move(body)}}}}; }

std::string signal_name(int sig) {
  switch (sig) {
    case SIGKILL: return "killed";
    case SIGTERM: return "terminated";
    case SIGINT: return "interrupt";
    case SIGHUP: return "hangup";
    case SIGPIPE: return "broken pipe";
    case SIGSEGV: return "segmentation fault";
    case SIGABRT: return "aborted";
    default: return "signal " + std::to_string(sig);
  }
}

// process.ProcessEvent.EndEvent as envd reports it (Go's ProcessState: -1 when signalled).
json end_event(const agent::exit_info& e) {
  json end;
  if (e.signal) {
    end = {{"exitCode", -1}, {"exited", false}, {"status", "signal: " + signal_name(e.signal)}};
  } else {
    end = {{"exitCode", e.exit_code}, {"exited", true}, {"status", "exit status " + std::to_string(e.exit_code)}};
  }
  if (e.timed_out) end["error"] = "the process exceeded its timeout and was killed";
  return event("end", std::move(end));
}

// process.ProcessSelector → the entry, or answers not_found itself.
process_ptr select(const envd_call& c, const json& msg, std::shared_ptr<event_stream> s = {}) {
  auto fail = [&](const std::string& why) -> process_ptr {
    if (s) s->finish("not_found", why);
    else reply_connect_error(c.ex, "not_found", why);
    return nullptr;
  };
  const json sel = msg.contains("process") && msg["process"].is_object() ? msg["process"] : json::object();
  if (sel.contains("pid") && sel["pid"].is_number_integer()) {
    auto pid = sel["pid"].get<int64_t>();
    if (auto p = c.st->procs->by_pid(c.link->id, pid)) return p;
    return fail("process with pid " + std::to_string(pid) + " not found");
  }
  if (sel.contains("tag") && sel["tag"].is_string()) {
    auto tag = sel["tag"].get<std::string>();
    if (auto p = c.st->procs->by_tag(c.link->id, tag)) return p;
    return fail("process with tag " + tag + " not found");
  }
  return fail("a process selector (pid or tag) is required");
}

bool string_map(const json& j, std::map<std::string, std::string>& out) {
  if (j.is_null()) return true;
  if (!j.is_object()) return false;
  for (auto& [k, v] : j.items()) {
    if (!v.is_string()) return false;
    out[k] = v.get<std::string>();
  }
  return true;
}

void start(const envd_call& c) {
  auto msg = request_message(c, true);
  if (!msg) return;
  const json& pc = msg->value("process", json::object());
  if (!pc.is_object() || !pc.contains("cmd") || !pc["cmd"].is_string() || pc["cmd"].get<std::string>().empty())
    return reply_connect_error(c.ex, "invalid_argument", "process.cmd is required");
  agent::exec_request req;
  req.argv.push_back(pc["cmd"].get<std::string>());
  if (pc.contains("args")) {
    if (!pc["args"].is_array()) return reply_connect_error(c.ex, "invalid_argument", "process.args must be a list");
    for (auto& a : pc["args"]) {
      if (!a.is_string()) return reply_connect_error(c.ex, "invalid_argument", "process.args must be strings");
      req.argv.push_back(a.get<std::string>());
    }
  }
  if (!string_map(pc.value("envs", json()), req.env))
    return reply_connect_error(c.ex, "invalid_argument", "process.envs must map strings to strings");
  if (pc.contains("cwd") && pc["cwd"].is_string()) req.cwd = c.resolve(pc["cwd"].get<std::string>());
  req.user = c.user;
  bool pty = msg->contains("pty") && (*msg)["pty"].is_object();
  if (pty) {
    auto size = (*msg)["pty"].value("size", json::object());
    req.pty = true;
    req.cols = static_cast<uint16_t>(size.value("cols", 80));
    req.rows = static_cast<uint16_t>(size.value("rows", 24));
    if (req.cols == 0 || req.rows == 0) return reply_connect_error(c.ex, "invalid_argument", "pty size must be positive");
  }
  bool keep_stdin = pty || msg->value("stdin", false);
  // envd kills the process when the request's deadline passes (not when the client leaves).
  if (auto t = c.req().header("connect-timeout-ms"); !t.empty()) req.timeout_ms = std::strtoull(std::string(t).c_str(), nullptr, 10);

  auto entry = std::make_shared<process_entry>();
  entry->sandbox = c.link->id;
  if (msg->contains("tag") && (*msg)["tag"].is_string()) entry->tag = (*msg)["tag"].get<std::string>();
  entry->config = pc;
  entry->pty = pty;
  auto stream = event_stream::open(c.ex, keepalive_event);
  attach(entry, stream);
  // The request's deadline ends the process as well as the stream (envd: the process's context
  // times out); the kill goes out before the stream's error, so a call the client makes next sees
  // the process dying already. The agent's own timeout_ms is the backstop.
  std::weak_ptr<process_entry> dl = entry;
  stream->on_deadline([dl] {
    if (auto e = dl.lock())
      if (auto h = e->handle) h->kill();
  });
  auto busy = std::make_shared<actors::stream_guard>(c.link->act);
  auto procs = c.st->procs;
  auto link = c.link;
  std::weak_ptr<process_entry> weak = entry;

  agent::exec_callbacks cb;
  cb.on_start = [entry, procs](int64_t pid) {
    entry->pid = pid;
    procs->add(entry);
    entry->broadcast(event("start", {{"pid", pid}}));
  };
  auto output = [weak](const char* which) {
    return [weak, which](std::string_view d) {
      auto e = weak.lock();
      if (!e) return;
      e->broadcast(event("data", {{which, base64_encode(d)}}));
      // Backpressure: a subscriber that does not read stops the agent reading the process
      // (which then blocks on its full pipe), as the native streaming exec does; its stream's
      // low-water callback resumes it.
      if (e->handle && !e->paused && e->max_queued() > pause_bytes && !e->paused.exchange(true))
        e->handle->pause_output();
    };
  };
  cb.on_stdout = output(pty ? "pty" : "stdout");
  cb.on_stderr = output("stderr");
  cb.on_exit = [entry, procs, busy](const agent::exit_info& e) mutable {
    busy.reset();
    entry->broadcast(end_event(e));
    entry->finish_all();
    procs->remove(entry->sandbox, entry->pid);
    entry->handle.reset();  // breaks the cycle through the callbacks
  };
  cb.on_error = [entry, procs, busy](const error& e) mutable {
    busy.reset();
    // A command that cannot start is the caller's mistake (envd: invalid_argument).
    error shown = e;
    if (e.code == errc::not_found || e.code == errc::bad_request) shown.code = errc::bad_request;
    entry->finish_all(&shown);
    if (entry->pid) procs->remove(entry->sandbox, entry->pid);
    entry->handle.reset();
  };
  entry->handle = link->agent->exec(std::move(req), std::move(cb));
  if (!keep_stdin) entry->handle->close_stdin();
}

void connect(const envd_call& c) {
  auto msg = request_message(c, true);
  if (!msg) return;
  auto stream = event_stream::open(c.ex, keepalive_event);
  auto p = select(c, *msg, stream);
  if (!p) return;
  stream->send(event("start", {{"pid", p->pid}}));
  attach(p, stream);
}

void list(const envd_call& c) {
  if (!request_message(c, false)) return;
  json out = json::array();
  for (auto& p : c.st->procs->of(c.link->id)) {
    json info = {{"config", p->config}, {"pid", p->pid}};
    if (p->tag) info["tag"] = *p->tag;
    out.push_back(std::move(info));
  }
  reply_json(c.ex, {{"processes", out}});
}

void send_input(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = select(c, *msg);
  if (!p) return;
  const json in = msg->value("input", json::object());
  std::string b64 = in.contains("stdin") && in["stdin"].is_string() ? in["stdin"].get<std::string>()
                    : in.contains("pty") && in["pty"].is_string() ? in["pty"].get<std::string>()
                                                                   : std::string();
  auto bytes = base64_decode(b64);
  if (!bytes) return reply_connect_error(c.ex, "invalid_argument", "input is not base64");
  auto h = p->handle;
  if (!h) return reply_connect_error(c.ex, "not_found", "process with pid " + std::to_string(p->pid) + " has ended");
  auto ex = c.ex;
  h->write_stdin(std::move(*bytes), [ex](status st) {
    if (!st) return reply_connect_error(ex, st.err());
    reply_json(ex, json::object());
  });
}

void send_signal(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = select(c, *msg);
  if (!p) return;
  int sig = 0;
  const json s = msg->value("signal", json());
  if (s == "SIGNAL_SIGKILL" || s == 9) sig = SIGKILL;
  else if (s == "SIGNAL_SIGTERM" || s == 15) sig = SIGTERM;
  else return reply_connect_error(c.ex, "invalid_argument", "signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM");
  if (auto h = p->handle) h->signal(sig);
  reply_json(c.ex, json::object());
}

void close_stdin(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = select(c, *msg);
  if (!p) return;
  if (p->pty) return reply_connect_error(c.ex, "failed_precondition", "a pty process has no stdin to close");
  if (auto h = p->handle) h->close_stdin();
  reply_json(c.ex, json::object());
}

void update(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = select(c, *msg);
  if (!p) return;
  if (msg->contains("pty") && (*msg)["pty"].is_object()) {
    if (!p->pty) return reply_connect_error(c.ex, "failed_precondition", "the process has no pty");
    auto size = (*msg)["pty"].value("size", json::object());
    int cols = size.value("cols", 0), rows = size.value("rows", 0);
    if (cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535)
      return reply_connect_error(c.ex, "invalid_argument", "pty size must be positive");
    if (auto h = p->handle) h->resize(static_cast<uint16_t>(cols), static_cast<uint16_t>(rows));
  }
  reply_json(c.ex, json::object());
}

}  // namespace

void serve_process(const envd_call& c, const std::string& method) {
  using fn = void (*)(const envd_call&);
  static const std::map<std::string, fn> methods = {
      {"Start", start},           {"Connect", connect},         {"List", list},     {"SendInput", send_input},
      {"SendSignal", send_signal}, {"CloseStdin", close_stdin}, {"Update", update},
  };
  auto it = methods.find(method);
  if (it == methods.end()) {
    // StreamInput is client-streaming: not possible over HTTP/1.1 with the Connect JSON codec
    // (the SDK uses SendInput instead).
    return reply_connect_error(c.ex, "unimplemented", "process.Process/" + method + " is not served by Warren");
  }
  auto f = it->second;
  with_body(c, [c, f] { f(c); });
}

}  // namespace warren::net::e2b
