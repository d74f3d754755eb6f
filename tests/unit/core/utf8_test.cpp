// tests/unit/core/utf8_test.cpp — to_valid_utf8 and utf8_stream: valid text untouched, every
// ill-formed subpart → one U+FFFD, and any chunking of a stream gives the one-shot answer.
#include <catch2/catch_test_macros.hpp>

#include <random>

#include "core/utf8.hpp"

using warren::to_valid_utf8;
using warren::utf8_stream;

namespace {
const std::string R = "\xEF\xBF\xBD";  // U+FFFD
}

TEST_CASE("valid UTF-8 comes back byte for byte") {
  std::string s = "plain ascii\n\t\x7f";
  s += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xED\x9F\xBF";  // é € 😀 U+10FFFF U+D7FF
  s += std::string("\0 nul", 5);
  CHECK(to_valid_utf8(s) == s);
  CHECK(to_valid_utf8("").empty());
}

TEST_CASE("each ill-formed maximal subpart becomes one U+FFFD") {
  CHECK(to_valid_utf8("\xFF") == R);
  CHECK(to_valid_utf8("a\x80z") == "a" + R + "z");                // stray continuation
  CHECK(to_valid_utf8("\xC0\xAF") == R + R);                       // overlong lead C0
  CHECK(to_valid_utf8("\xE0\x80\xAF") == R + R + R);               // overlong: E0 needs A0..BF
  CHECK(to_valid_utf8("\xED\xA0\x80") == R + R + R);               // surrogate
  CHECK(to_valid_utf8("\xF4\x90\x80\x80") == R + R + R + R);       // past U+10FFFF
  CHECK(to_valid_utf8("\xF5\x80") == R + R);
  CHECK(to_valid_utf8("\xE2\x82") == R);                           // truncated at the end
  CHECK(to_valid_utf8("\xE2\x82z") == R + "z");                    // broken: z restarts
  CHECK(to_valid_utf8("\xF0\x9F\x98") == R);
  CHECK(to_valid_utf8("\xE2\xC3\xA9") == R + "\xC3\xA9");         // breaking lead restarts
  // Unicode 15 §3.9 Table 3-8 example.
  CHECK(to_valid_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
        "a" + R + R + R + "b" + R + "c" + R + R + "d");
}

TEST_CASE("a stream split at every point gives the one-shot result") {
  std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80x\xE2\x82y\xFF\xF0\x9F\x98";
  auto want = to_valid_utf8(s);
  for (std::size_t i = 0; i <= s.size(); ++i) {
    for (std::size_t j = i; j <= s.size(); ++j) {
      utf8_stream u;
      std::string got = u.feed(s.substr(0, i));
      got += u.feed(s.substr(i, j - i));
      got += u.feed(s.substr(j));
      got += u.finish();
      CHECK(got == want);
    }
  }
}

TEST_CASE("random bytes fed one at a time match the one-shot result and are valid") {
  std::mt19937 rng(42);  // test data only
  for (int round = 0; round < 200; ++round) {
    std::string s;
    for (int i = 0; i < 64; ++i) s += static_cast<char>(rng() % 256);
    utf8_stream u;
    std::string got;
    for (char c : s) u.feed(std::string_view(&c, 1), got);
    got += u.finish();
    auto want = to_valid_utf8(s);
    REQUIRE(got == want);
    CHECK(to_valid_utf8(want) == want);  // idempotent: the output is valid
  }
}

TEST_CASE("a held incomplete sequence is reported and flushed by finish") {
  utf8_stream u;
  CHECK(u.feed("ok\xE2\x82").size() == 2);
  CHECK(u.pending());
  CHECK(u.finish() == R);
  CHECK_FALSE(u.pending());
  CHECK(u.finish().empty());
}
