#!/usr/bin/env bash
# tachyon's MQTT broker with real clients as peers, through a TAP in a private namespace:
# mqtt_scenarios.py (paho-mqtt 3.1.1 and 5.0 and raw sockets: QoS 0/1/2, wildcards, retained,
# wills, sessions, take-over, shared subscriptions, keep alive, the 5.0 properties, protocol
# errors, $SYS), then the README's mosquitto_pub / mosquitto_sub, then the counters.
# mqtt_vs_mosquitto.sh runs the same scenarios against mosquitto, to check the scenarios.
#
# usage: test_mqtt.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NAME=mqtt
source "$(dirname "$0")/lib.sh"
SCENARIOS=$(dirname "$0")/mqtt_scenarios.py
MQTT_PORT=1883

expect_ok() { # expect_ok LABEL OUTPUT
	case $2 in ok*) ok "$1 ($2)" ;; *) fail "$1: $2" ;; esac
}
# known: does tachyonctl have a counter of this name? (the broker's names are not settled yet)
known() { stats "$1" >/dev/null 2>&1; }

# max_queued: slow_subscriber_backpressure queues 5,000 QoS 1 messages for one session
it_start --set mqtt.port=$MQTT_PORT --set mqtt.allow_anonymous=true --set mqtt.sys_interval=1 \
	--set tcp.msl_ms=500 --set mqtt.max_queued=100000

# Every scenario, each line "ok: NAME" or "FAIL: NAME: WHY" (notes go to stderr, shown too).
# Paho lives in Debian's dist-packages: /usr/bin/python3, not whatever python3 is first on PATH.
# No known deviations are allowed for tachyond.
out=$(in_ns env MQTT_KNOWN_DEVIATIONS= timeout 900 /usr/bin/python3 "$SCENARIOS" "$ROUTER" $MQTT_PORT 2>&1) || true
while IFS= read -r line; do
	case $line in
	ok:*) ok "${line#ok: }" ;;
	FAIL:*) fail "${line#FAIL: }" ;;
	*) echo "$line" ;;
	esac
done <<<"$out"
grep -q '^ok: ' <<<"$out" || fail "mqtt_scenarios.py ran nothing: $(tail -5 <<<"$out")"

# >>> clients: the README's example, then QoS 2, a retained message and MQTT 5, with Debian's
# command-line clients (mqtt_vs_mosquitto.sh runs this block against mosquitto, too)
pubsub() { # pubsub SUB-ARGS -- PUB-ARGS: the subscriber's output (first message, then exits)
	local sub=() pub=()
	while [ "$1" != -- ]; do sub+=("$1"); shift; done
	shift
	pub=("$@")
	in_ns timeout 15 mosquitto_sub -h "$ROUTER" -p $MQTT_PORT -C 1 -W 10 "${sub[@]}" &
	local spid=$!
	sleep 1 # subscribed by then, on any machine this runs on
	in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT "${pub[@]}" || echo "mosquitto_pub failed"
	wait "$spid" || echo "mosquitto_sub exit $?"
}
expect_ok "mosquitto_sub -t 'demo/#' -C 1, mosquitto_pub -t demo/hello -m hi" \
	"$([ "$(pubsub -t 'demo/#' -- -t demo/hello -m hi)" = hi ] && echo ok)"
expect_ok "mosquitto_pub/sub -q 2" \
	"$(r=$(pubsub -t 'demo/#' -q 2 -F '%q %t %p' -- -t demo/q2 -m two -q 2); [ "$r" = "2 demo/q2 two" ] && echo ok || echo "got '$r'")"
in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -t demo/kept -m kept -q 2 -r ||
	fail "mosquitto_pub -r"
r=$(in_ns timeout 15 mosquitto_sub -h "$ROUTER" -p $MQTT_PORT -t 'demo/#' -C 1 -W 10 -F '%r %t %p' || true)
[ "$r" = "1 demo/kept kept" ] && ok "mosquitto_pub -q 2 -r: retained" || fail "retained: got '$r'"
in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -t demo/kept -n -r || fail "mosquitto_pub -n -r"
r=$(in_ns timeout 5 mosquitto_sub -h "$ROUTER" -p $MQTT_PORT -t demo/kept -C 1 -W 2 2>&1 || true)
[ "$r" = "Timed out" ] || [ -z "$r" ] && ok "retained message deleted" || fail "after delete: '$r'"
expect_ok "mosquitto_pub/sub -V 5" \
	"$(r=$(pubsub -V 5 -t 'demo/#' -q 1 -F '%q %t %p' -- -V 5 -t demo/five -m 5 -q 2); [ "$r" = "1 demo/five 5" ] && echo ok || echo "got '$r'")"
