// cmd/warren/cli_args.hpp — the option parser the API subcommands share: `--name value`,
// `--name=value`, switches, positionals, `--` ends options. Knows nothing about any command.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace warren::cmd {

struct cli_args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // repeatable: --env A=1 --env B=2
  std::set<std::string> switches;
  std::string error;  // non-empty: a usage error to print

  bool has(const std::string& name) const { return switches.count(name) || values.count(name); }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second.back();
  }
};

// `valued`: options that take a value; `switches`: options that do not. --api-url, --api-key
// and --json are always known. Once `stop_after` positionals are seen, the rest are positional
// too (so `warren sandbox exec ID ls -la` passes `-la` to ls).
cli_args parse_cli(const std::vector<std::string>& args, std::set<std::string> valued,
                   std::set<std::string> switches, size_t stop_after = SIZE_MAX);

}  // namespace warren::cmd
