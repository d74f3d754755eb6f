// vmm/jail/cgroups.cpp — cgroup v1/v2 file plumbing for the jail. Only ever touches
// <hierarchy>/warren/<id>; never moves or limits anything else on the host.
#include "vmm/jail/cgroups.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "vmm/jail/host_file.hpp"

namespace warren::vmm::jail {
namespace {

constexpr const char* parent = "warren";

bool has_opt(const std::string& opts, const std::string& name) {
  std::stringstream ss(opts);
  std::string o;
  while (std::getline(ss, o, ','))
    if (o == name) return true;
  return false;
}

bool is_under(const std::string& dir, const std::string& root) {
  return !root.empty() && dir.compare(0, root.size(), root) == 0;
}

std::vector<int> procs_of(const std::string& dir) {
  std::vector<int> out;
  std::ifstream f(dir + "/cgroup.procs");
  int pid;
  while (f >> pid) out.push_back(pid);
  return out;
}

}  // namespace

cgroup_layout cgroup_layout::detect() {
  cgroup_layout l;
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::stringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, par, dev, root, mnt, fstype, src, sopts;
    pre >> id >> par >> dev >> root >> mnt;
    post >> fstype >> src >> sopts;
    if (fstype == "cgroup2") {
      if (l.unified.empty() || mnt == "/sys/fs/cgroup") l.unified = mnt;
    } else if (fstype == "cgroup") {
      if (has_opt(sopts, "cpu") && l.cpu.empty()) l.cpu = mnt;
      if (has_opt(sopts, "cpuacct") && l.cpuacct.empty()) l.cpuacct = mnt;
      if (has_opt(sopts, "memory") && l.memory.empty()) l.memory = mnt;
      if (has_opt(sopts, "pids") && l.pids.empty()) l.pids = mnt;
      if (has_opt(sopts, "freezer") && l.freezer.empty()) l.freezer = mnt;
    }
  }
  std::string v2ctl = l.unified.empty() ? "" : read_file(l.unified + "/cgroup.controllers").value_or("");
  bool v2_has_all = v2ctl.find("memory") != std::string::npos && v2ctl.find("cpu") != std::string::npos &&
                    v2ctl.find("pids") != std::string::npos;
  if (v2_has_all && l.memory.empty()) {
    l.kind = mode::v2;
    l.cpu = l.cpuacct = l.memory = l.pids = l.freezer = "";
  } else if (!l.cpu.empty() && !l.cpuacct.empty() && !l.memory.empty() && !l.pids.empty()) {
    l.kind = mode::hybrid;
  } else {
    l.reason = "no usable cgroup hierarchy (need v1 cpu,cpuacct,memory,pids or v2 with cpu,memory,pids)";
  }
  return l;
}

std::vector<std::string> sandbox_cgroups::dirs(const std::string& id) const {
  std::vector<std::string> d;
  auto add = [&](const std::string& root) {
    if (root.empty()) return;
    std::string p = root + "/" + parent + "/" + id;
    for (auto& x : d)
      if (x == p) return;  // cpu,cpuacct co-mounted
    d.push_back(p);
  };
  if (l_.kind == cgroup_layout::mode::v2) {
    add(l_.unified);
  } else {
    add(l_.cpu);
    add(l_.cpuacct);
    add(l_.memory);
    add(l_.pids);
    add(l_.freezer);
    add(l_.unified);  // hybrid: cgroup2 only gives us cgroup.kill/cgroup.freeze
  }
  return d;
}

status sandbox_cgroups::create(const std::string& id, const cgroup_limits& lim) const {
  if (l_.kind == cgroup_layout::mode::none) return make_error(errc::unavailable, l_.reason);
  auto fail = [&](const std::string& what, int e) {
    return make_error(errc::internal, "sandbox " + id + " step cgroup " + what + ": " + errno_name(e));
  };
  if (l_.kind == cgroup_layout::mode::v2) {
    // Controllers must be enabled in every ancestor's subtree_control (cgroup-v2.rst, "Top-down").
    write_file(l_.unified + "/cgroup.subtree_control", "+cpu +memory +pids");
    mkdir((l_.unified + "/" + parent).c_str(), 0755);
    write_file(l_.unified + "/" + parent + "/cgroup.subtree_control", "+cpu +memory +pids");
  }
  for (auto& d : dirs(id)) {
    auto slash = d.rfind('/');
    mkdir(d.substr(0, slash).c_str(), 0755);
    if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return fail("mkdir " + d, errno);
  }
  std::string quota = std::to_string(lim.vcpus * 100000);
  std::string mem = std::to_string(lim.mem_bytes);
  std::string pids = std::to_string(lim.pids_max);
  auto must = [&](const std::string& file, const std::string& v) -> int {
    return write_file(file, v) ? 0 : (errno ? errno : EIO);
  };
  struct item { std::string file, value; bool required; };
  std::vector<item> items;
  if (l_.kind == cgroup_layout::mode::v2) {
    std::string d = l_.unified + "/" + parent + "/" + id;
    items = {{d + "/cpu.max", quota + " 100000", true},
             {d + "/memory.max", mem, true},
             {d + "/memory.swap.max", "0", false},  // absent without swap accounting
             {d + "/pids.max", pids, true}};
  } else {
    auto at = [&](const std::string& root) { return root + "/" + parent + "/" + id; };
    items = {{at(l_.cpu) + "/cpu.cfs_period_us", "100000", true},
             {at(l_.cpu) + "/cpu.cfs_quota_us", quota, true},
             {at(l_.memory) + "/memory.limit_in_bytes", mem, true},
             // memsw >= limit: no swap on top of the limit (needs swapaccount; optional).
             {at(l_.memory) + "/memory.memsw.limit_in_bytes", mem, false},
             {at(l_.memory) + "/memory.swappiness", "0", false},
             {at(l_.pids) + "/pids.max", pids, true}};
  }
  for (auto& it : items)
    if (int e = must(it.file, it.value); e && it.required) return fail(it.file, e);
  return ok();
}

