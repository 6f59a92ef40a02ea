#!/usr/bin/env bash
# Live tuning as its users see it: tachyonctl set/get of TCP parameters, MQTT and AMQP limits
# against tachyond in a private namespace, each change checked where a client notices it:
# the MSS, window scale and options of a new Linux connection (TCP_INFO), the receive window
# and RTO of a connection that was already open (tachyonctl conns), the kernel's RTT under
# delayed ACKs, keepalive probes on an idle connection; a v5 CONNACK's Maximum Packet Size and
# an oversized PUBLISH refused (raw sockets), an anonymous CONNECT refused, the messages an
# offline session keeps (max_queued) and the unacknowledged ones a subscriber gets
# (max_inflight); pika's negotiated frame_max, channel_max and heartbeat, and a body larger
# than the boot frame_max. Then the refusals, exit 1: out of range, restart-only keys,
# turning keepalives off, raising max_inflight. Every key tachyonctl --help lists as live
# answers get.
#
# usage: test_tune.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
WORKERS=$3
NAME=tune
source "$(dirname "$0")/lib.sh"
AMQP_PORT=5672
MQTT_PORT=1883
DISCARD=9
ECHO=7
WORK=$(mktemp -d /tmp/tq-tune-XXXXXX)
trap 'it_cleanup; rm -rf "$WORK"' EXIT

# the clients: raw TCP and MQTT sockets, pika (Debian's, in /usr/bin/python3)
cat >"$WORK/probe.py" <<'EOF'
import socket, struct, sys, time

host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args = sys.argv[4:]

def tcp_info(s):
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    opts, wsc = b[5], b[6]
    snd_mss, rtt = struct.unpack_from("I", b, 16)[0], struct.unpack_from("I", b, 68)[0]
    return {"mss": snd_mss, "wscale": wsc & 15, "ts": opts & 1, "sack": (opts >> 1) & 1,
            "rtt_us": rtt}

def varint(n):
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (128 if n else 0)])
        if not n:
            return out

def utf8(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(s)) + s

def packet(t, body):
    return bytes([t]) + varint(len(body)) + body

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def read_packet(s):
    t = recv_exact(s, 1)[0]
    n, mul = 0, 1
    while True:
        d = recv_exact(s, 1)[0]
        n += (d & 127) * mul
        mul *= 128
        if d < 128:
            break
    return t, recv_exact(s, n)

def connect5(cid, clean=True, expiry=0, user=None):
    s = socket.create_connection((host, port), timeout=5)
    props = (b"\x11" + struct.pack(">I", expiry)) if expiry else b""
    flags = (2 if clean else 0) | (0x80 if user else 0)
    body = utf8("MQTT") + bytes([5, flags]) + struct.pack(">H", 60) + varint(len(props)) + props
    body += utf8(cid) + (utf8(user) if user else b"")
    s.sendall(packet(0x10, body))
    t, b = read_packet(s)
    assert t == 0x20, hex(t)
    return s, b[1], b  # the socket, the reason code, the CONNACK's body

def connack_props(b):
    """The CONNACK's properties we check: Maximum Packet Size, Receive Maximum."""
    n, mul, i = 0, 1, 2
    while True:
        d = b[i]; i += 1
        n += (d & 127) * mul; mul *= 128
        if d < 128:
            break
    p, end, out = i, i + n, {}
    while p < end:
        pid = b[p]; p += 1
        if pid in (0x27, 0x11):
            out[pid] = struct.unpack_from(">I", b, p)[0]; p += 4
        elif pid in (0x21, 0x22, 0x13):
            out[pid] = struct.unpack_from(">H", b, p)[0]; p += 2
        elif pid in (0x24, 0x25, 0x28, 0x29, 0x2A):
            out[pid] = b[p]; p += 1
        elif pid in (0x12, 0x1A, 0x1C, 0x1F, 0x15):
            l = struct.unpack_from(">H", b, p)[0]; p += 2 + l
        elif pid == 0x26:
            l = struct.unpack_from(">H", b, p)[0]; p += 2 + l
            l = struct.unpack_from(">H", b, p)[0]; p += 2 + l
        else:
            break
    return out

def publish5(s, topic, payload, qos=0, pid=1):
    body = utf8(topic) + (struct.pack(">H", pid) if qos else b"") + b"\x00" + payload
    s.sendall(packet(0x30 | (qos << 1), body))
    if qos:
        while True:
            t, b = read_packet(s)
            if t >> 4 == 4:
                return

