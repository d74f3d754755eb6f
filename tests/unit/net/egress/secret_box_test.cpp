// Tests net/egress/secret_box.cpp: sealing round trips, tampering and wrong keys fail, the key file's mode.
#include <catch2/catch_test_macros.hpp>

#include <sys/stat.h>

#include <fstream>

#include "net/egress/secret_box.hpp"
#include "tests/unit/net/egress/temp_dir.hpp"

using namespace warren;
using namespace warren::net::egress;

TEST_CASE("a sealed secret opens to the same bytes, and the key file is made 0600 and reused") {
  test::temp_dir dir;
  std::string key = dir.path + "/secret.key";
  auto box = secret_box::load_or_create(key);
  REQUIRE(box);
  CHECK(test::mode_of(key) == 0600);
  std::string plain = std::string("sk-test-\0binary\xff", 16);
  std::string sealed = box->seal(plain);
  CHECK(sealed.rfind("wsb1:", 0) == 0);
  CHECK(sealed.find("sk-test") == std::string::npos);
  auto opened = box->open(sealed);
  REQUIRE(opened);
  CHECK(*opened == plain);
  CHECK(*box->open(box->seal("")) == "");

  auto again = secret_box::load_or_create(key);  // the same key file: old seals still open
  REQUIRE(again);
  CHECK(*again->open(sealed) == plain);
}

TEST_CASE("two seals of one secret differ (random nonce)") {
  test::temp_dir dir;
  auto box = secret_box::load_or_create(dir.path + "/k");
  REQUIRE(box);
  CHECK(box->seal("same") != box->seal("same"));
}

TEST_CASE("a tampered, truncated or malformed seal does not open") {
  test::temp_dir dir;
  auto box = secret_box::load_or_create(dir.path + "/k");
  REQUIRE(box);
  std::string sealed = box->seal("the secret");
  for (size_t i = 5; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    CHECK_FALSE(box->open(t));
  }
  CHECK_FALSE(box->open(sealed.substr(0, sealed.size() - 4)));
  CHECK_FALSE(box->open(""));
  CHECK_FALSE(box->open("wsb1:"));
  CHECK_FALSE(box->open("wsb1:!!!!"));
  CHECK_FALSE(box->open("wsb2:" + sealed.substr(5)));
  CHECK(box->open("plain").err().code == errc::bad_request);
}

TEST_CASE("a seal made under another key does not open") {
  test::temp_dir dir;
  auto a = secret_box::load_or_create(dir.path + "/a");
  auto b = secret_box::load_or_create(dir.path + "/b");
  REQUIRE(a);
  REQUIRE(b);
  CHECK_FALSE(b->open(a->seal("x")));
}

TEST_CASE("a key file readable by group or others, or of the wrong size, is refused") {
  test::temp_dir dir;
  std::string key = dir.path + "/k";
  REQUIRE(secret_box::load_or_create(key));
  REQUIRE(::chmod(key.c_str(), 0640) == 0);
  auto refused = secret_box::load_or_create(key);
  REQUIRE_FALSE(refused);
  CHECK(refused.err().code == errc::forbidden);
  REQUIRE(::chmod(key.c_str(), 0604) == 0);
  CHECK_FALSE(secret_box::load_or_create(key));

  std::string short_key = dir.path + "/short";
  std::ofstream(short_key) << "too short";
  REQUIRE(::chmod(short_key.c_str(), 0600) == 0);
  CHECK_FALSE(secret_box::load_or_create(short_key));
}
