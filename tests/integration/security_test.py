#!/usr/bin/env python3
"""Credentials on every endpoint and producer ids bound to them, against real tetherd
processes (docs/security.md, docs/protocol.md).

    /usr/bin/python3 -m pytest -p no:cacheprovider tests/integration/security_test.py \
        --tetherd build/bin/tetherd --python-dir build/python [--budget 150]

Starts a node with a tokens file (admin, write with two producer prefixes, read), one
with only the single `tether.auth-token`, and one with no credentials at all. Each case
asserts what an attacker on loopback tried before the feature existed: admin endpoints
and remote write without a token, a read token writing, a producer-id hijack from
another credential, `remote-write@...` ids from a client, the 2^64-1 sequence. Every
wait has a deadline; a watchdog ends the run after --budget seconds (150). After each
case its connections are closed and every node must still run.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import types

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stream_test as st  # noqa: E402  (Node, Conn and the protocol helpers)
import limits_test as lt  # noqa: E402  (raw HTTP and remote-write helpers)

ADMIN = "admin-token-0123456789abcdef"
WRITE_A = "write-token-a-0123456789abcdef"
WRITE_B = "write-token-b-0123456789abcdef"
READ = "read-token-0123456789abcdef"
LOAD = "load-write-token-0123456789abcdef"
LEGACY = "legacy-single-token"
TOKENS = f"""# token role producer-prefix
{ADMIN}   admin  *
{WRITE_A} write  team-a/
{WRITE_B} write  team-b/
{READ}    read
{LOAD}    write  load-
"""

GETS = ["/metrics", "/v1/nodes", "/v1/directory", "/v1/where?key=x", "/v1/series?key=x",
        "/no-such-endpoint"]
ADMIN_POSTS = ["/v1/admin/move?slice=0&node=tether-0", "/v1/admin/drain?node=nobody",
               "/v1/admin/rebalance", "/v1/admin/reload-rules"]


def request(port, method, path, token=None, body=b"", timeout=10.0):
    auth = f"Authorization: Bearer {token}\r\n".encode() if token is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + auth + b"\r\n"
    return lt.raw_http(port, head + body, timeout)


def error_of(resp):
    try:
        return json.loads(resp.partition(b"\r\n\r\n")[2]).get("error")
    except ValueError:
        return None


def expect_status(port, method, path, token, want, what):
    code, resp = request(port, method, path, token)
    assert code == want, (f"{what}: {method} {path} answered {code}, expected {want}: "
                          f"{resp[:300]!r}")
    return resp


def hello_as(ctx, port, pid, token):
    c = st.Conn(ctx, port)
    body = {"producerId": pid}
    if token is not None:
        body["token"] = token
    c.send({"hello": body})
    return c, c.recv()


def welcomed(ctx, port, pid, token):
    c, r = hello_as(ctx, port, pid, token)
    assert "welcome" in r, f"hello as {pid!r}: expected welcome, got {r}"
    return c


# ---------------------------------------------------------------------------
# The nodes, started once for the module's cases

@pytest.fixture(scope="module")
def ctx(tetherd, python_dir, request, watchdog):
    """stream_test's Ctx with three nodes: `main` with the tokens file (TOKENS),
    `legacy` with only the single tether.auth-token, `open` with no credentials.
    Stopped at the end, or by the watchdog past --budget seconds (150)."""
    budget = request.config.getoption("budget") or 150.0
    ctx = st.Ctx(types.SimpleNamespace(tetherd=tetherd, python_dir=python_dir,
                                       budget=budget))
    ctx.load_pb(python_dir)
    tmp = tempfile.mkdtemp(prefix="tether-security-")
    ctx.tokens_path = os.path.join(tmp, "tokens")
    with open(ctx.tokens_path, "w") as f:
        f.write(TOKENS)
    rules_path = os.path.join(tmp, "rules.json")
    with open(rules_path, "w") as f:
        f.write('{"rules": []}\n')
    rules = f"--tether.rules-file={rules_path}"

    def stop_nodes():
        for n in ctx.nodes:
            n.stop()
    ctx.watchdog = watchdog(budget, stop_nodes, "security_test.py")
    try:
        ctx.main = st.Node(tetherd, "tokens", [f"--tether.tokens-file={ctx.tokens_path}",
                                               rules])
        ctx.nodes.append(ctx.main)
        ctx.legacy = st.Node(tetherd, "legacy", [f"--tether.auth-token={LEGACY}", rules])
        ctx.nodes.append(ctx.legacy)
        ctx.open = st.Node(tetherd, "open", [])
        ctx.nodes.append(ctx.open)
        deadline = time.monotonic() + st.START_TIMEOUT
        for n in ctx.nodes:
            n.wait_listening(deadline)
        ctx.port = ctx.main.port
        yield ctx
    finally:
        ctx.close_conns()
        stop_nodes()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


@pytest.fixture(autouse=True)
def each_case(ctx):
    """After each case: stream_test's `end_case`."""
    yield
    st.end_case(ctx)


