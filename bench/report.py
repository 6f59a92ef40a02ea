#!/usr/bin/python3
"""Collect one bench/run folder: results.csv, summary.md and PNG plots.

    bench/report.py DIR

DIR is what bench/run wrote: DIR/run.txt (machine and commands, "key: value" lines; optional)
and one folder per protocol, DIR/mqtt and DIR/amqp, each written by
bench/mqtt_vs_mosquitto.sh or bench/amqp_vs_rabbitmq.sh (their results.csv: one line per run,
the load generator's CSV line after sut,cell,kind; plus one log per run); optionally
DIR/memory, written by bench/idle_conns.sh (idle.csv: tachyond's memory per step of idle MQTT
clients), for the goal on memory per idle connection. A run whose log
has no CSV line (it crashed or hung) is kept as a failed row. Re-running this on an old
folder rewrites DIR/results.csv, DIR/summary.md and DIR/*.png from the same inputs.

Plots need matplotlib (Debian's python3-matplotlib; bench/run installs it); without it the
CSV and the summary are still written. Numbers are reported, never asserted.
"""
import csv
import math
import os
import re
import sys

PROTOS = ("mqtt", "amqp")
SYSTEMS = {  # the scripts' sut -> (system, label)
    "memif": ("tachyond-memif", "tachyond, memif (DPDK load)"),
    "tap": ("tachyond-tap", "tachyond, TAP (kernel-socket load)"),
    "mosquitto": ("mosquitto", "mosquitto (kernel-socket load)"),
    "rabbitmq": ("rabbitmq", "RabbitMQ (kernel-socket load)"),
}
ORDER = ["tachyond-memif", "tachyond-tap", "mosquitto", "rabbitmq"]
LABEL = {v[0]: v[1] for v in SYSTEMS.values()}
PEER = {"mqtt": "mosquitto", "amqp": "rabbitmq"}
PEER_NAME = {"mosquitto": "mosquitto", "rabbitmq": "RabbitMQ"}
CELL_NAME = {
    "qos0_1to1": "QoS 0 1→1",
    "qos1_1to1": "QoS 1 1→1",
    "qos0_fanin10": "QoS 0 fan-in 10→1",
    "qos1_fanin10": "QoS 1 fan-in 10→1",
    "qos0_fanout10": "QoS 0 fan-out 1→10",
    "qos1_fanout10": "QoS 1 fan-out 1→10",
    "qos0_shared10to5": "QoS 0 shared 10→5 ($share)",
    "qos1_shared10to5": "QoS 1 shared 10→5 ($share)",
    "autoack_1to1": "autoack 1→1",
    "ack_1to1": "ack (prefetch 100) 1→1",
    "ack_multi_1to1": "ack multiple/10 1→1",
    "confirms_1to1": "confirms 1→1",
    "fanout10": "fanout 1→10 queues",
    "autoack_pairs4": "autoack 4 pairs",
}
# Goals of issue 7: throughput of one cell at max rate, and p99 at half load.
GOALS = {
    "mqtt": {"cell": "qos0_1to1", "rate": 5e6, "ratio": 10.0},
    "amqp": {"cell": "autoack_1to1", "rate": 2e6, "ratio": 20.0},
}
P99_GOAL_US = 50.0
IDLE_GOAL_B = 2048      # per idle connection ...
IDLE_GOAL_CONNS = 100000  # ... at this many connections
COLUMNS = ["proto", "workload", "system", "mode", "offered_msgs_s", "received_msgs_s",
           "p50_us", "p99_us", "p999_us", "max_us", "ok",
           # beyond the columns: the counts behind "ok", and where to look
           "sent", "acked", "received", "expected", "lost", "errors", "sut_cpu_pct", "exit",
           "log"]
LOG_RE = re.compile(r"^(memif|tap|mosquitto|rabbitmq)-([A-Za-z0-9_]+)-(max|half|load\d+)\.log$")


def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def mode_key(mode):
    """Sort key: open-loop loads by fraction, max last."""
    if mode == "max":
        return 1000
    if mode == "half":
        return 50
    m = re.match(r"load(\d+)$", mode)
    return int(m.group(1)) if m else 999


