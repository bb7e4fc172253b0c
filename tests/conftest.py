"""Shared options, fixtures and hooks of the Python end-to-end tests run by pytest.

tests/README.md says how they run. The options are the ones the tests took on their
own command lines before; each is optional here and a test that needs a missing one
fails at setup saying which (a missing binary or tool a test may go without is a
skip, decided by the test).

Hooks:
  - exit status 77 (ctest's SKIP_RETURN_CODE) when tests ran, none failed and every
    one was skipped; 5 (nothing collected) stays a failure;
  - `failure_report`: text (node log tails) added to the report of a failing test;
  - `watchdog`: a time budget for a module; past it the processes it names are
    stopped and the run is interrupted (exit status 2).
"""
import os
import shutil
import signal
import threading

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("tether", "Tether end-to-end tests (tests/README.md)")
    g.addoption("--bin", metavar="DIR",
                help="directory with tetherd, tetherctl, tether-load (build/bin)")
    g.addoption("--tetherd", metavar="PATH",
                help="the tetherd binary (default: tetherd in --bin)")
    g.addoption("--python-dir", metavar="DIR",
                help="directory with the generated tether_pb2.py (build/python)")
    g.addoption("--docs", metavar="PATH",
                help="docs/operations.md (options_table_test.py)")
    g.addoption("--layering", metavar="PATH",
                help="layering_test.py: the declared folder graph "
                     "(build/libactors/layering.txt)")
    g.addoption("--update", action="store_true",
                help="options_table_test.py: rewrite the docs' options table instead of "
                     "failing when it differs")
    g.addoption("--prometheus", metavar="PATH",
                default=shutil.which("prometheus") or "/usr/bin/prometheus",
                help="the prometheus binary (prometheus_e2e.py; default: %(default)s)")
    g.addoption("--screenshot", metavar="PNG",
                help="dashboard_test.py: where to save the page")
    g.addoption("--linger", type=float, default=0.0, metavar="S",
                help="dashboard_test.py: seconds of load before the first screenshot "
                     "(default 0)")
    g.addoption("--budget", type=float, metavar="S",
                help="the watchdog's budget for the whole module: security_test.py "
                     "(default 150), limits_test.py (200), stream_test.py (55), "
                     "tls_test.py (270), secure_test.py (280)")
    g.addoption("--plain", action="store_true",
                help="cluster_test.py: clusters with plain gateways and no tokens "
                     "(default: `up --secure`)")
    g.addoption("--insecure", action="store_true",
                help="cluster_test.py: also no TLS between the nodes (`up --insecure`); "
                     "implies --plain")
    g.addoption("--delay", type=float, default=100.0, metavar="MS",
                help="latency_restart_test.py: delay each way on every link between "
                     "the nodes (default 100)")
    g.addoption("--ready-timeout", type=float, default=30.0, metavar="S",
                help="latency_restart_test.py: how long the restarted node may take "
                     "to get ready (default 30)")

    # The chaos checkers (tests/chaos/README.md): failover_checker.py's options, also
    # taken by netfault_test.py; partition_test.py shares some. An option whose default
    # differs between the files is None here and each file applies its own.
    c = parser.getgroup("tether-chaos", "Tether chaos checkers (tests/chaos/README.md)")
    c.addoption("--cycles", type=int, metavar="N",
                help="failover_checker.py: kill/restart cycles (default 20, soak 300); "
                     "netfault_test.py: cycles of its kill phase (default 1)")
    c.addoption("--duration", type=float, metavar="S",
                help="failover_checker.py: bound of the chaos phase in seconds (default "
                     "120, soak 1800); the whole run is bounded by this plus 150 s "
                     "(netfault_test.py: default --timeout)")
    c.addoption("--soak", action="store_true",
                help="failover_checker.py: long run: 300 cycles within 30 minutes unless "
                     "given")
    c.addoption("--keys", type=int, default=48, metavar="N",
                help="failover_checker.py, netfault_test.py: counter keys (default 48)")
    c.addoption("--producers", type=int, default=4, metavar="N",
                help="failover_checker.py, netfault_test.py: producers (default 4)")
    c.addoption("--window", type=int, default=8, metavar="N",
                help="failover_checker.py, netfault_test.py: sequence span of "
                     "unanswered writes per producer (default 8)")
    c.addoption("--batch", type=int, default=6, metavar="N",
                help="failover_checker.py, netfault_test.py: samples per write "
                     "(default 6)")
    c.addoption("--interval", type=float, default=0.01, metavar="S",
                help="failover_checker.py, netfault_test.py: seconds between writes of "
                     "one producer (default 0.01)")
    c.addoption("--watch", type=int, metavar="N",
                help="failover_checker.py, netfault_test.py: keys the poller and the "
                     "subscriber follow (default 6); partition_test.py: watched keys in "
                     "slices the victim leads (default 4)")
    c.addoption("--victim", choices=("mixed", "most", "key"), default="mixed",
                help="failover_checker.py: most: the node leading the most slices; key: "
                     "the primary of a random watched key; mixed: alternate (default)")
    c.addoption("--hold", type=float, metavar="S",
                help="failover_checker.py: seconds of undisturbed writes after each cycle "
                     "settled, before the next kill (default 1; netfault_test.py 0.5); "
                     "partition_test.py: seconds the partition lasts after the majority "
                     "took over (default 3)")
    c.addoption("--failover-timeout", type=float, default=5.0, metavar="S",
                help="failover_checker.py: seconds after SIGKILL within which a write to "
                     "the victim's slices must be acknowledged; otherwise the cycle "
                     "counts as no failover and the victim is restarted anyway "
                     "(default 5)")
    c.addoption("--allow-no-failover", type=int, default=0, metavar="N",
                help="failover_checker.py: cycles without a failover within "
                     "--failover-timeout that are reported but tolerated (default 0); "
                     "the exactly-once and monotonic checks stay strict")
    c.addoption("--settle-timeout", type=float, metavar="S",
                help="bound of each wait for the cluster to settle (failover_checker.py, "
                     "netfault_test.py: default 20; partition_test.py: 30)")
    c.addoption("--drain-timeout", type=float, default=30.0, metavar="S",
                help="bound of the wait for every write to be answered (default 30)")
    c.addoption("--starve", action="store_true",
                help="failover_checker.py: starve a surviving node of CPU (SIGSTOP/SIGCONT "
                     "bursts) from the kill until the victim is back, in every cycle")
    c.addoption("--seed", type=int,
                help="the chaos checkers' random seed (default: from the clock)")
    c.addoption("--keep", action="store_true",
                help="the chaos checkers keep the cluster directory (it is kept anyway "
                     "on failure)")
    c.addoption("--timeout", type=float, metavar="S",
                help="bound of the whole run in seconds: netfault_test.py (default 170), "
                     "partition_test.py (240)")
    c.addoption("--phases", metavar="LIST",
                default="delay,reset,loss,blackhole,kill",
                help="netfault_test.py: fault phases in order (default %(default)s)")
    c.addoption("--phase", type=float, default=3.0, metavar="S",
                help="netfault_test.py: seconds each fault lasts (default 3)")
    c.addoption("--delay-ms", type=float, default=200.0, metavar="MS",
                help="netfault_test.py: added latency per chunk in the delay phase "
                     "(default 200)")
    c.addoption("--loss", type=float, default=0.02, metavar="P",
                help="netfault_test.py: probability that a chunk resets its connection "
                     "in the loss phase (default 0.02)")
    c.addoption("--election-timeout", type=float, default=15.0, metavar="S",
                help="partition_test.py: bound of the wait for the majority to take over "
                     "(default 15)")


