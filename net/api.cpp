// net/api.cpp — auth → route → admin check → handler. The order is the contract: a missing
// key is 401 on every route known or not; a tenant key on an admin route is 403.
#include "net/api.hpp"

#include "net/egress/service.hpp"

#include <unistd.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "net/json_body.hpp"
#include "net/port_upstream.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {
// Where the build puts the web console: build/bin/warren → build/share/warren/admin (the same
// layout installed: <prefix>/bin, <prefix>/share/warren/admin).
std::string default_admin_web_dir() {
  if (const char* e = std::getenv("WARREN_ADMIN_WEB_DIR"); e && *e) return e;
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/')) + "/../share/warren/admin";
}
}  // namespace

api::api(std::shared_ptr<actors::node_api> node, auth::key_registry& keys, std::shared_ptr<metrics> m,
         options opts)
    : node_(std::move(node)), keys_(keys), metrics_(std::move(m)), opts_(std::move(opts)),
      proxy_(std::make_shared<port_proxy>(node_, port_proxy::options{opts_.urls, opts_.loopback_via_agent})),
      web_(std::make_shared<admin_web>(keys_, opts_.admin_web_dir.empty() ? default_admin_web_dir()
                                                                         : opts_.admin_web_dir)),
      e2b_(std::make_unique<e2b::gateway>(node_, keys_, proxy_, e2b::options{})) {
  add("GET", "/v1/info", &api::info, false);
  add("GET", "/metrics", &api::metrics_text, true);
  add("POST", "/v1/admin/keys", &api::mint_key, true);
  add("DELETE", "/v1/admin/keys/{keyid}", &api::revoke_key, true);
  add("GET", "/v1/admin/actors", &api::actor_tree, true);
  add("GET", "/v1/admin/actors/{aid}", &api::actor_get, true);
  add("POST", "/v1/admin/actors/{aid}/{action}", &api::actor_action, true);
  add("GET", "/v1/admin/events", &api::actor_events, true);
  add("POST", "/v1/admin/nodes/{node}/{action}", &api::node_action, true);
  add("GET", "/v1/images", &api::list_images, false);
  add("DELETE", "/v1/images/{name*}", &api::delete_image, true);
  add("POST", "/v1/images/pull", &api::pull_image, true);
  add("POST", "/v1/sandboxes", &api::create_sandbox, false);
  add("GET", "/v1/sandboxes", &api::list_sandboxes, false);
  add("GET", "/v1/sandboxes/{id}", &api::get_sandbox, false);
  add("DELETE", "/v1/sandboxes/{id}", &api::destroy_sandbox, false);
  add("PATCH", "/v1/sandboxes/{id}/network", &api::patch_network, false);
  add("POST", "/v1/sandboxes/{id}/exec", &api::exec, false);
  add("POST", "/v1/sandboxes/{id}/exec/stream", &api::exec_stream, false);
  add("GET", "/v1/sandboxes/{id}/url", &api::port_url, false);
  add("POST", "/v1/sandboxes/{id}/expose", &api::expose, false);
  add("GET", "/v1/sandboxes/{id}/exposures", &api::list_exposures, false);
  add("DELETE", "/v1/sandboxes/{id}/exposures/{port}", &api::delete_exposure, false);
  add("PUT", "/v1/sandboxes/{id}/files", &api::put_file, false, body::stream);
  add("GET", "/v1/sandboxes/{id}/files", &api::get_file, false);
  add("DELETE", "/v1/sandboxes/{id}/files", &api::delete_file, false);
  add("GET", "/v1/sandboxes/{id}/ls", &api::list_dir, false);
  add("GET", "/v1/sandboxes/{id}/watch", &api::watch, false);
  add("GET", "/v1/sandboxes/{id}/pty", &api::terminal, false);
  add("GET", "/v1/sandboxes/{id}/shell", &api::shell, false);
  add("POST", "/v1/sandboxes/{id}/fork", &api::fork, false);
  add("POST", "/v1/sandboxes/{id}/hibernate", &api::hibernate, false);
  add("POST", "/v1/sandboxes/{id}/resume", &api::resume, false);
  add("POST", "/v1/sandboxes/{id}/checkpoints", &api::checkpoint, false);
  add("GET", "/v1/snapshots", &api::list_snapshots, false);
  add("GET", "/v1/snapshots/{sid}", &api::get_snapshot, false);
  add("DELETE", "/v1/snapshots/{sid}", &api::delete_snapshot, false);
  add("POST", "/v1/snapshots/{sid}/restore", &api::restore, false);
}

void api::add(std::string method, std::string pattern, handler h, bool admin_only, body b) {
  router_.add(std::move(method), std::move(pattern), static_cast<int>(handlers_.size()));
  handlers_.push_back({h, admin_only, b});
}

