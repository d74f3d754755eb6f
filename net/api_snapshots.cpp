// net/api_snapshots.cpp — fork, hibernate/resume, checkpoints and snapshots (API.md). Strict
// bodies; everything else is the node's and the driver's (docs/design/snapshots.md).
#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "net/api.hpp"
#include "net/json_body.hpp"
#include "net/sandbox_view.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

json snapshot_view(const storage::snapshot_record& s) {
  return {{"snapshot_id", s.id},     {"sandbox_id", s.sandbox_id}, {"name", s.name},
          {"created_at", s.created_at}, {"size_bytes", s.size_bytes}, {"image", s.image},
          {"isolation", s.isolation}};
}

actors::reply_fn<std::string> reply_snapshot(exchange_ptr ex, int status) {
  return [ex, status](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    auto rec = storage::decode<storage::snapshot_record>(*r);
    if (!rec) return ex->respond(error_response(rec.err()));
    ex->respond(json_response(status, snapshot_view(*rec).dump()));
  };
}

}  // namespace

bool api::check_snapshot_id(const context& c, std::string& sid) {
  sid = c.route.params.at("sid");
  if (is_snapshot_id(sid)) return true;
  c.ex->respond(error_response(make_error(errc::not_found, "no snapshot with id " + sid)));
  return false;
}

void api::fork(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto body = parse_body(c.req().body, {{"count", json_kind::integer, false, 1, 64}});
  if (!body) return c.ex->respond(error_response(body.err()));
  auto ex = c.ex;
  node_->fork(id, principal(c), body->value("count", 1), [ex](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    ex->respond(json_response(201, json{{"sandboxes", sandbox_views(*r)}}.dump()));
  });
}

void api::hibernate(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  if (auto body = parse_body(c.req().body, {}); !body) return c.ex->respond(error_response(body.err()));
  node_->hibernate(id, principal(c), reply_sandbox(c.ex, 200));
}

void api::resume(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  if (auto body = parse_body(c.req().body, {}); !body) return c.ex->respond(error_response(body.err()));
  node_->resume(id, principal(c), reply_sandbox(c.ex, 200));
}

void api::checkpoint(const context& c) {
  std::string id;
  if (!check_sandbox_id(c, id)) return;
  auto body = parse_body(c.req().body, {{"name", json_kind::nullable_string}});
  if (!body) return c.ex->respond(error_response(body.err()));
  std::string name = body->contains("name") && (*body)["name"].is_string() ? (*body)["name"].get<std::string>() : "";
  if (name.size() > 256) return c.ex->respond(error_response(make_error(errc::bad_request, "field \"name\" is longer than 256 bytes")));
  node_->checkpoint(id, principal(c), name, reply_snapshot(c.ex, 201));
}

void api::list_snapshots(const context& c) {
  auto ex = c.ex;
  node_->list_snapshots(principal(c), [ex](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    json out = json::array();
    for (auto& raw : json::parse(*r))
      if (auto rec = storage::decode<storage::snapshot_record>(raw.get<std::string>())) out.push_back(snapshot_view(*rec));
    ex->respond(json_response(200, json{{"snapshots", out}}.dump()));
  });
}

void api::get_snapshot(const context& c) {
  std::string sid;
  if (!check_snapshot_id(c, sid)) return;
  node_->get_snapshot(sid, principal(c), reply_snapshot(c.ex, 200));
}

void api::delete_snapshot(const context& c) {
  std::string sid;
  if (!check_snapshot_id(c, sid)) return;
  auto ex = c.ex;
  node_->delete_snapshot(sid, principal(c), [ex](expected<bool> r) {
    if (!r) return ex->respond(error_response(r.err()));
    http_response out;
    out.status = 204;
    out.content_type.clear();
    ex->respond(std::move(out));
  });
}

void api::restore(const context& c) {
  std::string sid;
  if (!check_snapshot_id(c, sid)) return;
  auto body = parse_body(c.req().body, {{"sandbox_timeout", json_kind::integer, false, 1, 604800, {-1}},
                                        {"metadata", json_kind::object}});
  if (!body) return c.ex->respond(error_response(body.err()));
  if (body->contains("metadata") && (*body)["metadata"].dump().size() > 16384)
    return c.ex->respond(error_response(make_error(errc::bad_request, "field \"metadata\" is larger than 16 KiB")));
  node_->restore(sid, principal(c), body->dump(), reply_sandbox(c.ex, 201));
}

}  // namespace warren::net
