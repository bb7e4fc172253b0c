#!/usr/bin/env bash
# Aggregation benchmark: 100 rules fold 1 M input series into 10 K output series.
#
# Five runs, each on a fresh tetherd (--tether.port=0, defaults otherwise), all with
# tether-load --connections 4 --batch 1000:
#   base         no rules, --series 10000: every input is its own output (10 K outputs)
#   base-100k    no rules, --series 100000 (100 K outputs)
#   counter      100 rules (rule k: match tether_load_<k>_total, without: [series], 10 s
#                windows); --series 1000000 --metrics 100 --groups 100 writes DELTA
#                counters: 1 M inputs fold into 100 x 100 = 10 K outputs
#   gauge        the same with --kind gauge (rules match tether_load_<k>_value)
#   counter-100k as counter with --groups 1000: 1 M inputs fold into 100 K outputs
# For each run it reports tether-load's throughput and ack latency (--json), the CPU
# time tetherd used (utime + stime from /proc/PID/stat) and samples applied per
# CPU-second, the output series (/v1/nodes; must be as expected),
# tether_samples_applied_total (/metrics) and tetherd's VmRSS before and after the load:
#   bytes per output series = (RSS after - RSS idle) / output series
# which also charges the node's load-dependent buffers (I/O, decoding arenas, mailboxes,
# malloc caches) to the series. The marginal cost, free of those, is the slope between
# the 10 K and 100 K runs of the same kind:
#   marginal bytes per output series = (growth at 100 K - growth at 10 K) / 90 000
#
# Bounded: each step has a bound (startup 10 s, load its duration plus the 5 s drain,
# killed by `timeout` 30 s later, curl 10 s); with the defaults the script takes about
# 2 minutes and refuses durations that could exceed about 3. Everything it starts is
# stopped on exit.
#
# Environment: FOLD_SECONDS (default 25, also for counter-100k, so that the memory
# slope compares runs of equal length), BASE_SECONDS
# (default 10), BENCH_OUT (default build/bench-fold), TETHERD_ARGS (extra tetherd
# flags), LOAD_ARGS (extra tether-load flags, e.g. "--threads 2"). Needs
# build/bin/tetherd and build/bin/tether-load (ninja -C build tetherd tether-load).
set -euo pipefail
cd "$(dirname "$0")/../.."

fold_seconds=${FOLD_SECONDS:-25}
base_seconds=${BASE_SECONDS:-10}
out=${BENCH_OUT:-build/bench-fold}
tetherd_args=${TETHERD_ARGS:-}
load_args=${LOAD_ARGS:-}
rules=100
groups=100
inputs=1000000
outputs=$((rules * groups))
big_groups=1000
big_outputs=$((rules * big_groups))

if ((2 * base_seconds + 3 * fold_seconds > 130)); then
  echo "fold.sh: 2 * BASE_SECONDS + 3 * FOLD_SECONDS must be at most 130" >&2
  exit 2
fi
for bin in build/bin/tetherd build/bin/tether-load; do
  [[ -x $bin ]] || { echo "fold.sh: $bin missing; build it first" >&2; exit 2; }
done
mkdir -p "$out"
clk_tck=$(getconf CLK_TCK)

