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
        for name, p in self.lstm.named_parameters():
            if name.startswith("bias_ih"):
                with torch.no_grad():
                    p[hidden:2 * hidden].fill_(1.0)  # forget gate opens at the start: long memory from step one

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


def augment_batch(x, lens, gen, specaug=True, dither=0.0):
    """x: (B, T, bands) raw log-mel on the training device. Random gain, vocal-tract-length-like
    warping of the mel axis, per-batch time stretch, a random noise floor, then (after normalisation,
    done by the caller) SpecAugment masks via spec_masks. Returns x, lens."""
    B, T, Fb = x.shape
    dev = x.device

    def U(*shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, generator=gen, device=dev) * (hi - lo) + lo

    if dither:
        x = x + U(B, T, Fb, lo=-dither / 2, hi=dither / 2)
    if not specaug:
        return x, lens
    x = x + U(B, 1, 1, lo=-1.5, hi=1.5)
    alpha = U(B, 1, lo=0.88, hi=1.12)
    pos = (torch.arange(Fb, device=dev)[None, :] * alpha).clamp(0, Fb - 1.001)
    lo = pos.floor().long()
    w = (pos - lo)[:, None, :]
    lo = lo[:, None, :].expand(B, T, Fb)
    x = torch.gather(x, 2, lo) * (1 - w) + torch.gather(x, 2, lo + 1) * w
    st = float(U(1, lo=0.9, hi=1.1))
    if abs(st - 1.0) > 0.01:
        T2 = max(3, int(T * st))
        x = F.interpolate(x.transpose(1, 2), size=T2, mode="linear", align_corners=False).transpose(1, 2)
        lens = (lens.float() * T2 / T).long().clamp(max=T2)
        T = T2
    floor = U(B, 1, 1, lo=-20.0, hi=-12.0) + U(B, 1, 1, lo=0.0, hi=2.0) * torch.arange(Fb, device=dev)[None, None, :] / Fb
    use = (U(B, 1, 1) < 0.5).float()
    x = use * torch.logaddexp(x, floor) + (1 - use) * x
    return x, lens


