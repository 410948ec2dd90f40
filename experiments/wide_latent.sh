#!/usr/bin/env bash
# Study (experiments/LOG.md entry 27): a wider latent (8 channels instead of 4) for the shipped autoencoder, then the
# shipped model's dynamics widened to read and predict it and fine-tuned on this CPU. The autoencoder keeps its 4 old
# channels exactly (--keep-old), so the widened model starts as the shipped one on them. Entry 27 widened v8; the
# shipped model is now v9, view-conditioned, so `train` and `init` pass --view-conditioning (VIEW_FLAG= with v8's
# weights in world_model/checkpoints/default, `git show 652a755:...`, reruns entry 27 as it was).
# From the repository root, in the project's venv, after `bash experiments/td_finetune.sh data` (runs/data/td):
#   bash experiments/wide_latent.sh data | ae | measure | widen | train | export | measure_td | measure_fp   (or `all`)
# AE_MINUTES (default 33) and MINUTES (default 35) set the budgets, THREADS (default 2) the torch threads; `widen`
# widens the shipped model with the autoencoder AE (default runs/candidates/ae8, the `ae` stage's), and `widen` to
# `measure_fp` name their model, run and results NAME (default w8_plain, entry 27's; entry 30's is w8vc).
# `init` (entries 29-30): the widened shipped model twice from the autoencoder AE (default runs/candidates/ae8),
# its new channels' input columns zero (w8_zero, world_model/widen.py's start) or drawn at a tenth of the old
# columns' std (w8_rand), each fine-tuned as `train` for INIT_MINUTES (default 30), side by side, one thread each:
# does the trunk learn the new channels faster when it sees them from the first step? (their logs:
# runs/train/w8_{zero,rand}/log.jsonl)
# Results: experiments/results/wide_latent/.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
AE_MINUTES=${AE_MINUTES:-33}
MINUTES=${MINUTES:-35}
THREADS=${THREADS:-2}
INIT_MINUTES=${INIT_MINUTES:-30}
VIEW_FLAG=${VIEW_FLAG---view-conditioning}
AE=${AE:-runs/candidates/ae8}
NAME=${NAME:-w8_plain}
R=experiments/results/wide_latent
STAGE=${1:-all}
mkdir -p "$R" runs/logs

if [[ $STAGE == data || $STAGE == all ]]; then
  # held-out frames (test worlds, half top-down) for the autoencoder's figures and latent statistics (~1 minute)
  i=0
  for lvl in GoToLocal OpenDoor UnlockLocal PickupLoc OpenTwoDoors KeyCorridorS3R1; do
    i=$((i+1))
    OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 600 --policy mix \
      --top-down-share 0.5 --max-episode-steps 128 --worlds test --seed "$((900+i))" --out "runs/data/td_test/$lvl" \
      --quiet &
    (( i % 2 == 0 )) && wait
  done
  wait
fi

if [[ $STAGE == ae || $STAGE == all ]]; then
  python -m experiments.wide_latent train --model default --channels 8 --data runs/data/td/* \
    --eval-data runs/data/td_test/* --minutes "$AE_MINUTES" --threads "$THREADS" --out runs/candidates/ae8 \
    > runs/logs/ae8.log 2>&1
fi

if [[ $STAGE == measure || $STAGE == all ]]; then
  python -m experiments.wide_latent measure --autoencoder default runs/candidates/ae8 --eval-data runs/data/td_test/* \
    --worlds 64 --threads "$THREADS" --out "$R/measure.json" --sheet "$R/reconstructions.png"
fi

if [[ $STAGE == widen || $STAGE == all ]]; then
  python -m experiments.wide_latent widen-model --model default --autoencoder "$AE" \
    --out "runs/candidates/${NAME}_start"
fi

if [[ $STAGE == train || $STAGE == all ]]; then
  # td_finetune.sh's td_plain recipe, from the widened shipped model, on the same recording
  OMP_NUM_THREADS=$THREADS genie-train dynamics --data runs/data/td/* --autoencoder "runs/candidates/${NAME}_start" \
    --init-from "runs/candidates/${NAME}_start" --preset default --steps 100000 --batch-size 8 --lr 1e-4 --warmup 50 \
    --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5 \
    --log-every 20 --keep-checkpoints 2 --memory --memory-turns-only $VIEW_FLAG --out "runs/train/$NAME" \
    --time-budget-minutes "$MINUTES" --threads "$THREADS" > "runs/logs/$NAME.log" 2>&1
fi

if [[ $STAGE == export || $STAGE == all ]]; then
  genie-train export --dynamics "runs/train/$NAME" --out "runs/candidates/$NAME" --context-sigma 0.01 \
    --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4
fi

if [[ $STAGE == measure_td || $STAGE == all ]]; then
  python -m benchmarks.consistency --model "runs/candidates/$NAME" --preset default --views top_down \
    --threads "$THREADS" --out "$R/consistency_td_$NAME.json" --sheets "runs/sheets/$NAME" > /dev/null
  python -m experiments.denoise_probe --model "runs/candidates/$NAME" --worlds 16 --threads "$THREADS" \
    --out "$R/denoise_probe_td_$NAME.json"
fi

if [[ $STAGE == measure_fp || $STAGE == all ]]; then
  # the 64 first-person floor worlds, as experiments/td_finetune.sh measure_fp
  python -m benchmarks.consistency --model "runs/candidates/$NAME" --preset default --views first_person \
    --worlds 64 --threads "$THREADS" --out "$R/consistency_64_fp_$NAME.json" --sheets "runs/sheets/$NAME" \
    > /dev/null
fi

if [[ $STAGE == init ]]; then
  python -m experiments.wide_latent widen-model --model default --autoencoder "$AE" --out runs/candidates/w8init_zero
  python -m experiments.wide_latent widen-model --model default --autoencoder "$AE" --new-input-std 0.1 \
    --out runs/candidates/w8init_rand
  for arm in zero rand; do
    OMP_NUM_THREADS=1 genie-train dynamics --data runs/data/td/* --autoencoder "runs/candidates/w8init_$arm" \
      --init-from "runs/candidates/w8init_$arm" --preset default --steps 100000 --batch-size 8 --lr 1e-4 --warmup 50 \
      --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 100 --log-every 10 \
      --keep-checkpoints 1 --memory --memory-turns-only $VIEW_FLAG --out "runs/train/w8_$arm" \
      --time-budget-minutes "$INIT_MINUTES" --threads 1 > "runs/logs/w8_$arm.log" 2>&1 &
  done
  wait
fi
