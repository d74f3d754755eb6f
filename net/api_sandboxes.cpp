// net/api_sandboxes.cpp — create, list, get, destroy. Validation is strict (API.md ranges);
// features this node does not have answer 503 naming them instead of being ignored.
#include <chrono>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "net/api.hpp"
#include "net/json_body.hpp"
#include "net/egress/policy.hpp"
#include "net/egress/service.hpp"
#include "net/sandbox_view.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

const std::vector<field> create_fields = {
    {"image", json_kind::string},
    {"vcpus", json_kind::integer, false, 1, 64},
    {"mem_mib", json_kind::integer, false, 64, 65536},
    {"disk_mib", json_kind::integer, false, 64, 1048576},
    {"timeout", json_kind::integer, false, 1, 86400},
    {"sandbox_timeout", json_kind::integer, false, 1, 604800, {-1}},
    {"isolation", json_kind::string},
    {"network_profile", json_kind::string},
    {"allow", json_kind::string_array},
    {"deny", json_kind::string_array},
    {"env", json_kind::string_map},
    {"credentials", json_kind::object},
    {"mask_request_host", json_kind::nullable_string},
    {"auto_resume", json_kind::boolean},
    {"on_idle", json_kind::string},
    {"metadata", json_kind::object},
    {"public", json_kind::boolean},
};

bool valid_env_name(const std::string& k) {
  if (k.empty() || k.size() > 256 || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
    return false;
  return true;
}

// The egress rules as API.md states them: CIDRs or domain names, 256 at most per list.
std::optional<error> check_network(const std::string& profile, const std::vector<std::string>& allow,
                                   const std::vector<std::string>& deny) {
  if (profile != "default" && profile != "locked-down" && profile != "internet")
    return make_error(errc::bad_request, "field \"network_profile\" must be \"default\", \"locked-down\" or \"internet\"");
  if (auto a = egress::parse_rules(allow, "allow"); !a) return a.err();
  if (auto d = egress::parse_rules(deny, "deny"); !d) return d.err();
  return std::nullopt;
}

expected<storage::sandbox_record> record_from_body(const json& b, const auth::caller& who) {
  storage::sandbox_record r;
  r.tenant = who.tenant;
  r.image = b.value("image", std::string());
  r.vcpus = b.value("vcpus", 1);
  r.mem_mib = b.value("mem_mib", 1024);
  r.disk_mib = b.value("disk_mib", 10240);
  r.timeout = b.value("timeout", 30);
  r.sandbox_timeout = b.value("sandbox_timeout", 300);
  r.isolation = b.value("isolation", std::string("jail"));
  r.network_profile = b.value("network_profile", std::string("default"));
  r.allow = b.value("allow", std::vector<std::string>{});
  r.deny = b.value("deny", std::vector<std::string>{});
  r.env = b.value("env", std::map<std::string, std::string>{});
  r.auto_resume = b.value("auto_resume", true);
  r.on_idle = b.value("on_idle", std::string("destroy"));
  if (r.on_idle != "destroy" && r.on_idle != "hibernate")
    return make_error(errc::bad_request, "field \"on_idle\" must be \"destroy\" or \"hibernate\"");
  r.mask_request_host = b.contains("mask_request_host") ? b["mask_request_host"] : json(nullptr);
  r.metadata = b.value("metadata", json::object());
  if (r.isolation != "jail" && r.isolation != "microvm")
    return make_error(errc::bad_request, "field \"isolation\" must be \"jail\" or \"microvm\"");
  for (auto& [k, v] : r.env)
    if (!valid_env_name(k)) return make_error(errc::bad_request, "env name \"" + k + "\" is not valid");
  if (auto bad = check_network(r.network_profile, r.allow, r.deny)) return *bad;
  if (r.metadata.dump().size() > 16384)
    return make_error(errc::bad_request, "field \"metadata\" is larger than 16 KiB");
  return r;
}

// `credentials` (API.md Networking): each secret is sealed for the record, its env var gets a
// placeholder unique to this sandbox, and the env points TLS clients at the bundle that holds
// the node's egress CA (written into the sandbox at boot).
status add_credentials(storage::sandbox_record& r, const json& creds, const egress::service* svc) {
  if (creds.empty()) return ok();
  if (!svc) return make_error(errc::unavailable, "credentials need the node's egress proxy, which is not running");
  if (creds.size() > 64) return make_error(errc::bad_request, "field \"credentials\" has more than 64 entries");
  for (auto& [name, v] : creds.items()) {
    if (!valid_env_name(name)) return make_error(errc::bad_request, "credential name \"" + name + "\" is not an env name");
    storage::credential_record c;
    c.name = name;
    std::string secret;
    if (v.is_string()) {
      secret = v.get<std::string>();
      c.hosts = egress::well_known_hosts(name);
      if (c.hosts.empty())
        return make_error(errc::bad_request, "credential \"" + name + "\" is not a well-known name; give "
                                             "{\"value\": \"…\", \"hosts\": [\"api.example.com\"]}");
    } else if (v.is_object() && v.contains("value") && v["value"].is_string() && v.contains("hosts") &&
               v["hosts"].is_array() && v.size() == 2) {
      secret = v["value"].get<std::string>();
      for (auto& h : v["hosts"]) {
        if (!h.is_string()) return make_error(errc::bad_request, "credential \"" + name + "\": hosts must be names");
        auto d = egress::parse_rules({h.get<std::string>()}, "hosts");
        if (!d || d->domains.empty())
          return make_error(errc::bad_request, "credential \"" + name + "\": \"" + h.get<std::string>() +
                                                   "\" is not a host name (api.example.com or *.example.com)");
        c.hosts.push_back(d->domains.front().str());
      }
      if (c.hosts.empty()) return make_error(errc::bad_request, "credential \"" + name + "\" has no hosts");
    } else {
      return make_error(errc::bad_request, "credential \"" + name + "\" must be a string or {\"value\", \"hosts\"}");
    }
    if (secret.empty() || secret.size() > 8192 || secret.find_first_of("\r\n") != std::string::npos)
      return make_error(errc::bad_request, "credential \"" + name + "\" must be 1..8192 bytes without line breaks");
    c.placeholder = "warren-placeholder-" + random_hex(16);
    c.sealed = svc->seal(secret);
    r.env[name] = c.placeholder;
    r.credentials.push_back(std::move(c));
  }
  const std::string bundle = "/etc/ssl/certs/ca-certificates.crt";
  for (auto& [k, v] : std::map<std::string, std::string>{{"SSL_CERT_FILE", bundle},
                                                         {"REQUESTS_CA_BUNDLE", bundle},
                                                         {"CURL_CA_BUNDLE", bundle},
                                                         {"NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/warren-egress-ca.pem"}})
    r.env.emplace(k, v);  // the caller's own choice stays
  return ok();
}

}  // namespace

