// actors/stream_sessions.cpp — the registry behind stream_sessions.hpp: weak references by id.
#include "actors/stream_sessions.hpp"

#include <map>

#include "actors/sandbox_link.hpp"
#include "core/ids.hpp"

namespace warren::actors {
namespace {

struct registry {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<stream_session>> by_id;

  // Drops the entries whose session is gone (under mu).
  void prune() {
    for (auto it = by_id.begin(); it != by_id.end();)
      it = it->second.expired() ? by_id.erase(it) : std::next(it);
  }
};

registry& reg() {
  static registry r;
  return r;
}

}  // namespace

void stream_session::on_kill(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  kill_ = std::move(fn);
}

bool stream_session::kill() {
  std::function<void()> fn;
  {
    std::lock_guard lk(mu_);
    if (killed_ || !kill_) return false;
    killed_ = true;
    fn = kill_;
  }
  fn();
  return true;
}

stream_session_ptr open_stream_session(std::string kind, std::string sandbox_id) {
  auto s = std::make_shared<stream_session>();
  s->id = (kind == "shell" ? "sh_" : "pty_") + random_hex(8);
  s->kind = std::move(kind);
  s->sandbox_id = std::move(sandbox_id);
  s->started_at = now_rfc3339();
  s->started_ns = activity::now_ns();
  auto& r = reg();
  std::lock_guard lk(r.mu);
  r.prune();
  r.by_id[s->id] = s;
  return s;
}

std::vector<stream_session_ptr> stream_sessions(const std::string& sandbox_id) {
  std::vector<stream_session_ptr> out;
  auto& r = reg();
  std::lock_guard lk(r.mu);
  r.prune();
  for (auto& [id, w] : r.by_id)
    if (auto s = w.lock(); s && !s->closed && (sandbox_id.empty() || s->sandbox_id == sandbox_id))
      out.push_back(std::move(s));
  return out;
}

stream_session_ptr find_stream_session(const std::string& id) {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  auto it = r.by_id.find(id);
  auto s = it == r.by_id.end() ? nullptr : it->second.lock();
  return s && !s->closed ? s : nullptr;
}

}  // namespace warren::actors
