"""At which noise level does the dynamics decide what an action does? (experiments/LOG.md entry 26)

    python -m experiments.denoise_probe --model default --view top_down --worlds 16 \
        --out experiments/results/one_step/denoise_probe_td_v8.json

The consistency suite's counterfactual scenario (a look-around context of true frames, then every action), on the
worlds whose top-down cells are >= 6 pixels (the autoencoder keeps the agent's heading there: LOG entry 13), scored
two ways per noise level sigma:
- ``autoencoder``: each action's true next latent plus N(0, sigma^2) noise, decoded: what the latent space keeps;
- ``denoiser``: one evaluation of the action-conditioned denoiser D(x; sigma) on that same noisy latent, unguided,
  decoded: whether the model, handed the right frame under noise, returns it or the frame of another action;
- ``from_previous``: the same evaluation on the last context frame's latent plus that noise (a sampler that starts
  from the previous frame, as SDEdit starts from a guide image): whether the action alone moves the frame there.
A sampler starting at sigma_max has to settle each action's outcome at the levels where ``denoiser`` is high.
"""
from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import torch

from benchmarks import consistency as C
from benchmarks.ground_truth import GroundTruth, draw_worlds
from benchmarks.machine import describe_machine
from world_model import WorldModel
from world_model.checkpoint import write_json


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    parser.add_argument("--view", default="top_down", choices=["first_person", "top_down"])
    parser.add_argument("--worlds", type=int, default=16)
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.1, 0.3, 0.7, 1.5, 3.0, 5.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="JSON file to write")
    a = parser.parse_args(argv)
    if a.worlds < 1 or any(s <= 0 for s in a.sigmas):
        parser.error("--worlds must be >= 1 and every --sigma > 0")
    torch.set_num_threads(a.threads)
    wm = WorldModel.load(a.model)
    truth = GroundTruth(64)
    rng = np.random.default_rng(20)
    A, length = wm.num_actions, C._cap_context(wm, 9)
    ctx, ctx_a, gt = [], [], []
    try:
        for lvl, s in draw_worlds(20 * a.worlds, 0):
            if len(gt) == a.worlds:
                break
            prefix = [int(x) for x in rng.choice([C.FORWARD, C.LEFT, C.RIGHT], p=[0.5, 0.25, 0.25], size=4)]
            prefix += [C.LEFT] * 4
            env, frames = truth.env(lvl, s, a.view, prefix)
            if a.view == "top_down" and frames[0].shape[0] // env.minigrid.grid.width < 6:
                continue
            gt.append(np.stack([copy.deepcopy(env).step(act)[0] for act in range(A)]))
            f, acts = C.pad_context(frames, prefix, length)
            ctx.append(f)
            ctx_a.append(acts)
    finally:
        truth.close()
    ctx, ctx_a, gt = np.stack(ctx), np.stack(ctx_a), np.stack(gt)  # gt (N, A, S, S, 3)
    N = len(gt)
    g = torch.Generator().manual_seed(0)
    state = wm.reset(ctx, prompt_actions=ctx_a, generator=g, view=a.view)
    z = wm.encode(gt.reshape(N * A, *gt.shape[2:]))
    z = z.reshape(N, A, *z.shape[1:])  # (N, A, C, h, w)
    z_prev = wm.encode(ctx[:, -1])  # (N, C, h, w)
    rows = []
    for sigma in a.sigmas:
        noisy = z + sigma * torch.randn(z.shape, generator=g)
        decoded = wm.decode(noisy.reshape(N * A, *z.shape[2:])).reshape(gt.shape)
        prev = z_prev + sigma * torch.randn(z_prev.shape, generator=g)
        denoised, from_prev = np.zeros_like(gt), np.zeros_like(gt)
        for act in range(A):
            den = wm._cached_denoiser(wm.fork(state), torch.full((N, 1), act), 1.0)
            denoised[:, act] = wm.decode(den(noisy[:, act], torch.tensor(sigma)))
            from_prev[:, act] = wm.decode(den(prev, torch.tensor(sigma)))
        ae, dn = C.counterfactual_scores(decoded, gt), C.counterfactual_scores(denoised, gt)
        fp = C.counterfactual_scores(from_prev, gt)
        rows.append({"sigma": sigma, "autoencoder": round(float(ae["accuracy"].mean()), 3),
                     "denoiser": round(float(dn["accuracy"].mean()), 3),
                     "from_previous": round(float(fp["accuracy"].mean()), 3),
                     "denoiser_per_action": [round(float(x), 3) for x in dn["right"].mean(0)],
                     "chance": round(float(dn["chance"].mean()), 3)})
        print(json.dumps(rows[-1]), flush=True)
    report = {"study": "denoise_probe", "model": a.model, "view": a.view, "worlds": N, "rows": rows,
              "machine": describe_machine()}
    if a.out:
        write_json(a.out, report)
    return report


if __name__ == "__main__":
    main()
