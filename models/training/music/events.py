"""The event encoding of the `music-events` continuation model (docs/model-format.md).

Music on a grid of `steps_per_quarter` steps per quarter note becomes a token sequence:

- `start` (token 0) opens every sequence;
- `shift(k)`, k = 1..SHIFTS (tokens 1..SHIFTS): time moves on by k steps;
- `note(m)` (tokens 1+SHIFTS .. SHIFTS+KEYS): a note on MIDI key m starts now; it is always
  followed by
- `dur(i)` (the last len(DURATIONS) tokens): the note lasts DURATIONS[i] steps.

Notes starting at the same step come in ascending key order; longer gaps take several shifts.

The LSTM's input at each position is made of blocks (BLOCKS, in this order), each describing the
stream after the token just read: `token`, the token one-hot; `sounding`, the keys sounding (a
note counts from its `dur` token until its end); `used`, the keys any note read so far started
on; `pitch_classes`, how many notes of each pitch class were read so far, divided by the count of
the most frequent one; `metric`, the metric position of the current time: one-hot step within the
quarter note (4), quarter note within the bar (8, the last one taking the rest), and the bar's
length in quarter notes rounded up (8, 1..8). It predicts the next token.
Training, export, the golden file and the Rust engine all use this one definition.
"""
import numpy as np

LOW = 21
KEYS = 88
SHIFTS = 16
DURATIONS = list(range(1, 17)) + [18, 20, 24, 28, 32, 40, 48, 64]
START = 0
NOTE0 = 1 + SHIFTS
DUR0 = NOTE0 + KEYS
VOCAB = DUR0 + len(DURATIONS)
METRIC = 4 + 8 + 8
BLOCK_SIZES = {"token": VOCAB, "sounding": KEYS, "used": KEYS, "pitch_classes": 12, "metric": METRIC}
BLOCKS = ["token", "sounding", "used", "pitch_classes", "metric"]


def input_size(blocks=BLOCKS):
    return sum(BLOCK_SIZES[b] for b in blocks)


INPUT = input_size()


def duration_index(steps):
    """The nearest entry of DURATIONS (the shorter one on a tie)."""
    best = 0
    for i, d in enumerate(DURATIONS):
        if abs(d - steps) < abs(DURATIONS[best] - steps):
            best = i
    return best


def tokens_of(notes, end=None):
    """Tokens (after `start`) of notes [[midi, start, duration]] whose starts are >= 0, sorted by
    (start, midi); shifts run on to `end` when given."""
    toks, t = [], 0
    for m, s, d in sorted(notes, key=lambda n: (n[1], n[0])):
        if not (LOW <= m < LOW + KEYS):
            continue
        while s > t:
            k = min(SHIFTS, s - t)
            toks.append(k)
            t += k
        toks.append(NOTE0 + m - LOW)
        toks.append(DUR0 + duration_index(d))
    if end is not None:
        while end > t:
            k = min(SHIFTS, end - t)
            toks.append(k)
            t += k
    return toks


def metric_slots(pos, bar):
    """Indices (within the METRIC block) that are hot at bar position `pos` of a `bar`-step bar
    (a sixteenth-note grid)."""
    return (pos % 4, 4 + min(pos // 4, 7), 12 + min((bar + 3) // 4, 8) - 1)


class State:
    """Time, sounding and used keys, pitch-class counts and a pending note while reading tokens."""

    def __init__(self, bar, phase, blocks=BLOCKS):
        self.bar, self.phase, self.blocks = bar, phase, blocks
        self.t = 0
        self.ends = np.zeros(KEYS, dtype=np.int64)
        self.used = np.zeros(KEYS, dtype=bool)
        self.pcs = np.zeros(12, dtype=np.int64)
        self.pending = None

    def read(self, tok):
        if 1 <= tok <= SHIFTS:
            self.t += tok
        elif NOTE0 <= tok < DUR0:
            k = tok - NOTE0
            self.pending = k
            self.used[k] = True
            self.pcs[(LOW + k) % 12] += 1
        elif tok >= DUR0:
            if self.pending is not None:
                self.ends[self.pending] = self.t + DURATIONS[tok - DUR0]
            self.pending = None

    def fill(self, tok, row):
        """Writes the input vector after reading `tok` into `row` (zeros on entry)."""
        at = 0
        for block in self.blocks:
            if block == "token":
                row[at + tok] = 1.0
            elif block == "sounding":
                row[at:at + KEYS] = self.ends > self.t
            elif block == "used":
                row[at:at + KEYS] = self.used
            elif block == "pitch_classes":
                top = self.pcs.max()
                if top > 0:
                    row[at:at + 12] = (self.pcs / top).astype(np.float32)
            elif block == "metric":
                pos = (self.t - self.phase) % self.bar
                for i in metric_slots(pos, self.bar):
                    row[at + i] = 1.0
            at += BLOCK_SIZES[block]


def inputs_of(tokens, bar, phase=0, blocks=BLOCKS):
    """(T, input_size(blocks)) float32 inputs for tokens[0..T] (tokens[0] = START); the target at
    row i is tokens[i + 1]. `phase` is the step of a bar line relative to the first token's time."""
    x = np.zeros((len(tokens), input_size(blocks)), dtype=np.float32)
    st = State(bar, phase, blocks)
    for i, tok in enumerate(tokens):
        st.read(tok)
        st.fill(tok, x[i])
    return x
