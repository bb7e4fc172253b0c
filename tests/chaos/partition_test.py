#!/usr/bin/python3
"""Partition test: a primary cut off from the rest of the cluster acknowledges
nothing, the majority elects a new primary and goes on, and after healing every
node agrees on totals equal to what was acknowledged.

Topology (all created by the test, removed at the end, nothing in the host's own
network namespace):

    namespace <p>-cli: the test's clients, 10.231.1.100
    namespace <p>-hub: bridge bc (client network 10.231.1.0/24) and bridge bk
                       (cluster network 10.231.2.0/24)
    namespace <p>-n1..n3: tether-i, gateway on 10.231.1.1i:7480 (veth on bc),
                       node-to-node traffic on 10.231.2.1i:7490 (veth on bk)

The nodes' ports on bc are isolated bridge ports: over the client network a node
talks to the clients only, so node-to-node traffic exists only on bk. A partition
sets the victim's veth pair on bk down (both ends): the victim and the majority
cannot reach each other at all, while clients still reach every gateway.

Steps:
  1. start three tetherd (replication-factor 3, 1 s windows) inside the namespaces,
     with the option names tools/tether_cluster.py writes; wait until ready;
  2. pick the victim: the primary of a watched key; watch keys of slices it leads
     plus one key led by each other node; a majority writer (connected to the
     other nodes) and a minority writer (connected to the victim) write increments;
  3. partition the victim; a second minority writer connects to it afterwards;
     both minority writers keep writing (retrying UNAVAILABLE) to the victim's
     slices during the whole partition;
     CHECK the victim acknowledges none of the writes first sent to it during the
     partition;
     CHECK the majority moves every watched slice of the victim to another node
     with a higher epoch and acknowledges writes to those slices;
     the partition lasts --hold seconds after that (two nodes believing they lead);
  4. heal; wait until the cluster settled; every writer resends whatever is still
     unanswered (protocol section 6) until acknowledged;
     CHECK every node's directory agrees on the watched slices (the victim stepped
     down) and every node reports, for every watched key, the sum of the
     acknowledged increments (no divergence, nothing lost, nothing twice);
     where nodes offer a local read of their own replica (see README.md), each
     replica must hold that sum too;
  5. failover rounds: kill (SIGKILL) the node now leading the watched slices,
     wait for a new primary, write, compare totals, restart it; up to two rounds,
     so that the formerly isolated replica serves the watched slices if it can.
     CHECK the totals stay exact each time.

Minority writes carry the value 100000 per sample, majority writes 1..9, so a
mismatch shows how many minority samples it contains.

Needs root, `ip` with network namespaces, veth and bridges. When they are not
available the test is skipped and says why. One case, test_partition: it passes when
every CHECK held and fails with the failed ones.
Every process it starts runs in its own session and dies with the test (parent
death signal); Ctrl-C and SIGTERM stop the nodes and remove the namespaces.

Usage (options in tests/conftest.py: --watch 4, --hold 3, --election-timeout 15,
--settle-timeout 30, --drain-timeout 30, --timeout 240, --seed, --keep, --bin):
  sudo python3 -B -m pytest -c tests/pytest.ini tests/chaos/partition_test.py --bin build/bin
  sudo tests/chaos/partition_test.py --hold 10 --seed 7   # the same through pytest (-s)
"""
import argparse
import collections
import ctypes
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import chaoslib as cl  # noqa: E402
import tether_cluster as tc  # noqa: E402

SKIP = 77
METRIC = "chaos_partition_total"
MINORITY_VALUE = 100000
CLIENT_NET = "10.231.1"
CLUSTER_NET = "10.231.2"
GATEWAY_PORT = 7480
CLUSTER_PORT = 7490
CLONE_NEWNET = 0x40000000
PREFIX = "tchaos"


class Skip(Exception):
    pass


class TimeBound(Exception):
    pass


def run(*cmd, check=True, timeout=10):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


_libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    """Moves the calling thread (and the threads it starts later) into the network
    namespace at path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def pdeathsig():
    parent = os.getpid()

    def preexec():
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


# -- network namespaces -----------------------------------------------------------------


class Topology:
    """The namespaces, bridges and veth pairs of the module text."""

    def __init__(self, nodes, log):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.hub = f"{self.tag}-hub"
        self.cli = f"{self.tag}-cli"
        self.node_ns = [f"{self.tag}-n{i}" for i in range(1, nodes + 1)]
        self.created = []
        self.log = log
        self.home = None

    @staticmethod
    def remove_stale(log):
        """Deletes namespaces an earlier run of this test left behind (its process
        is gone, e.g. killed with SIGKILL)."""
        r = run("ip", "netns", "list", check=False)
        for line in r.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            m = re.fullmatch(PREFIX + r"(\d+)-(hub|cli|n\d+)", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                run("ip", "netns", "del", name, check=False)
                log(f"removed {name}, left behind by an earlier run")

    def add_ns(self, name):
        run("ip", "netns", "add", name)
        self.created.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")

    def create(self):
        self.add_ns(self.hub)
        for br in ("bc", "bk"):
            run("ip", "-n", self.hub, "link", "add", br, "type", "bridge")
            run("ip", "-n", self.hub, "link", "set", br, "up")
        for i, ns in enumerate(self.node_ns, start=1):
            self.add_ns(ns)
            for net, br, port, inner in ((CLIENT_NET, "bc", f"c{i}", "eth-c"),
                                         (CLUSTER_NET, "bk", f"k{i}", "eth-k")):
                run("ip", "-n", self.hub, "link", "add", port, "type", "veth", "peer",
                    "name", inner, "netns", ns)
                run("ip", "-n", self.hub, "link", "set", port, "master", br)
                if br == "bc":  # nodes reach clients, not each other, on bc
                    run("ip", "-n", self.hub, "link", "set", "dev", port, "type",
                        "bridge_slave", "isolated", "on")
                run("ip", "-n", self.hub, "link", "set", port, "up")
                run("ip", "-n", ns, "addr", "add", f"{net}.1{i}/24", "dev", inner)
                run("ip", "-n", ns, "link", "set", inner, "up")
        self.add_ns(self.cli)
        run("ip", "-n", self.hub, "link", "add", "cc", "type", "veth", "peer", "name",
            "eth-c", "netns", self.cli)
        run("ip", "-n", self.hub, "link", "set", "cc", "master", "bc")
        run("ip", "-n", self.hub, "link", "set", "cc", "up")
        run("ip", "-n", self.cli, "addr", "add", f"{CLIENT_NET}.100/24", "dev", "eth-c")
        run("ip", "-n", self.cli, "link", "set", "eth-c", "up")

    def enter_client(self):
        """The test's own threads talk from the client namespace from now on."""
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        setns(f"/run/netns/{self.cli}")

    def cut(self, i, up):
        state = "up" if up else "down"
        run("ip", "-n", self.hub, "link", "set", f"k{i}", state)
        run("ip", "-n", self.node_ns[i - 1], "link", "set", "eth-k", state)

    def destroy(self):
        if self.home is not None:
            if _libc.setns(self.home, CLONE_NEWNET) != 0:
                self.log("could not return to the original network namespace")
            os.close(self.home)
            self.home = None
        for ns in reversed(self.created):
            r = run("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                self.log(f"ip netns del {ns}: {r.stderr.strip()}")
        self.created = []


def preflight(log):
    """Raises Skip when namespaces, veth or bridges cannot be used here."""
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces)")
    if shutil.which("ip") is None:
        raise Skip("needs the `ip` command (iproute2)")
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        r = run("ip", "netns", "add", probe, check=False)
        if r.returncode != 0:
            raise Skip(f"cannot create a network namespace: {r.stderr.strip()}")
        for cmd in (("link", "add", "pb", "type", "bridge"),
                    ("link", "add", "pv", "type", "veth", "peer", "name", "pw"),
                    ("link", "set", "pv", "master", "pb"),
                    ("link", "set", "dev", "pv", "type", "bridge_slave", "isolated", "on")):
            r = run("ip", "-n", probe, *cmd, check=False)
            if r.returncode != 0:
                raise Skip(f"`ip {' '.join(cmd)}` fails in a namespace: {r.stderr.strip()}")
        try:
            fd = os.open(f"/run/netns/{probe}", os.O_RDONLY)
            os.close(fd)
        except OSError as e:
            raise Skip(f"cannot open /run/netns/{probe}: {e}")
    finally:
        run("ip", "netns", "del", probe, check=False)


# -- nodes ------------------------------------------------------------------------------


