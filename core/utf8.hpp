// core/utf8.hpp — make arbitrary bytes valid UTF-8 for JSON: every ill-formed sequence becomes
// U+FFFD (one per maximal subpart, as Unicode §3.9 / WHATWG "decode" do). Never drops or adds
// anything else: valid input comes back byte for byte.
#pragma once

#include <string>
#include <string_view>

namespace warren {

// The whole input at once: an incomplete sequence at the end is ill-formed (→ U+FFFD).
std::string to_valid_utf8(std::string_view bytes);

// The same over a byte stream cut at arbitrary points: a sequence split across chunks is held
// back (at most 3 bytes) until the next chunk completes or breaks it, so
// feed(a) + feed(b) + finish() == to_valid_utf8(a + b) for any split.
class utf8_stream {
 public:
  std::string feed(std::string_view chunk);
  void feed(std::string_view chunk, std::string& out);  // appends to out
  std::string finish();  // end of stream: a held incomplete sequence becomes U+FFFD
  bool pending() const { return held_len_ > 0; }

 private:
  char held_[4] = {};
  std::size_t held_len_ = 0;
};

}  // namespace warren
