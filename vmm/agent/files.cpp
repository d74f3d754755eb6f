// vmm/agent/files.cpp — file operations: streamed read and write (credit-bounded both ways),
// stat, list, remove, mkdir. Every path goes through rooted.hpp; nothing here calls open(2) or
// follows a symlink on its own.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmm/agent/inbound.hpp"
#include "vmm/agent/rooted.hpp"
#include "vmm/agent/server.hpp"
#include "vmm/agent/users.hpp"

namespace warren::agent {

namespace {

using proto::msg;

void fail_errno(connection& c, uint32_t id, int err, const std::string& path) {
  std::string code, message;
  errno_reply(err, path, code, message);
  c.fail(id, code, message);
}

const char* type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  return "other";
}

proto::file_info info_of(const struct stat& st, std::string name, std::string path, const id_names* ids = nullptr) {
  proto::file_info fi;
  fi.uid = st.st_uid;
  fi.gid = st.st_gid;
  if (ids) {
    if (auto u = ids->users.find(st.st_uid); u != ids->users.end()) fi.owner = u->second;
    if (auto g = ids->groups.find(st.st_gid); g != ids->groups.end()) fi.group = g->second;
  }
  fi.name = std::move(name);
  fi.path = std::move(path);
  fi.type = type_name(st.st_mode);
  fi.size = static_cast<uint64_t>(st.st_size);
  fi.mode = st.st_mode & 07777;
  fi.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return fi;
}

// The owner `req.user` names (nullopt = keep root). Answers the error itself and returns false.
bool owner_of(connection& c, uint32_t id, const proto::file_request& req, std::optional<user_entry>& out) {
  if (req.user.empty()) return true;
  out = lookup_user(c.ctx().root_fd, req.user);
  if (!out) c.fail(id, "bad_request", "no user " + req.user + " in the sandbox's /etc/passwd");
  return bool(out);
}

constexpr std::string_view meta_prefix = "user.e2b.";

// The user.e2b.* extended attributes of an open file (any fd, O_PATH included: read through
// /proc/self/fd, which names that very file, never a path resolved again). Symlinks have none.
std::map<std::string, std::string> read_meta(int fd) {
  std::map<std::string, std::string> out;
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  char names[8192];
  ssize_t n = listxattr(proc.c_str(), names, sizeof names);
  for (ssize_t i = 0; i > -1 && i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.compare(0, meta_prefix.size(), meta_prefix) != 0) continue;
    char value[4096];
    ssize_t v = getxattr(proc.c_str(), name.c_str(), value, sizeof value);
    if (v >= 0) out[name.substr(meta_prefix.size())] = std::string(value, static_cast<size_t>(v));
  }
  return out;
}

// Replaces the file's user.e2b.* attributes with `meta`. 0 or an errno.
int write_meta(int fd, const std::map<std::string, std::string>& meta) {
  char names[8192];
  ssize_t n = flistxattr(fd, names, sizeof names);
  for (ssize_t i = 0; i > -1 && i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.compare(0, meta_prefix.size(), meta_prefix) == 0) fremovexattr(fd, name.c_str());
  }
  for (auto& [k, v] : meta) {
    if (k.empty() || k.size() > 200 || k.find('\0') != std::string::npos) return EINVAL;
    std::string name = std::string(meta_prefix) + k;
    if (fsetxattr(fd, name.c_str(), v.data(), v.size(), 0) != 0) return errno;
  }
  return 0;
}

std::string normal(const split_path& sp) {
  std::string p;
  for (auto& c : sp.parts) p += "/" + c;
  return p.empty() ? "/" : p;
}

// ---- read: data frames while the host has credit, then result{size} --------------------------
class read_stream final : public stream {
 public:
  read_stream(connection& c, uint32_t id, int fd, uint32_t window)
      : stream(c, id), fd_(fd), credit_(std::min(window, proto::max_window)) {}
  ~read_stream() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void schedule() {
    if (scheduled_ || done_ || credit_ == 0) return;
    scheduled_ = true;
    std::weak_ptr<stream> weak = shared_from_this();
    conn_.ctx().loop.defer([weak] {
      if (auto s = weak.lock()) static_cast<read_stream&>(*s).pump();
    });
  }

