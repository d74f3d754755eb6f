// actors/sandbox.hpp — the sandbox actor: one per sandbox, supervised by its node. Owns the
// sandbox's state machine (creating → running → destroying → gone; lost), its agent
// connection, the idle timeout, and every write of its record to RocksDB.
#pragma once

#include <memory>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/egress_hooks.hpp"
#include "actors/port_forward.hpp"
#include "actors/sandbox_link.hpp"
#include "actors/shell.hpp"
#include "storage/meta_store.hpp"
#include "storage/records.hpp"
#include "vmm/driver.hpp"

namespace boost::asio { class io_context; }

namespace warren::actors {

using get_atom = caf::atom_constant<caf::atom("get")>;
using ready_atom = caf::atom_constant<caf::atom("ready")>;
using link_atom = caf::atom_constant<caf::atom("link")>;
using destroy_atom = caf::atom_constant<caf::atom("destroy")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using hibernate_atom = caf::atom_constant<caf::atom("hibernate")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using save_atom = caf::atom_constant<caf::atom("save")>;
using reconnect_atom = caf::atom_constant<caf::atom("reconnect")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using network_atom = caf::atom_constant<caf::atom("network")>;
using refused_atom = caf::atom_constant<caf::atom("refused")>;

using sandbox_actor = caf::typed_actor<
    // The record as stored (storage::encode).
    caf::replies_to<get_atom>::with<std::string>,
    // The record once the sandbox is running (an error if it never gets there).
    caf::replies_to<ready_atom>::with<std::string>,
    // The agent connection for byte streams (waits while creating; conflict otherwise).
    caf::replies_to<link_atom>::with<sandbox_link_ptr>,
    // The same for proxied traffic (wake = true): a hibernated sandbox with auto_resume is
    // resumed first instead of answering conflict.
    caf::replies_to<link_atom, bool>::with<sandbox_link_ptr>,
    // Hibernate / resume (the driver's freeze/thaw); the record afterwards.
    caf::replies_to<hibernate_atom>::with<std::string>,
    caf::replies_to<resume_atom>::with<std::string>,
    // Drops the agent connection (every stream on it ends) and connects again; the record.
    caf::replies_to<reconnect_atom>::with<std::string>,
    // Sets the lifetime's end (RFC 3339, "" = none): at that time the sandbox is destroyed, or
    // hibernated when on_idle is "hibernate" (E2B's timeout and autoPause). The record after.
    caf::replies_to<deadline_atom, std::string>::with<std::string>,
    // A sample of its measured usage, JSON: {cpu_ns, mem_bytes, mem_peak_bytes, disk_used_bytes,
    // vcpus, mem_mib, disk_mib} (cgroup accounting and scratch usage, read now).
    caf::replies_to<usage_atom>::with<std::string>,
    // Saves the sandbox's state into a directory (driver::save): (meta, size_bytes, the record
    // as it was saved).
    caf::replies_to<save_atom, std::string>::with<std::string, uint64_t, std::string>,
    // PATCH /network: {"network_profile", "allow", "deny"} (validated) → the record after; the
    // firewall has the new rules and the egress services the new policy before the reply.
    caf::replies_to<network_atom, std::string>::with<std::string>,
    // What was refused to it lately: {"count": N, "recent": [{dest, at, by}]} (firewall, proxy, DNS).
    caf::replies_to<refused_atom>::with<std::string>,
    // DestroyStats as JSON text; the actor quits afterwards.
    caf::replies_to<destroy_atom>::with<std::string>,
    // Exposures (actors/port_forward.hpp): (port, auth) → {port, auth, token, created_at} JSON;
    // the list with counters as a JSON array; port → removed (false: it had none).
    caf::replies_to<expose_atom, uint16_t, bool>::with<std::string>,
    caf::replies_to<exposures_atom>::with<std::string>,
    caf::replies_to<unexpose_atom, uint16_t>::with<bool>,
    // A new shell session (a shell actor under this one); its lease once bash is ready.
    caf::replies_to<shell_atom>::with<shell_lease_ptr>,
    // Idle-timeout check (sent to itself).
    caf::reacts_to<tick_atom>,
    // Its entry in the admin tree (actors/admin_tree.hpp), with its children.
    caf::replies_to<tree_atom>::with<std::string>>;

// What every sandbox actor of a node shares.
struct sandbox_env {
  std::shared_ptr<storage::meta_store> store;
  std::shared_ptr<vmm::driver> driver;
  boost::asio::io_context* agent_io = nullptr;
  std::string image_rootfs;
  std::shared_ptr<egress_hooks> egress;  // null: no egress services (profile rules only)
  // start_mode::restore: the saved state to build from (driver::restore).
  std::string restore_dir, restore_meta;
};

enum class start_mode { create, adopt, restore };

// Spawned by the node (monitored); `rec` is already stored with state "creating" or "running".
sandbox_actor spawn_sandbox(caf::actor_system& sys, storage::sandbox_record rec, sandbox_env env,
                            start_mode mode);

// The DestroyStats JSON of API.md.
std::string destroy_stats_json(const vmm::usage& u, uint64_t uptime_ms);

}  // namespace warren::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::sandbox_link_ptr)
