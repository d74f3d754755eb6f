// actors/sandbox.cpp — the sandbox actor's state machine. Driver calls block, so they run on
// detached workers (actors/blocking.hpp); everything else is message handling.
#include "actors/sandbox.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <future>
#include <set>

#include "actors/blocking.hpp"
#include "actors/caf_error.hpp"
#include "actors/live_actors.hpp"
#include "core/ids.hpp"
#include "vmm/agent/client.hpp"

namespace warren::actors {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto tick_interval = std::chrono::seconds(2);
constexpr auto agent_connect_timeout = std::chrono::seconds(15);

struct booted {
  vmm::instance inst;
  std::shared_ptr<agent::client> agent;
};

}  // namespace
}  // namespace warren::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<warren::actors::booted>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<warren::vmm::usage>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<warren::ok_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<warren::vmm::driver::saved_state>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::job_result<std::string>)

namespace warren::actors {
namespace {

struct sandbox_state {
  live_counter<actor_kind::sandbox> counted;
  storage::sandbox_record rec;
  sandbox_env env;
  std::optional<vmm::instance> inst;
  std::shared_ptr<agent::client> agent;
  std::shared_ptr<const owned_fd> netns;  // opened once it runs (driver::open_netns); null: none
  std::shared_ptr<activity> act = std::make_shared<activity>();
  // Requests that arrived while creating; run once the boot settles (nullptr = it succeeded).
  std::vector<std::function<void(const error*)>> waiting;
  clock_type::time_point started = clock_type::now();
  std::string started_at = now_rfc3339();  // of this actor (a re-adopted sandbox is older)
  int64_t started_ns = activity::now_ns();
  uint64_t last_cpu_ns = 0;
  bool destroying = false;
  std::string op;  // "hibernate" | "resume" | "save" while one runs; one at a time
  std::vector<std::function<void(expected<std::string>)>> resume_waiters;  // all get the one resume
  sandbox_ports ports;  // exposures and their port-forward actors
  std::set<caf::actor_addr> shells;  // linked shell actors
  static inline const char* name = "sandbox";
};

using self_ptr = sandbox_actor::stateful_pointer<sandbox_state>;
using done_fn = std::function<void(expected<std::string>)>;

bool hibernated(self_ptr self) { return self->state.rec.state == "hibernated"; }

vmm::sandbox_spec spec_of(const storage::sandbox_record& r, const sandbox_env& env) {
  const std::string& rootfs = env.image_rootfs;
  vmm::sandbox_spec s;
  s.id = r.id;
  s.image = r.image;
  s.image_rootfs = rootfs;
  s.vcpus = r.vcpus;
  s.mem_mib = r.mem_mib;
  s.disk_mib = r.disk_mib;
  s.network_profile = r.network_profile;
  s.env = r.env;
  if (env.egress) s.egress = env.egress->rules_for(r);
  else s.egress.profile = r.network_profile;
  return s;
}

// The firewall's refusals and the egress services' in one answer, newest first.
std::string merge_refusals(const std::string& a, const std::string& b) {
  nlohmann::json out = {{"count", 0}, {"recent", nlohmann::json::array()}};
  for (auto* text : {&a, &b}) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) continue;
    out["count"] = out["count"].get<uint64_t>() + j.value("count", uint64_t(0));
    for (auto& r : j.value("recent", nlohmann::json::array())) out["recent"].push_back(r);
  }
  auto& rec = out["recent"];
  std::stable_sort(rec.begin(), rec.end(), [](auto& x, auto& y) { return x.value("at", "") > y.value("at", ""); });
  if (rec.size() > 32) rec.erase(rec.begin() + 32, rec.end());
  return out.dump();
}

// Waits for an agent call from a worker thread.
template <class T, class Start>
expected<T> agent_call(Start start) {
  auto p = std::make_shared<std::promise<expected<T>>>();
  auto f = p->get_future();
  start([p](expected<T> r) { p->set_value(std::move(r)); });
  if (f.wait_for(agent_connect_timeout) != std::future_status::ready)
    return make_error(errc::timeout, "the sandbox's agent did not answer");
  return f.get();
}

