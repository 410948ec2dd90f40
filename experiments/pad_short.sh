#!/usr/bin/env bash
# Short episodes padded into training (experiments/LOG.md entry 19): v6 (runs/candidates/v6 of
# world_model/recipes/train_default.sh) fine-tuned for 45 minutes on one thread with phase 5's settings plus
# --pad-short-episodes (the bot's ~10-frame solved episodes, left out of every earlier phase, padded under noop), then
# measured beside v6: the consistency suite (32 unseen worlds per view) and the judge on the held-out episodes dreamed
# by it and on its one-step predictions of their success frames (benchmarks.judge_on_dreams).
# Usage: bash experiments/pad_short.sh [train|export|suite|judge|floors|all]
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
export OMP_WAIT_POLICY=PASSIVE
out=experiments/results/pad_short
mkdir -p "$out"
if [[ $stage == train || $stage == all ]]; then
  genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* --autoencoder runs/candidates/v5 \
    --init-from runs/candidates/v6 --preset default --out runs/train/ft_pad --steps 100000 --time-budget-minutes 45 \
    --batch-size 8 --lr 1.5e-4 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 \
    --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2 --threads 1 --memory \
    --memory-turns-only --pad-short-episodes
fi
if [[ $stage == export || $stage == all ]]; then
  genie-train export --dynamics runs/train/ft_pad --out runs/candidates/ft_pad --context-sigma 0.01 --num-steps 3 \
    --sigma-min 0.1 --guidance-min-sigma 1.0 --cache-refresh 4
fi
if [[ $stage == suite || $stage == all ]]; then
  python -m benchmarks.consistency --model runs/candidates/ft_pad --preset default --threads 2 \
    --out "$out/consistency_ft_pad.json" --sheets runs/sheets/ft_pad
fi
if [[ $stage == judge || $stage == all ]]; then  # the held-out episodes dreamed by the candidate, then the judge
  for l in runs/data/test/*; do
    genie-data dream --data "$l" --out "runs/dream/test_ft_pad/$(basename "$l")" --model runs/candidates/ft_pad --quiet
  done
  python -m benchmarks.judge_on_dreams --model runs/candidates/ft_pad --judge default --recorded runs/data/test \
    --dreamed runs/dream/test_ft_pad --out "$out/judge_on_dreams_ft_pad.json"
fi
if [[ $stage == floors || $stage == all ]]; then  # the 64 first-person worlds of the issue's floors
  python -m benchmarks.consistency --model runs/candidates/ft_pad --preset default --worlds 64 --views first_person \
    --threads 2 --out "$out/consistency_64_fp_ft_pad.json"
fi
