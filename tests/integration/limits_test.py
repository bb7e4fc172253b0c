#!/usr/bin/env python3
"""Hostile input against a real tetherd: every request and connection stays bounded.

    /usr/bin/python3 -B -m pytest -c tests/pytest.ini -p no:cacheprovider \
        tests/integration/limits_test.py \
        --tetherd build/bin/tetherd --python-dir build/python [--budget 200]

Each case sends what once stalled or bloated a node (docs/operations.md, "Limits of
hostile input") and asserts the bound: another connection is answered within a
deadline while the hostile request is processed, the node's resident memory stays
below a bound, a client over a limit gets the documented error or close. The
deadlines are generous (CI machines are loaded); the figures measured are printed
(pytest shows them with -s, and for a case that fails). Every wait has a deadline and
a watchdog ends the run after --budget seconds (200). After each case its connections
are closed and every node must still run.
"""

import json
import os
import queue
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stream_test as st  # noqa: E402  (Node, Conn and the protocol helpers)
from stream_test import Failure, check  # noqa: E402

import websocket  # noqa: E402

STALL_BOUND = 1.0      # seconds another connection may wait while hostile input is processed
MIB = 1 << 20


# ---------------------------------------------------------------------------
# Helpers

def rss_mib(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise Failure("no VmRSS")


def cpu_seconds(node):
    with open(f"/proc/{node.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthz_time(port, timeout=10.0):
    """Seconds until GET /healthz on a new connection is answered 200."""
    t0 = time.monotonic()
    code, body = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                          timeout)
    check(code == 200, f"/healthz answered {code}: {body[:100]!r}")
    return time.monotonic() - t0


def raw_http(port, data, timeout=10.0):
    """Sends raw bytes, returns (status, whole response) or (None, b"") on a close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_response(s, timeout)


def read_response(s, timeout=10.0):
    s.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
        if b"\r\n\r\n" in out:
            head, _, rest = out.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if len(rest) >= length:
                break
    if not out:
        return None, b""
    try:
        return int(out.split(b" ", 2)[1]), out
    except (IndexError, ValueError):
        raise Failure(f"not an HTTP response: {out[:200]!r}")


def header(response, name):
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def ping_while(port, busy, what):
    """Pings on a second connection until `busy()` is false; returns the slowest
    round trip and fails if one exceeds STALL_BOUND."""
    c = websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream", timeout=10)
    worst = 0.0
    n = 0
    try:
        while busy() or n == 0:
            t0 = time.monotonic()
            c.send(json.dumps({"ping": {"nonce": str(n)}}))
            reply = json.loads(c.recv())
            check("pong" in reply, f"{what}: ping got {reply}")
            worst = max(worst, time.monotonic() - t0)
            n += 1
            check(worst <= STALL_BOUND,
                  f"{what}: a ping on another connection waited {worst:.2f}s")
            time.sleep(0.01)
    finally:
        c.close()
    return worst, n


def in_background(fn):
    """Runs fn in a thread; returns (thread, result dict) with 'value' or 'error'."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:  # reported by the caller
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def joined(t, result, timeout, what):
    t.join(timeout)
    check(not t.is_alive(), f"{what}: no answer within {timeout:.0f}s")
    if "error" in result:
        raise result["error"]
    return result["value"]


# -- snappy (block format) without a snappy module ----------------------------

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def snappy_literal(data):
    """Snappy block of literals only: valid, not compressed."""
    out = varint(len(data))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out += bytes([n << 2]) + chunk
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n) + chunk
    return out


def snappy_repeat(unit, count):
    """Snappy block of `unit` repeated `count` times, with 64-byte copies (about 21x
    smaller than the output)."""
    total = len(unit) * count
    out = varint(total) + bytes([(len(unit) - 1) << 2]) + unit
    left = total - len(unit)
    op = bytes([((64 - 1) << 2) | 2]) + struct.pack("<H", len(unit))
    out += op * (left // 64)
    rest = left % 64
    if rest:
        out += bytes([((rest - 1) << 2) | 2]) + struct.pack("<H", len(unit))
    return out


def pb_field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def remote_write_body(series):
    """WriteRequest with `series` = [(labels dict, [(value, ts)])]."""
    body = b""
    for labels, samples in series:
        ts = b""
        for k, v in sorted(labels.items()):
            ts += pb_field(1, pb_field(1, k.encode()) + pb_field(2, v.encode()))
        for value, t in samples:
            ts += pb_field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + varint(t))
        body += pb_field(1, ts)
    return snappy_literal(body)


