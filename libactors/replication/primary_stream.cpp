#include "replication/primary_stream.hpp"

#include <algorithm>

namespace tether::replication {

primary_stream::primary_stream(uint32_t slice, uint64_t epoch,
                               series::stream_position last, uint64_t committed,
                               size_t quorum)
  : slice_(slice),
    epoch_(epoch),
    last_(last),
    committed_(std::min(committed, last.seq)),
    told_(committed_),
    quorum_(std::max<size_t>(quorum, 1)) {
  advance();
}

primary_stream::~primary_stream() {
  fail(true);
}

primary_stream::follower* primary_stream::find(const std::string& name) {
  for (auto& f : followers_)
    if (f.name == name)
      return &f;
  return nullptr;
}

void primary_stream::set_followers(const std::vector<std::string>& names,
                                   size_t quorum) {
  std::vector<follower> next;
  next.reserve(names.size());
  for (auto& name : names) {
    if (auto* f = find(name)) {
      next.push_back(std::move(*f));
      continue;
    }
    follower f;
    f.name = name;
    next.push_back(std::move(f));
  }
  followers_ = std::move(next);
  quorum_ = std::max<size_t>(quorum, 1);
  advance();
}

void primary_stream::check_quorum() {
  if (!can_reach_quorum())
    fail(false);
}

replication::replica_item primary_stream::append(replication::item_kind kind, int64_t now_ms) {
  replication::replica_item it;
  it.slice = slice_;
  it.epoch = epoch_;
  it.seq = last_.seq + 1;
  it.prev_epoch = last_.epoch;
  it.kind = kind;
  it.now_ms = now_ms;
  last_ = series::stream_position{epoch_, it.seq};
  if (quorum_ <= 1)
    advance();
  return it;
}

replication::replica_item primary_stream::append_barrier(int64_t now_ms) {
  auto it = append(replication::item_kind::barrier, now_ms);
  barrier_ = it.seq;
  return it;
}

bool primary_stream::can_reach_quorum() const noexcept {
  size_t n = 1;
  for (auto& f : followers_)
    if (f.shard && f.state != link::idle)
      ++n;
  return n >= quorum_;
}

void primary_stream::fence(uint64_t e) {
  fenced_ = true;
  fenced_by_ = std::max(fenced_by_, e);
  fail(false);
}

void primary_stream::acked(follower& f, uint64_t seq) {
  if (seq <= f.acked)
    return;
  f.acked = std::min(seq, last_.seq);
  advance();
}

void primary_stream::lost(follower& f) {
  f.state = link::idle;
  if (!can_reach_quorum())
    fail(false);
}

void primary_stream::wait(uint64_t seq, bool keep_on_loss, callback cb) {
  if (seq <= committed_) {
    cb(true);
    return;
  }
  if (!keep_on_loss && (fenced_ || !can_reach_quorum())) {
    cb(false);
    return;
  }
  auto pos = waiters_.end();
  while (pos != waiters_.begin() && std::prev(pos)->seq > seq)
    --pos;
  waiters_.insert(pos, waiter{seq, keep_on_loss, std::move(cb)});
}

void primary_stream::hold_marks(uint64_t seq,
                                const std::vector<replication::window_ref>& windows) {
  if (seq <= committed_)
    return;
  for (auto& w : windows)
    marks_.push_back(series::window_mark{seq, w.window_ms, w.start});
}

void primary_stream::adopt_marks(const std::vector<series::window_mark>& marks) {
  for (auto& m : marks)
    if (m.seq > committed_)
      marks_.push_back(m);
}

void primary_stream::fail(bool all) {
  if (waiters_.empty())
    return;
  std::vector<callback> failed;
  for (auto i = waiters_.begin(); i != waiters_.end();) {
    if (all || !i->keep_on_loss) {
      failed.push_back(std::move(i->cb));
      i = waiters_.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& cb : failed)
    cb(false);
}

void primary_stream::advance() {
  uint64_t point = last_.seq;
  if (quorum_ > 1) {
    auto need = quorum_ - 1;
    if (followers_.size() < need)
      return;
    if (need == 1) { // RF 2 and 3: the best follower decides
      uint64_t best = 0;
      for (auto& f : followers_)
        best = std::max(best, f.acked);
      point = std::min(point, best);
    } else {
      std::vector<uint64_t> acks;
      acks.reserve(followers_.size());
      for (auto& f : followers_)
        acks.push_back(f.acked);
      std::nth_element(acks.begin(), acks.begin() + static_cast<long>(need - 1),
                       acks.end(), std::greater<uint64_t>{});
      point = std::min(point, acks[need - 1]);
    }
  }
  if (point <= committed_)
    return;
  committed_ = point;
  marks_.erase(std::remove_if(marks_.begin(), marks_.end(),
                              [this](const series::window_mark& m) {
                                return m.seq <= committed_;
                              }),
               marks_.end());
  std::vector<callback> done;
  while (!waiters_.empty() && waiters_.front().seq <= committed_) {
    done.push_back(std::move(waiters_.front().cb));
    waiters_.pop_front();
  }
  for (auto& cb : done)
    cb(true);
}

} // namespace tether::replication
