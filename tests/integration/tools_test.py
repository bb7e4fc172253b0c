#!/usr/bin/env python3
"""End-to-end check of tether-load and tetherctl against a real tetherd.

tether-load writes counter increments (delta 1) over K series; afterwards every
acknowledged increment must be in the node exactly once: the node's applied count and
the sum of all K series totals equal the acknowledged samples. tetherctl must show the
same state and report errors with its documented exit codes. Bounded: ~30 s at most.
"""
import argparse
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

PASSED = 0
FAILED = 0


def case(name):
    def wrap(fn):
        def run(*a):
            global PASSED, FAILED
            t0 = time.monotonic()
            try:
                fn(*a)
                PASSED += 1
                print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
            except Exception as e:  # report and go on: every case runs
                FAILED += 1
                print(f"FAIL {name}: {e}", flush=True)
        return run
    return wrap


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Node:
    def __init__(self, tetherd, extra=()):
        self.proc = subprocess.Popen([tetherd, "--tether.port=0", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        found = {}

        def read():
            for line in self.proc.stdout:
                m = re.search(r"listening on (\S+):(\d+)", line)
                if m and "port" not in found:
                    found["port"] = int(m.group(2))
        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 10
        while "port" not in found:
            check(time.monotonic() < deadline, "tetherd did not print 'listening on'")
            check(self.proc.poll() is None, "tetherd exited at start")
            time.sleep(0.02)
        self.port = found["port"]
        self.server = f"127.0.0.1:{self.port}"

    def get(self, path):
        with urllib.request.urlopen(f"http://{self.server}{path}", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(cmd, timeout=60):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with tetherd, tetherctl, tether-load")
    args = ap.parse_args()
    tetherd = f"{args.bin}/tetherd"
    ctl = f"{args.bin}/tetherctl"
    load = f"{args.bin}/tether-load"
    node = Node(tetherd)
    series = 500
    samples = 200_000
    report = {}

    @case("tether-load: every batch acknowledged, report complete")
    def load_run():
        r = run([load, "--server", node.server, "--connections", "3", "--batch", "400",
                 "--series", str(series), "--samples", str(samples), "--duration", "20s",
                 "--inflight", "8", "--json", "--quiet"])
        check(r.returncode == 0, f"exit {r.returncode}: {r.stdout[-400:]} {r.stderr[-400:]}")
        report.update(json.loads(r.stdout))
        check(report["samples_acked"] == samples, f"acked {report['samples_acked']} of {samples}")
        check(report["errors"] == 0 and report["batches_unacked"] == 0, f"report {report}")
        check(report["throughput_samples_per_s"] > 0, "no throughput reported")
        lat = report["latency_ms"]
        check(0 < lat["p50"] <= lat["p99"] <= lat["max"], f"latency not ordered: {lat}")

    @case("every acknowledged increment is applied exactly once")
    def exactly_once():
        check(report, "no load report")
        nodes = node.get("/v1/nodes")["nodes"]
        check(nodes[0]["samples_applied"] == samples,
              f"node applied {nodes[0]['samples_applied']}, acked {samples}")
        check(nodes[0]["series"] == series, f"node has {nodes[0]['series']} series")
        total = 0
        for i in range(series):
            key = urllib.parse.quote(f'tether_load_total{{series="{i}"}}')
            s = node.get(f"/v1/series?key={key}")
            check(s["found"], f"series {i} missing")
            total += s["state"]["total"]
        check(total == samples, f"sum of totals {total} != acknowledged {samples}")

    @case("tetherctl series/where/nodes/directory agree with the node")
    def ctl_reads():
        key = 'tether_load_total{series="7"}'
        r = run([ctl, "--server", node.server, "--json", "series", key])
        check(r.returncode == 0, f"series exit {r.returncode}: {r.stderr}")
        via_ctl = json.loads(r.stdout)
        via_http = node.get("/v1/series?key=" + urllib.parse.quote(key))
        check(via_ctl == via_http, f"{via_ctl} != {via_http}")
        r = run([ctl, "--server", node.server, "series", key])
        check(r.returncode == 0 and str(int(via_http["state"]["total"])) in r.stdout,
              f"human output lacks the total: {r.stdout}")
        r = run([ctl, "--server", node.server, "--json", "where", key])
        check(r.returncode == 0 and json.loads(r.stdout)["slice"] == via_http["slice"],
              f"where: {r.stdout} {r.stderr}")
        r = run([ctl, "--server", node.server, "nodes"])
        check(r.returncode == 0 and "tether-0" in r.stdout, f"nodes: {r.stdout}")
        r = run([ctl, "--server", node.server, "directory"])
        check(r.returncode == 0 and "0-1023" in r.stdout, f"directory: {r.stdout}")
        r = run([ctl, "--server", node.server, "health"])
        check(r.returncode == 0, f"health: {r.stdout} {r.stderr}")

    @case("tetherctl exit codes: server error 1, usage 2, unreachable 3")
    def ctl_errors():
        r = run([ctl, "--server", node.server, "series", "bad key{"])
        check(r.returncode == 1 and "INVALID_KEY" in (r.stdout + r.stderr),
              f"bad key: exit {r.returncode} {r.stdout} {r.stderr}")
        r = run([ctl, "--server", node.server, "no-such-command"])
        check(r.returncode == 2, f"usage: exit {r.returncode}")
        r = run([ctl, "--server", "127.0.0.1:1", "--timeout-ms", "2000", "nodes"])
        check(r.returncode == 3, f"unreachable: exit {r.returncode}")

    @case("tether-load fails loudly when the node refuses its hello")
    def load_refused():
        guarded = Node(tetherd, ["--tether.auth-token=t0ken"])
        try:
            r = run([load, "--server", guarded.server, "--connections", "1",
                     "--samples", "1000", "--duration", "5s", "--quiet"])
            check(r.returncode != 0, "tether-load succeeded without the token")
            r = run([load, "--server", guarded.server, "--connections", "1", "--token",
                     "t0ken", "--samples", "1000", "--duration", "5s", "--quiet"])
            check(r.returncode == 0, f"with the token: exit {r.returncode} {r.stdout[-300:]}")
        finally:
            guarded.stop()

    @case("SIGTERM closes WebSocket sessions with 1001 and exits 0")
    def graceful_stop():
        import websocket  # Debian's python3-websocket
        n = Node(tetherd)
        try:
            ws = websocket.create_connection(f"ws://{n.server}/v1/stream", timeout=5)
            ws.send(json.dumps({"hello": {"producer_id": "stopper"}}))
            check("welcome" in ws.recv(), "no welcome")
            n.proc.terminate()
            op, frame = ws.recv_data_frame(control_frame=True)
            check(op == websocket.ABNF.OPCODE_CLOSE, f"opcode {op}, not a close frame")
            code = int.from_bytes(frame.data[:2], "big")
            check(code == 1001, f"close code {code}")
            check(n.proc.wait(timeout=10) == 0, "tetherd did not exit 0")
        finally:
            if n.proc.poll() is None:
                n.stop()

    try:
        load_run()
        exactly_once()
        ctl_reads()
        ctl_errors()
        load_refused()
        graceful_stop()
    finally:
        node.stop()
    print(f"{PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
