// net/admin_web.hpp — the web admin console's side of the front door: its static pages under
// /admin/, its login (an admin key → a session cookie: HttpOnly, SameSite=Strict), logout, and the
// cookie's authentication of API requests from those pages (with a CSRF token on every request
// that changes something, and an Origin check on WebSockets). No Beast, no CAF in here.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "net/auth/key_registry.hpp"
#include "net/http_types.hpp"

namespace warren::net {

class admin_web {
 public:
  // `assets_dir`: the built console (build/share/warren/admin: index.html, app.js, vendor/...); "" or
  // missing: the pages answer 503 naming what is missing.
  admin_web(auth::key_registry& keys, std::string assets_dir);

  // Serves /admin and /admin/...; false for any other path.
  bool handle(const exchange_ptr& ex);

  enum class cookie_result { none, ok, invalid, forbidden };
  // A request without an Authorization header but with the console's cookie: `ok` fills `who`
  // (the session's admin key, checked again now: a revoked key ends its sessions); `invalid`: an
  // unknown or expired session (401); `forbidden` (403, `why` says which): a state-changing
  // request without the session's CSRF token, or a WebSocket from another origin.
  cookie_result authenticate(const http_request& req, auth::caller& who, std::string& why);

 private:
  struct session {
    std::string key;   // the admin key it was opened with
    std::string csrf;
    int64_t expires_ns = 0;
  };
  void login(const exchange_ptr& ex);
  void logout(const exchange_ptr& ex);
  void session_info(const exchange_ptr& ex);
  void asset(const exchange_ptr& ex, const std::string& rel);
  // The live session of the request's cookie (under mu_), or null; `token` gets the cookie.
  session* find(const http_request& req, std::string& token);

  auth::key_registry& keys_;
  std::string dir_;
  std::mutex mu_;
  std::map<std::string, session> sessions_;  // by cookie token
};

}  // namespace warren::net
