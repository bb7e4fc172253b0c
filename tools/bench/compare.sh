#!/usr/bin/env bash
# Tether against a NATS JetStream pipeline: the same workload on this machine, in one run.
#
#   tools/bench/compare.sh                     # about 2 minutes with the defaults
#   COMPARE_FAILURE=1 tools/bench/compare.sh   # and the failure case: about 3 minutes
#
# Four runs, each on fresh processes, alternating the systems:
#   tether-max   closed loop: tether-load against Tether (TETHER_NODES nodes, default 3,
#                a local cluster by tools/tether-cluster, connections spread over the
#                nodes as the baseline's producers are over its servers; 1: one tetherd;
#                replication factor TETHER_RF, default 3 on 3 nodes as the stream's)
#   nats-max     closed loop: tether-nats-baseline (3 nats-server, stream with 3
#                replicas, memory storage, one push consumer aggregating with Tether's code)
#   tether-rate  open loop at the common rate
#   nats-rate    open loop at the common rate
#   tether-idle-1, nats-idle-1, tether-idle-100, nats-idle-100
#                idle latency (COMPARE_IDLE=0 skips them): one connection, one batch
#                in flight, batches of 1 and of 100 samples, COMPARE_IDLE_SECONDS
#                (default 5) measured each, after COMPARE_IDLE_WARMUP seconds (default
#                2) of the same load whose acks are left out (--warmup: a cluster that
#                has just become ready, a stream just created)
# Tether side: node-to-node TLS off unless COMPARE_TLS=1 (the baseline runs plaintext);
# routed producers (tether-load --routed, docs/protocol.md section 6.2) unless
# COMPARE_ROUTED=0, with which every batch goes to one node that forwards; the idle
# runs are never routed (one connection, one batch in flight).
# Every run also records the CPU time of the server side (NAME.cpu): the tetherd
# processes; the nats-server processes. The baseline's consumer shares the client's
# process: it reports its own CPU (its thread and its connection's threads) in NAME.json,
# and the report adds it to the broker side.
# The common rate is COMPARE_RATE, or COMPARE_RATE_SHARE percent (default 50) of the lower
# sustained throughput of the closed-loop runs (for the broker: the lower of acked and
# applied-by-the-consumer), so that both are compared below saturation.
#
# COMPARE_FAILURE=1 adds two failure runs at the common rate, or at COMPARE_FAILURE_RATE
# (COMPARE_FAILURE=only runs just these, after the closed-loop pair unless COMPARE_RATE
# or COMPARE_FAILURE_RATE is given):
#   tether-fail  a 3-node cluster with replication factor 3; half-way through the
#                sending, SIGKILL of the tetherd leading the most slices among those the
#                visibility reader is not on; tether-load retries on UNAVAILABLE and
#                reconnects lost connections to the next node (--retry-timeout)
#   nats-fail    SIGKILL of one nats-server half-way through (COMPARE_NATS_KILL: the
#                stream leader by default, consumer-leader, or 1..3), consumer AckWait
#                COMPARE_NATS_ACK_WAIT (default 5s); the producers publish again what
#                was not acked within --publish-timeout (1 s), under the same message id
# For each: the time from the kill until acks resume and until every tracked output has
# updates becoming visible again (longest gaps in the clients' timelines, exact to the
# clock), retries, failed batches, and whether the totals are exact afterwards (Tether:
# the sum of every output series read back from a surviving node against the acked
# samples; JetStream: the consumer's applied samples against the acked ones). report.md
# gets a table of them and failure.png the acked throughput around the kill.
#
# Workload (both systems, identical bytes): 4 connections, batches of 1000 counter
# deltas, COMPARE_SERIES (100 000) input series over COMPARE_METRICS (10) metric names
# and COMPARE_GROUPS (100) groups, Zipf keys (s = 1), folded by one rule per metric
# (without: [series]) into metrics x groups output series; write-to-visible measured on
# 8 of them (tools/tether-load/README.md has the definition). LOAD_ARGS adds options to
# both clients (e.g. "--zipf-s 1.2"); NATS_ARGS only to the baseline (e.g.
# "--storage file").
#
# Output in COMPARE_OUT (default build/bench-compare): the JSON reports and progress
# lines of every run, machine.txt, command.txt, report.md (a markdown table for
# docs/benchmarks.md) and compare.png (gnuplot: latency spectra, throughput over time);
# with COMPARE_FAILURE also tether-fail.{kill,audit}.json and failure.png.
#
# Bounded: COMPARE_SECONDS (default 15, at most 120) per run, drains of COMPARE_DRAIN
# (default 10) seconds, every step under `timeout`. Everything it starts is stopped on
# exit, also on Ctrl-C. Needs build/bin/{tetherd,tether-load,tether-nats-baseline}
# (TETHERD=PATH runs another tetherd binary):
#   cmake --build build --target tetherd tether-load tether-nats-baseline
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${COMPARE_SECONDS:-15}
drain=${COMPARE_DRAIN:-10}
out=${COMPARE_OUT:-build/bench-compare}
nodes=${TETHER_NODES:-3}
tether_rf=${TETHER_RF:-}
rate=${COMPARE_RATE:-}
rate_share=${COMPARE_RATE_SHARE:-50}
series=${COMPARE_SERIES:-100000}
metrics=${COMPARE_METRICS:-10}
groups=${COMPARE_GROUPS:-100}
load_args=${LOAD_ARGS:-}
nats_args=${NATS_ARGS:-}
failure=${COMPARE_FAILURE:-0}
failure_rate=${COMPARE_FAILURE_RATE:-}
nats_kill=${COMPARE_NATS_KILL:-stream-leader}
nats_ack_wait=${COMPARE_NATS_ACK_WAIT:-5s}
idle=${COMPARE_IDLE:-1}
# Node-to-node TLS on the Tether side: off by default, as the baseline's cluster routes
# and client connections are plaintext too (COMPARE_TLS=1: Tether with mutual TLS).
tls=${COMPARE_TLS:-0}
# Routed producers on the Tether side (docs/protocol.md section 6.2): each producer
# sends every sample to the node leading its slice; COMPARE_ROUTED=0 sends every batch
# to one node, which forwards (as the baseline's producers publish to one server).
routed=${COMPARE_ROUTED:-1}
# The secure setup (COMPARE_SECURE=1: `tether-cluster up --secure`, TLS between the
# nodes and on every gateway, tokens; tether-load writes over wss:// with the CA and
# the write token). Implies COMPARE_TLS=1; a single node runs through the launcher too.
secure=${COMPARE_SECURE:-0}
idle_seconds=${COMPARE_IDLE_SECONDS:-5}
idle_warmup=${COMPARE_IDLE_WARMUP:-2}

