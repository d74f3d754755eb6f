// tests/unit/vmm/agent/agent_harness.hpp — starts the real warren-agent on the host with a temp
// socket and a temp --root, and drives an io_context synchronously for the tests.
#pragma once

#include <sys/types.h>

#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "vmm/agent/client.hpp"

namespace agent_test {

using namespace std::chrono_literals;

// One agent process. The destructor kills it (by its pid) and removes the temp dir.
struct agent_process {
  agent_process();
  ~agent_process();
  pid_t pid = -1;
  std::string dir;     // temp dir holding the socket and root/
  std::string socket;  // dir/agent.sock
  std::string root;    // dir/root: what file ops see as "/"
  long rss_kib() const;  // the agent's VmRSS
};

// Runs the io_context until `done()` or the timeout; returns done().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 30s);

std::shared_ptr<warren::agent::client> connect(boost::asio::io_context& io,
                                               const std::string& socket);

struct exec_result {
  std::string out, err;
  std::optional<warren::agent::exit_info> exit;
  std::optional<warren::error> error;
  int64_t pid = 0;
};
exec_result run(boost::asio::io_context& io, warren::agent::client& c,
                warren::agent::exec_request req, const std::string& stdin_data = {},
                std::chrono::milliseconds timeout = 30s);

bool pid_alive(pid_t pid);  // exists and is not a zombie
std::string slurp(const std::string& path);
void spit(const std::string& path, const std::string& data);

}  // namespace agent_test