# <<< clients

# Credentials: the default user (guest/guest, there until an operator adds users) with a
# password (checked by the control thread), a wrong password (CONNACK 5), and MQTT 5 enhanced
# authentication with SCRAM-SHA-256 (scram_client.py: right, wrong, unknown user, other method).
r=$(in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -u guest -P guest -t demo/u -m u 2>&1) &&
	ok "mosquitto_pub -u guest -P guest" || fail "mosquitto_pub -u guest -P guest: $r"
r=$(in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -u guest -P wrong -t demo/u -m u 2>&1) &&
	fail "wrong password accepted" || { grep -qi "not authori[sz]ed\|bad user\|refused" <<<"$r" &&
	ok "wrong password refused ($r)" || fail "wrong password: '$r'"; }
out=$(in_ns timeout 60 /usr/bin/python3 "$(dirname "$0")/scram_client.py" "$ROUTER" $MQTT_PORT guest guest 2>&1) || true
while IFS= read -r line; do
	case $line in
	ok:*) ok "${line#ok: }" ;;
	FAIL:*) fail "${line#FAIL: }" ;;
	*) echo "$line" ;;
	esac
done <<<"$out"
grep -q '^ok: scram_right_password' <<<"$out" || fail "scram_client.py: $(tail -3 <<<"$out")"

# A client that leaves while its login is held back by the rate limit (answers wait
# auth.fail_delay_ms past auth.fail_limit failures from one address): the answer that comes
# after the connection went must find nothing (under ASan: no use after free).
ctl set auth.fail_delay_ms=1500 >/dev/null || fail "set auth.fail_delay_ms"
for i in 1 2 3 4 5; do
	in_ns timeout 5 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -u guest -P "wrong$i" -t demo/x \
		-m x >/dev/null 2>&1 || true
done
in_ns /usr/bin/python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
v = b"\x00\x04MQTT\x04\xc2\x00\x3c"
p = v + b"\x00\x04left" + b"\x00\x05guest" + b"\x00\x05guest"
s.sendall(bytes([0x10, len(p)]) + p)
time.sleep(0.2)
s.close()' "$ROUTER" $MQTT_PORT || fail "the leaving client"
sleep 2
kill -0 "$pid" 2>/dev/null && ok "tachyond alive after a client left during its login" ||
	fail "tachyond died: $(tail -20 "$LOG")"
[ "$(counter ctl_answers_stale)" -ge 1 ] && ok "the late answer counted stale" ||
	fail "ctl_answers_stale is $(counter ctl_answers_stale)"
ctl set auth.fail_delay_ms=0 >/dev/null || fail "set auth.fail_delay_ms=0"

# Counters, loosely: at least what the scenarios above must have caused, for each counter that
# exists (the broker's names are not settled yet: a missing one is skipped, not failed).
# TODO, once the names are settled: make these strict, and add a count of wills not sent on a
# normal DISCONNECT, of DISCONNECTs sent by the broker (by reason), of topic alias errors,
# of PUBLISHes held back by a client's receive maximum, of deliveries per shared group.
while read -r c min why; do
	known "$c" || { echo "skip: no counter $c"; continue; }
	v=$(counter "$c")
	[ "$v" -ge "$min" ] && ok "$c $v >= $min ($why)" || fail "$c is $v, expected >= $min ($why)"
done <<'EOF'
mqtt_connects 340 every scenario connects, many_clients 201 alone
mqtt_connects_refused 11 empty client id with clean session 0, protocol level 6, 6 wrong passwords, 3 SCRAM refusals
mqtt_disconnects 280 clients that said DISCONNECT, many_clients 201 alone
mqtt_conns_lost 22 wills, keep alive, protocol errors, 12 drops in qos2_exactly_once_reconnect_*, qos1_redelivery_dup_*, topic_alias_server_to_client
mqtt_takeovers 2 takeover_v311, takeover_v5
mqtt_sessions_resumed 18 session_v311, session_v5, will_v5_delay, v5_message_expiry, 14 in qos2_exactly_once_reconnect_*, qos1_redelivery_dup_*, topic_alias_server_to_client, unsubscribe_stops_delivery_*
mqtt_publish_resent 6 qos2_exactly_once_reconnect_* 1 each, qos1_redelivery_dup_* 2 each
mqtt_publish_in 7000 order_1000_qos1 twice, slow_subscriber_backpressure 5000
mqtt_publish_out 7000 order_1000_qos1 twice, slow_subscriber_backpressure 5000
mqtt_subscribes 270 every scenario subscribes, many_clients 200 alone
mqtt_unsubscribes 6 wildcards_*, unsubscribe_stops_delivery_* 2 each
mqtt_retained_set 10 retained_*, will retain
mqtt_wills_sent 8 will_*, keepalive
mqtt_keepalive_timeouts 1 keepalive
mqtt_protocol_errors 16 protocol_errors, second_connect, v5_topic_alias
mqtt_expired 2 v5_message_expiry: one queued, one retained
mqtt_too_large_for_client 2 v5_maximum_packet_size
mqtt_sys_published 2 sys_interval 1
EOF