  void on_frame(proto::frame& f) override {
    if (f.type != msg::credit) return;
    if (!take_credit(f, credit_)) return;
    schedule();
  }

  void abort() override { done_ = true; }

 private:
  // One chunk per loop turn, so a big file never starves the other streams.
  void pump() {
    scheduled_ = false;
    if (done_) return;
    char buf[proto::max_chunk];
    ssize_t n = ::read(fd_, buf, std::min<std::size_t>(credit_, sizeof buf));
    if (n < 0 && errno == EINTR) return schedule();
    if (n < 0) {
      done_ = true;
      return conn_.fail(id_, "internal", std::string("read: ") + std::strerror(errno));
    }
    if (n == 0) {
      done_ = true;
      return conn_.finish(id_, msg::result, proto::encode(proto::file_result{size_}));
    }
    size_ += static_cast<uint64_t>(n);
    credit_ -= static_cast<uint32_t>(n);
    conn_.send(msg::data, id_, std::string_view(buf, static_cast<std::size_t>(n)));
    schedule();
  }

  int fd_;
  uint32_t credit_;
  uint64_t size_ = 0;
  bool scheduled_ = false;
};

// ---- write: opened + credit, then data* and eof from the host → result{size} ----------------
class write_stream final : public stream {
 public:
  write_stream(connection& c, uint32_t id, int fd, std::string path, std::optional<uint32_t> mode)
      : stream(c, id), fd_(fd), path_(std::move(path)), mode_(mode), in_(proto::default_window) {}
  ~write_stream() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void start() {
    conn_.send(msg::opened, id_, proto::encode(proto::opened{}));
    conn_.send(msg::credit, id_, proto::encode(proto::credit{in_.window()}));
  }

  void on_frame(proto::frame& f) override {
    if (done_) return;
    if (f.type == msg::data) {
      if (!in_.push(f.payload)) return conn_.protocol_error("upload beyond granted credit");
      size_ += f.payload.size();
      // Regular files never answer EAGAIN: this writes the whole chunk or fails.
      if (!in_.write_to(fd_)) return fail(errno);
      if (uint32_t g = in_.take_grant()) conn_.send(msg::credit, id_, proto::encode(proto::credit{g}));
    } else if (f.type == msg::eof) {
      if (mode_ && fchmod(fd_, *mode_ & 07777) != 0) return fail(errno);
      if (::close(fd_) != 0) {
        fd_ = -1;
        return fail(errno);
      }
      fd_ = -1;
      done_ = true;
      conn_.finish(id_, msg::result, proto::encode(proto::file_result{size_}));
    }
  }

  void abort() override { done_ = true; }

 private:
  void fail(int err) {
    done_ = true;
    fail_errno(conn_, id_, err, path_);
  }

  int fd_;
  std::string path_;
  std::optional<uint32_t> mode_;
  inbound in_;
  uint64_t size_ = 0;
};

std::shared_ptr<stream> start_read(connection& c, uint32_t id, const proto::file_request& req,
                                   const std::string& path) {
  int fd = open_in_root(c.ctx().root_fd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    fail_errno(c, id, -fd, path);
    return nullptr;
  }
  struct stat st{};
  fstat(fd, &st);
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    if (S_ISDIR(st.st_mode)) fail_errno(c, id, EISDIR, path);
    else c.fail(id, "bad_request", path + " is not a regular file");
    return nullptr;
  }
  auto s = std::make_shared<read_stream>(c, id, fd, req.window);
  s->schedule();
  return s;
}

