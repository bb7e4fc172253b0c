#!/usr/bin/env python3
"""A local Tether cluster: N tetherd processes on loopback, started, inspected and
stopped from the command line (tools/tether-cluster) or from Python (LocalCluster).

Layout of a cluster directory D (default build/cluster):

    D/cluster.json          nodes, ports, options: every command reads it, so each
                            command can run in a fresh process
    D/tether-i/tetherd.conf the node's config file ([tether] section, [scheduler] for
                            --scheduler-threads); the node is
                            started as `tetherd --config-file=D/tether-i/tetherd.conf`
    D/tether-i/tetherd.log  the node's stdout and stderr, appended across restarts
    D/tether-i/tetherd.pid  pid of the running node; absent when it was stopped
    D/tether-i/data/        the node's durable state (data-dir), kept across restarts
    D/tls/                  the throwaway CA and node certificates (node-to-node TLS,
                            and the gateways' with `up --secure`); with --secure also
                            `tokens` (the nodes' tokens file) and one file per role
                            (`admin.token`, `write.token`, `read.token`)

Nodes are named tether-1..tether-N. With base port P, tether-i's gateway (HTTP and
WebSocket) listens on P+i and its cluster (node-to-node) port is P+10+i, so at most 10
nodes; base port 0 picks free loopback ports instead (for tests running in parallel).
The first three nodes (only the first one if there are fewer than three) run the
directory; every node gets the cluster addresses of the directory members as seeds.

Only the Python 3 standard library is used.
"""

import argparse
import atexit
import contextlib
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import http.client
import ssl

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DEFAULT_DIR = os.path.join(REPO_ROOT, "build", "cluster")
DEFAULT_TETHERD = os.path.join(REPO_ROOT, "build", "bin", "tetherd")
DEFAULT_BASE_PORT = 7480
STATE_FILE = "cluster.json"
STATE_VERSION = 1
HOST = "127.0.0.1"
CLUSTER_PORT_OFFSET = 10  # tether-i: gateway base+i, cluster base+10+i
MAX_FIXED_NODES = CLUSTER_PORT_OFFSET
MAX_DIRECTORY_MEMBERS = 3
LOG_MARK = "--- tether-cluster: "  # starts the header line written before each start

# Options the launcher writes itself; extra options may not set them.
LAUNCHER_OPTIONS = ("name", "host", "port", "cluster-host", "cluster-port", "seeds",
                    "directory-members", "data-dir")
# What `up --secure` writes for every node (TLS on the gateway, client tokens).
SECURE_OPTIONS = ("tls-certificate", "tls-key", "tokens-file")
# The roles of the tokens a secure cluster gets, one token each (docs/security.md).
TOKEN_ROLES = ("admin", "write", "read")
# What tetherd must know to run as a cluster member.
CLUSTER_OPTIONS = ("cluster-port", "seeds", "directory-members")
TERMINATING = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT,
               signal.SIGABRT}


class ClusterError(Exception):
    """A cluster operation failed; the message says which node and why."""


# -- helpers -----------------------------------------------------------------------


def caf_value(value):
    """The text of a Python value in a CAF config file: strings quoted, lists in
    brackets, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(caf_value(v) for v in value) + "]"
    if isinstance(value, str):
        escaped = (value.replace("\\", "\\\\").replace('"', '\\"')
                   .replace("\n", "\\n").replace("\t", "\\t"))
        return '"' + escaped + '"'
    raise ClusterError(f"cannot write {value!r} ({type(value).__name__}) into a config file")


def guess_value(text):
    """A command-line VALUE as a Python value: integers, decimals, true/false as such;
    text already in CAF syntax (starting with a quote or a bracket) kept verbatim;
    anything else a string."""
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in ('"', "["):
        return _Verbatim(text)
    return text


class _Verbatim(str):
    """Config text the user wrote in CAF syntax."""


def option_name(name):
    """`window-ms`, `tether.window-ms` and `--tether.window-ms` all name one option."""
    name = name.lstrip("-")
    if name.startswith("tether."):
        name = name[len("tether."):]
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ClusterError(f"not an option name: {name!r}")
    return name


def options_text(extra):
    """{name: python value} -> {name: config text}."""
    out = {}
    for name, value in (extra or {}).items():
        name = option_name(name)
        if name in LAUNCHER_OPTIONS:
            raise ClusterError(f"tether.{name} is set by the launcher for each node")
        if name == "rules-file" and type(value) is str and value:
            value = os.path.abspath(value)  # nodes run in their own directories
        out[name] = str(value) if isinstance(value, _Verbatim) else caf_value(value)
    return out


def tetherd_options(tetherd):
    """The names of the tether.* options this tetherd binary declares (from
    --long-help). A CAF config file silently ignores keys the program does not
    declare, so the launcher checks every key it writes against this list."""
    try:
        r = subprocess.run([tetherd, "--long-help"], capture_output=True, text=True,
                           timeout=20, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise ClusterError(f"cannot run {tetherd}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{tetherd} --long-help did not finish in 20 s") from None
    names = set(re.findall(r"--tether\.([a-z0-9-]+)(?==|\s)", r.stdout + r.stderr))
    if not names:
        raise ClusterError(f"{tetherd} --long-help lists no tether options: is it tetherd?")
    return names


def port_is_free(port, strict):
    """Whether 127.0.0.1:port can be bound. Strict leaves out SO_REUSEADDR, so that a
    port with connections in TIME_WAIT counts as taken too."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if not strict:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count, avoid=()):
    """`count` distinct ports that are free now. They are drawn below the kernel's
    ephemeral range where possible: a port from that range can be taken by any
    outgoing connection while its node is down, and then a restart of the node on
    the same port fails."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    taken = set(avoid)
    ports = []
    rng = random.SystemRandom()
    if low > 11000:
        for _ in range(200 * count):
            if len(ports) == count:
                break
            p = rng.randrange(10000, low)
            if p not in taken and port_is_free(p, strict=True):
                ports.append(p)
                taken.add(p)
    held = []
    try:  # fallback: let the kernel choose
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            s.bind((HOST, 0))
            p = s.getsockname()[1]
            if p not in taken:
                ports.append(p)
                taken.add(p)
    finally:
        for s in held:
            s.close()
    return ports


def _proc_state(pid):
    """Single-letter state of a process from /proc (R, S, T, Z, ...), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def _wait_pid_gone(pid, timeout):
    """Waits until a process that is not our child is gone; True if it is."""
    deadline = time.monotonic() + timeout
    fd = None
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pass
    try:
        while True:
            state = _proc_state(pid)
            if state is None or state == "Z":
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fd is not None:
                select.select([fd], [], [], left)  # readable once it exits
            else:
                time.sleep(min(0.05, left))
    finally:
        if fd is not None:
            os.close(fd)


