#include "nats_consumer.hpp"

#include "tether-load/visibility_tracker.hpp"
#include "wire/codec.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <set>
#include <thread>
#include <unistd.h>

namespace tether::tools::nats {

namespace {

/// How long one pull waits for messages when none are there: bounds how late the
/// consumer notices a drain or an abort, and how late an idle consumer closes windows.
constexpr std::int64_t fetch_wait_ms = 50;

/// The URL of the server `nc` is connected to (empty if none).
std::string url_of(natsConnection* nc) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof(buf)) != NATS_OK)
    return {};
  return buf;
}

/// The ids of this process's threads.
std::set<long> thread_ids() {
  std::set<long> out;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (auto* e = readdir(dir))
      if (e->d_name[0] != '.')
        out.insert(std::strtol(e->d_name, nullptr, 10));
    closedir(dir);
  }
  return out;
}

/// User plus system CPU seconds of thread `tid` of this process (0 once it is gone).
double thread_cpu_seconds(long tid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr)
    return 0.0;
  char buf[1024];
  auto n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command (which may hold spaces) start after the last ')';
  // utime and stime are fields 14 and 15, the 12th and 13th after it.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr)
    return 0.0;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2)
    return 0.0;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// CPU seconds the calling thread used.
double own_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

} // namespace

nats_consumer::nats_consumer(load::run_context& ctx, aggregator_config cfg,
                             std::uint32_t fetch, bool pull)
  : ctx_(ctx), aggregator_(std::move(cfg)), fetch_(fetch), pull_(pull) {
  if (ctx_.tracker != nullptr) {
    for (std::size_t i = 0; i < ctx_.tracker->size(); ++i)
      keys_.push_back(ctx_.tracker->key(i));
    found_.assign(keys_.size(), false);
  }
}

nats_consumer::~nats_consumer() {
  disconnect();
}

std::string nats_consumer::connect(const std::vector<std::string>& urls,
                                   const std::string& stream, const std::string& durable,
                                   std::chrono::milliseconds ack_wait) {
  natsOptions* opts = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK)
    return "natsOptions_Create failed";
  std::vector<const char*> servers;
  for (const auto& u : urls)
    servers.push_back(u.c_str());
  natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  natsOptions_SetNoRandomize(opts, true);
  natsOptions_SetTimeout(opts, ctx_.opts.connect_timeout.count());
  natsOptions_SetName(opts, "tether-nats-baseline consumer");
  natsOptions_SetReconnectedCB(opts, &nats_consumer::on_reconnected, this);
  auto before = thread_ids();
  auto s = natsConnection_Connect(&conn_, opts);
  natsOptions_Destroy(opts);
  // The threads the connection started (reader, flusher): they work for the consumer
  // alone, so their CPU belongs to the broker side's cost (cpu_seconds()).
  for (auto tid : thread_ids())
    if (before.count(tid) == 0)
      conn_threads_.push_back(tid);
  if (s != NATS_OK)
    return std::string{"consumer: connect: "} + natsStatus_GetText(s);
  s = natsConnection_JetStream(&js_, conn_, nullptr);
  if (s != NATS_OK)
    return std::string{"consumer: JetStream context: "} + natsStatus_GetText(s);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.Durable = durable.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.DeliverPolicy = js_DeliverAll;
  so.Config.MaxAckPending = static_cast<int64_t>(fetch_) * 16;
  so.Config.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(ack_wait).count();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (pull_) {
    s = js_PullSubscribe(&sub_, js_, "tether.load.>", durable.c_str(), nullptr, &so, &jerr);
  } else {
    s = js_SubscribeSync(&sub_, js_, "tether.load.>", nullptr, &so, &jerr);
    // The server bounds what is outstanding (MaxAckPending); the client need not.
    if (s == NATS_OK)
      s = natsSubscription_SetPendingLimits(sub_, -1, -1);
  }
  if (s != NATS_OK)
    return std::string{"consumer: subscribe: "} + natsStatus_GetText(s) + " ("
           + nats_GetLastError(nullptr) + ")";
  return {};
}

void nats_consumer::on_reconnected(natsConnection* nc, void* closure) {
  auto* self = static_cast<nats_consumer*>(closure);
  self->reconnects_.fetch_add(1, std::memory_order_relaxed);
  self->ctx_.note("consumer: reconnected to " + url_of(nc));
}

std::string nats_consumer::connected_url() const {
  return conn_ == nullptr ? std::string{} : url_of(conn_);
}

