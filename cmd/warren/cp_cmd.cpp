// cmd/warren/cp_cmd.cpp — `warren cp`: one file to or from a sandbox (`ID:/abs/path`), streamed
// both ways through the files API; never holds the file in memory. Shows progress on a tty.
#include "cmd/warren/cp_cmd.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cmd/warren/api_command.hpp"

namespace warren::cmd {
namespace {

const std::string prog = "cp";

struct remote_path {
  std::string id, path;
};

// "3f9a0c1d2e4b5a69:/etc/hosts" → {id, path}; local paths (also "./a:b") are not remote.
std::optional<remote_path> parse_remote(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || s.find('/') < colon) return std::nullopt;
  return remote_path{s.substr(0, colon), s.substr(colon + 1)};
}

std::string basename_of(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string files_target(const remote_path& r, const char* what = "/files") {
  return "/v1/sandboxes/" + url_encode(r.id) + what + "?path=" + url_encode(r.path);
}

// A one-line progress meter on stderr, redrawn at most 10 times a second.
class progress_meter {
 public:
  explicit progress_meter(bool on) : on_(on), start_(clock::now()), last_(start_) {}
  void operator()(uint64_t done, uint64_t total) {
    if (!on_) return;
    auto now = clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && done != total) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    std::ostringstream os;
    os << std::fixed << std::setprecision(1) << "\r" << mib(done) << " MiB";
    if (total) os << " / " << mib(total) << " MiB " << std::setw(3) << done * 100 / total << "%";
    if (secs > 0) os << "  " << mib(static_cast<uint64_t>(static_cast<double>(done) / secs)) << " MiB/s";
    std::cerr << os.str() << "   " << std::flush;
    drawn_ = true;
  }
  ~progress_meter() {
    if (drawn_) std::cerr << "\n";
  }

 private:
  using clock = std::chrono::steady_clock;
  static double mib(uint64_t b) { return static_cast<double>(b) / (1 << 20); }
  bool on_, drawn_ = false;
  clock::time_point start_, last_;
};

int upload(api_client& c, const std::string& local, remote_path dst, bool show) {
  FILE* f = local == "-" ? stdin : std::fopen(local.c_str(), "rb");
  if (!f) return fail(prog, "cannot open " + local + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    if (f != stdin) std::fclose(f);
    return fail(prog, local + " is a directory; cp copies one file");
  }
  if (!S_ISREG(st.st_mode)) return fail(prog, local + " is not a regular file (its size must be known)");
  if (!dst.path.empty() && dst.path.back() == '/') dst.path += basename_of(local);
  progress_meter meter(show);
  auto r = c.upload(files_target(dst), static_cast<uint64_t>(st.st_size),
                    [f](char* buf, size_t n) { return std::fread(buf, 1, n, f); },
                    [&meter](uint64_t d, uint64_t t) { meter(d, t); });
  if (f != stdin) std::fclose(f);
  if (!r) return fail(prog, r.err().message);
  if (!r->ok()) return fail(prog, describe_error(*r));
  return 0;
}

int download(api_client& c, const remote_path& src, std::string local, bool show) {
  std::error_code ec;
  if (local != "-" && std::filesystem::is_directory(local, ec)) local += "/" + basename_of(src.path);
  std::string partial = local == "-" ? "" : local + ".warren-partial";
  FILE* f = local == "-" ? stdout : std::fopen(partial.c_str(), "wb");
  if (!f) return fail(prog, "cannot write " + partial + ": " + std::strerror(errno));
  bool write_failed = false;
  progress_meter meter(show && local != "-");
  auto r = c.download(files_target(src),
                      [&](const char* d, size_t n) { return !(write_failed = std::fwrite(d, 1, n, f) != n); },
                      [&meter](uint64_t d, uint64_t t) { meter(d, t); });
  bool closed_ok = f == stdout ? std::fflush(f) == 0 : std::fclose(f) == 0;
  auto cleanup = [&] {
    if (!partial.empty()) std::remove(partial.c_str());
  };
  if (!r) return cleanup(), fail(prog, r.err().message);
  if (!r->ok()) return cleanup(), fail(prog, describe_error(*r));
  if (write_failed || !closed_ok) return cleanup(), fail(prog, "cannot write " + local + ": " + std::strerror(errno));
  // Complete: only now does the file appear under its name (a failed copy leaves nothing).
  if (!partial.empty() && std::rename(partial.c_str(), local.c_str()) != 0)
    return cleanup(), fail(prog, "cannot rename to " + local + ": " + std::strerror(errno));
  return 0;
}

int copy(api_client& c, const cli_args& a) {
  if (a.positional.size() != 2) return fail(prog, "usage: warren cp SRC DST (one side is ID:/path)"), 2;
  auto src = parse_remote(a.positional[0]), dst = parse_remote(a.positional[1]);
  if (src.has_value() == dst.has_value())
    return fail(prog, "exactly one of SRC and DST must be in a sandbox (ID:/abs/path)"), 2;
  bool show = a.has("--progress") || (!a.has("--quiet") && ::isatty(2));
  return dst ? upload(c, a.positional[0], *dst, show) : download(c, *src, a.positional[1], show);
}

}  // namespace

int cp_main(std::vector<std::string> args) {
  static const api_command cmd{
      "cp", "copy a file to or from a sandbox",
      "usage: warren cp SRC DST\n"
      "Copies one file between this machine and a sandbox; the sandbox side is ID:/abs/path.\n"
      "  warren cp ./data.csv 3f9a0c1d2e4b5a69:/work/        (a trailing / keeps the name)\n"
      "  warren cp 3f9a0c1d2e4b5a69:/work/out.json .\n"
      "`-` is stdin (upload, when it is a regular file) or stdout (download). Streams both ways;\n"
      "a download appears under its name only once complete.\n"
      "  --progress   always show progress (default: when stderr is a terminal)\n"
      "  --quiet      never show progress\n",
      {}, {"--progress", "--quiet"}, SIZE_MAX, copy};
  return run_api_command("cp", cmd, args);
}

}  // namespace warren::cmd
