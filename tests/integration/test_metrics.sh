#!/usr/bin/env bash
# The Prometheus endpoint (control/tq_metrics.c) as a scraper sees it, with curl inside the
# namespace (tachyond's listener is on the namespace's loopback): the exposition is well
# formed (checked by the small parser below), the counters of the traffic we made moved (ping,
# MQTT with mosquitto_pub/sub, AMQP with amqp-tools), it agrees with tachyonctl, and the HTTP
# edges: /, 404, 405, oversized requests refused, a stalled client does not stall the others,
# only the configured address listens.
#
# usage: test_metrics.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NAME=metrics
source "$(dirname "$0")/lib.sh"
METRICS_PORT=19692 # not the default 15692: proves metrics.port is taken
MQTT_PORT=1883
AMQP_PORT=5672
URL=http://127.0.0.1:$METRICS_PORT
SCRAPES=$(mktemp -d /tmp/tq-metrics-XXXXXX)
trap 'it_cleanup; rm -rf "$SCRAPES"' EXIT

# expo FILE MODE ARGS...: the exposition parser.
#   check                 every line well formed, every sample in a family with HELP and TYPE
#                         given once before it, a family's samples together, no duplicate
#                         series, counters named *_total and >= 0; prints "N families, M
#                         samples" or the problems (exit 1)
#   sum NAME [k=v...]     the sum of NAME's samples whose labels match ("none" without any)
#   count NAME            how many samples NAME has
#   labels NAME KEY       the distinct values of label KEY on NAME's samples, sorted
#   help NAME | type NAME NAME's HELP text or TYPE
expo() {
	python3 - "$@" <<'EOF'
import re, sys

path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path, encoding="utf-8").read()
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
sample_re = re.compile(r"^(%s)(?:\{((?:%s=%s(?:,%s=%s)*)?)\})? (\S+)(?: -?\d+)?$"
                       % (NAME, LABEL, LVALUE, LABEL, LVALUE))
label_re = re.compile(r"(%s)=(%s)" % (LABEL, LVALUE))
meta_re = re.compile(r"^# (HELP|TYPE) (%s)(?: (.*))?$" % NAME)
unescape = lambda v: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v[1:-1])

problems, helps, types, samples, seen, closed = [], {}, {}, [], set(), set()
current = None

def family_of(name):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name

def enter(fam, n):
    global current
    if fam != current:
        if fam in closed:
            problems.append("line %d: family %s continued after another one" % (n, fam))
        if current:
            closed.add(current)
        current = fam

if not text.endswith("\n"):
    problems.append("the exposition does not end with a newline")
for n, line in enumerate(text.splitlines(), 1):
    if line == "":
        continue
    if line.startswith("#"):
        m = meta_re.match(line)
        if not m:
            if line.startswith("# HELP") or line.startswith("# TYPE"):
                problems.append("line %d: malformed: %r" % (n, line))
            continue
        kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
        table = helps if kind == "HELP" else types
        if name in table:
            problems.append("line %d: second %s for %s" % (n, kind, name))
        if kind == "TYPE":
            if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                problems.append("line %d: type %r" % (n, rest))
            if any(s[0] == name for s in samples):
                problems.append("line %d: TYPE %s after its samples" % (n, name))
            table[name] = rest
        else:
            table[name] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), rest)
        enter(name, n)
        continue
    m = sample_re.match(line)
    if not m:
        problems.append("line %d: not a sample: %r" % (n, line))
        continue
    name, labels = m.group(1), {}
    for k, v in label_re.findall(m.group(2) or ""):
        if k in labels:
            problems.append("line %d: label %s twice" % (n, k))
        labels[k] = unescape(v)
    try:
        value = float(m.group(3))
    except ValueError:
        problems.append("line %d: value %r" % (n, m.group(3)))
        continue
    fam = family_of(name)
    if fam not in types or fam not in helps:
        problems.append("line %d: %s has no HELP and TYPE before it" % (n, name))
    enter(fam, n)
    key = (name, tuple(sorted(labels.items())))
    if key in seen:
        problems.append("line %d: duplicate series %s" % (n, line))
    seen.add(key)
    if types.get(fam) == "counter" and (not name.endswith("_total") or value < 0):
        problems.append("line %d: counter %s not *_total or negative" % (n, name))
    samples.append((name, labels, value))

