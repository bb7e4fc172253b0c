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

Exit 0 if both runs get the node ready, 1 otherwise, 77 if tetherd is missing.

Usage: tests/chaos/latency_restart_test.py [--delay 100] [--bin build/bin]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=100.0)
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--one", choices=("tls", "plain"),
                    help="only this run, in this process (each run has its own)")
    args = ap.parse_args(argv)
    tetherd = os.path.join(args.bin, "tetherd")
    if not os.access(tetherd, os.X_OK):
        print(f"SKIP: no tetherd at {tetherd}")
        return 77

    def log(m):
        print(m, flush=True)
    if args.one:
        return 0 if restart_under_delay(tetherd, args.delay, args.one == "tls",
                                        args.ready_timeout, log) else 1

    def run(kind):
        cmd = [sys.executable, os.path.abspath(__file__), "--one", kind, "--delay",
               str(args.delay), "--ready-timeout", str(args.ready_timeout), "--bin",
               args.bin]
        return subprocess.run(cmd).returncode == 0
    plain = run("plain")
    tls = run("tls")
    print("PASS" if plain and tls else
          f"FAIL: restart under {args.delay:g} ms delay: "
          f"without TLS {'ready' if plain else 'NOT ready'}, "
          f"with TLS {'ready' if tls else 'NOT ready'}", flush=True)
    return 0 if plain and tls else 1


if __name__ == "__main__":
    sys.exit(main())
