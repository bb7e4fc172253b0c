#!/usr/bin/env bash
# The main job: sets up and builds, starts a local node, streams demo samples into it
# with tether-load and shows the aggregates with `tetherctl watch` as windows close.
# Stops by itself after DEMO_SECONDS (default 60) or on Ctrl-C, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."

run_seconds=${DEMO_SECONDS:-60}
port=${DEMO_PORT:-7480}
window_ms=2000

bash tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target tetherd tetherctl tether-load

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log=build/demo-tetherd.log
build/bin/tetherd --tether.port="$port" --tether.window-ms="$window_ms" >"$log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$log" && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
grep "listening on" "$log" || { echo "tetherd did not start"; exit 1; }
server="127.0.0.1:$port"

echo "streaming 20k samples/s over 100 counter series for ${run_seconds}s"
build/bin/tether-load --server "$server" --rate 20k --connections 2 --batch 200 \
  --series 100 --duration "${run_seconds}s" --quiet >build/demo-load.txt &
pids+=($!)

build/bin/tetherctl --server "$server" directory | head -n 4
windows=$(( run_seconds * 1000 / window_ms ))
build/bin/tetherctl --server "$server" watch \
  'tether_load_total{series="0"}' 'tether_load_total{series="1"}' \
  'tether_load_total{series="2"}' --windows "$windows" || true
wait "${pids[1]}" || true
echo
echo "load report:"
cat build/demo-load.txt
build/bin/tetherctl --server "$server" nodes
