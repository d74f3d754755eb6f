// vmm/jail/jail_driver.cpp — the one place a jail sandbox is assembled and torn down: slot,
// scratch quota, cgroups, network table, agent socket, then the __jail-init helper.
// Blocking; called from a worker thread. Never forks by hand (posix_spawn only).
#include "vmm/jail/jail_driver.hpp"

#include <cstdio>
#include <signal.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/file_clone.hpp"
#include "vmm/jail/cgroups.hpp"
#include "vmm/jail/host_command.hpp"
#include "vmm/jail/host_file.hpp"
#include "vmm/jail/host_probe.hpp"
#include "vmm/jail/launch_plan.hpp"
#include "vmm/jail/netlink.hpp"
#include "vmm/jail/nftables.hpp"
#include "vmm/jail/sandbox_process.hpp"
#include "vmm/jail/scratch_disk.hpp"
#include "vmm/jail/slot_lock.hpp"
#include "vmm/jail/slot_pool.hpp"

namespace warren::vmm {
namespace {

namespace fs = std::filesystem;
using namespace jail;

std::vector<uint64_t> mib_to_bytes(const std::vector<uint64_t>& mib) {
  std::vector<uint64_t> out;
  for (uint64_t m : mib) out.push_back(m << 20);
  return out;
}

class jail_driver final : public driver {
 public:
  explicit jail_driver(const jail_config& cfg)
      : cfg_(cfg),
        layout_(cgroup_layout::detect()),
        cgroups_(layout_),
        pool_(ipv4_net::parse(cfg.net_pool).value_or(ipv4_net{0x0AC90000, 16}), cfg.uid_base),
        claims_(cfg.slot_lock_dir),
        scratch_(cfg.data_dir, cfg.scratch_pool_depth, mib_to_bytes(cfg.scratch_prewarm_mib)) {
    caps_ = probe_host(cfg_, layout_);
    if (!ipv4_net::parse(cfg.net_pool)) {
      caps_["available"] = false;
      caps_["reason"] = "invalid net_pool " + cfg.net_pool;
    }
    // Hibernate = the cgroup freezer: processes, their memory and PIDs stay as they are (the
    // memory stays resident: nothing here writes it out without CRIU). Fork and checkpoints
    // copy the disk only, so children start fresh processes on the inherited files.
    bool freezer = !layout_.freezer.empty() || !layout_.unified.empty();
    caps_["snapshots"] = caps_.value("available", false);
    caps_["hibernate_memory"] = freezer;
    caps_["hibernate"] = freezer ? "cgroup freezer; memory stays resident" : "unavailable: no freezer cgroup";
    std::error_code mk;
    fs::create_directories(cfg_.data_dir + "/scratch", mk);
    caps_["snapshot_storage"] = {{"dir", cfg_.data_dir + "/scratch"},
                                 {"reflink", dir_supports_reflink(cfg_.data_dir + "/scratch")}};
    nameservers_ = parse_nameservers(read_file("/etc/resolv.conf").value_or(""));
    if (nameservers_.empty()) nameservers_ = {"1.1.1.1", "8.8.8.8"};
    recover_slots();
  }

  std::string name() const override { return "jail"; }
  nlohmann::json capabilities() const override { return caps_; }

  expected<instance> create(const sandbox_spec& spec) override;
  expected<instance> adopt(const sandbox_spec& spec, const std::string& driver_state) override;
  expected<usage> stats(const instance& inst) override;
  int open_netns(const instance& inst) override;
  expected<usage> destroy(const instance& inst) override;
  void cleanup(const std::string& id, const std::string& driver_state) override;
  status freeze(const instance& inst) override;
  status thaw(const instance& inst) override;
  status set_egress(const instance& inst, const egress_rules& rules) override;
  status allow_learned(const instance& inst, const std::vector<std::string>& addrs, uint32_t ttl_s) override;
  expected<std::string> egress_refusals(const instance& inst) override;
  std::map<std::string, uint64_t> egress_refusal_counts() override;
  expected<saved_state> save(const instance& inst, const std::string& dir) override;
  expected<instance> restore(const sandbox_spec& spec, const std::string& dir, const std::string& meta) override;

