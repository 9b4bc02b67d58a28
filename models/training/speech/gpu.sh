#!/usr/bin/env bash
# One command for a GPU machine (at most 10 minutes, at most 64 MiB of inputs): continues training from
# the packed checkpoint on the packed features, with feature-domain augmentation and SpecAugment on, and
# copies the checkpoints, the learning curve and the log to $OUT (8 files: last.pt and best.pt in parts
# of at most 15 MB, curve.jsonl, train.log).
#
# Prepare the pack on the CPU machine first (models/training/README.md, step "GPU"), e.g.
#   .venv/bin/python speech/pack.py speech/data/pack --max-mb 44 --step 0.8 --init ../speech-en \
#       --manifests '~/.cache/reprise/speech/manifests/kokoro-s*.jsonl' --wave-aug default --aug-share 0.6
# then run from the repository root with the pack carried (speech/data/ is ignored by git):
#   carry: models/training/speech/data/pack    command: bash models/training/speech/gpu.sh
# Extra arguments go to train.py (e.g. --lr 5e-4). MINUTES (default 7.5) is the training budget.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pack="${PACK:-$here/data/pack}"
out="${OUT:?set OUT to the folder that comes back}"
ck="$(mktemp -d)"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
python3 "$here/train.py" --init "$pack/init.pt" --pack "$pack" --device cuda --threads 8 \
    --minutes "${MINUTES:-7.5}" --batch-seconds 300 --lr 1e-3 --final-lr 3e-5 --warmup 300 --eval-minutes 2 \
    --log-every 200 --ckpt-dir "$ck" --split-mb 15 "$@" 2>&1 | tee "$out/train.log"
cp "$ck"/last.pt* "$ck"/curve.jsonl "$out"/
if [ -f "$ck/best.pt" ]; then cp "$ck"/best.pt* "$out"/; fi
ls -l "$out"
