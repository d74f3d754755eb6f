// cmd/warren/image_cmd.hpp — `warren image ...`.
#pragma once
#include <string>
#include <vector>
namespace warren::cmd {
int image_main(std::vector<std::string> args);
}
