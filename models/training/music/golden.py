#!/usr/bin/env python3
"""Golden file for the Rust NLL parity test, computed by the reference (nll.py) from exported files.

  golden.py --model models/music-jsb --data FILE.json [--split valid] [--pieces 3] [--frames 24] [--out PATH]

The output (default MODEL/golden.json) is itself a data file: its split "golden" holds the first
FRAMES frames of the first PIECES pieces of the chosen split, in the data file's own frame format, so

  reprise music eval --model MODEL --data MODEL/golden.json --split golden

must print `nll_per_frame=` equal to `expected.nll_per_frame` within `expected.tolerance`. `expected`
also gives the NLL of every frame, the NADE's probabilities p(v_i = 1 | v_<i, s) for the first frame
of the first piece, and the first values of the LSTM's top output there, for debugging.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nll as ref  # noqa: E402
from musicdata import load_json  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="valid")
    p.add_argument("--pieces", type=int, default=3)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(1)

    cfg, T_ = ref.load_model(args.model)
    doc = load_json(args.data)
    pieces = [pc[: args.frames] for pc in doc[args.split][: args.pieces]]
    per_piece, all_nll = [], []
    with torch.no_grad():
        for k, pc in enumerate(pieces):
            x = ref.encode(pc, cfg["music"])
            nll, probs = ref.piece_nll(cfg, T_, x, return_probs=True)
            per_piece.append([round(float(v), 6) for v in nll])
            all_nll += [float(v) for v in nll]
            if k == 0:
                first_probs = [round(float(v), 6) for v in probs[0]]
                inputs = torch.zeros_like(x)
                inputs[1:] = x[:-1]
                cond = ref.conditioning(cfg, T_, inputs.unsqueeze(0))[0, 0, :8]
                first_cond = [round(float(v), 6) for v in cond]
    total = sum(all_nll) / len(all_nll)
    out = {
        "format": doc.get("format", "piano-roll frames"),
        "encoding": cfg["music"]["encoding"],
        "golden": pieces,
        "expected": {
            "source": f"first {args.frames} frames of the first {args.pieces} pieces of the "
                      f"{args.split!r} split of {os.path.basename(args.data)}",
            "split": "golden",
            "nll_per_frame": round(total, 6),
            "frames": len(all_nll),
            "tolerance": 1e-3,
            "frame_nll": per_piece,
            "first_frame_probs": first_probs,
            "first_frame_cond_head": first_cond,
        },
    }
    if "low_note" in doc:
        out["low_note"], out["keys"] = doc["low_note"], doc["keys"]
    path = args.out or os.path.join(args.model, "golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes): nll_per_frame={total:.6f} frames={len(all_nll)}")


if __name__ == "__main__":
    main()
