// net/e2b/envd_common.cpp — what every envd service uses: Connect unary replies and errors, the
// request message, paths relative to the user's home, EntryInfo.
#include "core/ids.hpp"
#include "net/e2b/envd.hpp"

namespace warren::net::e2b {

using json = nlohmann::json;

namespace {
constexpr size_t max_message = 16 * 1024 * 1024;

// Go's os.FileMode.String() of a file: "drwxr-xr-x", "-rw-r--r--", "Lrwxrwxrwx".
std::string permissions_string(const agent::file_info& f) {
  std::string s = f.type == "dir" ? "d" : f.type == "symlink" ? "L" : f.type == "file" ? "-" : "?";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s.push_back((f.mode & (0400u >> i)) ? rwx[i] : '-');
  return s;
}
}  // namespace

std::string envd_call::resolve(const std::string& p) const {
  if (p.empty()) return home;
  if (p[0] == '/') return p;
  return home + "/" + p;
}

void reply_json(const exchange_ptr& ex, const json& j) {
  http_response r;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  ex->respond(std::move(r));
}

void reply_connect_error(const exchange_ptr& ex, std::string_view code, std::string_view message) {
  http_response r;
  r.status = connect_http_status(code);
  r.body = error_json(code, message);
  ex->respond(std::move(r));
}

void reply_connect_error(const exchange_ptr& ex, const error& e) {
  reply_connect_error(ex, connect_code(e.code), e.message);
}

void with_body(const envd_call& c, std::function<void()> fn) { c.ex->read_body(max_message, std::move(fn)); }

std::optional<json> request_message(const envd_call& c, bool streaming) {
  const auto& r = c.req();
  if (r.method != "POST") {
    reply_connect_error(c.ex, "unimplemented", "Connect calls are POST");
    return std::nullopt;
  }
  auto ct = r.header("content-type");
  std::string text;
  if (streaming) {
    if (ct.substr(0, 24) != "application/connect+json") {
      reply_connect_error(c.ex, "invalid_argument",
                          "this is a server-streaming call: send Content-Type application/connect+json "
                          "(the JSON codec; the binary protobuf codec is not served)");
      return std::nullopt;
    }
    auto msgs = unenvelope(r.body);
    if (!msgs || msgs->size() != 1) {
      reply_connect_error(c.ex, "invalid_argument", msgs ? "expected exactly one request message" : msgs.err().message);
      return std::nullopt;
    }
    text = std::move((*msgs)[0]);
  } else {
    if (ct.substr(0, 16) != "application/json") {
      reply_connect_error(c.ex, "invalid_argument",
                          "send Content-Type application/json (the binary protobuf codec is not served)");
      return std::nullopt;
    }
    text = r.body;
  }
  if (text.empty()) text = "{}";
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    reply_connect_error(c.ex, "invalid_argument", "the request message is not a JSON object");
    return std::nullopt;
  }
  return j;
}

json entry_info(const agent::file_info& f) {
  json j = {{"name", f.name},
            {"type", f.type == "dir"       ? "FILE_TYPE_DIRECTORY"
                     : f.type == "symlink" ? "FILE_TYPE_SYMLINK"
                     : f.type == "file"    ? "FILE_TYPE_FILE"
                                           : "FILE_TYPE_UNSPECIFIED"},
            {"path", f.path},
            {"size", std::to_string(f.size)},
            {"mode", f.mode},
            {"permissions", permissions_string(f)},
            {"owner", f.owner.empty() ? std::to_string(f.uid) : f.owner},
            {"group", f.group.empty() ? std::to_string(f.gid) : f.group},
            {"modifiedTime", rfc3339_from_ns(f.mtime_ns)}};
  if (!f.target.empty()) j["symlinkTarget"] = f.target;
  if (!f.meta.empty()) j["metadata"] = f.meta;
  return j;
}

}  // namespace warren::net::e2b