def matching(name, filters):
    want = dict(f.split("=", 1) for f in filters)
    return [s for s in samples if s[0] == name and all(s[1].get(k) == v for k, v in want.items())]

if mode == "check":
    for p in problems:
        print(p)
    if not problems:
        print("%d families, %d samples" % (len(types), len(samples)))
    sys.exit(1 if problems else 0)
elif mode == "sum":
    found = matching(args[0], args[1:])
    print("%d" % sum(s[2] for s in found) if found else "none")
elif mode == "count":
    print(len(matching(args[0], [])))
elif mode == "labels":
    print(" ".join(sorted({s[1].get(args[1], "") for s in matching(args[0], [])})))
elif mode == "help":
    print(helps.get(args[0], "none"))
elif mode == "type":
    print(types.get(args[0], "none"))
EOF
}

# scrape NAME: GET /metrics into $SCRAPES/NAME; prints "STATUS CONTENT-TYPE"
scrape() {
	in_ns curl -s --max-time 5 -o "$SCRAPES/$1" -w '%{http_code} %{content_type}' "$URL/metrics"
}
# http METHOD PATH [curl args...]: the status code of one request
http() {
	local method=$1 path=$2
	shift 2
	in_ns curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X "$method" "$@" "$URL$path" ||
		true
}
val() { expo "$SCRAPES/$1" sum "${@:2}"; }
# expect_ge LABEL GOT MIN / expect_eq LABEL GOT WANT
expect_ge() {
	[[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && ok "$1: $2 >= $3" || fail "$1: $2, expected >= $3"
}
expect_eq() { [ "$2" = "$3" ] && ok "$1: $2" || fail "$1: '$2', expected '$3'"; }

it_start --set metrics.port=$METRICS_PORT --set mqtt.port=$MQTT_PORT \
	--set mqtt.allow_anonymous=1 --set amqp.port=$AMQP_PORT
tq_wait_for "ip netns exec $NS curl -sf --max-time 1 -o /dev/null $URL/metrics" 10 ||
	fail "no answer on $URL/metrics: $(tail -5 "$LOG")"

# >>> the exposition at rest
r=$(scrape before || true)
case $r in
"200 text/plain; version=0.0.4"*) ok "GET /metrics: $r" ;;
*) fail "GET /metrics: '$r'" ;;
esac
r=$(expo "$SCRAPES/before" check) && ok "well-formed exposition ($r)" || fail "exposition: $r"
expect_eq "tachyon_workers" "$(val before tachyon_workers)" "$WORKERS"
expect_eq "one sample per worker" "$(expo "$SCRAPES/before" labels tachyon_rx_packets_total worker)" \
	"$(seq -s ' ' 0 $((WORKERS - 1)))"
expect_eq "HELP from tq_counters.def" "$(expo "$SCRAPES/before" help tachyon_icmp_echo_requests_total)" \
	"ICMP echo requests received"
expect_eq "drop counters say so" "$(expo "$SCRAPES/before" help tachyon_ipv4_bad_checksum_total)" \
	"drop: IPv4 headers with a wrong checksum"
expect_eq "TYPE of a counter" "$(expo "$SCRAPES/before" type tachyon_tcp_segs_rx_total)" counter
expect_eq "TYPE of a gauge" "$(expo "$SCRAPES/before" type tachyon_mqtt_clients_connected)" gauge
for fam in tachyon_uptime_seconds tachyon_build_info tachyon_port_info tachyon_port_link_up \
	tachyon_port_rx_packets_total tachyon_port_tx_bytes_total tachyon_port_rx_missed_total \
	tachyon_mqtt_sessions tachyon_mqtt_subscriptions tachyon_mqtt_retained_messages \
	tachyon_amqp_connections tachyon_amqp_queues tachyon_amqp_messages_ready; do
	[ "$(expo "$SCRAPES/before" count $fam)" -ge 1 ] && ok "series $fam" || fail "no series $fam"
done
expect_eq "port stats per port and worker" \
	"$(expo "$SCRAPES/before" count tachyon_port_rx_packets_total)" "$WORKERS"
