// net/json_body.hpp — strict JSON request bodies: unknown fields, wrong types and out-of-range
// values are 400 errors that name the field (API.md "Conventions"). Pure, unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace warren::net {

enum class json_kind { string, integer, number, boolean, object, string_map, string_array,
                       nullable_string };

struct field {
  std::string name;
  json_kind kind;
  bool required = false;
  int64_t min = INT64_MIN;  // integers only
  int64_t max = INT64_MAX;
  std::vector<int64_t> also_allowed = {};  // integers outside [min,max] that are valid (-1)
};

// Parses `body` (empty = {}) as a JSON object whose fields are all in `fields` with the right
// kinds and ranges; returns it, or a bad_request naming what is wrong.
expected<nlohmann::json> parse_body(std::string_view body, const std::vector<field>& fields);

}  // namespace warren::net
