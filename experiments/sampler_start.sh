#!/usr/bin/env bash
# Where each frame starts and how hard it is guided (experiments/LOG.md entry 23): v7's weights (the default model
# before this study) under start levels 5 / 6.5 / 8 and action guidance 1 (none: one network row per step) to 3.5;
# the door / pickup shares and the approach gains on 64 first-person worlds per setting
# (experiments.sampler_actions), still@1/8/20 on 32 (experiments.sampler_still), then the issue's floors for the
# chosen setting on v7; and v7 trained 70 minutes more with its own recipe (phase 8 of
# world_model/recipes/train_default.sh; needs its recordings under runs/data/base and runs/data/test), on the floors.
# Usage: bash experiments/sampler_start.sh [probe|floors|polish|all]   (repository root, in the project's venv)
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
if [[ $stage == polish || $stage == all ]]; then
  genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* --autoencoder runs/candidates/v7 \
    --init-from runs/candidates/v7 --preset default --out runs/train/polish3_fp_end --steps 100000 \
    --time-budget-minutes 70 --batch-size 8 --lr 1.5e-4 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 \
    --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2 --threads 1 \
    --memory --memory-turns-only
  genie-train export --dynamics runs/train/polish3_fp_end --out runs/candidates/polish3 --context-sigma 0.01 \
    --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
  bash experiments/measure_floors.sh runs/candidates/polish3 polish3 "$out"
fi
