#!/usr/bin/python3
# MQTT 3.1.1 and 5.0 scenarios against a broker, as its users see it: paho-mqtt 1.6.1 (Debian's
# python3-paho-mqtt) for what a real client does, a raw socket where paho cannot misbehave or
# watch closely enough (wills on a dropped connection, keep-alive timeouts, receive maximum,
# protocol errors, DISCONNECT reason codes).
#
# usage: mqtt_scenarios.py HOST PORT [SCENARIO...]    (default: all; -l lists them)
# Prints "ok: NAME" or "FAIL: NAME: WHY" per scenario, "note: ..." on stderr where the broker
# chose one of several behaviours the specification allows, and exits 1 if any failed.
#
# Every scenario uses its own client ids and topic prefix (a random token), every wait is
# bounded (TIMEOUT seconds without progress; a scenario that still hangs is abandoned after
# its cap), so scenarios neither hang nor disturb each other; they run one after the other.
# Run it with /usr/bin/python3: paho lives in /usr/lib/python3/dist-packages.
#
# Spec references: [3.1.1 x.y] is OASIS MQTT 3.1.1, [5 x.y] is OASIS MQTT 5.0.
#
# Known deviations: a reference broker that breaks a rule of the specification fails here.
# MQTT_KNOWN_DEVIATIONS="key,key" in the environment turns those checks into notes (and the
# scenario goes on with what it can still check); mqtt_vs_mosquitto.sh sets the keys that
# mosquitto 2.0.11 needs. Never set it for tachyond. The keys:
#   overlap_max_qos      3.1.1 overlapping subscriptions: one copy, not at the maximum QoS
#   takeover_disconnect  5.0 session take-over: no DISCONNECT 0x8E to the old connection
#   receive_maximum      5.0: more QoS>0 PUBLISHes in flight than the client's Receive Maximum
#   keepalive_timeout    a silent client dropped later than 1.5 x keep alive (+ rounding)
#   resubscribe_options  5.0: a SUBSCRIBE of an existing filter replaces its QoS, not its options
import os
import random
import socket
import string
import struct
import sys
import threading
import time
import traceback

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

HOST = "127.0.0.1"
PORT = 1883
TIMEOUT = 5.0  # the longest we wait for anything that should happen
QUIET = 1.0  # how long we watch for something that should not happen


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


CURRENT = ["?"]  # the scenario running
KNOWN = {k.strip() for k in os.environ.get("MQTT_KNOWN_DEVIATIONS", "").split(",") if k.strip()}


def note(text):
    print(f"note: {CURRENT[0]}: {text}", file=sys.stderr, flush=True)


def deviation(key, cond, why):
    """check(cond, why), unless key is a known deviation of the broker: then a note. Returns cond."""
    if cond:
        return True
    if key not in KNOWN:
        raise Fail(why)
    note(f"known deviation {key}: {why}")
    return False


_seq = [0]


def token():
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def uid(prefix):
    _seq[0] += 1
    return f"{prefix}-{token()}-{_seq[0]}"


# ---------------------------------------------------------------------------------------------
# paho, threaded, every wait bounded

class Msg:
    def __init__(self, m):
        self.t = time.monotonic()
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.props = getattr(m, "properties", None)

    def prop(self, name, default=None):
        return getattr(self.props, name, default) if self.props is not None else default

    def __repr__(self):
        return f"<{self.topic} q{self.qos} r{int(self.retain)} {self.payload[:40]!r}>"


class Client:
    """A paho client on its own network thread."""

    def __init__(self, name, v5=False, clean=True, cid=None):
        self.v5 = v5
        self.clean = clean
        self.cid = uid(name) if cid is None else cid
        self.c = mqtt.Client(client_id=self.cid, clean_session=None if v5 else clean,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             reconnect_on_failure=False)
        self.cond = threading.Condition()
        self.msgs = []
        self.connacks = []
        self.disconnects = []
        self.subacks = {}
        self.unsubacks = set()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        _live.append(self)

    # callbacks (paho's thread)
    def _note(self, f):
        with self.cond:
            f()
            self.cond.notify_all()

    def _on_connect(self, c, u, flags, rc, props=None):
        self._note(lambda: self.connacks.append(
            (flags.get("session present", 0), getattr(rc, "value", rc), props)))

    def _on_disconnect(self, c, u, rc, props=None):
        self._note(lambda: self.disconnects.append(getattr(rc, "value", rc)))

    def _on_message(self, c, u, m):
        msg = Msg(m)
        self._note(lambda: self.msgs.append(msg))

    def _on_subscribe(self, c, u, mid, granted, props=None):
        self._note(lambda: self.subacks.__setitem__(mid, [getattr(g, "value", g) for g in granted]))

    def _on_unsubscribe(self, c, u, mid, *rest):
        self._note(lambda: self.unsubacks.add(mid))

    def _wait(self, pred, timeout, why):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(why() if callable(why) else why)
                self.cond.wait(left)

    # API
    def connect(self, keepalive=60, props=None, will=None, clean=None, expect=0):
        """CONNECT; returns (session_present, reason code, CONNACK properties)."""
        if clean is not None:
            self.clean = clean
        if will:
            self.c.will_set(**will)
        n = len(self.connacks)
        kw = {}
        if self.v5:
            kw = {"clean_start": self.clean, "properties": props}
        self.c.connect(HOST, PORT, keepalive, **kw)
        self.c.loop_start()
        self._wait(lambda: len(self.connacks) > n, TIMEOUT, f"{self.cid}: no CONNACK")
        sp, rc, cprops = self.connacks[n]
        if expect is not None:
            check(rc == expect, f"{self.cid}: CONNACK {rc}, expected {expect}")
        return sp, rc, cprops

    def subscribe(self, topic, qos=0, options=None, props=None, expect=None):
        """SUBSCRIBE one filter; waits for SUBACK; returns the granted QoS / reason code."""
        if self.v5:
            if options is None:
                options = SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic, options=options, properties=props)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        check(rc == 0, f"subscribe {topic}: paho error {rc}")
        self._wait(lambda: mid in self.subacks, TIMEOUT, f"no SUBACK for {topic}")
        got = self.subacks[mid][0]
        want = (options.QoS if options is not None else qos) if expect is None else expect
        check(got == want, f"SUBACK for {topic}: {got}, expected {want}")
        return got

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        check(rc == 0, f"unsubscribe {topic}: paho error {rc}")
        self._wait(lambda: mid in self.unsubacks, TIMEOUT, f"no UNSUBACK for {topic}")

    def publish(self, topic, payload, qos=0, retain=False, props=None, wait=True):
        info = self.c.publish(topic, payload, qos, retain, properties=props)
        check(info.rc == 0, f"publish {topic}: paho error {info.rc}")
        if wait and qos > 0:
            info.wait_for_publish(TIMEOUT)
            check(info.is_published(), f"publish {topic} q{qos}: not acknowledged within {TIMEOUT} s")
        return info

    def expect(self, n, timeout=TIMEOUT, start=0):
        """Wait for n messages (from index start); timeout counts from the last one that came."""
        while True:
            with self.cond:
                have = len(self.msgs) - start
            if have >= n:
                return self.msgs[start:start + n]
            self._wait(lambda: len(self.msgs) - start > have, timeout,
                       lambda: f"{self.cid}: {len(self.msgs) - start} of {n} messages "
                               f"(last: {self.msgs[-1] if self.msgs else None})")

    def quiet(self, start, timeout=QUIET, why="unexpected message"):
        """No messages beyond index start for timeout seconds."""
        time.sleep(timeout)
        with self.cond:
            extra = self.msgs[start:]
        check(not extra, f"{self.cid}: {why}: {extra[:5]}")

    def count(self):
        with self.cond:
            return len(self.msgs)

    def wait_disconnected(self, timeout=TIMEOUT):
        self._wait(lambda: self.disconnects, timeout, f"{self.cid}: still connected")
        return self.disconnects[0]

    def disconnect(self, props=None):
        if self.c.is_connected():
            n = len(self.disconnects)
            self.c.disconnect(properties=props)
            self._wait(lambda: len(self.disconnects) > n, TIMEOUT, f"{self.cid}: disconnect hangs")
        self.stop()

    def stop(self):
        t = self.c._thread
        self.c._thread_terminate = True
        if t is not None and t is not threading.current_thread():
            t.join(3)
            if not t.is_alive():
                self.c._thread = None
        self.c._sock_close()
        self.c._thread_terminate = False  # so that a later loop_start() works


_live = []


def cleanup():
    while _live:
        c = _live.pop()
        try:
            if isinstance(c, Client):
                if c.c.is_connected():
                    c.c.disconnect()
                c.stop()
            else:
                c.close()
        except Exception:
            pass


def props(ptype, **kw):
    p = Properties(ptype)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def roundtrip(v5=False, what="broker"):
    """The broker still serves: a fresh subscriber and publisher exchange a QoS 1 message."""
    t = f"alive/{token()}"
    s = Client("alive-s", v5)
    s.connect()
    s.subscribe(t, 1)
    p = Client("alive-p", v5)
    p.connect()
    p.publish(t, b"still here", 1)
    m = s.expect(1)[0]
    check(m.payload == b"still here", f"{what}: round trip got {m}")
    s.disconnect()
    p.disconnect()


# ---------------------------------------------------------------------------------------------
# raw MQTT over a socket

def vbi(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("!H", len(b)) + b


# property identifier -> type, as [5 2.2.2.2]
P_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
P_U16 = {0x13, 0x21, 0x22, 0x23}
P_U32 = {0x02, 0x11, 0x18, 0x27}
P_VBI = {0x0B}
P_STR = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
P_BIN = {0x09, 0x16}
P_PAIR = {0x26}
PAYLOAD_FORMAT, MESSAGE_EXPIRY, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION = 0x01, 0x02, 0x03, 0x08, 0x09
SUBSCRIPTION_ID, SESSION_EXPIRY, ASSIGNED_ID, SERVER_KEEPALIVE = 0x0B, 0x11, 0x12, 0x13
REASON_STRING, RECEIVE_MAX, TOPIC_ALIAS_MAX, TOPIC_ALIAS = 0x1F, 0x21, 0x22, 0x23
USER_PROPERTY, MAX_PACKET_SIZE, WILL_DELAY = 0x26, 0x27, 0x18


def enc_props(plist):
    out = bytearray()
    for pid, v in plist:
        out += vbi(pid)
        if pid in P_BYTE:
            out.append(v)
        elif pid in P_U16:
            out += struct.pack("!H", v)
        elif pid in P_U32:
            out += struct.pack("!I", v)
        elif pid in P_VBI:
            out += vbi(v)
        elif pid in P_STR or pid in P_BIN:
            out += s16(v)
        elif pid in P_PAIR:
            out += s16(v[0]) + s16(v[1])
        else:
            raise ValueError(pid)
    return vbi(len(out)) + bytes(out)


def read_vbi(b, i):
    n, mult = 0, 1
    for _ in range(4):
        n += (b[i] & 0x7F) * mult
        mult *= 128
        i += 1
        if not b[i - 1] & 0x80:
            return n, i
    raise Fail("malformed variable byte integer from the broker")


def dec_props(b, i):
    """-> (dict id -> value (a list for user properties and subscription ids), next index)"""
    n, i = read_vbi(b, i)
    end = i + n
    out = {}
    while i < end:
        pid, i = read_vbi(b, i)
        if pid in P_BYTE:
            v = b[i]
            i += 1
        elif pid in P_U16:
            v = struct.unpack_from("!H", b, i)[0]
            i += 2
        elif pid in P_U32:
            v = struct.unpack_from("!I", b, i)[0]
            i += 4
        elif pid in P_VBI:
            v, i = read_vbi(b, i)
        elif pid in P_STR or pid in P_BIN:
            ln = struct.unpack_from("!H", b, i)[0]
            v = bytes(b[i + 2:i + 2 + ln])
            i += 2 + ln
        elif pid in P_PAIR:
            ln = struct.unpack_from("!H", b, i)[0]
            k = bytes(b[i + 2:i + 2 + ln])
            i += 2 + ln
            ln = struct.unpack_from("!H", b, i)[0]
            v = (k, bytes(b[i + 2:i + 2 + ln]))
            i += 2 + ln
        else:
            raise Fail(f"unknown property 0x{pid:02x} from the broker")
        if pid in P_PAIR or pid in P_VBI:
            out.setdefault(pid, []).append(v)
        else:
            out[pid] = v
    return out, end


CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}


