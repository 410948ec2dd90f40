#!/usr/bin/env bash
# Short episodes padded into training (experiments/LOG.md entry 20): variants of entry 19's ft_pad, each v6
# (runs/candidates/v6 of world_model/recipes/train_default.sh) fine-tuned for 45 minutes on one thread with phase 5's
# settings, two arms side by side (one core each), then measured beside v6 in both views (consistency suite, 32 unseen
# worlds per view):
#   end:     --pad-short-episodes --pad-at end: the short episode from its first frame, as a rollout from a prompt,
#            then copies of its last frame, drawn as often as ft_pad's (every recorded frame about equally likely);
#   w4:      --pad-short-episodes --pad-weight 4: ft_pad's front padding, drawn 4 times as often as another window
#            instead of 17;
#   control: no padding (phase 5's recipe continued): what fine-tuning v6 for 45 minutes does by itself;
#   lr5e-5:  ft_pad's padding at a third of its peak learning rate.
# First-person-only arms (--pad-views first_person: the top-down short episodes left out; LOG entry 21):
#   fp_end:    --pad-at end, the first-person short episodes only;
#   fp_end_w4: the same, each padded window drawn 4 times as often as another instead of 17.
# (Entry 20's "fp" arm was fp_end's flags without --pad-at end, on two threads for 28 minutes.)
# Stage "floors": the 64 first-person worlds of the floors and the 32 top-down worlds of the suite, per arm (v6's are
# results/cache_refresh/consistency_64_fp_v6.json and benchmarks/results/consistency.json).
# Usage: bash experiments/pad_variants.sh [train|export|suite|floors|all] [ARM ...]   (default arms: end w4)
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
shift || true
arms=("$@")
(( ${#arms[@]} )) || arms=(end w4)
declare -A flags=([end]="--pad-short-episodes --pad-at end --lr 1.5e-4" [w4]="--pad-short-episodes --pad-weight 4 --lr 1.5e-4"
                  [control]="--lr 1.5e-4" [lr5e-5]="--pad-short-episodes --lr 5e-5"
                  [fp_end]="--pad-short-episodes --pad-views first_person --pad-at end --lr 1.5e-4"
                  [fp_end_w4]="--pad-short-episodes --pad-views first_person --pad-at end --pad-weight 4 --lr 1.5e-4")
for arm in "${arms[@]}"; do
  [[ -v "flags[$arm]" ]] || { echo "unknown arm '$arm': choose from ${!flags[*]}" >&2; exit 2; }
done
export OMP_WAIT_POLICY=PASSIVE
out=experiments/results/pad_variants
mkdir -p "$out"
if [[ $stage == train || $stage == all ]]; then
  for arm in "${arms[@]}"; do
    mkdir -p "runs/train/ft_pad_$arm"
    # the same recordings and autoencoder as entry 19's run: its latent cache is reused (its key checks that)
    if [[ -f runs/train/ft_pad/latents.safetensors && ! -e runs/train/ft_pad_$arm/latents.safetensors ]]; then
      ln runs/train/ft_pad/latents.safetensors "runs/train/ft_pad_$arm/latents.safetensors"
    fi
    # shellcheck disable=SC2086
    genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* --autoencoder runs/candidates/v5 \
      --init-from runs/candidates/v6 --preset default --out "runs/train/ft_pad_$arm" --steps 100000 \
      --time-budget-minutes 45 --batch-size 8 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 \
      --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2 \
      --threads 1 --memory --memory-turns-only ${flags[$arm]} > "runs/train/ft_pad_$arm.log" 2>&1 &
  done
  wait
fi
if [[ $stage == export || $stage == all ]]; then
  for arm in "${arms[@]}"; do
    genie-train export --dynamics "runs/train/ft_pad_$arm" --out "runs/candidates/ft_pad_$arm" --context-sigma 0.01 \
      --num-steps 3 --sigma-min 0.1 --guidance-min-sigma 1.0 --cache-refresh 4
  done
fi
if [[ $stage == suite || $stage == all ]]; then
  for arm in "${arms[@]}"; do
    python -m benchmarks.consistency --model "runs/candidates/ft_pad_$arm" --preset default --threads 1 \
      --out "$out/consistency_ft_pad_$arm.json" --sheets "runs/sheets/ft_pad_$arm" > "runs/sheets/suite_ft_pad_$arm.log" 2>&1 &
  done
  wait
fi
if [[ $stage == floors ]]; then
  for arm in "${arms[@]}"; do
    bash experiments/measure_floors.sh "runs/candidates/ft_pad_$arm" "ft_pad_$arm" "$out" &
  done
  wait
fi
