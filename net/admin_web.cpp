// net/admin_web.cpp — see admin_web.hpp. Sessions live in memory (a restart logs everyone out)
// for 12 hours; the cookie holds only a random token, never the key.
#include "net/admin_web.hpp"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

constexpr const char* cookie_name = "warren_admin";
constexpr int64_t session_ttl_s = 12 * 3600;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    auto part = header.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return {};
}

std::string set_cookie(const http_request& req, const std::string& value, int64_t max_age) {
  return std::string(cookie_name) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
         std::to_string(max_age) + (req.tls ? "; Secure" : "");
}

// Static files: a few known kinds; the console's names are plain.
const char* content_type_of(const std::string& path) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".map")) return "application/json";
  return nullptr;
}

bool safe_name(const std::string& rel) {
  if (rel.empty() || rel.find("..") != std::string::npos || rel.front() == '/') return false;
  for (char c : rel)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '/')) return false;
  return true;
}

http_response plain_error(errc code, const std::string& message) { return error_response(make_error(code, message)); }

}  // namespace

admin_web::admin_web(auth::key_registry& keys, std::string assets_dir) : keys_(keys), dir_(std::move(assets_dir)) {}

bool admin_web::handle(const exchange_ptr& ex) {
  auto& req = ex->request();
  if (req.path != "/admin" && req.path.rfind("/admin/", 0) != 0) return false;
  ex->set_route(req.path.rfind("/admin/assets", 0) == 0 ? "/admin/{asset}" : req.path);
  auto respond_later = [ex, this](void (admin_web::*fn)(const exchange_ptr&)) {
    ex->read_body(64 * 1024, [this, ex, fn] { (this->*fn)(ex); });
  };
  if (req.path == "/admin") {
    http_response r;
    r.status = 308;
    r.content_type.clear();
    r.headers.emplace_back("Location", "/admin/");
    ex->respond(std::move(r));
  } else if (req.path == "/admin/login") {
    if (req.method != "POST") ex->respond(plain_error(errc::not_found, "use POST /admin/login"));
    else respond_later(&admin_web::login);
  } else if (req.path == "/admin/logout") {
    if (req.method != "POST") ex->respond(plain_error(errc::not_found, "use POST /admin/logout"));
    else respond_later(&admin_web::logout);
  } else if (req.path == "/admin/session") {
    session_info(ex);
  } else if (req.method != "GET" && req.method != "HEAD") {
    ex->respond(plain_error(errc::not_found, "no route for " + req.method + " " + req.path));
  } else {
    asset(ex, req.path == "/admin/" ? "index.html" : req.path.substr(7));
  }
  return true;
}

void admin_web::login(const exchange_ptr& ex) {
  auto& req = ex->request();
  // JSON only: a cross-site HTML form cannot send it without a CORS preflight (login CSRF).
  if (req.header("content-type").substr(0, 16) != "application/json")
    return ex->respond(plain_error(errc::bad_request, "send {\"key\": \"...\"} as application/json"));
  auto body = json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("key") || !body["key"].is_string())
    return ex->respond(plain_error(errc::bad_request, "field \"key\" (string) is required"));
  auto key = body["key"].get<std::string>();
  auth::caller who;
  switch (keys_.authenticate(key, who)) {
    case auth::auth_result::ok: break;
    case auth::auth_result::revoked: return ex->respond(plain_error(errc::unauthorized, "API key has been revoked"));
    default: return ex->respond(plain_error(errc::unauthorized, "invalid API key"));
  }
  if (!who.admin) return ex->respond(plain_error(errc::forbidden, "the console needs an admin key"));
  auto token = random_hex(32);
  session s{key, random_hex(16), now_ns() + session_ttl_s * 1'000'000'000};
  {
    std::lock_guard lk(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();)  // forget expired ones
      it = it->second.expires_ns < now_ns() ? sessions_.erase(it) : std::next(it);
    sessions_[token] = s;
  }
  auto r = json_response(200, json{{"csrf", s.csrf}, {"key_id", who.key_id}, {"tenant", who.tenant}}.dump());
  r.headers.emplace_back("Set-Cookie", set_cookie(req, token, session_ttl_s));
  r.headers.emplace_back("Cache-Control", "no-store");
  ex->respond(std::move(r));
}

