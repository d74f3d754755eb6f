// net/api_images.cpp — the node's images (API.md "Images"): list (any key: every tenant
// creates from the node's images) and delete (admin; 409 while a sandbox or snapshot uses it).
// The name may hold slashes and a registry port (`127.0.0.1:5000/acme/app:v1`), so the route
// takes the rest of the path.
#include <nlohmann/json.hpp>

#include "net/api.hpp"

namespace warren::net {

void api::list_images(const context& c) {
  auto ex = c.ex;
  node_->images([ex](expected<std::string> r) {
    if (!r) return ex->respond(error_response(r.err()));
    ex->respond(json_response(200, "{\"images\":" + *r + "}"));
  });
}

void api::delete_image(const context& c) {
  auto name = c.route.params.at("name");
  auto ex = c.ex;
  node_->remove_image(name, [ex](expected<bool> r) {
    if (!r) return ex->respond(error_response(r.err()));
    http_response res;
    res.status = 204;
    res.content_type.clear();
    ex->respond(std::move(res));
  });
}

}  // namespace warren::net
