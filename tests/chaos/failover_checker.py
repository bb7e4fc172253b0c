#!/usr/bin/python3
"""Failover checker: acknowledged counter increments survive primaries killed with
SIGKILL, exactly once, and no observed total ever goes backwards.

A local cluster of three tetherd processes (tools/tether_cluster.py, free loopback
ports, replication-factor 3, 1 s windows) takes counter increments from N producers
(WebSocket, docs/protocol.md), each with its own producer id, consecutive sequences,
a bounded window of unanswered writes, resending a write unchanged after UNAVAILABLE
or a lost connection, on any node it can reach. Every write carries increments of
known integer values to K keys chosen so that every node leads some of them.

Meanwhile the chaos loop, for --cycles cycles:
  1. picks a victim: the node leading the most slices, or the primary of a random
     watched key (--victim; "mixed" alternates);
  2. kills it with SIGKILL and at once writes one increment to a key in a slice the
     victim led, through a surviving node, retrying on UNAVAILABLE: the time from
     SIGKILL to that write's ack is the failover time;
  3. restarts the victim under the same name (LocalCluster.restart) and waits until
     the cluster has settled (every node up and connected in every node's view, one
     directory version everywhere, no pending moves, every slice led by a running
     node) and every producer has been acknowledged again; then writes go on
     undisturbed for --hold seconds.
A poller reads the totals of the watched keys through /v1/series on every running
node, one request at a time, and a subscriber follows them through window updates.

At the end (all nodes back, every write answered) the checker asserts:
  - every write was acknowledged (none rejected, none left without an answer);
  - per key, every node reports total == sum of the acknowledged increments:
    nothing acknowledged is lost, no retried write is counted twice;
  - no total seen by the poller or the subscriber ever decreased;
  - writes to the victim's slices were acknowledged again within --failover-timeout
    of every SIGKILL, before the victim came back (a failover happened);
  - all --cycles cycles ran within --duration.
It prints the failover times (p50 and max) and the other figures; its one case,
test_failover, passes if everything held and fails with the failed checks if not.

With --starve, every cycle also starves one of the surviving nodes of CPU from just
before the kill until 2 s after the victim is back: it is stopped (SIGSTOP) for 50-700 ms and
let run (SIGCONT) for 50-200 ms, in turn, so that it answers late, sometimes past the
suspicion timeout, while it holds the only other replica of the victim's slices and
one of the two directory votes left. The starvation ends before the cycle waits for
the cluster to settle: the same checks must hold (nothing acknowledged lost or
doubled, no total going backwards) and every producer must be acknowledged again once
the load is gone. A failover within --failover-timeout is not required in these
cycles (the starved node's vote and replica are needed for it); it is reported.

Usage (the options are pytest options, tests/conftest.py; -s shows the figures as
they come, a failure shows them anyway):
  python3 -B -m pytest -c tests/pytest.ini -s tests/chaos/failover_checker.py --bin build/bin
  tests/chaos/failover_checker.py                 # the same through pytest (-s); CI: 20 cycles within 2 minutes
  tests/chaos/failover_checker.py --soak          # 300 cycles within 30 minutes
  tests/chaos/failover_checker.py --cycles 50 --duration 300 --keys 96 --producers 8
  tests/chaos/failover_checker.py --starve --cycles 6   # a survivor starved of CPU (ctest -C starve)
"""
import argparse
import collections
import contextlib
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import chaoslib as cl  # noqa: E402
import tether_cluster as tc  # noqa: E402

METRIC = "chaos_failover_total"
NODES = 3
# The nodes' options of the checkers' clusters (netfault_test.py uses them too).
CLUSTER_OPTIONS = {"replication-factor": 3, "window-ms": 1000, "lateness-ms": 10000,
                   "shards": 2}


