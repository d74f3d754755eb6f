// core/utf8.cpp — see utf8.hpp. Table 3-7 of the Unicode standard ("well-formed UTF-8 byte
// sequences") is the whole specification: the second byte's range depends on the lead byte.
#include "core/utf8.hpp"

#include <cstring>

namespace warren {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD";

// How many bytes a sequence with this lead byte has (0: not a lead byte), and the allowed range
// of its second byte (excludes overlongs, surrogates and code points past U+10FFFF).
struct lead_info {
  int len;
  unsigned char lo, hi;
};

lead_info lead(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Appends the valid form of s to out. Returns how many bytes were consumed: all of them, except
// (when !final) a trailing sequence that is incomplete but still valid so far.
std::size_t sanitize(std::string_view s, std::string& out, bool final) {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size(), i = 0;
  out.reserve(out.size() + n);
  while (i < n) {
    // Fast path: a run of ASCII.
    std::size_t j = i;
    while (j < n && p[j] < 0x80) ++j;
    out.append(s.data() + i, j - i);
    i = j;
    if (i == n) break;
    auto li = lead(p[i]);
    if (li.len == 0) {  // stray continuation byte, C0/C1 or F5..FF
      out.append(replacement);
      ++i;
      continue;
    }
    // Length of the maximal valid prefix of this sequence.
    std::size_t k = 1;
    while (k < static_cast<std::size_t>(li.len) && i + k < n) {
      unsigned char c = p[i + k];
      bool ok = k == 1 ? (c >= li.lo && c <= li.hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
      ++k;
    }
    if (k == static_cast<std::size_t>(li.len)) {
      out.append(s.data() + i, k);
    } else if (i + k == n && !final) {
      return i;  // incomplete at the end of this chunk: keep it for the next one
    } else {
      out.append(replacement);  // one U+FFFD for the maximal subpart; the breaking byte restarts
    }
    i += k;
  }
  return n;
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  sanitize(bytes, out, true);
  return out;
}

void utf8_stream::feed(std::string_view chunk, std::string& out) {
  // First complete (or break) the held sequence, one byte at a time: it is a valid prefix.
  while (held_len_ > 0 && !chunk.empty()) {
    auto li = lead(static_cast<unsigned char>(held_[0]));
    auto c = static_cast<unsigned char>(chunk[0]);
    bool ok = held_len_ == 1 ? (c >= li.lo && c <= li.hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) {  // the breaking byte is not consumed: it starts the next sequence
      out.append(replacement);
      held_len_ = 0;
      break;
    }
    held_[held_len_++] = chunk[0];
    chunk.remove_prefix(1);
    if (held_len_ == static_cast<std::size_t>(li.len)) {
      out.append(held_, held_len_);
      held_len_ = 0;
    }
  }
  if (held_len_ > 0) return;  // the chunk ran out first
  std::size_t used = sanitize(chunk, out, false);
  held_len_ = chunk.size() - used;
  std::memcpy(held_, chunk.data() + used, held_len_);
}

std::string utf8_stream::feed(std::string_view chunk) {
  std::string out;
  feed(chunk, out);
  return out;
}

std::string utf8_stream::finish() {
  std::string out;
  if (held_len_ > 0) out.append(replacement);  // held bytes are always one valid prefix
  held_len_ = 0;
  return out;
}

}  // namespace warren
