#!/usr/bin/env python3
"""End to end with two real Prometheus servers (Debian's `prometheus` package).

  target (this script) --scrape--> Prometheus A --remote write--> tetherd
  tetherd /metrics --scrape--> Prometheus B   (series labelled via="scrape")
  tetherd --remote write (closed windows)--> Prometheus B

The target serves counters `e2e_requests_total{code, pod}` for 4 pods, stepping each
by a known amount per scrape, then freezes. tetherd folds the pods away with a rule
(`without: [pod]`). When everything has flushed, Prometheus B's value of tether's
output must equal what PromQL computes over Prometheus A's raw data: for each code,
the sum over pods of (last - first) raw value. Tolerance: 1e-9 (the data are small
integers; the comparison is exact in practice). A gauge rule (max by code) is checked
the same way. Bounded: it gives up after 90 s (one deadline for the module's waits)
and always stops what it started.

    python3 -m pytest -p no:cacheprovider tests/integration/prometheus_e2e.py \
        --tetherd build/bin/tetherd [--prometheus /usr/bin/prometheus]
"""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import types
import urllib.parse
import urllib.request

import pytest

STEPS = {"p1": 1, "p2": 2, "p3": 5, "p4": 10}   # increment per scrape, per pod
CODES = ["200", "500"]
SCRAPES_BEFORE_FREEZE = 8
DEADLINE_S = 90


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A scrape target whose counters step on each scrape until frozen."""

    def __init__(self):
        self.lock = threading.Lock()
        self.scrapes = 0
        self.values = {(c, p): 1000.0 * (i + 1) for i, (c, p) in
                       enumerate((c, p) for c in CODES for p in STEPS)}
        self.temps = {(c, p): 10.0 + i for i, (c, p) in
                      enumerate((c, p) for c in CODES for p in STEPS)}
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = target.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self):
        with self.lock:
            if self.scrapes < SCRAPES_BEFORE_FREEZE:
                self.scrapes += 1
                for (c, p) in self.values:
                    self.values[(c, p)] += STEPS[p] * (2 if c == "500" else 1)
                for k in self.temps:
                    self.temps[k] += 0.5
            lines = ["# TYPE e2e_requests_total counter"]
            for (c, p), v in sorted(self.values.items()):
                lines.append(f'e2e_requests_total{{code="{c}",pod="{p}"}} {v}')
            lines.append("# TYPE e2e_temp_celsius gauge")
            for (c, p), v in sorted(self.temps.items()):
                lines.append(f'e2e_temp_celsius{{code="{c}",pod="{p}"}} {v}')
            return "\n".join(lines) + "\n"

    def frozen(self):
        with self.lock:
            return self.scrapes >= SCRAPES_BEFORE_FREEZE


class Proc:
    def __init__(self, args, log):
        self.log = open(log, "w")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_until(what, fn, deadline):
    last = None
    while time.monotonic() < deadline:
        try:
            ok, last = fn()
            if ok:
                return last
        except Exception as e:  # not up yet
            last = repr(e)
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def promql(port, query):
    q = urllib.parse.urlencode({"query": query})
    r = json.loads(http_get(f"http://127.0.0.1:{port}/api/v1/query?{q}"))
    if r.get("status") != "success":
        raise AssertionError(f"query {query!r} failed: {r}")
    return r["data"]["result"]


@pytest.fixture(scope="module")
def e2e(tetherd, request, failure_report):
    """The target, tetherd and Prometheus A and B, started once for the module's cases
    and stopped at its end; set up when the target froze and A holds the frozen data.
    Fields: deadline (shared by every wait), want (per code, the sum over pods of
    last - first from A's raw data), aport, bport, tport."""
    prometheus = request.config.getoption("prometheus")
    assert os.access(prometheus, os.X_OK), f"no prometheus binary at {prometheus}"
    deadline = time.monotonic() + DEADLINE_S
    tmp = tempfile.mkdtemp(prefix="tether-e2e-")
    procs = []
    target = None

    def tails():
        out = []
        for name in ("tetherd.log", "prom-a.log", "prom-b.log"):
            try:
                with open(f"{tmp}/{name}") as f:
                    tail = f.read()[-1500:]
                out.append(f"--- {name} (tail)\n{tail}")
            except OSError:
                pass
        return "\n".join(out)
    failure_report("log tails", tails)
    try:
        target = Target()
        rules = {"rules": [
            {"name": "requests_by_code", "match": "e2e_requests_total",
             "without": ["pod", "instance"], "window_ms": 1000},
            {"name": "temp_by_code", "match": "e2e_temp_celsius",
             "by": ["code", "job"], "window_ms": 1000},
        ]}
        with open(f"{tmp}/rules.json", "w") as f:
            json.dump(rules, f)
        tport, aport, bport = free_port(), free_port(), free_port()
        procs.append(Proc([tetherd, f"--tether.port={tport}",
                           f"--tether.rules-file={tmp}/rules.json",
                           f"--tether.remote-write-url=http://127.0.0.1:{bport}/api/v1/write",
                           "--tether.window-ms=1000", "--tether.lateness-ms=1500"],
                          f"{tmp}/tetherd.log"))
        with open(f"{tmp}/a.yml", "w") as f:
            f.write(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: target
    static_configs: [{{targets: ['127.0.0.1:{target.port}']}}]
remote_write:
  - url: http://127.0.0.1:{tport}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}
    metadata_config: {{send_interval: 1s}}
""")
        with open(f"{tmp}/b.yml", "w") as f:
            f.write(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: tether
    honor_labels: true
    static_configs: [{{targets: ['127.0.0.1:{tport}'], labels: {{via: scrape}}}}]
""")
        for name, port in (("a", aport), ("b", bport)):
            extra = ["--web.enable-remote-write-receiver"] if name == "b" else []
            procs.append(Proc([prometheus, f"--config.file={tmp}/{name}.yml",
                               f"--storage.tsdb.path={tmp}/data-{name}",
                               f"--web.listen-address=127.0.0.1:{port}",
                               "--log.level=warn", *extra], f"{tmp}/prom-{name}.log"))

        wait_until("the target to freeze", lambda: (target.frozen(), target.scrapes), deadline)

        # Expected from A's raw data: per code, sum over pods of (last - first).
        def expected():
            r = promql(aport, 'sum by (code) (e2e_requests_total{job="target"})'
                              ' - sum by (code) (min_over_time(e2e_requests_total{job="target"}[5m]))')
            return {s["metric"]["code"]: float(s["value"][1]) for s in r}

        def settled():
            # A's view stops changing once every frozen scrape is stored.
            e1 = expected()
            time.sleep(1.5)
            e2 = expected()
            return (len(e1) == len(CODES) and e1 == e2, e2)

        want = wait_until("Prometheus A to hold the frozen data", settled, deadline)
        yield types.SimpleNamespace(deadline=deadline, want=want, aport=aport, bport=bport,
                                    tport=tport)
    finally:
        for p in reversed(procs):
            p.stop()
        if target is not None:
            target.server.shutdown()
            target.server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_counters(e2e):
    """Counter totals folded over pods equal PromQL over the raw data."""
    want = e2e.want

    def tether_view():
        r = promql(e2e.bport, 'e2e_requests_total{job="target",via="scrape"}')
        got = {s["metric"].get("code"): (float(s["value"][1]), s["metric"]) for s in r}
        ok = all(c in got and abs(got[c][0] - want[c]) < 1e-9 for c in CODES)
        return ok, got

    try:
        got = wait_until("Prometheus B to see tether's totals equal to A's",
                         tether_view, e2e.deadline)
    except AssertionError as e:
        raise AssertionError(f"counters: {e}; expected {want}") from None
    for c in CODES:
        labels = got[c][1]
        assert "pod" not in labels, f"the rule did not drop 'pod': {labels}"
    print(f"counter totals folded over pods equal PromQL over the raw data: {want}")


def test_gauges(e2e):
    """Gauge: the max over pods of each code's last window, against A's max by code."""
    def gauge_view():
        want_g = {s["metric"]["code"]: float(s["value"][1]) for s in
                  promql(e2e.aport, 'max by (code) (e2e_temp_celsius{job="target"})')}
        got_g = {s["metric"].get("code"): float(s["value"][1]) for s in
                 promql(e2e.bport,
                        'e2e_temp_celsius_max_over_window{job="target",via="scrape"}')}
        ok = len(want_g) == len(CODES) and all(
            c in got_g and abs(got_g[c] - want_g[c]) < 1e-9 for c in CODES)
        return ok, (want_g, got_g)

    wait_until("tether's gauge max to equal PromQL max", gauge_view, e2e.deadline)


def test_remote_write_out(e2e):
    """Remote write out: the same totals arrive in B without the scrape's label."""
    want = e2e.want

    def pushed_view():
        r = promql(e2e.bport, 'e2e_requests_total{job="target",via=""}')
        got = {s["metric"].get("code"): float(s["value"][1]) for s in r}
        ok = all(c in got and abs(got[c] - want[c]) < 1e-9 for c in CODES)
        return ok, got

    try:
        wait_until("tether's remote write to deliver the totals to B", pushed_view,
                   e2e.deadline)
    except AssertionError as e:
        raise AssertionError(f"remote write out: {e}; expected {want}") from None


def test_own_samples_applied(e2e):
    """tether reports its own samples applied."""
    metrics = http_get(f"http://127.0.0.1:{e2e.tport}/metrics")
    assert re.search(r'^tether_samples_applied_total\{node="tether-0"\} [1-9]', metrics,
                     re.M), "tether's /metrics lacks tether_samples_applied_total"