def _pdeathsig_preexec(parent_pid):
    """A preexec_fn that has the kernel SIGKILL the node when the process (strictly:
    the thread) that started it dies, so that a test killed hard leaves no nodes."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec():
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


def _signal_name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def parse_signal(text):
    """KILL, SIGKILL, kill or 9 -> signal.SIGKILL."""
    t = str(text).strip().upper()
    if t.isdigit():
        return signal.Signals(int(t))
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return signal.Signals[t]
    except KeyError:
        raise ClusterError(f"unknown signal {text!r}") from None


def _shown(path):
    """A path relative to the working directory when it lies below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


class _DeferSignals:
    """Ignores SIGINT and SIGTERM while a bounded cleanup runs (main thread only), so
    that a second Ctrl-C does not leave half the nodes running."""

    def __enter__(self):
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.saved[s] = signal.signal(s, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)
        return False


# -- the cluster ---------------------------------------------------------------------


class Node:
    """One member of the local cluster: its name, ports and files."""

    def __init__(self, base_dir, name, port, cluster_port, directory_member,
                 advertised_port=None):
        self.name = name
        self.port = port
        self.cluster_port = cluster_port
        # The port other nodes dial instead of cluster_port (a proxy in front of
        # it: tether.advertise-cluster-port); None: cluster_port itself.
        self.advertised_port = advertised_port
        self.directory_member = directory_member
        self.dir = os.path.join(base_dir, name)
        self.conf = os.path.join(self.dir, "tetherd.conf")
        self.log = os.path.join(self.dir, "tetherd.log")
        self.pid_file = os.path.join(self.dir, "tetherd.pid")
        self.data_dir = os.path.join(self.dir, "data")

    @property
    def index(self):
        return int(self.name.rsplit("-", 1)[1])

    def to_json(self):
        out = {"name": self.name, "port": self.port, "cluster_port": self.cluster_port,
               "directory_member": self.directory_member}
        if self.advertised_port is not None:
            out["advertised_port"] = self.advertised_port
        return out


