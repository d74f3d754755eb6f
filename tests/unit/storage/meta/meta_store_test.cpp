// Tests storage/meta_store.cpp: round trips, reopen, schema version, column family isolation.
#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <unistd.h>

#include "core/ids.hpp"
#include "storage/meta_store.hpp"

using namespace warren;
using namespace warren::storage;
namespace fs = std::filesystem;

namespace {
struct tmpdir {
  fs::path p = fs::temp_directory_path() / ("warren-meta-" + random_hex(6));
  ~tmpdir() { fs::remove_all(p); }
};
}  // namespace

TEST_CASE("records written survive closing and reopening the store") {
  tmpdir d;
  {
    auto s = meta_store::open(d.p.string());
    REQUIRE(s);
    sandbox_record r;
    r.id = "0123456789abcdef";
    r.tenant = "acme";
    r.state = "running";
    r.metadata = {{"k", "v"}};
    REQUIRE((*s)->put_record(family::sandboxes, r));
    REQUIRE((*s)->put_record(family::keys, key_record{"k1", "acme", true, "t", false, ""}));
  }
  auto s = meta_store::open(d.p.string());
  REQUIRE(s);
  auto r = (*s)->get_record<sandbox_record>(family::sandboxes, "0123456789abcdef");
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK((*r)->tenant == "acme");
  CHECK((*r)->metadata["k"] == "v");
  auto k = (*s)->get_record<key_record>(family::keys, "k1");
  REQUIRE(k->has_value());
  CHECK((*k)->admin);
  CHECK((*s)->stored_schema_version() == meta_store::schema_version);
}

TEST_CASE("column families are separate and erase removes") {
  tmpdir d;
  auto s = std::move(*meta_store::open(d.p.string()));
  REQUIRE(s->put(family::sandboxes, "x", "1"));
  CHECK_FALSE(s->get(family::keys, "x")->has_value());
  REQUIRE(s->erase(family::sandboxes, "x"));
  CHECK_FALSE(s->get(family::sandboxes, "x")->has_value());
  REQUIRE(s->put(family::nodes, "b", "2"));
  REQUIRE(s->put(family::nodes, "a", "1"));
  auto all = s->scan(family::nodes);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].first == "a");
}

TEST_CASE("a damaged record is reported, not half-read") {
  tmpdir d;
  auto s = std::move(*meta_store::open(d.p.string()));
  REQUIRE(s->put(family::keys, "bad", "{not json"));
  auto r = s->get_record<key_record>(family::keys, "bad");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::internal);
  REQUIRE(s->put(family::keys, "old", R"({"v":99,"key_id":"old"})"));
  CHECK_FALSE(s->get_record<key_record>(family::keys, "old"));
}

TEST_CASE("an unopenable directory is an error, not a crash") {
  tmpdir d;
  fs::create_directories(d.p);
  auto file = d.p / "file";
  { FILE* f = fopen(file.c_str(), "w"); fputs("x", f); fclose(f); }
  auto s = meta_store::open((file / "sub").string());
  CHECK_FALSE(s);
}
