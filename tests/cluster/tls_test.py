#!/usr/bin/env python3
"""Node-to-node mutual TLS: real tetherd processes on loopback ports.

    /usr/bin/python3 -B -m pytest -c tests/pytest.ini tests/cluster/tls_test.py \
        --bin build/bin [--budget 270]

Cases:
- refusals at start: a clustered node without TLS and without tether.insecure=true
  exits with status 2, so does one whose certificate names another node, one whose
  certificate the configured CA did not sign, and one with only part of the files.
- formation and replication: tools/tether_cluster.py starts 3 nodes with TLS by
  default (its own CA); writes at replication factor 3 are acknowledged, and after
  SIGKILL of a key's primary another node serves the same total (it was replicated
  over TLS).
- intruders: a node without a certificate (plain BASP, tether.insecure=true) and a
  node calling itself tether-2 with a certificate of another CA try to join through
  every member. Each is refused: a member logs `cluster: refused a connection` for
  it, it is in no member's /v1/nodes and holds no slice, it never gets a routing
  table (not ready), tether-2 keeps its gateway, no member loses a connection to
  another member, and writes are still acknowledged; a legitimate fourth node then
  joins.
- a refusal flood: 100 connections without a TLS handshake in a row get at most 10
  log lines per 10 s on the member, which later says how many it dropped.
Every wait has a deadline; a watchdog stops the nodes and ends the run after
--budget s (270). Two cases, test_refusals and test_cluster (the last three bullets,
one cluster); skipped without the openssl command. TLS_TEST_KEEP=1 keeps the
temporary directory with the nodes' logs.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import tether_cluster  # noqa: E402
import cluster_test as ct  # noqa: E402  (helpers: Client, http_json, wait_for, ...)
from cluster_test import Failure, check, wait_for, http_json  # noqa: E402

REFUSED = "cluster: refused a connection from"
LOST = re.compile(r" (WARN|INFO) \S+ lost: ")


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    check(r.returncode == 0, f"openssl {args[0]}: {r.stderr[-300:]}")


def make_ca(d, cn):
    """(ca certificate, ca key) of a new CA in d."""
    os.makedirs(d, exist_ok=True)
    ca, key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", ca, "-days", "2", "-subj", f"/CN={cn}")
    return ca, key


def make_cert(d, ca, cakey, name):
    """(certificate, key) for `name` signed by ca."""
    crt, key, csr = (os.path.join(d, f"{name}.{x}") for x in ("crt", "key", "csr"))
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return crt, key


def tls_args(crt, key, ca):
    return [f"--openssl.certificate={crt}", f"--openssl.key={key}", f"--openssl.cafile={ca}"]


def log_of(c, name):
    with open(os.path.join(c.base_dir, name, "tetherd.log"), errors="replace") as f:
        return f.read()


def refusals(c, name):
    return [line for line in log_of(c, name).splitlines() if REFUSED in line]


def test_refusals(bindir, base):
    """Refusals at start: exit status 2 and the reason on stderr."""
    tetherd = os.path.join(bindir, "tetherd")
    port = tether_cluster.free_ports(1)[0]
    common = [tetherd, "--tether.name=tether-9", "--tether.host=127.0.0.1",
              "--tether.port=0", f"--tether.cluster-port={port}",
              '--tether.directory-members=["tether-9"]']

    def refused(extra, needle, what):
        r = subprocess.run(common + extra, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 2 and needle in r.stderr,
              f"{what}: exit {r.returncode}, stderr {r.stderr[-400:]!r}")

    d = os.path.join(base, "refusals")
    ca, cakey = make_ca(d, "cluster CA")
    other, otherkey = make_ca(os.path.join(d, "other"), "another CA")
    crt1, key1 = make_cert(d, ca, cakey, "tether-1")
    crt9, key9 = make_cert(os.path.join(d, "other"), other, otherkey, "tether-9")
    refused([], "or tether.insecure to run without it", "clustered without TLS")
    refused(tls_args(crt1, key1, ca), "not this node 'tether-9'",
            "a certificate naming another node")
    refused(tls_args(crt9, key9, ca), "does not verify against openssl.cafile",
            "a certificate of another CA")
    refused([f"--openssl.certificate={crt1}"], "needs all of", "a certificate alone")


def start_intruder(tetherd, d, name, seeds, members, extra):
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(d, "tetherd.log"), "w")
    port, cport = tether_cluster.free_ports(2)
    args = [tetherd, f"--tether.name={name}", "--tether.host=127.0.0.1",
            f"--tether.port={port}", "--tether.cluster-host=127.0.0.1",
            f"--tether.cluster-port={cport}",
            "--tether.seeds=" + tether_cluster.caf_value(seeds),
            "--tether.directory-members=" + tether_cluster.caf_value(members),
            "--tether.replication-factor=3", "--tether.shards=1"] + extra
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    return p, f"127.0.0.1:{port}"


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)


def case_member_impostor(c, bindir, base, names, servers, seeds, gateways, keys):
    """A certificate of the cluster's own CA for tether-4 in a process that claims
    tether-2 (hello and join) and accuses tether-3 in the names of tether-1 and
    tether-2. Every claim is refused and logged; nothing changes."""
    d = os.path.join(base, "member-impostor")
    os.makedirs(d, exist_ok=True)
    crt, key = make_cert(d, c.ca, os.path.join(os.path.dirname(c.ca), "ca.key"),
                         "tether-4")
    r = subprocess.run([os.path.join(bindir, "tether_impostor"), *tls_args(crt, key, c.ca),
                        "--impostor.me=tether-4", "--impostor.claim=tether-2",
                        "--impostor.reporters="
                        + tether_cluster.caf_value(["tether-1", "tether-2"]),
                        "--impostor.suspect=tether-3", "--impostor.suspect-seconds=3",
                        "--impostor.targets=" + tether_cluster.caf_value(seeds)],
                       capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    out = r.stdout
    check(r.returncode == 0, f"impostor exit {r.returncode}: {out}{r.stderr[-600:]}")
    for s in seeds:
        check(f"{s}: hello as tether-2: refused" in out, f"hello at {s}:\n{out}")
        check(f"{s}: hello as tether-4: accepted" in out, f"own hello at {s}:\n{out}")
        check(f"{s}: join as tether-2: refused" in out
              and "that its supervisor did not send" in out.split(f"{s}: join as")[1],
              f"join at {s}:\n{out}")
    failed = re.compile(r" WARN \S+ failed: .*tether-3")
    for n in names:
        log = log_of(c, n)
        check("refuse: a hello claiming tether-2 was refused: its certificate names "
              "tether-4" in log, f"{n} logged no refusal of the impostor's hello")
        m = failed.search(log)
        check(not m, f"{n} declared tether-3 failed on forged suspicions: "
                     f"{m.group(0) if m else ''}")
        listed = {x["name"]: x for x in http_json(servers[n], "/v1/nodes")["nodes"]}
        check(listed["tether-2"].get("gateway") == gateways["tether-2"],
              f"{n}: tether-2's gateway became {listed['tether-2'].get('gateway')}")
        check(listed["tether-3"].get("state") == "up",
              f"{n}: tether-3 is {listed['tether-3'].get('state')}")
    cl = ct.Client(servers["tether-2"], "tls-test-3")
    a = cl.write([ct.counter("tls_impostor_total", k, 1) for k in keys])
    check(a.get("accepted") == len(keys), f"ack after the member impostor {a}")
    cl.close()


DROPPED = "more lines about refused or closed connections were dropped"


def knock(addr):
    """One connection to a cluster port that sends no TLS handshake; returns once the
    node closed it (or after 5 s)."""
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sk:
            sk.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while sk.recv(4096):
                pass
    except OSError:
        pass


def case_refusal_flood(c, name):
    """A peer that connects in a loop: the node logs at most 10 refusals per 10 s,
    then says how many lines it dropped."""
    addr = c.cluster_address(name)
    before = len(refusals(c, name))
    t0 = time.monotonic()
    for _ in range(100):
        knock(addr)
    written = len(refusals(c, name)) - before
    periods = int((time.monotonic() - t0) // 10) + 1
    check(1 <= written <= 10 * periods,
          f"{name} logged {written} refusals for 100 connections in {periods} "
          f"period(s) of 10 s; the limit is 10 per period")

    def dropped_reported():
        knock(addr)
        return any(DROPPED in line for line in log_of(c, name).splitlines())

    wait_for(f"{name} to report the refusals it dropped", dropped_reported,
             timeout=40, interval=1.0)


def test_cluster(bindir, base, running):
    """Formation and replication over TLS, intruders refused, the member impostor,
    the refusal flood, a legitimate join and a failover."""
    tetherd = os.path.join(bindir, "tetherd")
    c = tether_cluster.LocalCluster(tetherd, os.path.join(base, "cluster"), 0,
                                    {"replication-factor": 3, "shards": 1,
                                     "window-ms": 1000, "lateness-ms": 500},
                                    ready_timeout=60)
    intruders = []
    running.append((c, intruders))
    try:
        c.up(3)
        names = list(c.nodes)
        check(c.ca and os.path.isfile(c.ca), f"the launcher made no CA ({c.ca!r})")
        for n in names:
            conf = open(os.path.join(c.base_dir, n, "tetherd.conf")).read()
            check("[openssl]" in conf and "insecure" not in conf,
                  f"{n}'s config has no TLS section or runs insecure:\n{conf}")
        servers = {n: c.server(n) for n in names}
        ct.directory_with_leader(servers["tether-1"], timeout=30)

        # Formation and replication over TLS.
        keys = [{"host": f"h{i}"} for i in range(30)]
        cl = ct.Client(servers["tether-1"], "tls-test-1")
        a = cl.write([ct.counter("tls_test_total", k, 1) for k in keys])
        check(a.get("accepted") == len(keys), f"ack {a}")
        cl.close()
        key = ct.key_of("tls_test_total", keys[0])
        def first_read():
            try:
                return http_json(servers["tether-1"],
                                 "/v1/series?key=" + urllib.request.quote(key))
            except Failure:  # 503 while a slice settles on a loaded machine
                return None

        s = wait_for(f"{key} readable", first_read, timeout=30)
        check(s.get("found"), f"{key} not found")
        owner = s["node"]
        table = http_json(servers["tether-1"], "/v1/directory")
        row = next(x for x in table["slices"] if x["slice"] == s["slice"])
        check(len(row["followers"]) == 2, f"slice {s['slice']} has followers "
                                          f"{row['followers']}, RF 3 wants 2")

        # Intruders: no certificate, and a certificate of another CA for tether-2.
        seeds = [c.cluster_address(n) for n in names]
        members = list(c.directory_members)
        before = {n: len(refusals(c, n)) for n in names}
        gateways = {x["name"]: x.get("gateway")
                    for x in http_json(servers["tether-1"], "/v1/nodes")["nodes"]}
        d = os.path.join(base, "impostor")
        other, otherkey = make_ca(d, "another CA")
        crt, ikey = make_cert(d, other, otherkey, "tether-2")
        for label, name, extra in (("rogue", "rogue", ["--tether.insecure"]),
                                   ("impostor", "tether-2", tls_args(crt, ikey, other))):
            p, gw = start_intruder(tetherd, os.path.join(base, label), name, seeds,
                                   members, extra)
            intruders.append(p)

            def refused_everywhere():
                check(p.poll() is None, f"{label} exited with {p.returncode}")
                return all(len(refusals(c, n)) > before[n] for n in names)

            wait_for(f"every member to log a refused connection of {label}",
                     refused_everywhere, timeout=60)
            before = {n: len(refusals(c, n)) for n in names}
            wait_for(f"{label}'s gateway",
                     lambda: urllib.request.urlopen(f"http://{gw}/healthz",
                                                    timeout=10).status == 200,
                     timeout=30)
            try:
                urllib.request.urlopen(f"http://{gw}/readyz", timeout=10)
                raise Failure(f"{label} is ready: it got a routing table")
            except urllib.error.HTTPError as e:
                check(e.code == 503, f"{label} /readyz: HTTP {e.code}")
            for n in names:
                listed = {x["name"]: x for x in http_json(servers[n], "/v1/nodes")["nodes"]}
                check("rogue" not in listed, f"{n} lists rogue: {listed.get('rogue')}")
                check(set(listed) == set(names),
                      f"{n} lists {sorted(listed)}, want {names}")
                check(listed["tether-2"].get("gateway") == gateways["tether-2"],
                      f"{n}: tether-2's gateway became {listed['tether-2'].get('gateway')}")
                t = http_json(servers[n], "/v1/directory")
                holders = {x["primary"] for x in t["slices"]}
                holders |= {f for x in t["slices"] for f in x["followers"]}
                check(holders <= set(names), f"{n}: slices held by {holders - set(names)}")
            line = refusals(c, "tether-1")[-1]
            check(re.search(r"refused a connection from 127\.0\.0\.1:\d+: TLS handshake "
                            r"failed \(.+\)$", line), f"refusal line: {line!r}")
        for n in names:
            lost = [x for x in log_of(c, n).splitlines() if LOST.search(x)]
            check(not lost, f"{n} lost members while intruders knocked: {lost}")
        cl = ct.Client(servers["tether-2"], "tls-test-2")
        a = cl.write([ct.counter("tls_test_total", k, 1) for k in keys])
        check(a.get("accepted") == len(keys), f"ack after the intruders {a}")
        cl.close()
        for p in intruders:
            stop(p)
        case_member_impostor(c, bindir, base, names, servers, seeds, gateways, keys)
        case_refusal_flood(c, "tether-1")

        # A legitimate node joins; then the owner of a key dies and its total
        # survives on a replica.
        added = c.add(wait=True)

        def all_list_added():
            for n in names:
                listed = {x["name"]: x for x in http_json(servers[n], "/v1/nodes")["nodes"]}
                if listed.get(added, {}).get("state") != "up":
                    return False
            return True

        wait_for(f"{added} up in every member's /v1/nodes", all_list_added, timeout=60)
        def series_now():
            try:  # slices move after the join: a read may be refused meanwhile
                x = http_json(servers["tether-1"],
                              "/v1/series?key=" + urllib.request.quote(key))
            except Failure:
                return None
            return x if x.get("found") and x["state"]["total"] == 2 else None

        owner = wait_for(f"{key} readable after {added} joined", series_now,
                         timeout=60)["node"]
        c.kill(owner, signal.SIGKILL)
        survivor = next(n for n in names if n != owner)

        def served_elsewhere():
            try:
                x = http_json(c.server(survivor),
                              "/v1/series?key=" + urllib.request.quote(key))
            except Failure:  # 503 while the slice fails over
                return False
            return x.get("found") and x["node"] != owner and x["state"]["total"] == 2

        wait_for(f"{key} served with total 2 after {owner} died", served_elsewhere,
                 timeout=60)
    finally:
        for p in intruders:
            stop(p)
        c.down()
        running.remove((c, intruders))


# ---------------------------------------------------------------------------
# Fixtures: the binaries, the temporary directory and the watchdog

@pytest.fixture(scope="module")
def running():
    """(cluster, intruder processes) of the running case, for the watchdog."""
    return []


@pytest.fixture(scope="module")
def base(running, watchdog, request):
    """The module's temporary directory (kept with TLS_TEST_KEEP=1); the watchdog
    stops every node past --budget seconds (270)."""
    budget = request.config.getoption("budget") or 270.0
    d = tempfile.mkdtemp(prefix="tether-tls-")

    def stop_all():
        for c, intruders in list(running):
            for p in intruders:
                try:
                    stop(p)
                except Exception:  # the watchdog goes on with the others
                    pass
            try:
                c.down()
            except Exception:
                pass
    watchdog(budget, stop_all, "tls_test.py")
    try:
        yield d
    finally:
        if not os.environ.get("TLS_TEST_KEEP"):
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def bindir(bin_dir):
    """--bin; the cases need python3-websocket and are skipped without openssl."""
    assert ct.websocket is not None, \
        "python3-websocket is missing (tools/setup.sh installs it)"
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    return bin_dir


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-q", *sys.argv[1:]]))
