#!/usr/bin/env bash
# Trains the default world model's dynamics on a lent GPU machine in one command, within a wall-clock budget that
# it enforces itself, and leaves the newest fp16 inference checkpoint and the logs in OUT all along, so a run cut
# off still returns a model.
#
#   bash world_model/recipes/gpu_run.sh OUT MINUTES          # from the repository root
#
# On the GPU machine (bare: python3 with torch CUDA, numpy, safetensors, imageio, tqdm; no gymnasium, minigrid),
# with `.whl` carried and the device tool's $OUT: a smoke call, then the real one on the still-warm machine:
#
#   FRAMES_PER_PROC=2000 FINAL_MARGIN_S=20 bash world_model/recipes/gpu_run.sh $OUT 1.5
#   RECORD_SHARE=0.15 FINAL_MARGIN_S=25 bash world_model/recipes/gpu_run.sh $OUT MINUTES   # ends by MINUTES + ~10 s
#
# Size MINUTES from the smoke call's reply: lease.budget_left_s less ~90 s (transfers, and the margin that keeps the
# lease from running out mid-call), over 60, at most 9.3 (a call runs 10 minutes at most); issue it at once (the
# machine goes back after 30 s idle). On the H100 of experiments/LOG.md entry 14 the machine's start took ~6.5
# minutes of the 15 and the real call got MINUTES=5.2; on the H200 of entry 25 the start and the smoke call together
# took ~1.8 minutes and the real call got MINUTES=9.3 (7.4 of them training: 2,579 steps of 256 windows).
#
# Phases (the minutes count from the start of this script):
#   1. set-up: installs the wheels in .whl into /tmp/site if gymnasium or minigrid is missing, uses the repository
#      through PYTHONPATH, prints the Python / torch / CUDA versions and the GPU;
#   2. records fresh ground truth: one `genie-data record` process per CPU core (nproc), train worlds only, levels
#      and seeds split across them, each up to FRAMES_PER_PROC frames, for at most RECORD_SHARE of the budget; the
#      first processes also record TEST_FRAMES held-out (test-world) frames of one level each for the held-out curve;
#   3. (WIDEN_LATENT only) trains the autoencoder widened to WIDEN_LATENT channels for WIDEN_MINUTES and widens
#      INIT_FROM's dynamics to match; (AE_PRESET only) trains a new autoencoder of that preset for AE_MINUTES (and
#      moves INIT_FROM's dynamics onto it when INIT_FROM is set); then
#      encodes the recordings with the shipped autoencoder (AUTOENCODER), or the widened or new one, on the GPU, the
#      latents kept in GPU memory;
#   4. trains the dynamics (PRESET) with bf16 autocast, BATCH windows a step, for the rest of the budget less
#      FINAL_MARGIN_S (genie-train dynamics --time-budget-minutes: the lr cosine ends with the budget), checkpointing
#      every EXPORT_MINUTES; a background loop exports the newest checkpoint (genie-train export EXPORT_ARGS) into
#      OUT/model, each file atomically and under 16 MiB (a larger one as NAME.part0, NAME.part1: rejoin with
#      `python world_model/recipes/gpu_run.py join OUT/model`; the default preset's checkpoint is 17.5 MB);
#   5. prints throughput (windows/s, tokens/s, achieved TFLOP/s) and the training-loss and held-out PSNR curves.
# OUT ends with at most 7 files (the device returns 8): model/config.json, model/model.safetensors (or its 2 parts), log.jsonl,
# eval.jsonl, summary.json, runner.log (all of this output). Details: world_model/recipes/gpu_run.py.
#
# Size: the default preset steps one world at >= 10 frames/s on the 2-core CPU with the default sampler (the
# shipped model's); a larger PRESET is for studies (distil it into the shipped size before shipping).
#
# The wheels (rebuild .whl here, in the repository root, with pip; versions as the project's venv has them;
# the GPU machine already has numpy, cloudpickle and typing-extensions; stable-baselines3 is not imported on this
# path):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     gymnasium==1.4.0 minigrid==3.2.0 farama-notifications==0.0.6 pygame-ce==2.5.8
set -euo pipefail
OUT=${1:?usage: bash world_model/recipes/gpu_run.sh OUT MINUTES}
MINUTES=${2:?usage: bash world_model/recipes/gpu_run.sh OUT MINUTES}
START=$(date +%s.%N)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}

