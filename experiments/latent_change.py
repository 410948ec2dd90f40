"""How much of the latent frame does each action move, per view? (experiments/LOG.md entry 31)

    python -m experiments.latent_change --model default --data runs/data/td/* --episodes 60 \
        --out experiments/results/td_specialist/latent_change.json

Recorded episodes (each view's, `--episodes` drawn per view) are encoded by the model's autoencoder; for every
transition, the squared change of the normalised latent from the frame before, per action:
- ``mean_sq_change``: mean over the latent's elements (what an action-blind model's loss is up against);
- ``share_changed``: share of latent positions whose change (summed over channels) exceeds 0.01;
- ``max_position_change``: the largest change of one position (summed over channels).
- ``mean_sq_change_prior`` (models with ``DynamicsConfig.prev_prior``): the part of ``mean_sq_change`` in the
  directions its prior map covers (`Dynamics.prior_project`); ``prior_gain``, the regression of a frame on its
  predecessor there, and ``mean_sq_residual_prior``, what it leaves; and ``prior`` (`prior_fit`), the gains and
  spreads per action id, for ``genie-train transplant --prev-prior-gain ... --prev-prior-sigma ...``.
A dynamics model that ignores the action pays, in loss, about what its frames' ``mean_sq_change`` is; where that is
small the uniform diffusion loss barely asks for the action's effect.

``weights`` (with ``--batches N``): the loss weights of ``--change-weight 4 --change-scope window`` (the trainer's
``Denoiser.change_weights``) on N mixed batches of 8 windows of 17 frames, ``--top-down-windows`` of them top-down,
under each ``change_norm``: per view, the mean weight of the positions that change in their window (summed over
channels > 0.01, as ``share_changed``) and of those that do not.
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
        z = wm.encode(ep.frames)  # (L+1, C, h, w)
        dz = z[1:] - z[:-1]
        d = dz.numpy() ** 2
        prior = [np.full(len(dz), np.nan)] * 4
        if wm.config.dynamics.prev_prior:  # in the prior's directions, per element of the latent: the change, and
            mz = wm.dynamics.prior_project(z[None])[0].double()  # the sums of a regression of a frame on the one before
            y, p = mz[1:], mz[:-1]
            prior = [((y - p) ** 2).mean(dim=(1, 2, 3)).numpy(), (y * p).mean(dim=(1, 2, 3)).numpy(),
                     (p * p).mean(dim=(1, 2, 3)).numpy(), (y * y).mean(dim=(1, 2, 3)).numpy()]
        for j, a in enumerate(ep.actions[:-1]):
            per_position = d[j].sum(0)
            rows.setdefault(int(a), []).append((d[j].mean(), (per_position > 0.01).mean(), per_position.max(),
                                                *(v[j] for v in prior)))
    out = {}
    for a in sorted(rows):
        v = np.asarray(rows[a], dtype=np.float64)
        out[wm.action_meanings[a]] = {"transitions": len(v), "mean_sq_change": float(v[:, 0].mean()),
                                      "share_changed": float(v[:, 1].mean()),
                                      "max_position_change": float(v[:, 2].mean())}
        if wm.config.dynamics.prev_prior:
            yp, pp, yy = v[:, 4].mean(), v[:, 5].mean(), v[:, 6].mean()
            gain = float(np.clip(yp / pp, 0.0, 1.0)) if pp > 0 else 1.0
            out[wm.action_meanings[a]].update(mean_sq_change_prior=float(v[:, 3].mean()), prior_gain=gain,
                                              mean_sq_residual_prior=float(yy - 2 * gain * yp + gain**2 * pp))
    return out


def prior_fit(wm: WorldModel, views: dict, weights=None) -> dict:
    """The prior's parameters per action id (DynamicsConfig.prev_prior_sigma / prev_prior_gain: the actions, then
    START and NULL, which get the mean over the actions), the `views` (`measure`'s results) weighted by `weights`
    (default: equal): "gains", the regression of a frame on its predecessor in the directions the prior map of
    `wm` covers (clipped to [0, 1]), and "spreads", the root mean square of what it leaves, per dimension of those
    directions (the map's trace); "change_spreads", that of the change itself (the spreads for a gain of 1)."""
    names = list(views)
    w = np.ones(len(names)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(names):
        raise SystemExit(f"latent_change: {len(w)} --view-weights for {len(names)} --views")
    dims = float(wm.dynamics.prior_map.trace())
    scale = wm.config.dynamics.patch_size ** 2 * wm.config.dynamics.latent_channels / max(dims, 1e-9)
    fit = {"gains": [], "spreads": [], "change_spreads": []}
    for name in wm.action_meanings:
        have = [(wv, views[v][name]) for wv, v in zip(w, names) if name in views[v]]
        if not have:
            raise SystemExit(f"latent_change: no {name} transition in the episodes drawn; draw more --episodes")
        total = sum(a for a, _ in have)
        fit["gains"].append(sum(a * r["prior_gain"] for a, r in have) / total)
        fit["spreads"].append(sum(a * r["mean_sq_residual_prior"] for a, r in have) / total * scale)
        fit["change_spreads"].append(sum(a * r["mean_sq_change_prior"] for a, r in have) / total * scale)
    for k, v in fit.items():  # START and NULL: the mean over the actions
        v += [float(np.mean(v))] * 2
        fit[k] = [round(float(x if k == "gains" else np.sqrt(x)), 4) for x in v]
    return fit


def batch_weights(wm: WorldModel, data, batches: int, top_down_windows: int, window: int = 17, seed: int = 0) -> dict:
    """Per change_norm and view: mean change weight on positions that change in their window and on the rest."""
    from world_model.diffusion import Denoiser, DiffusionConfig

    sets = {v: EpisodeDataset(data, views=v) for v in ("first_person", "top_down")}
    longs = {v: [e for e in range(ds.num_episodes) if ds.episode_lengths[e] >= window] for v, ds in sets.items()}
    rng = np.random.default_rng(seed)
    sums = {}
    for _ in range(batches):
        views = ["top_down"] * top_down_windows + ["first_person"] * (8 - top_down_windows)
        ys = []
        for v in views:
            ep = sets[v].episode(int(rng.choice(longs[v])))
            t0 = int(rng.integers(ep.num_frames - window + 1))
            ys.append(wm.encode(ep.frames[t0:t0 + window]))
        y = torch.stack(ys)  # (B, T, C, h, w)
        # (B, h, w): positions that change somewhere in the window (summed over channels > 0.01, as share_changed)
        moved = (y[:, 1:] - y[:, :-1]).pow(2).sum(2).amax(1) > 0.01
        for norm in ("batch", "window"):
            den = Denoiser(DiffusionConfig(change_weight=4.0, change_scope="window", change_norm=norm), wm.dynamics)
            w = den.change_weights(y)[:, 0, 0]  # (B, h, w): the same on every frame of a window
            for b, v in enumerate(views):
                for part, mask in (("changed", moved[b]), ("unchanged", ~moved[b])):
                    if mask.any():
                        sums.setdefault((norm, v, part), []).append(float(w[b][mask].mean()))
    return {norm: {v: {part: float(np.mean(sums[(norm, v, part)])) for part in ("changed", "unchanged")
                       if (norm, v, part) in sums} for v in ("first_person", "top_down")} for norm in ("batch", "window")}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder (its autoencoder)")
    parser.add_argument("--data", nargs="+", required=True, help="recording folders")
    parser.add_argument("--views", nargs="+", default=["first_person", "top_down"])
    parser.add_argument("--episodes", type=int, default=60, help="episodes per view")
    parser.add_argument("--batches", type=int, default=0, help="mixed batches for the change weights (0: none)")
    parser.add_argument("--top-down-windows", type=int, default=2, help="top-down windows of each batch's 8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--view-weights", type=float, nargs="+", default=None,
                        help="weights of --views in the prior spreads (default: equal), e.g. a recording's view mix")
    parser.add_argument("--out", help="JSON file to write")
    a = parser.parse_args(argv)
    torch.set_num_threads(a.threads)
    wm = WorldModel.load(a.model)
    result = {"experiment": "latent_change", "model": a.model, "data": a.data, "episodes_per_view": a.episodes,
              "machine": describe_machine(), "views": {v: measure(wm, a.data, v, a.episodes) for v in a.views}}
    for view, per in result["views"].items():
        for name, r in per.items():
            print(f"{view:13s} {name:10s} n={r['transitions']:4d}  mean sq change {r['mean_sq_change']:.4f}  "
                  f"positions changed {r['share_changed']:.3f}  largest position change {r['max_position_change']:.2f}"
                  + (f"  in the prior's directions {r['mean_sq_change_prior']:.4f}" if "mean_sq_change_prior" in r
                     else ""))
    if wm.config.dynamics.prev_prior:  # the spread of the change in the prior's directions, per action id
        result["prior"] = prior_fit(wm, result["views"], a.view_weights)
        for k, v in result["prior"].items():
            print(f"prior {k} (actions, START, NULL): " + " ".join(f"{x:.3f}" for x in v))
    if a.batches:
        result["weights"] = batch_weights(wm, a.data, a.batches, a.top_down_windows)
        result["weights_setting"] = {"change_weight": 4.0, "change_scope": "window", "batches": a.batches,
                                     "windows": 8, "frames": 17, "top_down_windows": a.top_down_windows}
        for norm, per in result["weights"].items():
            for view, r in per.items():
                print(f"change_norm {norm:6s} {view:13s} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()))
    if a.out:
        write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()