class TimeBound(Exception):
    pass


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Kill primaries with SIGKILL in a loop under counter writes; check "
                    "that every acknowledged increment is counted exactly once and that "
                    "no observed total decreases. Exit 0 pass, 1 fail.")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"),
                    help="directory with tetherd (default build/bin)")
    ap.add_argument("--cycles", type=int, help="kill/restart cycles (default 20, soak 300)")
    ap.add_argument("--duration", type=float,
                    help="bound of the chaos phase in seconds (default 120, soak 1800); "
                         "the whole run is bounded by this plus 150 s")
    ap.add_argument("--soak", action="store_true",
                    help="long run: 300 cycles within 30 minutes unless given")
    ap.add_argument("--keys", type=int, default=48, help="counter keys (default 48)")
    ap.add_argument("--producers", type=int, default=4, help="producers (default 4)")
    ap.add_argument("--window", type=int, default=8,
                    help="sequence span of unanswered writes per producer (default 8)")
    ap.add_argument("--batch", type=int, default=6, help="samples per write (default 6)")
    ap.add_argument("--interval", type=float, default=0.01,
                    help="seconds between writes of one producer (default 0.01)")
    ap.add_argument("--watch", type=int, default=6,
                    help="keys the poller and the subscriber follow (default 6)")
    ap.add_argument("--victim", choices=("mixed", "most", "key"), default="mixed",
                    help="most: the node leading the most slices; key: the primary of a "
                         "random watched key; mixed: alternate (default)")
    ap.add_argument("--hold", type=float, default=1.0,
                    help="seconds of undisturbed writes after each cycle settled, before "
                         "the next kill (default 1)")
    ap.add_argument("--failover-timeout", type=float, default=5.0,
                    help="seconds after SIGKILL within which a write to the victim's "
                         "slices must be acknowledged; otherwise the cycle counts as "
                         "no failover and the victim is restarted anyway (default 5)")
    ap.add_argument("--allow-no-failover", type=int, default=0,
                    help="cycles without a failover within --failover-timeout that are "
                         "reported but tolerated (default 0); the exactly-once and "
                         "monotonic checks stay strict")
    ap.add_argument("--settle-timeout", type=float, default=20.0,
                    help="bound of each wait for the cluster to settle (default 20)")
    ap.add_argument("--drain-timeout", type=float, default=30.0,
                    help="bound of the wait for every write to be answered (default 30)")
    ap.add_argument("--starve", action="store_true",
                    help="starve a surviving node of CPU (SIGSTOP/SIGCONT bursts) from the "
                         "kill until the victim is back, in every cycle")
    ap.add_argument("--seed", type=int, help="random seed (default: from the clock)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the cluster directory (it is kept anyway on failure)")
    return finish_args(ap.parse_args(argv), ap.error)


# The options of parse_args, also pytest options (tests/conftest.py); those whose
# default is None there get the default here.
OPTIONS = ("cycles", "duration", "soak", "keys", "producers", "window", "batch",
           "interval", "watch", "victim", "hold", "failover_timeout",
           "allow_no_failover", "settle_timeout", "drain_timeout", "starve", "seed",
           "keep")
OPTION_DEFAULTS = {"watch": 6, "hold": 1.0, "settle_timeout": 20.0}


def args_from_config(config, **defaults):
    """The arguments parse_args would return, from pytest's options (tests/conftest.py);
    `defaults` replace the defaults of options not given (netfault_test.py's). --bin
    defaults to build/bin. A bad combination fails the test at setup."""
    import pytest
    args = argparse.Namespace(
        bin=config.getoption("bin") or os.path.join(REPO, "build", "bin"))
    for name in OPTIONS:
        value = config.getoption(name)
        if value is None:
            value = defaults.get(name, OPTION_DEFAULTS.get(name))
        setattr(args, name, value)

    def error(msg):
        pytest.fail(f"options: {msg}", pytrace=False)
    return finish_args(args, error)


def finish_args(args, error):
    """Defaults that depend on other options, and the checks of the options' values
    (error(msg) for a bad one)."""
    if args.cycles is None:
        args.cycles = 300 if args.soak else 20
    if args.duration is None:
        args.duration = 1800.0 if args.soak else 120.0
    if args.seed is None:
        args.seed = int(time.time() * 1000) % 1_000_000
    for name in ("cycles", "keys", "producers", "window", "batch", "watch"):
        if getattr(args, name) < 1:
            error(f"--{name} must be at least 1")
    if args.batch > args.keys:
        error("--batch cannot exceed --keys (one sample per key and write)")
    if args.window > 64:
        error("--window above 64 would exceed the default max-inflight-batches")
    return args


STARVE_AFTER_RESTART_S = 2.0  # starvation goes on this long after the restart


