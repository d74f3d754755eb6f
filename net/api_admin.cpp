// net/api_admin.cpp — the admin actor console's API (API.md "Admin"): the supervision tree, one
// actor of it, actions on actors (each answered with the new state), and a WebSocket of changes.
// Every route here is admin-only (api.cpp registers them so: a tenant key is 403).
#include <map>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "net/api.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

constexpr int events_poll_ms = 250;  // how often the events socket compares the tree

// Calls `fn(entry, parent_id)` for every entry of a tree (actor_tree's JSON), depth first.
template <class Fn>
void walk(const json& entry, const std::string& parent, Fn& fn) {
  fn(entry, parent);
  if (auto it = entry.find("children"); it != entry.end() && it->is_array())
    for (auto& c : *it) walk(c, entry.value("id", std::string()), fn);
}

template <class Fn>
void walk_tree(const json& tree, Fn fn) {
  if (auto it = tree.find("nodes"); it != tree.end() && it->is_array())
    for (auto& n : *it) walk(n, "", fn);
}

// An entry without its children (what an event carries).
json flat(const json& e) {
  json out = e;
  out.erase("children");
  return out;
}

// The entry with this id anywhere in the tree, or null.
json find_entry(const json& tree, const std::string& id) {
  json found;
  walk_tree(tree, [&](const json& e, const std::string&) {
    if (found.is_null() && e.value("id", std::string()) == id) found = e;
  });
  return found;
}

// One events socket: the last tree it sent, and the frames that turn it into the next one.
struct tree_events {
  struct seen {
    std::string kind, state, parent;
    int restarts = 0;
  };
  bool first = true;
  std::map<std::string, seen> last;

  // The frames for a new tree: the whole tree the first time, then one per change.
  std::vector<std::string> frames(const std::string& tree_text) {
    std::vector<std::string> out;
    auto tree = json::parse(tree_text, nullptr, false);
    if (tree.is_discarded()) return out;
    std::map<std::string, seen> now;
    std::vector<std::pair<json, std::string>> spawned;  // in tree order: parents first
    walk_tree(tree, [&](const json& e, const std::string& parent) {
      auto id = e.value("id", std::string());
      seen s{e.value("kind", std::string()), e.value("state", std::string()), parent, e.value("restarts", 0)};
      auto old = last.find(id);
      if (!first) {
        if (old == last.end()) {
          spawned.emplace_back(flat(e), parent);
        } else {
          if (old->second.state != s.state)
            out.push_back(json{{"type", "state"}, {"id", id}, {"kind", s.kind}, {"parent", parent},
                               {"from", old->second.state}, {"to", s.state}, {"actor", flat(e)}}
                              .dump());
          if (s.restarts > old->second.restarts)
            out.push_back(json{{"type", "restarted"}, {"id", id}, {"kind", s.kind}, {"parent", parent},
                               {"restarts", s.restarts}, {"actor", flat(e)}}
                              .dump());
        }
      }
      now[id] = std::move(s);
    });
    if (first) {
      out.push_back(json{{"type", "snapshot"}, {"tree", tree}}.dump());
    } else {
      // Children go down before their parents (a sandbox after its shells and ports).
      std::vector<std::string> gone;
      for (int parents = 0; parents < 2; ++parents)
        for (auto& [id, s] : last)
          if (!now.count(id) && (s.kind == "sandbox" || s.kind == "node") == (parents == 1)) gone.push_back(id);
      for (auto& id : gone) {
        auto& s = last[id];
        out.push_back(json{{"type", "down"}, {"id", id}, {"kind", s.kind}, {"parent", s.parent},
                           {"last_state", s.state}}
                          .dump());
      }
      for (auto& [e, parent] : spawned)
        out.push_back(json{{"type", "spawned"}, {"id", e.value("id", std::string())},
                           {"kind", e.value("kind", std::string())}, {"parent", parent}, {"actor", e}}
                          .dump());
    }
    first = false;
    last = std::move(now);
    return out;
  }
};

json session_state(const actors::stream_session& s, const char* state) {
  return {{"id", s.id}, {"kind", s.kind}, {"sandbox", s.sandbox_id}, {"state", state}};
}

}  // namespace

void api::actor_tree(const context& c) {
  auto ex = c.ex;
  node_->actor_tree([ex](expected<std::string> r) {
    ex->respond(r ? json_response(200, *r) : error_response(r.err()));
  });
}

