// core/ascii.hpp — ASCII-only case folding for protocol text (HTTP field names, tokens). Never
// locale-dependent (std::tolower consults the C locale on every call, and HTTP is not localized).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace warren {

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = ascii_lower(c);
  return o;
}

constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

}  // namespace warren
