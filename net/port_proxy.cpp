// net/port_proxy.cpp — the streaming reverse proxy behind public port URLs. Bytes go between
// the client's exchange and an upstream connection into the sandbox (direct TCP to its address,
// or the agent's port stream: net/port_upstream.hpp): request bodies chunk by chunk as the
// upstream takes them, responses parsed incrementally (Beast's basic_parser, fed with put()) and
// re-framed for the client, upgrades (WebSocket) spliced raw after the 101. It must never hold
// a whole body, and never send an actor message per request or chunk (exposure counters are
// atomics shared with the port-forward actors).
//
// Threading: upstream callbacks run on the client connection's event loop (direct) or the agent
// client's strand; exchange callbacks on the client connection's loop. A relay's parser state
// is touched only by upstream callbacks; what crosses threads is atomic or under the relay's
// mutex.
#include "net/port_proxy.hpp"
#include "net/port_proxy_parse.hpp"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/asio/buffer.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/ascii.hpp"
#include "core/ids.hpp"
#include "core/thread_slot.hpp"
#include "net/port_upstream.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

namespace http = boost::beast::http;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using namespace proxy_detail;  // tokens, hop_by_hop, response_parser (port_proxy_parse.hpp)
using namespace std::string_view_literals;  // appending "x"sv needs no strlen: on every request

namespace {

constexpr size_t pause_above = 1024 * 1024;  // unsent response bytes before we pause the upstream
constexpr size_t resume_below = 256 * 1024;
constexpr std::chrono::seconds fallback_reuse_for{5};
constexpr uint64_t whole_max = 64 * 1024;  // a response this small, complete in one read, goes out whole

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// steady_clock's clock (CLOCK_MONOTONIC) at its coarse resolution, as the activity reads it: a
// few ms, no clock-source read, for pool ages measured in seconds on every request.
steady::time_point coarse_now() { return steady::time_point(std::chrono::nanoseconds(actors::activity::now_ns())); }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (!all_digits(s) || s.size() > 5) return std::nullopt;
  unsigned long v = std::stoul(std::string(s));
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

bool is_hex_id(std::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view strip_port(std::string_view h) {
  if (!h.empty() && h.front() == '[') return h;  // IPv6 literal: never a port host
  auto c = h.rfind(':');
  return c == std::string_view::npos ? h : h.substr(0, c);
}

// A lower-cased copy of a short string, on the stack (on the heap only when long).
class lowered {
 public:
  explicit lowered(std::string_view s) {
    char* out = s.size() <= sizeof small_ ? small_ : (big_.resize(s.size()), big_.data());
    for (size_t i = 0; i < s.size(); ++i) out[i] = ascii_lower(s[i]);
    view_ = std::string_view(out, s.size());
  }
  lowered(const lowered&) = delete;
  lowered& operator=(const lowered&) = delete;
  std::string_view view() const { return view_; }

 private:
  char small_[256];
  std::string big_;
  std::string_view view_;
};

error not_listening(const port_target& t) {
  return make_error(errc::bad_gateway, "no server is listening on port " + std::to_string(t.port) +
                                           " in sandbox " + t.sandbox_id);
}

}  // namespace

// ---- URLs and routing ------------------------------------------------------------------------

std::string public_urls::host(const std::string& id, uint16_t port) const {
  return std::to_string(port) + "-" + id + "." + domain;
}
std::string public_urls::run_url(const std::string& id, uint16_t port) const {
  return scheme + "://run" + id + "." + domain + "/sb/p/" + std::to_string(port) + "/";
}
std::string public_urls::port_url(const std::string& id, uint16_t port) const {
  return scheme + "://" + host(id, port) + "/";
}

std::optional<expected<port_target>> route_port_host(std::string_view host_in, std::string_view target,
                                                     std::string_view domain_in) {
  lowered host_l(host_in), domain_l(domain_in);  // on every proxied request: no allocation
  std::string_view host = host_l.view(), domain = domain_l.view();
  // The label in front of ".<domain>"; a Host with or without the port matches a domain
  // configured with or without it (a front proxy may rewrite either).
  std::string_view label;
  auto label_of = [&](std::string_view h, std::string_view d) {
    if (d.empty() || h.size() <= d.size() + 1 || h.substr(h.size() - d.size()) != d || h[h.size() - d.size() - 1] != '.')
      return false;
    label = h.substr(0, h.size() - d.size() - 1);
    return true;
  };
  if (!label_of(host, domain) && !label_of(strip_port(host), strip_port(domain))) return std::nullopt;
  if (label.find('.') != std::string_view::npos) return std::nullopt;

  port_target t;
  if (label.size() == 19 && label.substr(0, 3) == "run" && is_hex_id(label.substr(3))) {
    t.sandbox_id = std::string(label.substr(3));
    // /sb/p/<port>[/<rest>][?query]
    constexpr std::string_view pre = "/sb/p/";
    if (target.substr(0, pre.size()) != pre)
      return expected<port_target>(make_error(errc::not_found, "on this host, paths are /sb/p/<port>/..."));
    auto rest = target.substr(pre.size());
    auto end = rest.find_first_of("/?");
    auto port = parse_port(rest.substr(0, end));
    if (!port) return expected<port_target>(make_error(errc::not_found, "no such port in this URL"));
    t.port = *port;
    t.prefix = std::string(pre) + std::to_string(*port);
    auto tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    t.target = tail.empty() || tail.front() == '?' ? "/" + std::string(tail) : std::string(tail);
    return expected<port_target>(std::move(t));
  }
  auto dash = label.find('-');
  if (dash == std::string_view::npos || !is_hex_id(label.substr(dash + 1))) return std::nullopt;
  auto port = parse_port(label.substr(0, dash));
  if (!all_digits(label.substr(0, dash))) return std::nullopt;
  if (!port) return expected<port_target>(make_error(errc::not_found, "no such port: " + std::string(label.substr(0, dash))));
  t.sandbox_id = std::string(label.substr(dash + 1));
  t.port = *port;
  t.target = target.empty() ? "/" : std::string(target);
  return expected<port_target>(std::move(t));
}

bool is_local_redirect(std::string_view next) {
  if (next.empty() || next.front() != '/') return false;           // "http:", "evil.com", ""
  if (next.size() > 1 && (next[1] == '/' || next[1] == '\\')) return false;  // "//evil", "/\evil"
  for (unsigned char c : next)
    if (c < 0x21 || c == 0x7f || c == '\\') return false;            // CR/LF, spaces, tabs, "\"
  return next.size() <= 2048;
}

std::string exposure_cookie_name(uint16_t port) { return "warren_token_" + std::to_string(port); }

// ---- upstream connections ----------------------------------------------------------------------

namespace {

// Who is using an upstream connection right now (one request/response, or a tunnel).
struct upstream_user {
  virtual ~upstream_user() = default;
  virtual void on_up_data(std::string_view d) = 0;
  virtual void on_up_eof() = 0;
  virtual void on_up_close(const status& st) = 0;
};

struct pool;

// One connection to a port inside a sandbox (direct TCP or through the agent: port_upstream.hpp).
// Reused across requests.
struct upstream : std::enable_shared_from_this<upstream> {
  std::shared_ptr<port_upstream> ps;
  std::string key;  // pool key: "<id>:<port>@<loop>" (relay::key)
  std::weak_ptr<pool> home;
  bool reused = false;
  steady::time_point idle_since = coarse_now();
  steady::time_point opened = coarse_now();