void api::actor_get(const context& c) {
  auto id = c.route.params.at("aid");
  auto ex = c.ex;
  node_->actor_tree([ex, id](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    auto e = find_entry(json::parse(*r, nullptr, false), id);
    if (e.is_null()) return ex->respond(error_response(make_error(errc::not_found, "no actor with id " + id)));
    ex->respond(json_response(200, e.dump()));
  });
}

void api::actor_action(const context& c) {
  auto id = c.route.params.at("aid");
  auto action = c.route.params.at("action");
  auto ex = c.ex;
  actors::principal admin{c.who.tenant, true};
  auto bad_action = [&](const char* kind, const char* allowed) {
    ex->respond(error_response(make_error(
        errc::bad_request, "cannot " + action + " a " + kind + " (allowed: " + allowed + ")")));
  };
  // Shell and terminal sessions: kill closes their WebSocket, which ends their process.
  if (id.rfind("sh_", 0) == 0 || id.rfind("pty_", 0) == 0) {
    if (action != "kill") return bad_action(id[0] == 's' ? "shell" : "terminal", "kill");
    auto s = actors::find_stream_session(id);
    if (!s) return ex->respond(error_response(make_error(errc::not_found, "no shell or terminal with id " + id)));
    if (!s->kill())
      return ex->respond(error_response(make_error(errc::conflict, s->kind + " " + id + " is already closing")));
    return ex->respond(json_response(200, session_state(*s, "killed").dump()));
  }
  if (is_snapshot_id(id)) {
    if (action != "destroy") return bad_action("snapshot", "destroy");
    return node_->delete_snapshot(id, admin, [ex, id](expected<bool> r) {
      if (!r) return ex->respond(error_response(r.err()));
      ex->respond(json_response(200, json{{"id", id}, {"kind", "snapshot"}, {"state", "destroyed"}}.dump()));
    });
  }
  if (!is_sandbox_id(id))
    return ex->respond(error_response(make_error(errc::not_found, "no actor with id " + id)));
  if (action == "hibernate") return node_->hibernate(id, admin, reply_sandbox(ex, 200));
  if (action == "resume") return node_->resume(id, admin, reply_sandbox(ex, 200));
  if (action == "reconnect") return node_->reconnect_agent(id, admin, reply_sandbox(ex, 200));
  if (action == "destroy")
    return node_->destroy_sandbox(id, admin, [ex, id](expected<std::string> r) {
      if (!r) return ex->respond(error_response(r.err()));
      json out = {{"id", id}, {"kind", "sandbox"}, {"state", "destroyed"},
                  {"stats", json::parse(*r, nullptr, false)}};
      ex->respond(json_response(200, out.dump()));
    });
  bad_action("sandbox", "destroy, hibernate, resume, reconnect");
}

void api::actor_events(const context& c) {
  if (!c.ex->is_websocket_upgrade())
    return c.ex->respond(error_response(make_error(errc::bad_request, "events needs a WebSocket upgrade")));
  auto node = node_;
  c.ex->accept_websocket([node](std::shared_ptr<websocket> ws) {
    // The watcher's calls come one at a time; the socket's close may race them: hence the lock.
    struct conn {
      std::recursive_mutex mu;  // a send may complete at once, on this thread
      std::shared_ptr<void> watch;
      tree_events events;
      bool sending = false;  // a frame batch not yet sent: skip ticks rather than queue them
    };
    auto cn = std::make_shared<conn>();
    std::weak_ptr<conn> weak = cn;
    auto watch = node->watch_tree(events_poll_ms, [weak, ws](std::string tree) {
      auto cn = weak.lock();
      if (!cn) return;
      std::lock_guard lk(cn->mu);
      if (cn->sending) return;
      auto frames = cn->events.frames(tree);
      if (frames.empty()) return;
      cn->sending = true;
      for (size_t i = 0; i < frames.size(); ++i) {
        bool last = i + 1 == frames.size();
        ws->send_text(std::move(frames[i]), last ? std::function<void(bool)>([weak](bool) {
                                               if (auto cn = weak.lock()) {
                                                 std::lock_guard lk(cn->mu);
                                                 cn->sending = false;
                                               }
                                             })
                                                 : std::function<void(bool)>());
      }
    });
    {
      std::lock_guard lk(cn->mu);
      cn->watch = std::move(watch);
    }
    websocket_callbacks cb;
    cb.on_text = [](std::string) {};  // nothing to say to it
    cb.on_binary = [](std::string) {};
    cb.on_close = [cn]() mutable {
      std::shared_ptr<void> w;
      {
        std::lock_guard lk(cn->mu);
        w = std::move(cn->watch);
      }
      w.reset();  // stops the watcher
      cn.reset();
    };
    return cb;
  });
}

}  // namespace warren::net