admin_web::session* admin_web::find(const http_request& req, std::string& token) {
  token = cookie_value(req.header("cookie"), cookie_name);
  if (token.empty()) return nullptr;
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return nullptr;
  if (it->second.expires_ns < now_ns()) {
    sessions_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void admin_web::logout(const exchange_ptr& ex) {
  auto& req = ex->request();
  {
    std::lock_guard lk(mu_);
    std::string token;
    auto* s = find(req, token);
    if (s && req.header("x-warren-csrf") != s->csrf)
      return ex->respond(plain_error(errc::forbidden, "missing or wrong X-Warren-CSRF token"));
    if (s) sessions_.erase(token);
  }
  http_response r;
  r.status = 204;
  r.content_type.clear();
  r.headers.emplace_back("Set-Cookie", set_cookie(req, "", 0));
  ex->respond(std::move(r));
}

void admin_web::session_info(const exchange_ptr& ex) {
  auto& req = ex->request();
  auth::caller who;
  std::string why, csrf;
  if (authenticate(req, who, why) != cookie_result::ok)
    return ex->respond(plain_error(errc::unauthorized, "not logged in"));
  {
    std::lock_guard lk(mu_);
    std::string token;
    if (auto* s = find(req, token)) csrf = s->csrf;
  }
  auto r = json_response(200, json{{"csrf", csrf}, {"key_id", who.key_id}, {"tenant", who.tenant}}.dump());
  r.headers.emplace_back("Cache-Control", "no-store");
  ex->respond(std::move(r));
}

admin_web::cookie_result admin_web::authenticate(const http_request& req, auth::caller& who, std::string& why) {
  std::string key, csrf, token;
  {
    std::lock_guard lk(mu_);
    auto* s = find(req, token);
    if (token.empty()) return cookie_result::none;
    if (!s) return cookie_result::invalid;
    key = s->key;
    csrf = s->csrf;
  }
  if (keys_.authenticate(key, who) != auth::auth_result::ok || !who.admin) {
    std::lock_guard lk(mu_);
    sessions_.erase(token);
    return cookie_result::invalid;
  }
  bool safe = req.method == "GET" || req.method == "HEAD";
  if (!safe && req.header("x-warren-csrf") != csrf) {
    why = "missing or wrong X-Warren-CSRF token";
    return cookie_result::forbidden;
  }
  if (auto origin = req.header("origin"); !origin.empty()) {
    auto want = std::string(req.tls ? "https://" : "http://") + std::string(req.header("host"));
    if (origin != want) {
      why = "requests with the console's cookie must come from its own origin";
      return cookie_result::forbidden;
    }
  }
  return cookie_result::ok;
}

void admin_web::asset(const exchange_ptr& ex, const std::string& rel) {
  if (!safe_name(rel) || !content_type_of(rel))
    return ex->respond(plain_error(errc::not_found, "no such file in the console: " + rel));
  if (dir_.empty())
    return ex->respond(plain_error(errc::unavailable, "the web console is not built (no share/warren/admin next to the binary)"));
  auto path = dir_ + "/" + rel;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    if (rel == "index.html")
      return ex->respond(plain_error(errc::unavailable, "the web console is not built (no " + path + ")"));
    return ex->respond(plain_error(errc::not_found, "no such file in the console: " + rel));
  }
  // Revalidated every time (the names carry no content hash): a rebuilt console is seen at
  // once, an unchanged file costs a 304.
  auto etag = "\"" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec) + "\"";
  http_response r;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (rel == "index.html") {
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
  }
  if (ex->request().header("if-none-match") == etag) {
    r.status = 304;
    r.content_type.clear();
    return ex->respond(std::move(r));
  }
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  r.content_type = content_type_of(rel);
  r.body = os.str();
  ex->respond(std::move(r));
}

}  // namespace warren::net
