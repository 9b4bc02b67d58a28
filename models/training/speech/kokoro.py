"""Natural multi-speaker English speech from Kokoro-82M (int8 ONNX), the main training source, and the
held-out natural-voice test set. Needs `fetch.py` first (model, vocabulary, voices in the cache).

Phonemes: Debian's espeak-ng through phonemizer (en-us for the American voices, en-gb for the British),
mapped onto Kokoro's 114-symbol vocabulary (diphthongs and affricates to its single symbols; symbols
it lacks are dropped and counted). Input: token ids with a 0 at each end, the voice table's row
len(phonemes) - 1 as style, and a speed; output 24 kHz float audio. Texts whose phonemes exceed
510 tokens are split at word boundaries and the pieces joined with a short pause.

Voices: 28 English voices (af_*, am_* US; bf_*, bm_* UK). Four are held out entirely for the test
(HELDOUT_VOICES: US female and male, UK female and male; never in training, never in a blend). Training
uses the other 24 and random convex blends of two or three of their style tables (new speakers), at
speed 0.8-1.25. Every DEFAULT_OLD_EVERY-th training shard is made by the old engines of synth.py (espeak-ng,
flite, festival, piper) instead, so they stay a small share.

Audio: peak-normalised (never clipped), the edge silence trimmed to a random 0.08-0.35 s, resampled
to 16 kHz by sox and stored as 16-bit FLAC under CACHE/audio/<run>/<shard>/, one JSONL manifest per
shard (written when the shard is complete) and the run's manifest CACHE/manifests/<run>.jsonl
(rows: path relative to CACHE, text, voice, family, lang, speed, duration). Runs are seeded and
resumable (finished shards are skipped) and can be split across machines with --part I/N.

Usage (from models/training/):
  kokoro.py --test [--utts 480]            held-out voices and texts -> manifests/kokoro-test.jsonl
  kokoro.py --hours 40 --seed 1            training run kokoro-s1 (stops when it holds 40 h)
  kokoro.py --report                       hours per voice family of every run in the cache
"""
import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, DATA, heldout_text, normalize  # noqa: E402

SR_KOKORO = 24000
SR = 16000
MAX_TOKENS = 510
HELDOUT_VOICES = ("af_sarah", "am_michael", "bf_emma", "bm_george")
DEFAULT_OLD_EVERY = 8

# espeak-ng IPA (phonemizer, tie "^") -> Kokoro's symbols. Longest patterns first.
_E2K_COMMON = [("ʔˌn\u0329", "ʔn"), ("ʔn\u0329", "ʔn"), ("a^ɪ", "I"), ("a^ʊ", "W"), ("d^ʒ", "ʤ"), ("e^ɪ", "A"),
               ("t^ʃ", "ʧ"), ("ɔ^ɪ", "Y"), ("ə^l", "ᵊl"), ("ʲo", "jo"), ("ʲə", "jə"), ("ʲ", ""), ("ɚ", "əɹ"),
               ("e", "A"), ("r", "ɹ"), ("x", "k"), ("ç", "k"), ("ɐ", "ə"), ("ɬ", "l"), ("\u0303", "")]
_E2K_GB = [("e^ə", "ɛː"), ("iə", "ɪə"), ("ə^ʊ", "Q")]
_E2K_US = [("o^ʊ", "O"), ("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɪə", "iə"), ("ː", "")]


def espeak_to_kokoro(ps, british):
    for old, new in _E2K_COMMON:
        ps = ps.replace(old, new)
    ps = re.sub(r"(\S)\u0329", "ᵊ\\1", ps).replace("\u0329", "")
    for old, new in (_E2K_GB if british else _E2K_US):
        ps = ps.replace(old, new)
    return ps.replace("o", "ɔ").replace("ɾ", "T").replace("ʔ", "t").replace("^", "").strip()


def family(voice):
    return voice[:2] if not voice.startswith("blend:") else "blend"


def is_british(voice):
    return voice.startswith("b")