class NetNode:
    def __init__(self, i, ns, base, tetherd, members, options):
        self.i = i
        self.name = f"tether-{i}"
        self.ns = ns
        self.host = f"{CLIENT_NET}.1{i}"
        self.cluster_host = f"{CLUSTER_NET}.1{i}"
        self.server = f"{self.host}:{GATEWAY_PORT}"
        self.dir = os.path.join(base, self.name)
        self.conf = os.path.join(self.dir, "tetherd.conf")
        self.log_path = os.path.join(self.dir, "tetherd.log")
        self.data_dir = os.path.join(self.dir, "data")
        self.tetherd = tetherd
        self.proc = None
        os.makedirs(self.data_dir, exist_ok=True)
        seeds = [f"{CLUSTER_NET}.1{j}:{CLUSTER_PORT}" for j in members if j != i]
        # The option names tools/tether_cluster.py writes for a cluster member.
        lines = ["[tether]",
                 f"name={tc.caf_value(self.name)}",
                 f"host={tc.caf_value(self.host)}",
                 f"port={GATEWAY_PORT}",
                 f"cluster-host={tc.caf_value(self.cluster_host)}",
                 f"cluster-port={CLUSTER_PORT}",
                 f"seeds={tc.caf_value(seeds)}",
                 f"directory-members={tc.caf_value([f'tether-{j}' for j in members])}",
                 f"data-dir={tc.caf_value(self.data_dir)}",
                 "insecure=true"]  # no node-to-node TLS in this test
        lines += [f"{k}={tc.caf_value(v)}" for k, v in options.items()]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        with open(self.log_path, "a") as log:
            log.write(f"--- partition_test: starting {self.name} in {self.ns}\n")
            log.flush()
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, self.tetherd, f"--config-file={self.conf}"],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=pdeathsig())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=10):
        if not self.alive():
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def ready(self):
        status, body = cl.http_get(self.server, "/readyz", timeout=2)
        return status == 200

    def log_tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return "(no log)"


# -- the test ---------------------------------------------------------------------------