die() { echo "compare.sh: $*" >&2; exit 2; }
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds >= 2 && seconds <= 120)) || die "COMPARE_SECONDS: 2..120"
[[ $drain =~ ^[0-9]+$ ]] && ((drain >= 1 && drain <= 60)) || die "COMPARE_DRAIN: 1..60"
[[ $nodes =~ ^[13]$ ]] || die "TETHER_NODES: 1 or 3"
# Replication factor of the Tether side: 3 on 3 nodes (as the stream has 3 replicas).
[[ -z $tether_rf ]] && { ((nodes == 3)) && tether_rf=3 || tether_rf=1; }
[[ $tls =~ ^[01]$ ]] || die "COMPARE_TLS: 0 or 1"
[[ $routed =~ ^[01]$ ]] || die "COMPARE_ROUTED: 0 or 1"
tether_only=()
((routed && nodes > 1)) && tether_only=(--routed)
[[ $secure =~ ^[01]$ ]] || die "COMPARE_SECURE: 0 or 1"
((secure)) && tls=1
[[ $tether_rf =~ ^[123]$ ]] && ((tether_rf <= nodes)) || die "TETHER_RF: 1..TETHER_NODES"
((metrics >= 1)) || die "COMPARE_METRICS: at least 1"
[[ $failure =~ ^(0|1|only)$ ]] || die "COMPARE_FAILURE: 0, 1 or only"
[[ $idle =~ ^[01]$ ]] || die "COMPARE_IDLE: 0 or 1"
[[ $idle_seconds =~ ^[0-9]+$ ]] && ((idle_seconds >= 2 && idle_seconds <= 60)) \
  || die "COMPARE_IDLE_SECONDS: 2..60"
