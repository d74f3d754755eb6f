// actors/node_api.cpp — each call spawns a short-lived event-based actor that makes one request
// to the node and hands the reply to the callback: no thread waits for an actor.
#include "actors/node_api.hpp"

#include <caf/all.hpp>

#include "actors/caf_error.hpp"
#include "actors/node.hpp"

namespace warren::actors {

struct node_api::impl {
  caf::actor_system& sys;
  node_actor node;
};

namespace {
constexpr auto request_timeout = std::chrono::seconds(120);

// One request, one reply: `on_ok` receives the reply values, errors go to `reply`.
template <class T, class OnOk, class... Ts>
void ask(caf::actor_system& sys, const node_actor& node, reply_fn<T> reply, OnOk on_ok, Ts... xs) {
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(node, request_timeout, xs...)
        .then(on_ok, [reply](caf::error& e) { reply(from_caf(e)); });
  });
}
}  // namespace

node_api::node_api(caf::actor_system& sys, const void* node_handle)
    : impl_(new impl{sys, *static_cast<const node_actor*>(node_handle)}) {}

node_api::~node_api() = default;

void node_api::info(reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      info_atom::value);
}

void node_api::mint_key(std::string tenant, bool admin, reply_fn<minted_key> reply) const {
  ask(impl_->sys, impl_->node, reply,
      [reply](std::string& id, std::string& key, std::string& at) {
        reply(minted_key{std::move(id), std::move(key), std::move(at)});
      },
      mint_key_atom::value, std::move(tenant), admin);
}

void node_api::revoke_key(std::string key_id, reply_fn<bool> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](bool r) { reply(r); }, revoke_key_atom::value,
      std::move(key_id));
}

void node_api::actor_tree(reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      tree_atom::value);
}

namespace {
// Ends its watcher actor when the last owner lets go.
struct tree_watch {
  caf::actor watcher;
  ~tree_watch() { caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown); }
};
}  // namespace

std::shared_ptr<void> node_api::watch_tree(int every_ms, std::function<void(std::string)> on_tree) const {
  auto node = impl_->node;
  auto every = std::chrono::milliseconds(every_ms);
  auto w = impl_->sys.spawn([node, every, on_tree](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(node);
    self->set_down_handler([self](caf::down_msg& m) { self->quit(m.reason); });
    self->send(self, tick_atom::value);
    return {
        [self, node, every, on_tree](tick_atom) {
          auto again = [self, every] { self->delayed_send(self, every, tick_atom::value); };
          self->request(node, std::chrono::seconds(30), tree_atom::value)
              .then([on_tree, again](std::string& s) { on_tree(std::move(s)), again(); },
                    [again](caf::error&) { again(); });
        },
    };
  });
  auto h = std::make_shared<tree_watch>();
  h->watcher = w;
  return h;
}

void node_api::actor_counts(reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      count_atom::value);
}

void node_api::create_sandbox(std::string encoded, reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      create_atom::value, std::move(encoded));
}

void node_api::list_sandboxes(principal who, reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      list_atom::value, who.tenant, who.admin);
}

void node_api::get_sandbox(std::string id, principal who, reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      get_atom::value, std::move(id), who.tenant, who.admin);
}

void node_api::sandbox_link(std::string id, principal who, reply_fn<sandbox_link_ptr> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](sandbox_link_ptr& l) { reply(std::move(l)); },
      link_atom::value, std::move(id), who.tenant, who.admin);
}

void node_api::destroy_sandbox(std::string id, principal who, reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      destroy_atom::value, std::move(id), who.tenant, who.admin);
}

void node_api::port_link(std::string id, reply_fn<sandbox_link_ptr> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](sandbox_link_ptr& l) { reply(std::move(l)); },
      link_atom::value, std::move(id));
}

namespace {
template <class Atom, class... Ts>
void ask_text(caf::actor_system& sys, const node_actor& node, reply_fn<std::string> reply, Atom a, Ts... xs) {
  ask(sys, node, reply, [reply](std::string& s) { reply(std::move(s)); }, a, std::move(xs)...);
}
}  // namespace

void node_api::reconnect_agent(std::string id, principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, reconnect_atom::value, std::move(id), who.tenant, who.admin);
}

void node_api::hibernate(std::string id, principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, hibernate_atom::value, std::move(id), who.tenant, who.admin);
}
void node_api::resume(std::string id, principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, resume_atom::value, std::move(id), who.tenant, who.admin);
}
void node_api::images(reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, images_atom::value);
}
void node_api::remove_image(std::string ref, reply_fn<bool> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](bool& b) { reply(b); }, image_rm_atom::value, std::move(ref));
}
void node_api::sandbox_usage(std::string id, principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, usage_atom::value, std::move(id), who.tenant, who.admin);
}
void node_api::set_network(std::string id, principal who, std::string body, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, network_atom::value, std::move(id), who.tenant, who.admin, std::move(body));
}
void node_api::refusals(std::string id, principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, refused_atom::value, std::move(id), who.tenant, who.admin);
}
void node_api::set_deadline(std::string id, principal who, std::string end_at, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, deadline_atom::value, std::move(id), who.tenant, who.admin,
           std::move(end_at));
}
void node_api::fork(std::string id, principal who, int count, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, fork_atom::value, std::move(id), who.tenant, who.admin, count);
}
void node_api::checkpoint(std::string id, principal who, std::string name, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, checkpoint_atom::value, std::move(id), who.tenant, who.admin, std::move(name));
}
void node_api::list_snapshots(principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, snapshots_atom::value, who.tenant, who.admin);
}
void node_api::get_snapshot(std::string sid, principal who, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, snap_get_atom::value, std::move(sid), who.tenant, who.admin);
}
void node_api::delete_snapshot(std::string sid, principal who, reply_fn<bool> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](bool b) { reply(b); }, erase_atom::value, std::move(sid), who.tenant,
      who.admin);
}
void node_api::restore(std::string sid, principal who, std::string overrides, reply_fn<std::string> reply) const {
  ask_text(impl_->sys, impl_->node, reply, restore_atom::value, std::move(sid), who.tenant, who.admin,
           std::move(overrides));
}

void node_api::expose(std::string id, principal who, uint16_t port, bool auth, reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      expose_atom::value, std::move(id), who.tenant, who.admin, port, auth);
}

void node_api::exposures(std::string id, principal who, reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      exposures_atom::value, std::move(id), who.tenant, who.admin);
}

void node_api::unexpose(std::string id, principal who, uint16_t port, reply_fn<bool> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](bool r) { reply(r); }, unexpose_atom::value, std::move(id),
      who.tenant, who.admin, port);
}

void node_api::port_stats(reply_fn<std::string> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](std::string& s) { reply(std::move(s)); },
      port_stats_atom::value);
}

void node_api::open_shell(std::string id, principal who, reply_fn<shell_lease_ptr> reply) const {
  ask(impl_->sys, impl_->node, reply, [reply](shell_lease_ptr& l) { reply(std::move(l)); },
      shell_atom::value, std::move(id), who.tenant, who.admin);
}

}  // namespace warren::actors
