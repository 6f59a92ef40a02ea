#!/usr/bin/env python3
"""Write the seed corpus of fuzz_amqp under tests/fuzz/corpus/amqp/ (committed as files).

Re-run after changing a seed: python3 tests/fuzz/make_amqp_corpus.py

The first byte of each seed picks fuzz_amqp's mode: 0 a frame stream (bits 2-7 pick
frame-max), 1 a method payload, 2 a content header payload, 3 a field table. Seeds come
from the frames pika and librabbitmq sent (the arrays in tests/unit/test_amqp_codec.c,
captured by tests/unit/amqp_capture.py) and from the spec: every method of
proto/amqp/amqp0-9-1.stripped.extended.xml with zero, empty and all-ones arguments.
"""
import os
import re
import struct
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus", "amqp")
TESTS = os.path.join(ROOT, "tests", "unit", "test_amqp_codec.c")
SPEC = os.path.join(ROOT, "proto", "amqp", "amqp0-9-1.stripped.extended.xml")

STREAM, METHOD, HEADER, TABLE = 0, 1, 2, 3


def captured():
    """name -> bytes of every static const uint8_t array in the unit test."""
    src = open(TESTS).read()
    out = {}
    for m in re.finditer(r"static const uint8_t (\w+)\[\d*\] = \{(.*?)\};", src, re.S):
        body = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.S)
        vals = []
        for tok in body.replace("\n", " ").split(","):
            tok = tok.strip()
            if not tok:
                continue
            vals.append(ord(tok[1]) if tok.startswith("'") else int(tok, 0))
        out[m.group(1)] = bytes(vals)
    return out


def frame(typ, ch, payload):
    return struct.pack("!BHI", typ, ch, len(payload)) + payload + b"\xce"


def table(entries):
    body = b""
    for k, tag, v in entries:
        body += bytes([len(k)]) + k + tag + v
    return struct.pack("!I", len(body)) + body


def spec_methods():
    root = ET.parse(SPEC).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    for c in root.findall("class"):
        for m in c.findall("method"):
            types = [f.get("type") or domains[f.get("domain")] for f in m.findall("field")]
            yield "%s.%s" % (c.get("name"), m.get("name")), int(c.get("index")), int(m.get("index")), types


def args(types, fill):
    out, bits = b"", None
    for t in types:
        if t == "bit":
            if bits is None or bits[1] == 8:
                out += b"\0"
                bits = [len(out) - 1, 0]
            if fill:
                out = out[:bits[0]] + bytes([out[bits[0]] | 1 << bits[1]]) + out[bits[0] + 1:]
            bits[1] += 1
            continue
        bits = None
        if t == "octet":
            out += b"\xff" if fill else b"\0"
        elif t == "short":
            out += b"\xff\xff" if fill else b"\0\0"
        elif t == "long":
            out += b"\xff" * 4 if fill else b"\0" * 4
        elif t in ("longlong", "timestamp"):
            out += b"\xff" * 8 if fill else b"\0" * 8
        elif t == "shortstr":
            out += b"\x03abc" if fill else b"\0"
        elif t == "longstr":
            out += b"\0\0\0\x03xyz" if fill else b"\0\0\0\0"
        elif t == "table":
            out += table([(b"k", b"S", b"\0\0\0\x01v")]) if fill else b"\0\0\0\0"
    return out


EVERY_TAG = table([
    (b"t", b"t", b"\x01"), (b"b", b"b", b"\xfb"), (b"B", b"B", b"\xfa"),
    (b"s", b"s", b"\x8a\xd0"), (b"u", b"u", b"\xea\x60"), (b"I", b"I", b"\x88\xca\x6c\x00"),
    (b"i", b"i", b"\xee\x6b\x28\x00"), (b"l", b"l", b"\x83" + b"\0" * 7),
    (b"f", b"f", struct.pack("!f", 1.25)), (b"d", b"d", struct.pack("!d", -2.5)),
    (b"D", b"D", b"\x02\0\0\x7a\xb7"), (b"S", b"S", b"\0\0\0\x02hi"),
    (b"T", b"T", struct.pack("!Q", 1700000000)), (b"V", b"V", b""),
    (b"x", b"x", b"\0\0\0\x02\0\1"),
    (b"A", b"A", struct.pack("!I", 12) + b"I\0\0\0\x01" + b"F\0\0\0\0" + b"V" + b"V"),
    (b"F", b"F", table([(b"n", b"F", table([(b"deep", b"t", b"\x01")]))])),
])


def seeds():
    cap = captured()
    out = {}
    pika = [v for k, v in cap.items() if k.startswith("pika_") and k != "pika_protocol_header"]
    rmq = [v for k, v in cap.items() if k.startswith("librabbitmq_") and "protocol" not in k]
    out["stream_pika"] = bytes([STREAM]) + b"".join(pika)
    out["stream_pika_fmax4096"] = bytes([STREAM | 1 << 2]) + b"".join(pika)
    out["stream_librabbitmq"] = bytes([STREAM | 2 << 2]) + b"".join(rmq)
    out["stream_protocol_header"] = bytes([STREAM]) + cap["pika_protocol_header"]
    out["stream_heartbeat"] = bytes([STREAM]) + frame(8, 0, b"")
    for k, v in cap.items():
        if len(v) < 8:
            continue
        payload = v[7:-1]
        if v[0] == 1:
            out["method_" + k] = bytes([METHOD]) + payload
        elif v[0] == 2:
            out["header_" + k] = bytes([HEADER]) + payload
    for name, cid, mid, types in spec_methods():
        ids = struct.pack("!HH", cid, mid)
        out["spec_%s_zero" % name] = bytes([METHOD]) + ids + args(types, False)
        out["spec_%s_ones" % name] = bytes([METHOD]) + ids + args(types, True)
    # content headers: every property, a continuation word, none
    props = (b"\x10application/json" + b"\x05utf-8" + EVERY_TAG + b"\x02" + b"\x05"
             + b"\x04corr" + b"\x05reply" + b"\x0560000" + b"\x03mid"
             + struct.pack("!Q", 1700000000) + b"\x04type" + b"\x05guest" + b"\x03app"
             + b"\x02c1")
    out["header_all"] = bytes([HEADER]) + struct.pack("!HHQH", 60, 0, 11, 0xfffc) + props
    out["header_continuation"] = bytes([HEADER]) + struct.pack("!HHQHH", 60, 0, 5, 0x1001, 0) + b"\x02"
    out["header_none"] = bytes([HEADER]) + struct.pack("!HHQH", 60, 0, 0, 0)
    out["table_every_tag"] = bytes([TABLE]) + EVERY_TAG
    out["table_empty"] = bytes([TABLE]) + b"\0\0\0\0"
    out["table_bool_not_canonical"] = bytes([TABLE]) + table([(b"a", b"t", b"\x11")])
    deep = b"\0\0\0\0"
    for _ in range(15):
        deep = table([(b"k", b"F", deep)])
    out["table_deep"] = bytes([TABLE]) + deep
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    for name, data in sorted(seeds().items()):
        with open(os.path.join(OUT, name.replace(".", "_").replace("-", "_")), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
