#!/usr/bin/python3
# AMQP 0-9-1 scenarios against a broker, as its users see it: the client libraries written
# against RabbitMQ, unchanged: pika 1.2 (BlockingConnection and SelectConnection), py-amqp 5.1
# and kombu 5.2, amqp-tools (amqp-declare-queue, amqp-publish, amqp-consume, amqp-get,
# amqp-delete-queue), a small librabbitmq C program (amqp_librabbitmq.c), paho-mqtt for the
# MQTT<->AMQP bridge; and a raw socket where a library cannot misbehave or watch closely
# enough (the handshake and tune, heartbeats, channel_max, frame_max, malformed frames, the
# exact reply codes of connection.close).
#
# usage: amqp_scenarios.py HOST PORT [SCENARIO...]    (default: all; -l lists them)
# Prints "ok: NAME" or "FAIL: NAME: WHY" per scenario, "note: ..." on stderr where the broker
# chose one of several behaviours the specification (or RabbitMQ's documentation) allows, or
# skipped a check, and exits 1 if any failed.
#
# Environment:
#   AMQP_MQTT_PORT   the broker's MQTT port, for the bridge scenarios (default 1883). Not
#                    listening: the bridge scenarios fail, unless the broker is RabbitMQ
#                    (a note: its MQTT plugin is optional).
#   AMQP_C_CLIENT    the built amqp_librabbitmq program; unset, it is built with cc into a
#                    temporary directory (needs librabbitmq-dev).
#
# Every scenario uses its own queue and exchange names (a random token; most queues exclusive
# or deleted at the end), every wait is bounded (TIMEOUT seconds for anything that should
# happen; a scenario that still hangs, say on a blocking pika call the broker never answers,
# is abandoned after its cap), so scenarios neither hang nor disturb each other.
# Run it with /usr/bin/python3: the libraries live in /usr/lib/python3/dist-packages.
#
# References: [spec x.y] is the AMQP 0-9-1 specification (amqp0-9-1.pdf) and its XML
# (amqp0-9-1.stripped.extended.xml, RabbitMQ's extensions included); "RabbitMQ" means what
# rabbitmq.com documents (spec.html, the extension pages) and what 3.10 does.
#
# Known deviations: a reference broker that breaks a rule of the specification fails here.
# AMQP_KNOWN_DEVIATIONS="key,key" in the environment turns those checks into notes (and the
# scenario goes on with what it can still check); amqp_vs_rabbitmq.sh sets the keys that
# RabbitMQ 3.10 needs. Never set it for tachyond. The keys:
#   unknown_method    a method frame with an unknown class or method id: the socket is closed
#                     without connection.close (RabbitMQ's reader crashes on it); the spec
#                     wants 503 COMMAND_INVALID or 540 NOT_IMPLEMENTED
#   bad_field_type    a field table with an unknown type tag: the same (closed, no close)
#   header_decode     a content header whose properties run past the frame: 541
#                     INTERNAL_ERROR instead of a 501 FRAME_ERROR / 502 SYNTAX_ERROR
#   channel_max       a channel number above the negotiated channel-max is opened: RabbitMQ
#                     counts open channels (530 when one more than channel-max is opened),
#                     it does not check the number itself
import hashlib
import os
import random
import shutil
import socket
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import pika
import pika.exceptions as pex

HOST = "127.0.0.1"
PORT = 5672
MQTT_PORT = int(os.environ.get("AMQP_MQTT_PORT", "1883"))
TIMEOUT = 5.0  # the longest we wait for anything that should happen
QUIET = 1.0  # how long we watch for something that should not happen
HERE = os.path.dirname(os.path.abspath(__file__))


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


CURRENT = ["?"]  # the scenario running
KNOWN = {k.strip() for k in os.environ.get("AMQP_KNOWN_DEVIATIONS", "").split(",") if k.strip()}
BROKER = {}  # server-properties of connection.start, read once in main()


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


def is_rabbitmq():
    return BROKER.get("product") == "RabbitMQ"


def token():
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))


_seq = [0]


def uid(kind):
    _seq[0] += 1
    return f"tq-{kind}-{token()}-{_seq[0]}"


# ---------------------------------------------------------------------------------------------
# raw AMQP 0-9-1 over a socket

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
CONNECTION_CLOSE, CHANNEL_CLOSE = (10, 50), (20, 40)


def shortstr(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes([len(s)]) + s


def longstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!I", len(s)) + s


def enc_value(v):
    if isinstance(v, bool):
        return b"t" + bytes([v])
    if isinstance(v, int):
        return b"l" + struct.pack("!q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, (list, tuple)):
        body = b"".join(enc_value(x) for x in v)
        return b"A" + struct.pack("!I", len(body)) + body
    if v is None:
        return b"V"
    raise ValueError(v)


def table(d):
    body = b"".join(shortstr(k) + enc_value(v) for k, v in (d or {}).items())
    return struct.pack("!I", len(body)) + body


class Reader:
    def __init__(self, b, i=0):
        self.b, self.i = b, i

    def take(self, n):
        check(self.i + n <= len(self.b), "truncated method from the broker")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def u64(self):
        return struct.unpack("!Q", self.take(8))[0]

    def shortstr(self):
        return self.take(self.u8()).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.u32())

    def table(self):
        end = self.u32() + self.i
        out = {}
        while self.i < end:
            k = self.shortstr()
            out[k] = self.value()
        return out

    def value(self):
        t = chr(self.u8())
        fixed = {"b": "!b", "B": "!B", "s": "!h", "u": "!H", "I": "!i", "i": "!I", "l": "!q",
                 "L": "!Q", "f": "!f", "d": "!d", "T": "!Q"}
        if t in fixed:
            f = fixed[t]
            return struct.unpack(f, self.take(struct.calcsize(f)))[0]
        if t == "t":
            return bool(self.u8())
        if t == "S":
            return self.longstr().decode("utf-8", "replace")
        if t == "x":
            return self.longstr()
        if t == "F":
            return self.table()
        if t == "A":
            end = self.u32() + self.i
            arr = []
            while self.i < end:
                arr.append(self.value())
            return arr
        if t == "D":
            scale = self.u8()
            return struct.unpack("!i", self.take(4))[0] / 10 ** scale
        if t == "V":
            return None
        raise Fail(f"unknown field type {t!r} from the broker")


class Frame:
    def __init__(self, ftype, ch, payload):
        self.type, self.ch, self.payload = ftype, ch, payload
        self.cm = struct.unpack_from("!HH", payload) if ftype == METHOD and len(payload) >= 4 else None

    def args(self):
        return Reader(self.payload, 4)

    def is_method(self, cls, mid):
        return self.cm == (cls, mid)

    def __repr__(self):
        if self.cm:
            return f"<method {self.cm[0]}.{self.cm[1]} ch{self.ch} {self.payload[4:40].hex()}>"
        return f"<frame type {self.type} ch{self.ch} {len(self.payload)} bytes>"


class Closed(Exception):
    pass


class Raw:
    """One AMQP connection on a plain socket, for what a client library cannot do or show."""

    def __init__(self, timeout=TIMEOUT):
        self.s = socket.create_connection((HOST, PORT), timeout)
        self.s.settimeout(timeout)
        self.buf = b""
        self.frame_max = 131072
        self.start = None
        self.before = []
        _live.append(self)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError as e:
            raise Closed(str(e))

    @staticmethod
    def frame(ftype, ch, payload, end=FRAME_END):
        return struct.pack("!BHI", ftype, ch, len(payload)) + payload + bytes([end])

    def method(self, ch, cls, mid, args=b""):
        self.send(self.frame(METHOD, ch, struct.pack("!HH", cls, mid) + args))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"nothing from the broker within {TIMEOUT} s")
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                raise Fail(f"nothing from the broker within {TIMEOUT} s")
            except OSError as e:
                raise Closed(str(e))
            if not d:
                raise Closed("EOF")
            self.buf += d

    def raw_bytes(self, n, timeout=TIMEOUT):
        self._fill(n, time.monotonic() + timeout)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        self._fill(7, deadline)
        ftype, ch, size = struct.unpack_from("!BHI", self.buf)
        self._fill(7 + size + 1, deadline)
        payload, end = self.buf[7:7 + size], self.buf[7 + size]
        self.buf = self.buf[8 + size:]
        check(end == FRAME_END, f"frame end 0x{end:02x} from the broker")
        return Frame(ftype, ch, payload)

    def read_method(self, timeout=TIMEOUT):
        while True:
            f = self.read(timeout)
            if f.type != HEARTBEAT:
                return f

    def expect(self, cls, mid, ch=None, timeout=TIMEOUT):
        f = self.read_method(timeout)
        if f.is_method(*CONNECTION_CLOSE) and (cls, mid) != CONNECTION_CLOSE:
            a = f.args()
            raise Fail(f"connection.close {a.u16()} {a.shortstr()} instead of {cls}.{mid}")
        if f.is_method(*CHANNEL_CLOSE) and (cls, mid) != CHANNEL_CLOSE:
            a = f.args()
            raise Fail(f"channel.close {a.u16()} {a.shortstr()} instead of {cls}.{mid}")
        check(f.is_method(cls, mid) and (ch is None or f.ch == ch),
              f"expected method {cls}.{mid}, got {f}")
        return f

    def hello(self, mechanism="PLAIN", user="guest", password="guest", caps=True):
        """Protocol header, connection.start, start-ok."""
        self.send(PROTOCOL_HEADER)
        f = self.expect(10, 10)
        a = f.args()
        major, minor = a.u8(), a.u8()
        props = a.table()
        mechs = a.longstr().decode().split()
        locales = a.longstr().decode().split()
        self.start = dict(version=(major, minor), props=props, mechanisms=mechs, locales=locales)
        if mechanism == "PLAIN":
            resp = f"\0{user}\0{password}".encode()
        elif mechanism == "AMQPLAIN":
            resp = table({"LOGIN": user, "PASSWORD": password})[4:]
        else:
            resp = b"whatever"
        cprops = {"product": "tachyon amqp_scenarios.py"}
        if caps:
            cprops["capabilities"] = {"authentication_failure_close": True,
                                      "consumer_cancel_notify": True, "basic.nack": True,
                                      "publisher_confirms": True, "connection.blocked": True}
        self.method(0, 10, 11, table(cprops) + shortstr(mechanism) + longstr(resp) + shortstr("en_US"))

    def handshake(self, channel_max=None, frame_max=None, heartbeat=0, vhost="/", **kw):
        """hello, tune/tune-ok (None: the server's value), open/open-ok. Returns the server's
        tune (channel_max, frame_max, heartbeat)."""
        self.hello(**kw)
        f = self.expect(10, 30)
        a = f.args()
        tune = (a.u16(), a.u32(), a.u16())
        cm = tune[0] if channel_max is None else channel_max
        fm = tune[1] if frame_max is None else frame_max
        self.frame_max = fm or 131072
        self.method(0, 10, 31, struct.pack("!HIH", cm, fm, heartbeat))
        self.method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\0")
        self.expect(10, 41)
        return tune

    def channel_open(self, ch):
        self.method(ch, 20, 10, shortstr(""))
        self.expect(20, 11, ch)

    def expect_close(self, timeout=TIMEOUT):
        """Read until connection.close (answered with close-ok; returns (code, text, class,
        method)) or the socket closes (returns None). Frames before it are in self.before."""
        self.before = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.read(max(0.01, deadline - time.monotonic()))
            except Closed:
                return None
            except Fail:
                raise Fail(f"connection still open after {timeout} s (got {self.before[:4]})")
            if f.is_method(*CONNECTION_CLOSE):
                a = f.args()
                r = (a.u16(), a.shortstr(), a.u16(), a.u16())
                try:
                    self.method(0, 10, 51)
                    self.read(2)  # the broker closes the socket after close-ok
                except (Closed, Fail):
                    pass
                return r
            self.before.append(f)

    def expect_channel_close(self, ch, timeout=TIMEOUT):
        f = self.read_method(timeout)
        if f.is_method(*CONNECTION_CLOSE):
            a = f.args()
            raise Fail(f"connection.close {a.u16()} {a.shortstr()} instead of a channel.close")
        check(f.is_method(*CHANNEL_CLOSE) and f.ch == ch, f"expected channel.close on {ch}, got {f}")
        a = f.args()
        r = (a.u16(), a.shortstr(), a.u16(), a.u16())
        self.method(ch, 20, 41)
        return r

    def queue_declare(self, ch, name, exclusive=True, args=None):
        self.method(ch, 50, 10, struct.pack("!H", 0) + shortstr(name)
                    + bytes([exclusive << 2]) + table(args))
        a = self.expect(50, 11, ch).args()
        return a.shortstr(), a.u32(), a.u32()

    def publish(self, ch, exchange, rkey, body, props=b"\0\0", mandatory=False, immediate=False,
                body_frames=None):
        self.method(ch, 60, 40, struct.pack("!H", 0) + shortstr(exchange) + shortstr(rkey)
                    + bytes([int(mandatory) | int(immediate) << 1]))
        self.send(self.frame(HEADER, ch, struct.pack("!HHQ", 60, 0, len(body)) + props))
        if body_frames is None:
            step = self.frame_max - 8
            body_frames = [body[i:i + step] for i in range(0, len(body), step)]
        for b in body_frames:
            self.send(self.frame(BODY, ch, b))

    def get(self, ch, queue):
        """basic.get no-ack: (body, [body frame sizes]) or None (get-empty)."""
        self.method(ch, 60, 70, struct.pack("!H", 0) + shortstr(queue) + b"\1")
        f = self.read_method()
        if f.is_method(60, 72):
            return None
        check(f.is_method(60, 71), f"basic.get: {f}")
        h = self.read()
        check(h.type == HEADER and h.ch == ch, f"content header expected, got {h}")
        size = struct.unpack_from("!Q", h.payload, 4)[0]
        body, sizes = b"", []
        while len(body) < size:
            b = self.read()
            check(b.type == BODY and b.ch == ch, f"content body expected, got {b}")
            body += b.payload
            sizes.append(len(b.payload))
        check(len(body) == size, f"body of {len(body)} bytes, header said {size}")
        return body, sizes