std::shared_ptr<stream> start_write(connection& c, uint32_t id, const proto::file_request& req,
                                    const split_path& sp, const std::string& path) {
  if (sp.parts.empty()) {
    fail_errno(c, id, EISDIR, path);
    return nullptr;
  }
  std::optional<user_entry> owner;
  if (!owner_of(c, id, req, owner)) return nullptr;
  std::string failed_at;
  if (int r = mkdir_all(c.ctx().root_fd, sp.parts, sp.parts.size() - 1, 0755, failed_at,
                        owner ? owner->uid : uid_t(-1), owner ? owner->gid : gid_t(-1));
      r < 0) {
    fail_errno(c, id, -r, failed_at);
    return nullptr;
  }
  mode_t mode = req.mode ? (*req.mode & 07777) : 0644;
  int fd = open_in_root(c.ctx().root_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, mode);
  if (fd < 0) {
    fail_errno(c, id, -fd, path);
    return nullptr;
  }
  if (owner && fchown(fd, owner->uid, owner->gid) != 0) {
    int err = errno;
    ::close(fd);
    fail_errno(c, id, err, path);
    return nullptr;
  }
  if (req.set_meta) {
    if (int err = write_meta(fd, *req.set_meta)) {
      ::close(fd);
      if (err == EINVAL) c.fail(id, "bad_request", "bad metadata key");
      else if (err == ENOTSUP) c.fail(id, "bad_request", "the filesystem of " + path + " keeps no metadata (xattrs)");
      else fail_errno(c, id, err, path);
      return nullptr;
    }
  }
  auto s = std::make_shared<write_stream>(c, id, fd, path, req.mode);
  s->start();
  return s;
}

void do_stat(connection& c, uint32_t id, const split_path& sp, const std::string& path, bool meta) {
  int fd = open_in_root(c.ctx().root_fd, path, O_PATH | O_NOFOLLOW);
  if (fd < 0) return fail_errno(c, id, -fd, path);
  struct stat st{};
  fstat(fd, &st);
  auto ids = id_names::load(c.ctx().root_fd);
  auto fi = info_of(st, sp.parts.empty() ? "/" : sp.name(), path, &ids);
  if (meta && !S_ISLNK(st.st_mode)) fi.meta = read_meta(fd);
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    ssize_t n = readlinkat(fd, "", buf, sizeof buf);
    if (n > 0) fi.target.assign(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  c.finish(id, msg::result, proto::encode(fi));
}

void do_list(connection& c, uint32_t id, const std::string& path, bool meta) {
  int fd = open_in_root(c.ctx().root_fd, path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return fail_errno(c, id, -fd, path);
  DIR* d = fdopendir(fd);
  if (!d) {
    ::close(fd);
    return fail_errno(c, id, errno, path);
  }
  std::vector<proto::file_info> all;
  std::string base = path == "/" ? "" : path;
  auto ids = id_names::load(c.ctx().root_fd);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st{};
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced away
    all.push_back(info_of(st, name, base + "/" + name, &ids));
    if (meta && !S_ISLNK(st.st_mode)) {
      int f = openat(dirfd(d), e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (f >= 0) {
        all.back().meta = read_meta(f);
        ::close(f);
      }
    }
  }
  closedir(d);
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.name < b.name; });
  // Batches keep every frame far below max_payload whatever the directory holds.
  constexpr std::size_t batch = 256;
  for (std::size_t i = 0; i < all.size(); i += batch) {
    proto::entries e;
    e.items.assign(all.begin() + static_cast<long>(i),
                   all.begin() + static_cast<long>(std::min(all.size(), i + batch)));
    c.send(msg::entries, id, proto::encode(e));
  }
  c.finish(id, msg::result, proto::encode(proto::file_result{all.size()}));
}