 private:
  // Where a new sandbox's disk comes from: a fresh one (null), or a saved image.
  struct disk_source {
    std::string image;
    uint32_t from_uid = 0;
    uint64_t baseline = 0;
  };
  expected<instance> build(const sandbox_spec& spec, const disk_source* from);
  std::string run_dir(const std::string& id) const { return cfg_.data_dir + "/sandboxes/" + id; }
  std::string socket_path(const std::string& id) const { return run_dir(id) + "/agent.sock"; }
  void recover_slots();
  std::optional<slot_lease> take_slot();
  void give_back(uint32_t slot);
  status ensure_network();
  nft_params net_params(bool guard) const {
    return {cfg_.net_pool, nameservers_, guard, cfg_.egress_proxy_port, cfg_.egress_dns_port};
  }
  status write_egress(const std::string& id, const std::string& host_if, const egress_rules& rules);
  void save_state(const std::string& id, const jail_state& st) const;
  expected<usage> measure(const std::string& id, const jail_state& st) const;
  expected<instance> launch(const sandbox_spec& spec, jail_state& st, const slot_lease& lease, const disk_source* from);

  jail_config cfg_;
  cgroup_layout layout_;
  sandbox_cgroups cgroups_;
  slot_pool pool_;
  slot_locks claims_;  // host-wide: no other driver on this host uses a slot we hold
  mutable scratch_disks scratch_;
  nlohmann::json caps_;
  std::vector<std::string> nameservers_;
  std::mutex net_mu_;
  bool net_ready_ = false;
  std::mutex cleanup_mu_;  // one cleanup at a time: the slot is released exactly once
};

// Slots of sandboxes that outlived a previous daemon stay taken until cleanup() frees them.
void jail_driver::recover_slots() {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(cfg_.data_dir + "/sandboxes", ec)) {
    auto text = read_file(e.path().string() + "/state.json");
    if (!text) continue;
    if (auto st = decode_jail_state(*text)) {
      pool_.reserve(st->slot);
      if (!claims_.claim(st->slot))
        std::fprintf(stderr, "jail: slot %u of sandbox %s is also claimed by another Warren on this host\n",
                     st->slot, e.path().filename().c_str());
    }
  }
}

// The lowest slot that is free here and not claimed by any other driver on the host.
std::optional<slot_lease> jail_driver::take_slot() {
  std::vector<uint32_t> elsewhere;  // held by another driver: skipped, then given back
  std::optional<slot_lease> got;
  while (auto lease = pool_.allocate()) {
    if (claims_.claim(lease->slot)) {
      got = lease;
      break;
    }
    elsewhere.push_back(lease->slot);
  }
  for (auto s : elsewhere) pool_.release(s);
  return got;
}

void jail_driver::give_back(uint32_t slot) {
  claims_.release(slot);
  pool_.release(slot);
}

void jail_driver::save_state(const std::string& id, const jail_state& st) const {
  std::string path = run_dir(id) + "/state.json", tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << encode(st);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

status jail_driver::ensure_network() {
  std::lock_guard lk(net_mu_);
  if (net_ready_) return ok();
  // If forwarding was off before Warren, keep it off for everything but the sandboxes. The
  // marker survives restarts, when ip_forward already reads 1 because of us.
  std::string marker = cfg_.data_dir + "/ip_forward_enabled_by_warren";
  bool guard = access(marker.c_str(), F_OK) == 0;
  if (!guard && read_file("/proc/sys/net/ipv4/ip_forward").value_or("1").substr(0, 1) == "0") {
    std::ofstream(marker) << "1\n";
    guard = true;
  }
  auto st = apply_ruleset(net_params(guard));
  if (!st) return st;
  net_ready_ = true;
  // The table was just made anew: sandboxes that outlived a previous daemon get their own
  // chains back from what their run dirs say (addresses learned from DNS are learned again).
  std::error_code ec;
  for (auto& e : fs::directory_iterator(cfg_.data_dir + "/sandboxes", ec)) {
    auto js = decode_jail_state(read_file(e.path().string() + "/state.json").value_or(""));
    auto rules = read_file(e.path().string() + "/egress.json");
    if (!js || !rules) continue;
    try {
      auto j = nlohmann::json::parse(*rules);
      egress_rules r;
      r.profile = j.at("profile").get<std::string>();
      r.allow_cidrs = j.at("allow").get<std::vector<std::string>>();
      r.deny_cidrs = j.at("deny").get<std::vector<std::string>>();
      r.allow_list = j.at("allow_list").get<bool>();
      r.redirect_web = j.at("web").get<bool>();
      r.redirect_dns = j.at("dns").get<bool>();
      if (auto w = run_nft(render_sandbox_rules(e.path().filename(), js->host_if, net_params(guard), r)); !w)
        std::fprintf(stderr, "jail: egress rules of %s: %s\n", e.path().filename().c_str(), w.err().message.c_str());
    } catch (const std::exception&) {
    }
  }
  return ok();
}

// The sandbox's own chains, and their source of truth in its run dir (for ensure_network).
status jail_driver::write_egress(const std::string& id, const std::string& host_if, const egress_rules& r) {
  if (auto s = ensure_network(); !s) return s;
  bool guard = access((cfg_.data_dir + "/ip_forward_enabled_by_warren").c_str(), F_OK) == 0;
  if (auto s = run_nft(render_sandbox_rules(id, host_if, net_params(guard), r)); !s) return s;
  nlohmann::json j = {{"profile", r.profile}, {"allow", r.allow_cidrs}, {"deny", r.deny_cidrs},
                      {"allow_list", r.allow_list}, {"web", r.redirect_web}, {"dns", r.redirect_dns}};
  std::string path = run_dir(id) + "/egress.json";
  std::ofstream(path + ".tmp", std::ios::trunc) << j.dump();
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);
  return ok();
}

status jail_driver::set_egress(const instance& inst, const egress_rules& rules) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + inst.id + ": unreadable driver_state");
  return write_egress(inst.id, st->host_if, rules);
}

