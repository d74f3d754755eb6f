// actors/node.hpp — the node actor: one per daemon, supervisor of every sandbox, shell,
// port-forward and snapshot actor on this machine, owner of the node's writes to RocksDB.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/atom.hpp>

#include "actors/admin_tree.hpp"
#include "actors/egress_hooks.hpp"
#include "actors/sandbox.hpp"
#include "actors/snapshot.hpp"
#include "storage/meta_store.hpp"
#include "vmm/driver.hpp"

namespace warren::auth { class key_registry; }
namespace warren::storage { class image_store; }

namespace warren::actors {

using info_atom = caf::atom_constant<caf::atom("info")>;
using mint_key_atom = caf::atom_constant<caf::atom("mintkey")>;
using revoke_key_atom = caf::atom_constant<caf::atom("revokekey")>;
using count_atom = caf::atom_constant<caf::atom("count")>;
using create_atom = caf::atom_constant<caf::atom("create")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using fork_atom = caf::atom_constant<caf::atom("fork")>;
using checkpoint_atom = caf::atom_constant<caf::atom("checkpoint")>;
using snapshots_atom = caf::atom_constant<caf::atom("snapshots")>;
using images_atom = caf::atom_constant<caf::atom("images")>;
using image_rm_atom = caf::atom_constant<caf::atom("image_rm")>;
using restore_atom = caf::atom_constant<caf::atom("restore")>;

// Everything a node needs from the daemon that started it. Not a message: stays local.
struct node_settings {
  std::string node_id = "n1";
  std::string address;  // the front door's listen address
  std::string data_dir;
  std::shared_ptr<storage::meta_store> store;
  auth::key_registry* keys = nullptr;
  std::map<std::string, std::shared_ptr<vmm::driver>> drivers;  // "jail" → driver
  std::shared_ptr<storage::image_store> images;
  boost::asio::io_context* agent_io = nullptr;  // where agent connections live
  std::shared_ptr<egress_hooks> egress;  // the node's egress services (null: none)
};

// Who asks: every sandbox call carries it; another tenant's sandbox answers not_found.
// (tenant, admin) as two plain message elements.

using node_actor = caf::typed_actor<
    // /v1/info as JSON text.
    caf::replies_to<info_atom>::with<std::string>,
    // (tenant, admin) → (key_id, key, created_at). The key is shown only in this reply.
    caf::replies_to<mint_key_atom, std::string, bool>::with<std::string, std::string, std::string>,
    // key_id → revoked (false: unknown key id).
    caf::replies_to<revoke_key_atom, std::string>::with<bool>,
    // The supervision tree as JSON text (/v1/admin/actors).
    caf::replies_to<tree_atom>::with<std::string>,
    // Live actors by kind as JSON text ({"node": 1, "sandbox": 3, ...}) for /metrics.
    caf::replies_to<count_atom>::with<std::string>,
    // (encoded sandbox_record with the request's fields and tenant) → record once running.
    caf::replies_to<create_atom, std::string>::with<std::string>,
    // (tenant, admin) → JSON array of encoded records.
    caf::replies_to<list_atom, std::string, bool>::with<std::string>,
    // (id, tenant, admin) → encoded record.
    caf::replies_to<get_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<link_atom, std::string, std::string, bool>::with<sandbox_link_ptr>,
    // The port proxy's link (id): a hibernated sandbox with auto_resume is resumed first.
    caf::replies_to<link_atom, std::string>::with<sandbox_link_ptr>,
    // (id, tenant, admin) → the record afterwards.
    caf::replies_to<hibernate_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<resume_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<reconnect_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<deadline_atom, std::string, std::string, bool, std::string>::with<std::string>,
    caf::replies_to<usage_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<network_atom, std::string, std::string, bool, std::string>::with<std::string>,
    caf::replies_to<refused_atom, std::string, std::string, bool>::with<std::string>,
    // (id, tenant, admin, count) → JSON array of the children's encoded records, once running.
    caf::replies_to<fork_atom, std::string, std::string, bool, int>::with<std::string>,
    // (id, tenant, admin, name) → the encoded snapshot record.
    caf::replies_to<checkpoint_atom, std::string, std::string, bool, std::string>::with<std::string>,
    // Snapshots: (tenant, admin) → JSON array of encoded records; (sid, tenant, admin) → record;
    // delete; restore with JSON overrides ({"sandbox_timeout", "metadata"}) → the new sandbox.
    caf::replies_to<snapshots_atom, std::string, bool>::with<std::string>,
    // The node's images: JSON array of {name, digest, size_bytes, created_at}.
    caf::replies_to<images_atom>::with<std::string>,
    // Removes an image no sandbox (live or hibernated) and no snapshot uses: conflict if one does.
    caf::replies_to<image_rm_atom, std::string>::with<bool>,
    caf::replies_to<snap_get_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<erase_atom, std::string, std::string, bool>::with<bool>,
    caf::replies_to<restore_atom, std::string, std::string, bool, std::string>::with<std::string>,
    caf::replies_to<destroy_atom, std::string, std::string, bool>::with<std::string>,
    // (id, tenant, admin) → a new shell session's lease.
    caf::replies_to<shell_atom, std::string, std::string, bool>::with<shell_lease_ptr>,
    // Exposures, (id, tenant, admin, ...) → as the sandbox actor answers (actors/sandbox.hpp).
    caf::replies_to<expose_atom, std::string, std::string, bool, uint16_t, bool>::with<std::string>,
    caf::replies_to<exposures_atom, std::string, std::string, bool>::with<std::string>,
    caf::replies_to<unexpose_atom, std::string, std::string, bool, uint16_t>::with<bool>,
    // Every exposure of this node with its counters, as a JSON array (for /metrics).
    caf::replies_to<port_stats_atom>::with<std::string>>;

node_actor spawn_node(caf::actor_system& sys, node_settings settings);

}  // namespace warren::actors
