// net/e2b/envd_filesystem.cpp — envd's filesystem.Filesystem service on the agent's file
// operations (confined to the sandbox root like every Warren file call): Stat, ListDir (depth),
// MakeDir, Move, Remove, WatchDir (server stream, includeEntry), and the polling watchers
// (CreateWatcher, GetWatcherEvents, RemoveWatcher). Relative paths resolve against the user's
// home; what is created belongs to the user.
#include <deque>

#include "core/ids.hpp"
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
  }, true);
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
    }, true);
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
      }, true);
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

// Events of one agent watch turned into envd's FilesystemEvents, in order. With includeEntry
// each event carries the file's EntryInfo, read after the event (none once it is gone).
struct event_pipe : std::enable_shared_from_this<event_pipe> {
  actors::sandbox_link_ptr link;
  std::string prefix;  // the watched directory + "/": event names are relative to it
  bool include_entry = false;
  std::function<void(json)> emit;
  std::mutex mu;
  std::deque<agent::watch_event> queue;
  bool busy = false;

  void push(const agent::watch_event& e) {
    if (!event_type(e.event)) return;  // overflow: nothing envd would say
    {
      std::lock_guard lk(mu);
      queue.push_back(e);
      if (busy) return;
      busy = true;
    }
    drain();
  }

  void drain() {
    agent::watch_event e;
    {
      std::lock_guard lk(mu);
      if (queue.empty()) {
        busy = false;
        return;
      }
      e = std::move(queue.front());
      queue.pop_front();
    }
    std::string name = e.path.rfind(prefix, 0) == 0 ? e.path.substr(prefix.size()) : e.path;
    json ev = {{"name", name}, {"type", event_type(e.event)}};
    if (!include_entry || e.event == "delete") {
      emit(std::move(ev));
      return drain();
    }
    auto self = shared_from_this();
    link->agent->stat(e.path, [self, ev](expected<agent::file_info> f) mutable {
      if (f) ev["entry"] = entry_info(*f);
      self->emit(std::move(ev));
      self->drain();
    }, true);
  }
};

// Resolves and checks the directory of a watch; then(path, recursive, include_entry).
void with_watch_dir(const envd_call& c, bool streaming,
                    std::function<void(const std::string&, bool, bool)> then) {
  auto msg = request_message(c, streaming);
  if (!msg) return;
  auto p = path_of(c, *msg);
  if (!p) return;
  // allowNetworkMounts only lifts envd's refusal to watch network filesystems; Warren's watch
  // (inotify in the agent) refuses none, so it changes nothing here.
  bool recursive = msg->value("recursive", false), include = msg->value("includeEntry", false);
  auto ex = c.ex;
  c.link->agent->stat(*p, [ex, p = *p, recursive, include, then](expected<agent::file_info> f) {
    if (!f) return reply_connect_error(ex, f.err());
    if (f->type != "dir") return reply_connect_error(ex, "invalid_argument", p + " is not a directory");
    then(p, recursive, include);
  });
}

