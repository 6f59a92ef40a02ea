#!/usr/bin/env bash
# tachyon's TCP over a net_memif pair next to Linux <-> Linux over a veth pair, same
# workloads, one Markdown table at the end.
#
#   bench/tcp_vs_linux.sh [-d SECONDS] [-w SECONDS] [--no-build] [--tachyon-only|--linux-only]
#                         [--only NAME,...] [--wire]
#
# --only: just these workloads (bulk1 bulk4 bulk1000 rr1 rr16 cps1 cps16). --wire: also measure the
# wire itself, memif without TCP: dpdk-testpmd sends 1514-byte frames (txonly) to another
# dpdk-testpmd (rxonly), pinned as the stacks are, and the table shows their rate as TCP
# payload (1448 bytes a frame, as tachyon's segments carry with timestamps).
#
# tachyon: tachyond (memif server; echo on 7, discard on 9; worker on CPU 0) and
# tq_tcpbench (memif client, tachyon's TCP in client mode; worker on CPU 1).
# Linux: two network namespaces this script creates, joined by a veth pair; bench/linux_rr
# (echo/discard server pinned to CPU 0, client pinned to CPU 1) and iperf3 for reference.
# Everything it starts is stopped by PID and the namespaces are deleted on exit, also on
# failure or Ctrl-C. Raw outputs stay in a temporary directory it names.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/bench.sh"
cd "$TQ_ROOT"

DUR=10
WARM=1
BUILD=1
SIDES="tachyon linux"
ONLY=
WIRE=0
while [ $# -gt 0 ]; do
	case $1 in
	-d) DUR=$2; shift ;;
	-w) WARM=$2; shift ;;
	--no-build) BUILD=0 ;;
	--tachyon-only) SIDES=tachyon ;;
	--linux-only) SIDES=linux ;;
	--only) ONLY=$2; shift ;;
	--wire) WIRE=1 ;;
	*) tq_die "usage: $0 [-d SECONDS] [-w SECONDS] [--no-build] [--tachyon-only|--linux-only] [--only NAME,...] [--wire]" ;;
	esac
	shift
done

tq_require_root
tq_install_deps
tq_hugepages 1024

B=$TQ_ROOT/build-bench
if [ "$BUILD" = 1 ]; then
	tq_log "build (release) in build-bench"
	tq_build build-bench -Dbuildtype=release >/dev/null
fi
TACHYOND=$B/control/tachyond
TACHYONCTL=$B/control/tachyonctl
TCPBENCH=$B/bench/tq_tcpbench
LINUX_RR=$B/bench/linux_rr

SRV_CPU=0 # tachyond's worker, Linux's server process
CLI_CPU=1 # tq_tcpbench's worker, Linux's client process
ID=$$
PREFIX=tq-vs-srv-$ID
CPREFIX=tq-vs-cli-$ID
SOCK=/run/tachyon/vs-$ID.sock # memif's default abstract socket: nothing on disk
NS_SRV=tq-vs-$ID-srv
NS_CLI=tq-vs-$ID-cli
SRV_IP=198.18.7.2
CLI_IP=198.18.7.1
OUT=$(mktemp -d /tmp/tq-vs-linux-XXXXXX)

