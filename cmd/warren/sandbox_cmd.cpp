// cmd/warren/sandbox_cmd.cpp — `warren sandbox ...`: sandboxes from the shell, over the API.
// Tables for humans, --json for scripts; `exec` exits with the command's exit code.
#include "cmd/warren/sandbox_cmd.hpp"

#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cmd/warren/api_command.hpp"
#include "cmd/warren/raw_terminal.hpp"

namespace warren::cmd {
namespace {

using json = nlohmann::json;

// Exit status of `exec` when the command ran past its timeout (as timeout(1) does).
constexpr int exit_timed_out = 124;

std::string sandbox_path(const std::string& id, const std::string& rest = "") {
  return "/v1/sandboxes/" + url_encode(id) + rest;
}

// Runs an API call and parses its JSON; prints the error and yields nullopt on failure.
std::optional<json> call(api_client& c, const std::string& prog, std::string_view method,
                         const std::string& target, const std::string& body = "", double timeout_s = 60) {
  auto r = call_json(c, method, target, body, timeout_s);
  if (!r) {
    fail(prog, r.err().message);
    return std::nullopt;
  }
  return r->empty() ? json() : json::parse(*r, nullptr, false);
}

void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size(); ++i)
      std::cout << (i + 1 < r.size() ? (std::ostringstream() << std::left << std::setw(static_cast<int>(w[i]) + 2) << r[i]).str() : r[i]);
    std::cout << "\n";
  };
  line(head);
  for (auto& r : rows) line(r);
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// Turns repeated --env K=V into a JSON object; false (and a message) on a malformed one.
bool env_object(const cli_args& a, json& out, const std::string& prog) {
  out = json::object();
  auto it = a.values.find("--env");
  if (it == a.values.end()) return true;
  for (auto& kv : it->second) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return fail(prog, "--env wants KEY=VALUE, not \"" + kv + "\""), false;
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return true;
}

// --- create ---------------------------------------------------------------------------------

int create(api_client& c, const cli_args& a) {
  const std::string prog = "sandbox create";
  json body = json::object();
  auto number = [&](const char* flag, const char* field) {
    if (!a.values.count(flag)) return true;
    try {
      body[field] = std::stoll(a.get(flag));
      return true;
    } catch (const std::exception&) {
      return fail(prog, std::string(flag) + " wants a number"), false;
    }
  };
  if (!number("--vcpus", "vcpus") || !number("--mem", "mem_mib") || !number("--disk", "disk_mib") ||
      !number("--timeout", "timeout") || !number("--sandbox-timeout", "sandbox_timeout"))
    return 2;
  for (auto [flag, field] : {std::pair{"--image", "image"}, {"--network-profile", "network_profile"},
                             {"--isolation", "isolation"}})
    if (a.values.count(flag)) body[field] = a.get(flag);
  for (auto [flag, field] : {std::pair{"--allow", "allow"}, {"--deny", "deny"}})
    if (a.values.count(flag)) body[field] = a.values.at(flag);
  json env;
  if (!env_object(a, env, prog)) return 2;
  if (!env.empty()) body["env"] = env;
  if (a.values.count("--metadata")) {
    auto m = json::parse(a.get("--metadata"), nullptr, false);
    if (!m.is_object()) return fail(prog, "--metadata wants a JSON object"), 2;
    body["metadata"] = m;
  }
  auto sb = call(c, prog, "POST", "/v1/sandboxes", body.dump(), 300);
  if (!sb) return 1;
  std::cout << (a.has("--json") ? sb->dump() : str(*sb, "id")) << "\n";
  return 0;
}

// --- ls / info ------------------------------------------------------------------------------

int list(api_client& c, const cli_args& a) {
  auto r = call(c, "sandbox ls", "GET", "/v1/sandboxes");
  if (!r) return 1;
  if (a.has("--json")) return std::cout << r->dump() << "\n", 0;
  std::vector<std::vector<std::string>> rows;
  for (auto& s : (*r)["sandboxes"])
    rows.push_back({str(s, "id"), str(s, "image"), str(s, "state"), str(s, "isolation"), str(s, "vcpus"),
                    str(s, "mem_mib"), str(s, "created_at")});
  print_table({"ID", "IMAGE", "STATE", "ISOLATION", "VCPUS", "MEM_MIB", "CREATED"}, rows);
  return 0;
}

