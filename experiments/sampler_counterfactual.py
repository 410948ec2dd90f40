"""Counterfactual action accuracy under sampler settings: the consistency suite's counterfactual scenario alone (the
same worlds, contexts and rule as `python -m benchmarks.consistency`), per model, view and setting, with its per-action
shares, one torch thread (experiments/LOG.md entry 39).

    python -m experiments.sampler_counterfactual --model runs/candidates/td_br --view top_down \
        --settings default num_steps=8,sigma_min=0.01 --out experiments/results/prior_change/sampler_cf.jsonl

Settings are `--sampler` specs (world_model.sampler.parse_settings); "default" is the checkpoint's own. Appends one
JSON line per (model, setting) with the sampler as run, the overall accuracy (mean and 95% interval over worlds), the
per-action shares, what each action's frame is nearest to (`nearest`: for each action, over the worlds where its true
frame is its own, the share nearest each action's true frame, ties to the first) and the wall seconds; `--sheets DIR`
also writes each setting's contact sheet (truth over model).
"""
from __future__ import annotations

import argparse
import re
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds
from experiments.sampler_still import append_line, setting_fields
from world_model import WorldModel
from world_model.sampler import parse_settings


def nearest(generated: np.ndarray, truth: np.ndarray) -> dict:
    """generated and truth (N, A, H, W, 3): for each action a, over the worlds where a's true frame differs from
    every other action's, the share whose frame under a is nearest (MSE) the true frame of each action; actions whose
    true frames are identical count as the first of them (noop, for the unchanged frame)."""
    N, A = generated.shape[:2]
    labels = [C.action_classes(truth[w]) for w in range(N)]
    out = {}
    for a in range(A):
        hits, n = np.zeros(A), 0
        for w in range(N):
            if np.count_nonzero(labels[w] == labels[w][a]) > 1:  # a's true frame is another action's too
                continue
            mse = ((generated[w, a][None].astype(np.float64) - truth[w].astype(np.float64)) ** 2).mean((1, 2, 3))
            hits[int(np.argmin(mse))] += 1
            n += 1
        out[C.ACTION_MEANINGS[a]] = {"worlds": n, **({C.ACTION_MEANINGS[b]: round(hits[b] / n, 3)
                                                       for b in range(A) if hits[b]} if n else {})}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="'default' or checkpoint folders")
    parser.add_argument("--view", choices=["first_person", "top_down"], default="top_down")
    parser.add_argument("--settings", nargs="+", default=["default"], help="sampler specs, e.g. num_steps=8")
    parser.add_argument("--worlds", type=int, default=32, help="worlds (>= 1; the suite's default preset: 32)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sheets", help="folder for each setting's contact sheet")
    parser.add_argument("--out", required=True, help="JSON lines file to append to")
    a = parser.parse_args(argv)
    if a.worlds < 1:
        parser.error("--worlds must be >= 1")
    specs = [(s, parse_settings(s)) for s in a.settings]  # a bad spec fails before any model runs
    torch.set_num_threads(a.threads)
    cfg = replace(C.PRESETS["default"], worlds=a.worlds, views=(a.view,))
    worlds = draw_worlds(cfg.worlds, cfg.seed, cfg.levels)
    truth = GroundTruth(64)
    try:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        for model in a.model:
            for spec, settings in specs:
                wm = WorldModel.load(model)
                wm = wm.with_sampler(**settings) if settings else wm
                t = time.perf_counter()
                # the scenario's first counterfactual_scores call scores the model's frames against the truth's
                with mock.patch.object(C, "counterfactual_scores", wraps=C.counterfactual_scores) as scores:
                    r, sheet = C.counterfactual(wm, truth, a.view, cfg, worlds)
                overall = r["overall"]["model"]
                line = {**setting_fields(model, spec, wm), "view": a.view, "worlds": len(worlds),
                        "accuracy": round(overall["mean"], 4), "ci95": [round(x, 4) for x in overall["ci95"]],
                        "per_action": {k: round(v["model"]["mean"], 3) for k, v in r["per_action"].items()},
                        "nearest": nearest(*scores.call_args_list[0].args), "wall_s": round(time.perf_counter() - t, 1)}
                append_line(a.out, line)
                if a.sheets:
                    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{Path(model).name}_{spec}")
                    C.contact_sheet(sheet["rows"], sheet["columns"], Path(a.sheets) / f"cf_{a.view}_{name}.png")
    finally:
        truth.close()


if __name__ == "__main__":
    main()