class Starver(threading.Thread):
    """Starves one node of CPU until `end()`: SIGSTOP for 50-700 ms, SIGCONT for
    50-200 ms, in turn. Always leaves the node running (SIGCONT) when it ends."""

    def __init__(self, c, name, rng, log):
        super().__init__(daemon=True, name=f"starve-{name}")
        self.c, self.node, self.rng, self.log = c, name, rng, log
        self.ending = threading.Event()
        self.stopped_s = 0.0
        self.bursts = 0

    def _signal(self, sig):
        try:
            self.c.kill(self.node, sig)
            return True
        except tc.ClusterError:
            return False

    def run(self):
        try:
            while not self.ending.is_set():
                stop, go = self.rng.uniform(0.05, 0.7), self.rng.uniform(0.05, 0.2)
                if not self._signal(signal.SIGSTOP):
                    return
                t0 = cl.now()
                self.ending.wait(stop)
                self._signal(signal.SIGCONT)
                self.stopped_s += cl.now() - t0
                self.bursts += 1
                self.ending.wait(go)
        finally:
            self._signal(signal.SIGCONT)

    def end(self):
        self.ending.set()
        self.join(5)
        self._signal(signal.SIGCONT)


class Checker:
    def __init__(self, c, args, log):
        self.c = c
        self.args = args
        self.log = log
        self.rng = random.Random(args.seed)
        self.names = list(c.nodes)
        self.live = set(self.names)  # nodes that should be running
        self.failures = []
        self.notes = []
        self.cycles = []
        self.producers = []
        self.probes = []
        self.keys = {i: cl.key_text(METRIC, i) for i in range(args.keys)}
        self.slice_of = {}
        self.watched = []

    # -- helpers --

    def fail(self, msg):
        self.failures.append(msg)
        self.log("FAIL: " + msg)

    def live_servers(self):
        return [self.c.server(n) for n in self.names if n in self.live]

    def directory(self):
        for n in self.names:
            if n in self.live:
                t = cl.http_json(self.c.server(n), "/v1/directory", timeout=3)
                if t is not None:
                    return t
        return None

    def wait_settled(self, what):
        took, reason = cl.wait_until(
            lambda: cl.unsettled({n: self.c.server(n) for n in self.names}, self.live),
            self.args.settle_timeout)
        if took is None:
            self.fail(f"{what}: the cluster did not settle within "
                      f"{self.args.settle_timeout:g} s ({reason})")
        return took

    def wait_progress(self, since, what):
        """Every producer has had an ack after `since`."""
        deadline = cl.now() + self.args.settle_timeout
        while cl.now() < deadline:
            slow = [p.name for p in self.producers
                    if p.last_ack is None or p.last_ack <= since]
            if not slow:
                return True
            time.sleep(0.02)
        self.fail(f"{what}: no ack within {self.args.settle_timeout:g} s for "
                  + ", ".join(slow))
        slices = set()
        for p in self.producers:
            e = getattr(p, "last_error", None)
            if e is not None and p.name in slow:
                self.log(f"  {p.name}: last error {e[2]} from {e[1]} "
                         f"{cl.now() - e[0]:.1f} s ago: {e[3]}")
                m = re.search(r"slices? ([0-9][0-9,]*)", e[3])
                if m:
                    slices.update(int(x) for x in m.group(1).split(",") if x)
        # How each node sees those slices: table entry and its own replica.
        for n in self.names:
            if n not in self.live:
                continue
            t = cl.http_json(self.c.server(n), "/v1/directory", timeout=3)
            if t is None:
                self.log(f"  {n}: no /v1/directory answer")
                continue
            for sl in sorted(slices)[:3]:
                e = t["slices"][sl] if sl < len(t.get("slices", [])) else None
                self.log(f"  {n} (table v{t.get('version')}): slice {sl} = {e}")
            if t.get("pending_moves") or t.get("last_move_error"):
                self.log(f"  {n}: pending moves {t.get('pending_moves')}, last move "
                         f"error {t.get('last_move_error')!r}")
        return False

    # -- phases --

    def setup(self):
        t = self.directory()
        if t is None:
            raise cl.ConnLost("no node answers /v1/directory")
        primary = {s["slice"]: s["primary"] for s in t["slices"]}
        server = self.c.server(self.names[0])
        for i, key in self.keys.items():
            w = cl.http_json(server, f"/v1/where?key={cl.quote_key(key)}", timeout=3)
            if w is None:
                raise RuntimeError(f"/v1/where does not answer for {key}")
            if w.get("key") != key:
                raise RuntimeError(f"{key} is not canonical: the node says {w.get('key')}")
            self.slice_of[i] = w["slice"]
        by_node = collections.defaultdict(list)
        for i in self.keys:
            by_node[primary[self.slice_of[i]]].append(i)
        missing = [n for n in self.names if not by_node.get(n)]
        if missing:
            raise RuntimeError(f"no key is led by {missing}; use more --keys")
        # Watched keys: round robin over the nodes, so every node leads some.
        rr = [list(by_node[n]) for n in self.names]
        while len(self.watched) < min(self.args.watch, len(self.keys)):
            for lst in rr:
                if lst and len(self.watched) < self.args.watch:
                    self.watched.append(lst.pop(0))
        self.log(f"{len(self.keys)} keys in {len(set(self.slice_of.values()))} slices, led "
                 + ", ".join(f"{n}: {len(by_node[n])}" for n in self.names)
                 + f"; watching {[self.keys[i] for i in self.watched]}")

    def start_writers(self):
        a = self.args
        run = f"{a.seed}"
        for p in range(a.producers):
            prng = random.Random(a.seed * 1000 + p)

            def items(seq, prng=prng):
                return [(k, prng.randint(1, 9)) for k in prng.sample(range(a.keys), a.batch)]
            pr = cl.Producer(f"producer-{p}", f"chaos-failover-{run}-p{p}", METRIC,
                             self.live_servers, items, window=a.window,
                             interval=a.interval, backoff=0.05, log=self.log)
            pr.preferred = self.c.server(self.names[p % len(self.names)])
            self.producers.append(pr)
            pr.start()
        watched = [self.keys[i] for i in self.watched]
        self.poller = cl.Poller(self.live_servers, watched)
        self.poller.start()
        self.subscriber = cl.Subscriber(self.live_servers, watched,
                                        f"chaos-failover-{run}-watch")
        self.subscriber.start()
        self.wait_progress(0.0, "start")

    def last_acks(self, writers, i, n=4):
        """The last `n` acknowledged writes to key `i`, each with its time from the
        latest SIGKILL before its ack, the node whose gateway acknowledged it (and
        whether as a duplicate), and where it was sent: what a lost increment's
        history needs to be traced in the node logs."""
        kills = sorted(r["t_kill"] for r in self.cycles if r.get("t_kill") is not None)
        node = {}
        for member in getattr(self, "names", ()):
            node[self.c.server(member)] = member
        acked = sorted(((b.acked_at, p.name, b) for p in writers for b in p.batches
                        if b.ack is not None and any(k == i for k, _ in b.items)),
                       key=lambda x: x[0])
        out = []
        for at, name, b in acked[-n:]:
            kill = max((t for t in kills if t <= at), default=None)

            def rel(t):
                return f"{t - kill:+.3f} s" if kill is not None else f"{t:.3f}"

            value = sum(v for k, v in b.items if k == i)
            sends = ", ".join(f"{node.get(server, server)} at {rel(t)}"
                              for t, server in b.deliveries)
            answers = ", ".join(f"{what} from {node.get(server, server)} at {rel(t)}"
                                for t, server, what in b.replies)
            dup = " as a duplicate" if b.ack.get("duplicate") else ""
            out.append(f"    {name} sequence {b.seq} (+{value:g}): acked by "
                       f"{node.get(b.acked_via, b.acked_via)} at "
                       f"{rel(at)}{' from the SIGKILL' if kill is not None else ''}{dup}; "
                       f"sent to {sends}; answers: {answers}")
        return out

    def pick_victim(self, cycle, table):
        mode = self.args.victim
        if mode == "mixed":
            mode = "most" if cycle % 2 == 0 else "key"
        counts = collections.Counter(s["primary"] for s in table["slices"])
        primary_of = {s["slice"]: s["primary"] for s in table["slices"]}
        hot = {primary_of[self.slice_of[i]] for i in self.keys}
        if mode == "most" and hot:
            # The node leading the most slices among those leading a key's slice
            # (placement weighs slices by load, so the busiest node by slice count
            # may lead none of the written keys).
            best = max(counts[n] for n in self.names if n in hot)
            victim = self.rng.choice([n for n in self.names
                                      if n in hot and counts[n] == best])
            led = {s["slice"] for s in table["slices"] if s["primary"] == victim}
            cands = [i for i in self.keys if self.slice_of[i] in led]
            key = self.rng.choice(cands) if cands else None
        else:
            key = self.rng.choice(self.watched)
            primary = {s["slice"]: s["primary"] for s in table["slices"]}
            victim = primary[self.slice_of[key]]
            led = {s["slice"] for s in table["slices"] if s["primary"] == victim}
        return mode, victim, led, key

    def cycle(self, n):
        a = self.args
        table = self.directory()
        if table is None:
            self.fail(f"cycle {n}: no node answers /v1/directory")
            return False
        mode, victim, led, key = self.pick_victim(n, table)
        if key is None:
            self.fail(f"cycle {n}: {victim} leads no slice of the {len(self.keys)} keys")
            return False
        rec = {"cycle": n, "victim": victim, "mode": mode, "slices": len(led),
               "key": key, "slice": self.slice_of[key], "led": led,
               "epoch": next(s["epoch"] for s in table["slices"]
                             if s["slice"] == self.slice_of[key]),
               "failover": None, "resumed": None}
        probe = cl.QueueProducer(f"probe-{n}", f"chaos-failover-{a.seed}-probe{n}", METRIC,
                                 self.live_servers, window=1, backoff=0.01,
                                 reply_timeout=a.failover_timeout + 10, log=self.log)
        self.probes.append(probe)
        self.live.discard(victim)
        probe.start()
        starver = None
        if a.starve:
            starved = self.rng.choice(sorted(self.live))
            starver = Starver(self.c, starved, random.Random(self.rng.random()), self.log)
            starver.start()
        t_kill = cl.now()
        try:
            self.c.kill(victim, signal.SIGKILL)
        except tc.ClusterError as e:
            if starver is not None:
                starver.end()
            self.fail(f"cycle {n}: killing {victim} failed: {e}")
            return False
        rec["t_kill"] = t_kill
        b = probe.submit([(key, self.rng.randint(1, 9))])
        if b is not None:
            b.done.wait(max(0.0, t_kill + a.failover_timeout - cl.now()))
        if b is not None and b.ack is not None:
            rec["failover"] = b.acked_at - t_kill
        t_restart = cl.now()
        try:
            self.c.restart(victim)
            rec["restart"] = cl.now() - t_restart
        except tc.ClusterError as e:
            if starver is not None:
                starver.end()
            self.fail(f"cycle {n}: restarting {victim} failed: {e}")
            return False
        finally:
            if starver is not None:
                # Starved while the victim rejoins and is seeded again; then the load
                # goes, and from here on everything must come back.
                if self.c.alive(victim):
                    time.sleep(STARVE_AFTER_RESTART_S)
                starver.end()
                rec["starved"] = (starver.node, starver.bursts, starver.stopped_s)
        self.live.add(victim)
        if rec["failover"] is None:
            if b is not None:
                b.done.wait(a.settle_timeout)
            if b is not None and b.ack is not None:
                rec["resumed"] = b.acked_at - t_kill
        rec["settle"] = self.wait_settled(f"cycle {n}")
        for i, p in enumerate(self.producers):  # spread the producers again
            p.move_to(self.c.server(self.names[i % len(self.names)]))
        self.wait_progress(cl.now(), f"cycle {n}")
        time.sleep(self.args.hold)  # writes go on undisturbed: load for the next kill
        if rec["failover"] is not None:
            how = f"first ack to slice {rec['slice']} {rec['failover'] * 1000:.0f} ms after SIGKILL"
        elif rec["resumed"] is not None:
            how = (f"NO failover: writes to slice {rec['slice']} acknowledged only after the "
                   f"restart, {rec['resumed']:.2f} s after SIGKILL")
        elif b is not None and b.final is not None:
            how = (f"NO failover: the write to slice {rec['slice']} failed for good with "
                   f"{b.final} {b.replies[-1][0] - t_kill:.2f} s after SIGKILL")
        else:
            how = f"NO failover: writes to slice {rec['slice']} not acknowledged at all"
        settle = f"{rec['settle']:.2f} s" if rec["settle"] is not None else "no"
        starved = ""
        if "starved" in rec:
            node, bursts, stopped = rec["starved"]
            starved = f"; {node} starved ({bursts} stops, {stopped:.1f} s stopped)"
        self.log(f"cycle {n}: SIGKILL {victim} ({mode}, led {len(led)} slices); {how}; "
                 f"restarted in {rec['restart']:.2f} s; settled {settle}{starved}")
        self.cycles.append(rec)
        return True

    def chaos(self):
        t0 = cl.now()
        for n in range(1, self.args.cycles + 1):
            if cl.now() - t0 >= self.args.duration:
                break
            if not self.cycle(n):
                break
        self.chaos_seconds = cl.now() - t0

    def drain(self):
        for n in self.names:
            if not self.c.alive(n):
                self.log(f"{n} is not running at the end; restarting it")
                self.c.restart(n)
            self.live.add(n)
        self.wait_settled("end")
        writers = self.producers + self.probes
        for p in writers:
            p.finish()
        deadline = cl.now() + self.args.drain_timeout
        for p in writers:
            p.join(max(0.0, deadline - cl.now()))
        for p in writers:
            p.stop()
        for p in writers:
            p.join(2)
        self.poller.stop()
        self.subscriber.stop()
        self.poller.join(5)
        self.subscriber.join(5)

    # -- verdict --

    def verify(self):
        a = self.args
        writers = self.producers + self.probes
        for p in writers + [self.poller, self.subscriber]:
            if p.crash:
                self.fail(f"{p.name} crashed:\n{p.crash}")
        outcomes = collections.Counter()
        unknown_keys = set()
        late = 0
        for p in writers:
            for b in p.batches:
                outcomes[b.outcome] += 1
                late += b.late
                if b.outcome in ("unknown", "unanswered"):
                    unknown_keys.update(k for k, _ in b.items)
            if p.protocol_errors:
                self.fail(f"{p.name}: errors answering no write: {p.protocol_errors[:3]}")
        if outcomes["unanswered"]:
            self.fail(f"{outcomes['unanswered']} writes still unanswered "
                      f"{a.drain_timeout:g} s after the end of the chaos")
        if outcomes["rejected"] or outcomes["unknown"]:
            codes = collections.Counter(b.final for p in writers for b in p.batches
                                        if b.final)
            self.fail(f"{outcomes['rejected'] + outcomes['unknown']} writes failed for "
                      f"good: {dict(codes)} (only UNAVAILABLE may answer a write here)")
        if late:
            self.fail(f"acks reported {late} late samples: the accounting cannot tell "
                      "which were dropped")
        exp = cl.expected_totals(writers, self.keys)
        # Final totals, through every node.
        lost, double, disagree = [], [], []
        exact = 0
        killed_slices = set()
        for r in self.cycles:
            killed_slices |= r["led"]
        for i, key in self.keys.items():
            seen = {}
            for n in self.names:
                ans = None
                for _ in range(3):
                    ans = cl.series(self.c.server(n), key, timeout=3)
                    if ans is not None:
                        break
                    time.sleep(0.2)
                seen[n] = cl.total_of(ans) if ans is not None else None
            vals = set(seen.values())
            if len(vals) != 1 or None in vals:
                disagree.append((key, seen))
                continue
            total = vals.pop()
            if i in unknown_keys:
                continue  # the outcome of some write to it is unknown; reported above
            if total < exp[key]:
                lost.append((key, exp[key], total, self.slice_of[i] in killed_slices))
            elif total > exp[key]:
                double.append((key, exp[key], total))
            else:
                exact += 1
        for key, seen in disagree[:5]:
            self.fail(f"{key}: the nodes report different totals {seen}")
        if lost:
            amount = sum(e - t for _, e, t, _ in lost)
            acked = sum(exp.values())
            in_killed = sum(1 for x in lost if x[3])
            self.fail(f"LOST acknowledged increments on {len(lost)} of {len(self.keys)} keys: "
                      f"{amount:.0f} of {acked:.0f} acknowledged ({100 * amount / acked:.1f} %); "
                      f"{in_killed} of these keys are in slices a killed node led")
            index = {key: i for i, key in self.keys.items()}
            for key, e, t, _ in lost[:5]:
                self.log(f"  {key}: acknowledged {e:.0f}, total {t:.0f} "
                         f"(slice {self.slice_of[index[key]]}); its last acknowledged writes:")
                for line in self.last_acks(writers, index[key]):
                    self.log(line)
        if double:
            self.fail(f"DOUBLE-COUNTED increments on {len(double)} keys")
            for key, e, t in double[:5]:
                self.log(f"  {key}: acknowledged {e:.0f}, total {t:.0f}")
        # Monotonic totals.
        obs = self.poller.observations
        dec = cl.decreases(obs, key=lambda o: o[3], total=lambda o: o[4])
        if dec:
            self.fail(f"the poller saw {len(dec)} decreasing totals in {len(obs)} reads")
            for prev, cur in dec[:5]:
                self.log(f"  {cur[3]}: {prev[4]:.0f} via {prev[2]} (served by {prev[5]}, "
                         f"epoch {prev[6]}) then {cur[4]:.0f} via {cur[2]} (served by "
                         f"{cur[5]}, epoch {cur[6]}) {cur[0] - prev[1]:.2f} s later")
        ups = self.subscriber.updates
        sdec = cl.decreases(ups, key=lambda u: u[2], total=lambda u: u[3])
        if sdec:
            self.fail(f"the subscriber saw {len(sdec)} decreasing totals in {len(ups)} "
                      "series updates")
            for prev, cur in sdec[:3]:
                self.log(f"  {cur[2]}: {prev[3]:.0f} (window ending {prev[4]}) via {prev[1]} "
                         f"then {cur[3]:.0f} (window ending {cur[4]}) via {cur[1]}, "
                         f"{cur[0] - prev[0]:.2f} s later")
        # Failover.
        fo = [r["failover"] for r in self.cycles if r["failover"] is not None]
        none = [r for r in self.cycles if r["failover"] is None]
        if none:
            after = [r["resumed"] for r in none if r["resumed"] is not None]
            # Under --starve a failover needs the starved node: not required.
            allowed = len(self.cycles) if a.starve else a.allow_no_failover
            report = self.fail if len(none) > allowed else self.log
            report(f"NO FAILOVER in {len(none)} of {len(self.cycles)} cycles: no write "
                      f"to a slice of the killed node was acknowledged within "
                      f"{a.failover_timeout:g} s; "
                      + (f"{len(after)} resumed only after the restart" if after else
                         "none resumed"))
        if len(self.cycles) < a.cycles:
            self.fail(f"only {len(self.cycles)} of {a.cycles} cycles ran within "
                      f"{a.duration:g} s")
        # Numbers.
        acks = sum(p.acks for p in writers)
        dup = sum(p.duplicate_acks for p in writers)
        self.log(f"{len(self.cycles)} cycles in {self.chaos_seconds:.1f} s; "
                 f"{acks} writes acknowledged ({dup} as duplicates), "
                 f"{sum(p.retries for p in writers)} resent after UNAVAILABLE, "
                 f"{sum(p.reconnects for p in writers) - len(writers)} reconnects, "
                 f"{sum(p.reply_timeouts for p in writers)} reply timeouts; "
                 f"outcomes {dict(outcomes)}")
        errs = collections.Counter(e[2].get("code", "?") for e in self.subscriber.errors)
        self.log(f"poller: {len(obs)} reads ({self.poller.failed_reads} failed); "
                 f"subscriber: {len(ups)} series updates over "
                 f"{self.subscriber.subscriptions} subscriptions"
                 + (f", subscribe errors {dict(errs)}" if errs else ""))
        if fo:
            self.log(f"failover (SIGKILL -> first ack to a slice the killed node led): "
                     f"p50 {cl.percentile(fo, 0.5) * 1000:.0f} ms, max {max(fo) * 1000:.0f} ms "
                     f"over {len(fo)} cycles")
        else:
            self.log("failover: no cycle had one")
        self.log(f"totals: {exact} of {len(self.keys)} keys exact, {len(lost)} lost "
                 f"increments, {len(double)} counted some twice, {len(disagree)} differ "
                 f"between nodes")


