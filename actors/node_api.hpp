// actors/node_api.hpp — the face of the node actor that net/ calls. No CAF type appears here,
// so the front door's translation units never include CAF. Every call returns at once; the
// reply callback runs later on a CAF worker thread and must not block (post to your executor).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "actors/sandbox_link.hpp"
#include "actors/shell_lease.hpp"
#include "core/error.hpp"

namespace caf { class actor_system; }

namespace warren::actors {

template <class T>
using reply_fn = std::function<void(expected<T>)>;

// Who asks, for the tenancy check every sandbox call makes.
struct principal {
  std::string tenant;
  bool admin = false;
};

struct minted_key {
  std::string key_id, key, created_at;
};

class node_api {
 public:
  // `node` must be a node_actor handle (type-erased here to keep CAF out of this header).
  node_api(caf::actor_system& sys, const void* node_handle);
  ~node_api();

  void info(reply_fn<std::string> reply) const;
  void mint_key(std::string tenant, bool admin, reply_fn<minted_key> reply) const;
  void revoke_key(std::string key_id, reply_fn<bool> reply) const;
  void actor_tree(reply_fn<std::string> reply) const;
  void actor_counts(reply_fn<std::string> reply) const;
  // Calls `on_tree` with the supervision tree (as actor_tree answers it) now and then every
  // `every_ms` after each answer, until the returned handle is dropped or the node stops.
  // Calls come one at a time, from CAF worker threads.
  std::shared_ptr<void> watch_tree(int every_ms, std::function<void(std::string)> on_tree) const;

  // Sandboxes. Records travel as storage::encode text; another tenant's id is not_found.
  void create_sandbox(std::string encoded_record, reply_fn<std::string> reply) const;
  void list_sandboxes(principal who, reply_fn<std::string> reply) const;
  void get_sandbox(std::string id, principal who, reply_fn<std::string> reply) const;
  void sandbox_link(std::string id, principal who, reply_fn<sandbox_link_ptr> reply) const;
  void destroy_sandbox(std::string id, principal who, reply_fn<std::string> reply) const;
  // A shell session (its own actor under the sandbox's); the lease ends it when dropped.
  void open_shell(std::string id, principal who, reply_fn<shell_lease_ptr> reply) const;

  // Public URLs (API.md "Public URLs for sandbox ports"). The proxy's link skips the tenancy
  // check on purpose: there the 16-hex id is the credential. It answers not_found for an
  // unknown id and conflict for a sandbox that is not running, nothing more.
  void port_link(std::string id, reply_fn<sandbox_link_ptr> reply) const;
  void expose(std::string id, principal who, uint16_t port, bool auth, reply_fn<std::string> reply) const;
  void exposures(std::string id, principal who, reply_fn<std::string> reply) const;
  void unexpose(std::string id, principal who, uint16_t port, reply_fn<bool> reply) const;
  void port_stats(reply_fn<std::string> reply) const;

  // Snapshots (API.md "Fork", "Hibernate / resume", "Named snapshots"). Records as encode text;
  // fork answers a JSON array of the children's records.
  void hibernate(std::string id, principal who, reply_fn<std::string> reply) const;
  void resume(std::string id, principal who, reply_fn<std::string> reply) const;
  // Closes the sandbox's agent connection and opens a new one (admin console); the record.
  void reconnect_agent(std::string id, principal who, reply_fn<std::string> reply) const;
  // The end of the sandbox's lifetime (RFC 3339; "" = none), see sandbox_actor's deadline_atom.
  // Images (API.md "Images"): the list as a JSON array; removal (conflict while in use).
  void images(reply_fn<std::string> reply) const;
  void remove_image(std::string ref, reply_fn<bool> reply) const;
  // A measured usage sample (sandbox_actor's usage_atom), JSON text.
  void sandbox_usage(std::string id, principal who, reply_fn<std::string> reply) const;
  void set_deadline(std::string id, principal who, std::string end_at, reply_fn<std::string> reply) const;
  // PATCH /network (sandbox_actor's network_atom): validated JSON in, the record out.
  void set_network(std::string id, principal who, std::string body, reply_fn<std::string> reply) const;
  // What its egress was refused lately (sandbox_actor's refused_atom), JSON text.
  void refusals(std::string id, principal who, reply_fn<std::string> reply) const;
  void fork(std::string id, principal who, int count, reply_fn<std::string> reply) const;
  void checkpoint(std::string id, principal who, std::string name, reply_fn<std::string> reply) const;
  void list_snapshots(principal who, reply_fn<std::string> reply) const;
  void get_snapshot(std::string sid, principal who, reply_fn<std::string> reply) const;
  void delete_snapshot(std::string sid, principal who, reply_fn<bool> reply) const;
  // overrides: JSON object with optional "sandbox_timeout" and "metadata".
  void restore(std::string sid, principal who, std::string overrides, reply_fn<std::string> reply) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace warren::actors
