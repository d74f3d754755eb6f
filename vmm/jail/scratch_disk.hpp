// vmm/jail/scratch_disk.hpp — each sandbox's writable layer: a sparse file of exactly disk_mib
// under <data_dir>/scratch/, formatted ext4 and loop-mounted, holding the overlay upper and
// work dirs. A full disk is ENOSPC inside; the host file never grows past the cap.
// (Why not one XFS with project quotas: this kernel has CONFIG_XFS_QUOTA and QFMT_V2 off.)
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "core/error.hpp"

namespace warren::vmm::jail {

class scratch_disks {
 public:
  explicit scratch_disks(std::string data_dir);

  std::string mount_dir(const std::string& id) const { return root_ + "/" + id; }
  std::string image_path(const std::string& id) const { return root_ + "/" + id + ".img"; }
  std::string upper_dir(const std::string& id) const { return mount_dir(id) + "/upper"; }
  std::string work_dir(const std::string& id) const { return mount_dir(id) + "/work"; }

  // Makes, formats and mounts the disk; upper is owned by owner_uid (the sandbox's root).
  // Returns the empty filesystem's own used bytes: the baseline used_bytes() subtracts.
  expected<uint64_t> create(const std::string& id, uint64_t size_bytes, uint32_t owner_uid);
  // Bytes the sandbox's files occupy (statvfs, so O(1) however many files there are).
  expected<uint64_t> used_bytes(const std::string& id, uint64_t baseline) const;
  void remove(const std::string& id);  // idempotent

 private:
  status attach_loop(const std::string& image, std::string& dev, int& dev_fd);
  std::string root_;
  std::mutex loop_mu_;  // LOOP_CTL_GET_FREE + LOOP_CONFIGURE race with ourselves otherwise
};

bool is_mount_point(const std::string& dir);

}  // namespace warren::vmm::jail
