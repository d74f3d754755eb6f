// cmd/warren/api_config.cpp — resolves the API URL and key for CLI commands. Reads only key files
// of a daemon on this machine: a remote server's key is never guessed from local files.
#include "cmd/warren/api_config.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <vector>

namespace warren::cmd {
namespace {

constexpr const char* default_api_url = "http://127.0.0.1:7070";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string host_of(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find_first_of("/", start);
  auto hostport = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!hostport.empty() && hostport[0] == '[') return hostport.substr(1, hostport.find(']') - 1);
  return hostport.substr(0, hostport.rfind(':'));
}

bool is_local(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "0.0.0.0" || host.rfind("127.", 0) == 0) return true;
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 && host == name;
}

// The admin key files a local daemon writes, in the order the SDK tries them too.
std::vector<std::string> admin_key_files() {
  std::vector<std::string> files;
  if (auto d = env("WARREN_DATA_DIR"); !d.empty()) files.push_back(d + "/admin.key");
  files.push_back("/var/lib/warren/admin.key");
  if (auto home = env("HOME"); !home.empty()) files.push_back(home + "/.local/share/warren/admin.key");
  return files;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

api_config resolve_api_config(const std::string& url_flag, const std::string& key_flag) {
  api_config c;
  c.url = !url_flag.empty() ? url_flag : !env("WARREN_API_URL").empty() ? env("WARREN_API_URL") : default_api_url;
  if (c.url.find("://") == std::string::npos) c.url = "http://" + c.url;
  while (!c.url.empty() && c.url.back() == '/') c.url.pop_back();
  c.key = !key_flag.empty() ? key_flag : trim(env("WARREN_API_KEY"));
  if (!c.key.empty() || !is_local(host_of(c.url))) return c;
  for (auto& path : admin_key_files()) {
    std::ifstream f(path);
    std::string key;
    if (f && std::getline(f, key) && !trim(key).empty()) {
      c.key = trim(key);
      break;
    }
  }
  return c;
}

}  // namespace warren::cmd
