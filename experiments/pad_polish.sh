#!/usr/bin/env bash
# A polish without padding after first-person padding (experiments/LOG.md entry 21): the first-person-only padded
# candidates (pad_variants.sh's fp arms: doors open, still scenes drift ~1 dB more than v6) fine-tuned 30 more minutes
# on one thread with phase 5's recipe and no padding, two arms side by side (one core each), then measured on the 64
# first-person floor worlds and the suite's 32 top-down worlds:
#   fp:     from runs/candidates/ft_pad_fp (front padding; LOG entry 20's command);
#   fp_end: from runs/candidates/ft_pad_fp_end (bash experiments/pad_variants.sh train export fp_end).
# Stage "judge" (not in "all"): the held-out episodes re-played inside the polished model and the shipped success judge
# on them (as world_model/recipes/train_default.sh measures the shipped model: benchmarks/results/judge_on_dreams.json).
# Usage: bash experiments/pad_polish.sh [train|export|floors|judge|all] [ARM ...]   (default arms: fp fp_end)
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
shift || true
arms=("$@")
(( ${#arms[@]} )) || arms=(fp fp_end)
for arm in "${arms[@]}"; do
  [[ $arm == fp || $arm == fp_end ]] || { echo "unknown arm '$arm': choose from fp fp_end" >&2; exit 2; }
  [[ -f runs/candidates/ft_pad_$arm/model.safetensors ]] || {
    echo "runs/candidates/ft_pad_$arm is missing: train it first (see experiments/pad_variants.sh)" >&2; exit 2; }
done
export OMP_WAIT_POLICY=PASSIVE
out=experiments/results/pad_variants
mkdir -p "$out"
if [[ $stage == train || $stage == all ]]; then
  for arm in "${arms[@]}"; do
    mkdir -p "runs/train/polish_$arm"
    if [[ -f runs/train/ft_pad/latents.safetensors && ! -e runs/train/polish_$arm/latents.safetensors ]]; then
      ln runs/train/ft_pad/latents.safetensors "runs/train/polish_$arm/latents.safetensors"  # same data, same key
    fi
    genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* --autoencoder runs/candidates/v5 \
      --init-from "runs/candidates/ft_pad_$arm" --preset default --out "runs/train/polish_$arm" --steps 100000 \
      --time-budget-minutes 30 --batch-size 8 --lr 1.5e-4 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 \
      --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2 \
      --threads 1 --memory --memory-turns-only > "runs/train/polish_$arm.log" 2>&1 &
  done
  wait
fi
if [[ $stage == export || $stage == all ]]; then
  for arm in "${arms[@]}"; do
    genie-train export --dynamics "runs/train/polish_$arm" --out "runs/candidates/polish_$arm" --context-sigma 0.01 \
      --num-steps 3 --sigma-min 0.1 --guidance-min-sigma 1.0 --cache-refresh 4
  done
fi
if [[ $stage == floors || $stage == all ]]; then
  for arm in "${arms[@]}"; do
    bash experiments/measure_floors.sh "runs/candidates/polish_$arm" "polish_$arm" "$out" &
  done
  wait
fi
if [[ $stage == judge ]]; then
  for arm in "${arms[@]}"; do
    for lvl in GoToLocal GoToObj GoToRedBall KeyCorridorS3R1 OpenDoor OpenRedDoor OpenTwoDoors PickupLoc PutNextLocal UnlockLocal; do
      genie-data dream --data "runs/data/test/$lvl" --model "runs/candidates/polish_$arm" \
        --out "runs/dream/test_polish_$arm/$lvl" --quiet
    done
    python -m benchmarks.judge_on_dreams --judge default --model "runs/candidates/polish_$arm" --recorded runs/data/test \
      --dreamed "runs/dream/test_polish_$arm" --out "$out/judge_on_dreams_polish_$arm.json"
  done
fi
