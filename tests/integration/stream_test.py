#!/usr/bin/env python3
"""End-to-end test of the Tether client protocol (docs/protocol.md) against a real tetherd.

It is written from docs/protocol.md alone, as a new client author would: JSON text
frames through the `websocket` module (Debian: python3-websocket) plus a binary-frame
check with the generated `tether_pb2` module (Debian: python3-protobuf runtime).

    /usr/bin/python3 -B -m pytest -c tests/pytest.ini -p no:cacheprovider \
        tests/integration/stream_test.py \
        --tetherd build/bin/tetherd --python-dir build/python [--budget 55] [-x]

It starts its own nodes on free loopback ports once for the module's cases and stops
them at the end: the main node (small limits, 500 ms windows, 200 ms lateness so that
windows close quickly), one with an auth token, one with a short idle timeout, and one
with aggregation rules and a short staleness interval. Every wait has a deadline and a
watchdog ends the run after --budget seconds (55). After each case its connections are
closed and every node must still run. Every case runs; -x stops at the first failure.

The helpers (Node, Conn, Ctx, check and the protocol helpers) are also used by
security_test.py, limits_test.py and tools/bench/stall_bench.py.
"""

import ctypes
import json
import math
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websocket  # python3-websocket (websocket-client); run with /usr/bin/python3

RECV_TIMEOUT = 4.0      # seconds to wait for any single reply
START_TIMEOUT = 20.0    # seconds for a node to print its listening line
NODE = "tether-0"       # default node name

# Limits of the main node: small, so that limit checks stay cheap.
MAIN_LIMITS = {
    "max-frame-bytes": 65536,
    "max-samples-per-batch": 20,
    "max-labels-per-sample": 4,
    "max-key-bytes": 128,
}
WINDOW_MS = 500        # --tether.window-ms of the main and rules nodes
LATENESS_MS = 200      # --tether.lateness-ms of the main and rules nodes
TICK_MS = 100          # the node checks for due windows this often (docs/protocol.md 15.2)
STALENESS_MS = 1000    # --tether.staleness-ms of the rules node
RULE_WINDOW_MS = 1000  # window_ms of the latency rule on the rules node
DEFAULTS = {"maxFrameBytes": 1048576, "maxSamplesPerBatch": 10000, "maxLabelsPerSample": 32,
            "maxKeyBytes": 1024, "maxInflightBatches": 64}
TOKEN = "s3cret"


class Failure(AssertionError):
    """A case did not behave as docs/protocol.md says (an AssertionError: pytest reports
    it as a failed assertion)."""


class Closed(Exception):
    """The server closed the connection; `code` is the WebSocket close code or None."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def check(cond, msg):
    """assert cond, msg: raises Failure (an AssertionError) with msg."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    if not cond:
        raise Failure(msg)


def close_enough(a, b):
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def now_ms():
    return int(time.time() * 1000)


def ahead(ms=1000):
    """A timestamp `ms` ahead of the local clock (the node runs on the same machine).
    With 200 ms lateness a timestamp of "now" may fall into a window that closes before
    the frame is applied; one a little ahead (allowed up to max-future-ms) lands in a
    window that is certainly still open, and fixes which window a sample belongs to."""
    return now_ms() + ms


def window_of(ts, length=WINDOW_MS):
    """Start of the tumbling window holding timestamp ts (docs/protocol.md 15.1)."""
    return ts // length * length


def close_wait(ts, length=WINDOW_MS):
    """Seconds to wait for the window of ts to close: its end + lateness, a check
    period, and a margin."""
    due = window_of(ts, length) + length + LATENESS_MS + TICK_MS
    return max(0.0, (due - now_ms()) / 1000) + 1.5


def field(obj, path):
    """obj["a"]["b"] for path "a.b"; None when absent."""
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def check_fields(obj, want, what):
    """Every dotted field of `want` equals its value (numbers compared as numbers, so
    64-bit fields printed as strings match too)."""
    for f, v in want.items():
        got = field(obj, f)
        check(got is not None, f"{what}: field {f} is missing: {json.dumps(obj)[:400]}")
        check(close_enough(got, v), f"{what}: {f} = {got!r}, expected {v}")


# ---------------------------------------------------------------------------
# Nodes

class Node:
    """One tetherd child process on a free loopback port."""

    def __init__(self, path, label, extra):
        self.label = label
        self.args = [path, "--tether.host=127.0.0.1", "--tether.port=0"] + extra
        self.log = tempfile.TemporaryFile(prefix="tetherd-")
        self.lines = queue.Queue()
        self.port = None
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def wait_listening(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.label}: no 'listening on HOST:PORT' line within "
                              f"{START_TIMEOUT:.0f}s{self.tail()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise Failure(f"{self.label}: tetherd exited (status {self.proc.wait()}) before "
                              f"listening{self.tail()}")
            m = re.search(r"listening on (\S+):(\d+)", line)
            if m:
                self.port = int(m.group(2))
                # Keep draining stdout so the child never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return

    def _drain(self):
        while self.lines.get() is not None:
            pass

    def tail(self):
        try:
            self.log.seek(0)
            text = self.log.read().decode("utf-8", "replace").strip().splitlines()[-15:]
            return ("\n  stderr:\n    " + "\n    ".join(text)) if text else ""
        except (OSError, ValueError):
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


# ---------------------------------------------------------------------------
# Client helpers (docs/protocol.md sections 2-3)

class Conn:
    """One /v1/stream WebSocket connection."""

    def __init__(self, ctx, port=None, pb=None):
        self.ctx = ctx
        self.pb = pb or ctx.pb
        port = port or ctx.port
        try:
            self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream",
                                                  timeout=RECV_TIMEOUT)
        except Exception as e:
            raise Failure(f"cannot open ws://127.0.0.1:{port}/v1/stream: {e!r}")
        self.subscribed = False
        self.stash = []
        ctx.conns.append(self)

    # sending
    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def send_text(self, text):
        self.ws.send(text)

    def send_bytes(self, data):
        self.ws.send_binary(data)

    def send_pb(self, msg):
        self.ws.send_binary(msg.SerializeToString())

    # receiving
    def recv_any(self, timeout=RECV_TIMEOUT):
        """Next data message as (opcode name, decoded ServerFrame dict). Raises Closed."""
        self.ws.settimeout(timeout)
        try:
            opcode, frame = self.ws.recv_data_frame(control_frame=False)
        except websocket.WebSocketTimeoutException:
            raise Failure(f"no frame from the server within {timeout:.1f}s")
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as e:
            raise Closed(None, f"connection closed without a close frame ({e!r})")
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else None
            raise Closed(code, f"server closed the WebSocket (code {code})")
        if opcode == websocket.ABNF.OPCODE_TEXT:
            text = frame.data.decode("utf-8") if isinstance(frame.data, bytes) else frame.data
            try:
                obj = json.loads(text)
            except ValueError as e:
                raise Failure(f"server text frame is not JSON ({e}): {text[:200]!r}")
            return "text", obj
        if opcode == websocket.ABNF.OPCODE_BINARY:
            if self.pb is None:
                raise Failure("got a binary frame but tether_pb2 is not available")
            sf = self.pb.ServerFrame()
            try:
                sf.ParseFromString(bytes(frame.data))
            except Exception as e:
                raise Failure(f"server binary frame does not decode as ServerFrame: {e!r}")
            return "binary", self.ctx.to_dict(sf)
        raise Failure(f"unexpected WebSocket opcode {opcode}")

    def recv(self, encoding="text", timeout=RECV_TIMEOUT, updates=False):
        """Next reply. On a subscribed connection, window updates that arrive while
        waiting for something else are put aside (they are not replies)."""
        if updates and self.stash:
            enc, obj = self.stash.pop(0)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    enc, obj = self.recv_any(max(0.05, deadline - time.monotonic()))
                except Closed as e:
                    raise Failure(f"connection closed unexpectedly: {e}")
                if self.subscribed and not updates and isinstance(obj, dict) and "windowUpdate" in obj:
                    self.stash.append((enc, obj))
                    continue
                break
        check(enc == encoding, f"reply came as a {enc} frame, expected {encoding}: {obj}")
        check(isinstance(obj, dict) and len(obj) == 1,
              f"ServerFrame must have exactly one member: {obj}")
        return obj

    def expect(self, kind, encoding="text", timeout=RECV_TIMEOUT):
        obj = self.recv(encoding, timeout, updates=(kind == "windowUpdate"))
        if kind not in obj:
            raise Failure(f"expected {kind}, got {json.dumps(obj)[:400]}")
        return obj[kind]

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


def sample(name, kind, value, labels=(), ts=None, mode=None):
    s = {"name": name, "labels": [{"name": n, "value": v} for n, v in labels], "kind": kind,
         "value": value}
    if ts is not None:
        s["timestampMs"] = str(ts)
    if mode is not None:
        s["counterMode"] = mode
    return s


def counter(name, value, labels=(), **kw):
    return sample(name, "COUNTER", value, labels, **kw)


def gauge(name, value, labels=(), **kw):
    return sample(name, "GAUGE", value, labels, **kw)


def canonical(name, labels=()):
    """Canonical key text, docs/protocol.md section 12.1."""
    kept = sorted((n, v) for n, v in labels if v != "")
    if not kept:
        return name
    esc = lambda v: v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return name + "{" + ",".join(f'{n}="{esc(v)}"' for n, v in kept) + "}"


def hello(c, pid, **extra):
    body = {"producerId": pid}
    body.update(extra)
    c.send({"hello": body})
    w = c.expect("welcome")
    check(w.get("node") == NODE, f"welcome.node is {w.get('node')!r}, expected {NODE!r}")
    return w


def write(c, seq, samples):
    c.send({"write": {"sequence": str(seq), "samples": samples}})
    return c.recv()


def ack(c, seq, samples, accepted=None, duplicate=False, late=0):
    r = write(c, seq, samples)
    check("ack" in r, f"write {seq}: expected an ack, got {json.dumps(r)[:400]}")
    a = r["ack"]
    check(str(a.get("sequence")) == str(seq), f"ack carries sequence {a.get('sequence')}, sent {seq}")
    want = len(samples) if accepted is None else accepted
    check(a.get("accepted") == want, f"write {seq}: accepted={a.get('accepted')}, expected {want}")
    check(a.get("duplicate") is duplicate,
          f"write {seq}: duplicate={a.get('duplicate')!r}, expected {duplicate}")
    check(a.get("late") == late, f"write {seq}: late={a.get('late')!r}, expected {late}")
    return a