// PATCH /v1/sandboxes/{id}/network: validated here, applied by the sandbox actor (firewall,
// then the egress services) before the reply.
void api::patch_network(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  static const std::vector<field> fields = {{"network_profile", json_kind::string},
                                            {"allow", json_kind::string_array},
                                            {"deny", json_kind::string_array}};
  auto body = parse_body(c.req().body, fields);
  if (!body) return c.ex->respond(error_response(body.err()));
  if (body->empty())
    return c.ex->respond(error_response(make_error(errc::bad_request, "give network_profile, allow or deny")));
  auto bad = check_network(body->value("network_profile", std::string("default")),
                           body->value("allow", std::vector<std::string>{}), body->value("deny", std::vector<std::string>{}));
  if (bad) return c.ex->respond(error_response(*bad));
  node_->set_network(id, principal(c), body->dump(), reply_sandbox(c.ex, 200));
}

// Replies with the rendered record, or the error.
actors::reply_fn<std::string> api::reply_sandbox(exchange_ptr ex, int status) {
  return [ex, status](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    auto rec = storage::decode<storage::sandbox_record>(*r);
    if (!rec) return ex->respond(error_response(rec.err()));
    ex->respond(json_response(status, sandbox_view(*rec).dump()));
  };
}

// The create. public: false mints the sandbox's traffic token (shown only in this reply; its
// hash is kept). With [images] auto_pull, a node that lacks the image pulls it first and creates
// again; the pull's time is in the reply's Server-Timing header (pull;dur=<ms>).
void api::create_record(const context& c, storage::sandbox_record rec, bool is_public) {
  auto ex = c.ex;
  auto node = node_;
  auto data_dir = opts_.data_dir;
  std::string token;
  if (!is_public) {
    token = random_hex(24);
    rec.traffic_token_sha256 = actors::sha256_hex(token);
  }
  auto finish = [ex, token](std::string server_timing) {
    return [ex, token, server_timing](expected<std::string> r) {
      if (!r) return ex->respond(error_response(r.err()));
      auto made = storage::decode<storage::sandbox_record>(*r);
      if (!made) return ex->respond(error_response(made.err()));
      auto j = sandbox_view(*made);
      if (!token.empty()) j["traffic_token"] = token;
      auto resp = json_response(201, j.dump());
      if (!server_timing.empty()) resp.headers.emplace_back("Server-Timing", server_timing);
      ex->respond(std::move(resp));
    };
  };
  auto encoded = storage::encode(rec);
  bool auto_pull = opts_.auto_pull;
  node->create_sandbox(encoded, [ex, node, data_dir, encoded, image = rec.image, finish, auto_pull](expected<std::string> r) {
    if (r || !auto_pull || r.err().code != errc::not_found || r.err().message.find("unknown image") == std::string::npos)
      return finish("")(std::move(r));
    auto t0 = std::chrono::steady_clock::now();
    pull_async(data_dir, image, {}, [ex, node, encoded, finish, t0](expected<std::string> pulled) {
      if (!pulled) return ex->respond(error_response(pulled.err()));
      auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      node->create_sandbox(encoded, finish("pull;dur=" + std::to_string(static_cast<int64_t>(ms))));
    });
  });
}

