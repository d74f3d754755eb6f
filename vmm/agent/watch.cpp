// vmm/agent/watch.cpp — inotify watch streams (placeholder until the watch commit lands).
#include "vmm/agent/server.hpp"

namespace warren::agent {

std::shared_ptr<stream> start_watch(connection& c, uint32_t id, std::string_view) {
  c.fail(id, "unavailable", "watch is not implemented yet");
  return nullptr;
}

}  // namespace warren::agent
