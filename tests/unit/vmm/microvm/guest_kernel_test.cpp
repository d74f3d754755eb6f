// tests/unit/vmm/microvm/guest_kernel_test.cpp — unpacking a bzImage-like file made here (setup
// bytes, an xz stream of an ELF file, a trailer); no real kernel is downloaded.
#include <catch2/catch_test_macros.hpp>

#include <lzma.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fake_root.hpp"
#include "vmm/microvm/guest_kernel.hpp"

using namespace warren::vmm::microvm;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A 64-bit little-endian x86-64 ELF header followed by `body`.
std::string elf_file(const std::string& body) {
  std::string h(64, '\0');
  h.replace(0, 4, "\x7F" "ELF");
  h[4] = 2;     // ELFCLASS64
  h[5] = 1;     // little-endian
  h[6] = 1;     // EV_CURRENT
  h[16] = 2;    // ET_EXEC
  h[18] = 0x3E; // EM_X86_64
  return h + body;
}

// xz with CRC32, as the kernel's build makes it.
std::string xz(const std::string& data) {
  std::string out(data.size() + data.size() / 2 + 1024, '\0');
  std::size_t pos = 0;
  lzma_ret r = lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, nullptr, reinterpret_cast<const std::uint8_t*>(data.data()),
                                       data.size(), reinterpret_cast<std::uint8_t*>(out.data()), &pos, out.size());
  REQUIRE(r == LZMA_OK);
  out.resize(pos);
  return out;
}

std::string setup_bytes() {
  std::string s(0x4000, '\xCC');
  s.replace(0x202, 4, "HdrS");                             // the boot protocol's header magic
  s.replace(0x1000, 6, std::string("\xFD" "7zXZ\0", 6));  // the magic by chance, no stream after it
  return s;
}

std::string body() {
  std::string b;
  for (int i = 0; i < 200000; ++i) b += static_cast<char>((i * 7919) % 251);
  return b;
}

}  // namespace

TEST_CASE("the xz stream is found by its magic past decoys and decompresses to the ELF vmlinux") {
  const std::string vmlinux = elf_file(body());
  const std::string image = setup_bytes() + xz(vmlinux) + std::string("\x10\x20\x30\x40", 4);  // trailing size field
  auto out = vmlinux_from_bzimage(image);
  REQUIRE(out);
  CHECK(*out == vmlinux);
}

TEST_CASE("images without a usable stream are refused, saying why") {
  SECTION("no stream at all") {
    auto out = vmlinux_from_bzimage(std::string(100000, 'x'));
    REQUIRE_FALSE(out);
    CHECK(out.err().code == warren::errc::bad_request);
    CHECK(contains(out.err().message, "no xz stream"));
  }
  SECTION("a zstd-compressed kernel is named as such") {
    auto out = vmlinux_from_bzimage(std::string(1000, 'x') + "\x28\xB5\x2F\xFD" + std::string(1000, 'y'));
    REQUIRE_FALSE(out);
    CHECK(contains(out.err().message, "zstd"));
  }
  SECTION("a truncated stream") {
    const std::string stream = xz(elf_file(body()));
    auto out = vmlinux_from_bzimage(setup_bytes() + stream.substr(0, stream.size() / 2));
    REQUIRE_FALSE(out);
    CHECK(out.err().code == warren::errc::bad_request);
    CHECK(contains(out.err().message, "xz stream at offset"));
  }
  SECTION("a stream that holds no ELF file") {
    auto out = vmlinux_from_bzimage(setup_bytes() + xz("#!/bin/sh\necho not a kernel\n"));
    REQUIRE_FALSE(out);
    CHECK(contains(out.err().message, "does not hold an ELF file"));
  }
  SECTION("output past the bound stops decoding (a decompression bomb)") {
    auto out = vmlinux_from_bzimage(setup_bytes() + xz(elf_file(std::string(8u << 20, '\0'))), 1u << 20);
    REQUIRE_FALSE(out);
    CHECK(out.err().code == warren::errc::payload_too_large);
  }
}

TEST_CASE("unpack_vmlinux writes the vmlinux whole, or nothing") {
  fake_root dir;
  const std::string vmlinux = elf_file(body());
  dir.file("vmlinuz", setup_bytes() + xz(vmlinux));
  auto n = unpack_vmlinux(dir.at("vmlinuz"), dir.at("vmlinux"));
  REQUIRE(n);
  CHECK(*n == vmlinux.size());
  std::ifstream in(dir.at("vmlinux"), std::ios::binary);
  CHECK(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()) == vmlinux);
  CHECK_FALSE(std::filesystem::exists(dir.at("vmlinux.partial")));

  dir.file("broken", setup_bytes());
  auto bad = unpack_vmlinux(dir.at("broken"), dir.at("out"));
  REQUIRE_FALSE(bad);
  CHECK(contains(bad.err().message, "broken"));
  CHECK_FALSE(std::filesystem::exists(dir.at("out")));

  auto missing = unpack_vmlinux(dir.at("absent"), dir.at("out"));
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == warren::errc::not_found);
}
