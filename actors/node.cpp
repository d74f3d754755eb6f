// actors/node.cpp — the node actor's state and behaviour. Every write it acknowledges is made
// durable in RocksDB first (meta_store syncs its WAL). It monitors each sandbox actor: one
// that crashes is respawned from its record and re-adopts the live sandbox.
#include "actors/node.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>
#include <unistd.h>

#include "actors/blocking.hpp"
#include "actors/caf_error.hpp"
#include "actors/live_actors.hpp"
#include "actors/sandbox_link.hpp"
#include "core/ids.hpp"
#include "net/auth/api_keys.hpp"
#include "net/auth/key_registry.hpp"
#include "storage/image_ref.hpp"
#include "storage/image_store.hpp"
#ifdef WARREN_HAS_MICROVM_PROBE
#include "vmm/microvm/host_probe.hpp"
#endif

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<warren::ok_t>)

namespace warren::actors {
namespace {

using json = nlohmann::json;

struct child {
  sandbox_actor hdl;
  std::string tenant;
};

struct snap_child {
  snapshot_actor hdl;
  std::string tenant;
};

struct node_state {
  node_settings cfg;
  std::map<std::string, snap_child> snapshots;  // snapshot actors by id
  std::string started_at;
  std::map<std::string, child> sandboxes;     // live sandbox actors by id
  std::map<caf::actor_addr, std::string> ids;  // for down messages
  std::map<std::string, int> restarts;  // sandbox actors respawned after a crash, by id
  int64_t started_ns = activity::now_ns();
  static inline const char* name = "node";
};

using self_ptr = node_actor::stateful_pointer<node_state>;

json driver_capabilities(const node_settings& cfg) {
  json out = json::object();
  for (auto& [name, drv] : cfg.drivers) out[name] = drv->capabilities();
#ifdef WARREN_HAS_MICROVM_PROBE
  // Not a driver yet: what the host offers it (QEMU, firmware, the accelerator it would use).
  if (!out.contains("microvm")) out["microvm"] = vmm::microvm::probe_host();
#endif
  for (const char* known : {"jail", "microvm"})
    if (!out.contains(known))
      out[known] = {{"available", false},
                    {"reason", std::string("the ") + known + " driver is not part of this build"}};
  return out;
}

error no_such_sandbox(const std::string& id) {
  return make_error(errc::not_found, "no sandbox with id " + id);
}

uint64_t host_mem_mib() {
  return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) >> 20;
}

// A driver that can run this isolation here, or why not.
expected<std::shared_ptr<vmm::driver>> driver_for(const node_settings& cfg, const std::string& isolation) {
  auto it = cfg.drivers.find(isolation);
  if (it == cfg.drivers.end())
    return make_error(errc::unavailable, "the " + isolation + " driver is not available on this node");
  auto caps = it->second->capabilities();
  if (!caps.value("available", false))
    return make_error(errc::unavailable, "the " + isolation + " driver is not available on this node: " +
                                             caps.value("reason", std::string("unknown reason")));
  return it->second;
}

// Builds the env a sandbox actor needs, or why the record cannot be served here.
expected<sandbox_env> env_for(const node_settings& cfg, const storage::sandbox_record& rec) {
  auto drv = driver_for(cfg, rec.isolation);
  if (!drv) return drv.err();
  if (!cfg.images) return make_error(errc::not_found, "unknown image " + rec.image);
  auto rootfs = cfg.images->rootfs_path(rec.image);
  if (!rootfs) return make_error(errc::not_found, "unknown image \"" + rec.image + "\"");
  return sandbox_env{cfg.store, *drv, cfg.agent_io, *rootfs, cfg.egress};
}

std::string snapshots_dir(self_ptr self) { return self->state.cfg.data_dir + "/snapshots"; }

void start_child(self_ptr self, const storage::sandbox_record& rec, sandbox_env env, start_mode mode) {
  auto hdl = spawn_sandbox(self->home_system(), rec, std::move(env), mode);
  self->monitor(hdl);
  self->state.sandboxes[rec.id] = child{hdl, rec.tenant};
  self->state.ids[hdl.address()] = rec.id;
}

// A record this node may serve to the caller, from the live actors or (for lost ones) the store.
expected<storage::sandbox_record> stored_record(self_ptr self, const std::string& id,
                                                const std::string& tenant, bool admin) {
  auto r = self->state.cfg.store->get_record<storage::sandbox_record>(storage::family::sandboxes, id);
  if (!r) return r.err();
  if (!r->has_value() || (!admin && (*r)->tenant != tenant)) return no_such_sandbox(id);
  return **r;
}

const child* find_child(self_ptr self, const std::string& id, const std::string& tenant, bool admin) {
  auto it = self->state.sandboxes.find(id);
  if (it == self->state.sandboxes.end() || (!admin && it->second.tenant != tenant)) return nullptr;
  return &it->second;
}

// At start: re-adopt what survived, finish what a crash interrupted.
void recover(self_ptr self) {
  auto& cfg = self->state.cfg;
  auto all = cfg.store->scan(storage::family::sandboxes);
  if (!all) {
    spdlog::error("cannot read sandbox records: {}", all.err().message);
    return;
  }
  for (auto& [id, raw] : *all) {
    auto rec = storage::decode<storage::sandbox_record>(raw);
    if (!rec) {
      spdlog::error("skipping sandbox record {}: {}", id, rec.err().message);
      continue;
    }
    if (rec->state == "lost") continue;
    auto env = env_for(cfg, *rec);
    if ((rec->state == "running" || rec->state == "hibernated") && env) {
      spdlog::info("sandbox {}: re-adopting", id);
      start_child(self, *rec, *env, start_mode::adopt);
      continue;
    }
    // Interrupted create/destroy, or a driver/image gone: release what is left.
    auto drv = cfg.drivers.count(rec->isolation) ? cfg.drivers.at(rec->isolation) : nullptr;
    if (drv) {
      auto ds = rec->driver_state;
      auto sid = rec->id;
      run_blocking<ok_t>(self, [drv, sid, ds]() -> expected<ok_t> { drv->cleanup(sid, ds); return ok_t{}; },
                         [](expected<ok_t>) {});
    }
    if (rec->state == "creating" || rec->state == "destroying") {
      cfg.store->erase(storage::family::sandboxes, id);  // never acknowledged / already asked away
    } else {
      rec->state = "lost";
      cfg.store->put_record(storage::family::sandboxes, *rec);
    }
  }
}

void on_child_down(self_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = st.ids.find(dm.source);
  if (it == st.ids.end()) return;
  auto id = it->second;
  st.ids.erase(it);
  st.sandboxes.erase(id);
  if (!dm.reason || dm.reason == caf::exit_reason::user_shutdown) return;
  // A crash: the sandbox itself may be fine. Respawn its actor from the record.
  spdlog::error("sandbox {}: actor crashed ({}); restarting it", id, caf::to_string(dm.reason));
  ++st.restarts[id];
  auto rec = st.cfg.store->get_record<storage::sandbox_record>(storage::family::sandboxes, id);
  if (!rec || !rec->has_value() || ((*rec)->state != "running" && (*rec)->state != "hibernated")) return;
  if (auto env = env_for(st.cfg, **rec)) start_child(self, **rec, *env, start_mode::adopt);
}

// Snapshot actors for every stored snapshot; directories without a record (a save that a crash
// interrupted, a fork's temporary state) are removed.
void recover_snapshots(self_ptr self) {
  auto& st = self->state;
  std::set<std::string> known;
  if (auto all = st.cfg.store->scan(storage::family::snapshots)) {
    for (auto& [sid, raw] : *all) {
      auto rec = storage::decode<storage::snapshot_record>(raw);
      if (!rec) {
        spdlog::error("skipping snapshot record {}: {}", sid, rec.err().message);
        continue;
      }
      known.insert(sid);
      st.snapshots[sid] = snap_child{spawn_snapshot(self->home_system(), *rec, st.cfg.store), rec->tenant};
    }
  }
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(snapshots_dir(self), ec))
    if (!known.count(e.path().filename().string())) remove_snapshot_dir(e.path().string());
}

