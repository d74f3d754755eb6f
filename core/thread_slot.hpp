// core/thread_slot.hpp — a small, stable number per thread (0, 1, 2, … in order of first use),
// for state sharded by thread so that threads on a hot path share no lock or cache line
// (net/metrics, the port proxy's link cache). Take it modulo the shard count.
#pragma once

#include <atomic>
#include <cstddef>

namespace warren {

inline size_t thread_slot() {
  static std::atomic<size_t> next{0};
  thread_local size_t slot = next++;
  return slot;
}

}  // namespace warren
