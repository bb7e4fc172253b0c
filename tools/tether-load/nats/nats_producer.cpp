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

} // namespace

nats_producer::nats_producer(load::run_context& ctx, std::uint32_t index)
  : ctx_(ctx),
    index_(index),
    producer_(ctx.opts.producer + "-" + ctx.run_id + "-" + std::to_string(index)),
    subject_("tether.load." + std::to_string(index)),
    builder_(load::make_batch_builder(ctx.opts, index)),
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

void nats_producer::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                           void* closure) {
  static_cast<nats_producer*>(closure)->handle_ack(msg, pa, pae);
  natsMsg_Destroy(msg);
}

void nats_producer::handle_ack(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
  auto now = clock::now();
  auto seq = sequence_of(msg);
  std::unique_lock<std::mutex> guard{mutex_};
  auto entry = window_.take(seq);
  if (!entry) {
    ++counters_.errors;
    guard.unlock();
    ctx_.report_error("producer " + std::to_string(index_) + ": ack for sequence "
                      + std::to_string(seq) + ", which is not outstanding");
    return;
  }
  if (pa != nullptr) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - entry->sent).count();
    latency_.record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
    last_ack_ = now;
    ++counters_.batches_acked;
    counters_.samples_acked += entry->samples;
    if (pa->Duplicate)
      ++counters_.duplicates;
    else
      counters_.samples_accepted += entry->samples;
    ctx_.samples_acked.fetch_add(entry->samples, std::memory_order_relaxed);
  } else {
    ++counters_.batches_failed;
    ++counters_.errors;
  }
  ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
  cv_.notify_all();
  guard.unlock();
  if (pa == nullptr) {
    std::string why = pae != nullptr ? std::string{natsStatus_GetText(pae->Err)} : "no ack";
    if (pae != nullptr && pae->ErrText != nullptr)
      why += std::string{": "} + pae->ErrText;
    ctx_.report_error("producer " + std::to_string(index_) + ": sequence "
                      + std::to_string(seq) + " not stored: " + why);
  }
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
  if (s == NATS_OK)
    s = js_PublishMsgAsync(js_, &msg, nullptr);
  natsMsg_Destroy(msg); // no-op when the library took it
  if (s != NATS_OK) {
    ctx_.report_error("producer " + std::to_string(index_) + ": publish of sequence "
                      + std::to_string(sequence) + ": " + natsStatus_GetText(s));
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
  std::unique_lock<std::mutex> lock{mutex_};
  for (;;) {
    if (stop_)
      break;
    auto latency_from = clock::now();
    if (open_loop) {
      auto due = schedule.at(next_slot);
      if (due >= send_end)
        break;
      cv_.wait_until(lock, due, [&] { return stop_; });
      if (stop_)
        break;
      if (clock::now() < due)
        continue; // woken early
      latency_from = due;
    } else if (latency_from >= send_end) {
      break;
    }
    cv_.wait_until(lock, send_end, [&] { return stop_ || !window_.full(); });
    if (stop_ || window_.full())
      break; // stopped, or the end came while the window was full
    auto now = clock::now();
    if (!open_loop)
      latency_from = now;
    auto samples = ctx_.budget.reserve(builder_.batch_size());
    if (samples == 0)
      break;
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
    ++counters_.batches_sent;
    counters_.samples_sent += samples;
    ctx_.batches_sent.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    bool ok = publish(bytes, sequence); // the ack handler takes the lock
    lock.lock();
    if (!ok && window_.take(sequence)) {
      ++counters_.batches_failed;
      ++counters_.errors;
      ctx_.batches_answered.fetch_add(1, std::memory_order_relaxed);
    }
  }
  stopped_at_ = clock::now();
  auto drain_until = stopped_at_ + opts.drain_timeout;
  cv_.wait_until(lock, drain_until, [&] { return abort_ || window_.empty(); });
  lock.unlock();
  disconnect(); // no ack callback runs after this
  lock.lock();
  counters_.batches_unacked = window_.size();
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
