"""Packs cached log-mel features into a small, portable training pack (for training on another machine,
e.g. with a GPU): values quantised to uint8 (--step nats from -18, clipped; train.py adds uniform
dither of one step when it unpacks), differenced along time (about 10% smaller) and compressed with xz.
With --init CKPT it also writes OUT_DIR/init.pt: that checkpoint's weights in float16 with its
normalisation and counters, for train.py --init (no optimizer state; half the size of float32).

Usage: pack.py OUT_DIR [--max-mb 50] [--step 0.4] [--init data/ckpt/last.pt]
                [--manifests 'data/manifests/train-*.jsonl']
Writes OUT_DIR/{train,test,dev}.xz with OUT_DIR/index.json (offsets, texts).
"""
import argparse
import glob
import json
import lzma
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA  # noqa: E402
from train import dev_feats, load_state, manifest_feats  # noqa: E402

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--max-mb", type=float, default=50.0)
    ap.add_argument("--manifests", default=os.path.join(DATA, "manifests", "train-*.jsonl"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--step", type=float, default=0.4, help="quantisation step in nats")
    ap.add_argument("--init", default="", help="also write init.pt from this checkpoint")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fs, ts = [], []
    for m in sorted(glob.glob(args.manifests)):
        f, t = manifest_feats(m)
        fs += f
        ts += t
    order = list(range(len(fs)))
    random.Random(args.seed).shuffle(order)
    # compressed bytes per second of audio, measured on the synthetic training speech (3.35 kB at step 0.4, 2.46 kB at 0.8)
    rate = 3350 * (0.4 / args.step) ** 0.44
    budget = args.max_mb * 1e6 / rate * 100
    keep, frames = [], 0
    for i in order:
        if frames + len(fs[i]) > budget:
            break
        keep.append(i)
        frames += len(fs[i])
    index = {"lo": LO, "step": args.step, "delta": True}
    index["train"] = write(args.out, "train", [fs[i] for i in keep], [ts[i] for i in keep], args.step)
    tf, tt = manifest_feats(os.path.join(DATA, "manifests", "test.jsonl"))
    index["test"] = write(args.out, "test", tf, tt, args.step)
    df, dt = dev_feats()
    index["dev"] = write(args.out, "dev", df, dt, args.step)
    if args.init:
        import torch
        d = load_state(args.init)
        d.pop("opt", None)
        d["model"] = {k: v.half() for k, v in d["model"].items()}
        torch.save(d, os.path.join(args.out, "init.pt"))
    json.dump(index, open(os.path.join(args.out, "index.json"), "w"))
    print(f"packed {len(keep)}/{len(fs)} train utterances ({frames / 360000:.2f} h), "
          f"{sum(index[k]['bytes'] for k in ('train', 'test', 'dev')) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
