// cmd/warren/serve.cpp — `warren serve`: assembles one node (data dir, secret, RocksDB, keys,
// drivers, actor system, node actor, front door), runs it, and shuts it down cleanly on
// SIGTERM/SIGINT. The single place where a daemon is put together.
#include "cmd/warren/serve.hpp"

#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "actors/node.hpp"
#include "actors/node_api.hpp"
#include "cmd/warren/config.hpp"
#include "core/ids.hpp"
#include "net/api.hpp"
#include "net/auth/api_keys.hpp"
#include "net/egress/service.hpp"
#include "net/auth/key_registry.hpp"
#include "net/server.hpp"
#include "storage/image_store.hpp"
#include "storage/meta_store.hpp"
#include "vmm/jail/jail_driver.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace warren::cmd {
namespace fs = std::filesystem;

namespace {

// Writes `content` to `path` with mode 0600, atomically (temp file + rename).
status write_private_file(const fs::path& path, const std::string& content) {
  auto tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::internal, "cannot create " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(errc::internal, "cannot write " + path.string() + ": " + std::strerror(errno));
  return warren::ok();
}

expected<std::string> load_or_create_secret(const fs::path& dir) {
  auto p = dir / "cluster.secret";
  std::ifstream in(p);
  std::string s;
  if (in && std::getline(in, s) && s.size() >= 32) return s;
  s = random_hex(32);
  if (auto st = write_private_file(p, s + "\n"); !st) return st.err();
  return s;
}

// On first start: an admin key, written to <data-dir>/admin.key (0600).
status ensure_admin_key(const fs::path& dir, storage::meta_store& store, auth::key_registry& keys) {
  auto p = dir / "admin.key";
  if (fs::exists(p)) return warren::ok();
  storage::key_record rec{random_hex(8), "admin", true, now_rfc3339(), false, ""};
  auto key = auth::mint_key(keys.secret(), keys.region(), rec.key_id);
  if (!key) return make_error(errc::bad_request, "region must match [a-z0-9]+");
  if (auto st = store.put_record(storage::family::keys, rec); !st) return st;
  keys.upsert(rec);
  return write_private_file(p, *key + "\n");
}

status load_keys(storage::meta_store& store, auth::key_registry& keys) {
  auto all = store.scan(storage::family::keys);
  if (!all) return all.err();
  for (auto& [id, raw] : *all) {
    auto rec = storage::decode<storage::key_record>(raw);
    if (!rec) {
      spdlog::error("skipping key record {}: {}", id, rec.err().message);
      continue;
    }
    keys.upsert(*rec);
  }
  return warren::ok();
}

// The agent and the jail's setup helper sit next to the warren binary (build/bin/, or the
// install prefix).
std::string sibling_binary(const char* name) {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / name).string();
}

bool split_listen(const std::string& l, std::string& host, uint16_t& port) {
  auto c = l.rfind(':');
  if (c == std::string::npos) return false;
  host = l.substr(0, c);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    auto p = std::stoul(l.substr(c + 1));
    if (p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

}  // namespace

// The host's resolvers, loopback ones included (the egress services ask them from the host).
std::vector<std::string> resolv_conf_nameservers() {
  std::vector<std::string> out;
  std::ifstream f("/etc/resolv.conf");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string key, addr;
    if (ls >> key >> addr && key == "nameserver") out.push_back(addr);
  }
  return out;
}