void api::dispatch(const exchange_ptr& ex) {
  // A sandbox port's host (<port>-<id>.<domain>, run<id>.<domain>) is the port proxy's, before
  // any API key check: there the sandbox id is the credential (API.md "Public URLs").
  // E2B's traffic (its SDK's control plane and envd, docs/guides/e2b-compat.md) comes first:
  // envd is addressed by headers or by the 49983-<id> host, which the proxy would take.
  if (e2b_->handle(ex)) return;
  if (proxy_->handle(ex)) return;
  const auto& req = ex->request();
  if (req.path == "/healthz" && (req.method == "GET" || req.method == "HEAD")) {
    ex->set_route("/healthz");
    http_response r;
    r.content_type = "text/plain";
    r.body = "ok";
    return ex->respond(std::move(r));
  }
  // The web console's pages, login and logout (net/admin_web.hpp).
  if (web_->handle(ex)) return;
  auth::caller who;
  // Without an Authorization header, the console's session cookie may stand for an admin key.
  std::string why;
  auto cookie = req.header("authorization").empty() ? web_->authenticate(req, who, why)
                                                     : admin_web::cookie_result::none;
  if (cookie == admin_web::cookie_result::invalid)
    return ex->respond(error_response(make_error(errc::unauthorized, "the console session has ended; log in again")));
  if (cookie == admin_web::cookie_result::forbidden)
    return ex->respond(error_response(make_error(errc::forbidden, why)));
  if (cookie != admin_web::cookie_result::ok) switch (keys_.authenticate(auth::bearer_of(req.header("authorization")), who)) {
    case auth::auth_result::ok: break;
    case auth::auth_result::missing:
      return ex->respond(error_response(make_error(
          errc::unauthorized, "missing API key: send Authorization: Bearer <key>")));
    case auth::auth_result::invalid:
      return ex->respond(error_response(make_error(errc::unauthorized, "invalid API key")));
    case auth::auth_result::revoked:
      return ex->respond(error_response(make_error(errc::unauthorized, "API key has been revoked")));
  }
  auto m = router_.match(req.method, req.path);
  if (auto* miss = std::get_if<route_miss>(&m)) {
    if (*miss == route_miss::method_not_allowed) {
      std::string allow;
      for (auto& a : router_.allowed(req.path)) allow += (allow.empty() ? "" : ", ") + a;
      auto r = error_response(make_error(
          errc::not_found, "no route for " + req.method + " " + req.path + " (allowed: " + allow + ")"));
      r.headers.emplace_back("Allow", allow);
      return ex->respond(std::move(r));
    }
    return ex->respond(error_response(make_error(errc::not_found, "no route for " + req.method + " " + req.path)));
  }
  auto& rm = std::get<route_match>(m);
  ex->set_route(rm.pattern);
  auto& entry = handlers_[rm.handler];
  if (entry.admin_only && !who.admin)
    return ex->respond(error_response(make_error(errc::forbidden, "this route needs an admin key")));
  if (entry.b == body::stream) return (this->*entry.h)(context{ex, who, rm});
  ex->read_body(opts_.max_body_bytes, [this, ex, who, rm, h = entry.h] { (this->*h)(context{ex, who, rm}); });
}

namespace {
// Completes `ex` with the error, or with `ok(value)` rendered as a JSON body.
template <class T, class F>
actors::reply_fn<T> reply_to(exchange_ptr ex, F ok) {
  return [ex, ok](expected<T> r) {
    if (!r) return ex->respond(error_response(r.err()));
    ex->respond(ok(r.value()));
  };
}
}  // namespace

void api::with_link(const context& c, std::function<void(const actors::sandbox_link_ptr&)> then) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto ex = c.ex;
  node_->sandbox_link(id, principal(c), [ex, then = std::move(then)](expected<actors::sandbox_link_ptr> l) {
    if (!l) return ex->respond(error_response(l.err()));
    then(*l);
  });
}

void api::info(const context& c) {
  node_->info(reply_to<std::string>(c.ex, [](const std::string& s) { return json_response(200, s); }));
}

// Refused egress per sandbox: the firewall's, the proxy's and the DNS forwarder's together.
static std::string egress_metrics_text(const std::map<std::string, uint64_t>& counts) {
  std::string out =
      "# HELP warren_sandbox_egress_refused_total Connections and DNS queries of a sandbox its egress policy refused.\n"
      "# TYPE warren_sandbox_egress_refused_total counter\n";
  for (auto& [id, n] : counts)
    out += "warren_sandbox_egress_refused_total{sandbox=\"" + id + "\"} " + std::to_string(n) + "\n";
  return out;
}

void api::metrics_text(const context& c) {
  auto m = metrics_;
  auto node = node_;
  auto ex = c.ex;
  auto egress = opts_.egress;
  node_->actor_counts([m, node, ex, egress](expected<std::string> gauges) {
    if (!gauges) return ex->respond(error_response(gauges.err()));
    // Then the exposures' traffic counters (read by their port-forward actors).
    node->port_stats([m, ex, g = *gauges, egress](expected<std::string> ports) {
      http_response r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = m->render(g) + port_upstream_metrics_text() + (ports ? port_metrics_text(*ports) : std::string()) +
               (egress ? egress_metrics_text(egress->refusal_counts()) : std::string());
      ex->respond(std::move(r));
    });
  });
}

void api::mint_key(const context& c) {
  auto body = parse_body(c.req().body, {{"tenant", json_kind::string, true},
                                         {"admin", json_kind::boolean}});
  if (!body) return c.ex->respond(error_response(body.err()));
  auto tenant = (*body)["tenant"].get<std::string>();
  bool admin = body->value("admin", false);
  node_->mint_key(tenant, admin, reply_to<actors::minted_key>(c.ex, [tenant, admin](const actors::minted_key& k) {
    json j = {{"key", k.key}, {"key_id", k.key_id}, {"tenant", tenant}, {"admin", admin},
              {"created_at", k.created_at}};
    return json_response(201, j.dump());
  }));
}

void api::revoke_key(const context& c) {
  auto id = c.route.params.at("keyid");
  if (c.who.key_id == id) {
    // Revoking the key you are holding would lock the caller out mid-request; ask for another.
    return c.ex->respond(error_response(make_error(
        errc::conflict, "a key cannot revoke itself; use another admin key")));
  }
  auto ex = c.ex;
  node_->revoke_key(id, [ex, id](expected<bool> r) {
    if (!r) return ex->respond(error_response(r.err()));
    if (!*r) return ex->respond(error_response(make_error(errc::not_found, "no key with id " + id)));
    http_response res;
    res.status = 204;
    res.content_type.clear();
    ex->respond(std::move(res));
  });
}

}  // namespace warren::net
