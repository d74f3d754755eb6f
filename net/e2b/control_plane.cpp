// net/e2b/control_plane.cpp — E2B's REST API (the shapes SDK 2.51.0 sends and reads) on the
// node's sandbox calls: create, connect (resume), get, list (paged), kill, timeout, pause,
// metrics. Timeouts are E2B's: a lifetime from now (end_at), not an idle timeout.
#include <algorithm>
#include <chrono>

#include "actors/port_table.hpp"
#include "core/ids.hpp"
#include "net/e2b/envd.hpp"
#include "net/egress/policy.hpp"
#include "net/json_body.hpp"
#include "net/router.hpp"
#include "storage/records.hpp"

namespace warren::net::e2b {

using json = nlohmann::json;

namespace {

constexpr int default_timeout_s = 15;       // E2B's default when the body has none
constexpr int max_timeout_s = 24 * 3600;    // E2B's longest lifetime

void rest_error(const exchange_ptr& ex, int status, const std::string& message) {
  http_response r;
  r.status = status;
  r.body = json{{"code", status}, {"message", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
  ex->respond(std::move(r));
}
void rest_error(const exchange_ptr& ex, const error& e) { rest_error(ex, http_status(e.code), e.message); }

void no_content(const exchange_ptr& ex) {
  http_response r;
  r.status = 204;
  r.content_type.clear();
  ex->respond(std::move(r));
}

void reply(const exchange_ptr& ex, int status, const json& j) {
  http_response r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  ex->respond(std::move(r));
}

std::string end_at_in(int seconds) {
  return rfc3339_from_ns(now_ns_since_epoch() + int64_t{seconds} * 1'000'000'000);
}

// "base" → "base", "python:3.12" → itself: E2B template ids are Warren image names.
std::string template_of(const storage::sandbox_record& r) {
  auto t = r.image;
  if (t.size() > 7 && t.compare(t.size() - 7, 7, ":latest") == 0) t.resize(t.size() - 7);
  return t;
}

std::map<std::string, std::string> string_metadata(const json& m) {
  std::map<std::string, std::string> out;
  if (m.is_object())
    for (auto& [k, v] : m.items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return out;
}

// The end of its life as E2B shows it: end_at, else (a sandbox made by Warren's own API) the
// earliest its idle timeout could end it.
std::string end_of(const storage::sandbox_record& r) {
  if (!r.end_at.empty()) return r.end_at;
  auto created = ns_from_rfc3339(r.created_at);
  if (created < 0) return r.created_at;
  return rfc3339_from_ns(created + int64_t{std::max(r.sandbox_timeout, 0)} * 1'000'000'000);
}

// The create/connect reply (models.Sandbox).
json sandbox_json(const state_ptr& st, const storage::sandbox_record& r) {
  return {{"sandboxID", r.id},
          {"templateID", template_of(r)},
          {"clientID", r.node},
          {"envdVersion", envd_version},
          {"envdAccessToken", st->access_token(r.id)},
          {"trafficAccessToken", nullptr},
          {"domain", st->proxy->urls().domain}};
}

// GET /sandboxes/{id} and list items (models.SandboxDetail / ListedSandbox).
json detail_json(const state_ptr& st, const storage::sandbox_record& r) {
  return {{"sandboxID", r.id},
          {"templateID", template_of(r)},
          {"clientID", r.node},
          {"startedAt", r.created_at},
          {"endAt", end_of(r)},
          {"cpuCount", r.vcpus},
          {"memoryMB", r.mem_mib},
          {"diskSizeMB", r.disk_mib},
          {"metadata", string_metadata(r.metadata)},
          {"state", r.state == "hibernated" ? "paused" : "running"},
          {"envdVersion", envd_version},
          {"envdAccessToken", st->access_token(r.id)},
          {"allowInternetAccess", r.network_profile != "locked-down"},
          {"domain", st->proxy->urls().domain}};
}

// Decodes a record reply, or answers the error (404 keeps E2B's wording).
std::optional<storage::sandbox_record> record_or_error(const exchange_ptr& ex, const expected<std::string>& r) {
  if (!r) {
    rest_error(ex, r.err());
    return std::nullopt;
  }
  auto rec = storage::decode<storage::sandbox_record>(*r);
  if (!rec) {
    rest_error(ex, rec.err());
    return std::nullopt;
  }
  // Warren remembers destroyed sandboxes; for E2B a killed or timed-out sandbox is not found.
  if (rec->state == "destroyed" || rec->state == "destroying") {
    rest_error(ex, 404, "sandbox " + rec->id + " not found (it was killed or its timeout ended it)");
    return std::nullopt;
  }
  return *rec;
}

struct ctx {
  state_ptr st;
  exchange_ptr ex;
  auth::caller who;
  std::map<std::string, std::string> params;
  actors::principal principal() const { return {who.tenant, who.admin}; }
  const http_request& req() const { return ex->request(); }
  std::string id() const { return params.at("id"); }
};

std::optional<json> body_json(const ctx& c) {
  const auto& b = c.req().body;
  if (b.empty()) return json::object();
  auto j = json::parse(b, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    rest_error(c.ex, 400, "the body is not a JSON object");
    return std::nullopt;
  }
  return j;
}

// timeout (seconds) of a body: absent → fallback; else 1..86400.
std::optional<int> timeout_of(const ctx& c, const json& b, std::optional<int> fallback) {
  if (!b.contains("timeout") || b["timeout"].is_null()) {
    if (fallback) return fallback;
    return 0;
  }
  if (!b["timeout"].is_number_integer() || b["timeout"].get<int64_t>() < 0 || b["timeout"].get<int64_t>() > max_timeout_s) {
    rest_error(c.ex, 400, "timeout must be whole seconds from 0 to " + std::to_string(max_timeout_s));
    return std::nullopt;
  }
  return b["timeout"].get<int>();
}

void create(const ctx& c) {
  auto b = body_json(c);
  if (!b) return;
  storage::sandbox_record r;
  r.tenant = c.who.tenant;
  auto tmpl = b->value("templateID", c.st->opts.default_template);
  if (!b->contains("templateID") || !(*b)["templateID"].is_string() || tmpl.empty()) tmpl = c.st->opts.default_template;
  r.image = tmpl.find(':') == std::string::npos && tmpl.find('@') == std::string::npos ? tmpl + ":latest" : tmpl;
  auto t = timeout_of(c, *b, default_timeout_s);
  if (!t) return;
  r.sandbox_timeout = -1;  // E2B's timeout is a lifetime, not idleness
  r.end_at = end_at_in(*t);
  r.on_idle = b->value("autoPause", false) ? "hibernate" : "destroy";
  if (b->contains("metadata") && !(*b)["metadata"].is_null()) {
    if (!(*b)["metadata"].is_object()) return rest_error(c.ex, 400, "metadata must be an object of strings");
    for (auto& [k, v] : (*b)["metadata"].items())
      if (!v.is_string()) return rest_error(c.ex, 400, "metadata values must be strings");
    r.metadata = (*b)["metadata"];
  }
  if (b->contains("envVars") && !(*b)["envVars"].is_null()) {
    if (!(*b)["envVars"].is_object()) return rest_error(c.ex, 400, "envVars must be an object of strings");
    for (auto& [k, v] : (*b)["envVars"].items()) {
      if (!v.is_string() || k.empty() || k.find('=') != std::string::npos)
        return rest_error(c.ex, 400, "envVars must map names to strings");
      r.env[k] = v.get<std::string>();
    }
  }
  if (b->value("allow_internet_access", true) == false) r.network_profile = "locked-down";
  if (b->contains("network") && (*b)["network"].is_object()) {
    auto& n = (*b)["network"];
    for (auto* f : {"rules", "egressProxy"})
      if (n.contains(f) && !n[f].is_null() && !n[f].empty())
        return rest_error(c.ex, 501, std::string("network.") + f + " is not implemented on this Warren node");
    std::vector<std::string> allow_out, deny_out;
    for (auto [f, out] : {std::pair{"allowOut", &allow_out}, std::pair{"denyOut", &deny_out}}) {
      if (!n.contains(f) || n[f].is_null()) continue;
      if (!n[f].is_array()) return rest_error(c.ex, 400, std::string("network.") + f + " must be a list of strings");
      for (auto& v : n[f]) {
        if (!v.is_string()) return rest_error(c.ex, 400, std::string("network.") + f + " must be a list of strings");
        out->push_back(v.get<std::string>());
      }
    }
    // E2B's lists (allowOut wins over denyOut; domains only in allowOut) as Warren's (deny wins):
    // denyOut with ALL_TRAFFIC (0.0.0.0/0) plus allowOut is an allow list; denyOut without it is
    // a deny list (an allowOut entry inside it is no exception here, see the E2B guide).
    bool all = std::find(deny_out.begin(), deny_out.end(), "0.0.0.0/0") != deny_out.end();
    if (all) {
      r.allow = allow_out;
      if (allow_out.empty()) r.network_profile = "locked-down";
    } else {
      r.deny = deny_out;
    }
    for (auto [list, name] : {std::pair{&r.allow, "allowOut"}, std::pair{&r.deny, "denyOut"}})
      if (auto ok = egress::parse_rules(*list, name); !ok) return rest_error(c.ex, 400, "network." + ok.err().message);
  }
  // allowPublicTraffic: false — every port demands the sandbox's traffic token (Warren's
  // public: false), sent by E2B clients as e2b-traffic-access-token.
  std::string traffic_token;
  if (b->contains("network") && (*b)["network"].is_object() && (*b)["network"].value("allowPublicTraffic", true) == false) {
    traffic_token = random_hex(24);
    r.traffic_token_sha256 = actors::sha256_hex(traffic_token);
  }
  if (b->contains("volumeMounts") && !(*b)["volumeMounts"].empty())
    return rest_error(c.ex, 501, "volumes are not implemented on this Warren node");
  if (b->contains("mcp") && !(*b)["mcp"].is_null())
    return rest_error(c.ex, 501, "the MCP gateway is not part of Warren's images");
  if (b->contains("autoResume") && (*b)["autoResume"].is_object()) r.auto_resume = (*b)["autoResume"].value("enabled", false);
  auto st = c.st;
  auto ex = c.ex;
  st->node->create_sandbox(storage::encode(r), [st, ex, traffic_token](expected<std::string> res) {
    if (!res && res.err().code == errc::not_found)  // an unknown template (E2B's wording)
      return rest_error(ex, 404, "template not found: " + res.err().message);
    auto rec = record_or_error(ex, res);
    if (!rec) return;
    auto j = sandbox_json(st, *rec);
    if (!traffic_token.empty()) j["trafficAccessToken"] = traffic_token;
    reply(ex, 201, j);
  });
}

void get(const ctx& c) {
  auto st = c.st;
  auto ex = c.ex;
  st->node->get_sandbox(c.id(), c.principal(), [st, ex](expected<std::string> res) {
    auto rec = record_or_error(ex, res);
    if (rec) reply(ex, 200, detail_json(st, *rec));
  });
}

void kill(const ctx& c) {
  auto st = c.st;
  auto ex = c.ex;
  auto id = c.id();
  st->node->destroy_sandbox(id, c.principal(), [st, ex, id](expected<std::string> res) {
    if (!res) return rest_error(ex, res.err());
    forget_sandbox(st, id);
    no_content(ex);
  });
}

void set_timeout(const ctx& c) {
  auto b = body_json(c);
  if (!b) return;
  if (!b->contains("timeout")) return rest_error(c.ex, 400, "timeout is required");
  auto t = timeout_of(c, *b, std::nullopt);
  if (!t) return;
  auto ex = c.ex;
  c.st->node->set_deadline(c.id(), c.principal(), end_at_in(*t), [ex](expected<std::string> res) {
    if (!res) return rest_error(ex, res.err());
    no_content(ex);
  });
}

void pause(const ctx& c) {
  auto ex = c.ex;
  c.st->node->hibernate(c.id(), c.principal(), [ex](expected<std::string> res) {
    if (!res) return rest_error(ex, res.err());  // already paused: 409, as E2B answers
    no_content(ex);
  });
}

// POST /v2/sandboxes/{id}/connect (and /sandboxes/{id}/resume): resumes a paused sandbox, sets
// its lifetime when a timeout is given; 201 when it was resumed, 200 when it was running.
void connect(const ctx& c, bool legacy_resume) {
  auto b = body_json(c);
  if (!b) return;
  auto t = timeout_of(c, *b, std::nullopt);
  if (!t) return;
  auto st = c.st;
  auto ex = c.ex;
  auto id = c.id();
  auto who = c.principal();
  int timeout = *t;
  st->node->get_sandbox(id, who, [st, ex, id, who, timeout, legacy_resume](expected<std::string> res) {
    auto rec = record_or_error(ex, res);
    if (!rec) return;
    bool paused = rec->state == "hibernated";
    if (legacy_resume && !paused) return rest_error(ex, 409, "sandbox " + id + " is not paused");
    // A resumed sandbox gets a new lifetime: the one asked for, else E2B's default (its old end
    // has passed when the end paused it).
    int t = timeout > 0 ? timeout : paused ? default_timeout_s : 0;
    auto finish = [st, ex, id, who, timeout = t](int status) {
      if (timeout <= 0) {
        return st->node->get_sandbox(id, who, [st, ex, status](expected<std::string> r) {
          if (auto rec = record_or_error(ex, r)) reply(ex, status, sandbox_json(st, *rec));
        });
      }
      st->node->set_deadline(id, who, end_at_in(timeout), [st, ex, status](expected<std::string> r) {
        if (auto rec = record_or_error(ex, r)) reply(ex, status, sandbox_json(st, *rec));
      });
    };
    if (!paused) return finish(200);
    st->node->resume(id, who, [ex, finish](expected<std::string> r) {
      if (!r) return rest_error(ex, r.err());
      finish(201);
    });
  });
}

// metadata=k%3Dv%26k2%3Dv2 (the SDK URL-encodes a query string into one parameter).
std::map<std::string, std::string> metadata_filter(const http_request& r) {
  std::map<std::string, std::string> out;
  auto it = r.query.find("metadata");
  if (it == r.query.end()) return out;
  std::string q = it->second;
  size_t pos = 0;
  while (pos <= q.size()) {
    auto amp = q.find('&', pos);
    auto pair = q.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (auto eq = pair.find('='); eq != std::string::npos) {
      std::string k, v;
      percent_decode(pair.substr(0, eq), k, true);
      percent_decode(pair.substr(eq + 1), v, true);
      out[k] = v;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

// GET /v2/sandboxes (paged: limit, nextToken → x-next-token) and GET /sandboxes (running only).
void list(const ctx& c, bool v2) {
  const auto& q = c.req().query;
  std::vector<std::string> states = {"running", "paused"};
  if (!v2) states = {"running"};
  if (auto it = q.find("state"); v2 && it != q.end() && !it->second.empty()) {
    states.clear();
    std::string s = it->second;
    size_t pos = 0;
    while (pos <= s.size()) {
      auto comma = s.find(',', pos);
      auto one = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (one != "running" && one != "paused") return rest_error(c.ex, 400, "state must be running or paused");
      states.push_back(one);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  size_t limit = 100;
  if (auto it = q.find("limit"); it != q.end()) {
    char* end = nullptr;
    auto n = std::strtoul(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end || n < 1 || n > 100) return rest_error(c.ex, 400, "limit must be 1..100");
    limit = n;
  }
  std::string after = q.count("nextToken") ? q.at("nextToken") : "";
  auto meta = metadata_filter(c.req());
  auto st = c.st;
  auto ex = c.ex;
  st->node->list_sandboxes(c.principal(), [st, ex, states, limit, after, meta, v2](expected<std::string> res) {
    if (!res) return rest_error(ex, res.err());
    std::vector<storage::sandbox_record> recs;
    for (auto& raw : json::parse(*res)) {
      auto rec = storage::decode<storage::sandbox_record>(raw.get<std::string>());
      if (!rec || (rec->state != "running" && rec->state != "hibernated")) continue;
      std::string s = rec->state == "hibernated" ? "paused" : "running";
      if (std::find(states.begin(), states.end(), s) == states.end()) continue;
      auto m = string_metadata(rec->metadata);
      bool match = true;
      for (auto& [k, v] : meta)
        if (!m.count(k) || m[k] != v) match = false;
      if (match) recs.push_back(std::move(*rec));
    }
    // Newest first, the id breaking ties: a stable order for the page token (the last id).
    std::sort(recs.begin(), recs.end(), [](auto& a, auto& b) {
      return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
    });
    size_t start = 0;
    if (!after.empty()) {
      auto it = std::find_if(recs.begin(), recs.end(), [&](auto& r) { return r.id == after; });
      if (it == recs.end()) return rest_error(ex, 400, "nextToken is not a token of this listing");
      start = static_cast<size_t>(it - recs.begin()) + 1;
    }
    json out = json::array();
    size_t i = start;
    for (; i < recs.size() && (!v2 || out.size() < limit); ++i) out.push_back(detail_json(st, recs[i]));
    http_response r;
    r.body = out.dump(-1, ' ', false, json::error_handler_t::replace);
    if (v2 && i < recs.size()) r.headers.emplace_back("x-next-token", recs[i - 1].id);
    ex->respond(std::move(r));
  });
}

void metrics(const ctx& c) {
  auto ex = c.ex;
  auto st = c.st;
  auto id = c.id();
  auto who = c.principal();
  st->node->get_sandbox(id, who, [st, ex, id, who](expected<std::string> r) {
    auto rec = record_or_error(ex, r);
    if (!rec) return;
    auto started = ns_from_rfc3339(rec->created_at);
    st->node->sandbox_usage(id, who, [ex, started](expected<std::string> res) {
      if (!res) return rest_error(ex, res.err());
      auto u = json::parse(*res);
      // One sample, measured now (cgroup accounting; Warren keeps no history). cpuUsedPct is
      // the average since the sandbox started: CPU time over wall time times its vCPUs.
      auto now = now_ns_since_epoch();
      int vcpus = u.value("vcpus", 1);
      double wall = started > 0 && now > started ? double(now - started) : 0;
      double pct = wall > 0 ? 100.0 * double(u.value("cpu_ns", uint64_t{0})) / (wall * vcpus) : 0;
      json m = {{"timestamp", now_rfc3339()},
                {"timestampUnix", now / 1'000'000'000},
                {"cpuCount", vcpus},
                {"cpuUsedPct", std::min(pct, 100.0)},
                {"memUsed", u.value("mem_bytes", uint64_t{0})},
                {"memTotal", uint64_t(u.value("mem_mib", 0)) * 1024 * 1024},
                {"diskUsed", u.value("disk_used_bytes", uint64_t{0})},
                {"diskTotal", uint64_t(u.value("disk_mib", 0)) * 1024 * 1024}};
      reply(ex, 200, json::array({m}));
    });
  });
}

void not_built(const ctx& c, const std::string& what) { rest_error(c.ex, 501, what + " is not implemented on this Warren node"); }

}  // namespace

void serve_control(const state_ptr& st, const exchange_ptr& ex, const auth::caller& who) {
  enum h { h_create, h_list2, h_list, h_get, h_kill, h_timeout, h_pause, h_connect, h_resume, h_metrics,
           h_network, h_fork, h_snapshot, h_refresh };
  static const router r = [] {
    router r;
    r.add("POST", "/v2/sandboxes", h_create);
    r.add("POST", "/sandboxes", h_create);
    r.add("GET", "/v2/sandboxes", h_list2);
    r.add("GET", "/sandboxes", h_list);
    r.add("GET", "/sandboxes/{id}", h_get);
    r.add("DELETE", "/sandboxes/{id}", h_kill);
    r.add("POST", "/sandboxes/{id}/timeout", h_timeout);
    r.add("POST", "/sandboxes/{id}/pause", h_pause);
    r.add("POST", "/v2/sandboxes/{id}/connect", h_connect);
    r.add("POST", "/sandboxes/{id}/connect", h_connect);
    r.add("POST", "/sandboxes/{id}/resume", h_resume);
    r.add("GET", "/sandboxes/{id}/metrics", h_metrics);
    r.add("PUT", "/sandboxes/{id}/network", h_network);
    r.add("POST", "/sandboxes/{id}/fork", h_fork);
    r.add("POST", "/sandboxes/{id}/snapshots", h_snapshot);
    r.add("POST", "/sandboxes/{id}/refreshes", h_refresh);
    return r;
  }();
  const auto& req = ex->request();
  auto m = r.match(req.method, req.path);
  if (auto* miss = std::get_if<route_miss>(&m)) {
    (void)miss;
    return rest_error(ex, 404, "no route for " + req.method + " " + req.path);
  }
  auto& rm = std::get<route_match>(m);
  ctx c{st, ex, who, rm.params};
  if (c.params.count("id") && !is_sandbox_id(c.params["id"]))
    return rest_error(ex, 404, "sandbox " + c.params["id"] + " not found");
  ex->read_body(1 << 20, [c, h = rm.handler] {
    switch (h) {
      case h_create: return create(c);
      case h_list2: return list(c, true);
      case h_list: return list(c, false);
      case h_get: return get(c);
      case h_kill: return kill(c);
      case h_timeout: return set_timeout(c);
      case h_pause: return pause(c);
      case h_connect: return connect(c, false);
      case h_resume: return connect(c, true);
      case h_metrics: return metrics(c);
      case h_refresh: {
        // Keep-alive: extends the lifetime by `duration` seconds (default 60) from now.
        auto b = body_json(c);
        if (!b) return;
        int d = b->value("duration", 60);
        if (d < 0 || d > max_timeout_s) return rest_error(c.ex, 400, "duration must be 0..86400");
        auto ex = c.ex;
        return c.st->node->set_deadline(c.id(), c.principal(), end_at_in(d), [ex](expected<std::string> res) {
          if (!res) return rest_error(ex, res.err());
          no_content(ex);
        });
      }
      case h_network: return not_built(c, "changing a sandbox's egress rules (PUT /network)");
      case h_fork:
        return not_built(c, "E2B's fork (memory state: needs the microvm driver); Warren's filesystem fork is "
                            "POST /v1/sandboxes/{id}/fork");
      case h_snapshot: return not_built(c, "E2B snapshots (memory state: needs the microvm driver)");
    }
  });
}

}  // namespace warren::net::e2b
