// actors/caf_error.cpp — see caf_error.hpp.
#include "actors/caf_error.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/sec.hpp>

namespace warren::actors {

caf::error to_caf(const error& e) {
  return caf::error(static_cast<uint8_t>(e.code), caf::atom("warren"), caf::make_message(e.message));
}

error from_caf(const caf::error& e) {
  if (e.category() == caf::atom("warren")) {
    std::string msg;
    if (e.context().match_elements<std::string>()) msg = e.context().get_as<std::string>(0);
    return make_error(static_cast<errc>(e.code()), msg);
  }
  if (e.category() == caf::atom("system")) {
    auto s = static_cast<caf::sec>(e.code());
    if (s == caf::sec::request_timeout) return make_error(errc::timeout, "the node did not answer in time");
    if (s == caf::sec::request_receiver_down)
      return make_error(errc::unavailable, "the actor serving this request is gone");
  }
  return make_error(errc::internal, "actor system error: " + caf::to_string(e));
}

}  // namespace warren::actors