  // A connection on a fallback path (the sandbox's address after its loopback refused, or the
  // agent) is reused only for a short while: the server may have rebound meanwhile, and new
  // connections then take the first path (port_upstream::preferred).
  bool worth_keeping() const { return ps->preferred() || coarse_now() - opened < fallback_reuse_for; }

  std::mutex mu;
  std::shared_ptr<upstream_user> user;
  bool dead = false;  // closed, failed, or half-closed by the server: never reuse

  // Not connected yet (ps->start does that, once its user is attached). Null if the sandbox is
  // going away.
  static std::shared_ptr<upstream> make(const port_upstream_env& env, const actors::sandbox_link& link, uint16_t port,
                                        std::string key, std::weak_ptr<pool> home);
  void attach(std::shared_ptr<upstream_user> u) {
    std::lock_guard lk(mu);
    user = std::move(u);
  }
  void detach() {
    std::lock_guard lk(mu);
    user.reset();
  }
  bool is_dead() {
    std::lock_guard lk(mu);
    return dead;
  }
  void kill() {
    {
      std::lock_guard lk(mu);
      dead = true;
      user.reset();
    }
    ps->cancel();
  }

 private:
  std::shared_ptr<upstream_user> current(bool mark_dead);
  void idle_ended();
};

// Idle keep-alive connections per sandbox port and event loop. Sharded by key (a key names the
// loop): the I/O threads take and return connections without sharing a lock.
struct pool : std::enable_shared_from_this<pool> {
  size_t max_idle;
  std::chrono::seconds idle_timeout;
  struct alignas(64) shard {
    std::mutex mu;
    std::unordered_map<std::string, std::deque<std::shared_ptr<upstream>>> idle;
  };
  static constexpr size_t shard_count = 16;
  std::array<shard, shard_count> shards;

  pool(size_t m, std::chrono::seconds t) : max_idle(m), idle_timeout(t) {}

  shard& shard_of(const std::string& key) { return shards[std::hash<std::string>{}(key) % shard_count]; }

  std::shared_ptr<upstream> take(const std::string& key) {
    std::vector<std::shared_ptr<upstream>> stale;
    std::shared_ptr<upstream> got;
    {
      auto& sh = shard_of(key);
      std::lock_guard lk(sh.mu);
      auto it = sh.idle.find(key);
      if (it == sh.idle.end()) return nullptr;
      auto& q = it->second;
      auto now = coarse_now();
      while (!q.empty()) {
        auto u = std::move(q.back());
        q.pop_back();
        if (u->is_dead() || now - u->idle_since > idle_timeout) {
          stale.push_back(std::move(u));
          continue;
        }
        got = std::move(u);
        break;
      }
      // An emptied queue stays (put refills it without allocating); put prunes empty ones.
    }
    for (auto& s : stale) s->kill();
    return got;
  }

  void put(std::shared_ptr<upstream> u) {
    std::shared_ptr<upstream> evicted;
    {
      auto& sh = shard_of(u->key);
      std::lock_guard lk(sh.mu);
      if (sh.idle.size() > 1024)  // bounded: drop the queues of ports no longer in use
        std::erase_if(sh.idle, [](auto& kv) { return kv.second.empty(); });
      auto& q = sh.idle[u->key];
      u->idle_since = coarse_now();
      u->reused = true;
      q.push_back(std::move(u));
      if (q.size() > max_idle) {
        evicted = std::move(q.front());
        q.pop_front();
      }
    }
    if (evicted) evicted->kill();
  }

