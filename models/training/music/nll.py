#!/usr/bin/env python3
"""Reference NLL per frame of an exported music-nade model (config.json + model.safetensors).

  nll.py --model models/music-jsb --data FILE.json --split valid

Independent of the training code: the LSTM and the NADE are written out from the exported tensors
with plain torch ops in float64, following docs/model-format.md. The NADE runs in its sequential
form (one key after another), the training code in a vectorised one, so the two check each other.
The last line printed is `nll_per_frame=<x> frames=<n>`: the mean over all frames of all pieces of
the split of -log p(frame | previous frames), natural log, each piece starting from a zero state.
"""
import argparse
import gzip
import json
import os

import torch
from safetensors.torch import load_file

DT = torch.float64


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("format") != "reprise-model" or cfg.get("kind") != "music-nade":
        raise SystemExit(f"{model_dir}: not a music-nade model")
    tensors = {k: v.to(DT) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    return cfg, tensors


def encode(piece, music):
    """A piece (list of frames) as a (T, N) tensor; see the `music` section of the config."""
    low, keys, enc = music["low_note"], music["keys"], music["encoding"]
    n = keys if enc == "roll" else 2 * keys
    x = torch.zeros(len(piece), n, dtype=DT)
    for t, frame in enumerate(piece):
        for item in frame:
            if enc == "roll":
                k = int(item) - low
                if 0 <= k < keys:
                    x[t, k] = 1
            else:
                k = int(item[0]) - low
                if 0 <= k < keys:
                    x[t, 2 * k] = 1
                    x[t, 2 * k + 1] = 1 if int(item[1]) else 0
    return x


def lstm_layer(x, w_ih, w_hh, b_ih, b_hh):
    """x: (B, T, in) -> (B, T, H). Gates i, f, g, o as in torch.nn.LSTM."""
    B, T, _ = x.shape
    H = w_hh.shape[1]
    pre = x @ w_ih.T + b_ih + b_hh
    h = torch.zeros(B, H, dtype=DT)
    c = torch.zeros(B, H, dtype=DT)
    out = torch.empty(B, T, H, dtype=DT)
    for t in range(T):
        g = pre[:, t] + h @ w_hh.T
        i, f, gg, o = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c)
        out[:, t] = h
    return out


def conditioning(cfg, T_, inputs):
    """Run the config's LSTM layer(s) on (B, T, N) inputs; returns the top layer's outputs."""
    s = inputs
    for layer in cfg["layers"]:
        if layer["type"] != "lstm":
            continue
        nm = layer["name"]
        for k in range(layer["num_layers"]):
            s = lstm_layer(s, T_[f"{nm}.weight_ih_l{k}"], T_[f"{nm}.weight_hh_l{k}"],
                           T_[f"{nm}.bias_ih_l{k}"], T_[f"{nm}.bias_hh_l{k}"])
    return s


def nade_nll(layer, T_, s, v, return_probs=False):
    """-log p(v | s) per frame for s (F, C), v (F, N), sequential over the N variables."""
    nm = layer["name"]
    W, V = T_[f"{nm}.W"], T_[f"{nm}.V"]
    b = s @ T_[f"{nm}.b_proj.weight"].T + T_[f"{nm}.b_proj.bias"]
    a = s @ T_[f"{nm}.c_proj.weight"].T + T_[f"{nm}.c_proj.bias"]
    nll = torch.zeros(s.shape[0], dtype=DT)
    probs = torch.empty_like(v) if return_probs else None
    for i in range(v.shape[1]):
        h = torch.sigmoid(a)
        logit = b[:, i] + h @ V[i]
        # -log sigmoid(z) = softplus(-z); -log (1 - sigmoid(z)) = softplus(z)
        nll += torch.where(v[:, i] > 0.5, torch.nn.functional.softplus(-logit), torch.nn.functional.softplus(logit))
        if return_probs:
            probs[:, i] = torch.sigmoid(logit)
        a = a + v[:, i : i + 1] * W[:, i]
    return (nll, probs) if return_probs else nll


def piece_nll(cfg, T_, frames, return_probs=False):
    """Per-frame NLL of one encoded piece (T, N), from a zero state."""
    inputs = torch.zeros_like(frames)
    inputs[1:] = frames[:-1]
    s = conditioning(cfg, T_, inputs.unsqueeze(0))[0]
    nade = next(l for l in cfg["layers"] if l["type"] == "nade")
    return nade_nll(nade, T_, s, frames, return_probs)


def split_nll(cfg, T_, pieces, batch_frames=20000):
    """(mean NLL per frame, frames) over a list of encoded pieces."""
    nade = next(l for l in cfg["layers"] if l["type"] == "nade")
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    total, frames, i = 0.0, 0, 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * len(pieces[order[j]]) <= batch_frames:
            j += 1
        group = [pieces[k] for k in order[i:j]]
        L = max(len(g) for g in group)
        x = torch.zeros(len(group), L, group[0].shape[1], dtype=DT)
        mask = torch.zeros(len(group), L, dtype=torch.bool)
        for b, g in enumerate(group):
            x[b, : len(g)] = g
            mask[b, : len(g)] = True
        inputs = torch.zeros_like(x)
        inputs[:, 1:] = x[:, :-1]
        s = conditioning(cfg, T_, inputs)
        total += nade_nll(nade, T_, s[mask], x[mask]).sum().item()
        frames += int(mask.sum())
        i = j
    return total / frames, frames


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder holding config.json and model.safetensors")
    p.add_argument("--data", required=True, help="JSON data file: {split: [piece, ...]}")
    p.add_argument("--split", default="valid")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg, T_ = load_model(args.model)
    with (gzip.open(args.data, "rt") if args.data.endswith(".gz") else open(args.data)) as f:
        doc = json.load(f)
    if args.split not in doc:
        raise SystemExit(f"{args.data}: no split named {args.split!r}")
    want = doc.get("encoding", "roll")
    if want != cfg["music"]["encoding"]:
        raise SystemExit(f"{args.data} is encoded {want!r}, the model {cfg['music']['encoding']!r}")
    pieces = [encode(pc, cfg["music"]) for pc in doc[args.split]]
    pieces = [pc for pc in pieces if len(pc) > 0]
    with torch.no_grad():
        v, n = split_nll(cfg, T_, pieces)
    print(f"pieces={len(pieces)}")
    print(f"nll_per_frame={v:.6f} frames={n}")


if __name__ == "__main__":
    main()
