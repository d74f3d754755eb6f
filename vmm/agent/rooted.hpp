// vmm/agent/rooted.hpp — path resolution confined to the agent's root fd. Every file op goes
// through here: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) makes `..`, absolute and
// relative symlinks, loops and symlinks swapped mid-walk resolve inside the root, never above.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace warren::agent {

// An absolute path split into components ("." and empty ones dropped). Fails (code + message)
// on relative paths, NUL bytes, overlong paths and a final "..".
struct split_path {
  std::vector<std::string> parts;
  std::string parent() const;  // "/a/b" for "/a/b/c"; "/" for "/c"
  const std::string& name() const { return parts.back(); }
};
bool split(std::string_view path, split_path& out, std::string& code, std::string& why);

// openat2 under `root`. Returns an fd (always O_CLOEXEC) or -errno.
int open_in_root(int root, const std::string& path, int flags, mode_t mode = 0);

// mkdir -p of every component of `p` under root. Returns 0 or -errno; `failed_at` names the
// component that failed. Directories it creates are chowned to uid/gid unless those are -1.
int mkdir_all(int root, const std::vector<std::string>& parts, std::size_t count, mode_t mode,
              std::string& failed_at, uid_t uid = uid_t(-1), gid_t gid = gid_t(-1));

// Maps an errno from the functions above to a protocol error code and message about `path`.
void errno_reply(int err, const std::string& path, std::string& code, std::string& message);

}  // namespace warren::agent
