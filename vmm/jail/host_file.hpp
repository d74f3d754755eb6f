// vmm/jail/host_file.hpp — reading and writing the small kernel files (cgroupfs, procfs,
// sysctl) the driver configures the host through, and naming errnos in messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace warren::vmm::jail {

std::optional<std::string> read_file(const std::string& path);
std::optional<uint64_t> read_u64(const std::string& path);
// One write(2) of the whole value (kernel files take a value per write); sets errno on failure.
bool write_file(const std::string& path, const std::string& value);
std::string errno_name(int e);  // "EINVAL"

}  // namespace warren::vmm::jail
