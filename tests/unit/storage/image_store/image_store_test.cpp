// tests/unit/storage/image_store/image_store_test.cpp — OCI whiteouts (layer.md) on handmade
// ustar layers, an OCI layout import end to end, and hostile member names.
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/image_store.hpp"

namespace fs = std::filesystem;
using namespace warren::storage;

namespace {

// A minimal ustar writer: enough to hand-make layers with dirs, files and symlinks.
struct tar_entry {
  std::string name;
  char type;  // '0' file, '5' dir, '2' symlink
  std::string body_or_link;
};

std::string make_tar(const std::vector<tar_entry>& entries) {
  std::string out;
  for (auto& e : entries) {
    char h[512] = {};
    snprintf(h, 100, "%s", e.name.c_str());
    snprintf(h + 100, 8, "%07o", e.type == '5' ? 0755 : 0644);
    snprintf(h + 108, 8, "%07o", 0);
    snprintf(h + 116, 8, "%07o", 0);
    size_t size = e.type == '0' ? e.body_or_link.size() : 0;
    snprintf(h + 124, 12, "%011zo", size);
    snprintf(h + 136, 12, "%011o", 0);
    h[156] = e.type;
    if (e.type == '2') snprintf(h + 157, 100, "%s", e.body_or_link.c_str());
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    snprintf(h + 148, 8, "%06o", sum);
    out.append(h, 512);
    if (size) {
      out += e.body_or_link;
      out.append((512 - size % 512) % 512, '\0');
    }
  }
  out.append(1024, '\0');
  return out;
}

struct tmpdir {
  std::string path;
  tmpdir() {
    char t[] = "/tmp/wimg-XXXXXX";
    path = mkdtemp(t);
  }
  ~tmpdir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

const std::vector<tar_entry> layer1 = {
    {"a/", '5', ""},       {"a/f1", '0', "one"}, {"a/f2", '0', "two"},      {"b/", '5', ""},
    {"b/x", '0', "x"},     {"c", '0', "c"},      {"etc", '2', "/tmp"},  // hostile: points at host /tmp
};
const std::vector<tar_entry> layer2 = {
    {"a/.wh.f1", '0', ""}, {"b/", '5', ""}, {"b/.wh..wh..opq", '0', ""}, {"b/y", '0', "y"},
    {".wh.c", '0', ""},    {"etc/.wh.passwd", '0', ""},
};

}  // namespace

TEST_CASE("whiteout names become removals and opaque dirs; escapes are dropped") {
  auto a = whiteout_actions({"./a/.wh.f1", "b/.wh..wh..opq", "/.wh.c", "d/e/", "../.wh.x", "a/../../.wh.y",
                             ".wh..", "x/.wh.", "plain"});
  std::vector<whiteout_action> want = {{whiteout_action::remove, "a/f1"},
                                       {whiteout_action::make_opaque, "b"},
                                       {whiteout_action::remove, "c"}};
  CHECK(a == want);
  CHECK(whiteout_actions({}).empty());
}

TEST_CASE("image references parse with a default tag and reject path tricks") {
  CHECK(image_ref::parse("debian:bookworm")->str() == "debian:bookworm");
  CHECK(image_ref::parse("busybox")->tag == "latest");
  CHECK_FALSE(image_ref::parse("../etc:x").has_value());
  CHECK(image_ref::parse("a/b:c")->str() == "a/b:c");
  CHECK(image_ref::parse("docker.io/library/python:3.12")->str() == "python:3.12");
  CHECK(image_ref::parse("python")->repository() == "library/python");
  CHECK(image_ref::parse("python")->registry() == "docker.io");
  auto local = image_ref::parse("127.0.0.1:5000/test/multi:v1");
  CHECK(local->registry() == "127.0.0.1:5000");
  CHECK(local->repository() == "test/multi");
  CHECK(local->name_dir() == "127.0.0.1:5000+test+multi");
  CHECK(image_ref::from_dirs(local->name_dir(), local->tag_dir())->str() == local->str());
  std::string d = "sha256:" + std::string(64, 'a');
  CHECK(image_ref::parse("x@" + d)->str() == "x@" + d);
  CHECK_FALSE(image_ref::parse("x@sha256:zz").has_value());
  CHECK_FALSE(image_ref::parse("a/../b").has_value());
  CHECK_FALSE(image_ref::parse("A/b").has_value());
  CHECK_FALSE(image_ref::parse("a:../b").has_value());
  CHECK_FALSE(image_ref::parse("").has_value());
  CHECK_FALSE(image_ref::parse(std::string(300, 'a')).has_value());
}

TEST_CASE("an OCI layout imports layers in order honouring whiteouts, never outside the rootfs") {
  if (access("/usr/bin/bwrap", X_OK) != 0) SKIP("bubblewrap not installed");
  tmpdir t;
  std::string layout = t.path + "/layout";
  std::string d1(64, '1'), d2(64, '2'), dm(64, 'a');
  write(layout + "/blobs/sha256/" + d1, make_tar(layer1));
  write(layout + "/blobs/sha256/" + d2, make_tar(layer2));
  write(layout + "/blobs/sha256/" + dm,
        R"({"schemaVersion":2,"layers":[{"digest":"sha256:)" + d1 + R"("},{"digest":"sha256:)" + d2 + R"("}]})");
  write(layout + "/index.json", R"({"schemaVersion":2,"manifests":[{"digest":"sha256:)" + dm + R"("}]})");
  write(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  std::string canary = "/tmp/passwd";  // what "etc/.wh.passwd" would hit through the symlink
  bool canary_existed = fs::exists(canary);
  if (!canary_existed) write(canary, "canary");

  image_store store(t.path + "/data");
  auto st = store.import(layout, "test:v1");
  REQUIRE(st.has_value());
  auto root = store.rootfs_path("test:v1");
  REQUIRE(root.has_value());
  CHECK(fs::exists(*root + "/a/f2"));
  CHECK_FALSE(fs::exists(*root + "/a/f1"));
  CHECK_FALSE(fs::exists(*root + "/b/x"));
  CHECK(fs::exists(*root + "/b/y"));
  CHECK_FALSE(fs::exists(*root + "/c"));
  CHECK_FALSE(fs::exists(*root + "/a/.wh.f1"));
  CHECK_FALSE(fs::exists(*root + "/b/.wh..wh..opq"));
  CHECK(fs::exists(canary));  // the whiteout resolved inside the rootfs, not on the host
  if (!canary_existed) fs::remove(canary);
  CHECK(store.list() == std::vector<std::string>{"test:v1"});
  CHECK(store.import(layout, "test:v1").has_value());  // existing: a no-op
  CHECK(store.rootfs_path("test:v2").err().code == warren::errc::not_found);
}

TEST_CASE("a plain rootfs tarball imports as a single layer; garbage does not") {
  if (access("/usr/bin/bwrap", X_OK) != 0) SKIP("bubblewrap not installed");
  tmpdir t;
  write(t.path + "/root.tar", make_tar({{"bin/", '5', ""}, {"bin/hello", '0', "hi"}}));
  write(t.path + "/junk.tar", std::string(3000, 'z'));
  image_store store(t.path + "/data");
  REQUIRE(store.import(t.path + "/root.tar", "plain").has_value());
  CHECK(fs::exists(store.rootfs_path("plain:latest").value() + "/bin/hello"));
  CHECK_FALSE(store.import(t.path + "/junk.tar", "junk").has_value());
  CHECK_FALSE(store.import(t.path + "/missing.tar", "missing").has_value());
  CHECK(store.list() == std::vector<std::string>{"plain:latest"});
}

TEST_CASE("installed images are listed with size, removed by name, and unused layer blobs collected") {
  if (access("/usr/bin/bwrap", X_OK) != 0) SKIP("bubblewrap not installed");
  tmpdir t;
  image_store store(t.path + "/data");
  std::string used(64, 'b'), unused(64, 'c');
  write(store.blob_dir() + "/" + used, make_tar({{"bin/", '5', ""}, {"bin/hello", '0', "hi"}}));
  write(store.blob_dir() + "/" + unused, "x");
  auto r = image_ref::parse("127.0.0.1:5000/test/app:v1").value();
  REQUIRE(store.install(r, {store.blob_dir() + "/" + used}, {"pull test", "sha256:" + std::string(64, 'd'),
                                                            {"sha256:" + used}}).has_value());
  auto infos = store.infos();
  REQUIRE(infos.size() == 1);
  CHECK(infos[0].name == "127.0.0.1:5000/test/app:v1");
  CHECK(infos[0].digest == "sha256:" + std::string(64, 'd'));
  CHECK(infos[0].size_bytes == 2);
  CHECK(fs::exists(store.rootfs_path("127.0.0.1:5000/test/app:v1").value() + "/bin/hello"));
  REQUIRE(store.remove("127.0.0.1:5000/test/app:v1").has_value());
  CHECK(store.list().empty());
  CHECK(store.remove("127.0.0.1:5000/test/app:v1").err().code == warren::errc::not_found);
  CHECK_FALSE(fs::exists(store.blob_dir() + "/" + used));
  CHECK_FALSE(fs::exists(store.blob_dir() + "/" + unused));
}