# ---------------------------------------------------------------------------
# Cases, in this order (test_reload rewrites the tokens file and restores it)

def test_dashboard(ctx):
    """The dashboard's files hold no cluster data and load without a token; its event
    stream needs read, as a Bearer header or (browsers cannot set headers on an
    EventSource) an access_token parameter that no other endpoint accepts."""
    port = ctx.port
    for path in ("/ui/", "/ui/app.js", "/ui/style.css"):
        expect_status(port, "GET", path, None, 200, "dashboard file without a token")
    stream = "/v1/dashboard/stream"
    for target, token in ((stream, None), (stream + "?access_token=wrong-token-0123", None),
                          (stream + "?access_token=", None), (stream, "wrong-token-0123")):
        resp = expect_status(port, "GET", target, token, 401, "stream without credentials")
        assert error_of(resp) == "UNAUTHENTICATED", f"GET {target}: {resp[:300]!r}"
    for target, token in ((stream, READ), (stream + "?access_token=" + READ, None),
                          (stream + "?x=1&access_token=" + ADMIN.replace("-", "%2D"), None)):
        resp = expect_status(port, "GET", target, token, 200, "stream with a read token")
        assert b"text/event-stream" in resp.partition(b"\r\n\r\n")[0], \
            f"GET {target}: not an event stream: {resp[:300]!r}"
    resp = expect_status(port, "GET", "/metrics?access_token=" + READ, None, 401,
                         "access_token outside the dashboard stream")


def test_http_roles(ctx):
    """Every endpoint but health and readiness: 401 without or with a bad token,
    403 with a token of too low a role, served with the right one."""
    port = ctx.port
    for path in ("/healthz", "/readyz"):
        code, resp = request(port, "GET", path)
        assert code in (200, 503), f"{path} without a token: {code} {resp[:200]!r}"
    for path in GETS:
        for token in (None, "wrong-token-0123456789", ADMIN[:-1]):
            resp = expect_status(port, "GET", path, token, 401, "no or bad token")
            assert error_of(resp) == "UNAUTHENTICATED", f"GET {path}: {resp[:300]!r}"
            assert (lt.header(resp, "WWW-Authenticate") or "").startswith("Bearer"), \
                f"GET {path}: 401 without a Bearer challenge: {resp[:300]!r}"
        want = 404 if path == "/no-such-endpoint" else 200
        for token in (READ, WRITE_A, ADMIN):
            expect_status(port, "GET", path, token, want, "read role")
    # Scheme is case-insensitive, the token is not.
    code, _ = lt.raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                b"Authorization: bearer " + READ.encode() + b"\r\n\r\n")
    assert code == 200, f"lower-case scheme: {code}"
    expect_status(port, "GET", "/metrics", READ.upper(), 401, "token case")
    for path in ADMIN_POSTS:
        expect_status(port, "POST", path, None, 401, "admin without token")
        for token in (READ, WRITE_A):
            resp = expect_status(port, "POST", path, token, 403, "admin with a lower role")
            assert error_of(resp) == "PERMISSION_DENIED", f"POST {path}: {resp[:300]!r}"
    # With the admin token the request reaches the endpoint (a standalone node may
    # still refuse the operation itself, but not for want of credentials).
    for path in ADMIN_POSTS:
        code, resp = request(port, "POST", path, ADMIN)
        assert code not in (401, 403), f"POST {path} as admin: {code} {resp[:300]!r}"
    code, resp = request(port, "POST", "/v1/admin/reload-rules", ADMIN)
    assert code == 200, f"reload-rules as admin: {code} {resp[:300]!r}"