@pytest.fixture(scope="module")
def args(request):
    """parse_args' arguments from pytest's options (tests/conftest.py)."""
    return args_from_config(request.config)


def test_failover(args):
    """--cycles SIGKILL/restart cycles within --duration: every acknowledged increment
    counted exactly once, no observed total going backwards, every write answered, a
    failover within --failover-timeout in all but --allow-no-failover cycles (not
    required with --starve)."""
    log = cl.Log("failover")
    assert cl.websocket is not None, \
        "python3-websocket is missing (apt-get install python3-websocket)"
    tetherd = os.path.join(args.bin, "tetherd")
    assert os.access(tetherd, os.X_OK), f"no tetherd at {tetherd} (--bin)"
    with time_bound(args.duration + 150):
        log(f"seed {args.seed}, {args.cycles} cycles within {args.duration:g} s, "
            f"{args.producers} producers, {args.keys} keys, victim {args.victim}")
        base = tempfile.mkdtemp(prefix="tether-chaos-failover-")
        opts = dict(CLUSTER_OPTIONS)
        holder = {}

        def body():
            with tc.LocalCluster(tetherd, base, 0, opts, ready_timeout=30, log=log) as c:
                c.up(NODES)
                holder["checker"] = checker = Checker(c, args, log)
                return run_checker(checker)
        code = run_guarded(body)
    code = report(holder.get("checker"), code, base, args.keep)
    assert_passed(holder.get("checker"), code)


