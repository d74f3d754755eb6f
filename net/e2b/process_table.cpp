// net/e2b/process_table.cpp — see process_table.hpp.
#include "net/e2b/process_table.hpp"

namespace warren::net::e2b {

void process_entry::broadcast(const nlohmann::json& event) {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<event_stream>> keep;
  for (auto& s : subs_)
    if (s->send(event)) keep.push_back(s);
  subs_.swap(keep);
}

void process_entry::finish_all(const error* e) {
  std::vector<std::shared_ptr<event_stream>> subs;
  {
    std::lock_guard lk(mu_);
    subs.swap(subs_);
  }
  for (auto& s : subs) s->finish(e);
}

void process_entry::subscribe(std::shared_ptr<event_stream> s) {
  std::lock_guard lk(mu_);
  subs_.push_back(std::move(s));
}

size_t process_entry::max_queued() {
  std::lock_guard lk(mu_);
  size_t m = 0;
  for (auto& s : subs_)
    if (!s->ended()) m = std::max(m, s->queued_bytes());
  return m;
}

void process_table::add(const process_ptr& p) {
  std::lock_guard lk(mu_);
  by_sandbox_[p->sandbox][p->pid] = p;
}

void process_table::remove(const std::string& sandbox, int64_t pid) {
  std::lock_guard lk(mu_);
  auto it = by_sandbox_.find(sandbox);
  if (it == by_sandbox_.end()) return;
  it->second.erase(pid);
  if (it->second.empty()) by_sandbox_.erase(it);
}

process_ptr process_table::by_pid(const std::string& sandbox, int64_t pid) const {
  std::lock_guard lk(mu_);
  auto it = by_sandbox_.find(sandbox);
  if (it == by_sandbox_.end()) return nullptr;
  auto p = it->second.find(pid);
  return p == it->second.end() ? nullptr : p->second;
}

process_ptr process_table::by_tag(const std::string& sandbox, const std::string& tag) const {
  std::lock_guard lk(mu_);
  auto it = by_sandbox_.find(sandbox);
  if (it == by_sandbox_.end()) return nullptr;
  for (auto& [pid, p] : it->second)
    if (p->tag && *p->tag == tag) return p;
  return nullptr;
}

std::vector<process_ptr> process_table::of(const std::string& sandbox) const {
  std::lock_guard lk(mu_);
  std::vector<process_ptr> out;
  if (auto it = by_sandbox_.find(sandbox); it != by_sandbox_.end())
    for (auto& [pid, p] : it->second) out.push_back(p);
  return out;
}

}  // namespace warren::net::e2b
