// vmm/agent/watch.cpp — inotify watch streams: create|modify|delete|rename events with sandbox
// paths, optionally recursive (new directories are watched as they appear). Directories are
// opened through rooted.hpp or with O_NOFOLLOW below an already-confined fd, and handed to
// inotify as /proc/self/fd/N, so a watch never lands outside the root either.
#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "vmm/agent/rooted.hpp"
#include "vmm/agent/server.hpp"

namespace warren::agent {

namespace {

using proto::msg;
constexpr uint32_t watch_mask = IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                IN_DELETE_SELF | IN_MOVE_SELF;

class watch_stream final : public stream {
 public:
  watch_stream(connection& c, uint32_t id, int ifd, bool recursive, uint32_t window)
      : stream(c, id), ifd_(ifd), recursive_(recursive),
        credit_(std::min(window, proto::max_window)) {}
  ~watch_stream() override { release(); }

  // Watches the directory (or file) open as `fd`, known in the sandbox as `path`; recurses.
  // Returns 0 or -errno (only the top level's failure matters to the caller).
  int add(int fd, const std::string& path, bool announce) {
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    int wd = inotify_add_watch(ifd_, proc.c_str(), watch_mask);
    if (wd < 0 && errno == ENOENT && conn_.ctx().root_is_slash)  // no /proc: "/" is the root
      wd = inotify_add_watch(ifd_, path.c_str(), watch_mask);
    if (wd < 0) return -errno;
    if (root_wd_ < 0) root_wd_ = wd;
    paths_[wd] = path;
    struct stat st{};
    if (!recursive_ || fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = dfd >= 0 ? fdopendir(dfd) : nullptr;
    if (!d) {
      if (dfd >= 0) ::close(dfd);
      return 0;
    }
    std::string base = path == "/" ? "" : path;
    while (dirent* e = readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      std::string child = base + "/" + e->d_name;
      if (announce) emit("create", child);  // appeared before its directory was watched
      int cfd = openat(dirfd(d), e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) continue;  // not a directory (or a symlink to one): nothing to watch
      add(cfd, child, announce);
      ::close(cfd);
    }
    closedir(d);
    return 0;
  }

  void start() {
    std::weak_ptr<stream> weak = shared_from_this();
    watch_ = conn_.ctx().loop.add(ifd_, EPOLLIN, [weak](uint32_t) {
      if (auto s = weak.lock()) static_cast<watch_stream&>(*s).on_readable();
    });
    conn_.send(msg::opened, id_, proto::encode(proto::opened{}));
  }

  void on_frame(proto::frame& f) override {
    if (f.type != msg::credit || done_) return;
    if (!take_credit(f, credit_)) return;
    conn_.ctx().loop.modify(watch_, EPOLLIN);
  }

  void abort() override {
    done_ = true;
    release();
  }

 private:
  void on_readable() {
    if (done_) return;
    if (credit_ == 0) return conn_.ctx().loop.modify(watch_, 0);  // the kernel queue holds them
    alignas(inotify_event) char buf[64 * 1024];
    ssize_t n = read(ifd_, buf, sizeof buf);
    if (n <= 0) return;
    last_.clear();
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      handle(*ev);
      if (done_) return;
    }
  }

  void handle(const inotify_event& ev) {
    if (ev.mask & IN_Q_OVERFLOW) return emit("overflow", "");
    auto it = paths_.find(ev.wd);
    if (it == paths_.end()) return;
    std::string dir = it->second;
    std::string path = ev.len ? (dir == "/" ? "" : dir) + "/" + ev.name : dir;
    if (ev.mask & IN_IGNORED) {
      paths_.erase(ev.wd);
      if (ev.wd == root_wd_) {
        done_ = true;
        release();
        conn_.fail(id_, "not_found", "watched path " + dir + " was removed");
      }
      return;
    }
    if (ev.mask & (IN_CREATE | IN_MOVED_TO) && ev.mask & IN_ISDIR && recursive_) {
      int fd = open_in_root(conn_.ctx().root_fd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
      emit(ev.mask & IN_CREATE ? "create" : "rename", path);
      if (fd >= 0) {
        add(fd, path, true);
        ::close(fd);
      }
      return;
    }
    if (ev.mask & IN_CREATE) emit("create", path);
    else if (ev.mask & IN_MODIFY) emit("modify", path);
    else if (ev.mask & IN_DELETE) emit("delete", path);
    else if (ev.mask & (IN_MOVED_FROM | IN_MOVED_TO)) emit("rename", path);
    else if (ev.mask & IN_DELETE_SELF && ev.wd == root_wd_) emit("delete", path);
  }

  void emit(const char* event, const std::string& path) {
    // A write(2) loop makes a burst of IN_MODIFY; one event per read batch is enough.
    std::string key = std::string(event) + path;
    if (key == last_) return;
    last_ = key;
    auto payload = proto::encode(proto::watch_event{event, path});
    credit_ -= std::min<uint32_t>(credit_, static_cast<uint32_t>(payload.size()));
    conn_.send(msg::event, id_, payload);
  }

  void release() {
    if (ifd_ < 0) return;
    conn_.ctx().loop.remove(watch_);
    ::close(ifd_);
    ifd_ = -1;
  }

  int ifd_;
  bool recursive_;
  uint32_t credit_;
  event_loop::watch_id watch_ = 0;
  int root_wd_ = -1;
  std::unordered_map<int, std::string> paths_;
  std::string last_;
};

}  // namespace

std::shared_ptr<stream> start_watch(connection& c, uint32_t id, std::string_view payload) {
  proto::file_request req;
  std::string why, code, message;
  split_path sp;
  if (!proto::decode(payload, req, why)) {
    c.fail(id, "bad_request", "bad watch request: " + why);
    return nullptr;
  }
  if (!split(req.path, sp, code, why)) {
    c.fail(id, code, why);
    return nullptr;
  }
  std::string path;
  for (auto& p : sp.parts) path += "/" + p;
  if (path.empty()) path = "/";
  int fd = open_in_root(c.ctx().root_fd, path, O_PATH);
  if (fd < 0) {
    errno_reply(-fd, path, code, message);
    c.fail(id, code, message);
    return nullptr;
  }
  int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd < 0) {
    ::close(fd);
    c.fail(id, "internal", std::string("inotify_init1: ") + std::strerror(errno));
    return nullptr;
  }
  auto s = std::make_shared<watch_stream>(c, id, ifd, req.recursive, req.window);
  int r = s->add(fd, path, false);
  ::close(fd);
  if (r < 0) {
    errno_reply(-r, path, code, message);
    c.fail(id, code, message);
    return nullptr;
  }
  s->start();
  return s;
}

}  // namespace warren::agent