def _needed(request, name, what):
    value = request.config.getoption(name)
    if value is None:
        pytest.fail(f"this test needs --{name.replace('_', '-')} {what}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def bin_dir(request):
    """--bin: the directory with tetherd, tetherctl and tether-load."""
    return _needed(request, "bin", "DIR (the directory with tetherd, tetherctl, "
                                   "tether-load)")


@pytest.fixture(scope="session")
def tetherd(request):
    """--tetherd, else tetherd in --bin."""
    path = request.config.getoption("tetherd")
    if path is None and request.config.getoption("bin") is not None:
        path = os.path.join(request.config.getoption("bin"), "tetherd")
    if path is None:
        pytest.fail("this test needs --tetherd PATH or --bin DIR", pytrace=False)
    return path


@pytest.fixture(scope="session")
def python_dir(request):
    """--python-dir, or None."""
    return request.config.getoption("python_dir")


@pytest.fixture(scope="session")
def docs_path(request):
    """--docs: docs/operations.md."""
    return _needed(request, "docs", "PATH (docs/operations.md)")


@pytest.fixture(scope="session")
def screenshot(request):
    """--screenshot: where the dashboard test saves the page."""
    return _needed(request, "screenshot", "PNG (where to save the page)")


# -- text added to the report of a failing test ---------------------------------------

@pytest.fixture(scope="module")
def failure_report(request):
    """add(title, fn): fn() -> str is called when a test of this module fails (in
    setup, call or teardown) and its text is shown under `title` in that test's
    report, e.g. the tails of the node logs."""
    reports = request.node.__dict__.setdefault("_tether_failure_reports", [])

    def add(title, fn):
        reports.append((title, fn))
    return add


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for node in item.listchain():
        for title, fn in node.__dict__.get("_tether_failure_reports", ()):
            try:
                text = fn()
            except Exception as e:  # a report of a failure must not fail itself
                text = f"({title} unavailable: {e!r})"
            if text:
                rep.sections.append((title, text))


# -- watchdog -------------------------------------------------------------------------

_EXPIRED = []  # messages of the watchdogs that fired


class _Watchdog:
    def __init__(self, budget, stop, what):
        self.budget = budget
        self.stop = stop
        self.what = what
        self.expired = False  # True once it fired (its processes are being stopped)
        self.timer = threading.Timer(budget, self._expire)
        self.timer.daemon = True

    def _expire(self):
        self.expired = True
        _EXPIRED.append(f"watchdog: {self.what} exceeded {self.budget:g}s; "
                        "its processes were stopped and the run interrupted")
        try:
            self.stop()
        finally:
            # A real SIGINT to the main thread: a blocking call there returns, pytest
            # stops with KeyboardInterrupt (exit status 2) and tears the fixtures down.
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


@pytest.fixture(scope="module")
def watchdog():
    """start(budget, stop, what): past `budget` seconds from now, stop() is called
    (it should kill the processes the module started) and the run is interrupted;
    cancelled when the module is done. Returns an object whose `expired` is True
    once it fired."""
    started = []

    def start(budget, stop, what):
        w = _Watchdog(budget, stop, what)
        started.append(w)
        w.timer.start()
        return w
    yield start
    for w in started:
        w.timer.cancel()


def pytest_keyboard_interrupt(excinfo):
    for message in _EXPIRED:
        print(f"\nFAIL {message}", flush=True)


# -- exit status 77 when everything was skipped ---------------------------------------

class _SkipStatus:
    """Sets the exit status to 77 (ctest: skipped) when tests were collected, none
    failed or passed, and every one was skipped."""

    def __init__(self):
        self.passed = set()
        self.skipped = set()

    def pytest_runtest_logreport(self, report):
        if hasattr(report, "wasxfail"):
            self.passed.add(report.nodeid)  # not a skip
        elif report.skipped:
            self.skipped.add(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed.add(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if (exitstatus == 0 and session.testscollected > 0 and session.testsfailed == 0
                and not self.passed and len(self.skipped) == session.testscollected):
            session.exitstatus = 77


def pytest_configure(config):
    config.pluginmanager.register(_SkipStatus(), "tether-skip-status")
