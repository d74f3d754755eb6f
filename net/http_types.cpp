// net/http_types.cpp — error → status mapping (the only one), target parsing.
#include "net/http_types.hpp"

#include "core/ascii.hpp"

#include <nlohmann/json.hpp>

namespace warren::net {

std::string_view http_request::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

bool exchange::is_websocket_upgrade() const {
  auto up = request().header("upgrade");
  return ascii_iequals(up, "websocket");
}

int http_status(errc c) {
  switch (c) {
    case errc::bad_request: return 400;
    case errc::unauthorized: return 401;
    case errc::forbidden: return 403;
    case errc::not_found: return 404;
    case errc::conflict: return 409;
    case errc::payload_too_large: return 413;
    case errc::too_many_requests: return 429;
    case errc::internal: return 500;
    case errc::bad_gateway: return 502;
    case errc::unavailable: return 503;
    case errc::timeout: return 504;
  }
  return 500;
}

http_response error_response(const error& e) {
  nlohmann::json j = {{"error", {{"code", to_string(e.code)}, {"message", e.message}}}};
  return json_response(http_status(e.code), j.dump());
}

http_response json_response(int status, const std::string& json_text) {
  http_response r;
  r.status = status;
  r.body = json_text;
  return r;
}

namespace {
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0) return false;
      out.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

bool split_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query) {
  if (target.empty() || target[0] != '/') return false;
  auto q = target.find('?');
  if (!percent_decode(target.substr(0, q), path, false)) return false;
  if (path.find('\0') != std::string::npos) return false;
  query.clear();
  if (q == std::string_view::npos) return true;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto part = rest.substr(0, amp);
    if (!part.empty()) {
      auto eq = part.find('=');
      std::string k, v;
      if (!percent_decode(part.substr(0, eq), k, true)) return false;
      if (eq != std::string_view::npos && !percent_decode(part.substr(eq + 1), v, true)) return false;
      query[k] = v;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return true;
}

}  // namespace warren::net
