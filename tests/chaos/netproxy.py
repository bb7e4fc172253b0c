#!/usr/bin/python3
"""A fault-injecting TCP proxy for node-to-node links on loopback.

One listener ("front") per node sits in front of the node's cluster port; the node
advertises the front's port (tether.advertise-cluster-port), so every connection
another node dials to it passes through the proxy. The proxy finds out which node
dialed each connection (through /proc: the process that owns the other end of the
accepted socket), so a connection is a link between two named nodes, and faults
apply to links:

  delay(ms, jitter_ms)  every chunk is forwarded this much later (order is kept)
  drop(p)               each forwarded chunk resets its connection with probability
                        p (TCP cannot lose bytes: "loss" is a reset connection)
  reset()               resets the matching connections now (RST at both ends)
  blackhole()           the matching connections (and new ones) stay open but
                        nothing is forwarded until heal(); data already read is
                        held, not lost, as TCP would retransmit it after an outage
  heal()                removes the matching faults

Each fault takes a selector: node=X (links with X at either end), pair=(X, Y)
(the link between X and Y, either direction), or nothing (every link). A link's
faults are the union of the matching rules. Only loopback addresses are used.

As a library: NetProxy(), front(name, target_port) -> port, the fault calls, close().
Standalone: `netproxy.py --front tether-1=7611 --front tether-2=7612 --control 7690`
prints the front ports and reads line commands on the control port, e.g.
`delay 200 50 node=tether-1`, `drop 0.01`, `reset pair=tether-1,tether-2`,
`blackhole node=tether-3`, `heal`, `status`.

Only the Python 3 standard library is used. Thread safety: every public method may
be called from any thread; the proxy runs its own event loop thread.
"""
import argparse
import asyncio
import os
import random
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
CHUNK = 65536
QUEUE_CHUNKS = 64  # per direction: beyond it the proxy stops reading (backpressure)
POLL_S = 0.01      # how often a held (black-holed) direction looks at the rules again


class Rule:
    def __init__(self, node=None, pair=None, **fault):
        self.node = node
        self.pair = frozenset(pair) if pair else None
        self.fault = fault

    def matches(self, a, b):
        if self.node is not None:
            return self.node in (a, b)
        if self.pair is not None:
            return frozenset((a, b)) == self.pair
        return True

    def __repr__(self):
        where = (f"node={self.node}" if self.node else
                 f"pair={','.join(sorted(self.pair))}" if self.pair else "all")
        return f"{where}: {self.fault}"


class Conn:
    def __init__(self, proxy, dialer, target, down_w, up_w):
        self.proxy = proxy
        self.dialer = dialer  # name of the node that dialed (or pid / "?")
        self.target = target  # name of the node behind the front
        self.writers = (down_w, up_w)
        self.bytes = [0, 0]
        self.closed = False
        self.opened = time.monotonic()

    def fault(self):
        return self.proxy._fault(self.dialer, self.target)

    def reset(self):
        """Closes both ends with RST."""
        if self.closed:
            return
        self.closed = True
        for w in self.writers:
            if w is None:
                continue
            sock = w.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            except OSError:
                pass
            w.transport.abort()
        self.proxy._conns.discard(self)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for w in self.writers:
            if w is not None:
                w.close()
        self.proxy._conns.discard(self)


def _tcp_table():
    """[(local port, remote port, state, inode)] of the IPv4 and IPv6 TCP sockets."""
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if len(p) < 10:
                continue
            out.append((int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16),
                        p[3], p[9]))
    return out


def _socket_inodes(pid):
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


