// core/file_clone.hpp — copies a file as cheaply as the filesystem allows: a reflink (FICLONE:
// O(1), blocks shared copy-on-write) where the filesystem has them, else a sparse copy that
// moves only the allocated extents (SEEK_DATA/SEEK_HOLE + copy_file_range), never the holes.
// Never leaves a partial destination behind: it is written under a temporary name and renamed.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace warren {

enum class clone_kind { reflink, sparse_copy };

struct clone_result {
  clone_kind kind = clone_kind::sparse_copy;
  uint64_t bytes_copied = 0;  // 0 for a reflink
};

expected<clone_result> clone_file(const std::string& from, const std::string& to);

// Can files in `dir` be reflinked to each other? (Probes with two small files.)
bool dir_supports_reflink(const std::string& dir);

// Bytes a file occupies on disk (st_blocks), 0 if it does not exist.
uint64_t disk_bytes(const std::string& path);

}  // namespace warren