class LocalCluster:
    """tetherd processes on 127.0.0.1 sharing one cluster directory.

    LocalCluster(tetherd_path, base_dir, base_port=0, extra_options=None) describes a
    cluster to start with up(n); LocalCluster.open(base_dir) takes over one that
    another process started (the command-line tool does that for every command).

    extra_options: {option name: value} written into every node's [tether] section,
    e.g. {"window-ms": 2000, "replication-factor": 3}. base_port 0 picks free ports.

    cluster_front: None, or a function (name, cluster port) -> port that puts
    something (a fault-injecting proxy, tests/chaos/netproxy.py) in front of each new
    node's cluster port: the node advertises the returned port
    (tether.advertise-cluster-port) and the seeds name it, so every node-to-node
    connection goes through it.

    As a context manager it always stops the nodes on the way out, on exceptions,
    Ctrl-C and SIGTERM included. Unless detach=True, the nodes are also killed by the
    kernel when the process (strictly: the thread) that started them dies, so a test
    killed hard leaves nothing behind; start nodes from the main thread or from a
    thread that outlives them.

    Thread safety: none; use one LocalCluster from one thread.
    """

    def __init__(self, tetherd_path, base_dir, base_port=0, extra_options=None, *,
                 ready_timeout=30.0, stop_timeout=10.0, detach=False, log=None,
                 tls=True, secure=False, cluster_front=None, scheduler_threads=None):
        self.cluster_front = cluster_front
        # CAF scheduler threads per node (scheduler.max-threads); None: the node's
        # default, one per core.
        self.scheduler_threads = scheduler_threads
        self.tetherd = os.path.abspath(tetherd_path)
        self.base_dir = os.path.abspath(base_dir)
        self.base_port = int(base_port)
        if not 0 <= self.base_port <= 65535 - 2 * CLUSTER_PORT_OFFSET:
            raise ClusterError(f"base port {base_port} out of range")
        self.options = options_text(extra_options)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.detach = detach
        self.clustered = None  # known once up() checked the binary
        # tls: mutual TLS between the nodes of a cluster, with a throwaway CA and node
        # certificates made by the openssl command into base_dir/tls
        # (docs/security.md); else the nodes run with tether.insecure=true. Used
        # when the binary knows tether.insecure (older ones have no TLS).
        self.tls = bool(tls)
        # secure: also TLS on every gateway (the node certificates name 127.0.0.1
        # and localhost too) and a tokens file with one admin, write and read token;
        # clients need the CA and a token (ssl_context(), token(role)).
        self.secure = bool(secure)
        if self.secure and not self.tls:
            raise ClusterError("a secure cluster runs TLS between the nodes too: "
                               "--secure and --insecure exclude each other")
        self.ca = None  # the CA certificate, once up() made it
        self.tokens = {}  # role -> token of a secure cluster
        self.directory_members = []
        self._nodes = {}  # name -> Node, in start order
        self._procs = {}  # name -> Popen of nodes this object started
        self._log = log or (lambda msg: None)
        self._saved_sigterm = None
        self._atexit = None
        self._known_options = None

    # -- state file --

    @property
    def state_path(self):
        return os.path.join(self.base_dir, STATE_FILE)

    @classmethod
    def open(cls, base_dir, **kwargs):
        """The cluster whose state is in base_dir/cluster.json."""
        path = os.path.join(os.path.abspath(base_dir), STATE_FILE)
        try:
            with open(path) as f:
                st = json.load(f)
        except FileNotFoundError:
            raise ClusterError(f"no cluster in {_shown(os.path.abspath(base_dir))} "
                               f"(no {STATE_FILE}); start one with `up`") from None
        except (OSError, ValueError) as e:
            raise ClusterError(f"cannot read {_shown(path)}: {e}") from None
        if st.get("version") != STATE_VERSION:
            raise ClusterError(f"{_shown(path)} has version {st.get('version')}, "
                               f"this launcher reads version {STATE_VERSION}")
        kwargs.setdefault("tls", bool(st.get("tls", False)))
        kwargs.setdefault("secure", bool(st.get("secure", False)))
        c = cls(st["tetherd"], base_dir, st["base_port"], None, **kwargs)
        c._load(st)
        return c

    def _load(self, st):
        self.options = dict(st["options"])
        self.scheduler_threads = st.get("scheduler_threads")
        self.clustered = st["clustered"]
        self.directory_members = list(st["directory_members"])
        self.ca = st.get("ca")
        self.tokens = dict(st.get("tokens") or {})
        self._nodes = {}
        for n in st["nodes"]:
            self._nodes[n["name"]] = Node(self.base_dir, n["name"], n["port"],
                                          n["cluster_port"], n["directory_member"],
                                          n.get("advertised_port"))

    def _save(self):
        st = {"version": STATE_VERSION, "tetherd": self.tetherd,
              "base_port": self.base_port, "host": HOST, "clustered": self.clustered,
              "directory_members": self.directory_members, "options": self.options,
              "tls": self.tls, "ca": self.ca, "secure": self.secure,
              "scheduler_threads": self.scheduler_threads,
              "nodes": [n.to_json() for n in self._nodes.values()]}
        if self.secure:
            st["tokens"] = self.tokens
        os.makedirs(self.base_dir, exist_ok=True)
        tmp = self.state_path + ".tmp"
        # A secure cluster's state holds its tokens: readable by this user only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600 if self.secure else 0o644)
        os.fchmod(fd, 0o600 if self.secure else 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(st, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.state_path)

    # -- queries --

    @property
    def nodes(self):
        """Names of all nodes, running or not, in the order they were added."""
        return list(self._nodes)

    def node(self, name):
        try:
            return self._nodes[name]
        except KeyError:
            known = ", ".join(self._nodes) or "none"
            raise ClusterError(f"no node {name!r} in this cluster (nodes: {known})") from None

    def gateway(self, name):
        """(host, port) of the node's HTTP/WebSocket gateway."""
        return (HOST, self.node(name).port)

    def server(self, name):
        """The node's gateway as tetherctl and tether-load take it: HOST:PORT, or
        https://HOST:PORT for a secure cluster (pass --ca with ca, and a token)."""
        if self.secure:
            return f"https://{HOST}:{self.node(name).port}"
        return f"{HOST}:{self.node(name).port}"

    def url(self, name, websocket=False):
        """The gateway's base URL: http:// or https:// (ws:// or wss://)."""
        scheme = ("wss" if websocket else "https") if self.secure \
            else ("ws" if websocket else "http")
        return f"{scheme}://{HOST}:{self.node(name).port}"

    def token(self, role):
        """The token of `role` (admin, write, read) of a secure cluster, else None."""
        return self.tokens.get(role) if self.secure else None

    def token_file(self, role):
        """A file whose first line is the token of `role` (for --token-file), or
        None for a cluster without tokens."""
        if not self.secure:
            return None
        return os.path.join(self._tls_dir, f"{role}.token")

    def ssl_context(self):
        """An ssl.SSLContext that trusts the cluster's CA (a secure cluster), else
        None; made once (loading the CA costs more than a handshake). It checks that
        a gateway's certificate names 127.0.0.1."""
        if not self.secure:
            return None
        if getattr(self, "_ssl_context", None) is None or self._ssl_ca != self.ca:
            self._ssl_context = ssl.create_default_context(cafile=self.ca)
            self._ssl_ca = self.ca
        return self._ssl_context

    def cluster_address(self, name):
        """HOST:PORT other nodes dial to reach the node."""
        n = self.node(name)
        return f"{HOST}:{n.advertised_port or n.cluster_port}"

    def seeds_for(self, name):
        """Cluster addresses of the directory members other than the node itself."""
        return [self.cluster_address(m) for m in self.directory_members if m != name]

    def pid(self, name):
        """Pid of the node's running tetherd, or None.

        A pid file whose process is gone, is a zombie, or is some other program (the
        pid was reused) does not count: the node is then not running."""
        n = self.node(name)
        try:
            with open(n.pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        proc = self._procs.get(name)
        if proc is not None and proc.pid == pid:
            return pid if proc.poll() is None else None
        state = _proc_state(pid)
        if state is None or state == "Z":
            return None
        cmd = _proc_cmdline(pid) or []
        if f"--config-file={n.conf}" not in cmd:
            return None
        return pid

    def alive(self, name):
        return self.pid(name) is not None

    def paused(self, name):
        """Whether the node is stopped by SIGSTOP (see kill)."""
        pid = self.pid(name)
        return pid is not None and _proc_state(pid) in ("T", "t")

    def log_tail(self, name, lines=20):
        """The last lines the node wrote since its latest start."""
        try:
            with open(self.node(name).log, errors="replace") as f:
                text = f.read()
        except OSError:
            return "(no log)"
        start = text.rfind(LOG_MARK)
        if start >= 0:
            text = text[start:]
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    def http_get(self, name, path, timeout=5.0, token=None):
        """(status, body text) of GET path on the node's gateway; on a secure cluster
        over TLS with the read token unless `token` is given."""
        host, port = self.gateway(name)
        headers = {}
        if self.secure:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                               context=self.ssl_context())
            headers["Authorization"] = f"Bearer {token or self.tokens['read']}"
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            if token:
                headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()

    def http_get_json(self, name, path, timeout=5.0):
        """The JSON body of GET path on the node's gateway; ClusterError unless 200."""
        try:
            status, body = self.http_get(name, path, timeout)
        except (OSError, http.client.HTTPException) as e:
            raise ClusterError(f"GET {path} on {name} ({self.server(name)}): {e}") from None
        if status != 200:
            raise ClusterError(f"GET {path} on {name}: HTTP {status}: {body.strip()}")
        return json.loads(body)

    def ready(self, name):
        """(ready, reason): /readyz answered 200, or why not."""
        try:
            status, body = self.http_get(name, "/readyz", timeout=2.0)
        except ssl.SSLError as e:  # an OSError: the handshake failed, not the port
            return False, f"TLS handshake failed ({e.reason or e})"
        except OSError as e:
            return False, f"gateway not reachable ({e.strerror or e})"
        except http.client.HTTPException as e:
            return False, f"gateway answered no HTTP ({e!r})"
        return status == 200, (f"/readyz {status}: {body.strip()}" if status != 200 else "")

    # -- starting --

    def _check_binary(self):
        if not os.access(self.tetherd, os.X_OK):
            raise ClusterError(f"no tetherd at {_shown(self.tetherd)}; build it with "
                               "`cmake --build build --target tetherd` or pass --tetherd")
        if self._known_options is None:
            self._known_options = tetherd_options(self.tetherd)
        return self._known_options

    def _check_options(self, names):
        known = self._check_binary()
        unknown = sorted(n for n in names if n not in known)
        if unknown:
            raise ClusterError(
                f"{_shown(self.tetherd)} does not declare "
                + ", ".join("tether." + n for n in unknown)
                + " (not in its --long-help); a config file would ignore it silently")

    def _config_text(self, n):
        lines = [f"; {n.name} of the local Tether cluster in {self.base_dir}.",
                 "; Written by tools/tether-cluster; the node runs as",
                 f";   {self.tetherd} --config-file={n.conf}",
                 f"; Edit, then `tools/tether-cluster restart {n.name} --dir {self.base_dir}`"
                 " to apply. `up` writes it anew.",
                 "[tether]",
                 f"name={caf_value(n.name)}",
                 f"host={caf_value(HOST)}",
                 f"port={n.port}"]
        if self.clustered:
            known = self._check_binary()
            if "cluster-host" in known:
                lines.append(f"cluster-host={caf_value(HOST)}")
            lines.append(f"cluster-port={n.cluster_port}")
            if n.advertised_port is not None:
                lines.append(f"advertise-cluster-port={n.advertised_port}")
            seeds = self.seeds_for(n.name)
            if seeds:
                lines.append(f"seeds={caf_value(seeds)}")
            lines.append(f"directory-members={caf_value(self.directory_members)}")
            if "data-dir" in known:
                lines.append(f"data-dir={caf_value(n.data_dir)}")
            if not self.ca and "insecure" in known:
                lines.append("insecure=true  ; no node-to-node TLS (`up --insecure`)")
        if self.secure:
            crt, key = self._node_certificate(n)
            lines += [f"tls-certificate={caf_value(crt)}  ; gateway TLS (`up --secure`)",
                      f"tls-key={caf_value(key)}",
                      f"tokens-file={caf_value(self._tokens_path)}"]
        for name, text in self.options.items():
            lines.append(f"{name}={text}")
        if self.scheduler_threads:
            lines += ["[scheduler]",
                      f"max-threads={int(self.scheduler_threads)}"]
        if self.clustered and self.ca:
            crt, key = self._node_certificate(n)
            lines += ["[openssl]",
                      f"certificate={caf_value(crt)}",
                      f"key={caf_value(key)}",
                      f"cafile={caf_value(self.ca)}"]
        return "\n".join(lines) + "\n"

    # -- node-to-node TLS: a throwaway CA and node certificates --

    @property
    def _tls_dir(self):
        return os.path.join(self.base_dir, "tls")

    def _openssl(self, *args):
        try:
            r = subprocess.run(["openssl", *args], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ClusterError("node-to-node TLS needs the openssl command (Debian: "
                               "openssl); `up --insecure` runs without TLS") from None
        if r.returncode != 0:
            raise ClusterError(f"openssl {args[0]} failed: {r.stderr.strip()[-400:]}")

    def _make_ca(self):
        """A new CA for a new cluster (nothing is reused): its key signs the node
        certificates, its certificate is every node's openssl.cafile."""
        shutil.rmtree(self._tls_dir, ignore_errors=True)
        os.makedirs(self._tls_dir, mode=0o700)
        self.ca = os.path.join(self._tls_dir, "ca.crt")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", os.path.join(self._tls_dir, "ca.key"), "-out", self.ca,
                      "-days", "30", "-subj", "/CN=tether local cluster CA")

    def _node_certificate(self, n):
        """(certificate, key) of node n signed by the cluster's CA, whose CN and DNS
        name are the node's name, usable as TLS server and client; made once per
        node (restart and add reuse it). It also names localhost and 127.0.0.1, where
        clients reach the node's gateway: with `up --secure` it is the gateway's
        certificate too."""
        crt = os.path.join(self._tls_dir, f"{n.name}.crt")
        key = os.path.join(self._tls_dir, f"{n.name}.key")
        if os.path.exists(crt) and os.path.exists(key):
            return crt, key
        csr = os.path.join(self._tls_dir, f"{n.name}.csr")
        ext = os.path.join(self._tls_dir, f"{n.name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{n.name},DNS:localhost,IP:{HOST}\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                      "-out", csr, "-subj", f"/CN={n.name}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca,
                      "-CAkey", os.path.join(self._tls_dir, "ca.key"), "-CAcreateserial",
                      "-out", crt, "-days", "30", "-extfile", ext)
        os.unlink(csr)
        os.unlink(ext)
        return crt, key

    @property
    def _tokens_path(self):
        return os.path.join(self._tls_dir, "tokens")

    def _make_tokens(self):
        """One random token per role: the nodes' tokens file (any producer id for
        admin and write) and one file per role holding just its token."""
        self.tokens = {role: secrets.token_hex(32) for role in TOKEN_ROLES}
        lines = ["# Tokens of the local secure cluster; written by tools/tether-cluster.",
                 "# TOKEN ROLE [PRODUCER-PREFIX] (docs/security.md)"]
        for role, token in self.tokens.items():
            lines.append(f"{token}  {role}" + ("  *" if role != "read" else ""))
        self._write_secret(self._tokens_path, "\n".join(lines) + "\n")
        for role, token in self.tokens.items():
            self._write_secret(self.token_file(role), token + "\n")

    @staticmethod
    def _write_secret(path, text):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def _write_config(self, n):
        os.makedirs(n.data_dir, exist_ok=True)
        with open(n.conf, "w") as f:
            f.write(self._config_text(n))

    def _allocate(self, count, first_index):
        """(gateway port, cluster port) for `count` new nodes."""
        if self.base_port == 0:
            used = [p for n in self._nodes.values() for p in (n.port, n.cluster_port)]
            ports = free_ports(2 * count, avoid=used)
            return list(zip(ports[:count], ports[count:]))
        last = first_index + count - 1
        if last > MAX_FIXED_NODES:
            raise ClusterError(f"a base port fits {MAX_FIXED_NODES} nodes (gateway "
                               f"base+i, cluster base+{CLUSTER_PORT_OFFSET}+i); "
                               "use base port 0 for free ports instead")
        out = []
        for i in range(first_index, last + 1):
            pair = (self.base_port + i, self.base_port + CLUSTER_PORT_OFFSET + i)
            for port, what in zip(pair, ("gateway", "cluster port")):
                if not port_is_free(port, strict=False):
                    raise ClusterError(
                        f"127.0.0.1:{port} ({what} of tether-{i}) is in use: another "
                        "cluster or node may be running (`tools/tether-cluster status`), "
                        "or choose another --base-port")
            out.append(pair)
        return out

    def _front(self, name, cluster_port):
        """The port the node advertises (cluster_front), or None."""
        if self.cluster_front is None or not self.clustered:
            return None
        if "advertise-cluster-port" not in self._check_binary():
            raise ClusterError(f"{_shown(self.tetherd)} has no "
                               "tether.advertise-cluster-port: no proxy can sit in "
                               "front of its cluster port")
        return int(self.cluster_front(name, cluster_port))

    def _start(self, name):
        n = self.node(name)
        if self.alive(name):
            raise ClusterError(f"{name} is already running (pid {self.pid(name)})")
        try:
            os.unlink(n.pid_file)  # stale
        except FileNotFoundError:
            pass
        self._check_binary()
        os.makedirs(n.data_dir, exist_ok=True)
        cmd = [self.tetherd, f"--config-file={n.conf}"]
        with open(n.log, "a") as log:
            log.write(f"{LOG_MARK}starting {name} at "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(
                cmd, cwd=n.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=None if self.detach else _pdeathsig_preexec(os.getpid()))
        self._procs[name] = proc
        with open(n.pid_file, "w") as f:
            f.write(f"{proc.pid}\n")
        self._log(f"started {name} (pid {proc.pid})")
        return proc.pid

    def _arm_cleanup(self):
        """Stops owned nodes at interpreter exit (no-op when detached)."""
        if self.detach or self._atexit is not None:
            return
        self._atexit = self._cleanup_at_exit
        atexit.register(self._atexit)

    def _cleanup_at_exit(self):
        if any(self.alive(n) for n in self._nodes):
            self.down()

    def up(self, n, wait=True):
        """Starts a new cluster of n nodes and waits until each one is ready.

        Refuses while nodes of a cluster in the same directory run; otherwise the
        node directories of the previous cluster there are removed first. If a node
        fails to start or to get ready, every node started here is stopped again and
        ClusterError tells which node failed, with the end of its log."""
        n = int(n)
        if n < 1:
            raise ClusterError("a cluster needs at least one node")
        if os.path.exists(self.state_path):
            old = LocalCluster.open(self.base_dir, detach=True)
            running = [f"{m} (pid {old.pid(m)})" for m in old.nodes if old.alive(m)]
            if running:
                raise ClusterError(
                    f"a cluster is running in {_shown(self.base_dir)}: "
                    + ", ".join(running)
                    + f"; stop it first (`tools/tether-cluster down --dir "
                      f"{_shown(self.base_dir)}`)")
            for m in old._nodes.values():
                shutil.rmtree(m.dir, ignore_errors=True)
            os.unlink(self.state_path)
            self._log(f"removed the previous cluster's node directories in "
                      f"{_shown(self.base_dir)}")
        known = self._check_binary()
        self.clustered = all(o in known for o in CLUSTER_OPTIONS)
        if not self.clustered and n > 1:
            raise ClusterError(
                f"{_shown(self.tetherd)} has no clustering options (tether.cluster-port, "
                f"seeds, directory-members are not in its --long-help); it can run a "
                f"single node (--nodes 1) but not {n}")
        self._check_options(self.options)
        members = MAX_DIRECTORY_MEMBERS if n >= MAX_DIRECTORY_MEMBERS else 1
        self.directory_members = [f"tether-{i}" for i in range(1, members + 1)]
        self.ca = None
        self.tokens = {}
        if self.secure:
            missing = [o for o in SECURE_OPTIONS if o not in known]
            if missing:
                raise ClusterError(
                    f"{_shown(self.tetherd)} has no gateway TLS or tokens (no "
                    + ", ".join("tether." + o for o in missing)
                    + " in its --long-help): it cannot run `up --secure`")
            clash = [o for o in SECURE_OPTIONS if o in self.options]
            if clash:
                raise ClusterError("`up --secure` sets " + ", ".join(
                    "tether." + o for o in clash) + " itself")
            self._make_ca()
            self._make_tokens()
        elif self.clustered and self.tls and "insecure" in known:
            self._make_ca()
        self._nodes = {}
        for i, (port, cport) in enumerate(self._allocate(n, 1), start=1):
            name = f"tether-{i}"
            self._nodes[name] = Node(self.base_dir, name, port, cport,
                                     name in self.directory_members,
                                     self._front(name, cport))
        for node in self._nodes.values():
            shutil.rmtree(node.dir, ignore_errors=True)  # a new cluster starts empty
            self._write_config(node)
        self._save()
        self._arm_cleanup()
        try:
            for name in self._nodes:
                self._start(name)
            if wait:
                self._wait_ready(list(self._nodes), None)
        except BaseException:
            with _DeferSignals():
                self.down()
            raise
        return self.nodes

    def add(self, wait=True):
        """Starts one more node, tether-(N+1), as a plain member joining through the
        directory members; returns its name. It stays in the cluster (stopped) if it
        does not get ready."""
        if not self._nodes:
            raise ClusterError("no cluster to add a node to; start one with up()")
        if not self.clustered:
            raise ClusterError(f"this cluster runs {_shown(self.tetherd)} without "
                               "clustering options: a node cannot join it")
        self._check_options(self.options)
        index = max(n.index for n in self._nodes.values()) + 1
        (port, cport), = self._allocate(1, index)
        name = f"tether-{index}"
        node = Node(self.base_dir, name, port, cport, False, self._front(name, cport))
        shutil.rmtree(node.dir, ignore_errors=True)
        self._nodes[name] = node
        self._write_config(node)
        self._save()
        self._arm_cleanup()
        try:
            self._start(name)
            if wait:
                self._wait_ready([name], None)
        except BaseException:
            with _DeferSignals():
                self._log(self.stop(name))
            raise
        return name

    def restart(self, name, wait=True):
        """Stops the node if it runs (SIGTERM) and starts it again: same name, ports,
        config and data directory. Waits until it is ready unless wait=False."""
        self.node(name)
        if self.alive(name):
            self._log(self.stop(name))
        self._arm_cleanup()
        self._start(name)
        if wait:
            self._wait_ready([name], None)

    def wait_ready(self, name=None, timeout=None):
        """Waits until /readyz answers 200 on the node, or with name None on every
        node that should be running (has a pid file: started and not stopped through
        the launcher). ClusterError names each node that exited or is not ready in
        time, with the end of its log."""
        if name is not None:
            names = [self.node(name).name]
        else:
            names = [m for m, n in self._nodes.items() if os.path.exists(n.pid_file)]
        self._wait_ready(names, timeout)

    def _wait_ready(self, names, timeout):
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        waiting = dict.fromkeys(names, "not checked yet")
        if waiting:
            self._log("waiting until " + ", ".join(waiting) + " "
                      + ("is" if len(waiting) == 1 else "are") + " ready")
        while waiting:
            for name in list(waiting):
                if not self.alive(name):
                    proc = self._procs.get(name)
                    code = proc.returncode if proc is not None else None
                    how = f" (exit code {code})" if code is not None and code >= 0 \
                        else (f" (killed by {_signal_name(-code)})" if code is not None
                              else "")
                    raise ClusterError(
                        f"{name} exited{how} before it was ready; end of "
                        f"{_shown(self.node(name).log)}:\n{self.log_tail(name)}")
                ok, reason = self.ready(name)
                if ok:
                    del waiting[name]
                else:
                    waiting[name] = reason
            if not waiting:
                break
            if time.monotonic() >= deadline:
                parts = []
                for name, reason in waiting.items():
                    parts.append(f"{name} is not ready after {timeout:g} s ({reason}); "
                                 f"end of {_shown(self.node(name).log)}:\n"
                                 f"{self.log_tail(name)}")
                raise ClusterError("\n".join(parts))
            time.sleep(0.1)  # /readyz has no push; poll it
        return True

    # -- stopping --

    def _wait_gone(self, name, pid, timeout):
        proc = self._procs.get(name)
        if proc is not None and proc.pid == pid:
            try:
                proc.wait(timeout=max(timeout, 0))
                return True
            except subprocess.TimeoutExpired:
                return False
        return _wait_pid_gone(pid, timeout)

    def _forget(self, name):
        try:
            os.unlink(self.node(name).pid_file)
        except FileNotFoundError:
            pass

    def kill(self, name, sig=signal.SIGKILL):
        """Sends a signal to the node's tetherd. For KILL, TERM, INT, QUIT and ABRT it
        waits until the process is gone (SIGKILL after the stop timeout) and the node
        counts as stopped; others (STOP, CONT, HUP) are only sent."""
        sig = parse_signal(sig) if not isinstance(sig, int) else signal.Signals(sig)
        pid = self.pid(name)
        if pid is None:
            self._forget(name)
            raise ClusterError(f"{name} is not running")
        os.kill(pid, sig)
        if sig not in TERMINATING:
            return f"{name}: sent {sig.name} to pid {pid}"
        if sig != signal.SIGKILL and self.paused(name):
            os.kill(pid, signal.SIGCONT)  # a stopped process would not act on it
        return self._finish_stop(name, pid, sig)

    def _finish_stop(self, name, pid, sig, deadline=None):
        t0 = time.monotonic()
        deadline = t0 + self.stop_timeout if deadline is None else deadline
        if self._wait_gone(name, pid, deadline - time.monotonic()):
            how = f"stopped by {sig.name}"
        else:
            os.kill(pid, signal.SIGKILL)
            if not self._wait_gone(name, pid, 10):
                raise ClusterError(f"{name} (pid {pid}) survived SIGKILL for 10 s")
            how = (f"did not stop within {self.stop_timeout:g} s of {sig.name}; "
                   "killed with SIGKILL")
        self._forget(name)
        proc = self._procs.get(name)
        code = proc.returncode if proc is not None and proc.pid == pid else None
        return f"{name} (pid {pid}): {how}" + (f", exit code {code}" if code is not None
                                              and code >= 0 else "")

    def stop(self, name):
        """Stops the node with SIGTERM (SIGKILL after the stop timeout)."""
        pid = self.pid(name)
        if pid is None:
            self._forget(name)
            return f"{name}: not running"
        if self.paused(name):
            os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        return self._finish_stop(name, pid, signal.SIGTERM)

    def down(self):
        """Stops every node: SIGTERM to all at once, SIGKILL for those still running
        after the stop timeout. Returns one line per node. Files stay."""
        lines = []
        running = []
        for name in self._nodes:
            pid = self.pid(name)
            if pid is None:
                had_pid = os.path.exists(self.node(name).pid_file)
                self._forget(name)
                lines.append(f"{name}: not running" + (" (removed a stale pid file)"
                                                       if had_pid else ""))
                continue
            if _proc_state(pid) in ("T", "t"):
                os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
            running.append((name, pid))
        deadline = time.monotonic() + self.stop_timeout
        for name, pid in running:
            lines.append(self._finish_stop(name, pid, signal.SIGTERM, deadline))
        for line in lines:
            self._log(line)
        return lines

    # -- context manager --

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            def on_term(signum, frame):
                raise SystemExit(128 + signum)
            self._saved_sigterm = signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, *exc):
        try:
            with _DeferSignals():
                self.down()
        finally:
            if self._saved_sigterm is not None:
                signal.signal(signal.SIGTERM, self._saved_sigterm)
                self._saved_sigterm = None
            if self._atexit is not None:
                atexit.unregister(self._atexit)
                self._atexit = None
        return False


# -- command line --------------------------------------------------------------------


def _node_rows(c, with_ready):
    rows = []
    for name in c.nodes:
        n = c.node(name)
        pid = c.pid(name)
        role = ("standalone" if not c.clustered
                else "directory" if n.directory_member else "member")
        cluster = c.cluster_address(name) if c.clustered else "-"
        row = [name, c.server(name), cluster, role]
        if not with_ready:
            rows.append(row + [pid or "-"])
            continue
        if pid is not None:
            state = "paused (SIGSTOP)" if c.paused(name) else "running"
            if state == "running":
                ok, reason = c.ready(name)
                ready = "yes" if ok else "no: " + reason
            else:
                ready = "-"
        elif os.path.exists(n.pid_file):
            state, ready = "exited", "-"
        else:
            state, ready = "stopped", "-"
        rows.append(row + [pid or "-", state, ready])
    return rows


def _print_nodes(c):
    print(table(_node_rows(c, False), ["name", "gateway", "cluster", "role", "pid"]))


def _hint(c):
    d = _shown(c.base_dir)
    opt = "" if c.base_dir == os.path.abspath(DEFAULT_DIR) else f" --dir {d}"
    print(f"logs: {d}/<name>/tetherd.log   status: tools/tether-cluster status{opt}"
          f"   stop: tools/tether-cluster down{opt}")
    if c.secure and c.nodes:
        first = c.nodes[0]
        print(f"secure: TLS on every gateway (CA {_shown(c.ca)}), tokens in "
              f"{_shown(c.token_file('admin'))}, write.token, read.token "
              f"and {_shown(c.state_path)}; e.g.\n"
              f"  build/bin/tetherctl --server {c.server(first)} --ca {_shown(c.ca)} "
              f"--token-file {_shown(c.token_file('read'))} nodes")


def _cmd_up(args, log):
    extra = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep:
            raise ClusterError(f"--option wants NAME=VALUE, got {item!r}")
        extra[name] = guess_value(value)
    if args.window_ms is not None:
        extra["window-ms"] = args.window_ms
    if args.replication_factor is not None:
        extra["replication-factor"] = args.replication_factor
    share = max(1, (os.cpu_count() or 1) // args.nodes)
    if "shards" not in extra and args.nodes > 1:
        # The nodes share this machine's cores: one shard per core each would put
        # nodes x cores shards on them and double the messages of every write.
        extra["shards"] = share
    threads = args.scheduler_threads
    if threads is None and args.nodes > 1:
        # Likewise one scheduler thread per core each would put nodes x cores
        # threads on the cores, and every message between two of a node's actors
        # could wake a second thread (docs/benchmarks.md, "Compact node-to-node
        # writes").
        threads = share
    threads = threads or None  # 0: the node's own default
    if args.rules_file:
        if not os.path.isfile(args.rules_file):
            raise ClusterError(f"no rules file {args.rules_file}")
        extra["rules-file"] = args.rules_file
    c = LocalCluster(args.tetherd, args.dir, args.base_port, extra,
                     ready_timeout=args.timeout, detach=not args.foreground, log=log,
                     tls=not args.insecure, secure=args.secure,
                     scheduler_threads=threads)
    with c if args.foreground else contextlib.nullcontext():
        c.up(args.nodes)
        if not c.clustered:
            log("this tetherd has no clustering options: started a standalone node")
        _print_nodes(c)
        _hint(c)
        if args.foreground:
            _watch_foreground(c, log)
    return 0


def _watch_foreground(c, log):
    """Reports nodes that stop or come back until Ctrl-C or SIGTERM; the caller's
    context manager then stops the cluster."""
    print("running in the foreground; Ctrl-C stops the cluster", flush=True)
    up = {name: c.alive(name) for name in c.nodes}
    while True:
        time.sleep(1)
        for name in c.nodes:
            now = c.alive(name)
            if now != up.get(name):
                if now:
                    log(f"{name} is running again (pid {c.pid(name)})")
                else:
                    log(f"{name} is no longer running; end of its log:\n{c.log_tail(name, 5)}")
                up[name] = now


def _cmd_add(args, log):
    c = LocalCluster.open(args.dir, ready_timeout=args.timeout, detach=True, log=log)
    name = c.add()
    print(table([r for r in _node_rows(c, False) if r[0] == name],
                ["name", "gateway", "cluster", "role", "pid"]))
    return 0


def _cmd_down(args, log):
    try:
        c = LocalCluster.open(args.dir, stop_timeout=args.timeout, detach=True)
    except ClusterError as e:
        print(f"nothing to stop: {e}")
        return 0
    for line in c.down():
        print(line)
    return 0


def _cmd_status(args, log):
    c = LocalCluster.open(args.dir, detach=True)
    rows = _node_rows(c, True)
    if args.json:
        keys = ["name", "gateway", "cluster", "role", "pid", "state", "ready"]
        out = [{k: (None if v == "-" else v) for k, v in zip(keys, r)} for r in rows]
        for o in out:
            o["ready"] = o["ready"] == "yes"
        print(json.dumps(out, indent=2))
    else:
        print(table(rows, ["name", "gateway", "cluster", "role", "pid", "state", "ready"]))
    return 0 if all(r[5] == "running" and r[6] == "yes" for r in rows) else 1


def _cmd_kill(args, log):
    c = LocalCluster.open(args.dir, stop_timeout=args.timeout, detach=True)
    print(c.kill(args.name, parse_signal(args.signal)))
    return 0


def _cmd_stop(args, log):
    c = LocalCluster.open(args.dir, stop_timeout=args.timeout, detach=True)
    print(c.stop(args.name))
    return 0


def _cmd_restart(args, log):
    c = LocalCluster.open(args.dir, ready_timeout=args.timeout, detach=True, log=log)
    c.restart(args.name)
    print(table([r for r in _node_rows(c, False) if r[0] == args.name],
                ["name", "gateway", "cluster", "role", "pid"]))
    return 0


def _cmd_logs(args, log):
    c = LocalCluster.open(args.dir, detach=True)
    n = c.node(args.name)
    print(f"==> {_shown(n.log)} <==", file=sys.stderr)
    print(c.log_tail(args.name, args.lines))
    return 0


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=os.environ.get("TETHER_CLUSTER_DIR", DEFAULT_DIR),
                        help="cluster directory (default: $TETHER_CLUSTER_DIR, else "
                             "build/cluster in the repository)")
    p = argparse.ArgumentParser(
        prog="tether-cluster",
        description="Start, inspect and stop a local Tether cluster of tetherd "
                    "processes on 127.0.0.1. Node tether-i serves HTTP/WebSocket on "
                    "BASE+i and node-to-node traffic on BASE+10+i.",
        epilog="Exit codes: 0 ok, 1 failure (status: a node not running or not "
               "ready), 2 usage error, 130 interrupted.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", parents=[common], help="start a new cluster of N nodes",
                        description="Start tether-1..tether-N and wait until every "
                                    "node's /readyz answers 200.")
    up.add_argument("--nodes", type=int, required=True, metavar="N")
    up.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, metavar="P",
                    help="gateway of tether-i on P+i, cluster port P+10+i; 0 picks free "
                         "ports (default 7480)")
    up.add_argument("--rules-file", metavar="F", help="aggregation rules for every node")
    up.add_argument("--window-ms", type=int, metavar="MS", help="window length")
    up.add_argument("--replication-factor", type=int, metavar="RF")
    up.add_argument("--scheduler-threads", type=int, metavar="N",
                    help="CAF scheduler threads per node (default with more than one "
                         "node: cores / nodes, at least 1; 0: one per core)")
    up.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE",
                    help="any other tether option for every node, e.g. lateness-ms=1000 "
                         "(repeatable)")
    up.add_argument("--tetherd", default=os.environ.get("TETHERD", DEFAULT_TETHERD),
                    help="tetherd binary (default: $TETHERD, else build/bin/tetherd)")
    up.add_argument("--timeout", type=float, default=30.0, metavar="S",
                    help="seconds to wait for readiness (default 30)")
    up.add_argument("--insecure", action="store_true",
                    help="no TLS between the nodes (tether.insecure=true); by default "
                         "a throwaway CA and node certificates are made with the openssl "
                         "command into DIR/tls and the nodes accept only each other")
    up.add_argument("--secure", action="store_true",
                    help="also TLS on every gateway (https://, wss://; the node "
                         "certificates name 127.0.0.1 and localhost) and client tokens: "
                         "an admin, a write and a read token in DIR/tls (tokens file and "
                         "one file per role) and in cluster.json")
    up.add_argument("--foreground", action="store_true",
                    help="stay attached: report nodes that stop, and stop the cluster "
                         "on Ctrl-C")
    up.set_defaults(run=_cmd_up)

    add = sub.add_parser("add", parents=[common], help="start one more node",
                         description="Start tether-(N+1), a plain member that joins "
                                     "through the directory members.")
    add.add_argument("--timeout", type=float, default=30.0, metavar="S")
    add.set_defaults(run=_cmd_add)

    down = sub.add_parser("down", parents=[common], help="stop every node",
                          description="SIGTERM to every node, SIGKILL to those still "
                                      "running after the timeout. Files stay.")
    down.add_argument("--timeout", type=float, default=10.0, metavar="S")
    down.set_defaults(run=_cmd_down)

    status = sub.add_parser("status", parents=[common],
                            help="pid, state and readiness of each node")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_cmd_status)

    kill = sub.add_parser("kill", parents=[common], help="send a signal to a node",
                          description="Send a signal (default KILL) to one node; for "
                                      "KILL/TERM/INT/QUIT/ABRT wait until it is gone. "
                                      "STOP and CONT pause and resume it.")
    kill.add_argument("name")
    kill.add_argument("--signal", default="KILL", help="KILL (default), TERM, STOP, CONT, ...")
    kill.add_argument("--timeout", type=float, default=10.0, metavar="S")
    kill.set_defaults(run=_cmd_kill)

    stop = sub.add_parser("stop", parents=[common], help="stop one node (SIGTERM)")
    stop.add_argument("name")
    stop.add_argument("--timeout", type=float, default=10.0, metavar="S")
    stop.set_defaults(run=_cmd_stop)

    restart = sub.add_parser("restart", parents=[common],
                             help="stop (if running) and start one node again",
                             description="Same name, ports, config and data directory; "
                                         "waits until it is ready.")
    restart.add_argument("name")
    restart.add_argument("--timeout", type=float, default=30.0, metavar="S")
    restart.set_defaults(run=_cmd_restart)

    logs = sub.add_parser("logs", parents=[common],
                          help="the end of a node's log since its latest start")
    logs.add_argument("name")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(run=_cmd_logs)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def log(msg):
        print(f"tether-cluster: {msg}", file=sys.stderr, flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        return args.run(args, log)
    except ClusterError as e:
        print(f"tether-cluster: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tether-cluster: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `status | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
