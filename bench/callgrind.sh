#!/usr/bin/env bash
# Instructions per message on the hot paths (issue 7: "valgrind --tool=callgrind instruction
# counts per message"): tachyond itself under callgrind, driven by tq_loadgen at a low fixed
# rate, 64-byte payloads.
#
#   bench/callgrind.sh [--cells LIST (mqtt_qos0_1to1,amqp_autoack_1to1)] [--rate MSGS_PER_S
#                      (1000)] [--window S (6)] [--top N (25)] [--out DIR] [--no-build]
#                      [--build-dir DIR]
#
# Who does what: for each cell a fresh tachyond (memif server, --no-huge --iova-mode=va, one
# worker; main lcore and worker on CPU 1) runs under valgrind --tool=callgrind with
# --collect-atstart=no --toggle-collect=tq_worker_poll_once: only the worker's poll loop is
# counted. tq_loadgen (native, memif client, CPU 0) connects one publisher and one
# subscriber, keeps them quiet for a while (--hold), then publishes at --rate. The script
# takes two dumps with callgrind_control: "idle" (connected, no traffic) and "busy" (the
# publishing phase, after a second of warm-up), each --window seconds.
#
# Ir per message: the busy dump's inclusive Ir of tq_worker_poll_once, minus what the same
# number of calls cost while idle (each function's idle Ir per call times its busy calls:
# an empty poll, the timer wheel's per-poll check, the TX flush that finds nothing), divided
# by the messages the worker routed in the dump: calls of tq_mqtt_route (MQTT) or
# tq_amqp_route (AMQP), exact. tachyond's counters (mqtt_publish_in/out, amqp_publishes/
# deliveries) read around the dump cross-check it. Each message is one PUBLISH (or
# basic.publish) in, one delivery out, and the TCP ACKs both sides exchange for them. The
# same subtraction gives the top functions' inclusive Ir per message.
#
# Results: DIR/callgrind.csv, DIR/summary.md, the dumps (callgrind.out.*) and
# callgrind_annotate's inclusive listings; DIR defaults to /tmp/tachyon-bench/callgrind-<UTC
# date-time>/. Everything it starts is stopped by PID on exit. Needs root (DPDK); installs
# valgrind if missing.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/bench.sh"
START_DIR=$PWD
cd "$TQ_ROOT"

CELLS=mqtt_qos0_1to1,amqp_autoack_1to1
RATE=1000
WIN=6
TOP=25
OUT=
BUILD=1
BDIR=build-bench
usage() {
	tq_die "usage: $0 [--cells mqtt_qos0_1to1,amqp_autoack_1to1] [--rate MSGS_PER_S] [--window S] [--top N] [--out DIR] [--no-build] [--build-dir DIR]"
}
while [ $# -gt 0 ]; do
	case $1 in
	--cells) CELLS=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--window) WIN=$2; shift ;;
	--top) TOP=$2; shift ;;
	--out) OUT=$2; shift ;;
	--no-build) BUILD=0 ;;
	--build-dir) BDIR=$2; shift ;;
	*) usage ;;
	esac
	shift
done
if ! [[ $WIN =~ ^[0-9]+$ ]] || [ "$WIN" -lt 1 ]; then tq_die "--window: whole seconds, at least 1"; fi

tq_require_root
TQ_PACKAGES+=(valgrind)
tq_install_deps

