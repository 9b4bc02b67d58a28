"""Trains the streaming LSTM-CTC speech model.

Front end: common.log_mel (80 log-mel bands, 10 ms hop), per-band normalisation with the training
data's mean/std (fixed at the first run and stored in the checkpoint), 3-frame stacking (30 ms steps).
Model: unidirectional LSTM (layers x hidden) -> linear -> log_softmax over the 29-symbol vocabulary
(blank 0, space, apostrophe, a-z). SpecAugment (frequency and time masks) on the training features.
Checkpoints every few minutes to ckpt/last.pt (and ckpt/best.pt by development-set WER), so a killed run
resumes with --resume. Every eval interval it reports greedy WER/CER on the held-out synthetic voices
(data/manifests/test.jsonl) and on the real-speech development set (Asterisk dev ids).

Usage: train.py [--resume] [--minutes 60] [--threads 2] [--layers 4 --hidden 384]
"""
import argparse
import glob
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DATA, FRONT_END, VOCAB, asterisk_dev_set, decode_greedy, encode, error_rates,  # noqa: E402
                    load_audio, log_mel)

CKPT = os.path.join(DATA, "ckpt")
FEATS = os.path.join(DATA, "feats")


class SpeechModel(nn.Module):
    def __init__(self, n_in, hidden, layers, n_out, dropout=0.1):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x, lengths=None):
        if lengths is not None:
            x = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(x)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True)
        else:
            y, _ = self.lstm(x)
        return F.log_softmax(self.out(y), dim=-1)


