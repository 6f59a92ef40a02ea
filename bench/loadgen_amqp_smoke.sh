#!/usr/bin/env bash
# loadgen_amqp_smoke: a few seconds of AMQP 0-9-1 through tachyond with tq_loadgen --proto amqp,
# a few connections, mostly at a low rate. Checks that the counts add up, never how fast: the
# load generator's verdict (every message published is delivered, x the fan-out; confirms:
# every one confirmed; no connection, protocol or payload errors) and tachyond's counters
# (every publish arrived and was delivered, every client connected, no AMQP error).
# Two runs offer all they can (--rate 0) with tachyond's default pools: manual acks with a
# prefetch (once stalled for good after ~1,100 deliveries) and a fanout to 10 queues (once lost
# messages). There the publisher is pushed back (amqp_no_memory and amqp_ring_full count its
# waits), and still every message must arrive, once.
#   dpdk transport: tachyond and tq_loadgen over a net_memif pair (a fresh tachyond per run)
#   kernel transport: tachyond on a TAP in a namespace of its own, Linux sockets (the same)
# Usage: loadgen_amqp_smoke.sh TACHYOND TQ_LOADGEN TACHYONCTL
set -uo pipefail
TACHYOND=$1
LOADGEN=$2
TACHYONCTL=$3
source "$(dirname "$0")/../scripts/lib/common.sh"
tq_require_root

ID=$$
PREFIX=tq-lgasmoke-srv-$ID
SOCK=/run/tachyon/lgasmoke-$ID.sock # abstract socket name (memif's default): nothing on disk
NS=tq-lgasmoke-$ID
LOG=$(mktemp /tmp/tq-lgasmoke-XXXXXX.log)
BLOG=$(mktemp /tmp/tq-lgasmoke-load-XXXXXX.log)
pid=
bpid=
failures=0

cleanup() {
	for p in $bpid $pid; do
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	ip netns del "$NS" 2>/dev/null || true
	rm -f "$LOG" "$BLOG"
}
trap cleanup EXIT

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# stat NAME: tachyond's total of a counter
stat() {
	"$TACHYONCTL" -p "$PREFIX" --json stats | python3 -c "
import json, sys
print(json.load(sys.stdin)['/tachyon/stats'].get(sys.argv[1], 0))" "$1"
}
# field KEY: a value from the load generator's CSV line
field() {
	python3 -c "
import csv, sys
rows = [l for l in open(sys.argv[1]) if l.startswith(('transport,', 'dpdk,', 'kernel,'))]
r = list(csv.DictReader(rows))
print(r[-1][sys.argv[2]] if r else '-')" "$BLOG" "$1"
}

# tachyond_up [tachyond args...]: start it (output in $LOG) and wait until it is ready
tachyond_up() {
	"$@" >"$LOG" 2>&1 &
	pid=$!
	tq_wait_for "grep -q 'tachyond: ready' $LOG && $TACHYONCTL -p $PREFIX info" 30 ||
		{ cat "$LOG"; tq_die "tachyond did not come up"; }
}

# tachyond_down: SIGTERM and a clean exit
tachyond_down() {
	local rc=0
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" || rc=$?
	pid=
	[ "$rc" -eq 0 ] && grep -q 'tachyond: stopped' "$LOG" && ok "tachyond: clean exit" ||
		fail "tachyond: exit $rc: $(tail -5 "$LOG")"
}

# check NAME WORKLOAD PUBS SUBS RATE: the load generator's verdict and tachyond's counters
# agree. At RATE 0 the waits of a pushed-back publisher are counted, not errors.
check() {
	local name=$1 wl=$2 pubs=$3 subs=$4 rate=$5 sent acked rcvd exp conns c waits
	sent=$(field sent)
	acked=$(field acked)
	rcvd=$(field received)
	exp=$(field expected)
	conns=$((pubs + subs))
	[ "$(field workload)" = "$wl" ] || fail "$name: workload $(field workload), not $wl"
	[ "$(field ok)" = 1 ] && ok "$name: the load generator's counts add up" ||
		fail "$name: the load generator says the counts do not add up"
	for k in conn_errors proto_errors refused bad dups lost; do
		[ "$(field $k)" = 0 ] || fail "$name: $k = $(field $k)"
	done
	[ "$sent" -gt 0 ] && [ "$rcvd" = "$exp" ] &&
		ok "$name: $sent published, $rcvd delivered of $exp" ||
		fail "$name: published $sent, delivered $rcvd of $exp"
	if [ "$wl" = confirms ]; then
		[ "$acked" = "$sent" ] && ok "$name: all $sent confirmed" ||
			fail "$name: $acked confirmed of $sent"
	fi
	[ "$(stat amqp_publishes)" = "$sent" ] && ok "$name: tachyond received all $sent publishes" ||
		fail "$name: tachyond received $(stat amqp_publishes) publishes of $sent"
	[ "$(stat amqp_deliveries)" = "$rcvd" ] && ok "$name: tachyond delivered the $rcvd that arrived" ||
		fail "$name: tachyond delivered $(stat amqp_deliveries), the load generator got $rcvd"
	[ "$(stat amqp_connects)" = "$conns" ] && ok "$name: $conns clients connected" ||
		fail "$name: connects $(stat amqp_connects) of $conns"
	waits="amqp_no_memory amqp_ring_full"
	[ "$rate" = 0 ] && waits=
	for c in amqp_conn_errors amqp_chan_errors amqp_auth_failures amqp_frame_errors \
		amqp_unroutable amqp_stale_ops $waits tcp_resets_rx tcp_bad_checksum; do
		[ "$(stat $c)" = 0 ] || fail "$name: tachyond $c = $(stat $c)"
	done
}