[[ $idle_warmup =~ ^[0-9]+$ ]] && ((idle_warmup <= 30)) || die "COMPARE_IDLE_WARMUP: 0..30"
[[ $failure == 0 || $nodes == 3 ]] || die "COMPARE_FAILURE needs TETHER_NODES=3"
[[ $nats_kill =~ ^(stream-leader|consumer-leader|[123])$ ]] \
  || die "COMPARE_NATS_KILL: stream-leader, consumer-leader or 1..3"
tetherd=${TETHERD:-build/bin/tetherd}
for bin in "$tetherd" build/bin/tether-load build/bin/tether-nats-baseline; do
  [[ -x $bin ]] || die "$bin missing: cmake --build build --target tetherd tether-load tether-nats-baseline"
done
command -v nats-server >/dev/null || die "nats-server missing (tools/setup.sh installs it)"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.progress "$out"/*.dat "$out"/compare.png "$out"/failure.png \
  "$out"/report.md
bound=$((seconds + 2 * drain + 60)) # per run: setup, sending, drains

# -- processes --------------------------------------------------------------------------

child=""       # the run in progress (a `timeout` process)
tetherd_pid="" # single node
cluster_dir="" # local cluster
client_auth=() # tether-load's --ca and --token-file against a secure cluster
stop_tether() {
  if [[ -n $tetherd_pid ]]; then
    kill -TERM "$tetherd_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$tetherd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tetherd_pid" 2>/dev/null || true
    wait "$tetherd_pid" 2>/dev/null || true
    tetherd_pid=""
  fi
  if [[ -n $cluster_dir ]]; then
    timeout 30 tools/tether-cluster down --dir "$cluster_dir" >>"$out/cluster.log" 2>&1 || true
    cluster_dir=""
  fi
}
cleanup() {
  if [[ -n $child ]]; then
    # timeout relays the signals: the first stops the run, the second aborts it.
    kill -TERM "$child" 2>/dev/null || true
    sleep 0.5
    kill -TERM "$child" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
    child=""
  fi
  stop_tether
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM

# A rule per metric folds the series label away: metrics x groups outputs.
rules="$out/rules.json"
{
  echo '{"rules": ['
  sep=""
  for ((k = 0; k < metrics; ++k)); do
    printf '%s  {"name": "fold_%d", "match": "tether_load_%d_total", "without": ["series"], "window_ms": 10000}' \
      "$sep" "$k" "$k"
    sep=$',\n'
  done
  printf '\n]}\n'
} >"$rules"
rules=$(realpath "$rules")

start_tether() { # [RF]: replication factor of the cluster (default: tetherd's, 1)
  local rf=${1:-}
  if ((nodes == 1 && !secure)); then
    local log="$out/tetherd.log"
    "$tetherd" --tether.port=0 --tether.rules-file="$rules" >"$log" 2>&1 &
    tetherd_pid=$!
    addr=""
    for _ in $(seq 100); do
      addr=$(grep -o 'listening on [^ ]*' "$log" | awk '{print $3}' || true)
      [[ -n $addr ]] && return 0
      kill -0 "$tetherd_pid" 2>/dev/null || break
      sleep 0.1
    done
    tail -n 20 "$log" >&2
    die "tetherd did not start"
  fi
  cluster_dir="$out/cluster"
  rm -rf "$cluster_dir"
  if ! timeout 90 tools/tether-cluster up --nodes "$nodes" --base-port 0 --dir "$cluster_dir" \
    --tetherd "$tetherd" --rules-file "$rules" ${rf:+--replication-factor "$rf"} $( ((tls)) || echo --insecure) \
    $( ((secure)) && echo --secure) >>"$out/cluster.log" 2>&1; then
    tail -n 20 "$out/cluster.log" >&2
    die "the Tether cluster did not start"
  fi
  # Every node's gateway: tether-load spreads its connections over them, as the
  # baseline spreads its producers over the nats-servers.
  addr=$(python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); print(",".join(("wss://" if c.get("secure") else "") + "127.0.0.1:%d" % n["port"] for n in c["nodes"]))' \
    "$cluster_dir/cluster.json")
  client_auth=()
  if ((secure)); then
    client_auth=(--ca "$cluster_dir/tls/ca.crt" --token-file "$cluster_dir/tls/write.token")
  fi
}

now_ms() { date +%s%3N; }

# The server side's processes: every tetherd of this run, or the nats-servers the
# baseline (a child of the run's `timeout`) started.
server_pids() {
  if [[ -n $tetherd_pid ]]; then
    echo "$tetherd_pid"
  elif [[ -n $cluster_dir ]]; then
    cat "$cluster_dir"/*/tetherd.pid 2>/dev/null || true
  elif [[ -n $child ]]; then
    local p
    for p in $(pgrep -P "$child" 2>/dev/null); do
      pgrep -P "$p" -x nats-server 2>/dev/null || true
    done
  fi
}

