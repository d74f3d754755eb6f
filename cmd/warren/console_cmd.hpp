// cmd/warren/console_cmd.hpp — `warren admin console`, the interactive admin console.
#pragma once

#include "cmd/warren/api_command.hpp"

namespace warren::cmd {

extern const api_command console_command;

}  // namespace warren::cmd
