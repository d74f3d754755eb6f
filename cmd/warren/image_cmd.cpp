// cmd/warren/image_cmd.cpp — `warren image build|import|ls`: the image store from the shell.
// Works on the data dir directly (no daemon needed); a running daemon sees new images at once.
#include "cmd/warren/image_cmd.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

#include "cmd/warren/config.hpp"
#include "storage/image_store.hpp"

namespace warren::cmd {
namespace {

const char* usage =
    "usage: warren image <build|import|ls|rm> [options]\n"
    "  build NAME:TAG [--force]          build debian:bookworm (debootstrap), busybox:latest or base:latest (E2B)\n"
    "  import SOURCE --tag NAME:TAG      import a rootfs .tar, docker-save .tar or OCI layout dir\n"
    "  ls [--json]                       list images\n"
    "  rm NAME:TAG                       remove an image (and the layer blobs no other image uses)\n"
    "options: --data-dir DIR (default: /var/lib/warren as root, else ~/.local/share/warren)\n";

struct image_args {
  std::string data_dir = default_data_dir();
  std::string tag;
  bool force = false, json = false;
  std::vector<std::string> positional;
};

bool parse(const std::vector<std::string>& args, image_args& out, std::string& err) {
  for (size_t i = 0; i < args.size(); ++i) {
    auto& a = args[i];
    auto value = [&](std::string& to) {
      if (i + 1 >= args.size()) return err = a + " needs a value", false;
      to = args[++i];
      return true;
    };
    if (a == "--data-dir") { if (!value(out.data_dir)) return false; }
    else if (a.rfind("--data-dir=", 0) == 0) out.data_dir = a.substr(11);
    else if (a == "--tag") { if (!value(out.tag)) return false; }
    else if (a == "--force") out.force = true;
    else if (a == "--json") out.json = true;
    else if (a.rfind("--", 0) == 0) return err = "unknown option " + a, false;
    else out.positional.push_back(a);
  }
  return true;
}

int fail(const error& e) {
  std::cerr << "warren image: " << e.message << "\n";
  return 1;
}

}  // namespace

int image_main(std::vector<std::string> args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  auto sub = args[0];
  args.erase(args.begin());
  image_args a;
  std::string err;
  if (!parse(args, a, err)) return std::cerr << "warren image: " << err << "\n" << usage, 2;
  storage::image_store store(a.data_dir);
  if (sub == "build") {
    if (a.positional.size() != 1) return std::cerr << usage, 2;
    auto st = store.build(a.positional[0], a.force);
    return st ? 0 : fail(st.err());
  }
  if (sub == "import") {
    if (a.positional.size() != 1 || a.tag.empty()) return std::cerr << usage, 2;
    auto st = store.import(a.positional[0], a.tag, a.force);
    return st ? 0 : fail(st.err());
  }
  if (sub == "rm") {
    if (a.positional.size() != 1) return std::cerr << usage, 2;
    auto st = store.remove(a.positional[0]);
    return st ? 0 : fail(st.err());
  }
  if (sub == "ls") {
    auto names = store.list();
    if (a.json) {
      std::cout << nlohmann::json{{"images", names}}.dump() << "\n";
    } else {
      std::cout << "IMAGE\n";
      for (auto& n : names) std::cout << n << "\n";
    }
    return 0;
  }
  std::cerr << "warren image: unknown subcommand \"" << sub << "\"\n" << usage;
  return 2;
}

}  // namespace warren::cmd
