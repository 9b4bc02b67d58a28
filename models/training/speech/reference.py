"""Reference recogniser for an exported speech model folder (config.json + model.safetensors), written
from the files' definition alone (numpy; no PyTorch): front end from the config's `speech` section,
the layer list applied in order, greedy CTC decoding. It is what the Rust engine must reproduce.

Usage: reference.py MODEL_DIR WAV_OR_G722 ...   (prints one transcript per file)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def load_model(model_dir):
    from safetensors.numpy import load_file
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    tensors = {k: v.astype(np.float32) if v.dtype != np.uint16 else v for k, v in _load(model_dir).items()}
    return cfg, tensors


def _load(model_dir):
    """safetensors with BF16 tensors: numpy has no bfloat16, so read the raw file."""
    path = os.path.join(model_dir, "model.safetensors")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for k, meta in header.items():
            if k == "__metadata__":
                continue
            s, e = meta["data_offsets"]
            f.seek(base + s)
            raw = f.read(e - s)
            if meta["dtype"] == "BF16":
                a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif meta["dtype"] == "F32":
                a = np.frombuffer(raw, dtype="<f4")
            else:
                raise ValueError(meta["dtype"])
            out[k] = a.reshape(meta["shape"]).astype(np.float32)
    return out


def mel_filterbank(sp):
    n_bins = sp["n_fft"] // 2 + 1
    freqs = np.arange(n_bins, dtype=np.float64) * sp["sample_rate"] / sp["n_fft"]
    assert sp["mel_scale"] == "htk" and sp["mel_norm"] == "none"
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel_to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    hz = mel_to_hz(np.linspace(hz_to_mel(sp["fmin"]), hz_to_mel(sp["fmax"]), sp["n_mels"] + 2))
    fb = np.zeros((sp["n_mels"], n_bins))
    for m in range(sp["n_mels"]):
        fb[m] = np.maximum(0.0, np.minimum((freqs - hz[m]) / (hz[m + 1] - hz[m]), (hz[m + 2] - freqs) / (hz[m + 2] - hz[m + 1])))
    return fb


def features(sp, wave):
    """Float samples in [-1, 1) -> (steps, stack*n_mels) normalised, stacked model inputs."""
    x = np.asarray(wave, dtype=np.float64)
    if sp["pre_emphasis"]:
        x = np.concatenate([x[:1], x[1:] - sp["pre_emphasis"] * x[:-1]])
    win, hop = sp["win_length"], sp["hop_length"]
    if len(x) < win:
        return np.zeros((0, sp["stack"] * sp["n_mels"]), np.float32)
    n = 1 + (len(x) - win) // hop
    assert sp["window"] == "hann-periodic"
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    frames = np.stack([x[t * hop:t * hop + win] * w for t in range(n)])
    spec = np.fft.rfft(frames, n=sp["n_fft"], axis=1)
    mel = (spec.real ** 2 + spec.imag ** 2) @ mel_filterbank(sp).T
    lm = np.log(np.maximum(mel, sp["log_floor"]))
    lm = (lm - np.array(sp["feature_mean"])) / np.array(sp["feature_std"])
    k = sp["stack"]
    assert sp["stride"] == k
    steps = lm.shape[0] // k
    return lm[: steps * k].reshape(steps, k * sp["n_mels"]).astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def run_layers(cfg, t, x):
    for layer in cfg["layers"]:
        ty, name = layer["type"], layer.get("name")
        if ty == "lstm":
            for k in range(layer["num_layers"]):
                wi, wh = t[f"{name}.weight_ih_l{k}"], t[f"{name}.weight_hh_l{k}"]
                b = t[f"{name}.bias_ih_l{k}"] + t[f"{name}.bias_hh_l{k}"]
                H = layer["hidden_size"]
                h, c = np.zeros(H, np.float32), np.zeros(H, np.float32)
                pre = x @ wi.T + b
                ys = np.zeros((x.shape[0], H), np.float32)
                for s in range(x.shape[0]):
                    g = pre[s] + wh @ h
                    i, f, gg, o = sigmoid(g[:H]), sigmoid(g[H:2 * H]), np.tanh(g[2 * H:3 * H]), sigmoid(g[3 * H:])
                    c = f * c + i * gg
                    h = o * np.tanh(c)
                    ys[s] = h
                x = ys
        elif ty == "linear":
            x = x @ t[f"{name}.weight"].T + t[f"{name}.bias"]
        elif ty == "layer_norm":
            mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
            x = (x - mu) / np.sqrt(var + layer["eps"]) * t[f"{name}.weight"] + t[f"{name}.bias"]
        elif ty == "relu":
            x = np.maximum(x, 0)
        elif ty == "log_softmax":
            m = x.max(-1, keepdims=True)
            x = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
        else:
            raise ValueError(ty)
    return x


def greedy(cfg, logp):
    vocab, blank = cfg["speech"]["vocabulary"], cfg["speech"]["blank"]
    out, prev = [], -1
    for i in logp.argmax(-1):
        if i != prev and i != blank:
            out.append(vocab[i])
        prev = i
    return " ".join("".join(out).split())


class Recognizer:
    def __init__(self, model_dir):
        self.cfg, self.t = load_model(model_dir)

    def log_probs(self, wave):
        return run_layers(self.cfg, self.t, features(self.cfg["speech"], wave))

    def transcribe(self, wave):
        return greedy(self.cfg, self.log_probs(wave))


if __name__ == "__main__":
    from common import load_audio
    r = Recognizer(sys.argv[1])
    for p in sys.argv[2:]:
        print(r.transcribe(load_audio(p)))
