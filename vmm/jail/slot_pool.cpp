// vmm/jail/slot_pool.cpp — slot → /30 and uid range. Never touches the host.
#include "vmm/jail/slot_pool.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace warren::vmm::jail {

std::optional<ipv4_net> ipv4_net::parse(const std::string& cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size() || cidr.size() - slash > 3)
    return std::nullopt;
  in_addr a{};
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1) return std::nullopt;
  int p = 0;
  for (char c : cidr.substr(slash + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + (c - '0');
  }
  if (p < 8 || p > 30) return std::nullopt;
  uint32_t addr = ntohl(a.s_addr);
  uint32_t mask = p == 0 ? 0 : ~uint32_t{0} << (32 - p);
  if ((addr & ~mask) != 0) return std::nullopt;  // host bits set: a typo, not a network
  return ipv4_net{addr, p};
}

std::string ipv4_to_string(uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

slot_pool::slot_pool(ipv4_net net, uint32_t uid_base) : net_(net), uid_base_(uid_base) {
  uint32_t by_net = uint32_t{1} << (30 - net.prefix);  // number of /30s
  // uid ranges must stay below 2^32-1 ((uid_t)-1 is "no uid").
  uint64_t by_uid = (uint64_t{0xFFFFFFFF} - uid_base) / ids_per_slot;
  capacity_ = static_cast<uint32_t>(std::min<uint64_t>(by_net, by_uid));
}

std::optional<slot_lease> slot_pool::allocate() {
  std::lock_guard lk(mu_);
  uint32_t s = 0;
  for (uint32_t u : used_) {  // std::set is ordered: the first gap is the lowest free slot
    if (u != s) break;
    ++s;
  }
  if (s >= capacity_) return std::nullopt;
  used_.insert(s);
  return lease(s);
}

bool slot_pool::reserve(uint32_t slot) {
  std::lock_guard lk(mu_);
  if (slot >= capacity_) return false;
  return used_.insert(slot).second;
}

void slot_pool::release(uint32_t slot) {
  std::lock_guard lk(mu_);
  used_.erase(slot);
}

size_t slot_pool::in_use() const {
  std::lock_guard lk(mu_);
  return used_.size();
}

slot_lease slot_pool::lease(uint32_t slot) const {
  slot_lease l;
  l.slot = slot;
  uint32_t base = net_.addr + slot * 4;
  l.host_addr = base + 1;
  l.guest_addr = base + 2;
  l.uid_base = uid_base_ + slot * ids_per_slot;
  return l;
}

}  // namespace warren::vmm::jail
