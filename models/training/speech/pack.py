"""Packs cached log-mel features into a small, portable training pack (for training on another machine,
e.g. with a GPU): values quantised to uint8 (--step nats from -18, clipped; train.py adds uniform
dither of one step when it unpacks), differenced along time (about 10% smaller) and compressed with xz.
With --init CKPT (a checkpoint or an exported model folder) it also writes OUT_DIR/init.pt: the weights
in float16 with their normalisation and counters, for train.py --init (no optimizer state; half the size
of float32). With --wave-aug SPEC a share (--aug-share) of the training utterances is packed from audio
augmented by augment.py (rooms, noise, codecs: what cannot be done on features), the rest clean; the
receiving machine adds its feature-domain augmentation and SpecAugment on top.

Usage: pack.py OUT_DIR [--max-mb 50] [--step 0.4] [--init data/ckpt/last.pt]
                [--manifests 'data/manifests/train-*.jsonl'] [--wave-aug default --aug-share 0.5]
Writes OUT_DIR/{train,<eval sets>}.xz with OUT_DIR/index.json (offsets, texts; "eval" lists the
evaluation splits: dev, kokoro and synth where they exist).
"""
import argparse
import json
import lzma
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment import Augmenter, parse_config  # noqa: E402
from common import CACHE, DATA, log_mel  # noqa: E402
from train import (EVAL_MANIFESTS, dev_feats, expand_manifests, load_state, manifest_feats, manifest_waves,  # noqa: E402
                   n_frames, state_from_model_dir)

LO = -18.0


def quant(f, step):
    return np.clip(np.round((f.astype(np.float32) - LO) / step), 0, 255).astype(np.uint8)


def delta(q):
    """Differences along time, modulo 256 (undone by np.cumsum(d, axis=0, dtype=np.uint8))."""
    d = q.copy()
    d[1:] = (q[1:].astype(np.int16) - q[:-1]).astype(np.uint8)
    return d


def write(out, name, feats, texts, step):
    q = quant(np.concatenate(feats), step)
    data = lzma.compress(delta(q).tobytes(), preset=6)
    with open(os.path.join(out, name + ".xz"), "wb") as f:
        f.write(data)
    return {"offsets": np.cumsum([0] + [len(x) for x in feats]).tolist(), "texts": list(map(str, texts)),
            "bands": int(q.shape[1]), "bytes": len(data)}


class LazyFeats:
    """Log-mel features of int16 waveforms computed on access, a seeded share of them augmented;
    len() works before any is computed (the budget loop needs the frame counts only)."""

    def __init__(self, waves, aug, share, seed):
        self.waves, self.aug, self.share, self.seed = waves, aug, share, seed

    def __len__(self):
        return len(self.waves)

    def frames(self, i):
        return n_frames(len(self.waves[i]))

    def __getitem__(self, i):
        x = np.asarray(self.waves[i], np.float32) / 32768.0
        self.aug.rng.seed(self.seed * 1_000_003 + i)
        self.aug.rng_np = np.random.default_rng(self.seed * 1_000_003 + i)
        if self.aug.rng.random() < self.share:
            x, _ = self.aug(x)
        return log_mel(x).astype(np.float16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--max-mb", type=float, default=50.0, help="size of the training split (the evaluation splits "
                    "add about 4 MB and init.pt 11.5 MB)")
    ap.add_argument("--manifests", default=os.path.join(DATA, "manifests", "train-*.jsonl"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--step", type=float, default=0.4, help="quantisation step in nats")
    ap.add_argument("--init", default="", help="also write init.pt from this checkpoint or model folder")
    ap.add_argument("--wave-aug", default="", help="augment.py configuration for the augmented share ('default' or k=v,...)")
    ap.add_argument("--aug-share", type=float, default=0.5)
    ap.add_argument("--cache", default=CACHE)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fs, ts = [], []
    for m in expand_manifests(args.manifests):
        f, t = manifest_waves(m) if args.wave_aug else manifest_feats(m)
        fs += f
        ts += t
    if args.wave_aug:  # features of the waveforms, a share of them augmented first
        waves = fs
        aug = Augmenter(parse_config("" if args.wave_aug == "default" else args.wave_aug), args.cache, seed=args.seed,
                        others=lambda: np.asarray(waves[aug.rng.randrange(len(waves))], np.float32) / 32768.0)
        fs = LazyFeats(waves, aug, args.aug_share, args.seed)
    order = list(range(len(fs)))
    random.Random(args.seed).shuffle(order)
    # compressed bytes per second of audio, measured on the synthetic training speech (3.35 kB at step 0.4, 2.46 kB at 0.8)
    rate = 3350 * (0.4 / args.step) ** 0.44
    budget = args.max_mb * 1e6 / rate * 100
    keep, frames = [], 0
    size = fs.frames if isinstance(fs, LazyFeats) else (lambda i: len(fs[i]))
    for i in order:
        if frames + size(i) > budget:
            break
        keep.append(i)
        frames += size(i)
    index = {"lo": LO, "step": args.step, "delta": True, "eval": []}
    feats = [fs[i] for i in keep]
    while True:  # the rate above is an estimate: trim until the training split fits --max-mb
        index["train"] = write(args.out, "train", feats, [ts[i] for i in keep], args.step)
        if index["train"]["bytes"] <= args.max_mb * 1e6:
            break
        n = int(len(keep) * args.max_mb * 1e6 / index["train"]["bytes"] * 0.98)
        keep, feats = keep[:n], feats[:n]
        frames = sum(len(f) for f in feats)
    df, dt = dev_feats()
    index["dev"] = write(args.out, "dev", df, dt, args.step)
    index["eval"].append("dev")
    for name, man in EVAL_MANIFESTS.items():
        if os.path.exists(os.path.expanduser(man)):
            tf, tt = manifest_feats(man)
            index[name] = write(args.out, name, tf, tt, args.step)
            index["eval"].append(name)
    if args.init:
        import torch
        d = state_from_model_dir(args.init) if os.path.isdir(args.init) else load_state(args.init)
        d.pop("opt", None)
        d["model"] = {k: v.half() for k, v in d["model"].items()}
        torch.save(d, os.path.join(args.out, "init.pt"))
    json.dump(index, open(os.path.join(args.out, "index.json"), "w"))
    print(f"packed {len(keep)}/{len(fs)} train utterances ({frames / 360000:.2f} h), "
          f"{sum(index[k]['bytes'] for k in ['train'] + index['eval']) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
