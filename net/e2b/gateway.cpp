// net/e2b/gateway.cpp — which requests are E2B's, who sent them, and where they go: the
// control plane (API key), envd (the sandbox's access token), or the port proxy (other ports of
// a sandbox addressed by E2B's headers).
#include "net/e2b/gateway.hpp"

#include "core/ids.hpp"
#include "net/auth/api_keys.hpp"
#include "net/e2b/envd.hpp"
#include "net/e2b/process_table.hpp"

namespace warren::net::e2b {

using json = nlohmann::json;

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// E2B's REST errors: {"code": <http status>, "message": "..."}.
void rest_error(const exchange_ptr& ex, int status, const std::string& message) {
  http_response r;
  r.status = status;
  r.body = json{{"code", status}, {"message", message}}.dump();
  ex->respond(std::move(r));
}

// "Basic base64(user:)" → user; empty if absent or malformed.
std::string basic_user(std::string_view h) {
  if (!starts_with(h, "Basic ")) return {};
  auto dec = base64_decode(h.substr(6));
  if (!dec) return {};
  return dec->substr(0, dec->find(':'));
}

bool valid_user_name(const std::string& u) {
  if (u.empty() || u.size() > 32) return false;
  for (char c : u)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

std::string home_of(const std::string& user) { return user == "root" ? "/root" : "/home/" + user; }

// <port>-<id>.<domain> → (id, port) when the host is a port host of this node.
std::optional<std::pair<std::string, uint16_t>> port_host(std::string_view host, std::string_view domain) {
  auto routed = route_port_host(host, "/", domain);
  if (!routed || !*routed || !(*routed)->prefix.empty()) return std::nullopt;
  return std::make_pair((*routed)->sandbox_id, (*routed)->port);
}

// envd's routes Warren serves; anything else (e.g. envd's /init and /envs, which E2B's
// orchestrator uses, not the SDK) is not_found.
void dispatch_envd(const envd_call& c) {
  const auto& path = c.req().path;
  if (starts_with(path, "/process.Process/")) return serve_process(c, path.substr(17));
  if (starts_with(path, "/filesystem.Filesystem/")) return serve_filesystem(c, path.substr(23));
  if (path == "/files") return serve_files(c);
  reply_connect_error(c.ex, "not_found", "envd has no " + c.req().method + " " + path + " here");
}

// An envd request for sandbox `id`: token, then the sandbox's link, then the user.
void serve_envd(const state_ptr& st, const exchange_ptr& ex, const std::string& id) {
  ex->set_route("(e2b envd)");
  const auto& req = ex->request();
  // /health needs no token (the SDK probes it to tell "killed" from a network blip); it answers
  // 204 only for a sandbox that is there.
  bool health = req.path == "/health" && (req.method == "GET" || req.method == "HEAD");
  auto token = req.header("x-access-token");
  if (!health && (token.empty() || !secret_equal(token, st->access_token(id))))
    return reply_connect_error(ex, "unauthenticated", token.empty() ? "missing X-Access-Token" : "invalid X-Access-Token");
  st->node->port_link(id, [st, ex, id](expected<actors::sandbox_link_ptr> l) {
    const auto& req = ex->request();
    if (!l) {
      // E2B answers 502 for a sandbox that is gone; the SDK then reports a timeout / not found.
      if (req.path == "/health" || req.path == "/files") {
        http_response r;
        r.status = 502;
        r.body = json{{"code", 502}, {"message", l.err().message}}.dump();
        return ex->respond(std::move(r));
      }
      return reply_connect_error(ex, l.err().code == errc::not_found ? "not_found" : "unavailable",
                                 l.err().message);
    }
    if (req.path == "/health") {
      http_response r;
      r.status = 204;
      r.content_type.clear();
      return ex->respond(std::move(r));
    }
    envd_call c{ex, st, *l, {}, {}};
    std::string user = basic_user(req.header("authorization"));
    if (auto it = req.query.find("username"); it != req.query.end() && !it->second.empty()) user = it->second;
    if (!user.empty() && !valid_user_name(user))
      return reply_connect_error(ex, "invalid_argument", "bad user name \"" + user + "\"");
    auto go = [c](std::string u) mutable {
      c.user = u;
      c.home = home_of(u);
      dispatch_envd(c);
    };
    if (!user.empty()) return go(user);
    {
      std::lock_guard lk(st->mu);
      if (auto it = st->default_users.find(id); it != st->default_users.end()) return go(it->second);
    }
    // E2B's default user is `user`; an image without one (busybox, plain debian) runs as root.
    (*l)->agent->stat("/home/user", [st, id, go](expected<agent::file_info> fi) mutable {
      std::string u = fi && fi->type == "dir" ? "user" : "root";
      {
        std::lock_guard lk(st->mu);
        st->default_users[id] = u;
      }
      go(u);
    });
  });
}

}  // namespace

std::string gateway::state::access_token(const std::string& id) const {
  return "ea_" + auth::mac32(keys.secret(), "e2b-envd-access-token:" + id);
}

void forget_sandbox(const state_ptr& st, const std::string& id) {
  std::lock_guard lk(st->mu);
  st->default_users.erase(id);
}

gateway::gateway(std::shared_ptr<actors::node_api> node, auth::key_registry& keys, std::shared_ptr<port_proxy> proxy,
                 options opts)
    : st_(std::make_shared<state>(std::move(node), keys, std::move(proxy), std::move(opts))) {}

gateway::state::state(std::shared_ptr<actors::node_api> n, auth::key_registry& k, std::shared_ptr<port_proxy> p,
                      options o)
    : node(std::move(n)), keys(k), proxy(std::move(p)), opts(std::move(o)), procs(std::make_shared<process_table>()) {}

gateway::~gateway() = default;

bool gateway::handle(const exchange_ptr& ex) {
  const auto& req = ex->request();
  // envd by E2B's headers (what the SDK sends when E2B_SANDBOX_URL is set).
  if (auto id = req.header("e2b-sandbox-id"); !id.empty()) {
    std::string sid(id);
    auto port_h = req.header("e2b-sandbox-port");
    unsigned long port = envd_port;
    if (!port_h.empty()) {
      char* end = nullptr;
      std::string p(port_h);
      port = std::strtoul(p.c_str(), &end, 10);
      if (!end || *end || port == 0 || port > 65535) {
        reply_connect_error(ex, "invalid_argument", "bad E2b-Sandbox-Port " + p);
        return true;
      }
    }
    if (!is_sandbox_id(sid)) {
      reply_connect_error(ex, "not_found", "no sandbox with id " + sid);
      return true;
    }
    if (port == envd_port) {
      serve_envd(st_, ex, sid);
      return true;
    }
    // Any other port: the port proxy, as if the request came to <port>-<id>.<domain>.
    st_->proxy->forward(ex, port_target{sid, static_cast<uint16_t>(port), "", req.target});
    return true;
  }
  // envd by host: 49983-<id>.<domain> (other ports of such hosts are the port proxy's; the
  // prefix test keeps the full parse off the proxy's hot path).
  auto host = req.header("host");
  if (host.substr(0, 6) == "49983-") {
    if (auto h = port_host(host, st_->proxy->urls().domain); h && h->second == envd_port) {
      serve_envd(st_, ex, h->first);
      return true;
    }
  }
  // The control plane.
  const auto& p = req.path;
  if (!(starts_with(p, "/v2/sandboxes") || p == "/sandboxes" || starts_with(p, "/sandboxes/"))) return false;
  ex->set_route("(e2b api)");
  std::string key(req.header("x-api-key"));
  if (key.empty()) key = std::string(auth::bearer_of(req.header("authorization")));
  auth::caller who;
  switch (st_->keys.authenticate(key, who)) {
    case auth::auth_result::ok: break;
    case auth::auth_result::missing: rest_error(ex, 401, "missing API key: send X-API-KEY"); return true;
    case auth::auth_result::invalid: rest_error(ex, 401, "invalid API key"); return true;
    case auth::auth_result::revoked: rest_error(ex, 401, "API key has been revoked"); return true;
  }
  serve_control(st_, ex, who);
  return true;
}

}  // namespace warren::net::e2b
