#!/usr/bin/python3
# Clients for test_auth.sh: what AMQP and MQTT users see of tachyond's users, permissions and
# ACLs, one probe per run, its outcome on stdout in a form the shell compares:
#
#   auth_clients.py HOST AMQP_PORT MQTT_PORT PROBE ARGS...
#
#   amqp USER PASS VHOST OP...   connect with pika (PLAIN), then run each OP on a channel and
#                                print one line per step: "open: ok" or "open: CODE TEXT"
#                                (the broker closed the connection), then "OP: RESULT".
#                                A refused OP closes its channel ("403 ACCESS_REFUSED - ...");
#                                the next OP gets a new channel on the same connection.
#       declare:Q                queue.declare (not passive)
#       declare_x:X:TYPE         exchange.declare
#       bind:Q:X:KEY             queue.bind
#       publish:X:KEY:BODY       basic.publish in confirm mode ("ok" once confirmed)
#       get:Q                    basic.get: the body, or "empty"
#       consume:Q                basic.consume (and cancel)
#       count:Q                  passive queue.declare: the message count
#       ctl:ARGS                 run "$TACHYONCTL -p $TQ_PREFIX ARGS" (split on spaces) while
#                                the connection and its channel stay open: "rc=N"
#   mqtt USER PASS 3|5           CONNECT (raw socket): the CONNACK code, "0x00" ... "0x86"
#   mqtt_pub USER PASS 3|5 TOPIC QoS 1 PUBLISH: "connack=0x00 puback=0xRR" (3.1.1 has no
#                                reason code: 0x00 when acknowledged)
#   mqtt_sub USER PASS 3|5 FILTER SUBSCRIBE at QoS 1: "connack=0x00 suback=0xRR"
#   mqtt_drop WATCHER WPASS USER PASS TOPIC... a watcher (3.1.1) subscribes to "#", USER
#                                publishes (3.1.1, QoS 1) to each TOPIC in order; prints the
#                                topics the watcher got, "got: a b" (sorted by arrival)
#
# Every wait is bounded (TIMEOUT s). MQTT is spoken on a raw socket where the reason codes
# matter (paho 1.6 does not show PUBACK reason codes); pika is the AMQP client. Run with
# /usr/bin/python3: pika and paho live in Debian's dist-packages.
import os
import re
import socket
import struct
import subprocess
import sys
import time

import pika

TIMEOUT = 5.0
QUIET = 1.0


# ---- AMQP --------------------------------------------------------------------------------


def closed_text(e):
    """'CODE TEXT' of a pika exception that carries a close from the broker."""
    for x in (e,) + tuple(getattr(e, "args", ())):
        code = getattr(x, "reply_code", None)
        if code is not None:
            return f"{code} {getattr(x, 'reply_text', '')}"
    # pika's connection errors carry the close only as text: "...: (403) 'ACCESS_REFUSED - ...'"
    m = re.search(r"\((\d{3})\) (['\"])(.*)\2", str(e))
    if m:
        return f"{m.group(1)} {m.group(3)}"
    return f"error {type(e).__name__} {e}"


def amqp(host, port, user, password, vhost, ops):
    params = pika.ConnectionParameters(
        host, port, vhost, pika.PlainCredentials(user, password), connection_attempts=1,
        socket_timeout=TIMEOUT, blocked_connection_timeout=TIMEOUT, heartbeat=0)
    try:
        conn = pika.BlockingConnection(params)
    except Exception as e:  # pika wraps the broker's connection.close
        print(f"open: {closed_text(e)}", flush=True)
        return
    print("open: ok", flush=True)
    ch = None
    for op in ops:
        kind, _, rest = op.partition(":")
        a = rest.split(":")
        try:
            if ch is None or not ch.is_open:
                ch = conn.channel()
                ch.confirm_delivery()
            if kind == "declare":
                ch.queue_declare(a[0])
                res = "ok"
            elif kind == "declare_x":
                ch.exchange_declare(a[0], a[1])
                res = "ok"
            elif kind == "bind":
                ch.queue_bind(a[0], a[1], a[2])
                res = "ok"
            elif kind == "publish":
                ch.basic_publish(a[0], a[1], a[2].encode())
                res = "ok"
            elif kind == "get":
                _, _, body = ch.basic_get(a[0], auto_ack=True)
                res = body.decode() if body is not None else "empty"
            elif kind == "consume":
                tag = ch.basic_consume(a[0], lambda *x: None, auto_ack=True)
                ch.basic_cancel(tag)
                res = "ok"
            elif kind == "count":
                res = str(ch.queue_declare(a[0], passive=True).method.message_count)
            elif kind == "ctl":
                cmd = [os.environ["TACHYONCTL"], "-p", os.environ["TQ_PREFIX"]] + rest.split(" ")
                res = f"rc={subprocess.run(cmd, stdout=subprocess.DEVNULL, timeout=30).returncode}"
            else:
                res = f"unknown op {kind}"
        except pika.exceptions.ChannelClosedByBroker as e:
            res = closed_text(e)
            ch = None
        except pika.exceptions.ConnectionClosedByBroker as e:
            print(f"{op}: connection closed: {closed_text(e)}", flush=True)
            return
        except Exception as e:
            res = f"error {type(e).__name__} {e}"
            ch = None
        print(f"{op}: {res}", flush=True)
    try:
        conn.close()
    except Exception:
        pass