int serve_main(std::vector<std::string> args) {
  // Large transient buffers (a 16 MiB exec output and its JSON, file chunks) go straight to mmap
  // and back to the kernel when freed. glibc's default threshold adapts upwards after the first
  // large free, after which such buffers stay in the heap arenas and the daemon's RSS depends
  // on allocation history rather than on what it holds.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  warren_config cfg;
  if (auto err = cfg.load(args); !err.empty()) {
    std::cerr << "warren serve: " << err << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed) return 0;
  std::string host;
  uint16_t port = 0;
  if (!split_listen(cfg.listen, host, port)) {
    std::cerr << "warren serve: --listen must be HOST:PORT, got \"" << cfg.listen << "\"\n";
    return 2;
  }
  fs::path dir = cfg.data_dir;
  std::error_code ec;
  fs::create_directories(dir / "meta", ec);
  ::chmod(dir.c_str(), 0700);
  if (ec) {
    std::cerr << "warren serve: cannot create data dir " << dir << ": " << ec.message() << "\n";
    return 1;
  }

  auto secret = load_or_create_secret(dir);
  if (!secret) return std::cerr << "warren serve: " << secret.err().message << "\n", 1;
  auto opened = storage::meta_store::open((dir / "meta").string());
  if (!opened) return std::cerr << "warren serve: " << opened.err().message << "\n", 1;
  std::shared_ptr<storage::meta_store> store = std::move(*opened);
  auth::key_registry keys(*secret, cfg.region);
  if (auto st = load_keys(*store, keys); !st) return std::cerr << st.err().message << "\n", 1;
  if (auto st = ensure_admin_key(dir, *store, keys); !st) return std::cerr << st.err().message << "\n", 1;

  // Agent connections run on their own I/O thread: their callbacks never wait on HTTP clients.
  boost::asio::io_context agent_io;
  auto agent_work = boost::asio::make_work_guard(agent_io);
  std::thread agent_thread([&agent_io] { agent_io.run(); });

  // The egress services first: the firewall rules name their ports.
  net::egress::service_options eo;
  eo.dir = (dir / "egress").string();
  eo.dns_upstream = cfg.egress_dns.empty() ? resolv_conf_nameservers() : cfg.egress_dns;
  eo.upstream_ca_file = cfg.egress_upstream_ca;
  eo.proxy_port = cfg.egress_proxy_port;
  eo.dns_port = cfg.egress_dns_port;
  auto egress = net::egress::service::start(eo);
  if (!egress) return std::cerr << "warren serve: " << egress.err().message << "\n", 1;

  vmm::jail_config jc;
  jc.data_dir = dir.string();
  jc.egress_proxy_port = (*egress)->proxy_port();
  jc.egress_dns_port = (*egress)->dns_port();
  jc.agent_path = sibling_binary("warren-agent");
  jc.helper_path = sibling_binary("warren-jail-init");
  std::shared_ptr<vmm::driver> jail = vmm::make_jail_driver(jc);
  (*egress)->set_firewall_counts([jail] { return jail->egress_refusal_counts(); });
  auto images = std::make_shared<storage::image_store>(dir.string());

  int rc = 0;
  {
    caf::actor_system sys{cfg};
    auto stats = std::make_shared<net::metrics>();
    // The dispatcher is set before run(): no request is read until the I/O threads start.
    std::shared_ptr<net::api> rest;
    net::server_options so;
    so.host = host;
    so.port = port;
    so.tls_cert = cfg.tls_cert;
    so.tls_key = cfg.tls_key;
    so.max_header_bytes = cfg.max_header_bytes;
    so.io_threads = static_cast<int>(cfg.io_threads);
    so.drain_timeout = std::chrono::milliseconds(cfg.drain_timeout_ms);
    so.idle_timeout = std::chrono::seconds(std::max<size_t>(1, cfg.idle_timeout_s));
    net::server srv(so, [&rest](net::exchange_ptr ex) { rest->dispatch(ex); }, stats);
    auto bound = srv.start();

    actors::node_settings ns;
    ns.node_id = cfg.node_id;
    ns.address = host + ":" + std::to_string(bound ? *bound : port);
    ns.data_dir = dir.string();
    ns.store = store;
    ns.keys = &keys;
    ns.drivers["jail"] = jail;
    ns.images = images;
    ns.agent_io = &agent_io;
    ns.egress = *egress;
    auto node = actors::spawn_node(sys, std::move(ns));
    auto node_api = std::make_shared<actors::node_api>(sys, &node);
    net::public_urls urls;
    urls.domain = cfg.public_domain.empty() ? "localhost:" + std::to_string(bound ? *bound : port) : cfg.public_domain;
    urls.scheme = !cfg.public_scheme.empty() ? cfg.public_scheme : cfg.tls_cert.empty() ? "http" : "https";
    rest = std::make_shared<net::api>(node_api, keys, stats,
                                      net::api::options{cfg.default_image, cfg.max_body_bytes, urls,
                                                        cfg.proxy_loopback == "agent", dir.string(), cfg.auto_pull,
                                                        /* admin_web_dir: next to the binary */ "", *egress});
    if (!bound) {
      std::cerr << "warren serve: " << bound.err().message << "\n";
      rc = 1;
    } else {
      std::string scheme = cfg.tls_cert.empty() ? "http" : "https";
      std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
      std::cout << "warren: listening on " << scheme << "://" << shown << ":" << *bound << "\n"
                << "warren: admin key in " << (dir / "admin.key").string() << "\n"
                << "warren: data dir " << dir.string() << std::endl;
      srv.run();
      spdlog::info("front door closed; stopping actors");
    }
    // The API (and its port proxy's pooled upstream sockets, which live on the front door's
    // event loops) goes before the server that owns those loops.
    rest.reset();
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  }  // the actor system waits for its actors here
  (*egress)->stop();
  agent_work.reset();
  agent_io.stop();
  agent_thread.join();
  store.reset();  // RocksDB closes cleanly
  spdlog::info("stopped");
  return rc;
}

}  // namespace warren::cmd
