// net/sandbox_view.hpp — the Sandbox object of API.md, rendered from a stored record. The one
// place that decides which record fields a client sees.
#pragma once

#include <nlohmann/json.hpp>

#include "storage/records.hpp"

namespace warren::net {

nlohmann::json sandbox_view(const storage::sandbox_record& r);

// A JSON array of encoded records (as the node answers lists and forks) → Sandbox objects.
nlohmann::json sandbox_views(const std::string& encoded_records);

}  // namespace warren::net