// A sandbox with credentials trusts the node's egress CA (which terminates TLS to the hosts its
// secrets are bound to): its own file, and appended to the system bundle its env points at.
status install_egress_ca(agent::client& cl, const std::string& pem) {
  const std::string dir = "/etc/ssl/certs", bundle = dir + "/ca-certificates.crt";
  auto made = agent_call<ok_t>([&](auto done) {
    cl.mkdir(dir, 0755, [done](status s) { done(s ? expected<ok_t>(ok_t{}) : expected<ok_t>(s.err())); });
  });
  (void)made;  // it may exist already
  auto old = std::make_shared<std::string>();
  auto read = agent_call<uint64_t>([&](auto done) {
    cl.read_file(bundle, {[old](std::string_view d) { old->append(d); }, done});
  });
  if (!read && read.err().code != errc::not_found) return read.err();
  auto write = [&](const std::string& path, const std::string& text) -> status {
    auto w = agent_call<uint64_t>([&](auto done) {
      auto fw = cl.write_file(path, agent::write_options{0644, "", std::nullopt}, done);
      fw->write(text);
      fw->finish();
    });
    if (!w) return w.err();
    return ok();
  };
  if (auto s = write(dir + "/warren-egress-ca.pem", pem); !s) return s;
  if (old->find(pem) != std::string::npos) return ok();
  if (!old->empty() && old->back() != '\n') *old += "\n";
  return write(bundle, *old + pem);
}

// Connects to the agent from a worker thread (the client itself is asynchronous).
expected<std::shared_ptr<agent::client>> connect_agent(boost::asio::io_context& io, const std::string& path) {
  auto p = std::make_shared<std::promise<expected<std::shared_ptr<agent::client>>>>();
  auto f = p->get_future();
  agent::client::connect(io, path, [p](expected<std::shared_ptr<agent::client>> r) { p->set_value(std::move(r)); });
  if (f.wait_for(agent_connect_timeout) != std::future_status::ready)
    return make_error(errc::unavailable, "the sandbox's agent did not answer at " + path);
  return f.get();
}

status persist(self_ptr self) {
  auto st = self->state.env.store->put_record(storage::family::sandboxes, self->state.rec);
  if (!st) spdlog::error("sandbox {}: cannot write its record: {}", self->state.rec.id, st.err().message);
  return st;
}

void settle_waiters(self_ptr self, const error* e) {
  auto waiting = std::move(self->state.waiting);
  self->state.waiting.clear();
  for (auto& w : waiting) w(e);
}

void schedule_tick(self_ptr self) { self->delayed_send(self, tick_interval, tick_atom::value); }

void on_booted(self_ptr self, start_mode mode, expected<booted> r) {
  auto& st = self->state;
  if (!r) {
    auto e = r.err();
    if (mode != start_mode::adopt) {
      spdlog::warn("sandbox {}: {} failed: {}", st.rec.id, mode == start_mode::create ? "create" : "restore", e.message);
      st.env.store->erase(storage::family::sandboxes, st.rec.id);
    } else {
      spdlog::warn("sandbox {}: not re-adopted ({}); marking it lost", st.rec.id, e.message);
      auto driver = st.env.driver;
      auto id = st.rec.id, ds = st.rec.driver_state;
      run_blocking<ok_t>(self, [driver, id, ds]() -> expected<ok_t> { driver->cleanup(id, ds); return ok_t{}; },
                         [](expected<ok_t>) {});
      st.rec.state = "lost";
      persist(self);
    }
    settle_waiters(self, &e);
    self->quit();
    return;
  }
  st.inst = r->inst;
  st.agent = r->agent;
  if (int fd = st.env.driver->open_netns(*st.inst); fd >= 0) st.netns = std::make_shared<const owned_fd>(fd);
  if (hibernated(self)) st.act->paused = true;
  else st.rec.state = "running";
  st.rec.agent_socket = r->inst.agent_socket;
  st.rec.driver_state = r->inst.driver_state;
  if (st.env.egress) st.env.egress->attach(st.rec, *st.inst, st.env.driver);
  if (mode != start_mode::adopt)
    st.rec.create_ms = std::chrono::duration<double, std::milli>(clock_type::now() - st.started).count();
  if (auto ps = persist(self); !ps) {
    auto e = ps.err();
    settle_waiters(self, &e);
    return;
  }
  spdlog::info("sandbox {}: {} ({} in {:.1f} ms)", st.rec.id, st.rec.state,
               mode == start_mode::create ? "created" : mode == start_mode::restore ? "restored" : "re-adopted",
               st.rec.create_ms);
  settle_waiters(self, nullptr);
  schedule_tick(self);
}

