// net/api_files.cpp — files: upload and download streamed through the daemon with bounded
// memory (chunks move between the HTTP connection and the agent under backpressure), delete,
// ls, and watch (WebSocket). Paths resolve inside the sandbox root in the agent
// (openat2 RESOLVE_IN_ROOT): `..` and symlinks can never reach a host file.
#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "net/api.hpp"
#include "net/send_window.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

constexpr size_t download_pause_bytes = 4 * 1024 * 1024;
constexpr size_t download_resume_bytes = 1024 * 1024;

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

// Moves the request body into the agent's file, one chunk at a time: the next chunk is read
// from the client only when the previous one left for the agent.
struct upload : std::enable_shared_from_this<upload> {
  exchange_ptr ex;
  std::shared_ptr<agent::file_writer> w;
  std::unique_ptr<actors::stream_guard> busy;
  std::atomic<bool> failed{false};

  void next() {
    auto self = shared_from_this();
    ex->read_body_chunk([self](expected<std::string> chunk) {
      if (self->failed) return;
      if (!chunk) {
        self->failed = true;
        self->w->cancel();
        return self->ex->respond(error_response(chunk.err()));
      }
      if (chunk->empty()) return self->w->finish();
      self->w->write(std::move(*chunk), [self](status st) {
        if (st) return self->next();
        // the agent refused (ENOSPC, ...): on_done reports it
      });
    });
  }
};

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
    auto up = std::make_shared<upload>();
    up->ex = ex;
    up->busy = std::make_unique<actors::stream_guard>(link->act);
    up->w = link->agent->write_file(p, opts, [up, p, link](expected<uint64_t> n) {
      up->busy.reset();
      if (!n) {
        up->failed = true;
        return up->ex->respond(error_response(n.err()));
      }
      up->ex->respond(json_response(200, json{{"path", p}, {"size", *n}}.dump()));
    });
    up->next();
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
      // The response head goes out with the first chunk (or at the end of an empty file), so an
      // open that fails — a dangling symlink, a loop, a path swapped since the stat — answers its
      // error instead of an empty 200. Chunks then pace the agent.
      auto busy = std::make_shared<actors::stream_guard>(link->act);
      auto reader = std::make_shared<std::shared_ptr<agent::file_reader>>();
      auto started = std::make_shared<bool>(false);
      auto window = std::make_shared<send_window>(
          download_pause_bytes, download_resume_bytes,
          [reader] { if (*reader) (*reader)->pause_output(); },
          [reader] { if (*reader) (*reader)->resume_output(); });
      auto start = [ex, reader, started] {
        if (*started) return;
        *started = true;
        ex->start_stream(200, "application/octet-stream", {}, [reader] { if (*reader) (*reader)->cancel(); });
      };
      agent::read_callbacks cb;
      cb.on_data = [ex, window, start](std::string_view d) {
        start();
        ex->write(std::string(d), window->sent(d.size()));
      };
      cb.on_done = [ex, busy, reader, started, start](expected<uint64_t> n) mutable {
        busy.reset();
        if (!*started && !n) {
          ex->respond(error_response(n.err()));
        } else {
          start();
          ex->end();  // a read error after the head: the client sees a short body
        }
        reader->reset();
      };
      *reader = link->agent->read_file(p, std::move(cb));
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
      ex->accept_websocket([p, recursive, link](std::shared_ptr<websocket> ws) {
        auto busy = std::make_shared<actors::stream_guard>(link->act);
        auto holder = std::make_shared<std::shared_ptr<agent::watcher>>();
        auto window = std::make_shared<send_window>(
            1024 * 1024, 256 * 1024, [holder] { if (*holder) (*holder)->pause_output(); },
            [holder] { if (*holder) (*holder)->resume_output(); });
        agent::watch_callbacks cb;
        cb.on_event = [ws, window](const agent::watch_event& e) {
          auto text = json{{"event", e.event}, {"path", e.path}}.dump(-1, ' ', false, json::error_handler_t::replace);
          auto done = window->sent(text.size());
          ws->send_text(std::move(text), std::move(done));
        };
        cb.on_error = [ws](const error& e) {
          ws->send_text(json{{"error", {{"code", to_string(e.code)}, {"message", e.message}}}}.dump());
          ws->close(1011, "watch ended");
        };
        *holder = link->agent->watch(p, recursive, std::move(cb));
        websocket_callbacks wcb;
        wcb.on_close = [holder, busy]() mutable {
          if (*holder) (*holder)->cancel();
          holder->reset();
          busy.reset();
        };
        return wcb;
      }, 64 * 1024);
    });
  });
}

}  // namespace warren::net
