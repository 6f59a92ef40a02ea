#!/usr/bin/env bash
# Where tachyond's worker spends its time at peak load (issue 7: "what the profile shows").
# For each cell: a fresh tachyond (memif server, worker and main lcore on CPU 1), tq_loadgen
# (memif client on CPU 0) at --rate 0 for the warm-up plus the measured time, and `perf
# record -g` on tachyond for the measured seconds. Writes OUT/CELL.perf.txt (perf report,
# self time by symbol), OUT/CELL.loadgen.log, and OUT/profile.md: per cell the messages/s
# the run did and the functions above 2 % of tachyond's samples.
#
#   bench/profile.sh [--no-build] [--build-dir DIR] [-d SECONDS] [-w SECONDS] [--out DIR]
#                    [--keep] [CELL...]
#
# --keep leaves OUT/CELL.perf.data for `perf report -i` (e.g. --children for inclusive time).
#
# Cells: mqtt_qos0_1to1, mqtt_qos0_fanout10, amqp_autoack_1to1, amqp_fanout10 (default: the
# first and the third). --out defaults to bench/results/profile-<UTC date-time>/. The build
# is the release tree bench/run uses (build-bench); for call chains in the reports build one
# with frame pointers (meson setup DIR -Dbuildtype=release -Dc_args=-fno-omit-frame-pointer)
# and pass --no-build --build-dir DIR. Numbers are never asserted.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/../scripts/lib/bench.sh"
START_DIR=$PWD
cd "$TQ_ROOT"

BUILD=1
BDIR=build-bench
DUR=3
WARM=1
OUT=
KEEP=0
CELLS=()
usage() { tq_die "usage: $0 [--no-build] [--build-dir DIR] [-d SECONDS] [-w SECONDS] [--out DIR] [--keep] [CELL...]"; }
while [ $# -gt 0 ]; do
	case $1 in
	--no-build) BUILD=0 ;;
	--build-dir) BDIR=$2; shift ;;
	-d) DUR=$2; shift ;;
	-w) WARM=$2; shift ;;
	--out) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-*) usage ;;
	*) CELLS+=("$1") ;;
	esac
	shift
done
[ ${#CELLS[@]} -gt 0 ] || CELLS=(mqtt_qos0_1to1 amqp_autoack_1to1)

# cell_args CELL: tachyond's settings | tq_loadgen's workload options
cell_args() {
	case $1 in
	mqtt_qos0_1to1) echo "--set mqtt.port=1883 --set mqtt.allow_anonymous=1|--qos 0 --pubs 1 --subs 1" ;;
	mqtt_qos0_fanout10) echo "--set mqtt.port=1883 --set mqtt.allow_anonymous=1|--qos 0 --pubs 1 --subs 10" ;;
	amqp_autoack_1to1) echo "--set amqp.port=5672|--proto amqp --workload autoack --pubs 1 --subs 1" ;;
	amqp_fanout10) echo "--set amqp.port=5672|--proto amqp --workload fanout --pubs 1 --subs 10" ;;
	*) tq_die "unknown cell $1 (mqtt_qos0_1to1, mqtt_qos0_fanout10, amqp_autoack_1to1, amqp_fanout10)" ;;
	esac
}
for c in "${CELLS[@]}"; do cell_args "$c" >/dev/null; done