# ---- the recipe's knobs (environment variables override them) ----------------------------------------------------
PRESET=${PRESET:-default}            # dynamics size; "default" meets the CPU speed floor; "tiny" for tests
BATCH=${BATCH:-0}                    # windows per step; 0: 256 on CUDA, 8 on the CPU
LEVELS=${LEVELS:-"GoToLocal OpenDoor OpenRedDoor OpenTwoDoors GoToRedBall GoToObj PickupLoc UnlockLocal PutNextLocal KeyCorridorS3R1"}
PROCS=${PROCS:-$(nproc)}             # recorder processes
FRAMES_PER_PROC=${FRAMES_PER_PROC:-25000}   # per recorder on average (the same per level); 16 cores: 400k frames in ~37 s on the H100 machine, 5 GB in RAM
TEST_FRAMES=${TEST_FRAMES:-600}      # held-out frames per level (test worlds), for the held-out curve only
RECORD_SHARE=${RECORD_SHARE:-0.25}   # most of the budget recording may take
AUTOENCODER=${AUTOENCODER:-$REPO/world_model/checkpoints/default}   # frozen: the shipped model's autoencoder
EXPORT_MINUTES=${EXPORT_MINUTES:-2}  # checkpoint + export cadence
FINAL_MARGIN_S=${FINAL_MARGIN_S:-45} # kept at the end for the last export and the report
WORK=${WORK:-$(mktemp -d /tmp/gpu_run.XXXXXX)}   # scratch: recordings, run directory (a fresh one every run)
# >>> DATA_ARGS: genie-data record options of every recorder (the policy mix, the top-down share, counterfactual
# >>> branches with --branch-every N); the default is the shipped model's data.
DATA_ARGS=${DATA_ARGS:-"--policy mix --top-down-share 0.2 --max-episode-steps 128"}
# >>> INIT_FROM: the checkpoint whose dynamics the run fine-tunes (its autoencoder must be AUTOENCODER's); the default,
# >>> for PRESET=default, is the shipped model (experiments/LOG.md entry 25: the shipped model was trained so, from
# >>> the CPU-trained v7, which `INIT_FROM=runs/candidates/v7` with `runs/candidates/v7` carried reproduces); empty
# >>> ("INIT_FROM=") trains from scratch (entry 14: 3.5 minutes from scratch only reached the CPU-trained model).
# >>> AE_PRESET: train a new autoencoder of this preset from scratch first (a phase after recording: genie-train
# >>> autoencoder --preset AE_PRESET for AE_MINUTES with AE_ARGS), then the dynamics on its latents: from scratch
# >>> (INIT_FROM then defaults to empty), or, with INIT_FROM set, from that model moved onto the new latent through
# >>> least-squares bridges fitted on the recordings (genie-train transplant; experiments/LOG.md entry 35) and
# >>> fine-tuned (the fine-tuning lr; WIDEN_LATENT must be 0). "fine" (a 32 x 32 x 4 latent that keeps objects of
# >>> 2-3 pixels and the top-down agent's heading: experiments/LOG.md entry 34) wants --patch-size 4 in TRAIN_ARGS
# >>> (64 tokens a frame, as the shipped latent in 2 x 2 patches), and its noise levels doubled: TRAIN_ARGS
# >>> --p-mean 0.29, EXPORT_ARGS --sigma-max 10 --sigma-min 0.2 --guidance-min-sigma 4.0 (entry 34's command). From
# >>> scratch it needs more than one lent call to reach the shipped model (entry 34).
AE_PRESET=${AE_PRESET:-}
AE_MINUTES=${AE_MINUTES:-1.5}
# >>> AE_WHITEN: with AE_PRESET, whiten the new latent in patches of this side (genie-train whiten; the dynamics'
# >>> --patch-size, 4 for "fine") before the dynamics train on it; 0: not. The fine latent's 4 x 4 patches put half
# >>> their directions under 5% of the mean variance; whitened, dynamics from scratch predict a frame ahead 3 dB
# >>> better at the same CPU budget (experiments/LOG.md entry 35).
AE_WHITEN=${AE_WHITEN:-0}
# >>> TRANSPLANT_ARGS: with AE_PRESET and INIT_FROM, more genie-train transplant options. "--prev-prior" starts the
# >>> moved model's estimates from the previous frame in what the old latent cannot carry, its gains and spreads
# >>> fitted per action on the recordings; it then wants --prev-prior in TRAIN_ARGS too (experiments/LOG.md entry 36:
# >>> at the same CPU budget still scenes 12 dB better at step 1).
TRANSPLANT_ARGS=${TRANSPLANT_ARGS:-}
AE_ARGS=${AE_ARGS:-"--batch-size 128 --lr 1e-3 --warmup 100 --log-every 50"}
INIT_FROM=${INIT_FROM-$([ "$PRESET" = default ] && [ -z "$AE_PRESET" ] && echo "$REPO/world_model/checkpoints/default" || true)}
# >>> TRAIN_ARGS: genie-train dynamics options (context noise range and augmentation, unroll, branch rows, attention
# >>> layout: see genie-train dynamics --help; not --init-from, which INIT_FROM sets); the default is the shipped
# >>> model's recipe (Diffusion Forcing, context noise drawn from [0.01, 0.1], EMA, conditioned on the view: entry 29) on the shipped autoencoder with the pose-keyed memory input on turns
# >>> (--memory --memory-turns-only: experiments/LOG.md entry 17, +5.7 dB first-person look-back and +0.17
# >>> counterfactual accuracy over the same fine-tune without it); peak lr 2e-4 fine-tuning INIT_FROM at batch 256
# >>> (entry 25), 6e-4 from scratch (entry 14).
# >>> The recipe ablation that 20 CPU-minutes per arm could not separate (experiments/LOG.md entry 12) adds to it:
# >>>   --context-sigma 0.01 --context-sigma-max 0.7 --context-sigma-draw uniform   (and EXPORT_ARGS --context-sigma 0.1)
# >>>   --unroll-steps 4 --unroll-prob 0.25 | --branch-share 0.25 --branch-weight 8 (with DATA_ARGS --branch-every 8)
# >>>   --attention factorised | --patch-size 4
# >>> and for the top-down view's actions, ~1% of the uniform loss (entry 31; the next lent GPU's call adds it):
# >>>   --change-weight 4 --change-scope past --change-norm window
# >>> (entry 33: the weight of --change-scope window's gain at half its cost to still scenes and rollouts)
# >>> and, to train the top-down view without touching the first person, a top-down adapter trained alone on the
# >>> top-down episodes (entry 32; DATA_ARGS with --top-down-share 1.0, or --views top_down here):
# >>>   --view-adapter 256 --adapter-views top_down --train-only view-adapters --view-dropout 0 --views top_down
# >>> WIDEN_LATENT: latent channels to widen AUTOENCODER to before training (0: none; experiments/LOG.md entry 27:
# >>> 8 channels keep the top-down agent's heading that 4 lose, the top-down counterfactual ceiling 0.89 -> 0.95).
# >>> A phase after recording trains the widened autoencoder for WIDEN_MINUTES (genie-train autoencoder --init-from
# >>> AUTOENCODER --latent-channels WIDEN_LATENT, with --keep-old-channels when INIT_FROM is set, and WIDEN_ARGS),
# >>> then widens INIT_FROM's dynamics to match (genie-train widen; world_model/widen.py) and fine-tunes that; with
# >>> INIT_FROM empty the dynamics train from scratch on the widened latents. AUTOENCODER must be INIT_FROM's own.
WIDEN_LATENT=${WIDEN_LATENT:-0}
WIDEN_MINUTES=${WIDEN_MINUTES:-1}
WIDEN_ARGS=${WIDEN_ARGS:-"--batch-size 128 --lr 2e-4 --warmup 100 --detail-weight 4 --ema-decay 0 --log-every 50"}
LR=$([ -n "$INIT_FROM" ] && echo "--lr 2e-4 --warmup 50" || echo "--lr 6e-4 --warmup 100")
TRAIN_ARGS=${TRAIN_ARGS:-"$LR --ema-decay 0.998 --context-sigma 0.1 --context-sigma-min 0.01 --memory --memory-turns-only --view-conditioning --log-every 20"}
# >>> EXPORT_ARGS: the sampler defaults written into the exported checkpoint: the shipped model's (3 Euler steps 5 -> 1.28 -> 0.1,
# >>> guidance on the first; a full KV cache rebuilt from its latest 4 frames, 2 for a preset with fewer than 16 frames).
REFRESH=$([ "$PRESET" = default ] && echo 4 || echo 2)
EXPORT_ARGS=${EXPORT_ARGS:-"--context-sigma 0.01 --num-steps 3 --sigma-min 0.1 --rho 3 --guidance-min-sigma 2.0 --cache-refresh $REFRESH"}