void nats_consumer::disconnect() {
  if (sub_ != nullptr) {
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
  }
  if (js_ != nullptr) {
    jsCtx_Destroy(js_);
    js_ = nullptr;
  }
  if (conn_ != nullptr) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
    conn_ = nullptr;
  }
}

std::uint64_t nats_consumer::missing_keys() const noexcept {
  return static_cast<std::uint64_t>(std::count(found_.begin(), found_.end(), false));
}

void nats_consumer::handle(natsMsg* msg) {
  const char* producer = nullptr;
  if (natsMsgHeader_Get(msg, "Tether-Producer", &producer) != NATS_OK || producer == nullptr)
    producer = "";
  // Samples sent with timestamp 0 take the time the write entered the system: on a
  // node the gateway's receive time, here the time JetStream stored the message.
  auto now_ms = tether::wire::now_ms();
  auto received_ms = now_ms;
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta != nullptr) {
    received_ms = meta->Timestamp / 1'000'000;
    jsMsgMetaData_Destroy(meta);
  }
  auto out = aggregator_.apply(producer, natsMsg_GetData(msg),
                               static_cast<std::size_t>(natsMsg_GetDataLength(msg)),
                               received_ms, now_ms);
  auto now = clock::now();
  ++counters_.messages;
  counters_.samples_applied += out.applied;
  counters_.samples_late += out.late;
  if (out.duplicate)
    ++counters_.duplicates;
  if (!out.error.empty()) {
    ++counters_.errors;
    ctx_.report_error("consumer: message refused: " + out.error);
  }
  last_apply_ = now;
  messages_.store(counters_.messages, std::memory_order_relaxed);
  applied_.store(counters_.samples_applied, std::memory_order_relaxed);
  if (ctx_.tracker != nullptr)
    observe(now);
  // Explicit ack once applied; a message not acked would be redelivered after AckWait
  // and then be a duplicate, as a retried write is for a node.
  if (natsMsg_Ack(msg, nullptr) != NATS_OK)
    ++counters_.errors;
}

void nats_consumer::observe(clock::time_point now) {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    const auto* st = aggregator_.find(keys_[i]);
    if (st == nullptr)
      continue;
    found_[i] = true;
    ctx_.tracker->on_observed(i, running_count(*st), now);
  }
}

bool nats_consumer::done(clock::time_point now) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (abort_)
    return true;
  if (!draining_)
    return false;
  if (now >= deadline_)
    return true;
  bool visible = ctx_.tracker == nullptr || ctx_.tracker->pending_total() == 0;
  return counters_.messages >= expected_ && visible;
}

void nats_consumer::run() {
  while (!done(clock::now())) {
    if (!pull_) {
      natsMsg* msg = nullptr;
      auto s = natsSubscription_NextMsg(&msg, sub_, fetch_wait_ms);
      if (s == NATS_OK) {
        handle(msg);
        natsMsg_Destroy(msg);
      } else if (s != NATS_TIMEOUT) {
        ++counters_.errors;
        ctx_.report_error(std::string{"consumer: next message: "} + natsStatus_GetText(s));
        std::this_thread::sleep_for(std::chrono::milliseconds{fetch_wait_ms});
      }
      aggregator_.close_due(tether::wire::now_ms());
      continue;
    }
    natsMsgList list{nullptr, 0};
    jsErrCode jerr = static_cast<jsErrCode>(0);
    auto s = natsSubscription_Fetch(&list, sub_, static_cast<int>(fetch_), fetch_wait_ms,
                                    &jerr);
    if (s == NATS_OK) {
      for (int i = 0; i < list.Count; ++i)
        handle(list.Msgs[i]);
    } else if (s != NATS_TIMEOUT) {
      ++counters_.errors;
      ctx_.report_error(std::string{"consumer: fetch: "} + natsStatus_GetText(s));
      std::this_thread::sleep_for(std::chrono::milliseconds{fetch_wait_ms});
    }
    natsMsgList_Destroy(&list);
    aggregator_.close_due(tether::wire::now_ms());
  }
  double cpu = own_cpu_seconds();
  for (auto tid : conn_threads_)
    cpu += thread_cpu_seconds(tid);
  counters_.cpu_seconds = cpu;
  disconnect();
  counters_.reconnects = reconnects_.load(std::memory_order_relaxed);
  finished_.store(true, std::memory_order_release);
}

void nats_consumer::drain(std::uint64_t expected, clock::time_point deadline) {
  std::lock_guard<std::mutex> guard{mutex_};
  draining_ = true;
  expected_ = expected;
  deadline_ = deadline;
}

void nats_consumer::abort() {
  std::lock_guard<std::mutex> guard{mutex_};
  abort_ = true;
}

} // namespace tether::tools::nats
