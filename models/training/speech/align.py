"""Forced alignment of the training set with an existing speech checkpoint (CTC Viterbi over the
known transcripts). The frame labels (blank or character per model step) let a new model start
with a framewise cross-entropy term next to CTC (train.py --align), which skips CTC's long
all-blank plateau: the alignment only has to be roughly right, and a weak model aligns far better
than it recognises.

Usage: align.py --ckpt data/ckpt/last.pt [--out data/align] [--threads 2]
Writes data/align/<manifest>.npz (labels int8 per model step, offsets) for every training manifest.
"""
import argparse
import glob
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, FRONT_END, VOCAB, encode  # noqa: E402
from train import SpeechModel, load_state, manifest_feats  # noqa: E402


def viterbi(lp, y):
    """lp: (T, C) log-probabilities, y: label ids. Returns per-step symbol ids (blank 0) of the
    best CTC path that spells y, or None if y cannot fit in T steps."""
    T = lp.shape[0]
    S = 2 * len(y) + 1
    ext = np.zeros(S, dtype=np.int64)
    ext[1::2] = y
    if len(y) == 0:
        return np.zeros(T, dtype=np.int8)
    skip = np.zeros(S, dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    neg = -1e30
    a = np.full(S, neg)
    a[0] = lp[0, 0]
    a[1] = lp[0, ext[1]]
    back = np.zeros((T, S), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, T):
        s1 = np.concatenate(([neg], a[:-1]))
        s2 = np.concatenate(([neg, neg], a[:-2]))
        s2 = np.where(skip, s2, neg)
        stacked = np.stack([a, s1, s2])
        k = stacked.argmax(0)
        a = stacked[k, np.arange(S)] + lp[t, ext]
        back[t] = k
    s = S - 1 if a[S - 1] >= a[S - 2] else S - 2
    if a[s] < -1e29:
        return None
    path = np.zeros(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = ext[s]
        s -= back[t, s]
    return path.astype(np.int8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default=os.path.join(DATA, "align"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--manifests", default=os.path.join(DATA, "manifests", "train-*.jsonl"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    st = load_state(args.ckpt)
    cfg = st["cfg"]
    model = SpeechModel(cfg["n_in"], cfg["hidden"], cfg["layers"], cfg["n_out"])
    model.load_state_dict(st["model"])
    model.eval()
    mean, std = np.asarray(st["mean"], np.float32), np.asarray(st["std"], np.float32)
    stack = FRONT_END["stack"]
    os.makedirs(args.out, exist_ok=True)
    for man in sorted(glob.glob(args.manifests)):
        t0 = time.time()
        feats, texts = manifest_feats(man)
        labels = [None] * len(feats)
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
        failed = 0
        with torch.no_grad():
            for b in range(0, len(order), 32):
                idx = order[b:b + 32]
                xs = []
                for i in idx:
                    x = (feats[i].astype(np.float32) - mean) / std
                    n = max(1, len(x) // stack)
                    x = x[:n * stack] if len(x) >= stack else np.zeros((stack, x.shape[1]), np.float32)
                    xs.append(torch.from_numpy(x.reshape(n, -1)))
                lp = model(nn.utils.rnn.pad_sequence(xs, batch_first=True)).numpy()
                for j, i in enumerate(idx):
                    n = len(xs[j])
                    path = viterbi(lp[j, :n], encode(texts[i]))
                    if path is None:
                        failed += 1
                        path = np.full(n, -1, dtype=np.int8)  # no frame label: CTC only
                    labels[i] = path
        offs = np.cumsum([0] + [len(x) for x in labels])
        name = os.path.basename(man).replace(".jsonl", "")
        np.savez(os.path.join(args.out, name + ".npz"), labels=np.concatenate(labels), offsets=offs)
        print(f"{name}: {len(labels)} utterances aligned ({failed} too long for their audio) in {time.time() - t0:.0f} s",
              flush=True)


if __name__ == "__main__":
    main()