class NetProxy:
    """The proxy (see the module text). pids: optional function returning
    {pid: node name} of the processes that may dial; without it every process of
    this user is searched and named after the front whose target port it listens on.
    """

    def __init__(self, pids=None, seed=None, log=None):
        self.pids = pids
        self.rng = random.Random(seed)
        self.log = log or (lambda m: None)
        self._rules = []
        self._lock = threading.Lock()
        self._conns = set()
        self._fronts = {}  # name -> (listen port, target port, server)
        self.stats = {"accepted": 0, "resets": 0, "dropped": 0, "unidentified": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="netproxy", daemon=True)
        self._thread.start()

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro_or_fn, timeout=10):
        if asyncio.iscoroutine(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn, self._loop).result(timeout)

        async def wrap():
            return coro_or_fn()
        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result(timeout)

    # -- fronts --

    def front(self, name, target_port, listen_port=0):
        """Listens on HOST:listen_port (0: a free port) and forwards to
        HOST:target_port; returns the listening port."""
        async def start():
            server = await asyncio.start_server(
                lambda r, w: self._accept(name, target_port, r, w), HOST, listen_port)
            return server
        server = self._call(start())
        port = server.sockets[0].getsockname()[1]
        self._fronts[name] = (port, target_port, server)
        return port

    def fronts(self):
        return {n: (p, t) for n, (p, t, _) in self._fronts.items()}

    def _identify(self, peer_port, listen_port):
        table = _tcp_table()
        inode = next((i for lp, rp, st, i in table
                      if lp == peer_port and rp == listen_port and st == "01"), None)
        if inode is None:
            return "?"
        pids = self.pids() if self.pids else None
        candidates = pids.keys() if pids else [int(p) for p in os.listdir("/proc")
                                               if p.isdigit()]
        for pid in candidates:
            inodes = _socket_inodes(pid)
            if inode not in inodes:
                continue
            if pids:
                return pids[pid]
            for name, (_, target, _) in self._fronts.items():
                if any(i in inodes for lp, _, st, i in table if lp == target and st == "0A"):
                    return name
            return f"pid{pid}"
        return "?"

    async def _accept(self, name, target_port, reader, writer):
        peer = writer.get_extra_info("peername")
        listen = writer.get_extra_info("sockname")[1]
        dialer = self._identify(peer[1], listen)
        if dialer == "?":
            self.stats["unidentified"] += 1
        self.stats["accepted"] += 1
        try:
            up_r, up_w = await asyncio.open_connection(HOST, target_port)
        except OSError:
            writer.transport.abort()
            return
        conn = Conn(self, dialer, name, writer, up_w)
        self._conns.add(conn)
        await asyncio.gather(self._pump(conn, reader, up_w, 1),
                             self._pump(conn, up_r, writer, 0),
                             return_exceptions=True)
        conn.close()

    async def _pump(self, conn, reader, writer, direction):
        """Forwards one direction: a reader task feeds a bounded queue of
        (due time, bytes), a writer task delivers each chunk when due."""
        q = asyncio.Queue(QUEUE_CHUNKS)

        async def read_side():
            last_due = 0.0
            try:
                while not conn.closed:
                    while conn.fault().get("blackhole") and not conn.closed:
                        await asyncio.sleep(POLL_S)
                    data = await reader.read(CHUNK)
                    if not data or conn.closed:
                        break
                    f = conn.fault()
                    p = f.get("drop", 0.0)
                    if p and self.rng.random() < p:
                        self.stats["dropped"] += 1
                        conn.reset()
                        break
                    delay = (f.get("delay_ms", 0) + self.rng.uniform(0, f.get("jitter_ms", 0))) / 1000
                    due = max(last_due, time.monotonic() + delay)
                    last_due = due
                    await q.put((due, data))
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                await q.put(None)

        async def write_side():
            try:
                while True:
                    item = await q.get()
                    if item is None or conn.closed:
                        break
                    due, data = item
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    while conn.fault().get("blackhole") and not conn.closed:
                        await asyncio.sleep(POLL_S)
                    if conn.closed:
                        break
                    writer.write(data)
                    conn.bytes[direction] += len(data)
                    await writer.drain()
            except (OSError, ConnectionError):
                pass
            conn.close()

        await asyncio.gather(read_side(), write_side(), return_exceptions=True)

    # -- faults --

    def _fault(self, a, b):
        out = {}
        with self._lock:
            for r in self._rules:
                if r.matches(a, b):
                    for k, v in r.fault.items():
                        out[k] = (out.get(k, False) or v) if isinstance(v, bool) \
                            else max(out.get(k, v), v)
        return out

    def _add(self, rule):
        with self._lock:
            self._rules.append(rule)
        self.log(f"netproxy: {rule}")

    def delay(self, ms, jitter_ms=0, node=None, pair=None):
        self._add(Rule(node, pair, delay_ms=float(ms), jitter_ms=float(jitter_ms)))

    def drop(self, probability, node=None, pair=None):
        self._add(Rule(node, pair, drop=float(probability)))

    def blackhole(self, node=None, pair=None):
        self._add(Rule(node, pair, blackhole=True))

    def heal(self, node=None, pair=None):
        """Removes the rules with exactly this selector (every rule without one)."""
        with self._lock:
            if node is None and pair is None:
                self._rules = []
            else:
                key = frozenset(pair) if pair else None
                self._rules = [r for r in self._rules
                               if not (r.node == node and r.pair == key)]
        self.log("netproxy: heal " + (f"node={node}" if node else
                                      f"pair={pair}" if pair else "all"))

    def reset(self, node=None, pair=None):
        """Resets the matching connections now; returns how many."""
        sel = Rule(node, pair)

        def do():
            hit = [c for c in list(self._conns) if sel.matches(c.dialer, c.target)]
            for c in hit:
                c.reset()
            return len(hit)
        n = self._call(do)
        self.stats["resets"] += n
        return n

    def connections(self):
        """[(dialer, target, bytes to target, bytes from target)] of open links."""
        return self._call(lambda: [(c.dialer, c.target, c.bytes[1], c.bytes[0])
                                   for c in self._conns if not c.closed])

    def rules(self):
        with self._lock:
            return list(self._rules)

    def close(self):
        """Stops listening and closes every connection."""
        async def stop():
            for _, _, server in self._fronts.values():
                server.close()
            for c in list(self._conns):
                c.reset()
        try:
            self._call(stop())
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


