// actors/live_actors.cpp — the counters behind live_actors.hpp.
#include "actors/live_actors.hpp"

namespace warren::actors::detail {
std::atomic<int> live[static_cast<int>(actor_kind::count_)] = {};
}
