#!/usr/bin/env python3
"""`promtool check metrics` on the /metrics page of a real tetherd.

Starts one node with tools/tether_cluster.py (a free loopback port, a temporary
directory), writes counters, gauges and histograms over the WebSocket API (JSON
mapping, docs/protocol.md), waits until their windows closed and every output family
is on /metrics, and requires Prometheus's linter to find nothing to report. The page
must also carry summary quantiles labelled as Prometheus writes them ("0.9").
Exit 77 (skipped) when promtool is not installed (Debian package prometheus).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import tether_cluster  # noqa: E402

import websocket  # python3-websocket

SKIP = 77
# Every output family the page must show before it is checked.
FAMILIES = ["promtool_requests_total", "promtool_requests_rate_over_window",
            "promtool_temp_celsius", "promtool_temp_celsius_min_over_window",
            "promtool_temp_celsius_max_over_window",
            "promtool_temp_celsius_sum_over_window",
            "promtool_temp_celsius_count_over_window",
            "promtool_temp_celsius_avg_over_window", "promtool_latency_seconds",
            "promtool_latency_seconds_min_over_window",
            "promtool_latency_seconds_max_over_window", "tether_samples_applied_total",
            "tether_slice_series"]


def sample(name, kind, value, labels):
    return {"name": name, "kind": kind, "value": value,
            "labels": [{"name": k, "value": v} for k, v in sorted(labels.items())]}


def write_all(server):
    ws = websocket.create_connection(f"ws://{server}/v1/stream", timeout=10)
    try:
        ws.send(json.dumps({"hello": {"producerId": "promtool-test"}}))
        if "welcome" not in json.loads(ws.recv()):
            raise RuntimeError("no welcome")
        samples = []
        for code in ("200", "500"):
            samples.append(sample("promtool_requests_total", "COUNTER", 3,
                                  {"code": code}))
        for room, t in (("lab", 21.5), ("hall", 18.25)):
            samples.append(sample("promtool_temp_celsius", "GAUGE", t, {"room": room}))
        for i in range(50):
            samples.append(sample("promtool_latency_seconds", "HISTOGRAM",
                                  0.001 * (i + 1), {"op": "read"}))
        ws.send(json.dumps({"write": {"sequence": "1", "samples": samples}}))
        ack = json.loads(ws.recv())
        if "ack" not in ack:
            raise RuntimeError(f"write refused: {json.dumps(ack)[:300]}")
    finally:
        ws.close()


def metrics_page(server):
    with urllib.request.urlopen(f"http://{server}/metrics", timeout=10) as r:
        return r.read().decode()


def families_of(page):
    return {line.split()[2] for line in page.splitlines() if line.startswith("# TYPE ")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", required=True)
    args = ap.parse_args()
    promtool = shutil.which("promtool")
    if promtool is None:
        print("SKIP: promtool is not installed (Debian package prometheus)")
        return SKIP
    base = tempfile.mkdtemp(prefix="tether-promtool-")
    cluster = tether_cluster.LocalCluster(args.tetherd, base, 0,
                                          {"window-ms": 500, "lateness-ms": 100},
                                          ready_timeout=30)
    try:
        cluster.up(1)
        server = cluster.server("tether-1")
        write_all(server)
        deadline = time.monotonic() + 30
        while True:
            page = metrics_page(server)
            missing = [f for f in FAMILIES if f not in families_of(page)]
            if not missing:
                break
            if time.monotonic() > deadline:
                print(f"FAIL: families missing from /metrics after 30 s: {missing}")
                return 1
            time.sleep(0.1)
        if 'promtool_latency_seconds{op="read",quantile="0.9"}' not in page:
            print("FAIL: no summary quantile labelled \"0.9\" on /metrics:\n" + page)
            return 1
        r = subprocess.run([promtool, "check", "metrics"], input=page, text=True,
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            print(f"FAIL: promtool check metrics exited {r.returncode}:\n"
                  f"{r.stdout}{r.stderr}\n--- the page:\n{page}")
            return 1
        print(f"PASS: promtool check metrics on a page of {len(families_of(page))} "
              "families")
        return 0
    finally:
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
