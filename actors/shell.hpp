// actors/shell.hpp — the shell actor: one per shell session, spawned and supervised (linked)
// by its sandbox's actor. It owns the session's lifetime — the bash ends when the WebSocket
// closes, when the sandbox goes, or when the actor dies — while commands and their output go
// straight between the WebSocket and the session, never as actor messages.
#pragma once

#include <functional>
#include <memory>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/admin_tree.hpp"
#include "actors/sandbox_link.hpp"
#include "actors/shell_lease.hpp"

namespace boost::asio { class io_context; }

namespace warren::actors {

using open_atom = caf::atom_constant<caf::atom("open")>;
using close_atom = caf::atom_constant<caf::atom("close")>;
using shell_atom = caf::atom_constant<caf::atom("shell")>;

using shell_actor = caf::typed_actor<
    // Starts bash; the lease once it is ready to run commands.
    caf::replies_to<open_atom>::with<shell_lease_ptr>,
    // Ends bash and every process it started; the actor quits.
    caf::reacts_to<close_atom>,
    // Its entry in the admin tree (actors/admin_tree.hpp).
    caf::replies_to<tree_atom>::with<std::string>>;

shell_actor spawn_shell(caf::local_actor* parent, sandbox_link_ptr link, boost::asio::io_context* io);

}  // namespace warren::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::actors::shell_lease_ptr)
