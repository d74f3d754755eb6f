// net/json_body.cpp — validation of request bodies against a field list.
#include "net/json_body.hpp"

#include <algorithm>

namespace warren::net {
namespace {

const char* kind_name(json_kind k) {
  switch (k) {
    case json_kind::string: return "a string";
    case json_kind::integer: return "an integer";
    case json_kind::number: return "a number";
    case json_kind::boolean: return "a boolean";
    case json_kind::object: return "an object";
    case json_kind::string_map: return "an object of strings";
    case json_kind::string_array: return "an array of strings";
    case json_kind::nullable_string: return "a string or null";
  }
  return "?";
}

bool kind_ok(const nlohmann::json& v, json_kind k) {
  switch (k) {
    case json_kind::string: return v.is_string();
    case json_kind::integer: return v.is_number_integer();
    case json_kind::number: return v.is_number();
    case json_kind::boolean: return v.is_boolean();
    case json_kind::object: return v.is_object();
    case json_kind::string_map:
      return v.is_object() && std::all_of(v.begin(), v.end(), [](auto& e) { return e.is_string(); });
    case json_kind::string_array:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](auto& e) { return e.is_string(); });
    case json_kind::nullable_string: return v.is_null() || v.is_string();
  }
  return false;
}

error bad(std::string msg) { return make_error(errc::bad_request, std::move(msg)); }

}  // namespace

expected<nlohmann::json> parse_body(std::string_view body, const std::vector<field>& fields) {
  nlohmann::json j;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    j = nlohmann::json::object();
  } else {
    j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) return bad("request body is not valid JSON");
    if (!j.is_object()) return bad("request body must be a JSON object");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto f = std::find_if(fields.begin(), fields.end(), [&](auto& x) { return x.name == it.key(); });
    if (f == fields.end()) return bad("unknown field \"" + it.key() + "\"");
    if (!kind_ok(it.value(), f->kind))
      return bad("field \"" + f->name + "\" must be " + kind_name(f->kind));
    if (f->kind == json_kind::integer) {
      if (it.value().is_number_unsigned() && it.value().get<uint64_t>() > INT64_MAX)
        return bad("field \"" + f->name + "\" is out of range");
      auto v = it.value().get<int64_t>();
      bool extra = std::find(f->also_allowed.begin(), f->also_allowed.end(), v) != f->also_allowed.end();
      if (!extra && (v < f->min || v > f->max)) {
        std::string range = std::to_string(f->min) + ".." + std::to_string(f->max);
        for (auto a : f->also_allowed) range = std::to_string(a) + " or " + range;
        return bad("field \"" + f->name + "\" must be in " + range + ", got " + std::to_string(v));
      }
    }
  }
  for (auto& f : fields)
    if (f.required && !j.contains(f.name)) return bad("field \"" + f.name + "\" is required");
  return j;
}

}  // namespace warren::net
