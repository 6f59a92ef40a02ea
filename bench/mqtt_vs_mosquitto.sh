#!/usr/bin/env bash
# MQTT: tachyond next to mosquitto with identical traffic from bench/loadgen (tq_loadgen).
#
#   bench/mqtt_vs_mosquitto.sh [--quick] [-d SECONDS] [-w SECONDS] [--out DIR] [--no-build]
#                              [--build-dir DIR (in the tree, or absolute)]
#                              [--only memif,tap,mosquitto] [--cells LIST] [--loads FRACTIONS]
#                              [--set SECTION.KEY=VALUE]...   (more tachyond settings)
#
# Systems under test, each pinned to CPU 1 (the load always on CPU 0):
#   memif      tachyond (memif server, busy polling) <- tq_loadgen --transport dpdk (memif
#              client: tachyon's own TCP in client mode)
#   tap        tachyond on a TAP in a private network namespace <- tq_loadgen --transport
#              kernel (Linux sockets, epoll) in the same namespace
#   mosquitto  Debian's mosquitto on 127.0.0.1, a free high port, a throw-away config
#              (set_tcp_nodelay, no persistence, max_queued_messages 100000, max_inflight 100)
#              <- tq_loadgen --transport kernel
# tachyond runs with its defaults plus mqtt.port, mqtt.allow_anonymous and
# dataplane.mbufs_per_worker=131072: with the default 8192 a subscriber's 256 KiB TCP send
# queue of small PUBLISHes (2 mbufs each) empties the pool and the worker deadlocks
# (bench/RESULTS.md, MQTT findings). --set adds or overrides settings.
# Cells (64-byte payloads): qos0_1to1, qos1_1to1, qos0_fanin10 (10 -> 1), qos0_fanout10 (1 -> 10),
# qos0_shared10to5 (10 publishers -> one topic, 5 subscribers in one shared-subscription group
# $share/g/...: each message to one of them; also qos1_shared10to5).
# Each cell runs twice: "max" (as fast as the broker takes it: peak = messages received per
# second) and "half" (open loop at 50 % of that peak, for latency from the scheduled send).
# --loads 0.25,0.5,0.9 runs the open loop at each of these fractions of the peak instead
# (0.5 is "half", the others "loadNN"; default 0.5).
#
# Results: results.csv (one line per run), summary.md, and every run's log in the output
# directory: --out DIR, else /tmp/tachyon-bench/<UTC date-time>/ (nothing lands in git).
# Everything it starts is stopped by PID and the namespace is deleted on exit, also on
# failure or Ctrl-C. Numbers are never asserted: bench/RESULTS.md records them.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/bench.sh"
cd "$TQ_ROOT"

DUR=10
WARM=2
BUILD=1
BDIR=build-lg
OUT=
SUTS=memif,tap,mosquitto
CELLS=qos0_1to1,qos1_1to1,qos0_fanin10,qos0_fanout10,qos0_shared10to5
TQ_SETS=(--set mqtt.port=1883 --set mqtt.allow_anonymous=1 --set dataplane.mbufs_per_worker=131072)
LOADS=0.5 # latency runs, as fractions of each system's own peak: 0.5 is "half"
usage() {
	tq_die "usage: $0 [--quick] [-d SECONDS] [-w SECONDS] [--out DIR] [--no-build] [--build-dir DIR] [--only memif,tap,mosquitto] [--cells LIST] [--loads FRACTIONS] [--set SECTION.KEY=VALUE]..."
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) DUR=3; WARM=1 ;;
	-d) DUR=$2; shift ;;
	-w) WARM=$2; shift ;;
	--out) OUT=$2; shift ;;
	--no-build) BUILD=0 ;;
	--build-dir) BDIR=$2; shift ;;
	--only) SUTS=$2; shift ;;
	--cells) CELLS=$2; shift ;;
	--loads) LOADS=$2; shift ;;
	--set) TQ_SETS+=(--set "$2"); shift ;;
	*) usage ;;
	esac
	shift
done