def test_remote_write_bearer(ctx):
    """Remote write needs a write token: 401 without, 403 with read, 204 with write;
    nothing is applied by a refused request."""
    name = ctx.name("rw_bearer")
    body = lt.remote_write_body([({"__name__": name}, [(5.0, st.now_ms())])])
    resp = expect_status(ctx.port, "POST", "/api/v1/write", None, 401, "remote write")
    assert error_of(resp) == "UNAUTHENTICATED", f"{resp[:300]!r}"
    code, resp = request(ctx.port, "POST", "/api/v1/write", READ, body)
    assert code == 403, f"remote write with a read token: {code} {resp[:300]!r}"
    c = welcomed(ctx, ctx.port, "team-a/reader", READ)
    st.check_absent(c, name)
    code, resp = request(ctx.port, "POST", "/api/v1/write", WRITE_B, body)
    assert code == 204, f"remote write with a write token: {code} {resp[:300]!r}"
    found, series = st.state(c, name)
    assert found and st.close_enough(series.get("last"), 5.0), \
        f"{name} after remote write: {series}"


def test_ws_roles(ctx):
    """hello needs a valid token; a read token reads but cannot write."""
    for token in (None, "wrong-token-0123456789"):
        c, r = hello_as(ctx, ctx.port, "team-a/x", token)
        st.check_error(r, "UNAUTHENTICATED", what=f"hello with {token!r}")
    writer = welcomed(ctx, ctx.port, "team-a/" + ctx.pid("w"), WRITE_A)
    name = ctx.name("ws_roles") + "_total"
    st.ack(writer, 1, [st.counter(name, 2)])
    reader = welcomed(ctx, ctx.port, ctx.pid("anything"), READ)
    r = st.write(reader, 1, [st.counter(name, 100)])
    st.check_error(r, "PERMISSION_DENIED", sequence=1, what="read token writing")
    st.usable(reader)
    st.check_total(reader, name, 2.0, "after a refused write: ")


def test_producer_prefix(ctx):
    """A write token may only use its prefix; nobody may use remote-write@ ids; a
    hijack of another credential's producer changes nothing for the victim."""
    victim_id = "team-a/" + ctx.pid("victim")
    name = ctx.name("hijack") + "_total"
    victim = welcomed(ctx, ctx.port, victim_id, WRITE_A)
    st.ack(victim, 1, [st.counter(name, 1)])
    c, r = hello_as(ctx, ctx.port, victim_id, WRITE_B)
    st.check_error(r, "PERMISSION_DENIED", what="write token B as a team-a producer")
    for token in (WRITE_A, ADMIN):
        c, r = hello_as(ctx, ctx.port, "remote-write@tether-0", token)
        st.check_error(r, "PERMISSION_DENIED", what="a client as remote-write@")
    # The victim's next write is applied, not swallowed as a duplicate.
    st.ack(victim, 2, [st.counter(name, 1)])
    st.check_total(victim, name, 2.0)
    # An admin token may use any producer id.
    welcomed(ctx, ctx.port, ctx.pid("ops"), ADMIN)


def test_sequence_jump(ctx):
    """2^64-1 is refused with SEQUENCE_JUMP and leaves the producer usable."""
    pid = "team-a/" + ctx.pid("jump")
    name = ctx.name("jump") + "_total"
    c = welcomed(ctx, ctx.port, pid, WRITE_A)
    st.ack(c, 1, [st.counter(name, 1)])
    r = st.write(c, 2**64 - 1, [st.counter(name, 1000)])
    st.check_error(r, "SEQUENCE_JUMP", sequence=2**64 - 1, what="sequence 2^64-1")
    st.ack(c, 2, [st.counter(name, 1)])
    st.check_total(c, name, 2.0)
    # A producer the node has not seen cannot start there either.
    fresh = welcomed(ctx, ctx.port, "team-a/" + ctx.pid("fresh"), WRITE_A)
    r = st.write(fresh, 2**64 - 1, [st.counter(name, 1000)])
    st.check_error(r, "SEQUENCE_JUMP", what="first sequence 2^64-1")
    st.check_total(c, name, 2.0)


def test_reload(ctx):
    """SIGHUP re-reads the tokens file: a new token works, a removed one is refused."""
    new = "rotated-read-token-0123456789"
    with open(ctx.tokens_path, "w") as f:
        f.write(TOKENS.replace(READ, new))
    ctx.main.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while True:
        code, _ = request(ctx.port, "GET", "/metrics", new)
        if code == 200:
            break
        assert time.monotonic() < deadline, \
            f"the new token is not accepted after SIGHUP ({code})"
        time.sleep(0.05)
    expect_status(ctx.port, "GET", "/metrics", READ, 401, "revoked token")
    c, r = hello_as(ctx, ctx.port, ctx.pid("old"), READ)
    st.check_error(r, "UNAUTHENTICATED", what="hello with a revoked token")
    # A broken file keeps the tokens in force.
    with open(ctx.tokens_path, "w") as f:
        f.write("short admin *\n")
    ctx.main.proc.send_signal(signal.SIGHUP)
    expect_status(ctx.port, "GET", "/metrics", new, 200, "after a refused reload")
    with open(ctx.tokens_path, "w") as f:
        f.write(TOKENS)
    ctx.main.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while request(ctx.port, "GET", "/metrics", READ)[0] != 200:
        assert time.monotonic() < deadline, "the restored token is not accepted"
        time.sleep(0.05)