def run_checker(checker, before_drain=None):
    """Runs a checker's phases (setup, writers, chaos, drain, verify), stopping its
    clients whatever happens; 0 if every check held, 1 if not."""
    try:
        checker.setup()
        checker.start_writers()
        checker.chaos()
        if before_drain is not None:
            before_drain()
        checker.drain()
        checker.verify()
    finally:
        for p in checker.producers + checker.probes:
            p.stop()
        for t in ("poller", "subscriber"):
            if hasattr(checker, t):
                getattr(checker, t).stop()
    return 1 if checker.failures else 0


@contextlib.contextmanager
def time_bound(seconds):
    """Raises TimeBound in the main thread once `seconds` have passed inside the
    block (SIGALRM); the previous handler is put back afterwards."""
    def on_alarm(signum, frame):
        raise TimeBound(f"the run exceeded its bound of {seconds:.0f} s")
    saved = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, saved)


def run_guarded(body, cleanup=None):
    """Calls body() -> exit code; a run that ends otherwise (its time bound, an
    unusable cluster, Ctrl-C, SIGTERM, a bug) says how and returns 1, 130 or the exit
    code. Ends the alarm and calls cleanup() in any case."""
    code = 1
    try:
        code = body()
    except TimeBound as e:
        print(f"FAIL: {e}", flush=True)
    except tc.ClusterError as e:
        print(f"FAIL: cluster: {e}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        code = 130
    except SystemExit as e:  # SIGTERM, raised by LocalCluster's handler
        print("terminated", flush=True)
        code = e.code
    except Exception as e:  # a bug in the checker or an unusable cluster
        import traceback
        traceback.print_exc()
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        signal.alarm(0)
        if cleanup is not None:
            cleanup()
    return code


def assert_passed(checker, code):
    """The verdict as an assertion: the run ended normally (code 0) and no check
    failed. An interrupted run (130) is re-raised as KeyboardInterrupt."""
    __tracebackhide__ = True
    if code == 130:
        raise KeyboardInterrupt
    failures = checker.failures if checker is not None else []
    assert code == 0 and not failures, (
        f"{len(failures)} checks failed: " + "; ".join(f.splitlines()[0] for f in failures)
        if failures else f"the run did not complete (code {code}): see its output")


def report(checker, code, base, keep):
    """Prints the failed checks or PASS; removes the cluster directory of a passed run
    unless `keep`, else says where it is. Returns the exit code."""
    if checker is not None and checker.failures:
        code = 1
        print(f"FAIL: {len(checker.failures)} checks failed:", flush=True)
        for f in checker.failures:
            print("  - " + f.splitlines()[0], flush=True)
    elif code == 0:
        print("PASS", flush=True)
    if code == 0 and not keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"cluster directory (node logs) kept in {base}", flush=True)
    return code


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-s", *sys.argv[1:]]))
