// net/api_files.cpp — files: upload and download streamed through the daemon with bounded
// memory (chunks move between the HTTP connection and the agent under backpressure), delete,
// ls, and watch (WebSocket). Paths resolve inside the sandbox root in the agent
// (openat2 RESOLVE_IN_ROOT): `..` and symlinks can never reach a host file.
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "net/api.hpp"
#include "net/file_stream.hpp"
#include "net/send_window.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

// The `path` query parameter: required and absolute.
expected<std::string> path_param(const http_request& r) {
  auto it = r.query.find("path");
  if (it == r.query.end() || it->second.empty())
    return make_error(errc::bad_request, "query parameter \"path\" is required");
  if (it->second[0] != '/')
    return make_error(errc::bad_request, "path must be absolute, got \"" + it->second + "\"");
  if (it->second.size() > 4096) return make_error(errc::bad_request, "path is longer than 4096 bytes");
  return it->second;
}

std::string octal_mode(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

json entry_json(const agent::file_info& f) {
  return {{"name", f.name}, {"path", f.path}, {"type", f.type}, {"size", f.size},
          {"mode", octal_mode(f.mode)}, {"mtime", rfc3339_from_ns(f.mtime_ns)}};
}

}  // namespace

void api::put_file(const context& c) {
  auto path = path_param(c.req());
  if (!path) return c.ex->respond(error_response(path.err()));
  agent::write_options opts;
  if (auto it = c.req().query.find("mode"); it != c.req().query.end()) {
    char* end = nullptr;
    auto m = std::strtoul(it->second.c_str(), &end, 8);
    if (it->second.empty() || *end || m > 07777)
      return c.ex->respond(error_response(make_error(errc::bad_request, "mode must be octal permission bits like 0644")));
    opts.mode = static_cast<uint32_t>(m);
  }
  auto ex = c.ex;
  with_link(c, [ex, p = *path, opts](const actors::sandbox_link_ptr& link) {
    receive_file(ex, link, p, opts, [ex, p](expected<uint64_t> n) {
      if (!n) return ex->respond(error_response(n.err()));
      ex->respond(json_response(200, json{{"path", p}, {"size", *n}}.dump()));
    });
  });
}

void api::get_file(const context& c) {
  auto path = path_param(c.req());
  if (!path) return c.ex->respond(error_response(path.err()));
  auto ex = c.ex;
  with_link(c, [ex, p = *path](const actors::sandbox_link_ptr& link) {
    link->agent->stat(p, [ex, p, link](expected<agent::file_info> st) {
      if (!st) return ex->respond(error_response(st.err()));
      if (st->type == "dir")
        return ex->respond(error_response(make_error(errc::bad_request, p + " is a directory (use /ls)")));
      send_file(ex, link, p, "application/octet-stream", {}, [](const error& e) { return error_response(e); });
    });
  });
}

void api::delete_file(const context& c) {
  auto path = path_param(c.req());
  if (!path) return c.ex->respond(error_response(path.err()));
  bool recursive = c.req().query.count("recursive") && c.req().query.at("recursive") == "true";
  auto ex = c.ex;
  with_link(c, [ex, p = *path, recursive](const actors::sandbox_link_ptr& link) {
    link->agent->remove(p, recursive, [ex, link](status st) {
      if (!st) return ex->respond(error_response(st.err()));
      http_response r;
      r.status = 204;
      r.content_type.clear();
      ex->respond(std::move(r));
    });
  });
}

void api::list_dir(const context& c) {
  auto path = path_param(c.req());
  if (!path) return c.ex->respond(error_response(path.err()));
  auto ex = c.ex;
  with_link(c, [ex, p = *path](const actors::sandbox_link_ptr& link) {
    link->agent->list(p, [ex, link](expected<std::vector<agent::file_info>> items) {
      if (!items) return ex->respond(error_response(items.err()));
      json out = json::array();
      for (auto& f : *items) out.push_back(entry_json(f));
      ex->respond(json_response(200, json{{"entries", out}}.dump(-1, ' ', false, json::error_handler_t::replace)));
    });
  });
}

