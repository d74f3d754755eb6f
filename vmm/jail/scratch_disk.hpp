// vmm/jail/scratch_disk.hpp — each sandbox's writable layer: a sparse file of exactly disk_mib
// under <data_dir>/scratch/, formatted ext4 and loop-mounted, holding the overlay upper and
// work dirs. A full disk is ENOSPC inside; the host file never grows past the cap.
// (Why not one XFS with project quotas: this kernel has CONFIG_XFS_QUOTA and QFMT_V2 off.)
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "vmm/jail/scratch_pool.hpp"

namespace warren::vmm::jail {

class scratch_disks {
 public:
  // pool_depth disks per recently used size are kept formatted and mounted ahead of time
  // (0: format every disk inline); prewarm_bytes are sizes to start filling right away.
  scratch_disks(std::string data_dir, size_t pool_depth, const std::vector<uint64_t>& prewarm_bytes);

  std::string mount_dir(const std::string& id) const { return root_ + "/" + id; }
  std::string image_path(const std::string& id) const { return root_ + "/" + id + ".img"; }
  std::string upper_dir(const std::string& id) const { return mount_dir(id) + "/upper"; }
  std::string work_dir(const std::string& id) const { return mount_dir(id) + "/work"; }

  // Takes a ready disk of this size from the pool (else formats one now), mounts it at
  // mount_dir(id); upper is owned by owner_uid (the sandbox's root). Returns the empty
  // filesystem's own used bytes: the baseline used_bytes() subtracts.
  expected<uint64_t> create(const std::string& id, uint64_t size_bytes, uint32_t owner_uid);
  // A restored sandbox's disk: a clone of a saved image (saved by save_image), its files shifted
  // from the source's uid range (from_uid..+65536) to this sandbox's (owner_uid..).
  status create_from(const std::string& id, const std::string& saved_image, uint32_t owner_uid, uint32_t from_uid);
  // A consistent copy of the sandbox's disk at `dest` (the filesystem frozen meanwhile, FIFREEZE);
  // the caller stops the sandbox's processes first. Reflink where the filesystem has them.
  expected<uint64_t> save_image(const std::string& id, const std::string& dest);
  // Bytes the sandbox's files occupy (statvfs, so O(1) however many files there are).
  expected<uint64_t> used_bytes(const std::string& id, uint64_t baseline) const;
  void remove(const std::string& id);  // idempotent

 private:
  status attach_loop(const std::string& image, std::string& dev, int& dev_fd);
  // Sparse file → mkfs.ext4 → loop → a detached ext4 mount (fsmount) holding upper/ and work/.
  expected<pooled_disk> format(const std::string& image, uint64_t size_bytes);
  status mount_detached(pooled_disk& d);  // loop + fsmount of d.image into d.mount_fd
  static void discard(pooled_disk& d);  // closes the detached mount (the loop frees itself), unlinks
  std::string root_;
  std::mutex loop_mu_;  // LOOP_CTL_GET_FREE + LOOP_CONFIGURE race with ourselves otherwise
  unsigned next_pool_image_ = 0;  // guarded by pool_'s single filler thread
  scratch_pool pool_;             // last member: its filler stops before the rest goes away
};

bool is_mount_point(const std::string& dir);

}  // namespace warren::vmm::jail
