// tests/unit/vmm/jail/jail_driver_test.cpp — [root] real sandboxes from the busybox image:
// isolation, limits, network policy, adopt, and that destroy leaves nothing behind. Skips
// itself when not root. Its own main() serves the __jail-init helper (helper_path = itself).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch_session.hpp>
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "storage/image_store.hpp"
#include "vmm/jail/jail_driver.hpp"
#include "vmm/jail/launch_plan.hpp"

namespace fs = std::filesystem;
using namespace warren;

namespace {

std::string self_exe;

struct env {
  std::string data_dir, rootfs;
  vmm::jail_config cfg;
  std::unique_ptr<vmm::driver> drv;
  env() {
    char tmpl[] = "/tmp/wj-XXXXXX";  // short: agent.sock must fit sun_path
    data_dir = mkdtemp(tmpl);
    storage::image_store images(data_dir);
    REQUIRE(images.build("busybox:latest"));
    rootfs = images.rootfs_path("busybox:latest").value();
    cfg.data_dir = data_dir;
    cfg.agent_path = JAIL_TEST_AGENT;
    cfg.helper_path = self_exe;
    cfg.pids_max = 64;
    drv = vmm::make_jail_driver(cfg);
  }
  ~env() {
    std::error_code ec;
    fs::remove_all(data_dir, ec);
  }
  vmm::sandbox_spec spec(const std::string& id, const std::string& profile = "default") {
    vmm::sandbox_spec s;
    s.id = id;
    s.image = "busybox:latest";
    s.image_rootfs = rootfs;
    s.mem_mib = 64;
    s.disk_mib = 64;
    s.network_profile = profile;
    return s;
  }
};

// The fake agent's protocol: one command line per connection, output then "\nEXIT:<n>\n".
struct exec_result {
  std::string out;
  int code = -1;
};
exec_result sh(const vmm::instance& inst, const std::string& cmd) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, inst.agent_socket.c_str(), sizeof sa.sun_path - 1);
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  std::string line = cmd + "\n";
  REQUIRE(write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  exec_result r;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(fd);
  auto pos = r.out.rfind("\nEXIT:");
  if (pos != std::string::npos) {
    r.code = std::stoi(r.out.substr(pos + 6));
    r.out.erase(pos);
  }
  return r;
}

bool contains(const std::string& s, const std::string& w) { return s.find(w) != std::string::npos; }

std::string mountinfo() {
  std::ifstream f("/proc/self/mountinfo");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

#define REQUIRE_CREATED(inst)                  \
  do {                                         \
    if (!(inst).has_value()) FAIL((inst).err().message); \
  } while (0)

#define ROOT_ONLY() \
  if (geteuid() != 0) SKIP("needs root (as CI runs it)")

}  // namespace

TEST_CASE("a busybox sandbox is its own host: hostname, PID 1, processes, files", "[root]") {
  ROOT_ONLY();
  env e;
  auto caps = e.drv->capabilities();
  REQUIRE(caps["available"] == true);
  auto inst = e.drv->create(e.spec("00000000000000a1"));
  REQUIRE_CREATED(inst);
  CHECK(sh(*inst, "hostname").out == "00000000000000a1\n");
  CHECK(contains(sh(*inst, "cat /proc/1/cmdline").out, "warren-agent"));
  auto ps = sh(*inst, "ls -d /proc/[0-9]* | wc -l");
  CHECK(std::stoi(ps.out) < 8);  // agent, its handler, sh, ls, wc: no host process
  CHECK(sh(*inst, "test -e " + e.data_dir).code != 0);
  CHECK(sh(*inst, "test -e /etc/debian_version").code != 0);
  CHECK(sh(*inst, "id -u").out == "0\n");
  CHECK(contains(sh(*inst, "cat /etc/hosts").out, "00000000000000a1"));
  CHECK(sh(*inst, "mount -t tmpfs x /mnt").code != 0);  // seccomp + no CAP_SYS_ADMIN
  REQUIRE(e.drv->destroy(*inst).has_value());
}

TEST_CASE("writing past disk_mib is ENOSPC inside and usage is measured", "[root]") {
  ROOT_ONLY();
  env e;
  auto inst = e.drv->create(e.spec("00000000000000a2"));
  REQUIRE_CREATED(inst);
  auto r = sh(*inst, "dd if=/dev/zero of=/big bs=1M count=100 2>&1");
  CHECK(contains(r.out, "No space left on device"));
  auto u = e.drv->stats(*inst);
  REQUIRE(u.has_value());
  CHECK(u->disk_used_bytes > 40ull << 20);
  CHECK(u->disk_used_bytes <= 64ull << 20);
  CHECK(sh(*inst, "rm /big && echo ok").out == "ok\n");
  REQUIRE(e.drv->destroy(*inst).has_value());
}

TEST_CASE("a memory hog is OOM-killed inside and the sandbox stays up", "[root]") {
  ROOT_ONLY();
  env e;
  auto inst = e.drv->create(e.spec("00000000000000a3"));
  REQUIRE_CREATED(inst);
  CHECK(sh(*inst, "dd if=/dev/zero of=/dev/null bs=200M count=1").code == 137);
  CHECK(sh(*inst, "echo alive").out == "alive\n");
  auto u = e.drv->destroy(*inst);
  REQUIRE(u.has_value());
  CHECK(u->mem_peak_bytes >= 60ull << 20);
  CHECK(u->mem_peak_bytes <= 64ull << 20);
}