expect_eq "port 0 link up" "$(val before tachyon_port_link_up port=0)" 1
# every counter tachyonctl knows is exported, none behind it (the scrape comes later)
ctl --json stats >"$SCRAPES/ctl.json"
scrape after_ctl >/dev/null || true
r=$(python3 - "$SCRAPES/ctl.json" "$SCRAPES/after_ctl" <<'EOF'
import json, re, sys
ctl = json.load(open(sys.argv[1]))["/tachyon/stats"]
sums = {}
for line in open(sys.argv[2]):
    m = re.match(r"^tachyon_(\w+)_total\{worker=\"\d+\"\} (\d+)$", line)
    if m:
        sums[m.group(1)] = sums.get(m.group(1), 0) + int(m.group(2))
bad = [n for n in ctl if n not in sums or sums[n] < ctl[n]]
print("%d counters" % len(ctl) if not bad else "missing or behind: " + " ".join(bad[:10]))
sys.exit(1 if bad else 0)
EOF
) && ok "every tachyonctl counter exported per worker, summing to at least its value ($r)" ||
	fail "$r"

# >>> traffic: 3 pings, an MQTT subscriber, a retained and a plain publish, an AMQP queue
in_ns ping -c 3 -i 0.2 -W 2 "$ROUTER" >/dev/null && ok "ping -c 3" || fail "ping $ROUTER"
in_ns timeout 20 mosquitto_sub -h "$ROUTER" -p $MQTT_PORT -t 'metrics/#' -C 2 -W 15 \
	>"$SCRAPES/sub.out" &
spid=$!
sleep 1 # subscribed by then
in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -t metrics/kept -m one -r ||
	fail "mosquitto_pub -r"
in_ns timeout 10 amqp-declare-queue --server "$ROUTER" --port $AMQP_PORT -q metrics-q \
	>/dev/null || fail "amqp-declare-queue"
in_ns timeout 10 amqp-publish --server "$ROUTER" --port $AMQP_PORT -r metrics-q -b hello ||
	fail "amqp-publish"
sleep 0.5
scrape during >/dev/null || true
in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -t metrics/two -m two ||
	fail "mosquitto_pub"
wait "$spid" || fail "mosquitto_sub exit $?"
expect_eq "mosquitto_sub got both" "$(tr '\n' ' ' <"$SCRAPES/sub.out")" "one two "
sleep 0.5
scrape after >/dev/null || true
for s in during after; do
	r=$(expo "$SCRAPES/$s" check) && ok "well-formed exposition, $s traffic ($r)" ||
		fail "exposition $s traffic: $r"
done

