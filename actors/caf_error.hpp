// actors/caf_error.hpp — carrying warren::error through CAF (category atom "warren") and back.
// CAF's own errors (timeouts, dead actors) map to the API codes a client can act on.
#pragma once

#include <caf/error.hpp>

#include "core/error.hpp"

namespace warren::actors {

caf::error to_caf(const error& e);
error from_caf(const caf::error& e);

}  // namespace warren::actors