# ---- dpdk transport over memif: a fresh tachyond per run ----
# memif NAME WORKLOAD PUBS SUBS RATE [more load options]
memif() {
	local name=$1 wl=$2 pubs=$3 subs=$4 rate=$5 rc=0
	shift 5
	# shellcheck disable=SC2046
	tachyond_up "$TACHYOND" --lcores 0@0,1@0 $(tq_eal_mem_args 256) --no-pci \
		--file-prefix "$PREFIX" --vdev=net_memif0,role=server,socket="$SOCK" \
		--log-level='*:warning' -- --idle adaptive --ipv4 0=198.18.7.2/24 \
		--set amqp.port=5672
	# shellcheck disable=SC2046
	"$LOADGEN" --lcores 0@1,1@1 $(tq_eal_mem_args 256) --no-pci --file-prefix "tq-lgasmoke-cli-$ID" \
		--vdev=net_memif0,role=client,socket="$SOCK" --log-level='*:warning' -- \
		--ipv4 0=198.18.7.1/24 -- --dst 198.18.7.2 --proto amqp --workload "$wl" \
		--pubs "$pubs" --subs "$subs" --rate "$rate" --duration 2 --warmup 0.5 --csv \
		--csv-header "$@" >"$BLOG" 2>&1 &
	bpid=$!
	wait "$bpid" || rc=$?
	bpid=
	grep -v '^TELEMETRY' "$BLOG" | sed "s/^/  $name: /"
	[ "$rc" -eq 0 ] || fail "$name: tq_loadgen exited $rc"
	check "$name" "$wl" "$pubs" "$subs" "$rate"
	tachyond_down
}

memif dpdk-autoack-1to1 autoack 1 1 2000
memif dpdk-confirms-1to1 confirms 1 1 2000
memif dpdk-ack-multi-fanin2 ack 2 1 2000 --prefetch 100 --ack-every 10
memif dpdk-ack-1to1-max ack 1 1 0 --prefetch 100

# ---- kernel transport: tachyond on a TAP in a namespace (a fresh tachyond per run) ----
# tap NAME WORKLOAD PUBS SUBS RATE [more load options]
tap() {
	local name=$1 wl=$2 pubs=$3 subs=$4 rate=$5 rc=0
	shift 5
	ip netns add "$NS"
	ip netns exec "$NS" ip link set lo up
	# shellcheck disable=SC2046
	tachyond_up ip netns exec "$NS" "$TACHYOND" --lcores 0@0,1@1 $(tq_eal_mem_args 256) \
		--no-pci --file-prefix "$PREFIX" --vdev=net_tap0,iface=tq0 --log-level='*:warning' \
		-- --idle adaptive --ipv4 0=198.18.0.2/24 --set amqp.port=5672
	ip netns exec "$NS" ip addr add 198.18.0.1/24 dev tq0
	ip netns exec "$NS" ip link set tq0 up
	ip netns exec "$NS" "$LOADGEN" --transport kernel --dst 198.18.0.2 --proto amqp \
		--workload "$wl" --pubs "$pubs" --subs "$subs" --rate "$rate" --duration 2 \
		--warmup 0.5 --csv --csv-header "$@" >"$BLOG" 2>&1 || rc=$?
	sed "s/^/  $name: /" "$BLOG"
	[ "$rc" -eq 0 ] || fail "$name: tq_loadgen exited $rc"
	check "$name" "$wl" "$pubs" "$subs" "$rate"
	tachyond_down
	ip netns del "$NS"
}

tap kernel-fanout3 fanout 1 3 2000
tap kernel-fanout10-max fanout 1 10 0

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
