// vmm/jail/sandbox_process.hpp — starting the __jail-init helper from the multithreaded daemon,
// and telling our sandbox's PID 1 from a process that merely reuses its pid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "vmm/jail/launch_plan.hpp"

namespace warren::vmm::jail {

// posix_spawn(helper __jail-init) with fd 0 = plan, fd 1 = result, fd 3 = listen_fd; waits for
// its answer (at most timeout_ms, then SIGKILLs it) and reaps it. The sandbox's PID 1 is not
// our child: the helper's child forked it and exited, so the host's init reaps it.
expected<launch_result> run_helper(const std::string& helper_path, const launch_plan& plan, int listen_fd,
                                   int timeout_ms);

std::optional<uint64_t> process_start_time(int pid);  // /proc/<pid>/stat field 22
bool same_process(int pid, uint64_t start_time);

// A unix stream socket bound and listening at path (replacing a stale socket file).
expected<int> listen_unix(const std::string& path);
bool connect_unix(const std::string& path, int timeout_ms);

}  // namespace warren::vmm::jail
