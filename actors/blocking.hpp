// actors/blocking.hpp — run a blocking call (mounts, clone, cgroup writes, QEMU start) on a
// detached worker thread and receive its result as an ordinary reply, so no CAF scheduler
// thread ever blocks. The result travels as shared_ptr<expected<T>>: local-only by design.
#pragma once

#include <memory>

#include <caf/all.hpp>

#include "core/error.hpp"

namespace warren::actors {

using run_atom = caf::atom_constant<caf::atom("run")>;

template <class T>
using job_result = std::shared_ptr<expected<T>>;

template <class T>
using job_actor = caf::typed_actor<typename caf::replies_to<run_atom>::template with<job_result<T>>>;

// Calls fn() on a fresh detached worker; `then(expected<T>)` runs in `self`'s context.
template <class T, class Self, class Fn, class Then>
void run_blocking(Self* self, Fn fn, Then then) {
  auto worker = self->home_system().template spawn<caf::detached>(
      [fn](typename job_actor<T>::pointer w) -> typename job_actor<T>::behavior_type {
        return {[fn, w](run_atom) {
          auto r = std::make_shared<expected<T>>(fn());
          w->quit();
          return r;
        }};
      });
  self->request(worker, caf::infinite, run_atom::value)
      .then([then](job_result<T>& r) mutable { then(std::move(*r)); },
            [then](caf::error& e) mutable {
              then(expected<T>(make_error(errc::internal, "worker failed: " + caf::to_string(e))));
            });
}

}  // namespace warren::actors
