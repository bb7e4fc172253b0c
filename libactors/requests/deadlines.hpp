#pragma once

// Deadlines of an actor's requests, kept by the actor itself.
//
// A request sent with a timeout makes CAF's clock thread set a timer and, once the
// answer arrives, cancel it: two wake-ups of another thread per request, which on the
// replicated write path (a request per shard per batch, one per follower per group
// commit) cost more CPU than the slice lookups. A request sent with `caf::infinite`
// and remembered here costs a deque entry instead; one sweep timer per actor, armed
// only while requests wait, answers the overdue ones with `sec::request_timeout`
// exactly as CAF would have (their error handlers run, a late answer is dropped).

#include <chrono>
#include <cstdint>
#include <deque>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/message_id.hpp>

namespace tether::requests {

/// The message an actor sends itself `interval()` after `add` or `sweep` said so.
using sweep_atom = caf::atom_constant<caf::atom("tt_sweep")>;

class deadlines {
public:
  using clock = std::chrono::steady_clock;

  explicit deadlines(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000})
    : timeout_(timeout) {
  }

  /// The timeout of the requests added from now on.
  void set_timeout(std::chrono::milliseconds timeout) {
    timeout_ = timeout;
  }

  /// Remembers the request `id` (its `response_handle::id()`), due one timeout from
  /// now. True when the caller must arm the sweep: send itself a sweep message after
  /// `interval()`, and call `sweep` when it arrives.
  bool add(caf::message_id id) {
    return add(id, clock::now());
  }
  bool add(caf::message_id id, clock::time_point now);

  /// The request `id` has its answer: call from both of its handlers.
  void done(caf::message_id id);

  /// Answers every request past its deadline at `now` that has no answer yet with
  /// `sec::request_timeout`, as a message to `self` (its error handler runs next).
  /// True while requests still wait: arm the sweep again.
  bool sweep(caf::local_actor* self) {
    return sweep(self, clock::now());
  }
  bool sweep(caf::local_actor* self, clock::time_point now);

  /// How long after a deadline a request is answered at most: a tenth of the
  /// timeout, between 5 and 100 ms.
  std::chrono::milliseconds interval() const noexcept;

  /// Requests remembered (answered ones leave at the next sweep).
  size_t size() const noexcept {
    return waiting_.size();
  }

private:
  struct entry {
    uint64_t id;
    clock::time_point due;
    bool answered;
  };
  std::deque<entry> waiting_; ///< in the order sent: by id and by deadline
  std::chrono::milliseconds timeout_;
  bool armed_ = false;
};

} // namespace tether::requests
