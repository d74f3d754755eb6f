// net/metrics.cpp — Prometheus text rendering.
#include "net/metrics.hpp"
#include "core/thread_slot.hpp"

#include <nlohmann/json.hpp>
#include <algorithm>
#include <sstream>

namespace warren::net {
namespace {
std::string label(std::string_view v) {  // escape per the text format
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') { out += "\\n"; continue; }
    out.push_back(c);
  }
  return out;
}
}  // namespace

void metrics::observe(std::string_view method, std::string_view route, int status, double ms) {
  static constexpr std::string_view known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};
  if (std::find(std::begin(known), std::end(known), method) == std::end(known)) method = "OTHER";
  auto& sh = shards_[thread_slot() % shard_count];
  std::lock_guard lk(sh.mu);
  auto key = std::tuple<std::string_view, std::string_view, int>(method, route, status);
  auto it = sh.requests.find(key);
  if (it == sh.requests.end())
    it = sh.requests.emplace(std::tuple<std::string, std::string, int>(method, route, status), 0).first;
  ++it->second;
  auto lt = sh.latency.find(route);
  if (lt == sh.latency.end()) lt = sh.latency.emplace(std::string(route), histogram{}).first;
  auto& h = lt->second;
  for (size_t i = 0; i < bounds_ms.size(); ++i)
    if (ms <= bounds_ms[i]) ++h.buckets[i];
  ++h.count;
  h.sum_ms += ms;
}

std::string metrics::render(const std::string& gauges_json) const {
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests;  // the shards added up
  std::map<std::string, histogram> latency;
  for (auto& sh : shards_) {
    std::lock_guard lk(sh.mu);
    for (auto& [k, n] : sh.requests) requests[k] += n;
    for (auto& [route, h] : sh.latency) {
      auto& t = latency[route];
      for (size_t i = 0; i < bounds_ms.size(); ++i) t.buckets[i] += h.buckets[i];
      t.count += h.count;
      t.sum_ms += h.sum_ms;
    }
  }
  std::ostringstream o;
  {
    o << "# HELP warren_http_requests_total HTTP requests served, by method, route and status.\n"
         "# TYPE warren_http_requests_total counter\n";
    for (auto& [k, n] : requests)
      o << "warren_http_requests_total{method=\"" << label(std::get<0>(k)) << "\",route=\""
        << label(std::get<1>(k)) << "\",status=\"" << std::get<2>(k) << "\"} " << n << "\n";
    o << "# HELP warren_http_request_duration_seconds Time from request read to response queued.\n"
         "# TYPE warren_http_request_duration_seconds histogram\n";
    for (auto& [route, h] : latency) {
      for (size_t i = 0; i < bounds_ms.size(); ++i)
        o << "warren_http_request_duration_seconds_bucket{route=\"" << label(route) << "\",le=\""
          << bounds_ms[i] / 1000.0 << "\"} " << h.buckets[i] << "\n";
      o << "warren_http_request_duration_seconds_bucket{route=\"" << label(route)
        << "\",le=\"+Inf\"} " << h.count << "\n";
      o << "warren_http_request_duration_seconds_sum{route=\"" << label(route) << "\"} "
        << h.sum_ms / 1000.0 << "\n";
      o << "warren_http_request_duration_seconds_count{route=\"" << label(route) << "\"} " << h.count
        << "\n";
    }
  }
  o << "# HELP warren_actors Live actors on this node, by kind.\n# TYPE warren_actors gauge\n";
  auto g = nlohmann::json::parse(gauges_json, nullptr, false);
  if (g.is_object())
    for (auto it = g.begin(); it != g.end(); ++it)
      if (it.value().is_number())
        o << "warren_actors{kind=\"" << label(it.key()) << "\"} " << it.value().get<double>() << "\n";
  return o.str();
}

}  // namespace warren::net
