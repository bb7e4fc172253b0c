#include "series/slice_state.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "keys/slicing.hpp"

namespace tether::series {

const char* slice_state::store_key(std::string_view key) {
  // Blocks start small and double up to 1 KiB: a node with few series per slice
  // does not pay much for each of its 1024 slices, and the unused end of the last
  // block stays below 1 KiB per slice.
  constexpr size_t first_block = 256;
  constexpr size_t max_block = 1024;
  auto size = static_cast<uint32_t>(key.size());
  auto need = sizeof size + key.size();
  if (key_blocks_.empty() || block_used_ + need > block_size_) {
    auto block = key_blocks_.empty() ? first_block : std::min(max_block, 2 * block_size_);
    block = std::max(block, need); // an oversized key gets a block of its own size
    key_blocks_.push_back(std::make_unique<char[]>(block));
    block_size_ = block;
    block_used_ = 0;
  }
  char* dst = key_blocks_.back().get() + block_used_;
  std::memcpy(dst, &size, sizeof size);
  std::memcpy(dst + sizeof size, key.data(), key.size());
  block_used_ += need;
  return dst + sizeof size;
}

series_entry* slice_state::find(std::string_view key) {
  return find(key, keys::key_hash(key));
}

series_entry* slice_state::find(std::string_view key, uint64_t hash) {
  if (index_.empty())
    return nullptr;
  auto mask = index_.size() - 1;
  auto tag = tag_of(hash);
  for (auto i = tag & mask;; i = (i + 1) & mask) {
    auto& slot = index_[i];
    if (slot.entry == 0)
      return nullptr;
    if (slot.tag == tag) {
      auto& e = series_[slot.entry - 1];
      if (e.key() == key)
        return &e;
    }
  }
}

void slice_state::place(index_slot slot) noexcept {
  auto mask = index_.size() - 1;
  auto i = slot.tag & mask;
  while (index_[i].entry != 0)
    i = (i + 1) & mask;
  index_[i] = slot;
}

void slice_state::add_to_index(uint64_t hash, uint32_t pos) {
  if (8 * (series_.size() + 1) > 7 * index_.size()) {
    std::vector<index_slot> old(std::max<size_t>(8, 2 * index_.size()));
    old.swap(index_);
    for (auto& slot : old)
      if (slot.entry != 0)
        place(slot);
  }
  place(index_slot{tag_of(hash), pos + 1});
}

void slice_state::add_to_group(uint32_t window_ms, uint32_t pos) {
  for (auto& g : groups_)
    if (g.window_ms == window_ms) {
      if (groups_.size() > 1)
        g.members.push_back(pos);
      return;
    }
  if (groups_.size() == 1) {
    // A second length: every series so far has the first one.
    auto& first = groups_.front();
    first.members.reserve(pos);
    for (uint32_t i = 0; i < pos; ++i)
      first.members.push_back(i);
  }
  auto& g = groups_.emplace_back();
  g.window_ms = window_ms;
  if (groups_.size() > 1)
    g.members.push_back(pos);
}

void slice_state::note_open(uint32_t window_ms, int64_t start,
                            std::vector<opened_window>& opened) {
  for (auto& o : open_)
    if (o.window_ms == window_ms && o.start == start)
      return;
  open_.push_back(opened_window{id_, window_ms, start});
  opened.push_back(open_.back());
}

size_t slice_state::dedup_position(uint64_t h, const std::string& producer) const {
  if (dedup_index_.empty()) {
    for (size_t i = 0; i < dedup_hashes_.size(); ++i)
      if (dedup_hashes_[i] == h && dedup_[i].producer == producer)
        return i;
    return dedup_.size();
  }
  auto [i, end] = dedup_index_.equal_range(h);
  for (; i != end; ++i)
    if (dedup_[i->second].producer == producer)
      return i->second;
  return dedup_.size();
}

const dedup_window* slice_state::find_dedup(const std::string& producer) const {
  auto i = dedup_position(keys::key_hash(producer), producer);
  return i < dedup_.size() ? &dedup_[i].window : nullptr;
}

void slice_state::remove_producers(const std::vector<bool>& drop) {
  size_t out = 0;
  oldest_ms_ = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < dedup_.size(); ++i) {
    if (drop[i])
      continue;
    if (out != i) {
      dedup_[out] = std::move(dedup_[i]);
      dedup_hashes_[out] = dedup_hashes_[i];
    }
    oldest_ms_ = std::min(oldest_ms_, dedup_[out].last_ms);
    ++out;
  }
  dedup_.resize(out);
  dedup_hashes_.resize(out);
  dedup_index_.clear();
  if (dedup_.size() > dedup_scan_limit)
    for (uint32_t i = 0; i < dedup_.size(); ++i)
      dedup_index_.emplace(dedup_hashes_[i], i);
}

