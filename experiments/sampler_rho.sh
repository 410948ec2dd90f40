#!/usr/bin/env bash
# The sampler's noise-level spacing (experiments/LOG.md entry 22): v6's weights, 3 Euler steps 5 -> 0.1, the middle
# noise level set by rho (EDM's 7 puts it at 0.93, 3 at 1.28), against 4 steps; still@1/8/20 on 32 first-person
# worlds per setting, then the issue's floors (64 first-person worlds, the suite's 32 top-down ones) for the chosen
# settings, and for the polished padded candidate (experiments/pad_polish.sh, 45 minutes more) under rho 3 (v7), then
# v7 with each frame started at sigma 8 instead of 5.
# Usage: bash experiments/sampler_rho.sh [probe|export|floors|all]
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
export OMP_WAIT_POLICY=PASSIVE
out=experiments/results/sampler_rho
mkdir -p "$out"
if [[ $stage == probe || $stage == all ]]; then
  python -m experiments.sampler_still --model runs/candidates/v6 --settings default rho=3 rho=3,guidance_min_sigma=2 \
    rho=2,guidance_min_sigma=2 rho=4,guidance_min_sigma=2 rho=15 num_steps=4 num_steps=4,rho=3,guidance_min_sigma=2 \
    guidance=1.0 --out "$out/still_32.jsonl"
  # v7 (the default since this study) by the level each frame starts from
  python -m experiments.sampler_still --model default --settings default sigma_max=3.0 sigma_max=8.0 sigma_min=0.15 \
    sigma_min=0.07 sigma_max=12.0,guidance_min_sigma=3.0 sigma_max=20.0,guidance_min_sigma=5.0 sigma_max=8.0,rho=7.0 \
    --out "$out/still_32_v7.jsonl"
fi
if [[ $stage == export || $stage == all ]]; then
  genie-train export --dynamics runs/candidates/v6 --out runs/candidates/v6_rho3 --context-sigma 0.01 --num-steps 3 \
    --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
  genie-train export --dynamics runs/candidates/v6 --out runs/candidates/v6_s4 --context-sigma 0.01 --num-steps 4 \
    --sigma-min 0.1 --guidance-min-sigma 1.0 --cache-refresh 4
  # polish_fp_end (experiments/pad_polish.sh) trained 45 minutes more on one thread, without padding
  if [[ ! -f runs/train/polish2_fp_end/run.json ]]; then
    mkdir -p runs/train/polish2_fp_end
    genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* --autoencoder runs/candidates/v5 \
      --init-from runs/train/polish_fp_end --preset default --out runs/train/polish2_fp_end --steps 100000 \
      --time-budget-minutes 45 --batch-size 8 --lr 1.5e-4 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 \
      --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2 \
      --threads 1 --memory --memory-turns-only > runs/train/polish2_fp_end.log 2>&1
  fi
  genie-train export --dynamics runs/train/polish2_fp_end --out runs/candidates/polish2_fp_end_rho3 --context-sigma 0.01 \
    --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
  genie-train export --dynamics world_model/checkpoints/default --out runs/candidates/v7_smax8 --context-sigma 0.01 \
    --num-steps 3 --sigma-min 0.1 --sigma-max 8 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
fi
if [[ $stage == floors || $stage == all ]]; then
  for name in v6_rho3 v6_s4 polish2_fp_end_rho3 v7_smax8; do
    bash experiments/measure_floors.sh "runs/candidates/$name" "$name" "$out"
  done
fi
