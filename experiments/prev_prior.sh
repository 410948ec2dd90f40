# The shipped model transplanted onto the whitened fine latent with the denoiser's estimate started from the previous
# frame where v9's latent cannot carry it (DynamicsConfig.prev_prior); experiments/LOG.md entry 36. The fit stage
# measures the gains and spreads with experiments.latent_change (the views weighted 60 / 40, as the recording mixes
# them); `genie-train transplant --prev-prior` without them fits its own on the recordings' episodes. Stages:
#   bash experiments/prev_prior.sh transplant   # v9 -> runs/train/ae_fine_w with the prior: pp0, pp005, pp01 (the
#                                               # complement map, one spread), pr0 (the residual map, spread 0)
#   bash experiments/prev_prior.sh fit          # the prior per action, measured -> ppa (complement), pra (residual)
#   bash experiments/prev_prior.sh small0       # each, untrained, on the suite's small preset (and tp_white0 without)
#   bash experiments/prev_prior.sh train pp_a pr_a   # ppa, pra fine-tuned as tp_white was (transplant.sh), 420 steps
#   bash experiments/prev_prior.sh export pp_a pr_a && bash experiments/prev_prior.sh small pp_a pr_a
#   bash experiments/prev_prior.sh measure pr_a   # the full suite (32 top-down, 64 first-person worlds)
#   STEPS=100000 MINUTES=45 bash experiments/prev_prior.sh train pr_a2   # pr_a trained on (a fresh schedule)
#   bash experiments/prev_prior.sh small_v9     # v9 on the small preset's worlds, for the comparison
#   bash experiments/prev_prior.sh cs002        # pr_a with its context stored at noise 0.002 (small preset)
#   bash experiments/prev_prior.sh demo pr_a    # the README demo's world and actions beside the truth
# The data and the whitened autoencoder come from experiments/fine_latent.sh (data, ae) and transplant.sh (whiten).
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
THREADS=${THREADS:-1}
MTHREADS=${MTHREADS:-1}  # threads of the suite runs
R=experiments/results/prev_prior
STAGE=${1:-all}; shift || true
ARMS=${*:-pp_a}
mkdir -p "$R" runs/logs runs/candidates
declare -A SPREAD=([pp0]=0 [pp005]=0.05 [pp01]=0.1)

