#!/usr/bin/env python3
"""End-to-end check of tether-load and tetherctl against a real tetherd.

tether-load writes counter increments (delta 1) over K series; afterwards every
acknowledged increment must be in the node exactly once: the node's applied count and
the sum of all K series totals equal the acknowledged samples. tetherctl must show the
same state and report errors with its documented exit codes. Bounded: ~30 s at most.

    python3 -m pytest -p no:cacheprovider tests/integration/tools_test.py --bin build/bin
"""
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

SERIES = 500
SAMPLES = 200_000


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
        try:
            while "port" not in found:
                assert time.monotonic() < deadline, "tetherd did not print 'listening on'"
                assert self.proc.poll() is None, "tetherd exited at start"
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
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


@pytest.fixture(scope="module")
def tetherd(bin_dir):
    return os.path.join(bin_dir, "tetherd")


@pytest.fixture(scope="module")
def ctl(bin_dir):
    return os.path.join(bin_dir, "tetherctl")


@pytest.fixture(scope="module")
def load(bin_dir):
    return os.path.join(bin_dir, "tether-load")


@pytest.fixture(scope="module")
def node(tetherd):
    """One tetherd for the module's cases, stopped at the end."""
    n = Node(tetherd)
    yield n
    n.stop()


@pytest.fixture(scope="module")
def load_run(node, load):
    """One tether-load run into `node` (SAMPLES increments over SERIES series), shared
    by the cases that read what it wrote: (its CompletedProcess, its JSON report).
    The report is {} unless tether-load exited 0; test_load_run checks the run."""
    r = run([load, "--server", node.server, "--connections", "3", "--batch", "400",
             "--series", str(SERIES), "--samples", str(SAMPLES), "--duration", "20s",
             "--inflight", "8", "--json", "--quiet"])
    return r, (json.loads(r.stdout) if r.returncode == 0 else {})


def test_load_run(load_run):
    """tether-load: every batch acknowledged, report complete."""
    r, report = load_run
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout[-400:]} {r.stderr[-400:]}"
    assert report["samples_acked"] == SAMPLES, f"acked {report['samples_acked']} of {SAMPLES}"
    assert report["errors"] == 0 and report["batches_unacked"] == 0, f"report {report}"
    assert report["throughput_samples_per_s"] > 0, "no throughput reported"
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"], f"latency not ordered: {lat}"


def test_exactly_once(node, load_run):
    """Every acknowledged increment is applied exactly once."""
    _, report = load_run
    assert report, "no load report (tether-load failed: see test_load_run)"
    nodes = node.get("/v1/nodes")["nodes"]
    assert nodes[0]["samples_applied"] == SAMPLES, \
        f"node applied {nodes[0]['samples_applied']}, acked {SAMPLES}"
    assert nodes[0]["series"] == SERIES, f"node has {nodes[0]['series']} series"
    total = 0
    for i in range(SERIES):
        key = urllib.parse.quote(f'tether_load_total{{series="{i}"}}')
        s = node.get(f"/v1/series?key={key}")
        assert s["found"], f"series {i} missing"
        total += s["state"]["total"]
    assert total == SAMPLES, f"sum of totals {total} != acknowledged {SAMPLES}"


def test_ctl_reads(node, ctl, load_run):
    """tetherctl series/where/nodes/directory agree with the node (on the series
    tether-load wrote)."""
    key = 'tether_load_total{series="7"}'
    r = run([ctl, "--server", node.server, "--json", "series", key])
    assert r.returncode == 0, f"series exit {r.returncode}: {r.stderr}"
    via_ctl = json.loads(r.stdout)
    via_http = node.get("/v1/series?key=" + urllib.parse.quote(key))
    assert via_ctl == via_http, f"{via_ctl} != {via_http}"
    r = run([ctl, "--server", node.server, "series", key])
    assert r.returncode == 0 and str(int(via_http["state"]["total"])) in r.stdout, \
        f"human output lacks the total: {r.stdout}"
    r = run([ctl, "--server", node.server, "--json", "where", key])
    assert r.returncode == 0 and json.loads(r.stdout)["slice"] == via_http["slice"], \
        f"where: {r.stdout} {r.stderr}"
    r = run([ctl, "--server", node.server, "nodes"])
    assert r.returncode == 0 and "tether-0" in r.stdout, f"nodes: {r.stdout}"
    r = run([ctl, "--server", node.server, "directory"])
    assert r.returncode == 0 and "0-1023" in r.stdout, f"directory: {r.stdout}"
    r = run([ctl, "--server", node.server, "health"])
    assert r.returncode == 0, f"health: {r.stdout} {r.stderr}"


def test_ctl_errors(node, ctl):
    """tetherctl exit codes: server error 1, usage 2, unreachable 3."""
    r = run([ctl, "--server", node.server, "series", "bad key{"])
    assert r.returncode == 1 and "INVALID_KEY" in (r.stdout + r.stderr), \
        f"bad key: exit {r.returncode} {r.stdout} {r.stderr}"
    r = run([ctl, "--server", node.server, "no-such-command"])
    assert r.returncode == 2, f"usage: exit {r.returncode}"
    r = run([ctl, "--server", "127.0.0.1:1", "--timeout-ms", "2000", "nodes"])
    assert r.returncode == 3, f"unreachable: exit {r.returncode}"


def test_load_refused(tetherd, load):
    """tether-load fails loudly when the node refuses its hello."""
    guarded = Node(tetherd, ["--tether.auth-token=t0ken"])
    try:
        r = run([load, "--server", guarded.server, "--connections", "1",
                 "--samples", "1000", "--duration", "5s", "--quiet"])
        assert r.returncode != 0, "tether-load succeeded without the token"
        r = run([load, "--server", guarded.server, "--connections", "1", "--token",
                 "t0ken", "--samples", "1000", "--duration", "5s", "--quiet"])
        assert r.returncode == 0, f"with the token: exit {r.returncode} {r.stdout[-300:]}"
    finally:
        guarded.stop()


def test_graceful_stop(tetherd):
    """SIGTERM closes WebSocket sessions with 1001 and exits 0."""
    import websocket  # Debian's python3-websocket
    n = Node(tetherd)
    try:
        ws = websocket.create_connection(f"ws://{n.server}/v1/stream", timeout=5)
        ws.send(json.dumps({"hello": {"producer_id": "stopper"}}))
        assert "welcome" in ws.recv(), "no welcome"
        n.proc.terminate()
        op, frame = ws.recv_data_frame(control_frame=True)
        assert op == websocket.ABNF.OPCODE_CLOSE, f"opcode {op}, not a close frame"
        code = int.from_bytes(frame.data[:2], "big")
        assert code == 1001, f"close code {code}"
        assert n.proc.wait(timeout=10) == 0, "tetherd did not exit 0"
    finally:
        if n.proc.poll() is None:
            n.stop()
