#!/usr/bin/env python3
"""Export a training checkpoint to a Reprise model folder (docs/model-format.md).

  export.py CHECKPOINT OUTDIR [--steps-per-quarter S] [--title TEXT]

Writes OUTDIR/config.json, OUTDIR/model.safetensors (F32, PyTorch tensor names) and OUTDIR/README.md
(the model card). The valid NLL per frame in the card is recomputed by nll.py's reference from the
exported files and must agree with the training script's figure to 1e-3.
"""
import argparse
import datetime
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nll as reference  # noqa: E402
from musicdata import STEPS_PER_QUARTER, load_json  # noqa: E402

# What is known of each benchmark set's grid (Boulanger-Lewandowski et al. 2012: pieces transposed
# to C major or C minor, frames every eighth note, quarter notes for JSB Chorales).
GRID_NOTE = {
    "JSB_Chorales": "one frame per quarter note",
    "Nottingham": "one frame per eighth note",
    "MuseData": "one frame per eighth note",
    "Piano_midi": "one frame per eighth note",
}
SET_NOTE = {
    "JSB_Chorales": "J. S. Bach's four-part chorales",
    "Nottingham": "British and American folk tunes (melody and chords)",
    "MuseData": "orchestral and piano classical music from MuseData",
    "Piano_midi": "classical piano pieces from piano-midi.de",
}


