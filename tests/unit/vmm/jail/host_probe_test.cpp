// tests/unit/vmm/jail/host_probe_test.cpp — capability detection pieces that are pure.
#include <catch2/catch_test_macros.hpp>

#include "vmm/jail/host_probe.hpp"

using namespace warren::vmm::jail;

TEST_CASE("criu versions are parsed from `criu --version`") {
  CHECK(parse_criu_version("Version: 3.17.1\n") == std::make_pair(3, 17));
  CHECK(parse_criu_version("Version: 4.1\nGitID: v4.1\n") == std::make_pair(4, 1));
  CHECK_FALSE(parse_criu_version(""));
  CHECK_FALSE(parse_criu_version("criu: command not found"));
}

TEST_CASE("capabilities always answer the fields /v1/info needs") {
  warren::vmm::jail_config cfg;
  cfg.agent_path = "/nonexistent/warren-agent";
  auto j = probe_host(cfg, cgroup_layout::detect());
  CHECK(j.contains("available"));
  CHECK(j["fork_memory"] == false);
  CHECK(j["hibernate_memory"] == false);
  CHECK(j["hibernate_frees_memory"] == false);
  CHECK(j["available"] == false);  // no agent binary
  CHECK(j["reason"].get<std::string>().size() > 0);
}