# CPU ticks (user + system) of each server process: the latest reading per pid, and
# for the processes that ran before the run (tetherd) the reading at its start.
declare -A cpu_first cpu_last
cpu_read() { # PID -> ticks, or nothing once the process is gone
  [[ -r /proc/$1/stat ]] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || true
}
cpu_sample() {
  local p t
  for p in $(server_pids); do
    t=$(cpu_read "$p")
    [[ -n $t ]] || continue
    [[ -n ${cpu_first[$p]:-} ]] || cpu_first[$p]=${1:-0}
    [[ ${cpu_first[$p]} == start ]] && cpu_first[$p]=$t
    cpu_last[$p]=$t
  done
}
cpu_write() { # NAME: NAME.cpu, JSON: server CPU seconds and processes
  local total=0 p n=0
  for p in "${!cpu_last[@]}"; do
    total=$((total + cpu_last[$p] - cpu_first[$p]))
    n=$((n + 1))
  done
  printf '{"server_cpu_s": %s, "server_processes": %d}\n' \
    "$(awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')" "$n" \
    >"$out/$1.cpu"
  cpu_first=() cpu_last=()
}

# run NAME COMMAND...: runs one benchmark client, bounded, JSON to NAME.json, progress
# lines to NAME.progress and (the latest, once a second) to the terminal. With
# $half_way set to a command, runs it once half-way through the sending: the first
# progress line comes one second after the start of sending.
half_way=""
run() {
  local name=$1
  shift
  echo "compare.sh: $name: $*" >&2
  cpu_sample start # tetherd runs already: count from here
  timeout --signal=INT --kill-after=15 "$bound" "$@" >"$out/$name.json" 2>"$out/$name.progress" &
  child=$!
  local due="" shown=0 last
  while kill -0 "$child" 2>/dev/null; do
    sleep 0.1
    cpu_sample 0 # a nats-server started in the run: count its whole life
    if [[ -n $half_way ]]; then
      if [[ -z $due ]] && grep -q '^\[' "$out/$name.progress"; then
        due=$(($(now_ms) + seconds * 500 - 1000))
      fi
      if [[ -n $due ]] && (($(now_ms) >= due)); then
        $half_way
        half_way=""
      fi
    fi
    if (($(now_ms) - shown >= 1000)); then
      shown=$(now_ms)
      last=$(grep '^\[' "$out/$name.progress" | tail -n 1 || true)
      [[ -n $last ]] && echo "  $name $last" >&2
    fi
  done
  half_way=""
  cpu_write "$name"
  local rc=0
  wait "$child" || rc=$?
  child=""
  if ((rc != 0)); then
    echo "compare.sh: $name exited with $rc (see $out/$name.progress)" >&2
    grep -v '^\[' "$out/$name.progress" | tail -n 5 >&2 || true
  fi
  return 0
}

