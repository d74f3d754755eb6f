// actors/port_forward.hpp — the port-forward actor: one per exposed port, a child of its
// sandbox's actor (it watches that actor and ends with it). It holds the exposure (auth
// settings, counters) that the port proxy reads from the sandbox's port_table; it never sees
// the proxied bytes themselves.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/admin_tree.hpp"
#include "actors/port_table.hpp"
#include "core/error.hpp"
#include "storage/records.hpp"

namespace warren::actors {

using expose_atom = caf::atom_constant<caf::atom("expose")>;
using exposures_atom = caf::atom_constant<caf::atom("exposures")>;
using unexpose_atom = caf::atom_constant<caf::atom("unexpose")>;
using port_stats_atom = caf::atom_constant<caf::atom("portstats")>;
using pf_stats_atom = caf::atom_constant<caf::atom("pfstats")>;

using port_forward_actor = caf::typed_actor<
    // The exposure with its counters as a JSON object text:
    // {"sandbox", "port", "auth", "created_at", "requests", "bytes_in", "bytes_out", "open_connections"}.
    caf::replies_to<pf_stats_atom>::with<std::string>,
    // Its entry in the admin tree (actors/admin_tree.hpp).
    caf::replies_to<tree_atom>::with<std::string>>;

// Live port-forward actors in this process (the `port_forward` gauge of /metrics).
int64_t port_forward_count();

// What POST /expose answers besides the URLs (which net/ builds).
struct exposed {
  uint16_t port = 0;
  bool auth = false;
  std::string token;  // shown once; empty when auth is false
  std::string created_at;
};

// The exposures of one sandbox: its port-forward actors and the table the proxy reads. Lives in
// the sandbox actor's state; every method runs in that actor's context. Changes are persisted
// through `persist` (the sandbox record) before they take effect.
class sandbox_ports {
 public:
  using persist_fn = std::function<status()>;

  std::shared_ptr<port_table> table = std::make_shared<port_table>();

  // At spawn (create or re-adoption): one port-forward actor per stored exposure.
  void restore(caf::local_actor* self, const storage::sandbox_record& rec);
  // Adds or replaces the exposure of `port` (a new token every time).
  expected<exposed> expose(caf::local_actor* self, storage::sandbox_record& rec, uint16_t port, bool auth,
                           const persist_fn& persist);
  // false: the port had no exposure.
  expected<bool> remove(storage::sandbox_record& rec, uint16_t port, const persist_fn& persist);
  // The sandbox is going away: revoke everything, stop the actors.
  void close();

  std::vector<port_forward_actor> actors() const;

 private:
  void start(caf::local_actor* self, const std::string& sandbox_id, const storage::exposure_record& r);
  std::map<uint16_t, port_forward_actor> actors_;
};

// Asks each actor in `hs` the same request and answers the JSON array of their replies (a reply
// that is itself an array is flattened). Unanswered or failed requests are left out.
template <class Self, class Handles, class... Ts>
caf::typed_response_promise<std::string> gather_json(Self* self, const Handles& hs, Ts... xs) {
  auto rp = self->template make_response_promise<std::string>();
  gather_then(self, hs, [rp](nlohmann::json out) mutable { rp.deliver(out.dump()); }, xs...);
  return rp;
}

}  // namespace warren::actors
