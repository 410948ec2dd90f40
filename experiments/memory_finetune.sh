#!/usr/bin/env bash
# Pose-keyed memory (DynamicsConfig.memory), first try: v5 (runs/candidates/v5, world_model/recipes/train_default.sh
# phase 3; the shipped model then) fine-tuned with and without the memory input, side by side at equal wall clock
# (one thread each), then both measured with the consistency suite
# (experiments/LOG.md entry 17). Needs runs/data/base and runs/data/test (world_model/recipes/gpu_candidate.sh
# records them; 8,000 train frames and 1,000 test frames per level, policy mix).
# Usage: bash experiments/memory_finetune.sh [train|eval|turns2|turns2_s400|floors|all] [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
minutes=${2:-75}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
arms="mem plain"
train() {  # $1 arm, then extra genie-train flags
  local arm=$1; shift
  mkdir -p "runs/train/ft_$arm"
  genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* \
    --autoencoder world_model/checkpoints/default --init-from runs/candidates/v5 --preset default \
    --out "runs/train/ft_$arm" --steps 100000 --time-budget-minutes "$minutes" --batch-size 8 --lr 1.5e-4 \
    --warmup 50 --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 200 \
    --log-every 20 --keep-checkpoints 2 --threads 1 "$@" > "runs/train/ft_$arm.log" 2>&1
}
if [[ $stage == train || $stage == all ]]; then
  train mem --memory &
  train plain &
  wait
fi
if [[ $stage == eval || $stage == all ]]; then
  for arm in $arms; do  # export both arms with the shipped sampler
    genie-train export --dynamics "runs/train/ft_$arm" --out "runs/candidates/ft_$arm" --context-sigma 0.01 \
      --num-steps 3 --sigma-min 0.1 --guidance-min-sigma 1.0
  done
  # ft_mem_turns: the same weights as ft_mem, with only frames the agent turned into given a memory frame
  mkdir -p runs/candidates/ft_mem_turns
  ln -f runs/candidates/ft_mem/model.safetensors runs/candidates/ft_mem_turns/
  python -c 'import json, sys; c = json.load(open(sys.argv[1])); c["dynamics"]["memory_turns_only"] = True
json.dump(c, open(sys.argv[2], "w"), indent=2)' runs/candidates/ft_mem/config.json runs/candidates/ft_mem_turns/config.json
  for arm in $arms mem_turns; do
    OMP_NUM_THREADS=2 python -m benchmarks.consistency --model "runs/candidates/ft_$arm" --preset default \
      --threads 2 --out "experiments/results/memory/consistency_ft_$arm.json" --sheets "runs/sheets/ft_$arm"
  done
fi
if [[ $stage == turns2 || $stage == all ]]; then  # ft_mem trained further under the turns-only rule (one thread)
  mkdir -p runs/train/ft_mem_turns2
  [ -e runs/train/ft_mem_turns2/latents.safetensors ] || ln runs/train/ft_mem/latents.safetensors runs/train/ft_mem_turns2/
  genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* \
    --autoencoder world_model/checkpoints/default --init-from runs/candidates/ft_mem --preset default \
    --out runs/train/ft_mem_turns2 --steps 100000 --time-budget-minutes 65 --batch-size 8 --lr 1.5e-4 --warmup 50 \
    --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 \
    --log-every 20 --keep-checkpoints 2 --threads 1 --memory --memory-turns-only > runs/train/ft_mem_turns2.log 2>&1
fi
if [[ $stage == turns2_s400 ]]; then  # its checkpoint after 400 steps (export while the run above is at 400-499)
  genie-train export --dynamics runs/train/ft_mem_turns2/ckpt-00000400 --out runs/candidates/ft_mem_turns2_s400 \
    --context-sigma 0.01 --num-steps 3 --sigma-min 0.1 --guidance-min-sigma 1.0
  for view in fp:first_person td:top_down; do
    OMP_NUM_THREADS=1 python -m benchmarks.consistency --model runs/candidates/ft_mem_turns2_s400 --preset default \
      --views "${view#*:}" --threads 1 --out "experiments/results/memory/consistency_ft_mem_turns2_s400_${view%%:*}.json" \
      --sheets runs/sheets/ft_mem_turns2_s400
  done
fi
if [[ $stage == floors || $stage == all ]]; then  # ft_mem_turns on the 64 first-person worlds of the issue's floors
  OMP_NUM_THREADS=1 python -m benchmarks.consistency --model runs/candidates/ft_mem_turns --preset default \
    --worlds 64 --views first_person --threads 1 --out experiments/results/memory/consistency_64_fp_ft_mem_turns.json
fi
