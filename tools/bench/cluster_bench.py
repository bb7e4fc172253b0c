#!/usr/bin/env python3
"""Cluster benchmark: slices moved on a join, and the drain time of a node holding
about 100 K series while writes continue.

  python3 tools/bench/cluster_bench.py [--bin build/bin] [--series 360000]

Starts a 3-node local cluster (tools/tether_cluster.py, free loopback ports, a
temporary directory), fills it with --series counter series through tether-1, then
  1. starts open-loop writes (tether-load --rate) over all series,
  2. drains tether-2 (POST /v1/admin/drain) and times the request,
  3. checks that no write failed and that the sum of all totals equals the
     acknowledged samples,
  4. adds a 4th node and counts the slices the rebalance moves.
Prints a markdown table. Every step is bounded; the cluster is stopped at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import tether_cluster  # noqa: E402


def get(server, path, method="GET", timeout=120):
    req = urllib.request.Request(f"http://{server}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def owners(server):
    return {s["slice"]: s["primary"] for s in get(server, "/v1/directory")["slices"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--series", type=int, default=360000)
    ap.add_argument("--rate", default="50k", help="writes per second during the drain")
    args = ap.parse_args()
    load = os.path.join(args.bin, "tether-load")
    base = tempfile.mkdtemp(prefix="tether-bench-cluster-")
    c = tether_cluster.LocalCluster(os.path.join(args.bin, "tetherd"), base, 0,
                                    {"shards": 2})
    rows = []
    try:
        c.up(3)
        s1, s2, s3 = (c.server(n) for n in ("tether-1", "tether-2", "tether-3"))
        # Fill: one closed-loop pass over every series.
        r = subprocess.run([load, "--server", s1, "--connections", "4", "--batch", "1000",
                            "--series", str(args.series), "--samples", str(args.series),
                            "--duration", "60s", "--json", "--quiet",
                            "--producer", "fill"],
                           capture_output=True, text=True, timeout=120)
        fill = json.loads(r.stdout)
        nodes = {n["name"]: n for n in get(s1, "/v1/nodes")["nodes"]}
        held = nodes["tether-2"]["series"]
        print(f"filled {fill['samples_acked']} series; tether-2 holds {held}", flush=True)
        # Drain tether-2 under open-loop writes.
        writer = subprocess.Popen([load, "--server", s1, "--connections", "2",
                                   "--batch", "500", "--series", str(args.series),
                                   "--rate", args.rate, "--duration", "12s", "--json",
                                   "--quiet", "--producer", "during"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(3)
        t0 = time.monotonic()
        reply = get(s3, "/v1/admin/drain?node=tether-2", method="POST")
        drain_s = time.monotonic() - t0
        out, _ = writer.communicate(timeout=60)
        during = json.loads(out)
        time.sleep(1.0)  # node counters travel with heartbeats (every 100 ms)
        # Exactly once: the applied samples of all nodes equal the acknowledged ones
        # (a sample applied twice or lost in a handoff shows as a difference).
        nodes = {n["name"]: n for n in get(s1, "/v1/nodes")["nodes"]}
        applied = sum(n["samples_applied"] or 0 for n in nodes.values())
        acked = fill["samples_acked"] + during["samples_acked"]
        rows.append(("drain of tether-2", f"{held} series, {reply['moved']} slices",
                     f"{drain_s * 1000:.0f} ms",
                     f"{during['batches_failed']} failed of {during['batches_acked']} "
                     f"batches; p99 ack {during['latency_ms']['p99']:.1f} ms"))
        ok = applied == acked and during["batches_failed"] == 0 and during["errors"] == 0
        print(f"drain: {reply} in {drain_s:.3f}s; applied {applied}, acked {acked}: "
              f"{'exact' if ok else 'MISMATCH'}", flush=True)
        # Join: a 4th node; count the slices that change their primary.
        before = owners(s1)
        c.add()
        t0 = time.monotonic()
        deadline = t0 + 60
        moved = 0
        while time.monotonic() < deadline:
            t = get(s1, "/v1/directory")
            if "tether-4" in t["nodes"] and not t.get("pending_moves"):
                loads = [x["of_mean"] for x in t["load"] if x["of_mean"] is not None]
                after = {s["slice"]: s["primary"] for s in t["slices"]}
                moved = sum(1 for s in after if after[s] != before[s])
                if moved and all(0.9 <= x <= 1.1 for x in loads):
                    break
            time.sleep(0.2)
        join_s = time.monotonic() - t0
        up = sum(1 for n in get(s1, "/v1/nodes")["nodes"] if n["state"] == "up")
        rows.append(("join of tether-4", f"{moved} slices moved (ideal: {len(before) // up}"
                     f" of {len(before)}, {up} nodes up)", f"{join_s * 1000:.0f} ms",
                     "balanced within 10 %"))
        print("\n| operation | size | time | writes |\n| --- | --- | ---: | --- |")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return 0 if ok else 1
    finally:
        c.down()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
