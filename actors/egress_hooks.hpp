// actors/egress_hooks.hpp — what a sandbox actor tells the node's egress services (net/egress/)
// about its sandbox: the interface lives here so that actors never depend on net/. Calls are
// cheap and thread-safe (no blocking I/O, no nft): the firewall half is the driver's.
#pragma once

#include <memory>
#include <string>

#include "storage/records.hpp"
#include "vmm/driver.hpp"

namespace warren::actors {

class egress_hooks {
 public:
  virtual ~egress_hooks() = default;
  // The firewall half of the record's policy (profile, CIDRs, and which traffic goes to the
  // egress services). The record's rules were validated when they were accepted.
  virtual vmm::egress_rules rules_for(const storage::sandbox_record& rec) const = 0;
  // The sandbox runs (created, re-adopted, restored, resumed, or its policy changed): its proxy
  // and DNS forwarder entry follows `rec`; DNS answers for allowed names go to the driver.
  virtual void attach(const storage::sandbox_record& rec, const vmm::instance& inst,
                      std::shared_ptr<vmm::driver> driver) = 0;
  virtual void detach(const std::string& id) = 0;
  // What the proxy and forwarder refused for it: {"count": N, "recent": [{dest, at, by}]}.
  virtual std::string refusals(const std::string& id) const = 0;
  // The node CA's certificate (PEM) that sandboxes with credentials trust.
  virtual std::string ca_pem() const = 0;
};

}  // namespace warren::actors
