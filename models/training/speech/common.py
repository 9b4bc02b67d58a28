"""Shared definitions for the speech model: text normalisation (the scoring convention),
the CTC vocabulary, the log-mel front end, evaluation-text loading and error rates.

The front end here is the reference the Rust front end copies; see docs/model-format.md.
"""
import gzip
import hashlib
import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
# Audio, features and checkpoints of the Kokoro pipeline live outside the clone (every script takes --cache).
CACHE = os.environ.get("REPRISE_SPEECH_CACHE", os.path.join("~", ".cache", "reprise", "speech"))

# ---------------------------------------------------------------- vocabulary
VOCAB = ["<blank>", " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}


def encode(text):
    return [CHAR_TO_ID[c] for c in text if c in CHAR_TO_ID and c != "<blank>"]


def decode_greedy(ids):
    """Collapse repeats, drop blanks (index 0)."""
    out, prev = [], -1
    for i in ids:
        if i != prev and i != 0:
            out.append(VOCAB[i])
        prev = i
    return re.sub(" +", " ", "".join(out)).strip()


# ---------------------------------------------------------------- numbers to words
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
        "nine": "ninth", "twelve": "twelfth"}


def number_words(n):
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + ("" if o == 0 else " " + _ONES[o])
    for value, name in _SCALES:
        if n >= value:
            q, r = divmod(n, value)
            return number_words(q) + " " + name + ("" if r == 0 else " " + number_words(r))
    raise ValueError(n)


def ordinal_words(n):
    words = number_words(n).split()
    last = words[-1]
    if last in _ORD:
        last = _ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return " ".join(words[:-1] + [last])


def digit_string_words(s):
    """The scoring convention: five or more digits, or a leading zero, are read digit by digit."""
    if len(s) >= 5 or (len(s) > 1 and s[0] == "0"):
        return " ".join(_ONES[int(c)] for c in s)
    return number_words(int(s))