def read_run_txt(d):
    meta = {}
    path = os.path.join(d, "run.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition(": ")
                if sep:
                    meta[k] = v
    return meta


def collect(d, proto):
    """Rows of results.csv for one protocol folder (none when it is missing)."""
    pd = os.path.join(d, proto)
    rows = []
    seen = set()
    raw = os.path.join(pd, "results.csv")
    if os.path.exists(raw):
        with open(raw) as f:
            for r in csv.DictReader(f):
                sut = r.get("sut", "")
                if sut not in SYSTEMS:
                    continue
                rate = num(r.get("rate_offered"))
                offered = rate if rate else num(r.get("sent_per_s"))
                errors = 0
                for k in ("conn_errors", "proto_errors", "refused", "bad"):
                    errors += int(num(r.get(k)) or 0)
                ok = r.get("ok") == "1" and r.get("exit", "0") == "0"
                log = "%s-%s-%s.log" % (sut, r["cell"], r["kind"])
                seen.add(log)
                rows.append({
                    "proto": proto, "workload": r["cell"], "system": SYSTEMS[sut][0],
                    "mode": r["kind"], "offered_msgs_s": offered,
                    "received_msgs_s": num(r.get("recv_per_s")),
                    "p50_us": num(r.get("p50_us")), "p99_us": num(r.get("p99_us")),
                    "p999_us": num(r.get("p999_us")), "max_us": num(r.get("max_us")),
                    "ok": 1 if ok else 0,
                    "sent": r.get("sent", ""), "acked": r.get("acked", ""),
                    "received": r.get("received", ""), "expected": r.get("expected", ""),
                    "lost": r.get("lost", ""), "errors": errors,
                    "sut_cpu_pct": r.get("sut_cpu_pct", ""), "exit": r.get("exit", ""),
                    "log": os.path.join(proto, log),
                })
    # runs that left a log but no CSV line: failed (crashed, hung, never connected)
    if os.path.isdir(pd):
        for name in sorted(os.listdir(pd)):
            m = LOG_RE.match(name)
            if not m or name in seen:
                continue
            rows.append({
                "proto": proto, "workload": m.group(2), "system": SYSTEMS[m.group(1)][0],
                "mode": m.group(3), "offered_msgs_s": None, "received_msgs_s": None,
                "p50_us": None, "p99_us": None, "p999_us": None, "max_us": None, "ok": 0,
                "sent": "", "acked": "", "received": "", "expected": "", "lost": "",
                "errors": "", "sut_cpu_pct": "", "exit": "no result line",
                "log": os.path.join(proto, name),
            })
    return rows


def cells_of(rows):
    out = []
    for r in rows:
        if r["workload"] not in out:
            out.append(r["workload"])
    return out


def systems_of(rows):
    present = {r["system"] for r in rows}
    return [s for s in ORDER if s in present]


def find(rows, cell, system, mode):
    for r in rows:
        if r["workload"] == cell and r["system"] == system and r["mode"] == mode:
            return r
    return None


def val(rows, cell, system, mode, key):
    r = find(rows, cell, system, mode)
    return r[key] if r else None


def fmt_rate(v):
    return "-" if v is None else "{:,.0f}".format(v)


def fmt_us(v):
    if v is None:
        return "-"
    return "%.1f" % v if v < 1000 else "{:,.0f}".format(v)


def short(v):
    if v is None:
        return ""
    for div, suf in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return ("%.1f%s" if v < 10 * div else "%.0f%s") % (v / div, suf)
    return "%.0f" % v


def times(x):
    """A factor: 2.5×, 1,581×."""
    if x is None or not math.isfinite(x):
        return "∞×"
    return ("%.1f×" % x) if x < 100 else "{:,.0f}×".format(x)


def write_csv(d, rows):
    with open(os.path.join(d, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            line = []
            for k in COLUMNS:
                v = r[k]
                if v is None:
                    v = ""
                elif isinstance(v, float):
                    v = ("%.0f" if k.endswith("_msgs_s") else "%.2f") % v
                line.append(v)
            w.writerow(line)


def goal_lines(proto, rows):
    """The goals of one protocol: (goal, measured, verdict) tuples."""
    g = GOALS[proto]
    cell, peer = g["cell"], PEER[proto]
    name = CELL_NAME.get(cell, cell)
    out = []
    tach = [s for s in systems_of(rows) if s.startswith("tachyond")]
    peer_v = val(rows, cell, peer, "max", "received_msgs_s")
    peer_ok = val(rows, cell, peer, "max", "ok")
    for s in tach:
        v = val(rows, cell, s, "max", "received_msgs_s")
        note = "" if val(rows, cell, s, "max", "ok") == 1 else " (counts did not add up)"
        goal = "%s %s ≥ %s msgs/s (%s)" % (proto.upper(), name, short(g["rate"]), LABEL[s])
        if v is None:
            out.append((goal, "not measured", "-"))
        else:
            met = v >= g["rate"]
            out.append((goal, fmt_rate(v) + " msgs/s" + note,
                        "met, %.2f× the goal" % (v / g["rate"]) if met else
                        "missed: %.1f %% of it (%s short)" % (100 * v / g["rate"],
                                                              times(g["rate"] / v if v else None))))
        goal = "%s %s ≥ %.0f× %s (%s)" % (proto.upper(), name, g["ratio"], PEER_NAME[peer],
                                           LABEL[s])
        if v is None or not peer_v:
            out.append((goal, "not measured", "-"))
        else:
            ratio = v / peer_v
            pnote = "" if peer_ok == 1 else "; %s's counts did not add up" % PEER_NAME[peer]
            out.append((goal, "%.2f× (%s / %s msgs/s%s)" % (ratio, fmt_rate(v), fmt_rate(peer_v),
                                                             note + pnote),
                        "met, by %.2f×" % (ratio / g["ratio"]) if ratio >= g["ratio"] else
                        "missed: %s short" % times(g["ratio"] / ratio if ratio else None)))
    for s in tach:
        half = [r for r in rows if r["system"] == s and r["mode"] == "half"]
        goal = "%s p99 ≤ %.0f µs at half of peak (%s)" % (proto.upper(), P99_GOAL_US, LABEL[s])
        meas = [(r["p99_us"], r["workload"]) for r in half if r["p99_us"] is not None]
        if not meas:
            out.append((goal, "not measured", "-"))
            continue
        met = [c for p, c in meas if p <= P99_GOAL_US]
        worst = max(meas)
        best = min(meas)
        detail = "; ".join("%s %s µs" % (CELL_NAME.get(c, c), fmt_us(p)) for p, c in meas)
        if len(met) == len(meas):
            verdict = "met in all %d cells (worst %s µs, %s under)" % (
                len(meas), fmt_us(worst[0]), times(P99_GOAL_US / worst[0] if worst[0] else None))
        else:
            verdict = "missed in %d of %d cells: worst %s µs (%s, %s over)" % (
                len(meas) - len(met), len(meas), fmt_us(worst[0]),
                CELL_NAME.get(worst[1], worst[1]), times(worst[0] / P99_GOAL_US))
            if met:
                verdict += "; best %s µs" % fmt_us(best[0])
        out.append((goal, detail, verdict))
    return out


def memory_line(d):
    """The goal on memory per idle connection, from DIR/memory/idle.csv (bench/idle_conns.sh):
    (goal, measured, verdict), "not measured" without it. Bytes per connection: tachyond's
    Rss growth from 0 to N idle clients over N, plus what one TCB slot costs preallocated
    (Rss at max_conns sized for N against max_conns 16384, nobody connected)."""
    goal = "≤ 2 KiB per idle MQTT connection at %s connections (tachyond, memif)" % \
        short(IDLE_GOAL_CONNS)
    path = os.path.join(d, "memory", "idle.csv")
    if not os.path.exists(path):
        return (goal, "not measured (bench/run --memory)", "-")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    small = next((r for r in rows if r["step"] == "small"), None)
    steps = sorted((r for r in rows if r["step"] != "small"), key=lambda r: int(r["conns"]))
    if not small or len(steps) < 2 or int(steps[0]["conns"]) != 0:
        return (goal, "incomplete run (see memory/)", "-")
    zero, top = steps[0], steps[-1]
    n = int(top["conns"])
    dyn = (int(top["rss_kb"]) - int(zero["rss_kb"])) * 1024 / n
    slots = int(zero["max_conns"]) - int(small["max_conns"])
    pre = (int(zero["rss_kb"]) - int(small["rss_kb"])) * 1024 / slots if slots > 0 else 0
    tot = dyn + pre
    meas = "%.0f B at %s (%.0f B once connected + %.0f B preallocated per TCB slot)" % (
        tot, short(n), dyn, pre)
    if n < IDLE_GOAL_CONNS:
        meas += "; fewer connections than the goal's"
    verdict = ("met, %.0f B to spare" % (IDLE_GOAL_B - tot) if tot <= IDLE_GOAL_B else
               "missed by %.0f B (%.2f× the goal)" % (tot - IDLE_GOAL_B, tot / IDLE_GOAL_B))
    return (goal, meas, verdict)


def proto_tables(proto, rows, out):
    peer = PEER[proto]
    systems = systems_of(rows)
    cells = cells_of(rows)
    unit = "PUBLISH" if proto == "mqtt" else "publish"
    out.append("## %s\n" % ("MQTT: tachyond next to mosquitto" if proto == "mqtt"
                            else "AMQP 0-9-1: tachyond next to RabbitMQ"))
    out.append("### Peak: messages received per second, one broker core (mode max)\n")
    tach = [s for s in systems if s.startswith("tachyond")]
    ratios = tach if peer in systems else []
    hdr = ["workload"] + [LABEL[s] for s in systems] + ["%s / %s" % (s, PEER_NAME[peer])
                                                          for s in ratios]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("| --- " + "| ---: " * (len(hdr) - 1) + "|")
    for c in cells:
        line = [CELL_NAME.get(c, c)]
        for s in systems:
            r = find(rows, c, s, "max")
            v = r["received_msgs_s"] if r else None
            line.append(fmt_rate(v) + ("" if not r or r["ok"] == 1 else " ✗"))
        pv = val(rows, c, peer, "max", "received_msgs_s")
        for s in ratios:
            v = val(rows, c, s, "max", "received_msgs_s")
            line.append("%.2f" % (v / pv) if v is not None and pv else "-")
        out.append("| " + " | ".join(line) + " |")
    out.append("\n✗: that run's counts did not add up (see the counts below). Fan-out cells "
               "count every copy received.\n")
    modes = sorted({r["mode"] for r in rows if r["mode"] != "max"}, key=mode_key)
    out.append("### Latency in open loop (µs from the scheduled send), at fractions of each "
               "system's own peak\n")
    out.append("| workload | system | mode | offered %s/s | received msgs/s | p50 | p99 | "
               "p99.9 | max | vs %s p99 |" % (unit, PEER_NAME[peer]))
    out.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cells:
        for m in modes:
            for s in systems:
                r = find(rows, c, s, m)
                if not r:
                    continue
                pp = val(rows, c, peer, m, "p99_us")
                rel = "-"
                if s != peer and pp and r["p99_us"] is not None:
                    x = r["p99_us"] / pp
                    rel = "%.3f" % x if x < 1 else "%.2f" % x if x < 100 else "{:,.0f}".format(x)
                out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    CELL_NAME.get(c, c), LABEL[s], m, fmt_rate(r["offered_msgs_s"]),
                    fmt_rate(r["received_msgs_s"]), fmt_us(r["p50_us"]), fmt_us(r["p99_us"]),
                    fmt_us(r["p999_us"]), fmt_us(r["max_us"]), rel))
    out.append("\nLatency ratios below 1 mean tachyond is faster. At max rate (not shown here, "
               "in results.csv) nothing is scheduled: latency is from the moment of sending.\n")
    out.append("### Counts (every run)\n")
    out.append("| workload | system | mode | sent | %s | received | expected | lost | errors | "
               "CPU %% of the broker | counts add up |" % ("acked" if proto == "mqtt"
                                                          else "confirmed"))
    out.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    bad = 0
    for r in sorted(rows, key=lambda r: (cells.index(r["workload"]), ORDER.index(r["system"]),
                                         mode_key(r["mode"]))):
        bad += r["ok"] != 1
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            CELL_NAME.get(r["workload"], r["workload"]), r["system"], r["mode"], r["sent"],
            r["acked"], r["received"], r["expected"], r["lost"], r["errors"], r["sut_cpu_pct"],
            "yes" if r["ok"] == 1 else "NO (%s)" % (r["exit"] if r["exit"] not in ("", "0")
                                                    else "see " + r["log"])))
    out.append("\n%d of %d runs add up. %s tachyond busy-polls: its CPU is 100 %% whatever "
               "the load.\n" % (len(rows) - bad, len(rows),
                                "QoS 0 may lose messages by design (a broker drops what a slow "
                                "subscriber cannot take) and still add up; QoS 1 must not lose "
                                "any." if proto == "mqtt" else
                                "AMQP must lose nothing: every run delivers all it published "
                                "(confirms: and confirms all of it)."))


