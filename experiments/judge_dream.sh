#!/usr/bin/env bash
# The success judge on the world model's own frames (LOG entry 19).
#
# GenieWorld's reward is the success judge's verdict on generated frames, but the judge learns from ground-truth
# frames. This study re-plays recorded episodes inside the default world model (`genie-data dream`: same prompt,
# same actions, the model's frames, the ground truth's success flags), measures the judge on them, and trains a
# judge on recorded + dreamed episodes beside one trained on recorded episodes alone (same steps).
#
#   bash experiments/judge_dream.sh dream_test    # every held-out episode, dreamed (runs/dream/test/LEVEL)
#   bash experiments/judge_dream.sh dream_train   # runs/data/base's bot episodes + 10 others per level, dreamed
#   bash experiments/judge_dream.sh train         # judges on runs/data/train + those dreams, the successes drawn
#                                                 # uniformly (runs/judge/dreamed_unbalanced) or balanced (dreamed)
#   bash experiments/judge_dream.sh eval          # it and the shipped one on recorded and dreamed test episodes
#
# Needs the recordings of world_model/recipes/train_default.sh (runs/data/train, runs/data/base and the held-out
# runs/data/test). Every stage resumes.
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
      genie-data dream --data "runs/data/base/$l" --out "runs/dream/base-bot/$l" --policies bot --quiet
      genie-data dream --data "runs/data/base/$l" --out "runs/dream/base-other/$l" --policies lookaround random \
        --max-episodes 10 --quiet
    done ;;
  train)
    data=(runs/data/train/* runs/dream/base-bot/* runs/dream/base-other/*)
    [ -f runs/judge/dreamed_unbalanced/config.json ] || \
      genie-train judge --data "${data[@]}" --out runs/judge/dreamed_unbalanced --steps "$STEPS" --quiet \
        --eval-split none --no-balance-dreamed
    [ -f runs/judge/dreamed/config.json ] || \
      genie-train judge --data "${data[@]}" --out runs/judge/dreamed --steps "$STEPS" --quiet --eval-split none ;;
  eval)
    python -m benchmarks.judge_on_dreams --judge default runs/judge/dreamed_unbalanced runs/judge/dreamed \
      --recorded runs/data/test --dreamed runs/dream/test --out "$OUT/judge_on_dreams.json" ;;
  *)
    echo "usage: bash experiments/judge_dream.sh dream_test|dream_train|train|eval" >&2; exit 2 ;;
esac
