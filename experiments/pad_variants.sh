#!/usr/bin/env bash
# Short episodes padded into training, two variants of entry 19's ft_pad (experiments/LOG.md entry 20), each v6
# (runs/candidates/v6 of world_model/recipes/train_default.sh) fine-tuned for 45 minutes on one thread with phase 5's
# settings plus --pad-short-episodes, the two arms side by side (one core each):
#   end: the short episode from its first frame, as a rollout from a prompt, then copies of its last frame
#        (--pad-at end), drawn as often as ft_pad's (every recorded frame about equally likely);
#   w4:  ft_pad's front padding, drawn 4 times as often as another window instead of 17 (--pad-weight 4).
# Then both measured beside v6 in both views (consistency suite, 32 unseen worlds per view) and on the 64 first-person
# worlds of the issue's floors.
# Usage: bash experiments/pad_variants.sh [train|export|suite|floors|all]
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
export OMP_WAIT_POLICY=PASSIVE
out=experiments/results/pad_variants
mkdir -p "$out"
declare -A flags=([end]="--pad-at end" [w4]="--pad-weight 4")
if [[ $stage == train || $stage == all ]]; then
  for arm in end w4; do
    mkdir -p "runs/train/ft_pad_$arm"
    # the same recordings and autoencoder as entry 19's run: its latent cache is reused (its key checks that)
    if [[ -f runs/train/ft_pad/latents.safetensors && ! -e runs/train/ft_pad_$arm/latents.safetensors ]]; then
      ln runs/train/ft_pad/latents.safetensors "runs/train/ft_pad_$arm/latents.safetensors"
    fi
    # shellcheck disable=SC2086
    genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* --autoencoder runs/candidates/v5 \
      --init-from runs/candidates/v6 --preset default --out "runs/train/ft_pad_$arm" --steps 100000 \
      --time-budget-minutes 45 --batch-size 8 --lr 1.5e-4 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 \
      --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2 \
      --threads 1 --memory --memory-turns-only --pad-short-episodes ${flags[$arm]} > "runs/train/ft_pad_$arm.log" 2>&1 &
  done
  wait
fi
if [[ $stage == export || $stage == all ]]; then
  for arm in end w4; do
    genie-train export --dynamics "runs/train/ft_pad_$arm" --out "runs/candidates/ft_pad_$arm" --context-sigma 0.01 \
      --num-steps 3 --sigma-min 0.1 --guidance-min-sigma 1.0 --cache-refresh 4
  done
fi
if [[ $stage == suite || $stage == all ]]; then
  for arm in end w4; do
    python -m benchmarks.consistency --model "runs/candidates/ft_pad_$arm" --preset default --threads 1 \
      --out "$out/consistency_ft_pad_$arm.json" --sheets "runs/sheets/ft_pad_$arm" > "$out/suite_$arm.log" 2>&1 &
  done
  wait
fi
if [[ $stage == floors || $stage == all ]]; then  # the 64 first-person worlds of the issue's floors
  for arm in end w4; do
    python -m benchmarks.consistency --model "runs/candidates/ft_pad_$arm" --preset default --worlds 64 \
      --views first_person --threads 1 --out "$out/consistency_64_fp_ft_pad_$arm.json" > "$out/floors_$arm.log" 2>&1 &
  done
  wait
fi
