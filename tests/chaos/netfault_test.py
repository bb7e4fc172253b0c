#!/usr/bin/python3
"""Network faults between the nodes: acknowledged counter increments survive delay,
reset connections, lossy links and a black-holed node, exactly once, and writes
resume on every slice once the faults end.

Three tetherd processes (tools/tether_cluster.py, replication-factor 3, 1 s windows)
each advertise a port of a fault-injecting TCP proxy (netproxy.py,
tether.advertise-cluster-port) instead of their own cluster port, so every
node-to-node connection passes through it. The producers, poller and subscriber of
failover_checker.py (pipelined writes, resent unchanged after UNAVAILABLE or a lost
connection) write through the gateways, which the proxy does not touch: the faults
hit the forwarding, replication, heartbeat and directory traffic only.

The fault phases, in order, each for --phase seconds (3) unless said otherwise:
  delay      200 ms (+ up to 50 ms jitter) on every link, both directions
  reset      every connection of one node reset every 300 ms
  loss       every forwarded chunk resets its connection with probability 2 %
  blackhole  one node's links forward nothing (connections stay open), then heal
  kill       100 ms delay on every link while a primary is killed with SIGKILL and
             restarted (one failover_checker cycle)
After each phase the proxy heals and the test waits (bounded by --settle-timeout)
until the cluster has settled, every producer has been acknowledged again and a
write sent after the heal has been acknowledged on every slice the keys live in.
At the end: every write answered, every key's total on every node equal to the sum
of its acknowledged increments (nothing lost, nothing counted twice), no observed
total decreasing (the checks of failover_checker.py).

One case, test_netfault: it passes when every check held, fails with the failed
checks, and is skipped without python3-websocket or a readable /proc/net/tcp. The
options (tests/conftest.py) are its own --phases, --phase, --delay-ms, --loss,
--timeout and those of failover_checker.py (--seed, --keys, --producers, --window,
--batch, --settle-timeout, ...); its figures are printed (pytest -s shows them, and
so does a failure).

Usage:
  python3 -B -m pytest -c tests/pytest.ini tests/chaos/netfault_test.py --bin build/bin
  tests/chaos/netfault_test.py                  # the same through pytest (-s): about a minute
  tests/chaos/netfault_test.py --seed 7 --phase 5 --keep
  tests/chaos/netfault_test.py --phases delay,blackhole
"""
import argparse
import os
import random
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import chaoslib as cl  # noqa: E402
import failover_checker as fc  # noqa: E402
import netproxy  # noqa: E402
import tether_cluster as tc  # noqa: E402

METRIC = "chaos_netfault_total"
NODES = 3
PHASES = ("delay", "reset", "loss", "blackhole", "kill")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Delay, reset, lose and black-hole node-to-node traffic through a "
                    "proxy under counter writes; check that every acknowledged "
                    "increment is counted exactly once and that writes resume. "
                    "Other options are those of failover_checker.py (--seed, --keys, "
                    "--producers, --window, --batch, --settle-timeout, ...). "
                    "Exit 0 pass, 1 fail, 77 skipped.")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"fault phases in order (default {','.join(PHASES)})")
    ap.add_argument("--phase", type=float, default=3.0,
                    help="seconds each fault lasts (default 3)")
    ap.add_argument("--delay-ms", type=float, default=200.0,
                    help="added latency per chunk in the delay phase (default 200)")
    ap.add_argument("--loss", type=float, default=0.02,
                    help="probability that a chunk resets its connection in the loss "
                         "phase (default 0.02)")
    ap.add_argument("--timeout", type=float, default=170.0,
                    help="bound of the whole run in seconds (default 170)")
    own, rest = ap.parse_known_args(argv)
    phases = [p for p in own.phases.split(",") if p]
    bad = [p for p in phases if p not in PHASES]
    if bad:
        ap.error(f"unknown phases {bad}; known: {', '.join(PHASES)}")
    own.phases = phases
    # One kill cycle (the kill phase); --hold is the undisturbed time after it.
    args = fc.parse_args(["--cycles", str(phases.count("kill") or 1), "--hold", "0.5",
                          "--duration", str(own.timeout)] + rest)
    if "kill" not in phases:
        args.cycles = 0
    for k, v in vars(own).items():
        setattr(args, k, v)
    return args


