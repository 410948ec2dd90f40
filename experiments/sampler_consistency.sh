#!/usr/bin/env bash
# The shipped model's sampler on the consistency suite (experiments/LOG.md entry 16): the same weights under
# several sampler settings, first person on 16 unseen worlds (one thread per run, two runs at a time), then the
# chosen setting on the default preset (32 worlds, both views) beside the two-step sampler it replaced, and the
# frames/s of one world under both, timed in interleaved rounds. Run from the repository root, in the venv.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
R=experiments/results/sampler
TWO="num_steps=2,sigma_min=0.5,guidance_min_sigma=0.0"   # the sampler v5 shipped with until this study
run() { python -m benchmarks.consistency --model default --preset default --worlds 16 --views first_person \
  --threads 1 --sampler "$2" --out "$R/consistency_16_$1.json" > /dev/null; }
run base "$TWO" & run s3 num_steps=3,sigma_min=0.1,guidance_min_sigma=0.0 & wait
run s2_01 num_steps=2,sigma_min=0.1,guidance_min_sigma=0.0 & run s3_gi num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0 & wait
run s3_g1 num_steps=3,sigma_min=0.1,guidance=1.0 & run s4_gi num_steps=4,sigma_min=0.05,guidance_min_sigma=1.0 & wait
run s3_gi_g2 num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0,guidance=2.0 &
run s3_gi_g3 num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0,guidance=3.0 & wait
run s3_gi_cs03 num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0,context_sigma=0.03 &
run s3_gi_g2b num_steps=3,sigma_min=0.1,guidance_min_sigma=0.5 & wait
unset OMP_NUM_THREADS
python -m benchmarks.consistency --model default --preset default --threads 2 --sampler "$TWO" \
  --out "$R/consistency_32_v5_2steps.json"
python -m benchmarks.consistency --model default --preset default --threads 2 \
  --sampler num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0 --out "$R/consistency_32_s3_gi.json"
python -m experiments.sampler_sweep --model default --speed-only --speed-rounds 7 --variant "$TWO" \
  --variant num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0 --out "$R/speed_b1.json"
python -m experiments.sampler_sweep --model default --speed-only --speed-rounds 5 --speed-batch 16 \
  --variant "$TWO" --variant num_steps=3,sigma_min=0.1,guidance_min_sigma=1.0 --out "$R/speed_b16.json"
# the shipped sampler on 64 worlds per view: the worlds the floors are stated over
python -m benchmarks.consistency --preset default --worlds 64 --out "$R/consistency_64_shipped.json"
python -m benchmarks.consistency --preset default --worlds 64 --views first_person --sampler "$TWO" \
  --out "$R/consistency_64_fp_v5_2steps.json"
