#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
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
#include "series/shard_write.hpp"
#include "series/slice_snapshot.hpp"

namespace tether::series {

/// One output series hosted by a slice: the addressable "series actor" entity. Its
/// identity is the key, its location the slice that holds it, its state `state`.
/// 264 bytes: the key is one pointer into the slice's key arena.
class series_entry {
public:
  series_state state;

  std::string_view key() const noexcept {
    uint32_t size;
    std::memcpy(&size, key_ - sizeof size, sizeof size);
    return {key_, size};
  }

private:
  friend class slice_state;

  const char* key_ = nullptr; ///< in the slice's key arena, after its 4-byte length
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
  /// How far above the producer's highest sequence on the slice (0 for a producer
  /// the slice has not seen) a write may jump; beyond it the write is refused with
  /// errc::sequence_jump and nothing changes. Producers the node owns
  /// (`remote-write@…`, see is_node_producer) are exempt. Primaries set it from
  /// `tether.max-sequence-jump`; followers leave it unbounded, so that they never
  /// refuse what a primary decided.
  uint64_t max_sequence_jump = std::numeric_limits<uint64_t>::max();
  /// A producer that has written nothing to the slice for this long (by the items'
  /// `now_ms`) loses its dedup entry before the next write is applied
  /// (`tether.producer-idle-ms`), and a slice keeps at most `max_producers` entries
  /// (`tether.max-producers-per-slice`): a new producer beyond it takes the place of
  /// the one idle longest. Both decisions depend only on the replicated state and the
  /// items' time, so every replica makes them alike when the nodes share the options.
  int64_t producer_idle_ms = std::numeric_limits<int64_t>::max();
  size_t max_producers = std::numeric_limits<size_t>::max();
  /// New output series the node may still create (`tether.max-series` less what
  /// its led slices hold): a write range that would create more is refused with
  /// errc::input_limit and changes nothing. Primaries set it; followers leave it
  /// unbounded, so that they never refuse what a primary decided.
  uint64_t series_room = std::numeric_limits<uint64_t>::max();
};

/// Whether `producer` is one of the ids a node writes under itself (remote write):
/// clients may not use them.
bool is_node_producer(std::string_view producer) noexcept;

/// A window of one length that samples opened in a slice: the hosting shard
/// schedules one close for it (end + lateness), which closes that window of every
/// series of that length in the slice.
struct opened_window {
  uint32_t slice = 0;
  uint32_t window_ms = 0;
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
  /// A (window length, start) that samples open in the slice is appended to
  /// `opened` once, until `close_windows` closes it.
  apply_result apply(const shard_write& w, const slice_range& r,
                     const apply_context& ctx, std::vector<opened_window>& opened);

  series_entry* find(std::string_view key);

  /// The producer's dedup window, or nullptr when the slice has none.
  const dedup_window* find_dedup(const std::string& producer) const;

  uint32_t id() const noexcept {
    return id_;
  }

  uint64_t epoch = 0;

  size_t series_count() const noexcept {
    return series_.size();
  }

  /// Producers with a dedup entry in the slice.
  size_t producer_count() const noexcept {
    return dedup_.size();
  }

  /// Whether the slice holds nothing: no series and no producer's dedup window.
  bool empty() const noexcept {
    return series_.empty() && dedup_.empty();
  }

  /// Appends every (window length, start) open in the slice, for the hosting shard
  /// to schedule their closes (after a restore, or when a handoff is called off).
  void open_windows(std::vector<opened_window>& out) const;

  /// Calls `f(series_entry&)` for every series of window length `window_ms` whose
  /// window at `start` is open, for the caller to close that window, and forgets
  /// the (window length, start) pair. Touches only the series of that length.
  template <class F>
  void close_windows(uint32_t window_ms, int64_t start, F&& f) {
    open_.erase(std::remove_if(open_.begin(), open_.end(),
                               [&](const opened_window& o) {
                                 return o.window_ms == window_ms && o.start == start;
                               }),
                open_.end());
    auto visit = [&](series_entry& e) {
      if (e.state.window_ms != window_ms)
        return;
      for (auto& w : e.state.open())
        if (w.start == start) {
          f(e);
          return;
        }
    };
    if (groups_.size() <= 1) {
      for (auto& e : series_)
        visit(e);
      return;
    }
    for (auto& g : groups_)
      if (g.window_ms == window_ms)
        for (auto i : g.members)
          visit(series_[i]);
  }

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
  struct dedup_entry;

  /// Hash tables keyed by the precomputed 64-bit xxh3 of a key: lookups never
  /// re-hash text, and a node's bucket is found without touching its key.
  struct identity_hash {
    size_t operator()(uint64_t h) const noexcept {
      return static_cast<size_t>(h);
    }
  };

  /// A slot of the series index: the upper 32 bits of the key's hash (which also
  /// place it) and 1 + the series' position, 0 for a free slot.
  struct index_slot {
    uint32_t tag = 0;
    uint32_t entry = 0;
  };

