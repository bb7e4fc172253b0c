#!/usr/bin/env bash
# Throughput and ack latency of a 3-node local cluster with replication factor 1
# against 3, same workload, one after the other:
#   bash tools/bench/replication_bench.sh            # ~1 minute
#   BENCH_SECONDS=20 bash tools/bench/replication_bench.sh
# Needs build/bin/{tetherd,tether-load}. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${BENCH_SECONDS:-10}
out=$(mktemp -d /tmp/tether-bench-rf-XXXXXX)
cleanup() { for d in "$out"/rf*; do [[ -d $d ]] && tools/tether-cluster down --dir "$d" >/dev/null 2>&1 || true; done; rm -rf "$out"; }
trap cleanup EXIT INT TERM
echo "| replication factor | samples/s | ack p50 ms | ack p99 ms | failed batches |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for rf in 1 3; do
  dir="$out/rf$rf"
  tools/tether-cluster up --nodes 3 --base-port 0 --dir "$dir" --tetherd build/bin/tetherd \
    -o replication-factor=$rf >/dev/null 2>&1
  servers=$(python3 -c "import json,sys; d=json.load(open('$dir/cluster.json')); \
print(','.join('127.0.0.1:%d' % n['port'] for n in d['nodes']))")
  json=$(build/bin/tether-load --server "$servers" --connections 6 --batch 1000 \
    --series 30000 --duration "${seconds}s" --json --quiet)
  python3 - "$rf" "$json" <<'PY'
import json, sys
rf, r = sys.argv[1], json.loads(sys.argv[2])
lat = r["latency_ms"]
print(f"| {rf} | {r['throughput_samples_per_s']:.0f} | {lat['p50']:.1f} | {lat['p99']:.1f} | {r['batches_failed']} |")
PY
  tools/tether-cluster down --dir "$dir" >/dev/null
done
