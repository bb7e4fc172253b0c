#!/usr/bin/env python3
"""TLS on the gateway and a secure local cluster: real tetherd processes on loopback.

    /usr/bin/python3 -B -m pytest -c tests/pytest.ini tests/cluster/secure_test.py \
        --bin build/bin [--budget 280] [-k gateway]

Cases:
- refusals at start: half of the TLS options, an unreadable file, a key of another
  certificate, an expired certificate and a client CA file without a certificate
  stop tetherd with exit code 2 and a message naming the option and the file.
- gateway: a node with tether.tls-certificate/tls-key speaks only TLS: https and wss
  with the CA work (by IP address and by name), a WebSocket client says hello,
  writes and reads; plain HTTP gets 400 TLS_REQUIRED and nothing else, a plain
  WebSocket handshake fails, a client trusting another CA fails, TLS 1.1 is refused
  by the node (its alert), TLS 1.2 and 1.3 work; the dashboard's event stream and a
  refused oversized body work over TLS. tetherctl and tether-load refuse a node
  whose certificate does not name the address they were given.
- reload: SIGHUP makes new connections get a new certificate while an open session
  keeps working; a broken file on reload keeps the certificate in force.
- client certificates: with tether.tls-client-ca a client without a certificate and
  one with another CA's certificate are refused; one with a certificate of that CA
  is served, and so is tetherctl with --cert/--key.
- secure cluster: tools/tether_cluster.py up --secure (3 nodes, replication factor
  3): cluster.json and the node configs, `tether-cluster status` over https, a
  Python wss:// client with the write token (hello, write, query), wrong or missing
  tokens (401/403 over https, PERMISSION_DENIED for a read token's write), tetherctl
  (nodes, watch) and tether-load over TLS with --ca and --token-file, and a restart.
Every wait has a deadline; a watchdog stops the nodes and ends the run after --budget
s (280). One test_* function per bullet, in this order (-k selects them: refusals,
gateway, reload, client_certs, secure_cluster); skipped without the openssl command.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import tether_cluster  # noqa: E402
from cluster_test import Failure, check, wait_for  # noqa: E402

try:
    import websocket  # python3-websocket
except ImportError:  # pragma: no cover
    websocket = None

# stop() of every node and down() of every cluster a case started and has not stopped
# yet: the watchdog calls them.
LIVE = []


# -- certificates ---------------------------------------------------------------------


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    check(r.returncode == 0, f"openssl {args[0]}: {r.stderr[-300:]}")


def make_ca(d, cn):
    """(certificate, key) of a new CA in d."""
    os.makedirs(d, exist_ok=True)
    tag = re.sub(r"\W", "-", cn)
    crt, key = os.path.join(d, f"{tag}.crt"), os.path.join(d, f"{tag}.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={cn}")
    return crt, key


def make_cert(d, ca, name, sans, days="2"):
    """(certificate, key) for CN `name` with subjectAltName `sans`, signed by ca."""
    cacrt, cakey = ca
    crt, key, csr, ext = (os.path.join(d, f"{name}.{x}") for x in ("crt", "key", "csr",
                                                                    "ext"))
    with open(ext, "w") as f:
        f.write(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", csr, "-CA", cacrt, "-CAkey", cakey, "-CAcreateserial",
            "-out", crt, "-days", days, "-extfile", ext)
    return crt, key


class Certs:
    """The certificates every case uses, made once."""

    def __init__(self, base):
        d = self.dir = os.path.join(base, "certs")
        self.ca = make_ca(d, "gateway CA")
        self.other_ca = make_ca(d, "another CA")
        self.client_ca = make_ca(d, "client CA")
        self.server = make_cert(d, self.ca, "gateway-a", "DNS:localhost,IP:127.0.0.1")
        self.server_b = make_cert(d, self.ca, "gateway-b", "DNS:localhost,IP:127.0.0.1")
        self.named_only = make_cert(d, self.ca, "tether-x", "DNS:tether-x")
        self.stranger = make_cert(d, self.other_ca, "stranger", "DNS:localhost,IP:127.0.0.1")
        self.client = make_cert(d, self.client_ca, "client-1", "DNS:client-1")
        self.foreign_client = make_cert(d, self.other_ca, "client-2", "DNS:client-2")
        self.expired = make_cert(d, self.ca, "expired", "IP:127.0.0.1", days="0")


# -- a standalone node ------------------------------------------------------------------


class Tetherd:
    """One tetherd on a free loopback port; its output lines are collected."""

    def __init__(self, bindir, args, label):
        self.label = label
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "tetherd"), "--tether.host=127.0.0.1", "--tether.port=0",
             "--tether.shards=1", "--tether.window-ms=1000", "--tether.lateness-ms=300"]
            + args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace")
        LIVE.append(self.stop)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        m = self.wait_line(r"listening on 127\.0\.0\.1:(\d+)", 30)
        self.port = int(m.group(1))

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # end of output
            self.cv.notify_all()

    def wait_line(self, pattern, timeout, start=0):
        """The match of the first line from index `start` on that matches."""
        deadline = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise Failure(f"{self.label} exited (code {self.proc.wait()}) "
                                      f"before printing /{pattern}/: {self.lines[-10:]}")
                    m = re.search(pattern, line)
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"{self.label}: no line /{pattern}/ within {timeout}s: "
                                  f"{self.lines[-10:]}")
                self.cv.wait(left)

    def mark(self):
        with self.cv:
            return len(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.stop in LIVE:
            LIVE.remove(self.stop)


def tls_args(cert, client_ca=None):
    args = [f"--tether.tls-certificate={cert[0]}", f"--tether.tls-key={cert[1]}"]
    if client_ca:
        args.append(f"--tether.tls-client-ca={client_ca}")
    return args


def context(ca, client=None, **versions):
    """A client context trusting `ca`, with a client certificate and TLS versions."""
    ctx = ssl.create_default_context(cafile=ca)
    if client:
        ctx.load_cert_chain(client[0], client[1])
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        if "minimum" in versions:
            ctx.minimum_version = versions["minimum"]
        if "maximum" in versions:
            ctx.maximum_version = versions["maximum"]
    return ctx


def https(port, path, ctx, method="GET", token=None, body=None, host="127.0.0.1",
          timeout=10.0):
    """(status, headers, body text) of one request over TLS."""
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode(errors="replace")
    finally:
        conn.close()


def plain_http(port, path, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def refused(fn, what, *reasons):
    """Runs fn(), which must fail with an SSL or connection error; returns it."""
    try:
        fn()
    except (ssl.SSLError, ConnectionError, websocket.WebSocketException) as e:
        text = f"{getattr(e, 'reason', '')} {e}"
        check(not reasons or any(r in text for r in reasons),
              f"{what}: failed, but not as expected ({reasons}): {text}")
        return e
    raise Failure(f"{what}: was served")


class StreamClient:
    """A wss:// producer speaking the JSON mapping (docs/protocol.md)."""

    def __init__(self, url, producer, ctx, token=None):
        self.ws = websocket.create_connection(f"{url}/v1/stream", timeout=10,
                                              sslopt={"context": ctx})
        self.seq = 0
        hello = {"producerId": producer}
        if token:
            hello["token"] = token
        self.send({"hello": hello})
        self.welcome = self.recv()

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def recv(self):
        while True:
            obj = json.loads(self.ws.recv())
            if "windowUpdate" not in obj:
                return obj

    def write(self, samples):
        self.seq += 1
        self.send({"write": {"sequence": str(self.seq), "samples": samples}})
        return self.recv()

    def query(self, key):
        self.send({"query": {"requestId": "7", "key": key}})
        return self.recv()

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