tq_require_root
tq_install_deps
tq_hugepages 512

# --build-dir: relative to the tree, or absolute (a build directory outside it)
case $BDIR in
/*) B=$BDIR ;;
*) B=$TQ_ROOT/$BDIR ;;
esac
if [ "$BUILD" = 1 ]; then
	tq_log "build (release) in $B"
	tq_build "$(realpath -m --relative-to="$TQ_ROOT" "$B")" -Dbuildtype=release >/dev/null
fi
TACHYOND=$B/control/tachyond
TACHYONCTL=$B/control/tachyonctl
LOADGEN=$B/bench/loadgen/tq_loadgen
MOSQUITTO=/usr/sbin/mosquitto
for f in "$TACHYOND" "$TACHYONCTL" "$LOADGEN" "$MOSQUITTO"; do
	[ -x "$f" ] || tq_die "missing $f"
done

SUT_CPU=1
LOAD_CPU=0
ID=$$
[ -n "$OUT" ] || OUT=/tmp/tachyon-bench/$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/results.csv
SOCK=/run/tachyon/mqttb-$ID.sock # memif's abstract socket: nothing on disk
NS=tq-mqttb-$ID
SUT_PID=
PER_RUN_UP=
PER_RUN_DOWN=

cleanup() {
	tq_stop_all
	ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cpu_ticks PID: user + system clock ticks so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# cell NAME: "qos pubs subs shared" (shared 1: the subscribers are one $share group)
cell_def() {
	case $1 in
	qos0_1to1) echo "0 1 1 0" ;;
	qos1_1to1) echo "1 1 1 0" ;;
	qos0_fanin10) echo "0 10 1 0" ;;
	qos0_fanout10) echo "0 1 10 0" ;;
	qos1_fanin10) echo "1 10 1 0" ;;
	qos1_fanout10) echo "1 1 10 0" ;;
	qos0_shared10to5) echo "0 10 5 1" ;;
	qos1_shared10to5) echo "1 10 5 1" ;;
	*) tq_die "unknown cell $1" ;;
	esac
}

# loadgen SUT ARGS...: one tq_loadgen run against SUT, pinned to the load CPU. Every branch
# execs, so that when it runs in the background $! is the load generator itself.
loadgen() {
	local sut=$1
	shift
	case $sut in
	memif)
		# shellcheck disable=SC2046
		exec "$LOADGEN" --lcores "0@$LOAD_CPU,1@$LOAD_CPU" $(tq_eal_mem_args 256) --no-pci \
			--file-prefix "tq-mqttb-cli-$ID" --vdev=net_memif0,role=client,socket="$SOCK" \
			--log-level='*:warning' -- --ipv4 0=198.18.9.1/24 \
			--set dataplane.mbufs_per_worker=32768 -- --dst 198.18.9.2 "$@"
		;;
	tap)
		exec ip netns exec "$NS" taskset -c "$LOAD_CPU" "$LOADGEN" --transport kernel \
			--dst 198.18.0.2 "$@"
		;;
	mosquitto)
		exec taskset -c "$LOAD_CPU" "$LOADGEN" --transport kernel --dst 127.0.0.1 \
			--port "$MQ_PORT" "$@"
		;;
	esac
}

# run SUT CELL KIND RATE: one run, its log in $OUT, one line appended to $CSV; PEAK gets the
# messages received per second (0 when the run failed)
run() {
	local sut=$1 cell=$2 kind=$3 rate=$4 qos pubs subs shared log rc=0 t0 t1 c0 c1 cpu line lpid wpid
	local extra=()
	read -r qos pubs subs shared <<<"$(cell_def "$cell")"
	[ "$shared" = 1 ] && extra=(--shared)
	log=$OUT/$sut-$cell-$kind.log
	[ -z "$PER_RUN_UP" ] || $PER_RUN_UP "$sut-$cell-$kind"
	t0=$(date +%s.%N)
	c0=$(cpu_ticks "$SUT_PID")
	(loadgen "$sut" --qos "$qos" --pubs "$pubs" --subs "$subs" "${extra[@]}" --size 64 \
		--rate "$rate" --duration "$DUR" --warmup "$WARM" --drain 10 --csv --csv-header) \
		>"$log" 2>&1 &
	lpid=$!
	pids+=("$lpid")
	# a watchdog: a run that hangs is stopped (by its PID) and counted as failed. Its sleep
	# outlives the watchdog killed below: it must not hold our stdout/stderr, or a reader
	# of them (bench/run's tee) waits for it.
	(sleep "$(awk -v d="$DUR" -v w="$WARM" 'BEGIN {print int(d + w + 90)}')"; kill -TERM "$lpid" 2>/dev/null) \
		>/dev/null 2>&1 &
	wpid=$!
	wait "$lpid" || rc=$?
	kill "$wpid" 2>/dev/null || true
	wait "$wpid" 2>/dev/null || true
	forget "$lpid"
	c1=$(cpu_ticks "$SUT_PID")
	t1=$(date +%s.%N)
	[ -z "$PER_RUN_DOWN" ] || $PER_RUN_DOWN "$sut-$cell-$kind"
	cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" \
		'BEGIN {printf "%.0f", (b - a) / hz / (e - s) * 100}')
	[ -s "$CSV" ] || ! grep -q '^transport,' "$log" ||
		echo "sut,cell,kind,$(grep -m1 '^transport,' "$log"),sut_cpu_pct,exit" >"$CSV"
	line=$(grep -E '^(dpdk|kernel),' "$log" | tail -1 || true)
	[ -n "$line" ] && echo "$sut,$cell,$kind,$line,$cpu,$rc" >>"$CSV"
	grep -E '^  (window|latency|totals|errors|verdict|stack)' "$log" | sed "s/^/    /" >&2 || true
	[ "$rc" -eq 0 ] || echo "    (exit $rc; see $log)" >&2
	PEAK=$(echo "$line" | awk -F, '{print ($13 == "" ? 0 : $13)}')
}

# load_kind FRACTION: the run's name, "half" for 0.5, else loadNN (percent of the peak)
load_kind() { awk -v f="$1" 'BEGIN {if (f == 0.5) print "half"; else printf "load%.0f\n", f * 100}'; }

# matrix SUT: every cell, max then the open-loop runs (half, or --loads)
matrix() {
	local sut=$1 cell rate fanout qos pubs subs shared frac peak
	for cell in ${CELLS//,/ }; do
		read -r qos pubs subs shared <<<"$(cell_def "$cell")"
		fanout=$subs
		[ "$pubs" = "$subs" ] && [ "$pubs" -gt 1 ] && fanout=1
		[ "$shared" = 1 ] && fanout=1
		tq_log "$sut: $cell at max rate"
		run "$sut" "$cell" max 0
		peak=$PEAK
		for frac in ${LOADS//,/ }; do
			rate=$(awk -v p="$peak" -v f="$fanout" -v x="$frac" 'BEGIN {printf "%.0f", p / f * x}')
			if [ "$rate" -lt 1 ]; then
				echo "    no peak measured: no latency run" >&2
				break
			fi
			tq_log "$sut: $cell at $frac of the peak ($rate PUBLISHes/s offered)"
			run "$sut" "$cell" "$(load_kind "$frac")" "$rate"
		done
	done
}

{
	echo "# MQTT: tachyond next to mosquitto, $(date -u +%FT%TZ)"
	echo
	echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; system under test on CPU $SUT_CPU, load on CPU $LOAD_CPU"
	echo "- kernel $(uname -r); DPDK $(pkg-config --modversion libdpdk); $($MOSQUITTO -h 2>/dev/null | head -1)"
	echo "- tachyon $(git -C "$TQ_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (build $BDIR); ${DUR} s measured per run after ${WARM} s warm-up; 64-byte payloads"
	echo "- tachyond settings: ${TQ_SETS[*]}"
	echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---- tachyond over memif, tq_loadgen --transport dpdk ----
# A fresh tachyond for every run: DPDK 22.11's memif server has been seen to crash in its
# RX path when a client process leaves (bench/RESULTS.md), and a fresh one also gives each
# run its own counters (saved next to the run's log).
memif_up() { # NAME: tachyond's output in $OUT/NAME-tachyond.log
	local log=$OUT/$1-tachyond.log
	# shellcheck disable=SC2046
	"$TACHYOND" --lcores "0@$SUT_CPU,1@$SUT_CPU" $(tq_eal_mem_args 1024) --no-pci \
		--file-prefix "tq-mqttb-srv-$ID" --vdev=net_memif0,role=server,socket="$SOCK" \
		--log-level='*:warning' -- --ipv4 0=198.18.9.2/24 "${TQ_SETS[@]}" >"$log" 2>&1 &
	SUT_PID=$!
	pids+=("$SUT_PID")
	tq_wait_for "grep -q 'tachyond: ready' $log && $TACHYONCTL -p tq-mqttb-srv-$ID info" 30 ||
		{ cat "$log"; tq_die "tachyond did not come up"; }
}
memif_down() { # NAME: counters to $OUT/NAME-tachyond.txt, then stop
	"$TACHYONCTL" -p "tq-mqttb-srv-$ID" stats >"$OUT/$1-tachyond.txt" 2>&1 || true
	"$TACHYONCTL" -p "tq-mqttb-srv-$ID" mqtt >>"$OUT/$1-tachyond.txt" 2>&1 || true
	kill -0 "$SUT_PID" 2>/dev/null || echo "    tachyond (memif) died: $(tail -3 "$OUT/$1-tachyond.log")" >&2
	stop "$SUT_PID"
}
if [[ ",$SUTS," == *",memif,"* ]]; then
	tq_log "memif: tachyond (memif server, worker and main lcore on CPU $SUT_CPU), one per run"
	PER_RUN_UP=memif_up
	PER_RUN_DOWN=memif_down
	matrix memif
	PER_RUN_UP=
	PER_RUN_DOWN=
fi

# ---- tachyond on a TAP in a namespace, tq_loadgen --transport kernel ----
if [[ ",$SUTS," == *",tap,"* ]]; then
	tq_log "tap: tachyond on tq0 in namespace $NS (CPU $SUT_CPU)"
	ip netns add "$NS"
	ip netns exec "$NS" ip link set lo up
	# not through a function: $! must be tachyond itself (ip netns exec execs it)
	# shellcheck disable=SC2046
	ip netns exec "$NS" "$TACHYOND" --lcores "0@$SUT_CPU,1@$SUT_CPU" $(tq_eal_mem_args 1024) \
		--no-pci --file-prefix "tq-mqttb-tap-$ID" --vdev=net_tap0,iface=tq0 \
		--log-level='*:warning' -- --ipv4 0=198.18.0.2/24 "${TQ_SETS[@]}" \
		>"$OUT/tachyond-tap.log" 2>&1 &
	SUT_PID=$!
	pids+=("$SUT_PID")
	tq_wait_for "ip netns exec $NS ip link show tq0" 30 || { cat "$OUT/tachyond-tap.log"; tq_die "no tq0"; }
	ip netns exec "$NS" ip addr add 198.18.0.1/24 dev tq0
	ip netns exec "$NS" ip link set tq0 up
	tq_wait_for "grep -q 'tachyond: ready' $OUT/tachyond-tap.log && ip netns exec $NS ping -c1 -W1 198.18.0.2" 30 ||
		{ cat "$OUT/tachyond-tap.log"; tq_die "tachyond on the TAP not answering"; }
	matrix tap
	"$TACHYONCTL" -p "tq-mqttb-tap-$ID" stats >"$OUT/tachyond-tap-stats.txt" 2>&1 || true
	stop "$SUT_PID"
	ip netns del "$NS"
fi

# ---- mosquitto on 127.0.0.1, tq_loadgen --transport kernel ----
if [[ ",$SUTS," == *",mosquitto,"* ]]; then
	# a free port: bound by the kernel's choice, then released for mosquitto
	MQ_PORT=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
	cat >"$OUT/mosquitto.conf" <<EOF
listener $MQ_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 100000
max_queued_bytes 0
max_inflight_messages 100
log_dest stderr
log_type error
log_type warning
EOF
	tq_log "mosquitto: 127.0.0.1:$MQ_PORT on CPU $SUT_CPU"
	taskset -c "$SUT_CPU" "$MOSQUITTO" -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
	SUT_PID=$!
	pids+=("$SUT_PID")
	tq_wait_for "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $MQ_PORT), 1)'" 10 ||
		{ cat "$OUT/mosquitto.log"; tq_die "mosquitto did not come up"; }
	matrix mosquitto
	stop "$SUT_PID"
fi

# ---- summary ----
python3 - "$CSV" "$OUT/header.md" >"$OUT/summary.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(open(sys.argv[2]).read())
suts = [s for s in ("memif", "tap", "mosquitto") if any(r["sut"] == s for r in rows)]
name = {"memif": "tachyond, memif (dpdk load)", "tap": "tachyond, TAP (kernel load)",
        "mosquitto": "mosquitto (kernel load)"}
cells = []
for r in rows:
    if r["cell"] not in cells:
        cells.append(r["cell"])
def get(sut, cell, kind, key):
    for r in rows:
        if r["sut"] == sut and r["cell"] == cell and r["kind"] == kind:
            try:
                return float(r[key])
            except (KeyError, ValueError):
                return None
    return None
def fmt(v, kind="r"):
    if v is None:
        return "-"
    return "{:,.0f}".format(v) if kind == "r" else "%.1f" % v
print("## Peak: messages received per second (one broker core)\n")
hdr = ["cell"] + [name[s] for s in suts]
ratios = [s for s in suts if s != "mosquitto"] if "mosquitto" in suts else []
hdr += ["%s / mosquitto" % s for s in ratios]
print("| " + " | ".join(hdr) + " |")
print("| --- " + "| ---: " * (len(hdr) - 1) + "|")
for c in cells:
    vals = [get(s, c, "max", "recv_per_s") for s in suts]
    line = [c] + [fmt(v) for v in vals]
    m = get("mosquitto", c, "max", "recv_per_s")
    for s in ratios:
        v = get(s, c, "max", "recv_per_s")
        line.append("%.2f" % (v / m) if v and m else "-")
    print("| " + " | ".join(line) + " |")
print("\n## Latency at half of each system's own peak (us, from the scheduled send)\n")
print("| cell | system | offered PUBLISH/s | received/s | p50 | p99 | p99.9 | max | never sent |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for c in cells:
    for s in suts:
        g = lambda k: get(s, c, "half", k)
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c, name[s], fmt(g("rate_offered")), fmt(g("recv_per_s")), fmt(g("p50_us"), "u"),
            fmt(g("p99_us"), "u"), fmt(g("p999_us"), "u"), fmt(g("max_us"), "u"),
            fmt(g("owed"))))
print("\n## Counts (every run)\n")
print("| system | cell | run | sent | acked | received | expected | lost | errors | CPU % of the broker | counts add up |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in rows:
    try:
        err = sum(int(r[k] or 0) for k in ("conn_errors", "proto_errors", "refused", "bad"))
    except ValueError:
        err = "?"
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        r["sut"], r["cell"], r["kind"], r.get("sent", ""), r.get("acked", ""),
        r.get("received", ""), r.get("expected", ""), r.get("lost", ""), err,
        r.get("sut_cpu_pct", ""), "yes" if r.get("ok") == "1" else "NO"))
print("\nQoS 0 may lose messages by design (a broker drops what a slow subscriber cannot take);"
      " QoS 1 must not. tachyond busy-polls: its CPU is 100 % whatever the load.")
EOF
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg); raw logs and CSV: $OUT" >>"$OUT/summary.md"
cat "$OUT/summary.md"
