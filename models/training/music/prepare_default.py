#!/usr/bin/env python3
"""Build the data set of the default continuation model from music21's bundled corpus.

  prepare_default.py [--out ../data/default/default.json.gz] [--workers 2]

Sources (all public domain, bundled with music21): the Essen folk song collection (ABC), O'Neill's
"Music of Ireland" (1850, ABC), Ryan's Mammoth Collection (ABC) and the Bach chorales (music21's
chorale iterator). The Bach chorales overlap the JSB Chorales benchmark's test split: this data set
is for the default continuation model only, never for the benchmark models.

Each score becomes a piece on a sixteenth-note grid (4 frames per quarter note) in the `onset-roll`
encoding: a frame lists [note, onset] for every sounding MIDI note, onset 1 on the frame where the
note is struck, 0 where it is held; tied notes are one note. Chord symbols and grace notes are left
out; pieces keep their written key (training transposes them at random). A piece goes to the valid
split when the MD5 of its identifier is 0 mod 20, so the split is fixed and independent of order.
"""
import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from multiprocessing import Pool

STEPS_PER_QUARTER = 4
LOW, HIGH = 21, 108


def events_of(score):
    """[[midi, start_ql, end_ql]] of a score, ties joined, chord symbols and grace notes left out."""
    from music21 import chord, harmony

    flat = score.flatten()
    events, open_ = [], {}
    for n in sorted(flat.notes, key=lambda e: float(e.offset)):
        if isinstance(n, harmony.ChordSymbol) or n.duration.isGrace or float(n.quarterLength) <= 0:
            continue
        off, ql = float(n.offset), float(n.quarterLength)
        subs = list(n.notes) if isinstance(n, chord.Chord) else [n]
        for sn in subs:
            midi = sn.pitch.midi
            t = sn.tie.type if sn.tie is not None else (n.tie.type if n.tie is not None else None)
            # A tie joins notes that touch; a stray tie mark (some ABC files have them) does not
            # stretch a note over the music in between.
            if t in ("stop", "continue") and midi in open_ and abs(events[open_[midi]][2] - off) < 1e-6:
                idx = open_[midi]
                events[idx][2] = max(events[idx][2], off + ql)
            else:
                events.append([midi, off, off + ql])
                idx = len(events) - 1
            if t in ("start", "continue"):
                open_[midi] = idx
            else:
                open_.pop(midi, None)
    return events


def frames_of(events):
    """Quantise events onto the sixteenth grid: a list of frames of [note, onset] pairs."""
    spans = []
    for midi, a, b in events:
        if not (LOW <= midi <= HIGH):
            continue
        s = int(round(a * STEPS_PER_QUARTER))
        e = max(s + 1, int(round(b * STEPS_PER_QUARTER)))
        spans.append((midi, s, e))
    if not spans:
        return []
    T = max(e for _, _, e in spans)
    sounding = [dict() for _ in range(T)]
    for midi, s, e in spans:
        for t in range(s, e):
            sounding[t][midi] = max(sounding[t].get(midi, 0), 1 if t == s else 0)
    return [[[m, o] for m, o in sorted(f.items())] for f in sounding]


def scores_of(path):
    """(identifier suffix "<file>#<i>:<number>", score) of every score in a corpus file; files and
    scores music21 cannot read are reported and skipped."""
    from music21 import converter, stream

    try:
        obj = converter.parse(path)
    except Exception as e:  # a few corpus files do not parse
        print(f"skip {path}: {e}", file=sys.stderr)
        return
    scores = list(obj.scores) if isinstance(obj, stream.Opus) else [obj]
    base = os.path.basename(str(path))
    for i, sc in enumerate(scores):
        num = sc.metadata.number if sc.metadata is not None and sc.metadata.number else str(i)
        yield f"{base}#{i}:{num}", sc


def parse_file(job):
    """(source, path) -> list of (identifier, frames)."""
    source, path = job
    out = []
    for ident, sc in scores_of(path):
        try:
            out.append((f"{source}/{ident}", frames_of(events_of(sc))))
        except Exception as e:
            print(f"skip {ident}: {e}", file=sys.stderr)
    return out


def jobs(sources):
    from music21 import corpus

    out = []
    for src in sources:
        if src == "bach":
            paths = [p for p in corpus.getComposer("bach") if "bwv" in str(p).lower()]
        else:
            paths = corpus.getComposer(src)
        out += [(src, str(p)) for p in sorted(paths, key=str)]
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(here, "..", "data", "default", "default.json.gz"))
    p.add_argument("--sources", default="essenFolksong,oneills1850,ryansMammoth,bach")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--min-frames", type=int, default=16)
    p.add_argument("--max-frames", type=int, default=4096)
    args = p.parse_args()

    t0 = time.time()
    js = jobs(args.sources.split(","))
    print(f"{len(js)} corpus files", flush=True)
    with Pool(args.workers) as pool:
        results = pool.map(parse_file, js, chunksize=4)
    doc = {"format": "piano-roll frames on a sixteenth-note grid; each frame lists [MIDI note, onset] "
                     "for every sounding note (onset 1 where struck, 0 where held)",
           "encoding": "onset-roll", "low_note": LOW, "keys": HIGH - LOW + 1,
           "steps_per_quarter": STEPS_PER_QUARTER, "train": [], "valid": [], "train_ids": [], "valid_ids": []}
    seen = set()
    counts = {}
    for res in results:
        for ident, fr in res:
            if not (args.min_frames <= len(fr) <= args.max_frames):
                continue
            key = json.dumps(fr)
            if key in seen:  # the collections repeat some tunes (and chorales share harmonisations)
                continue
            seen.add(key)
            split = "valid" if int(hashlib.md5(ident.encode()).hexdigest(), 16) % 20 == 0 else "train"
            doc[split].append(fr)
            doc[split + "_ids"].append(ident)
            src = ident.split("/")[0]
            c = counts.setdefault(src, [0, 0, 0])
            c[0 if split == "train" else 1] += 1
            c[2] += len(fr)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with gzip.open(args.out, "wt") as f:
        json.dump(doc, f, separators=(",", ":"))
    for src, (tr, va, fr) in sorted(counts.items()):
        print(f"{src}: {tr} train, {va} valid pieces, {fr} frames")
    print(f"train {len(doc['train'])} pieces {sum(map(len, doc['train']))} frames; "
          f"valid {len(doc['valid'])} pieces {sum(map(len, doc['valid']))} frames; "
          f"{time.time() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
