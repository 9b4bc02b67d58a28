"""Reprise vs ONNX Runtime vs PyTorch on the same LSTM stacks (random weights), one thread each.

Run through benches/compare_onnx, which installs the dependencies and builds Reprise's timing
example. For each shape and batch size, every round times every runtime once (interleaved), on
the same inputs; the table gives the median over rounds. Reprise runs in each weight format; its
outputs are compared with PyTorch's f32 outputs. The last line is
`ratio_vs_onnxruntime batch1=<x> batch8=<y>` for 4×512: Reprise's time per step in the fastest
format whose max abs error stays within 1e-2, divided by ONNX Runtime's.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import load_file, save_file

SHAPES = {
    # name: (inputs, hidden, layers)
    "4x512": (80, 512, 4),
    "3x256": (80, 256, 3),
    "melody2x256": (130, 256, 2),
    "3x512": (400, 512, 3),
}
TOLERANCE = 1e-2


def export_reprise(lstm, n_in, hidden, layers, out):
    os.makedirs(out, exist_ok=True)
    save_file({f"lstm.{k}": v.contiguous() for k, v in lstm.state_dict().items()},
              os.path.join(out, "model.safetensors"))
    config = {"format": "reprise-model", "version": 1, "kind": "lstm-bench", "weight_format": "f32",
              "layers": [{"type": "lstm", "name": "lstm", "input_size": n_in,
                          "hidden_size": hidden, "num_layers": layers}]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)


def export_onnx(lstm, n_in, hidden, layers, batch, path):
    x = torch.zeros(1, batch, n_in)
    h = torch.zeros(layers, batch, hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(lstm, (x, (h, h.clone())), path, input_names=["x", "h0", "c0"],
                          output_names=["y", "hn", "cn"], opset_version=14)


def time_onnx(sess, x, layers, hidden):
    steps, batch = x.shape[0], x.shape[1]
    h = np.zeros((layers, batch, hidden), np.float32)
    c = np.zeros_like(h)
    xs = [x[t:t + 1] for t in range(steps)]
    start = time.perf_counter()
    for t in range(steps):
        _, h, c = sess.run(None, {"x": xs[t], "h0": h, "c0": c})
    return (time.perf_counter() - start) * 1e6 / steps


def time_torch(lstm, x):
    steps, batch = x.shape[0], x.shape[1]
    state = None
    with torch.no_grad():
        start = time.perf_counter()
        for t in range(steps):
            _, state = lstm(x[t:t + 1], state)
        return (time.perf_counter() - start) * 1e6 / steps


def run_reprise(binary, model_dir, input_path, fmt, reps, out):
    line = subprocess.run([binary, model_dir, input_path, fmt, str(reps), out], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    fields = dict(kv.split("=") for kv in line.split())
    return float(fields["us_per_step"]), fields["isa"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reprise", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="4x512,3x256,melody2x256,3x512")
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    torch.set_num_threads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.steps} steps, "
          f"{args.rounds} rounds, 1 thread each")
    rows = []
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            n_in, hidden, layers = SHAPES[shape]
            torch.manual_seed(1)
            lstm = torch.nn.LSTM(n_in, hidden, num_layers=layers).eval()
            model_dir = os.path.join(tmp, shape)
            export_reprise(lstm, n_in, hidden, layers, model_dir)
            for batch in [int(b) for b in args.batches.split(",")]:
                x = torch.randn(args.steps, batch, n_in)
                with torch.no_grad():
                    ref, _ = lstm(x)
                input_path = os.path.join(tmp, f"{shape}-b{batch}-in.safetensors")
                save_file({"input": x.contiguous()}, input_path)
                onnx_path = os.path.join(tmp, f"{shape}-b{batch}.onnx")
                export_onnx(lstm, n_in, hidden, layers, batch, onnx_path)
                sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
                xn = x.numpy()
                times = {k: [] for k in ["onnxruntime", "pytorch", "reprise f32", "reprise bf16", "reprise int8"]}
                errors, isa = {}, ""
                for _ in range(args.rounds):
                    times["onnxruntime"].append(time_onnx(sess, xn, layers, hidden))
                    times["pytorch"].append(time_torch(lstm, x))
                    for fmt in ["f32", "bf16", "int8"]:
                        out = os.path.join(tmp, f"out-{fmt}.safetensors")
                        us, isa = run_reprise(args.reprise, model_dir, input_path, fmt, 3, out)
                        times[f"reprise {fmt}"].append(us)
                        y = load_file(out)["output"]
                        errors[f"reprise {fmt}"] = float((y - ref).abs().max())
                med = {k: statistics.median(v) for k, v in times.items()}
                for k, v in med.items():
                    rows.append((shape, batch, k + (f" ({isa})" if k.startswith("reprise") else ""),
                                 v, v / batch, errors.get(k), v / med["onnxruntime"]))
                ok = [k for k in errors if errors[k] <= TOLERANCE]
                best = min(ok, key=lambda k: med[k])
                if shape == "4x512":
                    ratios[batch] = (med[best] / med["onnxruntime"], best)
    print()
    print("| shape | batch | runtime | µs per step | µs per stream-step | max abs error vs PyTorch | × ONNX Runtime |")
    print("|---|---|---|---|---|---|---|")
    for shape, batch, name, us, per, err, ratio in rows:
        e = "" if err is None else f"{err:.1e}"
        print(f"| {shape} | {batch} | {name} | {us:.1f} | {per:.1f} | {e} | {ratio:.3f} |")
    if ratios:
        print()
        for b, (r, k) in sorted(ratios.items()):
            print(f"4x512 batch {b}: fastest format within {TOLERANCE:g} of f32 is {k}")
        print("ratio_vs_onnxruntime " + " ".join(f"batch{b}={r:.3f}" for b, (r, _) in sorted(ratios.items())))


if __name__ == "__main__":
    main()
