// net/tree_events.cpp — see tree_events.hpp.
#include "net/tree_events.hpp"

namespace warren::net {

using json = nlohmann::json;

namespace {

// Calls `fn(entry, parent_id)` for every entry of a tree, depth first.
template <class Fn>
void walk(const json& entry, const std::string& parent, Fn& fn) {
  fn(entry, parent);
  if (auto it = entry.find("children"); it != entry.end() && it->is_array())
    for (auto& c : *it) walk(c, entry.value("id", std::string()), fn);
}

template <class Fn>
void walk_tree(const json& tree, Fn fn) {
  if (!tree.is_object()) return;
  if (auto it = tree.find("nodes"); it != tree.end() && it->is_array())
    for (auto& n : *it) walk(n, "", fn);
}

// An entry without its children (what an event carries).
json flat(const json& e) {
  json out = e;
  out.erase("children");
  return out;
}

}  // namespace

json find_tree_entry(const json& tree, const std::string& id) {
  json found;
  walk_tree(tree, [&](const json& e, const std::string&) {
    if (found.is_null() && e.value("id", std::string()) == id) found = e;
  });
  return found;
}

std::vector<std::string> tree_events::frames(const std::string& tree_text) {
  std::vector<std::string> out;
  auto tree = json::parse(tree_text, nullptr, false);
  if (!tree.is_object()) return out;
  std::map<std::string, seen> now;
  std::vector<std::pair<json, std::string>> spawned;  // in tree order: parents first
  walk_tree(tree, [&](const json& e, const std::string& parent) {
    auto id = e.value("id", std::string());
    seen s{e.value("kind", std::string()), e.value("state", std::string()), parent, e.value("restarts", 0)};
    auto old = last_.find(id);
    if (!first_) {
      if (old == last_.end()) {
        spawned.emplace_back(flat(e), parent);
      } else {
        if (old->second.state != s.state)
          out.push_back(json{{"type", "state"}, {"id", id}, {"kind", s.kind}, {"parent", parent},
                             {"from", old->second.state}, {"to", s.state}, {"actor", flat(e)}}
                            .dump());
        if (s.restarts > old->second.restarts)
          out.push_back(json{{"type", "restarted"}, {"id", id}, {"kind", s.kind}, {"parent", parent},
                             {"restarts", s.restarts}, {"actor", flat(e)}}
                            .dump());
      }
    }
    now[id] = std::move(s);
  });
  if (first_) {
    out.push_back(json{{"type", "snapshot"}, {"tree", tree}}.dump());
  } else {
    // Children go down before their parents (a sandbox after its shells and ports).
    for (int parents = 0; parents < 2; ++parents)
      for (auto& [id, s] : last_)
        if (!now.count(id) && (s.kind == "sandbox" || s.kind == "node") == (parents == 1))
          out.push_back(json{{"type", "down"}, {"id", id}, {"kind", s.kind}, {"parent", s.parent},
                             {"last_state", s.state}}
                            .dump());
    for (auto& [e, parent] : spawned)
      out.push_back(json{{"type", "spawned"}, {"id", e.value("id", std::string())},
                         {"kind", e.value("kind", std::string())}, {"parent", parent}, {"actor", e}}
                        .dump());
  }
  first_ = false;
  last_ = std::move(now);
  return out;
}

}  // namespace warren::net
