#!/usr/bin/env python3
"""Train an LSTM-NADE music model on a piano-roll data set, with early stopping on valid NLL.

  train.py --set JSB_Chorales [--out DIR] [--resume] [--max-minutes M] [...]
  train.py --data FILE.json --name NAME [...]

The figure tracked is the benchmark's: NLL per frame (natural log), the mean over all frames of
all valid pieces of -log p(frame | previous frames). Every epoch writes DIR/ckpt.pt (everything
needed to resume) and, when valid improves, DIR/best.pt (the weights export.py reads).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import MusicModel  # noqa: E402
from musicdata import load_split, visible_size  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(HERE, "..", "data", "polyphonic")
SETS = ["JSB_Chorales", "Nottingham", "MuseData", "Piano_midi"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--set", choices=SETS, help="benchmark set under ../data/polyphonic/")
    src.add_argument("--data", help="any data file in the same JSON format")
    p.add_argument("--out", help="run folder (default runs/<set>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    p.add_argument("--max-minutes", type=float, default=30.0, help="training time budget, resumed runs included")
    p.add_argument("--max-epochs", type=int, default=500)
    p.add_argument("--patience", type=int, default=8, help="epochs without valid improvement before stopping")
    p.add_argument("--lstm-hidden", type=int, default=256)
    p.add_argument("--lstm-layers", type=int, default=2)
    p.add_argument("--nade-hidden", type=int, default=150)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--input-dropout", type=float, default=0.0, help="dropout on the previous-frame input")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--batch", type=int, default=16, help="sequences per batch")
    p.add_argument("--seq-len", type=int, default=200, help="pieces are cut into chunks this long each epoch")
    p.add_argument("--epoch-chunks", type=int, default=0,
                   help="train on this many random chunks per epoch (0: all), so large sets are validated more often")
    p.add_argument("--transpose", type=int, default=0, help="random transposition in [-K, K] semitones")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval-frames", type=int, default=4096, help="frames per NADE evaluation chunk")
    return p.parse_args(argv)


def transpose(x, k, step):
    """Shift a (T, N) array by k keys (each key `step` columns wide), dropping what leaves the range."""
    if k == 0:
        return x
    s = k * step
    y = np.zeros_like(x)
    if s > 0:
        y[:, s:] = x[:, :-s]
    else:
        y[:, :s] = x[:, -s:]
    return y


@torch.no_grad()
def evaluate(model, pieces, device, eval_frames=4096, max_batch_frames=40000):
    """(mean NLL per frame, frames) over whole pieces, each from a zero state."""
    model.eval()
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    total, frames = 0.0, 0
    i = 0
    while i < len(order):
        j = i + 1  # pieces sorted by length: the group's longest is its last
        while j < len(order) and (j - i + 1) * len(pieces[order[j]]) <= max_batch_frames:
            j += 1
        group = [pieces[k] for k in order[i:j]]
        longest = max(len(g) for g in group)
        n = group[0].shape[1]
        x = np.zeros((len(group), longest, n), dtype=np.float32)
        mask = np.zeros((len(group), longest), dtype=bool)
        for b, g in enumerate(group):
            x[b, : len(g)] = g
            mask[b, : len(g)] = True
        x = torch.from_numpy(x).to(device)
        inp = torch.zeros_like(x)
        inp[:, 1:] = x[:, :-1]
        s = model.cond(inp)
        m = torch.from_numpy(mask).to(device)
        s_f, v_f = s[m], x[m]
        for a in range(0, s_f.shape[0], eval_frames):
            total += model.nade.nll(s_f[a : a + eval_frames], v_f[a : a + eval_frames]).double().sum().item()
        frames += int(mask.sum())
        i = j
    return total / frames, frames


def make_chunks(pieces, seq_len, rng):
    """Cut every piece into chunks of at most seq_len frames at a random offset: (piece, start, end)."""
    chunks = []
    for pi, p in enumerate(pieces):
        T = len(p)
        off = int(rng.integers(0, seq_len)) if T > seq_len else 0
        bounds = [0] + list(range(off if off > 0 else seq_len, T, seq_len)) + [T]
        bounds = sorted(set(bounds))
        for a, b in zip(bounds[:-1], bounds[1:]):
            chunks.append((pi, a, b))
    rng.shuffle(chunks)
    return chunks


def batch_tensors(pieces, chunks, rng, transpose_k, step, device):
    n = pieces[0].shape[1]
    L = max(b - a for _, a, b in chunks)
    x = np.zeros((len(chunks), L, n), dtype=np.float32)
    inp = np.zeros_like(x)
    mask = np.zeros((len(chunks), L), dtype=np.float32)
    for i, (pi, a, b) in enumerate(chunks):
        p = pieces[pi][max(a - 1, 0) : b]
        if transpose_k:
            p = transpose(p, int(rng.integers(-transpose_k, transpose_k + 1)), step)
        tgt = p[1:] if a > 0 else p
        x[i, : b - a] = tgt
        if a > 0:
            inp[i, : b - a] = p[:-1]
        else:
            inp[i, 1 : b - a] = p[:-1]
        mask[i, : b - a] = 1.0
    f = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return f(inp), f(x), f(mask)


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    name = args.set or os.path.basename(args.data).removesuffix(".gz").removesuffix(".json")
    data_path = os.path.join(DATA_DIR, args.set + ".json") if args.set else args.data
    out = args.out or os.path.join(HERE, "..", "runs", name)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    command = "train.py " + " ".join(sys.argv[1:] if argv is None else argv)

    ckpt_path = os.path.join(out, "ckpt.pt")
    state = None
    if args.resume:
        if not os.path.exists(ckpt_path):
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = {**vars(args), **state["args"]}
        # The model, data and optimisation settings are the checkpoint's; the budgets are this call's.
        for k in ("max_minutes", "max_epochs", "patience", "threads", "device", "out"):
            saved[k] = getattr(args, k)
        args = argparse.Namespace(**saved)
        command = state["command"]
        print(f"resuming {ckpt_path} at epoch {state['epoch']}", flush=True)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train, enc, low, keys, spq = load_split(data_path, "train")
    valid = load_split(data_path, "valid")[0]
    n = visible_size(enc, keys)
    step = 1 if enc == "roll" else 2
    print(f"{name}: {len(train)} train pieces ({sum(map(len, train))} frames), "
          f"{len(valid)} valid pieces ({sum(map(len, valid))} frames), encoding {enc}, N={n}", flush=True)

    model = MusicModel(n, args.lstm_hidden, args.lstm_layers, args.nade_hidden, args.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    # Start each key's output bias at its frequency in the training frames.
    freq = np.concatenate(train).mean(0).clip(1e-3, 1 - 1e-3)
    with torch.no_grad():
        model.nade.b_proj.bias.copy_(torch.from_numpy(np.log(freq / (1 - freq))))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)

    epoch, best, best_epoch, bad, elapsed, history = 0, math.inf, 0, 0, 0.0, []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        epoch, best, best_epoch, bad = state["epoch"], state["best"], state["best_epoch"], state["bad"]
        elapsed, history = state["elapsed"], state["history"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])

    budget = args.max_minutes * 60.0
    t_start = time.time() - elapsed
    in_drop = args.input_dropout
    stop_reason = None
    while True:
        if epoch >= args.max_epochs:
            stop_reason = "max epochs"
            break
        if bad >= args.patience:
            stop_reason = f"no valid improvement for {bad} epochs"
            break
        if time.time() - t_start >= budget:
            stop_reason = "time budget"
            break
        model.train()
        chunks = make_chunks(train, args.seq_len, rng)
        if args.epoch_chunks:  # large sets: an "epoch" is a random subset of the chunks
            chunks = chunks[: args.epoch_chunks]
        # Batch chunks of similar length (less padding): sort within windows of 16 batches, then
        # shuffle the order of the batches.
        w = args.batch * 16
        chunks = [c for a in range(0, len(chunks), w) for c in sorted(chunks[a : a + w], key=lambda c: c[2] - c[1])]
        batches = [chunks[a : a + args.batch] for a in range(0, len(chunks), args.batch)]
        rng.shuffle(batches)
        tot, nfr = 0.0, 0.0
        cut = False
        for bchunks in batches:
            inp, tgt, mask = batch_tensors(train, bchunks, rng, args.transpose, step, device)
            if in_drop > 0:
                inp = inp * (torch.rand_like(inp) >= in_drop).float()
            nll = model.frame_nll(inp, tgt)
            loss = (nll * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            tot += (nll.detach() * mask).sum().item()
            nfr += mask.sum().item()
            if time.time() - t_start >= budget:
                cut = True
                break
        epoch += 1
        v, vf = evaluate(model, valid, device, args.eval_frames)
        sched.step(v)
        improved = v < best
        if improved:
            best, best_epoch, bad = v, epoch, 0
            best_obj = {
                "model": {k: t.detach().cpu().clone() for k, t in model.state_dict().items()},
                "cfg": model.cfg, "encoding": enc, "low_note": low, "keys": keys, "name": name,
                "steps_per_quarter": spq,
                "data": args.set or args.data,
                "valid_nll": v, "valid_frames": vf, "epoch": epoch, "args": vars(args),
                "command": command, "params": n_params, "torch": torch.__version__,
                "hardware": (torch.cuda.get_device_name(device) if device.type == "cuda"
                             else f"CPU, {args.threads} thread(s)"),
            }
        else:
            bad += 1
        elapsed = time.time() - t_start
        history.append({"epoch": epoch, "train_nll": tot / max(nfr, 1), "valid_nll": v,
                        "lr": opt.param_groups[0]["lr"], "minutes": elapsed / 60, "partial": cut})
        print(f"epoch {epoch:3d} train_nll={tot / max(nfr, 1):.4f} valid_nll={v:.4f} "
              f"lr={opt.param_groups[0]['lr']:.2e} min={elapsed / 60:.1f}{' *' if improved else ''}", flush=True)
        if improved:
            best_obj["train_minutes"] = elapsed / 60
            best_obj["history"] = history
            atomic_save(best_obj, os.path.join(out, "best.pt"))
        atomic_save({
            "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "epoch": epoch, "best": best, "best_epoch": best_epoch, "bad": bad, "elapsed": elapsed,
            "history": history, "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "args": vars(args), "command": command,
        }, ckpt_path)

    # The best checkpoint records the whole run's history and time.
    bp = os.path.join(out, "best.pt")
    if os.path.exists(bp):
        b = torch.load(bp, map_location="cpu", weights_only=False)
        b["history"], b["total_minutes"], b["stop_reason"] = history, (time.time() - t_start) / 60, stop_reason
        atomic_save(b, bp)
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump({"name": name, "command": command, "best_valid_nll": best, "best_epoch": best_epoch,
                   "stop_reason": stop_reason, "history": history}, f, indent=1)
    print(f"stopped: {stop_reason}; best valid_nll={best:.4f} at epoch {best_epoch}", flush=True)


if __name__ == "__main__":
    main()
