#!/usr/bin/env bash
# Train the RGB storage model on a GPU machine in one call of at most 9 minutes, from the crop pack.
#
# Here (once):  .venv/bin/python scripts/make_crop_pack.py     -> packs/rgb-photos (under 60 MB, git-ignored)
# There:        the device tool, command "bash scripts/gpu_train_storage.sh", carry ["packs/rgb-photos"], timeout_s 600.
#               It needs a Python with torch and the project's dependencies; the project itself is installed
#               without dependencies if it is not importable yet (that machine reaches no package index).
# Writes to $OUT (default runs/gpu-out): rgb-storage-gpu.safetensors, log.jsonl, summary.json, curves.png.
# The time budget for the main run, BUDGET_S (default 360 s), leaves room for start-up, the rate measurement and export.
# PACK, RUN and PYTHON may be set too (the tests run it on a small pack of their own).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-out}
BUDGET_S=${BUDGET_S:-360}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
RECIPE=recipes/rgb-storage-gpu.toml
RUN=${RUN:-runs/rgb-storage-gpu}
PACK=${PACK:-packs/rgb-photos}
WORKERS=$(( $(nproc) < 8 ? $(nproc) : 8 ))  # data loader processes (the recipe's 8 where the cores allow)
mkdir -p "$OUT"

if [ ! -d "$PACK" ]; then
  echo "gpu_train_storage: $PACK is missing; build it with scripts/make_crop_pack.py and pass it with carry" >&2
  exit 2
fi
"$PY" -c "import wavecodec" 2>/dev/null || "$PY" -m pip install -q --no-deps --no-build-isolation -e . >&2
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (no GPU found)')"

# 1. the rate: a short run (PCA start and 100 steps), its last logged steps/s; an interrupted call's run keeps its steps
if [ -f "$RUN/checkpoint.safetensors" ] && [ -f "$RUN.steps" ]; then
  STEPS=$(cat "$RUN.steps")
  RESUME=--resume
else
  rm -rf "$RUN" "$RUN-rate"
  "$PY" -m wavecodec.cli train --config "$RECIPE" --run-dir "$RUN-rate" --set steps=100 --set val_every=100000 --set "workers=$WORKERS" --set "train_data=$PACK" --quiet
  STEPS=$("$PY" - "$RUN-rate/log.jsonl" "$BUDGET_S" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rate = [r for r in rows if r["kind"] == "train"][-1]["steps_per_s"]
print(max(100, int(rate * float(sys.argv[2]))))
PY
)
  echo "$STEPS" > "$RUN.steps"
  rm -rf "$RUN-rate"
  RESUME=
fi
echo "training $STEPS steps"

# 2. the run (resumed after an interruption)
"$PY" -m wavecodec.cli train --config "$RECIPE" --run-dir "$RUN" --set "steps=$STEPS" --set "workers=$WORKERS" --set "train_data=$PACK" $RESUME --quiet
"$PY" -m wavecodec.cli export "$RUN" -o "$OUT/rgb-storage-gpu.safetensors" --name rgb-storage-gpu --fit-batches 32 --quiet
cp "$RUN/log.jsonl" "$RUN/summary.json" "$OUT/"
[ -f "$RUN/curves.png" ] && cp "$RUN/curves.png" "$OUT/"
echo "wrote $OUT/rgb-storage-gpu.safetensors"