def counter(name, labels, value=1):
    return {"name": name, "kind": "COUNTER", "value": value,
            "labels": [{"name": k, "value": v} for k, v in sorted(labels.items())]}


def run(cmd, timeout=60):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# -- cases ------------------------------------------------------------------------------


def test_refusals(env):
    """Refusals at start: exit code 2 and a message naming the option and the file."""
    tetherd = os.path.join(env.bin, "tetherd")
    c = env.certs
    missing = os.path.join(c.dir, "missing.crt")
    cases = [
        ([f"--tether.tls-certificate={c.server[0]}"],
         "tether.tls-certificate needs tether.tls-key"),
        ([f"--tether.tls-key={c.server[1]}"], "tether.tls-key needs tether.tls-certificate"),
        ([f"--tether.tls-client-ca={c.client_ca[0]}"],
         "tether.tls-client-ca needs tether.tls-certificate"),
        (tls_args((missing, c.server[1])), f"cannot read {missing}"),
        (tls_args((c.server[0], c.server_b[1])),
         f"tether.tls-key {c.server_b[1]} does not belong to tether.tls-certificate"),
        (tls_args((c.server[1], c.server[1])),
         f"tether.tls-certificate {c.server[1]} is not a PEM certificate"),
        (tls_args(c.expired), f"tether.tls-certificate {c.expired[0]} expired on"),
        (tls_args(c.server, client_ca=c.server[1]),
         f"tether.tls-client-ca {c.server[1]} holds no PEM CA certificate"),
    ]
    for args, needle in cases:
        r = run([tetherd, "--tether.port=0"] + args, timeout=30)
        check(r.returncode == 2 and needle in r.stderr,
              f"{args}: exit {r.returncode}, want 2 and {needle!r}; stderr "
              f"{r.stderr[-400:]!r}")


