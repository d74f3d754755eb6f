// storage/image_store.cpp — building and importing base images. Every untrusted archive is
// unpacked by tar inside bubblewrap (no host path but the staging rootfs is writable) and
// whiteouts are applied with openat2(RESOLVE_IN_ROOT), so a hostile layer's symlinks cannot
// reach the host. Never modifies a published image in place: stage, then rename.
#include "storage/image_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

extern char** environ;

namespace warren::storage {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* debian_mirror = "http://deb.debian.org/debian";
constexpr const char* debian_packages = "bash,coreutils,python3,curl,ca-certificates,procps,iproute2";
// E2B's `base` template as its users' code assumes it (docs/guides/e2b-compat.md): Debian with
// bash, python3 + pip, git, curl and sudo, and the unprivileged `user` (uid 1000) that E2B runs
// commands as by default, with passwordless sudo.
constexpr const char* base_packages =
    "bash,coreutils,python3,python3-pip,python3-venv,git,curl,sudo,ca-certificates,procps,iproute2,less,"
    "findutils,grep,sed,tar,gzip,xz-utils,unzip,openssh-client";

// posix_spawnp; stderr is inherited (progress), stdout captured when `out` is given.
int run(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int p[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  } else {
    posix_spawn_file_actions_adddup2(&fa, 2, 1);  // tools' chatter is progress too
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out) close(p[1]);
  if (rc != 0) {
    if (out) close(p[0]);
    return -1;
  }
  if (out) {
    char buf[8192];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      out->append(buf, static_cast<size_t>(n));
    }
    close(p[0]);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

status fail(const std::string& msg) { return make_error(errc::internal, msg); }

std::optional<std::string> normalise(std::string n) {
  while (n.rfind("./", 0) == 0) n.erase(0, 2);
  while (!n.empty() && n.front() == '/') n.erase(0, 1);
  while (!n.empty() && n.back() == '/') n.pop_back();
  std::stringstream ss(n);
  std::string part, out;
  while (std::getline(ss, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    out += (out.empty() ? "" : "/") + part;
  }
  return out;
}

int open_in_root(int rootfd, const std::string& rel) {
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, rootfd, rel.empty() ? "." : rel.c_str(), &how, sizeof how));
}

int remove_at(int dfd, const char* name);

int clear_dir(int dfd) {
  DIR* d = fdopendir(dup(dfd));
  if (!d) return -1;
  std::vector<std::string> names;
  while (auto* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
  closedir(d);
  for (auto& n : names)
    if (remove_at(dfd, n.c_str()) != 0) return -1;
  return 0;
}

// rm -rf of one entry of dfd; never follows a symlink.
int remove_at(int dfd, const char* name) {
  struct stat st{};
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : -1;
  if (S_ISDIR(st.st_mode)) {
    int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) return -1;
    int rc = clear_dir(sub);
    close(sub);
    if (rc != 0) return -1;
    return unlinkat(dfd, name, AT_REMOVEDIR);
  }
  return unlinkat(dfd, name, 0);
}

// tar -x inside bubblewrap: the rootfs is the only writable host path; absolute symlinks in
// the image resolve inside the jail, never on the host.
status contained_untar(const std::string& tarfile, const std::string& dest, bool skip_whiteouts) {
  if (access("/usr/bin/bwrap", X_OK) != 0) return fail("bubblewrap (bwrap) is needed to unpack images safely");
  std::vector<std::string> cmd = {"bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                                  "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
                                  "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib",
                                  "--symlink", "usr/lib64", "/lib64", "--dev", "/dev", "--proc", "/proc",
                                  "--ro-bind", tarfile, "/in.tar", "--bind", dest, "/out",
                                  "tar", "--numeric-owner", "-xpf", "/in.tar", "-C", "/out"};
  if (skip_whiteouts) cmd.push_back("--exclude=.wh.*");
  int rc = run(cmd);
  if (rc != 0) return fail("unpacking " + tarfile + " failed (tar exit " + std::to_string(rc) + ")");
  return ok();
}

std::optional<std::string> blob_path(const std::string& layout, const std::string& digest) {
  static const std::regex re("sha256:([0-9a-f]{64})");
  std::smatch m;
  if (!std::regex_match(digest, m, re)) return std::nullopt;
  return layout + "/blobs/sha256/" + m[1].str();
}

std::optional<json> read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  try {
    return json::parse(f);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// Layer files of an OCI image layout (index → manifest, following one nested index).
expected<std::vector<std::string>> oci_layers(const std::string& layout) {
  auto idx = read_json(layout + "/index.json");
  if (!idx) return make_error(errc::bad_request, "OCI layout: unreadable index.json");
  try {
    json m = *idx;
    for (int depth = 0; depth < 3 && m.contains("manifests"); ++depth) {
      auto p = blob_path(layout, m.at("manifests").at(0).at("digest").get<std::string>());
      if (!p) return make_error(errc::bad_request, "OCI layout: bad manifest digest");
      auto next = read_json(*p);
      if (!next) return make_error(errc::bad_request, "OCI layout: unreadable manifest " + *p);
      m = *next;
    }
    std::vector<std::string> layers;
    for (auto& l : m.at("layers")) {
      auto p = blob_path(layout, l.at("digest").get<std::string>());
      if (!p) return make_error(errc::bad_request, "OCI layout: bad layer digest");
      layers.push_back(*p);
    }
    return layers;
  } catch (const json::exception& e) {
    return make_error(errc::bad_request, std::string("OCI layout: ") + e.what());
  }
}

// Layer files of a `docker save` archive (manifest.json: [{"Layers": [...]}]).
expected<std::vector<std::string>> docker_layers(const std::string& dir) {
  auto m = read_json(dir + "/manifest.json");
  if (!m) return make_error(errc::bad_request, "docker archive: unreadable manifest.json");
  try {
    std::vector<std::string> layers;
    for (auto& l : m->at(0).at("Layers")) {
      auto rel = normalise(l.get<std::string>());
      if (!rel || rel->empty()) return make_error(errc::bad_request, "docker archive: bad layer path");
      layers.push_back(dir + "/" + *rel);
    }
    return layers;
  } catch (const json::exception& e) {
    return make_error(errc::bad_request, std::string("docker archive: ") + e.what());
  }
}

status build_busybox(const std::string& rootfs) {
  std::string bb;
  for (const char* p : {"/bin/busybox", "/usr/bin/busybox"})
    if (access(p, X_OK) == 0) {
      bb = p;
      break;
    }
  if (bb.empty()) return fail("busybox not found (install busybox-static)");
  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "dev", "sys", "var/tmp",
                        "home", "run"})
    fs::create_directories(rootfs + "/" + d);
  fs::copy_file(bb, rootfs + "/bin/busybox", fs::copy_options::overwrite_existing);
  chmod((rootfs + "/bin/busybox").c_str(), 0755);
  std::string list;
  if (run({bb, "--list-full"}, &list) != 0) return fail("busybox --list-full failed");
  std::stringstream ss(list);
  std::string applet;
  while (std::getline(ss, applet)) {
    auto rel = normalise(applet);
    if (!rel || rel->empty() || *rel == "bin/busybox") continue;  // never replace the binary itself
    fs::create_directories(fs::path(rootfs + "/" + *rel).parent_path());
    std::error_code ec;
    fs::create_symlink("/bin/busybox", rootfs + "/" + *rel, ec);
  }
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
  std::ofstream(rootfs + "/etc/group") << "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n";
  std::ofstream(rootfs + "/etc/os-release") << "NAME=BusyBox\nID=busybox\n";
  chmod((rootfs + "/tmp").c_str(), 01777);
  return ok();
}