status jail_driver::allow_learned(const instance& inst, const std::vector<std::string>& addrs, uint32_t ttl_s) {
  if (addrs.empty()) return ok();
  return run_nft(render_learned(inst.id, addrs, ttl_s));
}

std::map<std::string, uint64_t> jail_driver::egress_refusal_counts() {
  std::map<std::string, uint64_t> out;
  auto r = run_command({"nft", "-j", "list", "counters", "table", "inet", "warren"});
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  if (r.exit_code != 0 || !j.is_object() || !j["nftables"].is_array()) return out;
  for (auto& item : j["nftables"]) {
    if (!item.contains("counter")) continue;
    auto name = item["counter"].value("name", std::string());
    if (name.rfind("c_", 0) == 0) out[name.substr(2)] = item["counter"].value("packets", uint64_t(0));
  }
  return out;
}

expected<std::string> jail_driver::egress_refusals(const instance& inst) {
  std::string out;
  for (auto what : {"set f4_", "set f6_", "counter c_"}) {
    std::string kind = what;
    auto r = run_command({"nft", "-j", "list", kind.substr(0, kind.find(' ')), "inet", "warren",
                          kind.substr(kind.find(' ') + 1) + inst.id});
    if (r.exit_code != 0) return make_error(errc::not_found, "sandbox " + inst.id + " has no egress rules: " + r.output);
    out += r.output + "\n";
  }
  return refusals_json(out, static_cast<int64_t>(time(nullptr)));
}