# ---------------------------------------------------------------------------------------------
# pika, blocking, every wait bounded; names cleaned up after each scenario

_live = []  # connections to close after the scenario
_queues = []  # queues and exchanges to delete after the scenario
_exchanges = []


def params(user="guest", password="guest", **kw):
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("socket_timeout", TIMEOUT)
    kw.setdefault("stack_timeout", 2 * TIMEOUT)
    kw.setdefault("blocked_connection_timeout", 3 * TIMEOUT)
    return pika.ConnectionParameters(HOST, PORT, credentials=pika.PlainCredentials(user, password), **kw)


def connect(**kw):
    c = pika.BlockingConnection(params(**kw))
    _live.append(c)
    return c


def cleanup():
    while _live:
        c = _live.pop()
        try:
            if isinstance(c, pika.BlockingConnection):
                if c.is_open:
                    c.close()
            else:
                c.close()
        except Exception:
            pass
    if not (_queues or _exchanges):
        return
    try:
        c = pika.BlockingConnection(params())
        ch = None
        for kind, names in (("q", _queues), ("x", _exchanges)):
            while names:
                n = names.pop()
                try:
                    if ch is None or not ch.is_open:
                        ch = c.channel()
                    (ch.queue_delete if kind == "q" else ch.exchange_delete)(n)
                except Exception:
                    pass
        c.close()
    except Exception:
        pass


def queue(ch, name=None, **kw):
    """Declare a queue (a fresh name by default) to be deleted after the scenario."""
    name = uid("q") if name is None else name
    r = ch.queue_declare(name, **kw)
    if not kw.get("exclusive"):
        _queues.append(r.method.queue)
    return r.method.queue


def exchange(ch, etype="direct", name=None, **kw):
    name = uid("x") if name is None else name
    ch.exchange_declare(name, etype, **kw)
    _exchanges.append(name)
    return name


def pump(conn, pred, timeout=TIMEOUT, why="timed out"):
    """Process pika's events until pred() holds; Fail(why) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail(why() if callable(why) else why)
        conn.process_data_events(time_limit=min(left, 0.05))


def idle(conn, secs=QUIET):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=min(0.05, max(0, deadline - time.monotonic())))


class Sink:
    """A consumer's messages: (method, properties, body)."""

    def __init__(self, conn, ch, q, auto_ack=True, **kw):
        self.conn, self.ch, self.msgs = conn, ch, []
        self.cancelled = []
        self.tag = ch.basic_consume(q, self._on, auto_ack=auto_ack, **kw)

    def _on(self, ch, method, props, body):
        self.msgs.append((method, props, body))

    def expect(self, n, timeout=TIMEOUT):
        pump(self.conn, lambda: len(self.msgs) >= n, timeout,
             lambda: f"{len(self.msgs)} of {n} messages on {self.tag}")
        return self.msgs[:n]

    def bodies(self):
        return [m[2] for m in self.msgs]


def chan_error(code, fn, *a, **kw):
    """fn(...) must close the channel with code (a channel exception)."""
    try:
        fn(*a, **kw)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == code, f"channel.close {e.reply_code} {e.reply_text}, expected {code}")
        return e.reply_text
    except pex.ConnectionClosedByBroker as e:
        raise Fail(f"connection.close {e.reply_code} {e.reply_text}, expected channel.close {code}")
    raise Fail(f"no channel.close {code}")


def conn_error(codes, fn, *a, **kw):
    """fn(...) must close the connection with one of codes (a connection exception)."""
    codes = (codes,) if isinstance(codes, int) else codes
    try:
        fn(*a, **kw)
    except pex.ConnectionClosedByBroker as e:
        check(e.reply_code in codes, f"connection.close {e.reply_code} {e.reply_text}, expected {codes}")
        return e.reply_code
    except pex.ChannelClosedByBroker as e:
        raise Fail(f"channel.close {e.reply_code} {e.reply_text}, expected connection.close {codes}")
    raise Fail(f"no connection.close {codes}")


def count(ch, q):
    """(ready messages, consumers) of q, by a passive declare."""
    r = ch.queue_declare(q, passive=True)
    return r.method.message_count, r.method.consumer_count


def gone(conn, q, timeout=TIMEOUT, kind="queue"):
    """Wait until a passive declare of q says 404 (each try on a fresh channel)."""
    deadline = time.monotonic() + timeout
    while True:
        ch = conn.channel()
        try:
            if kind == "queue":
                ch.queue_declare(q, passive=True)
            else:
                ch.exchange_declare(q, passive=True)
        except pex.ChannelClosedByBroker as e:
            check(e.reply_code == 404, f"passive declare of {q}: {e.reply_code} {e.reply_text}")
            return
        ch.close()
        if time.monotonic() > deadline:
            raise Fail(f"{kind} {q} still there after {timeout} s")
        time.sleep(0.1)


def exists(conn, q, kind="queue"):
    ch = conn.channel()
    try:
        if kind == "queue":
            ch.queue_declare(q, passive=True)
        else:
            ch.exchange_declare(q, passive=True)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == 404, f"passive declare of {q}: {e.reply_code} {e.reply_text}")
        return False
    ch.close()
    return True


def get_all(ch, q, limit=10000):
    out = []
    while len(out) < limit:
        m, p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append((m, p, b))
    return out


