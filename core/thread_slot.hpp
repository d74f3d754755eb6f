// core/thread_slot.hpp — a small, stable number per thread (0, 1, 2, … in order of first use),
// for state sharded by thread so that threads on a hot path share no lock or cache line
// (net/metrics, the port proxy's link cache, slot_count). Take it modulo the shard count.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>

namespace warren {

inline size_t thread_slot() {
  static std::atomic<size_t> next{0};
  thread_local size_t slot = next++;
  return slot;
}

// A count kept per thread slot, each slot on its own cache line: threads that count on a hot
// path never write the same line. Reading it adds the slots up (exact whenever every change
// has been made, on whichever slot).
class slot_count {
 public:
  static constexpr size_t slots = 16;
  // Adds `d` on the calling thread's slot; returns the slot (to take it back on the same one).
  size_t add(int d) {
    size_t s = thread_slot() % slots;
    add_at(s, d);
    return s;
  }
  void add_at(size_t s, int d) { cells_[s].n.fetch_add(d, std::memory_order_relaxed); }
  int sum() const {
    int total = 0;
    for (auto& c : cells_) total += c.n.load(std::memory_order_relaxed);
    return total;
  }

 private:
  struct alignas(64) cell {
    std::atomic<int> n{0};
  };
  std::array<cell, slots> cells_;
};

}  // namespace warren
