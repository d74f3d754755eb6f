// vmm/jail/host_command.hpp — running a host tool (mkfs.xfs, mount, nft) from the
// multithreaded daemon: posix_spawn (vfork-like, no code runs between fork and exec).
#pragma once

#include <string>
#include <vector>

namespace warren::vmm::jail {

struct command_result {
  int exit_code = -1;  // -1: could not start; 128+N: killed by signal N
  std::string output;  // stdout and stderr, merged
};

command_result run_command(const std::vector<std::string>& argv, const std::string& stdin_text = "");

}  // namespace warren::vmm::jail
