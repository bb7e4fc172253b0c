"""Shared pieces of the chaos tests: a retrying WebSocket producer that records every
write and its outcome, a poller of /v1/series, a subscriber, and the checks on what
they recorded.

The producer follows docs/protocol.md (sections 4, 6 and 18): it says hello with a
fixed producer id, numbers its writes 1, 2, 3, ..., keeps at most `window` sequence
numbers between its oldest unanswered write and the next one, resends a write
unchanged (same sequence, same samples) after UNAVAILABLE and after losing its
connection, on a connection to whichever node it can reach, in the original order,
and treats every other error as final. Every delivery, reply and ack is recorded so
that the tests can compare the cluster's counters with what was acknowledged.

Only the Python 3 standard library and python3-websocket are used.
"""
import collections
import http.client
import json
import random
import threading
import time
import traceback
import urllib.parse

try:
    import websocket  # python3-websocket
except ImportError:  # pragma: no cover - the tests report it
    websocket = None

RETRYABLE = "UNAVAILABLE"
# Final errors after which the client cannot tell whether the write was applied
# (protocol sections 5 and 6).
UNKNOWN_OUTCOME = ("SEQUENCE_TOO_OLD", "KIND_CONFLICT", "INPUT_LIMIT")


def now():
    return time.monotonic()