class PartitionTest:
    def __init__(self, args, log, base):
        self.args = args
        self.log = log
        self.base = base
        self.rng = random.Random(args.seed)
        self.failures = []
        self.notes = []
        self.nodes = {}
        self.writers = []
        self.topo = None
        self.keys = {}
        self.slice_of = {}
        self.checked = set()

    def fail(self, msg):
        self.failures.append(msg)
        self.log("FAIL: " + msg)

    def note(self, msg):
        self.notes.append(msg)
        self.log(msg)

    def servers(self):
        return {n.name: n.server for n in self.nodes.values()}

    def live(self):
        return {n.name for n in self.nodes.values() if n.alive()}

    def wait_ready(self, names, timeout):
        deadline = cl.now() + timeout
        for name in names:
            node = self.nodes[name]
            while not node.ready():
                if not node.alive():
                    raise RuntimeError(f"{name} exited; end of its log:\n{node.log_tail()}")
                if cl.now() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout:g} s; end of its "
                                       f"log:\n{node.log_tail()}")
                time.sleep(0.1)

    def settle(self, what, timeout=None):
        took, reason = cl.wait_until(lambda: cl.unsettled(self.servers(), self.live()),
                                     timeout or self.args.settle_timeout)
        if took is None:
            self.fail(f"{what}: the cluster did not settle ({reason})")
        return took

    def table(self, name):
        return cl.http_json(self.nodes[name].server, "/v1/directory", timeout=3)

    def totals(self, names, keys):
        """{key: {node: total or None}} through routed reads."""
        out = {}
        for k in keys:
            out[k] = {}
            for n in names:
                a = None
                for _ in range(3):
                    a = cl.series(self.nodes[n].server, self.keys[k], timeout=3)
                    if a is not None:
                        break
                    time.sleep(0.2)
                out[k][n] = cl.total_of(a) if a is not None else None
        return out

    def expected(self):
        return cl.expected_totals(self.writers, self.keys)

    def check_totals(self, what, names):
        exp = self.expected()
        bad = []
        for k, seen in self.totals(names, self.watched).items():
            e = exp[self.keys[k]]
            for n, t in seen.items():
                if t is None:
                    bad.append(f"{n} does not answer for {self.keys[k]}")
                elif t != e:
                    diff = t - e
                    extra = ""
                    if abs(diff) >= MINORITY_VALUE / 2:
                        extra = f", about {diff / MINORITY_VALUE:+.0f} minority samples"
                    bad.append(f"{n}: {self.keys[k]} = {t:.0f}, acknowledged {e:.0f} "
                               f"({'LOST' if diff < 0 else 'EXTRA'} {abs(diff):.0f}{extra})")
        if bad:
            self.fail(f"{what}: {len(bad)} of {len(names) * len(self.watched)} totals "
                      f"differ from the acknowledged sums; first: {bad[0]}")
            for line in bad[1:12]:
                self.log("  " + line)
        else:
            self.log(f"{what}: {', '.join(names)} report the acknowledged totals of all "
                     f"{len(self.watched)} watched keys")
        return not bad

    def check_local_replicas(self, what):
        """Each node's own replica of the watched keys, where the nodes can say."""
        exp = self.expected()
        supported = False
        for n, node in self.nodes.items():
            if not node.alive():
                continue
            for k in self.watched:
                a = cl.local_series(node.server, self.keys[k])
                if a is None:
                    continue
                supported = True
                if a.get("replica") in ("primary", "follower"):
                    t = cl.total_of(a)
                    if t != exp[self.keys[k]]:
                        self.fail(f"{what}: the {a['replica']} replica on {n} holds "
                                  f"{self.keys[k]} = {t:.0f}, acknowledged "
                                  f"{exp[self.keys[k]]:.0f}")
        if not supported:
            self.note(f"{what}: no node offers local replica reads "
                      "(/v1/series?key=K&local=true); replicas compared only through failovers")

    # -- steps --

    def start_cluster(self):
        a = self.args
        tetherd = os.path.join(a.bin, "tetherd")
        opts = {"replication-factor": 3, "window-ms": 1000, "lateness-ms": 10000,
                "shards": 2}
        known = tc.tetherd_options(tetherd)
        missing = sorted(o for o in list(opts) + ["cluster-host", "cluster-port", "seeds",
                                                   "directory-members", "data-dir"]
                         if o not in known)
        if missing:
            raise RuntimeError(f"{tetherd} does not declare {missing}")
        members = [1, 2, 3]
        for i in members:
            node = NetNode(i, self.topo.node_ns[i - 1], self.base, tetherd, members, opts)
            self.nodes[node.name] = node
        for node in self.nodes.values():
            node.start()
        self.wait_ready(list(self.nodes), 30)
        took = self.settle("start", 30)
        self.log("3 nodes ready in their namespaces"
                 + (f", settled after {took:.2f} s" if took is not None else ""))

    def choose_keys(self):
        first = next(iter(self.nodes.values()))
        t = self.table(first.name)
        if t is None:
            raise RuntimeError("no /v1/directory")
        self.epoch0 = {s["slice"]: s["epoch"] for s in t["slices"]}
        primary = {s["slice"]: s["primary"] for s in t["slices"]}
        by_node = collections.defaultdict(list)
        for i in range(400):
            key = cl.key_text(METRIC, i)
            w = cl.http_json(first.server, f"/v1/where?key={cl.quote_key(key)}", timeout=3)
            if w is None:
                raise RuntimeError(f"/v1/where does not answer for {key}")
            self.keys[i] = key
            self.slice_of[i] = w["slice"]
            by_node[primary[w["slice"]]].append(i)
            if i >= 30 and all(len(by_node[n]) >= self.args.watch for n in self.nodes):
                break
        self.victim = primary[self.slice_of[0]]
        self.minority_keys = by_node[self.victim][:self.args.watch]
        self.control_keys = [by_node[n][0] for n in self.nodes if n != self.victim]
        self.watched = self.minority_keys + self.control_keys
        self.watched_slices = {self.slice_of[k] for k in self.minority_keys}
        self.others = [n for n in self.nodes if n != self.victim]
        self.log(f"victim {self.victim} leads slices {sorted(self.watched_slices)} of "
                 f"{[self.keys[k] for k in self.minority_keys]}; control keys "
                 f"{[self.keys[k] for k in self.control_keys]}")

    def writer(self, name, servers, keys, value, interval, backoff):
        rng = random.Random(self.rng.random())

        def items(seq):
            return [(k, value if value else rng.randint(1, 9)) for k in keys]
        w = cl.Producer(name, f"chaos-partition-{self.args.seed}-{name}", METRIC, servers,
                        items, window=8, interval=interval, backoff=backoff,
                        reply_timeout=30, log=self.log)
        self.writers.append(w)
        w.start()
        return w

    def wait_acks(self, w, n, timeout, what):
        deadline = cl.now() + timeout
        while w.acks < n and cl.now() < deadline:
            time.sleep(0.02)
        if w.acks < n:
            self.fail(f"{what}: {w.name} has {w.acks} acks, expected {n} within {timeout:g} s")
            return False
        return True

    def partition(self):
        a = self.args
        victim = self.nodes[self.victim]
        major_servers = [self.nodes[n].server for n in self.others]
        self.major = self.writer("majority", lambda: major_servers, self.watched, 0,
                                 0.05, 0.05)
        self.minor1 = self.writer("minority-1", lambda: [victim.server],
                                  self.minority_keys, MINORITY_VALUE, 0.1, 0.2)
        ok = self.wait_acks(self.major, 5, 15, "before the partition")
        ok = self.wait_acks(self.minor1, 3, 15, "before the partition") and ok
        if not ok:
            raise RuntimeError("writes do not work before the partition")
        self.log(f"before the partition: majority {self.major.acks} acks, minority "
                 f"{self.minor1.acks} acks")

        # The cut takes a few commands; a write sent while they run may still reach
        # the followers, so "during the partition" starts once the link is down.
        t_cut = cl.now()
        self.topo.cut(victim.i, up=False)
        self.t_part = cl.now()
        self.log(f"partition: {self.victim}'s cluster link is down "
                 f"({(self.t_part - t_cut) * 1000:.0f} ms to cut)")
        self.minor2 = self.writer("minority-2", lambda: [victim.server],
                                  self.minority_keys, MINORITY_VALUE, 0.1, 0.2)

        # The majority: a new primary for every watched slice, and acks for them.
        seen = {}

        def elected():
            if "directory" not in seen:
                t = self.table(self.others[0])
                if t is None:
                    return "no directory from the majority"
                for s in t["slices"]:
                    if s["slice"] in self.watched_slices:
                        if s["primary"] == self.victim:
                            return f"slice {s['slice']} still led by {self.victim}"
                        if s["epoch"] <= self.epoch0[s["slice"]]:
                            return f"slice {s['slice']} moved without a new epoch"
                seen["directory"] = cl.now()
            acked = [b.acked_at for b in self.major.batches if b.ack is not None
                     and b.deliveries and b.deliveries[0][0] > self.t_part]
            if not acked:
                return "no majority write sent after the partition acknowledged yet"
            seen["ack"] = min(acked)
            return None
        took, reason = cl.wait_until(elected, a.election_timeout, 0.02)
        if took is None:
            self.fail(f"the majority did not take over {self.victim}'s slices within "
                      f"{a.election_timeout:g} s ({reason})")
            self.elected = False
            hold_until = cl.now()
        else:
            self.note(f"majority: new primaries for slices {sorted(self.watched_slices)} "
                      f"in its directory {(seen['directory'] - self.t_part) * 1000:.0f} ms "
                      f"after the partition began; first write sent after the partition "
                      f"acknowledged after {(seen['ack'] - self.t_part) * 1000:.0f} ms")
            self.elected = True
            hold_until = cl.now() + a.hold
        while cl.now() < hold_until:
            time.sleep(0.05)
        # What the victim believes at the end of the partition.
        t = self.table(self.victim)
        if t is not None:
            lead = [s["slice"] for s in t["slices"] if s["slice"] in self.watched_slices
                    and s["primary"] == self.victim]
            self.log(f"{self.victim}'s own directory at the end of the partition: it leads "
                     f"{len(lead)} of the watched slices")
        self.t_heal = cl.now()
        # Acks from the victim for writes first sent during the partition.
        bad = []
        sent = 0
        for w in (self.minor1, self.minor2):
            for b in w.batches:
                if b.deliveries and b.deliveries[0][0] > self.t_part:
                    sent += 1
                    if b.ack is not None and b.acked_at < self.t_heal:
                        bad.append(b)
        answers = collections.Counter()
        for w in (self.minor1, self.minor2):
            for b in w.batches:
                for (t_r, _, what) in b.replies:
                    if self.t_part < t_r < self.t_heal:
                        answers[what] += 1
        self.log(f"minority during the partition: {sent} writes, replies {dict(answers)}")
        if bad:
            self.fail(f"the isolated {self.victim} ACKNOWLEDGED {len(bad)} of {sent} writes "
                      f"sent to it during the partition (first "
                      f"{(bad[0].acked_at - self.t_part) * 1000:.0f} ms into it)")
        elif sent == 0:
            self.fail("no minority write was sent during the partition")
        else:
            self.log(f"the isolated {self.victim} acknowledged none of {sent} writes")

        self.topo.cut(victim.i, up=True)
        self.log("healed")

    def after_heal(self):
        a = self.args
        self.settle("after healing")
        tables = {n: self.table(n) for n in self.nodes}
        views = {}
        for n, t in tables.items():
            if t is None:
                self.fail(f"after healing: {n} does not answer /v1/directory")
                continue
            views[n] = tuple((s["slice"], s["primary"], s["epoch"]) for s in t["slices"]
                             if s["slice"] in self.watched_slices)
        if len(set(views.values())) > 1:
            self.fail(f"after healing the nodes disagree on the watched slices: {views}")
        elif views:
            v = next(iter(views.values()))
            self.log(f"after healing every node has the watched slices at "
                     f"{sorted(set((p, e) for _, p, e in v))}")
        # Every writer resends what is unanswered, then stops.
        for w in self.writers:
            w.finish()
        deadline = cl.now() + a.drain_timeout
        for w in self.writers:
            w.join(max(0.0, deadline - cl.now()))
        self.check_writers("after healing")
        self.check_totals("after healing", [n for n in self.nodes])
        self.check_local_replicas("after healing")

    def check_writers(self, what):
        for w in self.writers:
            if w.name in self.checked:
                continue
            self.checked.add(w.name)
            if w.crash:
                self.fail(f"{w.name} crashed:\n{w.crash}")
            left = w.unanswered()
            if left:
                self.fail(f"{what}: {w.name} has {len(left)} writes still unanswered "
                          f"after {self.args.drain_timeout:g} s")
            final = collections.Counter(b.final for b in w.batches if b.final)
            if final:
                self.fail(f"{what}: {w.name} writes failed for good: {dict(final)}")
            late = sum(b.late for b in w.batches)
            if late:
                self.fail(f"{what}: {w.name} acks report {late} late samples")

    def failover_rounds(self):
        """Kills the node leading the watched slices, so another replica (the
        formerly isolated one, if it can) serves them, and compares totals."""
        a = self.args
        victim_served = False
        for rnd in (1, 2):
            t = self.table(self.others[0]) or self.table(self.victim)
            if t is None:
                self.fail(f"failover round {rnd}: no directory")
                return
            leads = collections.Counter(s["primary"] for s in t["slices"]
                                        if s["slice"] in self.watched_slices)
            target = leads.most_common(1)[0][0]
            if target == self.victim:
                victim_served = True
                break
            epochs = {s["slice"]: s["epoch"] for s in t["slices"]}
            node = self.nodes[target]
            node.kill(signal.SIGKILL)
            rest = [n for n in self.nodes if n != target]
            self.log(f"failover round {rnd}: SIGKILL {target}, which leads "
                     f"{leads[target]} of the watched slices")

            mine = {s["slice"] for s in t["slices"]
                    if s["slice"] in self.watched_slices and s["primary"] == target}

            def moved():
                tt = self.table(rest[0])
                if tt is None:
                    return "no directory"
                for s in tt["slices"]:
                    if s["slice"] in mine and (
                            s["primary"] == target or s["epoch"] <= epochs[s["slice"]]):
                        return f"slice {s['slice']} still led by {s['primary']}"
                return None
            took, reason = cl.wait_until(moved, a.election_timeout)
            if took is None:
                self.fail(f"failover round {rnd}: {target}'s watched slices did not move "
                          f"within {a.election_timeout:g} s ({reason})")
            # A write through the survivors, then the totals they report.
            servers = [self.nodes[n].server for n in rest]
            w = self.writer(f"round-{rnd}", lambda s=servers: s, self.watched, 0, 0.05, 0.05)
            self.wait_acks(w, 3, a.election_timeout, f"failover round {rnd}")
            w.finish()
            w.join(a.drain_timeout)
            self.check_writers(f"failover round {rnd}")
            tt = self.table(rest[0]) or {}
            now_lead = collections.Counter(s["primary"] for s in tt.get("slices", [])
                                           if s["slice"] in self.watched_slices)
            if now_lead.get(self.victim):
                victim_served = True
            self.log(f"failover round {rnd}: watched slices now led by {dict(now_lead)}")
            self.check_totals(f"failover round {rnd}", rest)
            node.start()
            try:
                self.wait_ready([target], 30)
            except RuntimeError as e:
                self.fail(f"failover round {rnd}: {e}")
                return
            self.settle(f"failover round {rnd}")
            if victim_served:
                break
        if victim_served:
            self.log(f"the formerly isolated {self.victim} led watched slices again "
                     "(the totals above were read from its replica)")
        else:
            self.note(f"the formerly isolated {self.victim} never led the watched slices "
                      "again; its replica was compared only through local reads, if any")
        self.check_totals("end", list(self.nodes))
        self.check_local_replicas("end")

    def stop(self):
        for w in self.writers:
            w.stop()
        for n in self.nodes.values():
            n.kill(signal.SIGKILL)