expected<instance> jail_driver::create(const sandbox_spec& spec) { return build(spec, nullptr); }

expected<instance> jail_driver::build(const sandbox_spec& spec, const disk_source* from) {
  if (!valid_sandbox_id(spec.id)) return make_error(errc::bad_request, "invalid sandbox id " + spec.id);
  auto host_if = host_if_name(spec.id, spec.network_profile);
  if (!host_if) return make_error(errc::bad_request, "unknown network_profile " + spec.network_profile);
  if (!caps_.value("available", false))
    return make_error(errc::unavailable, "jail driver unavailable: " + caps_.value("reason", std::string()));
  if (spec.vcpus < 1 || spec.mem_mib < 16 || spec.disk_mib < 16)
    return make_error(errc::bad_request, "vcpus/mem_mib/disk_mib out of range");
  struct stat sb{};
  if (stat(spec.image_rootfs.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    return make_error(errc::not_found, "image " + spec.image + " has no rootfs at " + spec.image_rootfs);
  std::error_code ec;
  if (fs::exists(run_dir(spec.id) + "/state.json", ec))
    return make_error(errc::conflict, "sandbox " + spec.id + " already exists");
  auto lease = take_slot();
  if (!lease) return make_error(errc::unavailable, "no free sandbox slot in " + cfg_.net_pool);

  jail_state st;
  st.slot = lease->slot;
  st.host_if = *host_if;
  st.guest_addr = ipv4_to_string(lease->guest_addr);
  st.network_profile = spec.network_profile;
  st.cgroup_dirs = cgroups_.dirs(spec.id);
  fs::create_directories(run_dir(spec.id), ec);
  if (ec) {
    give_back(lease->slot);
    return make_error(errc::internal, "sandbox " + spec.id + " step mkdir run dir: " + ec.message());
  }
  chmod(run_dir(spec.id).c_str(), 0711);
  save_state(spec.id, st);  // written first: a crash mid-create still leaves cleanup its map

  auto inst = launch(spec, st, *lease, from);
  if (!inst) cleanup(spec.id, encode(st));
  return inst;
}

expected<instance> jail_driver::launch(const sandbox_spec& spec, jail_state& st, const slot_lease& lease,
                                       const disk_source* from) {
  if (auto s = write_egress(spec.id, st.host_if, spec.egress); !s) return s.err();
  uint64_t disk = uint64_t(spec.disk_mib) << 20, mem = uint64_t(spec.mem_mib) << 20;
  if (from) {
    if (auto s = scratch_.create_from(spec.id, from->image, lease.uid_base, from->from_uid); !s) return s.err();
    st.scratch_baseline = from->baseline;
  } else {
    auto baseline = scratch_.create(spec.id, disk, lease.uid_base);
    if (!baseline) return baseline.err();
    st.scratch_baseline = *baseline;
  }
  if (auto s = cgroups_.create(spec.id, {spec.vcpus, mem, cfg_.pids_max}); !s) return s.err();
  auto lfd = listen_unix(socket_path(spec.id));
  if (!lfd) return lfd.err();

  launch_plan p;
  p.id = spec.id;
  p.image_rootfs = spec.image_rootfs;
  p.run_dir = run_dir(spec.id);
  p.upper_dir = scratch_.upper_dir(spec.id);
  p.work_dir = scratch_.work_dir(spec.id);
  p.uid_base = lease.uid_base;
  p.uid_count = slot_pool::ids_per_slot;
  p.cgroup_dirs = st.cgroup_dirs;
  p.host_if = st.host_if;
  p.host_addr = ipv4_to_string(lease.host_addr);
  p.guest_addr = st.guest_addr;
  p.prefix = lease.prefix;
  p.nameservers = nameservers_;
  p.env = spec.env;
  p.agent_path = cfg_.agent_path;
  p.tmp_size_bytes = mem / 2;  // tmpfs pages are charged to the sandbox's memory cgroup anyway

  auto r = run_helper(cfg_.helper_path, p, *lfd, cfg_.create_timeout_ms);
  close(*lfd);
  if (!r) return r.err();
  if (!r->ok)
    return make_error(errc::internal, "sandbox " + spec.id + " step " + r->step + ": " + errno_name(r->err) +
                                          (r->detail.empty() ? "" : " (" + r->detail + ")"));
  st.init_pid = r->init_pid;
  st.init_start_time = process_start_time(r->init_pid).value_or(0);
  save_state(spec.id, st);
  if (!connect_unix(socket_path(spec.id), cfg_.create_timeout_ms))
    return make_error(errc::timeout, "sandbox " + spec.id + " step agent connect: no answer");
  return instance{spec.id, socket_path(spec.id), encode(st), st.guest_addr};
}

expected<instance> jail_driver::adopt(const sandbox_spec& spec, const std::string& driver_state) {
  auto st = decode_jail_state(driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + spec.id + ": unreadable driver_state");
  if (!same_process(st->init_pid, st->init_start_time))
    return make_error(errc::not_found, "sandbox " + spec.id + ": its PID 1 is gone");
  if (!connect_unix(socket_path(spec.id), 1000))
    return make_error(errc::not_found, "sandbox " + spec.id + ": its agent does not answer");
  pool_.reserve(st->slot);  // no-op when recover_slots() already saw it
  claims_.claim(st->slot);
  if (auto s = ensure_network(); !s) return s.err();
  return instance{spec.id, socket_path(spec.id), driver_state, st->guest_addr};
}

expected<usage> jail_driver::measure(const std::string& id, const jail_state& st) const {
  auto cg = cgroups_.usage(st.cgroup_dirs);
  if (!cg) return cg.err();
  usage u;
  u.cpu_usage_ns = cg->cpu_ns;
  u.cpu_ms = cg->cpu_ns / 1000000;
  u.mem_peak_bytes = cg->mem_peak;
  u.mem_current_bytes = cg->mem_current;
  if (auto d = scratch_.used_bytes(id, st.scratch_baseline)) u.disk_used_bytes = *d;
  return u;
}

expected<usage> jail_driver::stats(const instance& inst) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + inst.id + ": unreadable driver_state");
  return measure(inst.id, *st);
}