status build_debian(const std::string& suite, const std::string& rootfs, const char* packages = debian_packages) {
  if (!std::regex_match(suite, std::regex("[a-z]+"))) return make_error(errc::bad_request, "bad Debian suite " + suite);
  std::cerr << "image debian:" << suite << ": debootstrap from " << debian_mirror << " (a few minutes)\n";
  int rc = run({"debootstrap", "--variant=minbase", std::string("--include=") + packages, suite, rootfs,
                debian_mirror});
  if (rc != 0) return fail("debootstrap failed (exit " + std::to_string(rc) + ")");
  std::error_code ec;
  for (auto& e : fs::directory_iterator(rootfs + "/var/cache/apt/archives", ec))
    if (e.path().extension() == ".deb") fs::remove(e.path(), ec);
  return ok();
}

// Appends a line to a file of the image (passwd, group, shadow, sudoers).
status append_line(const std::string& path, const std::string& line, mode_t mode) {
  std::ofstream f(path, std::ios::app);
  if (!f) return fail("cannot write " + path);
  f << line << "\n";
  f.close();
  chmod(path.c_str(), mode);
  return ok();
}

// debian:bookworm plus E2B's user: `user` (1000:1000, /home/user, bash, in group sudo) with
// passwordless sudo. Written as files, not by running useradd in the image: nothing of the
// image is executed on the host.
status build_base(const std::string& rootfs) {
  if (auto st = build_debian("bookworm", rootfs, base_packages); !st) return st;
  for (auto& [file, line, mode] : std::vector<std::tuple<std::string, std::string, mode_t>>{
           {"/etc/passwd", "user:x:1000:1000::/home/user:/bin/bash", 0644},
           {"/etc/group", "user:x:1000:", 0644},
           {"/etc/shadow", "user:*:20000:0:99999:7:::", 0640},
       })
    if (auto st = append_line(rootfs + file, line, mode); !st) return st;
  // sudo group membership: the group line already exists ("sudo:x:27:"); add user to it.
  {
    std::ifstream in(rootfs + "/etc/group");
    std::stringstream out;
    std::string l;
    while (std::getline(in, l)) {
      if (l.rfind("sudo:", 0) == 0) l += (l.back() == ':' ? "user" : ",user");
      out << l << "\n";
    }
    in.close();
    std::ofstream(rootfs + "/etc/group", std::ios::trunc) << out.str();
  }
  fs::create_directories(rootfs + "/etc/sudoers.d");
  if (auto st = append_line(rootfs + "/etc/sudoers.d/user", "user ALL=(ALL:ALL) NOPASSWD: ALL", 0440); !st) return st;
  std::error_code ec;
  fs::create_directories(rootfs + "/home/user", ec);
  for (auto& f : {".bashrc", ".profile", ".bash_logout"})
    fs::copy_file(rootfs + "/etc/skel/" + f, rootfs + "/home/user/" + f, fs::copy_options::skip_existing, ec);
  for (auto& p : fs::recursive_directory_iterator(rootfs + "/home/user", ec))
    if (lchown(p.path().c_str(), 1000, 1000) != 0) return fail("chown " + p.path().string());
  if (chown((rootfs + "/home/user").c_str(), 1000, 1000) != 0) return fail("chown /home/user");
  chmod((rootfs + "/home/user").c_str(), 0755);
  return ok();
}

}  // namespace