mkdir -p "$OUT"
exec > >(tee -a "$OUT/runner.log") 2>&1
echo "[gpu_run] $(date -u +%FT%TZ) OUT=$OUT MINUTES=$MINUTES WORK=$WORK PRESET=$PRESET BATCH=$BATCH PROCS=$PROCS"

# 1. set-up ---------------------------------------------------------------------------------------------------------
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('gymnasium') and u.find_spec('minigrid')))"
then
  if ! ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then
    echo "[gpu_run] gymnasium / minigrid are missing and $REPO/.whl holds no wheels: build them (see this script's" \
         "header) and carry .whl" >&2
    exit 2
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$REPO"/.whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
# versions and the device to stderr (the log); "--cuda" or nothing to stdout
CUDA=$("$PYTHON" - <<'EOF'
import sys, torch, numpy, gymnasium, minigrid
say = lambda msg: print(f"[gpu_run] {msg}", file=sys.stderr, flush=True)
say(f"python {sys.version.split()[0]}  torch {torch.__version__}  CUDA {torch.version.cuda}  numpy {numpy.__version__}"
    f"  gymnasium {gymnasium.__version__}  minigrid {minigrid.__version__}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    say(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, bf16 {torch.cuda.is_bf16_supported()}")
    print("--cuda")
else:
    say("no CUDA device: training on the CPU")
EOF
)

# 2-5. record, train (encoding first), export, report ---------------------------------------------------------------
exec "$PYTHON" "$REPO/world_model/recipes/gpu_run.py" run --out "$OUT" --minutes "$MINUTES" --start "$START" \
  --work "$WORK" --python "$PYTHON" $CUDA --procs "$PROCS" --levels "$LEVELS" --data-args "$DATA_ARGS" \
  --frames-per-proc "$FRAMES_PER_PROC" --test-frames "$TEST_FRAMES" --record-share "$RECORD_SHARE" \
  --autoencoder "$AUTOENCODER" --init-from "$INIT_FROM" --widen-latent "$WIDEN_LATENT" --ae-preset "$AE_PRESET" \
  --ae-minutes "$AE_MINUTES" --ae-args "$AE_ARGS" --ae-whiten "$AE_WHITEN" --transplant-args "$TRANSPLANT_ARGS" \
  --widen-minutes "$WIDEN_MINUTES" --widen-args "$WIDEN_ARGS" --preset "$PRESET" --batch "$BATCH" --train-args "$TRAIN_ARGS" \
  --export-args "$EXPORT_ARGS" --export-minutes "$EXPORT_MINUTES" --final-margin-s "$FINAL_MARGIN_S"