class Pkt:
    def __init__(self, hdr, body):
        self.type = hdr >> 4
        self.flags = hdr & 0xF
        self.body = body

    def __repr__(self):
        return f"<{NAMES.get(self.type, self.type)} {self.flags:x} {self.body[:24].hex()}>"


class Closed(Exception):
    pass


def connect_pkt(cid, v5=False, clean=True, keepalive=60, props=(), will=None, level=None,
                flags_extra=0, name=b"MQTT"):
    """will: dict(topic, payload, qos=0, retain=False, props=())"""
    flags = (0x02 if clean else 0) | flags_extra
    payload = s16(cid)
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if v5:
            payload += enc_props(will.get("props", ()))
        payload += s16(will["topic"]) + s16(will["payload"])
    vh = s16(name) + bytes([level or (5 if v5 else 4), flags]) + struct.pack("!H", keepalive)
    if v5:
        vh += enc_props(props)
    return packet(0x10, vh + payload)


def packet(hdr, body):
    return bytes([hdr]) + vbi(len(body)) + body


def publish_pkt(topic, payload, qos=0, retain=False, pid=1, v5=False, props=(), dup=False):
    body = s16(topic)
    if qos:
        body += struct.pack("!H", pid)
    if v5:
        body += enc_props(props)
    return packet(0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0), body + payload)


def subscribe_pkt(pid, filters, v5=False, props=(), hdr=0x82):
    """filters: [(filter, options byte)]"""
    body = struct.pack("!H", pid) + (enc_props(props) if v5 else b"")
    for f, o in filters:
        body += s16(f) + bytes([o])
    return packet(hdr, body)


