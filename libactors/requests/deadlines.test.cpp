#include "requests/deadlines.hpp"

#include <chrono>
#include <future>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using tether::requests::deadlines;

namespace {

using release_atom = caf::atom_constant<caf::atom("release")>;
using tether::requests::sweep_atom;

/// Keeps the promise of every int it gets; answers them all on `release_atom`.
caf::behavior silent(caf::event_based_actor* self) {
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  return {
    [=](int) -> caf::result<int> {
      held->push_back(self->make_response_promise());
      return caf::delegated<int>{};
    },
    [=](release_atom) {
      for (auto& p : *held)
        p.deliver(7);
      held->clear();
    },
  };
}

struct outcome {
  int answered = 0;     ///< value handler calls of the first request to `silent`
  bool timed_out = false;
  std::chrono::milliseconds after{0};
  int echo = 0;         ///< the answer of the request that was answered in time
  int echo_errors = 0;  ///< error handler calls of that request
  size_t left = 0;      ///< deadlines remembered at the end
};

/// Asks an echo and `silent` with `caf::infinite`, keeping the deadlines itself; once
/// the silent request timed out, releases it (its late answer must be dropped) and
/// asks once more to know that the late answer went by.
caf::behavior client(caf::event_based_actor* self, caf::actor echo, caf::actor quiet,
                     std::shared_ptr<std::promise<outcome>> done) {
  auto d = std::make_shared<deadlines>(200ms);
  auto out = std::make_shared<outcome>();
  auto arm = [=] { self->delayed_send(self, d->interval(), sweep_atom::value); };
  auto t0 = deadlines::clock::now();
  auto ask = [=](caf::actor who, auto ok, auto fail) {
    auto h = self->request(who, caf::infinite, 1);
    auto id = h.id();
    if (d->add(id))
      arm();
    h.then([=](int x) { d->done(id); ok(x); }, [=](caf::error& e) { d->done(id); fail(e); });
  };
  ask(echo, [=](int x) { out->echo = x; }, [=](caf::error&) { ++out->echo_errors; });
  ask(quiet, [=](int) { ++out->answered; },
      [=](caf::error& e) {
        out->timed_out = e == caf::sec::request_timeout;
        out->after = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadlines::clock::now() - t0);
        self->send(quiet, release_atom::value);
        ask(quiet,
            [=](int) {
              out->left = d->size();
              done->set_value(*out);
              self->quit();
            },
            [=](caf::error&) {});
        self->send(quiet, release_atom::value);
      });
  return {
    [=](sweep_atom) {
      if (d->sweep(self))
        arm();
    },
  };
}

} // namespace

TEST_CASE("a request past its deadline gets request_timeout, once; answered ones "
          "nothing more",
          "[requests]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto echo = sys.spawn([]() -> caf::behavior { return {[](int x) { return x + 1; }}; });
  auto quiet = sys.spawn(silent);
  auto done = std::make_shared<std::promise<outcome>>();
  auto f = done->get_future();
  sys.spawn(client, echo, quiet, done);
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  auto o = f.get();
  CHECK(o.echo == 2);
  CHECK(o.echo_errors == 0);
  CHECK(o.timed_out);
  CHECK(o.after >= 200ms);
  CHECK(o.answered == 0); // the late answer was dropped
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(quiet, caf::exit_reason::user_shutdown);
}

TEST_CASE("deadlines forget answered requests in the order they were sent",
          "[requests]") {
  deadlines d{100ms};
  auto t = deadlines::clock::now();
  CHECK(d.add(caf::message_id{10}, t));
  CHECK_FALSE(d.add(caf::message_id{11}, t)); // the sweep is armed already
  CHECK_FALSE(d.add(caf::message_id{12}, t));
  d.done(caf::message_id{11});
  CHECK(d.size() == 3); // behind an unanswered one
  d.done(caf::message_id{10});
  CHECK(d.size() == 1);
  d.done(caf::message_id{99}); // unknown (answered by its timeout already): nothing
  CHECK(d.size() == 1);
  CHECK(d.interval() == 10ms);
  CHECK(deadlines{50ms}.interval() == 5ms);
  CHECK(deadlines{5000ms}.interval() == 100ms);
}