def post(port, path, body, extra=b"", timeout=15.0):
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + extra + b"\r\n"
    return raw_http(port, head + body, timeout)


def error_message_bytes(frame):
    """The raw bytes of ServerFrame.error.message in a binary frame (field 3, then 2),
    read without a protobuf runtime that might refuse them."""
    def fields(buf):
        i = 0
        while i < len(buf):
            tag, shift = 0, 0
            while True:
                b = buf[i]
                i += 1
                tag |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            if tag & 7 == 2:
                n, shift = 0, 0
                while True:
                    b = buf[i]
                    i += 1
                    n |= (b & 0x7F) << shift
                    shift += 7
                    if b < 0x80:
                        break
                yield tag >> 3, buf[i:i + n]
                i += n
            elif tag & 7 == 0:
                while buf[i] >= 0x80:
                    i += 1
                i += 1
            else:
                raise Failure(f"unexpected wire type in {frame[:60]!r}")
    for num, payload in fields(frame):
        if num == 3:
            for num2, msg in fields(payload):
                if num2 == 2:
                    return msg
            return b""
    raise Failure(f"binary frame is not an error: {frame[:60]!r}")


# ---------------------------------------------------------------------------
# Context

class Ctx(st.Ctx):
    def __init__(self, args):
        super().__init__(args)
        self.notes = []

    def note(self, text):
        """A figure measured by a case: printed (pytest shows it with -s, and in the
        report of a case that fails)."""
        self.notes.append(text)
        print(text, flush=True)


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def fd_node(tetherd):
    """A node with few descriptors (RLIMIT_NOFILE 64): started like st.Node, with a
    lower limit."""
    fd = st.Node.__new__(st.Node)
    fd.label = "fd"
    fd.args = [tetherd, "--tether.host=127.0.0.1", "--tether.port=0"]
    fd.log = tempfile.TemporaryFile(prefix="tetherd-")
    fd.lines = queue.Queue()
    fd.port = None
    fd.proc = subprocess.Popen(fd.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=fd.log, preexec_fn=limit_fds)
    fd.reader = threading.Thread(target=fd._read, daemon=True)
    fd.reader.start()
    return fd


# ---------------------------------------------------------------------------
# The nodes, started once for the module's cases

@pytest.fixture(scope="module")
def ctx(tetherd, python_dir, request, watchdog):
    """Ctx with the nodes the cases use: `main` (defaults), `small` (8 connections,
    1 MiB bodies, 2 MiB of bodies, 1 MiB send queue), `subs` (3 subscriptions, 5
    subscribed keys, 100 series), `dedup` (16 producers per slice), `gw` (2048-byte
    headers, one client log line an hour), `short_read` (1 s HTTP read timeout) and
    `fd_node` (64 descriptors). Stopped at the end, or by the watchdog past --budget
    seconds (200)."""
    budget = request.config.getoption("budget") or 200.0
    ctx = Ctx(types.SimpleNamespace(tetherd=tetherd, python_dir=python_dir,
                                    budget=budget))
    ctx.load_pb(python_dir)

    def stop_nodes():
        for n in ctx.nodes:
            n.stop()
    ctx.watchdog = watchdog(budget, stop_nodes, "limits_test.py")
    try:
        for attr, label, extra in (
                ("main", "main", []),
                ("small", "small", [
                    "--tether.max-connections=8", "--tether.max-http-body-bytes=1048576",
                    "--tether.max-http-bodies-bytes=2097152",
                    "--tether.max-send-queue-bytes=1048576"]),
                ("subs", "subs", [
                    "--tether.max-subscriptions=3", "--tether.max-subscribed-keys=5",
                    "--tether.max-series=100"]),
                ("dedup", "dedup", ["--tether.max-producers-per-slice=16"]),
                ("gw", "gateway", [
                    "--tether.max-http-header-bytes=2048", "--tether.client-log-burst=1",
                    "--tether.client-log-period-ms=3600000"]),
                ("short_read", "short-read", ["--tether.http-read-timeout-ms=1000"])):
            node = st.Node(tetherd, label, extra)
            ctx.nodes.append(node)
            setattr(ctx, attr, node)
        ctx.fd_node = fd_node(tetherd)
        ctx.nodes.append(ctx.fd_node)
        deadline = time.monotonic() + st.START_TIMEOUT
        for n in ctx.nodes:
            n.wait_listening(deadline)
        ctx.port, ctx.small_port = ctx.main.port, ctx.small.port
        ctx.subs_port = ctx.subs.port
        ctx.dedup_port = ctx.dedup.port
        ctx.gw_port, ctx.short_read_port = ctx.gw.port, ctx.short_read.port
        yield ctx
    finally:
        ctx.close_conns()
        stop_nodes()


