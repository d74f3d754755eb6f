// net/api_terminal.cpp — the terminal WebSocket: a real pty in the sandbox, raw bytes both
// ways in binary frames, `{"op":"resize"}` text frames; made for xterm.js. Other text frames
// are taken as input too (xterm.js's attach addon sends keystrokes as text).
#include <nlohmann/json.hpp>

#include "net/api.hpp"
#include "net/send_window.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

// The shell a terminal gets when none is named: bash if the image has it, else sh.
constexpr const char* default_terminal =
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

expected<uint16_t> dim_param(const http_request& r, const char* name, uint16_t dflt) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return dflt;
  char* end = nullptr;
  auto v = std::strtoul(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end || v < 1 || v > 1000)
    return make_error(errc::bad_request, std::string("query parameter \"") + name + "\" must be 1..1000");
  return static_cast<uint16_t>(v);
}

// Terminal input: bytes for stdin, unless it is a resize request.
void terminal_input(const std::shared_ptr<agent::process>& p, std::string data, bool text,
                    const std::shared_ptr<send_window>& in_window, actors::stream_session& info) {
  if (text && !data.empty() && data.front() == '{') {
    auto j = json::parse(data, nullptr, false);
    if (j.is_object() && j.value("op", "") == "resize") {
      auto cols = j.value("cols", 0), rows = j.value("rows", 0);
      if (cols >= 1 && cols <= 1000 && rows >= 1 && rows <= 1000)
        p->resize(static_cast<uint16_t>(cols), static_cast<uint16_t>(rows));
      return;
    }
  }
  auto n = data.size();
  info.bytes_in += n;
  p->write_stdin(std::move(data), [done = in_window->sent(n)](status st) { done(bool(st)); });
}

}  // namespace

void api::terminal(const context& c) {
  if (!c.ex->is_websocket_upgrade())
    return c.ex->respond(error_response(make_error(errc::bad_request, "pty needs a WebSocket upgrade")));
  auto cols = dim_param(c.req(), "cols", 80), rows = dim_param(c.req(), "rows", 24);
  if (!cols) return c.ex->respond(error_response(cols.err()));
  if (!rows) return c.ex->respond(error_response(rows.err()));
  agent::exec_request req;
  req.pty = true;
  req.cols = *cols;
  req.rows = *rows;
  auto cmd = c.req().query.find("command");
  req.command = cmd != c.req().query.end() && !cmd->second.empty() ? cmd->second : default_terminal;
  req.env["TERM"] = "xterm-256color";
  auto ex = c.ex;
  with_link(c, [ex, req](const actors::sandbox_link_ptr& link) {
    ex->accept_websocket([link, req](std::shared_ptr<websocket> ws) {
      auto busy = std::make_shared<actors::stream_guard>(link->act);
      // Listed in the admin console while the socket is open; an admin's kill closes it.
      auto info = actors::open_stream_session("terminal", link->id);
      info->on_kill([w = std::weak_ptr<websocket>(ws)] {
        if (auto ws = w.lock()) ws->close(1000, "terminal killed by an admin");
      });
      auto proc = std::make_shared<std::shared_ptr<agent::process>>();
      // Output waits for the client (pausing the pty); input waits for the agent (pausing reads).
      auto out_window = std::make_shared<send_window>(
          1024 * 1024, 256 * 1024, [proc] { if (*proc) (*proc)->pause_output(); },
          [proc] { if (*proc) (*proc)->resume_output(); });
      auto in_window = std::make_shared<send_window>(
          1024 * 1024, 256 * 1024, [ws] { ws->pause_reading(); }, [ws] { ws->resume_reading(); });
      agent::exec_callbacks cb;
      cb.on_stdout = [ws, out_window, info, act = link->act](std::string_view d) {
        info->bytes_out += d.size();
        act->bytes_out += d.size();
        ws->send_binary(std::string(d), out_window->sent(d.size()));
      };
      cb.on_stderr = cb.on_stdout;
      cb.on_exit = [ws](const agent::exit_info& e) { ws->close(1000, "exit " + std::to_string(e.exit_code)); };
      cb.on_error = [ws](const error& e) {
        ws->send_text(json{{"error", {{"code", to_string(e.code)}, {"message", e.message}}}}.dump());
        ws->close(1011, "terminal failed");
      };
      *proc = link->agent->exec(req, std::move(cb));
      websocket_callbacks wcb;
      auto input = [proc, in_window, info, act = link->act](std::string d, bool text) {
        if (!*proc) return;
        auto n = info->bytes_in.load();
        terminal_input(*proc, std::move(d), text, in_window, *info);
        act->bytes_in += info->bytes_in.load() - n;
      };
      wcb.on_binary = [input](std::string d) { input(std::move(d), false); };
      wcb.on_text = [input](std::string d) { input(std::move(d), true); };
      wcb.on_close = [proc, busy, info]() mutable {
        info->closed = true;
        info.reset();
        if (*proc) (*proc)->kill();  // closing the socket ends the terminal's process group
        proc->reset();
        busy.reset();
      };
      return wcb;
    });
  });
}

}  // namespace warren::net