class NetChecker(fc.Checker):
    """failover_checker's writers, observers and verdict; network faults instead of
    its kill loop."""

    def __init__(self, c, args, log, proxy):
        super().__init__(c, args, log)
        self.proxy = proxy
        self.recoveries = []  # (phase, settle s, resume s)

    # -- the proxy really is in the path --

    def check_links(self):
        """Every pair of nodes is connected through the proxy, and no node holds a
        connection to another node's real cluster port."""
        pairs = {frozenset((a, b)) for a in self.names for b in self.names if a < b}

        def linked():
            seen = {frozenset((d, t)) for d, t, _, _ in self.proxy.connections()}
            missing = pairs - seen
            return None if not missing else \
                "no proxied link between " + ", ".join("/".join(sorted(p)) for p in missing)
        took, reason = cl.wait_until(linked, self.args.settle_timeout)
        if took is None:
            self.fail(f"setup: {reason} (connections: {self.proxy.connections()})")
        real = {self.c.node(n).cluster_port for n in self.names}
        table = netproxy._tcp_table()
        for n in self.names:
            pid = self.c.pid(n)
            inodes = netproxy._socket_inodes(pid) if pid else set()
            direct = [rp for lp, rp, st, i in table
                      if st == "01" and rp in real and i in inodes]
            if direct:
                self.fail(f"setup: {n} is connected straight to cluster port(s) "
                          f"{sorted(set(direct))}, around the proxy")

    # -- phases --

    def recover(self, phase, t_heal):
        """After a heal: settled, every producer acknowledged again, and every slice
        of the keys acknowledged a write sent after the heal."""
        settle = self.wait_settled(f"{phase}: after the heal")
        self.wait_progress(t_heal, f"{phase}: after the heal")
        slice_of = self.slice_of
        took, reason = cl.wait_until(
            lambda: (lambda w: None if not w else
                     f"{len(w)} slices without an ack since the heal: {sorted(w)[:8]}")(
                cl.slices_without_ack(self.producers, slice_of, t_heal)),
            self.args.settle_timeout)
        if took is None:
            self.fail(f"{phase}: writes did not resume on every slice within "
                      f"{self.args.settle_timeout:g} s of the heal ({reason})")
            for p in self.producers:
                e = getattr(p, "last_error", None)
                if e is not None:
                    self.log(f"  {p.name}: last error {e[2]} from {e[1]} "
                             f"{cl.now() - e[0]:.1f} s ago: {e[3]}")
        resumed = cl.now() - t_heal if took is not None else None
        self.recoveries.append((phase, settle, resumed))
        self.log(f"{phase}: healed; settled after "
                 + (f"{settle:.2f} s" if settle is not None else "NO settle")
                 + ", writes acknowledged on every slice after "
                 + (f"{resumed:.2f} s" if resumed is not None else "NEVER"))

    def acks_during(self, t0):
        return sum(1 for p in self.producers for b in p.batches
                   if b.acked_at is not None and b.acked_at >= t0)

    def phase_delay(self):
        self.proxy.delay(self.args.delay_ms, 50)
        t0 = cl.now()
        time.sleep(self.args.phase)  # how long the fault lasts, not a synchronisation
        return f"{self.acks_during(t0)} writes acknowledged under {self.args.delay_ms:g} ms delay"

    def phase_reset(self):
        node = self.rng.choice(self.names)
        t0 = cl.now()
        resets = 0
        while cl.now() - t0 < self.args.phase:
            resets += self.proxy.reset(node=node)
            time.sleep(0.3)  # the reset period
        return f"{resets} connections of {node} reset, {self.acks_during(t0)} writes acknowledged"

    def phase_loss(self):
        before = self.proxy.stats["dropped"]
        self.proxy.drop(self.args.loss)
        t0 = cl.now()
        time.sleep(self.args.phase)  # how long the fault lasts, not a synchronisation
        return (f"{self.proxy.stats['dropped'] - before} connections reset by chunk loss, "
                f"{self.acks_during(t0)} writes acknowledged")

    def phase_blackhole(self):
        node = self.rng.choice(self.names)
        self.proxy.blackhole(node=node)
        t0 = cl.now()
        time.sleep(self.args.phase)  # how long the fault lasts, not a synchronisation
        return f"{node} black-holed, {self.acks_during(t0)} writes acknowledged"

    def phase_kill(self):
        self.proxy.delay(100, 20)
        n = len(self.cycles) + 1
        # Settled includes the rebalance that gives the restarted node its slices
        # back: under 100 ms each way a round of moves takes about 0.7 s, and on a
        # loaded machine the 300-odd slices took 30 s. Writes resuming is what the
        # phase checks; the cycle may wait up to 60 s for the rebalance.
        saved = self.args.settle_timeout
        self.args.settle_timeout = max(saved, 60.0)
        try:
            self.cycle(n)
        finally:
            self.args.settle_timeout = saved
        return "SIGKILL and restart under 100 ms delay"

    def chaos(self):
        t0 = cl.now()
        self.check_links()
        for phase in self.args.phases:
            self.log(f"{phase}: begins")
            what = getattr(self, f"phase_{phase}")()
            self.log(f"{phase}: {what}")
            self.proxy.heal()
            failed_before = len(self.failures)
            self.recover(phase, cl.now())
            if len(self.failures) > failed_before:
                # An unsettled cluster, or writes that stay unacknowledged: a producer
                # sends nothing new once its oldest unanswered write is a window
                # behind, so writes stuck on a few slices soon stop every producer and
                # a later phase would report "no ack anywhere" that it did not cause.
                self.log(f"{phase}: recovery failed; the phases after it are not run")
                break
        self.chaos_seconds = cl.now() - t0

    def verify(self):
        super().verify()
        s = self.proxy.stats
        self.log(f"proxy: {s['accepted']} connections, {s['resets']} reset on command, "
                 f"{s['dropped']} reset by loss, {s['unidentified']} with an unknown dialer")
        done = [r for r in self.recoveries if r[2] is not None]
        if done:
            self.log("writes on every slice after the heal: "
                     + ", ".join(f"{p} {r:.2f} s" for p, _, r in done))