# ---- MQTT, raw ---------------------------------------------------------------------------


def mstr(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def vbi(n):
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def packet(first, body):
    return bytes([first]) + vbi(len(body)) + body


class Mqtt:
    def __init__(self, host, port, v5):
        self.v5 = v5
        # 2 x TIMEOUT: a lost SYN is sent again after 1 s, 3 s, 7 s on a loaded machine
        self.s = socket.create_connection((host, port), timeout=2 * TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read(self, timeout=TIMEOUT):
        """The next packet as (type byte, body), or None on close or timeout."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self.buf) and i < 5:
                    n += (self.buf[i] & 0x7F) * mult
                    mult *= 128
                    if not self.buf[i] & 0x80:
                        break
                    i += 1
                if i < len(self.buf) and len(self.buf) >= i + 1 + n and not self.buf[i] & 0x80:
                    first, body = self.buf[0], self.buf[i + 1:i + 1 + n]
                    self.buf = self.buf[i + 1 + n:]
                    return first, body
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def connect(self, user, password, cid):
        flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
        vh = mstr("MQTT") + bytes([5 if self.v5 else 4, flags]) + struct.pack("!H", 30)
        if self.v5:
            vh += b"\x00"
        pl = mstr(cid) + (mstr(user) if user is not None else b"")
        pl += mstr(password) if password is not None else b""
        self.send(packet(0x10, vh + pl))
        p = self.read()
        if p is None or p[0] >> 4 != 2 or len(p[1]) < 2:
            return "none"
        return f"0x{p[1][1]:02x}"

    def props(self):
        return b"\x00" if self.v5 else b""

    def subscribe(self, flt, pid=1):
        self.send(packet(0x82, struct.pack("!H", pid) + self.props() + mstr(flt) + b"\x01"))
        while True:
            p = self.read()
            if p is None:
                return "none"
            if p[0] >> 4 == 9:
                body = p[1]
                i = 2
                if self.v5:  # properties length (short here)
                    i += 1 + body[2]
                return f"0x{body[i]:02x}"

    def publish(self, topic, payload, pid=1):
        self.send(packet(0x32, mstr(topic) + struct.pack("!H", pid) + self.props() + payload))
        while True:
            p = self.read()
            if p is None:
                return "none"
            if p[0] >> 4 == 4:
                return f"0x{p[1][2]:02x}" if len(p[1]) > 2 else "0x00"


def main():
    host, aport, mport, probe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    a = sys.argv[5:]
    cid = f"auth-{os.getpid()}"
    if probe == "amqp":
        amqp(host, aport, a[0], a[1], a[2], a[3:])
    elif probe == "mqtt":
        print(Mqtt(host, mport, a[2] == "5").connect(a[0], a[1], cid))
    elif probe == "mqtt_pub":
        m = Mqtt(host, mport, a[2] == "5")
        ca = m.connect(a[0], a[1], cid)
        print(f"connack={ca} puback={m.publish(a[3], b'x') if ca == '0x00' else '-'}")
    elif probe == "mqtt_sub":
        m = Mqtt(host, mport, a[2] == "5")
        ca = m.connect(a[0], a[1], cid)
        print(f"connack={ca} suback={m.subscribe(a[3]) if ca == '0x00' else '-'}")
    elif probe == "mqtt_drop":
        w = Mqtt(host, mport, False)
        ca = w.connect(a[0], a[1], cid + "-w")
        sa = w.subscribe("#") if ca == "0x00" else "-"
        if sa != "0x01":
            print(f"watcher: connack={ca} suback={sa}")
            return
        p = Mqtt(host, mport, False)
        ca = p.connect(a[2], a[3], cid + "-p")
        if ca != "0x00":
            print(f"publisher: connack={ca}")
            return
        for i, t in enumerate(a[4:]):
            p.publish(t, b"x", pid=i + 1)
        got, end = [], time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            pk = w.read(timeout=QUIET if got else end - time.monotonic())
            if pk is None:
                break
            if pk[0] >> 4 == 3:
                tl = struct.unpack("!H", pk[1][:2])[0]
                got.append(pk[1][2:2 + tl].decode())
                if pk[0] & 0x06:  # QoS 1: acknowledge
                    w.send(packet(0x40, pk[1][2 + tl:4 + tl]))
        print("got: " + " ".join(got))
    else:
        sys.exit(f"unknown probe {probe}")


if __name__ == "__main__":
    main()
