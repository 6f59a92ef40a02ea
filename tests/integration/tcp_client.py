#!/usr/bin/env python3
"""Kernel-side TCP client for tachyond's built-in services.

  tcp_client.py echo HOST PORT BYTES [CONNS]   send BYTES of seeded random data on each of
                                               CONNS connections at once, read the echo,
                                               check SHA-256; prints "ok <bytes> <seconds>"
  tcp_client.py refused HOST PORT              expect ECONNREFUSED
  tcp_client.py chargen HOST PORT BYTES        read BYTES, check RFC 864 line structure
  tcp_client.py discard HOST PORT BYTES        send BYTES, close cleanly
  tcp_client.py synflood SRC HOST PORT COUNT   send COUNT bare SYNs from SRC (raw socket)
"""
import hashlib
import random
import selectors
import socket
import sys
import time


def payload(n, seed):
    rnd = random.Random(seed)
    return rnd.randbytes(n)


def echo(host, port, nbytes, conns):
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(conns):
        s = socket.create_connection((host, port), timeout=10)
        s.setblocking(False)
        data = payload(nbytes, i)
        state[s] = {"out": memoryview(data), "sha": hashlib.sha256(data).hexdigest(),
                    "in": hashlib.sha256(), "got": 0, "shut": False}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    start = time.time()
    deadline = start + 300
    done = 0
    while done < conns:
        if time.time() > deadline:
            sys.exit("timeout: %d of %d connections complete" % (done, conns))
        for key, ev in sel.select(timeout=1):
            s, st = key.fileobj, state[key.fileobj]
            if ev & selectors.EVENT_WRITE and len(st["out"]):
                n = s.send(st["out"][:65536])
                st["out"] = st["out"][n:]
                if not len(st["out"]):
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(262144)
                except BlockingIOError:
                    continue
                if not chunk:
                    sys.exit("connection closed early after %d bytes" % st["got"])
                st["in"].update(chunk)
                st["got"] += len(chunk)
                if st["got"] == nbytes:
                    if st["in"].hexdigest() != st["sha"]:
                        sys.exit("SHA-256 mismatch")
                    sel.unregister(s)
                    s.close()
                    done += 1
                elif st["got"] > nbytes:
                    sys.exit("more bytes than sent")
    print("ok %d %.2f" % (nbytes * conns, time.time() - start))


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=5)
    except ConnectionRefusedError:
        print("ok refused")
        return
    sys.exit("connected: expected ECONNREFUSED")


def chargen(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=10)
    buf = b""
    while len(buf) < nbytes:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("closed early")
        buf += chunk
    s.close()
    lines = buf[: nbytes - nbytes % 74].split(b"\r\n")[:-1]
    for a, b in zip(lines, lines[1:]):
        if len(a) != 72 or a[1:] != b[:-1]:
            sys.exit("bad chargen line")
    print("ok %d lines" % len(lines))


def discard(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(payload(nbytes, 7))
    s.shutdown(socket.SHUT_WR)
    if s.recv(1) != b"":
        sys.exit("discard answered")
    s.close()
    print("ok")


def synflood(src, host, port, count):
    import struct

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    rnd = random.Random(1)
    for i in range(count):
        sport = 1024 + (i * 7919) % 60000
        hdr = struct.pack("!HHIIBBHHH", sport, port, rnd.getrandbits(32), 0, 5 << 4, 0x02,
                          64240, 0, 0)
        pseudo = socket.inet_aton(src) + socket.inet_aton(host) + struct.pack("!BBH", 0, 6,
                                                                              len(hdr))
        data = pseudo + hdr
        total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        hdr = hdr[:16] + struct.pack("!H", ~total & 0xFFFF) + hdr[18:]
        s.sendto(hdr, (host, 0))
    print("ok %d SYNs" % count)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "synflood":
        synflood(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    host, port = sys.argv[2], int(sys.argv[3])
    if mode == "echo":
        echo(host, port, int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    elif mode == "refused":
        refused(host, port)
    elif mode == "chargen":
        chargen(host, port, int(sys.argv[4]))
    elif mode == "discard":
        discard(host, port, int(sys.argv[4]))
