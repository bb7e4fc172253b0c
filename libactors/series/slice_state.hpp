#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "series/dedup_window.hpp"
#include "series/series_state.hpp"
#include "series/shard_messages.hpp"
#include "series/slice_snapshot.hpp"

namespace tether::series {

/// One output series hosted by a slice: the addressable "series actor" entity. Its
/// identity is the key, its location the slice, its state `state`.
struct series_entry {
  std::string_view key; ///< in the slice's key arena
  uint32_t slice = 0;
  series_state state;
};

/// Decides whether a slice may take a batch's new input series: the hosting shard
/// tracks input series against the rules' and the node's limits. `admit` sees the
/// whole range first and returns an empty string to accept it, or why not; `commit`
/// records the accepted range's inputs.
class input_gate {
public:
  virtual ~input_gate() = default;
  virtual std::string admit(const shard_write& w, const slice_range& r) = 0;
  virtual void commit(const shard_write& w, const slice_range& r) = 0;
};

/// What a slice needs besides the samples to apply them.
struct apply_context {
  int64_t now_ms = 0;       ///< the primary's clock when it applies the batch
  int64_t lateness_ms = 0;  ///< how long after its end a window still takes samples
  double accuracy = 0.01;   ///< relative accuracy of histogram sketches
  int64_t staleness_ms = std::numeric_limits<int64_t>::max(); ///< cumulative inputs
  input_gate* gate = nullptr; ///< input series limits; none when null
};

/// A window that a sample opened: the hosting shard schedules its close.
struct opened_window {
  series_entry* entry = nullptr;
  int64_t start = 0;
};

/// The state of one slice: its series and its dedup table. Everything here is what a
/// replica must hold to take over. Not thread-safe: owned by one shard actor.
class slice_state {
public:
  explicit slice_state(uint32_t id) : id_(id) {
  }

  slice_state(const slice_state&) = delete;
  slice_state& operator=(const slice_state&) = delete;

  struct apply_result {
    uint32_t applied = 0;
    uint32_t late = 0; ///< samples of the range whose window had closed
    bool duplicate = false;
    errc code = errc::none;
    std::string message;
  };

  /// Applies `w.samples[r.begin, r.end)` once per (producer, sequence): a repeated
  /// delivery is reported as duplicate and changes nothing, as does a failure.
  /// Windows that samples open are appended to `opened`.
  apply_result apply(const shard_write& w, const slice_range& r,
                     const apply_context& ctx, std::vector<opened_window>& opened);

  series_entry* find(std::string_view key);

  uint32_t id() const noexcept {
    return id_;
  }

  uint64_t epoch = 0;

  size_t series_count() const noexcept {
    return index_.size();
  }

  /// Whether the slice holds nothing: no series and no producer's dedup window.
  bool empty() const noexcept {
    return index_.empty() && dedup_.empty();
  }

  /// Appends every open window of every series, for the hosting shard to schedule
  /// their closes (after a restore, or when a handoff is called off).
  void open_windows(std::vector<opened_window>& out);

  /// Copies everything a shard needs to take the slice over, with `epoch` as the
  /// snapshot's epoch: series in insertion order, producers sorted by name. The
  /// subscribers of the slice's keys belong to the shard, which adds them.
  slice_snapshot snapshot(uint64_t epoch) const;

  /// Builds the slice a snapshot describes, at the snapshot's epoch: applying the
  /// same batches to it and to the slice the snapshot came from gives the same
  /// state, and a (producer, sequence) applied before the snapshot stays a
  /// duplicate. Returns null and sets `error` if `check(snap)` finds it invalid.
  /// The snapshot's subscribers are left in `snap`.
  static std::unique_ptr<slice_state> restore(slice_snapshot& snap, std::string& error);

  /// Calls `f(const series_entry&)` for every series of the slice.
  template <class F>
  void for_each(F f) const {
    for (auto& e : series_)
      f(e);
  }

private:
  /// Hash tables keyed by the precomputed 64-bit xxh3 of a key: lookups never
  /// re-hash text, and a node's bucket is found without touching its key.
  struct identity_hash {
    size_t operator()(uint64_t h) const noexcept {
      return static_cast<size_t>(h);
    }
  };

  series_entry* find(std::string_view key, uint64_t hash);
  series_entry& insert(std::string_view key, const wire::keyed_sample& first);
  dedup_window& dedup_of(const std::string& producer);

  uint32_t id_;
  /// Appends key text to the arena; the view stays valid while the slice lives.
  std::string_view store_key(std::string_view key);

  std::deque<series_entry> series_; ///< stable addresses for index_
  /// Key text of every series, in blocks that never move: one allocation per block
  /// instead of one per key (blocks grow from 256 bytes to 16 KiB).
  std::vector<std::unique_ptr<char[]>> key_blocks_;
  size_t block_size_ = 0; ///< size of the last block
  size_t block_used_ = 0;
  std::unordered_multimap<uint64_t, series_entry*, identity_hash> index_;
  struct dedup_entry {
    std::string producer;
    dedup_window window;
  };
  std::unordered_multimap<uint64_t, dedup_entry, identity_hash> dedup_;
  // Scratch space of apply(), kept to avoid allocating per batch.
  std::vector<series_entry*> found_;
  std::unordered_multimap<uint64_t, std::pair<std::string_view, tether::kind>,
                          identity_hash>
    new_kinds_;
};

} // namespace tether::series
