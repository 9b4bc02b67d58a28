"""Packs cached log-mel features into a small, portable training pack (for training on another machine,
e.g. with a GPU): values quantised to uint8 (step 0.4 nats from -18, clipped; train.py adds uniform
dither of one step when it unpacks) and compressed with xz.

Usage: pack.py OUT_DIR [--max-mb 50] [--manifests 'data/manifests/train-*.jsonl']
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
from train import dev_feats, manifest_feats  # noqa: E402

LO, STEP = -18.0, 0.4


def quant(f):
    return np.clip(np.round((f.astype(np.float32) - LO) / STEP), 0, 255).astype(np.uint8)


def dequant(q):
    return q.astype(np.float32) * STEP + LO


def write(out, name, feats, texts):
    q = quant(np.concatenate(feats))
    data = lzma.compress(q.tobytes(), preset=6)
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
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fs, ts = [], []
    for m in sorted(glob.glob(args.manifests)):
        f, t = manifest_feats(m)
        fs += f
        ts += t
    order = list(range(len(fs)))
    random.Random(args.seed).shuffle(order)
    # about 3.4 kB per second of audio after compression
    budget = args.max_mb * 1e6 / 3400 * 100
    keep, frames = [], 0
    for i in order:
        if frames + len(fs[i]) > budget:
            break
        keep.append(i)
        frames += len(fs[i])
    index = {"lo": LO, "step": STEP}
    index["train"] = write(args.out, "train", [fs[i] for i in keep], [ts[i] for i in keep])
    tf, tt = manifest_feats(os.path.join(DATA, "manifests", "test.jsonl"))
    index["test"] = write(args.out, "test", tf, tt)
    df, dt = dev_feats()
    index["dev"] = write(args.out, "dev", df, dt)
    json.dump(index, open(os.path.join(args.out, "index.json"), "w"))
    print(f"packed {len(keep)}/{len(fs)} train utterances ({frames / 360000:.2f} h), "
          f"{sum(index[k]['bytes'] for k in ('train', 'test', 'dev')) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