bool api::check_sandbox_id(const context& c, std::string& id) {
  id = c.route.params.at("id");
  if (is_sandbox_id(id)) return true;
  // Malformed ids cannot exist: same answer as an unknown one (nothing to probe).
  c.ex->respond(error_response(make_error(errc::not_found, "no sandbox with id " + id)));
  return false;
}

void api::create_sandbox(const context& c) {
  auto body = parse_body(c.req().body, create_fields);
  if (!body) return c.ex->respond(error_response(body.err()));
  auto rec = record_from_body(*body, c.who);
  if (!rec) return c.ex->respond(error_response(rec.err()));
  if (body->contains("credentials"))
    if (auto st = add_credentials(*rec, (*body)["credentials"], opts_.egress.get()); !st)
      return c.ex->respond(error_response(st.err()));
  if (rec->image.empty()) rec->image = opts_.default_image;
  create_record(c, std::move(*rec), body->value("public", true));
}
void api::list_sandboxes(const context& c) {
  auto ex = c.ex;
  node_->list_sandboxes(principal(c), [ex](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    ex->respond(json_response(200, json{{"sandboxes", sandbox_views(*r)}}.dump()));
  });
}

// One sandbox, with what its egress was refused lately (network.refused) while it runs and once
// something was refused (a sandbox with no refusal keeps API.md's exact object).
void api::get_sandbox(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto ex = c.ex;
  auto node = node_;
  auto who = principal(c);
  node->get_sandbox(id, who, [ex, node, id, who](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    auto rec = storage::decode<storage::sandbox_record>(*r);
    if (!rec) return ex->respond(error_response(rec.err()));
    auto view = sandbox_view(*rec);
    if (rec->state != "running") return ex->respond(json_response(200, view.dump()));
    node->refusals(id, who, [ex, view](expected<std::string> refused) mutable {
      auto j = refused ? json::parse(*refused, nullptr, false) : json();
      if (j.is_object() && j.value("count", 0) > 0)
        view["network"] = {{"refused", j.value("recent", json::array())}, {"refused_total", j.value("count", 0)}};
      ex->respond(json_response(200, view.dump()));
    });
  });
}

void api::destroy_sandbox(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto ex = c.ex;
  node_->destroy_sandbox(id, principal(c), [ex](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    ex->respond(json_response(200, *r));
  });
}

}  // namespace warren::net
