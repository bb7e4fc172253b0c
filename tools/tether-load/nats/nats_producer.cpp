#include "nats_producer.hpp"

#include "tether-load/visibility_tracker.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tether::tools::nats {

namespace {

/// The sequence at the end of a `PRODUCER:SEQUENCE` message id.
std::uint64_t sequence_of(natsMsg* msg) {
  const char* id = nullptr;
  if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || id == nullptr)
    return 0;
  const char* colon = std::strrchr(id, ':');
  if (colon == nullptr)
    return 0;
  std::uint64_t seq = 0;
  std::from_chars(colon + 1, id + std::strlen(id), seq);
  return seq;
}

/// Whether a failed publish may succeed when sent again: its ack did not come in time,
/// nobody took it, or the stream has no leader at the moment.
bool retryable(const jsPubAckErr* pae) {
  if (pae == nullptr)
    return true; // no ack and no reason: the outcome is unknown
  return pae->Err == NATS_TIMEOUT || pae->Err == NATS_NO_RESPONDERS
         || pae->ErrCode == JSClusterNotAvailErr || pae->ErrCode == JSClusterNotLeaderErr;
}

std::string reason(const jsPubAckErr* pae) {
  std::string why = pae != nullptr ? std::string{natsStatus_GetText(pae->Err)} : "no ack";
  if (pae != nullptr && pae->ErrText != nullptr)
    why += std::string{": "} + pae->ErrText;
  return why;
}

/// The URL of the server `nc` is connected to (empty if none).
std::string url_of(natsConnection* nc) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof(buf)) != NATS_OK)
    return {};
  return buf;
}

} // namespace

nats_producer::nats_producer(load::run_context& ctx, std::uint32_t index,
                             std::chrono::milliseconds publish_timeout)
  : ctx_(ctx),
    index_(index),
    producer_(ctx.opts.producer + "-" + ctx.run_id + "-" + std::to_string(index)),
    subject_("tether.load." + std::to_string(index)),
    builder_(load::make_batch_builder(ctx.opts, index)),
    publish_timeout_(publish_timeout),
    window_(ctx.opts.inflight) {
  // nop
}

nats_producer::~nats_producer() {
  disconnect();
}

std::string nats_producer::connect(const std::vector<std::string>& urls) {
  natsOptions* opts = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK)
    return "natsOptions_Create failed";
  // Spread the producers over the servers: server index % n first, then the others.
  std::vector<const char*> ordered;
  for (std::size_t i = 0; i < urls.size(); ++i)
    ordered.push_back(urls[(index_ + i) % urls.size()].c_str());
  natsOptions_SetServers(opts, ordered.data(), static_cast<int>(ordered.size()));
  natsOptions_SetNoRandomize(opts, true);
  natsOptions_SetTimeout(opts, ctx_.opts.connect_timeout.count());
  natsOptions_SetName(opts, producer_.c_str());
  natsOptions_SetReconnectedCB(opts, &nats_producer::on_reconnected, this);
  auto s = natsConnection_Connect(&conn_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK)
    return "producer " + std::to_string(index_) + ": connect: " + natsStatus_GetText(s);
  if (static_cast<std::int64_t>(builder_.max_frame_bytes())
      > natsConnection_GetMaxPayload(conn_))
    return "a batch of " + std::to_string(ctx_.opts.batch) + " samples takes up to "
           + std::to_string(builder_.max_frame_bytes())
           + " bytes, above the server's max_payload; lower --batch";
  jsOptions jo;
  jsOptions_Init(&jo);
  // The window bounds what is outstanding; libnats' own bound only has to stay clear.
  jo.PublishAsync.MaxPending = static_cast<int64_t>(ctx_.opts.inflight) * 2 + 16;
  jo.PublishAsync.AckHandler = &nats_producer::on_ack;
  jo.PublishAsync.AckHandlerClosure = this;
  s = natsConnection_JetStream(&js_, conn_, &jo);
  if (s != NATS_OK)
    return "producer " + std::to_string(index_) + ": JetStream context: "
           + natsStatus_GetText(s);
  counters_.connections_ok = 1;
  return {};
}

