// cmd/warren/cli_args.cpp — see cli_args.hpp.
#include "cmd/warren/cli_args.hpp"

#include <cstdint>

namespace warren::cmd {

cli_args parse_cli(const std::vector<std::string>& args, std::set<std::string> valued,
                   std::set<std::string> switches, size_t stop_after) {
  valued.insert({"--api-url", "--api-key"});
  switches.insert({"--json", "--help", "-h"});
  cli_args out;
  bool options = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (!options || out.positional.size() >= stop_after || a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options = false;
      continue;
    }
    auto eq = a.find('=');
    auto name = a.substr(0, eq);
    if (valued.count(name)) {
      if (eq != std::string::npos) out.values[name].push_back(a.substr(eq + 1));
      else if (i + 1 < args.size()) out.values[name].push_back(args[++i]);
      else out.error = a + " needs a value";
    } else if (switches.count(a)) {
      out.switches.insert(a == "-h" ? "--help" : a);
    } else {
      out.error = "unknown option " + a;
    }
    if (!out.error.empty()) return out;
  }
  return out;
}

}  // namespace warren::cmd