  void forget(const std::shared_ptr<upstream>& u) {
    auto& sh = shard_of(u->key);
    std::lock_guard lk(sh.mu);
    auto it = sh.idle.find(u->key);
    if (it == sh.idle.end()) return;
    auto& q = it->second;
    q.erase(std::remove(q.begin(), q.end(), u), q.end());
  }
};

std::shared_ptr<upstream_user> upstream::current(bool mark_dead) {
  std::lock_guard lk(mu);
  if (mark_dead) dead = true;
  return user;
}

void upstream::idle_ended() {
  if (auto p = home.lock()) p->forget(shared_from_this());
  ps->cancel();
}

std::shared_ptr<upstream> upstream::make(const port_upstream_env& env, const actors::sandbox_link& link, uint16_t port,
                                         std::string key, std::weak_ptr<pool> home) {
  auto u = std::make_shared<upstream>();
  u->key = std::move(key);
  u->home = std::move(home);
  std::weak_ptr<upstream> weak = u;
  port_upstream_callbacks cb;
  cb.on_data = [weak](std::string_view d) {
    auto self = weak.lock();
    if (!self) return;
    if (auto usr = self->current(false)) return usr->on_up_data(d);
    self->current(true);  // bytes nobody asked for on an idle connection: drop it
    self->idle_ended();
  };
  cb.on_eof = [weak] {
    auto self = weak.lock();
    if (!self) return;
    if (auto usr = self->current(true)) return usr->on_up_eof();
    self->idle_ended();
  };
  cb.on_close = [weak](status st) {
    auto self = weak.lock();
    if (!self) return;
    if (auto usr = self->current(true)) return usr->on_up_close(st);
    if (auto p = self->home.lock()) p->forget(self);
  };
  u->ps = make_port_upstream(env, link, port, std::move(cb));
  return u->ps ? u : nullptr;
}

}  // namespace

// ---- the proxy ----------------------------------------------------------------------------------

// A sandbox as the requests of one thread see it: its link, and its exposures as of
// `ports_version`. One per (thread slot, sandbox), never changed once made (a change to the
// exposures makes a new one): the relays of a thread share its reference count, so a request
// writes no cache line that another I/O thread also writes (not the link's, not the table's lock).
struct local_link {
  actors::sandbox_link_ptr link;
  uint64_t ports_version = 0;
  std::map<uint16_t, std::shared_ptr<const actors::exposure>> exposures;

  static std::shared_ptr<const local_link> make(actors::sandbox_link_ptr l) {
    auto ll = std::make_shared<local_link>();
    if (l->ports) {
      ll->ports_version = l->ports->version();  // first: see port_table::exposures
      ll->exposures = l->ports->exposures();
    }
    ll->link = std::move(l);
    return ll;
  }
  bool current() const { return !link->ports || link->ports->version() == ports_version; }
  // Its agent still connected and its ports not closed: the sandbox is still there.
  bool alive() const {
    return link->agent && link->agent->connected() && !(link->ports && link->ports->closed()) &&
           !(link->act && link->act->paused.load(std::memory_order_relaxed));
  }
  const actors::exposure* find(uint16_t port) const {
    auto it = exposures.find(port);
    return it == exposures.end() ? nullptr : it->second.get();
  }
};
using local_link_ptr = std::shared_ptr<const local_link>;

struct port_proxy::impl : std::enable_shared_from_this<port_proxy::impl> {
  std::shared_ptr<actors::node_api> node;
  options opts;
  std::shared_ptr<pool> idle;
  std::shared_ptr<const port_upstream_env> env;

  // Links by sandbox id, one cache per thread slot (like the metrics): the I/O threads look up
  // without sharing a lock. A miss asks the node and fills the asking thread's cache.
  struct alignas(64) link_cache {
    std::mutex mu;
    std::unordered_map<std::string, local_link_ptr> links;
  };
  static constexpr size_t link_caches = 16;
  std::array<link_cache, link_caches> caches;
  link_cache& my_cache() { return caches[thread_slot() % link_caches]; }

  // The sandbox's link if it is cached and alive; null otherwise.
  local_link_ptr cached_link(const std::string& id);
  // After a cache miss: asks the node, caches the answer for the calling thread, then `then`.
  void fetch_link(const std::string& id, std::function<void(expected<local_link_ptr>)> then);
  void serve(const exchange_ptr& ex, port_target t, local_link_ptr ll);
};

namespace {

enum class body_kind { none, length, chunked };  // of a request, as it goes to the sandbox

std::string request_head(const http_request& r, const port_target& t, const actors::sandbox_link& link,
                         const actors::exposure* exp, const std::string& scheme, body_kind body, bool upgrade);

// One proxied request (and, after a 101, its tunnel).
class relay : public upstream_user, public response_sink, public std::enable_shared_from_this<relay> {
 public:
  exchange_ptr ex;
  port_target tgt;
  local_link_ptr ll;                      // keeps the link, and so `exp` and the activity, alive
  const actors::exposure* exp = nullptr;  // null: the port has no exposure (kept alive by ll)
  std::shared_ptr<port_proxy::impl> proxy;  // one reference for its pool, env and options
  std::string head;  // the serialized request head for the sandbox; moved out by the first write
  body_kind body = body_kind::none;
  bool head_request = false;
  bool upgrade = false;

