"""World-model fidelity against the ground-truth 3D BabyAI world, on held-out (test-seed) worlds.

    python -m benchmarks.fidelity [--model default] [--episodes 32] [--horizon 64] [--out runs/fidelity.json]

The ground-truth world and the world model are driven by the same actions from the same start frame, and the
generated frames are compared with the true ones. Per perspective (first person, top-down):

- ``reconstruction_psnr``: autoencoder encode -> decode of ground-truth frames;
- ``one_step_psnr`` / ``one_step_ssim``: teacher-forced, the model sees up to 16 true past frames and actions
  and predicts the next frame; ``one_step_by_action``: the same PSNR for turns, forward moves and the other
  actions, each beside the copy-the-last-frame baseline (``copy_last_psnr``, identical frames capped at 60 dB as every PSNR);
- ``autoregressive_psnr``: from one prompt frame, the model rolls out on its own frames; PSNR at horizons
  1, 4, 16, 64 (and SSIM), beside ``autoregressive_hold_prompt_psnr``, the baseline that shows the prompt frame
  forever (identical frames capped at 60 dB as every PSNR; its ΔPSNR is 0 by construction). Under random play some worlds have
  not changed at a horizon (``prompt_unchanged_share``), and they give that baseline 60 dB; so both are also
  reported over the worlds that changed (``autoregressive_psnr_changed``, ``autoregressive_hold_prompt_psnr_changed``);
- ``delta_psnr``: action controllability, Genie's Delta_t PSNR = PSNR(true actions) - PSNR(random actions)
  at t = 4 and 16, for several classifier-free guidance weights (w = 1 is no guidance); beside it
  ``delta_psnr_ceiling``, the same figure for a perfect dynamics model that decodes through this autoencoder
  (the ground truth replayed under the random actions, `replay`; PSNR capped at 60 dB as every PSNR);
- ``speed``: frames/s of one world and env-steps/s of batches of 16 and 64, with and without the KV cache.

Actions come from a random policy with action repeats biased towards moving and turning (the same kind of play
the recorder's random policy makes); episodes that end before the horizon are redrawn.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.ground_truth import EVAL_LEVELS, GroundTruth, random_actions
from benchmarks.machine import describe_machine
from benchmarks.result_file import command_line, publish
from world_model.metrics import PSNR_CAP, psnr, ssim


def ground_truth(episodes: int, horizon: int, view: str, size: int, seed: int = 0, worlds: list | None = None):
    """Frames uint8 (N, horizon + 1, H, W, 3) and actions (N, horizon) of unseen worlds under random play; a world
    whose episode ends before the horizon is drawn again.

    worlds: if a list is given, (level, reset seed) of each episode is appended to it, for `replay`."""
    rng = np.random.default_rng(seed)
    frames, actions = [], []
    truth = GroundTruth(size)
    while len(frames) < episodes:
        level = EVAL_LEVELS[len(frames) % len(EVAL_LEVELS)]
        acts = random_actions(rng, horizon)
        reset_seed = int(rng.integers(2**31))
        ep = truth.play(level, None, view, acts, seed=reset_seed, until_done=True)
        if len(ep) == horizon + 1:
            frames.append(ep)
            actions.append(acts)
            if worlds is not None:
                worlds.append((level, reset_seed))
    truth.close()
    return np.stack(frames), np.stack(actions)


def replay(worlds: list, actions: np.ndarray, view: str, size: int) -> np.ndarray:
    """The ground-truth worlds (level, reset seed) of `ground_truth` driven by other actions (N, T): frames uint8
    (N, T + 1, H, W, 3). An episode that ends early (the random actions solved the mission) holds its last frame."""
    truth = GroundTruth(size)
    out = []
    for (level, reset_seed), acts in zip(worlds, actions):
        ep = truth.play(level, None, view, acts, seed=reset_seed, until_done=True)
        out.append(np.concatenate([ep, np.repeat(ep[-1:], len(acts) + 1 - len(ep), axis=0)]))
    truth.close()
    return np.stack(out)


def delta_psnr_ceiling(wm, frames: np.ndarray, other: np.ndarray, times=(4, 16)) -> dict:
    """ΔPSNR_t of a perfect dynamics model that decodes through this model's autoencoder: the true frames
    (N, T + 1, ...) and the ground truth under the random actions (`replay`), each encoded and decoded, both
    compared with the true frames. What the autoencoder leaves for action control to show."""
    out = {}
    with torch.no_grad():
        for t in times:
            if t < frames.shape[1]:
                true = psnr(wm.decode(wm.encode(frames[:, t])), frames[:, t])
                rand = psnr(wm.decode(wm.encode(other[:, t])), frames[:, t])
                out[str(t)] = float(true.mean() - rand.mean())
    return out


def hold_prompt(frames: np.ndarray, horizons) -> tuple[np.ndarray, np.ndarray, dict]:
    """The hold-the-prompt baseline of true episodes frames uint8 (N, 1 + horizon, H, W, 3): its PSNR (N, horizon)
    to the true frames, which worlds have changed from their prompt (N, horizon) bool (an identical frame scores
    the PSNR cap), and per horizon its mean, the share of unchanged worlds and its mean over the changed ones."""
    hold = psnr(np.repeat(frames[:, :1], frames.shape[1] - 1, axis=1), frames[:, 1:])
    changed = hold < PSNR_CAP
    return hold, changed, {
        "autoregressive_hold_prompt_psnr": {str(h): float(hold[:, h - 1].mean()) for h in horizons},
        "prompt_unchanged_share": {str(h): float(1 - changed[:, h - 1].mean()) for h in horizons},
        "autoregressive_hold_prompt_psnr_changed": {str(h): mean_where(hold[:, h - 1], changed[:, h - 1])
                                                    for h in horizons}}


def mean_where(values: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean of values where mask holds; None where it holds nowhere."""
    return float(values[mask].mean()) if mask.any() else None