def check_error(r, code, sequence=None, request_id=None, sample_index=None, what=""):
    check("error" in r, f"{what}: expected error {code}, got {json.dumps(r)[:400]}")
    e = r["error"]
    check(e.get("code") == code,
          f"{what}: error code {e.get('code')}, expected {code} (message: {e.get('message')!r})")
    if sequence is not None:
        check(str(e.get("sequence")) == str(sequence),
              f"{what}: error.sequence={e.get('sequence')!r}, expected {sequence}")
    if request_id is not None:
        check(str(e.get("requestId")) == str(request_id),
              f"{what}: error.requestId={e.get('requestId')!r}, expected {request_id}")
    if sample_index is not None:
        check(e.get("sampleIndex") == sample_index,
              f"{what}: error.sampleIndex={e.get('sampleIndex')!r}, expected {sample_index}")
    want_retry = code == "UNAVAILABLE"
    check(e.get("retryable") is want_retry,
          f"{what}: error.retryable={e.get('retryable')!r}, expected {want_retry}")
    return e


def ping(c, nonce=None, encoding="text"):
    nonce = nonce if nonce is not None else c.ctx.next_id()
    c.send({"ping": {"nonce": str(nonce)}})
    p = c.expect("pong", encoding)
    check(str(p.get("nonce")) == str(nonce), f"pong nonce {p.get('nonce')!r}, sent {nonce}")


def usable(c):
    """After an error: the connection must still be open and answer a ping."""
    ping(c)


def query(c, key):
    rid = c.ctx.next_id()
    c.send({"query": {"requestId": str(rid), "key": key}})
    q = c.expect("queryResult")
    check(str(q.get("requestId")) == str(rid), f"queryResult.requestId {q.get('requestId')!r} != {rid}")
    check("series" in q, f"queryResult without series: {q}")
    return q


def state(c, key):
    """(found, series) for a key; checks the fields that must be set either way."""
    q = query(c, key)
    s = q["series"]
    check(s.get("node") == NODE, f"query {key}: series.node {s.get('node')!r}")
    check(str(s.get("epoch")) == "1", f"query {key}: series.epoch {s.get('epoch')!r}, expected 1")
    return q.get("found") is True, s


def check_absent(c, key):
    found, s = state(c, key)
    check(not found, f"{key} exists after a rejected write: {s}")


def check_total(c, key, total, what=""):
    found, s = state(c, key)
    check(found, f"{what}{key} not found")
    check(close_enough(s.get("total"), total), f"{what}{key}: total {s.get('total')}, expected {total}")
    return s


def http_get(ctx, path, port=None):
    url = f"http://127.0.0.1:{port or ctx.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=RECV_TIMEOUT) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")
    except Exception as e:
        raise Failure(f"GET {url}: {e!r}")


def http_json(ctx, path, status=200):
    code, body, _ = http_get(ctx, path)
    check(code == status, f"GET {path}: status {code}, expected {status}: {body[:300]!r}")
    try:
        return json.loads(body)
    except ValueError:
        raise Failure(f"GET {path}: body is not JSON: {body[:300]!r}")


class Xxh3:
    """xxh3_64 via the system libxxhash, to check slice placement (section 12.3)."""

    def __init__(self):
        self.fn = None
        for name in ("libxxhash.so.0", "libxxhash.so"):
            try:
                lib = ctypes.CDLL(name)
                fn = lib.XXH3_64bits
                fn.restype = ctypes.c_uint64
                fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
                self.fn = fn
                break
            except (OSError, AttributeError):
                continue

    def slice(self, key, count=1024):
        if self.fn is None:
            return None
        b = key.encode()
        return self.fn(b, len(b)) % count


# ---------------------------------------------------------------------------
# Context

class Ctx:
    def __init__(self, args):
        self.args = args
        self.conns = []
        self.nodes = []
        self.ids = 1000
        self.uniq = f"{os.getpid()}"
        self.xxh = Xxh3()
        self.pb = None
        self.to_dict = None
        self.pb_error = None
        self.rules_dir = None

    def next_id(self):
        self.ids += 1
        return self.ids

    def pid(self, tag):
        return f"{tag}-{self.uniq}-{self.next_id()}"

    def name(self, tag):
        return f"t_{tag}_{self.uniq}"

    def connect(self, port=None):
        return Conn(self, port)

    def load_pb(self, python_dir):
        if not python_dir:
            self.pb_error = "no --python-dir given"
            return
        sys.path.insert(0, os.path.abspath(python_dir))
        try:
            import tether_pb2  # noqa: E402  (generated into BUILD_DIR/python)
            from google.protobuf import json_format
        except Exception as e:
            self.pb_error = f"cannot import tether_pb2 from {python_dir}: {e!r}"
            return
        self.pb = tether_pb2

        def to_dict(msg):
            return json_format.MessageToDict(msg, including_default_value_fields=True)

        self.to_dict = to_dict

    def close_conns(self):
        for c in self.conns:
            c.close()
        self.conns = []


# ---------------------------------------------------------------------------
# The nodes, started once for the module's cases

@pytest.fixture(scope="module")
def ctx(tetherd, python_dir, request, watchdog):
    """Ctx with four nodes: `main` (MAIN_LIMITS, WINDOW_MS windows, LATENESS_MS
    lateness; ctx.port), `auth` (TOKEN; ctx.auth_port), `idle` (IDLE_TIMEOUT_MS;
    ctx.idle_port) and `rules` (rules_document(), STALENESS_MS; ctx.rules_port).
    Stopped at the end, on SIGTERM or SIGHUP, or by the watchdog past --budget
    seconds (55)."""
    budget = request.config.getoption("budget") or 55.0
    assert os.access(tetherd, os.X_OK), f"{tetherd} is not an executable file"
    ctx = Ctx(types.SimpleNamespace(tetherd=tetherd, python_dir=python_dir, budget=budget))
    ctx.load_pb(python_dir)

    def stop_nodes():
        for n in ctx.nodes:
            n.stop()
        if ctx.rules_dir:
            shutil.rmtree(ctx.rules_dir, ignore_errors=True)

    def on_signal(signum, _frame):
        # pytest stops as on ^C and tears the fixtures down, which stops the nodes.
        raise KeyboardInterrupt(f"signal {signum}")

    ctx.watchdog = watchdog(budget, stop_nodes, "stream_test.py")
    handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        lim = [f"--tether.{k}={v}" for k, v in MAIN_LIMITS.items()]
        windows = [f"--tether.window-ms={WINDOW_MS}", f"--tether.lateness-ms={LATENESS_MS}"]
        ctx.rules_dir = tempfile.mkdtemp(prefix="tether-rules-")
        rules_path = os.path.join(ctx.rules_dir, "rules.json")
        with open(rules_path, "w") as f:
            json.dump(rules_document(ctx), f)
        for label, extra in (
                ("main", lim + windows),
                ("auth", [f"--tether.auth-token={TOKEN}"]),
                ("idle", [f"--tether.idle-timeout-ms={IDLE_TIMEOUT_MS}"]),
                ("rules", windows + [f"--tether.staleness-ms={STALENESS_MS}",
                                     f"--tether.rules-file={rules_path}"])):
            ctx.nodes.append(Node(tetherd, label, extra))
        main_node, auth_node, idle_node, rules_node = ctx.nodes
        deadline = time.monotonic() + START_TIMEOUT
        for n in ctx.nodes:
            n.wait_listening(deadline)
        ctx.port, ctx.auth_port, ctx.idle_port = main_node.port, auth_node.port, idle_node.port
        ctx.rules_port = rules_node.port
        if ctx.pb is None:
            print(f"note: binary checks will fail: {ctx.pb_error}")
        if ctx.xxh.fn is None:
            print("note: libxxhash not found, slice numbers are checked only against the "
                  "docs examples")
        yield ctx
    finally:
        ctx.close_conns()
        stop_nodes()
        for s, h in handlers.items():
            signal.signal(s, h)


def end_case(ctx):
    """After a case (this file's, limits_test.py's, security_test.py's): its connections
    are closed and every node must still run (unless the watchdog stopped them: it
    reports that itself)."""
    ctx.close_conns()
    if ctx.watchdog.expired:
        return
    dead = [f"tetherd '{n.label}' died with status {n.proc.returncode}{n.tail()}"
            for n in ctx.nodes if not n.alive()]
    assert not dead, " ".join(f"[{d}]" for d in dead)


@pytest.fixture(autouse=True)
def each_case(ctx):
    """After each case: `end_case`."""
    yield
    end_case(ctx)


# ---------------------------------------------------------------------------
# Cases, in the order they run (pytest runs them in the order of this file).
# Session, writes, reads, exactly-once

def test_hello_welcome(ctx):
    """hello -> welcome"""
    c = ctx.connect()
    w = hello(c, ctx.pid("hello"), protocolVersion=1)
    check(w.get("protocolVersion") == 1, f"welcome.protocolVersion {w.get('protocolVersion')!r}")
    want = {"maxFrameBytes": MAIN_LIMITS["max-frame-bytes"],
            "maxSamplesPerBatch": MAIN_LIMITS["max-samples-per-batch"],
            "maxLabelsPerSample": MAIN_LIMITS["max-labels-per-sample"],
            "maxKeyBytes": MAIN_LIMITS["max-key-bytes"], "maxInflightBatches": 64}
    for k, v in want.items():
        check(w.get(k) == v, f"welcome.{k} = {w.get(k)!r}, expected the number {v}")
    usable(c)
    # Original schema names are accepted on input; protocol_version 0 means 1.
    c2 = ctx.connect()
    c2.send({"hello": {"producer_id": ctx.pid("hello-snake"), "protocol_version": 0}})
    w2 = c2.expect("welcome")
    check(w2.get("protocolVersion") == 1, f"welcome.protocolVersion {w2.get('protocolVersion')!r}")


