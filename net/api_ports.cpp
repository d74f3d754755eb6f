// net/api_ports.cpp — public URLs of sandbox ports and exposures with auth (API.md "Public URLs
// for sandbox ports"): the REST side. The traffic itself is net/port_proxy.cpp's; a token is
// shown once, here, and never stored in clear.
#include <sstream>

#include <nlohmann/json.hpp>

#include "net/api.hpp"
#include "net/json_body.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

// ?port=N or {port}: 1..65535, else a 400 naming it.
expected<uint16_t> port_param(const std::string& s) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
    return make_error(errc::bad_request, "port must be a number 1..65535, got \"" + s + "\"");
  auto v = std::stoul(s);
  if (v == 0 || v > 65535) return make_error(errc::bad_request, "port must be 1..65535, got " + s);
  return static_cast<uint16_t>(v);
}

std::string browser_url(const public_urls& u, const std::string& id, uint16_t port, const std::string& token) {
  return u.port_url(id, port) + std::string(auth_bootstrap_path).substr(1) + "?token=" + token + "&next=%2F";
}

std::string prom_label(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

}  // namespace

void api::port_url(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto q = c.req().query.find("port");
  auto port = port_param(q == c.req().query.end() ? std::string() : q->second);
  if (!port) return c.ex->respond(error_response(port.err()));
  auto ex = c.ex;
  auto urls = opts_.urls;
  node_->get_sandbox(id, principal(c), [ex, id, p = *port, urls](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    ex->respond(json_response(200, json{{"url", urls.run_url(id, p)}, {"host", urls.host(id, p)}}.dump()));
  });
}

void api::expose(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto body = parse_body(c.req().body, {{"port", json_kind::integer, true, 1, 65535}, {"auth", json_kind::boolean}});
  if (!body) return c.ex->respond(error_response(body.err()));
  auto port = (*body)["port"].get<uint16_t>();
  bool auth = body->value("auth", false);
  auto ex = c.ex;
  auto urls = opts_.urls;
  node_->expose(id, principal(c), port, auth, [ex, id, port, urls](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    auto e = json::parse(*r);
    auto url = urls.port_url(id, port);
    json out = {{"port", port},
                {"auth", e["auth"]},
                {"url", url},
                {"browser_url", e["token"].is_string() ? browser_url(urls, id, port, e["token"]) : url},
                {"token", e["token"]},
                {"created_at", e["created_at"]}};
    ex->respond(json_response(200, out.dump()));
  });
}

void api::list_exposures(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto ex = c.ex;
  auto urls = opts_.urls;
  node_->exposures(id, principal(c), [ex, id, urls](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    json out = json::array();
    for (auto& e : json::parse(*r)) {
      auto port = e["port"].get<uint16_t>();
      out.push_back({{"port", port}, {"auth", e["auth"]}, {"url", urls.port_url(id, port)},
                     {"created_at", e["created_at"]}, {"requests", e["requests"]},
                     {"bytes_in", e["bytes_in"]}, {"bytes_out", e["bytes_out"]},
                     {"open_connections", e["open_connections"]}});
    }
    std::sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["port"] < b["port"]; });
    ex->respond(json_response(200, json{{"exposures", out}}.dump()));
  });
}

void api::delete_exposure(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto port = port_param(c.route.params.at("port"));
  if (!port) return c.ex->respond(error_response(port.err()));
  auto ex = c.ex;
  node_->unexpose(id, principal(c), *port, [ex, id, p = *port](expected<bool> r) {
    if (!r) return ex->respond(error_response(r.err()));
    if (!*r)
      return ex->respond(error_response(make_error(
          errc::not_found, "sandbox " + id + " has no exposure for port " + std::to_string(p))));
    http_response res;
    res.status = 204;
    res.content_type.clear();
    ex->respond(std::move(res));
  });
}

std::string api::port_metrics_text(const std::string& stats_json) {
  auto all = json::parse(stats_json, nullptr, false);
  if (!all.is_array() || all.empty()) return {};
  std::ostringstream o;
  struct metric {
    const char* field;
    const char* name;
    const char* type;
    const char* help;
  };
  static const metric ms[] = {
      {"requests", "warren_port_forward_requests_total", "counter", "Requests proxied to an exposed port."},
      {"bytes_in", "warren_port_forward_bytes_in_total", "counter", "Bytes from clients to an exposed port."},
      {"bytes_out", "warren_port_forward_bytes_out_total", "counter", "Bytes from an exposed port to clients."},
      {"open_connections", "warren_port_forward_open_connections", "gauge",
       "Proxied requests and tunnels open on an exposed port."},
  };
  for (auto& m : ms) {
    o << "# HELP " << m.name << " " << m.help << "\n# TYPE " << m.name << " " << m.type << "\n";
    for (auto& e : all)
      o << m.name << "{sandbox=\"" << prom_label(e.value("sandbox", std::string())) << "\",port=\""
        << e.value("port", 0) << "\"} " << e.value(m.field, json(0)).dump() << "\n";
  }
  return o.str();
}

}  // namespace warren::net
