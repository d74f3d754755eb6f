// net/api_admin.cpp — the admin actor console's API (API.md "Admin"): the supervision tree, one
// actor of it, actions on actors (each answered with the new state), and a WebSocket of changes.
// Every route here is admin-only (api.cpp registers them so: a tenant key is 403).
#include <map>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "net/api.hpp"
#include "net/tree_events.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

constexpr int events_poll_ms = 250;  // how often the events socket compares the tree

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
    auto e = find_tree_entry(json::parse(*r, nullptr, false), id);
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

void api::node_action(const context& c) {
  auto node = c.route.params.at("node");
  auto action = c.route.params.at("action");
  auto ex = c.ex;
  node_->info([ex, node, action](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    auto info = json::parse(*r, nullptr, false);
    if (!info.is_object() || info.value("node", std::string()) != node)
      return ex->respond(error_response(make_error(errc::not_found, "no node " + node + " (this node runs alone)")));
    if (action != "drain" && action != "undrain")
      return ex->respond(error_response(make_error(
          errc::bad_request, "cannot " + action + " a node (allowed: drain, undrain)")));
    ex->respond(error_response(make_error(
        errc::unavailable, action + " is not built: it moves sandboxes between nodes and needs the cluster, "
                                    "which is not built (node " + node + " runs alone)")));
  });
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
