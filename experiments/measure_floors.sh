#!/usr/bin/env bash
# One candidate on the 64 first-person worlds of issue 16's floors and on the consistency suite's 32 top-down worlds
# (the same worlds and seeds as a both-view default run), on one thread (experiments/LOG.md entry 21).
# Usage: bash experiments/measure_floors.sh MODEL NAME OUT_DIR
#   writes OUT_DIR/consistency_64_fp_NAME.json and OUT_DIR/consistency_td_NAME.json, sheets under
#   runs/sheets/NAME_64 and runs/sheets/NAME_td, the progress in runs/sheets/floors_NAME.log
set -euo pipefail
cd "$(dirname "$0")/.."
(( $# == 3 )) || { echo "usage: bash experiments/measure_floors.sh MODEL NAME OUT_DIR" >&2; exit 2; }
model=$1 name=$2 out=$3
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out" runs/sheets
python -m benchmarks.consistency --model "$model" --preset default --worlds 64 --views first_person --threads 1 \
  --out "$out/consistency_64_fp_$name.json" --sheets "runs/sheets/${name}_64" > "runs/sheets/floors_$name.log" 2>&1
python -m benchmarks.consistency --model "$model" --preset default --views top_down --threads 1 \
  --out "$out/consistency_td_$name.json" --sheets "runs/sheets/${name}_td" >> "runs/sheets/floors_$name.log" 2>&1