cleanup() {
	tq_stop_all
	ip netns del "$NS_SRV" 2>/dev/null || true
	ip netns del "$NS_CLI" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run NAME CMD...: in the background (so cleanup can reach it), output in $OUT/NAME.log
run() {
	local name=$1 rc=0 p
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	p=$!
	pids+=("$p")
	wait "$p" || rc=$?
	forget "$p"
	grep -E '^(bulk|rr|cps|request|connect|stack|errors):' "$OUT/$name.log" | sed "s/^/    /" >&2 || true
	[ "$rc" -eq 0 ] || echo "    ($name exited $rc; see $OUT/$name.log)" >&2
}

# get NAME KEY: a value from NAME's RESULT line ("-" when absent)
get() {
	local v
	v=$(sed -n 's/^RESULT .*\b'"$2"'=\([^ ]*\).*/\1/p' "$OUT/$1.log" 2>/dev/null | tail -1)
	echo "${v:--}"
}

# The workloads: name, mode, connections, size
WORKLOADS=(
	"bulk1 bulk 1 0"
	"bulk4 bulk 4 0"
	"bulk1000 bulk 1000 0"
	"rr1 rr 1 64"
	"rr16 rr 16 64"
	"cps1 cps 1 0"
	"cps16 cps 16 0"
)
if [ -n "$ONLY" ]; then
	keep=()
	for wl in "${WORKLOADS[@]}"; do
		[[ ",$ONLY," == *",${wl%% *},"* ]] && keep+=("$wl")
	done
	[ ${#keep[@]} -gt 0 ] || tq_die "--only $ONLY: no such workload"
	WORKLOADS=("${keep[@]}")
fi

machine() {
	echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
	echo "- kernel: $(uname -r); DPDK: $(pkg-config --modversion libdpdk)"
	echo "- load before: $(cut -d' ' -f1-3 /proc/loadavg)"
}
{
	echo "# tcp_vs_linux: $(date -u +%FT%TZ), ${DUR}s per run after ${WARM}s warm-up"
	machine
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---- tachyon over memif ----
if [[ " $SIDES " == *" tachyon "* ]]; then
	tq_log "tachyon: tachyond (memif server, worker on CPU $SRV_CPU)"
	# shellcheck disable=SC2046
	"$TACHYOND" --lcores "0@$SRV_CPU,1@$SRV_CPU" $(tq_eal_mem_args 512) --no-pci \
		--file-prefix "$PREFIX" --vdev=net_memif0,role=server,socket="$SOCK" \
		--log-level='*:warning' -- --ipv4 "0=$SRV_IP/24" --set services.echo=7 \
		--set services.discard=9 >"$OUT/tachyond.log" 2>&1 &
	tpid=$!
	pids+=("$tpid")
	tq_wait_for "grep -q 'tachyond: ready' $OUT/tachyond.log && $TACHYONCTL -p $PREFIX info" 30 ||
		{ cat "$OUT/tachyond.log"; tq_die "tachyond did not come up"; }
	for wl in "${WORKLOADS[@]}"; do
		read -r name mode conns size <<<"$wl"
		tq_log "tachyon: $name ($mode, $conns connection(s))"
		args=(--mode "$mode" --conns "$conns" --duration "$DUR" --warmup "$WARM" --dst "$SRV_IP")
		[ "$size" != 0 ] && args+=(--size "$size")
		# client-side TIME_WAIT of 100 ms (msl 50) and room for the TCBs it holds: see
		# bench/RESULTS.md (Linux gets tcp_tw_reuse=1 with a 100 ms delay to match)
		# shellcheck disable=SC2046
		run "tq-$name" "$TCPBENCH" --lcores "0@$CLI_CPU,1@$CLI_CPU" $(tq_eal_mem_args 512) \
			--no-pci --file-prefix "$CPREFIX" --vdev=net_memif0,role=client,socket="$SOCK" \
			--log-level='*:warning' -- --ipv4 "0=$CLI_IP/24" --set tcp.msl_ms=50 \
			--set tcp.max_conns=65536 --set dataplane.mbufs_per_worker=32768 -- "${args[@]}"
	done
	"$TACHYONCTL" -p "$PREFIX" stats >"$OUT/tachyond-stats.txt" 2>&1 || true
	stop "$tpid"
fi

# ---- the wire alone: memif frames, no TCP ----
if [ "$WIRE" = 1 ]; then
	FRAME=1514
	WSOCK=/run/tachyon/vs-wire-$ID.sock
	testpmd() { # testpmd CPU PREFIX ROLE MODE LOG
		# shellcheck disable=SC2046
		dpdk-testpmd --lcores "0@$1,1@$1" $(tq_eal_mem_args 1024) --no-pci --file-prefix "$2" \
			--vdev=net_memif0,role=$3,socket="$WSOCK" --log-level='*:warning' -- \
			--forward-mode="$4" --nb-cores=1 --total-num-mbufs=16384 --txpkts="$FRAME" \
			--stats-period 1 </dev/null >"$5" 2>&1 &
		pids+=("$!")
	}
	tq_log "wire: dpdk-testpmd txonly (CPU $CLI_CPU) -> rxonly (CPU $SRV_CPU), $FRAME-byte frames"
	testpmd "$SRV_CPU" "$PREFIX-wire" server rxonly "$OUT/wire-rx.log"
	wrx=$!
	sleep 1
	testpmd "$CLI_CPU" "$CPREFIX-wire" client txonly "$OUT/wire-tx.log"
	wtx=$!
	sleep "$(awk -v d="$DUR" -v w="$WARM" 'BEGIN {print d + w + 2}')"
	stop "$wtx"
	stop "$wrx"
	# Rx-pps once a second: the middle DUR samples (after the link came up and WARM passed)
	python3 - "$OUT/wire-rx.log" "$DUR" "$WARM" "$FRAME" >"$OUT/wire.log" <<'PY'
import math, re, sys
log, dur, warm, frame = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
pps = [int(x) for x in re.findall(r"Rx-pps:\s+(\d+)", open(log).read())]
pps = [p for p in pps if p > 0]
skip, n = int(math.ceil(warm)), max(1, int(dur))
sample = pps[skip:skip + n] or pps
if not sample:
    print("RESULT wire ok=0")
    sys.exit()
rate = sum(sample) / len(sample)
print("wire: %d-byte frames, %.0f frames/s over %d s" % (frame, rate, len(sample)))
print("RESULT wire ok=1 fps=%.0f frame_gbps=%.3f gbps=%.3f" % (
    rate, rate * frame * 8 / 1e9, rate * (frame - 66) * 8 / 1e9))
PY
	sed 's/^/    /' "$OUT/wire.log" >&2
fi

# ---- Linux over veth ----
in_srv() { ip netns exec "$NS_SRV" "$@"; }
in_cli() { ip netns exec "$NS_CLI" "$@"; }
# linux_server [ethtool offload state]: (re)start the echo/discard server on CPU $SRV_CPU
if [[ " $SIDES " == *" linux "* ]]; then
	tq_log "linux: namespaces $NS_SRV / $NS_CLI, veth, server on CPU $SRV_CPU"
	ip netns add "$NS_SRV"
	ip netns add "$NS_CLI"
	ip link add vs-srv netns "$NS_SRV" type veth peer name vs-cli netns "$NS_CLI"
	in_srv ip link set lo up
	in_cli ip link set lo up
	in_srv ip addr add "$SRV_IP/24" dev vs-srv
	in_cli ip addr add "$CLI_IP/24" dev vs-cli
	in_srv ip link set vs-srv up
	in_cli ip link set vs-cli up
	# TIME_WAIT on the client: reuse after 100 ms, like tachyon's 2 * msl_ms above
	in_cli sysctl -q -w net.ipv4.tcp_tw_reuse=1
	in_cli sysctl -q -w net.ipv4.tcp_tw_reuse_delay=100 2>/dev/null ||
		echo "note: no tcp_tw_reuse_delay on this kernel (1 s reuse delay)" >&2
	tq_wait_for "in_cli ping -c1 -W1 $SRV_IP" 10 || tq_die "veth pair not passing traffic"
	# The Linux server: ip netns exec and taskset exec, so $! is linux_rr itself.
	ip netns exec "$NS_SRV" taskset -c "$SRV_CPU" "$LINUX_RR" server --addr "$SRV_IP" \
		>"$OUT/linux-server.log" 2>&1 &
	lpid=$!
	pids+=("$lpid")
	tq_wait_for "grep -q 'server ready' $OUT/linux-server.log" 10 || tq_die "linux_rr server"
	for wl in "${WORKLOADS[@]}"; do
		read -r name mode conns size <<<"$wl"
		tq_log "linux: $name ($mode, $conns connection(s))"
		args=(--conns "$conns" --duration "$DUR" --warmup "$WARM" --dst "$SRV_IP")
		[ "$size" != 0 ] && args+=(--size "$size")
		run "lx-$name" ip netns exec "$NS_CLI" taskset -c "$CLI_CPU" "$LINUX_RR" "$mode" "${args[@]}"
	done
	tq_log "linux: iperf3 (reference for bulk1)"
	ip netns exec "$NS_SRV" taskset -c "$SRV_CPU" iperf3 -s -B "$SRV_IP" -1 \
		>"$OUT/iperf3-server.log" 2>&1 &
	ipid=$!
	pids+=("$ipid")
	sleep 0.5
	# iperf3 wants whole seconds: the warm-up rounded up is omitted from its result
	iwarm=$(awk -v w="$WARM" 'BEGIN {print int(w) + (w > int(w))}')
	run iperf3 ip netns exec "$NS_CLI" taskset -c "$CLI_CPU" iperf3 -c "$SRV_IP" \
		-t "$(awk -v d="$DUR" 'BEGIN {print int(d + 0.999)}')" -O "$iwarm" -J
	stop "$ipid"
	# Without segmentation offloads Linux handles every 1448-byte segment itself, as
	# tachyon does (veth's TSO/GSO/GRO move 64 KiB at a time otherwise).
	tq_log "linux: bulk1 without TSO/GSO/GRO"
	in_srv ethtool -K vs-srv tso off gso off gro off >/dev/null 2>&1 || true
	in_cli ethtool -K vs-cli tso off gso off gro off >/dev/null 2>&1 || true
	run lx-bulk1-nooffload ip netns exec "$NS_CLI" taskset -c "$CLI_CPU" "$LINUX_RR" bulk \
		--conns 1 --duration "$DUR" --warmup "$WARM" --dst "$SRV_IP"
	stop "$lpid"
fi

# ---- the table ----
iperf_gbps() {
	python3 -c "
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print('%.3f' % (j['end']['sum_received']['bits_per_second'] / 1e9))
except Exception:
    print('-')" "$OUT/iperf3.log"
}
ratio() { # a b: a/b with 2 decimals, "-" when either is missing
	python3 -c "
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
    print('%.2f' % (a / b) if b else '-')
except ValueError:
    print('-')" "$1" "$2"
}
num() { # pretty-print a number: Gbit/s with 2 decimals, rates as integers, us with 1
	python3 -c "
import sys
v, kind = sys.argv[1], sys.argv[2]
try:
    f = float(v)
    print({'g': '%.2f', 'r': '{:,.0f}', 'u': '%.1f'}[kind] % f if kind != 'r' else '{:,.0f}'.format(f))
except ValueError:
    print(v)" "$1" "$2"
}
row() { # label kind tachyon linux
	printf '| %s | %s | %s | %s |\n' "$1" "$(num "$3" "$2")" "$(num "$4" "$2")" "$(ratio "$3" "$4")"
}
{
	echo
	echo "| workload | tachyon (memif) | Linux (veth) | tachyon / Linux |"
	echo "| --- | ---: | ---: | ---: |"
	row "bulk, 1 conn, Gbit/s" g "$(get tq-bulk1 gbps)" "$(get lx-bulk1 gbps)"
	row "bulk, 1 conn, Gbit/s (Linux: iperf3)" g "$(get tq-bulk1 gbps)" "$(iperf_gbps)"
	row "bulk, 1 conn, Gbit/s (Linux: no TSO/GSO/GRO)" g "$(get tq-bulk1 gbps)" "$(get lx-bulk1-nooffload gbps)"
	row "bulk, 4 conns, Gbit/s" g "$(get tq-bulk4 gbps)" "$(get lx-bulk4 gbps)"
	row "bulk, 1,000 conns, Gbit/s" g "$(get tq-bulk1000 gbps)" "$(get lx-bulk1000 gbps)"
	if [ "$WIRE" = 1 ]; then
		printf '| the wire: memif alone (testpmd), 1514-byte frames as TCP payload, Gbit/s | %s | – | – |\n' \
			"$(num "$(get wire gbps)" g)"
		printf '| bulk, 1 conn, share of the wire | %s | – | – |\n' \
			"$(ratio "$(get tq-bulk1 gbps)" "$(get wire gbps)")"
	fi
	for n in 1 16; do
		row "rr 64 B, $n conn(s), transactions/s" r "$(get tq-rr$n rate)" "$(get lx-rr$n rate)"
		for p in p50 p99 p999 max; do
			row "rr 64 B, $n conn(s), latency $p (us)" u "$(get tq-rr$n ${p}_us)" "$(get lx-rr$n ${p}_us)"
		done
	done
	for n in 1 16; do
		row "cps, $n concurrent, connections/s" r "$(get tq-cps$n rate)" "$(get lx-cps$n rate)"
		row "cps, $n concurrent, connect p50 (us)" u "$(get tq-cps$n p50_us)" "$(get lx-cps$n p50_us)"
		row "cps, $n concurrent, connect p99 (us)" u "$(get tq-cps$n p99_us)" "$(get lx-cps$n p99_us)"
	done
	echo
	echo "Latency rows: lower is better (ratio < 1 means tachyon is faster)."
	echo "Counts checked (RESULT ok=1): tachyon $(cat "$OUT"/tq-*.log 2>/dev/null | grep -c 'ok=1' || true)/$(ls "$OUT"/tq-*.log 2>/dev/null | wc -l), Linux $(cat "$OUT"/lx-*.log 2>/dev/null | grep -c 'ok=1' || true)/$(ls "$OUT"/lx-*.log 2>/dev/null | wc -l)."
	echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg); raw output: $OUT"
} >"$OUT/table.md"
cat "$OUT/header.md" "$OUT/table.md"
