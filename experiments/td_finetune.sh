#!/usr/bin/env bash
# Study (experiments/LOG.md entry 26): does top-down action control (issue 16's top-down counterfactual floor, 0.9;
# v8 0.44) come from training signal? The shipped model (v8) draws the top-down agent as a heading-less blob under
# every action, noop included, although its autoencoder keeps the heading on the small grids. Two arms fine-tune v8
# for the same wall-clock budget, side by side, one thread each, on the same recording: mixed play with 40% top-down
# episodes (v8's data had 20%) and counterfactual branches at one state in 4:
#   td_plain   v8's own recipe (Diffusion Forcing, context noise log-uniform in [0.01, 0.1], memory on turns, EMA);
#   td_branch  the same plus counterfactual branch rows (a quarter of each batch, weight 8): same context, every
#              action, each its own target;
#   td_only    (a follow-up, run alone on both cores: `MINUTES=30 THREADS=2 bash experiments/td_finetune.sh train
#              td_only`) v8's recipe on the top-down episodes only: does undiluted top-down signal move the agent?
#   td_only_cw (a second follow-up, run as td_only) td_only with the loss weighted towards the latent positions an
#              action changes (`--change-weight 4`): is the top-down agent's few-pixel change drowned by the grid?
#   td_only_ww (a third follow-up, run as td_only) the same weight by window (`--change-scope window`): each position
#              weighs by its largest change anywhere in the window, on every frame, so the agent's cells weigh as much
#              under noop as under a turn (td_only_cw's weight, by the frame's own change, drew change where none was).
#   mix_plain  (entry 29) td_plain rerun beside mix_ww on one machine, its control:
#              `MINUTES=45 bash experiments/td_finetune.sh train mix_plain mix_ww`;
#   mix_ww     td_plain with td_only_ww's window-weighted loss, on the mixed recording: does the weight that moved
#              the top-down agent keep the first person's floors (still@20 above all)?
#   mix_vc     (a follow-up, run as mix_plain, beside another one-thread job) td_plain with `--view-conditioning`
#              (entry 15: the view as an embedding, zero-initialised): does the GPU recipe's view flag keep v8's
#              figures at ~800 CPU steps?
#   vc_td      (entry 31; from v9, which is mix_vc: `MINUTES=45 bash experiments/td_finetune.sh train vc_td vc_td_ww`)
#              v9 fine-tuned on the top-down episodes only, with its view input (never dropped to "unknown", so
#              prompts of unknown view keep v9's answer): does the view input keep the first person while the
#              top-down view trains alone (td_only, without it, lost two first-person floors)?
#   vc_td_ww   vc_td with td_only_ww's window-weighted loss, the one loss that moved the top-down agent (entry 28).
#   v9_more    (entry 31; from v9: `MINUTES=40 bash experiments/td_finetune.sh train v9_more v9_wn`) v9's own recipe
#              (mix_vc's) for 40 more minutes on the mixed recording: the control of v9_wn;
#   v9_wn      v9_more with the window-weighted loss measured against each window's own change (`--change-norm
#              window`): mix_ww's weight, measured against the batch's mean, gave the top-down agent's cells little,
#              as the first-person windows set that mean.
#   ad_td      (entry 32; from v9: `MINUTES=70 bash experiments/td_finetune.sh train ad_td ad_td_ww`) a top-down
#              adapter (`--view-adapter 256 --adapter-views top_down`: one more residual MLP per block, run only for
#              top-down worlds, closed at the start) trained alone (`--train-only view-adapters`) on the top-down
#              episodes, the rest of v9 held: top-down training that cannot cost the first person (vc_td and
#              vc_td_ww, training all of v9, lost two first-person floors). Windows of 9 frames (the view is fully
#              observed), 16 per step, peak lr 5e-4 (new weights only).
#   ad_td_ww   ad_td with td_only_ww's window-weighted loss.
#   ad_td_wc2  (a follow-up, alone on both cores: `MINUTES=35 THREADS=2 bash experiments/td_finetune.sh train
#              ad_td_wc2`) ad_td_ww with the change weight capped at 2 instead of 10: does a smaller tilt towards
#              the agent's cells keep ad_td_ww's gain without its red copies of the agent?
#   ad_td_wp   (entry 33; from v9: `MINUTES=70 bash experiments/td_finetune.sh train ad_td_wp ad_td_wp16`) ad_td with
#              the loss weighted by the change *before* each frame (`--change-weight 4 --change-scope past`): a weight
#              that never looks at the frame it weighs, so it cannot draw the agent's colour where the agent may go
#              (ad_td_ww's red copies): does it keep ad_td_ww's gain without its cost?
#   ad_td_wp16 ad_td_wp with lambda 16 (the weight's optimum does not move with lambda, only where capacity goes).
# Each is exported with v8's sampler and measured on the top-down counterfactual scenario and the floors.
# From the repository root, in the project's venv:
#   bash experiments/td_finetune.sh data | train | export | measure_td | measure_fp | measure [ARM ...]   (or `all`)
# MINUTES (default 50) sets each arm's budget, THREADS (default 1) its torch threads.
# Results: experiments/results/td_finetune/.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
LEVELS="GoToLocal OpenDoor OpenRedDoor OpenTwoDoors GoToRedBall GoToObj PickupLoc UnlockLocal PutNextLocal KeyCorridorS3R1"
MINUTES=${MINUTES:-50}
THREADS=${THREADS:-1}
R=experiments/results/td_finetune
STAGE=${1:-all}; shift || true
ARMS=${*:-td_plain td_branch}
mkdir -p "$R" runs/logs

