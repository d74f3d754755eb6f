// vmm/agent/users.cpp — passwd/group parsing (see users.hpp).
#include "vmm/agent/users.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "vmm/agent/rooted.hpp"

namespace warren::agent {

namespace {

// At most 1 MiB of the file, read through the root (never a host path).
std::string slurp(int root, const char* path) {
  int fd = open_in_root(root, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return {};
  std::string out;
  char buf[8192];
  ssize_t n;
  while (out.size() < (1u << 20) && (n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> f;
  std::string cur;
  std::stringstream ss(line);
  while (std::getline(ss, cur, ':')) f.push_back(cur);
  if (!line.empty() && line.back() == ':') f.emplace_back();
  return f;
}

bool number(const std::string& s, unsigned long& out) {
  if (s.empty() || s.size() > 10) return false;
  char* end = nullptr;
  out = std::strtoul(s.c_str(), &end, 10);
  return end && *end == '\0';
}

template <class Fn>
void each_line(const std::string& text, Fn fn) {
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty() && line[0] != '#') fn(fields(line));
}

}  // namespace

std::optional<user_entry> lookup_user(int root, const std::string& name) {
  unsigned long want_uid = 0;
  bool by_uid = number(name, want_uid);
  std::optional<user_entry> u;
  each_line(slurp(root, "/etc/passwd"), [&](const std::vector<std::string>& f) {
    unsigned long uid = 0, gid = 0;
    if (u || f.size() < 7 || !number(f[2], uid) || !number(f[3], gid)) return;
    if (by_uid ? uid != want_uid : f[0] != name) return;
    u = user_entry{f[0], static_cast<uid_t>(uid), static_cast<gid_t>(gid), f[5], f[6], {}};
  });
  if (!u) return u;
  each_line(slurp(root, "/etc/group"), [&](const std::vector<std::string>& f) {
    unsigned long gid = 0;
    if (f.size() < 4 || !number(f[2], gid)) return;
    std::stringstream members(f[3]);
    std::string m;
    while (std::getline(members, m, ','))
      if (m == u->name) u->groups.push_back(static_cast<gid_t>(gid));
  });
  return u;
}

id_names id_names::load(int root) {
  id_names n;
  each_line(slurp(root, "/etc/passwd"), [&](const std::vector<std::string>& f) {
    unsigned long id = 0;
    if (f.size() >= 3 && number(f[2], id)) n.users.emplace(static_cast<uid_t>(id), f[0]);
  });
  each_line(slurp(root, "/etc/group"), [&](const std::vector<std::string>& f) {
    unsigned long id = 0;
    if (f.size() >= 3 && number(f[2], id)) n.groups.emplace(static_cast<gid_t>(id), f[0]);
  });
  return n;
}

}  // namespace warren::agent
