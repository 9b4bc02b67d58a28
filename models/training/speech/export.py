"""Exports a training checkpoint to a Reprise model folder: config.json (kind speech-ctc) and
model.safetensors (BF16 by default; the engine converts at load time). The model card (README.md) is
written separately by card.py from measured figures.

Usage: export.py [--ckpt data/ckpt/best.pt] [--out ../../speech-en] [--dtype bf16|f32]
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, FRONT_END, VOCAB  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def speech_section(mean, std):
    fe = FRONT_END
    return {
        "sample_rate": fe["sample_rate"],
        "input": "mono samples as floats in [-1, 1) (16-bit PCM divided by 32768)",
        "pre_emphasis": fe["pre_emphasis"],
        "window": fe["window"],
        "win_length": fe["win_length"],
        "hop_length": fe["hop_length"],
        "n_fft": fe["n_fft"],
        "padding": "none",
        "spectrum": fe["spectrum"],
        "n_mels": fe["n_mels"],
        "mel_scale": fe["mel_scale"],
        "fmin": fe["fmin"],
        "fmax": fe["fmax"],
        "mel_norm": fe["mel_norm"],
        "log": fe["log"],
        "log_floor": fe["log_floor"],
        "feature_mean": [round(float(v), 6) for v in mean],
        "feature_std": [round(float(v), 6) for v in std],
        "stack": fe["stack"],
        "stride": fe["stride"],
        "vocabulary": VOCAB,
        "blank": 0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(DATA, "ckpt", "best.pt"))
    ap.add_argument("--out", default=os.path.normpath(os.path.join(HERE, "..", "..", "speech-en")))
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    args = ap.parse_args()
    from train import load_state
    st = load_state(args.ckpt)
    cfg = st["cfg"]
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    tensors = {k: v.to(dtype).contiguous() for k, v in st["model"].items()}
    os.makedirs(args.out, exist_ok=True)
    config = {
        "format": "reprise-model",
        "version": 1,
        "kind": "speech-ctc",
        "weight_format": args.dtype,
        "layers": [
            {"type": "lstm", "name": "lstm", "input_size": cfg["n_in"], "hidden_size": cfg["hidden"], "num_layers": cfg["layers"]},
            {"type": "linear", "name": "out", "in_features": cfg["hidden"], "out_features": cfg["n_out"]},
            {"type": "log_softmax"},
        ],
        "speech": speech_section(st["mean"], st["std"]),
        "training": {"step": st["step"], "train_minutes": round(st["train_seconds"] / 60, 1),
                     "audio_hours_seen": round(st["audio_seconds"] / 3600, 1)},
    }
    save_file(tensors, os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    n = sum(v.numel() for v in tensors.values())
    print(f"exported {n / 1e6:.2f} M parameters ({args.dtype}) from step {st['step']} to {args.out}")


if __name__ == "__main__":
    main()
