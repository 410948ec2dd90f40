#!/usr/bin/env bash
# Study: which parts of the training recipe and which attention layout make a better world model per CPU-second?
# Seven dynamics models of the small preset are trained from scratch, each for the same 20 minutes of wall clock
# on one thread (two at a time, one per core), on the same data, then each is measured with the consistency suite
# (default preset: the same 32 unseen worlds per view as the shipped model's result, benchmarks/results/consistency.json).
#
#   base      today's recipe: past frames noised at a level drawn log-uniformly in [0.01, 0.1]
#   noise     past frames noised at a level drawn uniformly in [0.01, 0.7] (GameNGen)
#   unroll    base + a 4-step autoregressive unroll on the model's own detached predictions, on a quarter of the
#             windows (DIAMOND)
#   branch    base + counterfactual branch rows (a quarter of each batch, weight 8)
#   all       noise + unroll + branch
#   factorised  base with factorised attention (spatial within a frame + causal temporal per position)
#   patch4    base with 4x4 latent patches (16 tokens per frame instead of 64)
#
# Models trained with context noise up to 0.7 cache their past frames at 0.1 (inside their trained range,
# experiments/LOG.md entry 10); the others at 0.01. Every model samples with the shipped sampler otherwise
# (2 Euler steps to sigma 0.5, guidance 1.5).
# Results: experiments/results/ablation_small/<arm>.json, table in experiments/RESULTS.md
# (`python -m experiments.report`), experiments/LOG.md entry 12. From the repository root, in the project's venv;
# about 2 h 20 min on 2 cores. Run again to resume: finished arms and evaluations are skipped; an interrupted arm
# starts again.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
MINUTES=${MINUTES:-20}
R=experiments/results/ablation_small
mkdir -p "$R" runs/abl/cand runs/logs
LEVELS="GoToLocal OpenDoor OpenRedDoor OpenTwoDoors GoToRedBall GoToObj PickupLoc UnlockLocal PutNextLocal KeyCorridorS3R1"

# 1. Data: 8,000 frames per level of mix2 play with noop weighted in (~8% of steps) and counterfactual branches at
#    about one state in 8; held-out worlds for the training-time evaluation (experiments/LOG.md entry 11).
W="forward=0.5,turn_left=0.17,turn_right=0.17,noop=0.2,pickup=0.05,drop=0.04,toggle=0.05"
i=0
for lvl in $LEVELS; do
  i=$((i+1))
  [ -e "runs/data/noop/$lvl" ] || OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" \
    --frames 8000 --policy mix2 --action-weights "$W" --branch-every 8 --top-down-share 0.2 \
    --max-episode-steps 128 --seed "$i" --out "runs/data/noop/$lvl" --quiet
  [ -e "runs/data/test/$lvl" ] || OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" \
    --frames 1000 --worlds test --policy mix --top-down-share 0.2 --max-episode-steps 128 --seed "$((i+100))" \
    --episodes-per-shard 16 --out "runs/data/test/$lvl" --quiet
done

COMMON="--data runs/data/noop/* --eval-data runs/data/test/* --autoencoder world_model/checkpoints/default
  --preset small --steps 1000000 --batch-size 8 --lr 3e-4 --warmup 50 --ema-decay 0.998 --checkpoint-every 500
  --checkpoint-minutes 5 --log-every 50 --keep-checkpoints 2 --time-budget-minutes $MINUTES --threads 1"
BASE="--context-sigma 0.1 --context-sigma-min 0.01"
NOISE="--context-sigma 0.01 --context-sigma-max 0.7 --context-sigma-draw uniform"
UNROLL="--unroll-steps 4 --unroll-prob 0.25"
BRANCH="--branch-share 0.25 --branch-weight 8"
declare -A FLAGS=(
  [base]="$BASE" [noise]="$NOISE" [unroll]="$BASE $UNROLL" [branch]="$BASE $BRANCH"
  [all]="$NOISE $UNROLL $BRANCH" [factorised]="$BASE --attention factorised" [patch4]="$BASE --patch-size 4"
)
declare -A CACHE=([noise]=0.1 [all]=0.1)

# 2. The latent cache, encoded once (a run stopped by a 0.5-minute budget), copied to every arm.
if [ ! -e runs/abl/encode/latents.safetensors ]; then
  genie-train dynamics $COMMON $BASE --out runs/abl/encode --time-budget-minutes 0.5 > runs/logs/abl_encode.log 2>&1
fi

train() {  # one arm, one thread, from scratch; skipped once finished (an unfinished arm starts again)
  local arm=$1
  [ -e "runs/abl/$arm/FINISHED" ] && return 0
  rm -rf "runs/abl/$arm" && mkdir -p "runs/abl/$arm"
  cp runs/abl/encode/latents.safetensors "runs/abl/$arm/"
  OMP_NUM_THREADS=1 genie-train dynamics $COMMON ${FLAGS[$arm]} --out "runs/abl/$arm" > "runs/logs/abl_$arm.log" 2>&1
  touch "runs/abl/$arm/FINISHED"
}

evaluate() {  # export with the shipped sampler and run the consistency suite, one thread
  local arm=$1
  [ -e "$R/$arm.json" ] && return 0
  genie-train export --dynamics "runs/abl/$arm" --out "runs/abl/cand/$arm" --context-sigma "${CACHE[$arm]:-0.01}" \
    --num-steps 2 --sigma-min 0.5 > /dev/null
  OMP_NUM_THREADS=1 python -m benchmarks.consistency --model "runs/abl/cand/$arm" --preset default --threads 1 \
    --out "$R/$arm.json" --sheets "runs/sheets/abl_$arm" > "runs/logs/abl_cons_$arm.log" 2>&1
}

# 3. Two arms at a time (one per core); the last arm trains beside the evaluations of the first six.
train base & train noise & wait
train unroll & train branch & wait
train all & train factorised & wait
train patch4 & (for arm in base noise unroll branch all factorised; do evaluate $arm; done) & wait
evaluate patch4

# 4. The cheapest layout (patch4, base recipe) alone on both cores for 38 minutes: does more compute, and nothing
#    else, lift a from-scratch model's action control above chance?
if [ ! -e runs/abl/patch4_long/FINISHED ]; then
  rm -rf runs/abl/patch4_long && mkdir -p runs/abl/patch4_long
  cp runs/abl/encode/latents.safetensors runs/abl/patch4_long/
  genie-train dynamics ${COMMON/--threads 1/--threads 2} ${FLAGS[patch4]} --time-budget-minutes 38 \
    --out runs/abl/patch4_long > runs/logs/abl_patch4_long.log 2>&1
  touch runs/abl/patch4_long/FINISHED
fi
if [ ! -e "$R/patch4_long.json" ]; then
  genie-train export --dynamics runs/abl/patch4_long --out runs/abl/cand/patch4_long --context-sigma 0.01 \
    --num-steps 2 --sigma-min 0.5 > /dev/null
  python -m benchmarks.consistency --model runs/abl/cand/patch4_long --preset default --threads 2 \
    --out "$R/patch4_long.json" --sheets runs/sheets/abl_patch4_long > runs/logs/abl_cons_patch4_long.log 2>&1
fi
python -m experiments.report
