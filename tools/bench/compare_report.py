#!/usr/bin/env python3
"""Report of tools/bench/compare.sh: one markdown table and one PNG from the runs.

Reads, in the output directory OUT:
    machine.txt                     what compare.sh recorded about the machine and run
    command.txt                     the exact command line
    {tether,nats}-max.json          closed-loop runs (tether-load / tether-nats-baseline --json)
    {tether,nats}-rate.json         open-loop runs at the common rate
    {tether,nats}-max.progress      their stderr: one progress line per second
    {tether,nats}-fail.json         failure runs (COMPARE_FAILURE), if any, with
    tether-fail.kill.json           which tetherd was killed when (Unix ms)
    tether-fail.audit.json          the sum of every output series read back afterwards
With --common-rate OUT SHARE it prints the open-loop rate instead: SHARE percent of
the lower sustained throughput of the closed-loop runs. Helpers of compare.sh:
    --pick-victim CLUSTER_JSON      the tetherd to kill: of the nodes other than the first,
                                    the one leading the most slices (JSON on stdout)
    --audit-tether HOST:PORT M G    reads the M x G output series of the workload through
                                    GET /v1/series and prints their count and sum (JSON)

Writes:
    OUT/report.md                   the table, ready for docs/benchmarks.md
    OUT/compare.png                 latency spectra of the open-loop runs and throughput
                                    over time of the closed-loop runs (if gnuplot exists)
    OUT/failure.png                 acked throughput around the kill, per 100 ms, of the
                                    failure runs
    OUT/*.dat, OUT/compare.gp       the plot's data and script

Only the Python 3 standard library is used.
"""

import collections
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse

PROGRESS = re.compile(r"^\[\s*([0-9.]+)s\]\s+([0-9.]+) samples/s")
CONSUMER = re.compile(r"\| consumer\s+([0-9.]+) samples/s")


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    if not text:
        return None
    try:
        return json.loads(text.splitlines()[-1])
    except json.JSONDecodeError:
        return None


def applied_rate(run):
    """Samples per second applied while the producers were sending: for Tether every ack
    follows the apply; for the broker it is the consumer's rate under the full load (it
    catches up faster once the producers stop and leave it the machine)."""
    if run is None:
        return 0.0
    consumer = run.get("consumer")
    if consumer:
        return consumer.get("while_sending_samples_per_s", 0.0)
    return run.get("throughput_samples_per_s", 0.0)


def sustained(run):
    """Samples per second the system sustains end to end: acked, and for the broker no
    more than its consumer applied meanwhile."""
    if run is None:
        return 0.0
    return min(run.get("throughput_samples_per_s", 0.0), applied_rate(run))


