// net/port_proxy_parse.hpp — the pure, I/O-free parts of the port proxy (net/port_proxy.cpp),
// in a header so that unit tests (tests/unit/net/port_proxy_test.cpp) can reach them: header
// list tokens, the hop-by-hop field set, and the incremental upstream response parser.
#pragma once

#include <boost/beast/http/basic_parser.hpp>

#include "core/ascii.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::net::proxy_detail {

// Comma-separated list items of a header value, trimmed (SP/HTAB) and lower-cased.
inline std::vector<std::string> tokens(std::string_view v) {
  std::vector<std::string> out;
  while (!v.empty()) {
    auto c = v.find(',');
    auto t = v.substr(0, c);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty()) out.push_back(ascii_lower(t));
    if (c == std::string_view::npos) break;
    v.remove_prefix(c + 1);
  }
  return out;
}

// RFC 9110 §7.6.1: connection-specific fields a proxy must not forward, plus what we set.
// Field names are case-insensitive.
inline bool hop_by_hop(std::string_view name) {
  static constexpr std::string_view names[] = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                                               "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"};
  for (auto n : names)
    if (ascii_iequals(name, n)) return true;
  return false;
}

// ---- the response parser ----------------------------------------------------------------------

struct response_sink {
  virtual ~response_sink() = default;
  virtual void on_head() = 0;                       // status and fields are complete
  virtual void on_body(std::string_view d) = 0;     // de-chunked body bytes
  virtual void on_done() = 0;                       // the message is complete
};

// An HTTP/1.x response parsed incrementally (fed with put()); the body is handed to the sink as
// it arrives, never held. Headers are capped at 64 KiB; the body is not capped.
class response_parser : public boost::beast::http::basic_parser<false> {
 public:
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> fields;  // as received (names as sent)

  explicit response_parser(response_sink& s, bool head_request) : sink_(s) {
    header_limit(64 * 1024);
    body_limit(boost::none);  // no cap: the body streams through
    eager(true);
    fields.reserve(16);
    skip(head_request);  // a response to HEAD has no body whatever its Content-Length says
  }

 private:
  void on_request_impl(boost::beast::http::verb, boost::beast::string_view, boost::beast::string_view, int,
                       boost::beast::error_code&) override {}
  void on_response_impl(int code, boost::beast::string_view r, int, boost::beast::error_code&) override {
    status = code;
    reason.assign(r.data(), r.size());
  }
  void on_field_impl(boost::beast::http::field, boost::beast::string_view name, boost::beast::string_view value,
                     boost::beast::error_code&) override {
    fields.emplace_back(std::string(name.data(), name.size()), std::string(value.data(), value.size()));
  }
  void on_header_impl(boost::beast::error_code&) override { sink_.on_head(); }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, boost::beast::error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view b, boost::beast::error_code&) override {
    sink_.on_body(std::string_view(b.data(), b.size()));
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view b, boost::beast::error_code&) override {
    sink_.on_body(std::string_view(b.data(), b.size()));
    return b.size();
  }
  void on_finish_impl(boost::beast::error_code&) override { sink_.on_done(); }

  response_sink& sink_;
};

}  // namespace warren::net::proxy_detail
