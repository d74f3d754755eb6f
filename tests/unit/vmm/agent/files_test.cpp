// tests/unit/vmm/agent/files_test.cpp — file operations through the real agent, confined to its
// --root: write/read/stat/list/remove/mkdir, a 64 MiB streamed round trip, and every path-escape
// attack we know (.., absolute and relative symlinks, loops, symlinks swapped mid-request).
#include <catch2/catch_test_macros.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "agent_harness.hpp"

using namespace agent_test;
namespace fs = std::filesystem;
using warren::errc;

namespace {

struct fixture {
  agent_process agent;
  boost::asio::io_context io;
  std::shared_ptr<warren::agent::client> c = connect(io, agent.socket);

  warren::expected<std::string> read(const std::string& path) {
    std::string data;
    std::optional<warren::expected<uint64_t>> done;
    c->read_file(path, {[&](std::string_view s) { data.append(s); },
                        [&](warren::expected<uint64_t> r) { done = std::move(r); }});
    run_until(io, [&] { return done.has_value(); });
    if (!done) return warren::make_error(errc::timeout, "no reply");
    if (!*done) return done->err();
    return data;
  }

  warren::expected<uint64_t> write(const std::string& path, const std::string& data,
                                   std::optional<uint32_t> mode = {}) {
    std::optional<warren::expected<uint64_t>> done;
    auto w = c->write_file(path, {mode}, [&](warren::expected<uint64_t> r) { done = std::move(r); });
    w->write(data);
    w->finish();
    run_until(io, [&] { return done.has_value(); });
    if (!done) return warren::make_error(errc::timeout, "no reply");
    return *done;
  }

  warren::expected<warren::agent::file_info> stat(const std::string& path) {
    std::optional<warren::expected<warren::agent::file_info>> done;
    c->stat(path, [&](auto r) { done = std::move(r); });
    run_until(io, [&] { return done.has_value(); });
    return *done;
  }

  warren::expected<std::vector<warren::agent::file_info>> list(const std::string& path) {
    std::optional<warren::expected<std::vector<warren::agent::file_info>>> done;
    c->list(path, [&](auto r) { done = std::move(r); });
    run_until(io, [&] { return done.has_value(); });
    return *done;
  }

  warren::status remove(const std::string& path, bool recursive = true) {
    std::optional<warren::status> done;
    c->remove(path, recursive, [&](warren::status r) { done = std::move(r); });
    run_until(io, [&] { return done.has_value(); });
    return *done;
  }

  warren::status mkdir(const std::string& path) {
    std::optional<warren::status> done;
    c->mkdir(path, std::nullopt, [&](warren::status r) { done = std::move(r); });
    run_until(io, [&] { return done.has_value(); });
    return *done;
  }
};

}  // namespace

TEST_CASE("a written file can be read, stat'ed, listed and removed, parents created") {
  fixture f;
  REQUIRE(f.c);
  auto w = f.write("/a/b/c.txt", "hello", 0600);
  REQUIRE(w);
  CHECK(*w == 5);
  CHECK(slurp(f.agent.root + "/a/b/c.txt") == "hello");
  auto r = f.read("/a/b/c.txt");
  REQUIRE(r);
  CHECK(*r == "hello");

  auto st = f.stat("/a/b/c.txt");
  REQUIRE(st);
  CHECK(st->type == "file");
  CHECK(st->size == 5);
  CHECK(st->mode == 0600);
  CHECK(st->name == "c.txt");
  CHECK(st->mtime_ns > 0);
  CHECK(f.stat("/a/b")->type == "dir");

  REQUIRE(f.write("/a/b/d.txt", "x"));
  ::symlink("c.txt", (f.agent.root + "/a/b/link").c_str());
  auto ls = f.list("/a/b");
  REQUIRE(ls);
  REQUIRE(ls->size() == 3);
  CHECK((*ls)[0].name == "c.txt");
  CHECK((*ls)[0].path == "/a/b/c.txt");
  CHECK((*ls)[1].name == "d.txt");
  CHECK((*ls)[2].name == "link");
  CHECK((*ls)[2].type == "symlink");
  CHECK(f.stat("/a/b/link")->target == "c.txt");

  REQUIRE(f.remove("/a/b/c.txt"));
  CHECK_FALSE(fs::exists(f.agent.root + "/a/b/c.txt"));
  REQUIRE(f.remove("/a"));
  CHECK_FALSE(fs::exists(f.agent.root + "/a"));
}

