#!/usr/bin/env bash
# Memory per idle MQTT connection (issue 7: "<= 2 KiB per idle connection at 100k
# connections"): tachyond's memory with N idle clients, for a series of N, each from a fresh
# tachyond.
#
#   bench/idle_conns.sh [--conns N (100000)] [--steps LIST (0,10%,50%,N: 0,10000,50000,100000)]
#                       [--keepalive S (600)] [--out DIR] [--no-build] [--build-dir DIR]
#                       [--mem MB (EAL memory of each process; default from N)]
#
# Who does what: tachyond (memif server, one worker; main lcore and worker on CPU 1) with
# tcp.max_conns and mqtt.max_sessions sized for the largest step (N + 1024) and the same
# settings at every step, so that mem(0) holds every preallocation; tq_loadgen
# (bench/loadgen, tachyon's own TCP as a memif client, CPU 0) opens the step's clients with
# --idle: CONNECT (clean start, keep alive S), CONNACK, then nothing (a PINGREQ every S/2:
# none within a run at the default 600 s). A source address has 32768 ephemeral ports, so
# both sides get one memif pair per 30000 clients, each pair its own /24, and the loadgen
# spreads the clients over the pairs (--dst A,B,...). Before measuring, tachyond must report
# every client connected and every session (tachyonctl mqtt); then, 2 s later:
#   - /proc/PID/smaps_rollup of tachyond: Rss, Pss, Anonymous (glibc's heap: the MQTT
#     connection and session objects) and Shmem (DPDK's memory: with --no-huge EAL backs
#     it with shared memory pages, touched only when used, so Rss is meaningful);
#   - DPDK's own accounting: /eal/heap_info,0 (rte_malloc: bytes allocated, allocations).
# Bytes per idle connection = (Rss(N) - Rss(0)) / N, and the same for the anonymous part and
# the DPDK heap. One more tachyond sized for 16384 (tcp.max_conns' default; mqtt.max_sessions
# the same) and no clients gives the preallocation: (Rss(0) - Rss(16384)) / (max_conns -
# 16384) is what every connection slot costs before anyone connects.
#
# Results: DIR/idle.csv (one line per step), DIR/summary.md, the logs; DIR defaults to
# /tmp/tachyon-bench/idle-<UTC date-time>/. Everything it starts is stopped by PID on exit.
# Needs root (DPDK). Installs nothing beyond scripts/lib/common.sh's packages.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/bench.sh"
START_DIR=$PWD
cd "$TQ_ROOT"

N=100000
STEPS=
KA=600
OUT=
BUILD=1
BDIR=build-bench
MEM=
usage() {
	tq_die "usage: $0 [--conns N] [--steps LIST] [--keepalive S] [--out DIR] [--no-build] [--build-dir DIR] [--mem MB]"
}
while [ $# -gt 0 ]; do
	case $1 in
	--conns) N=$2; shift ;;
	--steps) STEPS=$2; shift ;;
	--keepalive) KA=$2; shift ;;
	--out) OUT=$2; shift ;;
	--no-build) BUILD=0 ;;
	--build-dir) BDIR=$2; shift ;;
	--mem) MEM=$2; shift ;;
	*) usage ;;
	esac
	shift
