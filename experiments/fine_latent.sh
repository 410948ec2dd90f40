#!/usr/bin/env bash
# Study (experiments/LOG.md entry 34): where should the autoencoder's latent numbers go, into space or into channels?
# The shipped autoencoder's 16 x 16 x 4 latent loses objects of 2-3 pixels (the README demo's far key, ball and box,
# the top-down agent's heading; entries 24, 27, 32), and entry 27's 8 channels (16 x 16 x 8) did not bring the demo's
# objects back. Two autoencoders trained from scratch with the same latent size (4,096 numbers a frame, 3x
# compression of 64 x 64 x 3), beside the shipped geometry trained the same way, three side by side (two threads in
# all), the same recording, budget and loss as the shipped one's (world_model/recipes/train_default.sh phase 2:
# L1 + MSE, lr 1e-3, batch 32):
#   fine   `--preset fine`: a 32 x 32 x 4 latent (one resolution level after the 2x2 pixel patch; dynamics would
#          read it in 4 x 4 patches, 64 tokens a frame as today);
#   d16    `--preset default --latent-channels 16`: the shipped geometry with 4x the channels, 16 x 16 x 16;
#   d4     `--preset default`: the shipped autoencoder's own geometry (16 x 16 x 4) on this budget, the control.
# Measured beside the shipped autoencoder (4,000 steps of train_default.sh's recording): frame and detail PSNR
# per view and the counterfactual ceiling on the suite's worlds (experiments.wide_latent measure), and what the
# top-down view keeps of the agent, its heading and the objects (benchmarks.top_down_objects).
# From the repository root, in the project's venv:
#   bash experiments/fine_latent.sh data | ae | measure   (or `all`)
# AE_MINUTES (default 40) sets each arm's budget. Results: experiments/results/fine_latent/.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
AE_MINUTES=${AE_MINUTES:-40}
R=experiments/results/fine_latent
STAGE=${1:-all}
mkdir -p "$R" runs/logs

if [[ $STAGE == data || $STAGE == all ]]; then
  # entry 26's recording (40% top-down, ~4 minutes) and entry 27's held-out frames (~1 minute)
  [ -d runs/data/td ] || bash experiments/td_finetune.sh data
  [ -d runs/data/td_test ] || bash experiments/wide_latent.sh data
fi

if [[ $STAGE == ae || $STAGE == all ]]; then
  declare -A ARGS=([fine]="--preset fine" [d16]="--preset default --latent-channels 16" [d4]="--preset default")
  for arm in fine d16 d4; do
    OMP_NUM_THREADS=1 genie-train autoencoder --data runs/data/td/* --eval-data runs/data/td_test/* ${ARGS[$arm]} \
      --out "runs/train/ae_$arm" --steps 100000 --time-budget-minutes "$AE_MINUTES" --checkpoint-every 250 \
      --checkpoint-minutes 5 --keep-checkpoints 2 --log-every 50 --threads 1 > "runs/logs/ae_$arm.log" 2>&1 &
  done
  wait
fi

if [[ $STAGE == measure || $STAGE == all ]]; then
  python -m experiments.wide_latent measure --autoencoder default runs/train/ae_fine runs/train/ae_d16 runs/train/ae_d4 \
    --eval-data runs/data/td_test/* --worlds 64 --threads 2 --out "$R/measure.json" --sheet "$R/reconstructions.png"
  for m in default runs/train/ae_fine runs/train/ae_d16 runs/train/ae_d4; do
    python -m benchmarks.top_down_objects --model "$m" --out "$R/top_down_objects_$(basename "$m").json"
  done
fi
