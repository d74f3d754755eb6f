// cmd/warren/serve.hpp — `warren serve`.
#pragma once
#include <string>
#include <vector>
namespace warren::cmd {
int serve_main(std::vector<std::string> args);
}
