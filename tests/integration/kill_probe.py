#!/usr/bin/python3
"""Wait to be closed by the operator (tachyonctl close_connection) and say how.

usage: kill_probe.py amqp HOST PORT USER PASS   -> "closed: 320 CONNECTION_FORCED - ..."
       kill_probe.py mqtt5 HOST PORT USER PASS  -> "disconnect: 0x98"
Prints "ready" once connected (the caller closes the connection then), and gives up after
20 s ("timeout").
"""
import socket
import sys
import time

kind, host, port, user, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


def amqp():
    import pika
    params = pika.ConnectionParameters(host, port, "/", pika.PlainCredentials(user, password),
                                       heartbeat=0, socket_timeout=5)
    conn = pika.BlockingConnection(params)
    conn.channel()
    print("ready", flush=True)
    end = time.monotonic() + 20
    try:
        while time.monotonic() < end:
            conn.process_data_events(time_limit=0.2)
        print("timeout")
    except pika.exceptions.ConnectionClosedByBroker as e:
        print("closed: %d %s" % (e.reply_code, e.reply_text))
    except Exception as e:  # noqa: BLE001 - report whatever ended it
        print("error: %r" % e)


def s16(b):
    return len(b).to_bytes(2, "big") + b


def mqtt5():
    s = socket.create_connection((host, port), timeout=20)
    var = s16(b"MQTT") + b"\x05" + b"\xc2" + (60).to_bytes(2, "big") + b"\x00"
    body = var + s16(b"kill-probe") + s16(user.encode()) + s16(password.encode())
    s.sendall(bytes([0x10, len(body)]) + body)
    ack = s.recv(64)
    if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
        print("connack: %r" % ack)
        return
    print("ready", flush=True)
    try:
        data = s.recv(64)
    except socket.timeout:
        print("timeout")
        return
    if data and data[0] == 0xE0 and len(data) >= 3:
        print("disconnect: 0x%02x" % data[2])
    else:
        print("closed without DISCONNECT: %r" % data)


amqp() if kind == "amqp" else mqtt5()