case $BDIR in
/*) B=$BDIR ;;
*) B=$TQ_ROOT/$BDIR ;;
esac
if [ "$BUILD" = 1 ]; then
	tq_bench_build "$B" "$(mktemp /tmp/tq-cg-build-XXXXXX.log)" control/tachyond control/tachyonctl \
		bench/loadgen/tq_loadgen
fi
TACHYOND=$B/control/tachyond
TACHYONCTL=$B/control/tachyonctl
LOADGEN=$B/bench/loadgen/tq_loadgen
for f in "$TACHYOND" "$TACHYONCTL" "$LOADGEN" /usr/bin/valgrind /usr/bin/callgrind_control; do
	[ -x "$f" ] || tq_die "missing $f"
done

case $OUT in
'') OUT=/tmp/tachyon-bench/callgrind-$(date -u +%Y-%m-%dT%H%M%SZ) ;;
/*) ;;
*) OUT=$START_DIR/$OUT ;;
esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/callgrind.csv
[ ! -e "$CSV" ] || tq_die "$OUT holds an earlier run: choose another --out"

SUT_CPU=1
LOAD_CPU=0
ID=$$
SRV_PREFIX=tq-cg-srv-$ID
SOCK=/run/tachyon/cg-$ID.sock # abstract: nothing on disk
HOLD=$((WIN + 4))             # quiet: 1 s to settle, the idle window, room to spare

cleanup() {
	tq_stop_all 300
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# counters: the message counters of tachyond's worker, "name value" lines
counters() {
	"$TACHYONCTL" -p "$SRV_PREFIX" --all stats 2>/dev/null |
		awk '$1 ~ /^(mqtt_publish_in|mqtt_publish_out|amqp_publishes|amqp_deliveries)$/ {print $1, $2}'
}

{
	echo "# Instructions per message (callgrind), $(date -u +%FT%TZ)"
	echo
	echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; tachyond (1 worker) under callgrind on CPU $SUT_CPU, tq_loadgen (native) on CPU $LOAD_CPU"
	echo "- kernel $(uname -r); DPDK $(pkg-config --modversion libdpdk); $(valgrind --version); gcc $(gcc -dumpfullversion)"
	echo "- tachyon $(git -C "$TQ_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$TQ_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)') (build $B, release)"
	echo "- 64-byte payloads, 1 publisher -> 1 consumer, $RATE msgs/s offered; idle and busy windows of $WIN s"
	echo "- command: bench/callgrind.sh --cells $CELLS --rate $RATE --window $WIN"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

for cell in ${CELLS//,/ }; do
	case $cell in
	mqtt_qos0_1to1) LOAD=(--qos 0) ROUTE=tq_mqtt_route ;;
	amqp_autoack_1to1) LOAD=(--proto amqp --workload autoack) ROUTE=tq_amqp_route ;;
	*) tq_die "unknown cell $cell (mqtt_qos0_1to1, amqp_autoack_1to1)" ;;
	esac
	tq_log "$cell: tachyond under callgrind"
	log=$OUT/$cell-tachyond.log
	# mqtt.sys_interval=0: no $SYS publishes to count as messages
	valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.$cell" \
		--collect-atstart=no --toggle-collect=tq_worker_poll_once --fair-sched=yes \
		"$TACHYOND" --lcores "0@$SUT_CPU,1@$SUT_CPU" --no-huge -m 256 --iova-mode=va --no-pci \
		--file-prefix "$SRV_PREFIX" --vdev=net_memif0,role=server,socket="$SOCK" \
		--log-level='*:warning' -- --ipv4 0=198.18.31.2/24 --set mqtt.port=1883 \
		--set mqtt.allow_anonymous=1 --set mqtt.sys_interval=0 --set amqp.port=5672 \
		>"$log" 2>&1 &
	SRV_PID=$!
	pids+=("$SRV_PID")
	tq_wait_for "grep -q 'tachyond: ready' $log && $TACHYONCTL -p $SRV_PREFIX info" 180 ||
		{ cat "$log"; tq_die "tachyond under callgrind did not come up"; }

	llog=$OUT/$cell-loadgen.log
	"$LOADGEN" --lcores "0@$LOAD_CPU,1@$LOAD_CPU" --no-huge -m 256 --no-pci \
		--file-prefix "tq-cg-cli-$ID" --vdev=net_memif0,role=client,socket="$SOCK" \
		--log-level='*:warning' -- --ipv4 0=198.18.31.1/24 -- --dst 198.18.31.2 \
		"${LOAD[@]}" --pubs 1 --subs 1 --size 64 --rate "$RATE" --hold "$HOLD" --warmup 1 \
		--duration $((WIN + 4)) --drain 5 >"$llog" 2>&1 &
	LG_PID=$!
	pids+=("$LG_PID")
	tq_wait_for "grep -q 'all 2 clients ready' $llog" 120 ||
		{ tail -20 "$llog" >&2; tq_die "$cell: the clients did not connect"; }
	T_READY=$(date +%s.%N)
	# idle: connected, nothing published yet
	sleep 1
	callgrind_control -z "$SRV_PID" >/dev/null 2>&1
	sleep "$WIN"
	callgrind_control --dump=idle "$SRV_PID" >/dev/null 2>&1
	# busy: from a second after the publishing began
	sleep "$(awk -v r="$T_READY" -v n="$(date +%s.%N)" -v h="$HOLD" 'BEGIN {s = r + h + 1.5 - n; print (s > 0 ? s : 0)}')"
	counters >"$OUT/$cell-counters-before.txt"
	callgrind_control -z "$SRV_PID" >/dev/null 2>&1
	sleep "$WIN"
	callgrind_control --dump=busy "$SRV_PID" >/dev/null 2>&1
	counters >"$OUT/$cell-counters-after.txt"
	wait "$LG_PID" || tq_log "$cell: tq_loadgen exit $? (see $llog)"
	grep -E '^  (window|totals|errors|verdict)' "$llog" | sed 's/^/    /' >&2 || true
	stop "$LG_PID"
	stop "$SRV_PID" 600
	# the dumps, in order: .1 idle, .2 busy (the final one at exit is not used)
	for k in 1 2; do
		[ -s "$OUT/callgrind.out.$cell.$k" ] || tq_die "$cell: no dump $k from callgrind"
	done
	mv "$OUT/callgrind.out.$cell.1" "$OUT/callgrind.out.$cell.idle"
	mv "$OUT/callgrind.out.$cell.2" "$OUT/callgrind.out.$cell.busy"
	for k in idle busy; do
		callgrind_annotate --inclusive=yes "$OUT/callgrind.out.$cell.$k" \
			>"$OUT/$cell-annotate-$k.txt" 2>&1 || true
	done
	python3 - "$cell" "$ROUTE" "$OUT" "$TOP" <<'EOF'
import collections, csv, os, re, sys

cell, route, out, top = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ROOT = "tq_worker_poll_once"

def parse(path):
    """Per function: self Ir, inclusive Ir of its calls, calls received, callees."""
    names = {}
    self_ir = collections.Counter()
    call_ir = collections.Counter()
    calls = collections.Counter()
    callees = collections.defaultdict(set)
    cur = cfn = None
    pending = None

    def name(tok):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", tok)
        if not m:
            return tok
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), tok)

    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("fn="):
            cur = name(line[3:])
        elif line.startswith("cfn="):
            cfn = name(line[4:])
        elif line.startswith("calls="):
            pending = int(line[6:].split()[0])
        elif line[0].isdigit() or line[0] in "+-*":
            parts = line.split()
            ir = int(parts[1]) if len(parts) > 1 else 0
            if pending is not None:
                calls[cfn] += pending
                callees[cur].add(cfn)
                if cfn != cur:  # recursion: counted in self already
                    call_ir[cur] += ir
                pending = None
            else:
                self_ir[cur] += ir
    incl = {f: self_ir[f] + call_ir[f] for f in set(self_ir) | set(call_ir)}
    return incl, calls, callees

busy, bcalls, tree = parse(os.path.join(out, "callgrind.out.%s.busy" % cell))
idle, icalls, _ = parse(os.path.join(out, "callgrind.out.%s.idle" % cell))
msgs = bcalls[route]
if msgs == 0:
    sys.exit("%s: no call of %s in the busy dump" % (cell, route))

def extra(f):
    """f's busy inclusive Ir minus its idle Ir per call times its busy calls."""
    b = busy.get(f, 0)
    if icalls[f] and f in idle:
        b -= bcalls[f] * idle[f] / icalls[f]
    return b

def ctr(path):
    d = {}
    for line in open(path):
        k, v = line.split()
        d[k] = int(v)
    return d

c0 = ctr(os.path.join(out, cell + "-counters-before.txt"))
c1 = ctr(os.path.join(out, cell + "-counters-after.txt"))
delta = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1}
polls = bcalls[ROOT]
per_msg = extra(ROOT) / msgs
idle_poll = idle[ROOT] / icalls[ROOT] if icalls[ROOT] else 0
# functions under the poll loop
seen, todo = set(), [ROOT]
while todo:
    f = todo.pop()
    if f in seen:
        continue
    seen.add(f)
    todo.extend(tree.get(f, ()))
rows = sorted(((extra(f) / msgs, f) for f in seen), reverse=True)[:top]

csv_path = os.path.join(out, "callgrind.csv")
new = not os.path.exists(csv_path)
with open(csv_path, "a", newline="") as fh:
    w = csv.writer(fh)
    if new:
        w.writerow(["cell", "messages", "polls", "busy_ir", "idle_ir_per_poll", "ir_per_msg",
                    "counters"])
    w.writerow([cell, msgs, polls, busy[ROOT], "%.0f" % idle_poll, "%.0f" % per_msg,
                " ".join("%s=%d" % kv for kv in sorted(delta.items()))])
with open(os.path.join(out, cell + "-summary.md"), "w") as fh:
    fh.write("## %s: %.0f instructions per message\n\n" % (cell, per_msg))
    fh.write("%d messages routed (calls of %s) in %d polls; busy window %s Ir in the poll loop, "
             "idle %.0f Ir per empty poll. tachyond's counters over about the same window: %s.\n\n"
             % (msgs, route, polls, format(busy[ROOT], ","), idle_poll,
                ", ".join("%s +%d" % kv for kv in sorted(delta.items())) or "-"))
    fh.write("| function | inclusive Ir per message | calls per message |\n| --- | ---: | ---: |\n")
    for v, f in rows:
        fh.write("| %s | %.0f | %.2f |\n" % (f, v, bcalls[f] / msgs))
    fh.write("\n")
print(open(os.path.join(out, cell + "-summary.md")).read())
EOF
done

{
	cat "$OUT/header.md"
	echo
	for cell in ${CELLS//,/ }; do
		cat "$OUT/$cell-summary.md"
	done
	echo "Inclusive Ir per message: the function's Ir in the busy window minus its idle Ir per call times its busy calls, over the messages routed. Raw data: $OUT"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
