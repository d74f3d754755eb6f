// cmd/warren/main.cpp — the `warren` binary: dispatches subcommands. Keeps no logic itself.
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cmd/warren/admin_cmd.hpp"
#include "cmd/warren/cp_cmd.hpp"
#include "cmd/warren/image_cmd.hpp"
#include "cmd/warren/sandbox_cmd.hpp"
#include "cmd/warren/serve.hpp"

namespace {
const char* usage =
    "usage: warren <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--data-dir DIR] [--listen HOST:PORT] [--config FILE]   run a node\n"
    "  image build|import|ls                                         manage images\n"
    "  sandbox create|ls|info|exec|shell|rm|url|expose|fork|hibernate|resume|checkpoint\n"
    "                                                                use sandboxes (API client)\n"
    "  snapshot ls|rm|restore                                        named snapshots (API client)\n"
    "  cp SRC DST                                                    copy files to/from a sandbox\n"
    "  admin keys create|rm                                          manage API keys\n"
    "  admin console                                                 interactive admin console\n"
    "  version                                                       print the version\n"
    "\n"
    "Run `warren <command> --help` for a command's options.\n";
}

int main(int argc, char** argv) {
  // Logs go to stderr; stdout carries only what a command prints for its user.
  spdlog::set_default_logger(spdlog::stderr_color_mt("warren"));
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  auto cmd = args[0];
  args.erase(args.begin());
  if (cmd == "serve") return warren::cmd::serve_main(args);
  if (cmd == "image") return warren::cmd::image_main(args);
  if (cmd == "sandbox") return warren::cmd::sandbox_main(args);
  if (cmd == "snapshot") return warren::cmd::snapshot_main(args);
  if (cmd == "cp") return warren::cmd::cp_main(args);
  if (cmd == "admin") return warren::cmd::admin_main(args);
  if (cmd == "version" || cmd == "--version") {
    std::cout << "warren " << WARREN_VERSION << "\n";
    return 0;
  }
  std::cerr << "warren: unknown command \"" << cmd << "\"\n\n" << usage;
  return 2;
}