std::vector<whiteout_action> whiteout_actions(const std::vector<std::string>& names) {
  std::vector<whiteout_action> out;
  for (auto& raw : names) {
    auto n = normalise(raw);
    if (!n || n->empty()) continue;
    auto slash = n->rfind('/');
    std::string dir = slash == std::string::npos ? "" : n->substr(0, slash);
    std::string base = slash == std::string::npos ? *n : n->substr(slash + 1);
    if (base == ".wh..wh..opq") {
      out.push_back({whiteout_action::make_opaque, dir});
    } else if (base.rfind(".wh.", 0) == 0 && base.size() > 4) {
      std::string target = base.substr(4);
      if (target == "." || target == "..") continue;
      out.push_back({whiteout_action::remove, dir.empty() ? target : dir + "/" + target});
    }
  }
  return out;
}

status apply_whiteouts(const std::string& rootfs, const std::vector<whiteout_action>& actions) {
  int rootfd = open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return fail("open " + rootfs + ": " + strerror(errno));
  status st = ok();
  for (auto& a : actions) {
    std::string parent = a.path, name;
    if (a.kind == whiteout_action::remove) {
      auto slash = a.path.rfind('/');
      parent = slash == std::string::npos ? "" : a.path.substr(0, slash);
      name = slash == std::string::npos ? a.path : a.path.substr(slash + 1);
    }
    int dfd = open_in_root(rootfd, parent);
    if (dfd < 0) continue;  // nothing below to hide
    int rc = a.kind == whiteout_action::remove ? remove_at(dfd, name.c_str()) : clear_dir(dfd);
    int e = errno;
    close(dfd);
    if (rc != 0) {
      st = fail("whiteout " + a.path + ": " + strerror(e));
      break;
    }
  }
  close(rootfd);
  return st;
}

status apply_layer(const std::string& rootfs, const std::string& layer_tar) {
  std::string listing;
  if (run({"tar", "--quoting-style=literal", "-tf", layer_tar}, &listing) != 0)
    return make_error(errc::bad_request, "layer " + layer_tar + " is not a readable tar");
  std::vector<std::string> names;
  std::stringstream ss(listing);
  for (std::string n; std::getline(ss, n);) names.push_back(n);
  // Whiteouts hide what the layers *below* hold, so they go before this layer's own files.
  if (auto st = apply_whiteouts(rootfs, whiteout_actions(names)); !st) return st;
  return contained_untar(layer_tar, rootfs, true);
}

