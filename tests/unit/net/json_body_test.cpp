// Tests net/json_body.cpp: strict bodies — unknown fields, wrong types, ranges, garbage.
#include <catch2/catch_test_macros.hpp>

#include "net/json_body.hpp"

using namespace warren;
using namespace warren::net;

namespace {
const std::vector<field> spec = {
    {"command", json_kind::string, true},
    {"vcpus", json_kind::integer, false, 1, 64},
    {"sandbox_timeout", json_kind::integer, false, 1, 604800, {-1}},
    {"env", json_kind::string_map},
    {"allow", json_kind::string_array},
    {"mask", json_kind::nullable_string},
    {"flag", json_kind::boolean},
};

std::string fails(std::string_view body) {
  auto r = parse_body(body, spec);
  if (r) return "";
  CHECK(r.err().code == errc::bad_request);
  return r.err().message;
}
}  // namespace

TEST_CASE("a valid body is returned as an object") {
  auto r = parse_body(R"({"command":"ls","vcpus":2,"env":{"A":"1"},"allow":["x"],"mask":null})", spec);
  REQUIRE(r);
  CHECK((*r)["vcpus"] == 2);
}

TEST_CASE("an empty body is an empty object unless a field is required") {
  CHECK(fails("") == "field \"command\" is required");
  auto r = parse_body("  ", {{"x", json_kind::integer}});
  REQUIRE(r);
  CHECK(r->empty());
}

TEST_CASE("unknown fields, wrong types and out-of-range values name the field") {
  CHECK(fails(R"({"command":"ls","bogus":1})") == "unknown field \"bogus\"");
  CHECK(fails(R"({"command":1})") == "field \"command\" must be a string");
  CHECK(fails(R"({"command":"ls","vcpus":"2"})") == "field \"vcpus\" must be an integer");
  CHECK(fails(R"({"command":"ls","vcpus":1.5})") == "field \"vcpus\" must be an integer");
  CHECK(fails(R"({"command":"ls","vcpus":true})") == "field \"vcpus\" must be an integer");
  CHECK(fails(R"({"command":"ls","vcpus":65})").find("must be in 1..64") != std::string::npos);
  CHECK(fails(R"({"command":"ls","vcpus":18446744073709551615})").find("out of range") != std::string::npos);
  CHECK(fails(R"({"command":"ls","env":{"A":1}})") == "field \"env\" must be an object of strings");
  CHECK(fails(R"({"command":"ls","allow":[1]})") == "field \"allow\" must be an array of strings");
  CHECK(fails(R"({"command":"ls","flag":"yes"})") == "field \"flag\" must be a boolean");
}

TEST_CASE("an allowed sentinel outside the range is accepted") {
  CHECK(parse_body(R"({"command":"x","sandbox_timeout":-1})", spec));
  CHECK(!fails(R"({"command":"x","sandbox_timeout":-2})").empty());
  CHECK(!fails(R"({"command":"x","sandbox_timeout":0})").empty());
}

TEST_CASE("garbage, truncated and non-object bodies are bad requests") {
  for (auto b : {"{", "{\"command\":", "[1,2]", "\"str\"", "null", "42", "\xff\xfe", "{\"a\":1}}",
                 "{\"command\":\"ls\"} trailing"}) {
    INFO(b);
    CHECK(!fails(b).empty());
  }
  std::string deep(100000, '[');
  CHECK(!fails(deep).empty());
}