void boot(self_ptr self, start_mode mode) {
  auto& st = self->state;
  auto spec = spec_of(st.rec, st.env);
  auto driver = st.env.driver;
  auto* io = st.env.agent_io;
  auto ds = st.rec.driver_state;
  auto rdir = st.env.restore_dir, rmeta = st.env.restore_meta;
  // A hibernated sandbox's agent is frozen: it is connected to when the sandbox resumes.
  bool frozen = hibernated(self);
  std::string ca = st.rec.credentials.empty() || !st.env.egress ? "" : st.env.egress->ca_pem();
  run_blocking<booted>(
      self,
      [spec, driver, io, ds, mode, rdir, rmeta, frozen, ca]() -> expected<booted> {
        auto inst = mode == start_mode::create    ? driver->create(spec)
                    : mode == start_mode::restore ? driver->restore(spec, rdir, rmeta)
                                                  : driver->adopt(spec, ds);
        if (!inst) return inst.err();
        if (frozen) return booted{*inst, nullptr};
        auto cl = connect_agent(*io, inst->agent_socket);
        if (cl && !ca.empty() && mode != start_mode::adopt)
          if (auto s = install_egress_ca(**cl, ca); !s) {
            driver->destroy(*inst);
            return make_error(s.err().code, "sandbox " + spec.id + " step install the egress CA: " + s.err().message);
          }
        if (!cl) {
          if (mode != start_mode::adopt) driver->destroy(*inst);
          return cl.err();
        }
        return booted{*inst, *cl};
      },
      [self, mode](expected<booted> r) { on_booted(self, mode, std::move(r)); });
}

expected<sandbox_link_ptr> make_link(self_ptr self) {
  auto& st = self->state;
  if (hibernated(self))
    return make_error(errc::conflict, "sandbox " + st.rec.id + " is hibernated; resume it first");
  if (!st.agent || !st.agent->connected())
    return make_error(errc::unavailable, "sandbox " + st.rec.id + " has lost its agent connection");
  st.act->touch();
  return std::make_shared<sandbox_link>(sandbox_link{
      st.rec.id, st.agent, st.rec.timeout, st.act, st.ports.table,
      st.rec.mask_request_host.is_string() ? st.rec.mask_request_host.get<std::string>() : "",
      st.inst ? st.inst->net_addr : std::string(), st.netns});
}

uint64_t uptime_ms(self_ptr self) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   clock_type::now() - self->state.started).count());
}

// Tears the sandbox down; `done` gets the DestroyStats JSON or the error.
void teardown(self_ptr self, std::function<void(expected<std::string>)> done) {
  auto& st = self->state;
  // A DELETE racing another: the sandbox is going away, answer like a second DELETE (404).
  if (st.destroying) return done(make_error(errc::not_found, "sandbox " + st.rec.id + " is already being destroyed"));
  st.destroying = true;
  st.rec.state = "destroying";
  persist(self);
  st.ports.close();  // revokes every exposure token before the sandbox goes
  if (st.env.egress) st.env.egress->detach(st.rec.id);
  if (st.agent) st.agent->close();
  st.agent.reset();
  auto driver = st.env.driver;
  auto inst = *st.inst;
  auto up = uptime_ms(self);
  run_blocking<vmm::usage>(self, [driver, inst] { return driver->destroy(inst); },
                           [self, done, up](expected<vmm::usage> u) {
                             auto& st = self->state;
                             if (!u) {
                               spdlog::error("sandbox {}: destroy failed: {}", st.rec.id, u.err().message);
                               done(u.err());
                               self->quit();
                               return;
                             }
                             st.env.store->erase(storage::family::sandboxes, st.rec.id);
                             spdlog::info("sandbox {}: destroyed", st.rec.id);
                             done(destroy_stats_json(*u, up));
                             self->quit();
                           });
}

