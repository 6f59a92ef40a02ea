#!/usr/bin/env bash
# tachyon's TCP with the Linux kernel as peer, through a TAP in a private namespace:
# 64 MiB through echo verified by SHA-256, 1,000 concurrent connections, a closed port
# refused, chargen and discard, then byte-exact transfers under loss (iptables on the
# kernel side, nsim on ours), reordering, duplication and delay with jitter.
#
# usage: test_tcp.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NAME=tcp
source "$(dirname "$0")/lib.sh"
CLIENT="python3 $(dirname "$0")/tcp_client.py"

# client WHAT...: run the kernel-side client in the namespace, "ok" or the reason
client() { in_ns timeout 240 $CLIENT "$@" 2>&1 | tail -1; }
expect_ok() { # expect_ok LABEL OUTPUT
	case $2 in ok*) ok "$1 ($2)" ;; *) fail "$1: $2" ;; esac
}
nsim() { ctl nsim 0 "$@" >/dev/null || fail "tachyonctl nsim 0 $*"; }
nsim_both() { nsim rx "$@"; nsim tx "$@"; } # the same settings on port 0's rx and tx
kernel_loss() { # kernel_loss P: drop P of TCP both ways on the kernel side (0: none)
	in_ns iptables -F
	[ "$1" = 0 ] && return
	in_ns iptables -A OUTPUT -o tq0 -p tcp -m statistic --mode random --probability "$1" -j DROP
	in_ns iptables -A INPUT -i tq0 -p tcp -m statistic --mode random --probability "$1" -j DROP
}

it_start --set services.echo=7 --set services.discard=9 --set services.chargen=19 \
	--set tcp.msl_ms=500 --set tcp.syn_backlog=64

expect_ok "64 MiB through echo, SHA-256" "$(client echo "$ROUTER" 7 67108864)"
expect_ok "1000 concurrent connections, 16 KiB each" "$(client echo "$ROUTER" 7 16384 1000)"
expect_ok "closed port refused" "$(client refused "$ROUTER" 8)"
expect_ok "chargen" "$(client chargen "$ROUTER" 19 2000000)"
expect_ok "discard" "$(client discard "$ROUTER" 9 4000000)"
[ "$(counter tcp_no_listener)" -ge 1 ] && ok "SYN to a closed port counted" || fail "tcp_no_listener"

# Faults. Each transfer must complete byte-exact; how long it takes is bench/'s business.
kernel_loss 0.01
expect_ok "1% loss both ways (kernel side), 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
kernel_loss 0.05
expect_ok "5% loss both ways (kernel side), 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
kernel_loss 0.10
expect_ok "10% loss both ways (kernel side), 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
kernel_loss 0
[ "$(counter tcp_tail_loss_probes)" -gt 0 ] && ok "tail loss probes sent" || fail "no TLP"
# RACK (RFC 8985) finds most losses by time, not by three duplicate ACKs or the RTO
rack=$(counter tcp_rack_retransmits) rto=$(counter tcp_rto_expired)
[ "$rack" -gt $((5 * rto)) ] && ok "RACK retransmissions ($rack) far more than RTOs ($rto)" ||
	fail "RACK retransmissions $rack, RTO expirations $rto"
[ "$(counter tcp_lost_retransmits)" -gt 0 ] && ok "lost retransmissions resent without RTO" ||
	fail "tcp_lost_retransmits 0"
nsim rx drop=0.05 seed=3
nsim tx drop=0.05 seed=4
expect_ok "5% loss both ways (nsim), 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
nsim rx drop=0.10 seed=7
nsim tx drop=0.10 seed=8
expect_ok "10% loss both ways (nsim), 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
[ "$(counter tcp_ooo_segs)" -gt 0 ] && ok "out-of-order segments queued" || fail "no ooo segments"
# the out-of-order queue holds what the window admits (runs of segments, not 64 segments)
[ "$(counter tcp_ooo_full)" -eq 0 ] && ok "no in-window segment dropped out of order" ||
	fail "tcp_ooo_full $(counter tcp_ooo_full)"
nsim rx drop=0 reorder=0.25 seed=5
nsim tx drop=0 reorder=0.25 seed=6
expect_ok "25% reordering both ways, 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
[ "$(counter nsim_reordered)" -gt 0 ] && ok "frames were reordered" || fail "nsim_reordered 0"
nsim_both reorder=0 duplicate=0.05
expect_ok "5% duplication both ways, 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
[ "$(counter nsim_duplicated)" -gt 0 ] && ok "frames were duplicated" || fail "nsim_duplicated 0"
nsim_both duplicate=0 delay_us=10000 jitter_us=5000
# Jitter of up to 10 ms reorders: both senders mark segments lost that were only late.
# D-SACK tells each side which retransmissions were spurious (Linux's, reported by us;
# ours, by Linux), and the cut they caused is undone (D-SACK or Eifel timestamps).
expect_ok "20 ms RTT with jitter, 64 MiB" "$(client echo "$ROUTER" 7 67108864)"
[ "$(counter nsim_delayed)" -gt 0 ] && ok "frames were delayed" || fail "nsim_delayed 0"
[ "$(counter tcp_dsack_tx)" -gt 0 ] && ok "duplicates reported to the peer (D-SACK)" ||
	fail "tcp_dsack_tx 0"
echo "# jitter: D-SACK received $(counter tcp_dsack_rx), cuts undone $(counter tcp_spurious_undo)"
nsim_both delay_us=0 jitter_us=0
[ "$(counter tcp_retransmits)" -gt 0 ] && ok "retransmissions counted" || fail "no retransmits"

# every connection ended: nothing left but TIME_WAIT, which expires after 2 * msl_ms
sleep 1.5
conns=$(ctl conns | tail -n +2 | wc -l)
[ "$conns" -eq 0 ] && ok "no connections left" || fail "$conns connections left: $(ctl conns)"

# Last, a SYN flood (the kernel's RSTs to our SYN-ACKs dropped, so half-open connections pile
# up): beyond syn_backlog we answer with SYN cookies and keep no state, and a legitimate
# client still gets through (on a cookie, since the backlog stays full).
in_ns iptables -A OUTPUT -o tq0 -p tcp --tcp-flags RST RST -j DROP
expect_ok "SYN flood of 3000" "$(in_ns python3 "$(dirname "$0")/tcp_client.py" synflood "$HOST" "$ROUTER" 7 3000)"
sleep 0.5
expect_ok "echo during the flood" "$(client echo "$ROUTER" 7 1048576)"
in_ns iptables -F
# (the kernel may drop some of the 3000 SYNs on the TAP's queue when the machine is busy)
[ "$(counter tcp_syn_cookies_sent)" -ge 1000 ] && ok "SYN cookies sent" ||
	fail "tcp_syn_cookies_sent $(counter tcp_syn_cookies_sent)"
half=$(ctl conns | grep -c SYN_RECEIVED || true)
[ "$half" -le $((64 * WORKERS)) ] && ok "half-open connections ($half) within syn_backlog" ||
	fail "$half half-open connections"
[ "$(counter tcp_syn_cookies_ok)" -ge 1 ] && ok "a connection came from a cookie" ||
	fail "tcp_syn_cookies_ok $(counter tcp_syn_cookies_ok)"

it_stop
