#!/usr/bin/env bash
# The decoder alone fine-tuned (experiments/LOG.md entry 24): v7's autoencoder decoder trained 12 minutes more on one
# thread, with the loss tilted towards high-contrast pixels (--detail-weight 4) and without (0, the same L1 + MSE the
# autoencoder was trained with: the equal-time control); the two arms ran side by side on the 2-core machine. Then
# what the top-down view keeps of the agent and the objects (benchmarks.top_down_objects) for v7 and both arms.
# Needs the recordings of world_model/recipes/train_default.sh phase 6 (runs/data/base, runs/data/test).
# Usage: bash experiments/decoder_finetune.sh          (repository root, in the project's venv)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
out=experiments/results/decoder
mkdir -p "$out" runs/candidates
[[ -f runs/candidates/v7/config.json ]] || cp -r world_model/checkpoints/default runs/candidates/v7
for w in 0 4; do
  python -m experiments.decoder_finetune --model runs/candidates/v7 --data runs/data/base/* --eval-data runs/data/test/* \
    --minutes 12 --detail-weight "$w" --save-minutes 4 --out "runs/candidates/v7_dec_w$w" > "runs/candidates/dec_w$w.log" 2>&1 &
done
wait
for w in 0 4; do cp "runs/candidates/v7_dec_w$w/decoder_finetune.json" "$out/dec_w$w.json"; done
for m in v7 v7_dec_w0 v7_dec_w4; do
  python -m benchmarks.top_down_objects --model "runs/candidates/$m" --worlds 8 --steps 8 \
    --out "$out/top_down_objects_${m#v7_}.json" > /dev/null
done