@pytest.fixture(scope="module")
def args(request):
    """The arguments parse_args would return, from pytest's options: failover_checker's
    with one kill cycle, --hold 0.5 and --duration --timeout unless given."""
    config = request.config
    timeout = config.getoption("timeout") or 170.0
    phases = [p for p in config.getoption("phases").split(",") if p]
    bad = [p for p in phases if p not in PHASES]
    if bad:
        pytest.fail(f"options: unknown phases {bad}; known: {', '.join(PHASES)}",
                    pytrace=False)
    args = fc.args_from_config(config, cycles=phases.count("kill") or 1, hold=0.5,
                               duration=timeout)
    if "kill" not in phases:
        args.cycles = 0
    args.phases = phases
    args.phase = config.getoption("phase")
    args.delay_ms = config.getoption("delay_ms")
    args.loss = config.getoption("loss")
    args.timeout = timeout
    return args


def test_netfault(args):
    """Every fault phase heals into a settled cluster with writes on every slice;
    every acknowledged increment counted exactly once, no total going backwards."""
    log = cl.Log("netfault")
    if cl.websocket is None:
        pytest.skip("python3-websocket is missing (apt-get install python3-websocket)")
    if not os.access("/proc/net/tcp", os.R_OK):
        pytest.skip("/proc/net/tcp is not readable: the proxy cannot tell the links apart")
    tetherd = os.path.join(args.bin, "tetherd")
    assert os.access(tetherd, os.X_OK), f"no tetherd at {tetherd} (--bin)"

    with fc.time_bound(args.timeout):
        log(f"seed {args.seed}, phases {','.join(args.phases)} of {args.phase:g} s, "
            f"{args.producers} producers, {args.keys} keys")
        base = tempfile.mkdtemp(prefix="tether-chaos-netfault-")
        opts = dict(fc.CLUSTER_OPTIONS)
        holder = {}

        def pids():
            c = holder.get("c")
            out = {}
            for n in (c.nodes if c else []):
                pid = c.pid(n)
                if pid:
                    out[pid] = n
            return out
        proxy = netproxy.NetProxy(pids=pids, seed=random.Random(args.seed).random(),
                                  log=log)

        def body():
            with tc.LocalCluster(tetherd, base, 0, opts, ready_timeout=30, log=log,
                                 cluster_front=proxy.front) as c:
                holder["c"] = c
                c.up(NODES)
                log("fronts: " + ", ".join(f"{n} {p} -> {t}"
                                           for n, (p, t) in proxy.fronts().items()))
                holder["checker"] = checker = NetChecker(c, args, log, proxy)
                return fc.run_checker(checker, before_drain=proxy.heal)
        code = fc.run_guarded(body, cleanup=proxy.close)
    code = fc.report(holder.get("checker"), code, base, args.keep)
    fc.assert_passed(holder.get("checker"), code)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-s", *sys.argv[1:]]))