void watch_dir(const envd_call& c) {
  auto link = c.link;
  auto ex = c.ex;
  with_watch_dir(c, true, [ex, link](const std::string& p, bool recursive, bool include) {
    auto stream = event_stream::open(ex, R"({"keepalive":{}})");
    auto busy = std::make_shared<actors::stream_guard>(link->act);
    auto holder = std::make_shared<std::shared_ptr<agent::watcher>>();
    auto pipe = std::make_shared<event_pipe>();
    pipe->link = link;
    pipe->prefix = p == "/" ? "/" : p + "/";
    pipe->include_entry = include;
    pipe->emit = [stream, holder](json ev) {
      if (!stream->send(json{{"filesystem", std::move(ev)}}) && *holder) (*holder)->cancel();
    };
    agent::watch_callbacks cb;
    cb.on_ready = [stream] { stream->send(json{{"start", json::object()}}); };
    cb.on_event = [pipe](const agent::watch_event& e) { pipe->push(e); };
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

// The polling watchers (E2B's Python SDK): CreateWatcher starts an agent watch whose events
// accumulate (at most max_pending; more are dropped and said so by an error on the next poll)
// until GetWatcherEvents takes them; RemoveWatcher ends it. They end with their sandbox.
constexpr size_t max_pending = 10000;
struct poll_watcher {
  std::string sandbox;
  std::shared_ptr<agent::watcher> handle;
  std::shared_ptr<event_pipe> pipe;
  std::mutex mu;
  std::vector<json> events;
  bool overflowed = false;
  std::optional<error> ended;
};
std::mutex watchers_mu;
std::map<std::string, std::shared_ptr<poll_watcher>> watchers;

std::shared_ptr<poll_watcher> find_watcher(const envd_call& c, const json& msg) {
  auto id = msg.value("watcherId", std::string());
  std::lock_guard lk(watchers_mu);
  auto it = watchers.find(id);
  if (it == watchers.end() || it->second->sandbox != c.link->id) return nullptr;
  return it->second;
}

void create_watcher(const envd_call& c) {
  auto link = c.link;
  auto ex = c.ex;
  with_watch_dir(c, false, [ex, link](const std::string& p, bool recursive, bool include) {
    auto w = std::make_shared<poll_watcher>();
    w->sandbox = link->id;
    w->pipe = std::make_shared<event_pipe>();
    w->pipe->link = link;
    w->pipe->prefix = p == "/" ? "/" : p + "/";
    w->pipe->include_entry = include;
    std::weak_ptr<poll_watcher> weak = w;
    w->pipe->emit = [weak](json ev) {
      auto w = weak.lock();
      if (!w) return;
      std::lock_guard lk(w->mu);
      if (w->events.size() >= max_pending) w->overflowed = true;
      else w->events.push_back(std::move(ev));
    };
    auto id = "w_" + random_hex(12);
    agent::watch_callbacks cb;
    cb.on_ready = [ex, id] { reply_json(ex, {{"watcherId", id}}); };
    cb.on_event = [pipe = w->pipe](const agent::watch_event& e) { pipe->push(e); };
    cb.on_error = [weak, ex, id](const error& e) {
      auto w = weak.lock();
      if (!w) return;
      std::lock_guard lk(w->mu);
      w->ended = e;
    };
    {
      std::lock_guard lk(watchers_mu);
      watchers[id] = w;
    }
    w->handle = link->agent->watch(p, recursive, std::move(cb));
  });
}

void get_watcher_events(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto w = find_watcher(c, *msg);
  if (!w) return reply_connect_error(c.ex, "not_found", "no watcher " + msg->value("watcherId", std::string()));
  std::vector<json> evs;
  std::optional<error> ended;
  bool overflowed;
  {
    std::lock_guard lk(w->mu);
    evs.swap(w->events);
    ended = w->ended;
    overflowed = w->overflowed;
    w->overflowed = false;
  }
  if (overflowed)
    return reply_connect_error(c.ex, "resource_exhausted",
                               "more than " + std::to_string(max_pending) + " events between polls; some were dropped");
  if (evs.empty() && ended) {  // its watch is over (directory gone, sandbox gone): say so once, forget it
    std::lock_guard lk(watchers_mu);
    watchers.erase(msg->value("watcherId", std::string()));
    return reply_connect_error(c.ex, *ended);
  }
  reply_json(c.ex, {{"events", evs}});
}

void remove_watcher(const envd_call& c) {
  auto msg = request_message(c, false);
  if (!msg) return;
  auto w = find_watcher(c, *msg);
  if (!w) return reply_connect_error(c.ex, "not_found", "no watcher " + msg->value("watcherId", std::string()));
  {
    std::lock_guard lk(watchers_mu);
    watchers.erase(msg->value("watcherId", std::string()));
  }
  if (w->handle) w->handle->cancel();
  reply_json(c.ex, json::object());
}

}  // namespace

void serve_filesystem(const envd_call& c, const std::string& method) {
  using fn = void (*)(const envd_call&);
  static const std::map<std::string, fn> methods = {
      {"Stat", stat}, {"ListDir", list_dir}, {"MakeDir", make_dir}, {"Move", move}, {"Remove", remove},
      {"WatchDir", watch_dir}, {"CreateWatcher", create_watcher}, {"GetWatcherEvents", get_watcher_events},
      {"RemoveWatcher", remove_watcher},
  };
  auto it = methods.find(method);
  if (it == methods.end()) {
    return reply_connect_error(c.ex, "unimplemented", "filesystem.Filesystem/" + method + " is not served by Warren");
  }
  auto f = it->second;
  with_body(c, [c, f] { f(c); });
}

}  // namespace warren::net::e2b