# tachyonctl sessions: a persistent session left offline is listed with its client id
in_ns timeout 10 mosquitto_sub -h "$ROUTER" -p $MQTT_PORT -i tq-sess-probe -c -q 1 -t 'demo/#' \
	-W 1 >/dev/null 2>&1 || true
r=$(ctl sessions | awk '$1 == "tq-sess-probe" {print $3, $4}')
[ "$r" = "no no" ] && ok "tachyonctl sessions: tq-sess-probe kept offline" ||
	fail "tachyonctl sessions: '$r' in $(ctl sessions)"
ctl --json sessions | python3 -c 'import json, sys
d = json.load(sys.stdin)["/tachyon/sessions"]
sys.exit(0 if "tq-sess-probe" in d["client_id"] and d["total"] >= 1 else 1)' &&
	ok "tachyonctl --json sessions" || fail "tachyonctl --json sessions: $(ctl --json sessions)"

# tachyonctl trace: the next publishes are recorded with their topic, size and QoS
ctl trace 10 >/dev/null || fail "tachyonctl trace 10"
in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -t demo/traced -m 12345 -q 1 ||
	fail "mosquitto_pub demo/traced"
r=$(ctl trace | awk '$6 == "demo/traced" {print $3, $7, $8}')
[ "$r" = "mqtt 5 1" ] && ok "tachyonctl trace: demo/traced, 5 bytes, QoS 1" ||
	fail "tachyonctl trace: '$r' in $(ctl trace)"

# tachyonctl workers: one row per worker with its busy share (two samples 0.5 s apart)
rows=$(ctl workers | tail -n +2 | grep -cE '^[0-9]+ +[0-9]+ +[0-9.]+% ' || true)
[ "$rows" -eq "$WORKERS" ] && ok "tachyonctl workers: $rows rows" || fail "tachyonctl workers: $(ctl workers)"

# a policy on topics (apply-to topics, message-ttl): messages published on matching topics,
# retained ones too, expire after at most that long; cleared, it no longer applies
pub() { in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT "$@" || fail "mosquitto_pub $*"; }
sub1() { in_ns timeout 10 mosquitto_sub -h "$ROUTER" -p $MQTT_PORT -C 1 -W 2 -t "$1" 2>/dev/null || true; }
ctl set_policy short '^ttl/' '{"message-ttl":800}' --apply-to topics >/dev/null &&
	ok "set_policy --apply-to topics" || fail "set_policy short --apply-to topics"
r=$(ctl list_policies | awk '$2 == "short" {print $4, $6}')
[ "$r" = 'topics {"message-ttl":800}' ] && ok "list_policies: short on topics" ||
	fail "list_policies: '$r' in $(ctl list_policies)"
c0=$(counter mqtt_policy_ttl)
pub -r -t ttl/a -m soon-gone
pub -r -t keep/a -m kept
c1=$(counter mqtt_policy_ttl)
[ $((c1 - c0)) -eq 1 ] && ok "mqtt_policy_ttl: ttl/a only ($c0 -> $c1)" ||
	fail "mqtt_policy_ttl: $c0 -> $c1 (one expected)"
r=$(sub1 ttl/a)
[ "$r" = soon-gone ] && ok "retained ttl/a there before its ttl" || fail "ttl/a at once: '$r'"
sleep 1.2
r=$(sub1 ttl/a)
[ -z "$r" ] && ok "retained ttl/a gone after message-ttl 800 ms" || fail "ttl/a after 1.2 s: '$r'"
r=$(sub1 keep/a)
[ "$r" = kept ] && ok "retained keep/a (no policy) kept" || fail "keep/a: '$r'"
ctl clear_policy short >/dev/null || fail "clear_policy short"
pub -r -t ttl/b -m stays
sleep 1.2
r=$(sub1 ttl/b)
[ "$r" = stays ] && ok "policy cleared: ttl/b kept" || fail "ttl/b after clear_policy: '$r'"
pub -r -t keep/a -n
pub -r -t ttl/b -n

# every client has gone: nothing left but TIME_WAIT, which expires after 2 * msl_ms
sleep 1.5
conns=$(ctl conns | tail -n +2 | wc -l)
[ "$conns" -eq 0 ] && ok "no connections left" || fail "$conns connections left: $(ctl conns)"

it_stop