def summary(d, meta, by_proto, plots):
    out = []
    title = "# tachyon benchmark"
    if meta.get("started"):
        title += ", " + meta["started"]
    if meta.get("quick") == "1":
        title += " (--quick)"
    out.append(title + "\n")
    out.append("## Machine\n")
    g = lambda k: meta.get(k, "?")
    out.append("- CPU: %s; %s" % (g("cpu"), g("cores")))
    out.append("- kernel %s; %s; gcc %s" % (g("kernel"), g("os"), g("gcc")))
    out.append("- DPDK %s; mosquitto %s; rabbitmq-server %s on Erlang %s" % (
        g("dpdk"), g("mosquitto"), g("rabbitmq"), g("erlang")))
    out.append("- tachyon %s; %s; hugepages %s" % (g("commit"), g("build"), g("hugepages")))
    out.append("- load average (1, 5, 15 min) before: %s; after: %s" % (
        g("loadavg_before"), g("loadavg_after")))
    if "total_s" in meta:
        out.append("- took %s s: build %s s, matrix %s s" % (g("total_s"), g("build_s"),
                                                           g("matrix_s")))
    out.append("")
    out.append("## Commands\n")
    out.append("```sh")
    out.append(g("command"))
    for k in ("mqtt_command", "amqp_command", "memory_command"):
        if k in meta:
            out.append(meta[k])
    out.append("```\n")
    out.append("- %s." % g("measured"))
    out.append("- Each system under test on CPU 1, the load generator (`tq_loadgen`) on CPU 0. "
               "*tachyond, memif*: tachyond as net_memif server, load over tachyon's own TCP "
               "(DPDK, memif client), a fresh tachyond per run. *tachyond, TAP*: tachyond on a "
               "TAP in a private namespace, load over Linux sockets. *mosquitto* (Debian; "
               "no persistence, set_tcp_nodelay) and *RabbitMQ* (Debian; a private node, one "
               "scheduler `+S 1:1`, no plugins) on 127.0.0.1, load over Linux sockets.")
    out.append("- 64-byte payloads. *max*: publish as fast as the broker takes it; peak = "
               "messages received per second. *half* (and *loadNN*): open loop at that "
               "fraction of each system's own peak; latency from the scheduled send to the "
               "arrival, so a broker that falls behind pays for the wait.")
    out.append("- Per-run logs, the scripts' own summaries and tachyond's counters: `mqtt/`, "
               "`amqp/` in this folder.\n")
    out.append("## Goals (issue 7)\n")
    out.append("| goal | measured | verdict |")
    out.append("| --- | --- | --- |")
    for proto in PROTOS:
        if by_proto.get(proto):
            for goal, meas, verdict in goal_lines(proto, by_proto[proto]):
                out.append("| %s | %s | %s |" % (goal, meas, verdict))
    out.append("| %s | %s | %s |" % memory_line(d))
    out.append("")
    if os.path.exists(os.path.join(d, "memory", "summary.md")):
        out.append("Memory per idle connection, step by step: `memory/summary.md` "
                   "(bench/idle_conns.sh).\n")
    for proto in PROTOS:
        if by_proto.get(proto):
            proto_tables(proto, by_proto[proto], out)
    out.append("## Plots\n")
    if plots:
        for p, what in plots:
            out.append("- `%s`: %s" % (p, what))
    else:
        out.append("- none (matplotlib missing: `apt-get install python3-matplotlib`)")
    out.append("")
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write("\n".join(out))


