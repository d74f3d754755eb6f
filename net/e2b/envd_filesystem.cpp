// net/e2b/envd_filesystem.cpp — envd's filesystem.Filesystem service on the agent's file
// operations (confined to the sandbox root like every Warren file call): Stat, ListDir (depth),
// MakeDir, Move, Remove, WatchDir (server stream). Relative paths resolve against the user's
// home; what is created belongs to the user.
#include "net/e2b/envd.hpp"
#include "net/e2b/event_stream.hpp"

namespace warren::net::e2b {

using json = nlohmann::json;

namespace {

// The "path" of the message, resolved; answers the error itself when absent.
std::optional<std::string> path_of(const envd_call& c, const json& msg, const char* field = "path") {
  if (!msg.contains(field) || !msg[field].is_string() || msg[field].get<std::string>().empty()) {
    reply_connect_error(c.ex, "invalid_argument", std::string(field) + " is required");
    return std::nullopt;
  }
  return c.resolve(msg[field].get<std::string>());
}

void stat(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = path_of(c, *msg);
  if (!p) return;
  auto ex = c.ex;
  c.link->agent->stat(*p, [ex, link = c.link](expected<agent::file_info> f) {
    if (!f) return reply_connect_error(ex, f.err());
    reply_json(ex, {{"entry", entry_info(*f)}});
  });
}

// Breadth-first listing to `depth` levels; symlinked directories are not entered.
struct lister : std::enable_shared_from_this<lister> {
  exchange_ptr ex;
  actors::sandbox_link_ptr link;
  uint32_t depth = 1;
  json entries = json::array();
  size_t pending = 0;
  bool failed = false;