def config_for(ck, steps_per_quarter):
    cfg = ck["cfg"]
    n = cfg["visible"]
    return {
        "format": "reprise-model",
        "version": 1,
        "kind": "music-nade",
        "weight_format": "f32",
        "layers": [
            {"type": "lstm", "name": "lstm", "input_size": n, "hidden_size": cfg["lstm_hidden"],
             "num_layers": cfg["lstm_layers"]},
            {"type": "nade", "name": "nade", "visible": n, "hidden": cfg["nade_hidden"],
             "cond_size": cfg["lstm_hidden"]},
        ],
        "music": {
            "encoding": ck["encoding"],
            "low_note": ck["low_note"],
            "keys": ck["keys"],
            "steps_per_quarter": steps_per_quarter,
            "input": "previous-frame",
        },
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="best.pt (or ckpt.pt) written by train.py")
    p.add_argument("outdir")
    p.add_argument("--steps-per-quarter", type=int, help="frames per quarter note (default: the set's grid)")
    p.add_argument("--data-note", default=None, help="text for the model card's data section")
    p.add_argument("--note", default="", help="extra text for the model card's training section")
    p.add_argument("--skip-check", action="store_true", help="do not recompute valid NLL from the export")
    args = p.parse_args()

    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if "cfg" not in ck:  # a resumable ckpt.pt: rebuild the pieces export needs
        raise SystemExit("export needs best.pt (written by train.py whenever valid improves)")
    name = ck["name"]
    spq = args.steps_per_quarter or ck.get("steps_per_quarter") or STEPS_PER_QUARTER.get(name)
    if spq is None:
        spq = 2 if name in GRID_NOTE else None
    if spq is None:
        raise SystemExit("unknown grid: pass --steps-per-quarter")

    os.makedirs(args.outdir, exist_ok=True)
    cfg = config_for(ck, spq)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in ck["model"].items()}
    # Exactly the tensors the config names, nothing else.
    expected = set()
    for layer in cfg["layers"]:
        nm = layer["name"]
        if layer["type"] == "lstm":
            for k in range(layer["num_layers"]):
                expected |= {f"{nm}.weight_ih_l{k}", f"{nm}.weight_hh_l{k}", f"{nm}.bias_ih_l{k}", f"{nm}.bias_hh_l{k}"}
        elif layer["type"] == "nade":
            expected |= {f"{nm}.W", f"{nm}.V", f"{nm}.b_proj.weight", f"{nm}.b_proj.bias",
                         f"{nm}.c_proj.weight", f"{nm}.c_proj.bias"}
    if set(tensors) != expected:
        raise SystemExit(f"checkpoint tensors {sorted(tensors)} differ from the config's {sorted(expected)}")
    with open(os.path.join(args.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_file(tensors, os.path.join(args.outdir, "model.safetensors"))
    n_params = sum(t.numel() for t in tensors.values())

    # Recompute the valid figure from the exported files with the independent reference.
    data_path = ck["data"]
    if not os.path.isabs(data_path) and not os.path.exists(data_path):
        data_path = os.path.join(HERE, "..", "data", "polyphonic", name + ".json")
    ref_nll, ref_frames = None, None
    if not args.skip_check:
        rcfg, rt = reference.load_model(args.outdir)
        doc = load_json(data_path)
        pieces = [reference.encode(pc, rcfg["music"]) for pc in doc["valid"]]
        with torch.no_grad():
            ref_nll, ref_frames = reference.split_nll(rcfg, rt, [pc for pc in pieces if len(pc)])
        diff = abs(ref_nll - ck["valid_nll"])
        print(f"valid nll: training {ck['valid_nll']:.6f}, reference {ref_nll:.6f} (diff {diff:.2e}), frames {ref_frames}")
        if diff > 1e-3 or ref_frames != ck["valid_frames"]:
            raise SystemExit("the exported model does not reproduce the training figure")

    a = ck["args"]
    hist = ck.get("history", [])
    total_min = ck.get("total_minutes", ck.get("train_minutes"))
    if args.data_note is None and name == "default":
        doc = load_json(data_path)
        per = {}
        for split in ("train", "valid"):
            for ident, pc in zip(doc[split + "_ids"], doc[split]):
                c = per.setdefault(ident.split("/")[0], [0, 0, 0])
                c[0 if split == "train" else 1] += 1
                c[2] += len(pc)
        args.data_note = (
            "music21's bundled corpus (public domain), prepared by `music/prepare_default.py` into "
            "`models/training/data/default/default.json.gz`: "
            + "; ".join(f"{src} {tr} train + {va} valid pieces ({fr} frames)" for src, (tr, va, fr) in sorted(per.items()))
            + ". Sixteenth-note grid (4 frames per quarter note), `onset-roll` encoding (per key: sounding, onset), "
            "pieces in their written keys; training transposes each chunk at random. One piece in 20 is held out as "
            "the valid split (by the MD5 of its identifier). The Bach chorales overlap the JSB Chorales test split: "
            "this is the continuation model for DAW seeds, not a benchmark model.")
    data_note = args.data_note or (
        f"{SET_NOTE.get(name, name)}: the train split of the {name} set of Boulanger-Lewandowski, Bengio & "
        f"Vincent (ICML 2012), `models/training/data/polyphonic/{name}.json`; early stopping on its valid "
        f"split. Grid: {GRID_NOTE.get(name, f'{spq} frames per quarter note')}, and the pieces transposed to "
        f"C major or C minor, as the data set's authors describe their sampling.")
    lines = [
        f"# music-{os.path.basename(os.path.normpath(args.outdir)).removeprefix('music-')}",
        "",
        "LSTM-NADE music model for Reprise (`kind: music-nade`, see docs/model-format.md): an LSTM over "
        "piano-roll frames whose input at frame t is frame t-1 (zeros at t = 0), and a NADE output layer "
        "that models the notes of each frame jointly, in key order from the lowest.",
        "",
        "## Data",
        "",
        data_note,
        "",
        "## Architecture",
        "",
        f"- encoding `{ck['encoding']}`, {ck['keys']} keys from MIDI note {ck['low_note']}, "
        f"N = {cfg['layers'][1]['visible']} binary variables per frame, {spq} frame(s) per quarter note",
        f"- LSTM: {cfg['layers'][0]['num_layers']} layer(s) x {cfg['layers'][0]['hidden_size']} units",
        f"- NADE: {cfg['layers'][1]['hidden']} hidden units, conditioned on the top LSTM output "
        "through `b_proj` and `c_proj`",
        f"- parameters: {n_params:,} (F32, {os.path.getsize(os.path.join(args.outdir, 'model.safetensors')) / 1e6:.1f} MB)",
        "",
        "## Validation",
        "",
        "Negative log-likelihood per frame (natural log), the mean over all frames of all valid pieces of "
        "-log p(frame | previous frames), each piece from a zero state (the benchmark's definition):",
        "",
        f"| split | NLL per frame | frames |",
        f"|---|---|---|",
        f"| valid | {ck['valid_nll']:.4f} | {ck['valid_frames']} |",
        "",
    ]
    if ref_nll is not None:
        lines += [f"`nll.py` recomputes {ref_nll:.4f} from the exported files (float64 reference).", ""]
    lines += [
        "These are validation figures: the valid split chose the epoch (early stopping) and the settings. "
        "The test split was not used.",
        "",
        "## Training",
        "",
        f"- command (in `models/training/`): `.venv/bin/python music/{ck['command']}`",
        f"- settings: Adam lr {a['lr']}, batch {a['batch']} chunks of up to {a['seq_len']} frames"
        + (f" ({a['epoch_chunks']} random chunks per epoch)" if a.get("epoch_chunks") else "")
        + f", dropout {a['dropout']}, gradient-norm clip {a['clip']}, "
        + (f"random transposition +-{a['transpose']} semitones, " if a["transpose"] else "no transposition, ")
        + f"seed {a['seed']}; learning rate halved after 3 epochs without valid improvement",
        f"- best epoch {ck['epoch']} of {len(hist)}; stopped by {ck.get('stop_reason', 'n/a')}",
        "- valid NLL per frame by epoch: " + ", ".join(
            f"{h['epoch']}: {h['valid_nll']:.3f}" for h in hist
            if h["epoch"] % max(1, len(hist) // 12) == 0 or h["epoch"] in (1, ck["epoch"], len(hist))),
        f"- training time: {ck.get('train_minutes', 0):.1f} min to the best epoch, "
        f"{total_min:.1f} min in all, on {ck.get('hardware', 'n/a')} (PyTorch {ck.get('torch', 'n/a')})",
        f"- exported {datetime.date.today().isoformat()} with `music/export.py`",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    with open(os.path.join(args.outdir, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.outdir}: {n_params} parameters, valid nll {ck['valid_nll']:.4f}")


if __name__ == "__main__":
    main()