class Raw:
    """A hand-driven MQTT connection."""

    def __init__(self, v5=False, rcvbuf=None):
        self.v5 = v5
        if rcvbuf is None:
            self.s = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
        else:  # a small receive window, set before the handshake so that it is advertised
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.s.settimeout(TIMEOUT)
            self.s.connect((HOST, PORT))
        self.buf = b""
        _live.append(self)

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            pass  # the broker may already have closed; expect_close() tells

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 16)
            except socket.timeout:
                raise
            except OSError as e:
                raise Closed(str(e))
            if not d:
                raise Closed("EOF")
            self.buf += d

    def packet(self, timeout=TIMEOUT):
        """The next packet; None if the connection closed; Fail if nothing within timeout."""
        deadline = time.monotonic() + timeout
        try:
            self._fill(2, deadline)
            i, n, mult = 1, 0, 1
            while True:
                self._fill(i + 1, deadline)
                b = self.buf[i]
                n += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
                check(i < 5, "malformed remaining length from the broker")
            self._fill(i + n, deadline)
        except socket.timeout:
            raise Fail(f"no packet from the broker within {timeout} s")
        except Closed:
            return None
        p = Pkt(self.buf[0], self.buf[i:i + n])
        self.buf = self.buf[i + n:]
        return p

    def expect(self, ptype, timeout=TIMEOUT):
        p = self.packet(timeout)
        check(p is not None, f"connection closed, expected {NAMES[ptype]}")
        check(p.type == ptype, f"got {p}, expected {NAMES[ptype]}")
        return p

    def expect_close(self, timeout=TIMEOUT):
        """Read until the broker closes; returns the packets it sent before closing."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                p = self.packet(max(left, 0.001))
            except Fail:
                raise Fail(f"connection still open after {timeout} s (got {got})")
            if p is None:
                return got
            got.append(p)

    def is_open(self, timeout=QUIET):
        """True if the connection stays open (and silent) for timeout seconds."""
        try:
            p = self.packet(timeout)
        except Fail:
            return True
        check(p is not None, "connection closed")
        raise Fail(f"unexpected {p}")

    def connect(self, cid, expect=0, **kw):
        """-> (session present, return/reason code, properties dict)"""
        self.send(connect_pkt(cid, v5=self.v5, **kw))
        p = self.expect(CONNACK)
        sp, rc = p.body[0], p.body[1]
        pr = dec_props(p.body, 2)[0] if self.v5 and len(p.body) > 2 else {}
        if expect is not None:
            check(rc == expect, f"CONNACK {rc}, expected {expect}")
        return sp & 1, rc, pr

    def subscribe(self, filters, pid=1, props=(), expect=None):
        self.send(subscribe_pkt(pid, filters, self.v5, props))
        p = self.expect(SUBACK)
        check(struct.unpack_from("!H", p.body)[0] == pid, f"SUBACK for the wrong id: {p}")
        i = dec_props(p.body, 2)[1] if self.v5 else 2
        codes = list(p.body[i:])
        if expect is not None:
            check(codes == expect, f"SUBACK {codes}, expected {expect}")
        return codes

    def publish_of(self, p):
        """Decode a PUBLISH -> dict(topic, qos, retain, dup, pid, props, payload)."""
        check(p is not None and p.type == PUBLISH, f"expected PUBLISH, got {p}")
        b = p.body
        ln = struct.unpack_from("!H", b)[0]
        topic = bytes(b[2:2 + ln])
        i = 2 + ln
        qos = (p.flags >> 1) & 3
        pid = None
        if qos:
            pid = struct.unpack_from("!H", b, i)[0]
            i += 2
        pr = {}
        if self.v5:
            pr, i = dec_props(b, i)
        return dict(topic=topic, qos=qos, retain=bool(p.flags & 1), dup=bool(p.flags & 8),
                    pid=pid, props=pr, payload=bytes(b[i:]))

    def disconnect(self, reason=None, props=()):
        if self.v5 and (reason or props):
            self.send(packet(0xE0, bytes([reason or 0]) + enc_props(props)))
        else:
            self.send(b"\xe0\x00")
        self.close()

    def drop(self, rst=False):
        """Close without DISCONNECT; rst: abortive (RST instead of FIN)."""
        if rst:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def disconnect_reason(pkts):
    """The reason code of a DISCONNECT among pkts (v5), None if there was none."""
    for p in pkts:
        if p.type == DISCONNECT:
            return p.body[0] if p.body else 0
    return None


# ---------------------------------------------------------------------------------------------
# scenarios

SCENARIOS = []


def scenario(cap=60):
    def reg(f):
        SCENARIOS.append((f.__name__, f, cap))
        return f
    return reg


def both(f):
    """Register f(v5) as NAME_v311 and NAME_v5."""
    for v5, suffix in ((False, "v311"), (True, "v5")):
        def run(f=f, v5=v5):
            return f(v5)
        SCENARIOS.append((f"{f.__name__}_{suffix}", run, getattr(f, "cap", 60)))
    return f


@scenario()
def connect_v311():
    c = Client("conn")
    sp, rc, _ = c.connect()
    check(sp == 0, "session present on a clean session")
    c.disconnect()
    check(c.disconnects == [0], f"disconnect: {c.disconnects}")
    # the same id again: a new clean session
    c2 = Client("conn", cid=c.cid)
    sp, rc, _ = c2.connect()
    check(sp == 0, "session present on a clean reconnect")
    c2.disconnect()
    # [3.1.1 3.1.3.1] an empty client id with clean session is accepted ...
    r = Raw()
    r.connect(b"", clean=True)
    check(r.is_open(0.3), "open")
    r.disconnect()
    # ... with clean session 0 it is refused with 0x02 and the connection closed [MQTT-3.1.3-8]
    r = Raw()
    sp, rc, _ = r.connect(b"", clean=False, expect=None)
    check(rc == 2 and sp == 0, f"empty id, clean 0: CONNACK sp {sp} rc {rc}, expected 0 / 2")
    r.expect_close()


@scenario()
def connect_v5():
    c = Client("conn5", v5=True, cid="")  # empty: the broker assigns one [5 3.2.2.3.7]
    sp, rc, pr = c.connect()
    check(sp == 0, "session present on clean start")
    assigned = getattr(pr, "AssignedClientIdentifier", None)
    check(assigned, f"no Assigned Client Identifier in CONNACK ({pr})")
    # the assigned id works as a normal id: it receives what we subscribed
    t = f"c5/{token()}"
    c.subscribe(t, 1)
    c.publish(t, b"x", 1)
    c.expect(1)
    c.disconnect()
    c2 = Client("conn5", v5=True)
    c2.connect()
    c2.disconnect()
    check(c2.disconnects == [0], f"disconnect: {c2.disconnects}")


@scenario()
def connect_bad_protocol_level():
    # [MQTT-3.1.2-2] an unsupported protocol level: CONNACK 0x01 (3.1.1 format) and close.
    # Level 6 does not exist; answering in the 5.0 format (0x84) is what a 5.0 broker may
    # also do, so both are accepted, as long as the connection is refused and closed.
    r = Raw()
    r.send(connect_pkt(uid("lvl"), level=6))
    got = r.expect_close()
    for p in got:
        check(p.type == CONNACK and p.body[1] in (0x01, 0x84),
              f"level 6: {p}, expected CONNACK 0x01 (or 0x84) and close")
    if not got:
        note("closed without CONNACK 0x01")
    # a wrong protocol name: the server MAY close without CONNACK [MQTT-3.1.2-1]
    r = Raw()
    r.send(connect_pkt(uid("name"), name=b"MQTX"))
    for p in r.expect_close():
        check(p.type != CONNACK or p.body[1] != 0, "accepted protocol name MQTX")
    roundtrip()


PAYLOADS = [b"", b"hello", bytes(range(256)) * 4 + b"\x00\x00\x00", os.urandom(100 * 1024)]


@both
def qos(v5):
    base = f"q/{token()}"
    subs = []
    for q in (0, 1, 2):
        s = Client(f"qs{q}", v5)
        s.connect()
        s.subscribe(f"{base}/#", q)
        subs.append(s)
    p = Client("qp", v5)
    p.connect()
    sent = []
    for pq in (0, 1, 2):
        for i, pl in enumerate(PAYLOADS):
            t = f"{base}/q{pq}/{i}"
            p.publish(t, pl, pq)
            sent.append((t, pl, pq))
    for sq, s in enumerate(subs):
        got = s.expect(len(sent))
        s.quiet(len(sent), 0.3, "extra message")
        # every topic once (order is only promised per topic [MQTT-4.6.0-6], and each message
        # here has its own); QoS 0 is not lost on an idle link either
        by_topic = {m.topic: m for m in got}
        check(len(by_topic) == len(sent), f"sub q{sq}: duplicates among {[m.topic for m in got]}")
        for t, pl, pq in sent:
            m = by_topic.get(t)
            check(m is not None, f"sub q{sq}: {t} missing")
            check(m.payload == pl, f"sub q{sq}: {t}: payload differs "
                                   f"({len(m.payload)} bytes vs {len(pl)})")
            check(m.qos == min(pq, sq), f"sub q{sq}: {t} delivered at QoS {m.qos}")
            check(not m.retain, f"{t}: retain set on a live message")
    for c in subs + [p]:
        c.disconnect()


@both
def qos2_duplicate_publish(v5):
    # [4.3.3] the receiver of a QoS 2 PUBLISH delivers it once: a retransmission (DUP) of the
    # same packet id before PUBREL is not delivered again.
    t = f"q2d/{token()}"
    s = Client("q2ds", v5)
    s.connect()
    s.subscribe(t, 2)
    r = Raw(v5)
    r.connect(uid("q2dp"))
    r.send(publish_pkt(t, b"once", 2, pid=7, v5=v5))
    check(r.expect(PUBREC).body[:2] == b"\x00\x07", "PUBREC id")
    r.send(publish_pkt(t, b"once", 2, pid=7, v5=v5, dup=True))
    check(r.expect(PUBREC).body[:2] == b"\x00\x07", "PUBREC id (dup)")
    r.send(packet(0x62, b"\x00\x07"))
    check(r.expect(PUBCOMP).body[:2] == b"\x00\x07", "PUBCOMP id")
    m = s.expect(1)[0]
    check(m.payload == b"once" and m.qos == 2, f"got {m}")
    s.quiet(1, QUIET, "QoS 2 message delivered twice")
    r.disconnect()
    s.disconnect()


def order(v5):
    t = f"ord/{token()}"
    s = Client("ords", v5)
    s.connect()
    s.subscribe(t, 1)
    p = Client("ordp", v5)
    p.connect()
    infos = [p.publish(t, str(i).encode(), 1, wait=False) for i in range(1000)]
    got = s.expect(1000)
    for i, m in enumerate(got):
        check(m.payload == str(i).encode(), f"message {i} is {m.payload!r}: order lost")
        check(m.qos == 1, f"message {i} at QoS {m.qos}")
    s.quiet(1000, 0.3, "duplicates")
    deadline = time.monotonic() + TIMEOUT
    while not all(i.is_published() for i in infos) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(all(i.is_published() for i in infos), "not every PUBLISH acknowledged")
    s.disconnect()
    p.disconnect()


order.cap = 180
order.__name__ = "order_1000_qos1"
both(order)


def matches(flt, topic):
    """The reference: [4.7] topic filter matching ($-topics are the caller's business)."""
    f, t = flt.split("/"), topic.split("/")
    for i, lvl in enumerate(f):
        if lvl == "#":
            return True
        if i >= len(t):
            return False
        if lvl != "+" and lvl != t[i]:
            return False
    return len(f) == len(t)


@both
def wildcards(v5):
    b = f"w/{token()}"
    filters = [f"{b}/+/x", f"{b}/a/#", f"{b}/+", f"{b}/#", f"{b}/+/+/+", f"+/{b[2:]}/a",
               f"{b}/ünï cödé", f"{b}/A"]
    topics = [f"{b}/a/x", f"{b}/b/x", f"{b}/a", f"{b}/a/x/y", f"{b}//x", f"{b}/a/b", b,
              f"{b}/", f"{b}/ünï cödé", f"{b}/A", f"{b}/a/x/"]
    subs = []
    for flt in filters:
        s = Client("wc", v5)
        s.connect()
        s.subscribe(flt, 1)
        subs.append(s)
    p = Client("wcp", v5)
    p.connect()
    for t in topics:
        p.publish(t, t.encode(), 1)
    for flt, s in zip(filters, subs):
        want = [t for t in topics if matches(flt, t)]
        got = s.expect(len(want))
        s.quiet(len(want), 0.3, f"{flt}: extra message")
        check(sorted(m.topic for m in got) == sorted(want),
              f"{flt}: got {sorted(m.topic for m in got)}, expected {sorted(want)}")
        check(all(m.payload == m.topic.encode() for m in got), f"{flt}: payload mixed up")
    # unsubscribe: UNSUBACK, then nothing more arrives [3.10]
    s = subs[3]
    s.unsubscribe(filters[3])
    n = s.count()
    p.publish(f"{b}/after", b"late", 1)
    s.quiet(n, QUIET, "delivered after UNSUBSCRIBE")
    for c in subs + [p]:
        c.disconnect()


@scenario()
def sys_not_matched_by_wildcards():
    # [MQTT-4.7.2-1] filters beginning with a wildcard do not match topics beginning with $
    s = Client("sysw")
    s.connect()
    s.subscribe("#", 0)
    s.subscribe("+/broker/uptime", 0)
    s.subscribe("+/+/+", 0)
    mark = f"sysw/{token()}"
    s.publish(mark, b"mark", 1)
    deadline = time.monotonic() + TIMEOUT
    while not any(m.topic == mark for m in s.msgs) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(any(m.topic == mark for m in s.msgs), "'#' does not receive an ordinary topic")
    time.sleep(2.5)  # a few $SYS periods (sys_interval 1)
    dollar = [m.topic for m in s.msgs if m.topic.startswith("$")]
    check(not dollar, f"'#' or '+/...' matched {dollar[:5]}")
    s.disconnect()


@scenario()
def overlap_v311():
    # [3.1.1 3.3.5] overlapping subscriptions: the message is delivered respecting the maximum
    # QoS of the matching subscriptions; the server MAY send further copies, one per extra
    # matching subscription at that subscription's QoS (implementation-specific: allowed).
    b = f"ov/{token()}"
    s = Client("ov")
    s.connect()
    s.subscribe(f"{b}/#", 0)
    s.subscribe(f"{b}/+", 2)
    s.subscribe(f"{b}/x", 1)
    p = Client("ovp")
    p.connect()
    p.publish(f"{b}/x", b"one", 2)
    s.expect(1)
    time.sleep(QUIET)
    got = list(s.msgs)
    check(1 <= len(got) <= 3, f"{len(got)} copies")
    check(all(m.payload == b"one" for m in got), "payload")
    # mosquitto 2.0.11 sends one copy at the QoS of the first subscription its tree walk finds
    deviation("overlap_max_qos", max(m.qos for m in got) == 2,
              f"no copy at the maximum QoS 2 [MQTT-3.3.5-1]: {got}")
    if len(got) > 1:
        note(f"{len(got)} copies at QoS {sorted(m.qos for m in got)} (spec: MAY)")
    s.disconnect()
    p.disconnect()


@scenario()
def overlap_subscription_ids_v5():
    # [5 3.3.4] one copy: at the maximum QoS, carrying the Subscription Identifiers of all
    # matching subscriptions; or one copy per subscription, each with its own identifier.
    b = f"ov5/{token()}"
    s = Client("ov5", v5=True)
    _, _, cp = s.connect()
    if getattr(cp, "SubscriptionIdentifierAvailable", 1) == 0:
        note("broker has no subscription identifiers")
        ids = False
    else:
        ids = True

    def sp(n):
        return props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=n) if ids else None
    s.subscribe(f"{b}/#", 1, props=sp(1))
    s.subscribe(f"{b}/+", 0, props=sp(2))
    s.subscribe(f"{b}/y", 0)  # no identifier
    p = Client("ov5p", v5=True)
    p.connect()
    p.publish(f"{b}/x", b"two", 1)
    s.expect(1)
    time.sleep(QUIET)
    got = list(s.msgs)
    check(1 <= len(got) <= 2, f"{len(got)} copies: {got}")
    seen = [sorted(m.prop("SubscriptionIdentifier", [])) for m in got]
    if len(got) == 1:
        check(got[0].qos == 1, f"single copy at QoS {got[0].qos}, expected 1")
        if ids:
            check(seen[0] == [1, 2], f"single copy carries ids {seen[0]}, expected [1, 2]")
    else:
        note("one copy per subscription (spec: MAY)")
        check(sorted(m.qos for m in got) == [0, 1], f"copies at QoS {[m.qos for m in got]}")
        if ids:
            check(sorted(seen) == [[1], [2]], f"ids per copy {seen}, expected [1] and [2]")
    # one match, one id; and a subscription without an id gives a message without one
    p.publish(f"{b}/y/z", b"deep", 1)
    p.publish(f"{b}/y", b"y", 1)
    m1, m2 = s.expect(2, start=len(got))
    if ids:
        check(m1.prop("SubscriptionIdentifier") == [1], f"{m1}: ids {m1.prop('SubscriptionIdentifier')}")
    time.sleep(0.3)
    for m in s.msgs[len(got) + 1:]:
        check(m.payload == b"y", f"unexpected {m}")
    s.disconnect()
    p.disconnect()


@both
def retained(v5):
    b = f"r/{token()}"
    p = Client("rp", v5)
    p.connect()
    p.publish(f"{b}/a", b"one", 1, retain=True)
    a = Client("ra", v5)
    a.connect()
    a.subscribe(f"{b}/#", 1)
    m = a.expect(1)[0]
    check((m.topic, m.payload, m.retain) == (f"{b}/a", b"one", True),
          f"on subscribe: {m}, expected retained 'one' [MQTT-3.3.1-8]")
    # a live message to an existing subscription has RETAIN 0 [MQTT-3.3.1-9] (v5: unless
    # retain-as-published, not asked for here)
    p.publish(f"{b}/a", b"two", 1, retain=True)
    m = a.expect(1, start=1)[0]
    check((m.payload, m.retain) == (b"two", False), f"live: {m}, expected 'two' retain 0")
    # replaced: a new subscriber sees only the last one
    bb = Client("rb", v5)
    bb.connect()
    bb.subscribe(f"{b}/a", 2)
    m = bb.expect(1)[0]
    check((m.payload, m.retain, m.qos) == (b"two", True, 1), f"replaced: {m}")
    bb.quiet(1, 0.5, "more than one retained message")
    # QoS 0 retained and several retained messages for a wildcard
    p.publish(f"{b}/b", b"bee", 0, retain=True)
    a.expect(1, start=2)
    c = Client("rc", v5)
    c.connect()
    c.subscribe(f"{b}/+", 1)
    got = c.expect(2)
    check(sorted((m.topic, m.payload, m.retain, m.qos) for m in got) ==
          [(f"{b}/a", b"two", True, 1), (f"{b}/b", b"bee", True, 0)], f"wildcard: {got}")
    # deleted with an empty payload; the empty message still goes to current subscribers
    # [MQTT-3.3.1-10/11] [5 3.3.1.3]
    p.publish(f"{b}/a", b"", 1, retain=True)
    m = a.expect(1, start=3)[0]
    check((m.payload, m.retain) == (b"", False), f"empty retained, live: {m}")
    d = Client("rd", v5)
    d.connect()
    d.subscribe(f"{b}/#", 1)
    got = d.expect(1)
    check(got[0].topic == f"{b}/b", f"after delete: {got}")
    d.quiet(1, 0.5, "a deleted retained message came back")
    # [MQTT-3.8.4-3] re-subscribing replaces the subscription and re-sends retained messages
    n = a.count()
    a.subscribe(f"{b}/#", 1)
    m = a.expect(1, start=n)[0]
    check((m.topic, m.retain) == (f"{b}/b", True), f"re-subscribe: {m}")
    p.publish(f"{b}/b", b"", 0, retain=True)
    for x in (p, a, bb, c, d):
        x.disconnect()


