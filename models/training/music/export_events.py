#!/usr/bin/env python3
"""Export a train_events.py checkpoint to a Reprise model folder (kind `music-events`).

  export_events.py CHECKPOINT OUTDIR [--judge FILE] [--note TEXT]

Writes OUTDIR/config.json, OUTDIR/model.safetensors (BF16 storage; the engine widens it at load),
OUTDIR/golden.json and the model card OUTDIR/README.md. golden.json holds a token stream (the
opening of the first valid piece of the training data file) and, for every position, the
log-probabilities of the next token that an independent float64 implementation of the exported
network gives (plain matrix products, not torch.nn.LSTM): the Rust engine's parity test reads it.
The valid NLL per token is recomputed the same way over the whole valid split and must match the
training figure. `--judge` names a file holding the output of `cargo bench --bench music_judge`
for the model card.
"""
import argparse
import datetime
import gzip
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file, load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import events as ev  # noqa: E402


def blocks_of(cfg):
    return cfg.get("blocks", ["token", "sounding", "metric"])


def config_for(cfg):
    return {
        "format": "reprise-model",
        "version": 1,
        "kind": "music-events",
        "weight_format": "f32",
        "layers": [
            {"type": "lstm", "name": "lstm", "input_size": ev.input_size(blocks_of(cfg)), "hidden_size": cfg["hidden"],
             "num_layers": cfg["layers"]},
            {"type": "linear", "name": "out", "in_features": cfg["hidden"], "out_features": ev.VOCAB},
        ],
        "music": {
            "encoding": "events",
            "low_note": ev.LOW,
            "keys": ev.KEYS,
            "steps_per_quarter": 4,
            "shifts": ev.SHIFTS,
            "durations": ev.DURATIONS,
            "inputs": blocks_of(cfg),
        },
    }