// A new sandbox shaped like `src`, built from a saved state; its record is stored "creating".
expected<sandbox_actor> start_restored(self_ptr self, storage::sandbox_record rec, const std::string& dir,
                                       const std::string& meta) {
  auto& cfg = self->state.cfg;
  auto env = env_for(cfg, rec);
  if (!env) return env.err();
  env->restore_dir = dir;
  env->restore_meta = meta;
  rec.id = new_sandbox_id();
  rec.state = "creating";
  rec.node = cfg.node_id;
  rec.created_at = now_rfc3339();
  rec.hibernated_at.clear();
  rec.end_at.clear();  // a child's lifetime is its own
  rec.exposures.clear();
  rec.agent_socket.clear();
  rec.driver_state.clear();
  if (auto st = cfg.store->put_record(storage::family::sandboxes, rec); !st) return st.err();
  start_child(self, rec, *env, start_mode::restore);
  return self->state.sandboxes[rec.id].hdl;
}

// A snapshot keeps its source's shape; a restore builds the same. The fields, both ways:
template <class From, class To>
void copy_shape(const From& f, To& t) {
  t.tenant = f.tenant;
  t.image = f.image;
  t.isolation = f.isolation;
  t.vcpus = f.vcpus;
  t.mem_mib = f.mem_mib;
  t.disk_mib = f.disk_mib;
  t.timeout = f.timeout;
  t.sandbox_timeout = f.sandbox_timeout;
  t.network_profile = f.network_profile;
  t.allow = f.allow;
  t.deny = f.deny;
  t.credentials = f.credentials;
  t.env = f.env;
}