def test_gateway(env):
    """A node with a gateway certificate speaks only TLS (https, wss, TLS 1.2 and
    1.3; plain HTTP, another CA and TLS 1.1 refused); the tools check the name."""
    c = env.certs
    ca = c.ca[0]
    node = Tetherd(env.bin, tls_args(c.server), "tls node")
    mismatch = None
    try:
        port = node.port
        node.wait_line(r"listening on .*\(TLS only\)", 5)
        ok = context(ca)
        status, _, body = https(port, "/healthz", ok)
        check((status, body) == (200, "ok\n"), f"https /healthz: {status} {body!r}")
        status, _, _ = https(port, "/readyz", ok, host="localhost")
        check(status == 200, f"https://localhost /readyz: {status}")

        # Plain HTTP and WebSocket on the TLS port: nothing but 400 TLS_REQUIRED.
        for path in ("/healthz", "/v1/nodes"):
            status, body = plain_http(port, path)
            check(status == 400 and json.loads(body)["error"] == "TLS_REQUIRED",
                  f"plain GET {path}: {status} {body!r}")
        refused(lambda: websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream",
                                                    timeout=10),
                "a plain WebSocket handshake", "400")

        # Trust and versions.
        refused(lambda: https(port, "/healthz", context(c.other_ca[0])),
                "a client trusting another CA", "CERTIFICATE_VERIFY_FAILED")
        old = context(ca, minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1)
        old.set_ciphers("DEFAULT@SECLEVEL=0")  # let this client offer TLS 1.1
        refused(lambda: https(port, "/healthz", old), "a TLS 1.1 client",
                "TLSV1_ALERT_PROTOCOL_VERSION")
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            conn = context(ca, minimum=v, maximum=v).wrap_socket(
                socket.create_connection(("127.0.0.1", port), timeout=10),
                server_hostname="127.0.0.1")
            check(conn.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                     ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[v],
                  f"negotiated {conn.version()}")
            conn.close()

        # The stream API over wss://.
        cl = StreamClient(f"wss://127.0.0.1:{port}", "secure-test-1", ok)
        check("welcome" in cl.welcome, f"hello: {cl.welcome}")
        samples = [counter("secure_test_total", {"host": f"h{i}"}) for i in range(5)]
        a = cl.write(samples)
        check(a.get("ack", {}).get("accepted") == 5, f"write: {a}")
        q = cl.query('secure_test_total{host="h0"}')
        check(q.get("queryResult", {}).get("found")
              and q["queryResult"]["series"]["total"] == 1, f"query: {q}")
        cl.close()
        status, _, body = https(port, "/v1/series?key="
                                + urllib.parse.quote('secure_test_total{host="h1"}'), ok)
        check(status == 200 and json.loads(body)["state"]["total"] == 1,
              f"https /v1/series: {status} {body[:200]}")

        # The dashboard's event stream over TLS.
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ok)
        conn.request("GET", "/v1/dashboard/stream")
        r = conn.getresponse()
        check(r.status == 200 and r.getheader("Content-Type") == "text/event-stream",
              f"dashboard stream: {r.status} {r.getheader('Content-Type')}")
        deadline = time.monotonic() + 20
        seen = ""
        while "event:" not in seen and time.monotonic() < deadline:
            seen += r.fp.readline().decode(errors="replace")
        check("event:" in seen, f"no event from the dashboard stream: {seen[:200]!r}")
        conn.close()

        # A refused oversized body: the answer arrives, the upload is not reset.
        status, _, body = https(port, "/api/v1/write", ok, method="POST",
                                body=b"x" * (40 << 20), timeout=60)
        check(status == 413 and "BODY_TOO_LARGE" in body, f"40 MiB body: {status} {body}")

        # The tools check that the certificate names the address they were given.
        mismatch = Tetherd(env.bin, tls_args(c.named_only), "node named tether-x")
        server = f"https://127.0.0.1:{mismatch.port}"
        r = run([env.ctl, "--server", server, "--ca", ca, "health"])
        check(r.returncode == 3 and "mismatch" in r.stderr,
              f"tetherctl against a certificate for another name: {r.returncode} "
              f"{r.stderr!r}")
        r = run([env.load, "--server", server.replace("https", "wss"), "--ca", ca,
                 "--duration", "1s", "--connections", "1", "--quiet"])
        check(r.returncode == 1 and "mismatch" in r.stderr,
              f"tether-load against a certificate for another name: {r.returncode} "
              f"{r.stderr[-300:]!r}")
        r = run([env.ctl, "--server", f"https://127.0.0.1:{port}", "--ca", ca, "health"])
        check(r.returncode == 0, f"tetherctl health: {r.returncode} {r.stderr!r}")
    finally:
        node.stop()
        if mismatch:
            mismatch.stop()