@pytest.fixture(autouse=True)
def each_case(ctx):
    """After each case: stream_test's `end_case`."""
    ctx.notes = []
    yield
    st.end_case(ctx)


# ---------------------------------------------------------------------------
# Cases, in this order

def hostile_label_frames(pb):
    """Item 1's frames: a binary write (sequence 1) of 60 000 reverse-sorted labels, and
    a key with 90 000 empty labels."""
    frame = pb.ClientFrame()
    frame.write.sequence = 1
    s = frame.write.samples.add()
    s.name = "hostile_labels"
    s.kind = pb.GAUGE
    s.value = 1
    for i in range(60000):
        s.labels.add().name = f"l{1000000 - i}"
    key = "m{" + ",".join(f'a{i:x}=""' for i in range(90000)) + "}"
    return frame.SerializeToString(), key


def send_label_frames(c, payload, key, writes):
    """Sends the write `writes` times, then a subscribe and a query of `key`; checks
    that each is refused."""
    for _ in range(writes):
        c.send_bytes(payload)
        st.check_error(c.recv("binary"), "TOO_MANY_LABELS", sequence=1, what="60 000 labels")
    c.send({"subscribe": {"requestId": "7", "keys": [key]}})
    st.check_error(c.recv(), "INVALID_KEY", request_id=7, what="subscribe of 90 000 labels")
    c.send({"query": {"requestId": "8", "key": key}})
    st.check_error(c.recv(), "INVALID_KEY", request_id=8, what="query of 90 000 labels")


def test_label_sort(ctx):
    """Item 1: a write with 60 000 reverse-sorted labels, a subscribe key and a query
    key with 90 000 empty labels: refused without stalling other connections."""
    pb = ctx.pb
    check(pb is not None, f"tether_pb2 needed: {ctx.pb_error}")
    c = st.Conn(ctx)
    st.hello(c, ctx.pid("labels"))
    payload, key = hostile_label_frames(pb)

    def hostile():
        t0 = time.monotonic()
        send_label_frames(c, payload, key, 4)
        return time.monotonic() - t0

    t, res = in_background(hostile)
    worst, pings = ping_while(ctx.port, t.is_alive, "labels")
    took = joined(t, res, 30, "labels")
    ctx.note(f"hostile label frames answered in {took:.3f}s; slowest of {pings} pings "
             f"meanwhile {worst * 1000:.1f} ms")


