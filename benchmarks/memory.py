"""World-model memory and drift on unseen worlds: turn around and come back, and roll out for a long time.

Genie 2's long-horizon memory claim is that things that leave the view come back the same, and that worlds stay
coherent for up to a minute. Two measurements, both against the 3D BabyAI ground truth on test-seed worlds:

**Turn-around memory.** From the first frame of a world (after ``warmup`` moves: turns and steps forward, played by
both worlds), the agent turns away and back: ``full_circle`` = 4 x turn_left (360 degrees), ``away_back_k`` = k x
turn_left then k x turn_right. In the ground truth the returning frame equals the frame before *exactly*
(``ground_truth_exact``); in the world model we report the PSNR of the returning frame to the model's own frame
before (``psnr_return_vs_before``: did it remember?) and to the true frame (``psnr_return_vs_ground_truth``), and,
for scale, the PSNR of the farthest-turned frame to the frame before (``psnr_away_vs_before``: how different the
view in between is). Every sequence starts from a fork of the same rollout state, so they share the "before".

**Long rollout.** ``horizon`` (600) steps of random play (:func:`benchmarks.ground_truth.random_actions`) from the first
frame. The ground truth is stepped past the end of its episode if needed (only its frames matter here). Per step t:
PSNR of the model's frame to the true one, and *drift* from the first frame, for the model and for the ground truth
(its natural change as the agent moves): the total-variation distance of the per-channel colour histograms (16 bins,
0 = same colours, 1 = disjoint), the absolute change of the mean and of the standard deviation of the pixel values
(0-255 units, averaged over channels). A model whose drift curve leaves the ground truth's is losing its world.

JSON keys (inside the fidelity suite's ``memory`` and ``long_rollout``): see :func:`turn_around` and
:func:`long_rollout`.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.ground_truth import EVAL_LEVELS, GroundTruth, random_actions
from benchmarks.stats import bootstrap_ci
from genie_env.babyai3d import ACTION_MEANINGS, TEST_SEEDS
from world_model.metrics import psnr

TURN_LEFT, TURN_RIGHT, FORWARD = (ACTION_MEANINGS.index(a) for a in ("turn_left", "turn_right", "forward"))
#: Levels the memory tests draw worlds from (rooms with doors and objects to remember).
MEMORY_LEVELS = EVAL_LEVELS
HIST_BINS = 16
#: Steps at which the long-rollout summary reports its curves.
CHECKPOINTS = (1, 10, 50, 100, 200, 300, 600)


def turn_sequences(max_k: int = 3) -> dict[str, list[int]]:
    """The turn-away-and-back action sequences: full_circle and away_back_1 .. away_back_{max_k}."""
    seqs = {"full_circle": [TURN_LEFT] * 4}
    for k in range(1, max_k + 1):
        seqs[f"away_back_{k}"] = [TURN_LEFT] * k + [TURN_RIGHT] * k
    return seqs


def _worlds(rng: np.random.Generator, episodes: int) -> list[tuple[str, int]]:
    return [(MEMORY_LEVELS[e % len(MEMORY_LEVELS)], TEST_SEEDS.start + int(rng.integers(TEST_SEEDS.size)))
            for e in range(episodes)]


def _mean_ci(values: np.ndarray, seed: int) -> dict:
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_ci(v, seed=seed)
    return {"mean": float(v.mean()), "ci95": [lo, hi]}


@torch.no_grad()
def turn_around(wm, episodes: int = 16, warmup: int = 4, max_k: int = 3, seed: int = 0,
                **step_kwargs) -> tuple[dict, dict[str, np.ndarray]]:
    """Turn-around memory of `wm` on `episodes` test worlds. Returns (JSON dict, sample frames).

    JSON: ``episodes``, ``warmup``, ``worlds`` ([level, level_seed] pairs), and per sequence name: ``actions``,
    ``ground_truth_exact``, ``psnr_return_vs_before`` / ``psnr_return_vs_ground_truth`` / ``psnr_away_vs_before``
    ({mean, ci95} over episodes). Sample frames: "<sequence>" -> uint8 (T, S, 2S, 3), model | ground truth, episode 0.
    """
    size = int(wm.config.autoencoder.image_size)
    rng = np.random.default_rng(seed)
    worlds = _worlds(rng, episodes)
    warm = rng.choice([TURN_LEFT, TURN_RIGHT, FORWARD], p=[0.25, 0.25, 0.5], size=(episodes, warmup))
    seqs = turn_sequences(max_k)
    truth = GroundTruth(size)
    try:
        gt = {name: np.stack([truth.play(lvl, s, "first_person", list(warm[e]) + seq) for e, (lvl, s) in enumerate(worlds)])
              for name, seq in seqs.items()}  # name -> (N, warmup + len + 1, S, S, 3)
    finally:
        truth.close()
    first = next(iter(gt.values()))
    g = torch.Generator().manual_seed(seed)
    state = wm.reset(first[:, 0])
    before = first[:, 0]
    for t in range(warmup):
        before, state = wm.step(state, warm[:, t], generator=g, **step_kwargs)
    result: dict = {"episodes": episodes, "warmup": warmup, "worlds": [[lvl, s] for lvl, s in worlds]}
    samples = {}
    for name, seq in seqs.items():
        s, gs = state.fork(), torch.Generator().manual_seed(seed + 1)
        frames = []
        for a in seq:
            f, s = wm.step(s, np.full(episodes, a), generator=gs, **step_kwargs)
            frames.append(f)
        frames = np.stack(frames, axis=1)  # (N, len, S, S, 3)
        g_before, g_return = gt[name][:, warmup], gt[name][:, -1]
        away = len(seq) // 2 - 1 if name != "full_circle" else 1  # farthest turned: k lefts, or 180 degrees
        result[name] = {
            "actions": [ACTION_MEANINGS[a] for a in seq],
            "ground_truth_exact": bool(np.array_equal(g_before, g_return)),
            "psnr_return_vs_before": _mean_ci(psnr(frames[:, -1], before), seed),
            "psnr_return_vs_ground_truth": _mean_ci(psnr(frames[:, -1], g_return), seed),
            "psnr_away_vs_before": _mean_ci(psnr(frames[:, away], before), seed),
        }
        model_ep = np.concatenate([before[:1], frames[0]])  # (len + 1, S, S, 3)
        samples[name] = np.concatenate([model_ep, gt[name][0, warmup:]], axis=2)
    return result, samples


def frame_statistics(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (B, H, W, 3) -> per-channel histograms (B, 3, bins) (normalised), means (B, 3), stds (B, 3)."""
    x = frames.reshape(frames.shape[0], -1, 3)
    bins = (x.astype(np.int64) * HIST_BINS) // 256  # (B, P, 3)
    hist = np.stack([np.stack([np.bincount(bins[b, :, c], minlength=HIST_BINS) for c in range(3)])
                     for b in range(x.shape[0])]).astype(np.float64) / x.shape[1]
    xf = x.astype(np.float64)
    return hist, xf.mean(axis=1), xf.std(axis=1)


