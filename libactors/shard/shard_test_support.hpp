#pragma once

// Test helpers shared by the shard component tests (shard_handoff.test.cpp,
// shard_replication.test.cpp): a small slice space, keys that fall on a given slice,
// an actor that logs the windows it receives, and one that holds a handoff's import
// back.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "keys/slicing.hpp"
#include "shard/shard.hpp"
#include "tether/tether.hpp"

namespace tether::series::testing {

constexpr uint32_t slices = 8;
constexpr int64_t window_ms = 1000;
constexpr int64_t lateness_ms = 500;

/// A shard's configuration as the tests' fixtures start it: node `name`, the tests'
/// window and lateness, ticks that never fire (windows close on writes), directory
/// `dir`, `counters` and the clock `now`.
inline shard_config fixture_config(const std::string& name, const directory_actor& dir,
                                   std::shared_ptr<node_counters> counters,
                                   std::function<int64_t()> now) {
  shard_config sc;
  sc.node_name = name;
  sc.window_ms = window_ms;
  sc.lateness_ms = lateness_ms;
  sc.tick_ms = 3600 * 1000;
  sc.directory = dir;
  sc.counters = std::move(counters);
  sc.clock = std::move(now);
  return sc;
}

/// The first `n` keys "k<i>" that fall on slice `s`.
inline std::vector<std::string> keys_on(uint32_t s, size_t n) {
  std::vector<std::string> out;
  for (int i = 0; out.size() < n; ++i) {
    auto key = "k" + std::to_string(i);
    if (keys::slice_of(keys::key_hash(key), slices) == s)
      out.push_back(key);
  }
  return out;
}

/// A write of counter deltas `value` at `ts_ms` to `keys`, one range per slice at
/// `epoch`, as the ingest sends it.
inline shard_write counter_write_at(const std::string& producer, uint64_t seq,
                                    std::vector<std::string> keys, uint64_t epoch,
                                    double value, int64_t ts_ms) {
  std::sort(keys.begin(), keys.end(), [](auto& x, auto& y) {
    return keys::slice_of(keys::key_hash(x), slices)
           < keys::slice_of(keys::key_hash(y), slices);
  });
  shard_write w;
  w.producer = producer;
  w.sequence = seq;
  for (auto& key : keys) {
    wire::keyed_sample s;
    s.hash = keys::key_hash(key);
    s.input_hash = s.hash;
    s.slice = keys::slice_of(s.hash, slices);
    s.key_offset = static_cast<uint32_t>(w.keys.size());
    s.key_size = static_cast<uint32_t>(key.size());
    w.keys += key;
    s.kind = kind::counter;
    s.value = value;
    s.timestamp_ms = ts_ms;
    s.window_ms = window_ms;
    auto i = static_cast<uint32_t>(w.samples.size());
    if (w.ranges.empty() || w.ranges.back().slice != s.slice)
      w.ranges.push_back(slice_range{s.slice, epoch, i, i});
    ++w.ranges.back().end;
    w.samples.push_back(s);
  }
  return w;
}

/// Every window a subscriber or exporter received, in order.
struct window_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<series_view> views;

  /// Waits (at most 5 s) until `pred(views)` holds.
  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, std::chrono::seconds(5), [&] { return pred(views); });
  }

  /// How often each (key, window start) arrived.
  std::map<std::pair<std::string, int64_t>, int> counts() {
    std::lock_guard<std::mutex> guard{mtx};
    std::map<std::pair<std::string, int64_t>, int> out;
    for (auto& v : views)
      ++out[{v.key, v.window.start_ms}];
    return out;
  }

  size_t size() {
    std::lock_guard<std::mutex> guard{mtx};
    return views.size();
  }
};

/// Appends every window it receives to `log`; answers an int with itself once the
/// windows sent before it are logged.
inline caf::behavior collector(caf::event_based_actor*, std::shared_ptr<window_log> log) {
  return {
    [log](window_atom, std::vector<series_view>& vs) {
      std::lock_guard<std::mutex> guard{log->mtx};
      log->views.insert(log->views.end(), vs.begin(), vs.end());
      log->cv.notify_all();
    },
    [](int x) { return x; },
  };
}

using release_atom = caf::atom_constant<caf::atom("release")>;

/// Stands between an exporting shard and its destination: passes every message on,
/// except that from the first import on it holds everything back, in order, until
/// it gets `release_atom`. `held` is set when it starts holding. With
/// `lose_answer` the connection breaks after the import went out: the exporter gets
/// a request timeout for it at once, and on release the import arrives, but nothing
/// held back after it (the exporter's abort, say).
inline caf::behavior relay(caf::event_based_actor* self, caf::actor dest,
                           std::shared_ptr<std::promise<void>> held,
                           bool lose_answer) {
  struct state {
    bool held = false;
    bool holding = false;
    /// Each message with its promise; none for the import whose answer was lost.
    std::vector<std::pair<caf::message, caf::response_promise>> queue;
  };
  auto st = std::make_shared<state>();
  self->set_default_handler(
    [=](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
      auto msg = x.move_content_to_message();
      bool import = msg.match_element<caf::atom_value>(0)
                    && msg.get_as<caf::atom_value>(0) == import_atom::value;
      bool first = import && !st->held;
      if (first) {
        st->held = true;
        st->holding = true;
        held->set_value();
      }
      if (!st->holding)
        return self->delegate(dest, std::move(msg));
      if (first && lose_answer) {
        st->queue.emplace_back(std::move(msg), caf::response_promise{});
        return caf::make_error(caf::sec::request_timeout);
      }
      auto promise = self->make_response_promise();
      st->queue.emplace_back(std::move(msg), promise);
      return promise;
    });
  return {
    [=](release_atom) {
      st->holding = false;
      for (auto& [msg, promise] : st->queue)
        if (!lose_answer)
          promise.delegate(dest, std::move(msg));
        else if (!promise.pending())
          caf::anon_send(dest, std::move(msg)); // the import
      st->queue.clear();
    },
  };
}

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;

/// Passes every message on to `dest` after a random delay of 0 to `max_ms`, in the
/// order received (as one connection between two nodes does), and dies with `dest`.
/// Relays in front of several shards reorder what one shard sends to the others.
inline caf::behavior delay_relay(caf::event_based_actor* self, caf::actor dest,
                                 uint32_t seed, int max_ms) {
  using clock = std::chrono::steady_clock;
  struct state {
    std::mt19937 rng;
    std::deque<std::tuple<caf::message, caf::response_promise, clock::time_point>> queue;
  };
  auto st = std::make_shared<state>();
  st->rng.seed(seed);
  self->link_to(dest);
  self->set_default_handler(
    [=](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
      auto now = clock::now();
      auto due = now + std::chrono::milliseconds(
                         std::uniform_int_distribution<int>{0, max_ms}(st->rng));
      if (!st->queue.empty())
        due = std::max(due, std::get<2>(st->queue.back()));
      auto promise = self->make_response_promise();
      st->queue.emplace_back(x.move_content_to_message(), promise, due);
      self->delayed_send(self, std::chrono::duration_cast<std::chrono::microseconds>(due - now),
                         deliver_atom::value);
      return promise;
    });
  return {
    [=](deliver_atom) {
      auto now = clock::now();
      while (!st->queue.empty() && std::get<2>(st->queue.front()) <= now) {
        auto& [msg, promise, due] = st->queue.front();
        (void) due;
        promise.delegate(dest, std::move(msg));
        st->queue.pop_front();
      }
    },
  };
}

} // namespace tether::series::testing
