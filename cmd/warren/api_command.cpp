// cmd/warren/api_command.cpp — see api_command.hpp.
#include "cmd/warren/api_command.hpp"

#include <iostream>

#include "cmd/warren/api_config.hpp"

namespace warren::cmd {

int fail(const std::string& prog, const std::string& message) {
  std::cerr << "warren " << prog << ": " << message << "\n";
  return 1;
}

int run_api_command(const std::string& prog, const api_command& cmd, const std::vector<std::string>& args) {
  auto a = parse_cli(args, cmd.valued, cmd.switches, cmd.stop_after);
  if (a.has("--help") && a.error.empty()) {
    std::cout << cmd.usage << api_options_help;
    return 0;
  }
  if (!a.error.empty()) {
    std::cerr << "warren " << prog << ": " << a.error << "\n\n" << cmd.usage;
    return 2;
  }
  api_client client(resolve_api_config(a.get("--api-url"), a.get("--api-key")));
  return cmd.run(client, a);
}

int run_api_group(const std::string& group, const std::string& group_usage,
                  const std::vector<api_command>& commands, std::vector<std::string> args) {
  auto help = [&](std::ostream& os) {
    os << group_usage << "\ncommands:\n";
    for (auto& c : commands) {
      os << "  " << c.name << std::string(c.name.size() < 10 ? 10 - c.name.size() : 1, ' ') << c.summary << "\n";
    }
    os << "\noptions of every command:\n" << api_options_help
       << "  --json          machine-readable output\n"
       << "\nRun `warren " << group << " <command> --help` for a command's options.\n";
  };
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    help(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  for (auto& c : commands) {
    if (c.name == args[0]) {
      return run_api_command(group + " " + c.name, c, {args.begin() + 1, args.end()});
    }
  }
  std::cerr << "warren " << group << ": unknown command \"" << args[0] << "\"\n\n";
  help(std::cerr);
  return 2;
}

}  // namespace warren::cmd
