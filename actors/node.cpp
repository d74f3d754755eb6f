// actors/node.cpp — the node actor's state and behaviour. Every write it acknowledges is made
// durable in RocksDB first (meta_store syncs its WAL).
#include "actors/node.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/caf_error.hpp"
#include "core/ids.hpp"
#include "net/auth/api_keys.hpp"
#include "net/auth/key_registry.hpp"

namespace warren::actors {
namespace {

using json = nlohmann::json;

struct node_state {
  node_settings cfg;
  std::string started_at;
};

json driver_capabilities(const node_settings& cfg) {
  json out = json::object();
  for (auto& [name, drv] : cfg.drivers) out[name] = drv->capabilities();
  for (const char* known : {"jail", "microvm"})
    if (!out.contains(known))
      out[known] = {{"available", false},
                    {"reason", std::string("the ") + known + " driver is not part of this build"}};
  return out;
}

}  // namespace

node_actor spawn_node(caf::actor_system& sys, node_settings settings) {
  auto fn = [](node_actor::stateful_pointer<node_state> self,
               node_settings cfg) -> node_actor::behavior_type {
    self->state.cfg = std::move(cfg);
    self->state.started_at = now_rfc3339();
    return {
        [self](info_atom) -> std::string {
          auto& c = self->state.cfg;
          json info = {{"version", WARREN_VERSION},
                       {"node", c.node_id},
                       {"nodes", json::array({{{"id", c.node_id},
                                               {"address", c.address},
                                               {"state", "up"},
                                               {"started_at", self->state.started_at},
                                               {"sandboxes", 0}}})},
                       {"drivers", driver_capabilities(c)},
                       {"images", c.list_images ? c.list_images() : std::vector<std::string>{}}};
          return info.dump();
        },
        [self](mint_key_atom, const std::string& tenant,
               bool admin) -> caf::result<std::string, std::string, std::string> {
          auto& c = self->state.cfg;
          if (!auth::is_token_chars(tenant))
            return to_caf(make_error(errc::bad_request, "tenant must match [a-z0-9]+ (at most 64 chars)"));
          storage::key_record rec{random_hex(8), tenant, admin, now_rfc3339(), false, ""};
          auto key = auth::mint_key(c.keys->secret(), c.keys->region(), rec.key_id);
          if (!key) return to_caf(make_error(errc::internal, "could not mint a key"));
          if (auto st = c.store->put_record(storage::family::keys, rec); !st) return to_caf(st.err());
          c.keys->upsert(rec);
          return caf::make_result(rec.key_id, *key, rec.created_at);
        },
        [self](revoke_key_atom, const std::string& key_id) -> caf::result<bool> {
          auto& c = self->state.cfg;
          auto rec = c.keys->find(key_id);
          if (!rec) return false;
          rec->revoked = true;
          rec->revoked_at = now_rfc3339();
          if (auto st = c.store->put_record(storage::family::keys, *rec); !st) return to_caf(st.err());
          c.keys->upsert(*rec);
          return true;
        },
        [self](tree_atom) -> std::string {
          auto& c = self->state.cfg;
          json node = {{"kind", "node"}, {"id", c.node_id}, {"state", "up"},
                       {"children", json::array()}};
          return json{{"nodes", json::array({node})}}.dump();
        },
        [](count_atom) -> std::string { return json{{"node", 1}}.dump(); },
    };
  };
  return sys.spawn(fn, std::move(settings));
}

}  // namespace warren::actors