image_store::image_store(std::string data_dir) : root_(std::move(data_dir) + "/images") {}

namespace {

// Bytes of the regular files under a rootfs (symlinks not followed), as `du --apparent-size`.
uint64_t tree_bytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  return total;
}

}  // namespace

std::vector<std::string> image_store::list() const {
  std::vector<std::string> out;
  for (auto& i : infos()) out.push_back(i.name);
  return out;
}

std::vector<image_info> image_store::infos() const {
  std::vector<image_info> out;
  std::error_code ec;
  for (auto& n : fs::directory_iterator(root_, ec)) {
    if (!n.is_directory() || n.path().filename().string().front() == '.') continue;
    for (auto& t : fs::directory_iterator(n.path(), ec)) {
      if (!fs::exists(t.path() / "manifest.json") || !fs::is_directory(t.path() / "rootfs")) continue;
      auto r = image_ref::from_dirs(n.path().filename().string(), t.path().filename().string());
      if (!r) continue;
      auto m = read_json((t.path() / "manifest.json").string()).value_or(json::object());
      image_info i{r->str(), m.value("digest", std::string()), m.value("created_at", std::string()), 0};
      // Images from before size_bytes was recorded are measured now.
      i.size_bytes = m.contains("size_bytes") ? m["size_bytes"].get<uint64_t>()
                                              : tree_bytes((t.path() / "rootfs").string());
      out.push_back(std::move(i));
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

expected<std::string> image_store::rootfs_path(const std::string& ref) const {
  auto r = image_ref::parse(ref);
  if (!r) return make_error(errc::not_found, "unknown image " + ref);
  std::string d = dir_of(*r);
  if (!fs::exists(d + "/manifest.json") || !fs::is_directory(d + "/rootfs"))
    return make_error(errc::not_found, "unknown image " + r->str());
  return d + "/rootfs";
}

status image_store::publish(const image_ref& r, const std::string& staging, const image_origin& origin) {
  std::string rootfs = staging + "/rootfs";
  // Owned by real root, read-only to everyone else: sandboxes see it through an idmapped mount.
  if (chown(rootfs.c_str(), 0, 0) != 0 || chmod(rootfs.c_str(), 0755) != 0)
    return fail("chown image rootfs: " + std::string(strerror(errno)));
  json m = {{"name", r.name}, {"tag", r.tag}, {"source", origin.source}, {"created_at", now_rfc3339()},
            {"size_bytes", tree_bytes(rootfs)}};
  if (!r.digest.empty()) m["ref_digest"] = r.digest;
  if (!origin.digest.empty()) m["digest"] = origin.digest;
  if (!origin.layers.empty()) m["layers"] = origin.layers;
  std::ofstream(staging + "/manifest.json") << m.dump(2) << "\n";
  std::error_code ec;
  fs::create_directories(root_ + "/" + r.name_dir(), ec);
  std::string target = dir_of(r), old;
  if (fs::exists(target)) {
    old = staging + ".old";
    fs::rename(target, old, ec);
    if (ec) return fail("replace " + target + ": " + ec.message());
  }
  fs::rename(staging, target, ec);
  if (ec) return fail("publish " + target + ": " + ec.message());
  if (!old.empty()) fs::remove_all(old, ec);  // running sandboxes keep their mount of it
  std::cerr << "image " << r.str() << ": ready at " << target << "/rootfs\n";
  return ok();
}

expected<std::string> image_store::make_staging(const char* kind) const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  std::string tmpl = root_ + "/." + kind + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) return fail("mkdtemp: " + std::string(strerror(errno))).err();
  fs::create_directories(tmpl + "/rootfs", ec);
  return tmpl;
}

status image_store::build(const std::string& ref, bool force) {
  auto r = image_ref::parse(ref);
  if (!r) return r.err();
  if (!force && rootfs_path(r->str())) return ok();
  bool base = r->name == "base" && r->tag == "latest";
  if ((r->name != "busybox" && r->name != "debian" && !base) || r->tag.empty())
    return make_error(errc::bad_request,
                      "no recipe for " + r->str() + " (debian:<suite>, busybox:latest, base:latest)");
  auto staging = make_staging("build");
  if (!staging) return staging.err();
  std::string rootfs = *staging + "/rootfs";
  std::cerr << "image " << r->str() << ": building in " << *staging << "\n";
  status st = base ? build_base(rootfs) : r->name == "busybox" ? build_busybox(rootfs) : build_debian(r->tag, rootfs);
  if (st)
    st = publish(*r, *staging,
                 {r->name == "busybox" ? "busybox-static"
                  : base               ? std::string("debootstrap ") + debian_mirror + " + E2B user"
                                       : std::string("debootstrap ") + debian_mirror,
                  "", {}});
  std::error_code ec;
  if (!st) fs::remove_all(*staging, ec);
  return st;
}

status image_store::install(const image_ref& r, const std::vector<std::string>& layers, const image_origin& origin) {
  auto staging = make_staging("install");
  if (!staging) return staging.err();
  auto run_install = [&]() -> status {
    for (size_t i = 0; i < layers.size(); ++i) {
      std::cerr << "image " << r.str() << ": layer " << i + 1 << "/" << layers.size() << "\n";
      if (auto st = apply_layer(*staging + "/rootfs", layers[i]); !st) return st;
    }
    return publish(r, *staging, origin);
  };
  status st = run_install();
  std::error_code ec;
  if (!st) fs::remove_all(*staging, ec);
  return st;
}

status image_store::import(const std::string& source, const std::string& ref, bool force) {
  auto r = image_ref::parse(ref);
  if (!r) return r.err();
  if (!force && rootfs_path(r->str())) return ok();
  std::error_code ec;
  auto unpacked = make_staging("import");
  if (!unpacked) return unpacked.err();
  auto run_import = [&]() -> status {
    std::string layout = source;
    std::vector<std::string> layers;
    if (fs::is_regular_file(source)) {
      layout = *unpacked + "/archive";
      fs::create_directories(layout, ec);
      if (auto st = contained_untar(fs::absolute(source).string(), layout, false); !st) return st;
    } else if (!fs::is_directory(source)) {
      return make_error(errc::not_found, "no such file or directory: " + source);
    }
    if (fs::exists(layout + "/index.json")) {
      auto l = oci_layers(layout);
      if (!l) return l.err();
      layers = *l;
    } else if (fs::exists(layout + "/manifest.json")) {
      auto l = docker_layers(layout);
      if (!l) return l.err();
      layers = *l;
    } else if (fs::is_regular_file(source)) {
      layers = {fs::absolute(source).string()};  // a plain rootfs tarball is a single layer
    } else {
      return make_error(errc::bad_request, source + " is neither an OCI layout nor an archive");
    }
    return install(*r, layers, {"import " + source, "", {}});
  };
  status st = run_import();
  fs::remove_all(*unpacked, ec);
  return st;
}

int image_store::blobs_lock(bool exclusive, bool wait) const {
  std::error_code ec;
  fs::create_directories(blob_dir(), ec);
  int fd = open((blob_dir() + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  while (flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    close(fd);
    return -1;
  }
  return fd;
}

status image_store::remove(const std::string& ref) {
  auto r = image_ref::parse(ref);
  if (!r) return make_error(errc::not_found, "unknown image " + ref);
  std::string d = dir_of(*r);
  if (!fs::exists(d + "/manifest.json")) return make_error(errc::not_found, "unknown image " + r->str());
  // Renamed away first, so a half-removed image is never visible under its name.
  std::string gone = root_ + "/.remove-" + std::to_string(getpid()) + "-" + std::to_string(std::time(nullptr)) +
                     "-" + r->name_dir() + "-" + std::to_string(std::hash<std::string>{}(r->str()));
  std::error_code ec;
  fs::rename(d, gone, ec);
  if (ec) return fail("remove " + d + ": " + ec.message());
  fs::remove_all(gone, ec);
  fs::remove(root_ + "/" + r->name_dir(), ec);  // only when it was the name's last tag
  collect_blobs();
  return ok();
}

void image_store::collect_blobs() const {
  int lock = blobs_lock(true, false);
  if (lock < 0) return;  // a pull is running; the next removal collects
  std::set<std::string> used;
  std::error_code ec;
  for (auto& n : fs::directory_iterator(root_, ec))
    for (auto& t : fs::directory_iterator(n.path(), ec))
      if (auto m = read_json((t.path() / "manifest.json").string()); m && m->contains("layers"))
        for (auto& l : (*m)["layers"]) used.insert(l.get<std::string>());
  for (auto& b : fs::directory_iterator(blob_dir(), ec)) {
    auto f = b.path().filename().string();
    if (f.size() >= 64 && !used.count("sha256:" + f.substr(0, 64))) fs::remove(b.path(), ec);
  }
  close(lock);
}

}  // namespace warren::storage