def test_large_frame_order(ctx):
    """Item 1: a frame large enough to be decoded off the I/O thread is still handled
    in order (docs/protocol.md section 7): a gauge set last by a large write and then
    by a small one sent right after it ends at the small one's value."""
    c = st.Conn(ctx)
    st.hello(c, ctx.pid("order"))
    name = ctx.name("order")
    big = [st.gauge(name, i, [("i", str(i))]) for i in range(2000)]  # about 130 KB of JSON
    big.append(st.gauge(name, 1, [("i", "x")]))
    c.send({"write": {"sequence": "1", "samples": big}})
    c.send({"write": {"sequence": "2", "samples": [st.gauge(name, 2, [("i", "x")])]}})
    acked = set()
    for _ in range(2):
        r = c.recv()
        check("ack" in r, f"expected an ack, got {json.dumps(r)[:300]}")
        acked.add(str(r["ack"].get("sequence")))
    check(acked == {"1", "2"}, f"acks for {sorted(acked)}")
    found, series = st.state(c, st.canonical(name, [("i", "x")]))
    check(found and series.get("last") == 2,
          f"the small write was applied before the large one: {series}")


def test_utf8_messages(ctx):
    """Item 6: error messages are valid UTF-8 even where the offending text is cut or
    is not UTF-8 itself."""
    pb = ctx.pb
    check(pb is not None, f"tether_pb2 needed: {ctx.pb_error}")
    c = st.Conn(ctx)
    st.hello(c, ctx.pid("utf8"))
    frame = pb.ClientFrame()
    frame.write.sequence = 1
    s = frame.write.samples.add()
    s.name = "x" * 63 + "\u00e9\u00e9"  # a two-byte character across the 64-byte cut
    s.kind = pb.GAUGE
    s.value = 1
    bad_key = pb.ClientFrame()
    bad_key.query.request_id = 9
    bad_key.query.key = 'm{a="\\\u00e9"}'  # unknown escape: the first byte of é
    for f in (frame, bad_key):
        c.send_pb(f)
        c.ws.settimeout(10)
        op, data = c.ws.recv_data_frame(control_frame=False)
        check(op == websocket.ABNF.OPCODE_BINARY, f"reply opcode {op}")
        msg = error_message_bytes(bytes(data.data))
        try:
            text = msg.decode("utf-8")
        except UnicodeDecodeError:
            raise Failure(f"error message is not UTF-8: {msg!r}")
        check(text, "empty error message")


def test_protobuf_log(ctx):
    """Item 6: frames the protobuf runtime complains about (a string field that is not
    UTF-8) do not write a log line each."""
    node = ctx.main
    before = stderr_size(node)
    c = st.Conn(ctx)
    bad = b"\x0a\x03\x0a\x01\xff"  # ClientFrame{hello{producer_id: "\xff"}}
    frames = 2000
    for _ in range(frames):
        c.send_bytes(bad)
    for _ in range(frames):
        st.check_error(c.recv("binary"), "MALFORMED_FRAME", what="invalid UTF-8 string")
    grown = stderr_size(node) - before
    ctx.note(f"{frames} invalid frames wrote {grown} bytes of log")
    check(grown < 4096, f"{frames} invalid frames wrote {grown} bytes to the node's log")


def stderr_size(node):
    node.log.flush()
    return os.fstat(node.log.fileno()).st_size


def stderr_text(node):
    """The node's log so far, read without moving the offset the node writes at."""
    fd = node.log.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")


def test_client_log_burst(ctx):
    """The client log limit is client-log-burst lines per client-log-period-ms (1 per
    hour on this node): 20 frames libprotobuf complains about write one line, where
    the default (5 per 10 s) writes five."""
    c = st.Conn(ctx, ctx.gw_port)
    bad = b"\x0a\x03\x0a\x01\xff"  # ClientFrame{hello{producer_id: "\xff"}}
    for _ in range(20):
        c.send_bytes(bad)
    for _ in range(20):  # each is parsed, and logged or not, before its answer
        st.check_error(c.recv("binary"), "MALFORMED_FRAME", what="invalid UTF-8 string")
    log = stderr_text(ctx.gw).splitlines()
    lines = [line for line in log if line.startswith("libprotobuf ")]
    check(len(lines) == 1, f"20 invalid frames wrote {len(lines)} libprotobuf lines at "
                           f"client-log-burst 1: {lines[:6]}")
    check(not any("libprotobuf messages suppressed" in line for line in log),
          "a count of suppressed lines was written within the period")