def test_legacy_token(ctx):
    """The single tether.auth-token is an admin token on every endpoint."""
    port = ctx.legacy.port
    expect_status(port, "GET", "/metrics", None, 401, "legacy node")
    expect_status(port, "GET", "/metrics", LEGACY, 200, "legacy token")
    expect_status(port, "POST", "/v1/admin/reload-rules", None, 401, "legacy node admin")
    expect_status(port, "POST", "/v1/admin/reload-rules", LEGACY, 200, "legacy token admin")
    c = welcomed(ctx, port, ctx.pid("legacy"), LEGACY)
    st.ack(c, 1, [st.counter(ctx.name("legacy") + "_total", 1)])


def test_open_node(ctx):
    """Without credentials configured everything is open as before, but a client
    still may not write as the node's remote-write producer."""
    port = ctx.open.port
    expect_status(port, "GET", "/metrics", None, 200, "open node")
    c, r = hello_as(ctx, port, "remote-write@tether-0", None)
    st.check_error(r, "PERMISSION_DENIED", what="remote-write@ on an open node")
    body = lt.remote_write_body([({"__name__": ctx.name("open") + "_total"},
                                  [(1.0, st.now_ms())])])
    code, resp = request(port, "POST", "/api/v1/write", None, body)
    assert code == 204, f"open remote write: {code} {resp[:300]!r}"


def test_bad_tokens_file(ctx):
    """A tokens file that does not parse stops the node from starting (exit 2)."""
    with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
        f.write("tooshort write team-a/\n")
        path = f.name
    try:
        r = subprocess.run([ctx.args.tetherd, "--tether.port=0",
                            f"--tether.tokens-file={path}"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, f"bad tokens file: exit {r.returncode} {r.stderr[-300:]}"
        assert "line 1" in r.stderr, f"the error names no line: {r.stderr[-300:]}"
    finally:
        os.unlink(path)


def test_tools(ctx):
    """tetherctl sends its token as Bearer; tether-load's hello carries its token;
    both read it from --token-file, and the roles hold for them too."""
    bindir = os.path.dirname(os.path.abspath(ctx.args.tetherd))
    ctl, load = os.path.join(bindir, "tetherctl"), os.path.join(bindir, "tether-load")
    server = f"127.0.0.1:{ctx.port}"

    def run(cmd):
        env = {k: v for k, v in os.environ.items() if k != "TETHER_TOKEN"}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env)

    r = run([ctl, "--server", server, "nodes"])
    assert r.returncode == 1 and "UNAUTHENTICATED" in r.stdout + r.stderr, \
        f"tetherctl without a token: exit {r.returncode} {r.stdout[-200:]} {r.stderr[-200:]}"
    r = run([ctl, "--server", server, "--token", READ, "nodes"])
    assert r.returncode == 0, f"tetherctl --token: exit {r.returncode} {r.stderr[-300:]}"
    token_file = os.path.join(os.path.dirname(ctx.tokens_path), "read.token")
    with open(token_file, "w") as f:
        f.write(READ + "\n")
    r = run([ctl, "--server", server, "--token-file", token_file, "directory"])
    assert r.returncode == 0, \
        f"tetherctl --token-file: exit {r.returncode} {r.stderr[-300:]}"
    r = run([ctl, "--server", server, "--token-file", token_file, "rebalance"])
    assert r.returncode == 1 and "PERMISSION_DENIED" in r.stdout + r.stderr, \
        f"tetherctl rebalance as read: exit {r.returncode} {r.stdout[-200:]} {r.stderr[-200:]}"
    load_file = os.path.join(os.path.dirname(ctx.tokens_path), "load.token")
    with open(load_file, "w") as f:
        f.write(LOAD + "\n")
    base = [load, "--server", server, "--connections", "1", "--samples", "200",
            "--duration", "20s", "--quiet"]
    r = run(base + ["--token-file", load_file, "--producer", "load-sec"])
    assert r.returncode == 0, \
        f"tether-load --token-file: exit {r.returncode} {r.stdout[-300:]}"
    r = run(base + ["--token-file", load_file, "--producer", "other"])
    assert r.returncode != 0, \
        "tether-load wrote under a producer outside its token's prefix"
