#!/usr/bin/python3
"""A node restarted while the links between the nodes add latency joins again.

Three idle tetherd nodes behind netproxy.py; once they are ready every link gets
--delay ms (default 100) each way, one node is killed with SIGKILL and started
again, and the test waits --ready-timeout s (default 30) for it to be ready (it
has the directory's table for every slice). It does this once without TLS between
the nodes and once with TLS (the default of tools/tether_cluster.py), each run in
its own process.

Without the connectors of libactors/node/tls_transport.cpp the restarted node never
got ready under 100 ms (under 50 ms with TLS): CAF 0.17.6's BASP broker treats a
connection it dialed as silent until the peer's first bytes arrive and closes it at
its next heartbeat tick (every 100 ms), so every dial failed once a round trip (plus
the TLS handshake's) took longer than the tick. The connectors hand a connection to
the broker only once the peer's first bytes wait in its socket.

Two cases, plain and TLS: each passes when its run gets the node ready; both are
skipped when there is no tetherd in --bin (default build/bin).

Usage: python3 -m pytest -p no:cacheprovider tests/chaos/latency_restart_test.py \
           [--delay 100] [--ready-timeout 30] [--bin build/bin]
   or: tests/chaos/latency_restart_test.py [--delay 100] [--bin build/bin] (the same
       through pytest, showing each run's output as it goes)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import netproxy  # noqa: E402
import tether_cluster as tc  # noqa: E402


def restart_under_delay(tetherd, delay_ms, tls, ready_timeout, log):
    """True if the restarted node got ready under the delay."""
    holder = {}

    def pids():
        c = holder.get("c")
        return {c.pid(n): n for n in (c.nodes if c else []) if c.pid(n)}
    proxy = netproxy.NetProxy(pids=pids, seed=1)
    base = tempfile.mkdtemp(prefix="tether-tls-latency-")
    opts = {"replication-factor": 3, "shards": 2}
    ok = False
    try:
        with tc.LocalCluster(tetherd, base, 0, opts, ready_timeout=30, log=log, tls=tls,
                             cluster_front=proxy.front) as c:
            holder["c"] = c
            c.up(3)
            proxy.delay(delay_ms)
            time.sleep(1)
            c.kill("tether-1")
            t0 = time.monotonic()
            c.restart("tether-1", wait=False)
            try:
                c.wait_ready("tether-1", timeout=ready_timeout)
                log(f"tls={tls}: tether-1 ready {time.monotonic() - t0:.2f} s after its "
                    f"restart under {delay_ms:g} ms delay")
                ok = True
            except tc.ClusterError as e:
                log(f"tls={tls}: {str(e).splitlines()[0]}")
    finally:
        proxy.close()
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log(f"node logs kept in {base}")
    return ok


@pytest.fixture(scope="module")
def latency_tetherd(request):
    """tetherd in --bin (default build/bin); the cases are skipped without it."""
    bin_dir = request.config.getoption("bin") or os.path.join(REPO, "build", "bin")
    tetherd = os.path.join(bin_dir, "tetherd")
    if not os.access(tetherd, os.X_OK):
        pytest.skip(f"no tetherd at {tetherd}")
    return bin_dir


@pytest.mark.parametrize("kind", ["plain", "tls"])
def test_restart_under_delay(kind, latency_tetherd, request):
    """The restarted node gets ready under --delay ms each way (plain: without TLS
    between the nodes, tls: with it), the run in a process of its own."""
    delay = request.config.getoption("delay")
    ready_timeout = request.config.getoption("ready_timeout")
    python = [sys.executable] + (["-B"] if sys.dont_write_bytecode else [])
    cmd = python + [os.path.abspath(__file__), "--one", kind, "--delay",
           str(delay), "--ready-timeout", str(ready_timeout), "--bin", latency_tetherd]
    ok = subprocess.run(cmd).returncode == 0
    assert ok, (f"restart under {delay:g} ms delay: "
                f"{'with' if kind == 'tls' else 'without'} TLS NOT ready")


def one_run(argv):
    """The body of one case's process: `--one plain|tls`; exit 0 if the node got ready."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", choices=("tls", "plain"), required=True,
                    help="this run, in this process (each run has its own)")
    ap.add_argument("--delay", type=float, default=100.0)
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    args = ap.parse_args(argv)

    def log(m):
        print(m, flush=True)
    return 0 if restart_under_delay(os.path.join(args.bin, "tetherd"), args.delay,
                                    args.one == "tls", args.ready_timeout, log) else 1


if __name__ == "__main__":
    if "--one" in sys.argv[1:]:
        sys.exit(one_run(sys.argv[1:]))
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-s", *sys.argv[1:]]))
