#include "directory/raft/raft_node.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <utility>

// A broken invariant of the protocol: log and abort (never continue with a log
// that may disagree with a committed prefix).
#define TETHER_RAFT_ASSERT(cond)                                                 \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "raft: invariant violated: %s (%s:%d)\n", #cond,      \
                   __FILE__, __LINE__);                                          \
      std::abort();                                                              \
    }                                                                            \
  } while (false)

namespace tether::directory::raft {

namespace {

log_index next_of(log_index i) {
  return log_index{i.value + 1};
}

} // namespace

raft_node::raft_node(member_id self, std::vector<member_id> members,
                     raft_config cfg, uint64_t seed, raft_storage* storage)
  : self_(self), members_(std::move(members)), cfg_(cfg), rng_(seed),
    storage_(storage) {
  TETHER_RAFT_ASSERT(std::find(members_.begin(), members_.end(), self_)
                     != members_.end());
  TETHER_RAFT_ASSERT(cfg_.election_timeout > cfg_.heartbeat_interval);
  TETHER_RAFT_ASSERT(cfg_.heartbeat_interval > 0);
  TETHER_RAFT_ASSERT(cfg_.max_entries_per_append > 0);
  if (storage_)
    load_from_storage();
  reset_volatile();
}

// -- observers ----------------------------------------------------------------

log_index raft_node::last_index() const noexcept {
  return log_.empty() ? snapshot_.last_index : log_.back().index;
}

raft::term raft_node::last_term() const noexcept {
  return log_.empty() ? snapshot_.last_term : log_.back().term;
}

std::optional<raft::term> raft_node::term_at(log_index i) const {
  if (i == snapshot_.last_index)
    return snapshot_.last_term; // also covers index 0 / term 0
  if (i < snapshot_.last_index || i > last_index())
    return std::nullopt;
  return at(i).term;
}

const entry& raft_node::at(log_index i) const {
  TETHER_RAFT_ASSERT(i > snapshot_.last_index && i <= last_index());
  return log_[i.value - snapshot_.last_index.value - 1];
}

// -- driving ------------------------------------------------------------------

void raft_node::tick() {
  if (failure_)
    return;
  ++elapsed_;
  if (role_ == raft::role::leader) {
    if (elapsed_ >= cfg_.heartbeat_interval) {
      elapsed_ = 0;
      broadcast_append();
    }
  } else if (elapsed_ >= timeout_) {
    start_pre_vote();
  }
  persist();
}

void raft_node::receive(const message& msg) {
  if (failure_ || msg.to != self_ || msg.from == self_)
    return;
  std::visit([this, &msg](const auto& x) { handle(msg.from, x); }, msg.payload);
  persist();
}

std::optional<log_index> raft_node::propose(std::string command) {
  if (failure_ || role_ != raft::role::leader)
    return std::nullopt;
  auto idx = next_of(last_index());
  append_local(entry_kind::command, std::move(command));
  if (failure_)
    return std::nullopt;
  // Peers that were caught up get the entry now; the others get it when their
  // outstanding append is answered or at the next heartbeat.
  for (auto& [peer, p] : progress_)
    if (p.next == idx)
      replicate_to(peer);
  return idx;
}

bool raft_node::compact(log_index upto, std::string state) {
  if (failure_ || upto > applied_ || upto <= snapshot_.last_index)
    return false;
  if (!persist())
    return false;
  auto t = term_at(upto);
  TETHER_RAFT_ASSERT(t.has_value());
  snapshot_ = raft::snapshot{upto, *t, std::move(state)};
  while (!log_.empty() && log_.front().index <= upto)
    log_.pop_front();
  if (storage_)
    if (auto err = storage_->save_snapshot(snapshot_))
      return halt(std::move(err));
  return true;
}

void raft_node::restart() {
  failure_ = storage_error{};
  if (storage_)
    load_from_storage();
  reset_volatile();
}

void raft_node::load_from_storage() {
  persisted_state st;
  if (auto err = storage_->load(st)) {
    halt(std::move(err));
    return;
  }
  auto expected = st.snapshot.last_index;
  for (auto& e : st.entries) {
    expected = next_of(expected);
    if (e.index != expected) {
      halt(storage_error{storage_errc::corrupt,
                         "raft: the storage returned entry "
                           + std::to_string(e.index.value) + " where "
                           + std::to_string(expected.value) + " belongs"});
      return;
    }
  }
  term_ = st.hard.term;
  voted_for_ = st.hard.voted_for;
  snapshot_ = std::move(st.snapshot);
  log_.assign(std::make_move_iterator(st.entries.begin()),
              std::make_move_iterator(st.entries.end()));
  hard_dirty_ = false;
  stable_ = last_index();
}

void raft_node::reset_volatile() {
  role_ = raft::role::follower;
  leader_.reset();
  commit_ = snapshot_.last_index;
  applied_ = snapshot_.last_index;
  votes_.clear();
  pre_votes_.clear();
  progress_.clear();
  outbox_.clear();
  committed_.clear();
  snapshot_to_apply_.reset();
  if (snapshot_.last_index > log_index{0})
    snapshot_to_apply_ = snapshot_;
  reset_election_timer();
}

// -- outputs ------------------------------------------------------------------

std::vector<message> raft_node::take_outbox() {
  return std::exchange(outbox_, {});
}

std::vector<entry> raft_node::take_committed() {
  return std::exchange(committed_, {});
}

std::optional<raft::snapshot> raft_node::take_snapshot_to_apply() {
  return std::exchange(snapshot_to_apply_, std::nullopt);
}

// -- durability ---------------------------------------------------------------

bool raft_node::persist() {
  if (failure_)
    return false;
  auto last = last_index();
  if (!storage_) {
    hard_dirty_ = false;
    stable_ = last;
    return true;
  }
  if (hard_dirty_) {
    if (auto err = storage_->save_hard_state(hard_state{term_, voted_for_}))
      return halt(std::move(err));
    hard_dirty_ = false;
  }
  if (stable_ > last) { // truncated and not replaced (yet)
    if (auto err = storage_->truncate(next_of(last)))
      return halt(std::move(err));
    stable_ = last;
  }
  if (last > stable_) {
    TETHER_RAFT_ASSERT(stable_ >= snapshot_.last_index);
    std::vector<entry> fresh;
    fresh.reserve(last.value - stable_.value);
    for (auto i = next_of(stable_); i <= last; i = next_of(i))
      fresh.push_back(at(i));
    if (auto err = storage_->append(fresh))
      return halt(std::move(err));
    stable_ = last;
  }
  return true;
}

bool raft_node::halt(storage_error err) {
  failure_ = std::move(err);
  outbox_.clear();
  role_ = raft::role::follower;
  leader_.reset();
  votes_.clear();
  progress_.clear();
  return false;
}

// -- roles --------------------------------------------------------------------

void raft_node::reset_election_timer() {
  elapsed_ = 0;
  timeout_ = cfg_.election_timeout
             + static_cast<uint32_t>(rng_() % cfg_.election_timeout);
}

void raft_node::become_follower(raft::term t, std::optional<member_id> leader) {
  TETHER_RAFT_ASSERT(t >= term_);
  if (t > term_) {
    term_ = t;
    voted_for_.reset();
    hard_dirty_ = true;
  }
  if (role_ != raft::role::follower) {
    role_ = raft::role::follower;
    reset_election_timer();
  }
  leader_ = leader;
  votes_.clear();
  pre_votes_.clear();
  progress_.clear();
}

void raft_node::start_pre_vote() {
  pre_term_ = raft::term{term_.value + 1};
  pre_votes_.assign(1, self_);
  reset_election_timer();
  if (pre_votes_.size() >= quorum())
    start_election();
  else
    request_votes(pre_term_, true);
}

void raft_node::request_votes(raft::term t, bool pre_vote) {
  for (auto peer : members_)
    if (peer != self_)
      send(peer, vote_request{t, last_index(), last_term(), pre_vote});
}

void raft_node::start_election() {
  pre_votes_.clear();
  term_ = raft::term{term_.value + 1};
  role_ = raft::role::candidate;
  voted_for_ = self_;
  hard_dirty_ = true;
  leader_.reset();
  votes_.assign(1, self_);
  progress_.clear();
  reset_election_timer();
  if (votes_.size() >= quorum())
    become_leader();
  else
    request_votes(term_, false);
}

void raft_node::become_leader() {
  role_ = raft::role::leader;
  leader_ = self_;
  votes_.clear();
  progress_.clear();
  elapsed_ = 0;
  for (auto peer : members_)
    if (peer != self_)
      progress_.emplace(peer, progress{next_of(last_index()), log_index{0}});
  append_local(entry_kind::noop, {});
  broadcast_append();
}

// -- replication --------------------------------------------------------------

void raft_node::append_local(entry_kind kind, std::string command) {
  log_.push_back(entry{term_, next_of(last_index()), kind, std::move(command)});
  // Durable before it counts towards a quorum (and before it is sent).
  if (persist())
    leader_update_commit();
}

void raft_node::send(member_id to, payload p) {
  // Every message depends on the term and vote; an append reply and a snapshot
  // reply on the log: all of it must be durable before the message can leave.
  if (!persist())
    return;
  outbox_.push_back(message{self_, to, std::move(p)});
}

void raft_node::replicate_to(member_id peer) {
  auto& p = progress_.at(peer);
  if (p.next <= snapshot_.last_index) {
    send(peer, install_snapshot{term_, snapshot_});
    return;
  }
  auto prev = log_index{p.next.value - 1};
  auto prev_term = term_at(prev);
  TETHER_RAFT_ASSERT(prev_term.has_value());
  append_entries msg{term_, prev, *prev_term, {}, commit_};
  auto last = last_index();
  for (auto i = p.next; i <= last && msg.entries.size() < cfg_.max_entries_per_append;
       i = next_of(i))
    msg.entries.push_back(at(i));
  send(peer, std::move(msg));
}

void raft_node::broadcast_append() {
  for (auto& kvp : progress_)
    replicate_to(kvp.first);
}

void raft_node::advance_commit(log_index new_commit) {
  if (failure_ || new_commit <= commit_)
    return;
  TETHER_RAFT_ASSERT(new_commit <= last_index());
  for (auto i = next_of(commit_); i <= new_commit; i = next_of(i))
    committed_.push_back(at(i));
  commit_ = new_commit;
  applied_ = new_commit;
}

void raft_node::leader_update_commit() {
  if (failure_ || role_ != raft::role::leader)
    return;
  // Only entries of the current term are committed by counting replicas; the
  // entries before them commit implicitly (Raft's safety rule). The leader counts
  // itself only for entries in its storage.
  for (auto n = last_index(); n > commit_; n = log_index{n.value - 1}) {
    if (*term_at(n) != term_)
      return;
    size_t count = n <= stable_ ? 1 : 0;
    for (auto& kvp : progress_)
      if (kvp.second.match >= n)
        ++count;
    if (count >= quorum()) {
      advance_commit(n);
      return;
    }
  }
}

void raft_node::truncate_from(log_index i) {
  TETHER_RAFT_ASSERT(i > commit_);
  TETHER_RAFT_ASSERT(i > snapshot_.last_index);
  while (!log_.empty() && log_.back().index >= i)
    log_.pop_back();
  stable_ = std::min(stable_, last_index());
}

// -- handlers -----------------------------------------------------------------

void raft_node::handle(member_id from, const vote_request& x) {
  bool up_to_date = x.last_log_term > last_term()
                    || (x.last_log_term == last_term()
                        && x.last_log_index >= last_index());
  if (x.pre_vote) {
    // No term or vote changes here: only whether a vote at x.term could go to it.
    bool leader_heard = role_ == raft::role::leader
                        || (leader_.has_value() && elapsed_ < cfg_.election_timeout);
    bool granted = x.term > term_ && up_to_date && !leader_heard;
    send(from, vote_reply{granted ? x.term : term_, granted, true});
    return;
  }
  if (x.term > term_)
    become_follower(x.term, std::nullopt);
  bool granted = x.term == term_ && role_ == raft::role::follower
                 && (!voted_for_ || *voted_for_ == from) && up_to_date;
  if (granted) {
    voted_for_ = from;
    hard_dirty_ = true;
    reset_election_timer();
  }
  send(from, vote_reply{term_, granted});
}

void raft_node::handle(member_id from, const vote_reply& x) {
  if (x.pre_vote) {
    if (!x.granted) {
      if (x.term > term_)
        become_follower(x.term, std::nullopt);
      return;
    }
    if (role_ == raft::role::leader || pre_votes_.empty() || x.term != pre_term_)
      return;
    if (std::find(pre_votes_.begin(), pre_votes_.end(), from) == pre_votes_.end())
      pre_votes_.push_back(from);
    if (pre_votes_.size() >= quorum())
      start_election();
    return;
  }
  if (x.term > term_) {
    become_follower(x.term, std::nullopt);
    return;
  }
  if (role_ != raft::role::candidate || x.term != term_ || !x.granted)
    return;
  if (std::find(votes_.begin(), votes_.end(), from) == votes_.end())
    votes_.push_back(from);
  if (votes_.size() >= quorum())
    become_leader();
}

void raft_node::handle(member_id from, const append_entries& x) {
  if (x.term < term_) {
    send(from, append_reply{term_, false, log_index{0}, log_index{0}});
    return;
  }
  TETHER_RAFT_ASSERT(!(x.term == term_ && role_ == raft::role::leader));
  become_follower(x.term, from);
  reset_election_timer();
  auto prev = x.prev_log_index;
  auto prev_term = x.prev_log_term;
  size_t skip = 0;
  // Entries up to our snapshot are committed and therefore agree with the leader.
  if (prev < snapshot_.last_index) {
    while (skip < x.entries.size() && x.entries[skip].index <= snapshot_.last_index)
      ++skip;
    prev = snapshot_.last_index;
    prev_term = snapshot_.last_term;
  }
  if (prev > last_index()) {
    send(from, append_reply{term_, false, log_index{0}, next_of(last_index())});
    return;
  }
  auto local = term_at(prev);
  TETHER_RAFT_ASSERT(local.has_value());
  if (*local != prev_term) {
    // Skip back over the whole conflicting term in one step.
    auto hint = prev;
    while (hint > next_of(snapshot_.last_index) && hint > next_of(commit_)
           && term_at(log_index{hint.value - 1}) == local)
      hint = log_index{hint.value - 1};
    send(from, append_reply{term_, false, log_index{0}, hint});
    return;
  }
  for (size_t k = skip; k < x.entries.size(); ++k) {
    const auto& e = x.entries[k];
    auto mine = term_at(e.index);
    if (mine && *mine == e.term)
      continue; // already stored (e.g. a duplicate or reordered message)
    if (mine)
      truncate_from(e.index);
    TETHER_RAFT_ASSERT(e.index == next_of(last_index()));
    log_.push_back(e);
  }
  auto verified = log_index{prev.value + (x.entries.size() - skip)};
  advance_commit(std::min(x.leader_commit, verified));
  send(from, append_reply{term_, true, verified, log_index{0}});
}

void raft_node::handle(member_id from, const append_reply& x) {
  if (x.term > term_) {
    become_follower(x.term, std::nullopt);
    return;
  }
  if (role_ != raft::role::leader || x.term != term_)
    return;
  auto& p = progress_.at(from);
  if (x.success) {
    p.match = std::max(p.match, x.match_index);
    p.next = std::max(p.next, next_of(p.match));
    leader_update_commit();
    if (p.next <= last_index())
      replicate_to(from);
    return;
  }
  auto back = log_index{p.next.value > 1 ? p.next.value - 1 : 1};
  auto hint = x.hint_index.value > 0 ? x.hint_index : log_index{1};
  p.next = std::max(next_of(p.match), std::min(back, hint));
  replicate_to(from);
}

void raft_node::handle(member_id from, const install_snapshot& x) {
  if (x.term < term_) {
    send(from, snapshot_reply{term_, log_index{0}});
    return;
  }
  TETHER_RAFT_ASSERT(!(x.term == term_ && role_ == raft::role::leader));
  become_follower(x.term, from);
  reset_election_timer();
  const auto& snap = x.snapshot;
  if (snap.last_index > commit_) {
    if (!persist()) // the term; the log is already durable
      return;
    auto local = term_at(snap.last_index);
    if (local && *local == snap.last_term) {
      while (!log_.empty() && log_.front().index <= snap.last_index)
        log_.pop_front();
    } else {
      log_.clear();
    }
    snapshot_ = snap;
    if (storage_)
      if (auto err = storage_->save_snapshot(snapshot_)) {
        halt(std::move(err));
        return;
      }
    stable_ = last_index();
    commit_ = snap.last_index;
    applied_ = snap.last_index;
    committed_.clear(); // all older than the snapshot, which covers them
    snapshot_to_apply_ = snap;
  }
  send(from, snapshot_reply{term_, snap.last_index});
}

void raft_node::handle(member_id from, const snapshot_reply& x) {
  if (x.term > term_) {
    become_follower(x.term, std::nullopt);
    return;
  }
  if (role_ != raft::role::leader || x.term != term_)
    return;
  auto& p = progress_.at(from);
  p.match = std::max(p.match, x.match_index);
  p.next = std::max(p.next, next_of(p.match));
  leader_update_commit();
  if (p.next <= last_index())
    replicate_to(from);
}

} // namespace tether::directory::raft