std::string nats_producer::connected_url() const {
  return conn_ == nullptr ? std::string{} : url_of(conn_);
}

void nats_producer::disconnect() {
  if (conn_ != nullptr)
    natsConnection_Close(conn_); // no more ack callbacks after this returns
  if (js_ != nullptr) {
    jsCtx_Destroy(js_);
    js_ = nullptr;
  }
  if (conn_ != nullptr) {
    natsConnection_Destroy(conn_);
    conn_ = nullptr;
  }
}

void nats_producer::on_reconnected(natsConnection* nc, void* closure) {
  auto* self = static_cast<nats_producer*>(closure);
  self->reconnects_.fetch_add(1, std::memory_order_relaxed);
  self->ctx_.note("producer " + std::to_string(self->index_) + ": reconnected to " + url_of(nc));
}

void nats_producer::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                           void* closure) {
  static_cast<nats_producer*>(closure)->handle_ack(msg, pa, pae);
  natsMsg_Destroy(msg);
}

void nats_producer::handle_ack(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
  auto now = clock::now();
  auto seq = sequence_of(msg);
  std::unique_lock<std::mutex> guard{mutex_};
  const auto* entry = window_.find(seq);
  if (entry == nullptr) {
    ++counters_.errors;
    guard.unlock();
    ctx_.report_error("producer " + std::to_string(index_) + ": ack for sequence "
                      + std::to_string(seq) + ", which is not outstanding");
    return;
  }
  if (pa == nullptr && ctx_.opts.retry_timeout.count() > 0 && retryable(pae)
      && now - entry->sent < ctx_.opts.retry_timeout && !abort_) {
    auto delay = load::resend_buffer::backoff(resend_.attempts(seq));
    if (resend_.schedule(seq, now + delay)) {
      wake_ = true;
      cv_.notify_all();
      guard.unlock();
      ctx_.note("producer " + std::to_string(index_) + ": sequence " + std::to_string(seq)
                + " not stored (" + reason(pae) + "): publishing it again in "
                + std::to_string(delay.count()) + " ms");
      return;
    }
  }
  auto taken = window_.take(seq);
  resend_.release(seq);
  if (pa != nullptr) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - taken->sent).count();
    if (ctx_.measured(taken->sent))
      latency_.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
    last_ack_ = now;
    ++counters_.batches_acked;
    counters_.samples_acked += taken->samples;
    if (pa->Duplicate)
      ++counters_.duplicates;
    else
      counters_.samples_accepted += taken->samples;
    ctx_.samples_acked.fetch_add(taken->samples, std::memory_order_relaxed);
    ctx_.acked.record(now, taken->samples);
  } else {
    ++counters_.batches_failed;
    ++counters_.errors;
  }
  ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
  cv_.notify_all();
  guard.unlock();
  if (pa == nullptr)
    ctx_.report_error("producer " + std::to_string(index_) + ": sequence "
                      + std::to_string(seq) + " not stored: " + reason(pae));
}

bool nats_producer::publish(std::string_view bytes, std::uint64_t sequence) {
  natsMsg* msg = nullptr;
  auto s = natsMsg_Create(&msg, subject_.c_str(), nullptr, bytes.data(),
                          static_cast<int>(bytes.size()));
  char id[160];
  std::snprintf(id, sizeof(id), "%s:%llu", producer_.c_str(),
                static_cast<unsigned long long>(sequence));
  if (s == NATS_OK)
    s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(msg, "Tether-Producer", producer_.c_str());
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = publish_timeout_.count(); // the ack handler gets NATS_TIMEOUT after this
  if (s == NATS_OK)
    s = js_PublishMsgAsync(js_, &msg, &po);
  natsMsg_Destroy(msg); // no-op when the library took it
  if (s != NATS_OK) {
    auto text = "producer " + std::to_string(index_) + ": publish of sequence "
                + std::to_string(sequence) + ": " + natsStatus_GetText(s);
    if (ctx_.opts.retry_timeout.count() > 0)
      ctx_.note(text + " (tried again)");
    else
      ctx_.report_error(text);
    return false;
  }
  return true;
}