int jail_driver::open_netns(const instance& inst) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st || st->init_pid <= 0) return -1;
  int fd = ::open(("/proc/" + std::to_string(st->init_pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
  // Checked after opening: if PID 1 is still the sandbox's own now, it was when we opened (a
  // reused PID cannot turn back into it), so the namespace is the sandbox's.
  if (fd >= 0 && !same_process(st->init_pid, st->init_start_time)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

expected<usage> jail_driver::destroy(const instance& inst) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + inst.id + ": unreadable driver_state");
  // A v1-frozen task would hold SIGKILL until thawed: thaw a hibernated sandbox first.
  if (cgroups_.frozen(st->cgroup_dirs)) (void)cgroups_.set_frozen(st->cgroup_dirs, false, 2000);
  // PID 1 dying takes the whole pid namespace with it; the cgroup kill catches the rest.
  if (same_process(st->init_pid, st->init_start_time)) kill(st->init_pid, SIGKILL);
  auto killed = cgroups_.kill_all(st->cgroup_dirs, 5000);
  auto u = measure(inst.id, *st);
  cleanup(inst.id, inst.driver_state);
  if (!u) return u.err();
  if (!killed) return killed.err();
  return u;
}

void jail_driver::cleanup(const std::string& id, const std::string& driver_state) {
  if (!valid_sandbox_id(id)) return;  // never build paths from garbage
  auto st = decode_jail_state(driver_state);
  if (!st) st = decode_jail_state(read_file(run_dir(id) + "/state.json").value_or(""));
  std::vector<std::string> dirs = st ? st->cgroup_dirs : cgroups_.dirs(id);
  cgroups_.remove(dirs);
  if (st) {
    (void)run_nft(render_sandbox_removal(id, st->host_if));
    nl::delete_link(st->host_if.c_str());
  } else {
    for (const char* prof : {"default", "internet", "locked-down"})
      nl::delete_link(host_if_name(id, prof)->c_str());
  }
  // The sandbox's mounts lived in its own mount namespace and died with it; only the scratch
  // dir and the run dir remain on the host.
  scratch_.remove(id);
  std::error_code ec;
  std::string rd = run_dir(id);
  for (const char* m : {"/root", "/lower"}) umount2((rd + m).c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  // The slot is held exactly while the run dir exists (create makes it right after taking the
  // slot, recover_slots reserves from it). Only the cleanup that removes the run dir releases
  // the slot: a second cleanup must not free a slot a newer sandbox has taken meanwhile.
  std::lock_guard lk(cleanup_mu_);
  bool had_run_dir = fs::exists(rd, ec);
  fs::remove_all(rd, ec);
  if (st && had_run_dir) give_back(st->slot);
}

status jail_driver::freeze(const instance& inst) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + inst.id + ": unreadable driver_state");
  return cgroups_.set_frozen(st->cgroup_dirs, true, 10000);
}

status jail_driver::thaw(const instance& inst) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + inst.id + ": unreadable driver_state");
  return cgroups_.set_frozen(st->cgroup_dirs, false, 10000);
}

