// vmm/microvm/guest_kernel.cpp — the xz payload of a bzImage, decompressed with liblzma. The
// kernel's stream uses the x86 BCJ filter and CRC32, both of which liblzma's stream decoder reads.
#include "vmm/microvm/guest_kernel.hpp"

#include <fcntl.h>
#include <lzma.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace warren::vmm::microvm {
namespace {

constexpr std::string_view xz_magic("\xFD" "7zXZ\0", 6);
constexpr std::string_view zstd_magic("\x28\xB5\x2F\xFD", 4);
constexpr std::string_view elf_magic("\x7F" "ELF", 4);

// Decompresses the one xz stream starting at `in` (trailing bytes are ignored).
expected<std::string> decode_xz(std::string_view in, std::size_t max_out) {
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&s, 1u << 30, 0) != LZMA_OK) return make_error(errc::internal, "liblzma: decoder init failed");
  s.next_in = reinterpret_cast<const std::uint8_t*>(in.data());
  s.avail_in = in.size();
  std::string out;
  lzma_ret r = LZMA_OK;
  while (r == LZMA_OK) {
    if (out.size() >= max_out) {
      lzma_end(&s);
      return make_error(errc::payload_too_large, "the kernel decompresses past " + std::to_string(max_out) + " bytes");
    }
    const std::size_t before = out.size();
    out.resize(std::min(max_out, before + (std::size_t{4} << 20)));
    s.next_out = reinterpret_cast<std::uint8_t*>(out.data() + before);
    s.avail_out = out.size() - before;
    r = lzma_code(&s, LZMA_FINISH);
    out.resize(out.size() - s.avail_out);
  }
  lzma_end(&s);
  if (r != LZMA_STREAM_END) return make_error(errc::bad_request, "xz stream: liblzma error " + std::to_string(r));
  return out;
}

}  // namespace

expected<std::string> vmlinux_from_bzimage(std::string_view bzimage, std::size_t max_out) {
  error last = make_error(errc::bad_request, "no xz stream in the kernel image");
  for (auto at = bzimage.find(xz_magic); at != std::string_view::npos; at = bzimage.find(xz_magic, at + 1)) {
    auto out = decode_xz(bzimage.substr(at), max_out);
    if (!out) {
      if (out.err().code == errc::payload_too_large) return std::move(out).err();
      last = make_error(errc::bad_request, "xz stream at offset " + std::to_string(at) + ": " + out.err().message);
      continue;
    }
    if (out->compare(0, elf_magic.size(), elf_magic) != 0) {
      last = make_error(errc::bad_request, "the xz stream at offset " + std::to_string(at) + " does not hold an ELF file");
      continue;
    }
    return out;
  }
  if (last.message == "no xz stream in the kernel image" && bzimage.find(zstd_magic) != std::string_view::npos)
    last.message = "no xz stream in the kernel image (it holds a zstd one, which Warren does not unpack yet)";
  return last;
}

expected<std::uint64_t> unpack_vmlinux(const std::string& bzimage_path, const std::string& out_path) {
  std::ifstream in(bzimage_path, std::ios::binary);
  if (!in) return make_error(errc::not_found, "guest kernel " + bzimage_path + ": " + std::strerror(errno));
  std::string image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto vmlinux = vmlinux_from_bzimage(image);
  if (!vmlinux) return error{vmlinux.err().code, bzimage_path + ": " + vmlinux.err().message};
  const std::string tmp = out_path + ".partial";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(errc::internal, "open " + tmp + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < vmlinux->size()) {
    ssize_t n = ::write(fd, vmlinux->data() + off, vmlinux->size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(errc::internal, "write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<std::size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed || ::rename(tmp.c_str(), out_path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return make_error(errc::internal, "save " + out_path + ": " + std::strerror(e));
  }
  return static_cast<std::uint64_t>(vmlinux->size());
}

}  // namespace warren::vmm::microvm