  /// The series of one window length, when the slice has several lengths (with one
  /// length, every series is a member and the list stays empty).
  struct window_group {
    uint32_t window_ms = 0;
    std::vector<uint32_t> members;
  };

  static uint32_t tag_of(uint64_t hash) noexcept {
    return static_cast<uint32_t>(hash >> 32);
  }

  series_entry* find(std::string_view key, uint64_t hash);
  /// The series a sample goes to, made if new, or nullptr for a late sample that
  /// would make a new series (counted in `res`).
  series_entry* entry_for(const shard_write& w, const wire::keyed_sample& s,
                          const apply_context& ctx, apply_result& res);
  /// Applies one sample to its series and counts the outcome in `res`.
  void apply_sample(series_entry& e, const wire::keyed_sample& s,
                    const apply_context& ctx, apply_result& res,
                    std::vector<opened_window>& opened);
  /// The producer's dedup entry for `w`, after eviction by `ctx`; nullptr with `res`
  /// set for a duplicate or a sequence too old.
  dedup_entry* admit_sequence(const shard_write& w, const apply_context& ctx,
                              apply_result& res);
  /// Records `w`'s sequence as applied in its producer's entry.
  void record_sequence(dedup_entry& entry, const shard_write& w,
                       const apply_context& ctx);
  /// Adds a series with the first sample's kind, window length and rule.
  series_entry& insert(std::string_view key, const wire::keyed_sample& first);
  series_entry& append(std::string_view key, uint64_t hash, series_state&& state);
  void add_to_index(uint64_t hash, uint32_t pos);
  void place(index_slot slot) noexcept;
  /// Files the series at `pos` under its window length.
  void add_to_group(uint32_t window_ms, uint32_t pos);
  /// Registers an open (window length, start); appends it to `opened` if new.
  void note_open(uint32_t window_ms, int64_t start, std::vector<opened_window>& opened);
  /// The producer's entry, made (in the place of the entry idle longest when the
  /// slice holds `max_producers`) if it has none.
  dedup_entry& dedup_of(const std::string& producer,
                               size_t max_producers = std::numeric_limits<size_t>::max());
  /// Index in `dedup_` of the producer's entry (h: its key_hash), or dedup_.size().
  size_t dedup_position(uint64_t h, const std::string& producer) const;
  /// Why the counter samples of `w`'s range `r` (their entries in `found_`) would
  /// take a running total past the largest finite double, or empty. Called only when
  /// a value or a total is near the limit (apply's check pass notes it).
  std::string counter_overflow(const shard_write& w, const slice_range& r) const;
  /// Forgets the producers idle since before `now - idle` (see apply_context).
  void expire_producers(int64_t now, int64_t idle);
  /// Removes the entries `drop` marks; keeps the others in order.
  void remove_producers(const std::vector<bool>& drop);

  uint32_t id_;
  /// Appends a 4-byte length and the key text to the arena; returns the text.
  const char* store_key(std::string_view key);

  std::deque<series_entry> series_; ///< stable addresses for scratch pointers
  /// Key text of every series, in blocks that never move: one allocation per block
  /// instead of one per key (blocks grow from 256 bytes to 1 KiB).
  std::vector<std::unique_ptr<char[]>> key_blocks_;
  size_t block_size_ = 0; ///< size of the last block
  size_t block_used_ = 0;
  /// Open addressing with linear probing, at most 7/8 full, size a power of two.
  /// A probe compares 4-byte tags, eight to a cache line, before it touches a key.
  std::vector<index_slot> index_;
  std::vector<window_group> groups_;
  std::vector<opened_window> open_; ///< (window length, start) open in the slice
  struct dedup_entry {
    std::string producer;
    dedup_window window;
    int64_t last_ms = 0; ///< the item time of the producer's latest applied write
  };
  /// At most the smallest `last_ms` of `dedup_`: expire_producers scans only when
  /// an entry may have expired.
  int64_t oldest_ms_ = std::numeric_limits<int64_t>::max();
  /// Producers' windows, in arrival order. A slice sees few producers: a scan of
  /// `dedup_hashes_` (eight to a cache line) finds one with a single miss where a
  /// node-based map took three; past `dedup_scan_limit` producers an index takes over.
  std::vector<dedup_entry> dedup_;
  std::vector<uint64_t> dedup_hashes_; ///< key_hash of dedup_[i].producer
  std::unordered_multimap<uint64_t, uint32_t, identity_hash> dedup_index_;
  static constexpr size_t dedup_scan_limit = 32;
  // Scratch space of apply(), kept to avoid allocating per batch.
  std::vector<series_entry*> found_;
  std::unordered_multimap<uint64_t, std::pair<std::string_view, tether::kind>,
                          identity_hash>
    new_kinds_;
};

} // namespace tether::series
