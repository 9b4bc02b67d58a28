#!/usr/bin/env python3
"""Writes General MIDI test songs for the render benchmark (standard library only).

  make_gm_songs.py OUT_DIR

pop4.mid:    128 s, four tracks (piano with sustain pedal, bass, strings with
             expression swells, drums), 120 bpm with a tempo change.
band8.mid:   96 s, eight tracks (adds organ, guitar, brass and a lead with pitch
             bends), denser chords: more voices at once.
Seeded, so every run writes the same bytes.
"""
import random
import struct
import sys
from pathlib import Path


def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def track_bytes(events):
    """events: (tick, order, bytes); returns an MTrk chunk."""
    events = sorted(events, key=lambda e: (e[0], e[1]))
    data = bytearray()
    now = 0
    for tick, _, msg in events:
        data += vlq(tick - now) + msg
        now = tick
    data += vlq(0) + b"\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(data)) + bytes(data)


def write_smf(path, tracks, tpq=480):
    head = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), tpq)
    path.write_bytes(head + b"".join(track_bytes(t) for t in tracks))


def tempo(tick, bpm):
    us = int(60_000_000 / bpm)
    return (tick, 0, b"\xff\x51\x03" + us.to_bytes(3, "big"))


def note(events, ch, tick, length, key, vel):
    events.append((tick, 2, bytes([0x90 | ch, key, vel])))
    events.append((tick + length, 1, bytes([0x80 | ch, key, 0])))


def cc(events, ch, tick, num, val):
    events.append((tick, 0, bytes([0xB0 | ch, num, val])))


def program(events, ch, prog):
    events.append((0, 0, bytes([0xC0 | ch, prog])))


PROGRESSION = [(0, [0, 4, 7]), (9, [0, 3, 7]), (5, [0, 4, 7]), (7, [0, 4, 7])]


def song(bars, layers, seed):
    rng = random.Random(seed)
    q = 480
    bar = 4 * q
    conductor = [tempo(0, 120), tempo(bars // 2 * bar, 132)]
    tracks = [conductor]
    for layer in layers:
        ev = []
        ch, prog = layer["ch"], layer["prog"]
        if ch != 9:
            program(ev, ch, prog)
        cc(ev, ch, 0, 7, layer.get("vol", 100))
        cc(ev, ch, 0, 10, layer.get("pan", 64))
        for b in range(bars):
            root, chord = PROGRESSION[b % 4]
            t0 = b * bar
            kind = layer["kind"]
            if kind == "piano":
                cc(ev, ch, t0, 64, 127)
                for beat in range(4):
                    for iv in chord:
                        note(ev, ch, t0 + beat * q, q - 20, 60 + root + iv, rng.randint(60, 90))
                cc(ev, ch, t0 + bar - 10, 64, 0)
            elif kind == "bass":
                for e in range(8):
                    key = 36 + root + (7 if e % 4 == 3 else 0)
                    note(ev, ch, t0 + e * q // 2, q // 2 - 30, key, rng.randint(80, 110))
            elif kind == "pad":
                for iv in chord + [12]:
                    note(ev, ch, t0, bar - 10, 48 + root + iv, 70)
                for s in range(16):
                    cc(ev, ch, t0 + s * bar // 16, 11, 80 + int(40 * abs(8 - s) / 8))
            elif kind == "drums":
                for e in range(16):
                    t = t0 + e * q // 4
                    if e % 8 == 0 or e == 10:
                        note(ev, ch, t, 60, 36, 110)
                    if e % 8 == 4:
                        note(ev, ch, t, 60, 38, 105)
                    note(ev, ch, t, 40, 42 if e % 4 else 46, rng.randint(50, 90))
                if b % 8 == 7:
                    for e, tom in enumerate([50, 48, 45, 43]):
                        note(ev, ch, t0 + 3 * q + e * q // 4, 100, tom, 100)
                if b % 8 == 0:
                    note(ev, ch, t0, q, 49, 100)
            elif kind == "arp":
                for e in range(8):
                    iv = chord[e % 3] + 12 * (e // 3 % 2)
                    note(ev, ch, t0 + e * q // 2, q // 2, 64 + root + iv, rng.randint(60, 100))
            elif kind == "lead":
                for beat in range(0, 4, 2):
                    key = 72 + root + rng.choice(chord)
                    note(ev, ch, t0 + beat * q, 2 * q - 20, key, 95)
                    for s in range(8):
                        bend = 8192 + int(1200 * (s / 8))
                        ev.append((t0 + beat * q + s * q // 8, 0,
                                   bytes([0xE0 | ch, bend & 0x7F, bend >> 7])))
                    ev.append((t0 + beat * q + q + q // 2, 0, bytes([0xE0 | ch, 0, 0x40])))
            elif kind == "stabs":
                for beat in (1, 3):
                    for iv in chord:
                        note(ev, ch, t0 + beat * q, q // 2, 60 + root + iv, 90)
        tracks.append(ev)
    return tracks


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    four = [
        {"kind": "piano", "ch": 0, "prog": 0, "pan": 50},
        {"kind": "bass", "ch": 1, "prog": 33},
        {"kind": "pad", "ch": 2, "prog": 48, "vol": 80, "pan": 80},
        {"kind": "drums", "ch": 9, "prog": 0},
    ]
    # 64 bars: 32 at 120 bpm (64 s) + 32 at 132 bpm (58 s) ≈ 122 s; with 4 more bars ≈ 128 s.
    write_smf(out / "pop4.mid", song(68, four, seed=1))
    eight = four + [
        {"kind": "stabs", "ch": 3, "prog": 16, "vol": 70},
        {"kind": "arp", "ch": 4, "prog": 25, "pan": 30},
        {"kind": "stabs", "ch": 5, "prog": 61, "vol": 80, "pan": 100},
        {"kind": "lead", "ch": 6, "prog": 81, "vol": 80},
    ]
    write_smf(out / "band8.mid", song(50, eight, seed=2))


if __name__ == "__main__":
    main()
