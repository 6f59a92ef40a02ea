#!/usr/bin/python3
"""MQTT 5 enhanced authentication with SCRAM-SHA-256 (RFC 5802, RFC 7677), as a client
written from the RFCs (paho-mqtt 1.6 has no AUTH support): CONNECT with client-first,
AUTH 0x18 with server-first, AUTH with client-final, CONNACK with server-final, whose
signature the client checks. Each case prints "ok: NAME" or "FAIL: NAME: WHY".

usage: scram_client.py HOST PORT USER PASSWORD
"""
import base64
import hashlib
import hmac
import os
import socket
import sys

HOST, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
failures = 0


def vbi(n):
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def s16(b):
    return len(b).to_bytes(2, "big") + b


def props(method, data):
    p = b"\x15" + s16(method.encode())
    if data is not None:
        p += b"\x16" + s16(data)
    return vbi(len(p)) + p


def packet(hdr, body):
    return bytes([hdr]) + vbi(len(body)) + body


def connect(cid, method, data):
    var = s16(b"MQTT") + b"\x05" + b"\x02" + (30).to_bytes(2, "big") + props(method, data)
    return packet(0x10, var + s16(cid.encode()))


def auth(method, data):
    return packet(0xF0, b"\x18" + props(method, data))


def read_packet(sock):
    def need(n):
        b = b""
        while len(b) < n:
            chunk = sock.recv(n - len(b))
            if not chunk:
                raise EOFError("connection closed")
            b += chunk
        return b

    hdr = need(1)[0]
    mult, n = 1, 0
    while True:
        d = need(1)[0]
        n += (d & 0x7F) * mult
        mult *= 128
        if not d & 0x80:
            break
    return hdr, need(n)


def parse_props(b, i):
    n, mult = 0, 1
    while True:
        d = b[i]
        i += 1
        n += (d & 0x7F) * mult
        mult *= 128
        if not d & 0x80:
            break
    end, out = i + n, {}
    while i < end:
        pid = b[i]
        i += 1
        if pid in (0x15, 0x16, 0x1F):
            ln = int.from_bytes(b[i:i + 2], "big")
            out[pid] = b[i + 2:i + 2 + ln]
            i += 2 + ln
        elif pid in (0x11, 0x27):
            out[pid] = b[i:i + 4]
            i += 4
        elif pid in (0x21, 0x22, 0x13):
            out[pid] = b[i:i + 2]
            i += 2
        elif pid in (0x24, 0x25, 0x28, 0x29, 0x2A):
            out[pid] = b[i:i + 1]
            i += 1
        elif pid == 0x12 or pid == 0x1A or pid == 0x1C:
            ln = int.from_bytes(b[i:i + 2], "big")
            out[pid] = b[i + 2:i + 2 + ln]
            i += 2 + ln
        elif pid == 0x26:
            for _ in range(2):
                ln = int.from_bytes(b[i:i + 2], "big")
                i += 2 + ln
        else:
            raise ValueError("property %#x" % pid)
    return out


def result(name, cond, why=""):
    global failures
    if cond:
        print("ok: " + name)
    else:
        failures += 1
        print("FAIL: %s: %s" % (name, why))


def scram(user, password, cid):
    """Run the exchange; returns (connack reason, server signature ok or None)."""
    sock = socket.create_connection((HOST, PORT), timeout=10)
    try:
        cnonce = base64.b64encode(os.urandom(18)).decode()
        bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
        sock.sendall(connect(cid, "SCRAM-SHA-256", ("n,," + bare).encode()))
        hdr, body = read_packet(sock)
        if hdr >> 4 == 2:  # CONNACK at once: refused before any exchange
            return body[1], None
        if hdr >> 4 != 15 or body[0] != 0x18:
            raise ValueError("expected AUTH 0x18, got %#x %r" % (hdr, body[:4]))
        p = parse_props(body, 1)
        if p.get(0x15) != b"SCRAM-SHA-256":
            raise ValueError("AUTH without our method: %r" % p)
        server_first = p[0x16].decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        if not attrs["r"].startswith(cnonce):
            raise ValueError("server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        it = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join([bare, server_first, without_proof]).encode()
        client_sig = hmac.new(stored_key, auth_msg, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        final = without_proof + ",p=" + base64.b64encode(proof).decode()
        sock.sendall(auth("SCRAM-SHA-256", final.encode()))
        hdr, body = read_packet(sock)
        if hdr >> 4 != 2:
            raise ValueError("expected CONNACK, got %#x" % hdr)
        reason = body[1]
        if reason != 0:
            return reason, None
        p = parse_props(body, 2)
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        want = "v=" + base64.b64encode(hmac.new(server_key, auth_msg, "sha256").digest()).decode()
        return reason, p.get(0x16, b"").decode() == want
    finally:
        sock.close()


def other_method():
    sock = socket.create_connection((HOST, PORT), timeout=10)
    try:
        sock.sendall(connect("scram-other", "DIGEST-MD5", b"x"))
        hdr, body = read_packet(sock)
        return hdr >> 4, body[1]
    finally:
        sock.close()


def main():
    try:
        reason, sig = scram(USER, PASSWORD, "scram-ok")
        result("scram_right_password", reason == 0 and sig is True,
               "CONNACK %#x, server signature %s" % (reason, sig))
        reason, sig = scram(USER, PASSWORD + "x", "scram-bad")
        result("scram_wrong_password", reason == 0x86, "CONNACK %#x" % reason)
        reason, sig = scram("nobody-" + USER, PASSWORD, "scram-nouser")
        result("scram_unknown_user", reason == 0x86, "CONNACK %#x" % reason)
        kind, reason = other_method()
        result("scram_other_method", kind == 2 and reason == 0x8C,
               "packet %d reason %#x" % (kind, reason))
    except Exception as e:  # noqa: BLE001 - any error is a failed scenario here
        result("scram_exchange", False, repr(e))
    return 1 if failures else 0


sys.exit(main())
