# The shipped model moved onto the fine latent (world_model/transplant.py), then fine-tuned on the CPU; experiments/LOG.md
# entry 35. Stages:
#   bash experiments/transplant.sh transplant     # v9 -> the fine autoencoder of entry 34 (runs/train/ae_fine), ~1 minute
#   bash experiments/transplant.sh measure0       # the transplant as it is, on the suite (before any training)
#   MINUTES=40 bash experiments/transplant.sh train tp_fine   # fine-tune it (THREADS threads; v9_more's recipe)
#   bash experiments/transplant.sh export tp_fine && bash experiments/transplant.sh measure tp_fine
#   bash experiments/transplant.sh whiten && MINUTES=40 bash experiments/transplant.sh train sc_white
#   bash experiments/transplant.sh transplant && MINUTES=20 bash experiments/transplant.sh train tp_white
#   export tp_white, then MINUTES=70 bash experiments/transplant.sh train tp_white2 tp_white2_cw   # more of it, and
#     with the top-down change weight of entry 33 (both from tp_white's exported EMA, a fresh lr schedule)
#   bash experiments/transplant.sh ref; bash experiments/transplant.sh curves tp_fine tp_io sc_fine   # held-out curves
# The data and the fine autoencoder come from experiments/fine_latent.sh (stages data, ae).
# The control is entry 32's v9_more: v9 fine-tuned on the shipped latent with the same recipe, data and budget
# (MINUTES=40, one thread, 708 steps), measured with the same suite commands.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
MINUTES=${MINUTES:-40}
THREADS=${THREADS:-1}
MTHREADS=${MTHREADS:-2}  # threads of the suite runs
R=experiments/results/transplant
STAGE=${1:-all}; shift || true
ARMS=${*:-tp_fine}
mkdir -p "$R" runs/logs runs/candidates