int info(api_client& c, const cli_args& a) {
  if (a.positional.size() != 1) return fail("sandbox info", "usage: warren sandbox info ID"), 2;
  auto r = call(c, "sandbox info", "GET", sandbox_path(a.positional[0]));
  if (!r) return 1;
  if (a.has("--json")) return std::cout << r->dump() << "\n", 0;
  for (auto& [k, v] : r->items()) std::cout << std::left << std::setw(17) << (k + ":") << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  return 0;
}

// --- exec -----------------------------------------------------------------------------------

// One argument is a shell command line as is; several are quoted one by one, like ssh does not.
std::string command_line(const std::vector<std::string>& words) {
  if (words.size() == 1) return words[0];
  std::string out;
  for (auto& w : words) {
    if (!out.empty()) out += ' ';
    bool plain = !w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += w;
      continue;
    }
    out += '\'';
    for (char ch : w) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    out += '\'';
  }
  return out;
}

void write_all(int fd, const std::string& s) {
  for (size_t off = 0; off < s.size();) {
    auto n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

int exec(api_client& c, const cli_args& a) {
  const std::string prog = "sandbox exec";
  if (a.positional.size() < 2) return fail(prog, "usage: warren sandbox exec ID [options] [--] COMMAND..."), 2;
  json body{{"command", command_line({a.positional.begin() + 1, a.positional.end()})}};
  double timeout = 30;
  if (a.values.count("--timeout")) {
    try {
      timeout = std::stod(a.get("--timeout"));
      body["timeout"] = static_cast<int64_t>(timeout);
    } catch (const std::exception&) {
      return fail(prog, "--timeout wants seconds"), 2;
    }
  }
  json env;
  if (!env_object(a, env, prog)) return 2;
  if (!env.empty()) body["env"] = env;
  if (a.values.count("--cwd")) body["cwd"] = a.get("--cwd");
  if (a.has("--stdin")) body["stdin"] = std::string(std::istreambuf_iterator<char>(std::cin), {});
  auto target = sandbox_path(a.positional[0], "/exec");
  if (a.has("--json")) {
    auto r = c.request("POST", target, body.dump(), timeout + 30);
    if (!r) return fail(prog, r.err().message);
    auto j = json::parse(r->body, nullptr, false);
    if (r->status == 504 && j.contains("error")) return std::cout << r->body << "\n", exit_timed_out;
    if (!r->ok()) return fail(prog, describe_error(*r));
    std::cout << r->body << "\n";
    return j.value("exit_code", 1);
  }
  int exit_code = -1;
  std::string error_line;
  auto r = c.events(target + "/stream", body.dump(), [&](const std::string& ev, const std::string& data) {
    auto j = json::parse(data, nullptr, false);
    if (ev == "stdout" || ev == "stderr") write_all(ev == "stdout" ? 1 : 2, j.value("data", std::string()));
    else if (ev == "exit") exit_code = j.value("exit_code", 1);
    else if (ev == "error") error_line = describe_error({504, "application/json", data});
    return true;
  }, timeout + 30);
  if (!r) return fail(prog, r.err().message);
  if (!r->ok()) return fail(prog, describe_error(*r));
  if (!error_line.empty()) {
    fail(prog, error_line);
    return error_line.rfind("timeout", 0) == 0 ? exit_timed_out : 1;
  }
  if (exit_code < 0) return fail(prog, "the stream ended before the command exited");
  return exit_code;
}

// --- shell ----------------------------------------------------------------------------------

int shell(api_client& c, const cli_args& a) {
  const std::string prog = "sandbox shell";
  if (a.positional.size() != 1) return fail(prog, "usage: warren sandbox shell ID [--command CMD]"), 2;
  if (!::isatty(0)) return fail(prog, "needs a terminal on stdin (use `warren sandbox exec` in scripts)"), 2;
  std::string target;
  std::pair<unsigned, unsigned> size;
  expected<std::string> reason = std::string();
  {
    raw_terminal term(0);
    size = term.size();
    target = sandbox_path(a.positional[0], "/pty") + "?cols=" + std::to_string(size.first) +
             "&rows=" + std::to_string(size.second);
    if (a.values.count("--command")) target += "&command=" + url_encode(a.get("--command"));
    terminal_io io{0, 1, term.resize_fd(), [&term] { return term.size(); }};
    reason = c.terminal(target, io);
  }
  if (!reason) return fail(prog, reason.err().message);
  if (reason->rfind("exit ", 0) == 0) {
    try {
      return std::stoi(reason->substr(5));
    } catch (const std::exception&) {
    }
  }
  return 0;
}

// --- rm -------------------------------------------------------------------------------------

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  std::ostringstream os;
  os << std::fixed << std::setprecision(u ? 1 : 0) << b << " " << units[u];
  return os.str();
}

int remove(api_client& c, const cli_args& a) {
  if (a.positional.empty()) return fail("sandbox rm", "usage: warren sandbox rm ID..."), 2;
  int rc = 0;
  for (auto& id : a.positional) {
    auto r = call(c, "sandbox rm", "DELETE", sandbox_path(id), "", 120);
    if (!r) {
      rc = 1;
      continue;
    }
    (*r)["id"] = id;
    if (a.has("--json")) {
      std::cout << r->dump() << "\n";
      continue;
    }
    std::cout << id << " destroyed: cpu " << r->value("cpu_ms", 0.0) << " ms, peak memory "
              << human_bytes(r->value("mem_peak_bytes", 0.0)) << ", disk "
              << human_bytes(r->value("disk_used_bytes", 0.0)) << ", up " << r->value("uptime_ms", 0.0) / 1000
              << " s\n";
  }
  return rc;
}

// --- url / expose ---------------------------------------------------------------------------

bool port_arg(const cli_args& a, const std::string& prog, std::string& port) {
  if (a.positional.size() != 2) return fail(prog, "usage: warren " + prog + " ID PORT"), false;
  port = a.positional[1];
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos)
    return fail(prog, "PORT must be a number, not \"" + port + "\""), false;
  return true;
}