# ------------------------------------------------------------------ features
def manifest_feats(man_path):
    """Features (float16, frames x 80) and texts for a manifest, cached in data/feats/<name>.npz
    and extended when the manifest has grown."""
    os.makedirs(FEATS, exist_ok=True)
    name = os.path.basename(man_path).replace(".jsonl", "")
    cache = os.path.join(FEATS, name + ".npz")
    rows = [json.loads(line) for line in open(man_path)]
    feats, texts = [], []
    if os.path.exists(cache):
        z = np.load(cache, allow_pickle=False)
        offs = z["offsets"]
        allf = z["feats"]
        feats = [allf[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
        texts = list(z["texts"])
    if len(feats) < len(rows):
        for r in rows[len(feats):]:
            feats.append(log_mel(load_audio(os.path.join(DATA, r["path"]))).astype(np.float16))
            texts.append(r["text"])
        offs = np.cumsum([0] + [len(f) for f in feats])
        np.savez(cache + ".tmp.npz", feats=np.concatenate(feats), offsets=offs, texts=np.array(texts))
        os.replace(cache + ".tmp.npz", cache)
    return feats, texts


def dev_feats():
    cache = os.path.join(FEATS, "asterisk-dev.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        offs = z["offsets"]
        return [z["feats"][offs[i]:offs[i + 1]] for i in range(len(offs) - 1)], list(z["texts"])
    os.makedirs(FEATS, exist_ok=True)
    feats, texts = [], []
    for _, path, text in asterisk_dev_set():
        feats.append(log_mel(load_audio(path)).astype(np.float16))
        texts.append(text)
    offs = np.cumsum([0] + [len(f) for f in feats])
    np.savez(cache, feats=np.concatenate(feats), offsets=offs, texts=np.array(texts))
    return feats, texts


def to_input(f, mean, std, stack):
    x = (f.astype(np.float32) - mean) / std
    n = x.shape[0] // stack
    return x[: n * stack].reshape(n, stack * x.shape[1])


def spec_augment(x, rng):
    """x: frames x bands (normalised). Two frequency masks (<= 12 bands) and time masks
    (<= 30 frames, about one per second)."""
    x = x.copy()
    T, Fb = x.shape
    for _ in range(2):
        w = rng.randint(0, 12)
        f0 = rng.randint(0, Fb - w)
        x[:, f0:f0 + w] = 0.0
    for _ in range(min(max(1, T // 100), 10)):
        w = rng.randint(0, min(30, max(1, T // 5)))
        t0 = rng.randint(0, max(0, T - w))
        x[t0:t0 + w] = 0.0
    return x


def evaluate(model, feats, texts, mean, std, stack, device, bs=32):
    model.eval()
    hyps = []
    with torch.no_grad():
        for i in range(0, len(feats), bs):
            xs = [torch.from_numpy(to_input(f, mean, std, stack)) for f in feats[i:i + bs]]
            lens = torch.tensor([max(1, len(x)) for x in xs])
            xs = [x if len(x) else torch.zeros(1, xs[0].shape[1] if len(xs[0]) else 240) for x in xs]
            xp = nn.utils.rnn.pad_sequence(xs, batch_first=True).to(device)
            lp = model(xp, lens)
            best = lp.argmax(-1).cpu().numpy()
            for b, n in enumerate(lens.tolist()):
                hyps.append(decode_greedy(best[b, :n].tolist()))
    model.train()
    wer, cer = error_rates(texts, hyps)
    return wer, cer, hyps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of this run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-seconds", type=float, default=120.0, help="audio seconds per batch")
    ap.add_argument("--eval-minutes", type=float, default=6.0)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ckpt-dir", default=CKPT)
    ap.add_argument("--manifests", default=os.path.join(DATA, "manifests", "train-*.jsonl"))
    ap.add_argument("--no-specaug", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.ckpt_dir, exist_ok=True)
    last = os.path.join(args.ckpt_dir, "last.pt")
    stack = FRONT_END["stack"]
    state = None
    if args.resume and os.path.exists(last):
        state = torch.load(last, map_location="cpu")
        cfg = state["cfg"]
        rng.setstate(state["rng"]) if "rng" in state else None
        print(f"resumed step {state['step']}, trained {state['train_seconds'] / 60:.1f} min", flush=True)
    else:
        cfg = {"layers": args.layers, "hidden": args.hidden, "n_in": stack * FRONT_END["n_mels"], "n_out": len(VOCAB)}

    def load_train():
        fs, ts = [], []
        for m in sorted(glob.glob(args.manifests)):
            f, t = manifest_feats(m)
            fs += f
            ts += t
        return fs, ts

    t_load = time.time()
    train_f, train_t = load_train()
    test_f, test_t = manifest_feats(os.path.join(DATA, "manifests", "test.jsonl"))
    dev_f, dev_t = dev_feats()
    print(f"features: {len(train_f)} train utts ({sum(len(f) for f in train_f) / 360000:.2f} h), "
          f"{len(test_f)} test, {len(dev_f)} dev; {time.time() - t_load:.0f} s", flush=True)
    if state is not None:
        mean, std = state["mean"], state["std"]
    else:
        allf = np.concatenate(train_f[:20000]).astype(np.float32)
        mean, std = allf.mean(0), allf.std(0) + 1e-5
    model = SpeechModel(cfg["n_in"], cfg["hidden"], cfg["layers"], cfg["n_out"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, train_seconds, audio_seconds = 0, 0.0, 0.0
    best = state["best"] if state else {"dev_wer": 9.9}
    history = state["history"] if state else []
    if state is not None:
        model.load_state_dict(state["model"])
        try:
            opt.load_state_dict(state["opt"])
        except (ValueError, KeyError):
            pass
        for g in opt.param_groups:
            g["lr"] = args.lr
        step, train_seconds, audio_seconds = state["step"], state["train_seconds"], state["audio_seconds"]
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)

    def save(path, extra=None):
        d = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "opt": opt.state_dict(),
             "cfg": cfg, "mean": mean, "std": std, "step": step, "train_seconds": train_seconds,
             "audio_seconds": audio_seconds, "best": best, "history": history, "rng": rng.getstate()}
        if extra:
            d.update(extra)
        torch.save(d, path + ".tmp")
        os.replace(path + ".tmp", path)

    def batches():
        order = sorted(range(len(train_f)), key=lambda i: len(train_f[i]) + rng.random() * 50)
        bs, cur, cur_frames = [], [], 0
        for i in order:
            n = len(train_f[i])
            if cur and (len(cur) + 1) * max(n, cur_frames) > args.batch_seconds * 100:
                bs.append(cur)
                cur, cur_frames = [], 0
            cur.append(i)
            cur_frames = max(cur_frames, n)
        if cur:
            bs.append(cur)
        rng.shuffle(bs)
        return bs

    t0 = time.time()
    last_ckpt = last_eval = time.time()
    run_train_start = train_seconds
    done = False
    epoch = 0
    while not done:
        epoch += 1
        for b in batches():
            if time.time() - t0 > args.minutes * 60:
                done = True
                break
            xs, ys, xl, yl = [], [], [], []
            for i in b:
                f = (train_f[i].astype(np.float32) - mean) / std
                if not args.no_specaug:
                    f = spec_augment(f, rng)
                n = f.shape[0] // stack
                x = f[: n * stack].reshape(n, -1)
                y = encode(train_t[i])
                if n < 2 or not y:
                    continue
                xs.append(torch.from_numpy(x))
                xl.append(n)
                ys += y
                yl.append(len(y))
            if not xs:
                continue
            tb = time.time()
            warm = min(1.0, (step + 1) / 300)
            for g in opt.param_groups:
                g["lr"] = args.lr * warm
            xp = nn.utils.rnn.pad_sequence(xs, batch_first=True).to(device)
            lp = model(xp, torch.tensor(xl))
            loss = F.ctc_loss(lp.transpose(0, 1), torch.tensor(ys, device=device), torch.tensor(xl), torch.tensor(yl),
                              blank=0, reduction="mean", zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            audio_seconds += sum(xl) * stack / 100.0
            train_seconds = run_train_start + (time.time() - t0)
            if step % 50 == 0:
                print(f"step {step} epoch {epoch} loss {loss.item():.3f} audio {audio_seconds / 3600:.1f} h "
                      f"train {train_seconds / 60:.1f} min ({sum(xl) * stack / 100.0 / (time.time() - tb):.0f} audio-s/s)",
                      flush=True)
            if time.time() - last_eval > args.eval_minutes * 60:
                last_eval = time.time()
                tw, tc, _ = evaluate(model, test_f, test_t, mean, std, stack, device)
                dw, dc, dh = evaluate(model, dev_f, dev_t, mean, std, stack, device)
                rec = {"step": step, "train_min": round(train_seconds / 60, 1), "audio_h": round(audio_seconds / 3600, 1),
                       "synth_test_wer": round(tw, 4), "synth_test_cer": round(tc, 4), "dev_wer": round(dw, 4),
                       "dev_cer": round(dc, 4)}
                history.append(rec)
                print("EVAL", json.dumps(rec), "| e.g.", " / ".join(f"{r} -> {h}" for r, h in list(zip(dev_t, dh))[:4]),
                      flush=True)
                if dw < best["dev_wer"]:
                    best = dict(rec)
                    save(os.path.join(args.ckpt_dir, "best.pt"))
                last_ckpt = 0
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                save(last)
                last_ckpt = time.time()
        if not done:
            # pick up audio generated since the run started
            n_before = len(train_f)
            train_f, train_t = load_train()
            if len(train_f) != n_before:
                print(f"epoch {epoch} done; now {len(train_f)} utts ({sum(len(f) for f in train_f) / 360000:.2f} h)", flush=True)
    tw, tc, _ = evaluate(model, test_f, test_t, mean, std, stack, device)
    dw, dc, _ = evaluate(model, dev_f, dev_t, mean, std, stack, device)
    rec = {"step": step, "train_min": round(train_seconds / 60, 1), "audio_h": round(audio_seconds / 3600, 1),
           "synth_test_wer": round(tw, 4), "synth_test_cer": round(tc, 4), "dev_wer": round(dw, 4), "dev_cer": round(dc, 4)}
    history.append(rec)
    print("EVAL", json.dumps(rec), flush=True)
    if dw < best["dev_wer"]:
        best = dict(rec)
        save(os.path.join(args.ckpt_dir, "best.pt"))
    save(last)
    print("saved", last, flush=True)


if __name__ == "__main__":
    main()