void slice_state::expire_producers(int64_t now, int64_t idle) {
  if (dedup_.empty() || idle <= 0 || now - idle <= oldest_ms_)
    return;
  auto before = now - idle;
  std::vector<bool> drop(dedup_.size());
  for (size_t i = 0; i < dedup_.size(); ++i)
    drop[i] = dedup_[i].last_ms < before;
  remove_producers(drop);
}

slice_state::dedup_entry& slice_state::dedup_of(const std::string& producer,
                                                size_t max_producers) {
  auto h = keys::key_hash(producer);
  if (auto i = dedup_position(h, producer); i < dedup_.size())
    return dedup_[i];
  if (max_producers > 0 && dedup_.size() >= max_producers) {
    // The entry idle longest makes room; ties go by name, the same on every replica.
    size_t victim = 0;
    for (size_t i = 1; i < dedup_.size(); ++i) {
      auto& a = dedup_[i];
      auto& b = dedup_[victim];
      if (a.last_ms < b.last_ms || (a.last_ms == b.last_ms && a.producer < b.producer))
        victim = i;
    }
    std::vector<bool> drop(dedup_.size());
    drop[victim] = true;
    remove_producers(drop);
  }
  auto pos = static_cast<uint32_t>(dedup_.size());
  dedup_.push_back(dedup_entry{producer, {}, 0});
  dedup_hashes_.push_back(h);
  if (dedup_.size() > dedup_scan_limit) {
    if (dedup_index_.empty())
      for (uint32_t i = 0; i < pos; ++i)
        dedup_index_.emplace(dedup_hashes_[i], i);
    dedup_index_.emplace(h, pos);
  }
  return dedup_.back();
}

series_entry& slice_state::append(std::string_view key, uint64_t hash,
                                  series_state&& state) {
  auto pos = static_cast<uint32_t>(series_.size());
  auto& e = series_.emplace_back();
  e.key_ = store_key(key);
  e.state = std::move(state);
  add_to_index(hash, pos);
  add_to_group(e.state.window_ms, pos);
  return e;
}

series_entry& slice_state::insert(std::string_view key,
                                  const wire::keyed_sample& first) {
  series_state state;
  state.kind = first.kind;
  if (first.window_ms > 0)
    state.window_ms = first.window_ms;
  state.rule = first.rule;
  return append(key, first.hash, std::move(state));
}

void slice_state::open_windows(std::vector<opened_window>& out) const {
  out.insert(out.end(), open_.begin(), open_.end());
}

slice_snapshot slice_state::snapshot(uint64_t epoch) const {
  slice_snapshot out;
  out.slice = id_;
  out.epoch = epoch;
  out.series.reserve(series_.size());
  for (auto& e : series_)
    out.series.push_back(series_snapshot{std::string{e.key()}, e.state});
  out.dedup.reserve(dedup_.size());
  for (auto& d : dedup_)
    out.dedup.push_back(producer_snapshot{d.producer, d.window, d.last_ms});
  std::sort(out.dedup.begin(), out.dedup.end(),
            [](const producer_snapshot& a, const producer_snapshot& b) {
              return a.producer < b.producer;
            });
  return out;
}