TEST_CASE("file ops report not_found, is-a-directory and non-empty-directory errors") {
  fixture f;
  auto r = f.read("/missing");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::not_found);
  CHECK(f.stat("/missing").err().code == errc::not_found);
  CHECK(f.list("/missing").err().code == errc::not_found);
  CHECK(f.remove("/missing").err().code == errc::not_found);
  REQUIRE(f.mkdir("/d/e"));
  REQUIRE(f.mkdir("/d/e"));  // mkdir -p: existing is fine
  CHECK(f.read("/d").err().code == errc::bad_request);
  CHECK(f.write("/d", "x").err().code == errc::bad_request);
  CHECK(f.remove("/d", false).err().code == errc::conflict);
  CHECK(f.remove("/").err().code == errc::bad_request);
  REQUIRE(f.write("/plain", "x"));
  CHECK(f.mkdir("/plain/sub").err().code != errc::internal);
}

TEST_CASE("every file op refuses relative paths") {
  fixture f;
  CHECK(f.read("etc/passwd").err().code == errc::bad_request);
  CHECK(f.write("x", "y").err().code == errc::bad_request);
  CHECK(f.stat("").err().code == errc::bad_request);
  CHECK(f.list(".").err().code == errc::bad_request);
  CHECK(f.remove("a").err().code == errc::bad_request);
  CHECK(f.mkdir("a/b").err().code == errc::bad_request);
}

TEST_CASE("a 64 MiB file streams in chunks both ways") {
  fixture f;
  constexpr std::size_t chunk = 1u << 20, total = 64u << 20;
  auto pattern = [](std::size_t i) { return static_cast<char>((i * 131) % 251); };
  std::optional<warren::expected<uint64_t>> done;
  auto w = f.c->write_file("/big.bin", {}, [&](auto r) { done = std::move(r); });
  std::size_t sent = 0;
  int in_flight = 0, max_in_flight = 0;
  std::function<void()> next = [&] {
    if (sent == total) return w->finish();
    std::string s(chunk, '\0');
    for (std::size_t i = 0; i < chunk; ++i) s[i] = pattern(sent + i);
    sent += chunk;
    max_in_flight = std::max(max_in_flight, ++in_flight);
    w->write(std::move(s), [&](warren::status st) {
      REQUIRE(st);
      --in_flight;
      next();  // the next chunk only once this one left: the upload is never held whole
    });
  };
  next();
  REQUIRE(run_until(f.io, [&] { return done.has_value(); }, 120s));
  REQUIRE(*done);
  CHECK(**done == total);
  CHECK(max_in_flight == 1);
  CHECK(fs::file_size(f.agent.root + "/big.bin") == total);

  std::size_t got = 0;
  bool good = true;
  std::optional<warren::expected<uint64_t>> rdone;
  f.c->read_file("/big.bin", {[&](std::string_view s) {
                                for (std::size_t i = 0; i < s.size(); ++i)
                                  good = good && s[i] == pattern(got + i);
                                got += s.size();
                              },
                              [&](auto r) { rdone = std::move(r); }});
  REQUIRE(run_until(f.io, [&] { return rdone.has_value(); }, 120s));
  REQUIRE(*rdone);
  CHECK(got == total);
  CHECK(**rdone == total);
  CHECK(good);
  CHECK(f.agent.rss_kib() < 32 * 1024);
}

TEST_CASE("dot-dot cannot climb out of the root") {
  fixture f;
  spit(f.agent.dir + "/secret", "HOST");
  auto r = f.read("/../secret");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::not_found);
  REQUIRE(f.write("/../../escaped", "x"));  // lands inside the root
  CHECK(fs::exists(f.agent.root + "/escaped"));
  CHECK_FALSE(fs::exists(f.agent.dir + "/escaped"));
  CHECK_FALSE(f.stat("/x/..").has_value());
}

