// cmd/warren/api_config.hpp — how the CLI finds the API and its key, the same way the Python SDK
// does: flags, then WARREN_API_URL / WARREN_API_KEY, then a local daemon's admin key file.
#pragma once

#include <string>

#include "cmd/warren/api_client.hpp"

namespace warren::cmd {

// url_flag/key_flag: the --api-url/--api-key values ("" when not given).
api_config resolve_api_config(const std::string& url_flag, const std::string& key_flag);

}  // namespace warren::cmd