def normalize(text):
    """Scoring convention: lower case; '*' -> star, '#' -> pound, '%' -> percent, '&' -> and;
    numbers spelled as words (ordinals 1st/2nd/... as ordinal words, decimals as 'point' + digits,
    digit strings of five or more digits or with a leading zero digit by digit); every other
    character that is not a letter, digit or apostrophe becomes a space (so 'A.M.' -> 'a m',
    'call-forward' -> 'call forward'); apostrophes not inside a word are dropped; spaces collapsed."""
    t = text.lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'")
    t = t.replace("*", " star ").replace("#", " pound ").replace("%", " percent ").replace("&", " and ")
    t = re.sub(r"(\d),(\d{3})\b", r"\1\2", t)
    t = re.sub(r"(\d),(\d{3})\b", r"\1\2", t)
    t = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: " " + ordinal_words(int(m.group(1))) + " "
               if len(m.group(1)) < 13 else m.group(0), t)
    t = re.sub(r"(\d+)\.(\d+)", lambda m: " " + digit_string_words(m.group(1)) + " point " +
               " ".join(_ONES[int(c)] for c in m.group(2)) + " ", t)
    t = re.sub(r"\d+", lambda m: " " + digit_string_words(m.group(0)) + " ", t)
    t = re.sub(r"[^a-z']+", " ", t)
    t = re.sub(r"(^|\s)'+|'+(\s|$)", " ", t)
    t = re.sub(r"(^|\s)'+|'+(\s|$)", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def manifest_root(man_path):
    """A manifest's audio paths are relative to the folder above its manifests/ folder (data/ or the cache)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(os.path.expanduser(man_path))))


# ---------------------------------------------------------------- held-out texts
def heldout_text(text, per_mille=15):
    """True for the texts set aside for the natural-voice test (speech/kokoro.py synth --test): a fixed
    hash of the normalised text, so the split does not depend on the corpus. Only texts of three or more
    words are held out (one- and two-word utterances are too common to keep out of training). Held-out
    texts never go into training audio or language-model text."""
    t = normalize(text)
    if len(t.split()) < 3:
        return False
    return int(hashlib.sha1(t.encode()).hexdigest()[:8], 16) % 1000 < per_mille


# ---------------------------------------------------------------- evaluation texts
PROMPTS_GZ = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
SOUNDS_DIR = "/usr/share/asterisk/sounds/en"
DEV_IDS = os.environ.get("ASTERISK_DEV_IDS", os.path.join(HERE, "..", "..", "..", "..", "shared", "data", "speech", "asterisk-dev-ids.txt"))
SUBDIRS = ["dictate", "digits", "followme", "letters", "phonetic"]


def asterisk_prompts():
    """All prompt texts: {id: raw text}. Bracketed texts ([beep tone]) are not speech and skipped."""
    out = {}
    with gzip.open(PROMPTS_GZ, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            v = v.strip()
            if v and not v.startswith("["):
                out[k.strip()] = v
    return out


def dev_ids_path():
    if os.path.exists(DEV_IDS):
        return DEV_IDS
    raise FileNotFoundError("asterisk-dev-ids.txt (set ASTERISK_DEV_IDS)")


def asterisk_dev_set():
    """[(prompt id, path of the .g722 file, normalised text)] for the development ids only."""
    prompts = asterisk_prompts()
    out = []
    for line in open(dev_ids_path()):
        name = line.strip()
        if not name:
            continue
        pid = name[:-4]
        for s in SUBDIRS:
            if pid.startswith(s + "_"):
                pid = s + "/" + pid[len(s) + 1:]
                break
        out.append((pid, os.path.join(SOUNDS_DIR, pid + ".g722"), normalize(prompts[pid])))
    return out


def load_audio(path, sr=16000):
    """Mono float32 in [-1, 1) at 16 kHz from a wav/g722 file (PyAV)."""
    if path.endswith(".wav"):
        import wave
        with wave.open(path) as w:
            assert w.getframerate() == sr and w.getnchannels() == 1 and w.getsampwidth() == 2, path
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    import av
    kw = {"format": "g722"} if path.endswith(".g722") else {}
    with av.open(path, **kw) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=sr)
        chunks = []
        for frame in c.decode(audio=0):
            for fr in res.resample(frame):
                chunks.append(fr.to_ndarray().reshape(-1))
        for fr in res.resample(None):
            chunks.append(fr.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32) / 32768.0


# ---------------------------------------------------------------- front end
FRONT_END = {
    "sample_rate": 16000,
    "pre_emphasis": 0.0,
    "window": "hann-periodic",
    "win_length": 400,
    "hop_length": 160,
    "n_fft": 512,
    "spectrum": "power",
    "n_mels": 80,
    "mel_scale": "htk",
    "fmin": 20.0,
    "fmax": 7600.0,
    "mel_norm": "none",
    "log": "ln",
    "log_floor": 1e-10,
    "stack": 3,
    "stride": 3,
}


def mel_filterbank(fe=FRONT_END):
    """(n_mels, n_fft//2+1) triangular filters, HTK mel, peak 1, no area normalisation.
    Band m has corners at mel points m, m+1, m+2 of n_mels+2 points equally spaced in mel between
    fmin and fmax; bin k has frequency k*sample_rate/n_fft; weight = max(0, min((f-lo)/(c-lo), (hi-f)/(hi-c)))."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    n_bins = fe["n_fft"] // 2 + 1
    freqs = np.arange(n_bins, dtype=np.float64) * fe["sample_rate"] / fe["n_fft"]
    mels = np.linspace(hz_to_mel(fe["fmin"]), hz_to_mel(fe["fmax"]), fe["n_mels"] + 2)
    hz = mel_to_hz(mels)
    fb = np.zeros((fe["n_mels"], n_bins), dtype=np.float64)
    for m in range(fe["n_mels"]):
        lo, c, hi = hz[m], hz[m + 1], hz[m + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


_FB = None


def log_mel(wave, fe=FRONT_END):
    """wave: float samples in [-1, 1). Returns (frames, n_mels) float32 natural-log mel power.
    Frame t covers samples [t*hop, t*hop+win) (no padding; frames = 1 + (N-win)//hop, 0 if N < win);
    the frame times a periodic Hann window w[n] = 0.5 - 0.5*cos(2*pi*n/win) is zero-padded at the end
    to n_fft; power = re^2 + im^2 of the real FFT; mel = fb @ power; out = ln(max(mel, floor))."""
    global _FB
    if _FB is None:
        _FB = mel_filterbank(fe)
    x = np.asarray(wave, dtype=np.float64)
    if fe["pre_emphasis"]:
        x = np.concatenate([x[:1], x[1:] - fe["pre_emphasis"] * x[:-1]])
    win, hop = fe["win_length"], fe["hop_length"]
    if len(x) < win:
        return np.zeros((0, fe["n_mels"]), dtype=np.float32)
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    spec = np.fft.rfft(x[idx] * w, n=fe["n_fft"], axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ _FB.T
    return np.log(np.maximum(mel, fe["log_floor"])).astype(np.float32)


def stack_frames(feats, k=3):
    """Step j = concat(frames k*j .. k*j+k-1); trailing frames that do not fill a step are dropped."""
    n = feats.shape[0] // k
    return feats[: n * k].reshape(n, k * feats.shape[1])


# ---------------------------------------------------------------- scoring
def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ai != b[j - 1]))
        prev = cur
    return prev[-1]


def error_rates(refs, hyps):
    """Corpus-level (WER, CER) after normalisation: edits summed over utterances / reference length."""
    we = wn = ce = cn = 0
    for r, h in zip(refs, hyps):
        r, h = normalize(r), normalize(h)
        rw, hw = r.split(), h.split()
        we += edit_distance(rw, hw)
        wn += len(rw)
        ce += edit_distance(list(r), list(h))
        cn += len(r)
    return we / max(wn, 1), ce / max(cn, 1)
