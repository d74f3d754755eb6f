// vmm/jail/slot_lock.hpp — host-wide claims on jail slots. A slot fixes a sandbox's /30 and its
// uid range (slot_pool.hpp); slot_pool hands them out within one driver, and these claims keep
// two drivers on one host (two daemons with different data dirs, parallel tests) from ever
// using the same slot at once. One flock(2) per slot on a file under `dir` (default
// /run/warren/jail-slots): the kernel drops a claim when its holder dies, so nothing is left to
// clean up after a crash.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace warren::vmm::jail {

class slot_locks {
 public:
  explicit slot_locks(std::string dir) : dir_(std::move(dir)) {}
  ~slot_locks();
  slot_locks(const slot_locks&) = delete;
  slot_locks& operator=(const slot_locks&) = delete;

  // True if this object now holds (or already held) `slot`; false if another holder has it or
  // the lock file cannot be made (then the caller must not use the slot).
  bool claim(uint32_t slot);
  void release(uint32_t slot);

 private:
  std::string dir_;
  std::mutex mu_;
  std::map<uint32_t, int> fds_;
};

}  // namespace warren::vmm::jail
