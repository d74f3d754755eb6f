// core/error.cpp — names of the error codes, exactly as API.md spells them.
#include "core/error.hpp"

namespace warren {

std::string_view to_string(errc c) {
  switch (c) {
    case errc::bad_request: return "bad_request";
    case errc::unauthorized: return "unauthorized";
    case errc::forbidden: return "forbidden";
    case errc::not_found: return "not_found";
    case errc::conflict: return "conflict";
    case errc::payload_too_large: return "payload_too_large";
    case errc::too_many_requests: return "too_many_requests";
    case errc::internal: return "internal";
    case errc::bad_gateway: return "bad_gateway";
    case errc::unavailable: return "unavailable";
    case errc::timeout: return "timeout";
  }
  return "internal";
}

}  // namespace warren