def test_text_utf8(ctx):
    """Item 9: a text frame that is not UTF-8 is closed with 1007 (docs/protocol.md 2)."""
    c = st.Conn(ctx)
    c.ws.send(b"{\"ping\":{\"nonce\":\"\xff\"}}", opcode=websocket.ABNF.OPCODE_TEXT)
    try:
        obj = c.recv_any(10)
        raise Failure(f"got {obj} instead of a close")
    except st.Closed as e:
        check(e.code == 1007, f"closed with {e.code}, expected 1007")


def test_http_errors(ctx):
    """Items 8 and 9: 405 with Allow, 400/413/431 instead of a silent close."""
    port = ctx.port
    code, resp = raw_http(port, b"GET /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(code == 405 and header(resp, "Allow") == "POST", f"GET /api/v1/write: {resp[:300]!r}")
    code, resp = post(port, "/healthz", b"")
    check(code == 405 and header(resp, "Allow") == "GET, HEAD", f"POST /healthz: {resp[:300]!r}")
    code, resp = raw_http(port, b"NOT HTTP AT ALL\r\n\r\n")
    check(code == 400, f"garbage request: {code} {resp[:200]!r}")
    code, resp = raw_http(port, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    check(code == 431, f"20 kB header: {code} {resp[:200]!r}")
    code, resp = raw_http(port, b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 104857600\r\n\r\n")
    check(code == 413, f"100 MiB body announced: {code} {resp[:200]!r}")
    body = json.loads(resp.partition(b"\r\n\r\n")[2])
    check(body.get("error") == "BODY_TOO_LARGE", f"413 body {body}")


def test_header_bytes(ctx):
    """The header bound is max-http-header-bytes (2048 on this node): a larger header
    is answered 431 HEADER_TOO_LARGE naming the bound, a smaller one is served, and a
    node with the default (8192) serves the larger one."""
    def get(port, pad):
        return raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              b"X-Pad: " + b"a" * pad + b"\r\n\r\n")

    code, resp = get(ctx.gw_port, 3000)
    check(code == 431, f"3000-byte header at max-http-header-bytes 2048: {code} {resp[:200]!r}")
    body = json.loads(resp.partition(b"\r\n\r\n")[2])
    check(body.get("error") == "HEADER_TOO_LARGE" and "2048" in body.get("message", ""),
          f"431 body {body}")
    code, resp = get(ctx.gw_port, 1500)
    check(code == 200, f"1500-byte header at max-http-header-bytes 2048: {code} {resp[:200]!r}")
    code, resp = get(ctx.port, 3000)
    check(code == 200, f"3000-byte header at the default bound: {code} {resp[:200]!r}")


def closed_by_node(s, deadline):
    """Reads `s` until the node closes it; returns what the node sent. Fails when the
    connection is still open at `deadline` (time.monotonic())."""
    out = b""
    while True:
        left = deadline - time.monotonic()
        check(left > 0, f"the connection is still open at the deadline (got {out[:100]!r})")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        except socket.timeout:
            continue
        if not chunk:
            return out
        out += chunk


def test_http_read_timeout(ctx):
    """A client that sends half a request is closed without an answer once
    http-read-timeout-ms (1 s on this node) has passed: half a header, and a whole
    header with a tenth of its body. The deadline is generous (a busy machine) and
    below the default timeout of 30 s."""
    halves = [b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
              b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
              + b"\0" * 100]
    socks = []
    t0 = time.monotonic()
    try:
        for data in halves:
            s = socket.create_connection(("127.0.0.1", ctx.short_read_port), timeout=10)
            s.sendall(data)
            socks.append(s)
        for s, what in zip(socks, ["half a header", "half a body"]):
            got = closed_by_node(s, t0 + 20)
            check(got == b"", f"{what}: answered {got[:200]!r} instead of closed")
        ctx.note(f"both closed {time.monotonic() - t0:.2f}s after they were sent")
    finally:
        for s in socks:
            s.close()


def test_remote_write_status(ctx):
    """Item 8: remote write answers 4xx for what a retry cannot fix."""
    c = st.Conn(ctx)
    st.hello(c, ctx.pid("rw-status"))
    name = ctx.name("conflict") + "_total"
    st.ack(c, 1, [st.gauge(name, 1)])
    body = remote_write_body([({"__name__": name}, [(5.0, st.now_ms())])])
    code, resp = post(ctx.port, "/api/v1/write", body)
    check(code == 400, f"remote write of a kind conflict: {code}, expected 400: {resp[:300]!r}")
    check(b"KIND_CONFLICT" in resp, f"remote write of a kind conflict: {resp[:300]!r}")


def test_remote_write_amplification(ctx):
    """Item 2: 1.5 MB of snappy that decompresses to 16 Mi empty series is refused
    before it is parsed; the node stays small and /healthz stays fast."""
    node = ctx.main
    body = snappy_repeat(b"\x0a\x00", 16 * MIB)
    rss0 = rss_mib(node)

    def hostile():
        t0 = time.monotonic()
        code, resp = post(ctx.port, "/api/v1/write", body, timeout=60)
        return code, resp, time.monotonic() - t0

    t, res = in_background(hostile)
    worst = 0.0
    while t.is_alive():
        worst = max(worst, healthz_time(ctx.port))
        check(worst <= STALL_BOUND, f"/healthz took {worst:.2f}s during the hostile upload")
    code, resp, took = joined(t, res, 60, "amplified remote write")
    check(code == 400 and b"TOO_MANY_SAMPLES" in resp, f"amplified body: {code} {resp[:300]!r}")
    grown = rss_mib(node) - rss0
    ctx.note(f"{len(body)} byte body refused in {took:.3f}s; /healthz at worst "
             f"{worst * 1000:.1f} ms; RSS {rss0:.0f} MiB -> +{grown:.0f} MiB")
    check(grown < 200, f"the node grew by {grown:.0f} MiB and kept it")


def test_body_budget(ctx):
    """Item 2: stalled uploads cannot pin more than max-http-bodies-bytes; beyond it
    the node answers 503 with Retry-After at once."""
    port = ctx.small_port  # max-http-bodies-bytes = 2 MiB, max-http-body-bytes = 1 MiB
    socks = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"
                      + b"\0" * 1000)
            socks.append(s)
        deadline = time.monotonic() + 10
        while True:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
            code, resp = read_response(s, 10)
            s.close()
            if code == 503:
                break
            # The stalled uploads' headers may not have been read yet.
            check(time.monotonic() < deadline, f"third upload: {code} {resp[:200]!r}")
        check(header(resp, "Retry-After") == "1", f"503 without Retry-After: {resp[:300]!r}")
    finally:
        for s in socks:
            s.close()


def test_connection_cap(ctx):
    """Item 2: beyond max-connections a new connection is closed at once; once
    clients leave, new ones are served again."""
    port = ctx.small_port  # max-connections = 8
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
    try:
        # Make sure the node has accepted all 8.
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            code, _ = read_response(s, 10)
            check(code == 200, "a connection within the cap was not served")
        code, _ = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 10)
        check(code is None, f"the 9th connection was served ({code})")
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while True:
        code, _ = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10)
        if code == 200:
            return
        check(time.monotonic() < deadline, "no connection served after the others closed")
        time.sleep(0.05)


