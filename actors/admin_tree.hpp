// actors/admin_tree.hpp — how each actor describes itself for the admin console's supervision
// tree (/v1/admin/actors, API.md "Admin"). Every actor kind answers tree_atom with one JSON
// object of the same shape:
//   {"kind", "id", "state", "started_at", "age_s", "mailbox", "restarts", "counters": {...},
//    "children": [...]}
// where "mailbox" is the number of messages waiting in the actor's CAF mailbox (null for a
// session that is not an actor: a terminal is a WebSocket bridged to the agent by the front
// door). Only actors/ includes this (it needs CAF).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <nlohmann/json.hpp>

#include "actors/stream_sessions.hpp"

namespace warren::actors {

using tree_atom = caf::atom_constant<caf::atom("tree")>;

// The common fields; `started_ns` is CLOCK_MONOTONIC (activity::now_ns), `mailbox` < 0: null.
nlohmann::json tree_entry(const std::string& kind, const std::string& id, const std::string& state,
                          const std::string& started_at, int64_t started_ns, int64_t mailbox);

// A shell or terminal session's entry (its counters: commands, bytes_in, bytes_out).
nlohmann::json session_entry(const stream_session& s, int64_t mailbox);

// Asks each actor in `hs` the same request (string replies, JSON text) and calls `then` with
// the array of the parsed replies once all have answered (a reply that is itself an array is
// flattened). Unanswered (10 s) or failed requests are left out.
template <class Self, class Handles, class Then, class... Ts>
void gather_then(Self* self, const Handles& hs, Then then, Ts... xs) {
  struct acc_t {
    size_t left;
    nlohmann::json out = nlohmann::json::array();
    Then then;
  };
  if (hs.empty()) return then(nlohmann::json::array());
  auto acc = std::make_shared<acc_t>(acc_t{hs.size(), nlohmann::json::array(), std::move(then)});
  auto one_done = [acc]() {
    if (--acc->left == 0) acc->then(std::move(acc->out));
  };
  for (auto& h : hs)
    self->request(h, std::chrono::seconds(10), xs...)
        .then(
            [acc, one_done](std::string& s) {
              auto j = nlohmann::json::parse(s, nullptr, false);
              if (j.is_array()) for (auto& e : j) acc->out.push_back(std::move(e));
              else if (!j.is_discarded()) acc->out.push_back(std::move(j));
              one_done();
            },
            [one_done](caf::error&) { one_done(); });
}

}  // namespace warren::actors