def rollout(wm, prompt: np.ndarray, actions: np.ndarray, seed: int, guidance: float, view: str | None = None,
            **step_kwargs) -> np.ndarray:
    """Autoregressive frames (N, T, H, W, 3) from prompt frames (N, H, W, 3), rendered in `view` (None: unknown),
    under actions (N, T)."""
    g = torch.Generator().manual_seed(seed)
    state = wm.reset(prompt, view=view)
    out = []
    for t in range(actions.shape[1]):
        frame, state = wm.step(state, actions[:, t], generator=g, guidance=guidance, **step_kwargs)
        out.append(frame)
    return np.stack(out, axis=1)


#: One-step PSNR is also reported per kind of action: a first-person turn (90 degrees) reveals mostly unseen
#: content, forward moves reveal a little, the others change little or nothing.
ACTION_KINDS = {"turn": (1, 2), "forward": (3,), "other": (0, 4, 5, 6)}


def one_step_detail(wm, frames: np.ndarray, actions: np.ndarray, starts=(0, 3, 7, 15, 31), seed: int = 0,
                    view: str | None = None) -> dict:
    """Teacher-forced next-frame PSNR / SSIM with up to context_frames true frames of context (rendered in `view`,
    None: unknown), overall and by kind of action, beside the copy-the-last-frame baseline (predict that nothing
    changes)."""
    ctx = wm.config.dynamics.context_frames
    g = torch.Generator().manual_seed(seed)
    ps, ss, copy, acts = [], [], [], []
    for t in starts:
        if t + 1 >= frames.shape[1]:
            continue
        lo = max(0, t + 1 - ctx)
        state = wm.reset(frames[:, lo:t + 1], prompt_actions=actions[:, lo:t] if t > lo else None, view=view)
        pred, _ = wm.step(state, actions[:, t], generator=g)
        ps.append(psnr(pred, frames[:, t + 1]))
        ss.append(ssim(pred, frames[:, t + 1]))
        copy.append(psnr(frames[:, t], frames[:, t + 1]))
        acts.append(actions[:, t])
    ps, ss, copy, acts = (np.concatenate(x) for x in (ps, ss, copy, acts))
    by_action = {}
    for kind, ids in ACTION_KINDS.items():
        sel = np.isin(acts, ids)
        if sel.any():
            by_action[kind] = {"psnr": float(ps[sel].mean()), "copy_last_psnr": float(copy[sel].mean()),
                               "n": int(sel.sum())}
    return {"psnr": float(ps.mean()), "ssim": float(ss.mean()),
            "copy_last_psnr": float(copy.mean()), "by_action": by_action}


def one_step(wm, frames: np.ndarray, actions: np.ndarray, starts=(0, 3, 7, 15, 31), seed: int = 0):
    """Teacher-forced next-frame (PSNR, SSIM), see `one_step_detail`."""
    d = one_step_detail(wm, frames, actions, starts, seed)
    return d["psnr"], d["ssim"]


