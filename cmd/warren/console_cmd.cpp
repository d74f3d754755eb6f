// cmd/warren/console_cmd.cpp — `warren admin console`: an interactive console over the admin
// API (docs/cli.md, docs/guides/operations-console.md). Line editing, history and tab completion
// come from libedit (its readline interface); `top` is a full-screen view redrawn every second.
#include "cmd/warren/console_cmd.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <editline/readline.h>
#include <nlohmann/json.hpp>

#include "cmd/warren/api_command.hpp"
#include "cmd/warren/raw_terminal.hpp"

namespace warren::cmd {
namespace {

using json = nlohmann::json;

const char* console_help =
    "commands:\n"
    "  nodes              the nodes and their state\n"
    "  tree [NODE]        the supervision tree: node, sandboxes, shells, terminals, ports, snapshots\n"
    "  ps                 sandboxes with state, age, CPU, memory and counters\n"
    "  inspect ID         everything about one actor (sandbox, shell, terminal, port, snapshot)\n"
    "  top                live full-screen view of the sandboxes (q to leave)\n"
    "  logs ID            a sandbox's logs\n"
    "  kill ID            end a shell or terminal; destroy a sandbox or snapshot\n"
    "  hibernate ID       freeze a sandbox;  resume ID: thaw it\n"
    "  reconnect ID       drop a sandbox's agent connection and open a new one (ends its streams)\n"
    "  revoke KEY_ID      revoke an API key\n"
    "  drain NODE         move a node's sandboxes away (needs the cluster)\n"
    "  help               this list\n"
    "  quit               leave (also Ctrl-D)\n";

const std::vector<std::string> commands = {"nodes", "tree", "ps", "inspect", "top", "logs", "kill",
                                           "hibernate", "resume", "reconnect", "revoke", "drain", "help", "quit"};

api_client* client = nullptr;  // for the completion callback (libedit has no user pointer)

expected<json> get_tree() {
  auto r = call_json(*client, "GET", "/v1/admin/actors");
  if (!r) return r.err();
  auto j = json::parse(*r, nullptr, false);
  if (j.is_discarded()) return make_error(errc::internal, "the tree is not JSON");
  return j;
}

template <class Fn>
void walk(const json& e, int depth, Fn& fn) {
  fn(e, depth);
  for (auto& c : e.value("children", json::array())) walk(c, depth + 1, fn);
}

template <class Fn>
void walk_tree(const json& t, Fn fn) {
  for (auto& n : t.value("nodes", json::array())) walk(n, 0, fn);
}

std::string age(int64_t s) {
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string bytes(const json& v) {
  if (!v.is_number()) return "-";
  double b = v.get<double>();
  const char* u[] = {"B", "K", "M", "G", "T"};
  int i = 0;
  while (b >= 1024 && i < 4) b /= 1024, ++i;
  std::ostringstream os;
  os << std::fixed << std::setprecision(b < 10 && i ? 1 : 0) << b << u[i];
  return os.str();
}

std::string num(const json& v) { return v.is_number() ? v.dump() : "-"; }

// The key counters of an entry, as "name=value" pairs.
std::string counters_line(const json& e) {
  std::string out;
  auto cs = e.value("counters", json::object());
  for (auto& [k, v] : cs.items()) {
    if (v.is_null()) continue;
    bool is_bytes = k.find("bytes") != std::string::npos;
    out += (out.empty() ? "" : " ") + k + "=" + (is_bytes ? bytes(v) : v.dump());
  }
  return out;
}

void print_error(const error& e) { std::cout << "error: " << e.message << "\n"; }

void cmd_nodes() {
  auto t = get_tree();
  if (!t) return print_error(t.err());
  std::cout << std::left << std::setw(10) << "NODE" << std::setw(8) << "STATE" << std::setw(22) << "ADDRESS"
            << std::setw(8) << "AGE" << std::setw(10) << "SANDBOXES" << "SNAPSHOTS\n";
  for (auto& n : t->value("nodes", json::array())) {
    auto c = n.value("counters", json::object());
    std::cout << std::left << std::setw(10) << n.value("id", "") << std::setw(8) << n.value("state", "")
              << std::setw(22) << n.value("address", "") << std::setw(8) << age(n.value("age_s", 0))
              << std::setw(10) << num(c["sandboxes"]) << num(c["snapshots"]) << "\n";
  }
}

void cmd_tree(const std::string& node) {
  auto t = get_tree();
  if (!t) return print_error(t.err());
  bool any = false;
  for (auto& n : t->value("nodes", json::array())) {
    if (!node.empty() && n.value("id", "") != node) continue;
    any = true;
    auto print = [](const json& e, int depth) {
      std::cout << std::string(depth * 2, ' ') << e.value("kind", "") << " " << e.value("id", "") << "  ["
                << e.value("state", "") << "]  age " << age(e.value("age_s", 0)) << "  mailbox "
                << num(e["mailbox"]) << "  restarts " << e.value("restarts", 0);
      auto c = counters_line(e);
      if (!c.empty()) std::cout << "  " << c;
      std::cout << "\n";
    };
    walk(n, 0, print);
  }
  if (!any) std::cout << "no node " << node << "\n";
}

// The sandbox table of ps and top.
std::string sandbox_table(const json& t, size_t max_rows) {
  std::ostringstream os;
  os << std::left << std::setw(18) << "SANDBOX" << std::setw(12) << "TENANT" << std::setw(11) << "STATE"
     << std::setw(7) << "AGE" << std::setw(9) << "CPU" << std::setw(8) << "MEM" << std::setw(7) << "EXECS"
     << std::setw(8) << "STREAMS" << std::setw(8) << "IN" << std::setw(8) << "OUT" << std::setw(6) << "KIDS"
     << "IMAGE\n";
  size_t rows = 0, total = 0;
  walk_tree(t, [&](const json& e, int) {
    if (e.value("kind", "") != "sandbox") return;
    ++total;
    if (rows >= max_rows) return;
    ++rows;
    auto c = e.value("counters", json::object());
    std::string cpu = c["cpu_ms"].is_number() ? std::to_string(c["cpu_ms"].get<int64_t>()) + "ms" : "-";
    os << std::left << std::setw(18) << e.value("id", "") << std::setw(12) << e.value("tenant", "").substr(0, 11)
       << std::setw(11) << e.value("state", "") << std::setw(7) << age(e.value("age_s", 0)) << std::setw(9) << cpu
       << std::setw(8) << bytes(c["mem_current_bytes"]) << std::setw(7) << num(c["execs"]) << std::setw(8)
       << num(c["open_streams"]) << std::setw(8) << bytes(c["bytes_in"]) << std::setw(8) << bytes(c["bytes_out"])
       << std::setw(6) << e.value("children", json::array()).size() << e.value("image", "") << "\n";
  });
  if (total == 0) os << "(no sandboxes)\n";
  else if (total > rows) os << "... " << (total - rows) << " more\n";
  return os.str();
}

void cmd_ps() {
  auto t = get_tree();
  if (!t) return print_error(t.err());
  std::cout << sandbox_table(*t, SIZE_MAX);
}

void cmd_inspect(const std::string& id) {
  if (id.empty()) return void(std::cout << "usage: inspect ID\n");
  auto r = call_json(*client, "GET", "/v1/admin/actors/" + url_encode(id));
  if (!r) return print_error(r.err());
  std::cout << json::parse(*r, nullptr, false).dump(2) << "\n";
}

// POST /v1/admin/actors/ID/VERB and prints the new state.
void act(const std::string& id, const std::string& verb) {
  auto r = call_json(*client, "POST", "/v1/admin/actors/" + url_encode(id) + "/" + verb, "{}", 300);
  if (!r) return print_error(r.err());
  auto j = json::parse(*r, nullptr, false);
  std::cout << j.value("kind", std::string("sandbox")) << " " << j.value("id", id) << ": "
            << j.value("state", std::string("?")) << "\n";
}

void cmd_kill(const std::string& id) {
  if (id.empty()) return void(std::cout << "usage: kill ID\n");
  bool session = id.rfind("sh_", 0) == 0 || id.rfind("pty_", 0) == 0;
  act(id, session ? "kill" : "destroy");
}

void cmd_revoke(const std::string& key_id) {
  if (key_id.empty()) return void(std::cout << "usage: revoke KEY_ID\n");
  auto r = call_json(*client, "DELETE", "/v1/admin/keys/" + url_encode(key_id));
  if (!r) return print_error(r.err());
  std::cout << "key " << key_id << ": revoked\n";
}

// The API answers 503 (the cluster is not built) or 404 (no such node): said as it is.
void cmd_drain(const std::string& node) {
  if (node.empty()) return void(std::cout << "usage: drain NODE\n");
  auto r = call_json(*client, "POST", "/v1/admin/nodes/" + url_encode(node) + "/drain", "{}");
  if (!r) return print_error(r.err());
  std::cout << "node " << node << ": draining\n";
}

std::pair<unsigned, unsigned> term_size() {
  winsize w{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col && w.ws_row) return {w.ws_col, w.ws_row};
  return {80, 24};
}

// Full screen, redrawn every second until q (or Ctrl-C) is pressed.
void cmd_top() {
  if (!isatty(STDIN_FILENO)) return void(std::cout << "top needs a terminal\n");
  raw_terminal raw(STDIN_FILENO);
  std::cout << "\x1b[?1049h\x1b[?25l" << std::flush;  // alternate screen, hide the cursor
  for (;;) {
    auto [cols, rows] = term_size();
    std::ostringstream os;
    os << "\x1b[H\x1b[2J";
    auto t = get_tree();
    if (!t) {
      os << "error: " << t.err().message << "\r\n";
    } else {
      size_t sandboxes = 0, shells = 0, terminals = 0, ports = 0, snapshots = 0;
      walk_tree(*t, [&](const json& e, int) {
        auto k = e.value("kind", "");
        sandboxes += k == "sandbox", shells += k == "shell", terminals += k == "terminal";
        ports += k == "port_forward", snapshots += k == "snapshot";
      });
      os << "warren top — " << client->config().url << "   sandboxes " << sandboxes << "  shells " << shells
         << "  terminals " << terminals << "  ports " << ports << "  snapshots " << snapshots << "\r\n";
      for (auto& n : t->value("nodes", json::array()))
        os << "node " << n.value("id", "") << " [" << n.value("state", "") << "] up " << age(n.value("age_s", 0))
           << "  mailbox " << num(n["mailbox"]) << "\r\n";
      os << "\r\n";
      auto table = sandbox_table(*t, rows > 6 ? rows - 6 : 1);
      std::string line;
      std::istringstream is(table);
      while (std::getline(is, line)) os << line.substr(0, cols) << "\r\n";
    }
    os << "\r\n(q to quit; refreshes every second)";
    std::cout << os.str() << std::flush;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) {
      char ch = 0;
      if (read(STDIN_FILENO, &ch, 1) <= 0 || ch == 'q' || ch == 'Q' || ch == 3 || ch == 4) break;
    }
  }
  std::cout << "\x1b[?25h\x1b[?1049l" << std::flush;
}

// Completion: commands first, then the ids of the tree (and node ids).
std::vector<std::string> completion_words;

char* completion_generator(const char* text, int state) {
  static size_t i;
  if (state == 0) i = 0;
  std::string_view t(text);
  while (i < completion_words.size()) {
    auto& w = completion_words[i++];
    if (w.compare(0, t.size(), t) == 0) return strdup(w.c_str());
  }
  return nullptr;
}

char** complete(const char* text, int start, int) {
  completion_words.clear();
  if (start == 0) {
    completion_words = commands;
  } else if (auto t = get_tree()) {
    walk_tree(*t, [](const json& e, int) { completion_words.push_back(e.value("id", "")); });
  }
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, completion_generator);
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  for (std::string w; is >> w;) out.push_back(w);
  return out;
}

// Runs one console line; false: leave.
bool run_line(const std::string& line) {
  auto w = words(line);
  if (w.empty()) return true;
  auto arg = w.size() > 1 ? w[1] : std::string();
  auto& c = w[0];
  if (c == "quit" || c == "exit") return false;
  if (c == "help" || c == "?") std::cout << console_help;
  else if (c == "nodes") cmd_nodes();
  else if (c == "tree") cmd_tree(arg);
  else if (c == "ps") cmd_ps();
  else if (c == "inspect") cmd_inspect(arg);
  else if (c == "top") cmd_top();
  else if (c == "logs")
    std::cout << "logs: not available — Warren keeps no per-sandbox logs in this build. The daemon's own log "
                 "(its stderr) has the lifecycle lines of sandbox " << (arg.empty() ? "ID" : arg)
              << "; run commands in it with `warren sandbox exec`.\n";
  else if (c == "kill") cmd_kill(arg);
  else if (c == "hibernate" || c == "resume" || c == "reconnect") arg.empty() ? void(std::cout << "usage: " << c << " ID\n") : act(arg, c);
  else if (c == "revoke") cmd_revoke(arg);
  else if (c == "drain") cmd_drain(arg);
  else std::cout << "unknown command \"" << c << "\" (try help)\n";
  return true;
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.warren_console_history";
}

int console(api_client& c, const cli_args&) {
  client = &c;
  // Refuse at once without an admin key (the API says 401 or 403).
  auto r = c.request("GET", "/v1/admin/actors");
  if (!r) return fail("admin console", r.err().message);
  if (!r->ok())
    return fail("admin console", "the console needs an admin key (" + describe_error(*r) + ")");
  std::cout << "warren admin console — " << c.config().url << " (help for commands, Ctrl-D to leave)\n";
  rl_readline_name = "warren";
  rl_attempted_completion_function = complete;
  using_history();
  auto hist = history_path();
  read_history(hist.c_str());
  for (;;) {
    char* l = readline("warren> ");
    if (!l) {
      std::cout << "\n";
      break;
    }
    std::string line(l);
    free(l);
    if (!words(line).empty()) add_history(line.c_str());
    if (!run_line(line)) break;
    std::cout << std::flush;
  }
  write_history(hist.c_str());
  return 0;
}

}  // namespace

const api_command console_command = {
    "console", "interactive admin console (tree, ps, top, kill, ...)",
    "usage: warren admin console\n"
    "  An interactive console over the admin API, with line editing, history (~/.warren_console_history)\n"
    "  and tab completion of commands and actor ids. Needs an admin key.\n\n" +
        std::string(console_help),
    {}, {}, SIZE_MAX, console};

}  // namespace warren::cmd