storage::sandbox_record record_of(const storage::snapshot_record& s) {
  storage::sandbox_record r;
  copy_shape(s, r);
  r.parent_id = s.sandbox_id;
  return r;
}

storage::snapshot_record snapshot_of(const storage::sandbox_record& r) {
  storage::snapshot_record s;
  copy_shape(r, s);
  s.sandbox_id = r.id;
  return s;
}

// Why a sandbox call that needs a live sandbox actor cannot be served: not_found (unknown,
// another tenant's) or conflict naming its state (lost).
error not_live(self_ptr self, const std::string& id, const std::string& tenant, bool admin) {
  auto rec = stored_record(self, id, tenant, admin);
  if (!rec) return rec.err();
  return make_error(errc::conflict, "sandbox " + id + " is " + rec->state);
}

// Saves a live sandbox into a fresh `dir`; `then(dir, meta, size_bytes, record)` runs once it
// is saved. On any failure the directory is removed and `rp` gets the error.
template <class Then>
void save_sandbox(self_ptr self, const sandbox_actor& sb, const std::string& dir,
                  caf::typed_response_promise<std::string> rp, Then then) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return rp.deliver(to_caf(make_error(errc::internal, "mkdir " + dir + ": " + ec.message()))), void();
  self->request(sb, caf::infinite, save_atom::value, dir)
      .then(
          [rp, dir, then](std::string& meta, uint64_t size, std::string& raw) mutable {
            auto rec = storage::decode<storage::sandbox_record>(raw);
            if (!rec) return remove_snapshot_dir(dir), rp.deliver(to_caf(rec.err())), void();
            then(dir, meta, size, *rec);
          },
          [rp, dir](caf::error& e) mutable {
            remove_snapshot_dir(dir);
            rp.deliver(e);
          });
}

const snap_child* find_snapshot(self_ptr self, const std::string& sid, const std::string& tenant, bool admin) {
  auto it = self->state.snapshots.find(sid);
  if (it == self->state.snapshots.end() || (!admin && it->second.tenant != tenant)) return nullptr;
  return &it->second;
}

error no_such_snapshot(const std::string& sid) { return make_error(errc::not_found, "no snapshot with id " + sid); }

// Collects the children's ready replies; when all are in, replies with their records (or, if
// any failed, destroys the others and replies with the first error) and calls `after`.
struct fork_join {
  caf::typed_response_promise<std::string> rp;
  std::vector<std::string> records;
  std::vector<sandbox_actor> kids;
  std::optional<error> failed;
  size_t pending = 0;
  std::function<void()> after;
};

void finish_fork(self_ptr self, std::shared_ptr<fork_join> j) {
  if (--j->pending > 0) return;
  j->after();
  if (j->failed) {
    for (auto& k : j->kids) self->request(k, caf::infinite, destroy_atom::value).then([](std::string&) {}, [](caf::error&) {});
    j->rp.deliver(to_caf(*j->failed));
    return;
  }
  json out = json::array();
  for (auto& r : j->records) out.push_back(r);
  j->rp.deliver(out.dump());
}

