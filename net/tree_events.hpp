// net/tree_events.hpp — the admin events WebSocket's logic (API.md "Admin actor console"): turns
// successive supervision trees (GET /v1/admin/actors JSON) into the frames a client gets — the
// whole tree first, then one frame per change. Pure: no I/O, unit-tested.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace warren::net {

class tree_events {
 public:
  // The frames (JSON text) for the next tree: {"type": "snapshot", "tree"} the first time;
  // then "spawned" (parents first), "state", "restarted" and "down" (children first) frames,
  // none when nothing changed. Counters are not changes. An unparsable tree gives no frames.
  std::vector<std::string> frames(const std::string& tree_text);

 private:
  struct seen {
    std::string kind, state, parent;
    int restarts = 0;
  };
  bool first_ = true;
  std::map<std::string, seen> last_;  // by actor id
};

// The entry with this id anywhere in a tree (with its children), or null.
nlohmann::json find_tree_entry(const nlohmann::json& tree, const std::string& id);

}  // namespace warren::net
