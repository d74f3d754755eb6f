// Tests storage/records.cpp: encode/decode round trips and strictness.
#include <catch2/catch_test_macros.hpp>

#include "storage/records.hpp"

using namespace warren::storage;

TEST_CASE("a sandbox record round-trips every field") {
  sandbox_record r;
  r.id = "00112233445566aa";
  r.tenant = "t";
  r.image = "debian:bookworm";
  r.state = "running";
  r.allow = {"10.0.0.0/8"};
  r.env = {{"A", "1"}};
  r.mask_request_host = "localhost:${PORT}";
  r.create_ms = 12.5;
  r.parent_id = "ffeeddccbbaa9988";
  r.driver_state = R"({"pid":1})";
  auto back = decode<sandbox_record>(encode(r));
  REQUIRE(back);
  CHECK(back->allow == r.allow);
  CHECK(back->env == r.env);
  CHECK(back->mask_request_host == "localhost:${PORT}");
  CHECK(back->create_ms == 12.5);
  CHECK(back->driver_state == r.driver_state);
}

TEST_CASE("a record with a missing or mistyped field does not decode") {
  CHECK_FALSE(decode<key_record>(R"({"v":1,"key_id":"a"})"));
  CHECK_FALSE(decode<key_record>(
      R"({"v":1,"key_id":"a","tenant":"t","admin":"yes","created_at":"","revoked":false,"revoked_at":""})"));
  CHECK_FALSE(decode<node_record>(""));
  CHECK_FALSE(decode<node_record>("[]"));
}
