#!/usr/bin/env bash
# The KV cache rebuilt from its latest frames when full (SamplerConfig.cache_refresh) against the sliding ring buffer,
# on v5 (the default model before entry 18, runs/candidates/v5 of world_model/recipes/train_default.sh) and the
# memory fine-tunes of entry 17 (experiments/LOG.md entry 18): the still-scene curve
# per step (8 worlds, 64 noops) and the consistency suite (the shipped model's 32 unseen worlds per view).
# Usage: bash experiments/cache_refresh.sh [curve|suite|floors|floors_v6|all]
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
out=experiments/results/cache_refresh
if [[ $stage == curve || $stage == all ]]; then
  for run in v5:slide v5:refresh8 ft_mem_turns2_end:slide ft_mem_turns2_end:recompute ft_mem_turns2_end:refresh4 \
             ft_mem_turns2_end:refresh8 ft_mem_turns2_end:refresh12; do
    python -m experiments.still_curve --model "runs/candidates/${run%%:*}" --mode "${run#*:}" --worlds 8 --steps 64 \
      --out "$out/still_curve.jsonl"
  done
  python -m experiments.still_curve --plot "$out/still_curve.jsonl"
fi
if [[ $stage == suite || $stage == all ]]; then
  for m in v5:runs/candidates/v5 end:runs/candidates/ft_mem_turns2_end; do
    python -m benchmarks.consistency --model "${m#*:}" --preset default --threads 1 --sampler cache_refresh=8 \
      --out "$out/consistency_${m%%:*}_refresh8.json" --sheets "runs/sheets/${m%%:*}_refresh8"
  done
fi
if [[ $stage == floors || $stage == all ]]; then  # the candidate on the 64 first-person worlds of the issue's floors
  python -m benchmarks.consistency --model runs/candidates/ft_mem_turns2_end --preset default --worlds 64 \
    --views first_person --threads 1 --sampler cache_refresh=8 --out "$out/consistency_64_fp_end_refresh8.json"
fi
if [[ $stage == floors_v6 || $stage == all ]]; then  # the shipped v6 (cache_refresh 4) on the same 64 worlds
  python -m benchmarks.consistency --model default --preset default --worlds 64 --views first_person --threads 2 \
    --out "$out/consistency_64_fp_v6.json"
fi
