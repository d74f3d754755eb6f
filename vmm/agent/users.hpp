// vmm/agent/users.hpp — the sandbox's own users and groups (its /etc/passwd and /etc/group, read
// through the agent's root like every other file), for exec as a user, ownership of created
// files and owner/group names in file_info. Parsed per request: the files are small and may
// change (useradd inside the sandbox) at any time.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warren::agent {

struct user_entry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home, shell;
  std::vector<gid_t> groups;  // supplementary groups (every group that lists the user)
};

// The user `name` (or a numeric uid) of the passwd file under `root`; nullopt if none.
std::optional<user_entry> lookup_user(int root, const std::string& name);

// uid → user name and gid → group name, read once for a whole listing.
struct id_names {
  std::map<uid_t, std::string> users;
  std::map<gid_t, std::string> groups;
  static id_names load(int root);
};

}  // namespace warren::agent
