"""Writes the front-end golden file for the Rust front end's test: a short deterministic waveform
(16-bit PCM values) and its log-mel features computed by common.log_mel, plus the stacked inputs after
normalisation with a given mean/std (here mean 0.5*band index/80 - 8, std 2 + band/80, arbitrary
but non-trivial, included in the file).

Usage: golden.py [--out frontend_golden.json]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FRONT_END, log_mel, mel_filterbank, stack_frames  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "frontend_golden.json"))
    args = ap.parse_args()
    sr = FRONT_END["sample_rate"]
    n = 2000  # 125 ms -> 11 frames -> 3 stacked steps
    t = np.arange(n) / sr
    rng = np.random.default_rng(1234)
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1870 * t + 0.5) * np.exp(-8 * t) \
        + 0.05 * rng.standard_normal(n)
    x[1200:1300] = 0.0  # a silent stretch: exercises the log floor only if a whole frame is silent
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    wave = pcm.astype(np.float32) / 32768.0
    lm = log_mel(wave)
    mean = (0.5 * np.arange(80) / 80 - 8).astype(np.float32)
    std = (2 + np.arange(80) / 80).astype(np.float32)
    stacked = stack_frames((lm - mean) / std, FRONT_END["stack"])
    fb = mel_filterbank()
    silent = log_mel(np.zeros(800, np.float32))
    out = {
        "description": "Reprise speech front end golden values: pcm (int16) -> wave = pcm/32768 -> log_mel "
                       "(frames x n_mels, natural log) -> (log_mel - mean)/std -> stacked (steps x stack*n_mels). "
                       "Tolerance: 1e-3 absolute on log_mel (f32 FFT vs f64 reference).",
        "front_end": FRONT_END,
        "pcm": pcm.tolist(),
        "log_mel": np.round(lm.astype(np.float64), 5).tolist(),
        "mean": mean.tolist(),
        "std": std.tolist(),
        "stacked": np.round(stacked.astype(np.float64), 5).tolist(),
        "filterbank_row_sums": np.round(fb.sum(1), 6).tolist(),
        "filterbank_nonzero_first_last_bin": [[int(np.nonzero(r)[0][0]), int(np.nonzero(r)[0][-1])] for r in fb],
        "silent_800_samples_log_mel_row0_first": float(silent[0, 0]),
    }
    with open(args.out, "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"wrote {args.out}: {len(pcm)} samples, {lm.shape[0]} frames, {stacked.shape[0]} steps, "
          f"{os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
