#!/usr/bin/env python3
"""How long other clients wait while one client sends hostile input (issue 14).

    /usr/bin/python3 tools/bench/stall_bench.py --tetherd build/bin/tetherd \
        --python-dir build/python [--rounds 5] [--option=--tether.io-threads=2]

Starts one tetherd on a loopback port. A second connection pings it (WebSocket `ping`,
one every 10 ms) and a third asks `/healthz` on a new connection each time, each from
a process of its own, first on a quiet node, then while one client sends, for
--rounds rounds each:

- labels: a write of 60 000 reverse-sorted labels, then a subscribe and a query of a
  key with 90 000 empty labels (each refused);
- amplification: a 1.5 MB remote-write body that decompresses to 32 MiB of empty
  series (refused before it is parsed).

Prints one row per load: the round trips of the pings and of /healthz (p50, p99, max)
and the hostile requests' own time. The goal (docs/operations.md, "Limits of hostile
input"): no other connection waits more than 50 ms longer than on a quiet node.
A benchmark, not a test: run it on a quiet machine and put the figures in
docs/benchmarks.md. Every wait has a deadline; the run ends by itself.
"""

import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import limits_test as lt  # noqa: E402  (hostile payloads and HTTP helpers)
import stream_test as st  # noqa: E402  (Node, Conn, protocol helpers)

import websocket  # noqa: E402

PING_EVERY = 0.01


def probe_loop(port, kind, stop, out):
    """Runs in a process of its own (the hostile client's GIL must not delay it):
    round trips of `kind` ("ping" or "healthz") until `stop` is set."""
    times = []
    if kind == "ping":
        c = websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream", timeout=10)
    n = 0
    while not stop.is_set():
        if kind == "ping":
            t0 = time.monotonic()
            c.send(json.dumps({"ping": {"nonce": str(n)}}))
            c.recv()
            times.append(time.monotonic() - t0)
        else:
            times.append(lt.healthz_time(port))
        n += 1
        time.sleep(PING_EVERY)
    if kind == "ping":
        c.close()
    out.put((kind, times))


class Prober:
    """Pings and /healthz round trips, each from a process of its own, until stopped."""

    def __init__(self, port):
        self.stop_event = mp.Event()
        self.out = mp.Queue()
        self.procs = [mp.Process(target=probe_loop, args=(port, kind, self.stop_event, self.out),
                                 daemon=True) for kind in ("ping", "healthz")]
        for p in self.procs:
            p.start()
        self.pings, self.health = [], []

    def stop(self):
        self.stop_event.set()
        for _ in self.procs:
            kind, times = self.out.get(timeout=30)
            if kind == "ping":
                self.pings = times
            else:
                self.health = times
        for p in self.procs:
            p.join(15)


def quantiles(xs):
    xs = sorted(xs)
    if not xs:
        return "-"
    at = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    return f"{at(0.5):.2f} / {at(0.99):.2f} / {xs[-1] * 1000:.2f}"


def label_bomb(ctx):
    c = st.Conn(ctx)
    st.hello(c, ctx.pid("labels"))
    payload, key = lt.hostile_label_frames(ctx.pb)
    return lambda: lt.send_label_frames(c, payload, key, 1)


def amplification(ctx):
    body = lt.snappy_repeat(b"\x0a\x00", 16 * lt.MIB)

    def run():
        code, resp = lt.post(ctx.port, "/api/v1/write", body, timeout=60)
        if code != 400:
            raise lt.Failure(f"amplified body answered {code}: {resp[:200]!r}")
    return run


def measure(ctx, label, load, rounds, quiet_seconds):
    probe = Prober(ctx.port)
    took = []
    try:
        if load is None:
            time.sleep(quiet_seconds)
        else:
            run = load(ctx)
            for _ in range(rounds):
                t0 = time.monotonic()
                run()
                took.append(time.monotonic() - t0)
    finally:
        probe.stop()
    own = "-" if not took else f"{sum(took) / len(took) * 1000:.0f} ms each"
    print(f"| {label} | {len(probe.pings)} | {quantiles(probe.pings)} | "
          f"{len(probe.health)} | {quantiles(probe.health)} | {own} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tetherd", required=True)
    ap.add_argument("--python-dir", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quiet-seconds", type=float, default=5.0)
    ap.add_argument("--option", action="append", default=[],
                    help="a tetherd option for the node, e.g. --option=--tether.io-threads=2")
    args = ap.parse_args()
    ctx = lt.Ctx(args)
    ctx.load_pb(args.python_dir)
    if ctx.pb is None:
        sys.exit(f"stall_bench: {ctx.pb_error}")
    node = st.Node(args.tetherd, "stall", args.option)
    ctx.nodes = [node]
    watchdog = threading.Timer(600, lambda: (node.stop(), os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    try:
        node.wait_listening(time.monotonic() + st.START_TIMEOUT)
        ctx.port = node.port
        print("| load | pings | ping p50 / p99 / max ms | /healthz | /healthz p50 / p99 / max ms "
              "| hostile request |")
        print("| --- | ---: | --- | ---: | --- | --- |")
        measure(ctx, "quiet node", None, 0, args.quiet_seconds)
        measure(ctx, "60 000 / 90 000 labels", label_bomb, args.rounds, 0)
        measure(ctx, "32 MiB amplified remote write", amplification, args.rounds, 0)
        measure(ctx, "quiet node again", None, 0, args.quiet_seconds)
    finally:
        ctx.close_conns()
        node.stop()


if __name__ == "__main__":
    main()
