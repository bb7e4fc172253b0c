#!/usr/bin/env python3
"""Failover benchmark: how soon every slice of a failed primary takes writes again.

  /usr/bin/python3 tools/bench/failover_bench.py [--bin build/bin] [--cycles 50]
                                        [--mode kill|stop|both] [--json FILE]

Starts a 3-node local cluster (tools/tether_cluster.py, replication factor 3, free
loopback ports, a temporary directory) with background writes from tether-load,
finds one key in every slice (GET /v1/where), then per cycle:

  1. picks the victim (the nodes in turn) and the slices it leads;
  2. connects probe sessions to the two other nodes (one WebSocket session per 48
     slices, JSON encoding), then SIGKILLs the victim (`kill`) or SIGSTOPs it
     (`stop`, a hung node);
  3. writes one counter increment to every one of those slices at once, resending
     a write answered UNAVAILABLE after 10 ms and every unanswered one after a lost
     connection, and records when each slice's write was acknowledged;
  4. restarts the killed victim or SIGCONTs the stopped one and waits until the
     cluster has settled (every node up, one directory version, no pending moves).

Reports, over the cycles, the time from the signal to the first and to the last
slice's acknowledgement (p50, p99, max) and how many cycles had a last slice above
1 s. Every wait is bounded; the cluster is stopped at the end, also on Ctrl-C.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "chaos"))
import tether_cluster  # noqa: E402
import chaoslib as cl  # noqa: E402

METRIC = "failover_probe_total"
PER_SESSION = 48  # under the default max-inflight-batches (64) per connection
RETRY_S = 0.010


def where_map(server, slice_count, limit):
    """slice -> key index of one probe key in it, from GET /v1/where."""
    host, port = server.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    found = {}
    i = 0
    while len(found) < slice_count and i < limit:
        conn.request("GET", f"/v1/where?key={cl.quote_key(cl.key_text(METRIC, i))}")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"/v1/where answered {r.status}: {body[:200]!r}")
        found.setdefault(json.loads(body)["slice"], i)
        i += 1
    conn.close()
    if len(found) < slice_count:
        raise RuntimeError(f"{i} keys cover only {len(found)} of {slice_count} slices")
    return found


class Prober(threading.Thread):
    """One session writing one increment to each of its slices until acknowledged."""

    def __init__(self, servers, producer_id, items, t0_box, deadline_s):
        super().__init__(daemon=True)
        self.servers = servers            # candidate HOST:PORTs, first preferred
        self.producer_id = producer_id
        self.items = items                # [(slice, key index)]
        self.t0_box = t0_box              # [time of the signal], set by the driver
        self.deadline_s = deadline_s
        self.acked = {}                   # slice -> seconds after the signal
        self.errors = []
        self.sent = 0
        self.replies = 0
        self.ready = threading.Event()
        self.go = threading.Event()
        self.session = None

    def frame(self, seq, k):
        return json.dumps({"write": {"sequence": str(seq),
                                     "samples": [cl.sample(METRIC, k, 1)]}},
                          separators=(",", ":"))

    def connect(self):
        for s in self.servers:
            try:
                self.session = cl.Session(s, self.producer_id, timeout=3.0)
                return True
            except cl.ConnLost as e:
                self.errors.append(str(e))
        return False

    def run(self):
        if not self.connect():
            self.ready.set()
            return
        self.ready.set()
        self.go.wait()
        seqs = {seq: (sl, k) for seq, (sl, k) in enumerate(self.items, start=1)}
        retry_at = {seq: 0.0 for seq in seqs}  # unanswered writes due (0: now)
        waiting = set()
        end = self.t0_box[0] + self.deadline_s
        while (retry_at or waiting) and cl.now() < end:
            try:
                t = cl.now()
                for seq in [s for s, at in retry_at.items() if at <= t]:
                    del retry_at[seq]
                    waiting.add(seq)
                    self.session.send_raw(self.frame(seq, seqs[seq][1]))
                    self.sent += 1
                wait = min([at for at in retry_at.values()] + [t + 0.05]) - t
                msg = self.session.recv(max(wait, 0.001))
                if msg is None:
                    continue
                self.replies += 1
                self.handle(msg, seqs, retry_at, waiting)
            except cl.ConnLost as e:
                self.errors.append(str(e))
                self.session.close()
                if not self.connect():
                    time.sleep(RETRY_S)
                for seq in waiting:
                    retry_at[seq] = 0.0
                waiting.clear()
        if self.session:
            self.session.close()

    def handle(self, msg, seqs, retry_at, waiting):
        t = cl.now()
        if "ack" in msg:
            seq = int(msg["ack"].get("sequence", 0))
            if seq in waiting:
                waiting.discard(seq)
                self.acked[seqs[seq][0]] = t - self.t0_box[0]
        elif "error" in msg:
            e = msg["error"]
            seq = int(e.get("sequence", 0) or 0)
            if seq not in waiting:
                return
            waiting.discard(seq)
            if e.get("retryable") or e.get("code") == cl.RETRYABLE:
                retry_at[seq] = t + RETRY_S
            else:
                self.errors.append(f"slice {seqs[seq][0]}: {e.get('code')}: "
                                   f"{e.get('message', '')}")


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def settle(c, names, timeout):
    servers = {n: c.server(n) for n in names}
    t0 = cl.now()
    why = None
    while cl.now() - t0 < timeout:
        why = cl.unsettled(servers, names)
        if why is None:
            return cl.now() - t0
        time.sleep(0.1)
    raise RuntimeError(f"the cluster did not settle within {timeout:.0f} s: {why}")


def cycle(c, names, n, mode, slice_key, run_id, args):
    victim = names[n % len(names)]
    others = [x for x in names if x != victim]
    table = cl.http_json(c.server(others[0]), "/v1/directory", timeout=5)
    led = sorted(s["slice"] for s in table["slices"] if s["primary"] == victim)
    items = [(s, slice_key[s]) for s in led]
    t0_box = [0.0]
    probers = []
    for j in range(0, len(items), PER_SESSION):
        pref = [c.server(others[(j // PER_SESSION) % 2]), c.server(others[1 - (j // PER_SESSION) % 2])]
        probers.append(Prober(pref, f"failover-bench-{run_id}-c{n}-s{j // PER_SESSION}",
                              items[j:j + PER_SESSION], t0_box, args.deadline))
    for p in probers:
        p.start()
    for p in probers:
        p.ready.wait(10)
    sig = signal.SIGKILL if mode == "kill" else signal.SIGSTOP
    t0_box[0] = cl.now()
    c.kill(victim, sig)
    for p in probers:
        p.go.set()
    for p in probers:
        p.join(args.deadline + 5)
    acked = {}
    errors = []
    sent = sum(p.sent for p in probers)
    replies = sum(p.replies for p in probers)
    for p in probers:
        acked.update(p.acked)
        errors += p.errors
    if mode == "kill":
        c.restart(victim)
    else:
        c.kill(victim, signal.SIGCONT)
    settled = settle(c, names, args.settle_timeout)
    times = sorted(acked.values())
    rec = {"cycle": n, "mode": mode, "victim": victim, "slices": len(led),
           "acked": len(acked), "first": times[0] if times else None,
           "last": times[-1] if len(acked) == len(led) and times else None,
           "p50_slice": pct(times, 0.5) if times else None,
           "settle": settled, "errors": errors[:5], "sent": sent, "replies": replies,
           "slowest": sorted(acked, key=acked.get)[-3:]}
    last = f"{rec['last'] * 1000:.0f} ms" if rec["last"] is not None else \
        f"{len(led) - len(acked)} slices never"
    print(f"cycle {n:2d} {mode:4s} {victim}: {len(led)} slices, first "
          f"{(rec['first'] or 0) * 1000:.0f} ms, median slice "
          f"{(rec['p50_slice'] or 0) * 1000:.0f} ms, last {last}; settled in "
          f"{settled:.1f} s ({sent} writes sent, {replies} replies)" + (f"; {len(errors)} errors, e.g. {errors[0]}" if errors else ""),
          flush=True)
    return rec


def summary(recs, mode):
    rs = [r for r in recs if r["mode"] == mode]
    if not rs:
        return None
    firsts = [r["first"] for r in rs if r["first"] is not None]
    lasts = [r["last"] if r["last"] is not None else float("inf") for r in rs]
    return {"mode": mode, "cycles": len(rs),
            "first_p50": pct(firsts, 0.5), "first_p99": pct(firsts, 0.99),
            "first_max": max(firsts) if firsts else float("nan"),
            "last_p50": pct(lasts, 0.5), "last_p99": pct(lasts, 0.99), "last_max": max(lasts),
            "over_1s": sum(1 for x in lasts if x > 1.0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--cycles", type=int, default=50, help="cycles per mode (default 50)")
    ap.add_argument("--mode", choices=["kill", "stop", "both"], default="both")
    ap.add_argument("--rate", default="20000",
                    help="background samples per second from tether-load (0: none)")
    ap.add_argument("--deadline", type=float, default=10.0,
                    help="seconds a cycle's probes keep trying (default 10)")
    ap.add_argument("--settle-timeout", type=float, default=60.0)
    ap.add_argument("--option", action="append", default=[],
                    help="extra tether option NAME=VALUE for every node")
    ap.add_argument("--json", help="write the cycles and the summary here")
    ap.add_argument("--keep", action="store_true",
                    help="keep the cluster directory (node logs) and print its path")
    args = ap.parse_args()
    if cl.websocket is None:
        print("needs python3-websocket: run it with /usr/bin/python3", file=sys.stderr)
        return 2
    opts = {"replication-factor": 3, "shards": 2}
    for o in args.option:
        k, _, v = o.partition("=")
        opts[k] = tether_cluster.guess_value(v)
    base = tempfile.mkdtemp(prefix="tether-bench-failover-")
    c = tether_cluster.LocalCluster(os.path.join(args.bin, "tetherd"), base, 0, opts,
                                    ready_timeout=60)
    load = None
    recs = []
    try:
        c.up(3)
        names = list(c.nodes)
        settle(c, names, args.settle_timeout)
        table = cl.http_json(c.server(names[0]), "/v1/directory", timeout=5)
        slice_key = where_map(c.server(names[0]), table["slice_count"], 200000)
        if args.rate not in ("0", ""):
            load = subprocess.Popen(
                [os.path.join(args.bin, "tether-load"),
                 "--server", ",".join(c.server(n) for n in names),
                 "--connections", "3", "--batch", "200", "--series", "20000",
                 "--rate", args.rate, "--duration", "24h", "--quiet"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        modes = ["kill", "stop"] if args.mode == "both" else [args.mode]
        run_id = random.randrange(1 << 30)
        for mode in modes:
            for n in range(args.cycles):
                recs.append(cycle(c, names, n, mode, slice_key, run_id, args))
        print("\n| failure | cycles | first slice p50 / p99 / max ms | last slice p50 / p99 "
              "/ max ms | cycles with last > 1 s |")
        print("| --- | ---: | --- | --- | ---: |")
        sums = []
        for mode in modes:
            s = summary(recs, mode)
            sums.append(s)
            print(f"| {'SIGKILL' if mode == 'kill' else 'SIGSTOP'} | {s['cycles']} | "
                  f"{s['first_p50'] * 1000:.0f} / {s['first_p99'] * 1000:.0f} / "
                  f"{s['first_max'] * 1000:.0f} | {s['last_p50'] * 1000:.0f} / "
                  f"{s['last_p99'] * 1000:.0f} / {s['last_max'] * 1000:.0f} | "
                  f"{s['over_1s']} |")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"cycles": recs, "summary": sums}, f, indent=1, default=str)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait(timeout=10)
        for n in list(c.nodes):
            try:
                if c.paused(n):
                    c.kill(n, signal.SIGCONT)
            except Exception:
                pass
        c.down()
        if args.keep:
            print(f"cluster directory kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
