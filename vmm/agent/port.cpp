// vmm/agent/port.cpp — TCP connect inside the sandbox (placeholder until the port commit lands).
#include "vmm/agent/server.hpp"

namespace warren::agent {

std::shared_ptr<stream> start_port(connection& c, uint32_t id, std::string_view) {
  c.fail(id, "unavailable", "port connect is not implemented yet");
  return nullptr;
}

}  // namespace warren::agent