def get1(ch, q, auto_ack=True, timeout=TIMEOUT):
    """basic.get until a message comes (a publish on another channel may still be on its way):
    (method, properties, body); Fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        m, p, b = ch.basic_get(q, auto_ack=auto_ack)
        if m is not None:
            return m, p, b
        check(time.monotonic() < deadline, f"basic.get {q}: nothing within {timeout} s")
        time.sleep(0.02)


def roundtrip(what="broker"):
    """The broker still serves: a fresh connection declares, publishes, gets."""
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.basic_publish("", q, b"still here")
    m = None
    deadline = time.monotonic() + TIMEOUT
    while m is None and time.monotonic() < deadline:
        m, _, body = ch.basic_get(q, auto_ack=True)
        if m is None:
            time.sleep(0.02)
    check(m is not None and body == b"still here", f"{what}: round trip failed")
    c.close()


# ---------------------------------------------------------------------------------------------
# scenarios

SCENARIOS = []


def scenario(cap=60):
    def reg(f):
        SCENARIOS.append((f.__name__, f, cap))
        return f
    return reg


# --- connection --------------------------------------------------------------------------

CAPABILITIES = ["publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                "authentication_failure_close", "per_consumer_qos"]


@scenario()
def connection_plain():
    r = Raw()
    tune = r.handshake()
    st = r.start
    check(st["version"] == (0, 9), f"connection.start version {st['version']}")
    check("PLAIN" in st["mechanisms"] and "AMQPLAIN" in st["mechanisms"],
          f"mechanisms {st['mechanisms']}")
    check("en_US" in st["locales"], f"locales {st['locales']}")
    caps = st["props"].get("capabilities", {})
    missing = [c for c in CAPABILITIES if caps.get(c) is not True]
    check(not missing, f"capabilities missing: {missing} (got {caps})")
    for k in ("product", "version", "platform"):
        check(k in st["props"], f"no {k} in server-properties")
    check(tune[1] == 0 or tune[1] >= 4096, f"frame_max {tune[1]} below 4096")
    r.channel_open(1)
    q, _, _ = r.queue_declare(1, "")
    r.publish(1, "", q, b"raw")
    got = r.get(1, q)
    check(got and got[0] == b"raw", f"basic.get: {got}")
    r.method(0, 10, 50, struct.pack("!H", 200) + shortstr("bye") + struct.pack("!HH", 0, 0))
    r.expect(10, 51)
    # pika, PLAIN
    c = connect()
    caps = c._impl.server_capabilities
    check(all(caps.get(k) for k in CAPABILITIES), f"pika sees capabilities {caps}")
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.basic_publish("", q, b"pika", pika.BasicProperties(content_type="text/plain"))
    m, p, b = ch.basic_get(q, auto_ack=True)
    check(b == b"pika" and p.content_type == "text/plain", f"pika get: {m} {p} {b}")
    c.close()


@scenario()
def connection_amqplain():
    import amqp
    r = Raw()
    r.handshake(mechanism="AMQPLAIN")
    r.channel_open(1)
    r.close()
    c = amqp.Connection(host=f"{HOST}:{PORT}", userid="guest", password="guest",
                        login_method="AMQPLAIN", connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                        write_timeout=TIMEOUT)
    _live.append(c)
    c.connect()
    ch = c.channel()
    q, _, _ = ch.queue_declare("", exclusive=True)
    ch.basic_publish(amqp.Message(b"amqplain", content_type="text/plain",
                                  application_headers={"k": "v", "n": 7}), exchange="", routing_key=q)
    m = None
    deadline = time.monotonic() + TIMEOUT
    while m is None and time.monotonic() < deadline:
        m = ch.basic_get(q, no_ack=True)
    check(m is not None and m.body == b"amqplain", f"py-amqp basic_get: {m}")
    check(m.properties.get("application_headers") == {"k": "v", "n": 7},
          f"headers {m.properties.get('application_headers')}")
    c.close()


@scenario()
def connection_refused():
    # raw: PLAIN and AMQPLAIN with a wrong password; an unknown user
    for mech, user, pw in (("PLAIN", "guest", "wrong"), ("AMQPLAIN", "guest", "wrong"),
                           ("PLAIN", "tq-nobody", "guest")):
        r = Raw()
        r.hello(mechanism=mech, user=user, password=pw)
        got = r.expect_close()
        check(got is not None, f"{mech} {user}/{pw}: socket closed without connection.close "
                               f"(the client announced authentication_failure_close)")
        check(got[0] == 403 and got[1].startswith("ACCESS_REFUSED"),
              f"{mech} {user}/{pw}: connection.close {got}")
        check(not any(f.is_method(10, 30) for f in r.before), f"{mech}: connection.tune sent")
        r.close()
    # without authentication_failure_close the server may just close the socket [spec 10.11]
    r = Raw()
    r.hello(password="wrong", caps=False)
    got = r.expect_close()
    check(got is None or got[0] == 403, f"no capability: {got}")
    # an unknown vhost: 530 NOT_ALLOWED
    r = Raw()
    r.hello()
    a = r.expect(10, 30).args()
    r.method(0, 10, 31, struct.pack("!HIH", a.u16(), a.u32(), 0))
    r.method(0, 10, 40, shortstr(f"/{token()}") + shortstr("") + b"\0")
    got = r.expect_close()
    check(got is not None and got[0] == 530, f"unknown vhost: {got}")
    # pika
    try:
        connect(password="wrong")
        raise Fail("pika logged in with a wrong password")
    except (pex.ProbableAuthenticationError, pex.AuthenticationError) as e:
        note(f"pika: {type(e).__name__}")
    except pex.ConnectionClosedByBroker as e:
        check(e.reply_code == 403, f"pika: connection.close {e.reply_code} {e.reply_text}")
    # librabbitmq
    out = c_client("refused")
    check(out.startswith("ok:") and "403" in out, f"librabbitmq: {out}")
    roundtrip()


@scenario()
def connection_heartbeat():
    r = Raw()
    r.hello()
    f = r.expect(10, 30)
    a = f.args()
    tune = (a.u16(), a.u32(), a.u16())
    note(f"connection.tune proposes channel_max {tune[0]} frame_max {tune[1]} heartbeat {tune[2]}")
    r.method(0, 10, 31, struct.pack("!HIH", tune[0], tune[1], 1))
    r.method(0, 10, 40, shortstr("/") + shortstr("") + b"\0")
    r.expect(10, 41)
    # we send heartbeats for 3 s: the broker sends them too, and keeps us
    t0 = time.monotonic()
    beats = 0
    while time.monotonic() - t0 < 3:
        r.send(r.frame(HEARTBEAT, 0, b""))
        try:
            f = r.read(0.5)
        except Fail:
            continue
        check(f.type == HEARTBEAT and f.ch == 0, f"frame {f} on an idle connection")
        check(len(f.payload) == 0, "heartbeat with a payload")
        beats += 1
    check(beats >= 2, f"{beats} heartbeat(s) from the broker in 3 s at heartbeat 1")
    # silence: dropped after about two intervals
    t0 = time.monotonic()
    got = r.expect_close(timeout=8)
    dt = time.monotonic() - t0
    check(dt < 8, "a silent client with heartbeat 1 not dropped within 8 s")
    check(got is None or got[0] in (501, 320), f"heartbeat timeout: {got}")
    note(f"silent client dropped after {dt:.1f} s ({'socket closed' if got is None else got})")
    # heartbeat 0: none at all
    r = Raw()
    r.handshake(heartbeat=0)
    try:
        f = r.read(1.5)
        raise Fail(f"{f} with heartbeats off")
    except Fail as e:
        check("nothing from the broker" in str(e), str(e))
    # pika with heartbeat 1, kept alive by its own heartbeats
    c = connect(heartbeat=1)
    check(c._impl.params.heartbeat == 1, f"pika heartbeat {c._impl.params.heartbeat}")
    idle(c, 3.5)
    check(c.is_open, "pika with heartbeat 1 dropped while heart-beating")
    ch = c.channel()
    queue(ch, exclusive=True)
    c.close()


@scenario()
def connection_tune():
    r = Raw()
    r.hello()
    f = r.expect(10, 30)
    a = f.args()
    cm, fm = a.u16(), a.u32()
    # a tune-ok with frame_max above the server's: closed without negotiation [spec 10.31]
    if fm:
        r.method(0, 10, 31, struct.pack("!HIH", cm, fm * 2, 0))
        r.method(0, 10, 40, shortstr("/") + shortstr("") + b"\0")
        got = r.expect_close()
        check(not any(x.is_method(10, 41) for x in r.before), "frame_max above the server's accepted")
        check(got is None or got[0] in (501, 503, 530), f"frame_max above the server's: {got}")
    # frame_max below 4096 (the spec's minimum): closed
    r = Raw()
    r.hello()
    r.expect(10, 30)
    r.method(0, 10, 31, struct.pack("!HIH", 0 if not cm else cm, 1024, 0))
    r.method(0, 10, 40, shortstr("/") + shortstr("") + b"\0")
    got = r.expect_close()
    check(not any(x.is_method(10, 41) for x in r.before), "frame_max 1024 accepted")
    # frame_max 4096: the broker splits bodies to fit, and refuses larger frames (501)
    r = Raw()
    r.handshake(frame_max=4096)
    r.channel_open(1)
    q, _, _ = r.queue_declare(1, "")
    body = os.urandom(20000)
    r.publish(1, "", q, body)
    got = r.get(1, q)
    check(got is not None and got[0] == body, "20000-byte body at frame_max 4096")
    check(max(got[1]) <= 4096 - 8, f"body frames of {got[1]} bytes at frame_max 4096")
    r.publish(1, "", q, b"x" * 5000, body_frames=[b"x" * 5000])
    got = r.expect_close()
    check(got is not None and got[0] == 501, f"a 5008-byte frame at frame_max 4096: {got}")
    # channel_max 3: three channels, not a fourth
    r = Raw()
    r.handshake(channel_max=3)
    for n in (1, 2, 3):
        r.channel_open(n)
    r.method(4, 20, 10, shortstr(""))
    got = r.expect_close(timeout=2)
    check(got is not None and got[0] in (530, 504), f"channel 4 at channel_max 3: {got}")
    # a channel number above channel_max, the first one opened
    r = Raw()
    r.handshake(channel_max=3)
    r.method(5, 20, 10, shortstr(""))
    try:
        got = r.expect_close(timeout=2)
        check(got is not None and got[0] in (530, 504), f"channel 5 at channel_max 3: {got}")
    except Fail as e:
        deviation("channel_max", False, f"channel 5 at channel_max 3: {e}")
    # pika: channel_max 3 is three channels
    c = connect(channel_max=3, frame_max=8192)
    chans = [c.channel() for _ in range(3)]
    try:
        c.channel()
        raise Fail("pika opened a fourth channel at channel_max 3")
    except pex.NoFreeChannels:
        pass
    q = queue(chans[2], exclusive=True)
    body = os.urandom(50000)
    chans[2].basic_publish("", q, body)
    m, p, b = get1(chans[1], q)
    check(b == body, "50000 bytes at frame_max 8192")
    c.close()
    # librabbitmq
    out = c_client("tune", "10", "8192", "5")
    check(out == "ok: channel_max 10 frame_max 8192 heartbeat 5", f"librabbitmq: {out}")


# --- channels ------------------------------------------------------------------------------

@scenario()
def channels_many():
    c = connect()
    ch0 = c.channel()
    q = queue(ch0, exclusive=True)
    chans = [c.channel() for _ in range(200)]
    check(len({x.channel_number for x in chans + [ch0]}) == 201, "channel numbers reused")
    for i, ch in enumerate(chans):
        ch.basic_publish("", q, str(i).encode())
    n, _ = count(ch0, q)
    pump(c, lambda: count(ch0, q)[0] == 200, why=lambda: f"{count(ch0, q)[0]} of 200 messages")
    for ch in chans[::2]:
        ch.close()
    for ch in chans[1::2]:
        check(ch.is_open, "a channel closed with its neighbours")
        m, _, b = ch.basic_get(q, auto_ack=True)
        check(m is not None, "basic.get on a surviving channel")
    got = get_all(ch0, q)
    check(len(got) == 100, f"{len(got)} messages left of 100")
    # channel numbers are reusable after close
    ch = c.channel()
    check(ch.channel_number <= 201, f"channel {ch.channel_number}")
    c.close()


@scenario()
def channel_flow():
    r = Raw()
    r.handshake()
    r.channel_open(1)
    r.method(1, 20, 20, b"\1")
    f = r.expect(20, 21, 1)
    check(f.args().u8() & 1, "channel.flow-ok active=false for active=true")
    # active=false: the spec's flow control, or RabbitMQ's 540 NOT_IMPLEMENTED
    q, _, _ = r.queue_declare(1, "")
    r.method(1, 60, 20, struct.pack("!H", 0) + shortstr(q) + shortstr("c1") + b"\x02" + table({}))
    r.expect(60, 21, 1)  # consume-ok, no-ack
    r.method(1, 20, 20, b"\0")
    f = r.read_method()
    if f.is_method(*CONNECTION_CLOSE):
        a = f.args()
        code, text = a.u16(), a.shortstr()
        check(code == 540, f"channel.flow active=false: connection.close {code} {text}")
        note(f"channel.flow active=false refused: {code} {text} (RabbitMQ's choice)")
        r.method(0, 10, 51)
        return
    check(f.is_method(20, 21) and not f.args().u8() & 1, f"channel.flow active=false: {f}")
    r.publish(1, "", q, b"held")
    try:
        f = r.read_method(QUIET)
        raise Fail(f"{f} while the channel's flow is off")
    except Fail as e:
        check("nothing from the broker" in str(e), str(e))
    r.method(1, 20, 20, b"\1")
    f = r.expect(20, 21, 1)
    f = r.expect(60, 60, 1)  # basic.deliver once flow is back on
    note("channel.flow active=false honoured")


@scenario()
def channel_close():
    r = Raw()
    r.handshake()
    r.channel_open(1)
    r.channel_open(2)
    # server-initiated channel close (404), answered with close-ok; channel 2 unaffected
    r.method(1, 50, 10, struct.pack("!H", 0) + shortstr(uid("none")) + b"\1" + table({}))
    code, text, cls, mid = r.expect_channel_close(1)
    check((code, cls, mid) == (404, 50, 10), f"passive declare of nothing: {code} {text} {cls}.{mid}")
    check(text.startswith("NOT_FOUND"), f"reply text {text}")
    q, _, _ = r.queue_declare(2, "")
    # client-initiated close, then the number is free again
    r.method(2, 20, 40, struct.pack("!H", 200) + shortstr("bye") + struct.pack("!HH", 0, 0))
    r.expect(20, 41, 2)
    r.channel_open(1)
    r.channel_open(2)
    r.queue_declare(1, "")
    # pika
    c = connect()
    ch = c.channel()
    ch2 = c.channel()
    chan_error(404, ch.queue_declare, uid("none"), passive=True)
    check(ch.is_closed and ch2.is_open, "channel states after a 404")
    ch2.close()
    check(ch2.is_closed and c.is_open, "after channel.close")
    c.channel().queue_declare("", exclusive=True)
    c.close()


# --- exchanges -----------------------------------------------------------------------------

@scenario()
def exchange_default():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.basic_publish("", q, b"direct to the queue")
    m, _, b = ch.basic_get(q, auto_ack=True)
    check(b == b"direct to the queue" and m.exchange == "" and m.routing_key == q,
          f"default exchange: {m} {b}")
    chan_error(403, ch.queue_bind, q, "", q)
    ch = c.channel()
    chan_error(403, ch.exchange_declare, f"amq.tq-{token()}", "direct")
    ch = c.channel()
    chan_error(403, ch.exchange_delete, "amq.direct")
    ch = c.channel()
    for x, t in (("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                 ("amq.headers", "headers"), ("amq.match", "headers")):
        ch.exchange_declare(x, t, passive=True)
        ch.exchange_declare(x, t, durable=True)  # an equivalent redeclare is fine
    c.close()


@scenario()
def exchange_amq():
    c = connect()
    ch = c.channel()
    qs = [queue(ch, exclusive=True) for _ in range(4)]
    # direct
    ch.queue_bind(qs[0], "amq.direct", qs[0] + ".k1")
    ch.basic_publish("amq.direct", qs[0] + ".k1", b"d1")
    ch.basic_publish("amq.direct", qs[0] + ".k2", b"d2")
    # fanout: all bound queues, whatever the key
    for q in qs[1:3]:
        ch.queue_bind(q, "amq.fanout")
    ch.basic_publish("amq.fanout", "ignored", b"f")
    time.sleep(0.2)
    check([x[2] for x in get_all(ch, qs[0])] == [b"d1"], "amq.direct")
    for q in qs[1:3]:
        got = [x[2] for x in get_all(ch, q)]
        check(got == [b"f"], f"amq.fanout to {q}: {got}")
    for q in qs[1:3]:
        ch.queue_unbind(q, "amq.fanout")
    # topic: * one word, # zero or more
    t = token()
    ch.queue_bind(qs[1], "amq.topic", f"{t}.*.c")
    ch.queue_bind(qs[2], "amq.topic", f"{t}.#")
    ch.queue_bind(qs[3], "amq.topic", f"#.{t}.#.z")
    for k in (f"{t}.b.c", f"{t}", f"{t}.b", f"{t}.b.c.d", f"x.{t}.y.z", f"{t}.z", f"u{t}.b.c"):
        ch.basic_publish("amq.topic", k, k.encode())
    time.sleep(0.2)
    want = {qs[1]: [f"{t}.b.c"], qs[2]: [f"{t}.b.c", t, f"{t}.b", f"{t}.b.c.d", f"{t}.z"],
            qs[3]: [f"x.{t}.y.z", f"{t}.z"]}
    for q, keys in want.items():
        got = [x[2].decode() for x in get_all(ch, q)]
        check(got == keys, f"amq.topic: {q} got {got}, expected {keys}")
    # headers: x-match all / any, on amq.headers and amq.match
    t = token()
    ch.queue_bind(qs[0], "amq.headers", arguments={"x-match": "all", "t": t, "h2": "v2"})
    ch.queue_bind(qs[1], "amq.match", arguments={"x-match": "any", "t": t, "h2": "v2"})
    for n, h in enumerate(({"t": t}, {"t": t, "h2": "v2"}, {"h2": "v2"}, {"t": "other"}, {})):
        ch.basic_publish("amq.headers", "", str(n).encode(), pika.BasicProperties(headers=h))
        ch.basic_publish("amq.match", "", str(n).encode(), pika.BasicProperties(headers=h))
    time.sleep(0.2)
    got = [x[2] for x in get_all(ch, qs[0])]
    check(got == [b"1"], f"x-match all: {got}")
    got = [x[2] for x in get_all(ch, qs[1])]
    check(got == [b"0", b"1", b"2"], f"x-match any: {got}")
    c.close()


@scenario()
def exchange_declare():
    c = connect()
    ch = c.channel()
    chan_error(404, ch.exchange_declare, uid("none"), "direct", passive=True)
    ch = c.channel()
    x = exchange(ch, "topic", durable=True)
    ch.exchange_declare(x, "topic", passive=True)
    ch.exchange_declare(x, passive=True)  # a passive declare ignores the type
    # auto-delete: gone when its last binding goes
    xa = exchange(ch, "fanout", auto_delete=True)
    q = queue(ch, exclusive=True)
    ch.queue_bind(q, xa)
    ch.exchange_declare(xa, "fanout", passive=True)
    ch.queue_unbind(q, xa)
    gone(c, xa, kind="exchange")
    # internal: no publishing to it, but reachable through an exchange-to-exchange binding
    xi = exchange(ch, "fanout", internal=True)
    xp = exchange(ch, "fanout")
    ch.exchange_bind(xi, xp)
    ch.queue_bind(q, xi)
    ch.basic_publish(xp, "", b"via e2e")
    ch2 = c.channel()
    ch2.basic_publish(xi, "", b"direct")
    chan_error(403, ch2.queue_declare, "", exclusive=True)
    time.sleep(0.1)
    got = [x[2] for x in get_all(ch, q)]
    check(got == [b"via e2e"], f"internal exchange: {got}")
    # alternate-exchange: what x cannot route goes there
    ae = exchange(ch, "fanout")
    qa = queue(ch, exclusive=True)
    ch.queue_bind(qa, ae)
    xd = exchange(ch, "direct", arguments={"alternate-exchange": ae})
    ch.queue_bind(q, xd, "known")
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish(xd, "known", b"routed", mandatory=True)
    ch.basic_publish(xd, "unknown", b"to the AE", mandatory=True)
    idle(c, 0.3)
    check([x[2] for x in get_all(ch, q)] == [b"routed"], "alternate-exchange: the routed one")
    check([x[2] for x in get_all(ch, qa)] == [b"to the AE"], "alternate-exchange: the unroutable one")
    check(not returned, f"mandatory message routed through the AE returned: {returned}")
    c.close()


@scenario()
def exchange_delete():
    c = connect()
    ch = c.channel()
    x = exchange(ch, "direct")
    q = queue(ch, exclusive=True)
    ch.queue_bind(q, x, "k")
    chan_error(406, ch.exchange_delete, x, if_unused=True)
    ch = c.channel()
    ch.exchange_declare(x, passive=True)
    ch.queue_unbind(q, x, "k")
    ch.exchange_delete(x, if_unused=True)
    gone(c, x, kind="exchange")
    # a bound exchange deleted without if-unused: its bindings go with it
    x2 = exchange(ch, "fanout")
    ch.queue_bind(q, x2)
    ch.exchange_delete(x2)
    ch.exchange_declare(x2, "fanout")
    ch.basic_publish(x2, "", b"no binding left")
    idle(c, 0.2)
    check(not get_all(ch, q), "a binding survived its exchange")
    # deleting what is not there: RabbitMQ says delete-ok (idempotent); the spec says 404
    try:
        ch.exchange_delete(uid("none"))
        note("exchange.delete of a missing exchange: delete-ok (RabbitMQ)")
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == 404, f"exchange.delete of a missing exchange: {e}")
        note("exchange.delete of a missing exchange: 404")
    c.close()


@scenario()
def exchange_to_exchange():
    c = connect()
    ch = c.channel()
    src = exchange(ch, "topic")
    dst = exchange(ch, "fanout")
    q = queue(ch, exclusive=True)
    ch.queue_bind(q, dst)
    ch.exchange_bind(dst, src, "k.*")
    ch.basic_publish(src, "k.x", b"1")
    ch.basic_publish(src, "z.x", b"2")
    idle(c, 0.2)
    got = [(m.exchange, m.routing_key, b) for m, _, b in get_all(ch, q)]
    check(got == [(src, "k.x", b"1")], f"e2e binding: {got}")
    # a chain of three, and a cycle that delivers once
    d2 = exchange(ch, "fanout")
    q2 = queue(ch, exclusive=True)
    ch.queue_bind(q2, d2)
    ch.exchange_bind(d2, dst)
    ch.exchange_bind(src, d2, "#")  # a cycle src -> dst -> d2 -> src
    ch.basic_publish(src, "k.y", b"3")
    idle(c, 0.3)
    check([b for _, _, b in get_all(ch, q)] == [b"3"], "e2e chain with a cycle: first queue")
    check([b for _, _, b in get_all(ch, q2)] == [b"3"], "e2e chain with a cycle: second queue")
    ch.exchange_unbind(dst, src, "k.*")
    ch.basic_publish(src, "k.x", b"4")
    idle(c, 0.2)
    check(not get_all(ch, q), "delivered after exchange.unbind")
    chan_error(404, ch.exchange_bind, dst, uid("none"), "k")
    c.close()


@scenario()
def exchange_unknown_type():
    c = connect()
    ch = c.channel()
    conn_error(503, ch.exchange_declare, uid("x"), "x-tq-no-such-type")
    check(c.is_closed, "connection still open after 503")
    roundtrip()


@scenario()
def exchange_redeclare():
    c = connect()
    ch = c.channel()
    x = exchange(ch, "direct")
    chan_error(406, ch.exchange_declare, x, "fanout")
    ch = c.channel()
    chan_error(406, ch.exchange_declare, x, "direct", durable=True)
    ch = c.channel()
    chan_error(406, ch.exchange_declare, x, "direct", auto_delete=True)
    ch = c.channel()
    ch.exchange_declare(x, "direct")  # the same: fine
    ch.exchange_declare(x, "fanout", passive=True)  # passive: fine
    c.close()


# --- queues --------------------------------------------------------------------------------

@scenario()
def queue_declare():
    c = connect()
    ch = c.channel()
    chan_error(404, ch.queue_declare, uid("none"), passive=True)
    ch = c.channel()
    r = ch.queue_declare("", exclusive=True)
    check(r.method.queue.startswith("amq.gen-"), f"server-named queue {r.method.queue}")
    check(r.method.message_count == 0 and r.method.consumer_count == 0, f"declare-ok {r.method}")
    r2 = ch.queue_declare("", exclusive=True)
    check(r2.method.queue != r.method.queue, "two server-named queues, one name")
    chan_error(403, ch.queue_declare, f"amq.tq-{token()}")
    ch = c.channel()
    q = queue(ch)
    for i in range(3):
        ch.basic_publish("", q, b"m")
    pump(c, lambda: count(ch, q)[0] == 3, why="3 messages counted")
    s = Sink(c, ch, q, auto_ack=False)
    s.expect(3)
    r = ch.queue_declare(q, passive=True)
    check((r.method.message_count, r.method.consumer_count) == (0, 1),
          f"declare-ok with a consumer and 3 unacked: {r.method}")
    c.close()


@scenario()
def queue_exclusive():
    c1, c2 = connect(), connect()
    ch1, ch2 = c1.channel(), c2.channel()
    q = queue(ch1, exclusive=True)
    chan_error(405, ch2.queue_declare, q, passive=True)
    ch2 = c2.channel()
    chan_error(405, ch2.basic_consume, q, lambda *a: None)
    ch2 = c2.channel()
    chan_error(405, ch2.queue_declare, q, exclusive=True)
    ch2 = c2.channel()
    chan_error(405, ch2.queue_delete, q)
    ch2 = c2.channel()
    ch1b = c1.channel()  # another channel of the owner: fine
    ch1b.queue_declare(q, passive=True)
    ch1b.basic_publish("", q, b"x")
    c1.close()
    gone(c2, q)
    c2.close()


@scenario()
def queue_auto_delete():
    c = connect()
    ch = c.channel()
    q = queue(ch, auto_delete=True)
    idle(c, 0.3)
    check(exists(c, q), "an auto-delete queue that never had a consumer was deleted")
    t1 = ch.basic_consume(q, lambda *a: None)
    t2 = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(t1)
    idle(c, 0.3)
    check(exists(c, q), "auto-delete queue deleted with a consumer left")
    ch.basic_cancel(t2)
    gone(c, q)
    # also when the consumer's connection closes
    c2 = connect()
    q2 = queue(ch, auto_delete=True)
    c2.channel().basic_consume(q2, lambda *a: None)
    c2.close()
    gone(c, q2)
    c.close()


@scenario()
def queue_bind_purge_delete():
    c = connect()
    ch = c.channel()
    x = exchange(ch, "direct")
    q = queue(ch)
    ch.queue_bind(q, x, "a")
    ch.queue_bind(q, x, "b")
    ch.queue_bind(q, x, "a")  # again: no second binding
    for k in ("a", "b", "c"):
        ch.basic_publish(x, k, k.encode())
    ch.queue_unbind(q, x, "b")
    ch.basic_publish(x, "b", b"b2")
    pump(c, lambda: count(ch, q)[0] >= 2)
    idle(c, 0.2)
    check(count(ch, q)[0] == 2, f"{count(ch, q)[0]} messages, expected a and b")
    r = ch.queue_purge(q)
    check(r.method.message_count == 2, f"purge-ok {r.method.message_count}")
    check(count(ch, q)[0] == 0, "messages after purge")
    chan_error(404, ch.queue_bind, q, uid("none"), "k")
    ch = c.channel()
    chan_error(404, ch.queue_bind, uid("none"), x, "k")
    ch = c.channel()
    # delete if-unused / if-empty
    ch.basic_publish("", q, b"one")
    pump(c, lambda: count(ch, q)[0] == 1)
    chan_error(406, ch.queue_delete, q, if_empty=True)
    ch = c.channel()
    tag = ch.basic_consume(q, lambda *a: None, auto_ack=False)
    chan_error(406, c.channel().queue_delete, q, if_unused=True)
    ch.basic_cancel(tag)
    idle(c, 0.1)
    r = ch.queue_delete(q)
    check(r.method.message_count == 1, f"delete-ok {r.method.message_count}")
    gone(c, q)
    ch = c.channel()
    try:
        ch.queue_delete(uid("none"))
        note("queue.delete of a missing queue: delete-ok (RabbitMQ)")
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == 404, f"queue.delete of a missing queue: {e}")
    c.close()


@scenario()
def queue_message_ttl():
    c = connect()
    ch = c.channel()
    q = queue(ch, arguments={"x-message-ttl": 300})
    ch.basic_publish("", q, b"fresh")
    m, p, b = ch.basic_get(q, auto_ack=True)
    check(b == b"fresh", "a message within its TTL")
    for i in range(3):
        ch.basic_publish("", q, b"stale")
    time.sleep(0.7)
    check(get_all(ch, q) == [], "messages past x-message-ttl delivered")
    check(count(ch, q)[0] == 0, "expired messages counted")
    # per-message expiration, the lower of the two wins
    q2 = queue(ch)
    ch.basic_publish("", q2, b"short", pika.BasicProperties(expiration="200"))
    ch.basic_publish("", q2, b"long", pika.BasicProperties(expiration="60000"))
    ch.basic_publish("", q, b"per-message longer than queue", pika.BasicProperties(expiration="60000"))
    time.sleep(0.6)
    got = [(b, p.expiration) for _, p, b in get_all(ch, q2)]
    check(got == [(b"long", "60000")], f"per-message expiration: {got}")
    check(get_all(ch, q) == [], "x-message-ttl 300 beaten by expiration 60000")
    # expiration must be a non-negative integer string: 406 otherwise (RabbitMQ)
    ch.basic_publish("", q2, b"bad", pika.BasicProperties(expiration="soon"))
    chan_error(406, ch.queue_declare, q2, passive=True)
    c.close()


@scenario()
def queue_expires():
    c = connect()
    ch = c.channel()
    # a passive declare counts as use and renews the lease (RabbitMQ): look seldom
    q = queue(ch, arguments={"x-expires": 600})
    idle(c, 0.3)
    check(exists(c, q), "gone before x-expires")
    for _ in range(3):
        idle(c, 1.6)
        if not exists(c, q):
            break
    else:
        raise Fail("x-expires 600: still there")
    # a consumer keeps it
    q2 = queue(ch, arguments={"x-expires": 400})
    ch.basic_consume(q2, lambda *a: None)
    idle(c, 1.2)
    check(exists(c, q2), "a queue with a consumer expired")
    c.close()


@scenario()
def queue_max_length():
    c = connect()
    ch = c.channel()
    ch.confirm_delivery()
    # drop-head (default): the oldest go
    q = queue(ch, arguments={"x-max-length": 3})
    for i in range(5):
        ch.basic_publish("", q, str(i).encode())
    got = [b for _, _, b in get_all(ch, q)]
    check(got == [b"2", b"3", b"4"], f"x-max-length 3 drop-head: {got}")
    # x-max-length-bytes
    q = queue(ch, arguments={"x-max-length-bytes": 10})
    for i in range(5):
        ch.basic_publish("", q, b"%04d" % i)
    got = [b for _, _, b in get_all(ch, q)]
    check(got == [b"0003", b"0004"], f"x-max-length-bytes 10: {got}")
    # reject-publish: nacks for what does not fit
    q = queue(ch, arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    nacked = []
    for i in range(4):
        try:
            ch.basic_publish("", q, str(i).encode())
        except pex.NackError:
            nacked.append(i)
    check(nacked == [2, 3], f"reject-publish nacked {nacked}, expected [2, 3]")
    got = [b for _, _, b in get_all(ch, q)]
    check(got == [b"0", b"1"], f"reject-publish kept {got}")
    # reject-publish-dlx: nacked and dead-lettered
    dlq = queue(ch)
    q = queue(ch, arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                             "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    nacked = []
    for i in range(3):
        try:
            ch.basic_publish("", q, str(i).encode())
        except pex.NackError:
            nacked.append(i)
    check(nacked == [1, 2], f"reject-publish-dlx nacked {nacked}")
    pump(c, lambda: count(ch, dlq)[0] == 2, why=lambda: f"{count(ch, dlq)[0]} of 2 dead letters")
    got = get_all(ch, dlq)
    check([b for _, _, b in got] == [b"1", b"2"], f"dead-lettered {[b for _, _, b in got]}")
    deaths = (got[0][1].headers or {}).get("x-death")
    check(deaths and deaths[0].get("reason") == "maxlen", f"x-death {deaths}")
    c.close()


@scenario()
def queue_dead_letter():
    c = connect()
    ch = c.channel()
    dlx = exchange(ch, "direct")
    dlq = queue(ch)
    ch.queue_bind(dlq, dlx, "dead")
    q = queue(ch, arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"})
    ch.basic_publish("", q, b"rejected", pika.BasicProperties(headers={"mine": 1}))
    ch.basic_publish("", q, b"nacked")
    ch.basic_publish("", q, b"expired", pika.BasicProperties(expiration="100"))
    m, _, b = ch.basic_get(q)
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, _, b = ch.basic_get(q)
    ch.basic_nack(m.delivery_tag, requeue=False)
    time.sleep(0.3)
    ch.basic_get(q)  # the expired one is found at the head
    pump(c, lambda: count(ch, dlq)[0] == 3, why=lambda: f"{count(ch, dlq)[0]} of 3 dead letters")
    got = get_all(ch, dlq)
    bodies = [b for _, _, b in got]
    check(bodies == [b"rejected", b"nacked", b"expired"], f"dead letters {bodies}")
    for (m, p, b), reason in zip(got, ("rejected", "rejected", "expired")):
        check(m.exchange == dlx and m.routing_key == "dead", f"{b}: dead-lettered to {m.exchange} {m.routing_key}")
        deaths = (p.headers or {}).get("x-death")
        check(isinstance(deaths, list) and len(deaths) == 1, f"{b}: x-death {deaths}")
        d = deaths[0]
        check(d.get("reason") == reason, f"{b}: reason {d.get('reason')}, expected {reason}")
        check(d.get("queue") == q and d.get("count") == 1 and d.get("exchange") == "",
              f"{b}: x-death {d}")
        check(d.get("routing-keys") == [q], f"{b}: routing-keys {d.get('routing-keys')}")
        check("time" in d, f"{b}: no time in x-death")
        if b == b"expired":
            check(d.get("original-expiration") == "100" and p.expiration is None,
                  f"expired: original-expiration {d.get('original-expiration')}, expiration {p.expiration}")
    check(got[0][1].headers.get("mine") == 1, "the message's own headers kept")
    # dead-lettered twice: the count goes up, one entry per (queue, reason)
    q2 = queue(ch, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
    ch.queue_delete(q)
    q = queue(ch, q, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q2})
    ch.basic_publish("", q, b"twice")
    for want in (q, q2):
        m = None
        deadline = time.monotonic() + TIMEOUT
        while m is None and time.monotonic() < deadline:
            m, p, b = ch.basic_get(q if want == q else q2)
        check(m is not None, "ping-pong dead letter lost")
        ch.basic_reject(m.delivery_tag, requeue=False)
    m = None
    deadline = time.monotonic() + TIMEOUT
    while m is None and time.monotonic() < deadline:
        m, p, b = ch.basic_get(q, auto_ack=True)
    check(m is not None, "dead-lettered twice: lost")
    deaths = p.headers["x-death"]
    check(len(deaths) == 2 and {d["queue"] for d in deaths} == {q, q2}, f"x-death {deaths}")
    c.close()


@scenario()
def queue_priority():
    c = connect()
    ch = c.channel()
    q = queue(ch, arguments={"x-max-priority": 10})
    order = [0, 5, 9, 1, 5, 12, 3]  # 12 counts as 10
    for i, prio in enumerate(order):
        ch.basic_publish("", q, f"{prio}-{i}".encode(), pika.BasicProperties(priority=prio))
    ch.basic_publish("", q, b"none-7")  # no priority: 0
    pump(c, lambda: count(ch, q)[0] == 8)
    got = [b.decode() for _, _, b in get_all(ch, q)]
    check(got == ["12-5", "9-2", "5-1", "5-4", "3-6", "1-3", "0-0", "none-7"], f"priority order {got}")
    # a consumer with prefetch 1 sees the highest first as they come
    for i, prio in enumerate((1, 2, 8)):
        ch.basic_publish("", q, str(prio).encode(), pika.BasicProperties(priority=prio))
    pump(c, lambda: count(ch, q)[0] == 3)
    ch.basic_qos(prefetch_count=1)
    s = Sink(c, ch, q, auto_ack=False)
    for n in range(1, 4):
        s.expect(n)
        ch.basic_ack(s.msgs[-1][0].delivery_tag)
    check(s.bodies() == [b"8", b"2", b"1"], f"consumer priority order {s.bodies()}")
    c.close()


@scenario()
def queue_single_active_consumer():
    c = connect()
    ch1, ch2 = c.channel(), c.channel()
    q = queue(ch1, arguments={"x-single-active-consumer": True})
    a = Sink(c, ch1, q)
    b = Sink(c, ch2, q)
    for i in range(10):
        ch1.basic_publish("", q, str(i).encode())
    a.expect(10)
    idle(c, 0.3)
    check(not b.msgs, f"the inactive consumer got {len(b.msgs)}")
    check(a.bodies() == [str(i).encode() for i in range(10)], "SAC order")
    ch1.basic_cancel(a.tag)
    for i in range(5):
        ch2.basic_publish("", q, str(i).encode())
    b.expect(5)
    check(len(a.msgs) == 10, "the cancelled consumer got more")
    c.close()


@scenario()
def queue_redeclare():
    c = connect()
    ch = c.channel()
    q = queue(ch, arguments={"x-message-ttl": 1000})
    chan_error(406, ch.queue_declare, q, arguments={"x-message-ttl": 2000})
    ch = c.channel()
    chan_error(406, ch.queue_declare, q)
    ch = c.channel()
    chan_error(406, ch.queue_declare, q, durable=True, arguments={"x-message-ttl": 1000})
    ch = c.channel()
    chan_error(406, ch.queue_declare, q, arguments={"x-message-ttl": 1000, "x-max-length": 5})
    ch = c.channel()
    ch.queue_declare(q, arguments={"x-message-ttl": 1000})  # the same: fine
    ch.queue_declare(q, passive=True, arguments={"x-max-priority": 3})  # passive: fine
    # invalid arguments: 406 at the first declare
    chan_error(406, ch.queue_declare, uid("q"), arguments={"x-message-ttl": -1})
    ch = c.channel()
    chan_error(406, ch.queue_declare, uid("q"), arguments={"x-overflow": "sideways"})
    c.close()


# --- basic ---------------------------------------------------------------------------------

@scenario()
def basic_mandatory():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    returned = []
    ch.add_on_return_callback(lambda ch_, m, p, b: returned.append((m, p, b)))
    ch.basic_publish("amq.direct", uid("nobody"), b"back", pika.BasicProperties(
        content_type="text/plain", headers={"h": "v"}, message_id="id1"), mandatory=True)
    ch.basic_publish("amq.direct", uid("nobody"), b"lost")  # not mandatory: dropped
    ch.basic_publish("", q, b"routed", mandatory=True)
    pump(c, lambda: returned, why="no basic.return")
    idle(c, 0.3)
    check(len(returned) == 1, f"{len(returned)} returns")
    m, p, b = returned[0]
    check(m.reply_code == 312 and m.reply_text == "NO_ROUTE", f"basic.return {m.reply_code} {m.reply_text}")
    check(m.exchange == "amq.direct" and b == b"back", f"basic.return {m} {b}")
    check(p.content_type == "text/plain" and p.headers == {"h": "v"} and p.message_id == "id1",
          f"returned properties {p}")
    check([b for _, _, b in get_all(ch, q)] == [b"routed"], "the routed mandatory message")
    # with confirms: basic.return, then basic.ack (pika: UnroutableError)
    ch.confirm_delivery()
    try:
        ch.basic_publish("amq.direct", uid("nobody"), b"x", mandatory=True)
        raise Fail("no UnroutableError in confirm mode")
    except pex.UnroutableError as e:
        check(len(e.messages) == 1, f"{e}")
    c.close()


@scenario()
def basic_immediate():
    import amqp
    c = amqp.Connection(host=f"{HOST}:{PORT}", connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                        write_timeout=TIMEOUT)
    _live.append(c)
    c.connect()
    ch = c.channel()
    q, _, _ = ch.queue_declare("", exclusive=True)
    try:
        ch.basic_publish(amqp.Message(b"now"), exchange="", routing_key=q, immediate=True)
        ch.queue_declare(q, passive=True)
        raise Fail("immediate=true accepted")
    except amqp.exceptions.AMQPError as e:
        check(e.reply_code == 540, f"immediate: {type(e).__name__} {e.reply_code} {e}")
    r = Raw()
    r.handshake()
    r.channel_open(1)
    r.publish(1, "", "x", b"now", immediate=True)
    got = r.expect_close()
    check(got is not None and got[0] == 540 and got[2:] == (60, 40), f"raw immediate: {got}")
    roundtrip()


@scenario()
def basic_consume():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    s = Sink(c, ch, q)
    s2 = Sink(c, ch, q, consumer_tag="mine")
    check(s2.tag == "mine", f"consumer tag {s2.tag}")
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    pump(c, lambda: len(s.msgs) + len(s2.msgs) == 10)
    check(len(s.msgs) == 5 and len(s2.msgs) == 5, f"round robin: {len(s.msgs)} / {len(s2.msgs)}")
    for x in (s, s2):
        tags = [m.delivery_tag for m, _, _ in x.msgs]
        check(all(m.consumer_tag == x.tag for m, _, _ in x.msgs), "consumer tag in basic.deliver")
        check(tags == sorted(tags), "delivery tags out of order")
    check(sorted(m.delivery_tag for m, _, _ in s.msgs + s2.msgs) == list(range(1, 11)),
          "delivery tags not 1..10 on the channel")
    # cancel: cancel-ok, nothing more
    ch.basic_cancel(s.tag)
    ch.basic_cancel(s2.tag)
    ch.basic_publish("", q, b"after")
    idle(c, 0.3)
    check(len(s.msgs) + len(s2.msgs) == 10, "a delivery after cancel-ok")
    check([b for _, _, b in get_all(ch, q)] == [b"after"], "the message left in the queue")
    # exclusive consumer: nobody else; no exclusive one next to another
    q2 = queue(ch)
    ex = Sink(c, ch, q2, exclusive=True)
    chan_error(403, c.channel().basic_consume, q2, lambda *a: None)
    ch.basic_cancel(ex.tag)
    ch.basic_consume(q2, lambda *a: None)
    chan_error(403, c.channel().basic_consume, q2, lambda *a: None, exclusive=True)
    # an empty consumer tag: the server makes one, amq.ctag-..., unique
    r = Raw()
    r.handshake()
    r.channel_open(1)
    qn, _, _ = r.queue_declare(1, "")
    tags = set()
    for _ in range(2):
        r.method(1, 60, 20, struct.pack("!H", 0) + shortstr(qn) + shortstr("") + b"\0" + table({}))
        tags.add(r.expect(60, 21, 1).args().shortstr())
    check(len(tags) == 2 and all(t.startswith("amq.ctag-") for t in tags), f"generated tags {tags}")
    # a consumer tag used twice on a channel: 530 NOT_ALLOWED (a connection exception)
    for _ in range(2):
        r.method(1, 60, 20, struct.pack("!H", 0) + shortstr(qn) + shortstr("dup") + b"\0" + table({}))
    r.expect(60, 21, 1)
    got = r.expect_close()
    check(got is not None and got[0] == 530, f"duplicate consumer tag: {got}")
    # consuming from a missing queue: 404
    chan_error(404, c.channel().basic_consume, uid("none"), lambda *a: None)
    c.close()


@scenario()
def basic_consumer_priority():
    c = connect()
    chh, chl = c.channel(), c.channel()
    q = queue(chh)
    hi = Sink(c, chh, q, arguments={"x-priority": 10})
    lo = Sink(c, chl, q, arguments={"x-priority": 1})
    for i in range(20):
        chh.basic_publish("", q, str(i).encode())
    hi.expect(20)
    idle(c, 0.2)
    check(not lo.msgs, f"low-priority consumer got {len(lo.msgs)} while the high one had room")
    chh.basic_cancel(hi.tag)
    # the high one blocked by its prefetch: the low one gets the rest
    chh.basic_qos(prefetch_count=1)
    hi = Sink(c, chh, q, auto_ack=False, arguments={"x-priority": 10})
    for i in range(5):
        chh.basic_publish("", q, str(i).encode())
    pump(c, lambda: len(hi.msgs) + len(lo.msgs) == 5, why=lambda: f"{len(hi.msgs)} + {len(lo.msgs)} of 5")
    idle(c, 0.2)
    check(len(hi.msgs) == 1 and len(lo.msgs) == 4, f"blocked high consumer: {len(hi.msgs)} / {len(lo.msgs)}")
    c.close()


@scenario()
def basic_server_cancel():
    c = connect()
    ch = c.channel()
    check(c.consumer_cancel_notify_supported, "consumer_cancel_notify not offered")
    q = queue(ch)
    cancelled = []
    ch.add_on_cancel_callback(lambda m: cancelled.append(m))
    s = Sink(c, ch, q)
    ch.basic_publish("", q, b"x")
    s.expect(1)
    c2 = connect()
    c2.channel().queue_delete(q)
    pump(c, lambda: cancelled, why="no basic.cancel from the broker after queue.delete")
    m = cancelled[0].method
    check(m.consumer_tag == s.tag, f"basic.cancel for {m.consumer_tag}, not {s.tag}")
    check(ch.is_open, "channel closed by a server-sent cancel")
    # the same via a raw connection that announced consumer_cancel_notify
    r = Raw()
    r.handshake()
    r.channel_open(1)
    q2 = queue(ch)
    r.method(1, 60, 20, struct.pack("!H", 0) + shortstr(q2) + shortstr("c9") + b"\x02" + table({}))
    r.expect(60, 21, 1)
    ch.queue_delete(q2)
    f = r.expect(60, 30, 1)
    check(f.args().shortstr() == "c9", f"basic.cancel {f}")
    c.close()


@scenario()
def basic_get():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    m, _, _ = ch.basic_get(q)
    check(m is None, "basic.get on an empty queue")
    for i in range(3):
        ch.basic_publish("", q, str(i).encode(), pika.BasicProperties(headers={"i": i}))
    pump(c, lambda: count(ch, q)[0] == 3)
    for i in range(3):
        m, p, b = ch.basic_get(q, auto_ack=(i != 1))
        check(b == str(i).encode() and p.headers == {"i": i}, f"get {i}: {b} {p}")
        check(m.message_count == 2 - i, f"get-ok message_count {m.message_count}, expected {2 - i}")
        check(m.exchange == "" and m.routing_key == q and not m.redelivered, f"get-ok {m}")
        check(m.delivery_tag == i + 1, f"delivery tag {m.delivery_tag}")
    m, _, _ = ch.basic_get(q)
    check(m is None, "get-empty expected")
    ch.basic_recover(requeue=True)
    m, p, b = ch.basic_get(q, auto_ack=True)
    check(b == b"1" and m.redelivered, f"the un-acked get, recovered: {m} {b}")
    c.close()


@scenario()
def basic_ack_nack_reject():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    s = Sink(c, ch, q, auto_ack=False)
    for i in range(1, 7):
        ch.basic_publish("", q, str(i).encode())
    s.expect(6)
    check([m.delivery_tag for m, _, _ in s.msgs] == list(range(1, 7)), "tags 1..6")
    ch.basic_ack(2, multiple=True)  # 1, 2
    ch.basic_nack(4, multiple=True, requeue=True)  # 3, 4 back
    s.expect(8)
    re = s.msgs[6:8]
    check([b for _, _, b in re] == [b"3", b"4"], f"nack-requeued redelivery {[b for _, _, b in re]}")
    check(all(m.redelivered for m, _, _ in re), "redelivered flag not set")
    check([m.delivery_tag for m, _, _ in re] == [7, 8], f"tags {[m.delivery_tag for m, _, _ in re]}")
    check(not any(m.redelivered for m, _, _ in s.msgs[:6]), "redelivered on a first delivery")
    ch.basic_reject(5, requeue=False)  # dropped
    ch.basic_reject(6, requeue=True)
    s.expect(9)
    m, _, b = s.msgs[8]
    check(b == b"6" and m.redelivered and m.delivery_tag == 9, f"rejected-requeued: {m} {b}")
    ch.basic_ack(0, multiple=True)  # everything outstanding
    ch.basic_cancel(s.tag)
    check(count(ch, q) == (0, 0), f"queue after acking all: {count(ch, q)}")
    # unknown tag and double ack: 406
    ch.basic_publish("", q, b"x")
    m = None
    while m is None:
        m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)
    chan_error(406, ch.queue_declare, q, passive=True)
    ch = c.channel()
    ch.basic_nack(77)
    chan_error(406, ch.queue_declare, q, passive=True)
    # delivery tags are per channel
    ch1, ch2 = c.channel(), c.channel()
    for _ in range(2):
        ch1.basic_publish("", q, b"t")
    pump(c, lambda: count(ch1, q)[0] == 2)
    m1, _, _ = ch1.basic_get(q)
    m2, _, _ = ch2.basic_get(q)
    check(m1.delivery_tag == 1 and m2.delivery_tag == 1, f"tags {m1.delivery_tag} {m2.delivery_tag}")
    # unacked messages go back when the channel closes
    ch1.close()
    ch2.close()
    ch = c.channel()
    got = get_all(ch, q)
    check(len(got) == 2 and all(m.redelivered for m, _, _ in got), "unacked not requeued on channel close")
    c.close()


@scenario()
def basic_qos():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.basic_qos(prefetch_count=2)
    a = Sink(c, ch, q, auto_ack=False)
    b = Sink(c, ch, q, auto_ack=False)
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    pump(c, lambda: len(a.msgs) + len(b.msgs) >= 4, why=lambda: f"prefetch 2, two consumers: {len(a.msgs)} + {len(b.msgs)} of 4")
    idle(c, 0.3)
    check((len(a.msgs), len(b.msgs)) == (2, 2), f"prefetch 2 per consumer: {len(a.msgs)} / {len(b.msgs)}")
    ch.basic_ack(a.msgs[0][0].delivery_tag)
    pump(c, lambda: len(a.msgs) >= 3, why="no delivery after an ack freed a slot")
    idle(c, 0.2)
    check(len(a.msgs) + len(b.msgs) == 5, "one ack, one more delivery")
    c.close()
    # global: shared by the channel's consumers
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    a = Sink(c, ch, q, auto_ack=False)
    b = Sink(c, ch, q, auto_ack=False)
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    pump(c, lambda: len(a.msgs) + len(b.msgs) >= 3, why=lambda: f"global prefetch 3: {len(a.msgs)} + {len(b.msgs)} of 3")
    idle(c, 0.3)
    check(len(a.msgs) + len(b.msgs) == 3, f"global prefetch 3: {len(a.msgs)} + {len(b.msgs)}")
    ch.basic_ack(0, multiple=True)
    pump(c, lambda: len(a.msgs) + len(b.msgs) >= 6, why=lambda: f"global prefetch 3 after acking 3: {len(a.msgs) + len(b.msgs)} of 6")
    # both: per-consumer 1 within a channel-wide 3, set in the order of RabbitMQ's example
    # (consumer-prefetch.html; RabbitMQ 3.10 ignores the global limit when it comes first)
    c2 = connect()
    ch2 = c2.channel()
    q2 = queue(ch2, exclusive=True)
    ch2.basic_qos(prefetch_count=1)
    ch2.basic_qos(prefetch_count=3, global_qos=True)
    xs = [Sink(c2, ch2, q2, auto_ack=False) for _ in range(4)]
    for i in range(10):
        ch2.basic_publish("", q2, str(i).encode())
    pump(c2, lambda: sum(len(x.msgs) for x in xs) >= 3, why=lambda: f"1 per consumer, 3 per channel: {[len(x.msgs) for x in xs]}")
    idle(c2, 0.3)
    check(sorted(len(x.msgs) for x in xs) == [0, 1, 1, 1], f"1 per consumer, 3 per channel: {[len(x.msgs) for x in xs]}")
    c2.close()
    c.close()


@scenario()
def basic_recover():
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    s = Sink(c, ch, q, auto_ack=False)
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    s.expect(3)
    ch.basic_ack(1)
    ch.basic_recover(requeue=True)
    s.expect(5)
    re = s.msgs[3:]
    check([b for _, _, b in re] == [b"1", b"2"] and all(m.redelivered for m, _, _ in re),
          f"recovered: {[(m.redelivered, b) for m, _, b in re]}")
    ch.basic_ack(0, multiple=True)
    c.close()


@scenario()
def consumer_closing_inflight():
    """A consumer with manual acks whose channel, then connection, is closing while deliveries
    are on their way: the broker keeps serving (the deliveries go back to the queue, not back to
    that consumer again and again: tachyond's worker spun on them for good), and nothing is
    lost: a consumer after it gets every message."""
    def inflight(r, q, ch):
        """basic.qos 1 and a manual-ack consumer on @ch; the first delivery read. Returns its
        delivery tag."""
        r.method(ch, 60, 10, struct.pack("!IHB", 0, 1, 0))
        r.expect(60, 11, ch)
        r.method(ch, 60, 20, struct.pack("!H", 0) + shortstr(q) + shortstr("") + b"\0" + table({}))
        r.expect(60, 21, ch)
        f = r.expect(60, 60, ch)
        a = f.args()
        a.shortstr()
        tag = a.u64()
        r.read()  # header
        r.read()  # body
        return tag

    n = 50
    c = connect()
    pch = c.channel()
    q = queue(pch)
    for i in range(n):
        pch.basic_publish("", q, str(i).encode())
    # 1. the ack frees the one prefetch slot (a delivery sets off at once) and, in the same
    # segment, an ack of an unknown tag closes the channel (406) before it arrives
    r = Raw()
    r.handshake()
    r.channel_open(1)
    tag = inflight(r, q, 1)
    ack = lambda t: Raw.frame(METHOD, 1, struct.pack("!HHQB", 60, 80, t, 0))
    r.send(ack(tag) + ack(tag + 1000))
    code = r.expect_channel_close(1)[0]  # answered with close-ok: the channel goes
    check(code == 406, f"an unknown delivery tag: channel.close {code}, not 406")
    roundtrip("after a consumer's channel closed with deliveries on their way")
    # 2. the same with connection.close instead of the unknown tag
    r2 = Raw()
    r2.handshake()
    r2.channel_open(1)
    tag = inflight(r2, q, 1)
    r2.send(ack(tag) + Raw.frame(METHOD, 0, struct.pack("!HH", 10, 50) + struct.pack("!H", 200)
                                 + shortstr("bye") + struct.pack("!HH", 0, 0)))
    r2.expect(10, 51)
    r2.close()
    roundtrip("after a consumer's connection closed with deliveries on their way")
    # every message not acked above is still there, in order of the queue
    s = Sink(c, pch, q, auto_ack=True)
    pump(c, lambda: len(s.msgs) >= n - 2, why=lambda: f"{len(s.msgs)} of {n - 2} left after the closes")
    idle(c, 0.3)
    got = sorted(int(b) for _, _, b in s.msgs)
    check(got == list(range(2, n)), f"after the closes: {len(got)} messages, {got[:5]}...")
    c.close()


@scenario(cap=90)
def publisher_confirms():
    # raw: 500 publishes, acks (single or multiple) covering 1..500 exactly once
    r = Raw()
    r.handshake()
    r.channel_open(1)
    q, _, _ = r.queue_declare(1, "")
    r.method(1, 85, 10, b"\0")
    r.expect(85, 11, 1)
    for i in range(500):
        r.publish(1, "", q, b"%d" % i)
    acked = 0
    multiples = 0
    while acked < 500:
        f = r.read_method()
        check(f.is_method(60, 80), f"expected basic.ack, got {f}")
        a = f.args()
        tag, multiple = a.u64(), a.u8() & 1
        multiples += multiple
        check(tag > acked and (multiple or tag == acked + 1), f"ack {tag} multiple={multiple} after {acked}")
        acked = tag
    note(f"500 confirms, {multiples} of them multiple")
    # nack: reject-publish
    q2, _, _ = r.queue_declare(1, "", args={"x-max-length": 1, "x-overflow": "reject-publish"})
    for i in range(3):
        r.publish(1, "", q2, b"%d" % i)
    got = {}
    while len(got) < 3:
        f = r.read_method()
        check(f.is_method(60, 80) or f.is_method(60, 120), f"confirm expected, got {f}")
        a = f.args()
        tag, multiple = a.u64(), a.u8() & 1
        kind = "ack" if f.is_method(60, 80) else "nack"
        lo = tag if not multiple else min([t for t in range(501, 504) if t not in got] or [tag])
        for t in range(lo, tag + 1):
            got[t] = kind
    check(got == {501: "ack", 502: "nack", 503: "nack"}, f"confirms {got}")
    # confirm.select on a transactional channel: 406
    r.channel_open(2)
    r.method(2, 90, 10)
    r.expect(90, 11, 2)
    r.method(2, 85, 10, b"\0")
    code = r.expect_channel_close(2)[0]
    check(code == 406, f"confirm.select after tx.select: {code}")
    # pika, SelectConnection
    pika_select_confirms()


def pika_select_confirms(n=200):
    st = {"acks": set(), "msgs": [], "err": None, "done": False, "q": None}

    def fail(why):
        st["err"] = why
        conn.ioloop.stop()

    def on_open(conn_):
        conn_.channel(on_open_callback=on_channel)

    def on_channel(ch):
        st["ch"] = ch
        ch.add_on_close_callback(lambda c, reason: fail(f"channel closed: {reason}") if not st["done"] else None)
        ch.confirm_delivery(on_confirm, callback=lambda _: ch.queue_declare(
            "", exclusive=True, callback=on_declared))

    def on_confirm(frame):
        m = frame.method
        if isinstance(m, pika.spec.Basic.Nack):
            return fail(f"nack {m.delivery_tag}")
        if m.multiple:
            st["acks"].update(range(min(st["acks"], default=0) + 1 if not st["acks"] else max(st["acks"]) + 1,
                                    m.delivery_tag + 1))
        else:
            st["acks"].add(m.delivery_tag)
        maybe_done()

    def on_declared(frame):
        q = st["q"] = frame.method.queue
        ch = st["ch"]
        ch.basic_consume(q, on_message, auto_ack=True)
        for i in range(n):
            ch.basic_publish("", q, str(i).encode())

    def on_message(ch, m, p, body):
        st["msgs"].append(body)
        maybe_done()

    def maybe_done():
        if len(st["msgs"]) == n and len(st["acks"]) == n:
            st["done"] = True
            conn.close()

    conn = pika.SelectConnection(params(), on_open_callback=on_open,
                                 on_open_error_callback=lambda c, e: fail(f"open: {e}"),
                                 on_close_callback=lambda c, reason: c.ioloop.stop())
    conn.ioloop.call_later(3 * TIMEOUT, lambda: fail(
        f"timed out: {len(st['acks'])} acks, {len(st['msgs'])} messages"))
    conn.ioloop.start()
    check(st["err"] is None, f"pika SelectConnection: {st['err']}")
    check(st["done"], "pika SelectConnection stopped early")
    check(st["acks"] == set(range(1, n + 1)), "confirms do not cover 1..n")
    check(st["msgs"] == [str(i).encode() for i in range(n)], "messages out of order")


@scenario()
def transactions():
    c = connect()
    ch = c.channel()
    q = queue(ch)
    tx = c.channel()
    chan_error(406, tx.tx_commit)
    tx = c.channel()
    chan_error(406, tx.tx_rollback)
    tx = c.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"a")
    tx.basic_publish("", q, b"b")
    idle(c, 0.2)
    check(count(ch, q)[0] == 0, "uncommitted publishes visible")
    tx.tx_rollback()
    check(count(ch, q)[0] == 0, "rolled back publishes visible")
    tx.basic_publish("", q, b"c")
    tx.tx_commit()
    check(count(ch, q)[0] == 1, "the committed publish missing")
    # acks in a transaction
    m, _, b = tx.basic_get(q)
    check(b == b"c", f"got {b}")
    tx.basic_ack(m.delivery_tag)
    tx.tx_rollback()  # the ack is undone: still unacked on tx
    tx.close()  # so it goes back
    pump(c, lambda: count(ch, q)[0] == 1, why="a rolled back ack acked the message")
    tx = c.channel()
    tx.tx_select()
    m, _, b = tx.basic_get(q)
    check(m.redelivered, "redelivered after the channel closed")
    tx.basic_ack(m.delivery_tag)
    tx.tx_commit()
    tx.close()
    check(count(ch, q)[0] == 0, "a committed ack did not ack")
    out = c_client("tx", uid("q"))
    check(out.startswith("ok:"), f"librabbitmq tx: {out}")
    c.close()


@scenario()
def message_groups():
    """tachyon's extension: queue argument x-message-group-header names the header carrying the
    group id; a group's messages go, in order, to one consumer at a time."""
    if is_rabbitmq():
        raise Skip("x-message-group-header is tachyon's extension, not RabbitMQ's")
    c = connect()
    ch = c.channel()
    q = queue(ch, arguments={"x-message-group-header": "JMSXGroupID"})
    cha, chb = c.channel(), c.channel()
    cha.basic_qos(prefetch_count=100)
    chb.basic_qos(prefetch_count=100)
    a = Sink(c, cha, q, auto_ack=False)
    b = Sink(c, chb, q, auto_ack=False)
    groups = [f"g{i}" for i in range(6)]
    for n in range(10):
        for g in groups:
            ch.basic_publish("", q, f"{g}:{n}".encode(), pika.BasicProperties(headers={"JMSXGroupID": g}))
    pump(c, lambda: len(a.msgs) + len(b.msgs) == 60, why=lambda: f"{len(a.msgs)} + {len(b.msgs)} of 60")
    owner = {}
    for who, s in (("a", a), ("b", b)):
        seen = {}
        for _, _, body in s.msgs:
            g, n = body.decode().split(":")
            check(owner.setdefault(g, who) == who, f"group {g} went to both consumers")
            check(int(n) == seen.get(g, -1) + 1, f"group {g} out of order at {who}: {n}")
            seen[g] = int(n)
    check(set(owner.values()) == {"a", "b"}, f"all groups on one consumer: {owner}")
    # a leaves without acking: its groups move to b, in order, redelivered
    moved = [g for g, w in owner.items() if w == "a"]
    nb = len(b.msgs)
    cha.close()
    pump(c, lambda: len(b.msgs) == 60, why=lambda: f"{len(b.msgs)} of 60 at b after a left")
    seen = {}
    for m, _, body in b.msgs[nb:]:
        g, n = body.decode().split(":")
        check(g in moved and m.redelivered, f"{body} after a left")
        check(int(n) == seen.get(g, -1) + 1, f"moved group {g} out of order: {n}")
        seen[g] = int(n)
    chb.basic_ack(0, multiple=True)
    # ungrouped messages still go to any consumer
    ch.basic_publish("", q, b"no group")
    pump(c, lambda: len(b.msgs) == 61)
    c.close()


# --- volume --------------------------------------------------------------------------------

@scenario(cap=120)
def order_10000():
    n = 10000
    pc, cc = connect(), connect()  # two connections: with two workers, likely two workers
    pch, cch = pc.channel(), cc.channel()
    q = queue(pch)
    cch.basic_qos(prefetch_count=500)
    got = []

    def on(ch, m, p, body):
        got.append(body)
        if len(got) % 100 == 0:
            ch.basic_ack(m.delivery_tag, multiple=True)
    cch.basic_consume(q, on, auto_ack=False)
    t0 = time.monotonic()
    for i in range(n):
        pch.basic_publish("", q, b"%d" % i)
        if i % 1000 == 999:
            pc.process_data_events(0)
            cc.process_data_events(0)
    pump(cc, lambda: len(got) == n, timeout=60, why=lambda: f"{len(got)} of {n} messages")
    dt = time.monotonic() - t0
    check(got == [b"%d" % i for i in range(n)], "10,000 messages out of order")
    note(f"{n} messages through one queue in {dt:.1f} s")
    cch.basic_ack(0, multiple=True)
    pump(cc, lambda: count(pch, q) == (0, 1))


@scenario()
def body_1mib():
    body = os.urandom(1 << 20)
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.basic_publish("", q, body, pika.BasicProperties(content_type="application/octet-stream"))
    m = None
    deadline = time.monotonic() + TIMEOUT
    while m is None and time.monotonic() < deadline:
        m, p, b = ch.basic_get(q, auto_ack=True)
    check(m is not None and hashlib.sha256(b).digest() == hashlib.sha256(body).digest(),
          "1 MiB body changed through basic.get")
    s = Sink(c, ch, q)
    for _ in range(3):
        ch.basic_publish("", q, body)
    s.expect(3, timeout=3 * TIMEOUT)
    check(all(b == body for b in s.bodies()), "1 MiB bodies changed through basic.consume")
    c.close()
    out = c_client("roundtrip", uid("q"), "3", str(1 << 20))
    check(out.startswith("ok:"), f"librabbitmq 1 MiB: {out}")


# --- errors --------------------------------------------------------------------------------

def _conn_case(setup, codes, key=None):
    """A raw connection: setup(r) sends something bad; a connection.close with one of codes
    must come back (the socket closing without it is a failure, or a known deviation key)."""
    def run(what):
        r = Raw()
        setup(r)
        got = r.expect_close()
        if got is None:
            if key:
                deviation(key, False, f"{what}: socket closed without connection.close")
                return
            raise Fail(f"{what}: socket closed without connection.close")
        if key == "header_decode" and got[0] == 541:
            deviation(key, False, f"{what}: connection.close {got}")
            return
        check(got[0] in codes, f"{what}: connection.close {got[0]} {got[1]}, expected {codes}")
    return run


def _on_ch(ch_setup):
    def f(r):
        r.handshake()
        r.channel_open(1)
        ch_setup(r)
    return f


def _qdecl(ch, name="q", args=b"\0\0\0\0"):
    return struct.pack("!H", 0) + shortstr(name) + b"\0" + args


ERROR_CASES = [
    # (what, setup(raw), reply codes, known-deviation key)
    ("frame-end not 0xCE", lambda r: (r.handshake(), r.send(r.frame(METHOD, 0, struct.pack("!HH", 10, 60), end=0))),
     (501,), None),
    ("unknown frame type 5", lambda r: (r.handshake(), r.send(r.frame(5, 0, b"abc"))), (501,), None),
    ("frame larger than frame_max", lambda r: (r.handshake(frame_max=4096), r.channel_open(1),
                                                r.publish(1, "", "x", b"x" * 5000, body_frames=[b"x" * 5000])),
     (501,), None),
    ("method on a channel never opened", lambda r: (r.handshake(), r.method(7, 50, 10, _qdecl(7))), (504,), None),
    ("method on a closed channel", _on_ch(lambda r: (
        r.method(1, 20, 40, struct.pack("!H", 200) + shortstr("bye") + struct.pack("!HH", 0, 0)),
        r.expect(20, 41, 1), r.method(1, 50, 10, _qdecl(1)))), (504,), None),
    ("channel.open on an open channel", _on_ch(lambda r: r.method(1, 20, 10, shortstr(""))), (504,), None),
    ("channel.open on channel 0", lambda r: (r.handshake(), r.method(0, 20, 10, shortstr(""))), (503, 504), None),
    ("queue.declare on channel 0", lambda r: (r.handshake(), r.method(0, 50, 10, _qdecl(0))), (503, 504), None),
    ("connection.open again", lambda r: (r.handshake(), r.method(0, 10, 40, shortstr("/") + shortstr("") + b"\0")),
     (503, 504), None),
    ("body frame without header", _on_ch(lambda r: r.send(r.frame(BODY, 1, b"hello"))), (505,), None),
    ("header frame without publish", _on_ch(lambda r: r.send(r.frame(HEADER, 1, struct.pack("!HHQ", 60, 0, 5) + b"\0\0"))),
     (505,), None),
    ("method amid content", _on_ch(lambda r: (r.publish(1, "", "x", b"x" * 10, body_frames=[b"y" * 5]),
                                              r.method(1, 60, 70, struct.pack("!H", 0) + shortstr("x") + b"\1"))),
     (505,), None),
    ("content header of class 50", _on_ch(lambda r: (
        r.method(1, 60, 40, struct.pack("!H", 0) + shortstr("") + shortstr("x") + b"\0"),
        r.send(r.frame(HEADER, 1, struct.pack("!HHQ", 50, 0, 1) + b"\0\0")),
        r.send(r.frame(BODY, 1, b"x")))), (505, 501), None),
    # RabbitMQ notices the overrun at the next frame on the channel: basic.qos follows
    ("body longer than its header's size", _on_ch(lambda r: (
        r.publish(1, "", "x", b"x" * 5, body_frames=[b"y" * 10]),
        r.method(1, 60, 10, struct.pack("!IHB", 0, 1, 0)))), (501, 505), None),
    ("body frame after a size 0 header", _on_ch(lambda r: r.publish(1, "", "x", b"", body_frames=[b"z"])),
     (501, 505), None),
    ("heartbeat on channel 1", _on_ch(lambda r: r.send(r.frame(HEARTBEAT, 1, b""))), (501, 503, 505), None),
    ("unknown class 77", _on_ch(lambda r: r.method(1, 77, 10)), (503, 540), "unknown_method"),
    ("unknown method 60.99", _on_ch(lambda r: r.method(1, 60, 99)), (503, 540), "unknown_method"),
    ("method frame of 2 bytes", _on_ch(lambda r: r.send(r.frame(METHOD, 1, b"\0\x3c"))), (501, 502), None),
    ("arguments cut short", _on_ch(lambda r: r.method(1, 50, 10, struct.pack("!H", 0) + b"\x09q")),
     (501, 502), None),
    ("field table longer than the frame", _on_ch(lambda r: r.method(1, 50, 10, _qdecl(
        1, "q", struct.pack("!I", 1000) + b"\x01a"))), (501, 502), None),
    ("unknown field type 'Z'", _on_ch(lambda r: r.method(1, 50, 10, _qdecl(
        1, "q", struct.pack("!I", 3) + b"\x01aZ"))), (501, 502), "bad_field_type"),
    ("content header properties cut short", _on_ch(lambda r: (
        r.method(1, 60, 40, struct.pack("!H", 0) + shortstr("") + shortstr("x") + b"\0"),
        r.send(r.frame(HEADER, 1, struct.pack("!HHQ", 60, 0, 1) + b"\x80\x00" + b"\x05ab")),
        r.send(r.frame(BODY, 1, b"x")))), (501, 502), "header_decode"),
]


@scenario(cap=120)
def errors():
    # a bystander with a consumer, who must see none of it
    bc = connect()
    bch = bc.channel()
    bq = queue(bch, exclusive=True)
    bs = Sink(bc, bch, bq)
    # wrong protocol headers: ours back, then the socket closes [spec 4.2.2]
    for what, hdr in (("AMQP 0-10", b"AMQP\x00\x00\x0a\x00"), ("HTTP", b"GET / HTTP/1.1\r\n\r\n"),
                      ("AMQP 1.0", b"AMQP\x00\x01\x00\x00")):
        r = Raw()
        r.send(hdr)
        try:
            got = r.raw_bytes(8)
        except Closed:
            got = b""
        check(got == PROTOCOL_HEADER, f"{what} header: answered {got!r}")
        check(r.expect_close() is None, f"{what} header: more than our header")
    fails = []
    for what, setup, codes, key in ERROR_CASES:
        try:
            _conn_case(setup, codes, key)(what)
        except (Fail, Closed) as e:
            fails.append(str(e) if isinstance(e, Fail) else f"{what}: {e}")
    # method on a closed channel, with librabbitmq
    out = c_client("closed-channel")
    if not out.startswith("ok:"):
        fails.append(f"librabbitmq closed-channel: {out}")
    # the broker still serves, the bystander is intact
    bch.basic_publish("", bq, b"still here")
    bs.expect(1)
    check(bs.bodies() == [b"still here"], f"bystander got {bs.bodies()}")
    roundtrip()
    check(not fails, "; ".join(fails))


# --- other clients -------------------------------------------------------------------------

def amqp_tool(*args, stdin=None, timeout=10):
    cmd = [args[0], "--server", HOST, "--port", str(PORT), "--username", "guest",
           "--password", "guest"] + list(args[1:])
    p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


@scenario()
def amqp_tools():
    for t in ("amqp-declare-queue", "amqp-publish", "amqp-get", "amqp-consume", "amqp-delete-queue"):
        check(shutil.which(t), f"no {t}: apt-get install amqp-tools")
    q = uid("q")
    _queues.append(q)
    rc, out, err = amqp_tool("amqp-declare-queue", "-q", q)
    check(rc == 0 and out.strip() == q.encode(), f"amqp-declare-queue: {rc} {out} {err}")
    rc, out, err = amqp_tool("amqp-declare-queue", "-q", "")
    check(rc == 0 and out.startswith(b"amq.gen-"), f"amqp-declare-queue server-named: {rc} {out} {err}")
    _queues.append(out.strip().decode())
    for body in (b"one", b"two"):
        rc, out, err = amqp_tool("amqp-publish", "-r", q, "-b", body.decode(), "-C", "text/plain",
                                 "-H", "k: v")
        check(rc == 0, f"amqp-publish: {rc} {err}")
    rc, out, err = amqp_tool("amqp-get", "-q", q)
    check(rc == 0 and out == b"one", f"amqp-get: {rc} {out} {err}")
    rc, out, err = amqp_tool("amqp-consume", "-q", q, "-c", "1", "cat")
    check(rc == 0 and out == b"two", f"amqp-consume -c 1 cat: {rc} {out} {err}")
    rc, out, err = amqp_tool("amqp-get", "-q", q)
    check(rc == 2 and not out, f"amqp-get on an empty queue: exit {rc} {out} {err} (2 expected)")
    # amqp-publish -l: a message per line, through amq.topic to a bound queue
    rc, out, err = amqp_tool("amqp-publish", "-e", "amq.topic", "-r", f"{q}.lines", "-l",
                             stdin=b"l1\nl2\nl3\n")
    check(rc == 0, f"amqp-publish -l (unrouted): {rc} {err}")
    c = connect()
    ch = c.channel()
    ch.queue_bind(q, "amq.topic", f"{q}.#")
    rc, out, err = amqp_tool("amqp-publish", "-e", "amq.topic", "-r", f"{q}.lines", "-l",
                             stdin=b"l1\nl2\nl3\n")
    check(rc == 0, f"amqp-publish -l: {rc} {err}")
    rc, out, err = amqp_tool("amqp-consume", "-q", q, "-c", "3", "-p", "1", "cat")
    check(rc == 0 and out == b"l1\nl2\nl3\n", f"amqp-consume -c 3: {rc} {out} {err}")
    # amqp-consume declaring its own queue bound to an exchange: publish (mandatory, confirmed)
    # until the binding is there, and that message is the one it gets
    # (amqp-tools 0.11: without -r, amqp-consume -e crashes; with -r "" it binds nothing)
    x = exchange(ch, "direct")
    p = subprocess.Popen(["amqp-consume", "--server", HOST, "--port", str(PORT), "-e", x, "-r", "k",
                          "-c", "1", "cat"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        cch = c.channel()
        cch.confirm_delivery()
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                cch.basic_publish(x, "k", b"fan", mandatory=True)
                break
            except pex.UnroutableError:
                check(time.monotonic() < deadline and p.poll() is None,
                      f"amqp-consume -e {x}: no queue bound ({p.poll()})")
                time.sleep(0.1)
        out, err = p.communicate(timeout=TIMEOUT)
        check(p.returncode == 0 and out == b"fan", f"amqp-consume -e: {p.returncode} {out} {err}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    rc, out, err = amqp_tool("amqp-delete-queue", "-q", q)
    check(rc == 0, f"amqp-delete-queue: {rc} {err}")
    gone(c, q)
    c.close()


@scenario()
def kombu_client():
    import kombu
    url = f"amqp://guest:guest@{HOST}:{PORT}//"
    with kombu.Connection(url, connect_timeout=TIMEOUT, transport_options={"confirm_publish": True}) as conn:
        _live.append(conn)
        x = kombu.Exchange(uid("x"), type="topic", auto_delete=True)
        q = kombu.Queue(uid("q"), exchange=x, routing_key="orders.*", auto_delete=True)
        got = []
        with conn.Consumer([q], callbacks=[lambda body, msg: (got.append((body, msg)), msg.ack())],
                           accept=["json"]):
            with conn.Producer() as prod:
                for i in range(5):
                    prod.publish({"n": i, "s": "é"}, exchange=x, routing_key=f"orders.{i}",
                                 serializer="json", declare=[q], retry=False)
                prod.publish({"n": 99}, exchange=x, routing_key="other.1", serializer="json", retry=False)
            deadline = time.monotonic() + TIMEOUT
            while len(got) < 5 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.2)
                except socket.timeout:
                    pass
        check([b["n"] for b, _ in got] == list(range(5)), f"kombu got {[b for b, _ in got]}")
        check(got[0][0]["s"] == "é" and got[0][1].content_type == "application/json",
              f"kombu message {got[0][0]} {got[0][1].content_type}")
        sq = conn.SimpleQueue(uid("q"), queue_opts={"auto_delete": True})
        sq.put({"hello": "world"})
        m = sq.get(timeout=TIMEOUT)
        check(m.payload == {"hello": "world"}, f"SimpleQueue {m.payload}")
        m.ack()
        sq.close()


@scenario()
def librabbitmq_client():
    out = c_client("roundtrip", uid("q"), "500", "3000")
    check(out.startswith("ok:"), f"librabbitmq roundtrip: {out}")


_c_client = {}


def c_client(*args, timeout=60):
    """Run amqp_librabbitmq (built on first use when AMQP_C_CLIENT is unset): its output line."""
    path = os.environ.get("AMQP_C_CLIENT") or _c_client.get("path")
    if not path:
        d = tempfile.mkdtemp(prefix="tq-amqp-c-")
        path = os.path.join(d, "amqp_librabbitmq")
        p = subprocess.run(["cc", "-O2", "-Wall", "-o", path, os.path.join(HERE, "amqp_librabbitmq.c"),
                            "-lrabbitmq"], capture_output=True, text=True)
        if p.returncode:
            raise Fail(f"cannot build amqp_librabbitmq.c (librabbitmq-dev?): {p.stderr.strip()[:300]}")
        _c_client["path"] = path
    try:
        p = subprocess.run([path, HOST, str(PORT)] + list(args), capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"FAIL: amqp_librabbitmq {' '.join(args)}: hung for {timeout} s"
    out = (p.stdout.strip().splitlines() or [p.stderr.strip()])[-1:]
    return out[0] if out else f"exit {p.returncode}, no output"


# --- MQTT <-> AMQP ---------------------------------------------------------------------------

def mqtt_client(name):
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise Fail("no paho-mqtt: apt-get install python3-paho-mqtt")
    try:
        socket.create_connection((HOST, MQTT_PORT), 2).close()
    except OSError as e:
        if is_rabbitmq():
            raise Skip(f"no MQTT on {HOST}:{MQTT_PORT} ({e}): RabbitMQ's MQTT plugin is not enabled")
        raise Fail(f"no MQTT on {HOST}:{MQTT_PORT}: {e}")
    st = {"msgs": [], "subacks": set(), "conn": [], "cond": threading.Condition()}
    c = mqtt.Client(client_id=uid(name), clean_session=True, protocol=mqtt.MQTTv311)

    def note_(f):
        with st["cond"]:
            f()
            st["cond"].notify_all()
    c.on_connect = lambda *a: note_(lambda: st["conn"].append(a[3]))
    c.on_message = lambda cl, u, m: note_(lambda: st["msgs"].append((m.topic, m.payload, m.qos)))
    c.on_subscribe = lambda cl, u, mid, granted: note_(lambda: st["subacks"].add(mid))
    c.connect(HOST, MQTT_PORT, 30)
    c.loop_start()
    _live.append(_Paho(c))

    def wait(pred, why):
        deadline = time.monotonic() + TIMEOUT
        with st["cond"]:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(why)
                st["cond"].wait(left)
    wait(lambda: st["conn"], "no CONNACK")
    check(st["conn"][0] == 0, f"CONNACK {st['conn'][0]}")
    c.st, c.wait = st, wait
    return c


class _Paho:
    def __init__(self, c):
        self.c = c

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@scenario()
def bridge_mqtt_to_amqp():
    t = token()
    c = connect()
    ch = c.channel()
    q = queue(ch, exclusive=True)
    ch.queue_bind(q, "amq.topic", f"{t}.*")
    q2 = queue(ch, exclusive=True)
    ch.queue_bind(q2, "amq.topic", f"{t}.#")
    m = mqtt_client("bridge-pub")
    for qos, topic, payload in ((1, f"{t}/b", b"qos1"), (0, f"{t}/c", b"qos0"), (1, f"{t}/b/c", b"deep")):
        info = m.publish(topic, payload, qos)
        if qos:
            info.wait_for_publish(TIMEOUT)
            check(info.is_published(), f"PUBACK for {topic}")
    pump(c, lambda: count(ch, q)[0] >= 2 and count(ch, q2)[0] >= 3,
         why=lambda: f"{count(ch, q)[0]} / {count(ch, q2)[0]} messages from MQTT")
    got = [(x.exchange, x.routing_key, b) for x, _, b in get_all(ch, q)]
    check(got == [("amq.topic", f"{t}.b", b"qos1"), ("amq.topic", f"{t}.c", b"qos0")],
          f"{t}.* got {got}")
    got = [(x.routing_key, b) for x, _, b in get_all(ch, q2)]
    check(sorted(got) == sorted([(f"{t}.b", b"qos1"), (f"{t}.c", b"qos0"), (f"{t}.b.c", b"deep")]),
          f"{t}.# got {got}")
    c.close()


@scenario()
def bridge_amqp_to_mqtt():
    t = token()
    s1 = mqtt_client("bridge-sub1")
    s2 = mqtt_client("bridge-sub2")
    for cl, flt in ((s1, f"{t}/+"), (s2, f"{t}/b")):
        rc, mid = cl.subscribe(flt, 1)
        cl.wait(lambda: mid in cl.st["subacks"], f"no SUBACK for {flt}")
    c = connect()
    ch = c.channel()
    ch.basic_publish("amq.topic", f"{t}.b", b"from amqp")
    ch.basic_publish("amq.topic", f"{t}.c", b"c only", pika.BasicProperties(delivery_mode=2))
    ch.basic_publish("amq.topic", f"{t}.b.deep", b"too deep")
    s1.wait(lambda: len(s1.st["msgs"]) >= 2, f"MQTT {t}/+ got {s1.st['msgs']}")
    s2.wait(lambda: len(s2.st["msgs"]) >= 1, f"MQTT {t}/b got {s2.st['msgs']}")
    time.sleep(0.3)
    check([(tp, p) for tp, p, _ in s1.st["msgs"]] == [(f"{t}/b", b"from amqp"), (f"{t}/c", b"c only")],
          f"{t}/+ got {s1.st['msgs']}")
    check([(tp, p) for tp, p, _ in s2.st["msgs"]] == [(f"{t}/b", b"from amqp")], f"{t}/b got {s2.st['msgs']}")
    c.close()


# ---------------------------------------------------------------------------------------------

def run(name, fn, cap):
    box = {}
    CURRENT[0] = name

    def body():
        try:
            fn()
            box["ok"] = True
        except Skip as e:
            box["ok"] = True
            box["skip"] = str(e)
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
        return False, f"hung for {cap} s", dt, None
    return box.get("ok", False), box.get("why"), dt, box.get("skip")


# Only when named: needs a broker started with small pools (test_amqp.sh's second run:
# dataplane.mbufs_per_worker=4096, dataplane.msg_mbufs=1024).
EXPLICIT = {"memory_alarm"}


@scenario()
def memory_alarm():
    """connection.blocked when queued payloads fill memory, unblocked once they go."""
    events = []
    c = connect()
    c.add_on_connection_blocked_callback(lambda conn, m: events.append("blocked"))
    c.add_on_connection_unblocked_callback(lambda conn, m: events.append("unblocked"))
    ch = c.channel()
    q = ch.queue_declare(f"mem-{token()}").method.queue
    for i in range(5000):
        ch.basic_publish("", q, b"x" * 1000)
        if i % 10 == 0:  # a client that listens: it stops soon after connection.blocked
            c.process_data_events(0)
        if "blocked" in events:
            break
    c.process_data_events(1.0)
    check(events[:1] == ["blocked"], f"no connection.blocked after {i + 1} messages of 1000 B")
    # the blocked connection is not read: another one frees the memory, purging as long as
    # what the blocked one had already sent keeps arriving
    other = connect()
    och = other.channel()
    deadline = time.monotonic() + 2 * TIMEOUT
    while "unblocked" not in events and time.monotonic() < deadline:
        och.queue_purge(q)
        c.process_data_events(0.2)
    check(events == ["blocked", "unblocked"], f"events {events}")
    och.queue_delete(q)
    other.close()
    c.close()


def main():
    global HOST, PORT
    args = sys.argv[1:]
    if args == ["-l"]:
        print("\n".join(n for n, _, _ in SCENARIOS))
        return 0
    if len(args) < 2:
        print("usage: amqp_scenarios.py HOST PORT [SCENARIO...]   (-l lists them)", file=sys.stderr)
        return 2
    HOST, PORT = args[0], int(args[1])
    names = {n for n, _, _ in SCENARIOS}
    unknown = [a for a in args[2:] if a not in names]
    if unknown:
        print(f"unknown scenario(s): {' '.join(unknown)}; -l lists them", file=sys.stderr)
        return 2
    try:
        r = Raw()
        r.hello()
        r.close()
        BROKER.update(r.start["props"])
        print(f"broker: {BROKER.get('product')} {BROKER.get('version')} on {HOST}:{PORT}",
              file=sys.stderr, flush=True)
    except Exception as e:
        print(f"FAIL: no AMQP broker on {HOST}:{PORT}: {e}", flush=True)
        return 1
    todo = [s for s in SCENARIOS
            if (not args[2:] and s[0] not in EXPLICIT) or s[0] in args[2:]]
    failed = 0
    t0 = time.monotonic()
    for name, fn, cap in todo:
        ok, why, dt, skip = run(name, fn, cap)
        if skip:
            print(f"note: {name}: skipped: {skip}", file=sys.stderr, flush=True)
        if ok:
            print(f"ok: {name} ({dt:.1f} s){' (skipped)' if skip else ''}", flush=True)
        else:
            failed += 1
            print(f"FAIL: {name}: {why}", flush=True)
    print(f"{len(todo) - failed} passed, {failed} failed in {time.monotonic() - t0:.1f} s", flush=True)
    if _c_client.get("path"):  # built here: remove it (os._exit skips atexit)
        shutil.rmtree(os.path.dirname(_c_client["path"]), ignore_errors=True)
    sys.stdout.flush()
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
