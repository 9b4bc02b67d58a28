"""Trains the streaming LSTM-CTC speech model.

Front end: common.log_mel (80 log-mel bands, 10 ms hop), per-band normalisation with the training
data's mean/std (fixed at the first run and stored in the checkpoint), 3-frame stacking (30 ms steps).
Model: unidirectional LSTM (layers x hidden) -> linear -> log_softmax over the 29-symbol vocabulary
(blank 0, space, apostrophe, a-z). SpecAugment (frequency and time masks) on the training features, after
feature-domain augmentation (gain, mel-axis warping as vocal-tract-length perturbation, tempo, noise floor).
With --wave-aug it trains from the audio itself, each utterance augmented on the fly by augment.py (rooms,
noise and babble, speed, pitch, band, codecs, clipping) in a worker process before the features.
Checkpoints every few minutes to CKPT_DIR/last.pt (and best.pt by development-set WER), so a killed run
resumes with --resume; --init starts from a checkpoint or from an exported model folder (models/speech-en).
Every eval interval it reports greedy WER/CER on the evaluation sets (the Asterisk development ids, the
held-out Kokoro voices, the held-out old-engine voices) and appends them to CKPT_DIR/curve.jsonl with
the hours of audio seen: the learning curve.

Usage: train.py [--resume] [--minutes 60] [--threads 2] [--layers 4 --hidden 384]
       train.py --init ../speech-en --manifests '~/.cache/reprise/speech/manifests/kokoro-s*.jsonl' --wave-aug default
       train.py --init ../speech-en --eval-only      (figures of a model without training)
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
from augment import Augmenter, parse_config  # noqa: E402
from common import (CACHE, DATA, FRONT_END, VOCAB, asterisk_dev_set, decode_greedy, encode, error_rates,  # noqa: E402
                    load_audio, log_mel, manifest_root)

CKPT = os.path.join(DATA, "ckpt")
FEATS = os.path.join(DATA, "feats")
EVAL_MANIFESTS = {"kokoro": os.path.join(CACHE, "manifests", "kokoro-test.jsonl"),
                  "synth": os.path.join(DATA, "manifests", "test.jsonl")}


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
def manifest_rows(man_path):
    return [json.loads(line) for line in open(os.path.expanduser(man_path)) if line.strip()]


def manifest_feats(man_path):
    """Features (float16, frames x 80) and texts for a manifest, cached in <root>/feats/<name>.npz
    and extended when the manifest has grown."""
    root = manifest_root(man_path)
    feats_dir = os.path.join(root, "feats")
    os.makedirs(feats_dir, exist_ok=True)
    name = os.path.basename(man_path).replace(".jsonl", "")
    cache = os.path.join(feats_dir, name + ".npz")
    rows = manifest_rows(man_path)
    feats, texts = [], []
    if os.path.exists(cache):
        z = np.load(cache, allow_pickle=False)
        offs = z["offsets"]
        allf = z["feats"]
        feats = [allf[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
        texts = list(z["texts"])
    if len(feats) < len(rows):
        for r in rows[len(feats):]:
            feats.append(log_mel(load_audio(os.path.join(root, r["path"]))).astype(np.float16))
            texts.append(r["text"])
        offs = np.cumsum([0] + [len(f) for f in feats])
        np.savez(cache + ".tmp.npz", feats=np.concatenate(feats), offsets=offs, texts=np.array(texts))
        os.replace(cache + ".tmp.npz", cache)
    return feats, texts


def manifest_waves(man_path):
    """16-bit audio (memory-mapped int16 arrays) and texts of a manifest, decoded once into
    <root>/wave/<name>.i16 (+ .json index) and extended when the manifest has grown."""
    root = manifest_root(man_path)
    d = os.path.join(root, "wave")
    os.makedirs(d, exist_ok=True)
    name = os.path.basename(man_path).replace(".jsonl", "")
    raw, idx = os.path.join(d, name + ".i16"), os.path.join(d, name + ".json")
    rows = manifest_rows(man_path)
    meta = json.load(open(idx)) if os.path.exists(idx) else {"offsets": [0], "texts": []}
    if len(meta["texts"]) < len(rows):
        with open(raw, "ab") as f:
            f.truncate(meta["offsets"][-1] * 2)  # drop what an interrupted append left
            for r in rows[len(meta["texts"]):]:
                x = (np.clip(load_audio(os.path.join(root, r["path"])), -1, 1 - 1 / 32768) * 32768).astype("<i2")
                f.write(x.tobytes())
                meta["offsets"].append(meta["offsets"][-1] + len(x))
                meta["texts"].append(r["text"])
        json.dump(meta, open(idx + ".tmp", "w"))
        os.replace(idx + ".tmp", idx)
    offs = meta["offsets"]
    if offs[-1] == 0:
        return [], []
    mm = np.memmap(raw, dtype="<i2", mode="r", shape=(offs[-1],))
    return [mm[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)], meta["texts"]


def expand_manifests(spec):
    """Manifest paths of comma-separated globs (~ expanded)."""
    return sorted(m for pat in spec.split(",") for m in glob.glob(os.path.expanduser(pat)))


def n_frames(n_samples):
    return max(0, 1 + (n_samples - FRONT_END["win_length"]) // FRONT_END["hop_length"])


_WAVES = {}  # wave-mode training data and augmenter, set before the worker pool forks


def wave_batch(job):
    """Log-mel features of the utterances idx, each waveform augmented (when aug) by the Augmenter
    reseeded with seed: the same job gives the same features."""
    idx, seed, aug = job
    waves, augmenter = _WAVES["waves"], _WAVES["augmenter"]
    augmenter.rng.seed(seed)
    augmenter.rng_np = np.random.default_rng(seed)
    out = []
    for i in idx:
        x = np.asarray(waves[i], dtype=np.float32) / 32768.0
        if aug:
            x, _ = augmenter(x)
        out.append(log_mel(x))
    return out


def state_from_model_dir(d):
    """A training state (weights as float32, normalisation, counters) from an exported model folder."""
    from safetensors.torch import load_file
    cfg = json.load(open(os.path.join(d, "config.json")))
    lstm = next(layer for layer in cfg["layers"] if layer["type"] == "lstm")
    out = next(layer for layer in cfg["layers"] if layer["type"] == "linear")
    tr = cfg.get("training", {})
    return {"model": {k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()},
            "cfg": {"layers": lstm["num_layers"], "hidden": lstm["hidden_size"], "n_in": lstm["input_size"],
                    "n_out": out["out_features"]},
            "mean": cfg["speech"]["feature_mean"], "std": cfg["speech"]["feature_std"], "step": tr.get("step", 0),
            "train_seconds": tr.get("train_minutes", 0) * 60, "audio_seconds": tr.get("audio_hours_seen", 0) * 3600}


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


def pack_eval_names(d):
    """The evaluation splits of a pack.py folder (older packs: test and dev)."""
    return json.load(open(os.path.join(d, "index.json"))).get("eval", ["test", "dev"])


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
    ap.add_argument("--init", default="", help="start from this checkpoint's weights, or an exported model folder's "
                    "(config.json + model.safetensors); fresh optimizer, counters kept")
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
    ap.add_argument("--manifests", default=os.path.join(DATA, "manifests", "train-*.jsonl"),
                    help="training manifests: globs, comma-separated (e.g. the cache's manifests/kokoro-s*.jsonl)")
    ap.add_argument("--wave-aug", default="", help="train from audio, augmented on the fly by augment.py with this "
                    "configuration ('default' or e.g. 'rir=0.35,noise=0.6,codec=0.2'); off: cached features")
    ap.add_argument("--workers", type=int, default=1, help="processes that prepare augmented batches (wave mode; 0: inline)")
    ap.add_argument("--cache", default=CACHE, help="cache folder (room impulse responses for --wave-aug)")
    ap.add_argument("--eval-sets", default="dev,kokoro,synth", help="evaluation sets that exist of: dev (Asterisk "
                    "development ids), kokoro (held-out Kokoro voices), synth (held-out old-engine voices)")
    ap.add_argument("--no-specaug", action="store_true")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--eval-test-limit", type=int, default=0, help="evaluate on the first N utterances of each "
                    "synthetic test set only (the development set is always whole)")
    ap.add_argument("--warmup", type=int, default=300, help="linear learning-rate warm-up steps")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-only", action="store_true", help="evaluate the starting weights and stop")
    ap.add_argument("--wait-hours", type=float, default=0, help="first wait (checking every 10 min) until the "
                    "training manifests hold this many hours of audio (a run queued behind synthesis)")
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
        state = state_from_model_dir(args.init) if os.path.isdir(args.init) else load_state(args.init)
        cfg = state["cfg"]
        state.pop("opt", None)
        print(f"initialised from {args.init} (step {state['step']})", flush=True)
    else:
        cfg = {"layers": args.layers, "hidden": args.hidden, "n_in": stack * FRONT_END["n_mels"], "n_out": len(VOCAB)}

    manifests = lambda: expand_manifests(args.manifests)  # noqa: E731

    def load_train():
        """(items, texts, frames per item): features, or in wave mode int16 waveforms."""
        if args.pack:
            fs, ts = load_pack(args.pack, "train", None)[:2]
            return fs, ts, [len(f) for f in fs]
        fs, ts = [], []
        for m in manifests():
            f, t = manifest_waves(m) if args.wave_aug else manifest_feats(m)
            fs += f
            ts += t
        return fs, ts, [n_frames(len(f)) if args.wave_aug else len(f) for f in fs]

    def load_labels():
        if not args.align:
            return None
        out = []
        for m in manifests():
            z = np.load(os.path.join(args.align, os.path.basename(m).replace(".jsonl", ".npz")))
            offs = z["offsets"]
            out += [z["labels"][offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
        return out

    while args.wait_hours and not args.pack:
        held = sum(r.get("duration", 0) for m in manifests() for r in manifest_rows(m)) / 3600
        if held >= args.wait_hours:
            break
        print(f"{time.strftime('%H:%M')} waiting: the manifests hold {held:.2f} h of {args.wait_hours} h", flush=True)
        time.sleep(600)
    t_load = time.time()
    train_f, train_t, train_n = load_train()
    train_l = load_labels()
    if train_l is not None and len(train_l) != len(train_f):
        raise SystemExit(f"{args.align}: {len(train_l)} label rows for {len(train_f)} utterances")
    dither = 0.0
    evals = {}
    if args.pack:
        for name in pack_eval_names(args.pack):
            f, t, dither = load_pack(args.pack, name, None)
            evals["synth" if name == "test" else name] = (f, t)
    else:
        for name in args.eval_sets.split(","):
            if name == "dev":
                evals[name] = dev_feats()
            elif os.path.exists(os.path.expanduser(EVAL_MANIFESTS[name])):
                evals[name] = manifest_feats(EVAL_MANIFESTS[name])
    if args.eval_test_limit:
        evals = {k: (f[:args.eval_test_limit], t[:args.eval_test_limit]) if k != "dev" else (f, t)
                 for k, (f, t) in evals.items()}
    print(f"{'audio' if args.wave_aug else 'features'}: {len(train_f)} train utts ({sum(train_n) / 360000:.2f} h); eval "
          + ", ".join(f"{k} {len(f)}" for k, (f, _) in evals.items()) + f"; {time.time() - t_load:.0f} s", flush=True)
    if state is not None:
        mean, std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
    else:
        sample = [log_mel(np.asarray(w, np.float32) / 32768.0) for w in train_f[:3000]] if args.wave_aug else train_f[:20000]
        allf = np.concatenate(sample).astype(np.float32)
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
        order = sorted(range(len(train_f)), key=lambda i: train_n[i] + rng.random() * 50)
        bs, cur, cur_frames = [], [], 0
        for i in order:
            n = train_n[i]
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
        out = {}
        for name, (feats, texts) in evals.items():
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
            out[name] = error_rates(texts, hyps) + (hyps,)
        model.train()
        return out

    def eval_record():
        res = run_eval()
        rec = {"step": step, "train_min": round(train_seconds / 60, 1), "audio_h": round(audio_seconds / 3600, 2),
               "data_h": round(sum(train_n) / 360000, 2)}
        for name, (w, c, _) in res.items():
            rec[f"{name}_wer"], rec[f"{name}_cer"] = round(w, 4), round(c, 4)
        history.append(rec)
        with open(os.path.join(args.ckpt_dir, "curve.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        dev = res.get("dev")
        print("EVAL", json.dumps(rec), "| e.g.", " / ".join(f"{r} -> {h}" for r, h in list(zip(evals["dev"][1], dev[2]))[:5])
              if dev else "", flush=True)
        return rec

    def epoch_stream(bs, aug_from_step):
        """(batch, features) in order: cached features, or waveforms augmented and featurised by the
        worker pool a few batches ahead."""
        if not args.wave_aug:
            yield from ((b, [train_f[i] for i in b]) for b in bs)
            return
        _WAVES["waves"] = train_f
        _WAVES["augmenter"] = Augmenter(parse_config("" if args.wave_aug == "default" else args.wave_aug), args.cache,
                                        seed=args.seed, others=lambda: np.asarray(
                                            train_f[_WAVES["augmenter"].rng.randrange(len(train_f))], np.float32) / 32768.0)
        jobs = [(b, rng.randrange(2**31), step + k >= aug_from_step and not args.no_specaug) for k, b in enumerate(bs)]
        if args.workers == 0:
            yield from ((b, wave_batch(j)) for b, j in zip(bs, jobs))
            return
        import multiprocessing as mp
        with mp.get_context("fork").Pool(args.workers) as pool:
            pending = [pool.apply_async(wave_batch, (j,)) for j in jobs[:3]]
            for k, b in enumerate(bs):
                feats = pending.pop(0).get()
                if k + 3 < len(jobs):
                    pending.append(pool.apply_async(wave_batch, (jobs[k + 3],)))
                yield b, feats

    if args.eval_only:
        eval_record()
        return
    t0 = time.time()
    last_ckpt = last_eval = time.time()
    run_train_start = train_seconds
    lr0 = args.lr
    done = False
    epoch = 0
    while not done:
        epoch += 1
        for b, bfeats in epoch_stream(batches(sort_only=args.sortagrad and epoch == 1), args.clean_steps):
            frac = (time.time() - t0) / (args.minutes * 60)
            if frac > 1:
                done = True
                break
            ys, yl, fs, ls = [], [], [], []
            ce_w = max(0.0, 1.0 - step / args.ce_steps) if train_l is not None and args.ce_steps else 0.0
            for i, f in zip(b, bfeats):
                y = encode(train_t[i])
                if len(f) < 2 * stack or not y:
                    continue
                fs.append(torch.from_numpy(f.astype(np.float32)))
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
                rec = eval_record()
                if rec.get("dev_wer", 9.9) < best["dev_wer"]:
                    best = dict(rec)
                    save(os.path.join(args.ckpt_dir, "best.pt"))
                last_ckpt = 0
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                save(last)
                last_ckpt = time.time()
        if not done and not args.pack:
            n_before = len(train_f)
            train_f, train_t, train_n = load_train()
            if len(train_f) != n_before:
                print(f"epoch {epoch} done; now {len(train_f)} utts ({sum(train_n) / 360000:.2f} h)", flush=True)
    rec = eval_record()
    if rec.get("dev_wer", 9.9) < best["dev_wer"]:
        best = dict(rec)
        save(os.path.join(args.ckpt_dir, "best.pt"))
    save(last)
    print("saved", last, flush=True)


if __name__ == "__main__":
    main()