# -- standalone -----------------------------------------------------------------------


def _selector(words):
    kw = {}
    for w in words:
        if w.startswith("node="):
            kw["node"] = w[5:]
        elif w.startswith("pair="):
            kw["pair"] = tuple(w[5:].split(","))
        else:
            raise ValueError(f"not a selector: {w}")
    return kw


def command(proxy, line):
    """Runs one control line; returns the answer text."""
    words = line.split()
    if not words:
        return ""
    cmd, args = words[0], words[1:]
    nums = []
    while args and args[0].replace(".", "", 1).isdigit():
        nums.append(float(args.pop(0)))
    kw = _selector(args)
    if cmd == "delay":
        proxy.delay(nums[0], nums[1] if len(nums) > 1 else 0, **kw)
    elif cmd == "drop":
        proxy.drop(nums[0], **kw)
    elif cmd == "blackhole":
        proxy.blackhole(**kw)
    elif cmd == "heal":
        proxy.heal(**kw)
    elif cmd == "reset":
        return f"reset {proxy.reset(**kw)} connections"
    elif cmd == "status":
        return "\n".join([f"rules: {proxy.rules()}", f"stats: {proxy.stats}"]
                         + [f"{d} -> {t}: {a} / {b} bytes" for d, t, a, b in
                            proxy.connections()])
    else:
        raise ValueError(f"unknown command {cmd}")
    return "ok"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting TCP proxy on loopback.")
    ap.add_argument("--front", action="append", default=[], metavar="NAME=TARGET[:LISTEN]",
                    help="forward 127.0.0.1:LISTEN (default: a free port) to "
                         "127.0.0.1:TARGET, the cluster port of node NAME")
    ap.add_argument("--control", type=int, default=0,
                    help="loopback port for line commands (default: a free port)")
    args = ap.parse_args(argv)
    proxy = NetProxy(log=lambda m: print(m, flush=True))
    for spec in args.front:
        name, ports = spec.split("=", 1)
        target, _, listen = ports.partition(":")
        port = proxy.front(name, int(target), int(listen or 0))
        print(f"front {name}: 127.0.0.1:{port} -> 127.0.0.1:{target}", flush=True)
    srv = socket.create_server((HOST, args.control))
    print(f"control: 127.0.0.1:{srv.getsockname()[1]}", flush=True)
    try:
        while True:
            c, _ = srv.accept()
            with c, c.makefile("rw") as f:
                for line in f:
                    try:
                        f.write(command(proxy, line) + "\n")
                    except (ValueError, IndexError) as e:
                        f.write(f"error: {e}\n")
                    f.flush()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
