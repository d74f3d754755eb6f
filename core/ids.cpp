// core/ids.cpp — CSPRNG ids, RFC 3339 stamps, constant-time compare.
#include "core/ids.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace warren {

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) std::abort();
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (auto b : buf) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::string new_sandbox_id() { return random_hex(8); }

bool is_sandbox_id(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_snapshot_id(std::string_view s) {
  return s.size() == 21 && s.substr(0, 5) == "snap_" && is_sandbox_id(s.substr(5));
}

std::string rfc3339_from_ns(int64_t ns) {
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  auto ms = static_cast<int>((ns / 1'000'000) % 1000);
  if (ns < 0 && ms != 0) {  // floor toward the past
    secs -= 1;
    ms += 1000;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  return rfc3339_from_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
}

int64_t now_ns_since_epoch() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t ns_from_rfc3339(std::string_view s) {
  int y, mo, d, h, mi, sec, n = 0;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19) return -1;
  int64_t frac_ns = 0;
  size_t i = 19;
  if (i < str.size() && str[i] == '.') {
    int64_t scale = 100'000'000;
    for (++i; i < str.size() && std::isdigit(static_cast<unsigned char>(str[i])); ++i, scale /= 10)
      frac_ns += (str[i] - '0') * scale;
  }
  if (i + 1 != str.size() || str[i] != 'Z') return -1;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  return int64_t{t} * 1'000'000'000 + frac_ns;
}

bool secret_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace warren
