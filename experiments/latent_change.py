"""How much of the latent frame does each action move, per view? (experiments/LOG.md entry 31)

    python -m experiments.latent_change --model default --data runs/data/td/* --episodes 60 \
        --out experiments/results/td_specialist/latent_change.json

Recorded episodes (each view's, `--episodes` drawn per view) are encoded by the model's autoencoder; for every
transition, the squared change of the normalised latent from the frame before, per action:
- ``mean_sq_change``: mean over the latent's elements (what an action-blind model's loss is up against);
- ``share_changed``: share of latent positions whose change (summed over channels) exceeds 0.01;
- ``max_position_change``: the largest change of one position (summed over channels).
A dynamics model that ignores the action pays, in loss, about what its frames' ``mean_sq_change`` is; where that is
small the uniform diffusion loss barely asks for the action's effect.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.machine import describe_machine
from world_model import WorldModel
from world_model.checkpoint import write_json
from world_model.dataset import EpisodeDataset


def measure(wm: WorldModel, data, view: str, episodes: int, seed: int = 0) -> dict:
    """Per action name: {"transitions", "mean_sq_change", "share_changed", "max_position_change"} over `episodes`
    episodes of `view` drawn from the recordings `data`."""
    ds = EpisodeDataset(data, views=view)
    rng = np.random.default_rng(seed)
    rows: dict[int, list] = {}
    for e in rng.choice(ds.num_episodes, min(episodes, ds.num_episodes), replace=False):
        ep = ds.episode(int(e))
        z = wm.encode(ep.frames).numpy()  # (L+1, C, h, w)
        d = (z[1:] - z[:-1]) ** 2
        for j, a in enumerate(ep.actions[:-1]):
            per_position = d[j].sum(0)
            rows.setdefault(int(a), []).append((d[j].mean(), (per_position > 0.01).mean(), per_position.max()))
    out = {}
    for a in sorted(rows):
        v = np.asarray(rows[a], dtype=np.float64)
        out[wm.action_meanings[a]] = {"transitions": len(v), "mean_sq_change": float(v[:, 0].mean()),
                                      "share_changed": float(v[:, 1].mean()),
                                      "max_position_change": float(v[:, 2].mean())}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder (its autoencoder)")
    parser.add_argument("--data", nargs="+", required=True, help="recording folders")
    parser.add_argument("--views", nargs="+", default=["first_person", "top_down"])
    parser.add_argument("--episodes", type=int, default=60, help="episodes per view")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON file to write")
    a = parser.parse_args(argv)
    torch.set_num_threads(a.threads)
    wm = WorldModel.load(a.model)
    result = {"experiment": "latent_change", "model": a.model, "data": a.data, "episodes_per_view": a.episodes,
              "machine": describe_machine(), "views": {v: measure(wm, a.data, v, a.episodes) for v in a.views}}
    for view, per in result["views"].items():
        for name, r in per.items():
            print(f"{view:13s} {name:10s} n={r['transitions']:4d}  mean sq change {r['mean_sq_change']:.4f}  "
                  f"positions changed {r['share_changed']:.3f}  largest position change {r['max_position_change']:.2f}")
    if a.out:
        write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()