TEST_CASE("absolute symlinks resolve inside the root, never on the host") {
  fixture f;
  spit(f.agent.dir + "/secret", "HOST");
  fs::create_directories(f.agent.dir + "/hostdir");
  spit(f.agent.dir + "/hostdir/victim", "keep me");
  ::symlink((f.agent.dir + "/secret").c_str(), (f.agent.root + "/abs_file").c_str());
  ::symlink((f.agent.dir + "/hostdir").c_str(), (f.agent.root + "/abs_dir").c_str());
  ::symlink("/", (f.agent.root + "/slash").c_str());

  CHECK(f.read("/abs_file").err().code == errc::not_found);
  CHECK(f.read("/abs_dir/victim").err().code == errc::not_found);
  CHECK(f.list("/abs_dir").err().code == errc::not_found);
  CHECK_FALSE(f.remove("/abs_dir/victim"));
  CHECK(slurp(f.agent.dir + "/hostdir/victim") == "keep me");
  f.mkdir("/abs_dir/newdir");
  CHECK_FALSE(fs::exists(f.agent.dir + "/hostdir/newdir"));
  f.write("/abs_dir/planted", "evil");
  CHECK_FALSE(fs::exists(f.agent.dir + "/hostdir/planted"));
  f.write("/abs_file", "overwrite");
  CHECK(slurp(f.agent.dir + "/secret") == "HOST");

  REQUIRE(f.write("/inside.txt", "in root"));
  auto r = f.read("/slash/inside.txt");  // "/" inside the root is the root
  REQUIRE(r);
  CHECK(*r == "in root");
  REQUIRE(f.remove("/slash"));  // removes the link, not what it points at
  CHECK(fs::exists(f.agent.root + "/inside.txt"));
}

TEST_CASE("relative symlinks with many dot-dots stay inside the root") {
  fixture f;
  spit(f.agent.dir + "/secret", "HOST");
  fs::create_directories(f.agent.root + "/a/b");
  ::symlink("../../../../../../secret", (f.agent.root + "/a/b/rel").c_str());
  ::symlink("../../..", (f.agent.root + "/a/b/up").c_str());
  CHECK(f.read("/a/b/rel").err().code == errc::not_found);
  CHECK(f.read("/a/b/up/secret").err().code == errc::not_found);
  spit(f.agent.root + "/secret", "sandbox");
  CHECK(*f.read("/a/b/rel") == "sandbox");
}

TEST_CASE("symlink loops fail cleanly") {
  fixture f;
  ::symlink("loop2", (f.agent.root + "/loop1").c_str());
  ::symlink("loop1", (f.agent.root + "/loop2").c_str());
  auto r = f.read("/loop1");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::bad_request);
  CHECK_FALSE(f.write("/loop1/x", "y"));
  CHECK(f.stat("/loop1")->type == "symlink");
}

TEST_CASE("a symlink swapped in during requests never exposes the host") {
  fixture f;
  fs::create_directories(f.agent.dir + "/hostdir");
  spit(f.agent.dir + "/hostdir/f", "HOST");
  fs::create_directories(f.agent.root + "/real");
  spit(f.agent.root + "/real/f", "sandbox");
  ::symlink((f.agent.dir + "/hostdir").c_str(), (f.agent.root + "/evil").c_str());
  std::string swap = f.agent.root + "/swap", real = f.agent.root + "/real",
              evil = f.agent.root + "/evil", tmp = f.agent.root + "/tmp";
  ::symlink("real", swap.c_str());
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    // Alternate /swap between a link to ./real and the absolute host link, atomically.
    bool to_evil = true;
    while (!stop) {
      ::unlink(tmp.c_str());
      ::symlink(to_evil ? (f.agent.dir + "/hostdir").c_str() : "real", tmp.c_str());
      ::rename(tmp.c_str(), swap.c_str());
      to_evil = !to_evil;
    }
  });
  int host_seen = 0, sandbox_seen = 0;
  for (int i = 0; i < 300; ++i) {
    auto r = f.read("/swap/f");
    if (r && *r == "HOST") ++host_seen;
    if (r && *r == "sandbox") ++sandbox_seen;
  }
  stop = true;
  flipper.join();
  CHECK(host_seen == 0);
  CHECK(sandbox_seen > 0);
}
