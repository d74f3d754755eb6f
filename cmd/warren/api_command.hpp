// cmd/warren/api_command.hpp — how an API-backed CLI command is declared and run: its options,
// its help text, and a function that gets a ready api_client. Shared by `warren sandbox`, `cp`
// and `admin` so help, option errors, config and error printing behave the same everywhere.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "cmd/warren/api_client.hpp"
#include "cmd/warren/cli_args.hpp"

namespace warren::cmd {

struct api_command {
  std::string name;               // "create"
  std::string summary;            // one line for the group's help
  std::string usage;              // full help of this command
  std::set<std::string> valued;   // options with a value
  std::set<std::string> switches; // options without
  size_t stop_after = SIZE_MAX;   // see parse_cli
  int (*run)(api_client&, const cli_args&) = nullptr;
};

// Options every API command takes, for the help texts.
inline constexpr const char* api_options_help =
    "  --api-url URL   API base URL (env WARREN_API_URL, default http://127.0.0.1:7070)\n"
    "  --api-key KEY   API key (env WARREN_API_KEY, default: the local daemon's admin key file)\n";

// `warren <group> <command> ...`: finds the command, parses its options, prints help on
// --help (exit 0) or on a usage error (exit 2), then runs it.
int run_api_group(const std::string& group, const std::string& group_usage,
                  const std::vector<api_command>& commands, std::vector<std::string> args);

// Runs one command directly (for `warren cp`, which is not a group).
int run_api_command(const std::string& prog, const api_command& cmd, const std::vector<std::string>& args);

// Prints "warren <prog>: <message>" to stderr and returns the exit code for it (1).
int fail(const std::string& prog, const std::string& message);

}  // namespace warren::cmd