  void start() {
    busy_.emplace(*link().act);
    if (auto c = counters()) {
      c->requests.fetch_add(1, std::memory_order_relaxed);
      c->open_connections.fetch_add(1, std::memory_order_relaxed);
    }
    request_done_ = body == body_kind::none;
    std::shared_ptr<upstream> u = upgrade ? nullptr : proxy->idle->take(key());
    connect(std::move(u));
    if (body != body_kind::none && !finished_.load()) pump_body();
  }

  // --- upstream callbacks ---
  void on_up_data(std::string_view d) override {
    got_bytes_ = true;
    if (auto c = counters()) c->bytes_out.fetch_add(d.size(), std::memory_order_relaxed);
    if (tunnel_) return tunnel_to_client(std::string(d));
    feed(d);
  }

  void on_up_eof() override {
    up_eof_ = true;
    if (tunnel_) {
      if (auto r = raw()) r->shutdown_write();
      return;
    }
    if (response_done_) return;
    if (parser_ && parser_->got_some()) {
      boost::beast::error_code ec;
      parser_->put_eof(ec);  // completes a close-delimited body; an error if cut short
      if (response_done_) return maybe_finish();
    }
    upstream_failed(make_error(errc::bad_gateway, "closed the connection before the response ended"));
  }

  void on_up_close(const status& st) override {
    if (tunnel_) return end_tunnel();
    if (response_done_) return;
    if (st) return upstream_failed(make_error(errc::bad_gateway, "closed the connection before the response ended"));
    upstream_failed(st.err());
  }

  // --- response_sink (upstream callbacks, inside put) ---
  void on_head() override {
    if (parser_->status / 100 == 1 && parser_->status != 101) return;  // 100/103: skipped in feed()
    if (parser_->status == 101 && upgrade) return start_tunnel();
    if (small_and_sized()) {
      whole_ = true;  // sent whole once complete (see feed)
      reusable_ = parser_->keep_alive();
      whole_body_.reserve(*parser_->content_length());
      return;
    }
    start_response();
  }
  void on_body(std::string_view d) override {
    if (whole_) whole_body_.append(d);
    else to_client(std::string(d));
  }
  void on_done() override {
    if (parser_->status / 100 == 1) return;
    if (whole_) whole_response();  // ready before response_done_ lets the other strand send it
    response_done_ = true;
  }

 private:
  const actors::sandbox_link& link() const { return *ll->link; }
  actors::port_counters* counters() const { return exp ? exp->counters.get() : nullptr; }
  // Pooled per event loop: a connection is reused on the thread it lives on.
  const std::string& key() {
    if (key_.empty()) {  // "<id>:<port>@<loop address in hex>"
      char num[24];
      key_.reserve(tgt.sandbox_id.size() + 2 + 2 * sizeof num);
      key_ += tgt.sandbox_id;
      key_ += ':';
      key_.append(num, std::to_chars(num, num + sizeof num, tgt.port).ptr);
      key_ += '@';
      key_.append(num, std::to_chars(num, num + sizeof num, reinterpret_cast<uintptr_t>(ex->io()), 16).ptr);
    }
    return key_;
  }
  error gone() const { return make_error(errc::bad_gateway, "sandbox " + tgt.sandbox_id + " went away during the request"); }

  std::shared_ptr<upstream> up() {
    std::lock_guard lk(mu_);
    return up_;
  }
  std::shared_ptr<raw_conn> raw() {
    std::lock_guard lk(mu_);
    return raw_;
  }

  // Everything the upstream's callbacks touch is in place before a new connection starts:
  // they may fire on another thread at once (a refused connect, a sandbox going away).
  void connect(std::shared_ptr<upstream> pooled) {
    auto u = pooled ? pooled : upstream::make(*proxy->env, link(), tgt.port, key(), proxy->idle);
    if (!u) {
      finished_.store(true);
      ex->respond(error_response(gone()));
      return release(false);
    }
    reused_ = u->reused;
    got_bytes_ = false;
    up_eof_ = false;
    {
      std::lock_guard lk(mu_);
      up_ = u;
    }
    u->attach(shared_from_this());
    if (head.empty())  // a retry: the first attempt took the head
      head = request_head(ex->request(), tgt, link(), exp, proxy->opts.urls.scheme, body, upgrade);
    if (auto c = counters()) c->bytes_in.fetch_add(head.size(), std::memory_order_relaxed);
    u->ps->write(std::move(head));
    head.clear();  // moved-from: empty, so a retry rebuilds it
    if (!pooled) u->ps->start(ex->io());
  }

  // Client body → sandbox, one chunk at a time: the next is read when the previous left.
  void pump_body() {
    auto self = shared_from_this();
    ex->read_body_chunk([self](expected<std::string> chunk) {
      if (self->finished_.load()) return;
      auto u = self->up();
      if (!chunk) return self->fail_client();
      if (chunk->empty()) {
        auto complete = [self](status) {
          self->request_done_ = true;
          self->maybe_finish();
        };
        if (self->body == body_kind::chunked) u->ps->write("0\r\n\r\n", complete);
        else complete(ok());
        return;
      }
      if (auto c = self->counters()) c->bytes_in.fetch_add(chunk->size(), std::memory_order_relaxed);
      if (self->body == body_kind::chunked) {
        char hdr[24];
        int n = std::snprintf(hdr, sizeof hdr, "%zx\r\n", chunk->size());
        u->ps->write(std::string(hdr, n));
        chunk->append("\r\n");
      }
      u->ps->write(std::move(*chunk), [self](status st) {
        if (!st || self->response_done_) return;  // the sandbox answered early or went away
        self->pump_body();
      });
    });
  }