done
if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 1000000 ]; then tq_die "--conns: 1 .. 1000000"; fi
[ -n "$STEPS" ] || STEPS=0,$((N / 10)),$((N / 2)),$N
MAXN=0
for s in ${STEPS//,/ }; do
	[[ $s =~ ^[0-9]+$ ]] || tq_die "--steps: numbers, comma-separated"
	[ "$s" -le "$MAXN" ] || MAXN=$s
done
MAXC=$((MAXN + 1024))
[ "$MAXC" -ge 16384 ] || MAXC=16384
# one memif pair (and /24) per 30000 clients: a source address has 32768 ephemeral ports
NP=$(((MAXN + 29999) / 30000))
[ "$NP" -ge 1 ] || NP=1
[ "$NP" -le 8 ] || tq_die "at most 240000 clients (8 memif pairs)"
# EAL memory: what the TCB pool and its companions take (~3 KiB a slot, bench/RESULTS.md)
# plus the fixed pools, with room to spare; --no-huge only touches what is used
[ -n "$MEM" ] || MEM=$((1024 + MAXC * 4 / 1024))

tq_require_root
tq_install_deps

case $BDIR in
/*) B=$BDIR ;;
*) B=$TQ_ROOT/$BDIR ;;
esac
if [ "$BUILD" = 1 ]; then
	tq_bench_build "$B" "$(mktemp /tmp/tq-idle-build-XXXXXX.log)" control/tachyond control/tachyonctl \
		bench/loadgen/tq_loadgen
fi
TACHYOND=$B/control/tachyond
TACHYONCTL=$B/control/tachyonctl
LOADGEN=$B/bench/loadgen/tq_loadgen
for f in "$TACHYOND" "$TACHYONCTL" "$LOADGEN"; do
	[ -x "$f" ] || tq_die "missing $f"
done

case $OUT in
'') OUT=/tmp/tachyon-bench/idle-$(date -u +%Y-%m-%dT%H%M%SZ) ;;
/*) ;;
*) OUT=$START_DIR/$OUT ;;
esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/idle.csv
[ ! -e "$CSV" ] || tq_die "$OUT holds an earlier run: choose another --out"

SUT_CPU=1
LOAD_CPU=0
ID=$$
SRV_PREFIX=tq-idle-srv-$ID
SRV_PID=
CLI_PID=

cleanup() {
	tq_stop_all
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the memif pairs: vdev and address arguments of one side (server or client)
SRV_ARGS=()
CLI_ARGS=()
SRV_IPS=()
CLI_IPS=()
DSTS=
for ((i = 0; i < NP; i++)); do
	sock=/run/tachyon/idle-$ID-$i.sock # abstract: nothing on disk
	SRV_ARGS+=("--vdev=net_memif$i,role=server,socket=$sock")
	CLI_ARGS+=("--vdev=net_memif$i,role=client,socket=$sock")
	SRV_IPS+=(--ipv4 "$i=198.18.$((40 + i)).2/24")
	CLI_IPS+=(--ipv4 "$i=198.18.$((40 + i)).1/24")
	DSTS+=",198.18.$((40 + i)).2"
done
DSTS=${DSTS#,}

# mqtt_field NAME: a number from tachyond's /tachyon/mqtt (clients_connected, sessions)
mqtt_field() {
	"$TACHYONCTL" -p "$SRV_PREFIX" mqtt 2>/dev/null |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["/tachyon/mqtt"][sys.argv[1]])' "$1"
}

# srv_up NAME SETS...: a fresh tachyond; its log in $OUT/NAME-tachyond.log
srv_up() {
	local name=$1 log=$OUT/$1-tachyond.log
	shift
	"$TACHYOND" --lcores "0@$SUT_CPU,1@$SUT_CPU" --no-huge -m "$MEM" --no-pci \
		--file-prefix "$SRV_PREFIX" "${SRV_ARGS[@]}" --log-level='*:warning' -- \
		"${SRV_IPS[@]}" --set mqtt.port=1883 --set mqtt.allow_anonymous=1 "$@" >"$log" 2>&1 &
	SRV_PID=$!
	pids+=("$SRV_PID")
	tq_wait_for "grep -q 'tachyond: ready' $log && $TACHYONCTL -p $SRV_PREFIX info" 60 ||
		{ cat "$log"; tq_die "tachyond ($name) did not come up"; }
}

# measure NAME CONNS MAX_CONNS: one CSV line from tachyond's smaps_rollup and DPDK heap
measure() {
	local name=$1 conns=$2 maxc=$3 smaps heap clients sessions
	smaps=$(awk '/^(Rss|Pss|Anonymous):/ {v[$1] = $2}
		END {printf "%d,%d,%d", v["Rss:"], v["Pss:"], v["Anonymous:"]}' \
		"/proc/$SRV_PID/smaps_rollup")
	# Rss by mapping: DPDK's memory (--no-huge: a memfd "nohuge"), the memif regions (the
	# client's memfds, mapped once its link is up), everything else
	cp "/proc/$SRV_PID/smaps" "$OUT/$name-smaps.txt"
	smaps+=,$(awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6} /^Rss:/ {
			if (name ~ /nohuge/) d += $2; else if (name ~ /memif/) m += $2 }
		END {printf "%d,%d", d, m}' "$OUT/$name-smaps.txt")
	heap=$("$TACHYONCTL" -p "$SRV_PREFIX" raw /eal/heap_info,0 | python3 -c '
import json, sys
h = json.load(sys.stdin)["/eal/heap_info"]
print("%d,%d" % (h["Alloc_size"], h["Alloc_count"]))')
	clients=$(mqtt_field clients_connected)
	sessions=$(mqtt_field sessions)
	"$TACHYONCTL" -p "$SRV_PREFIX" stats >"$OUT/$name-stats.txt" 2>&1 || true
	cp "/proc/$SRV_PID/smaps_rollup" "$OUT/$name-smaps_rollup.txt"
	"$TACHYONCTL" -p "$SRV_PREFIX" raw /mempool/list >"$OUT/$name-mempools.txt" 2>&1 || true
	[ -s "$CSV" ] || echo "step,conns,max_conns,clients_connected,sessions,rss_kb,pss_kb,anon_kb,dpdk_mem_kb,memif_kb,dpdk_heap_bytes,dpdk_heap_allocs" >"$CSV"
	echo "$name,$conns,$maxc,$clients,$sessions,$smaps,$heap" >>"$CSV"
	echo "    $name: $conns clients; Rss ${smaps%%,*} kB: $(tail -1 "$CSV" | cut -d, -f8) kB anonymous, $(tail -1 "$CSV" | cut -d, -f9) kB DPDK memory, $(tail -1 "$CSV" | cut -d, -f10) kB memif; DPDK heap ${heap%%,*} B" >&2
}

{
	echo "# Memory per idle MQTT connection, $(date -u +%FT%TZ)"
	echo
	echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; tachyond (1 worker) on CPU $SUT_CPU, tq_loadgen on CPU $LOAD_CPU"
	echo "- kernel $(uname -r); DPDK $(pkg-config --modversion libdpdk); glibc $(ldd --version | head -1 | awk '{print $NF}')"
	echo "- tachyon $(git -C "$TQ_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (build $B, release); EAL --no-huge -m $MEM"
	echo "- tachyond: tcp.max_conns=$MAXC mqtt.max_sessions=$MAXC, $NP memif pair(s); clients: MQTT 3.1.1, clean start, keep alive $KA s, no subscription"
	echo "- command: bench/idle_conns.sh --conns $N --steps $STEPS"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# the preallocation: tachyond's default tcp.max_conns (16384) and as many sessions, no clients
tq_log "tachyond with tcp.max_conns=16384 mqtt.max_sessions=16384, no clients"
srv_up small --set tcp.max_conns=16384 --set mqtt.max_sessions=16384
sleep 2
measure small 0 16384
stop "$SRV_PID"

for n in ${STEPS//,/ }; do
	tq_log "step: $n idle clients (tcp.max_conns=$MAXC)"
	srv_up "idle$n" --set tcp.max_conns="$MAXC" --set mqtt.max_sessions="$MAXC"
	if [ "$n" -gt 0 ]; then
		log=$OUT/idle$n-loadgen.log
				"$LOADGEN" --lcores "0@$LOAD_CPU,1@$LOAD_CPU" --no-huge -m "$MEM" \
			--no-pci --file-prefix "tq-idle-cli-$ID" "${CLI_ARGS[@]}" --log-level='*:warning' \
			-- "${CLI_IPS[@]}" --set tcp.max_conns="$MAXC" \
			--set dataplane.mbufs_per_worker=131072 -- --dst "$DSTS" --pubs 0 --subs 0 \
			--idle "$n" --keepalive "$KA" --max-connecting 256 --duration 86400 --warmup 0 \
			>"$log" 2>&1 &
		CLI_PID=$!
		pids+=("$CLI_PID")
		if ! tq_wait_for "grep -q 'all $n clients ready' $log" $((60 + n / 1000)); then
			tail -20 "$log" >&2
			tq_die "the load generator did not get $n clients connected"
		fi
		# tachyond's view: every client connected, each with its session
		tq_wait_for "[ \"\$(mqtt_field clients_connected)\" = $n ] && [ \"\$(mqtt_field sessions)\" = $n ]" 30 ||
			tq_die "tachyond reports $(mqtt_field clients_connected) clients, $(mqtt_field sessions) sessions, not $n"
	fi
	sleep 2
	measure "idle$n" "$n" "$MAXC"
	[ "$(mqtt_field clients_connected)" = "$n" ] || tq_die "clients lost while measuring"
	stop "$SRV_PID"
	[ -z "$CLI_PID" ] || stop "$CLI_PID"
	CLI_PID=
done

# ---- summary ----
python3 - "$CSV" "$OUT/header.md" >"$OUT/summary.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(open(sys.argv[2]).read())
d = next(r for r in rows if r["step"] == "small")
steps = [r for r in rows if r["step"] != "small"]
base = next((r for r in steps if int(r["conns"]) == 0), None)
kb = lambda r, k: int(r[k])
print("Rss: the whole process; anonymous: glibc's heap and other private memory; DPDK: its "
      "--no-huge memfd (rte_malloc, mempools, rings); memif: the client's shared regions as "
      "mapped here; DPDK heap: rte_malloc's own count. Per client: (step - step 0) / clients.\n")
print("| tachyond | clients | Rss kB | Pss kB | anonymous kB | DPDK kB | memif kB | DPDK heap MB | Rss B/client | anonymous B/client | DPDK B/client | memif B/client |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in [d] + steps:
    n = int(r["conns"])
    per = lambda k: ("%.0f" % ((kb(r, k) - kb(base, k)) * 1024 / n)) if base and n else "-"
    print("| %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %s |" % (
        "max_conns " + r["max_conns"] + (" (baseline)" if r is d else ""), n, r["rss_kb"], r["pss_kb"],
        r["anon_kb"], r["dpdk_mem_kb"], r["memif_kb"], int(r["dpdk_heap_bytes"]) / 1048576,
        per("rss_kb"), per("anon_kb"), per("dpdk_mem_kb"), per("memif_kb")))
if base:
    slots = int(base["max_conns"]) - int(d["max_conns"])
    pre = (kb(base, "rss_kb") - kb(d, "rss_kb")) * 1024
    pre_heap = kb(base, "dpdk_heap_bytes") - kb(d, "dpdk_heap_bytes")
    print()
    if slots > 0:
        print("Preallocation (max_conns %s vs %s, nobody connected): %.1f MB Rss, "
              "%.0f B per connection slot (DPDK heap: %.0f B per slot)." % (
                  base["max_conns"], d["max_conns"], pre / 1e6, pre / slots, pre_heap / slots))
    top = max(steps, key=lambda r: int(r["conns"]))
    n = int(top["conns"])
    if n and slots > 0:
        dyn = (kb(top, "rss_kb") - kb(base, "rss_kb")) * 1024 / n
        tot = dyn + pre / slots
        print("\nAt %d clients: %.0f B per connection once connected, %.0f B with its "
              "preallocated slot; goal 2048 B: %s." % (
                  n, dyn, tot,
                  "met" if tot <= 2048 else "missed by %.0f B (%.1fx)" % (tot - 2048, tot / 2048)))
    # the slope between the two largest steps: without the fixed costs that come with the
    # first client (the memif regions mapped once the link is up)
    big = sorted(steps, key=lambda r: int(r["conns"]))[-2:]
    if len(big) == 2 and int(big[0]["conns"]) > 0:
        dn = int(big[1]["conns"]) - int(big[0]["conns"])
        sl = lambda k: (kb(big[1], k) - kb(big[0], k)) * 1024 / dn
        print("\nSlope from %s to %s clients: %.0f B Rss per client (%.0f B anonymous, %.0f B "
              "DPDK, %.0f B memif)." % (big[0]["conns"], big[1]["conns"], sl("rss_kb"),
                                        sl("anon_kb"), sl("dpdk_mem_kb"), sl("memif_kb")))
EOF
echo "- raw data: $OUT" >>"$OUT/summary.md"
cat "$OUT/summary.md"
