// storage/records.cpp — JSON encode/decode of stored records. Decode validates every field's
// type so a damaged record is reported (and skipped by callers), never half-read.
#include "storage/records.hpp"

namespace warren::storage {
namespace {

constexpr int record_version = 1;

using json = nlohmann::json;

template <class T>
expected<T> guarded(std::string_view bytes, const char* kind, T (*fill)(const json&)) {
  try {
    auto j = json::parse(bytes);
    if (!j.is_object() || j.value("v", 0) != record_version)
      return make_error(errc::internal, std::string(kind) + " record has an unknown version");
    return fill(j);
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string(kind) + " record is damaged: " + e.what());
  }
}

json credentials_json(const std::vector<credential_record>& cs) {
  json out = json::array();
  for (auto& c : cs)
    out.push_back({{"name", c.name}, {"hosts", c.hosts}, {"placeholder", c.placeholder}, {"sealed", c.sealed}});
  return out;
}

std::vector<credential_record> credentials_of(const json& j) {
  std::vector<credential_record> out;
  if (j.contains("credentials"))  // absent before credentials existed
    for (auto& c : j.at("credentials"))
      out.push_back({c.at("name").get<std::string>(), c.at("hosts").get<std::vector<std::string>>(),
                     c.at("placeholder").get<std::string>(), c.at("sealed").get<std::string>()});
  return out;
}

}  // namespace

template <>
std::string encode(const sandbox_record& r) {
  json j = {{"v", record_version},
            {"id", r.id},
            {"tenant", r.tenant},
            {"image", r.image},
            {"state", r.state},
            {"isolation", r.isolation},
            {"node", r.node},
            {"vcpus", r.vcpus},
            {"mem_mib", r.mem_mib},
            {"disk_mib", r.disk_mib},
            {"timeout", r.timeout},
            {"sandbox_timeout", r.sandbox_timeout},
            {"network_profile", r.network_profile},
            {"allow", r.allow},
            {"deny", r.deny},
            {"env", r.env},
            {"auto_resume", r.auto_resume},
            {"on_idle", r.on_idle},
            {"hibernated_at", r.hibernated_at},
            {"end_at", r.end_at},
            {"traffic_token_sha256", r.traffic_token_sha256},
            {"mask_request_host", r.mask_request_host},
            {"metadata", r.metadata},
            {"created_at", r.created_at},
            {"create_ms", r.create_ms},
            {"parent_id", r.parent_id},
            {"agent_socket", r.agent_socket},
            {"driver_state", r.driver_state}};
  json exps = json::array();
  for (auto& e : r.exposures)
    exps.push_back({{"port", e.port}, {"auth", e.auth}, {"token_sha256", e.token_sha256}, {"created_at", e.created_at}});
  j["exposures"] = std::move(exps);
  j["credentials"] = credentials_json(r.credentials);
  return j.dump();
}

template <>
expected<sandbox_record> decode(std::string_view bytes) {
  return guarded<sandbox_record>(bytes, "sandbox", [](const json& j) {
    sandbox_record r;
    r.id = j.at("id").get<std::string>();
    r.tenant = j.at("tenant").get<std::string>();
    r.image = j.at("image").get<std::string>();
    r.state = j.at("state").get<std::string>();
    r.isolation = j.at("isolation").get<std::string>();
    r.node = j.at("node").get<std::string>();
    r.vcpus = j.at("vcpus").get<int>();
    r.mem_mib = j.at("mem_mib").get<int>();
    r.disk_mib = j.at("disk_mib").get<int>();
    r.timeout = j.at("timeout").get<int>();
    r.sandbox_timeout = j.at("sandbox_timeout").get<int>();
    r.network_profile = j.at("network_profile").get<std::string>();
    r.allow = j.at("allow").get<std::vector<std::string>>();
    r.deny = j.at("deny").get<std::vector<std::string>>();
    r.env = j.at("env").get<std::map<std::string, std::string>>();
    r.auto_resume = j.at("auto_resume").get<bool>();
    r.on_idle = j.value("on_idle", std::string("destroy"));  // absent before hibernate existed
    r.hibernated_at = j.value("hibernated_at", std::string());
    r.end_at = j.value("end_at", std::string());
    r.traffic_token_sha256 = j.value("traffic_token_sha256", std::string());
    r.mask_request_host = j.at("mask_request_host");
    r.metadata = j.at("metadata");
    r.created_at = j.at("created_at").get<std::string>();
    r.create_ms = j.at("create_ms").get<double>();
    r.parent_id = j.at("parent_id").get<std::string>();
    r.agent_socket = j.at("agent_socket").get<std::string>();
    r.driver_state = j.at("driver_state").get<std::string>();
    r.credentials = credentials_of(j);
    if (j.contains("exposures"))
      for (auto& e : j.at("exposures"))
        r.exposures.push_back({e.at("port").get<uint16_t>(), e.at("auth").get<bool>(),
                               e.at("token_sha256").get<std::string>(), e.at("created_at").get<std::string>()});
    return r;
  });
}