def spec_masks(x, lens, gen):
    B, T, Fb = x.shape
    dev = x.device
    r = lambda *s: torch.rand(*s, generator=gen, device=dev)  # noqa: E731
    band = torch.arange(Fb, device=dev)[None, None, :]
    f0 = (r(B, 2, 1) * Fb).long()
    fw = (r(B, 2, 1) * 13).long()
    fmask = ((band >= f0) & (band < f0 + fw)).any(1)  # (B, Fb)
    K = 10
    t = torch.arange(T, device=dev)[None, None, :]
    t0 = (r(B, K, 1) * lens[:, None, None].to(dev)).long()
    tw = (r(B, K, 1) * 31).long()
    active = (torch.arange(K, device=dev)[None, :, None] < (lens[:, None, None].to(dev) // 100).clamp(1, K))
    tw = tw * active
    tmask = ((t >= t0) & (t < t0 + tw)).any(1)  # (B, T)
    keep = (~fmask)[:, None, :] & (~tmask)[:, :, None]
    return x * keep


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


def load_pack(d, split, rng_np):
    import lzma
    idx = json.load(open(os.path.join(d, "index.json")))
    meta = idx[split]
    q = np.frombuffer(lzma.decompress(open(os.path.join(d, split + ".xz"), "rb").read()), dtype=np.uint8)
    q = q.reshape(-1, meta["bands"])
    if idx.get("delta"):
        q = np.cumsum(q, axis=0, dtype=np.uint8)
    allf = (q.astype(np.float32) * idx["step"] + idx["lo"]).astype(np.float16)
    offs = meta["offsets"]
    return [allf[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)], meta["texts"], idx["step"]


def save_state(path, d, split_mb=0):
    """torch.save, atomically; with split_mb, the model weights go to path.partN files of at most
    split_mb MB each (for transports that limit file sizes) and the optimizer state is left out."""
    if split_mb:
        model = d.pop("model")
        d.pop("opt", None)
        parts, cur, size = [], {}, 0
        for k, v in model.items():
            if cur and size + v.numel() * 4 > split_mb * 1e6:
                parts.append(cur)
                cur, size = {}, 0
            cur[k] = v
            size += v.numel() * 4
        parts.append(cur)
        for i, p in enumerate(parts):
            torch.save(p, f"{path}.part{i}")
        d["parts"] = len(parts)
    torch.save(d, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_state(path):
    d = torch.load(path, map_location="cpu", weights_only=False)
    if "parts" in d:
        d["model"] = {}
        for i in range(d["parts"]):
            d["model"].update(torch.load(f"{path}.part{i}", map_location="cpu", weights_only=False))
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default="", help="start from this checkpoint's weights (fresh optimizer and counters kept)")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of this run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--final-lr", type=float, default=0.0, help="if set, decay the lr linearly to this over the run")
    ap.add_argument("--batch-seconds", type=float, default=120.0, help="audio seconds per batch")
    ap.add_argument("--eval-minutes", type=float, default=6.0)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ckpt-dir", default=CKPT)
    ap.add_argument("--split-mb", type=float, default=0, help="write weights in parts of at most this size")
    ap.add_argument("--pack", default="", help="read features from a pack.py folder instead of the manifests")
    ap.add_argument("--manifests", default=os.path.join(DATA, "manifests", "train-*.jsonl"))
    ap.add_argument("--no-specaug", action="store_true")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--eval-test-limit", type=int, default=0, help="evaluate on the first N synthetic test utterances only")
    ap.add_argument("--warmup", type=int, default=300, help="linear learning-rate warm-up steps")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--sortagrad", action="store_true", help="first epoch of this run shortest utterances first")
    ap.add_argument("--clean-steps", type=int, default=0, help="no augmentation before this many steps")
    ap.add_argument("--align", default="", help="align.py folder: frame labels for a cross-entropy term next to CTC")
    ap.add_argument("--ce-steps", type=int, default=0, help="cross-entropy weight falls from 1 to 0 over these steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal gate values make CPU LSTM steps many times slower
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = torch.device(args.device)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    os.makedirs(args.ckpt_dir, exist_ok=True)
    last = os.path.join(args.ckpt_dir, "last.pt")
    stack = FRONT_END["stack"]
    state = None
    if args.resume and os.path.exists(last):
        state = load_state(last)
        cfg = state["cfg"]
        print(f"resumed step {state['step']}, trained {state['train_seconds'] / 60:.1f} min", flush=True)
    elif args.init:
        state = load_state(args.init)
        cfg = state["cfg"]
        state.pop("opt", None)
        print(f"initialised from {args.init} (step {state['step']})", flush=True)
    else:
        cfg = {"layers": args.layers, "hidden": args.hidden, "n_in": stack * FRONT_END["n_mels"], "n_out": len(VOCAB)}

    def load_train():
        if args.pack:
            return load_pack(args.pack, "train", None)[:2]
        fs, ts = [], []
        for m in sorted(glob.glob(args.manifests)):
            f, t = manifest_feats(m)
            fs += f
            ts += t
        return fs, ts

    def load_labels():
        if not args.align:
            return None
        out = []
        for m in sorted(glob.glob(args.manifests)):
            z = np.load(os.path.join(args.align, os.path.basename(m).replace(".jsonl", ".npz")))
            offs = z["offsets"]
            out += [z["labels"][offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
        return out

    t_load = time.time()
    train_f, train_t = load_train()
    train_l = load_labels()
    if train_l is not None and len(train_l) != len(train_f):
        raise SystemExit(f"{args.align}: {len(train_l)} label rows for {len(train_f)} utterances")
    dither = 0.0
    if args.pack:
        test_f, test_t, dither = load_pack(args.pack, "test", None)
        dev_f, dev_t, _ = load_pack(args.pack, "dev", None)
    else:
        test_f, test_t = manifest_feats(os.path.join(DATA, "manifests", "test.jsonl"))
        dev_f, dev_t = dev_feats()
    if args.eval_test_limit:
        test_f, test_t = test_f[:args.eval_test_limit], test_t[:args.eval_test_limit]
    print(f"features: {len(train_f)} train utts ({sum(len(f) for f in train_f) / 360000:.2f} h), "
          f"{len(test_f)} test, {len(dev_f)} dev; {time.time() - t_load:.0f} s", flush=True)
    if state is not None:
        mean, std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
    else:
        allf = np.concatenate(train_f[:20000]).astype(np.float32)
        mean, std = allf.mean(0), allf.std(0) + 1e-5
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.tensor(std, dtype=torch.float32, device=device)
    model = SpeechModel(cfg["n_in"], cfg["hidden"], cfg["layers"], cfg["n_out"], dropout=args.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, train_seconds, audio_seconds = 0, 0.0, 0.0
    best = {"dev_wer": 9.9}
    history = []
    opt_loaded = False
    if state is not None:
        model.load_state_dict(state["model"])
        if args.resume:
            if "opt" in state:
                try:
                    opt.load_state_dict(state["opt"])
                    opt_loaded = True
                except (ValueError, KeyError):
                    pass
            best, history = state["best"], state["history"]
            if "rng" in state:
                rng.setstate(state["rng"])
        step, train_seconds, audio_seconds = state["step"], state["train_seconds"], state["audio_seconds"]
    warm_from = 0 if opt_loaded else step  # a fresh optimizer warms up again, also on trained weights
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters on {device}", flush=True)

    def save(path):
        d = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "opt": opt.state_dict(),
             "cfg": cfg, "mean": [float(v) for v in mean], "std": [float(v) for v in std], "step": step,
             "train_seconds": train_seconds, "audio_seconds": audio_seconds, "best": best, "history": history,
             "rng": rng.getstate(), "device": str(device)}
        save_state(path, d, args.split_mb)

    def batches(sort_only=False):
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
        if not sort_only:
            rng.shuffle(bs)
        return bs

    def run_eval():
        model.eval()
        out = []
        for feats, texts in ((test_f, test_t), (dev_f, dev_t)):
            hyps = []
            with torch.no_grad():
                for i in range(0, len(feats), 64):
                    fs = [torch.from_numpy(f.astype(np.float32)) for f in feats[i:i + 64]]
                    lens = torch.tensor([len(f) for f in fs])
                    x = nn.utils.rnn.pad_sequence(fs, batch_first=True).to(device)
                    x, lens = augment_batch(x, lens, gen, specaug=False, dither=dither)
                    x = (x - mean_t) / std_t
                    n = x.shape[1] // stack
                    x = x[:, :n * stack].reshape(x.shape[0], n, -1)
                    sl = (lens // stack).clamp(min=1)
                    best_ids = model(x, sl).argmax(-1).cpu().numpy()
                    for b, k in enumerate(sl.tolist()):
                        hyps.append(decode_greedy(best_ids[b, :k].tolist()))
            out.append(error_rates(texts, hyps) + (hyps,))
        model.train()
        return out

    t0 = time.time()
    last_ckpt = last_eval = time.time()
    run_train_start = train_seconds
    lr0 = args.lr
    done = False
    epoch = 0
    while not done:
        epoch += 1
        for b in batches(sort_only=args.sortagrad and epoch == 1):
            frac = (time.time() - t0) / (args.minutes * 60)
            if frac > 1:
                done = True
                break
            ys, yl, fs, ls = [], [], [], []
            ce_w = max(0.0, 1.0 - step / args.ce_steps) if train_l is not None and args.ce_steps else 0.0
            for i in b:
                y = encode(train_t[i])
                if len(train_f[i]) < 2 * stack or not y:
                    continue
                fs.append(torch.from_numpy(train_f[i].astype(np.float32)))
                if ce_w > 0:
                    ls.append(torch.from_numpy(train_l[i].astype(np.int64)))
                ys += y
                yl.append(len(y))
            if not fs:
                continue
            tb = time.time()
            lr = lr0 if not args.final_lr else lr0 + (args.final_lr - lr0) * frac
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, (step - warm_from + 1) / args.warmup)
            lens = torch.tensor([len(f) for f in fs])
            x = nn.utils.rnn.pad_sequence(fs, batch_first=True).to(device)
            aug = not args.no_specaug and step >= args.clean_steps and ce_w == 0
            x, lens = augment_batch(x, lens, gen, specaug=aug, dither=dither)
            x = (x - mean_t) / std_t
            if aug:
                x = spec_masks(x, lens, gen)
            n = x.shape[1] // stack
            x = x[:, :n * stack].reshape(x.shape[0], n, -1)
            xl = (lens // stack).clamp(min=1, max=n)
            lp = model(x)  # unidirectional: padding after an utterance does not change its outputs; packing is slower on CPU
            loss = F.ctc_loss(lp.transpose(0, 1), torch.tensor(ys, device=device), xl.to(device), torch.tensor(yl, device=device),
                              blank=0, reduction="mean", zero_infinity=True)
            if ce_w > 0:
                lab = nn.utils.rnn.pad_sequence(ls, batch_first=True, padding_value=-1)[:, :lp.shape[1]].to(device)
                if lab.shape[1] < lp.shape[1]:
                    lab = F.pad(lab, (0, lp.shape[1] - lab.shape[1]), value=-1)
                ce = F.nll_loss(lp.reshape(-1, lp.shape[-1]), lab.reshape(-1), ignore_index=-1)
                loss = loss + ce_w * ce
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            secs = float(xl.sum()) * stack / 100.0
            audio_seconds += secs
            train_seconds = run_train_start + (time.time() - t0)
            if step % args.log_every == 0:
                print(f"step {step} epoch {epoch} loss {loss.item():.3f} lr {lr:.2e} audio {audio_seconds / 3600:.1f} h "
                      f"train {train_seconds / 60:.1f} min ({secs / (time.time() - tb):.0f} audio-s/s)", flush=True)
            if time.time() - last_eval > args.eval_minutes * 60:
                last_eval = time.time()
                (tw, tc, _), (dw, dc, dh) = run_eval()
                rec = {"step": step, "train_min": round(train_seconds / 60, 1), "audio_h": round(audio_seconds / 3600, 1),
                       "synth_test_wer": round(tw, 4), "synth_test_cer": round(tc, 4), "dev_wer": round(dw, 4),
                       "dev_cer": round(dc, 4)}
                history.append(rec)
                print("EVAL", json.dumps(rec), "| e.g.", " / ".join(f"{r} -> {h}" for r, h in list(zip(dev_t, dh))[:5]),
                      flush=True)
                if dw < best["dev_wer"]:
                    best = dict(rec)
                    save(os.path.join(args.ckpt_dir, "best.pt"))
                last_ckpt = 0
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                save(last)
                last_ckpt = time.time()
        if not done and not args.pack:
            n_before = len(train_f)
            train_f, train_t = load_train()
            if len(train_f) != n_before:
                print(f"epoch {epoch} done; now {len(train_f)} utts ({sum(len(f) for f in train_f) / 360000:.2f} h)", flush=True)
    (tw, tc, _), (dw, dc, _) = run_eval()
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