@scenario()
def retained_v5_options():
    b = f"r5/{token()}"
    t = f"{b}/a"
    p = Client("r5p", v5=True)
    p.connect()
    p.publish(t, b"x", 1, retain=True)
    # retain handling 2: not sent on subscribe
    s2 = Client("r5h2", v5=True)
    s2.connect()
    s2.subscribe(t, options=SubscribeOptions(qos=1, retainHandling=2))
    s2.quiet(0, QUIET, "retain handling 2 sent the retained message")
    # retain handling 1: sent only if the subscription did not exist
    s1 = Client("r5h1", v5=True)
    s1.connect()
    s1.subscribe(t, options=SubscribeOptions(qos=1, retainHandling=1))
    m = s1.expect(1)[0]
    check((m.payload, m.retain) == (b"x", True), f"retain handling 1, new: {m}")
    s1.subscribe(t, options=SubscribeOptions(qos=1, retainHandling=1))
    s1.quiet(1, QUIET, "retain handling 1 re-sent on an existing subscription")
    # retain handling 0: sent on every subscribe
    s1.subscribe(t, options=SubscribeOptions(qos=1, retainHandling=0))
    m = s1.expect(1, start=1)[0]
    check((m.payload, m.retain) == (b"x", True), f"retain handling 0, again: {m}")
    # retain as published
    rap = Client("r5rap", v5=True)
    rap.connect()
    rap.subscribe(f"{b}/#", options=SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=2))
    norap = Client("r5norap", v5=True)
    norap.connect()
    norap.subscribe(f"{b}/#", options=SubscribeOptions(qos=1, retainHandling=2))
    p.publish(t, b"y", 1, retain=True)
    p.publish(t, b"z", 1, retain=False)
    m1, m2 = rap.expect(2)
    check((m1.payload, m1.retain, m2.payload, m2.retain) == (b"y", True, b"z", False),
          f"retain-as-published: {m1} {m2}")
    m1, m2 = norap.expect(2)
    check((m1.retain, m2.retain) == (False, False), f"without retain-as-published: {m1} {m2}")
    p.publish(t, b"", 1, retain=True)
    for x in (p, s1, s2, rap, norap):
        x.disconnect()


@both
def will(v5):
    b = f"will/{token()}"
    o = Client("wo", v5)
    o.connect()
    o.subscribe(f"{b}/#", 2)
    # closed without DISCONNECT (FIN): the will is published [MQTT-3.1.2-8]
    r = Raw(v5)
    r.connect(uid("wa"), will=dict(topic=f"{b}/a", payload=b"\x00gone\xff", qos=1))
    r.drop()
    m = o.expect(1)[0]
    check((m.topic, m.payload, m.qos, m.retain) == (f"{b}/a", b"\x00gone\xff", 1, False),
          f"will: {m}")
    # reset (RST), and a retained will
    r = Raw(v5)
    r.connect(uid("wr"), will=dict(topic=f"{b}/r", payload=b"reset", qos=2, retain=True))
    r.drop(rst=True)
    m = o.expect(1, start=1)[0]
    check((m.topic, m.payload, m.qos) == (f"{b}/r", b"reset", 2), f"will after RST: {m}")
    late = Client("wl", v5)
    late.connect()
    late.subscribe(f"{b}/r", 1)
    m = late.expect(1)[0]
    check((m.payload, m.retain) == (b"reset", True), f"retained will: {m}")
    # a normal DISCONNECT: no will [MQTT-3.1.2-10] (v5: reason 0)
    r = Raw(v5)
    r.connect(uid("wn"), will=dict(topic=f"{b}/n", payload=b"no"))
    r.disconnect()
    o.quiet(2, 1.5, "will sent after a normal DISCONNECT")
    o.publish(f"{b}/r", b"", 1, retain=True)
    o.disconnect()
    late.disconnect()


@scenario(cap=90)
def will_v5_delay():
    b = f"w5/{token()}"
    o = Client("w5o", v5=True)
    o.connect()
    o.subscribe(f"{b}/#", 1)
    wp = [(CONTENT_TYPE, "text/plain"), (USER_PROPERTY, ("k", "v"))]

    def will(name, delay=None, expiry=None):
        r = Raw(True)
        cp = [(SESSION_EXPIRY, expiry)] if expiry is not None else []
        w = wp + ([(WILL_DELAY, delay)] if delay is not None else [])
        r.connect(uid(name), props=cp, clean=True,
                  will=dict(topic=f"{b}/{name}", payload=name.encode(), qos=1, props=w))
        return r

    # DISCONNECT with reason 0x04 "with will message": sent
    will("d04").disconnect(reason=0x04)
    # no delay: at once, with its properties
    will("now").drop()
    # delay 3 s, session expiry 30: not before the delay [5 3.1.3.2.2]
    t0 = time.monotonic()
    will("delay3", delay=3, expiry=30).drop()
    # delay 30 but session expiry 1: at the end of the session, the earlier of the two
    will("sess1", delay=30, expiry=1).drop()
    # delay 3, reconnected within the delay: never sent
    cid = uid("back")
    r = Raw(True)
    r.connect(cid, props=[(SESSION_EXPIRY, 30)],
              will=dict(topic=f"{b}/back", payload=b"back", qos=1, props=[(WILL_DELAY, 3)]))
    r.drop()
    time.sleep(0.5)
    r = Raw(True)
    sp, _, _ = r.connect(cid, clean=False, props=[(SESSION_EXPIRY, 0)])
    check(sp == 1, "reconnect within the will delay: no session present")
    got = o.expect(2)
    check(sorted(m.topic for m in got) == [f"{b}/d04", f"{b}/now"], f"first wills: {got}")
    m = [m for m in got if m.topic == f"{b}/now"][0]
    check(m.prop("ContentType") == "text/plain" and m.prop("UserProperty") == [("k", "v")],
          f"will properties lost: {m.props}")
    time.sleep(max(0, t0 + 7 - time.monotonic()))
    got = {m.topic.rsplit("/", 1)[1]: m.t - t0 for m in o.msgs[2:]}
    check(set(got) == {"delay3", "sess1"}, f"delayed wills: {sorted(got)}, expected delay3 sess1")
    # timers of whole seconds may round: "not before" allows one second of slack
    check(got["delay3"] >= 2.0, f"will delay 3 s: sent after {got['delay3']:.2f} s")
    check(got["sess1"] < 6.0, f"session expiry 1 s: will after {got['sess1']:.2f} s")
    r.disconnect()
    o.disconnect()


@scenario()
def session_v311():
    b = f"ps/{token()}"
    cid = uid("ps")
    s = Client("ps", cid=cid, clean=False)
    sp, _, _ = s.connect()
    check(sp == 0, "new id: session present")
    s.subscribe(b, 1)
    s.subscribe(f"{b}/q2", 2)
    s.disconnect()
    p = Client("psp")
    p.connect()
    for i in range(5):
        p.publish(b, f"m{i}".encode(), 1)
    p.publish(f"{b}/q2", b"two", 2)
    p.publish(b, b"q0", 0)
    s = Client("ps", cid=cid, clean=False)
    sp, _, _ = s.connect()
    check(sp == 1, "reconnect clean_session 0: no session present [MQTT-3.2.2-2]")
    got = s.expect(6)
    time.sleep(0.5)
    got = list(s.msgs)
    # QoS 0 while offline: the server MAY queue it [MQTT-3.1.2-5]
    q0 = [m for m in got if m.payload == b"q0"]
    if not q0:
        note("QoS 0 messages for an offline session dropped (spec: MAY queue)")
    got = [m for m in got if m.payload != b"q0"]
    q1 = [m.payload for m in got if m.topic == b]
    check(q1 == [f"m{i}".encode() for i in range(5)], f"queued QoS 1: {q1}")
    check([(m.payload, m.qos) for m in got if m.topic != b] == [(b"two", 2)], f"queued QoS 2: {got}")
    # the subscription survived
    n = s.count()
    p.publish(b, b"live", 1)
    check(s.expect(1, start=n)[0].payload == b"live", "subscription lost with the session")
    s.disconnect()
    # clean_session 1 discards the session, and the next one starts empty
    s = Client("ps", cid=cid, clean=True)
    sp, _, _ = s.connect()
    check(sp == 0, "clean_session 1: session present [MQTT-3.2.2-1]")
    s.disconnect()
    p.publish(b, b"after clean", 1)
    s = Client("ps", cid=cid, clean=False)
    sp, _, _ = s.connect()
    check(sp == 0, "the clean session was kept")
    s.quiet(0, QUIET, "message for a discarded session")
    s.disconnect()
    Client("ps", cid=cid, clean=True).connect()  # drop the session again
    p.disconnect()