  void feed(std::string_view d) {
    if (!parser_) parser_.emplace(*this, head_request);
    std::string_view in = d;
    if (!carry_.empty()) {
      carry_.append(d);
      in = carry_;
    }
    size_t used = 0;
    while (used < in.size() && !response_done_ && !tunnel_ && !finished_.load()) {
      boost::beast::error_code ec;
      auto n = parser_->put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
      used += n;
      if (ec == http::error::need_more) break;
      if (ec) return upstream_failed(make_error(errc::bad_gateway, "sent a malformed response: " + ec.message()));
      if (parser_->is_done() && parser_->status / 100 == 1 && parser_->status != 101) {
        parser_.emplace(*this, head_request);  // an interim response (100, 103): the real one follows
        continue;
      }
    }
    std::string rest(in.substr(used));
    if (tunnel_) {
      if (!rest.empty()) tunnel_to_client(std::move(rest));
      carry_.clear();
      return;
    }
    carry_ = std::move(rest);
    if (whole_ && !response_done_ && !finished_.load()) {  // not complete in this read: stream it
      whole_ = false;
      start_response();
      to_client(std::move(whole_body_));
      whole_body_.clear();
    }
    if (response_done_) {
      if (!carry_.empty()) reusable_ = false;  // bytes past the response: not a clean connection
      maybe_finish();
    }
  }

  std::vector<std::pair<std::string, std::string>> client_headers(bool keep_upgrade) {
    std::vector<std::string> listed;  // fields named in Connection (lower-case)
    for (auto& [k, v] : parser_->fields)
      if (ascii_iequals(k, "connection"))
        for (auto& t : tokens(v)) listed.push_back(t);
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [k, v] : parser_->fields) {
      if (keep_upgrade && (ascii_iequals(k, "upgrade") || ascii_iequals(k, "connection"))) {
        out.emplace_back(k, v);
        continue;
      }
      if (hop_by_hop(k) || ascii_iequals(k, "content-length") || ascii_iequals(k, "content-type") ||
          ascii_iequals(k, "server"))
        continue;
      if (std::any_of(listed.begin(), listed.end(), [&k = k](auto& l) { return ascii_iequals(k, l); })) continue;
      out.emplace_back(k, v);
    }
    return out;
  }

  // A small response with a declared length: if it arrives complete in one read (the usual
  // case), it goes to the client as one whole response — one write, no stream set-up. Nothing is
  // held across reads: what is still incomplete after a read is streamed as usual.
  bool small_and_sized() {
    auto& p = *parser_;
    return !head_request && p.status != 204 && p.status != 304 && !p.chunked() && p.content_length() &&
           *p.content_length() <= whole_max;
  }

  // The response's Content-Type ("" if none; the last one if repeated).
  std::string_view content_type() const {
    std::string_view ctype;
    for (auto& [k, v] : parser_->fields)
      if (ascii_iequals(k, "content-type")) ctype = v;
    return ctype;
  }

  void whole_response() {
    // Aggregate-initialized: no default content type built only to be replaced.
    whole_resp_.emplace(
        http_response{parser_->status, std::string(content_type()), std::move(whole_body_), client_headers(false)});
  }

  void start_response() {
    auto& p = *parser_;
    std::string ctype(content_type());
    stream_options so;
    auto hdrs = client_headers(false);
    so.no_body = head_request || p.status == 204 || p.status == 304;
    bool sse = ctype.rfind("text/event-stream", 0) == 0;
    if (so.no_body) {
      // HEAD keeps the length the sandbox announced.
      for (auto& [k, v] : p.fields)
        if (ascii_iequals(k, "content-length") && head_request) hdrs.emplace_back(k, v);
    } else if (!p.chunked() && p.content_length()) {
      so.content_length = *p.content_length();
    }
    // Event streams and close-delimited bodies may sit idle for long: watch the client so a
    // departure is noticed (that costs the keep-alive). Everything else stays keep-alive.
    bool delimited_by_close = !so.no_body && !so.content_length && !p.chunked();
    so.watch_client = sse || delimited_by_close;
    so.keep_alive = !so.watch_client;
    reusable_ = p.keep_alive() && !delimited_by_close;
    response_started_ = true;
    auto self = shared_from_this();
    ex->start_stream(p.status, ctype, std::move(hdrs), [self] { self->client_gone(); }, so);
  }

  void to_client(std::string d) {
    if (d.empty()) return;
    auto n = d.size();
    if (unsent_.fetch_add(n) + n > pause_above && !paused_.exchange(true))
      if (auto u = up()) u->ps->pause_output();
    auto self = shared_from_this();
    ex->write(std::move(d), [self, n](bool) { self->written(n); });
  }

  void written(size_t n) {
    if (unsent_.fetch_sub(n) - n < resume_below && paused_.exchange(false))
      if (auto u = up()) u->ps->resume_output();
  }

