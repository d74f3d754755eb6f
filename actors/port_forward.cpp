// actors/port_forward.cpp — port-forward actors and the exposures of a sandbox. Tokens come
// from the CSPRNG and are kept only as SHA-256; a check is constant-time.
#include "actors/port_forward.hpp"

#include <caf/all.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "actors/sandbox_link.hpp"
#include "core/ids.hpp"

namespace warren::actors {
namespace {

std::atomic<int64_t> live_port_forwards{0};

struct port_forward_state {
  std::string sandbox_id;
  int64_t started_ns = activity::now_ns();
  std::shared_ptr<const exposure> exp;
  port_forward_state() { ++live_port_forwards; }
  ~port_forward_state() { --live_port_forwards; }
  static inline const char* name = "port_forward";
};

using pf_self = port_forward_actor::stateful_pointer<port_forward_state>;

port_forward_actor::behavior_type port_forward(pf_self self, caf::actor_addr parent, std::string sandbox_id,
                                               std::shared_ptr<const exposure> exp) {
  self->state.sandbox_id = std::move(sandbox_id);
  self->state.exp = std::move(exp);
  // Watches its sandbox actor (not a link: removing one exposure must not touch the sandbox).
  // Whenever the sandbox actor ends, also normally after a destroy, so does this one.
  self->monitor(parent);
  self->set_down_handler([self](caf::down_msg& m) { self->quit(m.reason); });
  return {
      [self](pf_stats_atom) -> std::string {
        auto& e = *self->state.exp;
        auto& c = *e.counters;
        return nlohmann::json{{"sandbox", self->state.sandbox_id},
                              {"port", e.port},
                              {"auth", e.auth},
                              {"created_at", e.created_at},
                              {"requests", c.requests.load()},
                              {"bytes_in", c.bytes_in.load()},
                              {"bytes_out", c.bytes_out.load()},
                              {"open_connections", c.open_connections.load()}}
            .dump();
      },
      [self](tree_atom) -> std::string {
        auto& e = *self->state.exp;
        auto& c = *e.counters;
        auto j = tree_entry("port_forward", self->state.sandbox_id + ":" + std::to_string(e.port),
                            e.auth ? "exposed (auth)" : "exposed", e.created_at, self->state.started_ns,
                            static_cast<int64_t>(self->mailbox().size()));
        j["sandbox"] = self->state.sandbox_id;
        j["port"] = e.port;
        j["counters"] = {{"requests", c.requests.load()}, {"bytes_in", c.bytes_in.load()},
                         {"bytes_out", c.bytes_out.load()}, {"open_connections", c.open_connections.load()}};
        return j.dump();
      },
  };
}

std::shared_ptr<const exposure> exposure_of(const storage::exposure_record& r) {
  auto e = std::make_shared<exposure>();
  e->port = r.port;
  e->auth = r.auth;
  e->token_sha256 = r.token_sha256;
  e->created_at = r.created_at;
  return e;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

bool exposure::accepts(std::string_view token) const {
  if (!auth) return true;
  if (token.empty() || token_sha256.empty()) return false;
  return secret_equal(sha256_hex(token), token_sha256);
}

int64_t port_forward_count() { return live_port_forwards.load(); }

void sandbox_ports::start(caf::local_actor* self, const std::string& sandbox_id,
                          const storage::exposure_record& r) {
  auto e = exposure_of(r);
  table->put(e);
  if (auto old = actors_.find(r.port); old != actors_.end())
    caf::anon_send_exit(old->second, caf::exit_reason::user_shutdown);
  actors_[r.port] = self->spawn(port_forward, self->address(), sandbox_id, e);
}

void sandbox_ports::restore(caf::local_actor* self, const storage::sandbox_record& rec) {
  // public: false — the sandbox-wide token guards every port without an exposure of its own
  // (port 0 of the table: the proxy falls back to it; no port-forward actor).
  if (!rec.traffic_token_sha256.empty()) {
    auto e = std::make_shared<exposure>();
    e->port = 0;
    e->auth = true;
    e->token_sha256 = rec.traffic_token_sha256;
    e->created_at = rec.created_at;
    table->put(std::move(e));
  }
  for (auto& r : rec.exposures) start(self, rec.id, r);
}

expected<exposed> sandbox_ports::expose(caf::local_actor* self, storage::sandbox_record& rec, uint16_t port,
                                        bool auth, const persist_fn& persist) {
  if (port == 0) return make_error(errc::bad_request, "field \"port\" must be 1..65535");
  exposed out{port, auth, auth ? random_hex(24) : std::string(), now_rfc3339()};
  storage::exposure_record r{port, auth, auth ? sha256_hex(out.token) : std::string(), out.created_at};
  auto before = rec.exposures;
  std::erase_if(rec.exposures, [port](const storage::exposure_record& x) { return x.port == port; });
  rec.exposures.push_back(r);
  if (auto st = persist(); !st) {
    rec.exposures = std::move(before);
    return st.err();
  }
  start(self, rec.id, r);  // replaces an older exposure of the port: its token stops working now
  return out;
}

expected<bool> sandbox_ports::remove(storage::sandbox_record& rec, uint16_t port, const persist_fn& persist) {
  auto it = actors_.find(port);
  if (it == actors_.end()) return false;
  auto before = rec.exposures;
  std::erase_if(rec.exposures, [port](const storage::exposure_record& x) { return x.port == port; });
  if (auto st = persist(); !st) {
    rec.exposures = std::move(before);
    return st.err();
  }
  table->erase(port);
  caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
  actors_.erase(it);
  return true;
}

void sandbox_ports::close() {
  table->close();
  for (auto& [port, a] : actors_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  actors_.clear();
}

std::vector<port_forward_actor> sandbox_ports::actors() const {
  std::vector<port_forward_actor> out;
  for (auto& [port, a] : actors_) out.push_back(a);
  return out;
}

}  // namespace warren::actors
