// net/router.cpp — segment-wise matching; empty segments ("//") never match a parameter.
#include "net/router.hpp"

namespace warren::net {
namespace {
std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 1;  // paths start with '/'
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}
}  // namespace

void router::add(std::string method, std::string pattern, int handler) {
  entry e{std::move(method), pattern, {}, handler};
  for (auto s : split(pattern)) e.segments.emplace_back(s);
  routes_.push_back(std::move(e));
}

bool router::match_segments(const entry& e, const std::vector<std::string_view>& parts,
                            std::map<std::string, std::string>& params) {
  params.clear();
  for (size_t i = 0; i < e.segments.size(); ++i) {
    const auto& seg = e.segments[i];
    bool is_param = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
    if (is_param && seg[seg.size() - 2] == '*') {  // rest of path
      if (i >= parts.size()) return false;
      std::string rest;
      for (size_t k = i; k < parts.size(); ++k) rest += (k > i ? "/" : "") + std::string(parts[k]);
      params[seg.substr(1, seg.size() - 3)] = rest;
      return true;
    }
    if (i >= parts.size()) return false;
    if (is_param) {
      if (parts[i].empty()) return false;
      params[seg.substr(1, seg.size() - 2)] = std::string(parts[i]);
    } else if (parts[i] != seg) {
      return false;
    }
  }
  return parts.size() == e.segments.size();
}

std::variant<route_match, route_miss> router::match(std::string_view method,
                                                    std::string_view path) const {
  if (path.empty() || path[0] != '/') return route_miss::not_found;
  auto parts = split(path);
  bool path_known = false;
  std::map<std::string, std::string> params;
  for (auto& e : routes_) {
    if (!match_segments(e, parts, params)) continue;
    if (e.method == method) return route_match{e.handler, e.pattern, params};
    path_known = true;
  }
  return path_known ? route_miss::method_not_allowed : route_miss::not_found;
}

std::vector<std::string> router::allowed(std::string_view path) const {
  std::vector<std::string> out;
  auto parts = split(path);
  std::map<std::string, std::string> params;
  for (auto& e : routes_)
    if (match_segments(e, parts, params)) out.push_back(e.method);
  return out;
}

}  // namespace warren::net