def reference_logprobs(tensors, layers, tokens, bar, phase, blocks):
    """log p(next token) at every position, float64, from the exported tensors."""
    x = ev.inputs_of(tokens, bar, phase, blocks).astype(np.float64)
    w = {k: v.to(torch.float64).numpy() for k, v in tensors.items()}
    h_in = x
    for k in range(layers):
        wih, whh = w[f"lstm.weight_ih_l{k}"], w[f"lstm.weight_hh_l{k}"]
        b = w[f"lstm.bias_ih_l{k}"] + w[f"lstm.bias_hh_l{k}"]
        hsz = whh.shape[1]
        h, c = np.zeros(hsz), np.zeros(hsz)
        out = np.zeros((len(h_in), hsz))
        for t in range(len(h_in)):
            g = wih @ h_in[t] + whh @ h + b
            i, f, gg, o = (g[j * hsz:(j + 1) * hsz] for j in range(4))
            sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
            c = sig(f) * c + sig(i) * np.tanh(gg)
            h = sig(o) * np.tanh(c)
            out[t] = h
        h_in = out
    logits = h_in @ w["out.weight"].T + w["out.bias"]
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("outdir")
    p.add_argument("--judge", help="output of the music_judge bench, for the model card")
    p.add_argument("--note", default="", help="extra text for the model card")
    p.add_argument("--golden-tokens", type=int, default=48)
    p.add_argument("--skip-check", action="store_true", help="do not recompute the valid NLL (quick trial exports)")
    args = p.parse_args()

    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    cfg = ck["cfg"]
    targs = cfg["args"]
    os.makedirs(args.outdir, exist_ok=True)
    config = config_for(cfg)
    tensors = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in ck["model"].items()}
    with open(os.path.join(args.outdir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    save_file(tensors, os.path.join(args.outdir, "model.safetensors"))
    tensors = load_file(os.path.join(args.outdir, "model.safetensors"))
    n_params = sum(t.numel() for t in tensors.values())

    data_path = targs["data"]
    with gzip.open(data_path, "rt") if data_path.endswith(".gz") else open(data_path) as f:
        doc = json.load(f)
    # The valid pieces and tokens training scored.
    valid = doc["valid"][:: max(1, len(doc["valid"]) // targs.get("valid_pieces", len(doc["valid"])))]
    max_tokens = targs.get("valid_tokens", 4096)
    total, count = 0.0, 0
    for piece in [] if args.skip_check else valid:
        toks = ([ev.START] + ev.tokens_of(piece["notes"]))[:max_tokens + 1]
        if len(toks) < 2:
            continue
        lp = reference_logprobs(tensors, cfg["layers"], toks[:-1], piece["bar"], piece["phase"], blocks_of(cfg))
        total -= float(lp[np.arange(len(toks) - 1), toks[1:]].sum())
        count += len(toks) - 1
    ref_nll = total / count if count else float("nan")
    print(f"valid NLL per token: training {ck['valid']:.5f}, reference from the export {ref_nll:.5f} "
          f"(BF16 weights), {count} tokens", flush=True)
    if not args.skip_check and abs(ref_nll - ck["valid"]) > 0.01:
        raise SystemExit("the exported model does not reproduce the training figure")

    first = valid[0]
    toks = ([ev.START] + ev.tokens_of(first["notes"]))[:args.golden_tokens]
    lp = reference_logprobs(tensors, cfg["layers"], toks, first["bar"], first["phase"], blocks_of(cfg))
    golden = {
        "source": f"the first {len(toks)} tokens of valid piece {first['id']}",
        "bar": first["bar"],
        "phase": first["phase"],
        "tokens": toks,
        "log_probs": [[round(float(v), 6) for v in row] for row in lp],
        "tolerance": 2e-3,
    }
    with open(os.path.join(args.outdir, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")

    per = {}
    for split in ("train", "valid"):
        for piece in doc[split]:
            c = per.setdefault(piece["source"], [0, 0, 0])
            c[0 if split == "train" else 1] += 1
            c[2] += len(piece["notes"])
    hist = ck.get("history") or []
    judge = open(args.judge).read().strip() if args.judge else "(not measured)"
    name = os.path.basename(os.path.normpath(args.outdir))
    lines = [
        f"# {name}",
        "",
        "Event-based continuation model for Reprise (`kind: music-events`, see docs/model-format.md): "
        "an LSTM reads the music as tokens (`shift` moves time on by 1–16 sixteenths, `note` starts a note, "
        "`dur` gives its length in sixteenths) together with the keys sounding and the metric position, "
        "and a linear layer gives the next token's distribution. It is the default model of "
        "`reprise continue`, `reprise jam` and `reprise serve`.",
        "",
        "## Data",
        "",
        "`music/prepare_events.py` → `models/training/data/events/events.json.gz` (notes on a sixteenth-note grid "
        "with each piece's bar length and first bar line):",
        "",
        "| source | train pieces | valid pieces | notes |",
        "|---|---|---|---|",
    ] + [f"| {src} | {tr} | {va} | {n:,} |" for src, (tr, va, n) in sorted(per.items())] + [
        "",
        "`jsb` and `nottingham` are the train splits of the JSB Chorales and Nottingham benchmark sets "
        "(their valid splits give the judge's seeds and are not trained on); `nottingham-top` is the "
        "highest note of each Nottingham frame alone. The rest is music21's bundled corpus (public domain); "
        "music21's Bach chorales are left out because they are the JSB valid and test pieces.",
        "",
        "## Architecture",
        "",
        f"- vocabulary {ev.VOCAB} tokens (start, {ev.SHIFTS} shifts, {ev.KEYS} notes from MIDI {ev.LOW}, "
        f"{len(ev.DURATIONS)} lengths: {ev.DURATIONS} sixteenths)",
        f"- input {ev.input_size(blocks_of(cfg))}: " + ", ".join(f"{b} ({ev.BLOCK_SIZES[b]})" for b in blocks_of(cfg)),
        f"- LSTM {cfg['layers']} × {cfg['hidden']}, linear {cfg['hidden']} → {ev.VOCAB}",
        f"- parameters: {n_params:,} (stored as BF16, "
        f"{os.path.getsize(os.path.join(args.outdir, 'model.safetensors')) / 1e6:.1f} MB; runs in f32 by default)",
        "",
        "## Validation",
        "",
        f"Valid NLL per token (natural log, each valid piece from its start, music21 valid pieces): "
        f"**{ck['valid']:.4f}** at update {ck['step']}; recomputed from the exported BF16 weights by an "
        f"independent float64 implementation: {ref_nll:.4f}.",
        "",
        "Musical checks (`cargo bench --bench music_judge`, see the README): 8-bar continuations of "
        "4-bar seeds cut from the valid splits, default settings, next to the pieces' real continuations. "
        "These are validation figures: the valid splits were used to choose settings.",
        "",
        "```",
        judge,
        "```",
        "",
        "## Training",
        "",
        "- command (in `models/training/`): `.venv/bin/python music/train_events.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in targs.items()
                   if k not in ("resume", "data", "out") and v is not None) + "`",
        f"- Adam, cosine learning-rate decay from {targs['lr']} to {targs['lr_final']}, batches of "
        f"{targs['batch']} sequences of up to {targs['seq_len']} tokens, each from a random bar line of a piece "
        f"drawn with the source weights `{targs['weights']}`, random transposition ±{targs['transpose']}",
        f"- {ck['step']} updates, {hist[-1]['minutes'] if hist else 0:.0f} min on CPU ({targs['threads']} thread(s), "
        f"PyTorch {torch.__version__}), valid NLL by update: "
        + ", ".join(f"{h['step']}: {h['valid']:.3f}" for h in hist[:: max(1, len(hist) // 10)]),
        f"- exported {datetime.date.today().isoformat()} with `music/export_events.py`",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    with open(os.path.join(args.outdir, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.outdir}: {n_params:,} parameters")


if __name__ == "__main__":
    main()