if [[ $STAGE == transplant ]]; then
  [ -d runs/data/td ] && [ -d runs/train/ae_fine_w ] \
    || { echo "run fine_latent.sh data ae, transplant.sh whiten"; exit 2; }
  : > "$R/transplant.txt"
  # the complement map (the directions v9's output cannot reach) at one spread for every action
  for name in pp0 pp005 pp01; do
    genie-train transplant --model default --autoencoder runs/train/ae_fine_w --data runs/data/td/* --prev-prior \
      --prior-map complement --prev-prior-sigma "${SPREAD[$name]}" --out "runs/candidates/$name" \
      | tee -a "$R/transplant.txt"
  done
  # the residual map (what a token loses on the round trip through v9's latent), spread 0
  genie-train transplant --model default --autoencoder runs/train/ae_fine_w --data runs/data/td/* --prev-prior \
    --prev-prior-sigma 0 --out runs/candidates/pr0 | tee -a "$R/transplant.txt"
fi

if [[ $STAGE == fit ]]; then
  # per action, the change in the prior's directions (weighted as the recording mixes the views, 60% first
  # person): ppa, the complement map with the spreads of the change; pra, the residual map with the regression of a
  # frame on its predecessor there (gains) and the spreads of what it leaves
  fit() {  # MODEL -> $R/latent_change_MODEL.json
    OMP_NUM_THREADS=$MTHREADS python -m experiments.latent_change --model "runs/candidates/$1" --data runs/data/td/* \
      --episodes 30 --view-weights 0.6 0.4 --out "$R/latent_change_$1.json" | tee "$R/fit_$1.txt"
  }
  values() { python -c "import json; print(*json.load(open('$R/latent_change_$1.json'))['prior']['$2'])"; }
  fit pp0 && fit pr0
  genie-train transplant --model default --autoencoder runs/train/ae_fine_w --data runs/data/td/* --prev-prior \
    --prior-map complement --prev-prior-sigma $(values pp0 change_spreads) --out runs/candidates/ppa \
    | tee -a "$R/transplant.txt"
  genie-train transplant --model default --autoencoder runs/train/ae_fine_w --data runs/data/td/* --prev-prior \
    --prev-prior-gain $(values pr0 gains) --prev-prior-sigma $(values pr0 spreads) --out runs/candidates/pra \
    | tee -a "$R/transplant.txt"
fi

small() {  # MODEL NAME: the suite's small preset (8 worlds a scenario)
  OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "$1" --preset small --threads "$MTHREADS" \
    --out "$R/small_$2.json" --sheets "runs/sheets/small_$2" > /dev/null
}

if [[ $STAGE == small_v9 ]]; then
  small default v9
fi

if [[ $STAGE == cs002 ]]; then
  OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model runs/candidates/pr_a --preset small \
    --threads "$MTHREADS" --sampler context_sigma=0.002 --out "$R/small_pr_a_cs002.json" \
    --sheets runs/sheets/small_pr_a_cs002 > /dev/null
fi

if [[ $STAGE == demo ]]; then
  for arm in $ARMS; do
    OMP_NUM_THREADS=$MTHREADS python -m experiments.demo_truth --model "runs/candidates/$arm" \
      --autoencoder "runs/candidates/$arm" --steps 60 --seed 0 --out "$R/demo_truth_$arm.json" \
      --sheet "$R/demo_truth_$arm.png" > /dev/null
  done
fi

if [[ $STAGE == small0 ]]; then
  small runs/candidates/tp_white0 tp_white0
  for name in pp0 pp005 pp01 pr0 ppa pra; do
    [ ! -d "runs/candidates/$name" ] || small "runs/candidates/$name" "$name"
  done
fi

# tp_white's recipe (transplant.sh) for its 420 steps, from a transplant with the prior (pp_a: ppa, pr_a: pra)
declare -A INIT=([pp_a]=ppa [pr_a]=pra [pr_a2]=pr_a)
STEPS=${STEPS:-420}
BUDGET=${MINUTES:+--time-budget-minutes $MINUTES}  # with MINUTES (and STEPS high) the budget ends the schedule
COMMON="--data runs/data/td/* --preset default --patch-size 4 --steps $STEPS --batch-size 8 --lr 1e-4 --warmup 50
  --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5
  --log-every 20 --keep-checkpoints 2 --memory --memory-turns-only --view-conditioning --prev-prior"
if [[ $STAGE == train ]]; then
  for arm in $ARMS; do
    mkdir -p "runs/train/$arm"
    # the whitened latents of this data (the same autoencoder weights and whitening: the cache's key)
    [ -f "runs/train/$arm/latents.safetensors" ] || [ ! -f runs/train/tp_white/latents.safetensors ] \
      || cp runs/train/tp_white/latents.safetensors "runs/train/$arm/"
    init="runs/candidates/${INIT[$arm]}"
    OMP_NUM_THREADS=$THREADS genie-train dynamics $COMMON --autoencoder "$init" --init-from "$init" \
      --out "runs/train/$arm" --threads "$THREADS" $BUDGET > "runs/logs/$arm.log" 2>&1 &
  done
  wait
fi

EXPORT="--context-sigma 0.01 --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4"
if [[ $STAGE == export ]]; then
  for arm in $ARMS; do genie-train export --dynamics "runs/train/$arm" --out "runs/candidates/$arm" $EXPORT; done
fi

if [[ $STAGE == small ]]; then
  for arm in $ARMS; do small "runs/candidates/$arm" "$arm"; done
fi

if [[ $STAGE == measure ]]; then
  for arm in $ARMS; do
    OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --views top_down --threads "$MTHREADS" --out "$R/consistency_td_$arm.json" --sheets "runs/sheets/$arm" > /dev/null
    OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset default \
      --views first_person --worlds 64 --threads "$MTHREADS" --out "$R/consistency_64_fp_$arm.json" \
      --sheets "runs/sheets/$arm" > /dev/null
  done
fi
