#!/usr/bin/env bash
# loadgen_smoke: a few seconds of MQTT through tachyond with tq_loadgen, a few connections at
# a low rate. Checks that the counts add up, never how fast: the load generator's own verdict
# (QoS 1: sent = acknowledged = received x fan-out; QoS 0: nothing more than expected; no
# connection, protocol or payload errors) and tachyond's counters (every PUBLISH received
# and delivered, every client connected and gone by DISCONNECT, no protocol error).
#   dpdk transport: tachyond and tq_loadgen over a net_memif pair (a fresh tachyond per run)
#   kernel transport: tachyond on a TAP in a namespace of its own, Linux sockets
# Usage: loadgen_smoke.sh TACHYOND TQ_LOADGEN TACHYONCTL
set -uo pipefail
TACHYOND=$1
LOADGEN=$2
TACHYONCTL=$3
source "$(dirname "$0")/../scripts/lib/common.sh"
tq_require_root

ID=$$
PREFIX=tq-lgsmoke-srv-$ID
SOCK=/run/tachyon/lgsmoke-$ID.sock # abstract socket name (memif's default): nothing on disk
NS=tq-lgsmoke-$ID
LOG=$(mktemp /tmp/tq-lgsmoke-XXXXXX.log)
BLOG=$(mktemp /tmp/tq-lgsmoke-load-XXXXXX.log)
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

# check NAME QOS PUBS SUBS: the load generator's verdict and tachyond's counters agree
check() {
	local name=$1 qos=$2 pubs=$3 subs=$4 sent acked rcvd exp conns
	sent=$(field sent)
	acked=$(field acked)
	rcvd=$(field received)
	exp=$(field expected)
	conns=$((pubs + subs))
	[ "$(field ok)" = 1 ] && ok "$name: the load generator's counts add up" ||
		fail "$name: the load generator says the counts do not add up"
	for k in conn_errors proto_errors refused bad dups; do
		[ "$(field $k)" = 0 ] || fail "$name: $k = $(field $k)"
	done
	if [ "$qos" = 1 ]; then
		[ "$sent" -gt 0 ] && [ "$acked" = "$sent" ] && [ "$rcvd" = "$exp" ] &&
			ok "$name: QoS 1: $sent sent = $acked acknowledged, $rcvd received of $exp" ||
			fail "$name: QoS 1: sent $sent, acked $acked, received $rcvd of $exp"
	else
		[ "$sent" -gt 0 ] && [ "$rcvd" -gt 0 ] && [ "$rcvd" -le "$exp" ] &&
			ok "$name: QoS 0: $sent sent, $rcvd received of $exp" ||
			fail "$name: QoS 0: sent $sent, received $rcvd of $exp"
	fi
	[ "$(stat mqtt_publish_in)" = "$sent" ] && ok "$name: tachyond received all $sent PUBLISHes" ||
		fail "$name: tachyond received $(stat mqtt_publish_in) PUBLISHes of $sent"
	[ "$(stat mqtt_publish_out)" = "$rcvd" ] && ok "$name: tachyond sent the $rcvd that arrived" ||
		fail "$name: tachyond sent $(stat mqtt_publish_out), the load generator got $rcvd"
	[ "$(stat mqtt_connects)" = "$conns" ] && [ "$(stat mqtt_disconnects)" = "$conns" ] &&
		ok "$name: $conns clients connected and left by DISCONNECT" ||
		fail "$name: connects $(stat mqtt_connects), disconnects $(stat mqtt_disconnects) of $conns"
	for c in mqtt_protocol_errors mqtt_conns_lost mqtt_no_memory tcp_resets_rx tcp_bad_checksum; do
		[ "$(stat $c)" = 0 ] || fail "$name: tachyond $c = $(stat $c)"
	done
}

# ---- dpdk transport over memif: a fresh tachyond per run ----
# memif NAME QOS PUBS SUBS RATE
memif() {
	local name=$1 qos=$2 pubs=$3 subs=$4 rate=$5 rc=0
	# shellcheck disable=SC2046
	tachyond_up "$TACHYOND" --lcores 0@0,1@0 $(tq_eal_mem_args 256) --no-pci \
		--file-prefix "$PREFIX" --vdev=net_memif0,role=server,socket="$SOCK" \
		--log-level='*:warning' -- --idle adaptive --ipv4 0=198.18.7.2/24 \
		--set mqtt.port=1883 --set mqtt.allow_anonymous=1 --set mqtt.sys_interval=0
	# shellcheck disable=SC2046
	"$LOADGEN" --lcores 0@1,1@1 $(tq_eal_mem_args 256) --no-pci --file-prefix "tq-lgsmoke-cli-$ID" \
		--vdev=net_memif0,role=client,socket="$SOCK" --log-level='*:warning' -- \
		--ipv4 0=198.18.7.1/24 -- --dst 198.18.7.2 --qos "$qos" --pubs "$pubs" --subs "$subs" \
		--rate "$rate" --duration 2 --warmup 0.5 --csv --csv-header >"$BLOG" 2>&1 &
	bpid=$!
	wait "$bpid" || rc=$?
	bpid=
	grep -v '^TELEMETRY' "$BLOG" | sed "s/^/  $name: /"
	[ "$rc" -eq 0 ] || fail "$name: tq_loadgen exited $rc"
	check "$name" "$qos" "$pubs" "$subs"
	tachyond_down
}

memif dpdk-qos1-1to1 1 1 1 2000
memif dpdk-qos0-fanout3 0 1 3 2000
memif dpdk-qos1-fanin3 1 3 1 3000

# ---- kernel transport: tachyond on a TAP in a namespace ----
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
# shellcheck disable=SC2046
tachyond_up ip netns exec "$NS" "$TACHYOND" --lcores 0@0,1@1 $(tq_eal_mem_args 256) --no-pci \
	--file-prefix "$PREFIX" --vdev=net_tap0,iface=tq0 --log-level='*:warning' -- \
	--idle adaptive --ipv4 0=198.18.0.2/24 --set mqtt.port=1883 --set mqtt.allow_anonymous=1 \
	--set mqtt.sys_interval=0
ip netns exec "$NS" ip addr add 198.18.0.1/24 dev tq0
ip netns exec "$NS" ip link set tq0 up
rc=0
ip netns exec "$NS" "$LOADGEN" --transport kernel --dst 198.18.0.2 --qos 1 --pubs 2 --subs 2 \
	--rate 2000 --duration 2 --warmup 0.5 --csv --csv-header >"$BLOG" 2>&1 || rc=$?
sed "s/^/  kernel-qos1-pairs2: /" "$BLOG"
[ "$rc" -eq 0 ] || fail "kernel-qos1-pairs2: tq_loadgen exited $rc"
check kernel-qos1-pairs2 1 2 2
tachyond_down
ip netns del "$NS"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