void nats_producer::run(clock::time_point start) {
  const auto& opts = ctx_.opts;
  const bool open_loop = opts.rate != 0;
  load::send_schedule schedule;
  if (open_loop)
    schedule = load::send_schedule{opts.rate, opts.batch, opts.connections, index_, start};
  const auto send_end = start + opts.duration;
  std::uint64_t next_slot = 0;
  std::uint64_t last_sequence = 0;
  bool sending = true;
  auto drain_until = clock::time_point::max();
  auto stop_sending = [&] {
    if (!sending)
      return;
    sending = false;
    stopped_at_ = clock::now();
    drain_until = stopped_at_ + opts.drain_timeout;
  };
  std::unique_lock<std::mutex> lock{mutex_};
  for (;;) {
    if (abort_)
      break;
    wake_ = false;
    auto now = clock::now();
    // Batches to publish again go first, in sequence order.
    auto retry_at = clock::time_point::max();
    if (auto due = resend_.pop_due(now, retry_at)) {
      // The frame stays valid: only this thread adds frames.
      auto seq = due->sequence;
      auto frame = due->frame;
      ++counters_.retries;
          lock.unlock();
      bool ok = publish(frame, seq);
      lock.lock();
      if (!ok) // not even handed to the library: try again later
        resend_.schedule(seq, clock::now() + load::resend_buffer::backoff(resend_.attempts(seq)));
      continue;
    }
    if (stop_)
      stop_sending();
    if (!sending) {
      if (window_.empty() || now >= drain_until)
        break;
      cv_.wait_until(lock, std::min(drain_until, retry_at),
                     [&] { return abort_ || wake_ || window_.empty(); });
      continue;
    }
    auto latency_from = now;
    if (open_loop) {
      auto due = schedule.at(next_slot);
      if (due >= send_end) {
        stop_sending();
        continue;
      }
      if (now < due) {
        cv_.wait_until(lock, std::min(due, retry_at), [&] { return stop_ || wake_; });
        continue;
      }
      latency_from = due;
    } else if (now >= send_end) {
      stop_sending();
      continue;
    }
    if (window_.full() || resend_.waiting()) {
      cv_.wait_until(lock, std::min(send_end, retry_at), [&] {
        return stop_ || wake_ || (!window_.full() && !resend_.waiting());
      });
      continue;
    }
    if (!open_loop)
      latency_from = now;
    auto samples = ctx_.budget.reserve(builder_.batch_size());
    if (samples == 0) {
      stop_sending();
      continue;
    }
    if (open_loop) {
      ++next_slot;
      if (load::send_schedule::is_late(latency_from, now))
        ++counters_.batches_late;
    }
    auto sequence = ++last_sequence;
    auto bytes = builder_.next(sequence, samples);
    if (ctx_.tracker != nullptr)
      ctx_.tracker->on_batch(builder_.ids(), latency_from);
    window_.push({sequence, latency_from, samples});
    if (opts.retry_timeout.count() > 0)
      resend_.keep(sequence, std::string_view{bytes.data(), bytes.size()});
    ++counters_.batches_sent;
    counters_.samples_sent += samples;
    ctx_.batches_sent.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    bool ok = publish(bytes, sequence); // the ack handler takes the lock
    lock.lock();
    if (!ok && window_.find(sequence) != nullptr) {
      if (opts.retry_timeout.count() > 0) {
        resend_.schedule(sequence, clock::now() + load::resend_buffer::backoff(0));
      } else {
        window_.take(sequence);
        ++counters_.batches_failed;
        ++counters_.errors;
        ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  stop_sending();
  lock.unlock();
  disconnect(); // no ack callback runs after this
  lock.lock();
  counters_.batches_unacked = window_.size();
  counters_.reconnects = reconnects_.load(std::memory_order_relaxed);
  finished_.store(true, std::memory_order_release);
}

void nats_producer::request_stop() {
  std::lock_guard<std::mutex> guard{mutex_};
  stop_ = true;
  cv_.notify_all();
}

void nats_producer::abort() {
  std::lock_guard<std::mutex> guard{mutex_};
  stop_ = true;
  abort_ = true;
  cv_.notify_all();
}

} // namespace tether::tools::nats
