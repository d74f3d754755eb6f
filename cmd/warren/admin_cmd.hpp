// cmd/warren/admin_cmd.hpp — `warren admin keys create|rm`.
#pragma once
#include <string>
#include <vector>
namespace warren::cmd {
int admin_main(std::vector<std::string> args);
}
