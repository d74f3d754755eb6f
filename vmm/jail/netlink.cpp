// vmm/jail/netlink.cpp — rtnetlink by hand (rtnetlink(7), netlink(7)): one request, one ACK.
// Must never allocate or log: the helper calls it between fork()s.
#include "vmm/jail/netlink.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace warren::vmm::jail::nl {
namespace {

struct request {
  alignas(NLMSG_ALIGNTO) char buf[1024];
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf); }
};

void init(request& r, uint16_t type, uint16_t flags, size_t payload) {
  memset(r.buf, 0, sizeof r.buf);
  r.hdr()->nlmsg_len = NLMSG_LENGTH(payload);
  r.hdr()->nlmsg_type = type;
  r.hdr()->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  r.hdr()->nlmsg_seq = 1;
}

rtattr* add_attr(request& r, uint16_t type, const void* data, size_t len) {
  auto* h = r.hdr();
  size_t off = NLMSG_ALIGN(h->nlmsg_len);
  if (off + RTA_LENGTH(len) > sizeof r.buf) return nullptr;
  auto* a = reinterpret_cast<rtattr*>(r.buf + off);
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = off + RTA_ALIGN(a->rta_len);
  return a;
}

// Nested attributes: open with begin(), close with end() which fixes the length.
rtattr* begin(request& r, uint16_t type) { return add_attr(r, type, nullptr, 0); }
void end(request& r, rtattr* a) {
  a->rta_len = static_cast<unsigned short>(r.buf + r.hdr()->nlmsg_len - reinterpret_cast<char*>(a));
}

int transact(request& r) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  int rc = 0;
  if (sendto(fd, r.buf, r.hdr()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    rc = -errno;
  } else {
    alignas(NLMSG_ALIGNTO) char resp[4096];
    ssize_t n;
    do n = recv(fd, resp, sizeof resp, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      rc = -errno;
    } else {
      auto* h = reinterpret_cast<nlmsghdr*>(resp);
      if (!NLMSG_OK(h, static_cast<unsigned>(n))) rc = -EPROTO;
      else if (h->nlmsg_type == NLMSG_ERROR)
        rc = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;  // 0 is the ACK
      else rc = -EPROTO;
    }
  }
  close(fd);
  return rc;
}

}  // namespace

int create_veth(const char* host_name, const char* peer_name, int peer_ns_pid) {
  request r;
  init(r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(ifinfomsg));
  reinterpret_cast<ifinfomsg*>(NLMSG_DATA(r.hdr()))->ifi_family = AF_UNSPEC;
  add_attr(r, IFLA_IFNAME, host_name, strlen(host_name) + 1);
  rtattr* linkinfo = begin(r, IFLA_LINKINFO);
  add_attr(r, IFLA_INFO_KIND, "veth", 4);
  rtattr* data = begin(r, IFLA_INFO_DATA);
  rtattr* peer = begin(r, VETH_INFO_PEER);
  // The peer's payload starts with its own ifinfomsg (see veth_newlink in drivers/net/veth.c).
  ifinfomsg pi{};
  pi.ifi_family = AF_UNSPEC;
  size_t off = NLMSG_ALIGN(r.hdr()->nlmsg_len);
  memcpy(r.buf + off, &pi, sizeof pi);
  r.hdr()->nlmsg_len = off + NLMSG_ALIGN(sizeof pi);
  add_attr(r, IFLA_IFNAME, peer_name, strlen(peer_name) + 1);
  uint32_t pid = static_cast<uint32_t>(peer_ns_pid);
  add_attr(r, IFLA_NET_NS_PID, &pid, sizeof pid);
  end(r, peer);
  end(r, data);
  end(r, linkinfo);
  return transact(r);
}

int delete_link(const char* name) {
  request r;
  init(r, RTM_DELLINK, 0, sizeof(ifinfomsg));
  reinterpret_cast<ifinfomsg*>(NLMSG_DATA(r.hdr()))->ifi_family = AF_UNSPEC;
  add_attr(r, IFLA_IFNAME, name, strlen(name) + 1);
  return transact(r);
}

int link_index(const char* name) {
  unsigned idx = if_nametoindex(name);
  return idx ? static_cast<int>(idx) : -errno;
}

int link_up(int ifindex) {
  request r;
  init(r, RTM_NEWLINK, 0, sizeof(ifinfomsg));
  auto* ifi = reinterpret_cast<ifinfomsg*>(NLMSG_DATA(r.hdr()));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return transact(r);
}

int add_ipv4(int ifindex, uint32_t addr, int prefix) {
  request r;
  init(r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(ifaddrmsg));
  auto* ifa = reinterpret_cast<ifaddrmsg*>(NLMSG_DATA(r.hdr()));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa->ifa_index = static_cast<unsigned>(ifindex);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  uint32_t a = htonl(addr);
  add_attr(r, IFA_LOCAL, &a, 4);
  add_attr(r, IFA_ADDRESS, &a, 4);
  uint32_t bcast = htonl(addr | (prefix >= 31 ? 0u : (~0u >> prefix)));
  add_attr(r, IFA_BROADCAST, &bcast, 4);
  return transact(r);
}

int add_default_route(uint32_t gw) {
  request r;
  init(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(rtmsg));
  auto* rt = reinterpret_cast<rtmsg*>(NLMSG_DATA(r.hdr()));
  rt->rtm_family = AF_INET;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  uint32_t g = htonl(gw);
  add_attr(r, RTA_GATEWAY, &g, 4);
  return transact(r);
}

}  // namespace warren::vmm::jail::nl
