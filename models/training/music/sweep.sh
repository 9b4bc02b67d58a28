#!/usr/bin/env bash
# Trains a few settings of every model in parallel (one GPU shared by all runs), keeps the best run
# of each model by valid NLL per frame and exports it to models/music-<name>/.
#   music/sweep.sh MINUTES [DEVICE] [PYTHON]      (run in models/training; RUNS=tag,tag to pick runs)
set -u
cd "$(dirname "$0")/.."
M=${1:?minutes}; DEV=${2:-cuda}; PY=${3:-.venv/bin/python}
declare -A PLAN=(
  [JSB_Chorales-a]="--set JSB_Chorales --dropout 0.5 --batch 8"
  [JSB_Chorales-b]="--set JSB_Chorales --dropout 0.5 --batch 8 --transpose 5"
  [JSB_Chorales-c]="--set JSB_Chorales --dropout 0.3 --batch 8"
  [JSB_Chorales-d]="--set JSB_Chorales --dropout 0.5 --batch 8 --input-dropout 0.1"
  [Nottingham-a]="--set Nottingham --dropout 0.3 --batch 16"
  [Nottingham-b]="--set Nottingham --dropout 0.5 --batch 16"
  [MuseData-a]="--set MuseData --dropout 0.3 --batch 16"
  [MuseData-b]="--set MuseData --dropout 0.5 --batch 16"
  [Piano_midi-a]="--set Piano_midi --dropout 0.5 --batch 8"
  [Piano_midi-b]="--set Piano_midi --dropout 0.3 --batch 8"
  [default-a]="--data data/default/default.json.gz --dropout 0.3 --batch 16 --transpose 6"
)
tags=${RUNS:-$(printf '%s\n' "${!PLAN[@]}" | sort | tr '\n' ,)}
for tag in ${tags//,/ }; do
  mkdir -p "runs/$tag"
  # shellcheck disable=SC2086
  $PY music/train.py ${PLAN[$tag]} --out "runs/$tag" --max-minutes "$M" --device "$DEV" > "runs/$tag/log.txt" 2>&1 &
done
wait
$PY - "$tags" <<'PY'
import json, os, subprocess, sys
dirs = {"JSB_Chorales": "music-jsb", "Nottingham": "music-nottingham", "MuseData": "music-musedata",
        "Piano_midi": "music-piano-midi", "default": "music-default"}
res = {}
open(os.path.join("runs", "chosen.txt"), "w").close()
for tag in sys.argv[1].strip(",").split(","):
    h = os.path.join("runs", tag, "history.json")
    if not os.path.exists(h):
        print(f"{tag}: no history (failed?)"); continue
    res[tag] = r = json.load(open(h))
    print(f"{tag}: best valid {r['best_valid_nll']:.4f} at epoch {r['best_epoch']} of {len(r['history'])} ({r['stop_reason']})")
default_note = ("music21's bundled corpus (public domain): the Essen folk song collection, O'Neill's Music of "
                "Ireland (1850), Ryan's Mammoth Collection and the Bach chorales, prepared by "
                "`music/prepare_default.py` into `data/default/default.json.gz` (sixteenth-note grid, onset-roll "
                "encoding, written keys; training transposes each chunk at random). One piece in 20 is held out "
                "as the valid split (by the MD5 of its identifier). The Bach chorales overlap the JSB Chorales "
                "test split: this is a continuation model, not a benchmark model.")
for name in sorted({t.rsplit("-", 1)[0] for t in res}):
    tags = sorted((t for t in res if t.rsplit("-", 1)[0] == name), key=lambda t: res[t]["best_valid_nll"])
    tag = tags[0]
    note = ""
    if len(tags) > 1:
        note = (f"Chosen on valid NLL among {len(tags)} settings trained side by side on one GPU "
                "(`music/sweep.sh`); the others: " + "; ".join(
                    f"`{' '.join(res[t]['command'].split()[1:])}` {res[t]['best_valid_nll']:.4f}" for t in tags[1:]))
    print(f"export {tag} -> ../{dirs[name]}")
    with open(os.path.join("runs", "chosen.txt"), "a") as f:
        f.write(f"{name} {tag} {dirs[name]}\n")
    cmd = [sys.executable, "music/export.py", os.path.join("runs", tag, "best.pt"), os.path.join("..", dirs[name]),
           "--skip-check", "--note", note]
    if name == "default":
        cmd += ["--data-note", default_note]
    subprocess.run(cmd, check=False)
PY
