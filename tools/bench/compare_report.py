#!/usr/bin/env python3
"""Report of tools/bench/compare.sh: one markdown table and one PNG from the runs.

Reads, in the output directory OUT:
    machine.txt                     what compare.sh recorded about the machine and run
    command.txt                     the exact command line
    {tether,nats}-max.json          closed-loop runs (tether-load / tether-nats-baseline --json)
    {tether,nats}-rate.json         open-loop runs at the common rate
    {tether,nats}-max.progress      their stderr: one progress line per second
With --common-rate OUT SHARE it prints the open-loop rate instead: SHARE percent of
the lower sustained throughput of the closed-loop runs.

Writes:
    OUT/report.md                   the table, ready for docs/benchmarks.md
    OUT/compare.png                 latency spectra of the open-loop runs and throughput
                                    over time of the closed-loop runs (if gnuplot exists)
    OUT/*.dat, OUT/compare.gp       the plot's data and script

Only the Python 3 standard library is used.
"""

import json
import os
import re
import shutil
import subprocess
import sys

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
                     f"**{st / sn:.2f}x** (goal: at least 3x)")
    tv, nv = q(trate, "visible_latency_ms", "p99"), q(nrate, "visible_latency_ms", "p99")
    if tv and nv:
        lines.append(f"- p99 write-to-visible at the common rate: Tether {fmt_ms(tv)} ms, "
                     f"JetStream {fmt_ms(nv)} ms: **{tv / nv:.2f}** of the baseline's "
                     f"(goal: at most 1/3 = 0.33)")
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


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--common-rate":
        # SHARE percent of the lower sustained throughput of the closed-loop runs, in
        # steps of 10 000 samples/s.
        out, share = sys.argv[2], float(sys.argv[3])
        low = min(sustained(load(out, "tether-max")), sustained(load(out, "nats-max")))
        print(max(10000, int(low * share / 100 / 10000) * 10000))
        return 0
    if len(sys.argv) != 2:
        print("usage: compare_report.py OUT | --common-rate OUT SHARE", file=sys.stderr)
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
    nodes = machine.get("tether side", "").strip().split(" ")[0] or "?"
    title = (f"Tether ({nodes} node(s), RF 1) vs NATS JetStream (3 servers, R3): same workload, "
             f"same machine, {machine.get('date', '').strip()}")
    plotted = plot(out, made, title)
    md = [
        "| | |", "| --- | --- |",
    ]
    for line in text("machine.txt").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            md.append(f"| {k.strip()} | {v.strip()} |")
    report = "\n".join([
        "```",
        text("command.txt"),
        "```",
        "",
        "\n".join(md),
        "",
        table(runs),
        "",
        ratios(tmax, nmax, trate, nrate),
        "",
    ])
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    print(report)
    print(plotted, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