def fmt_rate(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def q(run, field, key):
    if run is None:
        return None
    lat = run.get(field) or {}
    if not lat.get("count"):
        return None
    return lat.get(key)


def verdict(run):
    if run is None:
        return "missing"
    if run.get("ok"):
        return "ok"
    why = []
    if run.get("visible_unseen"):
        why.append(f"{run['visible_unseen']} updates never visible")
    if run.get("batches_unacked"):
        why.append(f"{run['batches_unacked']} batches unacked")
    if run.get("batches_failed"):
        why.append(f"{run['batches_failed']} batches failed")
    if run.get("errors"):
        why.append(f"{run['errors']} errors")
    return "FAILED" + (": " + ", ".join(why) if why else "")


def load_cpu(out, name):
    path = os.path.join(out, name + ".cpu")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def server_cpu(out, name):
    """Server-side CPU seconds of run NAME: the server processes, plus for the broker
    its consumer (the consumer thread and its connection's threads, measured in the
    client's process), or None."""
    cpu = load_cpu(out, name)
    if cpu is None:
        return None
    run = load(out, name) or {}
    return cpu["server_cpu_s"] + ((run.get("consumer") or {}).get("cpu_seconds") or 0.0)


def cpu_per_million(out, name):
    """Server-side CPU seconds per million acked samples of run NAME, or None."""
    run, cpu = load(out, name), server_cpu(out, name)
    if run is None or cpu is None or not run.get("samples_acked"):
        return None
    return cpu * 1e6 / run["samples_acked"]


def cpu_table(out):
    """Server CPU of the closed- and open-loop runs, per million acked samples."""
    rows = ["| run | Tether server CPU s | per M acked | JetStream nats-server CPU s "
            "| JetStream consumer CPU s | per M acked | Tether / JetStream |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    any_row = False
    for label, suffix in (("closed loop", "max"), ("open loop", "rate")):
        t, n = load_cpu(out, "tether-" + suffix), load_cpu(out, "nats-" + suffix)
        tm, nm = cpu_per_million(out, "tether-" + suffix), cpu_per_million(out, "nats-" + suffix)
        if t is None and n is None:
            continue
        any_row = True
        ratio = f"{tm / nm:.2f}x" if tm and nm else "-"
        consumer = ((load(out, "nats-" + suffix) or {}).get("consumer") or {}).get("cpu_seconds")
        rows.append(f"| {label} | {t['server_cpu_s'] if t else '-'} | "
                    f"{f'{tm:.2f}' if tm else '-'} | {n['server_cpu_s'] if n else '-'} | "
                    f"{f'{consumer:.2f}' if consumer is not None else '-'} | "
                    f"{f'{nm:.2f}' if nm else '-'} | {ratio} |")
    return "\n".join(rows) if any_row else ""


def idle_table(out):
    """Idle latency: one connection, one batch in flight."""
    rows = ["| batch | Tether ack p50 / p99 / max ms | JetStream ack p50 / p99 / max ms "
            "| Tether server CPU per batch (us) |",
            "| ---: | ---: | ---: | ---: |"]
    any_row = False
    for b in (1, 100):
        t, n = load(out, f"tether-idle-{b}"), load(out, f"nats-idle-{b}")
        if t is None and n is None:
            continue
        any_row = True
        lat = [" / ".join(fmt_ms(q(r, "latency_ms", k)) for k in ("p50", "p99", "max"))
               if r else "-" for r in (t, n)]
        cpu = load_cpu(out, f"tether-idle-{b}")
        per = (f"{cpu['server_cpu_s'] * 1e6 / t['batches_acked']:.0f}"
               if cpu and t and t.get("batches_acked") else "-")
        rows.append(f"| {b} | {lat[0]} | {lat[1]} | {per} |")
    return "\n".join(rows) if any_row else ""


def table(runs):
    rows = [
        "| system | run | acked samples/s | applied while sending | ack p50 / p99 / p99.9 / max ms "
        "| visible p50 / p99 / p99.9 / max ms | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, name, run in runs:
        if run is None:
            rows.append(f"| {label} | {name} | - | - | - | - | missing |")
            continue
        acked = run.get("throughput_samples_per_s", 0.0)
        applied = applied_rate(run)
        ack = " / ".join(fmt_ms(q(run, "latency_ms", k)) for k in ("p50", "p99", "p999", "max"))
        vis = " / ".join(fmt_ms(q(run, "visible_latency_ms", k))
                         for k in ("p50", "p99", "p999", "max"))
        what = name
        if run.get("target_rate"):
            what += f" ({fmt_rate(run['target_rate'])}/s)"
        rows.append(f"| {label} | {what} | {fmt_rate(acked)} | {fmt_rate(applied)} | {ack} "
                    f"| {vis} | {verdict(run)} |")
    return "\n".join(rows)


def ratios(tmax, nmax, trate, nrate):
    lines = []
    st, sn = sustained(tmax), sustained(nmax)
    if st and sn:
        lines.append(f"- sustained throughput (acked, and for the broker also applied by the "
                     f"consumer): Tether {fmt_rate(st)}/s, JetStream {fmt_rate(sn)}/s: "
                     f"**{st / sn:.2f}x** (goal: at least 2x, in the long run 3x)")
    tv, nv = q(trate, "visible_latency_ms", "p99"), q(nrate, "visible_latency_ms", "p99")
    if tv and nv:
        lines.append(f"- p99 write-to-visible at the common rate: Tether {fmt_ms(tv)} ms, "
                     f"JetStream {fmt_ms(nv)} ms: **{tv / nv:.2f}** of the baseline's "
                     f"(goal: at most 0.5)")
    ta, na = q(trate, "latency_ms", "p99"), q(nrate, "latency_ms", "p99")
    if ta and na:
        lines.append(f"- p99 write-to-ack at the common rate: Tether {fmt_ms(ta)} ms, "
                     f"JetStream {fmt_ms(na)} ms: **{ta / na:.2f}** of the baseline's "
                     f"(goal: at most 1)")
    rtt = q(trate, "reader_rtt_ms", "p50")
    if rtt is not None:
        lines.append(f"- Tether's visible latency includes its reader's query round trip "
                     f"(p50 {fmt_ms(rtt)} ms, p99 {fmt_ms(q(trate, 'reader_rtt_ms', 'p99'))} ms) "
                     f"and up to one poll interval ({trate.get('visible_poll_ms', 1)} ms); "
                     f"the broker's consumer reports in process, with no such delay")
    return "\n".join(lines)


def write_dat(out):
    """Data files for gnuplot; returns the plot commands' inputs that exist."""
    made = {}
    for sysname in ("tether", "nats"):
        run = load(out, sysname + "-rate")
        for field in ("latency_spectrum_ms", "visible_spectrum_ms"):
            if run is None or not run.get(field):
                continue
            if not (run.get("latency_ms" if field.startswith("lat") else "visible_latency_ms")
                    or {}).get("count"):
                continue
            path = os.path.join(out, f"{sysname}-rate-{field.split('_')[0]}.dat")
            with open(path, "w") as f:
                for qv, ms in run[field]:
                    f.write(f"{1.0 / (1.0 - qv):.6g} {ms:.6g}\n")
            made[(sysname, field.split("_")[0])] = path
        prog = os.path.join(out, sysname + "-max.progress")
        if os.path.exists(prog):
            rows = []
            with open(prog) as f:
                for line in f:
                    m = PROGRESS.match(line.strip())
                    if not m:
                        continue
                    c = CONSUMER.search(line)
                    rows.append((float(m.group(1)), float(m.group(2)),
                                 float(c.group(1)) if c else float(m.group(2))))
            if rows:
                path = os.path.join(out, sysname + "-max-throughput.dat")
                with open(path, "w") as f:
                    for t, acked, applied in rows:
                        f.write(f"{t:.1f} {acked:.0f} {applied:.0f}\n")
                made[(sysname, "throughput")] = path
    return made


def plot(out, made, title):
    if not shutil.which("gnuplot"):
        return "gnuplot not found: no plot"
    lat = []
    styles = {("tether", "latency"): ("Tether write-to-ack", "lc rgb '#1f77b4' dt 2"),
              ("tether", "visible"): ("Tether write-to-visible", "lc rgb '#1f77b4'"),
              ("nats", "latency"): ("JetStream write-to-ack", "lc rgb '#d62728' dt 2"),
              ("nats", "visible"): ("JetStream write-to-visible", "lc rgb '#d62728'")}
    for key, (label, style) in styles.items():
        if key in made:
            lat.append(f"'{os.path.basename(made[key])}' using 1:2 with linespoints lw 2 "
                       f"{style} title '{label}'")
    thr = []
    if ("tether", "throughput") in made:
        thr.append(f"'{os.path.basename(made[('tether', 'throughput')])}' using 1:($2/1e6) "
                   "with lines lw 2 lc rgb '#1f77b4' title 'Tether acked (= applied)'")
    if ("nats", "throughput") in made:
        f = os.path.basename(made[("nats", "throughput")])
        thr.append(f"'{f}' using 1:($2/1e6) with lines lw 2 lc rgb '#d62728' dt 2 "
                   "title 'JetStream acked'")
        thr.append(f"'{f}' using 1:($3/1e6) with lines lw 2 lc rgb '#d62728' "
                   "title 'JetStream applied by the consumer'")
    script = [
        "set terminal pngcairo size 1400,560 font 'sans,10'",
        "set output 'compare.png'",
        f"set multiplot layout 1,2 title \"{title}\"",
        "set title 'latency at the common open-loop rate (percentile spectrum)'",
        "set logscale x",
        "set logscale y",
        "set xlabel 'percentile'",
        "set ylabel 'ms'",
        "set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)",
        "set key top left",
        "set grid",
        ("plot " + ", \\\n     ".join(lat)) if lat else "plot 0 notitle",
        "unset logscale x",
        "unset logscale y",
        "set xtics auto",
        "set title 'throughput over time, closed loop (per second, from the progress lines)'",
        "set key top right opaque box",
        "set xlabel 's'",
        "set ylabel 'M samples/s'",
        "set yrange [0:*]",
        ("plot " + ", \\\n     ".join(thr)) if thr else "plot 0 notitle",
        "unset multiplot",
    ]
    with open(os.path.join(out, "compare.gp"), "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run(["gnuplot", "compare.gp"], cwd=out, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        return "gnuplot failed: " + r.stderr.strip()
    return "plot: " + os.path.join(out, "compare.png")


# -- failure runs ------------------------------------------------------------------------

# A stall counts for the failure when it ends after the kill and starts at most this long
# after it (acks of batches already applied may still arrive just after the kill).
STALL_START_WINDOW_S = 1.0


def load_file(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def kill_offset(name, run, out):
    """Seconds from the run's start of sending to the SIGKILL, or None."""
    if run is None:
        return None
    if name.startswith("nats"):
        at = (run.get("failure") or {}).get("at_s", -1)
        return at if at is not None and at >= 0 else None
    kill = load_file(out, name + ".kill.json")
    if kill is None or not run.get("start_unix_ms"):
        return None
    return (kill["kill_unix_ms"] - run["start_unix_ms"]) / 1000.0


def stall_after(gaps, kill_s):
    """(seconds from the kill until events resumed, the stall) for the longest stretch
    without events that ends after the kill and starts within STALL_START_WINDOW_S of it;
    None if there is none (no gap of 10 ms or more)."""
    cands = [g for g in gaps or []
             if g["to_s"] > kill_s and g["from_s"] < kill_s + STALL_START_WINDOW_S]
    if not cands:
        return None
    g = max(cands, key=lambda g: g["to_s"] - g["from_s"])
    return g["to_s"] - kill_s, g


def visible_after(run, kill_s):
    """When every tracked output shows visible updates again: the latest of the outputs'
    `stall_after` (per output when the report has `visible_gaps_by_output`, else over
    all outputs). None when no output had a stall of 10 ms or more."""
    by_output = run.get("visible_gaps_by_output")
    if not by_output:
        return stall_after(run.get("visible_gaps"), kill_s)
    found = [f for f in (stall_after(g, kill_s) for g in by_output) if f is not None]
    if not found:
        return None
    return max(found, key=lambda f: f[0])


def fmt_stall(found):
    if found is None:
        return "-", "< 10 ms"
    after, g = found
    span = f"{(g['to_s'] - g['from_s']) * 1000:.0f} ms ({g['from_s']:.2f}-{g['to_s']:.2f} s)"
    if g.get("open"):
        return "not before the end", span + ", open"
    return f"{after * 1000:.0f} ms", span


def exactness(name, run, out):
    """(exact, text) about the totals after a failure run."""
    if run is None:
        return False, "missing"
    acked, sent = run.get("samples_acked", 0), run.get("samples_sent", 0)
    problems = []
    if acked != sent:
        problems.append(f"{sent - acked} samples sent but not acked")
    if run.get("visible_unseen"):
        problems.append(f"{run['visible_unseen']} updates never visible")
    if name.startswith("nats"):
        c = run.get("consumer") or {}
        applied = c.get("samples_applied", 0) + c.get("samples_late", 0)
        what = f"consumer applied {applied:,} of {acked:,} acked".replace(",", " ")
        if applied != acked:
            problems.append(what)
        return not problems, ("exact: " + what if not problems else "; ".join(problems))
    audit = load_file(out, name + ".audit.json")
    if audit is None:
        problems.append("no audit")
        return False, "; ".join(problems)
    if audit.get("errors"):
        problems.append(f"{audit['errors']} of {audit['outputs']} outputs unreadable afterwards")
        return False, "; ".join(problems)
    total = audit["sum_total"]
    what = (f"sum of the {audit['outputs']} outputs {total:,.0f} = acked {acked:,}"
            .replace(",", " "))
    if round(total) != acked:
        problems.append(what.replace(" = ", " != "))
    return not problems, ("exact: " + what if not problems else "; ".join(problems))


def failure_table(out):
    rows = [
        "| system | rate: target, achieved | killed (at s) | acks again after the kill "
        "| longest stretch without acks "
        "| all tracked outputs visible again after the kill | that output's stretch without "
        "visible updates "
        "| batches sent again / reconnects | failed, unanswered batches; errors "
        "| totals afterwards |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    any_run = False
    for label, name in (("Tether", "tether-fail"), ("JetStream", "nats-fail")):
        run = load(out, name)
        if run is None and not os.path.exists(os.path.join(out, name + ".progress")):
            continue
        any_run = True
        kill_s = kill_offset(name, run, out)
        if run is None or kill_s is None:
            rows.append(f"| {label} | - | no kill recorded | - | - | - | - | - | - | "
                        f"{'missing' if run is None else verdict(run)} |")
            continue
        if name.startswith("nats"):
            f = run["failure"]
            killed = f"{f['server']} ({f['chosen_as']}; consumer leader {f['consumer_leader']}"
            killed += f", consumer on {f['consumer_connected_to']})"
            reconnects = run.get("reconnects", 0) + (run.get("consumer") or {}).get("reconnects", 0)
        else:
            k = load_file(out, name + ".kill.json") or {}
            killed = (f"{k.get('node', '?')} (primary of {k.get('primary_slices', '?')}/"
                      f"{k.get('slices', '?')} slices, RF {k.get('replication_factor', '?')}"
                      f"{', directory leader' if k.get('directory_leader') == k.get('node') else ''})")
            reconnects = run.get("reconnects", 0)
        ack_after, ack_span = fmt_stall(stall_after(run.get("ack_gaps"), kill_s))
        vis_after, vis_span = fmt_stall(visible_after(run, kill_s))
        failed = (f"{run.get('batches_failed', 0)}, {run.get('batches_unacked', 0)}; "
                  f"{run.get('errors', 0)}")
        _, exact_text = exactness(name, run, out)
        target, achieved = run.get("target_rate", 0), run.get("achieved_rate", 0.0)
        rate = f"{fmt_rate(target)}, {fmt_rate(achieved)}"
        if target and achieved < 0.95 * target:
            rate += " (below target)"
        rows.append(f"| {label} | {rate} | {killed} at {kill_s:.2f} | {ack_after} | {ack_span} "
                    f"| {vis_after} | {vis_span} | {run.get('retries', 0)} / {reconnects} "
                    f"| {failed} | {exact_text} |")
    return "\n".join(rows) if any_run else ""


def plot_failure(out, title):
    """failure.png: acked samples per second (100 ms buckets) around the kill."""
    series = []
    for label, name, style in (("Tether (RF 3)", "tether-fail", "lc rgb '#1f77b4'"),
                               ("JetStream (R3)", "nats-fail", "lc rgb '#d62728'")):
        run = load(out, name)
        kill_s = kill_offset(name, run, out)
        tl = (run or {}).get("timeline") or {}
        if kill_s is None or not tl.get("acked_samples"):
            continue
        width = tl.get("bucket_ms", 100) / 1000.0
        path = os.path.join(out, name + "-acked.dat")
        with open(path, "w") as f:
            for i, amount in enumerate(tl["acked_samples"]):
                f.write(f"{i * width - kill_s:.3f} {amount / width / 1000.0:.3f}\n")
        series.append(f"'{os.path.basename(path)}' using 1:2 with steps lw 2 {style} "
                      f"title '{label}'")
    if not series:
        return ""
    if not shutil.which("gnuplot"):
        return "gnuplot not found: no failure plot"
    script = [
        "set terminal pngcairo size 1100,450 font 'sans,10'",
        "set output 'failure.png'",
        f"set title \"{title}\"",
        "set xlabel 's from the SIGKILL'",
        "set ylabel 'k samples/s acked (100 ms buckets)'",
        "set yrange [0:*]",
        "set autoscale xfix",
        "set grid",
        "set key top left opaque box",
        "set arrow from 0, graph 0 to 0, graph 1 nohead dt 2 lc rgb '#555555'",
        "plot " + ", \\\n     ".join(series),
    ]
    with open(os.path.join(out, "failure.gp"), "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run(["gnuplot", "failure.gp"], cwd=out, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        return "gnuplot failed: " + r.stderr.strip()
    return "plot: " + os.path.join(out, "failure.png")


def gateway(cluster, host, port):
    """(connection, headers) for a node's gateway: https with the CA and the read
    token when `cluster` (cluster.json, or None) is a secure cluster, else http."""
    if cluster and cluster.get("secure"):
        ctx = ssl.create_default_context(cafile=cluster["ca"])
        return (http.client.HTTPSConnection(host, int(port), timeout=10, context=ctx),
                {"Authorization": "Bearer " + cluster["tokens"]["read"]})
    return http.client.HTTPConnection(host, int(port), timeout=10), {}


def pick_victim(cluster_json):
    with open(cluster_json) as f:
        cluster = json.load(f)
    nodes = cluster["nodes"]
    conn, headers = gateway(cluster, "127.0.0.1", nodes[0]["port"])
    conn.request("GET", "/v1/directory", headers=headers)
    r = conn.getresponse()
    if r.status != 200:
        print(f"GET /v1/directory: HTTP {r.status}", file=sys.stderr)
        return 1
    d = json.loads(r.read())
    led = collections.Counter(s["primary"] for s in d["slices"])
    others = [n["name"] for n in nodes[1:]]
    if not others:
        print("a single node: nothing to kill", file=sys.stderr)
        return 1
    victim = max(others, key=lambda n: (led[n], n))
    print(json.dumps({"node": victim, "primary_slices": led[victim],
                      "slices": d.get("slice_count"),
                      "replication_factor": d.get("replication_factor"),
                      "directory_leader": d.get("directory_leader"),
                      "reader_node": nodes[0]["name"]}))
    return 0


def audit_tether(server, metrics, groups, cluster_json=None):
    """Every output series of the workload (metric o % M, group (o / M) % G) through
    GET /v1/series on one node: how many exist and the sum of their totals. A
    wss:// or https:// server is asked with the CA and read token of cluster_json."""
    cluster = None
    if cluster_json:
        with open(cluster_json) as f:
            cluster = json.load(f)
    host, port = server.split("://")[-1].rsplit(":", 1)
    deadline = time.monotonic() + 100
    conn, headers = gateway(cluster, host, port)
    outputs = metrics * max(groups, 1)
    found, total, errors = 0, 0.0, 0
    t0 = time.monotonic()
    for o in range(outputs):
        if time.monotonic() > deadline:
            errors += outputs - o
            break
        key = f"tether_load_{o % metrics}_total"
        if groups:
            key += '{group="%d"}' % ((o // metrics) % groups)
        try:
            conn.request("GET", "/v1/series?key=" + urllib.parse.quote(key),
                         headers=headers)
            r = conn.getresponse()
            body = r.read()
        except OSError:
            errors += 1
            conn.close()
            conn, headers = gateway(cluster, host, port)
            continue
        if r.status != 200:
            errors += 1
            continue
        st = json.loads(body)
        if st.get("found"):
            found += 1
            total += (st.get("state") or {}).get("total", 0.0)
    print(json.dumps({"server": server, "outputs": outputs, "found": found,
                      "sum_total": total, "errors": errors,
                      "seconds": round(time.monotonic() - t0, 3)}))
    return 0 if errors == 0 else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--common-rate":
        # SHARE percent of the lower sustained throughput of the closed-loop runs, in
        # steps of 10 000 samples/s.
        out, share = sys.argv[2], float(sys.argv[3])
        low = min(sustained(load(out, "tether-max")), sustained(load(out, "nats-max")))
        print(max(10000, int(low * share / 100 / 10000) * 10000))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--pick-victim":
        return pick_victim(sys.argv[2])
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--audit-tether":
        return audit_tether(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                            sys.argv[5] if len(sys.argv) == 6 else None)
    if len(sys.argv) != 2:
        print("usage: compare_report.py OUT | --common-rate OUT SHARE | --pick-victim "
              "CLUSTER_JSON | --audit-tether SERVER METRICS GROUPS [CLUSTER_JSON]",
              file=sys.stderr)
        return 2
    out = sys.argv[1]
    tmax, nmax = load(out, "tether-max"), load(out, "nats-max")
    trate, nrate = load(out, "tether-rate"), load(out, "nats-rate")

    def text(name):
        p = os.path.join(out, name)
        return open(p).read().strip() if os.path.exists(p) else ""

    runs = [("Tether", "closed loop", tmax), ("JetStream", "closed loop", nmax),
            ("Tether", "open loop", trate), ("JetStream", "open loop", nrate)]
    made = write_dat(out)
    machine = dict(line.split(":", 1) for line in text("machine.txt").splitlines() if ":" in line)
    side = machine.get("tether side", "")
    nodes = side.strip().split(" ")[0] or "?"
    rf = re.search(r"replication factor (\d+)", side)
    title = (f"Tether ({nodes} node(s), RF {rf.group(1) if rf else '?'}) vs NATS JetStream "
             "(3 servers, R3): same workload, "
             f"same machine, {machine.get('date', '').strip()}")
    main_runs = any(r is not None for _, _, r in runs)
    plotted = plot(out, made, title) if main_runs else "no closed- or open-loop runs: no plot"
    failures = failure_table(out)
    fail_rate = max((r or {}).get("target_rate", 0)
                    for r in (load(out, "tether-fail"), load(out, "nats-fail")))
    chosen = ((load(out, "nats-fail") or {}).get("failure") or {}).get("chosen_as") or "a server"
    failure_plotted = plot_failure(
        out, f"Failure half-way at {fmt_rate(fail_rate)} samples/s: Tether (3 nodes, RF 3, "
             f"SIGKILL of a primary) vs JetStream (3 servers, R3, SIGKILL of the {chosen}), "
             + machine.get("date", "").strip())
    md = [
        "| | |", "| --- | --- |",
    ]
    for line in text("machine.txt").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            md.append(f"| {k.strip()} | {v.strip()} |")
    parts = ["```", text("command.txt"), "```", "", "\n".join(md), ""]
    if main_runs:
        parts += [table(runs), "", ratios(tmax, nmax, trate, nrate), ""]
    cpus = cpu_table(out)
    if cpus:
        parts += ["Server CPU per million acked samples (Tether: the tetherd processes; "
                  "JetStream: the three nats-servers plus the consumer, whose thread and "
                  "connection threads are measured inside the client's process; goal: "
                  "Tether at most 0.5x):", "", cpus, ""]
    idles = idle_table(out)
    if idles:
        parts += ["Idle latency (one connection, one batch in flight, 1000 series; the acks "
                  "of the warm-up, COMPARE_IDLE_WARMUP seconds, left out):", "",
                  idles, ""]
    if failures:
        parts += ["Failure half-way (times from the SIGKILL; stretches from the clients' "
                  "timelines, seconds from the start of sending):", "", failures, ""]
    report = "\n".join(parts)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    print(report)
    print(plotted, file=sys.stderr)
    if failure_plotted:
        print(failure_plotted, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
