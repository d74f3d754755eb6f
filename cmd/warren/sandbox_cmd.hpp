// cmd/warren/sandbox_cmd.hpp — `warren sandbox create|ls|info|exec|shell|rm|url|expose`.
#pragma once
#include <string>
#include <vector>
namespace warren::cmd {
int sandbox_main(std::vector<std::string> args);
}
