// net/e2b/envd.hpp — what the envd translation units share: the gateway's state, one routed
// envd call, and the helpers every service uses. Internal to net/e2b/.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/node_api.hpp"
#include "net/auth/key_registry.hpp"
#include "net/e2b/connect.hpp"
#include "vmm/agent/client.hpp"
#include "net/e2b/gateway.hpp"
#include "net/http_types.hpp"
#include "net/port_proxy.hpp"

namespace warren::net::e2b {

class process_table;

struct gateway::state {
  state(std::shared_ptr<actors::node_api> n, auth::key_registry& k, std::shared_ptr<port_proxy> p, options o);
  std::shared_ptr<actors::node_api> node;
  auth::key_registry& keys;
  std::shared_ptr<port_proxy> proxy;
  options opts;
  std::shared_ptr<process_table> procs;
  std::mutex mu;
  std::map<std::string, std::string> default_users;  // sandbox id → "user" or "root"

  // The envd access token of a sandbox: a MAC of its id under the node's secret, so it needs
  // no storage and survives restarts.
  std::string access_token(const std::string& id) const;
};
using state_ptr = std::shared_ptr<gateway::state>;

// One authenticated envd request, routed to its sandbox.
struct envd_call {
  exchange_ptr ex;
  state_ptr st;
  actors::sandbox_link_ptr link;
  std::string user;  // who runs commands / owns created files: Basic auth or ?username, else default
  std::string home;  // that user's home: relative paths resolve against it

  const http_request& req() const { return ex->request(); }
  // An absolute path: `p` itself, or `p` under home. Empty `p` is home.
  std::string resolve(const std::string& p) const;
};

// Connect unary replies.
void reply_json(const exchange_ptr& ex, const nlohmann::json& j);
void reply_connect_error(const exchange_ptr& ex, std::string_view code, std::string_view message);
void reply_connect_error(const exchange_ptr& ex, const error& e);
// The request message of a Connect call (unary JSON body, or the one enveloped message of a
// server-streaming call). Answers the error itself and returns nullopt.
std::optional<nlohmann::json> request_message(const envd_call& c, bool streaming);
// Reads the whole body, then runs fn (or answers 413/400).
void with_body(const envd_call& c, std::function<void()> fn);

// envd's JSON of a file (filesystem.EntryInfo, proto3 JSON names).
nlohmann::json entry_info(const agent::file_info& f);

// The control plane (control_plane.cpp): /v2/sandboxes, /sandboxes/… for an authenticated key.
void serve_control(const state_ptr& st, const exchange_ptr& ex, const auth::caller& who);

// The services (one file each).
void serve_process(const envd_call& c, const std::string& method);
void serve_filesystem(const envd_call& c, const std::string& method);
void serve_files(const envd_call& c);

// Drops what the gateway keeps for a sandbox (its process table entries are ended by the
// agent connection closing; this forgets the cached default user).
void forget_sandbox(const state_ptr& st, const std::string& id);

}  // namespace warren::net::e2b