// Why the sandbox cannot start `what` now, if it cannot.
std::optional<error> busy(self_ptr self, const std::string& what) {
  auto& st = self->state;
  if (st.destroying) return make_error(errc::not_found, "sandbox " + st.rec.id + " is being destroyed");
  if (!st.inst) return make_error(errc::conflict, "sandbox " + st.rec.id + " is still being created");
  if (!st.op.empty())
    return make_error(errc::conflict, "sandbox " + st.rec.id + " cannot " + what + " during its " + st.op);
  return std::nullopt;
}

// Freezes every process where it stands; the record says "hibernated" before the reply.
void hibernate(self_ptr self, done_fn done) {
  auto& st = self->state;
  if (auto e = busy(self, "hibernate")) return done(*e);
  if (hibernated(self)) return done(make_error(errc::conflict, "sandbox " + st.rec.id + " is already hibernated"));
  st.op = "hibernate";
  auto driver = st.env.driver;
  auto inst = *st.inst;
  run_blocking<ok_t>(self, [driver, inst] { return driver->freeze(inst); },
                     [self, done](expected<ok_t> r) {
                       auto& st = self->state;
                       st.op.clear();
                       if (st.destroying) return done(make_error(errc::not_found, "sandbox " + st.rec.id + " was destroyed"));
                       if (!r) return done(r.err());
                       st.act->paused = true;  // cached port-proxy links go stale
                       st.rec.state = "hibernated";
                       st.rec.hibernated_at = now_rfc3339();
                       if (auto p = persist(self); !p) return done(p.err());
                       spdlog::info("sandbox {}: hibernated", st.rec.id);
                       done(storage::encode(st.rec));
                     });
}

// Thaws it and (after a daemon restart) connects to its agent. Concurrent resumes share one.
void resume(self_ptr self, done_fn done) {
  auto& st = self->state;
  if (st.op == "resume") return st.resume_waiters.push_back(std::move(done));
  if (auto e = busy(self, "resume")) return done(*e);
  if (!hibernated(self)) return done(make_error(errc::conflict, "sandbox " + st.rec.id + " is " + st.rec.state + ", not hibernated"));
  st.op = "resume";
  st.resume_waiters.push_back(std::move(done));
  auto driver = st.env.driver;
  auto inst = *st.inst;
  auto* io = st.env.agent_io;
  bool need_agent = !st.agent || !st.agent->connected();
  run_blocking<booted>(
      self,
      [driver, inst, io, need_agent]() -> expected<booted> {
        if (auto t = driver->thaw(inst); !t) return t.err();
        if (!need_agent) return booted{inst, nullptr};
        auto cl = connect_agent(*io, inst.agent_socket);
        if (!cl) return cl.err();
        return booted{inst, *cl};
      },
      [self](expected<booted> r) {
        auto& st = self->state;
        st.op.clear();
        auto waiters = std::move(st.resume_waiters);
        st.resume_waiters.clear();
        expected<std::string> out = make_error(errc::not_found, "sandbox " + st.rec.id + " was destroyed");
        if (!st.destroying) {
          if (!r) {
            out = r.err();
          } else {
            if (r->agent) st.agent = r->agent;
            st.act->paused = false;
            st.act->touch();
            st.rec.state = "running";
            st.rec.hibernated_at.clear();
            if (auto p = persist(self); !p) out = p.err();
            else out = storage::encode(st.rec);
            spdlog::info("sandbox {}: resumed", st.rec.id);
          }
        }
        for (auto& w : waiters) w(out);
      });
}

// Closes the agent connection and opens a new one (an admin action: a stuck connection, or to
// end every stream at once). Links handed out before see the old one closed and ask again.
void reconnect(self_ptr self, done_fn done) {
  auto& st = self->state;
  if (auto e = busy(self, "reconnect its agent")) return done(*e);
  if (hibernated(self))
    return done(make_error(errc::conflict, "sandbox " + st.rec.id + " is hibernated; resume it first"));
  st.op = "reconnect";
  if (st.agent) st.agent->close();
  st.agent.reset();
  auto* io = st.env.agent_io;
  auto path = st.inst->agent_socket;
  run_blocking<booted>(
      self,
      [io, path, inst = *st.inst]() -> expected<booted> {
        auto cl = connect_agent(*io, path);
        if (!cl) return cl.err();
        return booted{inst, *cl};
      },
      [self, done](expected<booted> r) {
        auto& st = self->state;
        st.op.clear();
        if (st.destroying) return done(make_error(errc::not_found, "sandbox " + st.rec.id + " was destroyed"));
        if (!r) return done(r.err());
        st.agent = r->agent;
        spdlog::info("sandbox {}: agent connection reopened", st.rec.id);
        done(storage::encode(st.rec));
      });
}

