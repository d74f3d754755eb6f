// cmd/warren/admin_cmd.cpp — `warren admin keys create|rm`: API keys over the admin API (needs
// an admin key). A minted key is printed once and never again, as the API shows it once.
#include "cmd/warren/admin_cmd.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

#include "cmd/warren/api_command.hpp"
#include "cmd/warren/console_cmd.hpp"

namespace warren::cmd {
namespace {

const char* usage =
    "usage: warren admin <keys|console> [options]\n"
    "  keys create --tenant NAME [--admin] [--json]   mint a key (printed only this once)\n"
    "  keys rm KEY_ID                                 revoke a key\n"
    "  console                                        interactive admin console (tree, ps, top, kill, ...)\n";

int create_key(api_client& c, const cli_args& a) {
  if (!a.values.count("--tenant")) return fail("admin keys create", "--tenant is required"), 2;
  nlohmann::json body{{"tenant", a.get("--tenant")}, {"admin", a.has("--admin")}};
  auto r = call_json(c, "POST", "/v1/admin/keys", body.dump());
  if (!r) return fail("admin keys create", r.err().message);
  auto j = nlohmann::json::parse(*r, nullptr, false);
  if (a.has("--json")) return std::cout << j.dump() << "\n", 0;
  std::cout << j.value("key", std::string()) << "\n";
  std::cerr << "key id " << j.value("key_id", std::string()) << " for tenant " << j.value("tenant", std::string())
            << (j.value("admin", false) ? " (admin)" : "") << "; the key is not shown again\n";
  return 0;
}

int revoke_key(api_client& c, const cli_args& a) {
  if (a.positional.size() != 1) return fail("admin keys rm", "usage: warren admin keys rm KEY_ID"), 2;
  auto r = call_json(c, "DELETE", "/v1/admin/keys/" + url_encode(a.positional[0]));
  if (!r) return fail("admin keys rm", r.err().message);
  if (a.has("--json")) std::cout << nlohmann::json{{"key_id", a.positional[0]}, {"revoked", true}}.dump() << "\n";
  return 0;
}

}  // namespace

int admin_main(std::vector<std::string> args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? std::cerr : std::cout) << usage << api_options_help;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "console") return run_api_command("admin console", console_command, {args.begin() + 1, args.end()});
  if (args[0] != "keys") return std::cerr << "warren admin: unknown command \"" << args[0] << "\"\n\n" << usage, 2;
  static const std::vector<api_command> keys = {
      {"create", "mint an API key for a tenant",
       "usage: warren admin keys create --tenant NAME [--admin] [--json]\n", {"--tenant"}, {"--admin"}, SIZE_MAX,
       create_key},
      {"rm", "revoke an API key", "usage: warren admin keys rm KEY_ID\n", {}, {}, SIZE_MAX, revoke_key},
  };
  return run_api_group("admin keys", usage, keys, {args.begin() + 1, args.end()});
}

}  // namespace warren::cmd
