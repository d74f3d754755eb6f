// Tests net/auth/key_registry.cpp: authentication outcomes and revocation.
#include <catch2/catch_test_macros.hpp>

#include "net/auth/api_keys.hpp"
#include "net/auth/key_registry.hpp"

using namespace warren;
using namespace warren::auth;

TEST_CASE("a registered key authenticates with its tenant and admin flag") {
  key_registry reg("s3cret", "local");
  reg.upsert({"k1", "acme", false, "t", false, ""});
  caller who;
  CHECK(reg.authenticate(*mint_key("s3cret", "local", "k1"), who) == auth_result::ok);
  CHECK(who.tenant == "acme");
  CHECK_FALSE(who.admin);
}

TEST_CASE("a revoked key is refused; an unknown id or another region is invalid") {
  key_registry reg("s3cret", "local");
  reg.upsert({"k1", "acme", false, "t", false, ""});
  caller who;
  CHECK(reg.authenticate(*mint_key("s3cret", "local", "nope"), who) == auth_result::invalid);
  CHECK(reg.authenticate(*mint_key("s3cret", "other", "k1"), who) == auth_result::invalid);
  CHECK(reg.authenticate("", who) == auth_result::missing);
  reg.upsert({"k1", "acme", false, "t", true, "t2"});
  CHECK(reg.authenticate(*mint_key("s3cret", "local", "k1"), who) == auth_result::revoked);
}

TEST_CASE("bearer parsing takes the credential of a Bearer authorization only") {
  CHECK(bearer_of("Bearer abc") == "abc");
  CHECK(bearer_of("bearer   abc  ") == "abc");
  CHECK(bearer_of("Basic abc").empty());
  CHECK(bearer_of("Bearer").empty());
  CHECK(bearer_of("").empty());
  CHECK(bearer_of("Bearerabc").empty());
}