// Runs `fn` now, or once a boot in progress (create, restore, re-adoption) has settled.
void after_boot(self_ptr self, std::function<void(const error*)> fn) {
  auto& st = self->state;
  if (!st.inst && !st.destroying) return st.waiting.push_back(std::move(fn));
  fn(nullptr);
}

// Adapts a done_fn to a response promise.
template <class T>
done_fn deliver_to(caf::typed_response_promise<T> rp) {
  return [rp](expected<std::string> r) mutable {
    if (r) rp.deliver(std::move(*r));
    else rp.deliver(to_caf(r.err()));
  };
}

// Runs `op` (hibernate, resume, reconnect) once a boot in progress has settled; its answer is
// the reply.
caf::result<std::string> after_boot_run(self_ptr self, void (*op)(self_ptr, done_fn)) {
  auto rp = self->make_response_promise<std::string>();
  after_boot(self, [self, rp, op](const error* e) mutable {
    if (e) return rp.deliver(to_caf(*e)), void();
    op(self, deliver_to(rp));
  });
  return rp;
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  if (st.destroying || !st.inst) return;
  if (hibernated(self) || !st.op.empty()) return schedule_tick(self);  // a frozen sandbox is not idle
  auto now = activity::now_ns();
  if (st.act->busy()) st.act->touch();
  if (auto u = st.env.driver->stats(*st.inst)) {
    // A sandbox whose processes use CPU is busy, not idle (long agent jobs must survive).
    if (u->cpu_usage_ns > st.last_cpu_ns + 5'000'000 && st.last_cpu_ns != 0) st.act->touch();
    st.last_cpu_ns = u->cpu_usage_ns;
  }
  auto idle_s = (now - st.act->last_ns.load()) / 1'000'000'000;
  bool idle = st.rec.sandbox_timeout > 0 && idle_s >= st.rec.sandbox_timeout;
  bool ended = !st.rec.end_at.empty() && now_ns_since_epoch() >= ns_from_rfc3339(st.rec.end_at);
  if (idle || ended) {
    bool hib = st.rec.on_idle == "hibernate";
    if (ended)
      spdlog::info("sandbox {}: lifetime ended at {}; {}", st.rec.id, st.rec.end_at, hib ? "hibernating" : "destroying");
    else
      spdlog::info("sandbox {}: idle for {} s (sandbox_timeout {}); {}", st.rec.id, idle_s, st.rec.sandbox_timeout,
                   hib ? "hibernating" : "destroying");
    if (hib) {
      hibernate(self, [](expected<std::string>) {});
      return schedule_tick(self);
    }
    teardown(self, [](expected<std::string>) {});
    return;
  }
  schedule_tick(self);
}

template <class T>
caf::result<T> to_result(expected<T> r) {
  if (r) return std::move(*r);
  return to_caf(r.err());
}

// Runs `fn` (→ expected<T>) now if running, after the boot if creating, or fails with why not.
template <class T, class Fn>
caf::result<T> when_running(self_ptr self, Fn fn) {
  auto& st = self->state;
  if (st.destroying) return to_caf(make_error(errc::not_found, "sandbox " + st.rec.id + " is being destroyed"));
  if (st.inst) return to_result<T>(fn());
  auto rp = self->template make_response_promise<T>();
  st.waiting.push_back([rp, fn](const error* e) mutable {
    if (e) return rp.deliver(to_caf(*e)), void();
    expected<T> r = fn();
    if (r) rp.deliver(std::move(*r));
    else rp.deliver(to_caf(r.err()));
  });
  return rp;
}

