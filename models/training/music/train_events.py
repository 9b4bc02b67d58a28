#!/usr/bin/env python3
"""Train the event-based continuation model (`music-events`, see events.py) on the note lists of
prepare_events.py.

  train_events.py [--data ../data/events/events.json.gz] [--out runs/events] [--resume]
                  [--max-minutes M] [--hidden 512 --layers 2] [...]

Each training sequence starts at a random bar line of a piece drawn with the source weights
(`--weights`), is transposed at random within [-K, K] semitones (keeping every note on the
keyboard), and runs for up to `--seq-len` tokens; notes that began before its first bar line are
left out, as a seed cut at that bar would be. The loss is the cross-entropy of each next token.
Every `--eval-every` updates the valid NLL per token (natural log, each valid piece from its
start) is measured; DIR/ckpt.pt holds everything a resumed run needs and DIR/best.pt the best
weights by valid NLL.
"""
import argparse
import gzip
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import events as ev  # noqa: E402
from train import atomic_save  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class EventModel(torch.nn.Module):
    def __init__(self, hidden, layers, dropout, inputs=ev.INPUT):
        super().__init__()
        self.lstm = torch.nn.LSTM(inputs, hidden, layers, batch_first=True,
                                  dropout=dropout if layers > 1 else 0.0)
        self.drop = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(hidden, ev.VOCAB)

    def forward(self, x, state=None):
        h, state = self.lstm(x, state)
        return self.out(self.drop(h)), state


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(HERE, "..", "data", "events", "events.json.gz"))
    p.add_argument("--out", default="runs/events")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", help="start from the weights of this checkpoint (input blocks it lacks start at zero)")
    p.add_argument("--blocks", default=",".join(ev.BLOCKS), help="input blocks, in order (see events.py)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="time budget, resumed runs included")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-final", type=float, default=1e-4, help="cosine decay to this over --max-minutes")
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=384)
    p.add_argument("--transpose", type=int, default=6)
    p.add_argument("--weights", default="jsb=3,nottingham=3,nottingham-top=2,essenFolksong=2,"
                                        "oneills1850=1,ryansMammoth=1,palestrina=1",
                   help="relative chance of drawing a sequence from each source")
    p.add_argument("--eval-every", type=int, default=400)
    p.add_argument("--valid-pieces", type=int, default=240, help="valid pieces scored (every k-th, spread over the split)")
    p.add_argument("--valid-tokens", type=int, default=1024, help="tokens scored per valid piece, from its start")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def load(path):
    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as f:
        return json.load(f)


def bar_lines(piece):
    """Steps of the piece's bar lines before its last note (the first is its phase)."""
    last = max(s for _, s, _ in piece["notes"])
    return list(range(piece["phase"], last, piece["bar"])) or [0]


def sequence(piece, start, shift, seq_len):
    """Tokens from bar line `start` transposed by `shift`, the bar phase relative to it, the bar."""
    notes = [[m + shift, s - start, d] for m, s, d in piece["notes"] if s >= start]
    toks = [ev.START] + ev.tokens_of(notes)
    return toks[:seq_len + 1], (piece["phase"] - start) % piece["bar"], piece["bar"]


def draw(pieces_by_source, weights, rng, transpose, seq_len):
    sources = [s for s in weights if pieces_by_source.get(s)]
    src = rng.choices(sources, [weights[s] for s in sources])[0]
    piece = rng.choice(pieces_by_source[src])
    start = rng.choice([0] + bar_lines(piece))
    lo = min(m for m, _, _ in piece["notes"])
    hi = max(m for m, _, _ in piece["notes"])
    shifts = [k for k in range(-transpose, transpose + 1) if ev.LOW <= lo + k and hi + k < ev.LOW + ev.KEYS]
    return sequence(piece, start, rng.choice(shifts or [0]), seq_len)


