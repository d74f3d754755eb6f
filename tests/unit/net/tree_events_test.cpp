// Tests net/tree_events.cpp: the admin events socket's frames from successive trees.
#include <catch2/catch_test_macros.hpp>

#include "net/tree_events.hpp"

#include <nlohmann/json.hpp>

using namespace warren::net;
using json = nlohmann::json;

namespace {

json entry(const std::string& kind, const std::string& id, const std::string& state, json children = json::array(),
           int restarts = 0) {
  return {{"kind", kind}, {"id", id}, {"state", state}, {"restarts", restarts},
          {"counters", {{"execs", 0}}}, {"children", std::move(children)}};
}

std::string tree(json sandboxes) {
  return json{{"nodes", json::array({entry("node", "n1", "up", std::move(sandboxes))})}}.dump();
}

std::vector<json> parsed(const std::vector<std::string>& frames) {
  std::vector<json> out;
  for (auto& f : frames) out.push_back(json::parse(f));
  return out;
}

}  // namespace

TEST_CASE("the first frame is the whole tree, then only changes") {
  tree_events ev;
  auto t0 = tree(json::array({entry("sandbox", "aa", "running")}));
  auto f = parsed(ev.frames(t0));
  REQUIRE(f.size() == 1);
  CHECK(f[0]["type"] == "snapshot");
  CHECK(f[0]["tree"] == json::parse(t0));
  CHECK(ev.frames(t0).empty());
  // counters are not changes
  auto busier = json::parse(t0);
  busier["nodes"][0]["children"][0]["counters"]["execs"] = 7;
  CHECK(ev.frames(busier.dump()).empty());
}

TEST_CASE("spawned comes parents first, down children first, with parents named") {
  tree_events ev;
  ev.frames(tree(json::array()));
  auto f = parsed(ev.frames(tree(json::array(
      {entry("sandbox", "aa", "running", json::array({entry("shell", "sh_1", "open"), entry("port_forward", "aa:80", "exposed")}))}))));
  REQUIRE(f.size() == 3);
  CHECK(f[0]["type"] == "spawned");
  CHECK(f[0]["id"] == "aa");
  CHECK(f[0]["parent"] == "n1");
  CHECK(f[0]["kind"] == "sandbox");
  CHECK_FALSE(f[0]["actor"].contains("children"));
  CHECK(f[1]["parent"] == "aa");
  CHECK(f[2]["parent"] == "aa");
  f = parsed(ev.frames(tree(json::array())));
  REQUIRE(f.size() == 3);
  for (int i = 0; i < 2; ++i) CHECK(f[i]["kind"] != "sandbox");
  CHECK(f[2]["type"] == "down");
  CHECK(f[2]["id"] == "aa");
  CHECK(f[2]["last_state"] == "running");
}

TEST_CASE("a state change and a restart are one frame each") {
  tree_events ev;
  ev.frames(tree(json::array({entry("sandbox", "aa", "running")})));
  auto f = parsed(ev.frames(tree(json::array({entry("sandbox", "aa", "hibernated")}))));
  REQUIRE(f.size() == 1);
  CHECK(f[0]["type"] == "state");
  CHECK(f[0]["from"] == "running");
  CHECK(f[0]["to"] == "hibernated");
  CHECK(f[0]["actor"]["state"] == "hibernated");
  f = parsed(ev.frames(tree(json::array({entry("sandbox", "aa", "hibernated", json::array(), 1)}))));
  REQUIRE(f.size() == 1);
  CHECK(f[0]["type"] == "restarted");
  CHECK(f[0]["restarts"] == 1);
}

TEST_CASE("garbage trees give no frames and do not reset what was seen") {
  tree_events ev;
  CHECK(ev.frames("not json").empty());
  CHECK(ev.frames("[1,2]").empty());
  auto t0 = tree(json::array({entry("sandbox", "aa", "running")}));
  CHECK(parsed(ev.frames(t0))[0]["type"] == "snapshot");
  CHECK(ev.frames("{").empty());
  CHECK(ev.frames(t0).empty());
}

TEST_CASE("find_tree_entry finds any actor by id, with its children") {
  auto t = json::parse(tree(json::array({entry("sandbox", "aa", "running", json::array({entry("shell", "sh_1", "open")}))})));
  CHECK(find_tree_entry(t, "n1")["kind"] == "node");
  CHECK(find_tree_entry(t, "aa")["children"].size() == 1);
  CHECK(find_tree_entry(t, "sh_1")["state"] == "open");
  CHECK(find_tree_entry(t, "nope").is_null());
  CHECK(find_tree_entry(json::array(), "aa").is_null());
}
