// vmm/jail/slot_pool.hpp — hands out per-sandbox slots; a slot fixes the sandbox's /30 of the
// private pool and its uid/gid range. Pure logic: no syscalls, no I/O.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace warren::vmm::jail {

// An IPv4 prefix such as 10.201.0.0/16; parse() rejects anything else.
struct ipv4_net {
  uint32_t addr = 0;  // host byte order, network address
  int prefix = 0;
  static std::optional<ipv4_net> parse(const std::string& cidr);
};

std::string ipv4_to_string(uint32_t addr_host_order);

// What one slot means on the host.
struct slot_lease {
  uint32_t slot = 0;
  uint32_t host_addr = 0;   // gateway, on the host end of the veth (.1 of the /30)
  uint32_t guest_addr = 0;  // eth0 inside (.2 of the /30)
  int prefix = 30;
  uint32_t uid_base = 0;    // first host uid of the sandbox's 65536-wide range
};

class slot_pool {
 public:
  static constexpr uint32_t ids_per_slot = 65536;

  slot_pool(ipv4_net net, uint32_t uid_base);

  uint32_t capacity() const { return capacity_; }
  uint32_t uid_base_of(uint32_t slot) const { return uid_base_ + slot * ids_per_slot; }
  std::optional<slot_lease> allocate();        // lowest free slot
  bool reserve(uint32_t slot);                 // recovery: false if out of range or taken
  void release(uint32_t slot);
  slot_lease lease(uint32_t slot) const;       // the addresses/ids of a slot
  size_t in_use() const;

 private:
  ipv4_net net_;
  uint32_t uid_base_;
  uint32_t capacity_;
  mutable std::mutex mu_;
  std::set<uint32_t> used_;
};

}  // namespace warren::vmm::jail
