// vmm/microvm/accel_probe.cpp — KVM only when it is real: these hosts' /dev/kvm may come from
// kvm_pvm, a paravirtual nested KVM that traps and emulates guest kernel code, under which a
// Linux guest never finishes booting (measured: stuck in early boot for minutes), so TCG wins.
#include "vmm/microvm/accel_probe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace warren::vmm::microvm {
namespace {

std::string under(const std::string& root, const char* path) {
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  return r + path;
}

// "" when /dev/kvm can be opened read-write (as QEMU opens it), else why not.
std::string kvm_unusable(const std::string& root) {
  const std::string dev = under(root, "/dev/kvm");
  int fd = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return "no /dev/kvm on this host";
    return "/dev/kvm cannot be opened: " + std::string(std::strerror(e));
  }
  ::close(fd);
  return "";
}

// kvm_pvm shows as /sys/module/kvm_pvm, and as a line of /proc/modules when it is a module
// (either may be missing inside a container, so both are read).
bool kvm_is_pvm(const std::string& root) {
  struct stat st {};
  if (::stat(under(root, "/sys/module/kvm_pvm").c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return true;
  std::ifstream modules(under(root, "/proc/modules"));
  std::string line;
  while (std::getline(modules, line)) {
    if (line.rfind("kvm_pvm ", 0) == 0) return true;
  }
  return false;
}

constexpr const char* pvm_why =
    "the host's KVM is kvm_pvm (paravirtual nested KVM), which emulates guest kernel code: a Linux "
    "guest never finishes booting under it";

}  // namespace

std::optional<accel_mode> parse_accel_mode(std::string_view text) {
  if (text == "auto") return accel_mode::automatic;
  if (text == "kvm") return accel_mode::kvm;
  if (text == "tcg") return accel_mode::tcg;
  return std::nullopt;
}

expected<accel_choice> probe_accel(accel_mode mode, const std::string& root) {
  if (mode == accel_mode::tcg) return accel_choice{"tcg", "forced by config (microvm.accel = tcg)"};
  const std::string unusable = kvm_unusable(root);
  if (mode == accel_mode::kvm) {
    if (!unusable.empty())
      return make_error(errc::unavailable, "microvm.accel = kvm, but " + unusable);
    if (kvm_is_pvm(root))
      return accel_choice{"kvm", std::string("forced by config (microvm.accel = kvm), although ") + pvm_why};
    return accel_choice{"kvm", "forced by config (microvm.accel = kvm)"};
  }
  if (!unusable.empty()) return accel_choice{"tcg", unusable + "; guest code is emulated (TCG)"};
  if (kvm_is_pvm(root)) return accel_choice{"tcg", std::string(pvm_why) + "; TCG is used instead"};
  return accel_choice{"kvm", "/dev/kvm opens and is not kvm_pvm"};
}

}  // namespace warren::vmm::microvm