if [[ $STAGE == data || $STAGE == all ]]; then
  # 5,000 frames per level, two recorders at a time (~4 minutes on 2 cores).
  i=0
  for lvl in $LEVELS; do
    i=$((i+1))
    OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 5000 --policy mix --branch-every 4 \
      --top-down-share 0.4 --max-episode-steps 128 --seed "$((500+i))" --out "runs/data/td/$lvl" --quiet &
    (( i % 2 == 0 )) && wait
  done
  wait
  for lvl in $LEVELS; do genie-data info --data "runs/data/td/$lvl"; done > "$R/data_info.txt"
fi

COMMON="--data runs/data/td/* --autoencoder world_model/checkpoints/default --init-from world_model/checkpoints/default
  --preset default --steps 100000 --batch-size 8 --lr 1e-4 --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01
  --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 --log-every 20 --keep-checkpoints 2
  --memory --memory-turns-only"
ADAPTER="--views top_down --view-conditioning --view-dropout 0 --view-adapter 256 --adapter-views top_down
  --train-only view-adapters --lr 5e-4 --window 9 --batch-size 16"
declare -A EXTRA=([td_plain]="" [td_branch]="--branch-share 0.25 --branch-weight 8" [td_only]="--views top_down"
  [td_only_cw]="--views top_down --change-weight 4" [td_only_ww]="--views top_down --change-weight 4 --change-scope window"
  [mix_plain]="" [mix_ww]="--change-weight 4 --change-scope window"
  [mix_vc]="--view-conditioning" [vc_td]="--views top_down --view-conditioning --view-dropout 0"
  [vc_td_ww]="--views top_down --view-conditioning --view-dropout 0 --change-weight 4 --change-scope window"
  [v9_more]="--view-conditioning" [v9_wn]="--view-conditioning --change-weight 4 --change-scope window --change-norm window"
  [ad_td]="$ADAPTER" [ad_td_ww]="$ADAPTER --change-weight 4 --change-scope window"
  [ad_td_wc2]="$ADAPTER --change-weight 4 --change-scope window --change-cap 2"
  [ad_td_wp]="$ADAPTER --change-weight 4 --change-scope past" [ad_td_wp16]="$ADAPTER --change-weight 16 --change-scope past")

if [[ $STAGE == train || $STAGE == all ]]; then
  # The latent cache is encoded once (a run stopped by its budget) and copied to every arm, so no arm pays for it.
  [ -f runs/train/td_encode/latents.safetensors ] || genie-train dynamics $COMMON --out runs/train/td_encode \
    --time-budget-minutes 0.2 --threads 2 > runs/logs/td_encode.log 2>&1
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
      --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
  done
fi

if [[ $STAGE == measure_td || $STAGE == measure || $STAGE == all ]]; then
  # Top-down: the suite's 32 worlds (the shipped result's worlds and seeds), the arms side by side, THREADS each;
  # and the noise-level probe (experiments/LOG.md entry 26).
  for arm in $ARMS; do
    OMP_NUM_THREADS=$THREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --views top_down --threads "$THREADS" --out "$R/consistency_td_$arm.json" --sheets "runs/sheets/$arm" > /dev/null &
  done
  wait
  for arm in $ARMS; do
    python -m experiments.denoise_probe --model "runs/candidates/$arm" --worlds 16 --threads 2 \
      --out "$R/denoise_probe_td_$arm.json"
  done
fi

if [[ $STAGE == measure_fp || $STAGE == measure || $STAGE == all ]]; then
  # First person: issue 16's floors on 64 worlds (benchmarks/results and LOG entry 25 hold v8's on the same worlds).
  for arm in $ARMS; do
    OMP_NUM_THREADS=$THREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --worlds 64 --views first_person --threads "$THREADS" --out "$R/consistency_64_fp_$arm.json" > /dev/null &
  done
  wait
fi