@pytest.fixture(scope="module")
def args(request):
    """The test's options (tests/conftest.py) with this file's defaults."""
    config = request.config

    def opt(name, default):
        value = config.getoption(name)
        return default if value is None else value
    args = argparse.Namespace(
        bin=config.getoption("bin") or os.path.join(REPO, "build", "bin"),
        watch=opt("watch", 4), hold=opt("hold", 3.0),
        election_timeout=config.getoption("election_timeout"),
        settle_timeout=opt("settle_timeout", 30.0),
        drain_timeout=config.getoption("drain_timeout"),
        timeout=opt("timeout", 240.0), seed=config.getoption("seed"),
        keep=config.getoption("keep"))
    if args.seed is None:
        args.seed = int(time.time() * 1000) % 1_000_000
    return args


def test_partition(args):
    """The isolated primary acknowledges nothing, the majority takes over, and after
    healing (and the failover rounds) every node holds the acknowledged totals."""
    log = cl.Log("partition")
    assert cl.websocket is not None, \
        "python3-websocket is missing (apt-get install python3-websocket)"
    assert os.access(os.path.join(args.bin, "tetherd"), os.X_OK), \
        f"no tetherd in {args.bin} (--bin)"
    try:
        preflight(log)
    except Skip as e:
        pytest.skip(f"{e}; the partition test needs root, iproute2, network namespaces, "
                    "veth and bridge devices")

    def on_alarm(signum, frame):
        raise TimeBound(f"the run exceeded its bound of {args.timeout:g} s")

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    handlers = {signal.SIGALRM: signal.signal(signal.SIGALRM, on_alarm),
                signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
    signal.alarm(int(args.timeout))
    base = tempfile.mkdtemp(prefix="tether-chaos-partition-")
    test = PartitionTest(args, log, base)
    code = 1
    skipped = None
    try:
        Topology.remove_stale(log)
        test.topo = Topology(3, log)
        try:
            test.topo.create()
            test.topo.enter_client()
        except (RuntimeError, OSError) as e:
            skipped = f"cannot build the test network: {e}"
            code = SKIP
        if skipped is None:
            log(f"seed {args.seed}; namespaces {test.topo.tag}-*, client network "
                f"{CLIENT_NET}.0/24, cluster network {CLUSTER_NET}.0/24")
            test.start_cluster()
            test.choose_keys()
            test.partition()
            test.after_heal()
            if test.elected:
                test.failover_rounds()
            else:
                test.note("failover rounds skipped: the majority never took over")
            code = 1 if test.failures else 0
    except TimeBound as e:
        print(f"FAIL: {e}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        code = 130
    except SystemExit as e:  # SIGTERM
        print("terminated", flush=True)
        code = e.code
    except Exception as e:
        import traceback
        traceback.print_exc()
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        signal.alarm(0)
        saved = {s: signal.signal(s, signal.SIG_IGN)  # finish the cleanup
                 for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            test.stop()
        finally:
            if test.topo is not None:
                test.topo.destroy()
            for s, h in saved.items():
                signal.signal(s, h)
            for s, h in handlers.items():
                signal.signal(s, h)
    if code == SKIP:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(skipped)
    if test.failures:
        print(f"FAIL: {len(test.failures)} checks failed:", flush=True)
        for f in test.failures:
            print("  - " + f.splitlines()[0], flush=True)
    elif code == 0:
        print("PASS", flush=True)
    if code == 0 and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"node logs kept in {base}", flush=True)
    if code == 130:
        raise KeyboardInterrupt
    assert code == 0 and not test.failures, (
        f"{len(test.failures)} checks failed: "
        + "; ".join(f.splitlines()[0] for f in test.failures)
        if test.failures else f"the run did not complete (code {code}): see its output")


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-s", *sys.argv[1:]]))