  void list(const std::string& dir, uint32_t level, bool top) {
    ++pending;
    auto self = shared_from_this();
    link->agent->list(dir, [self, level, top](expected<std::vector<agent::file_info>> items) {
      --self->pending;
      if (self->failed) return;
      if (!items) {
        if (top) {
          self->failed = true;
          return reply_connect_error(self->ex, items.err());
        }
      } else {
        for (auto& f : *items) {
          self->entries.push_back(entry_info(f));
          if (f.type == "dir" && level < self->depth) self->list(f.path, level + 1, false);
        }
      }
      if (self->pending == 0) reply_json(self->ex, {{"entries", std::move(self->entries)}});
    });
  }
};

void list_dir(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = path_of(c, *msg);
  if (!p) return;
  auto l = std::make_shared<lister>();
  l->ex = c.ex;
  l->link = c.link;
  l->depth = std::max<uint32_t>(1, msg->value("depth", 1u));
  if (l->depth > 64) return reply_connect_error(c.ex, "invalid_argument", "depth is at most 64");
  auto ex = c.ex;
  // A file is not a directory: envd answers invalid_argument.
  c.link->agent->stat(*p, [l, ex, p = *p](expected<agent::file_info> f) {
    if (!f) return reply_connect_error(ex, f.err());
    if (f->type != "dir") return reply_connect_error(ex, "invalid_argument", p + " is not a directory");
    l->list(p, 1, true);
  });
}

void make_dir(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = path_of(c, *msg);
  if (!p) return;
  auto ex = c.ex;
  auto agent = c.link->agent;
  agent->stat(*p, [ex, agent, p = *p, user = c.user, link = c.link](expected<agent::file_info> existing) {
    if (existing) return reply_connect_error(ex, "already_exists", p + " already exists");
    agent->mkdir(p, std::nullopt, [ex, agent, p, link](status st) {
      if (!st) return reply_connect_error(ex, st.err());
      agent->stat(p, [ex, link](expected<agent::file_info> f) {
        if (!f) return reply_connect_error(ex, f.err());
        reply_json(ex, {{"entry", entry_info(*f)}});
      });
    }, user);
  });
}

void move(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto from = path_of(c, *msg, "source");
  if (!from) return;
  auto to = path_of(c, *msg, "destination");
  if (!to) return;
  auto ex = c.ex;
  c.link->agent->rename(*from, *to, c.user, [ex, link = c.link](expected<agent::file_info> f) {
    if (!f) return reply_connect_error(ex, f.err());
    reply_json(ex, {{"entry", entry_info(*f)}});
  });
}

void remove(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto p = path_of(c, *msg);
  if (!p) return;
  auto ex = c.ex;
  c.link->agent->remove(*p, true, [ex, link = c.link](status st) {
    if (!st) return reply_connect_error(ex, st.err());
    reply_json(ex, json::object());
  });
}

const char* event_type(const std::string& e) {
  if (e == "create") return "EVENT_TYPE_CREATE";
  if (e == "modify") return "EVENT_TYPE_WRITE";
  if (e == "delete") return "EVENT_TYPE_REMOVE";
  if (e == "rename") return "EVENT_TYPE_RENAME";
  return nullptr;
}

void watch_dir(const envd_call& c) {
  auto msg = request_message(c, true);
  if (!msg) return;
  auto p = path_of(c, *msg);
  if (!p) return;
  if (msg->value("includeEntry", false) || msg->value("allowNetworkMounts", false))
    return reply_connect_error(c.ex, "unimplemented",
                               "watch options includeEntry and allowNetworkMounts (envd 0.6.3/0.6.4) are not built");
  bool recursive = msg->value("recursive", false);
  auto ex = c.ex;
  auto link = c.link;
  link->agent->stat(*p, [ex, link, p = *p, recursive](expected<agent::file_info> f) {
    if (!f) return reply_connect_error(ex, f.err());
    if (f->type != "dir") return reply_connect_error(ex, "invalid_argument", p + " is not a directory");
    auto stream = event_stream::open(ex, R"({"keepalive":{}})");
    auto busy = std::make_shared<actors::stream_guard>(link->act);
    auto holder = std::make_shared<std::shared_ptr<agent::watcher>>();
    std::string prefix = p == "/" ? "/" : p + "/";
    agent::watch_callbacks cb;
    cb.on_ready = [stream] { stream->send(json{{"start", json::object()}}); };
    cb.on_event = [stream, prefix, holder](const agent::watch_event& e) {
      auto type = event_type(e.event);
      if (!type) return;  // overflow: nothing envd would say
      std::string name = e.path.rfind(prefix, 0) == 0 ? e.path.substr(prefix.size()) : e.path;
      if (!stream->send(json{{"filesystem", {{"name", name}, {"type", type}}}}) && *holder) (*holder)->cancel();
    };
    cb.on_error = [stream, busy, holder](const error& e) mutable {
      busy.reset();
      stream->finish(&e);
      holder->reset();
    };
    stream->on_gone([holder, busy]() mutable {
      busy.reset();
      if (*holder) (*holder)->cancel();
      holder->reset();
    });
    stream->on_deadline([holder] {
      if (*holder) (*holder)->cancel();
      holder->reset();
    });
    *holder = link->agent->watch(p, recursive, std::move(cb));
  });
}

}  // namespace

void serve_filesystem(const envd_call& c, const std::string& method) {
  using fn = void (*)(const envd_call&);
  static const std::map<std::string, fn> methods = {
      {"Stat", stat}, {"ListDir", list_dir}, {"MakeDir", make_dir}, {"Move", move}, {"Remove", remove},
      {"WatchDir", watch_dir},
  };
  auto it = methods.find(method);
  if (it == methods.end()) {
    // CreateWatcher / GetWatcherEvents / RemoveWatcher (the polling watchers of E2B's Python
    // SDK) are not built; the JS SDK watches with WatchDir.
    return reply_connect_error(c.ex, "unimplemented", "filesystem.Filesystem/" + method + " is not served by Warren");
  }
  auto f = it->second;
  with_body(c, [c, f] { f(c); });
}

}  // namespace warren::net::e2b