// The supervision tree (/v1/admin/actors): this node, its sandbox actors (each with its own
// children) and its snapshot actors. A sandbox actor that does not answer is listed as such.
caf::result<std::string> node_tree(self_ptr self) {
  auto& st = self->state;
  std::vector<sandbox_actor> sbs;
  for (auto& [id, c] : st.sandboxes) sbs.push_back(c.hdl);
  auto node = tree_entry("node", st.cfg.node_id, "up", st.started_at, st.started_ns,
                         static_cast<int64_t>(self->mailbox().size()));
  node["address"] = st.cfg.address;
  node["counters"] = {{"sandboxes", st.sandboxes.size()}, {"snapshots", st.snapshots.size()}};
  auto rp = self->make_response_promise<std::string>();
  gather_then(self, sbs, [self, rp, node](json sandboxes) mutable {
    auto& st = self->state;
    std::set<std::string> answered;
    for (auto& sb : sandboxes) {
      auto id = sb.value("id", std::string());
      answered.insert(id);
      if (auto r = st.restarts.find(id); r != st.restarts.end()) sb["restarts"] = r->second;
      node["children"].push_back(std::move(sb));
    }
    for (auto& [id, c] : st.sandboxes)
      if (!answered.count(id)) {
        auto e = tree_entry("sandbox", id, "unresponsive", "", st.started_ns, -1);
        e["tenant"] = c.tenant;
        node["children"].push_back(std::move(e));
      }
    std::vector<snapshot_actor> snaps;
    for (auto& [sid, c] : st.snapshots) snaps.push_back(c.hdl);
    gather_then(self, snaps, [rp, node](json snapshots) mutable {
      for (auto& s : snapshots) node["children"].push_back(std::move(s));
      rp.deliver(json{{"nodes", json::array({node})}}.dump());
    }, tree_atom::value);
  }, tree_atom::value);
  return rp;
}

}  // namespace

