#!/usr/bin/env bash
# Study (experiments/LOG.md entry 31): can a small dynamics model of the top-down view alone, trained from scratch,
# learn what top-down actions do (issue 16's top-down counterfactual floor, 0.9; v9 0.46), where fine-tuning the
# shared two-view model did not (entries 26-30)? The top-down view is fully observed, so its model needs a short
# context (4 frames: 320 tokens per window instead of 1,088), and the small preset (width 128, depth 4) costs about a
# sixth of the default's FLOPs per token. Two arms, side by side, one thread each, on entry 26's recording
# (`bash experiments/td_finetune.sh data`), its top-down episodes only:
#   sp_plain  the small preset from scratch, context 4, v9's recipe otherwise (context noise log-uniform in
#             [0.01, 0.1], EMA 0.998);
#   sp_ww     the same with entry 28's window-weighted loss (`--change-weight 4 --change-scope window`).
# Each is exported with v9's sampler and measured on the suite's 32 top-down worlds.
# From the repository root, in the project's venv:
#   bash experiments/td_specialist.sh train | export | measure [ARM ...]
# MINUTES (default 40) sets each arm's budget, THREADS (default 1) its torch threads.
# Results: experiments/results/td_specialist/.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
MINUTES=${MINUTES:-40}
THREADS=${THREADS:-1}
R=experiments/results/td_specialist
STAGE=${1:-all}; shift || true
ARMS=${*:-sp_plain sp_ww}
mkdir -p "$R" runs/logs

COMMON="--data runs/data/td/* --views top_down --autoencoder world_model/checkpoints/default --preset small
  --context-frames 4 --steps 1000000 --batch-size 32 --lr 3e-4 --warmup 200 --context-sigma 0.1
  --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 500 --checkpoint-minutes 5 --log-every 50
  --keep-checkpoints 2"
declare -A EXTRA=([sp_plain]="" [sp_ww]="--change-weight 4 --change-scope window")

if [[ $STAGE == train || $STAGE == all ]]; then
  # The latent cache of entry 26 (the whole recording, encoded by the shipped autoencoder) serves every arm.
  for arm in $ARMS; do
    mkdir -p "runs/train/$arm"
    [ -f "runs/train/$arm/latents.safetensors" ] || cp runs/train/td_encode/latents.safetensors "runs/train/$arm/"
    OMP_NUM_THREADS=$THREADS genie-train dynamics $COMMON ${EXTRA[$arm]} --out "runs/train/$arm" \
      --time-budget-minutes "$MINUTES" --threads "$THREADS" > "runs/logs/$arm.log" 2>&1 &
  done
  wait
fi

if [[ $STAGE == export || $STAGE == all ]]; then
  for arm in $ARMS; do
    genie-train export --dynamics "runs/train/$arm" --out "runs/candidates/$arm" --context-sigma 0.01 --num-steps 3 \
      --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 2
  done
fi

if [[ $STAGE == measure || $STAGE == all ]]; then
  for arm in $ARMS; do
    OMP_NUM_THREADS=$THREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --views top_down --threads "$THREADS" --out "$R/consistency_td_$arm.json" --sheets "runs/sheets/$arm" > /dev/null &
  done
  wait
fi
