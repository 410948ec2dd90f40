#!/usr/bin/env bash
# The success judge on the world model's own frames (LOG entry 19).
#
# GenieWorld's reward is the success judge's verdict on generated frames, but the judge learns from ground-truth
# frames. This study re-plays recorded episodes inside the default world model (`genie-data dream`: same prompt,
# same actions, the model's frames, the ground truth's success flags), measures the judge on them, and trains a
# judge on recorded + dreamed episodes beside one trained on recorded episodes alone (same steps).
#
#   bash experiments/judge_dream.sh dream_test    # every held-out episode, dreamed (runs/dream/test/LEVEL)
#   bash experiments/judge_dream.sh dream_train   # bot episodes + a few of every other policy (runs/dream/train/...)
#   bash experiments/judge_dream.sh train         # judges: recorded only / recorded + dreamed (runs/judge/...)
#   bash experiments/judge_dream.sh eval          # both judges and the shipped one on recorded and dreamed test episodes
#
# Needs the recordings of the world model's data (runs/data/new, runs/data/base: world_model/recipes/
# train_default.sh records them) and the held-out ones (runs/data/test). Every stage resumes.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
LEVELS="GoToLocal GoToObj GoToRedBall KeyCorridorS3R1 OpenDoor OpenRedDoor OpenTwoDoors PickupLoc PutNextLocal UnlockLocal"
STEPS="${STEPS:-4000}"
OUT=experiments/results/judge_dream
mkdir -p "$OUT"

case "${1:-}" in
  dream_test)
    for l in $LEVELS; do
      genie-data dream --data "runs/data/test/$l" --out "runs/dream/test/$l" --quiet
    done ;;
  dream_train)
    for l in $LEVELS; do
      genie-data dream --data "runs/data/new/$l" --out "runs/dream/train/new-bot/$l" --policies bot --quiet
      genie-data dream --data "runs/data/base/$l" --out "runs/dream/train/base-bot/$l" --policies bot --quiet
      genie-data dream --data "runs/data/new/$l" --out "runs/dream/train/new-other/$l" --policies explore lookback \
        --max-episodes 10 --quiet
      genie-data dream --data "runs/data/base/$l" --out "runs/dream/train/base-other/$l" --policies lookaround random \
        --max-episodes 10 --quiet
    done ;;
  train)
    recorded=() dreamed=()
    for l in $LEVELS; do
      recorded+=("runs/data/new/$l" "runs/data/base/$l")
      dreamed+=("runs/dream/train/new-bot/$l" "runs/dream/train/base-bot/$l" "runs/dream/train/new-other/$l"
                "runs/dream/train/base-other/$l")
    done
    [ -f runs/judge/recorded/config.json ] || \
      genie-train judge --data "${recorded[@]}" --out runs/judge/recorded --steps "$STEPS" --quiet --eval-split none
    [ -f runs/judge/dreamed/config.json ] || \
      genie-train judge --data "${recorded[@]}" "${dreamed[@]}" --out runs/judge/dreamed --steps "$STEPS" --quiet \
        --eval-split none ;;
  eval)
    python -m experiments.judge_eval --judge default runs/judge/recorded runs/judge/dreamed \
      --recorded runs/data/test --dreamed runs/dream/test --out "$OUT/judge_eval.json" ;;
  *)
    echo "usage: bash experiments/judge_dream.sh dream_test|dream_train|train|eval" >&2; exit 2 ;;
esac
