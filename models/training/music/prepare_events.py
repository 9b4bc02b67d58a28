#!/usr/bin/env python3
"""Build the note-list data set of the event-based continuation model (`music-events`).

  prepare_events.py [--out ../data/events/events.json.gz] [--workers 2]

Every piece becomes a list of notes on a sixteenth-note grid, `[midi, start, duration]` in steps,
with its bar length in steps and the step of its first bar line (`phase`), so that training can
give the model the metric position of every event. Sources:

- `jsb`: the train split of the JSB Chorales benchmark set (quarter-note grid: 4 steps a frame,
  4/4 assumed), consecutive frames holding the same key joined into one note, as a MIDI seed cut
  from the set would be.
- `nottingham`: the train split of the Nottingham benchmark set (eighth-note grid, 4/4 assumed),
  joined the same way; `nottingham-top`: the highest sounding key of each of its frames alone
  (folk melodies without their chords).
- music21's bundled Essen folk songs, O'Neill's "Music of Ireland" and Ryan's Mammoth Collection
  (ABC, with their own metres and pickups), and Palestrina's masses (four to six voices).

The valid splits of the benchmark sets judge the continuation model and are never used here. For
the music21 sources one piece in 20 goes to valid (MD5 of its identifier). music21's Bach chorales
are left out: they are the pieces of the JSB Chorales valid and test splits. A music21 tune whose
opening melody (the intervals of its first 12 notes) equals that of a Nottingham valid tune is left
out too, and counted.
"""
import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from multiprocessing import Pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_default import events_of, scores_of  # noqa: E402

STEPS_PER_QUARTER = 4
LOW, HIGH = 21, 108


def notes_of_frames(frames, steps_per_frame, top_only=False):
    """Benchmark piano-roll frames -> [[midi, start, duration]] in steps; a key held over
    consecutive frames is one note."""
    notes, open_ = [], {}
    for t, frame in enumerate(list(frames) + [[]]):
        keys = set(int(k) for k in frame)
        if top_only and keys:
            keys = {max(keys)}
        for k in list(open_):
            if k not in keys:
                s = open_.pop(k)
                notes.append([k, s * steps_per_frame, (t - s) * steps_per_frame])
        for k in keys:
            if k not in open_:
                open_[k] = t
    notes.sort(key=lambda n: (n[1], n[0]))
    return [n for n in notes if LOW <= n[0] <= HIGH]


def metre_of(score):
    """(bar length, phase of the first full bar) in quarter notes."""
    from music21 import meter, stream

    ts = next(iter(score.recurse().getElementsByClass(meter.TimeSignature)), None)
    bar = float(ts.barDuration.quarterLength) if ts is not None else 4.0
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    phase = 0.0
    for m in parts[0].getElementsByClass(stream.Measure):
        if abs(float(m.duration.quarterLength) - bar) < 1e-6:
            phase = float(m.offset) % bar
            break
    return bar, phase


def notes_of_events(events):
    out = {}
    for midi, a, b in events:
        if not (LOW <= midi <= HIGH):
            continue
        s = int(round(a * STEPS_PER_QUARTER))
        e = max(s + 1, int(round(b * STEPS_PER_QUARTER)))
        out[(s, midi)] = max(out.get((s, midi), 0), e - s)
    return [[m, s, d] for (s, m), d in sorted(out.items())]


def parse_file(job):
    source, path = job
    out = []
    for ident, sc in scores_of(path):
        try:
            notes = notes_of_events(events_of(sc))
            bar, phase = metre_of(sc)
        except Exception as e:
            print(f"skip {ident}: {e}", file=sys.stderr)
            continue
        bar_steps = int(round(bar * STEPS_PER_QUARTER))
        if bar_steps < 2 or bar_steps > 64 or not notes:
            continue
        out.append({"id": f"{source}/{ident}", "notes": notes, "bar": bar_steps,
                    "phase": int(round(phase * STEPS_PER_QUARTER)) % bar_steps})
    return out


def jobs(sources):
    from music21 import corpus

    out = []
    for src in sources:
        out += [(src, str(p)) for p in sorted(corpus.getComposer(src), key=str)]
    return out


def opening(notes, n=12):
    """The intervals of the first n notes of the top line (a transposition-free fingerprint)."""
    tops = {}
    for m, s, _ in notes:
        tops[s] = max(tops.get(s, 0), m)
    line = [tops[s] for s in sorted(tops)][:n]
    return tuple(b - a for a, b in zip(line, line[1:])) if len(line) == n else None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "..", "data")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(data, "events", "events.json.gz"))
    p.add_argument("--music21", default="essenFolksong,oneills1850,ryansMammoth,palestrina")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--min-notes", type=int, default=8)
    args = p.parse_args()

    t0 = time.time()
    pieces = {"train": [], "valid": []}
    counts = {}

    def add(split, source, piece):
        if len(piece["notes"]) < args.min_notes:
            return
        piece["source"] = source
        pieces[split].append(piece)
        c = counts.setdefault(source, [0, 0, 0])
        c[0 if split == "train" else 1] += 1
        c[2] += len(piece["notes"])

    with open(os.path.join(data, "polyphonic", "JSB_Chorales.json")) as f:
        jsb = json.load(f)
    for i, fr in enumerate(jsb["train"]):
        add("train", "jsb", {"id": f"jsb/train/{i}", "notes": notes_of_frames(fr, 4), "bar": 16, "phase": 0})
    with open(os.path.join(data, "polyphonic", "Nottingham.json")) as f:
        nott = json.load(f)
    for i, fr in enumerate(nott["train"]):
        add("train", "nottingham", {"id": f"nottingham/train/{i}", "notes": notes_of_frames(fr, 2), "bar": 16, "phase": 0})
        add("train", "nottingham-top",
            {"id": f"nottingham-top/train/{i}", "notes": notes_of_frames(fr, 2, top_only=True), "bar": 16, "phase": 0})
    held = {opening(notes_of_frames(fr, 2)) for fr in nott["valid"]} - {None}

    js = jobs([s for s in args.music21.split(",") if s])
    print(f"{len(js)} music21 corpus files", flush=True)
    with Pool(args.workers) as pool:
        results = pool.map(parse_file, js, chunksize=4)
    seen, dropped = set(), 0
    for res in results:
        for piece in res:
            key = json.dumps(piece["notes"])
            if key in seen:  # the collections repeat some tunes
                continue
            seen.add(key)
            if opening(piece["notes"]) in held:
                dropped += 1
                continue
            source = piece["id"].split("/")[0]
            split = "valid" if int(hashlib.md5(piece["id"].encode()).hexdigest(), 16) % 20 == 0 else "train"
            add(split, source, piece)

    doc = {"format": "notes on a sixteenth-note grid: [MIDI note, start step, duration in steps]; "
                     "bar = steps per bar, phase = step of the first bar line",
           "steps_per_quarter": STEPS_PER_QUARTER, "low_note": LOW, "keys": HIGH - LOW + 1, **pieces}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with gzip.open(args.out, "wt") as f:
        json.dump(doc, f, separators=(",", ":"))
    for src, (tr, va, n) in sorted(counts.items()):
        print(f"{src}: {tr} train, {va} valid pieces, {n} notes")
    print(f"left out {dropped} music21 tunes whose opening equals a Nottingham valid tune's")
    print(f"train {len(pieces['train'])} pieces, valid {len(pieces['valid'])}; {time.time() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
