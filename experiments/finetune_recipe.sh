#!/usr/bin/env bash
# Study: does the new training recipe (context noise up to 0.7, a 4-step autoregressive unroll, counterfactual
# branch rows) beat today's recipe when fine-tuning the then-shipped v5
# (runs/candidates/v5, world_model/recipes/train_default.sh phase 3) at equal wall-clock, on the new data policies?
# Both arms train at the same time, one thread each, for the same 30-minute budget (the budget includes loading the
# data; the latent cache is encoded once first and copied to both runs, so neither pays for it), then each is
# measured with the consistency suite on the same unseen worlds as the shipped model
# (benchmarks/results/consistency.json). Results: experiments/results/candidates/consistency_ft_*.json,
# experiments/LOG.md entry 10. From the repository root, in the project's venv; ~50 min on 2 cores.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
LEVELS="GoToLocal OpenDoor OpenRedDoor OpenTwoDoors GoToRedBall GoToObj PickupLoc UnlockLocal PutNextLocal KeyCorridorS3R1"

# 1. Data: 8,000 frames per level of mix2 play (bot, explore, lookback) with counterfactual branches at about one
#    state in 8; held-out worlds (today's mix policy) for the training-time evaluation.
i=0
for lvl in $LEVELS; do
  i=$((i+1))
  OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 8000 --policy mix2 --branch-every 8 \
    --top-down-share 0.2 --max-episode-steps 128 --seed "$i" --out "runs/data/new/$lvl" --quiet
  OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 1000 --worlds test --policy mix \
    --top-down-share 0.2 --max-episode-steps 128 --seed "$((i+100))" --episodes-per-shard 16 \
    --out "runs/data/test/$lvl" --quiet
done

# 2. The latent cache, encoded once (a run stopped by a 0.5-minute budget), copied to both arms.
COMMON="--data runs/data/new/* --eval-data runs/data/test/* --autoencoder world_model/checkpoints/default
  --init-from runs/candidates/v5 --preset default --steps 100000 --batch-size 8 --lr 1.5e-4 --warmup 50
  --ema-decay 0.998 --checkpoint-every 200 --checkpoint-minutes 10 --log-every 20 --keep-checkpoints 3"
genie-train dynamics $COMMON --out runs/train/encode --time-budget-minutes 0.5 --context-sigma 0.1 \
  --context-sigma-min 0.01
mkdir -p runs/train/ft_today runs/train/ft_new
cp runs/train/encode/latents.safetensors runs/train/ft_today/
cp runs/train/encode/latents.safetensors runs/train/ft_new/

# 3. The two arms side by side, one thread each, 30 minutes each.
OMP_NUM_THREADS=1 genie-train dynamics $COMMON --out runs/train/ft_today --time-budget-minutes 30 \
  --context-sigma 0.1 --context-sigma-min 0.01 > runs/ft_today.log 2>&1 &
OMP_NUM_THREADS=1 genie-train dynamics $COMMON --out runs/train/ft_new --time-budget-minutes 30 \
  --context-sigma 0.01 --context-sigma-max 0.7 --context-sigma-draw uniform --unroll-steps 4 --unroll-prob 0.25 \
  --branch-share 0.25 --branch-weight 8 > runs/ft_new.log 2>&1 &
wait

# 4. Export with the shipped sampler (past frames at 0.01; the new arm also at 0.1 and 0.3, inside its trained
#    range) and measure.
R=experiments/results/candidates
for arm in ft_today ft_new; do
  genie-train export --dynamics runs/train/$arm --out runs/candidates/$arm --context-sigma 0.01 --num-steps 2 \
    --sigma-min 0.5
done
OMP_NUM_THREADS=1 python -m benchmarks.consistency --model runs/candidates/ft_today --preset default --threads 1 \
  --out $R/consistency_ft_today.json --sheets runs/sheets/ft_today &
OMP_NUM_THREADS=1 python -m benchmarks.consistency --model runs/candidates/ft_new --preset default --threads 1 \
  --out $R/consistency_ft_new.json --sheets runs/sheets/ft_new &
wait
for cs in 0.1 0.3; do
  genie-train export --dynamics runs/train/ft_new --out runs/candidates/ft_new_cs$cs --context-sigma $cs \
    --num-steps 2 --sigma-min 0.5
  OMP_NUM_THREADS=1 python -m benchmarks.consistency --model runs/candidates/ft_new_cs$cs --preset default \
    --views first_person --threads 1 --out $R/consistency_ft_new_cs$cs.json &
done
wait
python -m experiments.report