TEST_CASE("a fork bomb fails at the pids limit and the sandbox stays up", "[root]") {
  ROOT_ONLY();
  env e;
  auto inst = e.drv->create(e.spec("00000000000000a4"));
  REQUIRE_CREATED(inst);
  auto r = sh(*inst, "for i in $(seq 1 100); do sleep 2 & done 2>&1; wait");
  CHECK(contains(r.out, "can't fork"));
  CHECK(sh(*inst, "sleep 2; echo alive").out == "alive\n");
  REQUIRE(e.drv->destroy(*inst).has_value());
}

TEST_CASE("the sandbox cannot reach host listeners on loopback or its gateway", "[root]") {
  ROOT_ONLY();
  env e;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(listen(lfd, 8) == 0);
  socklen_t len = sizeof sa;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::string port = std::to_string(ntohs(sa.sin_port));
  for (const char* profile : {"default", "internet"}) {
    auto inst = e.drv->create(e.spec("00000000000000a5", profile));
    REQUIRE_CREATED(inst);
    auto st = *vmm::jail::decode_jail_state(inst->driver_state);
    in_addr g{};
    inet_pton(AF_INET, st.guest_addr.c_str(), &g);
    g.s_addr = htonl(ntohl(g.s_addr) - 1);
    std::string gw = inet_ntoa(g);
    CHECK(sh(*inst, "nc -w 1 " + gw + " " + port + " </dev/null").code != 0);
    CHECK(sh(*inst, "nc -w 1 127.0.0.1 " + port + " </dev/null").code != 0);
    REQUIRE(e.drv->destroy(*inst).has_value());
  }
  // Nothing got through: the listener has no pending connection.
  timeval tv{0, 0};
  fd_set fds;
  FD_ZERO(&fds);
  FD_SET(lfd, &fds);
  CHECK(select(lfd + 1, &fds, nullptr, nullptr, &tv) == 0);
  close(lfd);
}

TEST_CASE("a restarted daemon adopts a live sandbox and refuses an impostor pid", "[root]") {
  ROOT_ONLY();
  env e;
  auto inst = e.drv->create(e.spec("00000000000000a6"));
  REQUIRE_CREATED(inst);
  auto again = vmm::make_jail_driver(e.cfg);  // as after kill -9 of the daemon
  auto adopted = again->adopt(e.spec("00000000000000a6"), inst->driver_state);
  REQUIRE(adopted.has_value());
  CHECK(sh(*adopted, "echo still").out == "still\n");
  auto st = *vmm::jail::decode_jail_state(inst->driver_state);
  st.init_start_time += 1;
  CHECK_FALSE(again->adopt(e.spec("00000000000000a6"), vmm::jail::encode(st)).has_value());
  REQUIRE(again->destroy(*adopted).has_value());
  CHECK_FALSE(again->adopt(e.spec("00000000000000a6"), inst->driver_state).has_value());
}

TEST_CASE("PID 1 starts in every one of the sandbox's cgroups, v1 and cgroup2", "[root]") {
  ROOT_ONLY();
  env e;
  auto inst = e.drv->create(e.spec("00000000000000a8"));
  REQUIRE_CREATED(inst);
  auto st = *vmm::jail::decode_jail_state(inst->driver_state);
  REQUIRE_FALSE(st.cgroup_dirs.empty());
  for (auto& d : st.cgroup_dirs) {
    // v1 joins by `tasks` (one thread), cgroup2 by clone3(CLONE_INTO_CGROUP): both must hold PID 1.
    std::ifstream f(d + "/cgroup.procs");
    bool found = false;
    for (int pid; f >> pid;) found = found || pid == st.init_pid;
    INFO(d);
    CHECK(found);
  }
  REQUIRE(e.drv->destroy(*inst).has_value());
}

TEST_CASE("destroy releases every mount, cgroup, veth and file; cleanup is idempotent", "[root]") {
  ROOT_ONLY();
  env e;
  std::string id = "00000000000000a7";
  auto inst = e.drv->create(e.spec(id));
  REQUIRE_CREATED(inst);
  auto st = *vmm::jail::decode_jail_state(inst->driver_state);
  CHECK(if_nametoindex(st.host_if.c_str()) != 0);
  REQUIRE(e.drv->destroy(*inst).has_value());
  CHECK(if_nametoindex(st.host_if.c_str()) == 0);
  for (auto& d : st.cgroup_dirs) CHECK_FALSE(fs::exists(d));
  CHECK_FALSE(contains(mountinfo(), id));
  CHECK_FALSE(fs::exists(e.data_dir + "/sandboxes/" + id));
  CHECK_FALSE(fs::exists(e.data_dir + "/scratch/" + id + ".img"));
  e.drv->cleanup(id, inst->driver_state);
  e.drv->cleanup(id, "");
  CHECK_FALSE(e.drv->destroy(*inst).has_value());  // a second destroy finds nothing
}

TEST_CASE("a failing setup step is reported with the sandbox, the step and the errno", "[root]") {
  ROOT_ONLY();
  env e;
  e.cfg.agent_path = "/nonexistent";
  auto bad = vmm::make_jail_driver(e.cfg);
  auto s = e.spec("00000000000000a8");
  s.image_rootfs = e.data_dir + "/nope";
  auto r = bad->create(s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == errc::unavailable);  // no agent: capabilities said so
  auto r2 = e.drv->create(s);
  REQUIRE_FALSE(r2.has_value());
  CHECK(r2.err().code == errc::not_found);
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == vmm::jail_init_subcommand) return vmm::jail_init_main(argc, argv);
  self_exe = fs::canonical("/proc/self/exe").string();
  return Catch::Session().run(argc, argv);
}