def test_reload(env):
    """SIGHUP: new connections get the new certificate, an open session goes on, a
    broken file keeps the certificate in force."""
    c = env.certs
    d = os.path.join(env.base, "reload")
    os.makedirs(d)
    crt, key = os.path.join(d, "gw.crt"), os.path.join(d, "gw.key")
    shutil.copy(c.server[0], crt)
    shutil.copy(c.server[1], key)
    node = Tetherd(env.bin, tls_args((crt, key)), "reloading node")
    ctx = context(c.ca[0])

    def subject_cn():
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", node.port), timeout=10),
                             server_hostname="127.0.0.1") as s:
            return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]

    try:
        check(subject_cn() == "gateway-a", "the node does not serve gateway-a")
        cl = StreamClient(f"wss://127.0.0.1:{node.port}", "reload-1", ctx)
        for src, dst in ((c.server_b[0], crt), (c.server_b[1], key)):
            shutil.copy(src, dst + ".new")
            os.replace(dst + ".new", dst)
        mark = node.mark()
        node.proc.send_signal(signal.SIGHUP)
        node.wait_line(r"TLS certificate reloaded \(/CN=gateway-b", 20, mark)
        check(subject_cn() == "gateway-b", "a new connection still gets gateway-a")
        a = cl.write([counter("reload_total", {})])
        check(a.get("ack", {}).get("accepted") == 1, f"the open session after the reload: {a}")
        cl.close()
        with open(crt, "w") as f:
            f.write("not a certificate\n")
        mark = node.mark()
        node.proc.send_signal(signal.SIGHUP)
        node.wait_line(rf"TLS certificate not reloaded: tether.tls-certificate {re.escape(crt)}",
                       20, mark)
        check(subject_cn() == "gateway-b", "a broken file replaced the certificate in force")
    finally:
        node.stop()


