// Tests net/metrics.cpp: Prometheus text output.
#include <catch2/catch_test_macros.hpp>

#include "net/metrics.hpp"

#include <string>
#include <thread>
#include <vector>

using namespace warren::net;

TEST_CASE("metrics count requests by route and status and render histograms") {
  metrics m;
  m.observe("GET", "/v1/info", 200, 0.3);
  m.observe("GET", "/v1/info", 200, 30);
  m.observe("POST", "/v1/admin/keys", 403, 1);
  auto t = m.render(R"({"node":1,"sandbox":2})");
  CHECK(t.find("warren_http_requests_total{method=\"GET\",route=\"/v1/info\",status=\"200\"} 2") != std::string::npos);
  CHECK(t.find("warren_http_request_duration_seconds_bucket{route=\"/v1/info\",le=\"0.0005\"} 1") != std::string::npos);
  CHECK(t.find("warren_http_request_duration_seconds_count{route=\"/v1/info\"} 2") != std::string::npos);
  CHECK(t.find("warren_actors{kind=\"sandbox\"} 2") != std::string::npos);
}

TEST_CASE("label values are escaped") {
  metrics m;
  m.observe("GET", "/a\"b\\c", 404, 1);
  CHECK(m.render("{}").find("route=\"/a\\\"b\\\\c\"") != std::string::npos);
}

TEST_CASE("methods outside RFC 9110's set share one series, so clients cannot grow the series") {
  metrics m;
  for (int i = 0; i < 100; ++i) m.observe("X-METHOD-" + std::to_string(i), "(port proxy)", 200, 1);
  m.observe("PATCH", "(port proxy)", 200, 1);
  auto t = m.render("{}");
  CHECK(t.find("method=\"OTHER\",route=\"(port proxy)\",status=\"200\"} 100") != std::string::npos);
  CHECK(t.find("method=\"PATCH\",route=\"(port proxy)\",status=\"200\"} 1") != std::string::npos);
  CHECK(t.find("X-METHOD") == std::string::npos);
}

TEST_CASE("counts from many threads (each on its own shard) add up to one series each") {
  metrics m;
  std::vector<std::thread> ts;
  for (int t = 0; t < 20; ++t)  // more threads than shards: some share one
    ts.emplace_back([&m] {
      for (int i = 0; i < 1000; ++i) m.observe("GET", "(port proxy)", 200, 0.1);
      m.observe("GET", "(port proxy)", 502, 2000);
    });
  for (auto& t : ts) t.join();
  auto t = m.render("{}");
  CHECK(t.find("method=\"GET\",route=\"(port proxy)\",status=\"200\"} 20000\n") != std::string::npos);
  CHECK(t.find("method=\"GET\",route=\"(port proxy)\",status=\"502\"} 20\n") != std::string::npos);
  CHECK(t.find("warren_http_request_duration_seconds_count{route=\"(port proxy)\"} 20020\n") != std::string::npos);
  CHECK(t.find("warren_http_request_duration_seconds_bucket{route=\"(port proxy)\",le=\"0.0005\"} 20000\n") !=
        std::string::npos);
  // each series appears once, not once per shard
  auto first = t.find("status=\"200\"");
  CHECK(t.find("status=\"200\"", first + 1) == std::string::npos);
}
