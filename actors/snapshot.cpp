// actors/snapshot.cpp — see snapshot.hpp. File removal blocks, so it runs on a worker.
#include "actors/snapshot.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "actors/blocking.hpp"
#include "actors/caf_error.hpp"
#include "actors/live_actors.hpp"
#include "actors/sandbox_link.hpp"
#include "core/ids.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<warren::ok_t>)

namespace warren::actors {
namespace {

struct snapshot_state {
  live_counter<actor_kind::snapshot> counted;
  storage::snapshot_record rec;
  std::shared_ptr<storage::meta_store> store;
  int readers = 0;
  uint64_t restores = 0;  // acquires since the actor started
  bool erasing = false;
  std::string started_at = now_rfc3339();
  int64_t started_ns = activity::now_ns();
  static inline const char* name = "snapshot";
};

using self_ptr = snapshot_actor::stateful_pointer<snapshot_state>;

}  // namespace

void remove_snapshot_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.find("/snapshots/") == std::string::npos) return;  // never anything else
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("cannot remove snapshot dir {}: {}", dir, ec.message());
}

snapshot_actor spawn_snapshot(caf::actor_system& sys, storage::snapshot_record rec,
                              std::shared_ptr<storage::meta_store> store) {
  auto fn = [](self_ptr self, storage::snapshot_record rec,
               std::shared_ptr<storage::meta_store> store) -> snapshot_actor::behavior_type {
    self->state.rec = std::move(rec);
    self->state.store = std::move(store);
    auto gone = [self] {
      return to_caf(make_error(errc::not_found, "no snapshot with id " + self->state.rec.id));
    };
    return {
        [self](snap_get_atom) -> std::string { return storage::encode(self->state.rec); },
        [self](tree_atom) -> std::string {
          auto& st = self->state;
          auto j = tree_entry("snapshot", st.rec.id, st.erasing ? "erasing" : st.readers ? "restoring" : "ready",
                              st.started_at, st.started_ns, static_cast<int64_t>(self->mailbox().size()));
          j["sandbox"] = st.rec.sandbox_id;
          j["name"] = st.rec.name;
          j["tenant"] = st.rec.tenant;
          j["counters"] = {{"size_bytes", st.rec.size_bytes}, {"restores", st.restores}, {"readers", st.readers}};
          return j.dump();
        },
        [self, gone](acquire_atom) -> caf::result<std::string> {
          if (self->state.erasing) return gone();
          ++self->state.readers;
          ++self->state.restores;
          return storage::encode(self->state.rec);
        },
        [self](release_atom) {
          if (self->state.readers > 0) --self->state.readers;
        },
        [self, gone](erase_atom) -> caf::result<bool> {
          auto& st = self->state;
          if (st.erasing) return gone();
          if (st.readers > 0)
            return to_caf(make_error(errc::conflict, "snapshot " + st.rec.id + " is being restored; delete it afterwards"));
          st.erasing = true;
          // The record goes first: a crash in between leaves an orphan directory, which the node
          // removes at start, never a record whose files are half gone.
          if (auto s = st.store->erase(storage::family::snapshots, st.rec.id); !s) {
            st.erasing = false;
            return to_caf(s.err());
          }
          auto rp = self->make_response_promise<bool>();
          auto dir = st.rec.dir;
          run_blocking<ok_t>(self, [dir]() -> expected<ok_t> { remove_snapshot_dir(dir); return ok_t{}; },
                             [self, rp](expected<ok_t>) mutable {
                               spdlog::info("snapshot {}: deleted", self->state.rec.id);
                               rp.deliver(true);
                               self->quit();
                             });
          return rp;
        },
    };
  };
  return sys.spawn(fn, std::move(rec), std::move(store));
}

}  // namespace warren::actors