def test_write_ack_read(ctx):
    """write -> ack, query + HTTP read back"""
    c = ctx.connect()
    hello(c, ctx.pid("wa"))
    name = ctx.name("wa_requests_total")
    labels = [("method", "GET"), ("code", "200")]
    key = canonical(name, labels)
    c.send({"write": {"sequence": "1", "samples": [counter(name, 3, labels), counter(name, 4, labels)]}})
    r = c.recv()
    check("ack" in r, f"expected ack, got {r}")
    a = r["ack"]
    check(a.get("sequence") == "1", f"ack.sequence must be the JSON string \"1\", got {a.get('sequence')!r}")
    check(a.get("accepted") == 2, f"ack.accepted {a.get('accepted')!r}, expected the number 2")
    check("duplicate" in a and a["duplicate"] is False,
          f"ack.duplicate must be printed as false (defaults are printed): {a}")
    check("late" in a and a["late"] == 0, f"ack.late must be printed as the number 0: {a}")
    # 64-bit input as a JSON number and original field names.
    c.send({"write": {"sequence": 2, "samples": [
        {"name": name, "labels": [{"name": "code", "value": "200"}, {"name": "method", "value": "GET"}],
         "kind": "COUNTER", "value": 5, "timestamp_ms": ahead(), "counter_mode": "DELTA"}]}})
    a = c.expect("ack")
    check(str(a.get("sequence")) == "2" and a.get("accepted") == 1 and a.get("late") == 0,
          f"second ack {a}")
    # Query with a non-canonical spelling.
    q = query(c, f'{name}{{ method="GET", code="200" }}')
    check(q.get("found") is True, f"series not found: {q}")
    s = q["series"]
    check(s.get("key") == key, f"series.key {s.get('key')!r}, expected {key!r}")
    check(s.get("kind") == "COUNTER", f"series.kind {s.get('kind')!r}")
    check(close_enough(s.get("total"), 12), f"total {s.get('total')}, expected 12")
    check(close_enough(s.get("last"), 5), f"last {s.get('last')}, expected 5 (last increment)")
    check(s.get("epoch") == "1", f"series.epoch must be the string \"1\": {s.get('epoch')!r}")
    check(s.get("node") == NODE, f"series.node {s.get('node')!r}")
    want_slice = ctx.xxh.slice(key)
    if want_slice is not None:
        check(s.get("slice") == want_slice, f"series.slice {s.get('slice')}, xxh3 mod 1024 = {want_slice}")
    # HTTP read of the same series.
    h = http_json(ctx, "/v1/series?key=" + urllib.parse.quote(key, safe=""))
    check(h.get("key") == key, f"/v1/series key {h.get('key')!r}")
    check(h.get("found") is True, f"/v1/series found {h.get('found')!r}")
    check(h.get("node") == NODE and h.get("epoch") == 1, f"/v1/series node/epoch: {h}")
    check(h.get("slice") == s.get("slice"), f"/v1/series slice {h.get('slice')} != {s.get('slice')}")
    st = h.get("state")
    check(isinstance(st, dict), f"/v1/series state is {st!r}")
    check(isinstance(st.get("total"), (int, float)) and close_enough(st["total"], 12),
          f"/v1/series state.total {st.get('total')!r}, expected the number 12")
    # Absent series over HTTP: state null.
    other = canonical(name, [("code", "599")])
    h = http_json(ctx, "/v1/series?key=" + urllib.parse.quote(other, safe=""))
    check(h.get("found") is False and "state" in h and h["state"] is None,
          f"/v1/series for an absent key: {h}")


def test_retry_duplicate(ctx):
    """retry same sequence -> duplicate"""
    c = ctx.connect()
    hello(c, ctx.pid("dup"))
    k = ctx.name("dup_total")
    batch = [counter(k, 7), counter(k, 1)]
    ack(c, 1, batch)
    ack(c, 1, batch, accepted=0, duplicate=True)
    ack(c, 1, batch, accepted=0, duplicate=True)
    check_total(c, k, 8, "after retries: ")


def test_retry_second_connection(ctx):
    """retry from a second connection -> duplicate"""
    pid = ctx.pid("reconn")
    k = ctx.name("reconn_total")
    a = ctx.connect()
    hello(a, pid)
    for seq in (1, 2, 3):
        ack(a, seq, [counter(k, 10)])
    # Concurrent second connection with the same producer id.
    b = ctx.connect()
    hello(b, pid)
    ack(b, 3, [counter(k, 10)], accepted=0, duplicate=True)
    a.close()
    # Reconnect after closing: earlier sequences are still known.
    c = ctx.connect()
    hello(c, pid)
    ack(c, 2, [counter(k, 10)], accepted=0, duplicate=True)
    ack(c, 3, [counter(k, 10)], accepted=0, duplicate=True)
    ack(c, 4, [counter(k, 10)])
    check_total(c, k, 40)
    # A different producer may use the same sequence numbers.
    d = ctx.connect()
    hello(d, ctx.pid("reconn-other"))
    ack(d, 1, [counter(k, 1)])
    check_total(d, k, 41)


def test_pipelined(ctx):
    """pipelined writes beyond max-inflight"""
    c = ctx.connect()
    hello(c, ctx.pid("pipe"))
    k = ctx.name("pipe_total")
    n = 150  # well above max_inflight_batches (64): exercises backpressure without errors
    for seq in range(1, n + 1):
        c.send({"write": {"sequence": str(seq), "samples": [counter(k, 1)]}})
    seen = set()
    deadline = time.monotonic() + 15
    while len(seen) < n:
        left = deadline - time.monotonic()
        check(left > 0, f"only {len(seen)} of {n} pipelined writes answered in time")
        a = c.expect("ack", timeout=min(left, RECV_TIMEOUT))
        s = int(a["sequence"])
        check(s not in seen, f"sequence {s} acknowledged twice")
        check(a.get("accepted") == 1 and a.get("duplicate") is False, f"ack {a}")
        seen.add(s)
    check(seen == set(range(1, n + 1)), "acks do not cover every sequence")
    check_total(c, k, n)


# ---------------------------------------------------------------------------
# Cases: bad input

def bad_batch(ctx, tag, bad, code, bad_key=None, raw=None, expect_seq=2, index=1):
    """Write seq 1 (+10 on a control counter), then seq 2 = [+5 on the control counter,
    bad sample]. Expect `code`, nothing applied, connection usable, seq 2 still free."""
    c = ctx.connect()
    hello(c, ctx.pid(tag))
    k0 = ctx.name(tag + "_ctl_total")
    ack(c, 1, [counter(k0, 10)])
    if raw is not None:
        c.send_text(raw.replace("@CTL@", k0))
    else:
        c.send({"write": {"sequence": "2", "samples": [counter(k0, 5), bad]}})
    check_error(c.recv(), code, sequence=expect_seq, sample_index=index if expect_seq else None,
                what=tag)
    usable(c)
    check_total(c, k0, 10, "control series after the rejected batch: ")
    if bad_key is not None:
        check_absent(c, bad_key)
    if expect_seq == 2:
        ack(c, 3, [counter(k0, 1)])
    else:  # the frame was not decodable: its sequence was never seen
        ack(c, 2, [counter(k0, 1)])
    check_total(c, k0, 11)


def test_malformed_json(ctx):
    """malformed JSON"""
    c = ctx.connect()
    for text, what in (('{"write": {', "truncated JSON"), ("not json at all", "not JSON"),
                       ('["ping"]', "JSON array"), ('{"ping": {"nonce": "x"}}', "nonce not a number"),
                       ('{"ping": {"nonce": 1}, "hello": {"producerId": "a"}}', "two requests"),
                       ('{"ping": {"nonce": 1, "bogus": 2}}', "unknown field"),
                       ("{}", "empty frame")):
        c.send_text(text)
        e = check_error(c.recv(), "MALFORMED_FRAME", what=what)
        check(str(e.get("sequence")) == "0", f"{what}: sequence {e.get('sequence')!r}")
        usable(c)
    hello(c, ctx.pid("malformed"))
    k = ctx.name("malformed_total")
    c.send_text('{"write": {"sequence": "1", "samples": [{"name": "%s", "kind": "COUNTER", "value": 1}' % k)
    check_error(c.recv(), "MALFORMED_FRAME", what="truncated write")
    usable(c)
    check_absent(c, k)


def test_malformed_binary(ctx):
    """malformed binary"""
    check(ctx.pb is not None, ctx.pb_error or "tether_pb2 unavailable")
    c = ctx.connect()
    # Field 1 (hello) claims 5 bytes but only 2 follow.
    c.send_bytes(b"\x0a\x05ab")
    check_error(c.recv("binary"), "MALFORMED_FRAME", what="truncated protobuf")
    # Invalid UTF-8 in a string field: producer_id = b"\xff\xfe".
    hello_bad = b"\x0a\x04\x0a\x02\xff\xfe"
    c.send_bytes(hello_bad)
    check_error(c.recv("binary"), "MALFORMED_FRAME", what="invalid UTF-8 in protobuf string")
    usable(c)
    hello(c, ctx.pid("malformed-bin"))
    k = ctx.name("malbin_total")
    f = ctx.pb.ClientFrame()
    f.write.sequence = 1
    s = f.write.samples.add()
    s.name = k
    s.kind = ctx.pb.COUNTER
    s.value = 1
    data = f.SerializeToString()
    c.send_bytes(data[:-3])  # truncated write
    check_error(c.recv("binary"), "MALFORMED_FRAME", what="truncated binary write")
    usable(c)
    check_absent(c, k)
    c.send_bytes(data)
    a = c.expect("ack", "binary")
    check(str(a.get("sequence")) == "1" and a.get("accepted") == 1, f"ack {a}")


def test_before_hello(ctx):
    """requests before hello"""
    c = ctx.connect()
    ping(c)  # ping is served before hello
    k = ctx.name("prehello_total")
    c.send({"write": {"sequence": "1", "samples": [counter(k, 1)]}})
    check_error(c.recv(), "HELLO_REQUIRED", sequence=1, what="write before hello")
    usable(c)
    rid = ctx.next_id()
    c.send({"query": {"requestId": str(rid), "key": k}})
    check_error(c.recv(), "HELLO_REQUIRED", request_id=rid, what="query before hello")
    rid = ctx.next_id()
    c.send({"subscribe": {"requestId": str(rid), "keys": [k]}})
    check_error(c.recv(), "HELLO_REQUIRED", request_id=rid, what="subscribe before hello")
    usable(c)
    hello(c, ctx.pid("prehello"))
    check_absent(c, k)
    ack(c, 1, [counter(k, 1)])  # the refused write did not consume sequence 1
    check_total(c, k, 1)


def test_unknown_kind_number(ctx):
    """unknown kind number / absent kind / counter mode"""
    k = ctx.name("kindnum")
    bad_batch(ctx, "kindnum", sample(k, 7, 1), "UNKNOWN_KIND", bad_key=k)
    bad_batch(ctx, "kindnone", {"name": k, "value": 1}, "UNKNOWN_KIND", bad_key=k)
    bad_batch(ctx, "modenum", sample(k, "COUNTER", 1, mode=5), "UNKNOWN_KIND", bad_key=k)


def test_unknown_kind_name(ctx):
    """unknown kind name"""
    k = ctx.name("kindname")
    raw = ('{"write": {"sequence": "2", "samples": [{"name": "@CTL@", "kind": "COUNTER", "value": 5}, '
           '{"name": "%s", "kind": "SUMMARY", "value": 1}]}}' % k)
    bad_batch(ctx, "kindname", None, "MALFORMED_FRAME", bad_key=k, raw=raw, expect_seq=0)


def test_bad_metric_name(ctx):
    """bad metric name"""
    for i, name in enumerate(("1abc", "a-b", "", "caf\u00e9", "a b")):
        bad_batch(ctx, f"metric{i}", gauge(name, 1), "INVALID_METRIC_NAME")


def test_bad_label_name(ctx):
    """bad label name"""
    k = ctx.name("labelname")
    for i, ln in enumerate(("1x", "a-b", "", "a:b")):
        bad_batch(ctx, f"label{i}", gauge(k, 1, [("ok", "1"), (ln, "v")]), "INVALID_LABEL_NAME",
                  bad_key=canonical(k, [("ok", "1")]))


