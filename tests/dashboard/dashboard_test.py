#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by Selenium against a
3-node cluster started with tools/tether_cluster.py (free loopback ports, a
temporary directory).

Checks that the page served by tether-1 at /ui/
  - renders every node and every slice, each slice with the primary the directory
    names, and shows cluster events and rates under a little load;
  - reflects a kill (tether-3, SIGKILL): its row turns red within 2 s of the kill,
    and its slices leave it on the map within 2 s of the directory moving them;
  - reflects a drain (tether-2): drained, owning no slice, within 2 s of the
    directory saying so;
  - logs no error to the browser console;
  - on a node with a tokens file: shows its token form and no data without a
    token, says so for a token that is not known, and goes live with a read token
    given as #token=... (which it removes from the address bar).
It saves screenshots: --screenshot under load, the same name with -kill after the
failover and with -after at the end. Every wait has a deadline; no sleep stands in for an event.
Skipped when Chromium, its driver or Selenium is not installed.

    python3 -m pytest -p no:cacheprovider tests/dashboard/dashboard_test.py \
        --bin build/bin --screenshot build/dashboard.png [--linger S]
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import tether_cluster  # noqa: E402

NAMES = ["tether-1", "tether-2", "tether-3"]
REFLECT_S = 2.0  # how soon the page must show a change

PAGE_STATE = """
const rows = Array.from(document.querySelectorAll('#nodes tbody tr'));
return {
  link: document.getElementById('link').dataset.state,
  leader: document.getElementById('leader').textContent,
  version: Number(document.body.dataset.version || 0),
  rows: Object.fromEntries(rows.map(r => [r.dataset.node,
          {state: r.dataset.state, health: r.dataset.health,
           ingest: r.cells[8].textContent}])),
  slices: Array.from(document.querySelectorAll('#slices .slice'))
                .map(c => c.dataset.primary || ''),
  events: Array.from(document.querySelectorAll('#events li')).map(l => l.dataset.kind),
};
"""


class Failure(AssertionError):
    """The page did not show what it must."""


def find_browser():
    """(chromium, chromedriver) paths, or None when one of them or Selenium is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    if not chromium or not driver:
        return None
    return chromium, driver


def start_browser(chromium, driver_path, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1250", "--no-first-run", "--disable-extensions",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(driver_path), options=opts)
    d.set_page_load_timeout(60)
    d.set_script_timeout(30)
    return d


def http_json(server, path, method="GET", timeout=10.0):
    req = urllib.request.Request(f"http://{server}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_until(what, fn, deadline, interval=0.05):
    """Polls fn() until it returns a true value, which it returns; fails at deadline
    (a time.monotonic() value) with the last value seen."""
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise Failure(f"{what}: not seen by the deadline (last: {str(last)[:400]})")
        time.sleep(interval)


def primaries(table):
    return [s["primary"] for s in sorted(table["slices"], key=lambda s: s["slice"])]


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def run(args, driver, cluster):
    """args: screenshot and linger."""
    s1 = cluster.server("tether-1")
    page = lambda: driver.execute_script(PAGE_STATE)  # noqa: E731
    driver.get(f"http://{s1}/ui/")
    t0 = time.monotonic()

    def rendered():
        st = page()
        table = http_json(s1, "/v1/directory")
        return (st["link"] == "live" and sorted(st["rows"]) == NAMES
                and st["version"] == table["version"]
                and st["slices"] == primaries(table)
                and len(st["slices"]) == table["slice_count"]
                and "table" in st["events"]) and st
    st = wait_until("every node and every slice on the page", rendered, t0 + 30)
    print(f"  rendered {len(st['rows'])} nodes, {len(st['slices'])} slices "
          f"in {time.monotonic() - t0:.1f}s", flush=True)

    # Writes from tether-load show up as a rate; the leader's answer names it.
    wait_until("an ingest rate above zero and the directory leader",
               lambda: (lambda st: st["leader"].startswith("directory leader t")
                        and any(r["ingest"] not in ("–", "0.0")
                                for r in st["rows"].values()))(page()),
               time.monotonic() + 30)
    if args.linger > 0:  # for a screenshot with a longer chart (docs/)
        end = time.monotonic() + args.linger
        wait_until("the end of the linger", lambda: time.monotonic() >= end, end + 1, 0.5)
    driver.save_screenshot(args.screenshot)

    # A kill: the node turns red at once, its slices move once the directory says so.
    cluster.kill("tether-3", signal.SIGKILL)
    t_kill = time.monotonic()
    wait_until("tether-3 red after its kill",
               lambda: page()["rows"]["tether-3"]["health"] == "down", t_kill + REFLECT_S)
    print(f"  tether-3 red {time.monotonic() - t_kill:.2f}s after the kill", flush=True)
    wait_until("the directory moving tether-3's slices",
               lambda: "tether-3" not in primaries(http_json(s1, "/v1/directory")),
               t_kill + 30, interval=0.02)
    t_moved = time.monotonic()
    wait_until("tether-3's slices moved on the map",
               lambda: (lambda st: "tether-3" not in st["slices"]
                        and st["rows"]["tether-3"]["state"] == "down"
                        and "failover" in st["events"])(page()),
               t_moved + REFLECT_S)
    print(f"  failover on the map {time.monotonic() - t_moved:.2f}s after the directory",
          flush=True)
    root, ext = os.path.splitext(args.screenshot)
    driver.save_screenshot(f"{root}-kill{ext}")

    # A drain: through the admin API, answered once the moves are done.
    http_json(s1, "/v1/admin/drain?node=tether-2", method="POST", timeout=60)

    def drained():
        t = http_json(s1, "/v1/directory")
        return ("tether-2" not in primaries(t)
                and not http_json(s1, "/v1/nodes")["nodes"][1]["state"] == "up")
    wait_until("the directory draining tether-2", drained, time.monotonic() + 30,
               interval=0.02)
    t_drained = time.monotonic()
    wait_until("tether-2 drained on the page",
               lambda: (lambda st: "tether-2" not in st["slices"]
                        and st["rows"]["tether-2"]["state"] == "drained"
                        and "drain" in st["events"])(page()),
               t_drained + REFLECT_S)
    print(f"  drain on the page {time.monotonic() - t_drained:.2f}s after the directory",
          flush=True)
    driver.save_screenshot(f"{root}-after{ext}")
    errors = console_errors(driver)
    if errors:
        raise Failure(f"browser console errors: {errors}")


READ_TOKEN = "dashboard-read-token-0123456789"
TOKEN_STATE = """
return {link: document.getElementById('link').dataset.state,
        form: !document.getElementById('auth').hidden,
        error: document.getElementById('auth-error').textContent,
        rows: document.querySelectorAll('#nodes tbody tr').length,
        hash: location.hash};