int url(api_client& c, const cli_args& a) {
  std::string port;
  if (!port_arg(a, "sandbox url", port)) return 2;
  auto r = call(c, "sandbox url", "GET", sandbox_path(a.positional[0], "/url") + "?port=" + port);
  if (!r) return 1;
  std::cout << (a.has("--json") ? r->dump() : str(*r, "url")) << "\n";
  return 0;
}

int expose(api_client& c, const cli_args& a) {
  std::string port;
  if (!port_arg(a, "sandbox expose", port)) return 2;
  auto id = a.positional[0];
  if (a.has("--rm")) {
    auto r = call(c, "sandbox expose", "DELETE", sandbox_path(id, "/exposures/" + port));
    return r ? 0 : 1;
  }
  json body{{"port", std::stoi(port)}, {"auth", !a.has("--no-auth")}};
  auto r = call(c, "sandbox expose", "POST", sandbox_path(id, "/expose"), body.dump());
  if (!r) return 1;
  if (a.has("--json")) return std::cout << r->dump() << "\n", 0;
  std::cout << "url:          " << str(*r, "url") << "\n";
  if (body["auth"]) {
    std::cout << "browser_url:  " << str(*r, "browser_url") << "\n"
              << "token:        " << str(*r, "token") << "   (send Authorization: Bearer <token>; shown once)\n";
  }
  return 0;
}

// --- fork / hibernate / resume / checkpoint, and `warren snapshot` ----------------------------

int fork_cmd(api_client& c, const cli_args& a) {
  if (a.positional.size() != 1) return fail("sandbox fork", "usage: warren sandbox fork ID [--count N]"), 2;
  json body = json::object();
  if (a.values.count("--count")) {
    auto n = json::parse(a.get("--count"), nullptr, false);
    if (!n.is_number_integer()) return fail("sandbox fork", "--count wants an integer 1..64"), 2;
    body["count"] = n;
  }
  auto r = call(c, "sandbox fork", "POST", sandbox_path(a.positional[0], "/fork"), body.dump(), 600);
  if (!r) return 1;
  if (a.has("--json")) return std::cout << r->dump() << "\n", 0;
  for (auto& s : (*r)["sandboxes"]) std::cout << str(s, "id") << "\n";
  return 0;
}