# shellcheck disable=SC2206
workload=(--connections 4 --batch 1000 --series "$series" --metrics "$metrics" --groups "$groups"
  --keys zipf --zipf-s 1 --fold-series --visible-keys 8 --drain-timeout "${drain}s" --json
  $load_args)
# shellcheck disable=SC2206
nats_only=(--rules-file "$rules" $nats_args)

run_tether() { # NAME EXTRA-ARGS...
  local name=$1
  shift
  start_tether "$tether_rf"
  run "$name" build/bin/tether-load --server "$addr" "${client_auth[@]}" "${workload[@]}" \
    "${tether_only[@]}" --duration "$seconds" "$@"
  stop_tether
}

run_nats() { # NAME EXTRA-ARGS...
  local name=$1
  shift
  run "$name" build/bin/tether-nats-baseline "${workload[@]}" "${nats_only[@]}" \
    --duration "$seconds" "$@"
}

# The failure runs. Tether: replication factor 3; the victim leads the most slices among
# the nodes other than the first, which the visibility reader queries (tether-load's
# reader does not move to another node). Chosen when the cluster is up, killed half-way.
victim="" victim_pid=""
kill_victim() {
  local t
  t=$(now_ms)
  kill -KILL "$victim_pid" 2>/dev/null || true
  echo "compare.sh: SIGKILL $victim (pid $victim_pid) at $t" >&2
  python3 - "$out/tether-fail.victim.json" "$out/tether-fail.kill.json" "$t" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
v["kill_unix_ms"] = int(sys.argv[3])
json.dump(v, open(sys.argv[2], "w"))
PY
}

run_tether_fail() { # NAME EXTRA-ARGS...
  local name=$1
  shift
  start_tether 3
  timeout 30 python3 tools/bench/compare_report.py --pick-victim "$cluster_dir/cluster.json" \
    >"$out/$name.victim.json" || die "no victim: cannot read the directory"
  victim=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node"])' \
    "$out/$name.victim.json")
  victim_pid=$(cat "$cluster_dir/$victim/tetherd.pid")
  [[ $victim_pid =~ ^[0-9]+$ ]] || die "no pid for $victim"
  half_way=kill_victim
  run "$name" build/bin/tether-load --server "$addr" "${client_auth[@]}" "${workload[@]}" \
    "${tether_only[@]}" --duration "$seconds" "$@"
  # Read every output series back from the first node (never the victim): their sum
  # against the acked samples says whether the totals are exact.
  timeout 120 python3 tools/bench/compare_report.py --audit-tether "${addr%%,*}" "$metrics" "$groups" \
    "$cluster_dir/cluster.json" \
    >"$out/$name.audit.json" || echo "compare.sh: the audit of $name failed" >&2
  stop_tether
}

