// net/api_images.cpp — the node's images (API.md "Images"): list (any key: every tenant
// creates from the node's images), delete (admin; 409 while a sandbox or snapshot uses it) and
// pull from a registry (admin; blocking work on a thread of its own, progress as SSE on ask).
// The name may hold slashes and a registry port (`127.0.0.1:5000/acme/app:v1`), so the route
// takes the rest of the path.
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "net/api.hpp"
#include "net/json_body.hpp"
#include "storage/registry.hpp"

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

namespace {
std::mutex pull_mu;  // one pull at a time per node: two would download the same blobs twice

std::string sse(const char* event, const nlohmann::json& data) {
  return std::string("event: ") + event + "\ndata: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n\n";
}
}  // namespace

void api::pull_image(const context& c) {
  auto body = parse_body(c.req().body, {{"ref", json_kind::string, true}});
  if (!body) return c.ex->respond(error_response(body.err()));
  auto ref = (*body)["ref"].get<std::string>();
  auto ex = c.ex;
  bool stream = c.req().header("accept").find("text/event-stream") != std::string_view::npos;
  auto data_dir = opts_.data_dir;
  auto node = node_;
  if (stream) ex->start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}}, [] {});
  pull_async(
      data_dir, ref,
      [ex, stream](const std::string& line) {
        if (stream) ex->write(sse("progress", {{"message", line}}), [](bool) {});
      },
      [ex, node, stream](expected<std::string> r) {
        if (!r) {
          if (!stream) return ex->respond(error_response(r.err()));
          ex->write(sse("error", {{"error", {{"code", std::string(to_string(r.err().code))},
                                             {"message", r.err().message}}}}),
                    [](bool) {});
          return ex->end();
        }
        // The image as GET /v1/images shows it.
        node->images([ex, name = *r, stream](expected<std::string> all) {
          nlohmann::json img = {{"name", name}};
          if (all)
            for (auto& i : nlohmann::json::parse(*all))
              if (i.value("name", "") == name) img = i;
          if (!stream) return ex->respond(json_response(200, img.dump()));
          ex->write(sse("image", img), [](bool) {});
          ex->end();
        });
      });
}

void api::pull_async(std::string data_dir, std::string ref, std::function<void(const std::string&)> progress,
                     std::function<void(expected<std::string>)> done) {
  std::thread([data_dir = std::move(data_dir), ref = std::move(ref), progress = std::move(progress),
               done = std::move(done)] {
    expected<std::string> r = make_error(errc::internal, "no pull");
    {
      std::lock_guard lk(pull_mu);
      auto opts = storage::load_registry_options(data_dir + "/registries.json");
      storage::image_store store(data_dir);
      r = opts ? storage::pull_image(store, ref, *opts, progress) : expected<std::string>(opts.err());
    }
    done(std::move(r));
  }).detach();
}

}  // namespace warren::net