// hibernate / resume: the sandbox afterwards.
int state_change(api_client& c, const cli_args& a, const std::string& verb) {
  if (a.positional.size() != 1) return fail("sandbox " + verb, "usage: warren sandbox " + verb + " ID"), 2;
  auto r = call(c, "sandbox " + verb, "POST", sandbox_path(a.positional[0], "/" + verb), "{}", 300);
  if (!r) return 1;
  std::cout << (a.has("--json") ? r->dump() : str(*r, "id") + " " + str(*r, "state")) << "\n";
  return 0;
}
int hibernate_cmd(api_client& c, const cli_args& a) { return state_change(c, a, "hibernate"); }
int resume_cmd(api_client& c, const cli_args& a) { return state_change(c, a, "resume"); }

int checkpoint_cmd(api_client& c, const cli_args& a) {
  if (a.positional.size() != 1) return fail("sandbox checkpoint", "usage: warren sandbox checkpoint ID [--name N]"), 2;
  json body = json::object();
  if (a.values.count("--name")) body["name"] = a.get("--name");
  auto r = call(c, "sandbox checkpoint", "POST", sandbox_path(a.positional[0], "/checkpoints"), body.dump(), 600);
  if (!r) return 1;
  std::cout << (a.has("--json") ? r->dump() : str(*r, "snapshot_id")) << "\n";
  return 0;
}

std::string snapshot_path(const std::string& sid, const std::string& rest = "") {
  return "/v1/snapshots/" + url_encode(sid) + rest;
}

int snapshot_ls(api_client& c, const cli_args& a) {
  auto r = call(c, "snapshot ls", "GET", "/v1/snapshots");
  if (!r) return 1;
  if (a.has("--json")) return std::cout << r->dump() << "\n", 0;
  std::vector<std::vector<std::string>> rows;
  for (auto& s : (*r)["snapshots"])
    rows.push_back({str(s, "snapshot_id"), str(s, "sandbox_id"), str(s, "name"), str(s, "image"),
                    human_bytes(s.value("size_bytes", 0.0)), str(s, "created_at")});
  print_table({"ID", "SANDBOX", "NAME", "IMAGE", "SIZE", "CREATED"}, rows);
  return 0;
}

int snapshot_rm(api_client& c, const cli_args& a) {
  if (a.positional.empty()) return fail("snapshot rm", "usage: warren snapshot rm SNAPSHOT_ID..."), 2;
  int rc = 0;
  for (auto& sid : a.positional)
    if (!call(c, "snapshot rm", "DELETE", snapshot_path(sid), "", 120)) rc = 1;
  return rc;
}

int snapshot_restore(api_client& c, const cli_args& a) {
  if (a.positional.size() != 1) return fail("snapshot restore", "usage: warren snapshot restore SNAPSHOT_ID"), 2;
  json body = json::object();
  if (a.values.count("--sandbox-timeout")) {
    auto n = json::parse(a.get("--sandbox-timeout"), nullptr, false);
    if (!n.is_number_integer()) return fail("snapshot restore", "--sandbox-timeout wants an integer"), 2;
    body["sandbox_timeout"] = n;
  }
  auto r = call(c, "snapshot restore", "POST", snapshot_path(a.positional[0], "/restore"), body.dump(), 600);
  if (!r) return 1;
  std::cout << (a.has("--json") ? r->dump() : str(*r, "id")) << "\n";
  return 0;
}

const std::vector<api_command>& snapshot_commands() {
  static const std::vector<api_command> cmds = {
      {"ls", "list snapshots", "usage: warren snapshot ls [--json]\n", {}, {}, SIZE_MAX, snapshot_ls},
      {"rm", "delete snapshots and free their disk", "usage: warren snapshot rm SNAPSHOT_ID...\n", {}, {},
       SIZE_MAX, snapshot_rm},
      {"restore", "a new sandbox from a snapshot; prints its id",
       "usage: warren snapshot restore SNAPSHOT_ID [--sandbox-timeout S] [--json]\n", {"--sandbox-timeout"}, {},
       SIZE_MAX, snapshot_restore},
  };
  return cmds;
}