# -- the machine ------------------------------------------------------------------------

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores"
  echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "tether: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ uncommitted changes)'), $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' build/CMakeCache.txt 2>/dev/null) build${TETHERD:+, tetherd $TETHERD}"
  echo "tether side: $nodes tetherd node(s) on loopback, replication factor $tether_rf, node-to-node TLS $( ((tls)) && echo on || echo "off (as the baseline's routes)"), gateway TLS and tokens $( ((secure)) && echo "on (wss://)" || echo "off (as the baseline's clients)"), $( ((${#tether_only[@]})) && echo "routed producers (each producer has a connection per node and sends every sample to its slice's primary)" || echo "connection c writes to node c mod $nodes"), the visibility reader queries the first"
  echo "nats side: $(nats-server --version 2>&1 | head -n1), 3 servers on loopback, stream with 3 replicas, ${nats_args:-memory storage, 1 push consumer}; libnats $(pkg-config --modversion libnats 2>/dev/null || echo '?')"
  echo "workload: 4 connections x 1000-sample batches, $series input series, Zipf s=1, $metrics rules fold them into $((metrics * groups)) outputs, visibility on 8 outputs${load_args:+, $load_args}"
  if [[ $failure != 0 ]]; then
    echo "failure runs: at ${COMPARE_FAILURE_RATE:+$COMPARE_FAILURE_RATE samples/s}${COMPARE_FAILURE_RATE:-the common rate}; Tether 3 nodes with replication factor 3, SIGKILL of a primary half-way; JetStream SIGKILL of the $nats_kill half-way, consumer AckWait $nats_ack_wait, publish ack timeout 1 s; both clients retry (retry timeout 30 s)"
  fi
} >"$out/machine.txt"
echo "${TETHERD:+TETHERD=$TETHERD }COMPARE_SECONDS=$seconds COMPARE_DRAIN=$drain TETHER_NODES=$nodes TETHER_RF=$tether_rf${COMPARE_TLS:+ COMPARE_TLS=$COMPARE_TLS}${COMPARE_SECURE:+ COMPARE_SECURE=$COMPARE_SECURE}${COMPARE_ROUTED:+ COMPARE_ROUTED=$COMPARE_ROUTED}${COMPARE_RATE:+ COMPARE_RATE=$COMPARE_RATE}${COMPARE_FAILURE:+ COMPARE_FAILURE=$COMPARE_FAILURE}${COMPARE_FAILURE_RATE:+ COMPARE_FAILURE_RATE=$COMPARE_FAILURE_RATE}${COMPARE_NATS_KILL:+ COMPARE_NATS_KILL=$COMPARE_NATS_KILL}${COMPARE_NATS_ACK_WAIT:+ COMPARE_NATS_ACK_WAIT=$COMPARE_NATS_ACK_WAIT}${LOAD_ARGS:+ LOAD_ARGS=\"$LOAD_ARGS\"}${NATS_ARGS:+ NATS_ARGS=\"$NATS_ARGS\"} tools/bench/compare.sh" \
  >"$out/command.txt"

# -- the runs ---------------------------------------------------------------------------

if [[ $failure != only || -z ${rate:-$failure_rate} ]]; then
  run_tether tether-max
  run_nats nats-max
fi

if [[ $failure != only || -z $failure_rate ]]; then
  if [[ -z $rate ]]; then
    rate=$(python3 tools/bench/compare_report.py --common-rate "$out" "$rate_share")
  fi
  echo "compare.sh: common open-loop rate $rate samples/s" >&2
  echo "common open-loop rate: $rate samples/s" >>"$out/machine.txt"
fi

if [[ $failure != only ]]; then
  run_tether tether-rate --rate "$rate"
  run_nats nats-rate --rate "$rate"
fi

if [[ $idle == 1 && $failure != only ]]; then
  # Idle latency: one connection, one batch in flight, no fold rules needed (the
  # outputs are the inputs), the same on both systems.
  for b in 1 100; do
    idle_workload=(--connections 1 --inflight 1 --batch "$b" --series 1000 --json
      --duration "$((idle_seconds + idle_warmup))" --warmup "$idle_warmup")
    start_tether "$tether_rf"
    # Not routed: a routed producer holds a connection, and a batch in flight, per node.
    run "tether-idle-$b" build/bin/tether-load --server "${addr%%,*}" "${client_auth[@]}" \
      "${idle_workload[@]}"
    stop_tether
    run "nats-idle-$b" build/bin/tether-nats-baseline "${idle_workload[@]}" "${nats_only[@]}"
  done
fi

if [[ $failure != 0 ]]; then
  failure_rate=${failure_rate:-$rate}
  echo "failure runs' open-loop rate: $failure_rate samples/s" >>"$out/machine.txt"
  half=$(python3 -c 'import sys; print("%.1fs" % (int(sys.argv[1]) / 2))' "$seconds")
  run_tether_fail tether-fail --rate "$failure_rate"
  run_nats nats-fail --rate "$failure_rate" --kill-at "$half" --kill-server "$nats_kill" \
    --ack-wait "$nats_ack_wait"
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
python3 tools/bench/compare_report.py "$out"
