// net/metrics.hpp — request counters and latency histograms by route and status, rendered in
// the Prometheus text format (exposition format 0.0.4). Thread-safe; cheap on the hot path.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace warren::net {

class metrics {
 public:
  // A method outside RFC 9110's set counts as "OTHER": clients (and proxied traffic) choose the
  // method, and must not be able to grow the series without bound.
  void observe(std::string_view method, std::string_view route, int status, double ms);
  // `gauges_json` is the node's live actors by kind ({"sandbox": 3, ...}).
  std::string render(const std::string& gauges_json) const;

 private:
  static constexpr std::array<double, 12> bounds_ms = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};
  struct histogram {
    std::array<uint64_t, bounds_ms.size()> buckets{};
    uint64_t count = 0;
    double sum_ms = 0;
  };
  // One shard per thread (by a thread's slot): the I/O threads count without sharing a lock or
  // a cache line; render() adds the shards up.
  struct alignas(64) shard {
    mutable std::mutex mu;
    // Transparent comparators: a lookup with string_views allocates nothing (the common case:
    // the series exists).
    std::map<std::tuple<std::string, std::string, int>, uint64_t, std::less<>> requests;
    std::map<std::string, histogram, std::less<>> latency;
  };
  static constexpr size_t shard_count = 16;
  std::array<shard, shard_count> shards_;
};

}  // namespace warren::net
