#!/usr/bin/env python3
"""What a Prometheus user relies on, against a real tetherd.

Starts one node with tools/tether_cluster.py (a free loopback port, a temporary
directory), then:
  - promtool: writes counters, gauges and histograms over the WebSocket API (JSON
    mapping, docs/protocol.md), waits until their windows closed and every output
    family is on /metrics, and requires `promtool check metrics` to report nothing;
    the page carries summary quantiles labelled as Prometheus writes them ("0.9");
  - remote write: a 2.0 request (by its Content-Type) is answered 415, a 1.0 request
    with a native histogram 400, and neither changes anything; a 1.0 request with
    the 1.0 Content-Type is taken (204); metadata sent in a request of its own types
    the samples of later requests (a counter named without _total).
The promtool case is skipped when promtool is not installed (Debian package
prometheus).

    python3 -m pytest -p no:cacheprovider tests/integration/prometheus_compat_test.py \
        --tetherd build/bin/tetherd
"""
import http.client
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import tether_cluster  # noqa: E402

import websocket  # python3-websocket

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


# -- remote-write bodies, written from the specification's field numbers ----------

def varint(n):
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def snappy_block(data):
    """A snappy block holding `data` as literals (valid, uncompressed); < 64 KiB."""
    n = len(data) - 1
    tag = bytes([n << 2]) if n < 60 else bytes([61 << 2]) + struct.pack("<H", n)
    return varint(len(data)) + tag + data


def series(name, value, ts_ms, extra=b""):
    labels = field(1, field(1, b"__name__") + field(2, name.encode()))
    sample = b"\x09" + struct.pack("<d", value) + b"\x10" + varint(ts_ms)
    return field(1, labels + field(2, sample) + extra)


def post_write(server, body, headers):
    host, port = server.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/api/v1/write", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def series_state(server, key):
    q = urllib.parse.quote(key)
    with urllib.request.urlopen(f"http://{server}/v1/series?key={q}", timeout=10) as r:
        return json.loads(r.read())


def found(server, key):
    return series_state(server, key)["found"]


def metrics_page(server):
    with urllib.request.urlopen(f"http://{server}/metrics", timeout=10) as r:
        return r.read().decode()


def families_of(page):
    return {line.split()[2] for line in page.splitlines() if line.startswith("# TYPE ")}


V1 = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture(scope="module")
def server(tetherd, failure_report):
    """One node started with tools/tether_cluster.py (500 ms windows, 100 ms
    lateness), stopped at the end: its address."""
    base = tempfile.mkdtemp(prefix="tether-prometheus-compat-")
    cluster = tether_cluster.LocalCluster(tetherd, base, 0,
                                          {"window-ms": 500, "lateness-ms": 100},
                                          ready_timeout=30)
    failure_report("tether-1 log tail", lambda: cluster.log_tail("tether-1", 15))
    try:
        cluster.up(1)
        yield cluster.server("tether-1")
    finally:
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)


def test_promtool_check_metrics(server):
    """Counters, gauges and histograms written over the WebSocket API; once every
    output family is on /metrics, `promtool check metrics` reports nothing on the
    page, which carries summary quantiles labelled as Prometheus writes them."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    write_all(server)
    deadline = time.monotonic() + 30
    while True:
        page = metrics_page(server)
        missing = [f for f in FAMILIES if f not in families_of(page)]
        if not missing:
            break
        assert time.monotonic() <= deadline, \
            f"families missing from /metrics after 30 s: {missing}"
        time.sleep(0.1)
    assert 'promtool_latency_seconds{op="read",quantile="0.9"}' in page, \
        "no summary quantile labelled \"0.9\" on /metrics:\n" + page
    r = subprocess.run([promtool, "check", "metrics"], input=page, text=True,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (f"promtool check metrics exited {r.returncode}:\n"
                               f"{r.stdout}{r.stderr}\n--- the page:\n{page}")
    print(f"promtool check metrics on a page of {len(families_of(page))} families")


def test_remote_write(server):
    """Remote write 2.0 -> 415, native histograms -> 400, 1.0 -> 204, late samples ->
    400 SAMPLES_LATE; nothing is applied from a refused request."""
    now = int(time.time() * 1000)
    v2 = dict(V1, **{"Content-Type":
                     "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                     "X-Prometheus-Remote-Write-Version": "2.0.0"})
    code, text = post_write(server, snappy_block(series("compat_v2_total", 1, now)), v2)
    assert code == 415 and "UNSUPPORTED_MEDIA_TYPE" in text, \
        f"a remote-write 2.0 request was answered {code} {text}"
    histogram = field(4, b"\x08\x01")  # TimeSeries.histograms
    body = series("compat_native_total", 1, now) + series("compat_hist", 1, now, histogram)
    code, text = post_write(server, snappy_block(body), V1)
    assert code == 400 and "UNSUPPORTED_HISTOGRAMS" in text, \
        f"a request with a native histogram was answered {code} {text}"
    code, text = post_write(server, snappy_block(series("compat_v1_total", 1, now)), V1)
    assert code == 204, f"a remote-write 1.0 request was answered {code} {text}"
    # A sample whose window closed long ago is dropped, and the sender is told:
    # 400 SAMPLES_LATE (Prometheus counts and logs it), the on-time one applied.
    body = series("compat_late_ok_total", 1, now) + series("compat_late_old_total", 1,
                                                           now - 60000)
    code, text = post_write(server, snappy_block(body), V1)
    assert code == 400 and "SAMPLES_LATE" in text and "1 of 2 samples" in text, \
        f"a request with a late sample was answered {code} {text}"
    assert found(server, "compat_late_ok_total") and \
        not found(server, "compat_late_old_total"), \
        "the on-time sample of a request with a late one was not applied alone"
    for key in ("compat_v2_total", "compat_native_total"):
        assert not found(server, key), f"{key} was applied from a refused request"
    assert found(server, "compat_v1_total"), \
        "compat_v1_total was not applied from an accepted request"


def test_remote_write_metadata(server):
    """Metadata in a request of its own types the samples of later requests, as
    Prometheus sends them: a counter without _total stays a counter."""
    now = int(time.time() * 1000)
    metadata = field(3, b"\x08\x01" + field(2, b"compat_requests"))  # COUNTER
    code, text = post_write(server, snappy_block(metadata), V1)
    assert code == 204, f"a metadata-only request was answered {code} {text}"
    for i, value in enumerate((10.0, 15.0)):
        code, text = post_write(server, snappy_block(series("compat_requests", value,
                                                            now + i)), V1)
        assert code == 204, f"samples of compat_requests were answered {code} {text}"
    st = series_state(server, "compat_requests")
    assert st["found"] and st["state"]["kind"] == "COUNTER", \
        f"compat_requests is not a counter after its metadata: {st}"
