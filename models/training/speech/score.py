"""Scores a recogniser's output against a manifest: corpus-level WER and CER after the scoring
convention's normalisation (common.normalize).

MANIFEST: jsonl with "path" and "text". HYPS: jsonl with "path" and "text", or lines "path<TAB>text".
Utterances without a hypothesis count as empty output.

Usage: score.py MANIFEST HYPS
"""
import json
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import error_rates  # noqa: E402


def read_hyps(path):
    out = {}
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("{"):
            r = json.loads(line)
            out[r["path"]] = r["text"]
        else:
            p, _, t = line.partition("\t")
            out[p] = t
    return out


def score(manifest, hyps):
    rows = [json.loads(line) for line in open(manifest) if line.strip()]
    refs = [r["text"] for r in rows]
    hs = [hyps.get(r["path"], "") for r in rows]
    return error_rates(refs, hs) + (len(rows),)


if __name__ == "__main__":
    wer, cer, n = score(sys.argv[1], read_hyps(sys.argv[2]))
    print(f"utterances {n}  WER {100 * wer:.1f}%  CER {100 * cer:.1f}%")
