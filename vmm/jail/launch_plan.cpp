// vmm/jail/launch_plan.cpp — JSON encoding of the helper's plan, its answer and driver_state.
// Decoders return nullopt on anything malformed; they never throw.
#include "vmm/jail/launch_plan.hpp"

#include <nlohmann/json.hpp>

namespace warren::vmm::jail {

using nlohmann::json;

std::string encode(const launch_plan& p) {
  return json{{"id", p.id},
              {"image_rootfs", p.image_rootfs},
              {"run_dir", p.run_dir},
              {"upper_dir", p.upper_dir},
              {"work_dir", p.work_dir},
              {"uid_base", p.uid_base},
              {"uid_count", p.uid_count},
              {"cgroup_dirs", p.cgroup_dirs},
              {"host_if", p.host_if},
              {"host_addr", p.host_addr},
              {"guest_addr", p.guest_addr},
              {"prefix", p.prefix},
              {"nameservers", p.nameservers},
              {"env", p.env},
              {"agent_path", p.agent_path},
              {"tmp_size_bytes", p.tmp_size_bytes}}
      .dump();
}

std::optional<launch_plan> decode_launch_plan(const std::string& text) {
  try {
    auto j = json::parse(text);
    launch_plan p;
    j.at("id").get_to(p.id);
    j.at("image_rootfs").get_to(p.image_rootfs);
    j.at("run_dir").get_to(p.run_dir);
    j.at("upper_dir").get_to(p.upper_dir);
    j.at("work_dir").get_to(p.work_dir);
    j.at("uid_base").get_to(p.uid_base);
    j.at("uid_count").get_to(p.uid_count);
    j.at("cgroup_dirs").get_to(p.cgroup_dirs);
    j.at("host_if").get_to(p.host_if);
    j.at("host_addr").get_to(p.host_addr);
    j.at("guest_addr").get_to(p.guest_addr);
    j.at("prefix").get_to(p.prefix);
    j.at("nameservers").get_to(p.nameservers);
    j.at("env").get_to(p.env);
    j.at("agent_path").get_to(p.agent_path);
    j.at("tmp_size_bytes").get_to(p.tmp_size_bytes);
    if (!valid_sandbox_id(p.id) || p.uid_count == 0 || p.run_dir.empty()) return std::nullopt;
    return p;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string encode(const jail_state& s) {
  return json{{"v", 1},
              {"slot", s.slot},
              {"init_pid", s.init_pid},
              {"init_start_time", s.init_start_time},
              {"host_if", s.host_if},
              {"guest_addr", s.guest_addr},
              {"network_profile", s.network_profile},
              {"cgroup_dirs", s.cgroup_dirs},
              {"scratch_baseline", s.scratch_baseline}}
      .dump();
}

std::optional<jail_state> decode_jail_state(const std::string& text) {
  try {
    auto j = json::parse(text);
    if (j.value("v", 0) != 1) return std::nullopt;
    jail_state s;
    j.at("slot").get_to(s.slot);
    j.at("init_pid").get_to(s.init_pid);
    j.at("init_start_time").get_to(s.init_start_time);
    j.at("host_if").get_to(s.host_if);
    j.at("guest_addr").get_to(s.guest_addr);
    j.at("network_profile").get_to(s.network_profile);
    j.at("cgroup_dirs").get_to(s.cgroup_dirs);
    s.scratch_baseline = j.value("scratch_baseline", uint64_t{0});
    return s;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string encode(const launch_result& r) {
  json j{{"ok", r.ok}, {"init_pid", r.init_pid}};
  if (!r.ok) {
    j["step"] = r.step;
    j["errno"] = r.err;
    j["detail"] = r.detail;
  }
  return j.dump();
}

std::optional<launch_result> decode_launch_result(const std::string& text) {
  try {
    auto j = json::parse(text);
    launch_result r;
    j.at("ok").get_to(r.ok);
    r.init_pid = j.value("init_pid", 0);
    r.step = j.value("step", "");
    r.err = j.value("errno", 0);
    r.detail = j.value("detail", "");
    if (r.ok && r.init_pid <= 1) return std::nullopt;
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

bool valid_sandbox_id(const std::string& id) {
  if (id.size() != 16) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> host_if_name(const std::string& id, const std::string& profile) {
  if (!valid_sandbox_id(id)) return std::nullopt;
  char p;
  if (profile == "default") p = 'd';
  else if (profile == "internet") p = 'i';
  else if (profile == "locked-down") p = 'l';
  else return std::nullopt;
  return std::string("wj") + p + id.substr(0, 12);
}

}  // namespace warren::vmm::jail
