#!/usr/bin/env python3
"""Write the seed corpus of fuzz_tcp_stack under tests/fuzz/corpus/tcp_stack/.

Each seed is a program for the driver (see the comment at the top of fuzz_tcp_stack.c):
records [op][len][args]. Sequence and acknowledgement numbers are relative to the live
connection's numbers, so the seeds work whatever ISS the stack picks.

Re-run after changing a seed: python3 tests/fuzz/make_tcp_stack_corpus.py
(the minimised crash reproducers in the same directory, named crash-*, are kept as they are)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "tcp_stack")

NOP, SEG, SEG2, HANDSHAKE, RAW, TIME, SEND, CLOSE, ABORT, SHUTDOWN, RELEASE, MOOD, \
    CONNECT, ARP, EPILOGUE, BURST = range(16)

# listener index in the driver's dst_ports[]
ECHO, DISCARD, CHARGEN, APP, APP2, CLOSED = range(6)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# seq bases: the TCB's rcv_nxt, the right edge we advertised, irs + 1, raw 32 bits
RCV_NXT, RCV_ADV, IRS1, RAW32 = range(4)
# ack bases: snd_nxt, snd_una, snd_max, raw
SND_NXT, SND_UNA, SND_MAX = range(3)


def rec(op, args=b""):
    assert len(args) < 256
    return bytes([op, len(args)]) + args


def rel(base, delta=0, shift=0, raw=None):
    """A relative number: [mode][delta] (+ 4 bytes when raw)."""
    out = bytes([base | (shift // 3) << 2, delta & 0xFF])
    if base == RAW32:
        out += struct.pack("!I", raw or 0)
    return out


def opts(mss=None, ws=None, sackok=False, ts=None, sack=None):
    """[optsel][values]: structured options; ts = (delta, ecr_back); sack = [(a, b)]."""
    sel, vals = 0, b""
    if mss is not None:
        sel |= 0x01
        vals += struct.pack("!H", mss)
    if ws is not None:
        sel |= 0x02
        vals += bytes([ws])
    if sackok:
        sel |= 0x04
    if ts is not None:
        sel |= 0x08
        vals += bytes([ts[0] & 0xFF, ts[1]])
    if sack:
        sel |= 0x10 | (len(sack) - 1) << 5
        for a, b in sack:
            vals += bytes([a, b])
    return bytes([sel]) + vals


def raw_opts(b):
    return bytes([0x80 | len(b)]) + b


def seg(k=0, flags=ACK, seq=None, ack=None, win=0xFFFF, o=None, pay=0, data=None,
        bad_csum=False, no_auto_ts=False, new=None, op=SEG):
    """A segment on the k-th most recent connection (or new=listener index)."""
    sel = (0x80 | new) if new is not None else k
    mode = (0x07 if bad_csum else 0) | (0x08 if no_auto_ts else 0)
    args = bytes([sel, flags, mode])
    args += seq if seq is not None else rel(RCV_NXT)
    args += ack if ack is not None else rel(SND_NXT)
    args += struct.pack("!H", win)
    args += o if o is not None else opts()
    if data is not None:
        args += struct.pack("!H", 0x8000 | len(data)) + data
    else:
        args += struct.pack("!H", pay)
    return rec(op, args)


def burst(n, **kw):
    r = seg(**kw)
    # BURST's args are [count] + SEG's args
    return bytes([BURST, r[1] + 1, n]) + r[2:]


def handshake(listener, o=None, win=0xFFFF, isn=0, pay=0, peer1=False):
    sel = listener | (0x18 if peer1 else 0)
    o = o if o is not None else opts(mss=1460, ws=7, sackok=True, ts=(1, 0))
    return rec(HANDSHAKE, bytes([sel]) + o + struct.pack("!HBH", win, isn, pay))


def time_ms(ms):
    if ms < 256:
        return rec(TIME, bytes([0, ms]))
    if ms < 65536:
        return rec(TIME, struct.pack("!BH", 1, ms))
    return rec(TIME, struct.pack("!BH", 2, ms // 16))


def time_us(us):
    return rec(TIME, struct.pack("!BH", 3, us))


def mood(v):
    return rec(MOOD, struct.pack("!I", v))


def app(op, k=0, *rest):
    return rec(op, bytes([k]) + bytes(rest))


def send(k, n, nseg=1):
    return rec(SEND, bytes([k]) + struct.pack("!HB", n, nseg - 1))


def connect(port, synack=True, o=None, win=0xFFFF):
    o = o if o is not None else opts(mss=1460, ws=7, sackok=True, ts=(1, 0))
    return rec(CONNECT, struct.pack("!HB", port, 1 if synack else 0) + o +
               struct.pack("!H", win))


# mood words: 3-bit actions for on_connected/on_data, 2-bit for on_writable/peer_closed
KEEP = 0x12492496  # 3-bit groups 6, 2, 2...: on_connected does nothing, on_data frees at once
HOLD = 0x00000006  # on_connected 6, then on_data "hold" (0) again and again


SEEDS = {
    # three-way handshake to echo, data both ways, the peer closes, echo closes, LAST_ACK
    "handshake_data_fin": [
        handshake(ECHO),
        seg(flags=ACK | PSH, pay=300),
        time_ms(50),
        seg(ack=rel(SND_MAX)),
        seg(flags=ACK | PSH, pay=1000),
        seg(flags=ACK | PSH, pay=1000, seq=rel(RCV_NXT)),
        time_ms(45),
        seg(flags=FIN | ACK, ack=rel(SND_MAX)),
        time_ms(10),
        seg(ack=rel(SND_MAX)),
        time_ms(3000),
    ],
    # the same on the test application, which closes first: FIN_WAIT_1/2, TIME_WAIT
    "app_close_first": [
        mood(KEEP),
        handshake(APP, pay=100),
        send(0, 2500, 3),
        seg(ack=rel(SND_MAX)),
        app(CLOSE, 0),
        seg(ack=rel(SND_MAX)),
        seg(flags=FIN | ACK, ack=rel(SND_MAX), pay=10),
        time_ms(2100),
    ],
    # RSTs and SYNs all around the window of live connections (RFC 5961)
    "rst_storm": [
        handshake(DISCARD),
        handshake(APP2, opts(mss=536)),
        handshake(CHARGEN, opts(mss=1000, ws=2, sackok=True)),
        seg(k=0, flags=RST, seq=rel(RCV_NXT, 1)),
        seg(k=0, flags=RST, seq=rel(RCV_NXT, -1 & 0xFF)),
        seg(k=0, flags=RST | ACK, seq=rel(RCV_ADV, -1 & 0xFF)),
        seg(k=1, flags=SYN, seq=rel(RCV_NXT, 5)),
        seg(k=1, flags=RST, seq=rel(RCV_NXT, 100, 9)),
        seg(k=2, flags=RST, seq=rel(IRS1)),
        seg(k=2, flags=RST, seq=rel(RCV_NXT)),
        seg(k=1, flags=RST | ACK, seq=rel(RCV_NXT)),
        seg(k=0, flags=RST, seq=rel(RCV_NXT)),
        seg(new=DISCARD, flags=RST, seq=rel(RAW32, raw=12345)),
        seg(new=CLOSED, flags=SYN),
        seg(new=ECHO, flags=ACK),
    ],
    # segments beyond a hole, SACKed back, then the hole filled (reassembly)
    "out_of_order": [
        mood(HOLD),
        handshake(APP),
        seg(flags=ACK, seq=rel(RCV_NXT, 25, 3), pay=200),
        seg(flags=ACK, seq=rel(RCV_NXT, 75, 3), pay=200),
        seg(flags=ACK, seq=rel(RCV_NXT, 50, 3), pay=150),
        seg(flags=ACK, seq=rel(RCV_NXT, 10), pay=100),
        seg(flags=FIN | ACK, seq=rel(RCV_NXT, 100, 3), pay=50),
        seg(flags=ACK, pay=200),
        app(RELEASE, 0, 8),
        handshake(DISCARD),
        burst(6, flags=ACK, seq=rel(RCV_NXT, 125, 3), pay=1000),
        seg(flags=ACK, pay=1000),
        seg(flags=ACK, pay=1000),
    ],
    # our sender meets a zero window: persist probes, then the window opens;
    # and our receive window closes under data the application holds
    "zero_window": [
        handshake(CHARGEN, win=2000),
        seg(ack=rel(SND_NXT), win=0),
        time_ms(1100),
        time_ms(2100),
        seg(ack=rel(SND_UNA), win=0),
        time_ms(4100),
        seg(ack=rel(SND_NXT), win=8000),
        time_ms(10),
        seg(ack=rel(SND_MAX), win=0),
        time_ms(5000),
        mood(HOLD),
        handshake(APP),
        burst(8, flags=ACK, pay=1000),
        seg(flags=ACK, pay=100),
        time_ms(200),
        app(RELEASE, 0, 8),
        seg(flags=ACK, pay=1000),
    ],
    # an active open, answered, data out, loss, fast retransmit with SACK, RTO
    "active_loss": [
        mood(KEEP),
        connect(8080),
        seg(flags=ACK),
        send(0, 6000, 4),
        seg(ack=rel(SND_UNA), o=opts(sack=[(1, 1)])),
        seg(ack=rel(SND_UNA), o=opts(sack=[(1, 2)])),
        seg(ack=rel(SND_UNA), o=opts(sack=[(1, 3)])),
        seg(ack=rel(SND_UNA, 100, 3), o=opts(sack=[(3, 1)])),
        time_ms(1100),
        time_ms(2300),
        seg(ack=rel(SND_MAX)),
        connect(8081, synack=False),
        time_ms(1100),
        time_ms(2200),
        time_ms(4500),
    ],
    # keepalive, retransmission give-up, TIME_WAIT reuse by a newer SYN, ARP for peer 1
    "timers": [
        mood(KEEP),
        handshake(APP),
        time_ms(11000),
        time_ms(60000),
        handshake(APP, peer1=True),
        send(0, 900),
        rec(ARP, bytes([1])),
        handshake(ECHO),
        seg(flags=FIN | ACK),
        time_ms(20),
        seg(ack=rel(SND_MAX)),
        seg(k=0, flags=SYN, seq=rel(RCV_NXT, 100, 6), no_auto_ts=True),
        time_ms(30000),
        rec(ARP, bytes([0x80])),
    ],
    # more half-open connections than syn_backlog (16): SYN cookies, one completed
    "syn_flood_cookie": [seg(new=DISCARD, flags=SYN) for _ in range(17)] + [
        handshake(ECHO, opts(mss=1460)),
        seg(flags=ACK | PSH, pay=100),
        seg(k=3, flags=ACK, seq=rel(IRS1), ack=rel(SND_NXT)),
        time_ms(1100),
    ],
    # options the parser must refuse or skip; checksums wrong; raw frames
    "odd_options": [
        handshake(DISCARD, opts(mss=0, ws=200, sackok=True, ts=(5, 255)) + bytes(4)),
        seg(flags=ACK, o=raw_opts(bytes([1, 1, 8, 10]) + bytes(8)), pay=10),
        seg(flags=ACK, o=raw_opts(bytes([5, 2])), pay=10),
        seg(flags=ACK, o=raw_opts(bytes([2, 4, 0, 0, 3, 3, 20, 0])), pay=10),
        seg(flags=ACK | PSH, pay=100, bad_csum=True),
        seg(flags=ACK | 0x20 | 0x40 | 0x80, pay=10),
        rec(RAW, bytes([0x0D, 0, 7, 0, 9]) + bytes(16)),
        rec(RAW, bytes([0x02]) + bytes(60)),
    ],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, recs in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b"".join(recs))


if __name__ == "__main__":
    main()