def test_send_queue_bytes(ctx):
    """Item 3: a subscriber that does not read is closed once max-send-queue-bytes of
    frames wait for it (1 MiB here), long before 1 088 frames."""
    port = ctx.small_port
    node = ctx.small
    w = st.Conn(ctx, port)
    st.hello(w, ctx.pid("queue-writer"))
    pad = "p" * 900
    keys = []
    seq = 0
    for batch in range(4):
        samples = []
        for i in range(100):
            n = batch * 100 + i
            samples.append(st.gauge("queue_fill", n, [("i", str(n)), ("pad", pad)]))
            keys.append(st.canonical("queue_fill", [("i", str(n)), ("pad", pad)]))
        seq += 1
        st.ack(w, seq, samples)
    rss0 = rss_mib(node)
    c = websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream", timeout=10,
                                    sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    c.send(json.dumps({"hello": {"producerId": ctx.pid("queue-reader")}}))
    sent = 0
    closed = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and sent < 40:
            c.send(json.dumps({"subscribe": {"requestId": str(sent + 1), "keys": keys}}))
            sent += 1
    except (OSError, websocket.WebSocketException):
        closed = True
    # Now read: what arrives must end in a close (1008) or a cut connection.
    c.settimeout(10)
    code = None
    try:
        while True:
            op, frame = c.recv_data_frame(control_frame=False)
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", frame.data[:2])[0]
                break
    except (OSError, websocket.WebSocketException):
        closed = True
    check(code == 1008 or closed,
          f"a client that did not read {sent} replies of ~400 kB was never closed")
    grown = rss_mib(node) - rss0
    ctx.note(f"non-reading subscriber closed ({code or 'cut'}) after {sent} subscribes; "
             f"RSS +{grown:.0f} MiB")
    check(grown < 64, f"the node grew by {grown:.0f} MiB for one client")
    c.close()