def warm_start(model, path, blocks):
    """Copies a checkpoint's weights into `model`; its first-layer input columns go to the blocks
    they belonged to, and blocks it did not have start at zero."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    old_blocks = ck["cfg"].get("blocks", ["token", "sounding", "metric"])
    state = ck["model"]
    w_old = state["lstm.weight_ih_l0"]
    w_new = torch.zeros(w_old.shape[0], ev.input_size(blocks))
    starts = {}
    at = 0
    for b in blocks:
        starts[b] = at
        at += ev.BLOCK_SIZES[b]
    at = 0
    for b in old_blocks:
        n = ev.BLOCK_SIZES[b]
        if b in starts:
            w_new[:, starts[b]:starts[b] + n] = w_old[:, at:at + n]
        at += n
    state = dict(state, **{"lstm.weight_ih_l0": w_new})
    model.load_state_dict(state)
    print(f"started from {path} (update {ck.get('step')}); input blocks {old_blocks} -> {blocks}", flush=True)


@torch.no_grad()
def evaluate(model, pieces, max_tokens=4096, blocks=ev.BLOCKS):
    """Valid NLL per token: each piece from its start, its first `max_tokens` tokens."""
    model.eval()
    total, count = 0.0, 0
    for piece in pieces:
        toks = ([ev.START] + ev.tokens_of(piece["notes"]))[:max_tokens + 1]
        if len(toks) < 2:
            continue
        x = torch.from_numpy(ev.inputs_of(toks[:-1], piece["bar"], piece["phase"], blocks))[None]
        logits, _ = model(x)
        nll = torch.nn.functional.cross_entropy(logits[0], torch.tensor(toks[1:]), reduction="sum")
        total += float(nll)
        count += len(toks) - 1
    model.train()
    return total / max(count, 1)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    os.makedirs(args.out, exist_ok=True)
    doc = load(args.data)
    weights = {k: float(v) for k, v in (kv.split("=") for kv in args.weights.split(","))}
    by_source = {}
    for piece in doc["train"]:
        by_source.setdefault(piece["source"], []).append(piece)
    valid = doc["valid"][:: max(1, len(doc["valid"]) // args.valid_pieces)]
    print("train pieces per source: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(by_source.items())), flush=True)

    torch.manual_seed(args.seed)
    blocks = args.blocks.split(",")
    model = EventModel(args.hidden, args.layers, args.dropout, ev.input_size(blocks))
    if args.init and not args.resume:
        warm_start(model, args.init, blocks)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = random.Random(args.seed)
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    step, spent, best, history = 0, 0.0, math.inf, []
    if args.resume:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        step, spent, best, history = state["step"], state["spent"], state["best"], state["history"]
        if state.get("valid_set") != [args.valid_pieces, args.valid_tokens]:
            best = math.inf  # figures on another valid subset do not compare
        print(f"resuming at update {step}, {spent / 60:.1f} min spent, best valid {best:.4f}", flush=True)
    cfg = {"hidden": args.hidden, "layers": args.layers, "dropout": args.dropout, "blocks": blocks,
           "steps_per_quarter": doc["steps_per_quarter"], "args": vars(args)}
    budget = args.max_minutes * 60
    t_last, tokens, loss_sum, loss_n = time.time(), 0, 0.0, 0
    while spent < budget:
        frac = min(spent / budget, 1.0)
        lr = args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        seqs = [draw(by_source, weights, rng, args.transpose, args.seq_len) for _ in range(args.batch)]
        x, y = make_batch(seqs, blocks)
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, ev.VOCAB), y.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        n = int((y >= 0).sum())
        tokens += n
        loss_sum += float(loss) * n
        loss_n += n
        now = time.time()
        spent += now - t_last
        t_last = now
        if step % args.eval_every == 0 or spent >= budget:
            t_eval = time.time()
            v = evaluate(model, valid, args.valid_tokens, blocks)
            improved = v < best
            if improved:
                best = v
                atomic_save({"model": model.state_dict(), "cfg": cfg, "step": step, "valid": v}, os.path.join(args.out, "best.pt"))
            history.append({"step": step, "minutes": round(spent / 60, 2), "train": loss_sum / max(loss_n, 1), "valid": v})
            print(f"update {step} {spent / 60:.1f} min lr {lr:.2e} train {loss_sum / max(loss_n, 1):.4f} "
                  f"valid {v:.4f}{' *' if improved else ''} ({tokens / max(spent, 1e-9):.0f} tok/s overall)", flush=True)
            loss_sum, loss_n = 0.0, 0
            atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.getstate(),
                         "torch_rng": torch.get_rng_state(), "step": step, "spent": spent, "best": best,
                         "history": history, "cfg": cfg, "valid_set": [args.valid_pieces, args.valid_tokens]}, ckpt_path)
            t_last += time.time() - t_eval  # evaluation time is not training time
    print(f"done: {step} updates, best valid {best:.4f}", flush=True)


def make_batch(seqs, blocks):
    t = max(len(toks) for toks, _, _ in seqs) - 1
    x = np.zeros((len(seqs), t, ev.input_size(blocks)), dtype=np.float32)
    y = np.full((len(seqs), t), -100, dtype=np.int64)
    for b, (toks, phase, bar) in enumerate(seqs):
        x[b, :len(toks) - 1] = ev.inputs_of(toks[:-1], bar, phase, blocks)
        y[b, :len(toks) - 1] = toks[1:]
    return torch.from_numpy(x), torch.from_numpy(y)


if __name__ == "__main__":
    main()