// Removes everything under `name` in `parent` without following a single symlink.
int remove_tree(int parent, const char* name) {
  if (unlinkat(parent, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return -errno;
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* d = fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  int r = 0;
  while (dirent* e = readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    if ((r = remove_tree(dirfd(d), e->d_name)) < 0) break;
  }
  closedir(d);
  if (r < 0) return r;
  return unlinkat(parent, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
}

void do_remove(connection& c, uint32_t id, const proto::file_request& req, const split_path& sp,
               const std::string& path) {
  if (sp.parts.empty()) return c.fail(id, "bad_request", "refusing to remove /");
  int pfd = open_in_root(c.ctx().root_fd, sp.parent(), O_PATH | O_DIRECTORY);
  if (pfd < 0) return fail_errno(c, id, -pfd, path);
  int r = 0;
  if (unlinkat(pfd, sp.name().c_str(), 0) != 0) {
    r = -errno;
    if (r == -EISDIR || r == -EPERM) {
      r = req.recursive ? remove_tree(pfd, sp.name().c_str())
                        : (unlinkat(pfd, sp.name().c_str(), AT_REMOVEDIR) == 0 ? 0 : -errno);
    }
  }
  ::close(pfd);
  if (r < 0) return fail_errno(c, id, -r, path);
  c.finish(id, msg::result, proto::encode(proto::file_result{}));
}

void do_mkdir(connection& c, uint32_t id, const proto::file_request& req, const split_path& sp) {
  std::optional<user_entry> owner;
  if (!owner_of(c, id, req, owner)) return;
  std::string failed_at;
  mode_t mode = req.mode ? (*req.mode & 07777) : 0755;
  int r = mkdir_all(c.ctx().root_fd, sp.parts, sp.parts.size(), mode, failed_at, owner ? owner->uid : uid_t(-1),
                    owner ? owner->gid : gid_t(-1));
  if (r == -ENOTDIR) return c.fail(id, "conflict", failed_at + " exists and is not a directory");
  if (r < 0) return fail_errno(c, id, -r, failed_at);
  c.finish(id, msg::result, proto::encode(proto::file_result{}));
}

// rename(2) inside the root: both parents resolved confined, the new one created if missing
// (owned by req.user); the reply is the file_info of the new path.
void do_rename(connection& c, uint32_t id, const proto::file_request& req, const split_path& sp,
               const std::string& path) {
  split_path to;
  std::string code, why;
  if (!split(req.to, to, code, why)) return c.fail(id, code, "\"to\": " + why);
  if (sp.parts.empty() || to.parts.empty()) return c.fail(id, "bad_request", "cannot rename /");
  std::optional<user_entry> owner;
  if (!owner_of(c, id, req, owner)) return;
  std::string failed_at, to_path = normal(to);
  if (int r = mkdir_all(c.ctx().root_fd, to.parts, to.parts.size() - 1, 0755, failed_at,
                        owner ? owner->uid : uid_t(-1), owner ? owner->gid : gid_t(-1));
      r < 0)
    return fail_errno(c, id, -r, failed_at);
  int from_fd = open_in_root(c.ctx().root_fd, sp.parent(), O_PATH | O_DIRECTORY);
  if (from_fd < 0) return fail_errno(c, id, -from_fd, path);
  int to_fd = open_in_root(c.ctx().root_fd, to.parent(), O_PATH | O_DIRECTORY);
  if (to_fd < 0) {
    ::close(from_fd);
    return fail_errno(c, id, -to_fd, to_path);
  }
  int r = renameat(from_fd, sp.name().c_str(), to_fd, to.name().c_str()) == 0 ? 0 : errno;
  struct stat st{};
  if (r == 0 && fstatat(to_fd, to.name().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) r = errno;
  std::map<std::string, std::string> meta;
  if (r == 0 && req.meta && !S_ISLNK(st.st_mode)) {
    int f = openat(to_fd, to.name().c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (f >= 0) {
      meta = read_meta(f);
      ::close(f);
    }
  }
  ::close(from_fd);
  ::close(to_fd);
  if (r == ENOENT) return fail_errno(c, id, r, path);
  if (r != 0) return fail_errno(c, id, r, to_path);
  auto ids = id_names::load(c.ctx().root_fd);
  auto fi = info_of(st, to.name(), to_path, &ids);
  fi.meta = std::move(meta);
  c.finish(id, msg::result, proto::encode(fi));
}

}  // namespace

std::shared_ptr<stream> start_file_op(connection& c, uint32_t id, msg type,
                                      std::string_view payload) {
  proto::file_request req;
  std::string why, code;
  split_path sp;
  if (!proto::decode(payload, req, why)) {
    c.fail(id, "bad_request", std::string("bad ") + std::string(proto::name(type)) + " request: " + why);
    return nullptr;
  }
  if (!split(req.path, sp, code, why)) {
    c.fail(id, code, why);
    return nullptr;
  }
  std::string path = normal(sp);
  switch (type) {
    case msg::file_read: return start_read(c, id, req, path);
    case msg::file_write: return start_write(c, id, req, sp, path);
    case msg::stat: do_stat(c, id, sp, path, req.meta); break;
    case msg::list: do_list(c, id, path, req.meta); break;
    case msg::remove: do_remove(c, id, req, sp, path); break;
    case msg::mkdir: do_mkdir(c, id, req, sp); break;
    case msg::rename: do_rename(c, id, req, sp, path); break;
    default: c.fail(id, "bad_request", "not a file operation");
  }
  return nullptr;
}

}  // namespace warren::agent