def test_reserved_label(ctx):
    """reserved __ label"""
    k = ctx.name("reserved")
    for i, ln in enumerate(("__name__", "__x")):
        bad_batch(ctx, f"reserved{i}", gauge(k, 1, [(ln, "v")]), "INVALID_LABEL_NAME", bad_key=k)


def test_duplicate_label(ctx):
    """duplicate label"""
    k = ctx.name("duplabel")
    bad_batch(ctx, "duplabel", gauge(k, 1, [("a", "1"), ("b", "2"), ("a", "3")]), "DUPLICATE_LABEL",
              bad_key=canonical(k, [("a", "1"), ("b", "2")]))


def test_too_many_labels(ctx):
    """too many labels"""
    k = ctx.name("labels")
    five = [(f"l{i}", "v") for i in range(5)]  # max-labels-per-sample is 4
    # (A 5-label key cannot be queried on this node: it is itself INVALID_KEY.)
    bad_batch(ctx, "toomanylabels", gauge(k, 1, five), "TOO_MANY_LABELS",
              bad_key=canonical(k, five[:4]))
    # The limit counts labels after empty values are dropped; exactly 4 is fine.
    c = ctx.connect()
    hello(c, ctx.pid("labels-ok"))
    four_plus_empty = [(f"l{i}", "v") for i in range(4)] + [("l9", "")]
    ack(c, 1, [gauge(k, 1, four_plus_empty)])
    found, s = state(c, canonical(k, four_plus_empty))
    check(found, f"series with 4 labels plus an empty one not found under {canonical(k, four_plus_empty)}")