// Its admin tree entry (actors/admin_tree.hpp): the sandbox with its counters, and under it its
// port-forward and shell actors and its terminal sessions.
caf::result<std::string> tree(self_ptr self) {
  auto& st = self->state;
  auto j = tree_entry("sandbox", st.rec.id, st.destroying ? "destroying" : st.rec.state, st.started_at,
                      st.started_ns, static_cast<int64_t>(self->mailbox().size()));
  j["tenant"] = st.rec.tenant;
  j["image"] = st.rec.image;
  j["isolation"] = st.rec.isolation;
  j["created_at"] = st.rec.created_at;
  if (!st.op.empty()) j["op"] = st.op;
  auto& a = *st.act;
  nlohmann::json c = {{"execs", a.execs.load()},
                      {"bytes_in", a.bytes_in.load()},
                      {"bytes_out", a.bytes_out.load()},
                      {"open_streams", a.open_streams.sum()},
                      {"idle_s", (activity::now_ns() - a.last_ns.load()) / 1'000'000'000},
                      {"cpu_ms", nullptr},
                      {"mem_current_bytes", nullptr},
                      {"mem_peak_bytes", nullptr}};
  if (st.inst && !st.destroying)
    if (auto u = st.env.driver->stats(*st.inst)) {  // cgroup files: quick reads, as on_tick does
      c["cpu_ms"] = u->cpu_usage_ns / 1'000'000;
      c["mem_current_bytes"] = u->mem_current_bytes;
      c["mem_peak_bytes"] = u->mem_peak_bytes;
    }
  j["counters"] = std::move(c);
  std::vector<shell_actor> shells;
  for (auto& addr : st.shells)
    if (auto h = caf::actor_cast<shell_actor>(addr)) shells.push_back(h);
  auto rp = self->make_response_promise<std::string>();
  gather_then(self, st.ports.actors(), [self, rp, j, shells](nlohmann::json ports) mutable {
    // Proxied traffic counts as the sandbox's bytes too.
    for (auto& p : ports) {
      j["counters"]["bytes_in"] = j["counters"]["bytes_in"].get<uint64_t>() + p["counters"].value("bytes_in", uint64_t{0});
      j["counters"]["bytes_out"] = j["counters"]["bytes_out"].get<uint64_t>() + p["counters"].value("bytes_out", uint64_t{0});
    }
    gather_then(self, shells, [self, rp, j, ports](nlohmann::json sh) mutable {
      auto& kids = j["children"];
      for (auto& p : ports) kids.push_back(std::move(p));
      for (auto& x : sh) kids.push_back(std::move(x));
      for (auto& t : stream_sessions(self->state.rec.id))
        if (t->kind == "terminal") kids.push_back(session_entry(*t, -1));
      rp.deliver(j.dump());
    }, tree_atom::value);
  }, tree_atom::value);
  return rp;
}

}  // namespace

std::string destroy_stats_json(const vmm::usage& u, uint64_t uptime) {
  return nlohmann::json{{"cpu_ms", u.cpu_ms},
                        {"mem_peak_bytes", u.mem_peak_bytes},
                        {"disk_used_bytes", u.disk_used_bytes},
                        {"uptime_ms", uptime}}
      .dump();
}

