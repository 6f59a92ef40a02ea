#!/usr/bin/env bash
# tachyond on a TAP in a private network namespace, with the Linux kernel as its peer:
# ping, arping, large pings, the router pinging the host (ARP resolution), malformed
# frames counted by name, tachyonctl output, and a clean SIGTERM.
#
# usage: test_net.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NAME=it
HOST2=198.18.0.3
source "$(dirname "$0")/lib.sh"

it_start
in_ns ip addr add "$HOST2/24" dev tq0
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
out=$(echo /tachyon/info | dpdk-telemetry.py -f "$PREFIX" 2>&1 || true)
echo "$out" | grep -q "\"workers\": $WORKERS" && ok "dpdk-telemetry.py sees /tachyon/info" ||
	fail "dpdk-telemetry.py: $out"
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
# a storm of ARP requests for other hosts: counted and ignored, the router stays up. On a
# busy machine the kernel may drop some on the TAP's own queue (tun's tx_dropped) before
# tachyond sees them: every frame that got through must be counted, exactly.
# device_drops: frames port 0 itself dropped (missed, no mbuf, errors), per tachyonctl
device_drops() {
	ctl --json ports | python3 -c "
import json, sys
p = json.load(sys.stdin)['0']
print(p['rx_missed'] + p['rx_nombuf'] + p['rx_errors'])"
}
before=$(counter arp_not_for_us)
ddrop0=$(device_drops)
kdrop0=$(in_ns cat /sys/class/net/tq0/statistics/tx_dropped)
in_ns python3 "$(dirname "$0")/inject.py" tq0 ff:ff:ff:ff:ff:ff "$kmac" "$ROUTER" "$HOST" \
	arp_not_for_us 2000
sleep 1
kdrop=$(($(in_ns cat /sys/class/net/tq0/statistics/tx_dropped) - kdrop0))
ddrop=$(($(device_drops) - ddrop0))
want=$((before + 2000 - kdrop - ddrop))
if tq_wait_for "[ \$(counter arp_not_for_us) -ge $want ]" 20 &&
	[ "$(counter arp_not_for_us)" -eq "$want" ] && [ $((kdrop + ddrop)) -lt 1000 ]; then
	ok "2000-frame ARP storm counted (dropped before tachyond: kernel $kdrop, port $ddrop)"
else
	fail "storm: $before -> $(counter arp_not_for_us), dropped: kernel $kdrop, port $ddrop"
fi
out=$(in_ns ping -c 2 -i 0.2 -W 2 "$ROUTER" || true)
echo "$out" | grep -q '2 received' && ok "still answering after the bad input" || fail "$out"

it_stop
