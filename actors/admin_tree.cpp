// actors/admin_tree.cpp — the common shape of an admin tree entry (actors/admin_tree.hpp).
#include "actors/admin_tree.hpp"

#include "actors/sandbox_link.hpp"

namespace warren::actors {

nlohmann::json tree_entry(const std::string& kind, const std::string& id, const std::string& state,
                          const std::string& started_at, int64_t started_ns, int64_t mailbox) {
  auto age_ns = activity::now_ns() - started_ns;
  return {{"kind", kind},
          {"id", id},
          {"state", state},
          {"started_at", started_at},
          {"age_s", age_ns > 0 ? age_ns / 1'000'000'000 : 0},
          {"mailbox", mailbox < 0 ? nlohmann::json(nullptr) : nlohmann::json(mailbox)},
          {"restarts", 0},
          {"counters", nlohmann::json::object()},
          {"children", nlohmann::json::array()}};
}

nlohmann::json session_entry(const stream_session& s, int64_t mailbox) {
  auto j = tree_entry(s.kind, s.id, "open", s.started_at, s.started_ns, mailbox);
  j["sandbox"] = s.sandbox_id;
  j["counters"] = {{"commands", s.commands.load()}, {"bytes_in", s.bytes_in.load()},
                   {"bytes_out", s.bytes_out.load()}};
  return j;
}

}  // namespace warren::actors
