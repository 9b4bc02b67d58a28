#!/usr/bin/env python3
"""Seed MIDI files for the README demo and the tests (samples/), from music21's public-domain corpus.

  make_samples.py [--out ../../samples]

- seed-folk.mid: the opening bars of a German children's song from the Essen folk song collection
  (kinder0.abc; not a source of the Nottingham benchmark set, which is British and American folk music).
- seed-chorale.mid: the opening bars of a Bach chorale that the script finds, under some transposition,
  in the JSB Chorales *train* split, so it is not one of the held-out test chorales.

Both get a tempo, the score's time signature, 480 ticks per quarter note and a velocity profile
(metric accents; in the chorale the soprano above the lower voices) rather than one fixed velocity.
"""
import argparse
import json
import os

from music21 import bar, corpus, defaults, midi, stream, tempo

HERE = os.path.dirname(os.path.abspath(__file__))
JSB = os.path.join(HERE, "..", "data", "polyphonic", "JSB_Chorales.json")


def quarter_frames(score, start=0.0, n=12):
    """Notes sounding at each quarter-note beat, as the JSB data samples them."""
    notes = [(p.midi, float(x.offset), float(x.offset + x.quarterLength))
             for x in score.flatten().notes for p in x.pitches]
    return [sorted({m for m, a, b in notes if a <= start + t < b}) for t in range(n)]


def in_jsb_train(score, train):
    """Index of a JSB train piece whose opening equals the chorale's under a transposition, or None."""
    for pickup in (0.0, 1.0, 2.0, 3.0):
        f = quarter_frames(score, pickup)
        if not all(f[:4]):
            continue
        for i, piece in enumerate(train):
            for start in range(0, 2):
                g = piece[start : start + len(f)]
                if len(g) < len(f):
                    continue
                k = g[0][0] - f[0][0] if g[0] and f[0] else None
                if k is not None and all(sorted(m + k for m in a) == sorted(b) for a, b in zip(f, g)):
                    return i
    return None


def opening(score, bars):
    """The first `bars` measures (after a pickup) of every part, with a tempo mark."""
    out = score.measures(0, bars)
    for m in out.recurse().getElementsByClass(stream.Measure):  # no repeat signs: MIDI export would expand them
        if isinstance(m.leftBarline, bar.Repeat):
            m.leftBarline = None
        if isinstance(m.rightBarline, bar.Repeat):
            m.rightBarline = None
    return out


def accent(offset_in_bar, beat_len):
    if abs(offset_in_bar) < 1e-6:
        return 100
    if abs(offset_in_bar / beat_len - round(offset_in_bar / beat_len)) < 1e-6:
        return 84
    return 72


def set_velocities(score, soprano_boost=False):
    for pi, part in enumerate(score.parts):
        for m in part.getElementsByClass(stream.Measure):
            ts = m.getContextByClass("TimeSignature")
            beat = ts.beatDuration.quarterLength if ts is not None else 1.0
            for n in m.recurse().notes:
                v = accent(float(n.offset), beat)
                if soprano_boost:
                    v = v + 8 if pi == 0 else v - 8
                n.volume.velocity = max(1, min(127, v))


def write_midi(score, path, bpm):
    s = score
    first = s.parts[0].getElementsByClass(stream.Measure)[0] if s.parts else s
    first.insert(0, tempo.MetronomeMark(number=bpm))
    defaults.ticksPerQuarter = 480
    mf = midi.translate.music21ObjectToMidiFile(s)
    mf.open(path, "wb")
    mf.write()
    mf.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(HERE, "..", "..", "..", "samples"))
    p.add_argument("--bars", type=int, default=4)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # Folk: the first tune of kinder0.abc in 2/4, 3/4 or 4/4 that has at least --bars bars.
    opus = corpus.parse("essenFolksong/kinder0.abc")
    for sc in opus.scores:
        ts = sc.flatten().getElementsByClass("TimeSignature")
        if ts and ts[0].ratioString in ("2/4", "3/4", "4/4") and len(sc.parts[0].getElementsByClass(stream.Measure)) > args.bars + 1:
            folk = sc
            break
    folk_open = opening(folk, args.bars)
    set_velocities(folk_open)
    path = os.path.join(args.out, "seed-folk.mid")
    write_midi(folk_open, path, 100)
    print(f"{path}: {folk.metadata.title!r} ({ts[0].ratioString}), bars 0-{args.bars}")

    # Chorale: the first of music21's chorales (in catalogue order) found in the JSB train split.
    with open(JSB) as f:
        train = json.load(f)["train"]
    for sc in corpus.chorales.Iterator(1, 371, returnType="stream"):
        if sc is None or len(sc.parts) != 4:
            continue
        idx = in_jsb_train(sc, train)
        if idx is not None:
            chorale = sc
            break
    ch_open = opening(chorale, args.bars)
    set_velocities(ch_open, soprano_boost=True)
    path = os.path.join(args.out, "seed-chorale.mid")
    write_midi(ch_open, path, 80)
    md = chorale.metadata
    print(f"{path}: {md.title!r} ({md.number or ''} {md.movementName or ''}), found as JSB train piece {idx}, bars 0-{args.bars}")


if __name__ == "__main__":
    main()