def test_subscription_limits(ctx):
    """Item 9: subscriptions and subscribed keys per connection are bounded
    (max-subscriptions 3, max-subscribed-keys 5 on this node); a subscribe beyond
    either is refused with SUBSCRIPTION_LIMIT, subscribes nothing, and the
    connection stays usable."""
    port = ctx.subs_port
    c = st.Conn(ctx, port)
    st.hello(c, ctx.pid("subs"))
    c.subscribed = True
    key = lambda k: st.canonical("subs_limit", [("k", k)])

    def subscribe(rid, keys):
        c.send({"subscribe": {"requestId": str(rid), "keys": [key(k) for k in keys]}})
        return c.recv(updates=True)

    check("windowUpdate" in subscribe(1, ["a", "b"]), "first subscribe refused")
    check("windowUpdate" in subscribe(2, ["b", "c", "d", "d"]), "second subscribe refused")
    r = subscribe(3, ["e", "f"])  # 6 distinct keys > 5
    st.check_error(r, "SUBSCRIPTION_LIMIT", request_id=3, what="a sixth key")
    check("max-subscribed-keys" in r["error"].get("message", ""),
          f"the message names the limit: {r}")
    check("windowUpdate" in subscribe(3, ["e"]), "the fifth key refused after the refusal")
    r = subscribe(4, ["a"])  # a fourth subscription
    st.check_error(r, "SUBSCRIPTION_LIMIT", request_id=4, what="a fourth subscription")
    check("windowUpdate" in subscribe(2, ["a"]), "a known request id with known keys refused")
    st.usable(c)
    ctx.note("3 subscriptions and 5 keys held; the 4th subscription and the 6th key refused")


def test_dedup_bounded(ctx):
    """Item 4: producers' dedup entries are bounded per slice
    (max-producers-per-slice 16 on this node): 300 producers that each write once to
    1024 keys over most slices leave the node's memory close to where 16 would,
    where every one of them used to keep about 0.3 MB for good."""
    port = ctx.dedup_port
    node = ctx.dedup
    samples = [st.counter("dedup_bound", 1, [("k", str(i))]) for i in range(1024)]
    first = st.Conn(ctx, port)
    st.hello(first, ctx.pid("dedup-0"))
    st.ack(first, 1, samples)  # the series exist before the baseline
    first.close()
    rss0 = rss_mib(node)
    for p in range(1, 301):
        c = st.Conn(ctx, port)
        st.hello(c, ctx.pid(f"dedup-{p}"))
        st.ack(c, 1, samples)
        c.close()
        ctx.conns.remove(c)
    grown = rss_mib(node) - rss0
    reader = st.Conn(ctx, port)
    st.hello(reader, ctx.pid("dedup-reader"))
    st.check_total(reader, st.canonical("dedup_bound", [("k", "7")]), 301,
                   "every write applied once: ")
    check(grown < 15, f"300 producers grew the node by {grown:.0f} MiB (bound: 15; unbounded entries take about 35)")
    ctx.note(f"300 producers x 1024 keys: RSS +{grown:.0f} MiB")