// Filesystem state only (no CRIU here, see capabilities): the processes are frozen while the
// disk is copied, so what is saved is one moment of the sandbox's files.
expected<driver::saved_state> jail_driver::save(const instance& inst, const std::string& dir) {
  auto st = decode_jail_state(inst.driver_state);
  if (!st) return make_error(errc::not_found, "sandbox " + inst.id + ": unreadable driver_state");
  bool was_frozen = cgroups_.frozen(st->cgroup_dirs);
  if (!was_frozen)
    if (auto f = cgroups_.set_frozen(st->cgroup_dirs, true, 10000); !f) return f.err();
  auto bytes = scratch_.save_image(inst.id, dir + "/scratch.img");
  if (!was_frozen) (void)cgroups_.set_frozen(st->cgroup_dirs, false, 10000);
  if (!bytes) return bytes.err();
  nlohmann::json meta = {{"kind", "jail-disk"},
                         {"uid_base", pool_.uid_base_of(st->slot)},
                         {"baseline", st->scratch_baseline}};
  return saved_state{meta.dump(), *bytes};
}

expected<instance> jail_driver::restore(const sandbox_spec& spec, const std::string& dir, const std::string& meta) {
  disk_source from;
  try {
    auto m = nlohmann::json::parse(meta);
    if (m.value("kind", "") != "jail-disk") throw std::runtime_error("not a jail snapshot");
    from.from_uid = m.at("uid_base").get<uint32_t>();
    from.baseline = m.at("baseline").get<uint64_t>();
  } catch (const std::exception& e) {
    return make_error(errc::bad_request, "snapshot for " + spec.id + " is not a jail disk: " + e.what());
  }
  from.image = dir + "/scratch.img";
  struct stat sb{};
  if (stat(from.image.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode))
    return make_error(errc::not_found, "the snapshot's disk image is missing: " + from.image);
  if (uint64_t(sb.st_size) != uint64_t(spec.disk_mib) << 20)
    return make_error(errc::bad_request, "the snapshot's disk image is " + std::to_string(sb.st_size) +
                                             " bytes, not disk_mib " + std::to_string(spec.disk_mib) + " (damaged?)");
  return build(spec, &from);
}

}  // namespace

std::unique_ptr<driver> make_jail_driver(const jail_config& cfg) { return std::make_unique<jail_driver>(cfg); }

}  // namespace warren::vmm
