// actors/snapshot.hpp — the snapshot actor: one per named snapshot (checkpoint), supervised by
// its node. It owns the snapshot's record and files and counts the restores reading them: a
// snapshot is never deleted under a restore. It never touches a sandbox.
#pragma once

#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/admin_tree.hpp"
#include "storage/meta_store.hpp"
#include "storage/records.hpp"

namespace warren::actors {

using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using erase_atom = caf::atom_constant<caf::atom("erase")>;
using snap_get_atom = caf::atom_constant<caf::atom("snapget")>;

using snapshot_actor = caf::typed_actor<
    // The record as stored (storage::encode).
    caf::replies_to<snap_get_atom>::with<std::string>,
    // A restore starts reading the files (the record as stored) / is done with them.
    caf::replies_to<acquire_atom>::with<std::string>,
    caf::reacts_to<release_atom>,
    // Deletes files and record, then quits; conflict while a restore reads it.
    caf::replies_to<erase_atom>::with<bool>,
    // Its entry in the admin tree (actors/admin_tree.hpp).
    caf::replies_to<tree_atom>::with<std::string>>;

// `rec` is already stored.
snapshot_actor spawn_snapshot(caf::actor_system& sys, storage::snapshot_record rec,
                              std::shared_ptr<storage::meta_store> store);

// Removes a snapshot directory (blocking). Only ever below `<data_dir>/snapshots/`.
void remove_snapshot_dir(const std::string& dir);

}  // namespace warren::actors
