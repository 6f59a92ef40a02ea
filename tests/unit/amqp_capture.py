#!/usr/bin/python3
"""Capture the AMQP 0-9-1 frames real clients send, for test_amqp_codec.c.

    /usr/bin/python3 tests/unit/amqp_capture.py > /tmp/vectors.c

Runs a minimal broker on 127.0.0.1 (an ephemeral port; it answers just enough of the
handshake and of each synchronous method for the client to go on, encoding its answers
with pika.spec) and drives two clients against it: pika (python3-pika) and librabbitmq's
amqp-publish (amqp-tools). Every frame a client sends is printed as a C array, named after
the client and the frame's method, with the broker's own frames from pika.spec as well.
Needs python3-pika and amqp-tools; nothing leaves 127.0.0.1; both ends stop by themselves.
"""
import datetime
import decimal
import socket
import struct
import subprocess
import sys
import threading

import pika
import pika.frame
import pika.spec as spec

CAPTURED = []  # (name, bytes)


def method_name(payload):
    cid, mid = struct.unpack("!HH", payload[:4])
    cls = spec.methods.get(cid << 16 | mid)
    return cls.NAME.replace(".", "_").replace("-", "_").lower() if cls else "m%d_%d" % (cid, mid)


def recv_exact(sock, n):
    b = b""
    while len(b) < n:
        chunk = sock.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


BROKER = {}  # the broker's frames, as pika.spec encodes them: first of each method


def send(sock, ch, method):
    frame = pika.frame.Method(ch, method).marshal()
    BROKER.setdefault("pikaspec_" + method_name(frame[7:-1]), frame)
    sock.sendall(frame)


SERVER_PROPS = {
    "product": "RabbitMQ",
    "version": "3.11.9",
    "platform": "Erlang/OTP 25.2.3",
    "capabilities": {
        "publisher_confirms": True,
        "exchange_exchange_bindings": True,
        "basic.nack": True,
        "consumer_cancel_notify": True,
        "connection.blocked": True,
        "consumer_priorities": True,
        "authentication_failure_close": True,
        "per_consumer_qos": True,
        "direct_reply_to": True,
    },
}

# the broker's answer to each synchronous method a client sends
ANSWERS = {
    spec.Connection.Open: lambda m: spec.Connection.OpenOk(),
    spec.Channel.Open: lambda m: spec.Channel.OpenOk(),
    spec.Channel.Close: lambda m: spec.Channel.CloseOk(),
    spec.Confirm.Select: lambda m: None if m.nowait else spec.Confirm.SelectOk(),
    spec.Exchange.Declare: lambda m: spec.Exchange.DeclareOk(),
    spec.Exchange.Bind: lambda m: spec.Exchange.BindOk(),
    spec.Queue.Declare: lambda m: spec.Queue.DeclareOk(m.queue or "amq.gen-1", 0, 0),
    spec.Queue.Bind: lambda m: spec.Queue.BindOk(),
    spec.Queue.Unbind: lambda m: spec.Queue.UnbindOk(),
    spec.Queue.Purge: lambda m: spec.Queue.PurgeOk(0),
    spec.Queue.Delete: lambda m: spec.Queue.DeleteOk(0),
    spec.Basic.Qos: lambda m: spec.Basic.QosOk(),
    spec.Basic.Consume: lambda m: spec.Basic.ConsumeOk(m.consumer_tag or "ctag-1"),
    spec.Basic.Cancel: lambda m: spec.Basic.CancelOk(m.consumer_tag),
    spec.Basic.Get: lambda m: spec.Basic.GetEmpty(),
}