def test_key_too_long(ctx):
    """key too long"""
    limit = MAIN_LIMITS["max-key-bytes"]
    name = ctx.name("kl")
    fixed = len(name) + len('{v=""}')
    ok_val = "a" * (limit - fixed)
    long_val = "b" * (limit - fixed + 1)
    check(len(canonical(name, [("v", ok_val)])) == limit, "test bug: key length")
    bad_batch(ctx, "keylong", gauge(name, 1, [("v", long_val)]), "KEY_TOO_LONG")
    # Escaping counts: a value of quotes grows when escaped.
    q_val = '"' * ((limit - fixed) // 2 + 1)
    bad_batch(ctx, "keylongesc", gauge(name, 1, [("v", q_val)]), "KEY_TOO_LONG")
    c = ctx.connect()
    hello(c, ctx.pid("keyok"))
    ack(c, 1, [gauge(name, 1, [("v", ok_val)])])
    found, s = state(c, canonical(name, [("v", ok_val)]))
    check(found, "a key of exactly max-key-bytes was not stored")


def test_non_finite(ctx):
    """NaN / Infinity"""
    for i, v in enumerate(("NaN", "Infinity", "-Infinity")):
        k = ctx.name(f"nonfinite{i}")
        bad_batch(ctx, f"nonfinite_g{i}", gauge(k, v), "NON_FINITE_VALUE", bad_key=k)
        bad_batch(ctx, f"nonfinite_c{i}", counter(k, v), "NON_FINITE_VALUE", bad_key=k)
    k = ctx.name("nonfinite_h")
    bad_batch(ctx, "nonfinite_h", sample(k, "HISTOGRAM", "NaN"), "NON_FINITE_VALUE", bad_key=k)


def test_negative_counter(ctx):
    """negative counter"""
    k = ctx.name("negctr")
    bad_batch(ctx, "negdelta", counter(k, -1), "NEGATIVE_COUNTER", bad_key=k)
    bad_batch(ctx, "negcum", counter(k, -5, mode="CUMULATIVE"), "NEGATIVE_COUNTER", bad_key=k)
    # Negative gauges and histogram observations are fine.
    c = ctx.connect()
    hello(c, ctx.pid("neggauge"))
    g = ctx.name("neggauge")
    ack(c, 1, [gauge(g, -3.5), sample(ctx.name("neghist"), "HISTOGRAM", -1)])
    found, s = state(c, g)
    check(found and close_enough(s.get("last"), -3.5), f"negative gauge: {s}")


def test_negative_timestamp(ctx):
    """negative timestamp"""
    k = ctx.name("negts")
    bad_batch(ctx, "negts", gauge(k, 1, ts=-1), "INVALID_TIMESTAMP", bad_key=k)


def test_sequence_zero(ctx):
    """sequence 0"""
    c = ctx.connect()
    hello(c, ctx.pid("seq0"))
    k = ctx.name("seq0_total")
    for seq in ("0", 0):
        c.send({"write": {"sequence": seq, "samples": [counter(k, 1)]}})
        check_error(c.recv(), "INVALID_SEQUENCE", sequence=0, sample_index=-1, what="sequence 0")
        usable(c)
    # Sequence absent is 0 as well.
    c.send({"write": {"samples": [counter(k, 1)]}})
    check_error(c.recv(), "INVALID_SEQUENCE", sequence=0, what="sequence absent")
    usable(c)
    check_absent(c, k)


def test_empty_batch(ctx):
    """empty batch"""
    c = ctx.connect()
    hello(c, ctx.pid("empty"))
    c.send({"write": {"sequence": "1", "samples": []}})
    check_error(c.recv(), "EMPTY_BATCH", sequence=1, sample_index=-1, what="samples []")
    usable(c)
    c.send({"write": {"sequence": "2"}})
    check_error(c.recv(), "EMPTY_BATCH", sequence=2, sample_index=-1, what="samples absent")
    usable(c)
    k = ctx.name("empty_total")
    ack(c, 3, [counter(k, 1)])


def test_too_many_samples(ctx):
    """too many samples"""
    c = ctx.connect()
    hello(c, ctx.pid("toomany"))
    k = ctx.name("toomany_total")
    limit = MAIN_LIMITS["max-samples-per-batch"]
    r = write(c, 1, [counter(k, 1)] * (limit + 1))
    check_error(r, "TOO_MANY_SAMPLES", sequence=1, sample_index=-1, what=f"{limit + 1} samples")
    usable(c)
    check_absent(c, k)
    ack(c, 2, [counter(k, 1)] * limit)
    check_total(c, k, limit)


def test_frame_too_large(ctx):
    """oversized frame"""
    limit = MAIN_LIMITS["max-frame-bytes"]
    c = ctx.connect()
    hello(c, ctx.pid("big"))
    k = ctx.name("big_total")
    # A valid write frame above the limit, touching series k.
    pad = "p" * 40
    samples = []
    frame = ""
    i = 0
    while len(frame) <= limit + 1024:
        samples.append(counter(k, 1, [("pad", f"{pad}{i}")]))
        i += 1
        if i % 50 == 0:
            frame = json.dumps({"write": {"sequence": "1", "samples": samples}})
    c.send_text(frame)
    check_error(c.recv(), "FRAME_TOO_LARGE", what=f"{len(frame)}-byte text frame")
    usable(c)
    check_absent(c, canonical(k, [("pad", pad + "0")]))
    if ctx.pb is not None:
        c.send_bytes(b"\x2a" + b"\xff" * (limit + 100))
        check_error(c.recv("binary"), "FRAME_TOO_LARGE", what="oversized binary frame")
        usable(c)
    # Sequence 1 was never seen: it is accepted now.
    ack(c, 1, [counter(k, 2)])
    check_total(c, k, 2)


def test_bad_query_key(ctx):
    """bad query/subscribe key"""
    c = ctx.connect()
    hello(c, ctx.pid("badkey"))
    for key in ("foo{", 'foo{a=1}', "1foo", 'foo{a="1"', 'foo{__x="1"}', "", 'foo{a="1",a="2"}',
                'foo{a="\\q"}', "x" * 200):
        rid = ctx.next_id()
        c.send({"query": {"requestId": str(rid), "key": key}})
        check_error(c.recv(), "INVALID_KEY", request_id=rid, what=f"query {key[:40]!r}")
        usable(c)
    # A subscribe with one bad key subscribes to nothing.
    good = ctx.name("badkey_sub")
    rid = ctx.next_id()
    c.send({"subscribe": {"requestId": str(rid), "keys": [good, "bad{"]}})
    check_error(c.recv(), "INVALID_KEY", request_id=rid, what="subscribe with a bad key")
    usable(c)
    ack(c, 1, [gauge(good, 1)])
    end = time.monotonic() + 2.5 * WINDOW_MS / 1000
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            enc, obj = c.recv_any(timeout=left)
        except Failure:
            break
        except Closed as e:
            raise Failure(f"connection closed: {e}")
        raise Failure(f"a rejected subscription produced a frame: {obj}")


def test_second_hello(ctx):
    """second hello"""
    c = ctx.connect()
    pid = ctx.pid("second")
    hello(c, pid)
    k = ctx.name("second_total")
    ack(c, 1, [counter(k, 2)])
    c.send({"hello": {"producerId": ctx.pid("second-other")}})
    check_error(c.recv(), "BAD_HELLO", what="second hello")
    usable(c)
    # Session unchanged: still bound to the first producer id, so sequence 1 is a duplicate.
    ack(c, 1, [counter(k, 2)], accepted=0, duplicate=True)
    ack(c, 2, [counter(k, 3)])
    check_total(c, k, 5)


def test_bad_hello(ctx):
    """bad hello"""
    c = ctx.connect()
    bad = [
        ({"producerId": ""}, "empty producer id"),
        ({"producerId": "has space"}, "producer id with a space"),
        ({"producerId": "tab\there"}, "producer id with a control character"),
        ({"producerId": "caf\u00e9"}, "non-ASCII producer id"),
        ({"producerId": "x" * 257}, "257-byte producer id"),
        ({"producerId": ctx.pid("badhello"), "protocolVersion": 2}, "protocol version 2"),
    ]
    for body, what in bad:
        c.send({"hello": body})
        check_error(c.recv(), "BAD_HELLO", what=what)
        usable(c)
    # Still awaiting hello: a write is refused, a correct hello (256 bytes) succeeds.
    c.send({"write": {"sequence": "1", "samples": [gauge(ctx.name("badhello"), 1)]}})
    check_error(c.recv(), "HELLO_REQUIRED", sequence=1, what="write after a bad hello")
    pid = ("p" + ctx.uniq + "-") .ljust(256, "z")
    check(len(pid) == 256, "test bug")
    hello(c, pid)
    ack(c, 1, [gauge(ctx.name("badhello"), 1)])


def test_auth(ctx):
    """wrong auth token"""
    port = ctx.auth_port
    for token, what in ((None, "missing token"), ("wrong", "wrong token"), ("S3CRET", "token case")):
        c = Conn(ctx, port)
        body = {"producerId": ctx.pid("auth")}
        if token is not None:
            body["token"] = token
        c.send({"hello": body})
        r = c.recv()
        check_error(r, "UNAUTHENTICATED", what=what)
        try:
            extra = c.recv_any(RECV_TIMEOUT)
            raise Failure(f"{what}: expected the connection to close with 1008, got {extra}")
        except Closed as e:
            check(e.code == 1008, f"{what}: close code {e.code}, expected 1008")
    c = Conn(ctx, port)
    w = hello(c, ctx.pid("auth-ok"), token=TOKEN)
    for k, v in DEFAULTS.items():
        check(w.get(k) == v, f"default limit welcome.{k} = {w.get(k)!r}, expected {v}")
    ack(c, 1, [counter(ctx.name("auth_total"), 1)])


def test_kind_conflict(ctx):
    """kind conflict"""
    c = ctx.connect()
    hello(c, ctx.pid("conflict"))
    k = ctx.name("conflict")
    ack(c, 1, [counter(k, 4)])
    r = write(c, 2, [gauge(k, 1)])
    e = check_error(r, "KIND_CONFLICT", sequence=2, what="gauge onto a counter")
    check(k in (e.get("message") or ""), f"KIND_CONFLICT message should name the key: {e.get('message')!r}")
    usable(c)
    found, s = state(c, k)
    check(found and s.get("kind") == "COUNTER" and close_enough(s.get("total"), 4),
          f"series changed by a conflicting write: {s}")


def test_sequence_too_old(ctx):
    """sequence too old"""
    c = ctx.connect()
    hello(c, ctx.pid("old"))
    k = ctx.name("old_total")
    ack(c, 1, [counter(k, 1)])
    ack(c, 300, [counter(k, 1)])
    r = write(c, 1, [counter(k, 1)])
    check_error(r, "SEQUENCE_TOO_OLD", sequence=1, what="retry 299 below the highest")
    usable(c)
    check_total(c, k, 2)
    # Issue 14 item 5: series the producer never wrote at 300 are not applied either.
    fresh = [ctx.name("old_fresh_a"), ctx.name("old_fresh_b"), ctx.name("old_fresh_c")]
    r = write(c, 10, [counter(k, 1)] + [counter(f, 1) for f in fresh])
    check_error(r, "SEQUENCE_TOO_OLD", sequence=10, what="an old write with new series")
    for f in fresh:
        check_absent(c, f)
    check_total(c, k, 2)


# ---------------------------------------------------------------------------
# Cases: aggregation semantics and keys

def test_gauge(ctx):
    """gauge last/min/max"""
    c = ctx.connect()
    hello(c, ctx.pid("gauge"))
    k = ctx.name("gauge")
    t = ahead()
    ack(c, 1, [gauge(k, 5, ts=t), gauge(k, -2, ts=t + 100)])
    ack(c, 2, [gauge(k, 9, ts=t + 200), gauge(k, 7, ts=t + 300)])
    found, s = state(c, k)
    check(found and s.get("kind") == "GAUGE", f"gauge series: {s}")
    want = {"last": 7, "min": -2, "max": 9, "sum": 19}
    for f, v in want.items():
        check(close_enough(s.get(f), v), f"gauge {f} = {s.get(f)}, expected {v}")
    check(str(s.get("count")) == "4", f"gauge count = {s.get('count')!r}, expected \"4\"")
    check(str(s.get("updatedMs")) == str(t + 300), f"gauge updatedMs {s.get('updatedMs')!r}, expected {t + 300}")


def test_histogram(ctx):
    """histogram"""
    c = ctx.connect()
    hello(c, ctx.pid("hist"))
    k = ctx.name("hist_seconds")
    ack(c, 1, [sample(k, "HISTOGRAM", v) for v in (1, 5, 3)])
    found, s = state(c, k)
    check(found and s.get("kind") == "HISTOGRAM", f"histogram series: {s}")
    for f, v in {"sum": 9, "min": 1, "max": 5, "last": 3}.items():
        check(close_enough(s.get(f), v), f"histogram {f} = {s.get(f)}, expected {v}")
    check(str(s.get("count")) == "3", f"histogram count {s.get('count')!r}")
    # Window aggregate with quantiles, read back by query once the window has closed.
    k2 = ctx.name("hist_window_seconds")
    values = [(i * 7) % 20 + 1 for i in range(20)]  # 1..20, shuffled
    ts = ahead()
    ack(c, 2, [sample(k2, "HISTOGRAM", v, ts=ts) for v in values])
    found, s = state(c, k2)
    check(found and field(s, "window.windowEndMs") == "0",
          f"before its first window closes, a series' window must have windowEndMs \"0\": {s.get('window')}")
    deadline = time.monotonic() + close_wait(ts)
    while field(s, "window.windowEndMs") == "0":
        check(time.monotonic() < deadline, f"the window of {ts} did not close in time: {s}")
        time.sleep(0.1)
        found, s = state(c, k2)
    start = window_of(ts)
    w = s["window"]
    check(w.get("windowStartMs") == str(start) and w.get("windowEndMs") == str(start + WINDOW_MS),
          f"histogram window [{w.get('windowStartMs')}, {w.get('windowEndMs')}), expected "
          f"[{start}, {start + WINDOW_MS})")
    check_fields(w, {"count": 20, "sum": 210, "min": 1, "max": 20, "mean": 10.5}, "histogram window")
    check_quantiles(w, values, [0.5, 0.9, 0.99], "histogram window")
    check_fields(s, {"count": 20, "sum": 210, "min": 1, "max": 20, "last": values[-1]},
                 "histogram running state")


def check_quantiles(w, values, qs, what, accuracy=0.01):
    """window.quantiles: one {q, value} per requested q, ascending, each within the
    relative error bound of docs/protocol.md 13.2."""
    got = w.get("quantiles")
    check(isinstance(got, list) and [round(float(x.get("q", -1)), 9) for x in got] == qs,
          f"{what}: quantiles {got}, expected q = {qs}")
    ordered = sorted(values)
    for x in got:
        q = float(x["q"])
        exact = ordered[math.ceil(q * (len(ordered) - 1))]
        y = float(x.get("value", "nan"))
        check(abs(y - exact) <= accuracy * abs(exact) + 1e-12,
              f"{what}: quantile {q} = {y}, exact {exact}: beyond the {accuracy:.0%} bound")


def test_cumulative(ctx):
    """cumulative counter"""
    c = ctx.connect()
    hello(c, ctx.pid("cum"))
    k = ctx.name("cum_total")
    steps = [(100, 0, 0), (130, 30, 30), (150, 50, 20), (40, 90, 40), (45, 95, 5)]
    for seq, (v, total, last) in enumerate(steps, 1):
        ack(c, seq, [counter(k, v, mode="CUMULATIVE")])
        found, s = state(c, k)
        check(found, f"cumulative series missing after value {v}")
        check(close_enough(s.get("total"), total), f"after cumulative {v}: total {s.get('total')}, expected {total}")
        check(close_enough(s.get("last"), last), f"after cumulative {v}: last {s.get('last')}, expected {last}")
    # Same rules inside one batch (counterMode as a number: 1 = CUMULATIVE).
    k2 = ctx.name("cum2_total")
    ack(c, 10, [sample(k2, "COUNTER", v, mode=1) for v in (10, 15, 3, 4)])
    check_total(c, k2, 5 + 3 + 1)


def test_timestamps(ctx):
    """timestamps"""
    c = ctx.connect()
    hello(c, ctx.pid("ts"))
    k = ctx.name("ts")
    before = int(time.time() * 1000)
    ack(c, 1, [gauge(k, 1, ts=0)])
    after = int(time.time() * 1000)
    found, s = state(c, k)
    upd = int(s.get("updatedMs"))
    check(before - 2000 <= upd <= after + 2000,
          f"timestamp 0 should mean arrival time: updatedMs {upd}, local clock {before}..{after}")
    k2 = ctx.name("ts2")
    t = now_ms()
    ack(c, 2, [gauge(k2, 1, ts=t + 5000), gauge(k2, 2, ts=t + 1000)])
    found, s = state(c, k2)
    check(str(s.get("updatedMs")) == str(t + 5000), f"updatedMs is the newest timestamp ({t + 5000}): {s}")
    check(close_enough(s.get("last"), 2), f"running last is the last value applied, not the newest: {s}")


def running(s):
    return {f: s.get(f) for f in ("kind", "total", "last", "min", "max", "sum", "count", "updatedMs")}


def test_late_and_future(ctx):
    """late and future timestamps"""
    c = ctx.connect()
    hello(c, ctx.pid("late"))
    k = ctx.name("late")
    ack(c, 1, [gauge(k, 5)])
    found, before = state(c, k)
    check(found, f"{k} not found")
    # A sample an hour old: acknowledged as late, not applied, the batch does not fail.
    hour_ago = now_ms() - 3600 * 1000
    ack(c, 2, [gauge(k, 99, ts=hour_ago)], accepted=0, late=1)
    found, after = state(c, k)
    check(running(after) == running(before), f"a late sample changed the series: {running(before)} -> {running(after)}")
    # The all-late batch was recorded: its retry is a duplicate.
    ack(c, 2, [gauge(k, 99, ts=hour_ago)], accepted=0, duplicate=True, late=0)
    # Late and current samples in one batch: only the current one is applied, and a late
    # sample does not create its series.
    k_new = ctx.name("late_new")
    ack(c, 3, [gauge(k_new, 1, ts=hour_ago), gauge(k, 6)], accepted=1, late=1)
    check_absent(c, k_new)
    found, s = state(c, k)
    check_fields(s, {"last": 6, "count": 2, "sum": 11}, "after a mixed batch")
    kc = ctx.name("late_total")
    ack(c, 4, [counter(kc, 5), counter(kc, 100, ts=hour_ago)], accepted=1, late=1)
    check_total(c, kc, 5, "a late increment was counted: ")
    # A sample whose window has closed is late, however recent.
    deadline = time.monotonic() + close_wait(now_ms())
    while field(s, "window.windowEndMs") == "0":
        check(time.monotonic() < deadline, f"no window of {k} closed in time: {s}")
        time.sleep(0.1)
        found, s = state(c, k)
    closed = s["window"]
    ack(c, 5, [gauge(k, 50, ts=int(closed["windowStartMs"]))], accepted=0, late=1)
    found, s2 = state(c, k)
    check(running(s2) == running(s), f"a sample in a closed window changed the series: {running(s2)}")
    check(int(s2["window"]["windowEndMs"]) >= int(closed["windowEndMs"]), f"window went back: {s2['window']}")
    if s2["window"]["windowEndMs"] == closed["windowEndMs"]:
        check(s2["window"] == closed, f"a late sample changed a closed window: {closed} -> {s2['window']}")
    # More than max-future-ms (60 s) ahead: INVALID_TIMESTAMP, nothing applied.
    kf = ctx.name("future")
    bad_batch(ctx, "future", gauge(kf, 1, ts=now_ms() + 120 * 1000), "INVALID_TIMESTAMP", bad_key=kf)
    # Within max-future-ms is fine.
    ack(c, 6, [gauge(kf, 2, ts=now_ms() + 30 * 1000)])
    found, s = state(c, kf)
    check(found and close_enough(s.get("last"), 2), f"a sample 30 s ahead was not applied: {s}")


def test_labels_and_keys(ctx):
    """labels and keys"""
    c = ctx.connect()
    hello(c, ctx.pid("keys"))
    k = ctx.name("keys")
    # Empty label values are dropped.
    ack(c, 1, [gauge(k, 1, [("b", "1"), ("a", "")])])
    found, s = state(c, f'{k}{{b="1"}}')
    check(found and s.get("key") == f'{k}{{b="1"}}', f"empty label not dropped: {s}")
    found, s = state(c, f'{k}{{a="",b="1"}}')
    check(found and s.get("key") == f'{k}{{b="1"}}', f"empty label in a query key not dropped: {s}")
    # Escaping in the canonical key.
    val = 'q"b\\s\nn'
    ack(c, 2, [gauge(k, 2, [("v", val)])])
    want = k + '{v="q\\"b\\\\s\\nn"}'
    found, s = state(c, want)
    check(found and s.get("key") == want, f"escaped key: expected {want!r}, got {s.get('key')!r}")
    # Label order does not matter; spaces in query keys are allowed; no labels = bare name.
    ack(c, 3, [gauge(k, 3, [("z", "1"), ("m", "2")]), gauge(k, 4)])
    found, s = state(c, f'{k} {{ z = "1" , m = "2" }}')
    check(found and s.get("key") == f'{k}{{m="2",z="1"}}', f"non-canonical query: {s}")
    found, s = state(c, f'{k}\t{{m="2",\tz="1",}}')
    check(found and s.get("key") == f'{k}{{m="2",z="1"}}', f"tabs and a trailing comma in a query key: {s}")
    found, s = state(c, k + "{}")
    check(found and s.get("key") == k and close_enough(s.get("last"), 4), f"bare name: {s}")
    # Slice placement.
    want_slice = ctx.xxh.slice(want)
    if want_slice is not None:
        found, s = state(c, want)
        check(s.get("slice") == want_slice, f"slice {s.get('slice')}, xxh3 mod 1024 = {want_slice}")
    # Not found: key/slice/node/epoch still set.
    absent = f'{k}{{b="2"}}'
    q = query(c, absent)
    s = q["series"]
    check(q.get("found") is False, f"absent series found: {q}")
    check(s.get("key") == absent and s.get("kind") == "KIND_UNSPECIFIED", f"absent series: {s}")
    if ctx.xxh.slice(absent) is not None:
        check(s.get("slice") == ctx.xxh.slice(absent), f"absent series slice {s.get('slice')}")


# ---------------------------------------------------------------------------
# Cases: subscriptions, pings, binary, HTTP, idle

class Updates:
    """Reads the window updates (text or binary) of a subscribed connection and files
    them by (request id, window start)."""

    def __init__(self, c, lengths=None):
        self.c = c
        self.lengths = lengths or {}  # key -> window length, if not WINDOW_MS
        self.by = {}                  # (request id, window start) -> [(encoding, update)]

    def read(self, timeout):
        if self.c.stash:  # put aside while waiting for a reply
            enc, obj = self.c.stash.pop(0)
        else:
            enc, obj = self.c.recv_any(timeout=timeout)
        check(isinstance(obj, dict) and list(obj) == ["windowUpdate"],
              f"expected only window updates here, got {json.dumps(obj)[:300]}")
        u = obj["windowUpdate"]
        start, end = int(u.get("windowStartMs", 0)), int(u.get("windowEndMs", 0))
        check(start > 0, f"a second initial update (windowStartMs 0): {u}")
        for st in u.get("series", []):
            length = self.lengths.get(st.get("key"), WINDOW_MS)
            check(start % length == 0 and end - start == length,
                  f"window [{start}, {end}) of {st.get('key')} is not an aligned {length} ms window")
            # In an update sent at a window close, `window` is that window.
            w = st.get("window") or {}
            check(w.get("windowStartMs") == str(start) and w.get("windowEndMs") == str(end),
                  f"update [{start}, {end}) carries {st.get('key')} with window "
                  f"[{w.get('windowStartMs')}, {w.get('windowEndMs')})")
        self.by.setdefault((int(u["requestId"]), start), []).append((enc, u))
        return u

    def series(self, rid, start):
        """{key: SeriesState} over every update of (rid, window start)."""
        out = {}
        for _, u in self.by.get((rid, start), []):
            for st in u.get("series", []):
                check(st.get("key") not in out,
                      f"{st.get('key')} came twice for window {start} of request {rid}")
                out[st["key"]] = st
        return out

    def wait(self, want, timeout, settle=0.0):
        """Reads until every (rid, window start) -> keys of `want` has been seen, then
        `settle` more seconds (to catch stray updates)."""
        deadline = time.monotonic() + timeout

        def missing():
            return {k: sorted(set(keys) - set(self.series(*k))) for k, keys in want.items()
                    if set(keys) - set(self.series(*k))}

        while missing():
            left = deadline - time.monotonic()
            seen = {f"{r}@{st}": [[x["key"] for x in u.get("series", [])] for _, u in v]
                    for (r, st), v in self.by.items()}
            check(left > 0, f"no window update carried {missing()} within {timeout:.1f}s; "
                            f"updates seen (request@window -> keys): {seen}")
            try:
                self.read(left)
            except Failure as e:
                raise Failure(f"{e}; still missing (request, window) -> keys {missing()}; seen {seen}")
        end = time.monotonic() + settle
        while time.monotonic() < end:
            try:
                self.read(max(0.05, end - time.monotonic()))
            except Failure as e:
                if "no frame from the server" not in str(e):
                    raise
                break


def test_subscribe(ctx):
    """subscribe -> window updates"""
    c = ctx.connect()
    hello(c, ctx.pid("sub"))
    k1 = ctx.name("sub_a_total")
    k2 = ctx.name("sub_b")
    ack(c, 1, [counter(k1, 3)])
    rid = ctx.next_id()
    before = int(time.time() * 1000)
    c.send({"subscribe": {"requestId": str(rid), "keys": [k1, k2]}})
    w = c.expect("windowUpdate")
    after = int(time.time() * 1000)
    c.subscribed = True
    check(str(w.get("requestId")) == str(rid), f"initial update requestId {w.get('requestId')!r}")
    check(w.get("windowStartMs") == "0", f"initial update windowStartMs {w.get('windowStartMs')!r}, expected \"0\"")
    end = int(w.get("windowEndMs"))
    check(before - 2000 <= end <= after + 2000, f"initial windowEndMs {end} is not now ({before})")
    keys = [s.get("key") for s in w.get("series", [])]
    check(keys == [k1], f"initial update series keys {keys}, expected [{k1!r}] (k2 does not exist)")
    first = w["series"][0]
    check(close_enough(first.get("total"), 3), f"initial state {first}")
    # The initial state carries the latest closed window: none yet, or the one of write 1.
    check(isinstance(first.get("window"), dict), f"initial state without a window: {first}")
    if first["window"].get("windowEndMs") != "0":
        check_fields(first, {"window.count": 1, "window.increase": 3, "window.total": 3},
                     "initial state's window")
    ups = Updates(c)
    # Both samples of write 2 carry a timestamp in one future window: that window's
    # update carries both series, with the window aggregate of exactly those samples.
    ts = ahead()
    start = window_of(ts)
    ack(c, 2, [gauge(k2, 8, ts=ts), counter(k1, 2, ts=ts)])
    ups.wait({(rid, start): [k1, k2]}, close_wait(ts))
    got = ups.series(rid, start)
    check_fields(got[k2], {"last": 8, "count": 1, "window.count": 1, "window.last": 8, "window.min": 8,
                           "window.max": 8, "window.sum": 8, "window.mean": 8}, f"{k2} at window close")
    check_fields(got[k1], {"total": 5, "window.count": 1, "window.increase": 2, "window.total": 5,
                           "window.rate": 2 * 1000 / WINDOW_MS}, f"{k1} at window close")
    # Write 1 (arrival time) is in an earlier window; if its close came after the
    # subscribe, it carried k1 alone with that window's increase.
    for (r, st), v in ups.by.items():
        if st < start:
            for _, u in v:
                check([x["key"] for x in u["series"]] == [k1], f"earlier window update {u}")
                check_fields(u["series"][0], {"window.increase": 3, "window.total": 3}, "write 1's window")
    # A window with samples of k1 only carries k1 and not k2.
    ts2 = max(ahead(), start + WINDOW_MS)
    start2 = window_of(ts2)
    ack(c, 3, [counter(k1, 1, ts=ts2)])
    ups.wait({(rid, start2): [k1]}, close_wait(ts2), settle=3 * TICK_MS / 1000)
    got = ups.series(rid, start2)
    check(sorted(got) == [k1], f"{k2} received no samples in window {start2} but is in its update: {sorted(got)}")
    check_fields(got[k1], {"total": 6, "window.count": 1, "window.increase": 1, "window.total": 6},
                 f"{k1} at the close of window {start2}")
    usable_sub(c)


def keys_apart(ctx, tag):
    """Keys whose slices are adjacent numbers, hence on different shards of any node
    with more than one; without libxxhash, eight keys."""
    if ctx.xxh.fn is None:
        return [ctx.name(f"{tag}{i}") for i in range(8)]
    seen = {}
    for i in range(10000):
        k = ctx.name(f"{tag}{i}")
        sl = ctx.xxh.slice(k)
        for other in (sl - 1, sl + 1):
            if other in seen:
                return [seen[other], k]
        seen.setdefault(sl, k)
    raise Failure("test bug: no keys in adjacent slices")


def test_one_update_per_window(ctx):
    """one window update per subscription and window"""
    c = ctx.connect()
    hello(c, ctx.pid("oneupd"))
    keys = keys_apart(ctx, "oneupd")
    rid = ctx.next_id()
    c.send({"subscribe": {"requestId": str(rid), "keys": keys}})
    w = c.expect("windowUpdate")
    check(int(w["requestId"]) == rid and w.get("series") == [], f"initial update {w}")
    c.subscribed = True
    ts = ahead()
    start = window_of(ts)
    ack(c, 1, [gauge(k, i + 1, ts=ts) for i, k in enumerate(keys)])
    ups = Updates(c)
    ups.wait({(rid, start): keys}, close_wait(ts), settle=3 * TICK_MS / 1000)
    frames = ups.by[(rid, start)]
    slices = {k: ctx.xxh.slice(k) for k in keys}
    check(len(frames) == 1,
          f"window [{start}, {start + WINDOW_MS}) of subscription {rid} came in {len(frames)} "
          f"window_update frames, keys per frame {[[x['key'] for x in u['series']] for _, u in frames]} "
          f"(slices {slices}); docs/protocol.md 15.3 says one per subscription and closed window")
    got = ups.series(rid, start)
    for i, k in enumerate(keys):
        check_fields(got[k], {"window.count": 1, "window.last": i + 1}, k)


def collect_updates(c, want, timeout):
    """Reads window updates (text or binary) until `want` (request id -> (encoding,
    key, {field: value})) are all seen. Returns {request id: [updates]}."""
    need = dict(want)
    got = {}
    deadline = time.monotonic() + timeout
    while need:
        left = deadline - time.monotonic()
        seen = {k: [[s["key"] for s in u.get("series", [])] for _, u in v] for k, v in got.items()}
        check(left > 0, f"no window update for request(s) {sorted(need)} within {timeout:.1f}s; "
                        f"updates seen (request -> keys): {seen}")
        try:
            enc, obj = c.stash.pop(0) if c.stash else c.recv_any(timeout=left)
        except Failure:
            raise Failure(f"no window update for request(s) {sorted(need)} within {timeout:.1f}s; "
                          f"updates seen (request -> keys): {seen}")
        check("windowUpdate" in obj, f"unexpected frame {obj}")
        u = obj["windowUpdate"]
        rid = int(u["requestId"])
        got.setdefault(rid, []).append((enc, u))
        if rid in need:
            wenc, key, fields = need[rid]
            for st in u.get("series", []):
                if st.get("key") == key:
                    check(enc == wenc, f"update for request {rid} came as {enc}, its subscribe was {wenc}")
                    check_fields(st, fields, f"update for request {rid}")
                    del need[rid]
                    break
    return got


def test_subscriptions_encoding(ctx):
    """two subscriptions keep their own encoding"""
    check(ctx.pb is not None, ctx.pb_error or "tether_pb2 unavailable")
    c = ctx.connect()
    hello(c, ctx.pid("subenc"))
    k1 = ctx.name("subenc_text")
    k2 = ctx.name("subenc_bin")
    ra, rb = ctx.next_id(), ctx.next_id()
    c.send({"subscribe": {"requestId": str(ra), "keys": [k1]}})
    w = c.expect("windowUpdate", "text")
    check(int(w["requestId"]) == ra, f"initial update {w}")
    f = ctx.pb.ClientFrame()
    f.subscribe.request_id = rb
    f.subscribe.keys.append(k2)
    c.send_pb(f)
    w = c.expect("windowUpdate", "binary")
    check(int(w["requestId"]) == rb, f"initial update {w}")
    c.subscribed = True
    ts = ahead()
    ack(c, 1, [gauge(k1, 1, ts=ts), gauge(k2, 2, ts=ts)])
    collect_updates(c, {ra: ("text", k1, {"last": 1, "window.count": 1, "window.last": 1}),
                        rb: ("binary", k2, {"last": 2, "window.count": 1, "window.last": 2})},
                    close_wait(ts))


def test_second_subscription_initial(ctx):
    """A second subscription naming a key whose window an earlier subscription on the
    connection already received still gets the key's state in its initial update
    (docs/protocol.md 15.3, items 2 and 5)."""
    c = ctx.connect()
    hello(c, ctx.pid("subsecond"))
    k = ctx.name("subsecond_total")
    ra, rb = ctx.next_id(), ctx.next_id()
    c.send({"subscribe": {"requestId": str(ra), "keys": [k]}})
    c.expect("windowUpdate")
    c.subscribed = True
    ts = ahead()
    ack(c, 1, [counter(k, 4, ts=ts)])
    ups = Updates(c)
    ups.wait({(ra, window_of(ts)): [k]}, close_wait(ts))
    c.send({"subscribe": {"requestId": str(rb), "keys": [k]}})
    deadline = time.monotonic() + RECV_TIMEOUT
    while True:
        check(time.monotonic() < deadline, "no initial update for the second subscription")
        w = c.expect("windowUpdate")
        if int(w["requestId"]) == rb:
            break
    keys = [x.get("key") for x in w.get("series", [])]
    check(keys == [k], f"second subscription's initial update has {keys}, expected [{k!r}]")
    check(close_enough(w["series"][0].get("total"), 4), f"initial state {w['series'][0]}")


def test_subscriptions_overlap(ctx):
    """overlapping subscriptions"""
    c = ctx.connect()
    hello(c, ctx.pid("subovl"))
    k = ctx.name("subovl")
    ra, rb = ctx.next_id(), ctx.next_id()
    for rid in (ra, rb):
        c.send({"subscribe": {"requestId": str(rid), "keys": [k]}})
        w = c.expect("windowUpdate")
        check(int(w["requestId"]) == rid, f"initial update {w}")
    c.subscribed = True
    ts = ahead()
    ack(c, 1, [gauge(k, 3, ts=ts)])
    want = {"last": 3, "window.count": 1, "window.last": 3, "window.windowStartMs": window_of(ts)}
    collect_updates(c, {ra: ("text", k, want), rb: ("text", k, want)}, close_wait(ts))


def rules_document(ctx):
    """The rules file of the rules node (docs/aggregation.md): two rules fold pods away,
    one renames latency histograms, keeps only `route`, and has its own window and
    quantiles. Names are unique to this run, so no other case is affected."""
    return {"rules": [
        {"name": "fold_pods", "match": ctx.name("fold_total"), "without": ["pod"]},
        {"name": "stale_pods", "match": ctx.name("stale_total"), "without": ["pod"]},
        {"name": "latency_by_route", "match": ctx.name("lat_seconds"), "by": ["route"],
         "output": ctx.name("route_latency"), "window_ms": RULE_WINDOW_MS, "quantiles": [0.75, 0.5]},
    ]}


def test_rules(ctx):
    """rules fold input series"""
    c = Conn(ctx, ctx.rules_port)
    hello(c, ctx.pid("rules"))
    fold = ctx.name("fold_total")
    fold_out = canonical(fold, [("svc", "api")])
    lat = ctx.name("lat_seconds")
    lat_out = canonical(ctx.name("route_latency"), [("route", "/a")])
    rid = ctx.next_id()
    c.send({"subscribe": {"requestId": str(rid), "keys": [fold_out, lat_out]}})
    w = c.expect("windowUpdate")
    check(int(w["requestId"]) == rid and w.get("series") == [], f"initial update {w}")
    c.subscribed = True
    # Cumulative counters are tracked per input series (the key as sent, before rules):
    # pods a and b fold into one output; a = 100, b = 5, a = 110, b = 7, a = 3 add
    # 0, 0, 10, 2, 3.
    ts = ahead()
    steps = [("a", 100), ("b", 5), ("a", 110), ("b", 7), ("a", 3)]
    ack(c, 1, [counter(fold, v, [("pod", p), ("svc", "api")], ts=ts, mode="CUMULATIVE") for p, v in steps])
    check_total(c, fold_out, 15, "folded cumulative output: ")
    check_absent(c, canonical(fold, [("pod", "a"), ("svc", "api")]))  # an input is not a series
    # The latency rule: output name, `by: [route]`, 1 s windows, its own quantiles.
    values = [4, 1, 3, 2, 8, 6, 5, 7]
    ack(c, 2, [sample(lat, "HISTOGRAM", v, [("route", "/a"), ("pod", f"p{v % 3}"), ("method", "GET")], ts=ts)
               for v in values])
    check_absent(c, canonical(lat, [("route", "/a"), ("pod", "p1"), ("method", "GET")]))  # input of 4
    found, s = state(c, lat_out)
    check(found and s.get("kind") == "HISTOGRAM" and str(s.get("count")) == str(len(values)),
          f"output of the latency rule: {s}")
    ups = Updates(c, {lat_out: RULE_WINDOW_MS})
    fold_start, lat_start = window_of(ts), window_of(ts, RULE_WINDOW_MS)
    ups.wait({(rid, fold_start): [fold_out], (rid, lat_start): [lat_out]}, close_wait(ts, RULE_WINDOW_MS))
    st = ups.series(rid, fold_start)[fold_out]
    check_fields(st, {"total": 15, "window.count": 5, "window.increase": 15, "window.total": 15,
                      "window.windowEndMs": fold_start + WINDOW_MS}, "folded output at window close")
    st = ups.series(rid, lat_start)[lat_out]
    check_fields(st, {"window.windowEndMs": lat_start + RULE_WINDOW_MS, "window.count": len(values),
                      "window.sum": sum(values), "window.min": 1, "window.max": 8,
                      "window.mean": sum(values) / len(values)}, "latency output at window close")
    check_quantiles(st["window"], values, [0.5, 0.75], "latency rule window")
    found, s = state(c, lat_out)
    check(s.get("window") == st["window"], f"query after the close: window {s.get('window')}, "
                                           f"expected the closed window {st['window']}")


def test_stale_inputs(ctx):
    """stale cumulative inputs"""
    c = Conn(ctx, ctx.rules_port)  # --tether.staleness-ms=1000
    hello(c, ctx.pid("stale"))
    k = ctx.name("stale_total")
    out = canonical(k, [("svc", "api")])

    def cum(pod, v):
        return counter(k, v, [("pod", pod), ("svc", "api")], mode="CUMULATIVE")

    ack(c, 1, [cum("a", 100)])
    ack(c, 2, [cum("a", 110)])
    check_total(c, out, 10)
    time.sleep(STALENESS_MS / 1000 + 0.3)  # input a is now quiet for longer than staleness
    # b keeps the output busy; when the window of b's sample closes, a is forgotten.
    t_b = now_ms()
    ack(c, 3, [cum("b", 1)])
    deadline = time.monotonic() + close_wait(t_b)
    found, s = state(c, out)
    while int(field(s, "window.windowEndMs") or 0) <= t_b:
        check(time.monotonic() < deadline, f"the window of b's sample did not close in time: {s}")
        time.sleep(0.1)
        found, s = state(c, out)
    check(close_enough(s.get("total"), 10), f"forgetting an input lowered the output: {s}")
    # a returns: its value is a new baseline (adds 0), not a reset (which would add 130).
    ack(c, 4, [cum("a", 130)])
    check_total(c, out, 10, "a forgotten input's next value must be a new baseline: ")
    ack(c, 5, [cum("a", 135)])
    check_total(c, out, 15)


def usable_sub(c):
    """Ping on a connection that may also receive window updates."""
    ping(c)


def test_ping(ctx):
    """pings"""
    c = ctx.connect()
    hello(c, ctx.pid("ping"))
    for nonce in (0, 1, 42, 2 ** 63 + 5, 2 ** 64 - 1):
        ping(c, nonce)
    c.send({"ping": {"nonce": 7}})  # number on input is fine
    p = c.expect("pong")
    check(p.get("nonce") == "7", f"pong nonce must be printed as the string \"7\": {p}")
    c.send({"ping": {}})
    p = c.expect("pong")
    check(p.get("nonce") == "0", f"pong for an empty ping: {p}")
    # WebSocket-level ping control frame.
    c.ws.ping(b"tether")
    c.ws.settimeout(RECV_TIMEOUT)
    try:
        while True:
            op, frame = c.ws.recv_data_frame(control_frame=True)
            if op == websocket.ABNF.OPCODE_PONG:
                check(frame.data == b"tether", f"WebSocket pong payload {frame.data!r}")
                break
            check(op == websocket.ABNF.OPCODE_PING, f"unexpected opcode {op} while waiting for a pong")
    except websocket.WebSocketTimeoutException:
        raise Failure("no WebSocket pong for a WebSocket ping")


def test_binary(ctx):
    """binary frames"""
    check(ctx.pb is not None, ctx.pb_error or "tether_pb2 unavailable")
    pb = ctx.pb
    c = ctx.connect()
    f = pb.ClientFrame()
    f.hello.producer_id = ctx.pid("bin")
    c.send_pb(f)
    w = c.expect("welcome", "binary")
    check(w.get("node") == NODE and w.get("maxFrameBytes") == MAIN_LIMITS["max-frame-bytes"],
          f"binary welcome {w}")
    k = ctx.name("bin_total")
    f = pb.ClientFrame()
    f.write.sequence = 1
    for v in (2.0, 3.0):
        s = f.write.samples.add()
        s.name = k
        s.kind = pb.COUNTER
        s.value = v
        lab = s.labels.add()
        lab.name, lab.value = "host", "a"
    c.send_pb(f)
    a = c.expect("ack", "binary")
    check(str(a.get("sequence")) == "1" and a.get("accepted") == 2 and a.get("duplicate") is False,
          f"binary ack {a}")
    c.send_pb(f)
    a = c.expect("ack", "binary")
    check(a.get("accepted") == 0 and a.get("duplicate") is True, f"binary duplicate ack {a}")
    # A bad sample in binary: unknown kind number.
    g = pb.ClientFrame()
    g.write.sequence = 2
    s = g.write.samples.add()
    s.name = k
    s.kind = 9
    s.value = 1
    c.send_pb(g)
    e = c.expect("error", "binary")
    check(e.get("code") == "UNKNOWN_KIND" and str(e.get("sequence")) == "2" and e.get("sampleIndex") == 0,
          f"binary error {e}")
    key = canonical(k, [("host", "a")])
    q = pb.ClientFrame()
    q.query.request_id = 77
    q.query.key = key
    c.send_pb(q)
    r = c.expect("queryResult", "binary")
    check(r.get("found") is True and close_enough(r["series"].get("total"), 5), f"binary query result {r}")
    c.send_bytes(b"\x2a\x02\x08\x2a")  # the exact bytes from docs/protocol.md section 2.1
    c.ws.settimeout(RECV_TIMEOUT)
    try:
        op, frame = c.ws.recv_data_frame()
    except websocket.WebSocketTimeoutException:
        raise Failure("no reply to a binary ping")
    check(op == websocket.ABNF.OPCODE_BINARY and bytes(frame.data) == b"\x32\x02\x08\x2a",
          f"binary pong bytes {bytes(frame.data).hex()} (opcode {op}), expected 32 02 08 2a")
    # Mixed encodings on one connection: a text ping gets a text pong.
    ping(c, 5, "text")
    # Binary subscription: updates in binary.
    sub = pb.ClientFrame()
    sub.subscribe.request_id = 88
    sub.subscribe.keys.append(key)
    c.send_pb(sub)
    u = c.expect("windowUpdate", "binary")
    check(str(u.get("requestId")) == "88" and len(u.get("series", [])) == 1, f"binary initial update {u}")
    ts = ahead()
    c.send({"write": {"sequence": "3", "samples": [counter(k, 1, [("host", "a")], ts=ts)]}})
    deadline = time.monotonic() + close_wait(ts)
    got_ack = got_update = False
    while not (got_ack and got_update):
        left = deadline - time.monotonic()
        check(left > 0, f"ack (text) {got_ack}, window update (binary) {got_update}")
        enc, obj = c.recv_any(timeout=left)
        if "ack" in obj:
            check(enc == "text", "ack to a text write must be text")
            got_ack = True
        elif "windowUpdate" in obj:
            check(enc == "binary", "window updates of a binary subscribe must be binary")
            u = obj["windowUpdate"]
            if int(u.get("windowStartMs", 0)) == window_of(ts):
                check(len(u.get("series", [])) == 1, f"binary update {u}")
                check_fields(u["series"][0], {"total": 6, "window.count": 1, "window.increase": 1,
                                              "window.total": 6, "window.windowStartMs": window_of(ts)},
                             "binary window update")
                got_update = True
        else:
            raise Failure(f"unexpected frame {obj}")


def test_http(ctx):
    """HTTP endpoints"""
    code, body, _ = http_get(ctx, "/healthz")
    check(code == 200 and body.strip() == b"ok", f"/healthz: {code} {body[:100]!r}")
    deadline = time.monotonic() + 5
    while True:
        code, body, _ = http_get(ctx, "/readyz")
        if code == 200:
            check(body.strip() == b"ready", f"/readyz body {body[:100]!r}")
            break
        check(code == 503, f"/readyz status {code}")
        check(time.monotonic() < deadline, "/readyz still 503 after 5 s")
        time.sleep(0.2)
    d = http_json(ctx, "/v1/directory")
    check(d.get("slice_count") == 1024, f"directory slice_count {d.get('slice_count')!r}")
    check(d.get("nodes") == [NODE], f"directory nodes {d.get('nodes')!r}")
    slices = d.get("slices")
    check(isinstance(slices, list) and len(slices) == 1024, f"directory has {len(slices or [])} slices")
    check(sorted(s.get("slice") for s in slices) == list(range(1024)), "directory slices are not 0..1023")
    for s in slices:
        check(s.get("primary") == NODE and s.get("epoch") == 1 and s.get("followers") == [],
              f"slice entry {s}")
    for f in ("version", "replication_factor"):
        check(f in d, f"directory lacks {f!r}")
    n = http_json(ctx, "/v1/nodes")
    nodes = n.get("nodes")
    check(isinstance(nodes, list) and len(nodes) == 1 and nodes[0].get("name") == NODE, f"/v1/nodes {n}")
    for f in ("address", "state", "primary_slices", "follower_slices", "series", "samples_applied"):
        check(f in nodes[0], f"/v1/nodes entry lacks {f!r}: {nodes[0]}")
    check(nodes[0].get("primary_slices") == 1024, f"primary_slices {nodes[0].get('primary_slices')!r}")
    key = 'http_requests_total{code="200",method="GET"}'
    w = http_json(ctx, "/v1/where?key=" + urllib.parse.quote('http_requests_total{ method="GET",code="200"}', safe=""))
    check(w.get("key") == key, f"/v1/where key {w.get('key')!r}, expected {key!r}")
    check(w.get("slice") == 555, f"/v1/where slice {w.get('slice')!r}, expected 555 (docs example)")
    check(w.get("epoch") == 1 and w.get("primary") == NODE and w.get("followers") == [], f"/v1/where {w}")
    w = http_json(ctx, "/v1/where?key=up")
    check(w.get("slice") == 356, f"/v1/where?key=up slice {w.get('slice')!r}, expected 356")
    for path in ("/v1/where?key=" + urllib.parse.quote("bad{", safe=""), "/v1/where",
                 "/v1/series?key=" + urllib.parse.quote('x{a=1}', safe="")):
        e = http_json(ctx, path, status=400)
        check(e.get("error") == "INVALID_KEY" and "message" in e, f"GET {path}: {e}")
    code, body, _ = http_get(ctx, "/v1/no-such-thing")
    check(code == 404, f"unknown path: status {code}")
    try:
        e = json.loads(body)
    except ValueError:
        raise Failure(f"unknown path: 404 body is not a JSON error object: {body[:100]!r}")
    check(isinstance(e, dict) and e.get("error") == "NOT_FOUND" and "message" in e,
          f"unknown path: 404 body {e}")
    req = urllib.request.Request(f"http://127.0.0.1:{ctx.port}/healthz", data=b"", method="POST")
    try:
        urllib.request.urlopen(req, timeout=RECV_TIMEOUT)
        raise Failure("POST /healthz was accepted")
    except urllib.error.HTTPError as err:
        body = err.read()
        check(err.code == 405, f"POST /healthz: status {err.code}, expected 405")
        try:
            e = json.loads(body)
        except ValueError:
            raise Failure(f"POST /healthz: 405 body is not JSON: {body[:100]!r}")
        check(e.get("error") == "METHOD_NOT_ALLOWED", f"POST /healthz: {e}")


# The idle node's timeout. Pings go every 0.3 s: on a loaded machine this test's own
# process may be descheduled for a while, so the timeout leaves room for several
# missed pings (a 1 s timeout closed the pinging connection under load).
IDLE_TIMEOUT_MS = 2500


def test_idle(ctx):
    """idle timeout"""
    port = ctx.idle_port  # this node runs with --tether.idle-timeout-ms=IDLE_TIMEOUT_MS
    quiet = Conn(ctx, port)
    hello(quiet, ctx.pid("idle"))
    chatty = Conn(ctx, port)
    hello(chatty, ctx.pid("idle-ping"))
    wsping = Conn(ctx, port)
    hello(wsping, ctx.pid("idle-wsping"))
    start = time.monotonic()
    wsping_lost = None
    while time.monotonic() - start < IDLE_TIMEOUT_MS / 1000 + 1.0:
        ping(chatty)
        if wsping_lost is None:
            try:
                wsping.ws.ping(b"k")
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as e:
                wsping_lost = f"after {time.monotonic() - start:.1f}s ({e!r})"
        time.sleep(0.3)
    ping(chatty)  # kept alive by ping messages
    if wsping_lost is None:
        # Still open? A ping message must be answered.
        wsping.ws.settimeout(RECV_TIMEOUT)
        deadline = time.monotonic() + RECV_TIMEOUT
        try:
            wsping.send({"ping": {"nonce": "9"}})
            while wsping_lost is None:
                check(time.monotonic() < deadline, "no pong on the WebSocket-ping connection")
                op, frame = wsping.ws.recv_data_frame(control_frame=True)
                if op == websocket.ABNF.OPCODE_CLOSE:
                    wsping_lost = "(close frame)"
                elif op == websocket.ABNF.OPCODE_TEXT:
                    check('"pong"' in frame.data.decode(), f"unexpected frame {frame.data!r}")
                    break
        except websocket.WebSocketTimeoutException:
            raise Failure("no pong on the WebSocket-ping connection")
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as e:
            wsping_lost = f"at the end ({e!r})"
    try:
        obj = quiet.recv_any(timeout=3)
        raise Failure(f"idle connection not closed; it received {obj}")
    except Closed as e:
        check(e.code == 1001, f"idle connection closed with close code {e.code}, expected 1001")
    except Failure as e:
        raise Failure(f"idle connection still open after {time.monotonic() - start:.1f}s ({e})")
    check(wsping_lost is None, "a connection kept busy only with WebSocket ping control frames "
                               f"(every 0.3 s, idle timeout {IDLE_TIMEOUT_MS} ms) was closed {wsping_lost}")
