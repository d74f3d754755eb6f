// vmm/jail/scratch_pool.hpp — scratch disks formatted and mounted ahead of time by one background
// thread, so a create takes a ready disk instead of waiting for mkfs. A disk is handed out at most
// once; take() never waits for a format, it just reports a miss.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"

namespace warren::vmm::jail {

// A formatted, mounted but not yet attached disk: its image file and a detached mount (fsmount fd).
struct pooled_disk {
  std::string image;
  int mount_fd = -1;
  uint64_t size_bytes = 0;
  uint64_t baseline = 0;  // used bytes of the empty filesystem
};

class scratch_pool {
 public:
  using format_fn = std::function<expected<pooled_disk>(uint64_t size_bytes)>;
  using discard_fn = std::function<void(pooled_disk&)>;

  // depth: disks kept ready per size; max_sizes: how many distinct sizes are kept (most recently
  // asked for first). depth 0 disables the pool (no thread).
  scratch_pool(format_fn format, discard_fn discard, size_t depth, size_t max_sizes = 4);
  ~scratch_pool();  // stops the filler and discards every disk still waiting
  scratch_pool(const scratch_pool&) = delete;
  scratch_pool& operator=(const scratch_pool&) = delete;

  // A ready disk of exactly this size, if any; either way the pool refills this size.
  std::optional<pooled_disk> take(uint64_t size_bytes);
  void want(uint64_t size_bytes);  // keep `depth` disks of this size ready from now on
  size_t ready(uint64_t size_bytes) const;
  // Blocks until every wanted size has `depth` disks ready, or timeout (tests).
  bool wait_full(int timeout_ms) const;

 private:
  void want_locked(uint64_t size_bytes);
  std::optional<uint64_t> next_size_locked() const;
  void run();

  format_fn format_;
  discard_fn discard_;
  size_t depth_, max_sizes_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stop_ = false;
  std::vector<uint64_t> sizes_;  // most recently wanted first
  std::map<uint64_t, std::deque<pooled_disk>> ready_;
  std::thread filler_;
};

}  // namespace warren::vmm::jail