  // Called on either strand; the first caller that sees the response complete ends it. A
  // sandbox that answered before the whole request body arrived keeps no pooled connection.
  void maybe_finish() {
    if (!response_done_) return;
    if (finished_.exchange(true)) return;
    if (whole_) {
      response_started_ = true;
      ex->respond(std::move(*whole_resp_));
    } else {
      ex->end();
    }
    release(reusable_ && request_done_ && !up_eof_);
  }

  // The upstream failed: retry a request that never reached it on a fresh connection, or answer
  // 502 if nothing was sent to the client yet, or cut the client connection.
  void upstream_failed(const error& e) {
    if (finished_.load()) return;
    auto old = up();
    if (old) old->kill();
    if (reused_ && !got_bytes_ && body == body_kind::none && !response_started_) {
      parser_.reset();
      carry_.clear();
      return connect(nullptr);  // a pooled connection the server had closed meanwhile
    }
    if (finished_.exchange(true)) return;
    if (!response_started_) {
      error out = e;
      if (e.code == errc::bad_gateway && !got_bytes_ && e.message.find("connection refused") != std::string::npos)
        out = not_listening(tgt);
      else if (link().ports && link().ports->closed())
        out = gone();
      else if (e.code == errc::bad_gateway)
        out = make_error(errc::bad_gateway, "the server on port " + std::to_string(tgt.port) + " in sandbox " +
                                                tgt.sandbox_id + " " + e.message);
      ex->respond(error_response(out));
    } else {
      ex->abort();  // a half-sent response must not look complete
    }
    release(false);
  }

  void fail_client() {
    if (finished_.exchange(true)) return;
    ex->abort();
    release(false);
  }

  void client_gone() {
    if (finished_.exchange(true)) return;
    release(false);
  }

  void release(bool reuse) {
    std::shared_ptr<upstream> u;
    {
      std::lock_guard lk(mu_);
      u = std::move(up_);
    }
    if (u) {
      u->detach();
      if (reuse && !u->is_dead() && u->worth_keeping()) {
        if (paused_.load()) u->ps->resume_output();
        proxy->idle->put(u);
      } else {
        u->kill();
      }
    }
    if (auto c = counters()) c->open_connections.fetch_sub(1, std::memory_order_relaxed);
    busy_.reset();
  }

  // --- upgrades: after the sandbox's 101, raw bytes both ways ---
  void start_tunnel() {
    tunnel_ = true;
    auto& p = *parser_;
    std::string h = "HTTP/1.1 101 " + (p.reason.empty() ? std::string("Switching Protocols") : p.reason) + "\r\n";
    for (auto& [k, v] : client_headers(true)) h += k + ": " + v + "\r\n";
    h += "\r\n";
    response_started_ = true;
    auto self = shared_from_this();
    if (auto u = up()) u->ps->pause_output();  // until the client connection is ours
    ex->hijack(std::move(h), [self](std::shared_ptr<raw_conn> r) {
      std::string pending;
      {
        std::lock_guard lk(self->mu_);
        self->raw_ = r;
        pending = std::move(self->pending_);
      }
      if (!pending.empty()) self->tunnel_to_client(std::move(pending));
      if (auto u = self->up()) u->ps->resume_output();
      self->tunnel_from_client();
    });
  }

  void tunnel_to_client(std::string d) {
    auto r = raw();
    if (!r) {
      std::lock_guard lk(mu_);
      pending_ += d;
      return;
    }
    auto n = d.size();
    if (unsent_.fetch_add(n) + n > pause_above && !paused_.exchange(true))
      if (auto u = up()) u->ps->pause_output();
    auto self = shared_from_this();
    r->write(std::move(d), [self, n](bool ok) {
      self->written(n);
      if (!ok) self->end_tunnel();
    });
  }

  void tunnel_from_client() {
    auto self = shared_from_this();
    auto r = raw();
    if (!r) return;
    r->read([self](expected<std::string> d) {
      auto u = self->up();
      if (!u) return;
      if (!d) return self->end_tunnel();
      if (d->empty()) return u->ps->shutdown_write();
      if (auto c = self->counters()) c->bytes_in.fetch_add(d->size(), std::memory_order_relaxed);
      u->ps->write(std::move(*d), [self](status st) {
        if (!st) return self->end_tunnel();
        self->tunnel_from_client();
      });
    });
  }

  void end_tunnel() {
    if (finished_.exchange(true)) return;
    if (auto r = raw()) r->close();
    release(false);
  }