def broker(lsock, client, frames_out):
    sock, _ = lsock.accept()
    with sock:
        hdr = recv_exact(sock, 8)
        CAPTURED.append(("%s_protocol_header" % client, hdr))
        send(sock, 0, spec.Connection.Start(server_properties=SERVER_PROPS,
                                            mechanisms="PLAIN AMQPLAIN", locales="en_US"))
        tag = 0
        confirm = False
        while True:
            head = recv_exact(sock, 7)
            typ, ch, size = struct.unpack("!BHI", head)
            frame = head + recv_exact(sock, size + 1)
            payload = frame[7:-1]
            if typ == 1:
                name = method_name(payload)
            else:
                name = {2: "header", 3: "body", 8: "heartbeat"}.get(typ, "frame%d" % typ)
            frames_out.append(("%s_%s" % (client, name), frame))
            if typ != 1:
                continue
            _, method = pika.frame.decode_frame(frame)[1].channel_number, None
            m = pika.frame.decode_frame(frame)[1].method
            if isinstance(m, spec.Connection.StartOk):
                send(sock, 0, spec.Connection.Tune(2047, 131072, 60))
            elif isinstance(m, spec.Connection.Close):
                send(sock, 0, spec.Connection.CloseOk())
                return
            elif isinstance(m, spec.Confirm.Select):
                confirm = True
                if not m.nowait:
                    send(sock, ch, spec.Confirm.SelectOk())
            elif isinstance(m, spec.Basic.Publish):
                if confirm:
                    tag += 1
                    send(sock, ch, spec.Basic.Ack(tag, False))
            elif type(m) in ANSWERS:
                ans = ANSWERS[type(m)](m)
                if ans is not None:
                    send(sock, ch, ans)


def run(client, drive):
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    frames = []
    t = threading.Thread(target=broker, args=(lsock, client, frames), daemon=True)
    t.start()
    drive(port)
    t.join(10)
    lsock.close()
    CAPTURED.extend(frames)


def drive_pika(port):
    params = pika.ConnectionParameters("127.0.0.1", port, heartbeat=0,
                                       credentials=pika.PlainCredentials("guest", "guest"))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("tq.events", "topic", durable=True, auto_delete=False,
                        arguments={"alternate-exchange": "tq.ae"})
    ch.queue_declare("tq.q1", durable=True, exclusive=False, auto_delete=True,
                     arguments={"x-max-length": 1000, "x-message-ttl": 60000,
                                "x-queue-type": "classic"})
    ch.queue_bind("tq.q1", "tq.events", routing_key="sensors.#")
    ch.exchange_bind("tq.dst", "tq.events", routing_key="a.b")
    ch.basic_qos(prefetch_count=10)
    props = pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8",
        headers={"x-trace": "abc", "n": 42, "neg": -7, "flag": True, "dec": decimal.Decimal("1.5"),
                 "when": datetime.datetime(2023, 11, 14, 22, 13, 20), "big": 1 << 40,
                 "nested": {"k": "v", "list": [1, "two", {"three": 3}]}, "none": None},
        delivery_mode=2, priority=5, correlation_id="corr-1", reply_to="amq.rabbitmq.reply-to",
        expiration="60000", message_id="msg-1", timestamp=1700000000, type="reading",
        user_id="guest", app_id="tachyon-test", cluster_id="c1")
    ch.basic_publish("tq.events", "sensors.t1", b'{"t": 21.5}', props, mandatory=True)
    ch.basic_consume("tq.q1", lambda *a: None, auto_ack=False, exclusive=False,
                     consumer_tag="ctag-pika", arguments={"x-priority": 5})
    ch.basic_ack(delivery_tag=7, multiple=True)
    ch.basic_nack(delivery_tag=8, multiple=False, requeue=True)
    ch.basic_reject(delivery_tag=9, requeue=False)
    ch.close()
    conn.close()


def drive_amqp_tools(port):
    subprocess.run(["amqp-publish", "--server=127.0.0.1", "--port=%d" % port, "--heartbeat=0",
                    "-e", "amq.topic", "-r", "a.b", "-p", "-C", "text/plain", "-E", "utf-8",
                    "-H", "k: v", "-b", "hello"], check=True, timeout=10)


def main():
    run("pika", drive_pika)
    run("librabbitmq", drive_amqp_tools)
    print("/* captured by tests/unit/amqp_capture.py: pika %s, librabbitmq (amqp-tools) */"
          % pika.__version__)
    seen = {}
    for name, b in CAPTURED + sorted(BROKER.items()):
        n = seen.get(name, 0)
        seen[name] = n + 1
        cname = name if n == 0 else "%s_%d" % (name, n + 1)
        print("static const uint8_t %s[%d] = {" % (cname, len(b)))
        for i in range(0, len(b), 12):
            print("\t" + " ".join("0x%02x," % x for x in b[i:i + 12]))
        print("};")
    return 0


if __name__ == "__main__":
    sys.exit(main())