@scenario(cap=90)
def session_v5():
    b = f"ps5/{token()}"
    cid = uid("ps5")

    def sx(n):
        return props(PacketTypes.CONNECT, SessionExpiryInterval=n)
    s = Client("ps5", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=True, props=sx(60))
    check(sp == 0, "clean start: session present")
    s.subscribe(b, 1)
    s.disconnect()
    p = Client("ps5p", v5=True)
    p.connect()
    for i in range(3):
        p.publish(b, f"m{i}".encode(), 1)
    s = Client("ps5", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=False, props=sx(60))
    check(sp == 1, "clean start 0 within the expiry: no session present")
    got = s.expect(3)
    check([m.payload for m in got] == [b"m0", b"m1", b"m2"], f"queued: {got}")
    s.disconnect()
    # clean start 1 discards the session: messages and subscription
    p.publish(b, b"gone", 1)
    s = Client("ps5", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=True, props=sx(60))
    check(sp == 0, "clean start 1: session present")
    p.publish(b, b"unsubscribed", 1)
    s.quiet(0, QUIET, "the discarded session delivered")
    s.disconnect()
    # session expiry 0 (absent): the session ends with the connection
    s = Client("ps5", v5=True, cid=cid)
    s.connect(clean=True)
    s.subscribe(b, 1)
    s.disconnect()
    p.publish(b, b"x", 1)
    s = Client("ps5", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=False)
    check(sp == 0, "session expiry 0: the session outlived the connection")
    s.quiet(0, 0.5, "message for an ended session")
    s.disconnect()
    # session expiry 1: gone 2.5 s later
    s = Client("ps5", v5=True, cid=cid)
    s.connect(clean=True, props=sx(1))
    s.subscribe(b, 1)
    s.disconnect()
    time.sleep(2.5)
    p.publish(b, b"y", 1)
    s = Client("ps5", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=False, props=sx(60))
    check(sp == 0, "session expiry 1 s: still present 2.5 s later")
    s.quiet(0, 0.5, "message for an expired session")
    # DISCONNECT may set the expiry to 0: the session ends there [5 3.14.2.2.2]
    s.subscribe(b, 1)
    s.disconnect(props=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    s = Client("ps5", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=False)
    check(sp == 0, "DISCONNECT with session expiry 0: session kept")
    s.disconnect()
    p.disconnect()


@both
def takeover(v5):
    cid = uid("to")
    r = Raw(v5)
    r.connect(cid)
    n = Client("to", v5, cid=cid)
    sp, _, _ = n.connect()
    # [MQTT-3.1.4-2] the existing client is disconnected; v5: DISCONNECT 0x8E first [5 3.1.4]
    got = r.expect_close()
    if v5:
        # mosquitto sends it from 2.0.15 on (its issue #2607)
        deviation("takeover_disconnect", disconnect_reason(got) == 0x8E,
                  f"first connection got {got} before the close, expected DISCONNECT 0x8E")
    else:
        check(all(p.type != DISCONNECT for p in got), f"3.1.1: a server does not send DISCONNECT: {got}")
    t = f"to/{token()}"
    n.subscribe(t, 1)
    n.publish(t, b"mine", 1)
    check(n.expect(1)[0].payload == b"mine", "the new connection does not work")
    time.sleep(0.3)
    check(n.c.is_connected() and not n.disconnects, "the new connection was dropped")
    n.disconnect()


def shared(v5):
    t = f"sh/{token()}"
    m1, m2, m3, n = (Client(x, v5) for x in ("sh1", "sh2", "sh3", "shn"))
    for c, f in ((m1, f"$share/g/{t}"), (m2, f"$share/g/{t}"), (m3, f"$share/h/{t}"), (n, t)):
        c.connect()
        c.subscribe(f, 1)
    p = Client("shp", v5)
    p.connect()
    for i in range(100):
        p.publish(t, str(i).encode(), 1, wait=False)
    want = [str(i).encode() for i in range(100)]
    for c in (m3, n):
        got = c.expect(100)
        check([m.payload for m in got] == want, f"{c.cid}: not all 100 in order")
        check(all(m.topic == t for m in got), "topic of a shared message")
    deadline = time.monotonic() + TIMEOUT
    while m1.count() + m2.count() < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    a, b = [m.payload for m in m1.msgs], [m.payload for m in m2.msgs]
    check(sorted(a + b) == sorted(want), f"group g: {len(a)} + {len(b)} messages, "
                                         f"{len(set(a + b))} distinct (each exactly once)")
    check(a and b, f"group g: one member got all ({len(a)} / {len(b)})")
    check(a == sorted(a, key=int) and b == sorted(b, key=int), "a member got them out of order")
    if min(len(a), len(b)) < 40:
        note(f"uneven split {len(a)} / {len(b)}")
    for c in (m1, m2, m3, n, p):
        c.disconnect()


shared.__name__ = "shared_subscription"
both(shared)


@scenario()
def keepalive():
    b = f"ka/{token()}"
    o = Client("kao")
    o.connect()
    o.subscribe(f"{b}/#", 1)
    # a client that pings within its keep alive stays
    live = Raw()
    live.connect(uid("kal"), keepalive=1)
    for _ in range(6):
        time.sleep(0.6)
        live.send(b"\xc0\x00")
        live.expect(PINGRESP)
    # a silent one is dropped after 1.5 x keep alive [MQTT-3.1.2-24]; a server with whole
    # seconds may take up to 2 s; 3 s is the limit; its will is published
    r = Raw()
    r.connect(uid("kas"), keepalive=1, will=dict(topic=f"{b}/w", payload=b"timeout", qos=1))
    t0 = time.monotonic()
    # (mosquitto 2.0.11 scans for expired keep alives every 5 s: up to 6.5 s)
    r.expect_close(timeout=8 if "keepalive_timeout" in KNOWN else 4)
    dt = time.monotonic() - t0
    check(dt >= 0.9, f"silent client with keep alive 1 dropped after {dt:.2f} s, before 1 s")
    deviation("keepalive_timeout", dt <= 3.0,
              f"silent client with keep alive 1 dropped after {dt:.2f} s [MQTT-3.1.2-24]")
    m = o.expect(1)[0]
    check((m.topic, m.payload) == (f"{b}/w", b"timeout"), f"will: {m}")
    live.disconnect()
    o.disconnect()


@scenario()
def v5_message_expiry():
    b = f"me/{token()}"
    cid = uid("me")
    s = Client("me", v5=True, cid=cid)
    s.connect(props=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    s.subscribe(b, 1)
    s.disconnect()
    p = Client("mep", v5=True)
    p.connect()

    def ex(n):
        return props(PacketTypes.PUBLISH, MessageExpiryInterval=n)
    p.publish(b, b"short", 1, props=ex(1))
    p.publish(b, b"long", 1, props=ex(60))
    p.publish(b, b"none", 1)
    p.publish(f"{b}/r1", b"retained short", 1, retain=True, props=ex(1))
    p.publish(f"{b}/r60", b"retained long", 1, retain=True, props=ex(60))
    time.sleep(2.5)
    s = Client("me", v5=True, cid=cid)
    sp, _, _ = s.connect(clean=False, props=props(PacketTypes.CONNECT, SessionExpiryInterval=0))
    check(sp == 1, "session lost")
    got = s.expect(2)
    s.quiet(2, 0.5, "an expired message was delivered")
    check([m.payload for m in got] == [b"long", b"none"], f"after 2.5 s: {got}")
    # [MQTT-3.3.2-6] the interval is reduced by the time spent waiting in the server
    left = got[0].prop("MessageExpiryInterval")
    check(left is not None and 1 <= left <= 58, f"remaining expiry {left}, expected <= 58")
    check(got[1].prop("MessageExpiryInterval") is None, "expiry invented")
    # retained messages expire too
    s.subscribe(f"{b}/+", 1)
    got = s.expect(1, start=2)
    s.quiet(3, 0.5, "an expired retained message was delivered")
    check(got[0].payload == b"retained long", f"retained: {got}")
    left = got[0].prop("MessageExpiryInterval")
    check(left is not None and 1 <= left <= 58, f"retained: remaining expiry {left}")
    p.publish(f"{b}/r60", b"", 1, retain=True)
    s.disconnect()
    p.disconnect()


@scenario()
def v5_topic_alias():
    b = f"ta/{token()}"
    s = Client("tas", v5=True)
    s.connect()
    s.subscribe(f"{b}/#", 1)
    p = Client("tap", v5=True)
    _, _, cp = p.connect()
    amax = getattr(cp, "TopicAliasMaximum", 0)
    if amax:
        def al(n):
            return props(PacketTypes.PUBLISH, TopicAlias=n)
        p.publish(f"{b}/x", b"1", 1, props=al(1))
        p.publish("", b"2", 1, props=al(1))
        p.publish(f"{b}/y", b"3", 1, props=al(1))  # remapped
        p.publish("", b"4", 0, props=al(1))
        got = s.expect(4)
        check([(m.topic, m.payload) for m in got] ==
              [(f"{b}/x", b"1"), (f"{b}/x", b"2"), (f"{b}/y", b"3"), (f"{b}/y", b"4")],
              f"aliases resolved to {[(m.topic, m.payload) for m in got]}")
        check(all(m.prop("TopicAlias") is None for m in got), "alias forwarded to a client without")
    else:
        note("broker takes no topic aliases (Topic Alias Maximum 0)")
    # an alias above the maximum (or any, if none) is an error: DISCONNECT 0x94 and close
    # [MQTT-3.3.2-9/10]; an unknown alias with an empty topic likewise (0x82)
    for alias, topic in ((amax + 1, f"{b}/z"), (0, f"{b}/z")) + (((2, ""),) if amax >= 2 else ()):
        r = Raw(True)
        r.connect(uid("tar"))
        r.send(publish_pkt(topic, b"bad", 0, v5=True, props=[(TOPIC_ALIAS, alias)]))
        got = r.expect_close()
        rc = disconnect_reason(got)
        check(rc is None or rc >= 0x80, f"alias {alias}: DISCONNECT {rc}")
    s.quiet(4 if amax else 0, 0.3, "a bad alias was delivered")
    s.disconnect()
    p.disconnect()


@scenario()
def v5_properties_passthrough():
    # [5 3.3.2.3] forwarded unaltered; user properties in order [MQTT-3.3.2-18]
    b = f"pp/{token()}"
    s = Client("pps", v5=True)
    s.connect()
    s.subscribe(b, 1)
    p = Client("ppp", v5=True)
    p.connect()
    up = [("a", "1"), ("b", "2"), ("a", "3"), ("ünï", "cödé")]
    p.publish(b, b'{"k": 1}', 1, props=props(
        PacketTypes.PUBLISH, PayloadFormatIndicator=1, ContentType="application/json",
        ResponseTopic=f"{b}/reply", CorrelationData=b"\x00\x01corr\xff", UserProperty=up))
    m = s.expect(1)[0]
    check(m.prop("PayloadFormatIndicator") == 1, "payload format indicator")
    check(m.prop("ContentType") == "application/json", f"content type {m.prop('ContentType')}")
    check(m.prop("ResponseTopic") == f"{b}/reply", f"response topic {m.prop('ResponseTopic')}")
    check(m.prop("CorrelationData") == b"\x00\x01corr\xff", "correlation data")
    check(m.prop("UserProperty") == up, f"user properties {m.prop('UserProperty')}")
    # request / response with them: the responder answers on the response topic
    s.subscribe(f"{b}/reply", 1)
    r = m.prop("ResponseTopic")
    s.publish(r, b"answer", 1, props=props(PacketTypes.PUBLISH, CorrelationData=m.prop("CorrelationData")))
    m = s.expect(1, start=1)[0]
    check((m.payload, m.prop("CorrelationData")) == (b"answer", b"\x00\x01corr\xff"), f"reply {m}")
    s.disconnect()
    p.disconnect()


@scenario()
def v5_receive_maximum():
    # [MQTT-3.3.4-9] no more unacknowledged QoS 1/2 PUBLISHes than the client's Receive Maximum
    b = f"rm/{token()}"
    r = Raw(True)
    r.connect(uid("rm"), props=[(RECEIVE_MAX, 2)])
    r.subscribe([(b, 1)], expect=[1])
    p = Client("rmp", v5=True)
    p.connect()
    for i in range(10):
        p.publish(b, str(i).encode(), 1)
    inflight, order, flagged = [], [], False

    def take(timeout):
        nonlocal flagged
        try:
            pk = r.packet(timeout)
        except Fail:
            return False
        g = r.publish_of(pk)
        check(g["qos"] == 1, f"QoS {g['qos']}")
        inflight.append(g["pid"])
        order.append(g["payload"])
        if len(inflight) > 2 and not flagged:
            flagged = not deviation("receive_maximum", False,
                                    f"{len(inflight)} PUBLISHes unacknowledged, Receive Maximum 2")
        return True
    while take(QUIET):  # nothing acknowledged: two come, then no more
        pass
    check(len(order) == 2 or flagged, f"{len(order)} PUBLISHes before any PUBACK, expected 2")
    # acknowledge the oldest whenever the broker goes quiet; the rest follow, in order
    while len(order) < 10:
        check(inflight, f"stalled after {len(order)} messages with nothing in flight")
        r.send(packet(0x40, struct.pack("!H", inflight.pop(0))))
        # the PUBACK opened the window: the next one must come
        check(take(TIMEOUT), f"nothing sent after a PUBACK, {len(order)} of 10 received")
        while take(0.2):
            pass
    check(order == [str(i).encode() for i in range(10)], f"order {order}")
    for pid in inflight:
        r.send(packet(0x40, struct.pack("!H", pid)))
    r.disconnect()
    p.disconnect()


@scenario()
def v5_no_local():
    t = f"nl/{token()}"
    a = Client("nla", v5=True)
    a.connect()
    a.subscribe(t, options=SubscribeOptions(qos=1, noLocal=True))
    b = Client("nlb", v5=True)
    b.connect()
    b.subscribe(t, options=SubscribeOptions(qos=1, noLocal=False))
    a.publish(t, b"from a", 1)
    check(b.expect(1)[0].payload == b"from a", "b")
    b.publish(t, b"from b", 1)
    check(b.expect(1, start=1)[0].payload == b"from b", "no local 0: own message missing")
    check(a.expect(1)[0].payload == b"from b", "a did not get b's message")
    a.quiet(1, 0.5, "no local 1: own message delivered")
    a.disconnect()
    b.disconnect()


@scenario()
def v5_maximum_packet_size():
    # [MQTT-3.1.2-25] the server does not send a packet larger than the client's Maximum
    # Packet Size: it discards that message, the connection goes on
    t = f"mp/{token()}"
    s = Client("mps", v5=True)
    s.connect(props=props(PacketTypes.CONNECT, MaximumPacketSize=256))
    s.subscribe(t, 1)
    p = Client("mpp", v5=True)
    p.connect()
    p.publish(t, b"s" * 100, 1)
    p.publish(t, b"B" * 1000, 1)
    p.publish(t, b"b" * 300, 0)
    p.publish(t, b"t" * 150, 1)
    got = s.expect(2)
    s.quiet(2, 0.5, "a message above the maximum packet size was sent")
    check([m.payload for m in got] == [b"s" * 100, b"t" * 150], f"got {got}")
    check(s.c.is_connected(), "dropped")
    s.disconnect()
    p.disconnect()


@both
def second_connect(v5):
    # [MQTT-3.1.0-2] a second CONNECT is a protocol violation: close (v5: DISCONNECT 0x82 may
    # come first)
    r = Raw(v5)
    cid = uid("c2")
    r.connect(cid)
    r.send(connect_pkt(cid, v5=v5))
    got = r.expect_close()
    rc = disconnect_reason(got)
    check(v5 or rc is None, "3.1.1: DISCONNECT from the server")
    check(rc is None or rc >= 0x80, f"DISCONNECT {rc}")
    check(all(p.type != CONNACK for p in got), "a second CONNACK")
    roundtrip(v5)


@scenario()
def protocol_errors():
    b = f"pe/{token()}"
    bystander = Client("peb")
    bystander.connect()
    bystander.subscribe(f"{b}/#", 1)
    cases = [
        ("garbage first packet", False, None, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("PINGREQ before CONNECT", False, None, b"\xc0\x00"),
        ("CONNECT reserved flag", False, None, connect_pkt(uid("pe"), flags_extra=1)),
        ("5-byte remaining length", False, b"", b"\x30\xff\xff\xff\xff\x7f"),
        ("bad UTF-8 topic", False, b"", publish_pkt(f"{b}/".encode() + b"\xff\xfe", b"x")),
        ("bad UTF-8 topic", True, b"", publish_pkt(f"{b}/".encode() + b"\xc0\xaf", b"x", v5=True)),
        ("U+0000 in topic", False, b"", publish_pkt(f"{b}/a\x00b".encode(), b"x")),
        ("U+D800 in topic", True, b"", publish_pkt(f"{b}/".encode() + b"\xed\xa0\x80", b"x", v5=True)),
        ("PUBLISH QoS 3", False, b"", packet(0x36, s16(f"{b}/q3") + b"\x00\x01x")),
        ("PUBLISH QoS 3", True, b"", packet(0x36, s16(f"{b}/q3") + b"\x00\x01\x00x")),
        ("wildcard in topic name", False, b"", publish_pkt(f"{b}/+", b"x")),
        ("wildcard in topic name", True, b"", publish_pkt(f"{b}/#", b"x", v5=True)),
        ("empty topic name", False, b"", publish_pkt("", b"x")),
        ("SUBSCRIBE flags 0", False, b"", subscribe_pkt(1, [(f"{b}/s", 1)], hdr=0x80)),
        ("SUBSCRIBE no filters", False, b"", packet(0x82, b"\x00\x01")),
        ("QoS 1 PUBLISH id 0", False, b"", publish_pkt(f"{b}/id0", b"x", 1, pid=0)),
    ]
    for what, v5, after_connect, data in cases:
        label = f"{what} ({'v5' if v5 else 'v3.1.1'})"
        r = Raw(v5)
        if after_connect is not None:
            r.connect(uid("pe"))
        r.send(data)
        try:
            got = r.expect_close()
        except Fail as e:
            raise Fail(f"{label}: {e}")
        for p in got:
            ok = (p.type == DISCONNECT and v5 and p.body and p.body[0] >= 0x80) or \
                 (p.type == CONNACK and p.body[1] != 0)
            check(ok, f"{label}: got {p} before the close")
    # invalid topic filter: SUBACK failure (0x80) or close [MQTT-4.7.3-*]
    for v5 in (False, True):
        r = Raw(v5)
        r.connect(uid("pe"))
        r.send(subscribe_pkt(2, [(f"{b}/#/x", 0), (f"{b}/a+", 0)], v5))
        p = r.packet()
        if p is not None:
            check(p.type in (SUBACK, DISCONNECT), f"invalid filter: {p}")
            if p.type == SUBACK:
                i = dec_props(p.body, 2)[1] if v5 else 2
                check(all(c >= 0x80 for c in p.body[i:]), f"invalid filter granted: {p}")
            else:
                r.expect_close()
        r.close()
    bystander.quiet(0, 0.2, "a malformed PUBLISH was delivered")
    check(bystander.c.is_connected(), "an innocent client was dropped")
    t = f"{b}/ok"
    bystander.publish(t, b"fine", 1)
    check(bystander.expect(1)[0].payload == b"fine", "bystander")
    roundtrip(False)
    roundtrip(True)
    bystander.disconnect()


@scenario(cap=60)
def sys_topics():
    s = Client("sys")
    s.connect()
    s.subscribe("$SYS/broker/version", 0)
    s.subscribe("$SYS/broker/uptime", 0)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if {m.topic for m in s.msgs} >= {"$SYS/broker/version", "$SYS/broker/uptime"}:
            break
        time.sleep(0.1)
    seen = {m.topic: m.payload for m in s.msgs}
    check("$SYS/broker/version" in seen and seen["$SYS/broker/version"], "no $SYS/broker/version in 15 s")
    check("$SYS/broker/uptime" in seen and seen["$SYS/broker/uptime"], "no $SYS/broker/uptime in 15 s")
    s.disconnect()


# --- sessions across a reconnect, DUP, topic aliases to the client, back-pressure, scale ---

def persist(v5):
    """Raw.connect() arguments for a session that outlives its connection (clean 0; 5.0: a
    session expiry, without which the session would end with the connection)."""
    return dict(clean=False, props=[(SESSION_EXPIRY, 300)] if v5 else ())


def end_session(cid, v5):
    """Discard the session of cid: a clean connection (5.0: expiry 0), then DISCONNECT."""
    r = Raw(v5)
    r.connect(cid, clean=True)
    r.disconnect()


def ack_pkt(ptype, pid):
    """PUBACK, PUBREC, PUBREL (flags 0010 [MQTT-3.6.1-1]) or PUBCOMP for packet id pid."""
    return packet((ptype << 4) | (2 if ptype == PUBREL else 0), struct.pack("!H", pid))


def expect_ack(r, ptype, pid, what):
    """The next packet is the ack ptype for pid, with a success reason code (5.0)."""
    p = r.packet()
    check(p is not None, f"{what}: connection closed, expected {NAMES[ptype]} {pid}")
    check(p.type == ptype, f"{what}: got {p}, expected {NAMES[ptype]} {pid}")
    got = struct.unpack_from("!H", p.body)[0]
    check(got == pid, f"{what}: {NAMES[ptype]} for id {got}, expected {pid}")
    check(p.flags == (2 if ptype == PUBREL else 0), f"{what}: {NAMES[ptype]} flags {p.flags:x}")
    if r.v5 and len(p.body) > 2:  # 0x92: packet identifier not found, i.e. the state was lost
        check(p.body[2] < 0x80, f"{what}: {NAMES[ptype]} reason 0x{p.body[2]:02x}")
    return p


def synced(r, what):
    """PINGREQ / PINGRESP: the broker has read everything r sent before (one ordered stream)."""
    r.send(b"\xc0\x00")
    p = r.packet()
    check(p is not None and p.type == PINGRESP, f"{what}: got {p}, expected PINGRESP")


@both
def qos2_exactly_once_reconnect(v5):
    # [MQTT-4.3.3] QoS 2 is delivered exactly once, and the state of both flows belongs to
    # the session, so it survives a lost connection: [MQTT-4.4.0-1] on a reconnect with clean
    # session / clean start 0, unacknowledged PUBLISHes and PUBRELs are re-sent with their
    # original packet ids (the PUBLISH with DUP 1 [MQTT-3.3.1-1]).
    b = f"q2x/{token()}"
    s = Client("q2xs", v5)
    s.connect()
    s.subscribe(f"{b}/in", 2)

    # inbound: PUBLISH, PUBREC, connection lost; reconnect, PUBLISH again with DUP, PUBREL
    cid = uid("q2xin")
    r = Raw(v5)
    r.connect(cid, **persist(v5))
    r.send(publish_pkt(f"{b}/in", b"exactly once", 2, pid=9, v5=v5))
    expect_ack(r, PUBREC, 9, "first PUBLISH")
    r.drop()
    r = Raw(v5)
    sp, _, _ = r.connect(cid, **persist(v5))
    check(sp == 1, "publisher's reconnect: no session present")
    r.send(publish_pkt(f"{b}/in", b"exactly once", 2, pid=9, v5=v5, dup=True))
    expect_ack(r, PUBREC, 9, "PUBLISH re-sent with DUP after the reconnect")
    r.send(ack_pkt(PUBREL, 9))
    expect_ack(r, PUBCOMP, 9, "PUBREL after the reconnect")
    m = s.expect(1)[0]
    check((m.topic, m.payload, m.qos) == (f"{b}/in", b"exactly once", 2), f"got {m}")
    # after PUBCOMP the id is free again [3.1.1 2.3.1]: the same id is a new message
    r.send(publish_pkt(f"{b}/in", b"next", 2, pid=9, v5=v5))
    expect_ack(r, PUBREC, 9, "a new PUBLISH reusing the completed id")
    r.send(ack_pkt(PUBREL, 9))
    expect_ack(r, PUBCOMP, 9, "PUBREL of the new message")
    m = s.expect(1, start=1)[0]
    check(m.payload == b"next", f"a new message with a reused id: got {m}")
    s.quiet(2, QUIET, "QoS 2 message delivered twice across the publisher's reconnect")
    r.disconnect()
    end_session(cid, v5)

    # outbound: a raw subscriber with a persistent session
    cid = uid("q2xout")
    r = Raw(v5)
    r.connect(cid, **persist(v5))
    r.subscribe([(f"{b}/out/#", 2)], expect=[2])
    p = Client("q2xp", v5)
    p.connect()
    # 1. PUBREC sent, PUBREL received, connection lost before PUBCOMP: PUBREL again, not the
    #    PUBLISH (the message was delivered: the broker only waits for PUBCOMP)
    p.publish(f"{b}/out/1", b"one", 2)
    g = r.publish_of(r.packet())
    check((g["topic"], g["payload"], g["qos"], g["dup"]) == (f"{b}/out/1".encode(), b"one", 2, False),
          f"first delivery: {g}")
    pid1 = g["pid"]
    r.send(ack_pkt(PUBREC, pid1))
    expect_ack(r, PUBREL, pid1, "after PUBREC")
    r.drop()
    r = Raw(v5)
    sp, _, _ = r.connect(cid, **persist(v5))
    check(sp == 1, "subscriber's reconnect: no session present")
    pk = r.packet()
    check(pk is not None, f"after the reconnect: closed, expected PUBREL {pid1}")
    if pk.type == PUBLISH:
        raise Fail(f"after the reconnect: {r.publish_of(pk)}: the PUBLISH again, expected PUBREL "
                   f"{pid1} (PUBREC had been sent)")
    check(pk.type == PUBREL and struct.unpack_from("!H", pk.body)[0] == pid1,
          f"after the reconnect: {pk}, expected PUBREL {pid1} [MQTT-4.4.0-1]")
    r.send(ack_pkt(PUBCOMP, pid1))
    check(r.is_open(QUIET), "open")  # nothing more: the flow is complete
    # 2. connection lost before PUBREC: the same PUBLISH again, DUP 1, the same packet id
    p.publish(f"{b}/out/2", b"two", 2)
    g = r.publish_of(r.packet())
    check((g["payload"], g["qos"], g["dup"]) == (b"two", 2, False), f"second message: {g}")
    pid2 = g["pid"]
    r.drop()
    r = Raw(v5)
    sp, _, _ = r.connect(cid, **persist(v5))
    check(sp == 1, "subscriber's second reconnect: no session present")
    g2 = r.publish_of(r.packet())
    check((g2["topic"], g2["payload"], g2["qos"]) == (f"{b}/out/2".encode(), b"two", 2),
          f"re-sent: {g2}")
    check(g2["dup"], "PUBLISH re-sent on session resume without DUP [MQTT-3.3.1-1]")
    check(g2["pid"] == pid2, f"PUBLISH re-sent with id {g2['pid']}, first sent as {pid2} [MQTT-4.4.0-1]")
    r.send(ack_pkt(PUBREC, pid2))
    expect_ack(r, PUBREL, pid2, "PUBREC of the re-sent PUBLISH")
    r.send(ack_pkt(PUBCOMP, pid2))
    check(r.is_open(QUIET), "open")
    # a live message after all that: DUP 0
    p.publish(f"{b}/out/3", b"three", 2)
    g = r.publish_of(r.packet())
    check((g["payload"], g["dup"]) == (b"three", False), f"live message after the resume: {g}")
    r.send(ack_pkt(PUBREC, g["pid"]))
    expect_ack(r, PUBREL, g["pid"], "live message")
    r.send(ack_pkt(PUBCOMP, g["pid"]))
    check(r.is_open(QUIET), "open")
    r.disconnect()
    end_session(cid, v5)
    p.disconnect()
    s.disconnect()


@both
def qos1_redelivery_dup(v5):
    # [MQTT-4.4.0-1] unacknowledged QoS 1 PUBLISHes are re-sent on session resume, with DUP 1
    # [MQTT-3.3.1-1], their original packet ids and in their original order [MQTT-4.6.0-1];
    # acknowledged ones are not.
    b = f"q1d/{token()}"
    cid = uid("q1d")
    r = Raw(v5)
    r.connect(cid, **persist(v5))
    r.subscribe([(b, 1)], expect=[1])
    p = Client("q1dp", v5)
    p.connect()
    for i in range(3):
        p.publish(b, f"m{i}".encode(), 1)
    first = [r.publish_of(r.packet()) for _ in range(3)]
    check([(g["payload"], g["qos"], g["dup"]) for g in first] ==
          [(f"m{i}".encode(), 1, False) for i in range(3)], f"first deliveries: {first}")
    r.send(ack_pkt(PUBACK, first[0]["pid"]))  # m0 acknowledged, m1 and m2 not
    synced(r, "after PUBACK")
    r.drop()
    r = Raw(v5)
    sp, _, _ = r.connect(cid, **persist(v5))
    check(sp == 1, "reconnect: no session present")
    again = [r.publish_of(r.packet()) for _ in range(2)]
    check([g["payload"] for g in again] == [b"m1", b"m2"],
          f"re-sent {[g['payload'] for g in again]}, expected m1 m2 (m0 was acknowledged)")
    for g, f in zip(again, first[1:]):
        check(g["dup"], f"{g['payload']} re-sent without DUP [MQTT-3.3.1-1]")
        check(g["pid"] == f["pid"], f"{g['payload']} re-sent with id {g['pid']}, first sent as {f['pid']}")
        check(g["qos"] == 1 and g["topic"] == b.encode(), f"re-sent {g}")
        r.send(ack_pkt(PUBACK, g["pid"]))
    check(r.is_open(QUIET), "open")  # nothing else, m0 above all
    p.publish(b, b"live", 1)
    g = r.publish_of(r.packet())
    check((g["payload"], g["dup"]) == (b"live", False), f"live message after the resume: {g}")
    r.send(ack_pkt(PUBACK, g["pid"]))
    # acknowledged now: a second resume re-sends nothing
    synced(r, "after the last PUBACK")
    r.drop()
    r = Raw(v5)
    sp, _, _ = r.connect(cid, **persist(v5))
    check(sp == 1, "second reconnect: no session present")
    check(r.is_open(QUIET), "open")
    r.disconnect()
    end_session(cid, v5)
    p.disconnect()


def broker_version():
    """$SYS/broker/version (retained by mosquitto and tachyond), b"" if none within 3 s."""
    c = Client("ver")
    c.connect()
    c.subscribe("$SYS/broker/version", 0)
    try:
        v = c.expect(1, timeout=3)[0].payload
    except Fail:
        v = b""
    c.disconnect()
    return v


@scenario()
def topic_alias_server_to_client():
    # [5 3.3.2.3.4] a client that sends Topic Alias Maximum N > 0 lets the server use aliases
    # 1..N in what it sends [MQTT-3.3.2-11]; the server MAY use none. An alias-only PUBLISH
    # (empty topic) needs a mapping set earlier on the same network connection: mappings do
    # not survive the connection, and the session's queued messages after a reconnect must
    # not lean on the old ones. paho 1.6.1 does not resolve inbound aliases (it hands an empty
    # topic to on_message), so the subscriber is raw and resolves them itself.
    AMAX = 3
    b = f"tao/{token()}"
    topics = [f"{b}/t{i}" for i in range(5)]  # more topics than aliases
    version = broker_version()
    cid = uid("tao")
    used, alias_only = set(), [0]

    def read(r, amap, n, amax, what):
        """n PUBLISHes, aliases resolved with amap, the map of r's connection; PUBACKed."""
        out = []
        for k in range(n):
            pk = r.packet()
            check(pk is not None, f"{what}: closed after {k} of {n} messages")
            g = r.publish_of(pk)
            a, topic = g["props"].get(TOPIC_ALIAS), g["topic"]
            if a is not None:
                check(amax > 0, f"{what}: alias {a} sent to a client without Topic Alias Maximum")
                check(1 <= a <= amax, f"{what}: alias {a}, the client's Topic Alias Maximum is "
                                      f"{amax} [MQTT-3.3.2-8/11]")
                used.add(a)
                if topic:
                    amap[a] = topic
                else:
                    check(a in amap, f"{what}: alias-only PUBLISH with alias {a}, not set on this "
                                     f"connection (set so far: {sorted(amap)}) ({g['payload']!r})")
                    topic = amap[a]
                    alias_only[0] += 1
            check(topic, f"{what}: empty topic without an alias")
            out.append((topic.decode(), g["payload"]))
            if g["qos"]:
                r.send(ack_pkt(PUBACK, g["pid"]))
        return out

    def publish_round(p, tag):
        for t in topics:
            p.publish(t, f"{t}|{tag}".encode(), 1)

    def check_round(got, tags, what):
        for t in topics:
            mine = [pl for tt, pl in got if tt == t]
            check(mine == [f"{t}|{x}".encode() for x in tags], f"{what}: {t} got {mine}")

    r = Raw(True)
    r.connect(cid, clean=True, props=[(TOPIC_ALIAS_MAX, AMAX), (SESSION_EXPIRY, 300)])
    r.subscribe([(f"{b}/#", 1)], expect=[1])
    p = Client("taop", v5=True)
    p.connect()
    for i in range(6):
        publish_round(p, i)
    amap = {}
    check_round(read(r, amap, 6 * len(topics), AMAX, "live"), list(range(6)), "live")
    # queued while offline, read on a new connection with the same maximum ...
    r.drop()
    publish_round(p, "q1")
    r = Raw(True)
    sp, _, _ = r.connect(cid, clean=False, props=[(TOPIC_ALIAS_MAX, AMAX), (SESSION_EXPIRY, 300)])
    check(sp == 1, "reconnect: no session present")
    amap = {}  # a new connection: no aliases
    check_round(read(r, amap, len(topics), AMAX, "queued, reconnected"), ["q1"],
                "queued, reconnected")
    publish_round(p, "l1")
    check_round(read(r, amap, len(topics), AMAX, "live after the reconnect"), ["l1"],
                "live after the reconnect")
    # ... and on a connection that allows no aliases at all
    synced(r, "acks")
    r.drop()
    publish_round(p, "q2")
    r = Raw(True)
    sp, _, _ = r.connect(cid, clean=False, props=[(SESSION_EXPIRY, 300)])
    check(sp == 1, "second reconnect: no session present")
    check_round(read(r, {}, len(topics), 0, "queued, reconnected without aliases"), ["q2"],
                "queued, reconnected without aliases")
    check(r.is_open(QUIET), "open")
    r.disconnect()
    end_session(cid, True)
    p.disconnect()
    if not used:
        if version.startswith(b"mosquitto"):
            note(f"{version.decode()} assigns no outbound topic aliases (spec: MAY)")
        else:
            raise Fail(f"no outbound topic alias used ({version!r}): a client allowing {AMAX} "
                       f"got {6 * len(topics)} messages on {len(topics)} topics")
    else:
        note(f"aliases {sorted(used)} used, {alias_only[0]} alias-only PUBLISHes")


@scenario(cap=150)
def many_clients():
    # 200 connections at once (3.1.1 and 5.0 alternately), each subscribed to its own topic;
    # one publisher, one message each: every one gets its own and nothing else.
    N = 200
    b = f"many/{token()}"
    subs = []
    for i in range(N):
        c = Client(f"many{i}", v5=bool(i % 2))
        c.connect()
        subs.append(c)
    for i, c in enumerate(subs):
        c.subscribe(f"{b}/{i}", 1)
    p = Client("manyp")
    p.connect()
    infos = [p.publish(f"{b}/{i}", f"for {i}".encode(), 1, wait=False) for i in range(N)]
    for i, c in enumerate(subs):
        m = c.expect(1)[0]
        check((m.topic, m.payload, m.qos) == (f"{b}/{i}", f"for {i}".encode(), 1), f"client {i}: {m}")
    deadline = time.monotonic() + TIMEOUT
    while not all(x.is_published() for x in infos) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(all(x.is_published() for x in infos), "publisher: not every PUBLISH acknowledged")
    time.sleep(QUIET)
    extra = [(i, c.msgs[1:]) for i, c in enumerate(subs) if c.count() != 1]
    check(not extra, f"clients with other messages: {extra[:3]}")
    dropped = [i for i, c in enumerate(subs) if not c.c.is_connected() or c.disconnects]
    check(not dropped, f"clients dropped: {dropped[:10]}")
    for i, c in enumerate(subs):
        c.disconnect()
        check(c.disconnects == [0], f"client {i}: disconnect {c.disconnects}")
    p.disconnect()


def unsubscribe_pkt(pid, filters, v5=False):
    body = struct.pack("!H", pid) + (enc_props(()) if v5 else b"")
    for f in filters:
        body += s16(f)
    return packet(0xA2, body)


@both
def unsubscribe_stops_delivery(v5):
    # [MQTT-3.10.4-1] the filter (compared character by character) is removed; no new
    # messages for it [MQTT-3.10.4-2]; an UNSUBACK even when nothing matched [MQTT-3.10.4-5]
    # (5.0: reason 0x11 No subscription existed, 0x00 for the removed one [5 3.11.3]); the
    # session keeps only what is left.
    b = f"uns/{token()}"
    cid = uid("uns")
    sx = props(PacketTypes.CONNECT, SessionExpiryInterval=300) if v5 else None
    s = Client("uns", v5, cid=cid, clean=False)
    s.connect(props=sx, clean=False)
    s.subscribe(f"{b}/a", 1)
    s.subscribe(f"{b}/b/#", 1)
    p = Client("unsp", v5)
    p.connect()
    p.publish(f"{b}/a", b"a1", 1)
    p.publish(f"{b}/b/x", b"b1", 1)
    got = s.expect(2)
    check(sorted(m.payload for m in got) == [b"a1", b"b1"], f"before: {got}")
    s.unsubscribe(f"{b}/a")
    s.unsubscribe(f"{b}/b/+")  # not the same filter as b/#, though it matches the same topics
    p.publish(f"{b}/a", b"a2", 1)
    p.publish(f"{b}/b/x", b"b2", 1)
    m = s.expect(1, start=2)[0]
    check(m.payload == b"b2", f"after UNSUBSCRIBE: {m}")
    s.quiet(3, QUIET, "delivered after UNSUBSCRIBE")
    # offline: only the remaining subscription queues
    s.disconnect()
    p.publish(f"{b}/a", b"a3", 1)
    p.publish(f"{b}/b/x", b"b3", 1)
    s = Client("uns", v5, cid=cid, clean=False)
    sp, _, _ = s.connect(props=sx, clean=False)
    check(sp == 1, "reconnect: no session present")
    m = s.expect(1)[0]
    check(m.payload == b"b3", f"queued: {m}")
    s.quiet(1, QUIET, "the session kept an unsubscribed filter")
    s.disconnect()
    end_session(cid, v5)
    # the UNSUBACK itself, raw: one for the id, codes in 5.0
    r = Raw(v5)
    r.connect(uid("unsr"))
    r.subscribe([(f"{b}/r", 1)], expect=[1])
    r.send(unsubscribe_pkt(0x1234, [f"{b}/r", f"{b}/never"], v5))
    u = r.expect(UNSUBACK)
    check(u.flags == 0 and struct.unpack_from("!H", u.body)[0] == 0x1234, f"UNSUBACK {u}")
    if v5:
        i = dec_props(u.body, 2)[1]
        check(list(u.body[i:]) == [0x00, 0x11], f"UNSUBACK codes {list(u.body[i:])}, expected [0, 0x11]")
    else:
        check(len(u.body) == 2, f"3.1.1 UNSUBACK with a payload: {u}")
    p.publish(f"{b}/r", b"r", 1)
    check(r.is_open(QUIET), "open")
    r.disconnect()
    p.disconnect()


@both
def subscription_upgrade(v5):
    # [MQTT-3.8.4-3] a SUBSCRIBE with a filter identical to an existing subscription's
    # replaces it: one copy, at the new QoS (up and down); 5.0: the options are replaced too.
    t = f"up/{token()}"
    s = Client("ups", v5)
    s.connect()
    p = Client("upp", v5)
    p.connect()
    n = 0
    for q, flt in ((0, t), (2, t), (1, t), (2, t), (0, f"{t}/+"), (1, f"{t}/+")):
        s.subscribe(flt, q)
        topic = t if flt == t else f"{t}/x"
        p.publish(topic, f"{flt}@{q}".encode(), 2)
        m = s.expect(1, start=n)[0]
        check((m.payload, m.qos) == (f"{flt}@{q}".encode(), q),
              f"subscribed {flt} at QoS {q}: got {m.payload!r} at QoS {m.qos}")
        n += 1
        s.quiet(n, 0.3, f"more than one copy after re-subscribing {flt} at QoS {q}")
    if v5:
        # no local 1 replaced by no local 0: own messages come again, once
        f = f"{t}-nl"  # matched by none of the filters above
        s.subscribe(f, options=SubscribeOptions(qos=1, noLocal=True))
        s.publish(f, b"own1", 1)
        s.quiet(n, 0.5, "no local 1: own message delivered")
        s.subscribe(f, options=SubscribeOptions(qos=1, noLocal=False))
        s.publish(f, b"own2", 1)
        try:
            got = s.expect(1, start=n)
        except Fail:
            got = []
        # mosquitto 2.0.11 replaces the QoS of the subscription, not its options
        if deviation("resubscribe_options", got,
                     "re-SUBSCRIBE with no local 0 kept no local 1 [MQTT-3.8.4-3]"):
            check(got[0].payload == b"own2", f"no local replaced by 0: {got[0]}")
            s.quiet(n + 1, 0.3, "two copies")
    s.disconnect()
    p.disconnect()


# Last: a broker that runs out of memory here may stop serving anyone, and the scenarios
# after it would only show that again.
@scenario(cap=90)
def slow_subscriber_backpressure():
    # A QoS 1 subscriber with a persistent session that stops reading its socket: what it
    # cannot take is queued for it up to the broker's queue limit (tachyond: mqtt.max_queued,
    # mosquitto: max_queued_messages, both 100000 in the test configs), the publisher is
    # neither disconnected nor stalled below that limit; when the subscriber reads again,
    # every message comes, in order [MQTT-4.6.0-6], without gaps or duplicates.
    N, SIZE, WINDOW = 5000, 1024, 50
    b = f"slow/{token()}"
    cid = uid("slow")
    s = Raw(rcvbuf=4096)  # a small window, that fills at once
    s.connect(cid, clean=False, keepalive=300)
    s.subscribe([(b, 1)], expect=[1])
    pub = Raw()
    pub.connect(uid("slowp"), keepalive=300)
    pad = bytes(random.getrandbits(8) for _ in range(SIZE - 4))

    def send(data):
        try:
            pub.s.sendall(data)
        except OSError as e:
            raise Fail(f"publisher: send failed after {acked} acknowledged: {e}{still_serving()}")

    def still_serving():
        """For a failure message: does the broker still take a new connection?"""
        try:
            r = Raw()
            r.connect(uid("slowx"))
            r.disconnect()
            return ""
        except Exception as e:
            return f"; the broker takes no new connection either ({type(e).__name__}: {e})"
    t0 = time.monotonic()
    deadline = t0 + 30
    sent, acked, inflight = 0, 0, set()
    while acked < N:
        batch = b""
        while sent < N and len(inflight) < WINDOW:
            pid = sent % 65535 + 1
            batch += publish_pkt(b, struct.pack("!I", sent) + pad, 1, pid=pid)
            inflight.add(pid)
            sent += 1
        if batch:
            pub.s.settimeout(TIMEOUT)
            send(batch)
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail(f"publisher: {acked} of {N} PUBLISHes acknowledged in 30 s while the "
                       f"subscriber does not read{still_serving()}")
        try:
            pk = pub.packet(min(left, TIMEOUT))
        except Fail:
            raise Fail(f"publisher: no PUBACK for {TIMEOUT} s after {acked} of {N} (stalled "
                       f"while the subscriber does not read, below the queue limit)"
                       f"{still_serving()}")
        if pk is None:
            raise Fail(f"publisher disconnected after {acked} of {N} PUBACKs{still_serving()}")
        check(pk.type == PUBACK, f"publisher got {pk}")
        pid = struct.unpack_from("!H", pk.body)[0]
        check(pid in inflight, f"PUBACK for id {pid}, not in flight")
        inflight.discard(pid)
        acked += 1
    t1 = time.monotonic()
    synced(pub, "publisher after the last PUBACK")
    # now the subscriber reads and acknowledges, one PUBACK per PUBLISH
    got, dups = 0, 0
    deadline = time.monotonic() + 30
    while got < N:
        left = deadline - time.monotonic()
        check(left > 0, f"subscriber: {got} of {N} in 30 s")
        try:
            pk = s.packet(min(left, TIMEOUT))
        except Fail:
            raise Fail(f"subscriber: nothing for {TIMEOUT} s after message {got - 1} of {N}")
        check(pk is not None, f"subscriber disconnected after {got} of {N}")
        g = s.publish_of(pk)
        check(len(g["payload"]) == SIZE and g["payload"][4:] == pad, f"message {got}: payload")
        i = struct.unpack_from("!I", g["payload"])[0]
        check(g["qos"] == 1, f"message {i} at QoS {g['qos']}")
        if i < got and g["dup"]:
            dups += 1  # 3.1.1 tolerated a re-send; counted, not failed
        else:
            check(i == got, f"subscriber: message {i} after {got - 1}: "
                            f"{'a gap' if i > got else 'a duplicate'} (DUP {int(g['dup'])})")
            got += 1
        s.send(ack_pkt(PUBACK, g["pid"]))
    t2 = time.monotonic()
    check(s.is_open(QUIET), "open")
    if dups:
        note(f"{dups} PUBLISHes re-sent on the same connection")
    note(f"publisher {N} x {SIZE} B acknowledged in {t1 - t0:.1f} s, subscriber drained them "
         f"in {t2 - t1:.1f} s")
    synced(pub, "publisher at the end")
    pub.disconnect()
    s.disconnect()
    end_session(cid, False)


# ---------------------------------------------------------------------------------------------

def run(name, fn, cap):
    box = {}
    CURRENT[0] = name

    def body():
        try:
            fn()
            box["ok"] = True
        except Fail as e:
            box["why"] = str(e)
        except Exception as e:
            box["why"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        finally:
            cleanup()
    th = threading.Thread(target=body, daemon=True)
    t0 = time.monotonic()
    th.start()
    th.join(cap)
    dt = time.monotonic() - t0
    if th.is_alive():
        return False, f"hung for {cap} s", dt
    return box.get("ok", False), box.get("why"), dt


def main():
    global HOST, PORT
    args = sys.argv[1:]
    if args == ["-l"]:
        print("\n".join(n for n, _, _ in SCENARIOS))
        return 0
    if len(args) < 2:
        print(__doc__ or "usage: mqtt_scenarios.py HOST PORT [SCENARIO...]", file=sys.stderr)
        return 2
    HOST, PORT = args[0], int(args[1])
    names = {n for n, _, _ in SCENARIOS}
    unknown = [a for a in args[2:] if a not in names]
    if unknown:
        print(f"unknown scenario(s): {' '.join(unknown)}; -l lists them", file=sys.stderr)
        return 2
    todo = [s for s in SCENARIOS if not args[2:] or s[0] in args[2:]]
    failed = 0
    t0 = time.monotonic()
    for name, fn, cap in todo:
        ok, why, dt = run(name, fn, cap)
        if ok:
            print(f"ok: {name} ({dt:.1f} s)", flush=True)
        else:
            failed += 1
            print(f"FAIL: {name}: {why}", flush=True)
    print(f"{len(todo) - failed} passed, {failed} failed in {time.monotonic() - t0:.1f} s", flush=True)
    # a hung scenario's threads may still be around: do not wait for them
    sys.stdout.flush()
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