def speed(wm, frame: np.ndarray, repeats: int = 20) -> dict:
    """Median frames/s of one world and env-steps/s of 16 and 64 worlds, with and without the KV cache.

    Each measurement first fills the context window (cached steps, not timed), so every timed step sees the full
    context. A sampler that rebuilds a full cache (`SamplerConfig.cache_refresh`) is timed over whole periods of
    `WorldModel.refresh_period` steps (the median of max(3, repeats / period) periods), so the rebuilds count. The
    no-cache path recomputes the whole window at every denoising step; it is timed up to 16 worlds and over fewer
    repeats (it is an order of magnitude slower)."""
    out = {}
    fill = wm.config.dynamics.context_frames
    for batch in (1, 16, 64):
        for cache in ((True, False) if batch <= 16 else (True,)):
            state = wm.reset(np.repeat(frame[None], batch, axis=0))
            g = torch.Generator().manual_seed(0)
            actions = np.full(batch, 3)
            for _ in range(fill):
                _, state = wm.step(state, actions, generator=g)
            period = wm.refresh_period if cache else 1
            blocks = max(3, repeats // period) if cache else max(3, repeats // 4)
            times = []
            for _ in range(blocks):
                start = time.perf_counter()
                for _ in range(period):
                    _, state = wm.step(state, actions, generator=g, use_kv_cache=cache)
                times.append((time.perf_counter() - start) / period)
            key = f"batch{batch}_{'kv_cache' if cache else 'no_cache'}_steps_per_s"
            out[key] = round(batch / statistics.median(times), 2)
    return out


def evaluate(wm, episodes: int, horizon: int, views, guidances, seed: int = 0, progress: bool = True) -> dict:
    size = wm.config.autoencoder.image_size
    report = {}
    bar = tqdm(total=len(views) * (3 + 2 * len(guidances)), desc="fidelity", disable=not progress)
    for view in views:
        worlds = []
        frames, actions = ground_truth(episodes, horizon, view, size, seed, worlds=worlds)
        bar.update()
        r = {"episodes": episodes, "horizon": horizon}
        flat = frames[:, :: max(1, horizon // 8)].reshape(-1, *frames.shape[2:])
        with torch.no_grad():
            recon = wm.decode(wm.encode(flat))
        r["reconstruction_psnr"] = float(psnr(recon, flat).mean())
        d = one_step_detail(wm, frames, actions, seed=seed, view=view)
        r["one_step_psnr"], r["one_step_ssim"] = d["psnr"], d["ssim"]
        r["one_step_copy_last_psnr"], r["one_step_by_action"] = d["copy_last_psnr"], d["by_action"]
        bar.update()
        horizons = [h for h in (1, 4, 16, 64) if h <= horizon]
        _, changed, figures = hold_prompt(frames, horizons)
        r.update(figures)
        rng = np.random.default_rng(seed + 1)
        fake = np.stack([random_actions(rng, horizon) for _ in range(episodes)])
        r["delta_psnr_ceiling"] = delta_psnr_ceiling(wm, frames, replay(worlds, fake, view, size))
        per_w = {}
        for w in guidances:
            true_roll = rollout(wm, frames[:, 0], actions, seed, w, view)
            bar.update()
            rand_roll = rollout(wm, frames[:, 0], fake, seed, w, view)
            bar.update()
            p_worlds = psnr(true_roll, frames[:, 1:])  # (N, horizon)
            p_true = p_worlds.mean(axis=0)  # (horizon,) mean over episodes
            p_rand = psnr(rand_roll, frames[:, 1:]).mean(axis=0)
            per_w[str(w)] = {
                "autoregressive_psnr": {str(h): float(p_true[h - 1]) for h in horizons},
                "autoregressive_psnr_changed": {str(h): mean_where(p_worlds[:, h - 1], changed[:, h - 1])
                                                for h in horizons},
                "autoregressive_ssim": {str(h): float(ssim(true_roll[:, h - 1], frames[:, h]).mean()) for h in horizons},
                "delta_psnr": {str(t): float(p_true[t - 1] - p_rand[t - 1]) for t in (4, 16) if t <= horizon},
                "psnr_curve": [round(float(p), 3) for p in p_true],
            }
        r["guidance"] = per_w
        default_w = str(wm.config.sampler.guidance) if str(wm.config.sampler.guidance) in per_w else str(guidances[0])
        r["autoregressive_psnr"] = per_w[default_w]["autoregressive_psnr"]
        r["autoregressive_psnr_changed"] = per_w[default_w]["autoregressive_psnr_changed"]
        r["delta_psnr"] = per_w[default_w]["delta_psnr"]
        r["default_guidance"] = float(default_w)
        report[view] = r
        if view == views[0]:
            report["speed"] = speed(wm, frames[0, 0])
    bar.close()
    return report


def main(argv=None) -> dict:
    from world_model import WorldModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    parser.add_argument("--episodes", type=int, default=32, help="held-out worlds per perspective")
    parser.add_argument("--horizon", type=int, default=64, help="autoregressive horizon (steps)")
    parser.add_argument("--views", nargs="+", default=["first_person", "top_down"])
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 1.5, 3.0], help="CFG weights to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    wm = WorldModel.load(args.model)
    report = {"benchmark": "fidelity", "model": args.model, "machine": describe_machine(),
              "sampler": wm.config.sampler.to_dict(), "seed": args.seed,
              "command": command_line("benchmarks.fidelity", argv)}
    report.update(evaluate(wm, args.episodes, args.horizon, args.views, args.guidance, args.seed))
    return publish(report, args.out)


if __name__ == "__main__":
    main()