namespace {

// One watch: the agent's inotify stream first, then — only once its watches are in place — the
// client's WebSocket. Frames that arrive in between are held, so a change made right after the
// socket opened is never missed.
struct watch_pipe {
  std::mutex mu;
  std::shared_ptr<websocket> ws;  // set when the upgrade completed
  std::vector<std::string> held;  // frames from before that
  bool close_after_held = false;  // the watch ended before the socket opened
  std::shared_ptr<agent::watcher> watcher;
  std::shared_ptr<send_window> window;
  std::unique_ptr<actors::stream_guard> busy;

  void send(std::string text) {
    std::shared_ptr<websocket> w;
    {
      std::lock_guard lk(mu);
      if (!ws) return held.push_back(std::move(text));
      w = ws;
    }
    auto done = window->sent(text.size());
    w->send_text(std::move(text), std::move(done));
  }

  void end_with(const error& e) {
    send(json{{"error", {{"code", to_string(e.code)}, {"message", e.message}}}}.dump());
    std::shared_ptr<websocket> w;
    {
      std::lock_guard lk(mu);
      if (!ws) return void(close_after_held = true);
      w = ws;
    }
    w->close(1011, "watch ended");
  }

  void opened(std::shared_ptr<websocket> socket) {
    std::vector<std::string> frames;
    bool close_now;
    {
      std::lock_guard lk(mu);
      ws = socket;
      frames.swap(held);
      close_now = close_after_held;
    }
    for (auto& f : frames) {
      auto done = window->sent(f.size());
      socket->send_text(std::move(f), std::move(done));
    }
    if (close_now) socket->close(1011, "watch ended");
  }

  void closed() {
    std::shared_ptr<agent::watcher> w;
    {
      std::lock_guard lk(mu);
      w = std::move(watcher);
      ws.reset();
    }
    if (w) w->cancel();
    busy.reset();
  }
};

}  // namespace

void api::watch(const context& c) {
  if (!c.ex->is_websocket_upgrade())
    return c.ex->respond(error_response(make_error(errc::bad_request, "watch needs a WebSocket upgrade")));
  auto path = path_param(c.req());
  if (!path) return c.ex->respond(error_response(path.err()));
  bool recursive = c.req().query.count("recursive") && c.req().query.at("recursive") == "true";
  auto ex = c.ex;
  with_link(c, [ex, p = *path, recursive](const actors::sandbox_link_ptr& link) {
    // Refuse before the upgrade when the path is not a directory that exists.
    link->agent->stat(p, [ex, p, recursive, link](expected<agent::file_info> st) {
      if (!st) return ex->respond(error_response(st.err()));
      if (st->type != "dir") return ex->respond(error_response(make_error(errc::bad_request, p + " is not a directory")));
      auto pipe = std::make_shared<watch_pipe>();
      pipe->busy = std::make_unique<actors::stream_guard>(link->act);
      std::weak_ptr<watch_pipe> weak = pipe;
      pipe->window = std::make_shared<send_window>(
          1024 * 1024, 256 * 1024,
          [weak] { if (auto q = weak.lock()) if (auto w = q->watcher) w->pause_output(); },
          [weak] { if (auto q = weak.lock()) if (auto w = q->watcher) w->resume_output(); });
      auto upgraded = std::make_shared<std::atomic<bool>>(false);
      agent::watch_callbacks cb;
      cb.on_ready = [ex, pipe, upgraded] {
        upgraded->store(true);
        ex->accept_websocket([pipe](std::shared_ptr<websocket> ws) {
          pipe->opened(ws);
          websocket_callbacks wcb;
          wcb.on_close = [pipe] { pipe->closed(); };
          return wcb;
        }, 64 * 1024);
      };
      cb.on_event = [pipe](const agent::watch_event& e) {
        pipe->send(json{{"event", e.event}, {"path", e.path}}.dump(-1, ' ', false, json::error_handler_t::replace));
      };
      cb.on_error = [ex, pipe, upgraded](const error& e) {
        if (!upgraded->load()) {  // the watch never started: a plain HTTP error
          pipe->closed();
          return ex->respond(error_response(e));
        }
        pipe->end_with(e);
      };
      auto w = link->agent->watch(p, recursive, std::move(cb));
      std::lock_guard lk(pipe->mu);
      pipe->watcher = std::move(w);
    });
  });
}

}  // namespace warren::net
