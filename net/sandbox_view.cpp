// net/sandbox_view.cpp — record → API JSON.
#include "net/sandbox_view.hpp"

namespace warren::net {

nlohmann::json sandbox_view(const storage::sandbox_record& r) {
  nlohmann::json j = {{"id", r.id},
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
          {"created_at", r.created_at},
          {"create_ms", r.create_ms},
          {"parent_id", r.parent_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.parent_id)},
          {"metadata", r.metadata}};
  // The egress policy only when there is one: a sandbox without keeps API.md's exact object.
  if (!r.allow.empty()) j["allow"] = r.allow;
  if (!r.deny.empty()) j["deny"] = r.deny;
  if (!r.credentials.empty()) {
    // By name and bound hosts only: neither the secret nor its placeholder.
    auto& creds = j["credentials"] = nlohmann::json::object();
    for (auto& c : r.credentials) creds[c.name] = {{"hosts", c.hosts}};
  }
  return j;
}

nlohmann::json sandbox_views(const std::string& encoded_records) {
  nlohmann::json out = nlohmann::json::array();
  for (auto& raw : nlohmann::json::parse(encoded_records))
    if (auto rec = storage::decode<storage::sandbox_record>(raw.get<std::string>())) out.push_back(sandbox_view(*rec));
  return out;
}

}  // namespace warren::net
