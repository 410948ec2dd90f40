#!/usr/bin/env bash
# Where each frame starts and how hard it is guided (experiments/LOG.md entry 23): v7's weights (the default model
# before this study) under start levels 5 / 6.5 / 8 and action guidance 1 (none: one network row per step) to 3.5;
# the door / pickup shares and the approach gains on 64 first-person worlds per setting
# (experiments.sampler_actions), still@1/8/20 on 32 (experiments.sampler_still), then the issue's floors for the
# chosen setting on v7 and on v7 trained 70 minutes more (runs/train/polish3_fp_end, world_model/recipes/train_default.sh
# phase 9).
# Usage: bash experiments/sampler_start.sh [probe|floors|all]   (from the repository root, in the project's venv)
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
out=experiments/results/sampler_start
mkdir -p "$out" runs/candidates
[[ -f runs/candidates/v7/config.json ]] || cp -r world_model/checkpoints/default runs/candidates/v7
if [[ $stage == probe || $stage == all ]]; then
  python -m experiments.sampler_actions --model runs/candidates/v7 --settings default sigma_max=8 \
    sigma_max=8,guidance=2.5 --worlds 64 --noise-seeds 0 1 --out "$out/actions_64_v7.jsonl"
  python -m experiments.sampler_actions --model runs/candidates/v7 --settings sigma_max=8,guidance=1.0 \
    sigma_max=5,guidance=1.0 sigma_max=8,guidance=1.25 sigma_max=5,guidance=2.5 sigma_max=8,guidance=1.0,num_steps=4 \
    sigma_max=5,guidance=1.0,num_steps=4 sigma_max=6.5,guidance=1.0 --worlds 64 --out "$out/actions_64_v7.jsonl"
  python -m experiments.sampler_still --model runs/candidates/v7 --settings default guidance=1.0 \
    sigma_max=8,guidance=1.0 sigma_max=6.5,guidance=1.0 sigma_max=8,guidance=1.0,num_steps=4 \
    sigma_max=5,guidance=1.0,num_steps=4 --worlds 32 --out "$out/still_32_v7.jsonl"
fi
if [[ $stage == floors || $stage == all ]]; then
  genie-train export --dynamics runs/candidates/v7 --out runs/candidates/v7_s65g1 --context-sigma 0.01 --num-steps 3 \
    --sigma-min 0.1 --sigma-max 6.5 --rho 3 --guidance 1.0 --guidance-min-sigma 2.0 --cache-refresh 4
  bash experiments/measure_floors.sh runs/candidates/v7_s65g1 v7_s65g1 "$out"
fi