class Kokoro:
    def __init__(self, cache, threads=1):
        import onnxruntime as ort
        from phonemizer.backend import EspeakBackend
        d = os.path.join(cache, "kokoro")
        self.vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))["vocab"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(os.path.join(d, "kokoro-v1.0.int8.onnx"), so, providers=["CPUExecutionProvider"])
        self.tables = {}
        for p in sorted(glob.glob(os.path.join(d, "voices", "*.bin"))):
            self.tables[os.path.basename(p)[:-4]] = np.fromfile(p, dtype="<f4").reshape(510, 256)
        if len(self.tables) != 28:
            raise SystemExit(f"{d}/voices: {len(self.tables)} voices; run fetch.py")
        self.backends = {b: EspeakBackend("en-gb" if b else "en-us", preserve_punctuation=True, with_stress=True, tie="^")
                         for b in (False, True)}
        self.dropped = Counter()

    def phonemes(self, text, british):
        ps = self.backends[british].phonemize([text], strip=True)[0]
        return espeak_to_kokoro(ps, british)

    def ids(self, ps):
        out = []
        for c in ps:
            if c in self.vocab:
                out.append(self.vocab[c])
            else:
                self.dropped[c] += 1
        return out

    def synth(self, text, table, british, speed):
        """24 kHz float audio for text (split at word boundaries when its phonemes are too long)."""
        ids = self.ids(self.phonemes(text, british))
        if len(ids) > MAX_TOKENS:
            words = text.split()
            if len(words) < 2:
                ids = ids[:MAX_TOKENS]
            else:
                h = len(words) // 2
                gap = np.zeros(int(SR_KOKORO * 0.15), np.float32)
                return np.concatenate([self.synth(" ".join(words[:h]), table, british, speed), gap,
                                       self.synth(" ".join(words[h:]), table, british, speed)])
        if not ids:
            return np.zeros(0, np.float32)
        feed = {"tokens": np.array([[0] + ids + [0]], dtype=np.int64),
                "style": table[len(ids) - 1][None, :].astype(np.float32),
                "speed": np.array([speed], dtype=np.float32)}
        return self.sess.run(None, feed)[0].reshape(-1).astype(np.float32)


def trim_edges(x, rng, sr=SR_KOKORO):
    """Keeps a random 0.08-0.35 s of the silence before and after the speech (frames within 40 dB of
    the loudest 10 ms frame count as speech)."""
    hop = sr // 100
    n = len(x) // hop
    if n < 3:
        return x
    rms = np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    on = np.nonzero(rms > rms.max() * 0.01)[0]
    a = max(0, on[0] * hop - int(sr * rng.uniform(0.08, 0.35)))
    b = min(len(x), (on[-1] + 1) * hop + int(sr * rng.uniform(0.08, 0.35)))
    return x[a:b]


def write_flac(path, x24, peak):
    """Peak-normalises (to `peak`, no clipping), resamples 24 -> 16 kHz with sox, writes 16-bit FLAC.
    Returns the duration in seconds."""
    x = x24 / (np.max(np.abs(x24)) + 1e-9) * peak
    subprocess.run(["sox", "-V1", "-t", "f32", "-r", str(SR_KOKORO), "-c", "1", "-", "-r", str(SR), "-b", "16", path],
                   input=x.astype("<f4").tobytes(), check=True)
    return round(len(x) * SR / SR_KOKORO / SR, 3)


# ------------------------------------------------------------------ texts
def read_lines(path):
    return [s for s in open(path, encoding="utf-8").read().split("\n") if s] if os.path.exists(path) else []


def read_pairs(path):
    """talk.py output: 'say<TAB>transcript' lines (say is what the synthesiser reads)."""
    out = []
    for line in read_lines(path):
        say, _, text = line.partition("\t")
        out.append((say, text or normalize(say)))
    return out


def say_form(text):
    """What the synthesiser reads for a normalised text: runs of two or more single letters become
    capitals with full stops ("a m" -> "A. M.", "r k y" -> "R. K. Y."), which espeak-ng reads as letter
    names (a lower-case "a" is read as the article)."""
    words = text.split()
    single = [len(w) == 1 for w in words]
    out = []
    for i, w in enumerate(words):
        run = single[i] and ((i > 0 and single[i - 1]) or (i + 1 < len(words) and single[i + 1]))
        out.append(w.upper() + "." if run else w)
    return " ".join(out)


def plain(lines):
    return [(say_form(s), s) for s in lines]


def text_pools(test):
    """{source: [(say, transcript)]}: the training pools, or (test) the held-out texts."""
    tdir = os.path.join(DATA, "text")
    if test:
        pools = {"heldout": plain(read_lines(os.path.join(tdir, "heldout.txt"))),
                 "talk": read_pairs(os.path.join(tdir, "talk-heldout.txt"))}
    else:
        talk = read_pairs(os.path.join(tdir, "talk.txt"))
        pools = {"prose": plain(read_lines(os.path.join(tdir, "prose.txt"))),
                 "short": plain(read_lines(os.path.join(tdir, "short.txt"))),
                 "talk": [p for p in talk if len(p[1].split()) > 3],
                 "talk-short": [p for p in talk if len(p[1].split()) <= 3]}
        bad = sum(heldout_text(t) for pool in pools.values() for _, t in pool)
        if bad:
            raise SystemExit(f"{bad} held-out texts in the training pools (rerun text.py and talk.py)")
    return {k: v for k, v in pools.items() if v}


# ------------------------------------------------------------------ plans
def blend(tables, names, rng):
    k = rng.choice([2, 2, 3])
    parts = rng.sample(names, k)
    w = np.array([rng.gammavariate(1.0, 1.0) for _ in parts])
    w = w / w.sum()
    table = sum(wi * tables[p] for wi, p in zip(w, parts))
    uk = sum(wi for wi, p in zip(w, parts) if is_british(p))
    british = rng.random() < uk  # the accent follows the mix's British share
    desc = "blend:" + "+".join(f"{p}*{wi:.2f}" for p, wi in zip(parts, w))
    return desc, table.astype(np.float32), british


def test_texts(pools, weights, n):
    """n distinct held-out texts in a fixed order (each source shuffled once, drawn without replacement)."""
    rng = random.Random("kokoro-test-texts")
    order = {k: rng.sample(v, len(v)) for k, v in pools.items()}
    out = []
    while len(out) < n and any(order.values()):
        src = rng.choices(list(weights), weights=list(weights.values()))[0]
        if order[src]:
            out.append(order[src].pop())
    return out


def plan_shard(shard, n, pools, weights, rng, test):
    """[(uid, say, transcript, voice, speed)] for one shard."""
    rows = []
    for j in range(n):
        uid = f"{shard:05d}-{j:03d}"
        if test:
            say, text = pools["_test"][shard * n + j]
        else:
            src = rng.choices(list(weights), weights=list(weights.values()))[0]
            say, text = rng.choice(pools[src])
        if test:
            voice = HELDOUT_VOICES[(shard * n + j) % len(HELDOUT_VOICES)]
            speed = rng.uniform(0.85, 1.15)
        else:
            voice = None  # chosen at synthesis time (blends need the tables)
            speed = rng.uniform(0.8, 1.25)
        rows.append((uid, say, text, voice, speed))
    return rows


# ------------------------------------------------------------------ runs
def shard_manifest(cache, run, shard):
    return os.path.join(cache, "audio", run, f"{shard:05d}.jsonl")


def merge_manifest(cache, run):
    rows = []
    for p in sorted(glob.glob(os.path.join(cache, "audio", run, "[0-9][0-9][0-9][0-9][0-9].jsonl"))):
        rows += [line for line in open(p) if line.strip()]
    os.makedirs(os.path.join(cache, "manifests"), exist_ok=True)
    out = os.path.join(cache, "manifests", run + ".jsonl")
    with open(out + ".tmp", "w") as f:
        f.writelines(rows)
    os.replace(out + ".tmp", out)
    return sum(json.loads(r)["duration"] for r in rows) / 3600


def kokoro_shard(kk, cache, run, shard, rows, rng, test):
    out_dir = os.path.join(cache, "audio", run, f"{shard:05d}")
    os.makedirs(out_dir, exist_ok=True)
    names = [v for v in sorted(kk.tables) if v not in HELDOUT_VOICES]
    res = []
    for uid, say, text, voice, speed in rows:
        if voice is None:
            if rng.random() < 0.5:
                voice, table, british = blend(kk.tables, names, rng)
            else:
                voice = rng.choice(names)
                table, british = kk.tables[voice], is_british(voice)
        else:
            table, british = kk.tables[voice], is_british(voice)
        before = sum(kk.dropped.values())
        x = kk.synth(say, table, british, speed)
        if len(x) < SR_KOKORO // 5 or np.max(np.abs(x)) < 1e-4:
            continue
        x = trim_edges(x, rng)
        path = os.path.join(out_dir, uid + ".flac")
        dur = write_flac(path, x, peak=0.9)
        row = {"path": os.path.relpath(path, cache), "text": text, "voice": voice, "family": family(voice),
               "lang": "en-gb" if british else "en-us", "speed": round(speed, 3), "duration": dur,
               "dropped": sum(kk.dropped.values()) - before}
        if say != text:
            row["say"] = say
        res.append(row)
    return res


def old_engine_shard(cache, run, shard, rows, rng):
    """The old engines of synth.py (clean: augmentation happens in training)."""
    import synth
    out_dir = os.path.join(cache, "audio", run, f"{shard:05d}")
    os.makedirs(out_dir, exist_ok=True)
    res = []
    for b in range(0, len(rows), 25):
        r = rng.random() * sum(v[2] for v in synth.TRAIN_VOICES)
        for engine, voice, w in synth.TRAIN_VOICES:
            r -= w
            if r <= 0:
                break
        items = [(uid, text) for uid, _, text, _, _ in rows[b:b + 25]]
        for row in synth.work((b, engine, voice, items, rng.randrange(2**31), out_dir, True), root=cache):
            row["family"] = "old"
            res.append(row)
    return res


def synth_run(args, cache):
    run = "kokoro-test" if args.test else f"kokoro-s{args.seed}"
    pools = text_pools(args.test)
    if args.test:
        weights = {"heldout": 0.75, "talk": 0.25}
    else:
        weights = {"prose": args.prose_share, "short": args.short_share, "talk": args.talk_share,
                   "talk-short": args.talk_short_share}
    weights = {k: v for k, v in weights.items() if k in pools and v > 0}
    if args.test:  # the test's texts are fixed at its first run: later text changes do not move them
        plan = os.path.join(cache, "audio", run, "texts.jsonl")
        if not os.path.exists(plan):
            os.makedirs(os.path.dirname(plan), exist_ok=True)
            with open(plan + ".tmp", "w") as f:
                f.writelines(json.dumps(p) + "\n" for p in test_texts(pools, weights, args.utts))
            os.replace(plan + ".tmp", plan)
        pools["_test"] = [tuple(json.loads(line)) for line in open(plan)]
        args.utts = min(args.utts, len(pools["_test"]))
    part, nparts = (int(v) for v in args.part.split("/"))
    kk = None
    shard, hours = 0, 0.0
    max_shards = -(-args.utts // args.shard_utts) if args.test else 10**6
    t_start = time.time()
    made = 0.0
    while shard < max_shards and (args.test or hours < args.hours):
        done_path = shard_manifest(cache, run, shard)
        if os.path.exists(done_path):
            hours += sum(json.loads(line)["duration"] for line in open(done_path) if line.strip()) / 3600
            shard += 1
            continue
        if shard % nparts != part:
            shard += 1
            continue
        rng = random.Random(f"{run}-{shard}")
        n = min(args.shard_utts, args.utts - shard * args.shard_utts) if args.test else args.shard_utts
        rows = plan_shard(shard, n, pools, weights, rng, args.test)
        t0 = time.time()
        if not args.test and args.old_every and shard % args.old_every == args.old_every - 1:
            res = old_engine_shard(cache, run, shard, rows, rng)
        else:
            kk = kk or Kokoro(cache, args.threads)
            res = kokoro_shard(kk, cache, run, shard, rows, rng, args.test)
        with open(done_path + ".tmp", "w") as f:
            for r in res:
                f.write(json.dumps(r) + "\n")
        os.replace(done_path + ".tmp", done_path)
        secs = sum(r["duration"] for r in res)
        hours += secs / 3600
        made += secs
        total = merge_manifest(cache, run)
        dropped = dict(kk.dropped.most_common(8)) if kk else {}
        print(f"{run} shard {shard}: {len(res)} utts {secs / 60:.1f} min audio in {time.time() - t0:.0f} s "
              f"({secs / max(time.time() - t0, 1e-9):.2f}x real time); run {total:.2f} h; "
              f"this process {made / 3600:.2f} h in {(time.time() - t_start) / 3600:.2f} h; dropped {dropped}", flush=True)
        shard += 1
    print(f"{run}: {merge_manifest(cache, run):.2f} h", flush=True)


def report(cache):
    fams = {}
    for man in sorted(glob.glob(os.path.join(cache, "manifests", "kokoro-*.jsonl"))):
        run = os.path.basename(man)[:-6]
        for line in open(man):
            r = json.loads(line)
            key = (run, r.get("family", "?"))
            n, s = fams.get(key, (0, 0.0))
            fams[key] = (n + 1, s + r["duration"])
    print("| run | family | utterances | hours |\n|---|---|---|---|")
    for (run, fam), (n, s) in sorted(fams.items()):
        print(f"| {run} | {fam} | {n} | {s / 3600:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=CACHE)
    ap.add_argument("--test", action="store_true", help="held-out voices and held-out texts")
    ap.add_argument("--utts", type=int, default=480, help="utterances of the test set")
    ap.add_argument("--hours", type=float, default=10.0, help="training run: stop when it holds this much audio")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shard-utts", type=int, default=40)
    ap.add_argument("--part", default="0/1", help="I/N: make only the shards k with k %% N == I")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--prose-share", type=float, default=0.35, help="text.py sentences")
    ap.add_argument("--short-share", type=float, default=0.10, help="text.py templated short utterances")
    ap.add_argument("--talk-share", type=float, default=0.35, help="talk.py utterances of four or more words")
    ap.add_argument("--talk-short-share", type=float, default=0.20, help="talk.py utterances of one to three words")
    ap.add_argument("--old-every", type=int, default=DEFAULT_OLD_EVERY, help="every N-th training shard by the old engines (0: none)")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    cache = os.path.expanduser(args.cache)
    if args.report:
        report(cache)
    else:
        synth_run(args, cache)


if __name__ == "__main__":
    main()
