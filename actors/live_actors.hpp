// actors/live_actors.hpp — live actors by kind, counted by their states' constructors and
// destructors, so /metrics and /v1/admin/actors report what exists without asking anyone.
#pragma once

#include <atomic>

namespace warren::actors {

enum class actor_kind { sandbox, shell, snapshot, count_ };

int live_actors(actor_kind k);

// Member of an actor's state: counts the actor for as long as the state lives.
template <actor_kind K>
struct live_counter {
  live_counter();
  ~live_counter();
  live_counter(const live_counter&) = delete;
  live_counter& operator=(const live_counter&) = delete;
};

namespace detail {
extern std::atomic<int> live[static_cast<int>(actor_kind::count_)];
}

template <actor_kind K>
live_counter<K>::live_counter() { ++detail::live[static_cast<int>(K)]; }
template <actor_kind K>
live_counter<K>::~live_counter() { --detail::live[static_cast<int>(K)]; }

inline int live_actors(actor_kind k) { return detail::live[static_cast<int>(k)].load(); }

}  // namespace warren::actors