def test_client_certs(env):
    """With tether.tls-client-ca only clients with a certificate of that CA are
    served (also tetherctl with --cert/--key)."""
    c = env.certs
    ca = c.ca[0]
    node = Tetherd(env.bin, tls_args(c.server, client_ca=c.client_ca[0]), "client-cert node")
    try:
        port = node.port
        # TLS 1.3 sends the refusal after the client's handshake: it shows on the
        # first read (CERTIFICATE_REQUIRED); TLS 1.2 fails the handshake itself.
        refused(lambda: https(port, "/healthz", context(ca)), "a client without certificate",
                "CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "reset", "EOF")
        refused(lambda: https(port, "/healthz", context(ca, c.foreign_client)),
                "a client with another CA's certificate", "UNKNOWN_CA")
        refused(lambda: https(port, "/healthz",
                              context(ca, maximum=ssl.TLSVersion.TLSv1_2)),
                "a TLS 1.2 client without certificate", "HANDSHAKE_FAILURE", "reset",
                "EOF")
        status, _, body = https(port, "/healthz", context(ca, c.client))
        check((status, body) == (200, "ok\n"), f"with a client certificate: {status} {body}")
        cl = StreamClient(f"wss://127.0.0.1:{port}", "client-cert-1", context(ca, c.client))
        a = cl.write([counter("client_cert_total", {})])
        check(a.get("ack", {}).get("accepted") == 1, f"wss with a client certificate: {a}")
        cl.close()
        server = f"https://127.0.0.1:{port}"
        r = run([env.ctl, "--server", server, "--ca", ca, "--cert", c.client[0], "--key",
                 c.client[1], "health"])
        check(r.returncode == 0, f"tetherctl --cert: {r.returncode} {r.stderr!r}")
        r = run([env.ctl, "--server", server, "--ca", ca, "health"])
        check(r.returncode == 3, f"tetherctl without --cert: {r.returncode} {r.stderr!r}")
    finally:
        node.stop()


def test_secure_cluster(env):
    """tools/tether_cluster.py up --secure: its files, status, wss with tokens, the
    tools over TLS and a restart."""
    base = os.path.join(env.base, "cluster")
    c = tether_cluster.LocalCluster(os.path.join(env.bin, "tetherd"), base, 0,
                                    {"replication-factor": 3, "shards": 1,
                                     "window-ms": 1000, "lateness-ms": 300},
                                    ready_timeout=90, secure=True)
    LIVE.append(c.down)
    try:
        c.up(3)
        names = list(c.nodes)
        with open(c.state_path) as f:
            st = json.load(f)
        check(st.get("secure") is True and st.get("ca") == c.ca and os.path.isfile(c.ca),
              f"cluster.json: secure {st.get('secure')!r}, ca {st.get('ca')!r}")
        check(os.stat(c.state_path).st_mode & 0o077 == 0,
              f"cluster.json holds tokens but is mode {os.stat(c.state_path).st_mode:o}")
        tokens = st.get("tokens") or {}
        check(sorted(tokens) == ["admin", "read", "write"]
              and len(set(tokens.values())) == 3
              and all(len(t) >= 32 for t in tokens.values()),
              f"cluster.json tokens: {sorted(tokens)}")
        for n in names:
            with open(os.path.join(base, n, "tetherd.conf")) as f:
                conf = f.read()
            for key in ("tls-certificate=", "tls-key=", "tokens-file=", "[openssl]"):
                check(key in conf, f"{n}'s config has no {key}:\n{conf}")
        r = run([sys.executable, os.path.join(HERE, "..", "..", "tools", "tether_cluster.py"),
                 "status", "--dir", base])
        check(r.returncode == 0 and r.stdout.count(" yes") == 3
              and r.stdout.count("https://127.0.0.1:") == 3,
              f"tether-cluster status: {r.returncode}\n{r.stdout}{r.stderr}")

        port = c.gateway("tether-1")[1]
        ctx = c.ssl_context()
        # Credentials over https.
        status, headers, _ = https(port, "/v1/nodes", ctx)
        check(status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"),
              f"no token: {status} {headers}")
        status, _, _ = https(port, "/v1/nodes", ctx, token="0" * 40)
        check(status == 401, f"an unknown token: {status}")
        status, _, body = https(port, "/v1/admin/rebalance", ctx, method="POST",
                                token=c.token("read"), body=b"")
        check(status == 403 and "PERMISSION_DENIED" in body, f"read token on admin: {status}")
        status, _, body = https(port, "/api/v1/write", ctx, method="POST",
                                token=c.token("read"), body=b"")
        check(status == 403, f"read token on remote write: {status} {body}")
        status, _, body = https(port, "/v1/nodes", ctx, token=c.token("read"))
        listed = sorted(x["name"] for x in json.loads(body)["nodes"]) if status == 200 else []
        check(listed == names, f"/v1/nodes with the read token: {status} {listed}")
        check(plain_http(port, "/healthz")[0] == 400, "plain HTTP on a secure gateway")

        # A Python client over wss:// with the CA and the write token.
        cl = StreamClient(c.url("tether-2", websocket=True), "secure-cluster-1", ctx,
                          c.token("write"))
        check("welcome" in cl.welcome, f"hello with the write token: {cl.welcome}")
        keys = [{"host": f"h{i}"} for i in range(20)]
        a = cl.write([counter("secure_cluster_total", k) for k in keys])
        check(a.get("ack", {}).get("accepted") == len(keys), f"write: {a}")
        key = 'secure_cluster_total{host="h3"}'
        q = cl.query(key)
        check(q.get("queryResult", {}).get("found"), f"query: {q}")
        cl.close()
        reader = StreamClient(c.url("tether-3", websocket=True), "secure-reader", ctx,
                              c.token("read"))
        e = reader.write([counter("secure_cluster_total", {"host": "x"})])
        check(e.get("error", {}).get("code") == "PERMISSION_DENIED",
              f"a read token's write: {e}")
        reader.close()
        bad = StreamClient(c.url("tether-3", websocket=True), "secure-bad", ctx, "1" * 40)
        check(bad.welcome.get("error", {}).get("code") == "UNAUTHENTICATED",
              f"hello with an unknown token: {bad.welcome}")
        bad.close()

        # tetherctl and tether-load over TLS with the CA and token files.
        read_auth = ["--ca", c.ca, "--token-file", c.token_file("read")]
        r = run([env.ctl, "--server", c.server("tether-1")] + read_auth + ["nodes"])
        check(r.returncode == 0 and all(n in r.stdout for n in names),
              f"tetherctl nodes: {r.returncode} {r.stdout}{r.stderr}")
        r = run([env.ctl, "--server", c.server("tether-1"), "--token-file",
                 c.token_file("read"), "nodes"])
        check(r.returncode == 3 and "certificate verify failed" in r.stderr,
              f"tetherctl without --ca: {r.returncode} {r.stderr!r}")
        def series_via_ctl():  # a read may meet a slice settling on a loaded machine
            r = run([env.ctl, "--server", c.server("tether-1")] + read_auth
                    + ["series", key])
            return r if r.returncode == 0 else None

        r = wait_for("tetherctl series over https", series_via_ctl, timeout=30)
        check("secure_cluster_total" in r.stdout, f"tetherctl series: {r.stdout}")
        load_server = c.server("tether-1").replace("https://", "wss://") + "," \
            + c.server("tether-2")
        r = run([env.load, "--server", load_server, "--ca", c.ca, "--token-file",
                 c.token_file("write"), "--duration", "2s", "--connections", "2",
                 "--batch", "100", "--series", "50", "--rate", "5k", "--json"], timeout=120)
        check(r.returncode == 0, f"tether-load over wss: {r.returncode} {r.stderr[-500:]}")
        report = json.loads(r.stdout)
        check(report.get("ok") is True and report["samples_acked"] == report["samples_sent"]
              and report["samples_sent"] > 0, f"tether-load report: {r.stdout[:500]}")

        # tetherctl watch over wss: one window close of a key written meanwhile.
        watch = subprocess.Popen(
            [env.ctl, "--server", c.server("tether-3")] + read_auth
            + ["--json", "--timeout-ms", "30000", "watch", key, "--windows", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        writer = StreamClient(c.url("tether-1", websocket=True), "secure-cluster-2", ctx,
                              c.token("admin"))
        try:
            deadline = time.monotonic() + 60
            while watch.poll() is None and time.monotonic() < deadline:
                w = writer.write([counter("secure_cluster_total", {"host": "h3"})])
                check("ack" in w, f"write while watching: {w}")
                try:
                    watch.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            writer.close()
            if watch.poll() is None:
                watch.kill()
            out, err = watch.communicate(timeout=10)
        check(watch.returncode == 0 and "windowUpdate" in out,
              f"tetherctl watch over wss: {watch.returncode} {out[-300:]} {err[-300:]}")

        # The launcher restarts a node of a secure cluster and sees it ready.
        c.restart("tether-3")
        check(c.ready("tether-3")[0], "tether-3 not ready after its restart")
    finally:
        c.down()
        LIVE.remove(c.down)


class Env:
    def __init__(self, bindir, base):
        self.bin = bindir
        self.ctl = os.path.join(bindir, "tetherctl")
        self.load = os.path.join(bindir, "tether-load")
        self.base = base
        self.certs = Certs(base)


@pytest.fixture(scope="module")
def env(bin_dir, watchdog, request):
    """Env in a temporary directory with the certificates, for the module's cases
    (python3-websocket needed; skipped without openssl). Past --budget seconds (280)
    the watchdog stops every node and cluster still running."""
    assert websocket is not None, "python3-websocket is missing (tools/setup.sh installs it)"
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    budget = request.config.getoption("budget") or 280.0

    def stop_all():
        for stop in list(reversed(LIVE)):
            try:
                stop()
            except Exception:  # the watchdog goes on with the others
                pass
    watchdog(budget, stop_all, "secure_test.py")
    base = tempfile.mkdtemp(prefix="tether-secure-")
    try:
        yield Env(bin_dir, base)
    finally:
        stop_all()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-q", *sys.argv[1:]]))
