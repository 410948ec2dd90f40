# The previous-frame prior (entry 36) trained with the change weight of entry 33, against the same recipe without it,
# from one transplant and at equal wall-clock time; experiments/LOG.md entry 37. Entry 38: the same transplant trained
# on the top-down view alone (td_pr), against entry 37's pr_b again (pr_b60: its encoding paid before the budget) at
# equal wall-clock time:
#   MINUTES=60 bash experiments/prior_change.sh train pr_b60 td_pr; ... export pr_b60 td_pr; ... measure_td pr_b60 td_pr
# then td_pr trained on (td_pr2: from its weights, a fresh schedule, on td_pr's top-down latents):
#   MINUTES=33 bash experiments/prior_change.sh train td_pr2; ... export td_pr2; ... measure_td td_pr2
# and td_pr2 trained on on top-down play that walks more (td_mx):
#   bash experiments/prior_change.sh data_mix2; MINUTES=20 THREADS=2 ... train td_mx; ... export td_mx;
#   MTHREADS=2 ... measure_td td_mx
# Entry 39: td_pr's recipe from the transplant on both top-down recordings (td_both) and with branch rows (td_br):
#   bash experiments/prior_change.sh data_mix2; MINUTES=60 ... train td_both td_br; ... export td_both td_br;
#   ... measure_td td_both td_br
# then td_br trained on, without (td_br2) and with (td_cwf) a loss weight on the latent positions each frame changes:
#   MINUTES=32 ... train td_br2 td_cwf; ... export td_br2 td_cwf; ... measure_td td_br2 td_cwf
# Entry 36 left the turns' new fine detail drawn as grain and first-person look-back / approach short of v9; the change
# weight (`--change-weight 4 --change-scope past --change-norm window`, the GPU recipe's) puts more of the loss on the
# windows where things move.
# Stages (from the repository root, in the project's venv):
#   bash experiments/prior_change.sh data        # entry 26's recording and the held-out frames (fine_latent.sh data)
#   bash experiments/prior_change.sh ae          # the fine autoencoder (entry 34's `fine`), AE_MINUTES on 2 threads,
#                                                # whitened in 4 x 4 patches (entry 35) -> runs/train/ae_fine_w
#   bash experiments/prior_change.sh transplant  # v9 -> it with the prior fitted per action -> runs/candidates/pra
#   MINUTES=60 bash experiments/prior_change.sh train pr_b pr_cw   # both arms side by side, one thread each
#   bash experiments/prior_change.sh export pr_b pr_cw && bash experiments/prior_change.sh small pr_b pr_cw
#   bash experiments/prior_change.sh small_v9; bash experiments/prior_change.sh small0   # v9, the untrained pra
#   bash experiments/prior_change.sh measure pr_cw   # the full suite (measure_td: its top-down view only)
#   bash experiments/prior_change.sh measure_ae  # it beside entry 34's figures (held-out, ceiling, objects, demo)
#   bash experiments/prior_change.sh keep        # the whitened autoencoder -> experiments/candidates/ae_fine_w
# When experiments/candidates/ae_fine_w exists the ae stage copies it instead of training (a fresh checkout need not
# spend AE_MINUTES again); the transplant reads runs/train/ae_fine_w either way.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
THREADS=${THREADS:-1}
MTHREADS=${MTHREADS:-1}  # threads of the suite runs
AE_MINUTES=${AE_MINUTES:-32}
MINUTES=${MINUTES:-60}
R=experiments/results/prior_change
STAGE=${1:-all}; shift || true
ARMS=${*:-pr_b pr_cw}
mkdir -p "$R" runs/logs runs/candidates

if [[ $STAGE == data ]]; then
  bash experiments/fine_latent.sh data
fi