def subscribe5(s, topic, qos):
    s.sendall(packet(0x82, struct.pack(">H", 1) + b"\x00" + utf8(topic) + bytes([qos])))
    t, b = read_packet(s)
    assert t == 0x90, hex(t)

def count_publishes(s, secs, ack):
    """PUBLISHes received within @secs; PUBACK them if @ack."""
    n, end = 0, time.time() + secs
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            t, b = read_packet(s)
        except (socket.timeout, TimeoutError):
            break
        if t >> 4 == 3:
            n += 1
            if ack and (t >> 1) & 3:
                tl = struct.unpack_from(">H", b, 0)[0]
                s.sendall(packet(0x40, b[2 + tl:4 + tl]))
    return n

if what == "tcpinfo":  # a new connection's negotiated MSS, window scale and options
    s = socket.create_connection((host, port), timeout=5)
    time.sleep(0.05)
    i = tcp_info(s)
    print("mss=%d wscale=%d ts=%d sack=%d" % (i["mss"], i["wscale"], i["ts"], i["sack"]))
elif what == "rtt":  # single bytes to the discard service, one at a time: Linux's RTT
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(8):
        s.send(b"x")
        time.sleep(0.3)
    print(tcp_info(s)["rtt_us"])
elif what == "hold":  # echo a few bytes (RTT samples on tachyond's side), say our port, wait
    s = socket.create_connection((host, port), timeout=5)
    for _ in range(int(args[1])):
        s.sendall(b"ping")
        recv_exact(s, 4)
        time.sleep(0.05)
    print(s.getsockname()[1], flush=True)
    time.sleep(float(args[0]))
    s.setblocking(False)
    try:
        print("closed" if s.recv(1) == b"" else "data")
    except BlockingIOError:
        print("open")
elif what == "connack":  # a new v5 client's CONNACK: reason, Maximum Packet Size
    s, rc, b = connect5("tune-ca")
    p = connack_props(b)
    print("0x%02x max_packet_size=%s receive_max=%s" % (rc, p.get(0x27, "-"), p.get(0x21, "-")))
elif what == "anon":  # an anonymous v5 CONNECT's reason code
    s, rc, b = connect5("tune-anon")
    print("0x%02x" % rc)
elif what == "big":  # PUBLISH of SIZE bytes, then PINGREQ: is the connection still up?
    s, rc, b = connect5("tune-big")
    try:
        publish5(s, "t/big", b"x" * int(args[0]))
        s.sendall(b"\xc0\x00")
        t, b = read_packet(s)
        while t == 0x30:
            t, b = read_packet(s)
        print("alive" if t == 0xD0 else ("disconnect 0x%02x" % b[0] if t == 0xE0 and b
                                          else "packet 0x%02x" % t))
    except (EOFError, ConnectionResetError, BrokenPipeError):
        print("closed")
elif what == "roundtrip":  # SIZE bytes published at QoS 0 come back to a subscriber
    sub, rc, b = connect5("tune-rt-sub")
    subscribe5(sub, "t/rt", 0)
    pub, rc, b = connect5("tune-rt-pub")
    publish5(pub, "t/rt", b"y" * int(args[0]))
    sub.settimeout(10)
    t, b = read_packet(sub)
    tl = struct.unpack_from(">H", b, 0)[0]
    plen = b[2 + tl]  # property length (0 here: one byte)
    print(len(b) - 2 - tl - 1 - (plen if plen < 128 else 0))
elif what == "queued":  # an offline session, N QoS 1 messages: how many it gets back
    n = int(args[0])
    s, rc, b = connect5("tune-q", clean=True, expiry=300)
    subscribe5(s, "t/q", 1)
    s.sendall(b"\xe0\x00")
    s.close()
    time.sleep(0.2)
    pub, rc, b = connect5("tune-q-pub")
    for i in range(n):
        publish5(pub, "t/q", b"m%d" % i, qos=1, pid=i + 1)
    s, rc, b = connect5("tune-q", clean=False, expiry=300)
    print(count_publishes(s, 1.5, ack=True))
    s.sendall(packet(0xE0, b"\x00\x05\x11\x00\x00\x00\x00"))  # session expiry 0: gone
elif what == "inflight":  # N QoS 1 messages to a subscriber that never acknowledges
    n = int(args[0])
    s, rc, b = connect5("tune-i")
    subscribe5(s, "t/i", 1)
    pub, rc, b = connect5("tune-i-pub")
    for i in range(n):
        publish5(pub, "t/i", b"m%d" % i, qos=1, pid=i + 1)
    print(count_publishes(s, 1.0, ack=False))