node_actor spawn_node(caf::actor_system& sys, node_settings settings) {
  auto fn = [](self_ptr self, node_settings cfg) -> node_actor::behavior_type {
    self->state.cfg = std::move(cfg);
    self->state.started_at = now_rfc3339();
    self->set_down_handler([self](caf::down_msg& dm) { on_child_down(self, dm); });
    self->set_exit_handler([self](caf::exit_msg& em) {
      // Sandboxes outlive the daemon: stop their actors, never the sandboxes themselves.
      for (auto& [id, c] : self->state.sandboxes) self->send_exit(c.hdl, em.reason);
      for (auto& [sid, c] : self->state.snapshots) self->send_exit(c.hdl, em.reason);
      self->quit(em.reason);
    });
    recover(self);
    recover_snapshots(self);
    return {
        [self](info_atom) -> std::string {
          auto& c = self->state.cfg;
          json info = {{"version", WARREN_VERSION},
                       {"node", c.node_id},
                       {"nodes", json::array({{{"id", c.node_id},
                                               {"address", c.address},
                                               {"state", "up"},
                                               {"started_at", self->state.started_at},
                                               {"sandboxes", self->state.sandboxes.size()}}})},
                       {"drivers", driver_capabilities(c)},
                       {"images", c.images ? c.images->list() : std::vector<std::string>{}}};
          return info.dump();
        },
        [self](mint_key_atom, const std::string& tenant,
               bool admin) -> caf::result<std::string, std::string, std::string> {
          auto& c = self->state.cfg;
          if (!auth::is_tenant_name(tenant))
            return to_caf(make_error(errc::bad_request,
                                     "tenant must be lower-case letters, digits and inner '-' (at most 63 chars)"));
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
        [self](tree_atom) -> caf::result<std::string> { return node_tree(self); },
        [self](count_atom) -> std::string {
          auto sessions = stream_sessions();
          return json{{"node", 1},
                      {"sandbox", live_actors(actor_kind::sandbox)},
                      {"shell", live_actors(actor_kind::shell)},
                      {"port_forward", port_forward_count()},
                      {"snapshot", live_actors(actor_kind::snapshot)},
                      // not actors, but the console lists them with them (actors/stream_sessions.hpp)
                      {"terminal", std::count_if(sessions.begin(), sessions.end(),
                                                 [](auto& s) { return s->kind == "terminal"; })}}
              .dump();
        },
        [self](create_atom, const std::string& encoded) -> caf::result<std::string> {
          auto& cfg = self->state.cfg;
          auto rec = storage::decode<storage::sandbox_record>(encoded);
          if (!rec) return to_caf(rec.err());
          if (rec->vcpus > static_cast<int>(std::thread::hardware_concurrency()))
            return to_caf(make_error(errc::unavailable, "vcpus " + std::to_string(rec->vcpus) + " is more than node " +
                                                            cfg.node_id + " has (" +
                                                            std::to_string(std::thread::hardware_concurrency()) + ")"));
          if (static_cast<uint64_t>(rec->mem_mib) > host_mem_mib())
            return to_caf(make_error(errc::unavailable, "mem_mib " + std::to_string(rec->mem_mib) +
                                                            " is more than node " + cfg.node_id + " has (" +
                                                            std::to_string(host_mem_mib()) + " MiB)"));
          auto env = env_for(cfg, *rec);
          if (!env) return to_caf(env.err());
          rec->id = new_sandbox_id();
          rec->state = "creating";
          rec->node = cfg.node_id;
          rec->created_at = now_rfc3339();
          if (auto st = cfg.store->put_record(storage::family::sandboxes, *rec); !st) return to_caf(st.err());
          start_child(self, *rec, *env, start_mode::create);
          return self->delegate(self->state.sandboxes[rec->id].hdl, ready_atom::value);
        },
        [self](list_atom, const std::string& tenant, bool admin) -> caf::result<std::string> {
          auto all = self->state.cfg.store->scan(storage::family::sandboxes);
          if (!all) return to_caf(all.err());
          json out = json::array();
          for (auto& [id, raw] : *all) {
            auto rec = storage::decode<storage::sandbox_record>(raw);
            if (rec && (admin || rec->tenant == tenant)) out.push_back(raw);
          }
          return out.dump();
        },
        [self](get_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, get_atom::value);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          return storage::encode(*rec);
        },
        [self](link_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<sandbox_link_ptr> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, link_atom::value);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          return to_caf(make_error(errc::conflict, "sandbox " + id + " is " + rec->state));
        },
        [self](link_atom, const std::string& id) -> caf::result<sandbox_link_ptr> {
          if (auto* c = find_child(self, id, "", true)) return self->delegate(c->hdl, link_atom::value, true);
          return to_caf(not_live(self, id, "", true));
        },
        [self](images_atom) -> caf::result<std::string> {
          auto& cfg = self->state.cfg;
          nlohmann::json out = nlohmann::json::array();
          if (cfg.images)
            for (auto& i : cfg.images->infos())
              out.push_back({{"name", i.name}, {"digest", i.digest}, {"size_bytes", i.size_bytes},
                             {"created_at", i.created_at}});
          return out.dump();
        },
        [self](image_rm_atom, const std::string& ref) -> caf::result<bool> {
          auto& cfg = self->state.cfg;
          auto r = storage::image_ref::parse(ref);
          if (!r) return to_caf(r.err());
          auto name = r->str();
          if (!cfg.images || !cfg.images->rootfs_path(name))
            return to_caf(make_error(errc::not_found, "no image " + name));
          auto same = [&](const std::string& image) {
            auto o = storage::image_ref::parse(image);
            return o && o->str() == name;
          };
          if (auto all = cfg.store->scan(storage::family::sandboxes))
            for (auto& [key, raw] : *all)
              if (auto rec = storage::decode<storage::sandbox_record>(raw);
                  rec && rec->state != "destroyed" && same(rec->image))
                return to_caf(make_error(errc::conflict, "image " + name + " is used by sandbox " + rec->id));
          if (auto all = cfg.store->scan(storage::family::snapshots))
            for (auto& [key, raw] : *all)
              if (auto rec = storage::decode<storage::snapshot_record>(raw); rec && same(rec->image))
                return to_caf(make_error(errc::conflict, "image " + name + " is used by snapshot " + rec->id));
          if (auto st = cfg.images->remove(name); !st) return to_caf(st.err());
          return true;
        },
        [self](usage_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, usage_atom::value);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](network_atom, const std::string& id, const std::string& tenant, bool admin,
               const std::string& body) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, network_atom::value, body);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](refused_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, refused_atom::value);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](deadline_atom, const std::string& id, const std::string& tenant, bool admin,
               const std::string& end_at) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, deadline_atom::value, end_at);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](hibernate_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, hibernate_atom::value);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](resume_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, resume_atom::value);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](reconnect_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, reconnect_atom::value);
          return to_caf(not_live(self, id, tenant, admin));
        },
        [self](fork_atom, const std::string& id, const std::string& tenant, bool admin, int count) -> caf::result<std::string> {
          auto* c = find_child(self, id, tenant, admin);
          if (!c) return to_caf(not_live(self, id, tenant, admin));
          if (count < 1 || count > 64) return to_caf(make_error(errc::bad_request, "count must be 1..64"));
          // The parent's state is saved once into a temporary directory every child clones.
          auto rp = self->make_response_promise<std::string>();
          save_sandbox(self, c->hdl, snapshots_dir(self) + "/.fork-" + random_hex(8), rp,
                       [self, rp, count](const std::string& dir, const std::string& meta, uint64_t,
                                         const storage::sandbox_record& parent) mutable {
                         auto j = std::make_shared<fork_join>();
                         j->rp = rp;
                         j->after = [self, dir] {
                           run_blocking<ok_t>(self, [dir]() -> expected<ok_t> { remove_snapshot_dir(dir); return ok_t{}; },
                                              [](expected<ok_t>) {});
                         };
                         j->pending = 1;  // released below, once every child is asked
                         for (int i = 0; i < count; ++i) {
                           auto child = parent;
                           child.parent_id = parent.id;
                           auto kid = start_restored(self, child, dir, meta);
                           if (!kid) {
                             j->failed = kid.err();
                             break;
                           }
                           j->kids.push_back(*kid);
                           ++j->pending;
                           self->request(*kid, caf::infinite, ready_atom::value)
                               .then([self, j](std::string& r) { j->records.push_back(r), finish_fork(self, j); },
                                     [self, j](caf::error& e) {
                                       if (!j->failed) j->failed = from_caf(e);
                                       finish_fork(self, j);
                                     });
                         }
                         finish_fork(self, j);
                       });
          return rp;
        },
        [self](checkpoint_atom, const std::string& id, const std::string& tenant, bool admin,
               const std::string& name) -> caf::result<std::string> {
          auto* c = find_child(self, id, tenant, admin);
          if (!c) return to_caf(not_live(self, id, tenant, admin));
          std::string sid = "snap_" + random_hex(8);
          auto rp = self->make_response_promise<std::string>();
          save_sandbox(self, c->hdl, snapshots_dir(self) + "/" + sid, rp,
                       [self, rp, sid, name](const std::string& dir, const std::string& meta, uint64_t size,
                                             const storage::sandbox_record& src) mutable {
                         auto s = snapshot_of(src);
                         s.id = sid;
                         s.name = name;
                         s.created_at = now_rfc3339();
                         s.size_bytes = size;
                         s.node = self->state.cfg.node_id;
                         s.dir = dir;
                         s.driver_meta = meta;
                         if (auto st = self->state.cfg.store->put_record(storage::family::snapshots, s); !st) {
                           remove_snapshot_dir(dir);
                           return rp.deliver(to_caf(st.err())), void();
                         }
                         self->state.snapshots[sid] =
                             snap_child{spawn_snapshot(self->home_system(), s, self->state.cfg.store), s.tenant};
                         spdlog::info("snapshot {}: checkpoint of sandbox {} ({} bytes)", sid, s.sandbox_id, size);
                         rp.deliver(storage::encode(s));
                       });
          return rp;
        },
        [self](snapshots_atom, const std::string& tenant, bool admin) -> caf::result<std::string> {
          auto all = self->state.cfg.store->scan(storage::family::snapshots);
          if (!all) return to_caf(all.err());
          json out = json::array();
          for (auto& [sid, raw] : *all) {
            auto rec = storage::decode<storage::snapshot_record>(raw);
            if (rec && (admin || rec->tenant == tenant)) out.push_back(raw);
          }
          return out.dump();
        },
        [self](snap_get_atom, const std::string& sid, const std::string& tenant, bool admin) -> caf::result<std::string> {
          auto* s = find_snapshot(self, sid, tenant, admin);
          if (!s) return to_caf(no_such_snapshot(sid));
          return self->delegate(s->hdl, snap_get_atom::value);
        },
        [self](erase_atom, const std::string& sid, const std::string& tenant, bool admin) -> caf::result<bool> {
          auto* s = find_snapshot(self, sid, tenant, admin);
          if (!s) return to_caf(no_such_snapshot(sid));
          auto rp = self->make_response_promise<bool>();
          self->request(s->hdl, caf::infinite, erase_atom::value)
              .then([self, rp, sid](bool) mutable {
                self->state.snapshots.erase(sid);
                rp.deliver(true);
              }, [rp](caf::error& e) mutable { rp.deliver(e); });
          return rp;
        },
        [self](restore_atom, const std::string& sid, const std::string& tenant, bool admin,
               const std::string& overrides) -> caf::result<std::string> {
          auto* s = find_snapshot(self, sid, tenant, admin);
          if (!s) return to_caf(no_such_snapshot(sid));
          auto rp = self->make_response_promise<std::string>();
          auto snap = s->hdl;
          self->request(snap, caf::infinite, acquire_atom::value).then([self, rp, snap, overrides](std::string& raw) mutable {
            auto srec = storage::decode<storage::snapshot_record>(raw);
            if (!srec) return self->send(snap, release_atom::value), rp.deliver(to_caf(srec.err())), void();
            auto rec = record_of(*srec);
            auto o = json::parse(overrides, nullptr, false);
            if (o.is_object()) {
              if (o.contains("sandbox_timeout")) rec.sandbox_timeout = o["sandbox_timeout"].get<int>();
              if (o.contains("metadata")) rec.metadata = o["metadata"];
            }
            auto kid = start_restored(self, rec, srec->dir, srec->driver_meta);
            if (!kid) return self->send(snap, release_atom::value), rp.deliver(to_caf(kid.err())), void();
            self->request(*kid, caf::infinite, ready_atom::value)
                .then([self, rp, snap](std::string& r) mutable { self->send(snap, release_atom::value); rp.deliver(r); },
                      [self, rp, snap](caf::error& e) mutable { self->send(snap, release_atom::value); rp.deliver(e); });
          }, [rp](caf::error& e) mutable { rp.deliver(e); });
          return rp;
        },
        [self](shell_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<shell_lease_ptr> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, shell_atom::value);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          return to_caf(make_error(errc::conflict, "sandbox " + id + " is " + rec->state));
        },
        [self](destroy_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, destroy_atom::value);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          // A lost sandbox: nothing left to measure. Release whatever is left of it on the host
          // (cleanup is idempotent; the one started when it was marked lost may still be
          // running), then forget it: a 200 means its resources are gone.
          auto& cfg = self->state.cfg;
          auto drv = cfg.drivers.count(rec->isolation) ? cfg.drivers.at(rec->isolation) : nullptr;
          auto ds = rec->driver_state;
          auto rp = self->make_response_promise<std::string>();
          run_blocking<ok_t>(
              self,
              [drv, id, ds]() -> expected<ok_t> {
                if (drv) drv->cleanup(id, ds);
                return ok_t{};
              },
              [self, rp, id](expected<ok_t>) mutable {
                self->state.cfg.store->erase(storage::family::sandboxes, id);
                rp.deliver(destroy_stats_json(vmm::usage{}, 0));
              });
          return rp;
        },
        [self](expose_atom, const std::string& id, const std::string& tenant, bool admin, uint16_t port,
               bool auth) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, expose_atom::value, port, auth);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          return to_caf(make_error(errc::conflict, "sandbox " + id + " is " + rec->state));
        },
        [self](exposures_atom, const std::string& id, const std::string& tenant, bool admin) -> caf::result<std::string> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, exposures_atom::value);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          return std::string("[]");
        },
        [self](unexpose_atom, const std::string& id, const std::string& tenant, bool admin, uint16_t port) -> caf::result<bool> {
          if (auto* c = find_child(self, id, tenant, admin)) return self->delegate(c->hdl, unexpose_atom::value, port);
          auto rec = stored_record(self, id, tenant, admin);
          if (!rec) return to_caf(rec.err());
          return to_caf(make_error(errc::conflict, "sandbox " + id + " is " + rec->state));
        },
        [self](port_stats_atom) -> caf::result<std::string> {
          std::vector<sandbox_actor> all;
          for (auto& [id, c] : self->state.sandboxes) all.push_back(c.hdl);
          return gather_json(self, all, exposures_atom::value);
        },
    };
  };
  return sys.spawn(fn, std::move(settings));
}

}  // namespace warren::actors