def node_series(ctx, port):
    """The node's tether_series gauge from /metrics."""
    code, body, _ = st.http_get(ctx, "/metrics", port=port)
    check(code == 200, f"/metrics answered {code}")
    for line in body.decode().splitlines():
        if line.startswith("tether_series"):
            return float(line.split()[-1])
    raise Failure("/metrics has no tether_series")


def test_series_cap(ctx):
    """Series per node are bounded (max-series 100 on this node): writes that would
    create more output series are refused with INPUT_LIMIT, the node never holds
    more than the bound, and series it holds keep taking samples."""
    port = ctx.subs_port
    c = st.Conn(ctx, port)
    st.hello(c, ctx.pid("series-cap"))
    first = [st.counter("series_cap", 1, [("k", str(i))]) for i in range(80)]
    st.ack(c, 1, first)
    refused = 0
    for seq in range(2, 7):  # 5 x 20 new series: past the bound of 100
        batch = [st.counter("series_cap", 1, [("k", f"{seq}-{i}")]) for i in range(20)]
        r = st.write(c, seq, batch)
        if "error" in r:
            st.check_error(r, "INPUT_LIMIT", sequence=seq, what="a write past max-series")
            check("max-series" in r["error"].get("message", ""),
                  f"the message names the limit: {r}")
            refused += 1
    held = node_series(ctx, port)
    check(refused >= 3, f"only {refused} of 5 writes past the bound were refused")
    check(held <= 100, f"the node holds {held:.0f} output series (bound: 100)")
    st.ack(c, 7, first)  # existing series still take samples
    st.check_total(c, st.canonical("series_cap", [("k", "5")]), 2, "an existing series: ")
    ctx.note(f"{held:.0f} series held at max-series 100; {refused} of 5 writes refused")


def test_remote_write_input_limit(ctx):
    """Item 8: a remote write refused for a limit (INPUT_LIMIT: past max-series on
    this node, filled first) is answered 400, not 503: Prometheus would resend a
    5xx forever."""
    port = ctx.subs_port
    c = st.Conn(ctx, port)  # fill the node to its bound (test_series_cap may not have run)
    st.hello(c, ctx.pid("rw-cap-fill"))
    for seq in range(1, 7):
        st.write(c, seq, [st.counter("rw_cap_fill", 1, [("k", f"{seq}-{i}")])
                          for i in range(20)])
    check(node_series(ctx, port) == 100, "the node is not full")
    base = st.now_ms()
    series = [({"__name__": "rw_cap_total", "k": str(i)}, [(1.0, base)]) for i in range(20)]
    code, resp = post(port, "/api/v1/write", remote_write_body(series))
    check(code == 400, f"remote write past max-series: {code}, expected 400: {resp[:300]!r}")
    check(b"INPUT_LIMIT" in resp, f"remote write past max-series: {resp[:300]!r}")
    ctx.note(f"remote write past max-series: {code} {resp[:80]!r}")


def test_emfile(ctx):
    """Item 7: out of descriptors the accept loop backs off instead of spinning, and
    the node serves again once descriptors come back."""
    node = ctx.fd_node  # RLIMIT_NOFILE = 64
    socks = []
    try:
        for _ in range(120):
            try:
                socks.append(socket.create_connection(("127.0.0.1", node.port), timeout=2))
            except OSError:
                break
        time.sleep(0.5)  # let the node reach EMFILE
        cpu0, t0 = cpu_seconds(node), time.monotonic()
        time.sleep(2.0)
        used = (cpu_seconds(node) - cpu0) / (time.monotonic() - t0)
        ctx.note(f"out of descriptors: {used * 100:.0f}% CPU")
        check(used < 0.5, f"out of descriptors the node used {used * 100:.0f}% CPU")
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    t0 = time.monotonic()
    while True:
        try:
            healthz_time(node.port, 2)
            break
        except (Failure, OSError):
            check(time.monotonic() < deadline, "/healthz not answered 10 s after descriptors came back")
    ctx.note(f"/healthz answered {time.monotonic() - t0:.2f}s after descriptors came back")