"""


def run_tokens(driver, cluster):
    """A node that needs a read token: form, refusal, then live with the token."""
    s = cluster.server("tether-1")
    state = lambda: driver.execute_script(TOKEN_STATE)  # noqa: E731
    driver.get(f"http://{s}/ui/")
    st = wait_until("the token form without a token",
                    lambda: (lambda st: st["form"] and st["link"] == "needs-token"
                             and st)(state()), time.monotonic() + 30)
    if st["rows"]:
        raise Failure(f"the page showed nodes without a token: {st}")
    driver.get(f"http://{s}/ui/#token=not-a-known-token")
    driver.refresh()
    wait_until("the form saying the token is not known",
               lambda: (lambda st: st["form"] and "not known" in st["error"])(state()),
               time.monotonic() + 30)
    driver.get(f"http://{s}/ui/#token={READ_TOKEN}")
    driver.refresh()
    st = wait_until("live with a read token",
                    lambda: (lambda st: st["link"] == "live" and st["rows"] == 1
                             and not st["form"] and st)(state()), time.monotonic() + 30)
    if st["hash"]:
        raise Failure(f"the token stayed in the address bar: {st['hash']!r}")
    print("  token form, refusal and read token: as expected", flush=True)


@pytest.fixture(scope="module")
def base_dir():
    base = tempfile.mkdtemp(prefix="tether-dashboard-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def driver(base_dir):
    """Headless Chromium, shared by the cases; skipped when Chromium, its driver or
    Selenium is missing."""
    browser = find_browser()
    if browser is None:
        pytest.skip("chromium, chromium-driver or python3-selenium is not installed "
                    "(tools/setup.sh installs them)")
    d = start_browser(browser[0], browser[1], os.path.join(base_dir, "profile"))
    yield d
    d.quit()


def print_log_tails(cluster):
    for n in cluster.nodes:
        print(f"--- {n} log tail:\n{cluster.log_tail(n, 15)}")


def test_cluster_view(bin_dir, screenshot, request, driver, base_dir):
    """A 3-node cluster under load: every node and slice rendered, a kill and a drain
    reflected within 2 s, no error in the browser console."""
    args = types.SimpleNamespace(screenshot=screenshot,
                                 linger=request.config.getoption("linger"))
    cluster = tether_cluster.LocalCluster(
        os.path.join(bin_dir, "tetherd"), base_dir, 0,
        {"window-ms": 1000, "lateness-ms": 500, "shards": 2,
         "replication-factor": 3}, ready_timeout=30)
    load = None
    try:
        cluster.up(3)
        servers = ",".join(cluster.server(n) for n in NAMES)
        load = subprocess.Popen(
            [os.path.join(bin_dir, "tether-load"), "--server", servers,
             "--connections", "3", "--batch", "200", "--series", "300",
             "--rate", "3000", "--duration", f"{60 + int(args.linger)}s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run(args, driver, cluster)
    except (Failure, tether_cluster.ClusterError):
        print_log_tails(cluster)
        raise
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait(timeout=10)
        cluster.down()


def test_token_form(bin_dir, driver, base_dir):
    """A node with a tokens file: the token form and no data without a token, a
    refusal of an unknown token, live with a read token given as #token=..."""
    tokens = os.path.join(base_dir, "tokens")
    with open(tokens, "w") as f:
        f.write(f"{READ_TOKEN} read\n")
    cluster = tether_cluster.LocalCluster(
        os.path.join(bin_dir, "tetherd"), os.path.join(base_dir, "tokens-node"), 0,
        {"window-ms": 1000, "tokens-file": tokens}, ready_timeout=30)
    try:
        cluster.up(1)
        run_tokens(driver, cluster)
    except (Failure, tether_cluster.ClusterError):
        print_log_tails(cluster)
        raise
    finally:
        cluster.down()
