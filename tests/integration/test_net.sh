#!/usr/bin/env bash
# tachyond on a TAP in a private network namespace, with the Linux kernel as its peer:
# ping, arping, large pings, the router pinging the host (ARP resolution), malformed
# frames counted by name, tachyonctl output, and a clean SIGTERM.
#
# usage: test_net.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/common.sh"

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NS=tq-it-$$
PREFIX=tq-it-$$
ROUTER=198.18.0.2
HOST=198.18.0.1
HOST2=198.18.0.3
LOG=$(mktemp /tmp/tq-it-XXXXXX.log)
pid=
failures=0

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	ip netns del "$NS" 2>/dev/null || true
	rm -f "$LOG"
}
trap cleanup EXIT

tq_require_root
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ctl() { "$TACHYONCTL" -p "$PREFIX" "$@"; }
counter() { # counter NAME: the total of a counter
	ctl --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['/tachyon/stats']['$1'])"
}
in_ns() { ip netns exec "$NS" "$@"; }

case $WORKERS in
1) LCORES="0@0,1@1" ;;
2) LCORES="0@0,1@1,2@0" ;; # three lcores on two CPUs: fine with adaptive idle
*) tq_die "WORKERS must be 1 or 2" ;;
esac

ip netns add "$NS"
in_ns ip link set lo up
# Not through in_ns: $! must be tachyond itself (ip netns exec execs it), not a subshell.
# shellcheck disable=SC2046
ip netns exec "$NS" "$TACHYOND" --lcores "$LCORES" $(tq_eal_mem_args 256) --no-pci --file-prefix "$PREFIX" \
	--vdev=net_tap0,iface=tq0 --log-level='*:warning' -- --idle adaptive \
	--ipv4 "0=$ROUTER/24" >"$LOG" 2>&1 &
pid=$!
tq_wait_for "ip netns exec $NS ip link show tq0" 30 || { cat "$LOG"; tq_die "no tq0"; }
in_ns ip addr add "$HOST/24" dev tq0
in_ns ip addr add "$HOST2/24" dev tq0
in_ns ip link set tq0 up
tq_wait_for "$TACHYONCTL -p $PREFIX info" 30 || { cat "$LOG"; tq_die "tachyond not answering"; }
grep -q "ready: $WORKERS workers, 1 ports" "$LOG" && ok "ready with $WORKERS workers" ||
	fail "ready line: $(cat "$LOG")"

# ping -c 5 gets 5 replies
out=$(in_ns ping -c 5 -i 0.2 -W 2 "$ROUTER" || true)
echo "$out" | grep -q '5 packets transmitted, 5 received' && ok "ping 5/5" || fail "ping: $out"

# arping resolves the router to the port's MAC
mac=$(ctl --json ports | python3 -c "import json,sys; print(json.load(sys.stdin)['0']['mac'].lower())")
out=$(in_ns arping -c 3 -w 5 -I tq0 "$ROUTER" || true)
echo "$out" | grep -qi "from $mac ($ROUTER)" && ok "arping resolves $ROUTER to $mac" ||
	fail "arping: $out"

# large echo (1400 bytes of payload) comes back whole
out=$(in_ns ping -c 3 -i 0.2 -s 1400 -W 2 "$ROUTER" || true)
echo "$out" | grep -q '3 packets transmitted, 3 received' && echo "$out" | grep -q '1408 bytes from' &&
	ok "ping -s 1400" || fail "ping -s 1400: $out"

# the router resolves a neighbour it never heard from, and pings it
before=$(counter arp_requests_tx)
out=$(ctl ping "$HOST2" 3 || true)
echo "$out" | grep -q '3 replies' && ok "router pings $HOST2 via ARP" || fail "tachyonctl ping: $out"
[ "$(counter arp_requests_tx)" -gt "$before" ] && ok "router sent an ARP request" ||
	fail "arp_requests_tx did not move"
ctl arp | grep -q "$HOST2 " && ok "tachyonctl arp lists $HOST2" || fail "arp table: $(ctl arp)"

# counters match what the kernel saw
req=$(counter icmp_echo_requests)
rep=$(counter icmp_echo_replies_tx)
[ "$req" -ge 8 ] && [ "$rep" -eq "$req" ] && ok "echo requests $req = replies $rep" ||
	fail "icmp counters: requests $req replies $rep"
[ "$(counter arp_replies_tx)" -ge 3 ] && ok "arp replies counted" || fail "arp_replies_tx"
[ "$(counter arp_garp_tx)" -eq 1 ] && ok "one gratuitous ARP at start" || fail "arp_garp_tx"
table=$(ctl stats)
echo "$table" | grep -Eq '^icmp_echo_replies_tx +[0-9]+' && ok "tachyonctl stats table" ||
	fail "stats table: $table"
if [ "$WORKERS" -gt 1 ]; then
	echo "$table" | head -1 | grep -q 'worker1' && ok "per-worker columns" ||
		fail "no per-worker columns: $(echo "$table" | head -1)"
fi

# malformed input: each kind counted under its own name, exactly, and never answered
kmac=$(in_ns cat /sys/class/net/tq0/address)
for kind in ipv4_bad_checksum ipv4_fragment ipv4_options ipv4_bad_total_len ipv4_truncated \
	ipv4_bad_version ipv4_not_for_us ipv4_unknown_proto icmp_bad_checksum eth_unknown_type \
	eth_vlan eth_not_for_us arp_not_for_us arp_bad_format arp_conflict; do
	before=$(counter "$kind")
	in_ns python3 "$(dirname "$0")/inject.py" tq0 "$mac" "$kmac" "$ROUTER" "$HOST" "$kind" 7
	if tq_wait_for "[ \$(counter $kind) -ge $((before + 7)) ]" 10 &&
		[ "$(counter "$kind")" -eq $((before + 7)) ]; then
		ok "$kind counted 7 times"
	else
		fail "$kind: $before -> $(counter "$kind")"
	fi
done
# a storm of ARP requests for other hosts: counted and ignored, the router stays up
before=$(counter arp_not_for_us)
in_ns python3 "$(dirname "$0")/inject.py" tq0 ff:ff:ff:ff:ff:ff "$kmac" "$ROUTER" "$HOST" \
	arp_not_for_us 2000
tq_wait_for "[ \$(counter arp_not_for_us) -ge $((before + 2000)) ]" 20 &&
	ok "2000-frame ARP storm counted" || fail "storm: $before -> $(counter arp_not_for_us)"
out=$(in_ns ping -c 2 -i 0.2 -W 2 "$ROUTER" || true)
echo "$out" | grep -q '2 received' && ok "still answering after the bad input" || fail "$out"

# SIGTERM: clean exit within seconds, then the namespace goes away
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
	fail "tachyond still running 10 s after SIGTERM"
else
	rc=0
	wait "$pid" || rc=$?
	pid=
	[ "$rc" -eq 0 ] && grep -q 'tachyond: stopped' "$LOG" && ok "clean exit on SIGTERM" ||
		fail "exit code $rc: $(tail -20 "$LOG")"
fi
ip netns del "$NS"
ip netns list | grep -qw "$NS" && fail "namespace $NS still there" || ok "namespace removed"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
