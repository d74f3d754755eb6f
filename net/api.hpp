// net/api.hpp — the REST dispatcher: authenticates, routes, validates, and turns each request
// into node_api calls whose replies complete the exchange. No Beast, no CAF in here.
#pragma once

#include <memory>

#include "actors/node_api.hpp"
#include "net/admin_web.hpp"
#include "net/auth/key_registry.hpp"
#include "net/e2b/gateway.hpp"
#include "net/http_types.hpp"
#include "net/metrics.hpp"
#include "net/port_proxy.hpp"
#include "storage/records.hpp"
#include "net/router.hpp"

namespace warren::net {

namespace egress { class service; }

class api {
 public:
  struct options {
    std::string default_image = "debian:bookworm";
    size_t max_body_bytes = 16 * 1024 * 1024;  // JSON bodies; streamed routes have no cap
    public_urls urls;  // public domain and scheme of sandbox ports
    bool loopback_via_agent = false;  // see port_proxy::options
    std::string data_dir;  // images/ and registries.json (image pulls)
    bool auto_pull = false;  // create of a missing image pulls it first ([images] auto_pull)
    // The web admin console's built files (/admin/); "": <dir of the binary>/../share/warren/admin, or
    // $WARREN_ADMIN_WEB_DIR when set.
    std::string admin_web_dir;
    std::shared_ptr<egress::service> egress;  // the node's egress proxy (credentials); null: none
  };
  api(std::shared_ptr<actors::node_api> node, auth::key_registry& keys, std::shared_ptr<metrics> m,
      options opts);
  void dispatch(const exchange_ptr& ex);

  struct context {  // one authenticated, routed request
    exchange_ptr ex;
    auth::caller who;
    route_match route;
    const http_request& req() const { return ex->request(); }
  };

 private:
  using handler = void (api::*)(const context&);
  enum class body { read, stream };  // read: whole body (≤ max_body_bytes) before the handler
  void add(std::string method, std::string pattern, handler h, bool admin_only, body b = body::read);

  void info(const context& c);
  void metrics_text(const context& c);
  void mint_key(const context& c);
  void revoke_key(const context& c);
  // the admin actor console (api_admin.cpp)
  void actor_tree(const context& c);
  void actor_get(const context& c);
  void actor_action(const context& c);
  void actor_events(const context& c);
  void node_action(const context& c);
  // images (api_images.cpp)
  void list_images(const context& c);
  void delete_image(const context& c);
  void pull_image(const context& c);
  // Pulls `ref` on a thread of its own (one pull at a time per node), then calls done with the
  // image's name or the error; progress lines go to `progress` (may be empty).
  static void pull_async(std::string data_dir, std::string ref, std::function<void(const std::string&)> progress,
                         std::function<void(expected<std::string>)> done);

  // sandboxes (api_sandboxes.cpp)
  void create_sandbox(const context& c);
  void create_record(const context& c, storage::sandbox_record rec, bool is_public);
  void list_sandboxes(const context& c);
  void get_sandbox(const context& c);
  void patch_network(const context& c);
  void destroy_sandbox(const context& c);
  // snapshots (api_snapshots.cpp)
  bool check_snapshot_id(const context& c, std::string& sid);
  void fork(const context& c);
  void hibernate(const context& c);
  void resume(const context& c);
  void checkpoint(const context& c);
  void list_snapshots(const context& c);
  void get_snapshot(const context& c);
  void delete_snapshot(const context& c);
  void restore(const context& c);
  // exec (api_exec.cpp)
  void exec(const context& c);
  void exec_stream(const context& c);
  // public URLs and exposures (api_ports.cpp)
  void port_url(const context& c);
  void expose(const context& c);
  void list_exposures(const context& c);
  void delete_exposure(const context& c);
  static std::string port_metrics_text(const std::string& stats_json);
  // files (api_files.cpp)
  void put_file(const context& c);
  void get_file(const context& c);
  void delete_file(const context& c);
  void list_dir(const context& c);
  void watch(const context& c);
  // shell sessions (api_shell.cpp)
  void shell(const context& c);
  // terminal (api_terminal.cpp)
  void terminal(const context& c);

  // Runs `then` with the link of the sandbox {id} names (local byte streams to its agent);
  // answers the error itself (404, 409, ...) when there is no such running sandbox.
  void with_link(const context& c, std::function<void(const actors::sandbox_link_ptr&)> then);
  // The {id} parameter if it is a well-formed sandbox id; otherwise answers 404 and false.
  static bool check_sandbox_id(const context& c, std::string& id);
  static actors::principal principal(const context& c) { return {c.who.tenant, c.who.admin}; }
  // Replies with the Sandbox object of an encoded record, or the error.
  static actors::reply_fn<std::string> reply_sandbox(exchange_ptr ex, int status);

  std::shared_ptr<actors::node_api> node_;
  auth::key_registry& keys_;
  std::shared_ptr<metrics> metrics_;
  options opts_;
  std::shared_ptr<port_proxy> proxy_;
  std::shared_ptr<admin_web> web_;  // /admin/ pages and the console's session cookie
  std::unique_ptr<e2b::gateway> e2b_;
  router router_;
  struct route_entry {
    handler h;
    bool admin_only;
    body b;
  };
  std::vector<route_entry> handlers_;
};

}  // namespace warren::net
