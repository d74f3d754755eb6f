// net/e2b/process_table.hpp — E2B's processes: commands that outlive the request that started
// them, found again by pid (or tag) to stream their output (Connect), feed stdin, signal or
// resize them. Each is one agent exec stream the node keeps open; its output goes to every
// stream subscribed at the time (none: dropped, as envd drops it). It ends when the process
// exits or the sandbox's agent connection closes (destroy, daemon restart).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/e2b/event_stream.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net::e2b {

struct process_entry {
  std::string sandbox;
  int64_t pid = 0;
  std::optional<std::string> tag;
  nlohmann::json config;  // process.ProcessConfig as started
  bool pty = false;
  std::shared_ptr<agent::process> handle;

  // Sends an event to every subscriber; drops those that have gone.
  void broadcast(const nlohmann::json& event);
  // Ends every subscriber's stream.
  void finish_all(const error* e = nullptr);
  void subscribe(std::shared_ptr<event_stream> s);
  // Bytes queued for the slowest subscriber (backpressure on the agent).
  size_t max_queued();

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<event_stream>> subs_;
};
using process_ptr = std::shared_ptr<process_entry>;

class process_table {
 public:
  void add(const process_ptr& p);
  void remove(const std::string& sandbox, int64_t pid);
  process_ptr by_pid(const std::string& sandbox, int64_t pid) const;
  process_ptr by_tag(const std::string& sandbox, const std::string& tag) const;
  std::vector<process_ptr> of(const std::string& sandbox) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<int64_t, process_ptr>> by_sandbox_;
};

}  // namespace warren::net::e2b