expected<cgroup_usage> sandbox_cgroups::usage(const std::vector<std::string>& ds) const {
  cgroup_usage u;
  bool found = false;
  for (auto& d : ds) {
    if (l_.kind == cgroup_layout::mode::v2 && is_under(d, l_.unified)) {
      auto stat = read_file(d + "/cpu.stat");
      if (!stat) continue;
      found = true;
      std::stringstream ss(*stat);
      std::string k;
      uint64_t v;
      while (ss >> k >> v)
        if (k == "usage_usec") u.cpu_ns = v * 1000;
      u.mem_peak = read_u64(d + "/memory.peak").value_or(0);
      u.mem_current = read_u64(d + "/memory.current").value_or(0);
    } else if (is_under(d, l_.cpuacct) && !is_under(d, l_.unified)) {
      if (auto v = read_u64(d + "/cpuacct.usage")) { u.cpu_ns = *v; found = true; }
    }
    if (l_.kind == cgroup_layout::mode::hybrid && is_under(d, l_.memory) && !is_under(d, l_.unified)) {
      if (auto v = read_u64(d + "/memory.max_usage_in_bytes")) { u.mem_peak = *v; found = true; }
      u.mem_current = read_u64(d + "/memory.usage_in_bytes").value_or(0);
    }
  }
  if (!found) return make_error(errc::not_found, "sandbox cgroups are gone");
  return u;
}

status sandbox_cgroups::kill_all(const std::vector<std::string>& ds, int timeout_ms) const {
  std::string killer, freezer;
  for (auto& d : ds) {
    struct stat st;
    if (stat((d + "/cgroup.kill").c_str(), &st) == 0) killer = d;
    if (is_under(d, l_.freezer) && !l_.freezer.empty()) freezer = d;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string watch = killer.empty() ? (ds.empty() ? "" : ds.front()) : killer;
  // A killed sandbox is usually gone within a few ms: poll at 1, 2, 4 ms before settling on 5.
  for (int pause_ms = 1;; pause_ms = std::min(pause_ms * 2, 5)) {
    if (!killer.empty()) {
      write_file(killer + "/cgroup.kill", "1");  // kernel ≥ 5.14, also on a hybrid host's cgroup2
    } else if (!freezer.empty()) {
      // Freeze first so nothing forks between reading the list and killing it.
      write_file(freezer + "/freezer.state", "FROZEN");
      for (int pid : procs_of(freezer)) ::kill(pid, SIGKILL);
      write_file(freezer + "/freezer.state", "THAWED");
    } else {
      for (int pid : procs_of(watch)) ::kill(pid, SIGKILL);
    }
    bool empty = true;
    for (auto& d : ds)
      if (!procs_of(d).empty()) empty = false;
    if (empty) return ok();
    if (std::chrono::steady_clock::now() > deadline)
      return make_error(errc::timeout, "processes of the sandbox survived SIGKILL");
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
}

void sandbox_cgroups::remove(const std::vector<std::string>& ds) const {
  struct stat st;
  bool any = false;
  for (auto& d : ds)
    if (stat(d.c_str(), &st) == 0) any = true;
  if (!any) return;
  (void)kill_all(ds, 3000);
  for (auto& d : ds) {
    // rmdir can see EBUSY for a moment while the last task is being released.
    for (int i = 0; i < 200 && rmdir(d.c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

namespace {
// The file that freezes the sandbox, and how to read back that it is frozen.
struct freeze_knob {
  std::string file, on, off;
  bool v2 = false;
};

std::optional<freeze_knob> knob_of(const std::vector<std::string>& ds, const std::string& v1_root) {
  struct stat st;
  for (auto& d : ds)
    if (stat((d + "/cgroup.freeze").c_str(), &st) == 0) return freeze_knob{d + "/cgroup.freeze", "1", "0", true};
  for (auto& d : ds)
    if (is_under(d, v1_root)) return freeze_knob{d + "/freezer.state", "FROZEN", "THAWED", false};
  return std::nullopt;
}

bool knob_reads(const freeze_knob& k, bool frozen) {
  if (k.v2) {
    // cgroup.events says "frozen 1" once every task has stopped (cgroup.freeze only asks).
    auto dir = k.file.substr(0, k.file.rfind('/'));
    auto ev = read_file(dir + "/cgroup.events").value_or("");
    return ev.find(frozen ? "frozen 1" : "frozen 0") != std::string::npos;
  }
  auto s = read_file(k.file).value_or("");
  return s.rfind(frozen ? "FROZEN" : "THAWED", 0) == 0;
}
}  // namespace

status sandbox_cgroups::set_frozen(const std::vector<std::string>& ds, bool frozen, int timeout_ms) const {
  auto k = knob_of(ds, l_.freezer);
  if (!k) return make_error(errc::unavailable, "the sandbox has no freezer cgroup on this host");
  if (!write_file(k->file, frozen ? k->on : k->off))
    return make_error(errc::internal, "write " + k->file + ": " + errno_name(errno));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!knob_reads(*k, frozen)) {
    if (std::chrono::steady_clock::now() > deadline) {
      if (frozen) write_file(k->file, k->off);  // never leave it half frozen
      return make_error(errc::timeout, std::string("the sandbox's processes did not ") +
                                           (frozen ? "freeze" : "thaw") + " within " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ok();
}

bool sandbox_cgroups::frozen(const std::vector<std::string>& ds) const {
  auto k = knob_of(ds, l_.freezer);
  return k && knob_reads(*k, true);
}

}  // namespace warren::vmm::jail
