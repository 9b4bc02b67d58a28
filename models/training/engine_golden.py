"""Writes golden files for the engine's parity tests: torch.nn.LSTM stacks with random weights,
random inputs for two streams and PyTorch's outputs, in Reprise's model format.

    models/training/.venv/bin/python models/training/engine_golden.py [OUT_DIR]

OUT_DIR defaults to tests/data/golden. Each case is a folder with config.json and
model.safetensors (the model) and io.safetensors (`input`: T × B × in, `output`: T × B × H).
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

CASES = [
    # name, input size, hidden size, layers, steps, streams, weight scale
    ("lstm-3x48", 20, 48, 3, 200, 2, 4.0),
    ("lstm-2x33", 7, 33, 2, 200, 2, 3.0),
    ("lstm-1x64", 40, 64, 1, 200, 1, 3.0),
]


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "data", "golden")
    torch.manual_seed(20261127)
    for name, n_in, hidden, layers, steps, streams, scale in CASES:
        lstm = torch.nn.LSTM(n_in, hidden, num_layers=layers)
        with torch.no_grad():
            for p in lstm.parameters():
                p.mul_(scale)
        x = torch.randn(steps, streams, n_in)
        with torch.no_grad():
            y, _ = lstm(x)
        out = os.path.join(out_root, name)
        os.makedirs(out, exist_ok=True)
        tensors = {f"lstm.{k}": v.detach().contiguous() for k, v in lstm.state_dict().items()}
        save_file(tensors, os.path.join(out, "model.safetensors"))
        config = {
            "format": "reprise-model",
            "version": 1,
            "kind": "lstm-test",
            "weight_format": "f32",
            "layers": [
                {
                    "type": "lstm",
                    "name": "lstm",
                    "input_size": n_in,
                    "hidden_size": hidden,
                    "num_layers": layers,
                }
            ],
            "training": {"made_by": "models/training/engine_golden.py", "torch": torch.__version__},
        }
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        save_file({"input": x.contiguous(), "output": y.contiguous()}, os.path.join(out, "io.safetensors"))
        print(f"{name}: {steps} steps x {streams} streams, output range {y.min():.3f}..{y.max():.3f}")


if __name__ == "__main__":
    main()
