// vmm/microvm/guest_kernel.hpp — turns a Debian bzImage into the uncompressed ELF vmlinux that
// QEMU boots through its PVH entry (decompressing in the guest under TCG costs seconds per boot).
// Works on bytes and files only; never downloads or installs a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace warren::vmm::microvm {

// Debian's vmlinux is ~60 MiB; nothing honest decompresses past this.
constexpr std::size_t max_vmlinux_bytes = 512u << 20;

// Finds the xz stream in `bzimage` by its magic (FD 37 7A 58 5A 00; its offset varies by
// kernel build), decompresses it and checks the result is an ELF file. Each occurrence of the
// magic is tried in turn, since the setup code before the payload may hold the bytes by chance.
// Errors: bad_request for an image without a usable xz stream (naming a zstd one, not handled
// yet), payload_too_large past `max_out`.
expected<std::string> vmlinux_from_bzimage(std::string_view bzimage, std::size_t max_out = max_vmlinux_bytes);

// The same from file to file; `out_path` appears whole or not at all (written beside, renamed).
// Returns the size of the vmlinux written.
expected<std::uint64_t> unpack_vmlinux(const std::string& bzimage_path, const std::string& out_path);

}  // namespace warren::vmm::microvm
