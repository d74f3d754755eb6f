// Tests net/auth/api_keys.cpp: mint, verify, forged and truncated keys.
#include <catch2/catch_test_macros.hpp>

#include "net/auth/api_keys.hpp"

using namespace warren::auth;

TEST_CASE("a minted key verifies and yields its region and key id") {
  auto k = mint_key("secret", "eu1", "abc123");
  REQUIRE(k);
  CHECK(k->rfind("wrn_live_eu1_abc123_", 0) == 0);
  CHECK(k->size() == std::string("wrn_live_eu1_abc123_").size() + 32);
  auto p = verify_key("secret", *k);
  REQUIRE(p);
  CHECK(p->region == "eu1");
  CHECK(p->key_id == "abc123");
}

TEST_CASE("a key fails under another secret") {
  auto k = mint_key("secret", "eu1", "abc123");
  CHECK_FALSE(verify_key("other", *k));
}

TEST_CASE("forged, altered and truncated keys fail") {
  auto k = *mint_key("secret", "eu1", "abc123");
  auto flip = k;
  flip.back() = flip.back() == '0' ? '1' : '0';
  CHECK_FALSE(verify_key("secret", flip));
  auto other_id = k;
  other_id.replace(other_id.find("abc123"), 6, "abc124");  // same MAC, other id
  CHECK_FALSE(verify_key("secret", other_id));
  for (size_t n = 0; n < k.size(); ++n) CHECK_FALSE(verify_key("secret", k.substr(0, n)));
  CHECK_FALSE(verify_key("secret", k + "0"));
  CHECK_FALSE(verify_key("secret", "wrn_live___" + std::string(32, '0')));
  CHECK_FALSE(verify_key("secret", "wrn_test_eu1_abc123_" + k.substr(k.size() - 32)));
  CHECK_FALSE(verify_key("secret", std::string(10000, 'a')));
}

TEST_CASE("region and key id must be lowercase alphanumerics") {
  CHECK_FALSE(mint_key("s", "EU", "abc"));
  CHECK_FALSE(mint_key("s", "eu_1", "abc"));
  CHECK_FALSE(mint_key("s", "eu", ""));
  CHECK_FALSE(mint_key("s", "", "abc"));
}

TEST_CASE("tenant names are DNS labels: lower-case letters, digits and inner dashes, at most 63") {
  CHECK(is_tenant_name("acme"));
  CHECK(is_tenant_name("acme-corp"));
  CHECK(is_tenant_name("a--b-9"));
  CHECK(is_tenant_name(std::string(63, 'a')));
  CHECK_FALSE(is_tenant_name(std::string(64, 'a')));
  CHECK_FALSE(is_tenant_name(""));
  CHECK_FALSE(is_tenant_name("-acme"));
  CHECK_FALSE(is_tenant_name("acme-"));
  CHECK_FALSE(is_tenant_name("Acme"));
  CHECK_FALSE(is_tenant_name("acme_corp"));
  CHECK_FALSE(is_tenant_name("acme.corp"));
}