std::unique_ptr<slice_state> slice_state::restore(slice_snapshot& snap,
                                                  std::string& error) {
  error = check(snap);
  if (!error.empty())
    return nullptr;
  auto out = std::make_unique<slice_state>(snap.slice);
  out->epoch = snap.epoch;
  std::vector<opened_window> ignored;
  for (auto& s : snap.series) {
    auto& e = out->append(s.key, keys::key_hash(s.key), std::move(s.state));
    for (auto& w : e.state.open())
      out->note_open(e.state.window_ms, w.start, ignored);
  }
  for (auto& p : snap.dedup) {
    auto& e = out->dedup_of(p.producer);
    e.window = p.window;
    e.last_ms = p.last_ms;
    out->oldest_ms_ = std::min(out->oldest_ms_, p.last_ms);
  }
  snap.series.clear();
  snap.dedup.clear();
  return out;
}

std::string slice_state::counter_overflow(const shard_write& w, const slice_range& r) const {
  std::unordered_map<std::string_view, double> totals;
  for (auto i = r.begin; i < r.end; ++i) {
    auto& s = w.samples[i];
    if (s.kind != kind::counter)
      continue;
    auto* e = found_[i - r.begin];
    auto [it, added] = totals.try_emplace(w.key(s), e ? e->state.total : 0.0);
    // A cumulative sample adds at most its value.
    it->second += s.value;
    if (!std::isfinite(it->second))
      return "the running total of " + std::string{w.key(s)}
             + " would pass the largest finite value (1.8e308): nothing of this "
               "slice's part of the batch is applied";
  }
  return {};
}

bool is_node_producer(std::string_view producer) noexcept {
  return producer.substr(0, 13) == "remote-write@";
}

slice_state::dedup_entry* slice_state::admit_sequence(const shard_write& w,
                                                      const apply_context& ctx,
                                                      apply_result& res) {
  expire_producers(ctx.now_ms, ctx.producer_idle_ms);
  auto& entry = dedup_of(w.producer, ctx.max_producers);
  if (entry.last_ms == 0) { // new: counts from now, also if this write is refused
    entry.last_ms = ctx.now_ms;
    oldest_ms_ = std::min(oldest_ms_, entry.last_ms);
  }
  switch (entry.window.check(w.sequence)) {
    case dedup_window::verdict::duplicate:
      res.duplicate = true;
      return nullptr;
    case dedup_window::verdict::too_old:
      res.code = errc::sequence_too_old;
      res.message = "sequence " + std::to_string(w.sequence)
                    + " is more than " + std::to_string(dedup_window::span)
                    + " below the highest applied for producer '" + w.producer
                    + "' (" + std::to_string(entry.window.highest()) + ")";
      return nullptr;
    case dedup_window::verdict::fresh:
      break;
  }
  return &entry;
}

void slice_state::record_sequence(dedup_entry& entry, const shard_write& w,
                                  const apply_context& ctx) {
  entry.window.record(w.sequence);
  // A fresh entry (last_ms 0) counts from now; the oldest bound stays a lower bound.
  entry.last_ms = std::max(entry.last_ms, ctx.now_ms);
  oldest_ms_ = std::min(oldest_ms_, entry.last_ms);
}

series_entry* slice_state::entry_for(const shard_write& w, const wire::keyed_sample& s,
                                     const apply_context& ctx, apply_result& res) {
  // A key new to the slice may occur more than once in the batch.
  if (auto* e = find(w.key(s), s.hash))
    return e;
  // A late sample must not create an empty series.
  series_state probe;
  if (s.window_ms > 0)
    probe.window_ms = s.window_ms;
  auto end = probe.window_start(s.timestamp_ms) + static_cast<int64_t>(probe.window_ms);
  if (end + ctx.lateness_ms <= ctx.now_ms) {
    ++res.late;
    return nullptr;
  }
  return &insert(w.key(s), s);
}