if [[ $STAGE == transplant || $STAGE == all ]]; then
  [ -d runs/data/td ] && [ -d runs/train/ae_fine ] || { echo "run experiments/fine_latent.sh data and ae first"; exit 2; }
  # tp_fine0: the plain least-squares bridge (ridge 1e-3); tp_fine0m: noise-matched (the default)
  genie-train transplant --model default --autoencoder runs/train/ae_fine --data runs/data/td/* --ridge 0.001 \
    --out runs/candidates/tp_fine0 | tee "$R/transplant.txt"
  genie-train transplant --model default --autoencoder runs/train/ae_fine --data runs/data/td/* \
    --out runs/candidates/tp_fine0m | tee -a "$R/transplant.txt"
  # tp_white0: onto the fine latent whitened in 4 x 4 patches (stage whiten), noise-matched
  [ ! -d runs/train/ae_fine_w ] || genie-train transplant --model default --autoencoder runs/train/ae_fine_w \
    --data runs/data/td/* --out runs/candidates/tp_white0 | tee -a "$R/transplant.txt"
fi

# the sampler the shipped model exports with, and the suite as td_finetune.sh runs it (32 top-down, 64 first-person)
EXPORT="--context-sigma 0.01 --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh 4"
measure() {  # MODEL NAME
  OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "$1" --preset default --views top_down \
    --threads "$MTHREADS" --out "$R/consistency_td_$2.json" --sheets "runs/sheets/$2" > /dev/null
  OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "$1" --preset default --views first_person \
    --worlds 64 --threads "$MTHREADS" --out "$R/consistency_64_fp_$2.json" --sheets "runs/sheets/$2" > /dev/null
}

if [[ $STAGE == whiten ]]; then
  # the fine latent whitened in the dynamics' 4 x 4 patches (genie-train whiten; entry 35)
  genie-train whiten --autoencoder runs/train/ae_fine --data runs/data/td/* --patch 4 --out runs/train/ae_fine_w \
    | tee "$R/whiten.txt"
  # the shipped latent's 2 x 2 patches (its dynamics' tokens), for the spectrum only
  genie-train whiten --autoencoder default --data runs/data/td/* --patch 2 --out runs/train/ae_ship_w2 \
    | tee -a "$R/whiten.txt"
fi

if [[ $STAGE == ref ]]; then
  # v9's held-out PSNR on the windows the arms' curves use (the trainer's evaluation after one step at lr 1e-9)
  mkdir -p runs/train/v9_ref
  [ -f runs/train/v9_ref/latents.safetensors ] || [ ! -f runs/train/dyn_ship/latents.safetensors ] \
    || cp runs/train/dyn_ship/latents.safetensors runs/train/v9_ref/
  OMP_NUM_THREADS=$THREADS genie-train dynamics --data runs/data/td/* --autoencoder world_model/checkpoints/default \
    --init-from world_model/checkpoints/default --preset default --steps 1 --batch-size 8 --lr 1e-9 --warmup 1 \
    --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --memory --memory-turns-only \
    --view-conditioning --out runs/train/v9_ref --threads "$THREADS" > runs/logs/v9_ref.log 2>&1
  cp runs/train/v9_ref/eval.jsonl "$R/eval_v9_ref.jsonl"
fi

if [[ $STAGE == curves ]]; then
  for arm in $ARMS; do cp "runs/train/$arm/eval.jsonl" "$R/eval_$arm.jsonl"; done
fi

if [[ $STAGE == measure0 ]]; then
  measure runs/candidates/tp_fine0 tp_fine0
fi

COMMON="--data runs/data/td/* --preset default --patch-size 4 --steps 100000 --batch-size 8 --lr 1e-4 --warmup 50
  --context-sigma 0.1 --context-sigma-min 0.01 --ema-decay 0.998 --checkpoint-every 100 --checkpoint-minutes 5
  --log-every 20 --keep-checkpoints 2 --memory --memory-turns-only --view-conditioning"
TP="--autoencoder runs/candidates/tp_fine0 --init-from runs/candidates/tp_fine0"
# tp_fine: all of it (v9_more's recipe); tp_io: only the two ends (--train-only patch-io); sc_fine: the same
# dynamics from scratch on the fine latent (the recipe's from-scratch learning rate), the control of the transplant
declare -A EXTRA=([tp_fine]="$TP" [tp_io]="$TP --train-only patch-io --lr 1e-3"
  [tp_white]="--autoencoder runs/candidates/tp_white0 --init-from runs/candidates/tp_white0"
  [tp_white2]="--autoencoder runs/candidates/tp_white --init-from runs/candidates/tp_white"
  [tp_white2_cw]="--autoencoder runs/candidates/tp_white --init-from runs/candidates/tp_white
    --change-weight 4 --change-scope past --change-norm window"
  [sc_fine]="--autoencoder runs/train/ae_fine --lr 6e-4 --warmup 100"
  [sc_white]="--autoencoder runs/train/ae_fine_w --lr 6e-4 --warmup 100")

if [[ $STAGE == train || $STAGE == all ]]; then
  for arm in $ARMS; do
    mkdir -p "runs/train/$arm"
    # the fine autoencoder's latents of this data, encoded by entry 34's run (the same weights: the cache's key)
    [ -f "runs/train/$arm/latents.safetensors" ] || [ ! -f runs/train/dyn_fine/latents.safetensors ] \
      || [[ $arm == *white* ]] || cp runs/train/dyn_fine/latents.safetensors "runs/train/$arm/"
    # the whitened latents: sc_white's (the same autoencoder weights and whitening: the cache's key)
    [ -f "runs/train/$arm/latents.safetensors" ] || [[ $arm != tp_white* ]] || [ ! -f runs/train/sc_white/latents.safetensors ] \
      || cp runs/train/sc_white/latents.safetensors "runs/train/$arm/"
    OMP_NUM_THREADS=$THREADS genie-train dynamics $COMMON ${EXTRA[$arm]} --out "runs/train/$arm" \
      --time-budget-minutes "$MINUTES" --threads "$THREADS" > "runs/logs/$arm.log" 2>&1 &
  done
  wait
fi

if [[ $STAGE == export || $STAGE == all ]]; then
  for arm in $ARMS; do
    genie-train export --dynamics "runs/train/$arm" --out "runs/candidates/$arm" $EXPORT
  done
fi

if [[ $STAGE == sampler ]]; then
  # the fine-tuned transplant under other samplers (the suite's small preset, 8 worlds a scenario)
  for pair in default:default s05:sigma_min=0.5 n4s03:sigma_min=0.3,num_steps=4 n8s002:num_steps=8,sigma_min=0.02; do
    OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model runs/candidates/tp_fine --preset small \
      --threads "$MTHREADS" --sampler "${pair#*:}" --out "$R/sampler_tp_fine_${pair%%:*}.json" \
      --sheets "runs/sheets/smp_${pair%%:*}" > /dev/null
  done
fi

if [[ $STAGE == small ]]; then
  # the suite's small preset (8 worlds a scenario), for the arms compared at equal budget
  for arm in $ARMS; do
    OMP_NUM_THREADS=$MTHREADS python -m benchmarks.consistency --model "runs/candidates/$arm" --preset small \
      --threads "$MTHREADS" --out "$R/small_$arm.json" --sheets "runs/sheets/small_$arm" > /dev/null
  done
fi

if [[ $STAGE == measure || $STAGE == all ]]; then
  for arm in $ARMS; do measure "runs/candidates/$arm" "$arm"; done
fi
