// Tests net/http_types.cpp: the error → status mapping and request-target parsing.
#include <catch2/catch_test_macros.hpp>

#include <nlohmann/json.hpp>

#include "net/http_types.hpp"

using namespace warren;
using namespace warren::net;

TEST_CASE("every error code maps to the status API.md gives it") {
  CHECK(http_status(errc::bad_request) == 400);
  CHECK(http_status(errc::unauthorized) == 401);
  CHECK(http_status(errc::forbidden) == 403);
  CHECK(http_status(errc::not_found) == 404);
  CHECK(http_status(errc::conflict) == 409);
  CHECK(http_status(errc::payload_too_large) == 413);
  CHECK(http_status(errc::too_many_requests) == 429);
  CHECK(http_status(errc::internal) == 500);
  CHECK(http_status(errc::bad_gateway) == 502);
  CHECK(http_status(errc::unavailable) == 503);
  CHECK(http_status(errc::timeout) == 504);
}

TEST_CASE("an error response carries code and message in the documented shape") {
  auto r = error_response(make_error(errc::conflict, "sandbox is hibernated"));
  CHECK(r.status == 409);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["error"]["code"] == "conflict");
  CHECK(j["error"]["message"] == "sandbox is hibernated");
}

TEST_CASE("a request target splits into a decoded path and query") {
  std::string path;
  std::map<std::string, std::string> q;
  REQUIRE(split_target("/v1/sandboxes/ab/files?path=%2Fetc%2Fhosts&x=a+b&flag", path, q));
  CHECK(path == "/v1/sandboxes/ab/files");
  CHECK(q.at("path") == "/etc/hosts");
  CHECK(q.at("x") == "a b");
  CHECK(q.at("flag").empty());
}

TEST_CASE("malformed targets are refused") {
  std::string path;
  std::map<std::string, std::string> q;
  CHECK_FALSE(split_target("", path, q));
  CHECK_FALSE(split_target("v1/info", path, q));
  CHECK_FALSE(split_target("/a%2", path, q));
  CHECK_FALSE(split_target("/a%zz", path, q));
  CHECK_FALSE(split_target("/a%00b", path, q));
  CHECK_FALSE(split_target("/a?x=%", path, q));
  CHECK_FALSE(split_target("http://host/abs", path, q));
}