void slice_state::apply_sample(series_entry& e, const wire::keyed_sample& s,
                               const apply_context& ctx, apply_result& res,
                               std::vector<opened_window>& opened) {
  switch (e.state.apply(s, ctx.now_ms, ctx.lateness_ms, ctx.accuracy, ctx.staleness_ms)) {
    case apply_outcome::applied:
      ++res.applied;
      break;
    case apply_outcome::applied_new_window:
      ++res.applied;
      note_open(e.state.window_ms, e.state.window_start(s.timestamp_ms), opened);
      break;
    case apply_outcome::late:
      ++res.late;
      break;
  }
}

slice_state::apply_result slice_state::apply(const shard_write& w,
                                             const slice_range& r,
                                             const apply_context& ctx,
                                             std::vector<opened_window>& opened) {
  apply_result res;
  if (w.sequence > ctx.max_sequence_jump && !is_node_producer(w.producer)) {
    // Checked before the producer gets a dedup entry: a refused write leaves none.
    auto* known = find_dedup(w.producer);
    auto highest = known == nullptr ? uint64_t{0} : known->highest();
    if (w.sequence - highest > ctx.max_sequence_jump) {
      res.code = errc::sequence_jump;
      res.message = "sequence " + std::to_string(w.sequence) + " jumps more than "
                    + std::to_string(ctx.max_sequence_jump)
                    + " above the highest applied for producer '" + w.producer
                    + "' (" + std::to_string(highest) + ")";
      return res;
    }
  }
  auto* entry = admit_sequence(w, ctx, res);
  if (entry == nullptr)
    return res;
  // Check first, then apply: a kind conflict leaves the slice unchanged.
  found_.clear();
  new_kinds_.clear();
  constexpr double overflow_risk_at = 1e300;
  bool overflow_risk = false;
  for (auto i = r.begin; i < r.end; ++i) {
    auto& s = w.samples[i];
    auto key = w.key(s);
    auto* e = find(key, s.hash);
    found_.push_back(e);
    // Below overflow_risk_at no batch (at most 1e6 samples) takes a total past DBL_MAX.
    overflow_risk |= s.kind == kind::counter
                     && (s.value >= overflow_risk_at
                         || (e != nullptr && e->state.total >= overflow_risk_at));
    auto existing = kind::unspecified;
    if (e != nullptr) {
      existing = e->state.kind;
    } else {
      auto [j, end] = new_kinds_.equal_range(s.hash);
      while (j != end && j->second.first != key)
        ++j;
      if (j != end)
        existing = j->second.second;
      else
        new_kinds_.emplace(s.hash, std::make_pair(key, s.kind));
    }
    if (existing != kind::unspecified && existing != s.kind) {
      res.code = errc::kind_conflict;
      res.message = "series " + std::string{key} + " is a " + to_string(existing)
                    + ", the batch sends it as a " + to_string(s.kind);
      return res;
    }
  }
  if (new_kinds_.size() > ctx.series_room) {
    res.code = errc::input_limit;
    res.message = std::to_string(new_kinds_.size()) + " new output series in slice "
                  + std::to_string(r.slice) + " would take the node past tether.max-series ("
                  + std::to_string(ctx.series_room) + " more allowed)";
    return res;
  }
  if (auto why = overflow_risk ? counter_overflow(w, r) : std::string{}; !why.empty()) {
    res.code = errc::non_finite_value;
    res.message = std::move(why);
    return res;
  }
  if (ctx.gate != nullptr) {
    if (auto why = ctx.gate->admit(w, r); !why.empty()) {
      res.code = errc::input_limit;
      res.message = std::move(why);
      return res;
    }
    ctx.gate->commit(w, r);
  }
  for (auto i = r.begin; i < r.end; ++i) {
    auto& s = w.samples[i];
    auto* e = found_[i - r.begin];
    if (e == nullptr && (e = entry_for(w, s, ctx, res)) == nullptr)
      continue;
    apply_sample(*e, s, ctx, res, opened);
  }
  record_sequence(*entry, w, ctx);
  return res;
}

} // namespace tether::series
