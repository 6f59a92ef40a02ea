#!/usr/bin/env python3
"""Write the libFuzzer seed corpora under tests/fuzz/corpus/<driver>/ (committed as files).

Re-run after changing a seed: python3 tests/fuzz/make_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = bytes.fromhex("020000000001")
PEER = bytes.fromhex("525400123456")
BCAST = b"\xff" * 6


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def eth(dst, src, etype):
    return dst + src + struct.pack("!H", etype)


def arp(op=1, sha=PEER, sip="198.18.0.7", tha=b"\0" * 6, tip="198.18.0.1",
        htype=1, ptype=0x0800, hlen=6, plen=4):
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + sha + ip4(sip) + tha + ip4(tip)


def icmp(typ=8, code=0, ident=0x1D1D, seq=1, data=bytes(range(56))):
    body = struct.pack("!BBHHH", typ, code, 0, ident, seq) + data
    return body[:2] + struct.pack("!H", csum(body)) + body[4:]


def ipv4(payload, src="198.18.0.7", dst="198.18.0.1", proto=1, flags=0x4000, ihl=5,
         total=None, options=b"", good_csum=True):
    total = 4 * ihl + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x4242, flags, 64, proto, 0,
                      ip4(src), ip4(dst)) + options
    c = csum(hdr) if good_csum else csum(hdr) ^ 0x0101
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def pad(frame):
    return frame + b"\0" * max(0, 60 - len(frame))


SEEDS = {
    "eth": {
        "ipv4": pad(eth(OURS, PEER, 0x0800) + ipv4(icmp())),
        "arp_bcast": pad(eth(BCAST, PEER, 0x0806) + arp()),
        "vlan": pad(eth(OURS, PEER, 0x8100) + b"\x00\x05\x08\x00"),
        "qinq": pad(eth(OURS, PEER, 0x88A8) + b"\x00\x05\x81\x00"),
        "mcast": pad(eth(bytes.fromhex("01005e000001"), PEER, 0x0800)),
        "runt": eth(OURS, PEER, 0x0800)[:13],
        "header_only": eth(OURS, PEER, 0x86DD),
    },
    "arp": {
        "request": arp(),
        "reply": arp(op=2, tha=OURS),
        "padded": arp() + b"\0" * 18,
        "probe": arp(sip="0.0.0.0"),
        "bad_htype": arp(htype=6),
        "bad_op": arp(op=3),
        "mcast_sender": arp(sha=bytes.fromhex("01005e000001")),
        "truncated": arp()[:27],
    },
    "ipv4": {
        "echo": ipv4(icmp()),
        "padded": ipv4(icmp(data=b"")) + b"\0" * 18,
        "options": ipv4(icmp(), ihl=6, options=b"\x01\x01\x01\x00"),
        "fragment": ipv4(icmp(), flags=0x2000),
        "bad_csum": ipv4(icmp(), good_csum=False),
        "martian": ipv4(icmp(), src="127.0.0.1"),
        "long_total": ipv4(icmp(), total=1500),
        "udp": ipv4(b"\x00\x35\x00\x35\x00\x08\x00\x00", proto=17),
        "truncated": ipv4(icmp())[:19],
    },
    "icmp": {
        "echo_request": icmp(),
        "echo_reply": icmp(typ=0),
        "empty_echo": icmp(data=b""),
        "zero_echo": icmp(ident=0, seq=0, data=b"\0" * 8),
        "odd": icmp(data=b"abc"),
        "unreachable": icmp(typ=3, code=1, ident=0, seq=0, data=b"\x45" + b"\0" * 27),
        "bad_csum": icmp()[:2] + b"\0\0" + icmp()[4:],
        "truncated": icmp()[:7],
    },
    "json": {
        "counters": b'{"/tachyon/counters": {"rx_packets": 12, "tx_packets": 3, "help": "x"}}',
        "ports": b'{"/tachyon/ports": [0, 1, 2]}',
        "nested": b'{"a": [true, false, null, {"b": [[], {}]}], "c": -1.5e+3}',
        "escapes": b'"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac"',
        "deep": b"[" * 32 + b"]" * 32,
        "too_deep": b"[" * 33 + b"]" * 33,
        "trailing": b"1 x",
        "unterminated": b'{"a": "b',
        "backslash_end": b'"abc\\',
        "number": b"18446744073709551615",
    },
}


def main():
    for driver, seeds in SEEDS.items():
        d = os.path.join(HERE, "corpus", driver)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