sandbox_actor spawn_sandbox(caf::actor_system& sys, storage::sandbox_record rec, sandbox_env env,
                            start_mode mode) {
  auto fn = [](self_ptr self, storage::sandbox_record rec, sandbox_env env,
               start_mode mode) -> sandbox_actor::behavior_type {
    self->state.rec = std::move(rec);
    self->state.env = std::move(env);
    self->state.ports.restore(self, self->state.rec);
    // Shells are linked children: one that fails must not take the sandbox's actor with it.
    self->set_exit_handler([self](caf::exit_msg& m) {
      if (self->state.shells.erase(m.source)) {
        if (m.reason) spdlog::warn("sandbox {}: a shell ended: {}", self->state.rec.id, caf::to_string(m.reason));
        return;
      }
      self->quit(m.reason);
    });
    boot(self, mode);
    return {
        [self](get_atom) -> std::string {
          self->state.act->touch();
          return storage::encode(self->state.rec);
        },
        [self](ready_atom) -> caf::result<std::string> {
          return when_running<std::string>(self, [self]() -> expected<std::string> {
            return storage::encode(self->state.rec);
          });
        },
        [self](link_atom) -> caf::result<sandbox_link_ptr> {
          return when_running<sandbox_link_ptr>(self, [self] { return make_link(self); });
        },
        [self](link_atom, bool wake) -> caf::result<sandbox_link_ptr> {
          if (!(wake && hibernated(self) && self->state.rec.auto_resume))
            return when_running<sandbox_link_ptr>(self, [self] { return make_link(self); });
          auto rp = self->make_response_promise<sandbox_link_ptr>();
          after_boot(self, [self, rp](const error* e) mutable {
            if (e) return rp.deliver(to_caf(*e)), void();
            resume(self, [self, rp](expected<std::string> r) mutable {
              if (!r) return rp.deliver(to_caf(r.err())), void();
              auto l = make_link(self);
              if (l) rp.deliver(*l);
              else rp.deliver(to_caf(l.err()));
            });
          });
          return rp;
        },
        [self](hibernate_atom) -> caf::result<std::string> { return after_boot_run(self, hibernate); },
        [self](resume_atom) -> caf::result<std::string> { return after_boot_run(self, resume); },
        [self](reconnect_atom) -> caf::result<std::string> { return after_boot_run(self, reconnect); },
        [self](usage_atom) -> caf::result<std::string> {
          auto& st = self->state;
          if (st.destroying || !st.inst)
            return to_caf(make_error(errc::conflict, "sandbox " + st.rec.id + " is not running"));
          auto u = st.env.driver->stats(*st.inst);
          if (!u) return to_caf(u.err());
          return nlohmann::json{{"cpu_ns", u->cpu_usage_ns},       {"mem_bytes", u->mem_current_bytes},
                                {"mem_peak_bytes", u->mem_peak_bytes}, {"disk_used_bytes", u->disk_used_bytes},
                                {"vcpus", st.rec.vcpus},              {"mem_mib", st.rec.mem_mib},
                                {"disk_mib", st.rec.disk_mib}}
              .dump();
        },
        [self](network_atom, const std::string& body) -> caf::result<std::string> {
          auto& st = self->state;
          if (auto e = busy(self, "change its network")) return to_caf(*e);
          auto j = nlohmann::json::parse(body, nullptr, false);
          if (!j.is_object()) return to_caf(make_error(errc::bad_request, "network change is not a JSON object"));
          auto next = st.rec;
          next.network_profile = j.value("network_profile", next.network_profile);
          if (j.contains("allow")) next.allow = j["allow"].get<std::vector<std::string>>();
          if (j.contains("deny")) next.deny = j["deny"].get<std::vector<std::string>>();
          auto driver = st.env.driver;
          auto inst = *st.inst;
          auto rules = spec_of(next, st.env).egress;
          auto rp = self->make_response_promise<std::string>();
          st.op = "network change";
          run_blocking<ok_t>(self, [driver, inst, rules] { return driver->set_egress(inst, rules); },
                             [self, rp, next](expected<ok_t> r) mutable {
                               auto& st = self->state;
                               st.op.clear();
                               if (st.destroying) return rp.deliver(to_caf(make_error(errc::not_found, "sandbox " + st.rec.id + " was destroyed"))), void();
                               if (!r) return rp.deliver(to_caf(r.err())), void();
                               auto before = st.rec;
                               st.rec.network_profile = next.network_profile;
                               st.rec.allow = next.allow;
                               st.rec.deny = next.deny;
                               if (auto p = persist(self); !p) {
                                 st.rec = before;
                                 return rp.deliver(to_caf(p.err())), void();
                               }
                               if (st.env.egress) st.env.egress->attach(st.rec, *st.inst, st.env.driver);
                               spdlog::info("sandbox {}: network is now {} (allow {}, deny {})", st.rec.id,
                                            st.rec.network_profile, st.rec.allow.size(), st.rec.deny.size());
                               rp.deliver(storage::encode(st.rec));
                             });
          return rp;
        },
        [self](refused_atom) -> caf::result<std::string> {
          auto& st = self->state;
          if (st.destroying || !st.inst) return to_caf(make_error(errc::conflict, "sandbox " + st.rec.id + " is not running"));
          auto driver = st.env.driver;
          auto inst = *st.inst;
          auto hooks = st.env.egress;
          auto rp = self->make_response_promise<std::string>();
          run_blocking<std::string>(self, [driver, inst] { return driver->egress_refusals(inst); },
                                    [rp, hooks, id = st.rec.id](expected<std::string> fw) mutable {
                                      rp.deliver(merge_refusals(fw ? *fw : "", hooks ? hooks->refusals(id) : ""));
                                    });
          return rp;
        },
        [self](deadline_atom, const std::string& end_at) -> caf::result<std::string> {
          auto& st = self->state;
          if (st.destroying)
            return to_caf(make_error(errc::not_found, "sandbox " + st.rec.id + " is being destroyed"));
          if (!end_at.empty() && ns_from_rfc3339(end_at) < 0)
            return to_caf(make_error(errc::bad_request, "end_at is not an RFC 3339 UTC time: " + end_at));
          auto before = st.rec.end_at;
          st.rec.end_at = end_at;
          if (auto p = persist(self); !p) {
            st.rec.end_at = before;
            return to_caf(p.err());
          }
          return storage::encode(st.rec);
        },
        [self](save_atom, const std::string& dir) -> caf::result<std::string, uint64_t, std::string> {
          auto& st = self->state;
          if (auto e = busy(self, "save its state")) return to_caf(*e);
          if (hibernated(self))
            return to_caf(make_error(errc::conflict, "sandbox " + st.rec.id + " is hibernated; resume it first"));
          st.op = "save";
          auto driver = st.env.driver;
          auto inst = *st.inst;
          auto rp = self->make_response_promise<std::string, uint64_t, std::string>();
          run_blocking<vmm::driver::saved_state>(
              self, [driver, inst, dir] { return driver->save(inst, dir); },
              [self, rp](expected<vmm::driver::saved_state> r) mutable {
                self->state.op.clear();
                if (!r) return rp.deliver(to_caf(r.err())), void();
                rp.deliver(std::move(r->meta), r->size_bytes, storage::encode(self->state.rec));
              });
          return rp;
        },
        [self](shell_atom) -> caf::result<shell_lease_ptr> {
          auto rp = self->make_response_promise<shell_lease_ptr>();
          auto start = [self, rp](const error* e) mutable {
            if (e) return rp.deliver(to_caf(*e)), void();
            auto link = make_link(self);
            if (!link) return rp.deliver(to_caf(link.err())), void();
            auto sh = spawn_shell(self, *link, self->state.env.agent_io);
            self->state.shells.insert(sh.address());
            self->request(sh, caf::infinite, open_atom::value)
                .then([rp](shell_lease_ptr& l) mutable { rp.deliver(l); },
                      [rp](caf::error& err) mutable { rp.deliver(err); });
          };
          if (self->state.destroying)
            return to_caf(make_error(errc::not_found, "sandbox " + self->state.rec.id + " is being destroyed"));
          if (self->state.inst) start(nullptr);
          else self->state.waiting.push_back(start);
          return rp;
        },
        [self](destroy_atom) -> caf::result<std::string> {
          auto rp = self->make_response_promise<std::string>();
          auto run = [self, rp](const error* e) mutable {
            if (e) return rp.deliver(to_caf(*e)), void();
            teardown(self, [rp](expected<std::string> r) mutable {
              if (r) rp.deliver(*r);
              else rp.deliver(to_caf(r.err()));
            });
          };
          if (self->state.inst || self->state.destroying) run(nullptr);
          else self->state.waiting.push_back(run);
          return rp;
        },
        [self](expose_atom, uint16_t port, bool auth) -> caf::result<std::string> {
          auto& st = self->state;
          if (st.destroying) return to_caf(make_error(errc::not_found, "sandbox " + st.rec.id + " is being destroyed"));
          auto r = st.ports.expose(self, st.rec, port, auth, [self] { return persist(self); });
          if (!r) return to_caf(r.err());
          return nlohmann::json{{"port", r->port}, {"auth", r->auth},
                                {"token", r->auth ? nlohmann::json(r->token) : nlohmann::json(nullptr)},
                                {"created_at", r->created_at}}
              .dump();
        },
        [self](exposures_atom) -> caf::result<std::string> {
          return gather_json(self, self->state.ports.actors(), pf_stats_atom::value);
        },
        [self](unexpose_atom, uint16_t port) -> caf::result<bool> {
          return to_result<bool>(self->state.ports.remove(self->state.rec, port, [self] { return persist(self); }));
        },
        [self](tick_atom) { on_tick(self); },
        [self](tree_atom) -> caf::result<std::string> { return tree(self); },
    };
  };
  return sys.spawn(fn, std::move(rec), std::move(env), mode);
}

}  // namespace warren::actors