const std::vector<api_command>& commands() {
  static const std::vector<api_command> cmds = {
      {"create", "create a sandbox and print its id",
       "usage: warren sandbox create [options]\n"
       "  --image NAME:TAG         image (default: the node's default image)\n"
       "  --vcpus N  --mem MIB  --disk MIB\n"
       "  --timeout S              default exec timeout (30)\n"
       "  --sandbox-timeout S      destroy after S idle seconds, -1 never (300)\n"
       "  --network-profile P      default | locked-down | internet\n"
       "  --isolation I            jail | microvm\n"
       "  --env KEY=VALUE          environment of every command (repeatable)\n"
       "  --allow X  --deny X      egress rules, CIDR or domain (repeatable)\n"
       "  --metadata JSON          free-form object kept with the sandbox\n"
       "  --json                   print the whole sandbox object\n",
       {"--image", "--vcpus", "--mem", "--disk", "--timeout", "--sandbox-timeout", "--network-profile",
        "--isolation", "--env", "--allow", "--deny", "--metadata"},
       {}, SIZE_MAX, create},
      {"ls", "list sandboxes", "usage: warren sandbox ls [--json]\n", {}, {}, SIZE_MAX, list},
      {"info", "show one sandbox", "usage: warren sandbox info ID [--json]\n", {}, {}, SIZE_MAX, info},
      {"exec", "run a command; exits with its exit code",
       "usage: warren sandbox exec ID [options] [--] COMMAND...\n"
       "Runs COMMAND under /bin/sh -c, streaming its stdout and stderr as they come; exits with\n"
       "its exit code (124 past its timeout). One COMMAND argument is a shell command line; several\n"
       "are quoted one by one. Options go before COMMAND.\n"
       "  --timeout S       kill the command after S seconds (default: the sandbox's timeout)\n"
       "  --env KEY=VALUE   (repeatable)\n"
       "  --cwd DIR         absolute working directory\n"
       "  --stdin           send this process's stdin to the command\n"
       "  --json            wait and print {exit_code, stdout, stderr, duration_ms} instead\n",
       {"--timeout", "--env", "--cwd"}, {"--stdin"}, 2, exec},
      {"shell", "open an interactive terminal",
       "usage: warren sandbox shell ID [--command CMD]\n"
       "Opens a terminal (the pty WebSocket) in raw mode; the window size follows yours.\n"
       "Exits with the program's exit code. Default program: bash -l (sh -l without bash).\n",
       {"--command"}, {}, SIZE_MAX, shell},
      {"url", "print the public URL of a port", "usage: warren sandbox url ID PORT [--json]\n", {}, {},
       SIZE_MAX, url},
      {"expose", "expose a port (token auth by default)",
       "usage: warren sandbox expose ID PORT [--no-auth] [--rm] [--json]\n"
       "Exposes PORT: with auth (the default) the proxy demands the printed token (or the cookie\n"
       "browser_url sets); --no-auth makes it public; --rm deletes the exposure.\n",
       {}, {"--no-auth", "--rm"}, SIZE_MAX, expose},
      {"rm", "destroy sandboxes and print what they used", "usage: warren sandbox rm ID... [--json]\n", {}, {},
       SIZE_MAX, remove},
      {"fork", "clone a running sandbox into N children; prints their ids",
       "usage: warren sandbox fork ID [--count N] [--json]\n", {"--count"}, {}, SIZE_MAX, fork_cmd},
      {"hibernate", "freeze a sandbox where it stands (same id)", "usage: warren sandbox hibernate ID [--json]\n",
       {}, {}, SIZE_MAX, hibernate_cmd},
      {"resume", "let a hibernated sandbox go on", "usage: warren sandbox resume ID [--json]\n", {}, {}, SIZE_MAX,
       resume_cmd},
      {"checkpoint", "save a named snapshot; prints its id",
       "usage: warren sandbox checkpoint ID [--name N] [--json]\n", {"--name"}, {}, SIZE_MAX, checkpoint_cmd},
  };
  return cmds;
}

}  // namespace

int sandbox_main(std::vector<std::string> args) {
  return run_api_group("sandbox", "usage: warren sandbox <command> [options]\n", commands(), std::move(args));
}

int snapshot_main(std::vector<std::string> args) {
  return run_api_group("snapshot", "usage: warren snapshot <command> [options]\n", snapshot_commands(),
                       std::move(args));
}

}  // namespace warren::cmd
