// cmd/warren/sandbox_cmd.hpp — `warren sandbox create|ls|info|exec|shell|rm|url|expose|fork|
// hibernate|resume|checkpoint` and `warren snapshot ls|rm|restore`.
#pragma once
#include <string>
#include <vector>
namespace warren::cmd {
int sandbox_main(std::vector<std::string> args);
int snapshot_main(std::vector<std::string> args);
}