template <>
std::string encode(const snapshot_record& r) {
  json j = {{"v", record_version}, {"id", r.id}, {"tenant", r.tenant}, {"sandbox_id", r.sandbox_id},
            {"name", r.name}, {"created_at", r.created_at}, {"size_bytes", r.size_bytes}, {"node", r.node},
            {"image", r.image}, {"isolation", r.isolation}, {"vcpus", r.vcpus}, {"mem_mib", r.mem_mib},
            {"disk_mib", r.disk_mib}, {"timeout", r.timeout}, {"sandbox_timeout", r.sandbox_timeout},
            {"network_profile", r.network_profile}, {"env", r.env}, {"dir", r.dir},
            {"driver_meta", r.driver_meta}, {"allow", r.allow}, {"deny", r.deny},
            {"credentials", credentials_json(r.credentials)}};
  return j.dump();
}

template <>
expected<snapshot_record> decode(std::string_view bytes) {
  return guarded<snapshot_record>(bytes, "snapshot", [](const json& j) {
    snapshot_record r;
    r.id = j.at("id").get<std::string>();
    r.tenant = j.at("tenant").get<std::string>();
    r.sandbox_id = j.at("sandbox_id").get<std::string>();
    r.name = j.at("name").get<std::string>();
    r.created_at = j.at("created_at").get<std::string>();
    r.size_bytes = j.at("size_bytes").get<uint64_t>();
    r.node = j.at("node").get<std::string>();
    r.image = j.at("image").get<std::string>();
    r.isolation = j.at("isolation").get<std::string>();
    r.vcpus = j.at("vcpus").get<int>();
    r.mem_mib = j.at("mem_mib").get<int>();
    r.disk_mib = j.at("disk_mib").get<int>();
    r.timeout = j.at("timeout").get<int>();
    r.sandbox_timeout = j.at("sandbox_timeout").get<int>();
    r.network_profile = j.at("network_profile").get<std::string>();
    r.allow = j.value("allow", std::vector<std::string>{});
    r.deny = j.value("deny", std::vector<std::string>{});
    r.credentials = credentials_of(j);
    r.env = j.at("env").get<std::map<std::string, std::string>>();
    r.dir = j.at("dir").get<std::string>();
    r.driver_meta = j.at("driver_meta").get<std::string>();
    return r;
  });
}

template <>
std::string encode(const key_record& r) {
  json j = {{"v", record_version},          {"key_id", r.key_id},
            {"tenant", r.tenant},           {"admin", r.admin},
            {"created_at", r.created_at},   {"revoked", r.revoked},
            {"revoked_at", r.revoked_at}};
  return j.dump();
}

template <>
expected<key_record> decode(std::string_view bytes) {
  return guarded<key_record>(bytes, "key", [](const json& j) {
    key_record r;
    r.key_id = j.at("key_id").get<std::string>();
    r.tenant = j.at("tenant").get<std::string>();
    r.admin = j.at("admin").get<bool>();
    r.created_at = j.at("created_at").get<std::string>();
    r.revoked = j.at("revoked").get<bool>();
    r.revoked_at = j.at("revoked_at").get<std::string>();
    return r;
  });
}

template <>
std::string encode(const node_record& r) {
  json j = {{"v", record_version}, {"id", r.id}, {"address", r.address},
            {"started_at", r.started_at}};
  return j.dump();
}

template <>
expected<node_record> decode(std::string_view bytes) {
  return guarded<node_record>(bytes, "node", [](const json& j) {
    node_record r;
    r.id = j.at("id").get<std::string>();
    r.address = j.at("address").get<std::string>();
    r.started_at = j.at("started_at").get<std::string>();
    return r;
  });
}

}  // namespace warren::storage
