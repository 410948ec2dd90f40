#!/usr/bin/env bash
# Trains a default-size world model with its dynamics from scratch on a lent GPU (world_model/recipes/gpu_run.sh,
# today's recipe), then fine-tuned for an hour on a 2-core CPU, over the frozen autoencoder of the shipped model
# (world_model/recipes/train_default.sh trains that one on the CPU alone); then measures both stages on the suites
# beside the shipped model (experiments/results/gpu, experiments/LOG.md entry 14). Ship a result only if it measures
# better than the shipped model (copy it into world_model/checkpoints/default with its training_summary.json, rerun
# the suites into benchmarks/results, `python -m benchmarks.model_card --render-only`, `genie-bench report`).
# Every CPU step resumes if re-run after a kill.
#
# 1. On a lent GPU machine (the device tool; DEVELOPERS.md), with `.whl` carried: a smoke call, then
#
#      RECORD_SHARE=0.2 FINAL_MARGIN_S=25 bash world_model/recipes/gpu_run.sh $OUT 5.2
#
#    and the returned OUT folder here as GPU_OUT (default runs/gpu/run1). Entry 14's run was on one NVIDIA
#    H100 (3.5 minutes of training, 1,199 steps of 256 windows); its logs, summary and held-out curve are in
#    experiments/results/gpu/run1, the model itself is not in the repository (rerun step 1 for it).
#
#    bash world_model/recipes/gpu_candidate.sh            # from the repository root, in the project's venv
#
# Wall times on the 2-core Intel Xeon machine: recording ~3 min, fine-tune 60 min (+2 min to encode the data),
# measuring ~30 min per model.
set -euo pipefail
GPU_OUT=${GPU_OUT:-runs/gpu/run1}
LEVELS="GoToLocal OpenDoor OpenRedDoor OpenTwoDoors GoToRedBall GoToObj PickupLoc UnlockLocal PutNextLocal KeyCorridorS3R1"
[ -f "$GPU_OUT/model/config.json" ] || { echo "no $GPU_OUT/model: run step 1 (gpu_run.sh) on a lent GPU first" >&2; exit 1; }

# 2. The GPU run's checkpoint (a file over 16 MiB comes back in parts) and its training facts.
[ -f "$GPU_OUT/model/model.safetensors" ] || python world_model/recipes/gpu_run.py join "$GPU_OUT/model"
mkdir -p runs/candidates/gpu1
cp "$GPU_OUT/model/config.json" "$GPU_OUT/model/model.safetensors" runs/candidates/gpu1/
python -m benchmarks.model_card --model runs/candidates/gpu1 --gpu-run "$GPU_OUT" \
  --base-summary world_model/checkpoints/default/training_summary.json --summary-only

# 3. CPU data: ~8k frames per level of mixed play (bot with epsilon noise, random, look-around), 20% top-down
#    episodes, train seeds; and held-out worlds (test seeds) for the held-out curve.
i=0
for lvl in $LEVELS; do
  i=$((i+1))
  genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 8000 --policy mix --top-down-share 0.2 \
    --max-episode-steps 128 --seed "$i" --out "runs/data/base/$lvl" --quiet
  genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 1000 --worlds test --policy mix --top-down-share 0.2 \
    --max-episode-steps 128 --seed "$((i+100))" --episodes-per-shard 16 --out "runs/data/test/$lvl" --quiet
done

# 4. Fine-tune on the CPU for 60 minutes of wall clock (the lr cosine ends with the budget), peak lr 1.5e-4, the
#    same context noise and memory input as the GPU run, EMA of the weights; exported with the shipped sampler.
genie-train dynamics --data runs/data/base/* --eval-data runs/data/test/* \
  --autoencoder world_model/checkpoints/default --init-from runs/candidates/gpu1 --preset default \
  --out runs/train/ft_gpu1 --steps 100000 --time-budget-minutes 60 --batch-size 8 --lr 1.5e-4 --warmup 50 \
  --context-sigma 0.1 --context-sigma-min 0.01 --memory --memory-turns-only --view-conditioning --ema-decay 0.998 \
  --checkpoint-every 200 --log-every 20 --keep-checkpoints 3 --threads 2
genie-train export --dynamics runs/train/ft_gpu1 --out runs/candidates/gpu1_ft --context-sigma 0.01 --num-steps 3 \
  --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
python -m benchmarks.model_card --model runs/candidates/gpu1_ft --dyn-run runs/train/ft_gpu1 --data runs/data/base/* \
  --base-summary runs/candidates/gpu1/training_summary.json --recipe "bash world_model/recipes/gpu_candidate.sh" \
  --summary-only

# 5. Both stages on the suites (the shipped model's figures are in benchmarks/results), then RESULTS.md.
for m in gpu1 gpu1_ft; do
  python -m benchmarks.consistency --model "runs/candidates/$m" --preset default \
    --out "experiments/results/gpu/consistency_$m.json" --sheets "runs/sheets/$m"
  python -m benchmarks.fidelity --model "runs/candidates/$m" --episodes 16 --horizon 64 --guidance 1.0 1.5 3.0 \
    --out "experiments/results/gpu/fidelity_$m.json"
done
python -m experiments.report