def drift(frames: np.ndarray, reference: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Drift of frames (B, H, W, 3) from the reference statistics: histogram TV distance, |d mean|, |d std| (B,)."""
    hist, mean, std = frame_statistics(frames)
    h0, m0, s0 = reference
    return {"histogram_tv": 0.5 * np.abs(hist - h0).sum(axis=2).mean(axis=1),
            "mean_shift": np.abs(mean - m0).mean(axis=1), "std_shift": np.abs(std - s0).mean(axis=1),
            "frame_std": std.mean(axis=1)}


@torch.no_grad()
def long_rollout(wm, episodes: int = 8, horizon: int = 600, seed: int = 0, video_frames: int = 200,
                 **step_kwargs) -> tuple[dict, dict[str, np.ndarray]]:
    """A `horizon`-step random-play rollout of `wm` beside the ground truth on `episodes` test worlds.

    JSON: ``episodes``, ``horizon``, ``worlds``, ``curves`` (per step 0..horizon, means over episodes:
    ``psnr_to_ground_truth`` (step 0 is the prompt: null), and for "model" and "ground_truth" each of
    ``histogram_tv``, ``mean_shift``, ``std_shift``, ``frame_std``), ``at`` (the same values at the
    :data:`CHECKPOINTS` steps <= horizon), ``final_psnr`` ({mean, ci95} over episodes at the last step).
    Sample frames: "long_rollout" -> uint8 (T, S, 2S, 3), model | ground truth, episode 0, the first `video_frames`.
    """
    size = int(wm.config.autoencoder.image_size)
    rng = np.random.default_rng(seed)
    worlds = _worlds(rng, episodes)
    actions = np.stack([random_actions(rng, horizon) for _ in range(episodes)])  # (N, horizon)
    truth = GroundTruth(size)
    try:
        gt = np.stack([truth.play(lvl, s, "first_person", actions[e]) for e, (lvl, s) in enumerate(worlds)])  # (N, H+1, S, S, 3)
    finally:
        truth.close()
    g = torch.Generator().manual_seed(seed)
    state = wm.reset(gt[:, 0])
    ref = frame_statistics(gt[:, 0])
    keys = ("histogram_tv", "mean_shift", "std_shift", "frame_std")
    curves = {"psnr_to_ground_truth": [None], "model": {k: [] for k in keys}, "ground_truth": {k: [] for k in keys}}
    for who in ("model", "ground_truth"):
        for k, v in drift(gt[:, 0], ref).items():
            curves[who][k].append(float(v.mean()))
    video = [np.concatenate([gt[0, 0], gt[0, 0]], axis=1)]
    last_psnr = None
    for t in range(horizon):
        frames, state = wm.step(state, actions[:, t], generator=g, **step_kwargs)
        p = psnr(frames, gt[:, t + 1])
        curves["psnr_to_ground_truth"].append(float(p.mean()))
        for who, f in (("model", frames), ("ground_truth", gt[:, t + 1])):
            for k, v in drift(f, ref).items():
                curves[who][k].append(float(v.mean()))
        if t + 1 < video_frames:
            video.append(np.concatenate([frames[0], gt[0, t + 1]], axis=1))
        last_psnr = p
    at = {}
    for c in [c for c in CHECKPOINTS if c <= horizon] + ([horizon] if horizon not in CHECKPOINTS else []):
        at[str(c)] = {"psnr_to_ground_truth": curves["psnr_to_ground_truth"][c],
                      **{f"{who}_{k}": curves[who][k][c] for who in ("model", "ground_truth") for k in keys}}
    rounded = {"psnr_to_ground_truth": [None if v is None else round(v, 3) for v in curves["psnr_to_ground_truth"]],
               **{who: {k: [round(v, 4) for v in curves[who][k]] for k in keys} for who in ("model", "ground_truth")}}
    result = {"episodes": episodes, "horizon": horizon, "worlds": [[lvl, s] for lvl, s in worlds],
              "policy": "benchmarks.ground_truth.random_actions", "curves": rounded, "at": at,
              "final_psnr": _mean_ci(last_psnr, seed) if last_psnr is not None else None}
    return result, {"long_rollout": np.stack(video)}


# ---------------------------------------------------------------------------------------------- figures


def plot_long_rollout(r: dict, path) -> str:
    """PSNR to the ground truth and colour-histogram drift over time (model vs ground truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = r["curves"]
    t = np.arange(len(c["model"]["histogram_tv"]))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    p = np.array([np.nan if v is None else v for v in c["psnr_to_ground_truth"]], dtype=np.float64)
    axes[0].plot(t, p)
    axes[0].set(xlabel="step", ylabel="PSNR to ground truth (dB)", title="model vs ground truth")
    for ax, key, label in ((axes[1], "histogram_tv", "colour drift (histogram TV to frame 0)"),
                           (axes[2], "frame_std", "pixel std (detail)")):
        ax.plot(t, c["model"][key], label="world model")
        ax.plot(t, c["ground_truth"][key], label="ground truth")
        ax.set(xlabel="step", ylabel=label)
        ax.legend(fontsize=8)
    fig.suptitle(f"long rollout: {r['episodes']} unseen worlds, {r['horizon']} steps of random play")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_turn_around(r: dict, path) -> str:
    """PSNR of the returning frame to the frame before, and of the farthest-turned frame, per sequence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in r.items() if isinstance(v, dict) and "psnr_return_vs_before" in v]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(names)), 3.2))
    for j, (key, label) in enumerate((("psnr_return_vs_before", "return vs before (memory)"),
                                      ("psnr_return_vs_ground_truth", "return vs ground truth"),
                                      ("psnr_away_vs_before", "farthest turn vs before (scale)"))):
        vals = np.array([r[n][key]["mean"] for n in names])
        ci = np.array([r[n][key]["ci95"] for n in names])
        ax.bar(x + (j - 1) * 0.27, vals, 0.27, yerr=[vals - ci[:, 0], ci[:, 1] - vals], capsize=3, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"turn-around memory, {r['episodes']} unseen worlds (ground truth: exactly equal)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """Markdown for the fidelity suite's memory and long_rollout results."""
    lines = []
    m = r.get("memory")
    if m:
        lines += [
            "### Turn-around memory",
            "",
            f"{m['episodes']} unseen worlds, {m['warmup']} warm-up moves, then turn away and back. PSNR in dB "
            "(mean [95% CI]); in the ground truth the returning frame equals the frame before exactly.",
            "",
            "| sequence | return vs before (memory) | return vs ground truth | farthest turn vs before (scale) "
            "| ground truth exact |",
            "|---|---:|---:|---:|:---:|",
        ]
        for name, v in m.items():
            if not (isinstance(v, dict) and "psnr_return_vs_before" in v):
                continue
            cells = [f"{v[k]['mean']:.2f} [{v[k]['ci95'][0]:.2f}, {v[k]['ci95'][1]:.2f}]"
                     for k in ("psnr_return_vs_before", "psnr_return_vs_ground_truth", "psnr_away_vs_before")]
            lines.append(f"| {name} ({len(v['actions'])} turns) | " + " | ".join(cells)
                         + f" | {'yes' if v['ground_truth_exact'] else 'NO'} |")
        lines.append("")
    lr = r.get("long_rollout")
    if lr:
        lines += [
            "### Long rollouts",
            "",
            f"{lr['episodes']} unseen worlds, {lr['horizon']} steps of random play. Drift = total-variation distance "
            "of the colour histogram to the first frame's (0 = same colours, 1 = disjoint).",
            "",
            "| step | PSNR to ground truth (dB) | drift: model | drift: ground truth | pixel std: model "
            "| pixel std: ground truth |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for step, v in lr["at"].items():
            lines.append(f"| {step} | {v['psnr_to_ground_truth']:.2f} | {v['model_histogram_tv']:.3f} | "
                         f"{v['ground_truth_histogram_tv']:.3f} | {v['model_frame_std']:.1f} | "
                         f"{v['ground_truth_frame_std']:.1f} |")
        lines.append("")
    for title, path in (images or {}).items():
        lines += [f"![{title}]({path})", ""]
    return lines