class Log:
    """Timestamped progress lines on stdout, relative to the start of the run."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.t0 = now()
        self.lock = threading.Lock()

    def __call__(self, msg):
        with self.lock:
            print(f"[{now() - self.t0:7.2f}s] {self.prefix}: {msg}", flush=True)


# -- HTTP -----------------------------------------------------------------------------


def http_get(server, path, timeout=2.0):
    """(status, parsed JSON or text) of GET path on HOST:PORT; (None, reason) if the
    node cannot be reached."""
    host, port = server.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, body
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def http_json(server, path, timeout=2.0):
    """The JSON body of a 200 answer, else None."""
    status, body = http_get(server, path, timeout)
    return body if status == 200 and isinstance(body, dict) else None


def quote_key(key):
    return urllib.parse.quote(key, safe="")


def series(server, key, timeout=2.0, extra=""):
    """/v1/series?key=K on a node: the JSON answer, or None when it did not answer
    200."""
    return http_json(server, f"/v1/series?key={quote_key(key)}{extra}", timeout)


def total_of(answer):
    """The counter total of a /v1/series answer; a series that does not exist has
    total 0 (a counter that disappears has gone backwards)."""
    if not answer.get("found") or not answer.get("state"):
        return 0.0
    return float(answer["state"].get("total", 0.0))


def local_series(server, key, timeout=2.0):
    """This node's own replica of the key's series, if the node can say:
    GET /v1/series?key=K&local=true answered with a "replica" field ("primary",
    "follower" or "none"). None when the node does not support it (it then routes
    the read to the primary like any other) or does not answer."""
    a = series(server, key, timeout, extra="&local=true")
    return a if a is not None and "replica" in a else None


def unsettled(servers, live):
    """None when the running nodes agree on a settled cluster, else why not.

    servers: name -> HOST:PORT of every node; live: names of the nodes that should
    run. Settled: every running node answers and sees every running node up and
    connected (not suspect), all serve one directory version with no pending moves,
    every slice is led by a running node, and, where /v1/directory tells which
    replicas are in sync ("in_sync" per slice), every slice has all of them."""
    tables = {}
    for n in live:
        nodes = http_json(servers[n], "/v1/nodes", timeout=3)
        if nodes is None:
            return f"{n} does not answer /v1/nodes"
        view = {e["name"]: e for e in nodes.get("nodes", [])}
        for m in live:
            e = view.get(m)
            if e is None:
                return f"{n} does not know {m}"
            if e.get("state") != "up":
                return f"{n} sees {m} {e.get('state')}"
            if not (e.get("self") or e.get("connected")) or e.get("suspect"):
                return f"{n} is not connected to {m}"
        t = http_json(servers[n], "/v1/directory", timeout=3)
        if t is None:
            return f"{n} does not answer /v1/directory"
        tables[n] = t
    if not tables:
        return "no node runs"
    versions = {n: t.get("version") for n, t in tables.items()}
    if len(set(versions.values())) != 1:
        return f"directory versions differ: {versions}"
    t = next(iter(tables.values()))
    if t.get("pending_moves"):
        return f"{len(t['pending_moves'])} moves pending"
    rf = t.get("replication_factor", 1)
    for s in t.get("slices", []):
        if s.get("primary") not in live:
            return f"slice {s['slice']} is led by {s.get('primary')}, not a running node"
        if "in_sync" in s and len(s["in_sync"]) < rf:
            return f"slice {s['slice']} has {len(s['in_sync'])} of {rf} replicas in sync"
    return None


def wait_until(fn, timeout, interval=0.05):
    """Polls fn() (None = done, else a reason) until done or timeout; returns
    (seconds taken or None, last reason)."""
    t0 = now()
    reason = None
    while True:
        reason = fn()
        if reason is None:
            return now() - t0, None
        if now() - t0 >= timeout:
            return None, reason
        time.sleep(interval)


# -- keys -----------------------------------------------------------------------------


def key_text(metric, i):
    """Canonical key of the i-th test series: one label, so sorted trivially."""
    return f'{metric}{{k="{i}"}}'


def sample(metric, i, value):
    return {"name": metric, "labels": [{"name": "k", "value": str(i)}],
            "kind": "COUNTER", "value": value}


# -- the producer ---------------------------------------------------------------------


class ConnLost(Exception):
    pass


class Session:
    """One WebSocket session on /v1/stream in the JSON encoding, after a welcome."""

    def __init__(self, server, producer_id, timeout=3.0):
        self.server = server
        try:
            self.ws = websocket.create_connection(
                f"ws://{server}/v1/stream", timeout=timeout,
                http_no_proxy=[server.rsplit(":", 1)[0]])
        except (OSError, websocket.WebSocketException) as e:
            raise ConnLost(f"connect {server}: {e}") from None
        self.send({"hello": {"producerId": producer_id, "protocolVersion": 1}})
        deadline = now() + timeout
        while True:
            left = deadline - now()
            if left <= 0:
                self.close()
                raise ConnLost(f"{server}: no welcome within {timeout:g} s")
            msg = self.recv(left)
            if msg is None:
                continue
            if "welcome" in msg:
                self.welcome = msg["welcome"]
                return
            self.close()
            raise ConnLost(f"{server}: hello answered {json.dumps(msg)[:200]}")

    def send(self, obj):
        try:
            self.ws.send(json.dumps(obj, separators=(",", ":")))
        except (OSError, websocket.WebSocketException) as e:
            raise ConnLost(f"send to {self.server}: {e}") from None

    def send_raw(self, text):
        try:
            self.ws.send(text)
        except (OSError, websocket.WebSocketException) as e:
            raise ConnLost(f"send to {self.server}: {e}") from None

    def recv(self, timeout):
        """The next message, None if none arrived within timeout; ConnLost when the
        connection is gone."""
        try:
            self.ws.settimeout(max(timeout, 0.001))
            data = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        except (OSError, websocket.WebSocketException) as e:
            raise ConnLost(f"{self.server}: {type(e).__name__}: {e}") from None
        if not data:
            raise ConnLost(f"{self.server}: connection closed")
        return json.loads(data)

    def close(self):
        try:
            self.ws.close(timeout=0.2)
        except Exception:  # closing a broken socket may fail in many ways
            pass


class Batch:
    """One write: (key index, value) pairs under one sequence, and its history."""

    __slots__ = ("producer", "seq", "items", "frame", "created", "deliveries",
                 "replies", "ack", "acked_at", "acked_via", "final", "retry_at",
                 "late", "done", "tag")

    def __init__(self, producer, seq, items, frame, tag=None):
        self.producer = producer
        self.seq = seq
        self.items = items          # [(key index, value)]
        self.frame = frame          # the exact text sent on every delivery
        self.created = now()
        self.deliveries = []        # [(time sent, server)]
        self.replies = []           # [(time, server, "ack" or error code)]
        self.ack = None             # the first ack
        self.acked_at = None
        self.acked_via = None
        self.final = None           # final error code (nothing more will be sent)
        self.retry_at = None        # when to resend after UNAVAILABLE
        self.late = 0
        self.done = threading.Event()  # acked or final
        self.tag = tag

    @property
    def outcome(self):
        if self.ack is not None:
            return "acked"
        if self.final is not None:
            return "unknown" if self.final in UNKNOWN_OUTCOME else "rejected"
        return "unanswered"


class Producer(threading.Thread):
    """A writer with its own producer id in its own thread (see the module text).

    servers(): the gateways (HOST:PORT) it may use, in order of preference; it moves
    to the next one when a connection fails. next_items(seq): the (key index, value)
    pairs of the next write, or None for "nothing to send now". The thread runs until
    stop() (at once) or finish() (no new writes; ends when every write is answered).
    """

    def __init__(self, name, producer_id, metric, servers, next_items, *, window=8,
                 interval=0.0, backoff=0.05, reply_timeout=15.0, connect_timeout=2.0,
                 log=None):
        super().__init__(name=name, daemon=True)
        self.producer_id = producer_id
        self.metric = metric
        self.servers = servers
        self.next_items = next_items
        self.window = window
        self.interval = interval
        self.backoff = backoff
        self.reply_timeout = reply_timeout
        self.connect_timeout = connect_timeout
        self.log = log or (lambda m: None)
        self.batches = []                        # every write, by sequence
        self.pending = collections.OrderedDict()  # seq -> Batch, unanswered or retrying
        self.seq = 0
        self.session = None
        self.preferred = None
        self.reconnects = 0
        self.connect_failures = 0
        self.reply_timeouts = 0
        self.retries = 0
        self.duplicate_acks = 0
        self.stray_replies = []                  # replies to writes not pending
        self.protocol_errors = []                # errors that answer no write
        self.crash = None
        self.last_ack = None
        self.last_error = None  # (time, server, code, message) of the latest error reply
        self.acks = 0
        self._issuing = True
        self._halt = threading.Event()
        self._switch = None
        self._last_issue = 0.0
        self._rotation = 0
        self._waiting = {}                       # seq -> time of its unanswered delivery

    # -- control (any thread) --

    def stop(self):
        self._halt.set()

    def finish(self):
        """Send no new writes; the thread ends once every write is answered."""
        self._issuing = False

    def move_to(self, server):
        """Reconnect to `server` (unanswered writes are resent there)."""
        self._switch = server

    def unanswered(self):
        return [b for b in self.batches if b.ack is None and b.final is None]

    # -- the loop --

    def run(self):
        try:
            self._loop()
        except Exception:
            self.crash = traceback.format_exc()
            self.log(f"{self.name} crashed:\n{self.crash}")
        finally:
            if self.session is not None:
                self.session.close()

    def _loop(self):
        delay = self.backoff
        while not self._halt.is_set():
            if not self._issuing and not self.pending:
                return
            if self._switch is not None and self.session is not None:
                self.preferred, self._switch = self._switch, None
                self._drop("moved by the test")
            if self.session is None:
                if not self._connect():
                    self._halt.wait(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                delay = self.backoff
            try:
                self._issue()
                self._resend_due()
                msg = self.session.recv(0.02)
                if msg is not None:
                    self._handle(msg)
                self._check_reply_timeout()
            except ConnLost as e:
                self._drop(str(e))

    def _candidates(self):
        servers = list(self.servers())
        if not servers:
            return []
        if self.preferred in servers:
            servers.remove(self.preferred)
            return [self.preferred] + servers
        self._rotation += 1
        r = self._rotation % len(servers)
        return servers[r:] + servers[:r]

    def _connect(self):
        for server in self._candidates():
            try:
                self.session = Session(server, self.producer_id, self.connect_timeout)
            except ConnLost:
                self.connect_failures += 1
                continue
            self.preferred = server
            self.reconnects += 1
            # Resend every unanswered write, in order, unchanged.
            for b in self.pending.values():
                b.retry_at = None
                self._deliver(b)
            return True
        return False

    def _drop(self, why):
        self._waiting.clear()
        if self.session is not None:
            self.session.close()
            self.session = None

    def _deliver(self, b):
        t = now()
        b.deliveries.append((t, self.session.server))
        self._waiting[b.seq] = t
        try:
            self.session.ws.send(b.frame)
        except (OSError, websocket.WebSocketException) as e:
            raise ConnLost(f"send to {self.session.server}: {e}") from None

    def _issue(self):
        while self._issuing and not self._halt.is_set():
            oldest = next(iter(self.pending)) if self.pending else self.seq + 1
            if self.seq + 1 - oldest >= self.window:
                return  # keep the sequence span of unanswered writes bounded
            if self.interval and now() - self._last_issue < self.interval:
                return
            items = self.next_items(self.seq + 1)
            if not items:
                return
            self.seq += 1
            frame = json.dumps({"write": {"sequence": str(self.seq), "samples": [
                sample(self.metric, k, v) for k, v in items]}}, separators=(",", ":"))
            b = Batch(self.producer_id, self.seq, list(items), frame)
            self.batches.append(b)
            self.pending[self.seq] = b
            self._last_issue = now()
            self._deliver(b)

    def _resend_due(self):
        t = now()
        for b in list(self.pending.values()):
            if b.retry_at is not None and b.retry_at <= t:
                b.retry_at = None
                self.retries += 1
                self._deliver(b)

    def _check_reply_timeout(self):
        t = now()
        for seq, since in self._waiting.items():
            if t - since > self.reply_timeout:
                self.reply_timeouts += 1
                raise ConnLost(f"{self.session.server}: no reply to write {seq} "
                               f"for {self.reply_timeout:g} s")

    def _handle(self, msg):
        t = now()
        server = self.session.server
        if "ack" in msg:
            a = msg["ack"]
            seq = int(a.get("sequence", 0))
            self._waiting.pop(seq, None)
            b = self.pending.pop(seq, None)
            if b is None:
                self.stray_replies.append((t, server, seq, "ack"))
                return
            b.replies.append((t, server, "ack"))
            b.ack = a
            b.acked_at = t
            b.acked_via = server
            b.late = int(a.get("late", 0) or 0)
            if a.get("duplicate"):
                self.duplicate_acks += 1
            self.acks += 1
            self.last_ack = t
            b.done.set()
            return
        if "error" in msg:
            e = msg["error"]
            seq = int(e.get("sequence", 0) or 0)
            code = e.get("code", "?")
            if seq == 0:
                self.protocol_errors.append((t, server, e))
                return
            self._waiting.pop(seq, None)
            b = self.pending.get(seq)
            if b is None:
                self.stray_replies.append((t, server, seq, code))
                return
            b.replies.append((t, server, code))
            self.last_error = (t, server, code, e.get("message", ""))
            if e.get("retryable") or code == RETRYABLE:
                b.retry_at = t + self.backoff * (0.5 + random.random())
                return
            b.final = code
            del self.pending[seq]
            b.done.set()
            self.log(f"{self.name}: write {seq} failed for good: {code}: "
                     f"{e.get('message', '')}")
            return
        # pongs, window updates: not expected on a producer's session


class QueueProducer(Producer):
    """A producer that writes only what the test hands it: submit(items) -> Batch."""

    def __init__(self, name, producer_id, metric, servers, **kw):
        self._queue = collections.deque()
        self._qlock = threading.Lock()
        super().__init__(name, producer_id, metric, servers, self._take, **kw)

    def _take(self, seq):
        with self._qlock:
            return self._queue.popleft() if self._queue else None

    def submit(self, items, timeout=5.0):
        """Queues one write and returns its Batch once the producer thread sent it
        (None if the thread did not take it within timeout). One submitter only."""
        before = len(self.batches)
        with self._qlock:
            self._queue.append(list(items))
        deadline = now() + timeout
        while now() < deadline and self.is_alive():
            if len(self.batches) > before:
                return self.batches[before]
            time.sleep(0.001)
        return None


# -- observers ------------------------------------------------------------------------


class Poller(threading.Thread):
    """Reads /v1/series of `keys` through `servers()` one request at a time, round
    robin, and records (start, end, server, key, total, answer). Requests are
    sequential, so each observation began after the previous one ended: a counter
    that is never allowed to go backwards must never show a smaller total later."""

    def __init__(self, servers, keys, pause=0.01, timeout=2.0):
        super().__init__(name="poller", daemon=True)
        self.servers = servers
        self.keys = keys
        self.pause = pause
        self.timeout = timeout
        self.observations = []
        self.failed_reads = 0
        self._halt = threading.Event()
        self.crash = None

    def stop(self):
        self._halt.set()

    def run(self):
        try:
            while not self._halt.is_set():
                for server in list(self.servers()):
                    for key in self.keys:
                        if self._halt.is_set():
                            return
                        t0 = now()
                        a = series(server, key, self.timeout)
                        t1 = now()
                        if a is None:
                            self.failed_reads += 1
                            continue
                        self.observations.append((t0, t1, server, key, total_of(a),
                                                  a.get("node"), a.get("epoch")))
                self._halt.wait(self.pause)
        except Exception:
            self.crash = traceback.format_exc()


class Subscriber(threading.Thread):
    """Subscribes to `keys` through one of `servers()` and records the running total
    of every series in every window_update, in arrival order; subscribes again on
    another node when the connection is lost. The first update of a subscription is
    the state at subscription time, later ones the state at each window close:
    all of them later than the one before, so totals must never decrease."""

    def __init__(self, servers, keys, producer_id):
        super().__init__(name="subscriber", daemon=True)
        self.servers = servers
        self.keys = keys
        self.producer_id = producer_id
        self.updates = []          # (time, server, key, total, window_end_ms)
        self.subscriptions = 0
        self.errors = []
        self._halt = threading.Event()
        self.crash = None

    def stop(self):
        self._halt.set()

    def run(self):
        rot = 0
        try:
            while not self._halt.is_set():
                servers = list(self.servers())
                if not servers:
                    self._halt.wait(0.1)
                    continue
                rot += 1
                server = servers[rot % len(servers)]
                try:
                    s = Session(server, self.producer_id)
                except ConnLost:
                    self._halt.wait(0.1)
                    continue
                try:
                    self.subscriptions += 1
                    s.send({"subscribe": {"requestId": str(self.subscriptions),
                                          "keys": self.keys}})
                    while not self._halt.is_set():
                        msg = s.recv(0.2)
                        if msg is None:
                            continue
                        if "windowUpdate" in msg:
                            u = msg["windowUpdate"]
                            t = now()
                            for st in u.get("series", []):
                                self.updates.append((t, server, st.get("key"),
                                                     float(st.get("total", 0) or 0),
                                                     int(u.get("windowEndMs", 0) or 0)))
                        elif "error" in msg:
                            self.errors.append((now(), server, msg["error"]))
                            break
                except ConnLost:
                    pass
                finally:
                    s.close()
                self._halt.wait(0.1)  # then subscribe again, elsewhere
        except Exception:
            self.crash = traceback.format_exc()


# -- checks ---------------------------------------------------------------------------


def decreases(seq, key, total):
    """[(previous, current)] for every observation of seq (in observation order)
    whose total(obs) is smaller than that of the latest earlier observation with the
    same key(obs)."""
    last = {}
    out = []
    for obs in seq:
        k = key(obs)
        prev = last.get(k)
        if prev is not None and total(obs) < total(prev):
            out.append((prev, obs))
        last[k] = obs
    return out


def expected_totals(producers, metric_keys):
    """key text -> sum of the values of acknowledged writes."""
    exp = {k: 0.0 for k in metric_keys.values()}
    for p in producers:
        for b in p.batches:
            if b.ack is not None:
                for k, v in b.items:
                    exp[metric_keys[k]] += v
    return exp


def slices_without_ack(producers, slice_of, since):
    """The slices (of slice_of: key index -> slice) that no write first sent at or
    after `since` has reached with an ack yet: writes have not resumed there."""
    waiting = set(slice_of.values())
    for p in producers:
        for b in reversed(p.batches):
            if b.created < since:
                break
            if b.ack is not None:
                waiting.difference_update(slice_of[k] for k, _ in b.items)
    return waiting


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))
    return v[i]
