#!/usr/bin/env bash
# Study (experiments/LOG.md entry 34): where should the autoencoder's latent numbers go, into space or into channels?
# The shipped autoencoder's 16 x 16 x 4 latent loses objects of 2-3 pixels (the README demo's far key, ball and box,
# the top-down agent's heading; entries 24, 27, 32), and entry 27's 8 channels (16 x 16 x 8) did not bring the demo's
# objects back. Two autoencoders trained from scratch with the same latent size (4,096 numbers a frame, 3x
# compression of 64 x 64 x 3), beside the shipped geometry trained the same way, three side by side (two threads in
# all), the same recording and budget, the shipped one's loss (world_model/recipes/train_default.sh phase 2:
# L1 + MSE, lr 1e-3, batch 32):
#   fine   `--preset fine`: a 32 x 32 x 4 latent (one resolution level after the 2x2 pixel patch; dynamics would
#          read it in 4 x 4 patches, 64 tokens a frame as today);
#   d16    `--preset default --latent-channels 16`: the shipped geometry with 4x the channels, 16 x 16 x 16;
#   d4     `--preset default`: the shipped autoencoder's own geometry (16 x 16 x 4) on this budget, the control.
# Measured beside the shipped autoencoder (4,000 steps of train_default.sh's recording): frame and detail PSNR
# per view and the counterfactual ceiling on the suite's worlds (experiments.wide_latent measure), and what the
# top-down view keeps of the agent, its heading and the objects (benchmarks.top_down_objects), and the README demo's
# true frames through each (experiments.demo_truth).
# From the repository root, in the project's venv:
#   bash experiments/fine_latent.sh data | ae | measure | dynamics | measure_dyn [ARM ...]   (or `all`)
# AE_MINUTES (default 40) sets each autoencoder's budget, MINUTES (default 40) each dynamics arm's.
# Results: experiments/results/fine_latent/.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
AE_MINUTES=${AE_MINUTES:-40}
MINUTES=${MINUTES:-40}
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
    python -m benchmarks.top_down_objects --model "$m" --out "$R/top_down_objects_$(basename "$m").json" > /dev/null
  done
  python -m experiments.demo_truth --autoencoder default runs/train/ae_fine runs/train/ae_d16 runs/train/ae_d4 \
    --out "$R/demo_truth.json" --sheet "$R/demo_truth.png" > /dev/null
fi

# Dynamics on each latent (the small preset from scratch, both views, side by side, one thread each, MINUTES each):
#   dyn_ship  the shipped autoencoder's 16 x 16 x 4 latent in 2 x 2 patches (64 tokens a frame);
#   dyn_fine  the fine autoencoder's 32 x 32 x 4 latent in 4 x 4 patches (64 tokens a frame);
#   dyn_fine_shift  dyn_fine with the training noise levels shifted by ln 2 (--p-mean 0.29) and the sampler's by 2x
#             (sigma 10 -> 0.2): a 4 x 4 patch of the finer latent keeps more signal at a given level (a follow-up,
#             `MINUTES=25 bash experiments/fine_latent.sh dynamics dyn_fine_shift`, alone on one thread);
#   dyn_ship25  dyn_ship on dyn_fine_shift's 25-minute budget (`MINUTES=25 ... dynamics dyn_ship25`), its control.
# The same tokens and FLOPs a step, the same windows; the held-out PSNR in the training logs is against the true
# frames (comparable across autoencoders), then the suite's small preset on both views.
DYN_COMMON="--data runs/data/td/* --eval-data runs/data/td_test/* --preset small --steps 1000000 --batch-size 8
  --lr 4e-4 --warmup 200 --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --view-conditioning
  --checkpoint-every 250 --checkpoint-minutes 5 --log-every 25 --keep-checkpoints 2"
declare -A DYN=([dyn_ship]="--autoencoder world_model/checkpoints/default"
  [dyn_fine]="--autoencoder runs/train/ae_fine --patch-size 4"
  [dyn_fine_shift]="--autoencoder runs/train/ae_fine --patch-size 4 --p-mean 0.29"
  [dyn_ship25]="--autoencoder world_model/checkpoints/default")
declare -A SAMPLER=([dyn_ship]="--sigma-max 5 --sigma-min 0.1 --guidance-min-sigma 2.0"
  [dyn_fine]="--sigma-max 5 --sigma-min 0.1 --guidance-min-sigma 2.0"
  [dyn_fine_shift]="--sigma-max 10 --sigma-min 0.2 --guidance-min-sigma 4.0"
  [dyn_ship25]="--sigma-max 5 --sigma-min 0.1 --guidance-min-sigma 2.0")
DYN_ARMS=${DYN_ARMS:-${*:2}}
DYN_ARMS=${DYN_ARMS:-dyn_ship dyn_fine}

if [[ $STAGE == dynamics || $STAGE == all ]]; then
  for arm in $DYN_ARMS; do
    OMP_NUM_THREADS=1 genie-train dynamics $DYN_COMMON ${DYN[$arm]} --out "runs/train/$arm" \
      --time-budget-minutes "$MINUTES" --threads 1 > "runs/logs/$arm.log" 2>&1 &
  done
  wait
fi

if [[ $STAGE == measure_dyn || $STAGE == all ]]; then
  for arm in $DYN_ARMS; do
    genie-train export --dynamics "runs/train/$arm" --out "runs/candidates/$arm" --context-sigma 0.01 --num-steps 3 \
      ${SAMPLER[$arm]} --rho 3 --cache-refresh 4
    OMP_NUM_THREADS=1 python -m benchmarks.consistency --model "runs/candidates/$arm" --preset small --threads 1 \
      --out "$R/consistency_$arm.json" --sheets "runs/sheets/$arm" > /dev/null
  done
fi