if [[ $STAGE == data_mix2 ]]; then
  # top-down play by the recorder's mix2 (bot / explore / lookback): forward changes nothing in 3-18% of its steps
  # (43-75% in the data stage's recording)
  i=0
  for lvl in GoToLocal GoToObj GoToRedBall KeyCorridorS3R1 OpenDoor OpenRedDoor OpenTwoDoors PickupLoc PutNextLocal \
      UnlockLocal; do
    i=$((i+1))
    OMP_NUM_THREADS=1 genie-data record --env "genie_env/BabyAI3D-$lvl-v0" --frames 3000 --policy mix2 \
      --top-down-share 1.0 --max-episode-steps 128 --seed "$((900+i))" --out "runs/data/td_mix2/$lvl" --quiet &
    (( i % 2 == 0 )) && wait
  done
  wait
fi

if [[ $STAGE == ae ]]; then
  if [ -d experiments/candidates/ae_fine_w ]; then
    mkdir -p runs/train && rm -rf runs/train/ae_fine_w && cp -r experiments/candidates/ae_fine_w runs/train/ae_fine_w
  else
    OMP_NUM_THREADS=2 genie-train autoencoder --data runs/data/td/* --eval-data runs/data/td_test/* --preset fine \
      --out runs/train/ae_fine --steps 100000 --time-budget-minutes "$AE_MINUTES" --checkpoint-every 250 \
      --checkpoint-minutes 5 --keep-checkpoints 2 --log-every 50 --threads 2 > runs/logs/ae_fine.log 2>&1
    genie-train whiten --autoencoder runs/train/ae_fine --data runs/data/td/* --patch 4 --out runs/train/ae_fine_w \
      | tee "$R/whiten.txt"
  fi
fi

if [[ $STAGE == keep ]]; then
  rm -rf experiments/candidates/ae_fine_w && mkdir -p experiments/candidates/ae_fine_w
  cp runs/train/ae_fine_w/config.json runs/train/ae_fine_w/model.safetensors experiments/candidates/ae_fine_w/
fi

if [[ $STAGE == transplant ]]; then
  # the residual map with the gains and spreads fitted per action on 60 episodes (entry 36's pra)
  genie-train transplant --model default --autoencoder runs/train/ae_fine_w --data runs/data/td/* --prev-prior \
    --out runs/candidates/pra | tee "$R/transplant.txt"
fi

small() {  # MODEL NAME: the suite's small preset (8 worlds a scenario)
  OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "$1" --preset small --threads "$MTHREADS" \
    --out "$R/small_$2.json" --sheets "runs/sheets/small_$2" > /dev/null
}

# entry 36's recipe (prev_prior.sh), one schedule ended by MINUTES; pr_cw adds the change weight
COMMON="--preset default --patch-size 4 --steps 100000 --batch-size 8 --lr 1e-4 --warmup 50
  --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5
  --log-every 20 --keep-checkpoints 2 --memory --memory-turns-only --view-conditioning --prev-prior
  --autoencoder runs/candidates/pra --init-from runs/candidates/pra"
# td_pr: the top-down view alone (entry 31's td_only), in windows of 9 frames (the view is fully observed), 16 a step
TD="--views top_down --view-dropout 0 --window 9 --batch-size 16"
BR="--branch-share 0.25 --branch-weight 4"  # counterfactual branch rows, a quarter of each batch
declare -A EXTRA=([pr_b]="" [pr_b60]="" [pr_cw]="--change-weight 4 --change-scope past --change-norm window"
  [td_pr]="$TD" [td_pr2]="$TD --init-from runs/candidates/td_pr" [td_mx]="$TD --init-from runs/candidates/td_pr2"
  [td_both]="$TD" [td_br]="$TD $BR" [td_br2]="$TD $BR --init-from runs/candidates/td_br"
  [td_cwf]="$TD $BR --init-from runs/candidates/td_br --change-weight 4 --change-scope frame --change-norm window")
# td_mx: td_pr2 trained on on top-down play that walks where the path is open (the data_mix2 stage)
# td_both: td_pr's recipe on both top-down recordings (entry 26's and mix2's); td_br: td_pr's recipe with the
# recording's counterfactual branch rows (the next frame under every action from one context), a quarter of a batch
declare -A DATA=([td_mx]="runs/data/td_mix2/*" [td_both]="runs/data/td/* runs/data/td_mix2/*")
# whose latents an arm starts from (the cache's key is the autoencoder and the frames read: a top-down arm's differs
# from the both-view cache's); "": the arm encodes its own; unnamed: the both-view cache
declare -A CACHE=([td_pr]="" [td_pr2]=runs/train/td_pr [td_mx]="" [td_both]="" [td_br]=""
  [td_br2]=runs/train/td_br [td_cwf]=runs/train/td_br)
if [[ $STAGE == train ]]; then
  # the latents encoded once, before any arm starts (the same autoencoder weights and whitening: the cache's key):
  # a time budget counts from its invocation's start, encoding included
  shared=0  # does any arm start from the both-view cache?
  for arm in $ARMS; do [[ -v CACHE[$arm] ]] || shared=1; done
  if (( shared )) && [ ! -f runs/train/prior_latents/latents.safetensors ]; then
    OMP_NUM_THREADS=2 genie-train dynamics $COMMON --data runs/data/td/* --out runs/train/prior_latents --stop-at 1 \
      --threads 2 > runs/logs/prior_latents.log 2>&1
  fi
  for arm in $ARMS; do
    mkdir -p "runs/train/$arm"
    cache=${CACHE[$arm]-runs/train/prior_latents}
    [ -f "runs/train/$arm/latents.safetensors" ] || [ -z "$cache" ] \
      || cp "$cache/latents.safetensors" "runs/train/$arm/"
    OMP_NUM_THREADS=$THREADS genie-train dynamics $COMMON --data ${DATA[$arm]:-runs/data/td/*} ${EXTRA[$arm]} \
      --out "runs/train/$arm" --time-budget-minutes "$MINUTES" --threads "$THREADS" > "runs/logs/$arm.log" 2>&1 &
  done
  wait
fi

EXPORT="--context-sigma 0.01 --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4"
if [[ $STAGE == export ]]; then
  for arm in $ARMS; do
    genie-train export --dynamics "runs/train/$arm" --out "runs/candidates/$arm" $EXPORT
    # a top-down-only arm's curve is on training episodes: the recording holds no top-down test episodes
    cp "runs/train/$arm/eval.jsonl" "$R/eval_$arm.jsonl"
  done
fi

if [[ $STAGE == small ]]; then
  for arm in $ARMS; do small "runs/candidates/$arm" "$arm" & done
  wait
fi

if [[ $STAGE == small_v9 ]]; then
  small default v9
fi

if [[ $STAGE == small0 ]]; then  # the transplant before training
  small runs/candidates/pra pra
fi

if [[ $STAGE == measure || $STAGE == measure_td ]]; then  # measure_td: the top-down view's 32 worlds only
  for arm in $ARMS; do
    OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --views top_down --threads "$MTHREADS" --out "$R/consistency_td_$arm.json" --sheets "runs/sheets/$arm" > /dev/null
    [[ $STAGE == measure ]] || continue
    OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --views first_person --worlds 64 --threads "$MTHREADS" --out "$R/consistency_64_fp_$arm.json" \
      --sheets "runs/sheets/$arm" > /dev/null
  done
fi

if [[ $STAGE == measure_ae ]]; then
  # the autoencoder beside entry 34's figures: held-out frame / detail PSNR, the counterfactual ceiling, the top-down
  # objects and the README demo's true frames (the whitened copy where the ae stage copied a kept one: the same frames)
  AE=runs/train/ae_fine; [ -d "$AE" ] || AE=runs/train/ae_fine_w
  OMP_NUM_THREADS=$MTHREADS python -m experiments.wide_latent measure --autoencoder "$AE" \
    --eval-data runs/data/td_test/* --worlds 64 --threads "$MTHREADS" --out "$R/measure_ae.json" > /dev/null
  OMP_NUM_THREADS=$MTHREADS python -m benchmarks.top_down_objects --model "$AE" \
    --out "$R/top_down_objects_ae_fine.json" > /dev/null
  OMP_NUM_THREADS=$MTHREADS python -m experiments.demo_truth --autoencoder "$AE" \
    --out "$R/demo_truth_ae.json" --sheet "$R/demo_truth_ae.png" > /dev/null
fi
