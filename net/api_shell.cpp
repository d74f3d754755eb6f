// net/api_shell.cpp — the shell session WebSocket (API.md "Shell session"): JSON text frames
// `{"op":"run","id":..,"command":..,"timeout":..}` in, one reply per request out, strictly in
// request order. The bash lives in a shell actor under the sandbox's actor; commands go
// straight to its session. Closing the socket ends the bash and every process it started.
#include <deque>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/utf8.hpp"
#include "net/api.hpp"
#include "vmm/agent/shell_session.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

constexpr size_t max_frame = 1024 * 1024;  // a larger client frame closes with 1009

json error_reply(const json& id, std::string_view code, const std::string& message) {
  return {{"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json run_reply(const json& id, const agent::shell_reply& r) {
  auto& res = r.result;
  json j = {{"id", id}};
  if (r.error) {
    j["error"] = {{"code", agent::to_string(r.error->code)}, {"message", r.error->message}};
    if (r.error->code != agent::shell_errc::timeout) return j;
  } else {
    j["exit_code"] = res.exit_code;
  }
  j["stdout"] = to_valid_utf8(res.stdout_data);
  j["stderr"] = to_valid_utf8(res.stderr_data);
  j["duration_ms"] = res.duration_ms;
  if (res.stdout_truncated || res.stderr_truncated) j["truncated"] = true;
  if (res.closed) j["closed"] = true;
  return j;
}

// One WebSocket's requests and their replies, sent in request order whatever order they finish.
// Memory stays bounded whatever the client does: runs wait in `queue` and go to the bash one
// at a time, and only while the replies not yet taken by the client stay under `max_unsent`;
// reading from the socket pauses while `queue` is long or replies pile up. A client that sends
// many runs and never reads thus holds at most one run's output and one window of replies here.
struct shell_conn : std::enable_shared_from_this<shell_conn> {
  static constexpr size_t max_unsent = 4 * 1024 * 1024, resume_unsent = 1024 * 1024;
  static constexpr size_t max_queued = 64, resume_queued = 16;

  struct pending_run {
    uint64_t seq;
    json id;
    std::string command;
    int timeout_s;
  };

  std::shared_ptr<websocket> ws;
  actors::shell_lease_ptr lease;
  std::recursive_mutex mu;
  uint64_t next_seq = 0, next_to_send = 0;
  std::map<uint64_t, std::string> ready;
  std::deque<pending_run> queue;
  bool running = false, closed = false, reading_paused = false;
  size_t unsent = 0;

  uint64_t reserve() {
    std::lock_guard lk(mu);
    return next_seq++;
  }

  // Pauses or resumes reading from the client (under `mu`, so the posted calls keep our order).
  void update_reading() {
    bool full = queue.size() >= max_queued || unsent > max_unsent;
    bool roomy = queue.size() < resume_queued && unsent < resume_unsent;
    if (full && !reading_paused) {
      reading_paused = true;
      ws->pause_reading();
    } else if (roomy && reading_paused) {
      reading_paused = false;
      ws->resume_reading();
    }
  }

  // Starts the next queued run when the bash is free and the client keeps up.
  void pump() {
    std::unique_lock lk(mu);
    if (closed || running || queue.empty() || unsent > max_unsent) return update_reading();
    auto r = std::move(queue.front());
    queue.pop_front();
    running = true;
    update_reading();
    auto session = lease->session;
    if (auto& info = lease->info) {
      ++info->commands;
      info->bytes_in += r.command.size();
    }
    lk.unlock();
    auto self = shared_from_this();
    session->run(r.command, std::chrono::seconds(r.timeout_s), [self, seq = r.seq, id = r.id](agent::shell_reply rep) {
      {
        std::lock_guard lk2(self->mu);
        self->running = false;
      }
      self->complete(seq, run_reply(id, rep));
      self->pump();
    });
  }

  void complete(uint64_t seq, const json& reply) {
    std::lock_guard lk(mu);
    ready[seq] = reply.dump();
    if (lease && lease->info) lease->info->bytes_out += ready[seq].size();
    for (auto it = ready.find(next_to_send); it != ready.end(); it = ready.find(next_to_send)) {
      auto text = std::move(it->second);
      ready.erase(it);
      ++next_to_send;
      auto n = text.size();
      unsent += n;
      ws->send_text(std::move(text), [self = shared_from_this(), n](bool) {
        {
          std::lock_guard lk2(self->mu);
          self->unsent -= n;
        }
        self->pump();
      });
    }
    update_reading();
  }

  void on_text(std::string frame) {
    auto seq = reserve();
    auto j = json::parse(frame, nullptr, false);
    if (!j.is_object()) return complete(seq, error_reply(nullptr, "bad_request", "frame is not a JSON object"));
    json id = j.contains("id") ? j["id"] : json(nullptr);
    if (j.value("op", "") != "run")
      return complete(seq, error_reply(id, "bad_request", "unknown op; the only op is \"run\""));
    if (!j.contains("command") || !j["command"].is_string() || j["command"].get<std::string>().empty())
      return complete(seq, error_reply(id, "bad_request", "\"command\" must be a non-empty string"));
    int timeout_s = lease->default_timeout_s;
    if (j.contains("timeout")) {
      if (!j["timeout"].is_number_integer() || j["timeout"].get<int64_t>() < 1 || j["timeout"].get<int64_t>() > 86400)
        return complete(seq, error_reply(id, "bad_request", "\"timeout\" must be an integer in 1..86400"));
      timeout_s = j["timeout"].get<int>();
    }
    {
      std::lock_guard lk(mu);
      queue.push_back({seq, id, j["command"].get<std::string>(), timeout_s});
    }
    pump();
  }

  void on_close() {
    std::deque<pending_run> dropped;
    {
      std::lock_guard lk(mu);
      closed = true;
      dropped.swap(queue);
      if (lease && lease->info) lease->info->closed = true;
    }
    lease.reset();  // ends the bash and everything it started
  }
};

}  // namespace

void api::shell(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  if (!c.ex->is_websocket_upgrade())
    return c.ex->respond(error_response(make_error(errc::bad_request, "shell needs a WebSocket upgrade")));
  auto ex = c.ex;
  // bash is started before the upgrade, so a sandbox without bash gets a plain JSON error.
  node_->open_shell(id, principal(c), [ex](expected<actors::shell_lease_ptr> l) {
    if (!l) return ex->respond(error_response(l.err()));
    auto lease = *l;
    ex->accept_websocket([lease](std::shared_ptr<websocket> ws) {
      auto conn = std::make_shared<shell_conn>();
      conn->ws = ws;
      conn->lease = lease;
      // An admin's kill closes the socket, which ends the bash (on_close drops the lease).
      if (lease->info)
        lease->info->on_kill([w = std::weak_ptr<websocket>(ws)] {
          if (auto ws = w.lock()) ws->close(1000, "shell killed by an admin");
        });
      websocket_callbacks cb;
      cb.on_text = [conn](std::string f) { conn->on_text(std::move(f)); };
      cb.on_binary = [conn](std::string) {
        conn->complete(conn->reserve(), error_reply(nullptr, "bad_request", "send JSON text frames, not binary"));
      };
      cb.on_close = [conn] { conn->on_close(); };
      return cb;
    }, max_frame);
  });
}

}  // namespace warren::net