def plot_all(d, by_proto):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return []
    colors = {"tachyond-memif": "#1f77b4", "tachyond-tap": "#17becf", "mosquitto": "#ff7f0e",
              "rabbitmq": "#d62728"}
    made = []
    for proto in PROTOS:
        rows = by_proto.get(proto)
        if not rows:
            continue
        systems = systems_of(rows)
        cells = cells_of(rows)
        P = proto.upper()

        # throughput bars: workload groups, one bar per system, log scale
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cells) * max(1, len(systems)) / 2), 4.8))
        width = 0.8 / max(1, len(systems))
        top = 1
        for i, s in enumerate(systems):
            xs, ys, fails = [], [], []
            for j, c in enumerate(cells):
                r = find(rows, c, s, "max")
                if r and r["received_msgs_s"]:
                    xs.append(j + (i - (len(systems) - 1) / 2) * width)
                    ys.append(r["received_msgs_s"])
                    fails.append(r["ok"] != 1)
                    top = max(top, r["received_msgs_s"])
            bars = ax.bar(xs, ys, width, label=LABEL[s], color=colors[s])
            for b, y, bad in zip(bars, ys, fails):
                if bad:
                    b.set_hatch("//")
                ax.annotate(short(y) + ("✗" if bad else ""), (b.get_x() + b.get_width() / 2, y),
                            ha="center", va="bottom", fontsize=7, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
        g = GOALS[proto]
        if g["cell"] in cells:
            j = cells.index(g["cell"])
            ax.hlines(g["rate"], j - 0.45, j + 0.45, colors="k", linestyles="dashed")
            ax.annotate("goal %s" % short(g["rate"]), (j, g["rate"]), ha="center",
                        va="bottom", fontsize=8)
            top = max(top, g["rate"])
        ax.set_yscale("log")
        ax.set_ylim(top=top * 8)
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels([CELL_NAME.get(c, c) for c in cells], rotation=15, ha="right",
                           fontsize=8)
        ax.set_ylabel("messages received per second (log)")
        ax.set_title("%s peak throughput, one broker core (hatched ✗: counts did not add up)"
                     % P, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(axis="y", which="major", alpha=0.3)
        fig.tight_layout()
        name = "throughput_%s.png" % proto
        fig.savefig(os.path.join(d, name), dpi=110)
        plt.close(fig)
        made.append((name, "%s peak messages received per second per workload and system "
                     "(log scale; the dashed line is the issue's goal)" % P))

        # latency percentiles at half load: one panel per workload
        pcts = [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max")]
        half_cells = [c for c in cells if any(find(rows, c, s, "half") for s in systems)]
        if half_cells:
            n = len(half_cells)
            fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1, 4.2), squeeze=False,
                                     sharey=True)
            vals = [r[k] for r in rows if r["mode"] == "half" for k, _ in pcts
                    if r[k] is not None and r[k] > 0]
            for ax, c in zip(axes[0], half_cells):
                for i, s in enumerate(systems):
                    r = find(rows, c, s, "half")
                    if not r:
                        continue
                    ys = [r[k] or 0 for k, _ in pcts]
                    xs = [k + (i - (len(systems) - 1) / 2) * width for k in range(len(pcts))]
                    ax.bar(xs, [max(y, 0.1) for y in ys], width, color=colors[s],
                           label=LABEL[s], hatch="//" if r["ok"] != 1 else None)
                ax.axhline(P99_GOAL_US, color="k", linestyle="dashed", linewidth=0.8)
                ax.set_xticks(range(len(pcts)))
                ax.set_xticklabels([n_ for _, n_ in pcts], fontsize=8)
                ax.set_yscale("log")
                ax.set_title(CELL_NAME.get(c, c), fontsize=9)
                ax.grid(axis="y", alpha=0.3)
            if vals:  # log bars: the bottom must be below the smallest (autoscale is not)
                axes[0][0].set_ylim(min(vals) / 2, max(vals) * 2)
            axes[0][0].set_ylabel("µs from the scheduled send (log)")
            h, lab = axes[0][0].get_legend_handles_labels()
            fig.legend(h, lab, loc="lower center", ncol=len(systems), fontsize=8)
            fig.suptitle("%s latency at half of each system's own peak (dashed: the 50 µs p99 "
                         "goal)" % P, fontsize=10)
            fig.tight_layout(rect=(0, 0.08, 1, 0.95))
            name = "latency_half_%s.png" % proto
            fig.savefig(os.path.join(d, name), dpi=110)
            plt.close(fig)
            made.append((name, "%s latency percentiles (p50, p99, p99.9, max) per system at "
                         "half of its own peak, one panel per workload" % P))

        # latency versus offered load: every run of a system, max last
        n = len(cells)
        fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 1, 4.2), squeeze=False)
        any_pts = False
        for ax, c in zip(axes[0], cells):
            for s in systems:
                pts = sorted([r for r in rows if r["workload"] == c and r["system"] == s and
                              r["offered_msgs_s"] and r["p99_us"] is not None],
                             key=lambda r: mode_key(r["mode"]))
                if not pts:
                    continue
                any_pts = True
                xs = [r["offered_msgs_s"] for r in pts]
                ax.plot(xs, [max(r["p99_us"], 0.1) for r in pts], "-o", color=colors[s],
                        label=LABEL[s], markersize=4)
                ax.plot(xs, [max(r["p50_us"] or 0, 0.1) for r in pts], "--", color=colors[s],
                        linewidth=0.9)
                for r in pts:
                    if r["mode"] == "max":
                        ax.plot([r["offered_msgs_s"]], [max(r["p99_us"], 0.1)], "x", color="k",
                                markersize=7)
            ax.axhline(P99_GOAL_US, color="k", linestyle="dotted", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: short(x)))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            ax.tick_params(labelsize=8)
            ax.set_title(CELL_NAME.get(c, c), fontsize=9)
            ax.set_xlabel("offered %s/s (log)" % ("PUBLISH" if proto == "mqtt" else "publish"),
                          fontsize=8)
            ax.grid(alpha=0.3, which="both")
        if any_pts:
            axes[0][0].set_ylabel("µs (log): p99 solid, p50 dashed")
            h, lab = axes[0][0].get_legend_handles_labels()
            fig.legend(h, lab, loc="lower center", ncol=len(h) if n > 2 else 1, fontsize=7)
            fig.suptitle("%s latency versus offered load (x: the max-rate run, at what the "
                         "publishers managed; dotted: 50 µs)" % P, fontsize=10)
            fig.tight_layout(rect=(0, 0.14 if n > 2 else 0.2, 1, 0.95))
            name = "latency_vs_load_%s.png" % proto
            fig.savefig(os.path.join(d, name), dpi=110)
            made.append((name, "%s p50 and p99 versus offered load, every run of each system "
                         "(open-loop fractions of its peak, and the max-rate run)" % P))
        plt.close(fig)
    return made


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: bench/report.py DIR (a folder bench/run wrote)")
    d = sys.argv[1]
    meta = read_run_txt(d)
    by_proto = {p: collect(d, p) for p in PROTOS}
    rows = by_proto["mqtt"] + by_proto["amqp"]
    if not rows:
        sys.exit("bench/report.py: no results in %s/mqtt or %s/amqp" % (d, d))
    write_csv(d, rows)
    plots = plot_all(d, by_proto)
    summary(d, meta, by_proto, plots)
    bad = sum(r["ok"] != 1 for r in rows)
    print("bench/report.py: %d runs (%d do not add up): %s" % (
        len(rows), bad, ", ".join(["results.csv", "summary.md"] + [p for p, _ in plots])))


if __name__ == "__main__":
    main()