tq_require_root
TQ_PACKAGES+=(linux-perf)
tq_install_deps
case $BDIR in
/*) B=$BDIR ;;
*) B=$TQ_ROOT/$BDIR ;;
esac
case $OUT in
'') OUT=$TQ_ROOT/bench/results/profile-$(date -u +%Y-%m-%dT%H%M%SZ) ;;
/*) ;;
*) OUT=$START_DIR/$OUT ;;
esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "$BUILD" = 1 ]; then
	tq_bench_build "$B" "$OUT/build.log" control/tachyond control/tachyonctl \
		bench/loadgen/tq_loadgen
fi
TACHYOND=$B/control/tachyond
TACHYONCTL=$B/control/tachyonctl
LOADGEN=$B/bench/loadgen/tq_loadgen

ID=$$
SOCK=/run/tachyon/prof-$ID.sock # memif's abstract socket: nothing on disk
SUT_CPU=1
LOAD_CPU=0
trap tq_stop_all EXIT
trap 'exit 130' INT TERM

{
	echo "# tachyond's worker at peak load: perf self time by function"
	echo
	echo "- started $(date -u +%FT%TZ); $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs;" \
		"load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'), build $B (release)"
	echo "- tachyond: memif server, worker and main lcore on CPU $SUT_CPU; tq_loadgen: memif client on CPU $LOAD_CPU, 64-byte payloads, --rate 0, $WARM s warm-up, $DUR s measured"
	echo "- \`perf record -g -p TACHYOND -- sleep $DUR\` after the warm-up; \`perf report --no-children --sort symbol\`"
	echo
} >"$OUT/profile.md"

for cell in "${CELLS[@]}"; do
	IFS='|' read -r sets wl <<<"$(cell_args "$cell")"
	log=$OUT/$cell.tachyond.log
	tq_log "$cell: tachyond up"
	# shellcheck disable=SC2046,SC2086
	"$TACHYOND" --lcores "0@$SUT_CPU,1@$SUT_CPU" $(tq_eal_mem_args 1024) --no-pci \
		--file-prefix "tq-prof-srv-$ID" --vdev=net_memif0,role=server,socket="$SOCK" \
		--log-level='*:warning' -- --ipv4 0=198.18.9.2/24 $sets \
		--set dataplane.mbufs_per_worker=131072 >"$log" 2>&1 &
	spid=$!
	pids+=("$spid")
	tq_wait_for "grep -q 'tachyond: ready' $log && $TACHYONCTL -p tq-prof-srv-$ID info" 30 ||
		{ cat "$log"; tq_die "tachyond did not come up"; }
	# shellcheck disable=SC2046,SC2086
	"$LOADGEN" --lcores "0@$LOAD_CPU,1@$LOAD_CPU" $(tq_eal_mem_args 256) --no-pci \
		--file-prefix "tq-prof-cli-$ID" --vdev=net_memif0,role=client,socket="$SOCK" \
		--log-level='*:warning' -- --ipv4 0=198.18.9.1/24 \
		--set dataplane.mbufs_per_worker=32768 -- --dst 198.18.9.2 $wl --size 64 --rate 0 \
		--duration "$(awk -v d="$DUR" 'BEGIN {print d + 2}')" --warmup "$WARM" --drain 10 \
		>"$OUT/$cell.loadgen.log" 2>&1 &
	lpid=$!
	pids+=("$lpid")
	# the clients connect and subscribe (well under a second), then warm up
	sleep "$(awk -v w="$WARM" 'BEGIN {print w + 1}')"
	tq_log "$cell: perf record for $DUR s"
	perf record -g -q -o "$OUT/$cell.perf.data" -p "$spid" -- sleep "$DUR" >/dev/null 2>&1 ||
		echo "    perf record failed" >&2
	wait "$lpid" || echo "    tq_loadgen exit $? (see $OUT/$cell.loadgen.log)" >&2
	forget "$lpid"
	stop "$spid"
	perf report -i "$OUT/$cell.perf.data" --no-children --sort symbol --stdio 2>/dev/null |
		grep -v '^$' >"$OUT/$cell.perf.txt" || true
	rate=$(sed -n 's/.*received \([0-9.]*\) msgs\/s.*/\1/p' "$OUT/$cell.loadgen.log" | tail -1)
	[ -n "$rate" ] || rate=$(grep -E '^  (totals|window)' "$OUT/$cell.loadgen.log" | head -2 | tr -s ' ' | tr '\n' ';')
	{
		echo "## $cell"
		echo
		echo "Load generator: $rate"
		echo
		echo "| self % | function |"
		echo "| ---: | --- |"
		# top-level lines of the report: "    12.34%  tachyond  [.] name"
		awk '/^ +[0-9.]+%/ && $1 + 0 >= 2 {
			pct = $1; name = ""
			for (i = 2; i <= NF; i++) if ($i ~ /^\[/) { for (j = i + 1; j <= NF && $j != "-"; j++) name = name (j > i + 1 ? " " : "") $j; break }
			printf "| %s | `%s` |\n", pct, name
		}' "$OUT/$cell.perf.txt" | head -20
		echo
	} >>"$OUT/profile.md"
	[ "$KEEP" = 1 ] || rm -f "$OUT/$cell.perf.data"
done
cat "$OUT/profile.md"
tq_log "done: $OUT"
