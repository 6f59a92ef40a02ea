#!/usr/bin/env python3
"""Send hand-made Ethernet frames out of a Linux interface (AF_PACKET), to feed tachyond
malformed input through its TAP: each kind is sent COUNT times; prints nothing.

usage: inject.py IFACE DST_MAC SRC_MAC ROUTER_IP HOST_IP KIND COUNT
"""
import socket
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(":"))


def ipv4(src, dst, proto, payload, ihl=5, frag=0x4000, total=None, bad_csum=False, opts=b""):
    total = total if total is not None else ihl * 4 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst)) + opts
    c = csum(hdr)
    if bad_csum:
        c ^= 0x5555
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def icmp_echo(bad_csum=False):
    body = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + bytes(range(32))
    c = csum(body) ^ (0x0101 if bad_csum else 0)
    return body[:2] + struct.pack("!H", c) + body[4:]


def arp(op, sha, sip, tha, tip):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, socket.inet_aton(sip), tha,
                       socket.inet_aton(tip))


def main():
    iface, dst, src, router, host, kind, count = sys.argv[1:8]
    dst, src, count = mac(dst), mac(src), int(count)
    eth = lambda d, t: d + src + struct.pack("!H", t)  # noqa: E731
    frames = {
        "ipv4_bad_checksum": eth(dst, 0x0800) + ipv4(host, router, 1, icmp_echo(), bad_csum=True),
        "ipv4_fragment": eth(dst, 0x0800) + ipv4(host, router, 1, icmp_echo(), frag=0x2000),
        "ipv4_options": eth(dst, 0x0800) + ipv4(host, router, 1, icmp_echo(), ihl=6,
                                                opts=b"\x01\x01\x01\x00"),
        "ipv4_bad_total_len": eth(dst, 0x0800) + ipv4(host, router, 1, icmp_echo(), total=1400),
        "ipv4_truncated": eth(dst, 0x0800) + b"\x45\x00\x00\x54\x00",
        "ipv4_bad_version": eth(dst, 0x0800) + b"\x65" + ipv4(host, router, 1, icmp_echo())[1:],
        "ipv4_not_for_us": eth(dst, 0x0800) + ipv4(host, "198.18.0.77", 1, icmp_echo()),
        "ipv4_unknown_proto": eth(dst, 0x0800) + ipv4(host, router, 253, b"x" * 20),
        "icmp_bad_checksum": eth(dst, 0x0800) + ipv4(host, router, 1, icmp_echo(bad_csum=True)),
        "eth_unknown_type": eth(dst, 0x88B5) + b"local experimental ethertype".ljust(46, b"."),
        "eth_vlan": eth(dst, 0x8100) + b"\x00\x05\x08\x00" + ipv4(host, router, 1, icmp_echo()),
        "eth_not_for_us": eth(mac("02:00:00:00:00:99"), 0x0800) + ipv4(host, router, 1,
                                                                      icmp_echo()),
        "arp_not_for_us": eth(b"\xff" * 6, 0x0806) + arp(1, src, host, b"\0" * 6, "198.18.0.99"),
        "arp_bad_format": eth(b"\xff" * 6, 0x0806) + b"\x00\x06" + arp(1, src, host, b"\0" * 6,
                                                                        router)[2:],
        "arp_conflict": eth(b"\xff" * 6, 0x0806) + arp(1, src, router, b"\0" * 6, router),
    }
    frame = frames[kind]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for _ in range(count):
        s.send(frame if kind == "ipv4_truncated" else frame.ljust(60, b"\0"))


if __name__ == "__main__":
    main()
