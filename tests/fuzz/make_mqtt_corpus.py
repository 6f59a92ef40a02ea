#!/usr/bin/env python3
"""Write the seed corpus of fuzz_mqtt under tests/fuzz/corpus/mqtt/ (committed as files).

Each seed is one byte choosing the protocol level (0: 3.1, 1: 3.1.1, 2: 5.0) followed by a
stream of packets: the captures of tests/unit/test_mqtt_codec.c (mosquitto 2.0.11 and
paho-mqtt 1.6.1 clients) and server packets written from the specs.
Re-run after changing a seed: python3 tests/fuzz/make_mqtt_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
L31, L311, L5 = b"\x00", b"\x01", b"\x02"


def vbi(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack("!H", len(x)) + x


def pkt(first, body):
    return bytes([first]) + vbi(len(body)) + body


def props(*items):
    b = b"".join(items)
    return vbi(len(b)) + b


def p_byte(i, v):
    return bytes([i, v])


def p_u16(i, v):
    return bytes([i]) + struct.pack("!H", v)


def p_u32(i, v):
    return bytes([i]) + struct.pack("!I", v)


def p_str(i, v):
    return bytes([i]) + s(v)


def p_user(k, v):
    return b"\x26" + s(k) + s(v)


def connect(level, flags=0x02, cid="c", props_=b"", tail=b"", name=None):
    name = name or ("MQIsdp" if level == 3 else "MQTT")
    body = s(name) + bytes([level, flags]) + b"\x00\x3c" + (props_ if level == 5 else b"")
    return pkt(0x10, body + s(cid) + tail)


CAPTURED = {
    "mosq31_pub": L31 + bytes.fromhex(
        "101800064d51497364700302003c000a6d71747433312d707562"
        "3214000c73656e736f72732f74656d70000132312e35" "e000"),
    "mosq311_pub_user": L311 + bytes.fromhex(
        "102100044d51545404c2003c00067075623331310005616c6963650006736563726574"
        "3314000c73656e736f72732f74656d70000132312e35" "e000"),
    "mosq311_will": L311 + bytes.fromhex(
        "101900044d515454042e001e0000000677696c6c2f740003627965"
        "300a0003612f6268656c6c6f" "e000"),
    "mosq5_pub_props": L5 + bytes.fromhex(
        "102b00044d5154540502003c1a1100000e1021000a270001000022000526000377686f00026d65000470756235"
        "343f000c73656e736f72732f74656d7000012a020000003c2600016b00017603000a746578742f706c61696e"
        "080006726573702f74090003616263010132312e35" "62020001" "e000"),
    "mosq311_sub": L311 + bytes.fromhex(
        "101200044d5154540402003c0006737562333131"
        "82190001000e73656e736f72732f2b2f74656d70010003612f2301" "e000"),
    "mosq5_sub": L5 + bytes.fromhex(
        "101400044d5154540502003c03210014000473756235"
        "82180001090b2a26000161000162000973656e736f72732f2302" "e00104"),
    "mosq31_sub": L31 + bytes.fromhex(
        "101300064d51497364700302003c00057375623331" "820800010003782f7900" "e000"),
    "paho5": L5 + bytes.fromhex(
        "105000044d51545405ee002d07110000003c170000057061686f351203000a746578742f706c61696e18"
        "0000000a0013636c69656e74732f7061686f352f73746174650004676f6e650003626f6200027077"
        "821c0001020b070005612f2b2f632d000c2473686172652f672f782f2300"
        "a20f0002000005612f2b2f630003782f23"
        "32240007742f616c6961730003152300032600026b31000276312600026b3200027632000102" "e000"),
    "paho311": L311 + bytes.fromhex(
        "101300044d5154540400003c00077061686f333131" "820e00010003612f62020003632f2300"
        "a20700020003612f62" "34080003612f62000378" "62020003" "e000"),
    "paho31": L31 + bytes.fromhex(
        "101400064d51497364700302003c00067061686f3331" "820800010003612f6201" "e000"),
}

ALL_PROPS_PUBLISH = props(
    p_byte(0x01, 1), p_u32(0x02, 60), p_str(0x03, "text/plain"), p_str(0x08, "re/ply"),
    p_str(0x09, b"\x00\x01"), b"\x0b\x80\x01", b"\x0b\x2a", p_u16(0x23, 5), p_user("k", "v"))
ALL_PROPS_CONNACK = props(
    p_u32(0x11, 30), p_str(0x12, "auto1"), p_u16(0x13, 20), p_str(0x15, "SCRAM"),
    p_str(0x16, b"\x01"), p_str(0x1A, "resp/"), p_str(0x1C, "other"), p_str(0x1F, "ok"),
    p_u16(0x21, 10), p_u16(0x22, 5), p_byte(0x24, 1), p_byte(0x25, 0), p_u32(0x27, 1 << 20),
    p_byte(0x28, 1), p_byte(0x29, 1), p_byte(0x2A, 0), p_user("a", "b"))
CONNECT_PROPS = props(p_u32(0x11, 10), p_byte(0x17, 1), p_byte(0x19, 1), p_u16(0x21, 100),
                      p_u16(0x22, 3), p_u32(0x27, 4096), p_str(0x15, "m"), p_str(0x16, b"d"),
                      p_user("x", "y"))
WILL_PROPS = props(p_u32(0x18, 5), p_byte(0x01, 0), p_u32(0x02, 9), p_str(0x03, "ct"),
                   p_str(0x08, "r"), p_str(0x09, b"c"), p_user("u", "v"))

SERVER = {
    "v311_server": L311 + pkt(0x20, b"\x01\x00") + pkt(0x90, b"\x00\x01\x00\x01\x02\x80")
    + pkt(0xB0, b"\x00\x02") + pkt(0x40, b"\x00\x01") + pkt(0x50, b"\x00\x02")
    + pkt(0x62, b"\x00\x02") + pkt(0x70, b"\x00\x02") + b"\xd0\x00" + b"\xc0\x00",
    "v5_server": L5 + pkt(0x20, b"\x00\x00" + ALL_PROPS_CONNACK)
    + pkt(0x90, b"\x00\x01" + props(p_str(0x1F, "r")) + b"\x00\x01\x02\x80\x8f")
    + pkt(0xB0, b"\x00\x02" + props(p_user("a", "b")) + b"\x00\x11")
    + pkt(0x40, b"\x00\x01\x10" + props(p_str(0x1F, "no subscribers")))
    + pkt(0x50, b"\x00\x02\x00") + pkt(0x62, b"\x00\x02\x92") + pkt(0x70, b"\x00\x02")
    + pkt(0xE0, b"\x8e" + props(p_u32(0x11, 0), p_str(0x1C, "b"), p_str(0x1F, "bye")))
    + pkt(0xF0, b"\x18" + props(p_str(0x15, "SCRAM"), p_str(0x16, b"abc"))) + b"\xd0\x00",
    "v5_publish_all_props": L5 + pkt(0x3D, s("a/b") + b"\x00\x07" + ALL_PROPS_PUBLISH + b"payload"),
    "v5_publish_alias_only": L5 + pkt(0x30, s("") + props(p_u16(0x23, 1)) + b"x"),
    "v5_connect_all": L5 + connect(5, 0xF6, "id", CONNECT_PROPS,
                                   WILL_PROPS + s("w/t") + s(b"\x00will") + s("u") + s(b"pw")),
    "v5_connect_password_only": L5 + connect(5, 0x42, "", props(), s(b"pw")),
    "v5_subscribe_options": L5 + pkt(0x82, b"\x00\x09" + props(b"\x0b\x01", p_user("a", "b"))
                                     + s("a/+/c") + b"\x2d" + s("$share/g/#") + b"\x09"
                                     + s("#") + b"\x12"),
    "v311_big_length": L311 + pkt(0x30, s("t") + b"z" * 200),
    "v311_two_byte_length_split": L311 + pkt(0x30, s("t") + b"z" * 200)[:50],
    # malformed starts, so the fuzzer sees each error path from the beginning
    "bad_vbi5": L311 + b"\x30\xff\xff\xff\xff\x01",
    "bad_qos3": L311 + pkt(0x36, s("a") + b"\x00\x01"),
    "bad_wildcard_topic": L5 + pkt(0x30, s("a/#") + b"\x00"),
    "bad_filter": L311 + pkt(0x82, b"\x00\x01" + s("a/#/b") + b"\x00"),
    "bad_dup_prop": L5 + pkt(0x30, s("a") + props(p_u16(0x23, 1), p_u16(0x23, 2))),
    "bad_utf8": L311 + pkt(0x30, s(b"\xed\xa0\x80")),
    "bad_connect_reserved": L311 + connect(4, 0x03),
    "bad_connect_level": L311 + connect(6),
    "bad_password_no_user": L311 + connect(4, 0x42, "c", tail=s(b"pw")),
    "bad_will_flags": L311 + connect(4, 0x0A),
    "bad_auth_no_method": L5 + pkt(0xF0, b"\x18\x00"),
}


def main():
    d = os.path.join(HERE, "corpus", "mqtt")
    os.makedirs(d, exist_ok=True)
    for name, data in {**CAPTURED, **SERVER}.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