elif what == "amqp":  # pika's negotiated limits [a body of SIZE back]
    import pika
    c = pika.BlockingConnection(pika.ConnectionParameters(host, port))
    p = c._impl.params
    line = "frame_max=%d channel_max=%d heartbeat=%d" % (p.frame_max, p.channel_max,
                                                         p.heartbeat)
    if args:
        ch = c.channel()
        ch.queue_declare("tune.big", auto_delete=True)
        body = bytes(range(256)) * (int(args[0]) // 256)
        ch.basic_publish("", "tune.big", body)
        for _ in range(50):
            m, props, got = ch.basic_get("tune.big", auto_ack=True)
            if m:
                break
            time.sleep(0.1)
        line += " body=%s" % ("same" if got == body else "differs")
    print(line)
    c.close()
elif what == "pyamqp":  # py-amqp takes the server's frame_max (pika stops at 131072)
    import amqp
    c = amqp.Connection("%s:%d" % (host, port))
    c.connect()
    ch = c.channel()
    ch.queue_declare("tune.big2", auto_delete=True)
    body = bytes(range(256)) * (int(args[0]) // 256)
    ch.basic_publish(amqp.Message(body), routing_key="tune.big2")
    got = None
    for _ in range(50):
        m = ch.basic_get("tune.big2", no_ack=True)
        if m:
            got = m.body
            break
        time.sleep(0.1)
    print("frame_max=%d body=%s" % (c.frame_max, "same" if got == body else "differs"))
    c.close()
EOF
probe() { in_ns timeout 60 /usr/bin/python3 "$WORK/probe.py" "$ROUTER" "$@" 2>&1 || true; }
# conns_row PORT: tachyonctl conns' row for the connection from $HOST:PORT, as "rcv_wnd rto_ms"
conns_row() {
	ctl conns | awk -v r="$HOST:$1" '$3 == r { print $6, $9 }'
}

it_start --set amqp.port=$AMQP_PORT --set mqtt.port=$MQTT_PORT --set mqtt.allow_anonymous=1 \
	--set services.discard=$DISCARD --set services.echo=$ECHO --set tcp.msl_ms=500 \
	--set auth.fail_limit=100000

# >>> every key tachyonctl --help lists as live answers get
live=$("$TACHYONCTL" --help | python3 -c '
import re, sys
t = sys.stdin.read()
t = t[t.index("live:"):t.index("the rest needs a restart")]
for sec, keys in re.findall(r"(\w+)\.\{([^}]*)\}", t):
    for k in re.sub(r"\s", "", keys).split(","):
        print(sec + "." + k)')
n=0
for k in $live; do
	rc=0
	v=$(ctl get "$k" 2>&1) || rc=$?
	[[ $rc -eq 0 && $v == "$k = "* ]] && n=$((n + 1)) || fail "get $k: exit $rc, '$v'"
done
[ "$n" -ge 30 ] && ok "get answers for the $n keys --help lists as live" ||
	fail "only $n keys in tachyonctl --help's live list"
run 0 "get tcp.rcv_buf tcp.mss mqtt.max_packet_size amqp.frame_max" \
	get tcp.rcv_buf tcp.mss mqtt.max_packet_size amqp.frame_max
expect "get: the boot values" "tcp.rcv_buf = 262144"$'\n'"tcp.mss = 1460"$'\n'"mqtt.max_packet_size = 1048576"$'\n'"amqp.frame_max = 131072" "$out"

# >>> TCP handshake options: new connections take them
expect_re "a connection before: MSS 1448, wscale 7, timestamps and SACK" \
	"mss=14[0-9][0-9] wscale=7 ts=1 sack=1" "$(probe $DISCARD tcpinfo)"
run 0 "set tcp.mss=536 tcp.wscale=2 tcp.timestamps=0 tcp.sack=0" \
	set tcp.mss=536 tcp.wscale=2 tcp.timestamps=0 tcp.sack=0
expect "set prints the values in force" \
	"tcp.mss = 536"$'\n'"tcp.wscale = 2"$'\n'"tcp.timestamps = 0"$'\n'"tcp.sack = 0" "$out"
for i in 1 2 3 4; do # spread over the workers by their source ports
	expect "new connection $i: MSS 536, wscale 2, no timestamps, no SACK" \
		"mss=536 wscale=2 ts=0 sack=0" "$(probe $DISCARD tcpinfo)"
done
run 0 "set them back" set tcp.mss=1460 tcp.wscale=7 tcp.timestamps=1 tcp.sack=1
expect_re "a connection after: as before" "mss=14[0-9][0-9] wscale=7 ts=1 sack=1" \
	"$(probe $DISCARD tcpinfo)"

# >>> rcv_buf and rto_min_ms reach a connection that is already open
probe $ECHO hold 6 5 >"$WORK/hold" &
hp=$!
for _ in $(seq 50); do [ -s "$WORK/hold" ] && break; sleep 0.1; done
port=$(head -1 "$WORK/hold")
expect_re "conns before: the window is rcv_buf 262144, the RTO near rto_min_ms 200" \
	"262144 (2[0-9][0-9])" "$(conns_row "$port")"
run 0 "set tcp.rcv_buf=16384 tcp.rto_min_ms=2500" set tcp.rcv_buf=16384 tcp.rto_min_ms=2500
expect "conns: the open connection's window is 16384 at once" "16384" \
	"$(conns_row "$port" | cut -d' ' -f1)"
probe $ECHO hold 2 3 >"$WORK/hold2" & # RTT samples on a new connection: RTO rto_min_ms
hp2=$!
for _ in $(seq 50); do [ -s "$WORK/hold2" ] && break; sleep 0.1; done
expect "a connection with traffic after the change: window 16384, RTO 2500" "16384 2500" \
	"$(conns_row "$(head -1 "$WORK/hold2")")"
wait "$hp" "$hp2"
expect "the held connection stayed up" "open" "$(tail -1 "$WORK/hold")"
run 0 "set tcp.rcv_buf=262144 tcp.rto_min_ms=200" set tcp.rcv_buf=262144 tcp.rto_min_ms=200

# >>> delack_ms: Linux measures the delayed ACKs as round-trip time
rtt0=$(probe $DISCARD rtt)
[[ $rtt0 =~ ^[0-9]+$ && $rtt0 -lt 40000 ]] && ok "delack_ms=0: RTT ${rtt0} us" ||
	fail "delack_ms=0: RTT '$rtt0' us, expected < 40 ms"
run 0 "set tcp.delack_ms=200" set tcp.delack_ms=200
rtt1=$(probe $DISCARD rtt)
[[ $rtt1 =~ ^[0-9]+$ && $rtt1 -gt 60000 ]] && ok "delack_ms=200: RTT ${rtt1} us" ||
	fail "delack_ms=200: RTT '$rtt1' us, expected > 60 ms"
run 0 "set tcp.delack_ms=0" set tcp.delack_ms=0

# >>> keepalive_s: probes on an idle connection, answered by Linux; off needs a restart
run 0 "set tcp.keepalive_s=1" set tcp.keepalive_s=1
k0=$(counter tcp_keepalive_probes)
expect "an idle connection for 4 s stays up" "open" "$(probe $DISCARD hold 4 0 | tail -1)"
k1=$(counter tcp_keepalive_probes)
[ "$k1" -gt "$k0" ] && ok "keepalive probes sent ($k0 -> $k1)" ||
	fail "no keepalive probes: $k0 -> $k1"
run 1 "set tcp.keepalive_s=0 (turning keepalives off needs a restart)" set tcp.keepalive_s=0
expect_re "keepalive_s=0 says why" ".*needs a restart.*" "$err"
run 0 "set tcp.keepalive_s=3600" set tcp.keepalive_s=3600

# >>> MQTT: max_packet_size announced and enforced, larger than at boot too
expect "CONNACK before: Maximum Packet Size 1048576" \
	"0x00 max_packet_size=1048576 receive_max=100" "$(probe $MQTT_PORT connack)"
run 0 "set mqtt.max_packet_size=2000 mqtt.receive_max=10" \
	set mqtt.max_packet_size=2000 mqtt.receive_max=10
expect "a new CONNACK announces 2000 and 10" "0x00 max_packet_size=2000 receive_max=10" \
	"$(probe $MQTT_PORT connack)"
expect "a 1000-byte PUBLISH is taken" "alive" "$(probe $MQTT_PORT big 1000)"
expect_re "a 3000-byte PUBLISH is refused" "disconnect 0x95|closed" "$(probe $MQTT_PORT big 3000)"
run 0 "set mqtt.max_packet_size=3000000 (above the boot value)" set mqtt.max_packet_size=3000000
expect "CONNACK: 3000000" "0x00 max_packet_size=3000000 receive_max=10" \
	"$(probe $MQTT_PORT connack)"
expect "a 2000000-byte PUBLISH reaches a subscriber" "2000000" \
	"$(probe $MQTT_PORT roundtrip 2000000)"
run 0 "set mqtt.max_packet_size=1048576 mqtt.receive_max=100" \
	set mqtt.max_packet_size=1048576 mqtt.receive_max=100

# >>> MQTT: allow_anonymous for new connections
expect "anonymous CONNECT accepted" "0x00" "$(probe $MQTT_PORT anon)"
run 0 "set mqtt.allow_anonymous=0" set mqtt.allow_anonymous=0
expect "anonymous CONNECT now refused: 0x87" "0x87" "$(probe $MQTT_PORT anon)"
run 0 "set mqtt.allow_anonymous=1" set mqtt.allow_anonymous=1

# >>> MQTT: max_queued (what an offline session keeps), max_inflight (lower only)
expect "max_queued 1000: an offline session gets all 20" "20" "$(probe $MQTT_PORT queued 20)"
run 0 "set mqtt.max_queued=5" set mqtt.max_queued=5
expect "max_queued 5: it gets 5 of 20" "5" "$(probe $MQTT_PORT queued 20)"
run 0 "set mqtt.max_queued=1000" set mqtt.max_queued=1000
expect "max_inflight 100: a subscriber that does not ack gets all 10" "10" \
	"$(probe $MQTT_PORT inflight 10)"
run 0 "set mqtt.max_inflight=3" set mqtt.max_inflight=3
expect "max_inflight 3: it gets 3 of 10" "3" "$(probe $MQTT_PORT inflight 10)"
run 1 "set mqtt.max_inflight=100 (above the value in force)" set mqtt.max_inflight=100
expect_re "raising max_inflight says why" ".*at most 3 while tachyond runs.*" "$err"

# >>> AMQP: what connection.tune offers to new connections
expect "pika before: frame_max 131072, channel_max 2047, heartbeat 60" \
	"frame_max=131072 channel_max=2047 heartbeat=60" "$(probe $AMQP_PORT amqp)"
run 0 "set amqp.frame_max=8192 amqp.channel_max=5 amqp.heartbeat=7" \
	set amqp.frame_max=8192 amqp.channel_max=5 amqp.heartbeat=7
expect "pika after: the tuned values" "frame_max=8192 channel_max=5 heartbeat=7" \
	"$(probe $AMQP_PORT amqp)"
expect "a 100000-byte body in 8192-byte frames" \
	"frame_max=8192 channel_max=5 heartbeat=7 body=same" "$(probe $AMQP_PORT amqp 100000)"
run 0 "set amqp.frame_max=524288 (above the boot value)" set amqp.frame_max=524288
expect "py-amqp gets 524288; a 400000-byte body in one frame" "frame_max=524288 body=same" \
	"$(probe $AMQP_PORT pyamqp 400000)"

# >>> refusals: exit 1 and a reason
run 1 "set tcp.delack_ms=501 (out of range)" set tcp.delack_ms=501
expect_re "out of range says the range" ".*\[0, 500\].*" "$err"
run 1 "set mqtt.max_packet_size=10 (out of range)" set mqtt.max_packet_size=10
run 1 "set amqp.frame_max=100 (out of range)" set amqp.frame_max=100
for k in tcp.max_conns=100 tcp.ooo_max_segs=8 mqtt.max_sessions=100 mqtt.msg_pool=4095 \
	amqp.max_queues=100 amqp.op_pool=4095 dataplane.ring_size=512 mqtt.port=1884; do
	run 1 "set $k (needs a restart)" set "$k"
	expect_re "set $k says why" ".*cannot change while tachyond runs.*" "$err"
done
run 1 "set tcp.rto_max_ms=150 (below rto_min_ms 200)" set tcp.rto_max_ms=150
run 0 "get tcp.rto_max_ms: unchanged" get tcp.rto_max_ms
expect "rto_max_ms still 60000" "tcp.rto_max_ms = 60000" "$out"
run 1 "get of a restart-only key" get tcp.max_conns

# >>> several tachyonctl set at once: each waits its turn at the barrier
sets=()
for i in 1 2 3 4 5 6; do
	ctl set "tcp.syn_backlog=$((100 + i))" >/dev/null 2>&1 &
	sets+=($!)
done
bad=0
for j in "${sets[@]}"; do wait "$j" || bad=$((bad + 1)); done
expect "six concurrent sets: all done" 0 "$bad"
expect_re "syn_backlog is one of them" "tcp.syn_backlog = 10[1-6]" "$(ctl get tcp.syn_backlog)"

# >>> still serving after all that
expect "MQTT CONNECT after the changes" "0x00" "$(probe $MQTT_PORT anon)"
expect_re "TCP after the changes" "mss=14[0-9][0-9] wscale=7 ts=1 sack=1" \
	"$(probe $DISCARD tcpinfo)"

it_stop
