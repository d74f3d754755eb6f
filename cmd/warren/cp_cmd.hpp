// cmd/warren/cp_cmd.hpp — `warren cp SRC DST`, copies between this machine and a sandbox.
#pragma once
#include <string>
#include <vector>
namespace warren::cmd {
int cp_main(std::vector<std::string> args);
}
