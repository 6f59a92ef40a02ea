#!/usr/bin/env bash
# tachyond's network simulator with the Linux kernel as peer, on a TAP in a private
# namespace: seeded TX loss set at boot (--set nsim.port0.tx.*) loses about half the
# echo replies and counts every frame it drops; then live changes through tachyonctl:
# loss off, RX duplication, a 50 ms TX delay, and bad input refused.
#
# usage: test_nsim.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NAME=nsim
source "$(dirname "$0")/lib.sh"

# frames the router's stack handed to port 0 (before the simulator)
generated() {
	stats icmp_echo_replies_tx arp_replies_tx arp_requests_tx arp_garp_tx | awk '{n += $1} END {print n}'
}
kernel_rx() { in_ns cat /sys/class/net/tq0/statistics/rx_packets; }
received() { sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$1"; }
rtt_min() { sed -n 's|^rtt min/avg/max/mdev = \([0-9.]\+\)/.*|\1|p' <<<"$1"; }

it_start --set nsim.port0.tx.drop=0.5 --set nsim.port0.tx.seed=1

out=$(ctl nsim 0 tx || true)
echo "$out" | grep -Eq '^ +drop +0\.5$' && echo "$out" | grep -Eq '^ +seed +1$' &&
	echo "$out" | grep -Eq '^ +enabled +yes$' && ok "boot settings shown" || fail "nsim 0 tx: $out"
out=$(ctl nsim 0 rx || true)
echo "$out" | grep -Eq '^ +enabled +no$' && ok "rx untouched" || fail "nsim 0 rx: $out"

# 1. drop=0.5 on TX: about half the echo replies are lost, and every frame the simulator
# dropped is one the kernel did not get (the TAP itself loses nothing).
gen0=$(generated)
krx0=$(kernel_rx)
drop0=$(counter nsim_dropped)
out=$(in_ns ping -c 40 -i 0.05 -W 1 "$ROUTER" || true)
sleep 0.5
got=$(received "$out")
lost=$((40 - ${got:-0}))
dgen=$(($(generated) - gen0))
dkrx=$(($(kernel_rx) - krx0))
ddrop=$(($(counter nsim_dropped) - drop0))
echo "   ping lost $lost/40; router generated $dgen frames, kernel got $dkrx, nsim_dropped $ddrop"
[ "$lost" -ge 10 ] && [ "$lost" -le 30 ] && ok "drop=0.5 loses $lost of 40 pings" ||
	fail "loss $lost of 40: $out"
[ "$ddrop" -ge "$lost" ] && [ $((dkrx + ddrop)) -eq "$dgen" ] &&
	ok "nsim_dropped ($ddrop) accounts for every missing frame" ||
	fail "generated $dgen, kernel got $dkrx, nsim_dropped $ddrop, ping lost $lost"

# 2. live: loss off
out=$(ctl nsim 0 tx drop=0 || true)
echo "$out" | grep -Eq "^ +applied +$WORKERS/$WORKERS workers$" && echo "$out" | grep -Eq '^ +drop +0$' &&
	ok "live drop=0 applied on $WORKERS worker(s)" || fail "nsim 0 tx drop=0: $out"
drop0=$(counter nsim_dropped)
out=$(in_ns ping -c 10 -i 0.05 -W 2 "$ROUTER" || true)
echo "$out" | grep -q '10 packets transmitted, 10 received' && ok "10/10 pings after drop=0" ||
	fail "ping after drop=0: $out"
[ "$(counter nsim_dropped)" -eq "$drop0" ] && ok "nothing dropped since" || fail "nsim_dropped moved"
out=$(ctl nsim 0 tx || true)
echo "$out" | grep -Eq '^ +enabled +no$' && ok "tx now off" || fail "nsim 0 tx: $out"

# 3. live: every received frame duplicated → every request answered twice (ping stops
# at its fifth reply, so the last duplicate may come after it left)
dup0=$(counter nsim_duplicated)
ctl nsim 0 rx duplicate=1 >/dev/null || fail "nsim 0 rx duplicate=1"
out=$(in_ns ping -c 5 -i 0.2 -W 2 "$ROUTER" || true)
echo "$out" | grep -Eq '5 received, \+[45] duplicates' && ok "rx duplicate=1: duplicates seen" ||
	fail "ping with rx duplicate=1: $out"
[ $(($(counter nsim_duplicated) - dup0)) -ge 5 ] && ok "nsim_duplicated counted" ||
	fail "nsim_duplicated: $dup0 -> $(counter nsim_duplicated)"
ctl nsim 0 rx duplicate=0 >/dev/null || fail "nsim 0 rx duplicate=0"

# 4. live: 50 ms on TX, then off again
ctl nsim 0 tx delay_us=50000 >/dev/null || fail "nsim 0 tx delay_us=50000"
out=$(in_ns ping -c 5 -i 0.2 -W 2 "$ROUTER" || true)
min=$(rtt_min "$out")
echo "   rtt min with delay_us=50000: ${min:-none} ms"
[ -n "$min" ] && awk -v m="$min" 'BEGIN {exit !(m >= 50)}' && echo "$out" | grep -q '5 received' &&
	ok "delay 50 ms: rtt min $min ms" || fail "ping with delay: $out"
[ "$(counter nsim_delayed)" -ge 5 ] && ok "nsim_delayed counted" || fail "nsim_delayed"
ctl nsim 0 tx delay_us=0 >/dev/null || fail "nsim 0 tx delay_us=0"
out=$(in_ns ping -c 3 -i 0.2 -W 2 "$ROUTER" || true)
min=$(rtt_min "$out")
[ -n "$min" ] && awk -v m="$min" 'BEGIN {exit !(m < 50)}' && ok "delay off: rtt min $min ms" ||
	fail "ping after delay off: $out"

# 5. bad input is refused and changes nothing
out=$(ctl nsim 0 tx dorp=1 2>&1) && fail "unknown key accepted: $out" ||
	{ echo "$out" | grep -q "unknown key 'dorp'" && ok "unknown key refused" || fail "$out"; }
out=$(ctl nsim 0 tx drop=2 2>&1) && fail "drop=2 accepted: $out" ||
	{ echo "$out" | grep -q "bad value for drop" && ok "drop=2 refused" || fail "$out"; }
ctl nsim 7 tx >/dev/null 2>&1 && fail "port 7 accepted" || ok "port 7 refused"
ctl nsim 0 up >/dev/null 2>&1 && fail "direction 'up' accepted" || ok "direction 'up' refused"
[ "$(counter nsim_updates)" -eq $((5 * WORKERS)) ] && ok "nsim_updates = 5 x $WORKERS" ||
	fail "nsim_updates $(counter nsim_updates)"

# SIGTERM: clean exit (no leaks under ASan) with the simulator still configured
it_stop
