"""First-person action figures under sampler settings: the share of worlds where a toggled door opens and a picked-up
object is carried (the consistency suite's interaction scenario), and the approach gain after 1 / 2 / 3 forward
steps, per model and setting, over several sampling-noise seeds on the same worlds, one torch thread
(experiments/LOG.md entry 23).

    python -m experiments.sampler_actions --model default --settings default sigma_max=8,guidance=2.5 \
        --worlds 96 --noise-seeds 0 1 --out experiments/results/sampler_start/actions.jsonl

The worlds are found once (the suite's rule, seed 0: the same first 64 toggle / pickup worlds as a 64-world suite
run); a noise seed changes only the sampling noise. Settings are `--sampler` specs
(world_model.sampler.parse_settings); "default" is the checkpoint's own. Appends one JSON line per (model, setting,
noise seed) with the sampler as run, its network rows per frame, the toggle / pickup shares, the approach gains and
the wall seconds.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds
from experiments.sampler_still import append_line, setting_fields
from world_model import WorldModel
from world_model.sampler import parse_settings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="'default' or checkpoint folders")
    parser.add_argument("--settings", nargs="+", default=["default"], help="sampler specs, e.g. sigma_max=8")
    parser.add_argument("--worlds", type=int, default=64, help="toggle / pickup / approach worlds each (>= 1)")
    parser.add_argument("--noise-seeds", type=int, nargs="+", default=[0], help="sampling-noise seeds")
    parser.add_argument("--no-approach", action="store_true", help="only the toggle / pickup shares")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="JSON lines file to append to")
    a = parser.parse_args(argv)
    if a.worlds < 1:
        parser.error("--worlds must be >= 1")
    specs = [(s, parse_settings(s)) for s in a.settings]  # a bad spec fails before any model runs
    torch.set_num_threads(a.threads)
    cfg = replace(C.PRESETS["default"], worlds=a.worlds, views=("first_person",))
    truth = GroundTruth(64)
    try:
        found = {"toggle": C.find_interaction(truth, C.TOGGLE, cfg.worlds, cfg.seed + 8, C.TOGGLE_LEVELS),
                 "pickup": C.find_interaction(truth, C.PICKUP, cfg.worlds, cfg.seed + 9, C.PICKUP_LEVELS)}
        approach_worlds = [] if a.no_approach else C.find_approach(
            truth, draw_worlds(3 * cfg.worlds, cfg.seed + 7, cfg.levels), cfg.approach_k)[:cfg.worlds]
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        for model in a.model:
            for spec, settings in specs:
                wm = WorldModel.load(model)
                wm = wm.with_sampler(**settings) if settings else wm
                for noise in a.noise_seeds:
                    t = time.perf_counter()
                    run = replace(cfg, seed=noise)
                    inter, _ = C.interaction(wm, truth, "first_person", run, found)
                    line = {**setting_fields(model, spec, wm), "noise_seed": noise,
                            **{name: {"worlds": inter[name]["worlds"],
                                      "share": round(inter[name]["share"]["model"]["mean"], 4)
                                      if inter[name]["worlds"] else None} for name in ("toggle", "pickup")}}
                    if approach_worlds:
                        appr, _ = C.approach(wm, truth, "first_person", run, approach_worlds)
                        line["approach"] = {"worlds": appr["worlds"],
                                            "gain": {k: round(v["gain"]["mean"], 3) for k, v in appr["steps"].items()}}
                    line["wall_s"] = round(time.perf_counter() - t, 1)
                    append_line(a.out, line)
    finally:
        truth.close()


if __name__ == "__main__":
    main()