  std::mutex mu_;
  std::shared_ptr<upstream> up_;
  std::shared_ptr<raw_conn> raw_;
  std::string pending_;  // sandbox bytes after the 101, before the client connection is ours
  std::optional<actors::local_stream_guard> busy_;
  std::optional<response_parser> parser_;  // upstream callbacks only
  std::string carry_;                      // upstream callbacks only: bytes the parser has not taken
  bool whole_ = false;                     // upstream callbacks only: collecting a small response
  std::string whole_body_;
  std::string key_;  // the pool key, see key()
  std::optional<http_response> whole_resp_;
  bool tunnel_ = false, response_started_ = false;
  std::atomic<bool> response_done_{false}, request_done_{false}, up_eof_{false}, reusable_{false};
  bool reused_ = false, got_bytes_ = false;
  std::atomic<bool> finished_{false};
  std::atomic<size_t> unsent_{0};
  std::atomic<bool> paused_{false};
};

// The token a request presents for an exposure: Bearer or the browser_url cookie.
std::string presented_token(const http_request& r, uint16_t port) {
  auto a = trim(r.header("authorization"));
  if (a.size() > 7 && ascii_iequals(a.substr(0, 7), "bearer ")) return std::string(trim(a.substr(7)));
  auto name = exposure_cookie_name(port);
  for (auto& [k, v] : r.headers) {
    if (k != "cookie"sv) continue;
    std::string_view s = v;
    while (!s.empty()) {
      auto sc = s.find(';');
      auto kv = trim(s.substr(0, sc));
      auto eq = kv.find('=');
      if (eq != std::string_view::npos && kv.substr(0, eq) == name) return std::string(kv.substr(eq + 1));
      if (sc == std::string_view::npos) break;
      s.remove_prefix(sc + 1);
    }
  }
  return {};
}

// The Cookie header without the exposure's own cookie ("" if nothing is left).
std::string cookie_without(std::string_view v, const std::string& name) {
  std::string out;
  while (!v.empty()) {
    auto sc = v.find(';');
    auto kv = trim(v.substr(0, sc));
    auto eq = kv.find('=');
    if (!kv.empty() && !(eq != std::string_view::npos && kv.substr(0, eq) == name)) {
      if (!out.empty()) out += "; ";
      out += kv;
    }
    if (sc == std::string_view::npos) break;
    v.remove_prefix(sc + 1);
  }
  return out;
}

// The request head the sandbox sees (RFC 9110 §7.6: hop-by-hop fields dropped, forwarding
// fields added, Warren credentials removed).
std::string request_head(const http_request& r, const port_target& t, const actors::sandbox_link& link,
                         const actors::exposure* exp, const std::string& scheme, body_kind body, bool upgrade) {
  // Built by appending into one string: this runs for every proxied request.
  std::vector<std::string> listed;  // fields named in Connection: hop-by-hop too
  for (auto& [k, v] : r.headers)
    if (k == "connection"sv)
      for (auto& tk : tokens(v)) listed.push_back(tk);
  auto host = r.header("host");
  std::string h;
  size_t need = r.method.size() + t.target.size() + host.size() * 2 + r.remote_addr.size() * 2 + 160;
  for (auto& [k, v] : r.headers) need += k.size() + v.size() + 4;
  h.reserve(need);
  auto line = [&h](std::string_view k, std::string_view v) {
    h.append(k);
    h += ": "sv;
    h.append(v);
    h += "\r\n"sv;
  };
  h += r.method;
  h += ' ';
  h += t.target;
  h += " HTTP/1.1\r\n"sv;
  if (!link.mask_request_host.empty()) {
    auto masked = link.mask_request_host;
    for (size_t p; (p = masked.find("${PORT}")) != std::string::npos;) masked.replace(p, 7, std::to_string(t.port));
    line("host", masked);
  } else {
    line("host", host);
  }
  std::string xff;
  for (auto& [k, v] : r.headers) {
    if (hop_by_hop(k) || k == "host"sv || k == "content-length"sv || k == "expect"sv || k == "x-forwarded-host"sv ||
        k == "x-forwarded-proto"sv || k == "x-real-ip"sv)
      continue;
    if (!listed.empty() && std::find(listed.begin(), listed.end(), k) != listed.end()) continue;
    if (k == "x-forwarded-for"sv) {
      if (!xff.empty()) xff += ", ";
      xff += v;
      continue;
    }
    if (k == "authorization"sv) {
      auto a = trim(v);
      if (a.size() > 7 && ascii_iequals(a.substr(0, 7), "bearer ")) {
        auto tok = trim(a.substr(7));
        if (tok.rfind("wrn_live_", 0) == 0) continue;               // a Warren API key
        if (exp && exp->auth && exp->accepts(tok)) continue;         // this port's token
      }
    }
    if (k == "cookie"sv) {
      auto rest = cookie_without(v, exposure_cookie_name(t.port));
      if (!rest.empty()) line("cookie", rest);
      continue;
    }
    line(k, v);
  }
  if (!r.remote_addr.empty()) {
    h += "x-forwarded-for: "sv;
    if (!xff.empty()) {
      h += xff;
      h += ", "sv;
    }
    h += r.remote_addr;
    h += "\r\n"sv;
    line("x-real-ip", r.remote_addr);
  } else if (!xff.empty()) {
    line("x-forwarded-for", xff);
  }
  line("x-forwarded-host", host);
  line("x-forwarded-proto", r.tls ? std::string_view("https") : std::string_view(scheme));
  if (body == body_kind::length) line("content-length", r.header("content-length"));
  if (body == body_kind::chunked) h += "transfer-encoding: chunked\r\n"sv;
  if (upgrade) {
    h += "connection: upgrade\r\n"sv;
    line("upgrade", r.header("upgrade"));
  }
  h += "\r\n"sv;
  return h;
}

bool wants_upgrade(const http_request& r) {
  if (r.header("upgrade").empty()) return false;
  for (auto& [k, v] : r.headers)
    if (k == "connection"sv)
      for (auto& t : tokens(v))
        if (t == "upgrade"sv) return true;
  return false;
}

body_kind body_of(const http_request& r) {
  for (auto& [k, v] : r.headers)
    if (k == "transfer-encoding"sv) return body_kind::chunked;
  auto cl = r.header("content-length");
  if (!cl.empty() && cl != "0") return body_kind::length;
  return body_kind::none;
}

// GET <prefix>/__warren/auth?token=...&next=/path: the browser_url. Sets the cookie, 302 to next.
void bootstrap_auth(const exchange_ptr& ex, const port_target& t, const actors::exposure& e,
                    const std::string& scheme) {
  auto& q = ex->request().query;
  auto tok = q.count("token") ? q.at("token") : std::string();
  auto next = q.count("next") ? q.at("next") : std::string("/");
  if (!is_local_redirect(next))
    return ex->respond(error_response(make_error(
        errc::bad_request, "\"next\" must be a path on this host (starting with a single \"/\")")));
  if (!e.accepts(tok))
    return ex->respond(error_response(make_error(errc::unauthorized, "this link's token is not valid (any more)")));
  bool secure = ex->request().tls || scheme == "https";
  auto path = t.prefix.empty() ? std::string("/") : t.prefix + "/";
  http_response r;
  r.status = 302;
  r.content_type.clear();
  r.headers.emplace_back("Location", t.prefix + next);
  r.headers.emplace_back("Set-Cookie", exposure_cookie_name(t.port) + "=" + tok + "; Path=" + path +
                                           "; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : ""));
  r.headers.emplace_back("Cache-Control", "no-store");
  ex->respond(std::move(r));
}

}  // namespace

local_link_ptr port_proxy::impl::cached_link(const std::string& id) {
  auto& c = my_cache();
  std::lock_guard lk(c.mu);  // held for the lookup only: never while serving
  auto it = c.links.find(id);
  if (it == c.links.end()) return nullptr;
  auto& ll = it->second;
  if (!ll->alive()) {
    c.links.erase(it);
    return nullptr;
  }
  if (!ll->current()) ll = local_link::make(ll->link);  // exposed, changed or unexposed meanwhile
  return ll;
}

void port_proxy::impl::fetch_link(const std::string& id, std::function<void(expected<local_link_ptr>)> then) {
  auto self = shared_from_this();
  node->port_link(id, [self, id, &cache = my_cache(), then = std::move(then)](expected<actors::sandbox_link_ptr> r) {
    if (!r) return then(r.err());
    auto ll = local_link::make(std::move(*r));
    {
      std::lock_guard lk(cache.mu);
      if (cache.links.size() > 256)  // bounded: forget the links of sandboxes that are gone
        std::erase_if(cache.links, [](auto& kv) { return !kv.second->alive(); });
      cache.links[id] = ll;
    }
    then(std::move(ll));
  });
}

void port_proxy::impl::serve(const exchange_ptr& ex, port_target t, local_link_ptr ll) {
  auto& req = ex->request();
  const actors::sandbox_link& link = *ll->link;
  const actors::exposure* exp = ll->find(t.port);
  if (exp && exp->auth) {
    auto q = t.target.find('?');
    if (std::string_view(t.target).substr(0, q) == auth_bootstrap_path) return bootstrap_auth(ex, t, *exp, opts.urls.scheme);
    if (!exp->accepts(presented_token(req, t.port)))
      return ex->respond(error_response(make_error(
          errc::unauthorized, "port " + std::to_string(t.port) + " of sandbox " + t.sandbox_id +
                                  " needs its exposure token: Authorization: Bearer <token>, or open its browser_url")));
  }
  auto r = std::make_shared<relay>();
  r->ex = ex;
  r->exp = exp;
  r->proxy = shared_from_this();
  r->upgrade = wants_upgrade(req);
  r->body = r->upgrade ? body_kind::none : body_of(req);
  r->head_request = req.method == "HEAD";
  r->head = request_head(req, t, link, exp, opts.urls.scheme, r->body, r->upgrade);
  r->ll = std::move(ll);
  r->tgt = std::move(t);
  r->start();
}

port_proxy::port_proxy(std::shared_ptr<actors::node_api> node, options opts) : impl_(std::make_shared<impl>()) {
  impl_->node = std::move(node);
  impl_->opts = std::move(opts);
  impl_->idle = std::make_shared<pool>(impl_->opts.idle_per_port, impl_->opts.idle_timeout);
  auto env = std::make_shared<port_upstream_env>();
  env->routes = std::make_shared<direct_routes>();
  env->loopback_via_agent = impl_->opts.loopback_via_agent;
  impl_->env = std::move(env);
}

port_proxy::~port_proxy() = default;

const public_urls& port_proxy::urls() const { return impl_->opts.urls; }

bool port_proxy::handle(const exchange_ptr& ex) {
  auto& req = ex->request();
  auto host = req.header("host");
  if (host.empty()) return false;
  auto routed = route_port_host(host, req.target, impl_->opts.urls.domain);
  if (!routed) return false;
  ex->set_route("(port proxy)");
  ex->set_quiet();
  if (!*routed) {
    ex->respond(error_response(routed->err()));
    return true;
  }
  forward(ex, std::move(**routed));
  return true;
}

void port_proxy::forward(const exchange_ptr& ex, port_target t) {
  ex->set_route("(port proxy)");
  ex->set_quiet();
  if (auto l = impl_->cached_link(t.sandbox_id)) {  // the common case: no callback to allocate
    impl_->serve(ex, std::move(t), std::move(l));
    return;
  }
  auto self = impl_;
  auto id = t.sandbox_id;
  impl_->fetch_link(id, [self, ex, t = std::move(t)](expected<local_link_ptr> l) mutable {
    if (!l) return ex->respond(error_response(l.err()));
    self->serve(ex, std::move(t), *l);
  });
}

}  // namespace warren::net
