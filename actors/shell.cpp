// actors/shell.cpp — the shell actor's lifecycle: open the session, hand out a lease, close
// the session on close/exit. A session that fails to open ends the actor with the reason.
#include "actors/shell.hpp"

#include <caf/all.hpp>

#include <mutex>
#include <spdlog/spdlog.h>

#include "actors/caf_error.hpp"
#include "actors/live_actors.hpp"
#include "vmm/agent/shell_session.hpp"

namespace warren::actors {
namespace {

// The session, set from the agent's strand once open, read by the actor: hence the lock.
struct session_box {
  std::mutex mu;
  std::shared_ptr<agent::shell_session> session;
  void set(std::shared_ptr<agent::shell_session> s) {
    std::lock_guard lk(mu);
    session = std::move(s);
  }
  void close() {
    std::shared_ptr<agent::shell_session> s;
    {
      std::lock_guard lk(mu);
      s = std::move(session);
    }
    if (s) s->close();
  }
};

struct shell_state {
  live_counter<actor_kind::shell> counted;
  std::shared_ptr<session_box> box = std::make_shared<session_box>();
  stream_session_ptr info;  // listed for the admin console while the actor lives
  static inline const char* name = "shell";
  ~shell_state() { box->close(); }  // whatever ended the actor ends the bash
};

using self_ptr = shell_actor::stateful_pointer<shell_state>;

}  // namespace

shell_actor spawn_shell(caf::local_actor* parent, sandbox_link_ptr link, boost::asio::io_context* io) {
  auto fn = [io](self_ptr self, sandbox_link_ptr link) -> shell_actor::behavior_type {
    self->state.info = open_stream_session("shell", link->id);
    return {
        [self, link, io](open_atom) -> caf::result<shell_lease_ptr> {
          auto rp = self->make_response_promise<shell_lease_ptr>();
          caf::actor me = caf::actor_cast<caf::actor>(self);
          auto box = self->state.box;
          auto info = self->state.info;
          // The open completes on the agent's strand; the result comes back as a message.
          agent::shell_session::open(*io, link->agent, agent::shell_options{},
                                     [rp, me, link, box, info](expected<std::shared_ptr<agent::shell_session>> r) mutable {
                                       if (!r) {
                                         rp.deliver(to_caf(r.err()));
                                         caf::anon_send_exit(me, caf::exit_reason::normal);
                                         return;
                                       }
                                       box->set(*r);
                                       auto lease = std::make_shared<shell_lease>();
                                       lease->session = *r;
                                       lease->info = info;
                                       lease->default_timeout_s = link->default_timeout_s;
                                       lease->release = [me] { caf::anon_send(caf::actor_cast<shell_actor>(me), close_atom::value); };
                                       rp.deliver(lease);
                                     });
          return rp;
        },
        [self](tree_atom) -> std::string {
          return session_entry(*self->state.info, static_cast<int64_t>(self->mailbox().size())).dump();
        },
        [self](close_atom) {
          self->state.box->close();
          self->quit();
        },
    };
  };
  return parent->spawn<caf::linked>(fn, std::move(link));
}

}  // namespace warren::actors
