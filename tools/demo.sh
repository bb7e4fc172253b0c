#!/usr/bin/env bash
# The main job: sets up and builds, starts a local 3-node cluster with
# tools/tether-cluster, streams demo samples into tether-1 with tether-load and shows
# the aggregates with `tetherctl watch` connected to tether-2 as windows close: the
# series live on whichever node owns their slice, so what tether-2 shows was routed
# across nodes. The cluster runs secure (`up --secure`): TLS between the nodes and on
# every gateway, and tokens; the clients use the cluster's CA and the write and read
# tokens the launcher made. Stops by itself after DEMO_SECONDS (default 60) or on
# Ctrl-C, and stops every node it started.
#   DEMO_SECONDS  how long samples stream (default 60)
#   DEMO_NODES    cluster size (default 3)
#   DEMO_RF       replication factor (default 3 with 3 or more nodes, else 1): every
#                 slice on a primary and DEMO_RF - 1 followers
#   DEMO_PORT     base port: tether-i serves on DEMO_PORT+i, cluster port +10+i (7480)
#   DEMO_SECURE   1 (default): `up --secure`; 0: plain gateways without tokens (node
#                 to node TLS stays on)
set -euo pipefail
cd "$(dirname "$0")/.."

run_seconds=${DEMO_SECONDS:-60}
nodes=${DEMO_NODES:-3}
rf=${DEMO_RF:-$((nodes >= 3 ? 3 : 1))}
base_port=${DEMO_PORT:-7480}
secure=${DEMO_SECURE:-1}
window_ms=2000
dir=build/demo-cluster
cluster=(tools/tether-cluster)

bash tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target tetherd tetherctl tether-load

load_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$load_pid" ]]; then kill -TERM "$load_pid" 2>/dev/null || true; fi
  "${cluster[@]}" down --dir "$dir" || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

up_args=()
scheme=""
write_auth=()
read_auth=()
if [[ "$secure" == 1 ]]; then
  up_args=(--secure)
  scheme="https://"
  write_auth=(--ca "$dir/tls/ca.crt" --token-file "$dir/tls/write.token")
  read_auth=(--ca "$dir/tls/ca.crt" --token-file "$dir/tls/read.token")
fi
"${cluster[@]}" up --nodes "$nodes" --dir "$dir" --base-port "$base_port" \
  --window-ms "$window_ms" --replication-factor "$rf" "${up_args[@]}"
writer="${scheme:+wss://}127.0.0.1:$((base_port + 1))"                  # tether-1
viewer="${scheme}127.0.0.1:$((base_port + (nodes >= 2 ? 2 : 1)))"    # tether-2
keys=('tether_load_total{series="0"}' 'tether_load_total{series="1"}'
      'tether_load_total{series="2"}')

echo
echo "where the watched series live (asked on $viewer):"
for k in "${keys[@]}"; do
  build/bin/tetherctl --server "$viewer" "${read_auth[@]}" where "$k" |
    awk -v k="$k" '$1 == "slice" {s = $2} $1 == "primary" {p = $2}
                   END {printf "  %-30s slice %-5s primary %s\n", k, s, p}'
done
echo
echo "streaming 20k samples/s over 100 counter series for ${run_seconds}s into $writer;"
echo "watching on $viewer"
build/bin/tether-load --server "$writer" "${write_auth[@]}" --rate 20k --connections 2 --batch 200 \
  --series 100 --duration "${run_seconds}s" --quiet >build/demo-load.txt &
load_pid=$!

windows=$(( run_seconds * 1000 / window_ms ))
# Bounded even if windows stop closing: the watch ends a little after the load.
timeout --foreground $(( run_seconds + 15 )) build/bin/tetherctl --server "$viewer" \
  "${read_auth[@]}" watch \
  "${keys[@]}" --windows "$windows" || true
wait "$load_pid" || true
load_pid=""
echo
echo "load report:"
cat build/demo-load.txt
build/bin/tetherctl --server "$viewer" "${read_auth[@]}" nodes
