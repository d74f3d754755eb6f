// vmm/jail/scratch_pool.cpp — the filler thread and the hand-out. The filler formats outside the
// lock; take() only pops a deque, so a create never waits on mkfs or on the filler.
#include "vmm/jail/scratch_pool.hpp"

#include <algorithm>
#include <chrono>

namespace warren::vmm::jail {

scratch_pool::scratch_pool(format_fn format, discard_fn discard, size_t depth, size_t max_sizes)
    : format_(std::move(format)), discard_(std::move(discard)), depth_(depth), max_sizes_(std::max<size_t>(1, max_sizes)) {}

scratch_pool::~scratch_pool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (filler_.joinable()) filler_.join();  // waits for at most one format in flight
  for (auto& [size, q] : ready_)
    for (auto& d : q) discard_(d);
}

void scratch_pool::want_locked(uint64_t size_bytes) {
  if (depth_ == 0 || stop_) return;
  auto it = std::find(sizes_.begin(), sizes_.end(), size_bytes);
  if (it != sizes_.end()) sizes_.erase(it);
  sizes_.insert(sizes_.begin(), size_bytes);
  if (sizes_.size() > max_sizes_) {  // forget the least recently asked-for size and its disks
    uint64_t old = sizes_.back();
    sizes_.pop_back();
    for (auto& d : ready_[old]) discard_(d);
    ready_.erase(old);
  }
  if (!filler_.joinable()) filler_ = std::thread([this] { run(); });
  cv_.notify_all();
}

void scratch_pool::want(uint64_t size_bytes) {
  std::lock_guard lk(mu_);
  want_locked(size_bytes);
}

std::optional<pooled_disk> scratch_pool::take(uint64_t size_bytes) {
  std::lock_guard lk(mu_);
  want_locked(size_bytes);
  auto it = ready_.find(size_bytes);
  if (it == ready_.end() || it->second.empty()) return std::nullopt;
  pooled_disk d = std::move(it->second.front());
  it->second.pop_front();
  return d;
}

size_t scratch_pool::ready(uint64_t size_bytes) const {
  std::lock_guard lk(mu_);
  auto it = ready_.find(size_bytes);
  return it == ready_.end() ? 0 : it->second.size();
}

bool scratch_pool::wait_full(int timeout_ms) const {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return !next_size_locked(); });
}

std::optional<uint64_t> scratch_pool::next_size_locked() const {
  for (uint64_t s : sizes_) {
    auto it = ready_.find(s);
    if (it == ready_.end() || it->second.size() < depth_) return s;
  }
  return std::nullopt;
}

void scratch_pool::run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    auto size = next_size_locked();
    if (!size) {
      cv_.notify_all();  // wait_full() watchers
      cv_.wait(lk);
      continue;
    }
    lk.unlock();
    auto d = format_(*size);
    lk.lock();
    if (!d) {  // e.g. the host disk is full or no loop device: stop until a create asks again
      auto it = std::find(sizes_.begin(), sizes_.end(), *size);
      if (it != sizes_.end()) sizes_.erase(it);
      continue;
    }
    bool still_wanted = std::find(sizes_.begin(), sizes_.end(), *size) != sizes_.end();
    if (stop_ || !still_wanted) discard_(*d);
    else ready_[*size].push_back(std::move(*d));
  }
}

}  // namespace warren::vmm::jail
