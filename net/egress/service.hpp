// net/egress/service.hpp — the node's egress services: a transparent proxy for the sandboxes'
// TCP 80/443 (Host / SNI rules; TLS terminated only towards hosts a credential is bound to, where
// the secret replaces its placeholder in request headers) and a DNS forwarder whose answers for
// allowed names open the firewall (driver::allow_learned). Sandboxes are told apart by their
// source address. Blocking sockets, a thread per connection: never on a CAF or Beast thread.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/egress_hooks.hpp"
#include "core/error.hpp"
#include "net/egress/policy.hpp"

namespace warren::net::egress {

class node_ca;
class secret_box;

struct service_options {
  std::string dir;                        // <data dir>/egress: the CA, the sealing key
  std::vector<std::string> dns_upstream;  // resolvers asked by the forwarder and the proxy
  std::string upstream_ca_file;           // a CA trusted for upstream TLS besides the host's store
  std::string pool_cidr = "10.201.0.0/16";  // the sandboxes: never an upstream
  uint16_t proxy_port = 0, dns_port = 0;  // 0: any free port
};

// A credential as the proxy holds it (the secret only in this process's memory).
struct credential {
  std::string name, placeholder, secret;
  std::vector<domain_rule> hosts;
};

class service final : public actors::egress_hooks {
 public:
  static expected<std::shared_ptr<service>> start(const service_options& opts);
  ~service() override;
  void stop();

  uint16_t proxy_port() const { return proxy_port_; }
  uint16_t dns_port() const { return dns_port_; }

  // Credentials at rest: sealed before they are stored, opened when a sandbox attaches.
  std::string seal(const std::string& secret) const;

  // actors::egress_hooks
  vmm::egress_rules rules_for(const storage::sandbox_record& rec) const override;
  void attach(const storage::sandbox_record& rec, const vmm::instance& inst,
              std::shared_ptr<vmm::driver> driver) override;
  void detach(const std::string& id) override;
  std::string refusals(const std::string& id) const override;
  std::string ca_pem() const override;

  // Refusals per attached sandbox (/metrics): the proxy's and the forwarder's since the daemon
  // started, plus the firewall's counters (read through `firewall_counts`, when set).
  std::map<std::string, uint64_t> refusal_counts() const;
  void set_firewall_counts(std::function<std::map<std::string, uint64_t>()> fn) { firewall_counts_ = std::move(fn); }

  struct entry;  // one sandbox, as the services see it

 private:
  explicit service(const service_options& opts);
  std::shared_ptr<const entry> find(const ip_address& source) const;
  std::shared_ptr<const entry> peer_entry(int fd) const;  // the sandbox a connection comes from
  void refuse(const std::string& id, const std::string& dest, const char* by);
  bool forbidden_upstream(const ip_address& a) const;

  void accept_loop(int listen_fd, void (service::*handle)(int));
  void proxy_connection(int fd);
  void dns_udp_loop();
  void dns_tcp_connection(int fd);
  std::string answer_dns(const entry& e, const std::string& query);

  struct decision;
  decision decide(const entry& e, const std::string& name, const ip_address& original) const;
  void relay_plain(int client, int upstream);
  void serve_terminated(int client, const entry& e, const std::string& name, const std::vector<ip_address>& targets,
                        uint16_t port);

  service_options opts_;
  std::shared_ptr<node_ca> ca_;
  std::shared_ptr<secret_box> box_;
  std::shared_ptr<void> client_ctx_;  // SSL_CTX for upstream TLS (kept opaque here)
  cidr pool_;
  int proxy_fd_ = -1, dns_udp_fd_ = -1, dns_tcp_fd_ = -1;
  uint16_t proxy_port_ = 0, dns_port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::vector<std::thread> loops_;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const entry>> by_addr_;  // source address → sandbox
  std::map<std::string, std::string> addr_of_;                   // id → source address
  struct refusal {
    std::string dest, at, by;
  };
  struct refusal_log {
    uint64_t count = 0;
    std::deque<refusal> recent;  // newest last, at most 32
  };
  std::map<std::string, refusal_log> refused_;
  std::function<std::map<std::string, uint64_t>()> firewall_counts_;
};

}  // namespace warren::net::egress
