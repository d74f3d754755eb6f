// The Connect codec E2B's SDK speaks (net/e2b/connect.hpp): envelopes, errors, base64.
#include <catch2/catch_test_macros.hpp>

#include "net/e2b/connect.hpp"

using namespace warren;
using namespace warren::net::e2b;

TEST_CASE("an envelope carries flags and a big-endian length before the JSON") {
  auto e = envelope("{\"a\":1}");
  REQUIRE(e.size() == 5 + 7);
  CHECK(e[0] == 0);
  CHECK(e.substr(1, 4) == std::string("\0\0\0\x07", 4));
  auto end = envelope("{}", end_stream_flag);
  CHECK(static_cast<uint8_t>(end[0]) == 0x02);
  auto back = unenvelope(e + envelope("{}"));
  REQUIRE(back);
  REQUIRE(back->size() == 2);
  CHECK((*back)[0] == "{\"a\":1}");
  CHECK((*back)[1] == "{}");
}

TEST_CASE("truncated and compressed envelopes are refused") {
  auto e = envelope("{\"a\":1}");
  CHECK_FALSE(unenvelope(e.substr(0, 3)));
  CHECK_FALSE(unenvelope(e.substr(0, e.size() - 1)));
  auto z = e;
  z[0] = 0x01;
  CHECK_FALSE(unenvelope(z));
  CHECK(unenvelope("")->empty());
}

TEST_CASE("Warren errors map to Connect codes and those to HTTP statuses") {
  CHECK(connect_code(errc::not_found) == "not_found");
  CHECK(connect_code(errc::bad_request) == "invalid_argument");
  CHECK(connect_code(errc::unauthorized) == "unauthenticated");
  CHECK(connect_code(errc::timeout) == "deadline_exceeded");
  CHECK(connect_http_status("not_found") == 404);
  CHECK(connect_http_status("unauthenticated") == 401);
  CHECK(connect_http_status("already_exists") == 409);
  CHECK(connect_http_status("unimplemented") == 501);
  CHECK(connect_http_status("whatever") == 500);
  error e{errc::not_found, "no \"x\""};
  CHECK(end_stream(&e) == R"({"error":{"code":"not_found","message":"no \"x\""}})");
  CHECK(end_stream() == "{}");
}

TEST_CASE("base64 round-trips every byte and refuses garbage") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n : {0, 1, 2, 3, 4, 255, 256}) {
    auto s = all.substr(0, n);
    auto enc = base64_encode(s);
    CHECK(enc.size() % 4 == 0);
    auto dec = base64_decode(enc);
    REQUIRE(dec);
    CHECK(*dec == s);
  }
  CHECK(base64_encode("hi") == "aGk=");
  CHECK(*base64_decode("aGk") == "hi");       // padding optional
  CHECK(*base64_decode("-_8") == "\xfb\xff");  // URL-safe alphabet
  CHECK_FALSE(base64_decode("a"));
  CHECK_FALSE(base64_decode("a$==") );
}
