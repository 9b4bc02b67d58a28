"""Loading piano-roll data sets into dense binary frames.

A data file is JSON: {"train": [piece, ...], "valid": [piece, ...], ...}. A piece is a list of
frames. With the "roll" encoding (the benchmark sets) a frame is the list of sounding MIDI notes.
With the "onset-roll" encoding (files written by prepare_default.py, which say so in their
"encoding" field) a frame is a list of [note, onset] pairs, onset 1 where the note is struck at
this frame and 0 where it is held from the previous one.

Dense frames have N = keys ("roll") or 2 * keys ("onset-roll") columns; for "onset-roll" the
columns are interleaved key by key: [sounding(k0), onset(k0), sounding(k1), onset(k1), ...].
"""
import gzip
import json

import numpy as np

LOW_NOTE = 21
KEYS = 88

# Frames per quarter note of each benchmark set's grid, where known (see the model cards).
STEPS_PER_QUARTER = {"JSB_Chorales": 1}


def load_json(path):
    with (gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)) as f:
        return json.load(f)


def encoding_of(doc):
    return doc.get("encoding", "roll")


def visible_size(encoding, keys=KEYS):
    return keys if encoding == "roll" else 2 * keys


def piece_to_dense(piece, encoding, low_note=LOW_NOTE, keys=KEYS):
    """One piece as a (T, N) uint8 array of 0/1."""
    n = visible_size(encoding, keys)
    x = np.zeros((len(piece), n), dtype=np.uint8)
    for t, frame in enumerate(piece):
        for item in frame:
            if encoding == "roll":
                k = int(item) - low_note
                if 0 <= k < keys:
                    x[t, k] = 1
            else:
                note, onset = int(item[0]), int(item[1])
                k = note - low_note
                if 0 <= k < keys:
                    x[t, 2 * k] = 1
                    if onset:
                        x[t, 2 * k + 1] = 1
    return x


def load_split(path, split, encoding=None):
    doc = load_json(path)
    enc = encoding or encoding_of(doc)
    low = doc.get("low_note", LOW_NOTE)
    keys = doc.get("keys", KEYS)
    if split not in doc:
        raise SystemExit(f"{path}: no split named {split!r} (has {sorted(k for k in doc if isinstance(doc[k], list))})")
    return [piece_to_dense(p, enc, low, keys) for p in doc[split]], enc, low, keys, doc.get("steps_per_quarter")
