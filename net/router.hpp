// net/router.hpp — maps (method, path) to a route: a name for metrics and logs, the handler's
// id and the path parameters. Pure: no I/O, no Beast, unit-tested on hostile paths.
#pragma once

#include <map>
#include <optional>
#include <variant>
#include <string>
#include <string_view>
#include <vector>

namespace warren::net {

struct route_match {
  int handler = -1;
  std::string pattern;  // "/v1/sandboxes/{id}"
  std::map<std::string, std::string> params;
};

enum class route_miss { not_found, method_not_allowed };

class router {
 public:
  // pattern segments are literals or {name}; a trailing {name*} takes the rest of the path.
  void add(std::string method, std::string pattern, int handler);

  // A match, or why there is none (an unknown path, or a known path with another method).
  std::variant<route_match, route_miss> match(std::string_view method, std::string_view path) const;

  // Methods allowed on `path` (for the Allow header of a 405).
  std::vector<std::string> allowed(std::string_view path) const;

 private:
  struct entry {
    std::string method, pattern;
    std::vector<std::string> segments;
    int handler;
  };
  static bool match_segments(const entry& e, const std::vector<std::string_view>& parts,
                             std::map<std::string, std::string>& params);
  std::vector<entry> routes_;
};

}  // namespace warren::net
