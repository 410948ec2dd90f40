"""Two probes of experiments/LOG.md entry 21, printed per model:

    python -m experiments.pad_probes guidance MODEL ...   # first-person still@1/8/20 at guidance 1.0 and 1.5
    python -m experiments.pad_probes memory MODEL ...     # top-down look-back with the memory input as trained / closed

Both on the consistency suite's unseen worlds (seed 0): still on 32 first-person worlds, look-back on 16 top-down
ones. "Closed" zeroes the memory input's weights (its patch columns and embeddings), as an untrained memory starts.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds
from world_model import WorldModel


def close_memory(wm) -> None:
    dyn = wm.dynamics
    if not dyn.config.memory:
        raise ValueError("this model has no memory input to close")
    with torch.no_grad():
        dyn.patch_in.weight[:, -dyn.config.patch_dim:].zero_()
        for p in list(dyn.mem_noise_emb.parameters()) + list(dyn.mem_gap_emb.parameters()):
            p.zero_()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=("guidance", "memory"))
    parser.add_argument("models", nargs="+", help="'default' or checkpoint folders")
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args(argv)
    torch.set_num_threads(a.threads)
    view = "first_person" if a.probe == "guidance" else "top_down"
    cfg = replace(C.PRESETS["default"], worlds=32 if a.probe == "guidance" else 16, views=(view,),
                  still_steps=(1, 8, 20))
    truth = GroundTruth(64)
    worlds = draw_worlds(cfg.worlds, cfg.seed, cfg.levels)
    try:
        for model in a.models:
            for setting in ((1.0, 1.5) if a.probe == "guidance" else ("as trained", "closed")):
                wm = WorldModel.load(model)
                if a.probe == "guidance":
                    wm = wm.with_sampler(guidance=setting)
                    r, _ = C.still(wm, truth, view, cfg, worlds)
                    figures = {f"still@{k}": round(v["model"]["mean"], 2) for k, v in r["steps"].items()}
                else:
                    if setting == "closed":
                        close_memory(wm)
                    r, _ = C.look_back(wm, truth, view, cfg, worlds)
                    figures = {k: {"vs own": round(v["return_vs_own"]["mean"], 1),
                                   "vs truth": round(v["return_vs_truth"]["model"]["mean"], 1)}
                               for k, v in r.items() if isinstance(v, dict) and "return_vs_own" in v}
                print(model, a.probe, setting, figures, flush=True)
    finally:
        truth.close()


if __name__ == "__main__":
    main()
