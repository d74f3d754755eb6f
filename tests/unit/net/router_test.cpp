// Tests net/router.cpp: matching, parameters, 404 vs wrong-method, hostile paths.
#include <catch2/catch_test_macros.hpp>

#include "net/router.hpp"

using namespace warren::net;

namespace {
router make() {
  router r;
  r.add("GET", "/v1/sandboxes", 1);
  r.add("POST", "/v1/sandboxes", 2);
  r.add("GET", "/v1/sandboxes/{id}", 3);
  r.add("DELETE", "/v1/sandboxes/{id}", 4);
  r.add("POST", "/v1/sandboxes/{id}/exec", 5);
  r.add("GET", "/files/{rest*}", 6);
  return r;
}
}  // namespace

TEST_CASE("a literal route matches only its exact path and method") {
  auto r = make();
  auto m = r.match("GET", "/v1/sandboxes");
  REQUIRE(std::holds_alternative<route_match>(m));
  CHECK(std::get<route_match>(m).handler == 1);
  CHECK(std::get<route_match>(r.match("POST", "/v1/sandboxes")).handler == 2);
}

TEST_CASE("a parameter captures one non-empty segment") {
  auto r = make();
  auto m = std::get<route_match>(r.match("POST", "/v1/sandboxes/abc123/exec"));
  CHECK(m.handler == 5);
  CHECK(m.params.at("id") == "abc123");
  CHECK(m.pattern == "/v1/sandboxes/{id}/exec");
  CHECK(std::get<route_miss>(r.match("GET", "/v1/sandboxes//exec")) == route_miss::not_found);
}

TEST_CASE("a known path with another method is method_not_allowed, an unknown path not_found") {
  auto r = make();
  CHECK(std::get<route_miss>(r.match("PUT", "/v1/sandboxes/x")) == route_miss::method_not_allowed);
  CHECK(std::get<route_miss>(r.match("GET", "/v1/nothing")) == route_miss::not_found);
  auto allowed = r.allowed("/v1/sandboxes/x");
  CHECK(allowed == std::vector<std::string>{"GET", "DELETE"});
}

TEST_CASE("hostile paths never match a route by accident") {
  auto r = make();
  for (auto p : {"", "v1/sandboxes", "/v1/sandboxes/", "/v1/sandboxes/x/", "/v1/sandboxes/x/exec/",
                 "/v1//sandboxes", "//v1/sandboxes", "/V1/sandboxes", "/v1/sandboxes/x/y/z"}) {
    INFO(p);
    CHECK(std::holds_alternative<route_miss>(r.match("GET", p)));
  }
  std::string huge = "/" + std::string(100000, 'a');
  CHECK(std::holds_alternative<route_miss>(r.match("GET", huge)));
}

TEST_CASE("a rest parameter takes the remaining segments") {
  auto r = make();
  auto m = std::get<route_match>(r.match("GET", "/files/a/b/c"));
  CHECK(m.params.at("rest") == "a/b/c");
  CHECK(std::holds_alternative<route_miss>(r.match("GET", "/files")));
}