tetherd_pid=""
load_pid=""
stop_tetherd() {
  [[ -n $tetherd_pid ]] || return 0
  kill -TERM "$tetherd_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$tetherd_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$tetherd_pid" 2>/dev/null || true
  wait "$tetherd_pid" 2>/dev/null || true
  tetherd_pid=""
}
cleanup() {
  if [[ -n $load_pid ]]; then
    kill -TERM "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
  fi
  stop_tetherd
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# write_rules FILE SUFFIX: rule k folds tether_load_<k>_SUFFIX over the series label.
write_rules() {
  local file=$1 suffix=$2 k sep=""
  {
    echo '{"rules": ['
    for ((k = 0; k < rules; ++k)); do
      printf '%s  {"name": "fold_%d", "match": "tether_load_%d_%s", "without": ["series"], "window_ms": 10000}' \
        "$sep" "$k" "$k" "$suffix"
      sep=$',\n'
    done
    printf '\n]}\n'
  } >"$file"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# utime + stime in clock ticks: fields 14 and 15, 12 and 13 after the ") " that ends the
# command name.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# run_case NAME EXPECTED-OUTPUTS RULES-FILE|- SECONDS TETHER-LOAD-ARGS...
run_case() {
  local name=$1 expected=$2 rules_file=$3 seconds=$4
  shift 4
  local log="$out/$name-tetherd.log" json="$out/$name-load.json"
  local args=(--tether.port=0)
  [[ $rules_file != - ]] && args+=("--tether.rules-file=$rules_file")
  # shellcheck disable=SC2206
  args+=($tetherd_args)
  : >"$log" # truncate now: the child opens it only after the fork
  build/bin/tetherd "${args[@]}" >"$log" 2>&1 &
  tetherd_pid=$!
  local addr=""
  for _ in $(seq 100); do
    addr=$(grep -o 'listening on [^ ]*' "$log" | awk '{print $3}' || true)
    [[ -n $addr ]] && break
    kill -0 "$tetherd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $addr ]]; then
    echo "fold.sh: $name: tetherd did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 1
  local rss_idle cpu_before cpu_after rss_after hwm rc=0
  rss_idle=$(rss_kb "$tetherd_pid")
  cpu_before=$(cpu_ticks "$tetherd_pid")
  # shellcheck disable=SC2206
  local extra=($load_args)
  timeout --signal=TERM --kill-after=5 $((seconds + 30)) \
    build/bin/tether-load --server "$addr" --duration "${seconds}s" --json --quiet "$@" \
    "${extra[@]}" >"$json" 2>"$out/$name-load.err" &
  load_pid=$!
  wait "$load_pid" || rc=$?
  load_pid=""
  sleep 1
  cpu_after=$(cpu_ticks "$tetherd_pid")
  rss_after=$(rss_kb "$tetherd_pid")
  hwm=$(hwm_kb "$tetherd_pid")
  curl -s --max-time 10 "http://$addr/v1/nodes" >"$out/$name-nodes.json" || true
  curl -s --max-time 10 "http://$addr/metrics" >"$out/$name-metrics.txt" || true
  stop_tetherd
  python3 - "$name" "$expected" "$json" "$out/$name-nodes.json" "$out/$name-metrics.txt" \
    "$rc" "$rss_idle" "$rss_after" "$hwm" "$cpu_before" "$cpu_after" "$clk_tck" \
    "$out/results.jsonl" <<'PY'
import json, sys
(name, expected, load_file, nodes_file, metrics_file, rc, rss_idle, rss_after, hwm, cpu0,
 cpu1, tck, results) = sys.argv[1:]
try:
    load = json.load(open(load_file))
except ValueError:
    load = {}
try:
    series = sum(n["series"] for n in json.load(open(nodes_file))["nodes"])
except (ValueError, KeyError):
    series = -1
applied = -1
for line in open(metrics_file):
    if line.startswith("tether_samples_applied_total"):
        applied = int(float(line.split()[-1]))
cpu = (int(cpu1) - int(cpu0)) / int(tck)
delta_kb = int(rss_after) - int(rss_idle)
lat = load.get("latency_ms", {})
r = {
    "case": name, "expected_series": int(expected), "load_exit": int(rc),
    "ok": load.get("ok", False),
    "samples_per_s": load.get("throughput_samples_per_s", 0),
    "samples_acked": load.get("samples_acked", 0),
    "p50_ms": lat.get("p50", 0), "p99_ms": lat.get("p99", 0), "max_ms": lat.get("max", 0),
    "duration_s": load.get("duration_s", 0),
    "input_series": load.get("series", 0),
    "writes_per_input": load.get("samples_acked", 0) / max(load.get("series", 1), 1),
    "output_series": series, "samples_applied": applied,
    "tetherd_cpu_s": cpu, "samples_per_cpu_s": applied / cpu if cpu > 0 else 0,
    "rss_idle_kb": int(rss_idle), "rss_after_kb": int(rss_after), "rss_peak_kb": int(hwm),
    "growth_kb": delta_kb,
    "bytes_per_output_series": delta_kb * 1024 / series if series > 0 else 0,
}
with open(results, "a") as f:
    f.write(json.dumps(r) + "\n")
print(f"{name}: {r['samples_per_s']:.0f} samples/s, ack p50 {r['p50_ms']:.1f} ms, "
      f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; {r['samples_acked']} acked "
      f"({r['writes_per_input']:.1f} per input series), {applied} applied; "
      f"tetherd {cpu:.1f} CPU-s, {r['samples_per_cpu_s']:.0f} samples per CPU-second; "
      f"{series} output series; RSS idle {int(rss_idle) / 1024:.1f} MiB, after "
      f"{int(rss_after) / 1024:.1f} MiB, peak {int(hwm) / 1024:.1f} MiB: "
      f"{r['bytes_per_output_series']:.0f} bytes per output series"
      + ("" if r["ok"] and int(rc) == 0 else f"  [tether-load FAILED, exit {rc}]")
      + ("" if series == int(expected) else f"  [expected {expected} output series]"))
PY
}

: >"$out/results.jsonl"
write_rules "$out/rules-counter.json" total
write_rules "$out/rules-gauge.json" value
common=(--connections 4 --batch 1000)
echo "fold.sh: base runs ${base_seconds}s, folds ${fold_seconds}s; output in $out/"
run_case base "$outputs" - "$base_seconds" "${common[@]}" --series "$outputs"
run_case base-100k "$big_outputs" - "$base_seconds" "${common[@]}" --series "$big_outputs"
run_case counter "$outputs" "$out/rules-counter.json" "$fold_seconds" "${common[@]}" \
  --series "$inputs" --metrics "$rules" --groups "$groups"
run_case gauge "$outputs" "$out/rules-gauge.json" "$fold_seconds" "${common[@]}" \
  --series "$inputs" --metrics "$rules" --groups "$groups" --kind gauge
run_case counter-100k "$big_outputs" "$out/rules-counter.json" "$fold_seconds" \
  "${common[@]}" --series "$inputs" --metrics "$rules" --groups "$big_groups"

python3 - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by_case = {r["case"]: r for r in rows}
print()
print("| case | samples/s | p50 ms | p99 ms | max ms | writes per input | tetherd CPU-s "
      "| samples per CPU-s | output series | RSS idle MiB | RSS after MiB "
      "| bytes per output series |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r['case']} | {r['samples_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
          f"| {r['max_ms']:.1f} | {r['writes_per_input']:.1f} | {r['tetherd_cpu_s']:.1f} "
          f"| {r['samples_per_cpu_s']:,.0f} | {r['output_series']} "
          f"| {r['rss_idle_kb'] / 1024:.1f} | {r['rss_after_kb'] / 1024:.1f} "
          f"| {r['bytes_per_output_series']:,.0f} |".replace(",", " "))
print()
for small, big in (("base", "base-100k"), ("counter", "counter-100k")):
    a, b = by_case.get(small), by_case.get(big)
    if not a or not b or b["output_series"] <= a["output_series"]:
        continue
    slope = (b["growth_kb"] - a["growth_kb"]) * 1024 / (b["output_series"] - a["output_series"])
    print(f"marginal bytes per output series, {small} -> {big}: {slope:.0f}")
bad = [r["case"] for r in rows
       if r["output_series"] != r["expected_series"] or not r["ok"] or r["load_exit"] != 0]
if bad:
    print(f"fold.sh: FAILED: {', '.join(bad)} (wrong output series count or unacked batches)")
    sys.exit(1)
PY