delta() { # delta NAME [k=v...]: after - before ("none" when either has no sample)
	local a b
	a=$(val after "$@")
	b=$(val before "$@")
	[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && echo $((a - b)) || echo none
}
expect_eq "icmp_echo_requests_total moved by the 3 pings" "$(delta tachyon_icmp_echo_requests_total)" 3
expect_eq "icmp_echo_replies_tx_total moved by 3" "$(delta tachyon_icmp_echo_replies_tx_total)" 3
expect_ge "rx_packets_total moved" "$(delta tachyon_rx_packets_total)" 6
expect_ge "tx_packets_total moved" "$(delta tachyon_tx_packets_total)" 6
expect_ge "port 0 rx_packets_total moved" "$(delta tachyon_port_rx_packets_total port=0)" 6
expect_ge "port 0 tx_bytes_total moved" "$(delta tachyon_port_tx_bytes_total port=0)" 300
expect_ge "mqtt_connects_total (a subscriber, two publishers)" "$(delta tachyon_mqtt_connects_total)" 3
expect_ge "mqtt_publish_in_total" "$(delta tachyon_mqtt_publish_in_total)" 2
expect_ge "mqtt_publish_out_total" "$(delta tachyon_mqtt_publish_out_total)" 2
expect_ge "amqp_connects_total" "$(delta tachyon_amqp_connects_total)" 2
expect_ge "amqp_queues_declared_total" "$(delta tachyon_amqp_queues_declared_total)" 1
expect_ge "mqtt_clients_connected with the subscriber on" "$(val during tachyon_mqtt_clients_connected)" 1
expect_ge "mqtt_subscriptions with the subscriber on" "$(val during tachyon_mqtt_subscriptions)" 1
expect_ge "mqtt_retained_messages" "$(val after tachyon_mqtt_retained_messages)" 1
expect_ge "amqp_queues" "$(val after tachyon_amqp_queues)" 1
expect_eq "amqp_messages_ready" "$(val after tachyon_amqp_messages_ready)" 1
expect_eq "queue_messages_ready of metrics-q" "$(val after tachyon_queue_messages_ready vhost=/ queue=metrics-q)" 1
expect_eq "queue_messages_unacked of metrics-q" "$(val after tachyon_queue_messages_unacked vhost=/ queue=metrics-q)" 0
expect_eq "queue_consumers of metrics-q" "$(val after tachyon_queue_consumers vhost=/ queue=metrics-q)" 0
# tachyonctl status: the same figures on one screen; exit 3 when tachyond is not there
st=$(ctl status) || fail "tachyonctl status: exit $?"
ver=$(grep -o 'version="[^"]*"' "$SCRAPES/after" | head -1 | cut -d'"' -f2)
[[ $st == "tachyond $ver: up "*" s, $WORKERS workers, 1 ports, idle "* ]] &&
	ok "status: version $ver, $WORKERS workers, 1 port" || fail "status: '$st'"
[[ $st == *"AMQP (port $AMQP_PORT): "*", 1 queues, 0 consumers, 1 messages ready, 0 unacked"* ]] &&
	ok "status: metrics-q's message ready" || fail "status AMQP line: '$st'"
[[ $st == *"MQTT (port $MQTT_PORT): "* ]] && ok "status: MQTT line" || fail "status MQTT: '$st'"
ctl --json status | python3 -c 'import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d["amqp"]["/tachyon/amqp"]["queues"] == 1 else 1)' && ok "status --json" ||
	fail "status --json: $(ctl --json status)"
r=0
"$TACHYONCTL" -p tq-no-such-prefix status >/dev/null 2>&1 || r=$?
expect_eq "status of a tachyond that is not running: exit" "$r" 3
up0=$(val before tachyon_uptime_seconds)
up1=$(val after tachyon_uptime_seconds)
[[ $up0 =~ ^[0-9]+$ && $up1 =~ ^[0-9]+$ ]] && [ "$up1" -gt "$up0" ] && ok "uptime went on ($up0 s -> $up1 s)" || fail "uptime $up0 -> $up1"

# well-behaved clients so far: the endpoint has had nothing to say
grep -qE 'metrics' "$LOG" && fail "tachyond logged: $(grep -E 'metrics' "$LOG")" ||
	ok "nothing logged by the endpoint"

# >>> HTTP edges
expect_eq "GET / points at /metrics" "$(in_ns curl -s --max-time 5 "$URL/" | grep -c /metrics)" 1
expect_eq "GET /nope" "$(http GET /nope)" 404
expect_eq "GET /metrics/" "$(http GET /metrics/)" 404
expect_eq "POST /metrics" "$(http POST /metrics -d x=1)" 405
expect_eq "DELETE /" "$(http DELETE /)" 405
expect_eq "405 names the methods" \
	"$(in_ns curl -s --max-time 5 -D - -o /dev/null -X PUT "$URL/metrics" | tr -d '\r' |
		grep -i '^allow:')" "Allow: GET, HEAD"
expect_eq "HEAD /metrics" "$(in_ns curl -s --max-time 5 -o /dev/null -w '%{http_code}' -I "$URL/metrics")" 200
big=$(head -c 16384 /dev/zero | tr '\0' a)
r=$(http GET /metrics -H "X-Padding: $big")
case $r in 4??) ok "a 16 KiB header refused ($r)" ;; *) fail "a 16 KiB header: $r" ;; esac
# a client that sends half a request and waits must not hold up the next scrape
in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$METRICS_PORT; printf 'GET /met' >&3; sleep 4" &
stall=$!
sleep 0.3
expect_eq "GET /metrics beside a stalled client" "$(http GET /metrics)" 200
wait "$stall" || true
# bound to metrics.address only: the namespace's other address has no listener
expect_eq "nothing on $HOST:$METRICS_PORT" \
	"$(in_ns curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://$HOST:$METRICS_PORT/metrics" || true)" 000
expect_eq "one listener, on 127.0.0.1" \
	"$(in_ns ss -Hltn "sport = :$METRICS_PORT" | awk '{print $4}' | tr '\n' ' ')" "127.0.0.1:$METRICS_PORT "
# misbehaving clients are logged, but a flood of them is not
for _ in $(seq 8); do http GET /metrics -H "X-Padding: $big" >/dev/null; done
n=$(grep -c '^tachyond: metrics: ' "$LOG" || true)
[ "$n" -le 7 ] && grep -q 'not shown' "$LOG" && ok "endpoint log capped ($n lines)" ||
	fail "endpoint log: $n lines: $(grep metrics "$LOG" | tail -3)"

it_stop
