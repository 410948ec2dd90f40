"""Does the world model hold a world? Still scenes stay still, seen views come back, actions do what they say.

    python -m benchmarks.consistency [--model default] [--preset small|default|full] [--out FILE] [--sheets DIR]

The ground-truth 3D BabyAI world and the world model are driven by the same scripted actions on unseen worlds
(level seeds from ``TEST_SEEDS``), per view (first person, top-down). Every figure has its *do-nothing baseline*
beside it (hold the prompt frame, or copy the last ground-truth context frame) and a 95% percentile-bootstrap
interval over worlds (:func:`benchmarks.stats.bootstrap_ci`). PSNR is in dB, capped at :data:`world_model.metrics.PSNR_CAP` (60 dB,
what identical frames score). Scenarios:

- **still**: the model is prompted with the world's first frame and steps ``noop``; PSNR of its frame after
  1 / 8 / 20 / 64 noops to the prompt. The ground truth does not change under noop, so the baseline (the prompt
  held) scores the cap exactly.
- **look_back**: from the first frame, ``(left, right) x k`` and ``(right, left) x k``: every frame from the
  second step on returns to the view of two steps before; and ``turn_around_left`` / ``_right``, 4 turns that
  return to the start. Per sequence: ``return_vs_own``, the returning frame against the model's own frame it
  returns to (memory: does what it showed come back?; the prompt for the first return); ``return_vs_truth``,
  the returning frame against the true frame it returns to (the ground truth returns exactly,
  ``ground_truth_exact``); ``all_vs_truth``, every frame of the sequence against the truth (does it turn at all?
  the held prompt scores the cap on the returns to the start, so a still model must be read off this one).
- **counterfactual**: a ground-truth context (``warmup`` random moves, then a look-around of 4 left turns, so
  every direction has been seen; its last ``context_frames`` frames), then one step forked under every action.
  The actions whose true next frames are identical (noop, and usually pickup / drop / toggle, and forward when it
  is blocked) are merged into one *class*; a world has n classes (its distinct true next frames). An action's
  generated frame is *right* when its PSNR to its own class's true frame is strictly greater than to every other
  class's. A world's accuracy is the mean over its classes of the share of the class's actions that are right
  (each distinct outcome counts once, however many actions lead to it); ``overall`` is the mean over worlds.
  ``chance`` = mean of 1/n (a frame drawn at random among the n true ones). ``copy_last``, the baseline that
  returns the last context frame for every action, is right only for the unchanged class, so it scores exactly
  1/n per world, i.e. chance. ``autoencoder`` (models with ``encode`` / ``decode``) scores the true next frames
  encoded and decoded: the ceiling of a dynamics model that predicts every latent exactly, which the autoencoder
  sets where the outcomes differ in a few pixels (the top-down agent on large grids). ``per_action``: the share of
  worlds where that action's frame is right.
  The true frame under each action comes from a ``copy.deepcopy`` of the ground-truth env (checked against a
  replay of the level seed and actions in the tests).
- **approach**: worlds and a turn prefix (none, left, right, or two lefts) where ``forward x k`` really moves
  every step in the ground truth; the model gets the true frames up to there as context and steps forward k
  times. Per step: model PSNR to the truth, hold-the-context-frame PSNR, and their difference (``gain``).
- **interaction**: states just before the BabyAI bot's first ``toggle`` that changes the frame (opening a door)
  and its first such ``pickup`` (the object leaves the floor and is carried), the bot's last ``context`` true
  frames as context (padded in front by the first frame under noop, which is also true). ``share``: the share of
  worlds where the model's frame is nearer (PSNR) the true "after" frame than the "before" frame; the baseline
  (copy the before frame) scores 0.
- **rollout**: random play (:func:`benchmarks.ground_truth.random_actions`) from the first frame; at steps
  1 / 16 / 64 (and 600 in the full preset; ``horizon`` says where it stopped): PSNR to the truth,
  ``colour_distance`` (Euclidean distance of the frames' mean RGB, 0-255 units, 0 = same mean colour) and
  ``sharpness_ratio`` (variance of the grey-level Laplacian of the frame / of the true frame: 1 = as much fine
  detail, < 1 blurrier), beside the held prompt.

JSON: ``{"benchmark": "consistency", "model", "command", "machine", "preset", "config", "sampler", "wall_s",
"cpu_s" (CPU seconds of all the process's threads: the machine may be shared), "cap_db", "views": {view:
{scenario: ...}}, "headline": {view: {...}}}``; :func:`section` renders it as Markdown.
Contact sheets (``--sheets DIR``): ``<view>_<scenario>.png``, for a few worlds the true frames over the model's.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.ground_truth import EVAL_LEVELS, GroundTruth, draw_worlds, random_actions
from benchmarks.machine import describe_machine, in_words
from benchmarks.result_file import command_line
from benchmarks.stats import mean_ci
from genie_env.babyai3d import ACTION_MEANINGS, TEST_SEEDS
from world_model.checkpoint import write_json
from world_model.metrics import PSNR_CAP, psnr
from world_model.sampler import parse_settings

NOOP, LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = (ACTION_MEANINGS.index(name) for name in (
    "noop", "turn_left", "turn_right", "forward", "pickup", "drop", "toggle"))
#: Levels with doors the bot opens, and levels with objects it picks up (the interaction scenarios).
TOGGLE_LEVELS = ("OpenDoor", "OpenTwoDoors", "OpenRedDoor", "UnlockLocal", "KeyCorridorS3R1")
PICKUP_LEVELS = ("PickupLoc", "UnlockLocal", "PutNextLocal", "KeyCorridorS3R1")
SCENARIOS = ("still", "look_back", "counterfactual", "approach", "interaction", "rollout")


@dataclass(frozen=True)
class ConsistencyConfig:
    """What the suite runs. worlds: unseen worlds per view and scenario (>= 1); views: subset of
    ("first_person", "top_down"); still_steps / rollout_steps: the step counts reported (rollout_steps' largest
    is the horizon); look_back_k: (left, right) pairs; approach_k: forward steps; warmup: random moves before the
    counterfactual look-around; interaction_context: true frames given before the toggle / pickup (>= 1);
    batch: worlds stepped together (memory and speed; results do not depend on it except through the per-chunk
    generator seeds); sheet_worlds: worlds shown per contact sheet; seed: worlds, actions and sampler noise."""

    worlds: int = 32
    views: tuple[str, ...] = ("first_person", "top_down")
    still_steps: tuple[int, ...] = (1, 8, 20, 64)
    look_back_k: int = 4
    approach_k: int = 3
    warmup: int = 4
    interaction_context: int = 8
    rollout_steps: tuple[int, ...] = (1, 16, 64)
    levels: tuple[str, ...] = EVAL_LEVELS
    batch: int = 16
    sheet_worlds: int = 3
    seed: int = 0

    def __post_init__(self):
        if self.worlds < 1 or self.batch < 1 or self.look_back_k < 1 or self.approach_k < 1:
            raise ValueError("worlds, batch, look_back_k and approach_k must be >= 1")
        if self.interaction_context < 1 or self.warmup < 0:
            raise ValueError("interaction_context must be >= 1 and warmup >= 0")
        bad = [v for v in self.views if v not in ("first_person", "top_down")]
        if bad or not self.views:
            raise ValueError(f"views must be a non-empty subset of ('first_person', 'top_down'), got {self.views}")
        for name in ("still_steps", "rollout_steps"):
            steps = getattr(self, name)
            if not steps or min(steps) < 1 or list(steps) != sorted(set(steps)):
                raise ValueError(f"{name} must be increasing step counts >= 1, got {steps}")

    @property
    def horizon(self) -> int:
        return self.rollout_steps[-1]


#: small: about 2 minutes on 2 cores (intervals still shown, wide); default: under 10 minutes; full: 64 worlds and
#: 600-step rollouts (the project's figures, about an hour on 2 cores).
PRESETS = {
    "small": ConsistencyConfig(worlds=8, batch=8),
    "default": ConsistencyConfig(),
    "full": ConsistencyConfig(worlds=64, rollout_steps=(1, 16, 64, 600)),
}


# ---------------------------------------------------------------------------------------------- figures


def mean_rgb_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of the mean RGB colours of frames (..., H, W, 3), 0-255 units."""
    ma = a.astype(np.float64).mean(axis=(-3, -2))
    mb = b.astype(np.float64).mean(axis=(-3, -2))
    return np.sqrt(((ma - mb) ** 2).sum(axis=-1))


def laplacian_variance(frames: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of the grey level of frames (..., H, W, 3) (fine detail)."""
    g = frames.astype(np.float64).mean(axis=-1)
    lap = (4 * g[..., 1:-1, 1:-1] - g[..., :-2, 1:-1] - g[..., 2:, 1:-1] - g[..., 1:-1, :-2] - g[..., 1:-1, 2:])
    return lap.var(axis=(-2, -1))


def action_classes(truth: np.ndarray) -> np.ndarray:
    """Class of each action from its true next frame (A, H, W, 3): actions with identical frames share a class,
    numbered 0.. in order of first appearance. Returns int (A,)."""
    labels = np.full(len(truth), -1)
    n = 0
    for a in range(len(truth)):
        if labels[a] >= 0:
            continue
        same = [b for b in range(a, len(truth)) if labels[b] < 0 and np.array_equal(truth[a], truth[b])]
        labels[same] = n
        n += 1
    return labels


def counterfactual_scores(generated: np.ndarray, truth: np.ndarray) -> dict:
    """Score one-step counterfactuals of N worlds: generated and truth uint8 (N, A, H, W, 3), [n, a] the frame
    under action a. Returns per-world arrays: ``right`` bool (N, A) (the action's frame strictly nearer, by mean
    squared error, i.e. by uncapped PSNR, its own class's true frame than every other class's), ``accuracy`` (N,) (mean over classes of the share of
    the class's actions that are right), ``classes`` int (N,), ``chance`` (N,) = 1 / classes."""
    N, A = generated.shape[:2]
    right = np.zeros((N, A), dtype=bool)
    accuracy, classes = np.zeros(N), np.zeros(N, dtype=np.int64)
    for n in range(N):
        labels = action_classes(truth[n])
        k = int(labels.max()) + 1
        reps = np.stack([truth[n][int(np.flatnonzero(labels == c)[0])] for c in range(k)]).astype(np.float64)
        for a in range(A):
            # mean squared error, not the capped PSNR: frames within the cap of two classes would tie
            mse = ((generated[n, a][None].astype(np.float64) - reps) ** 2).mean(axis=(1, 2, 3))  # (k,)
            right[n, a] = bool(np.all(np.delete(mse, labels[a]) > mse[labels[a]]))
        accuracy[n] = np.mean([right[n, labels == c].mean() for c in range(k)])
        classes[n] = k
    return {"right": right, "accuracy": accuracy, "classes": classes, "chance": 1.0 / classes}


# ---------------------------------------------------------------------------------------------- ground truth


def pad_context(frames: list[np.ndarray], actions: list[int], length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `length` frames of a true trajectory (frames[i + 1] follows actions[i]) and the actions between
    them; a shorter one is padded in front with its first frame under noop (what the world really shows)."""
    frames, actions = list(frames), list(actions)
    while len(frames) < length:
        frames.insert(0, frames[0])
        actions.insert(0, NOOP)
    return np.stack(frames[-length:]), np.array(actions[len(actions) - (length - 1):] if length > 1 else [],
                                                dtype=np.int64)


def find_approach(truth: GroundTruth, worlds, k: int) -> list[tuple[str, int, list[int]]]:
    """For each world, the first turn prefix ((), left, right, left-left) after which k forwards all move in the
    ground truth (first person: a move changes the frame); worlds with none are dropped."""
    found = []
    for level, s in worlds:
        for prefix in ([], [LEFT], [RIGHT], [LEFT, LEFT]):
            frames = truth.play(level, s, "first_person", prefix + [FORWARD] * k)
            moves = frames[len(prefix) + 1:]
            if all(not np.array_equal(moves[i], frames[len(prefix) + i]) for i in range(k)):
                found.append((level, s, prefix))
                break
    return found


def find_interaction(truth: GroundTruth, action: int, n: int, seed: int, levels, max_steps: int = 64,
                     max_tries: int | None = None) -> list[tuple[str, int, list[int]]]:
    """Up to n worlds (level, level seed, the bot's actions before it) where the BabyAI bot's `action` (toggle /
    pickup) changes the first-person frame; worlds are drawn from `levels` in turn until n are found."""
    found, rng = [], np.random.default_rng(seed)
    max_tries = 4 * n + 8 if max_tries is None else max_tries
    for i in range(max_tries):
        if len(found) == n:
            break
        level, s = levels[i % len(levels)], TEST_SEEDS.start + int(rng.integers(TEST_SEEDS.size))
        env, frames = truth.env(level, s, "first_person")
        bot, taken = env.make_bot(), []
        for _ in range(max_steps):
            a = bot.act(taken[-1] if taken else None)
            frame, *_ = env.step(a)
            if a == action and not np.array_equal(frame, frames[-1]):
                found.append((level, s, taken))
                break
            taken.append(a)
            frames.append(frame)
    return found


# ---------------------------------------------------------------------------------------------- model


def _prompted(wm, context: np.ndarray, context_actions: np.ndarray | None, seed: int, batch: int,
              view: str | None = None):
    """The worlds prompted with their context frames, rendered in `view` (None: unknown), `batch` at a time: (state,
    generator, chunk size) per chunk, each chunk with its own seeded generator."""
    for lo in range(0, len(context), batch):
        sl = slice(lo, lo + batch)
        g = torch.Generator().manual_seed(seed * 100_003 + lo)
        prompt_actions = None if context_actions is None or context.shape[1] == 1 else context_actions[sl]
        yield wm.reset(context[sl], prompt_actions=prompt_actions, generator=g, view=view), g, len(context[sl])


def generate(wm, context: np.ndarray, context_actions: np.ndarray | None, actions: np.ndarray, seed: int,
             batch: int, view: str | None = None) -> np.ndarray:
    """Model frames uint8 (B, T, S, S, 3) after context frames (B, k, S, S, 3) (actions between them (B, k-1) or
    None), rendered in `view`, under actions (B, T)."""
    out = []
    prompted = _prompted(wm, context, context_actions, seed, batch, view)
    for (state, g, _), lo in zip(prompted, range(0, len(context), batch)):
        frames = []
        for t in range(actions.shape[1]):
            f, state = wm.step(state, actions[lo:lo + batch, t], generator=g)
            frames.append(f)
        out.append(np.stack(frames, axis=1))
    return np.concatenate(out)


def branch(wm, context: np.ndarray, context_actions: np.ndarray | None, num_actions: int, seed: int,
           batch: int, view: str | None = None) -> np.ndarray:
    """One step forked under every action from the same context (rendered in `view`): uint8 (B, A, S, S, 3)."""
    out = []
    for state, g, b in _prompted(wm, context, context_actions, seed, batch, view):
        out.append(np.stack([wm.step(wm.fork(state), np.full(b, a), generator=g)[0] for a in range(num_actions)],
                            axis=1))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------- scenarios


def _cap_context(wm, length: int) -> int:
    return max(1, min(length, int(wm.config.dynamics.context_frames)))


def still(wm, truth: GroundTruth, view: str, cfg: ConsistencyConfig, worlds) -> tuple[dict, dict]:
    T = cfg.still_steps[-1]
    gt = np.stack([truth.play(lvl, s, view, [NOOP] * T) for lvl, s in worlds])  # (N, T+1, ...)
    prompt = gt[:, :1]
    model = generate(wm, prompt, None, np.full((len(worlds), T), NOOP), cfg.seed + 1, cfg.batch, view)
    steps = {}
    for n in cfg.still_steps:
        steps[str(n)] = {"model": mean_ci(psnr(model[:, n - 1], gt[:, 0]), cfg.seed),
                         "baseline": mean_ci(psnr(gt[:, 0], gt[:, n]), cfg.seed)}
    cols = [0] + list(cfg.still_steps)
    rows = _sheet_rows(gt, np.concatenate([prompt, model], axis=1), cols, cfg.sheet_worlds)
    return ({"baseline_is": "hold the prompt", "steps": steps},
            {"rows": rows, "columns": ["prompt"] + [f"noop x{n}" for n in cfg.still_steps]})


def look_back_sequences(k: int) -> dict[str, list[int]]:
    """The look-back action sequences: (left, right) x k, (right, left) x k, and 4 left / 4 right turns."""
    return {f"left_right_x{k}": [LEFT, RIGHT] * k, f"right_left_x{k}": [RIGHT, LEFT] * k,
            "turn_around_left": [LEFT] * 4, "turn_around_right": [RIGHT] * 4}


def look_back(wm, truth: GroundTruth, view: str, cfg: ConsistencyConfig, worlds) -> tuple[dict, dict]:
    result, sheet_rows, N = {}, [], len(worlds)
    for j, (name, seq) in enumerate(look_back_sequences(cfg.look_back_k).items()):
        gt = np.stack([truth.play(lvl, s, view, seq) for lvl, s in worlds])  # (N, T+1, ...)
        model = generate(wm, gt[:, :1], None, np.tile(seq, (N, 1)), cfg.seed + 10 + j, cfg.batch, view)
        model = np.concatenate([gt[:, :1], model], axis=1)  # frame 0 is the prompt
        T = len(seq)
        back = 4 if name.startswith("turn_around") else 2
        ret = list(range(back, T + 1, back)) if back == 4 else list(range(2, T + 1))
        exact = all(np.array_equal(gt[:, t], gt[:, t - back]) for t in ret)
        own = np.mean([psnr(model[:, t], model[:, t - back]) for t in ret], axis=0)
        vs_truth = np.mean([psnr(model[:, t], gt[:, t - back]) for t in ret], axis=0)
        hold_truth = np.mean([psnr(gt[:, 0], gt[:, t - back]) for t in ret], axis=0)
        steps = range(1, T + 1)
        result[name] = {
            "actions": [ACTION_MEANINGS[a] for a in seq], "returning_steps": ret, "ground_truth_exact": bool(exact),
            "return_vs_own": mean_ci(own, cfg.seed),
            "return_vs_truth": {"model": mean_ci(vs_truth, cfg.seed), "baseline": mean_ci(hold_truth, cfg.seed)},
            "all_vs_truth": {
                "model": mean_ci(np.mean([psnr(model[:, t], gt[:, t]) for t in steps], axis=0), cfg.seed),
                "baseline": mean_ci(np.mean([psnr(gt[:, 0], gt[:, t]) for t in steps], axis=0), cfg.seed)},
        }
        if j in (0, 2):
            tag = "".join("L" if a == LEFT else "R" for a in seq[:2]) if j == 0 else "LLLL"
            sheet_rows += _sheet_rows(gt, model, list(range(T + 1)), max(1, cfg.sheet_worlds - 1), tag=tag)
    return ({"baseline_is": "hold the prompt", **result},
            {"rows": sheet_rows, "columns": ["start"] + [f"step {t}" for t in range(1, 2 * cfg.look_back_k + 1)]})


def autoencode(wm, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """uint8 frames (..., H, W, 3) encoded and decoded by `wm`'s autoencoder: what a dynamics model that predicted
    every latent exactly would show."""
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.concatenate([wm.decode(wm.encode(flat[i:i + batch])) for i in range(0, len(flat), batch)])
    return out.reshape(frames.shape)


def counterfactual(wm, truth: GroundTruth, view: str, cfg: ConsistencyConfig, worlds) -> tuple[dict, dict]:
    rng = np.random.default_rng(cfg.seed + 20)
    A = wm.num_actions if hasattr(wm, "num_actions") else len(ACTION_MEANINGS)
    length = _cap_context(wm, 1 + cfg.warmup + 4)
    contexts, context_actions, true_next = [], [], []
    for lvl, s in worlds:
        prefix = [int(a) for a in rng.choice([FORWARD, LEFT, RIGHT], p=[0.5, 0.25, 0.25], size=cfg.warmup)]
        prefix += [LEFT] * 4
        env, frames = truth.env(lvl, s, view, prefix)
        nxt = []
        for a in range(A):
            e = copy.deepcopy(env)
            nxt.append(e.step(a)[0])
        f, acts = pad_context(frames, prefix, length)
        contexts.append(f)
        context_actions.append(acts)
        true_next.append(np.stack(nxt))
    ctx, ctx_a, gt = np.stack(contexts), np.stack(context_actions), np.stack(true_next)  # gt (N, A, ...)
    model = branch(wm, ctx, ctx_a, A, cfg.seed + 21, cfg.batch, view)
    scores = counterfactual_scores(model, gt)
    copy_last = counterfactual_scores(np.repeat(ctx[:, -1:], A, axis=1), gt)
    overall = {"model": mean_ci(scores["accuracy"], cfg.seed),
               "copy_last": mean_ci(copy_last["accuracy"], cfg.seed),
               "chance": float(scores["chance"].mean())}
    ceiling = None
    if hasattr(wm, "encode") and hasattr(wm, "decode"):  # a perfect dynamics model, decoded by this autoencoder
        ceiling = counterfactual_scores(autoencode(wm, gt), gt)
        overall["autoencoder"] = mean_ci(ceiling["accuracy"], cfg.seed)
    result = {
        "context_frames": int(length), "warmup": cfg.warmup,
        "overall": overall,
        "classes": mean_ci(scores["classes"], cfg.seed),
        "per_action": {ACTION_MEANINGS[a]: {
            "model": mean_ci(scores["right"][:, a], cfg.seed),
            "copy_last": mean_ci(copy_last["right"][:, a], cfg.seed),
            **({"autoencoder": mean_ci(ceiling["right"][:, a], cfg.seed)} if ceiling is not None else {}),
            "chance": float(scores["chance"].mean()),
            "changes_frame_share": float(np.mean([not np.array_equal(gt[n, a], ctx[n, -1]) for n in range(len(gt))])),
        } for a in range(A)},
    }
    w = min(cfg.sheet_worlds, len(worlds))
    rows = []
    for n in range(w):
        rows += [(f"w{n} truth", [ctx[n, -1]] + list(gt[n])), (f"w{n} model", [ctx[n, -1]] + list(model[n]))]
    return result, {"rows": rows, "columns": ["context"] + [m.replace("turn_", "") for m in ACTION_MEANINGS[:A]]}


def approach(wm, truth: GroundTruth, view: str, cfg: ConsistencyConfig, found) -> tuple[dict, dict]:
    k = cfg.approach_k
    if not found:
        return {"worlds": 0, "k": k, "steps": {}}, {"rows": [], "columns": []}
    length = _cap_context(wm, 3)
    ctxs, ctx_as, gts = [], [], []
    for lvl, s, prefix in found:
        frames = truth.play(lvl, s, view, prefix + [FORWARD] * k)
        f, a = pad_context(list(frames[:len(prefix) + 1]), prefix, length)
        ctxs.append(f)
        ctx_as.append(a)
        gts.append(frames[len(prefix):])  # (k+1, ...): the last context frame, then the moves
    ctx, ctx_a, gt = np.stack(ctxs), np.stack(ctx_as), np.stack(gts)
    model = generate(wm, ctx, ctx_a, np.full((len(found), k), FORWARD), cfg.seed + 30, cfg.batch, view)
    steps = {}
    for t in range(1, k + 1):
        m = psnr(model[:, t - 1], gt[:, t])
        h = psnr(gt[:, 0], gt[:, t])
        steps[str(t)] = {"model": mean_ci(m, cfg.seed), "baseline": mean_ci(h, cfg.seed),
                         "gain": mean_ci(m - h, cfg.seed)}
    result = {"worlds": len(found), "k": k, "baseline_is": "hold the last context frame",
              "turn_prefixes": [[ACTION_MEANINGS[a] for a in p] for _, _, p in found], "steps": steps}
    rows = _sheet_rows(gt, np.concatenate([gt[:, :1], model], axis=1), list(range(k + 1)), cfg.sheet_worlds)
    return result, {"rows": rows, "columns": ["context"] + [f"fwd x{t}" for t in range(1, k + 1)]}


def interaction(wm, truth: GroundTruth, view: str, cfg: ConsistencyConfig, found: dict) -> tuple[dict, dict]:
    result, rows = {"baseline_is": "copy the before frame"}, []
    length = _cap_context(wm, cfg.interaction_context)
    for name, action in (("toggle", TOGGLE), ("pickup", PICKUP)):
        cases = found[name]
        if not cases:
            result[name] = {"worlds": 0}
            continue
        ctxs, ctx_as, after = [], [], []
        for lvl, s, prefix in cases:
            frames = truth.play(lvl, s, view, prefix + [action])
            f, a = pad_context(list(frames[:-1]), prefix, length)
            ctxs.append(f)
            ctx_as.append(a)
            after.append(frames[-1])
        ctx, ctx_a, after = np.stack(ctxs), np.stack(ctx_as), np.stack(after)
        before = ctx[:, -1]
        model = generate(wm, ctx, ctx_a, np.full((len(cases), 1), action), cfg.seed + 40 + action, cfg.batch,
                         view)[:, 0]
        nearer = psnr(model, after) > psnr(model, before)
        result[name] = {"worlds": len(cases), "levels": sorted({lvl for lvl, _, _ in cases}),
                        "share": {"model": mean_ci(nearer.astype(float), cfg.seed),
                                  "baseline": mean_ci((psnr(before, after) > psnr(before, before)).astype(float),
                                                      cfg.seed)},
                        "visible_change_share": float(np.mean([not np.array_equal(a, b)
                                                               for a, b in zip(after, before)]))}
        for n in range(min(cfg.sheet_worlds, len(cases))):
            rows.append((f"{name} w{n}", [before[n], after[n], model[n]]))
    return result, {"rows": rows, "columns": ["before", "truth after", "model"]}


def rollout(wm, truth: GroundTruth, view: str, cfg: ConsistencyConfig, worlds) -> tuple[dict, dict]:
    H = cfg.horizon
    rng = np.random.default_rng(cfg.seed + 50)
    actions = np.stack([random_actions(rng, H) for _ in worlds])
    gt = np.stack([truth.play(lvl, s, view, actions[i]) for i, (lvl, s) in enumerate(worlds)])  # (N, H+1, ...)
    model = generate(wm, gt[:, :1], None, actions, cfg.seed + 51, cfg.batch, view)
    steps = {}
    for t in cfg.rollout_steps:
        m, g, p = model[:, t - 1], gt[:, t], gt[:, 0]
        lv = laplacian_variance(g)
        steps[str(t)] = {
            "psnr": {"model": mean_ci(psnr(m, g), cfg.seed), "baseline": mean_ci(psnr(p, g), cfg.seed)},
            "colour_distance": {"model": mean_ci(mean_rgb_distance(m, g), cfg.seed),
                                "baseline": mean_ci(mean_rgb_distance(p, g), cfg.seed)},
            "sharpness_ratio": {"model": mean_ci(laplacian_variance(m) / lv, cfg.seed),
                                "baseline": mean_ci(laplacian_variance(p) / lv, cfg.seed)},
        }
    result = {"horizon": H, "policy": "benchmarks.ground_truth.random_actions", "baseline_is": "hold the prompt",
              "steps": steps}
    cols = [0] + list(cfg.rollout_steps)
    rows = _sheet_rows(gt, np.concatenate([gt[:, :1], model], axis=1), cols, cfg.sheet_worlds)
    return result, {"rows": rows, "columns": ["prompt"] + [f"step {t}" for t in cfg.rollout_steps]}


# ---------------------------------------------------------------------------------------------- suite


def evaluate(wm, config: ConsistencyConfig = PRESETS["default"], sheets: str | Path | None = None,
             progress: bool = True) -> dict:
    """Run the suite on `wm` (a WorldModel, or anything with its reset / step / fork and config). Returns
    {"config", "views": {view: {scenario: figures}}, "headline": {view: {...}}, "worlds": {...}}; writes contact
    sheets <view>_<scenario>.png to `sheets` if given."""
    from tqdm import tqdm

    cfg = config
    if tuple(wm.config.action_meanings) != ACTION_MEANINGS:
        raise ValueError(f"the consistency suite drives the 3D BabyAI world, whose actions are {list(ACTION_MEANINGS)}; "
                         f"this model's are {list(wm.config.action_meanings)}: measure a model trained on its "
                         "recordings")
    size = int(wm.config.autoencoder.image_size)
    truth = GroundTruth(size)
    worlds = draw_worlds(cfg.worlds, cfg.seed, cfg.levels)
    bar = tqdm(total=2 + len(cfg.views) * len(SCENARIOS), desc="consistency", disable=not progress)
    try:
        approach_worlds = find_approach(truth, draw_worlds(3 * cfg.worlds, cfg.seed + 7, cfg.levels),
                                        cfg.approach_k)[:cfg.worlds]
        bar.update()
        found = {"toggle": find_interaction(truth, TOGGLE, cfg.worlds, cfg.seed + 8, TOGGLE_LEVELS),
                 "pickup": find_interaction(truth, PICKUP, cfg.worlds, cfg.seed + 9, PICKUP_LEVELS)}
        bar.update()
        views = {}
        for view in cfg.views:
            r = {}
            for name, fn, arg in (("still", still, worlds), ("look_back", look_back, worlds),
                                  ("counterfactual", counterfactual, worlds), ("approach", approach, approach_worlds),
                                  ("interaction", interaction, found), ("rollout", rollout, worlds)):
                bar.set_postfix_str(f"{view} {name}")
                r[name], sheet = fn(wm, truth, view, cfg, arg)
                if sheets is not None and sheet["rows"]:
                    contact_sheet(sheet["rows"], sheet["columns"], Path(sheets) / f"{view}_{name}.png")
                bar.update()
            views[view] = r
    finally:
        truth.close()
        bar.close()
    return {"config": config_dict(cfg), "cap_db": PSNR_CAP,
            "worlds": {"main": [[lvl, s] for lvl, s in worlds],
                       "approach": [[lvl, s] for lvl, s, _ in approach_worlds],
                       **{k: [[lvl, s] for lvl, s, _ in v] for k, v in found.items()}},
            "views": views, "headline": {v: headline(r) for v, r in views.items()}}


def config_dict(cfg: ConsistencyConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def headline(r: dict) -> dict:
    """The figures the project's floors are set on, for one view (model, baseline), None where not measured."""

    def get(d, *keys):
        for k in keys:
            if not isinstance(d, dict) or d.get(k) is None:
                return None
            d = d[k]
        return d

    lb = next((v for k, v in r["look_back"].items() if k.startswith("left_right")), {})
    ap = r["approach"]
    return {
        "still_20": get(r, "still", "steps", "20", "model", "mean"),
        "look_back_own": get(lb, "return_vs_own", "mean"),
        "look_back_truth": get(lb, "return_vs_truth", "model", "mean"),
        "counterfactual_accuracy": get(r, "counterfactual", "overall", "model", "mean"),
        "counterfactual_chance": get(r, "counterfactual", "overall", "chance"),
        "approach_gain": get(ap, "steps", str(ap.get("k")), "gain", "mean"),
        "toggle_opens": get(r, "interaction", "toggle", "share", "model", "mean"),
        "pickup_carries": get(r, "interaction", "pickup", "share", "model", "mean"),
        "rollout_psnr": get(r, "rollout", "steps", str(r["rollout"]["horizon"]), "psnr", "model", "mean"),
    }


#: The headline figures compared across models in one table: headline key -> column title.
HEADLINE_COLUMNS = {"still_20": "still@20 (dB)", "look_back_own": "look-back vs own (dB)",
                    "look_back_truth": "look-back vs truth (dB)", "counterfactual_accuracy": "counterfactual acc.",
                    "counterfactual_chance": "chance", "approach_gain": "approach gain (dB)",
                    "toggle_opens": "toggle opens", "pickup_carries": "pickup carries",
                    "rollout_psnr": "rollout PSNR (dB)"}


def headline_table(rows: list[tuple[str, dict]], heading: str = "###") -> list[str]:
    """Markdown comparing models: per view (under `heading` + the view's name), a row per (name, result of
    :func:`run`) with its model (and the level its past frames are cached at), training steps where recorded, worlds
    and :data:`HEADLINE_COLUMNS` (means over worlds; the intervals are in the results)."""
    lines = []
    for view in [v for v in ("first_person", "top_down") if any(v in r["views"] for _, r in rows)]:
        lines += [f"{heading} {view.replace('_', ' ')}", "",
                  "| result | model | steps | worlds | " + " | ".join(HEADLINE_COLUMNS.values()) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(HEADLINE_COLUMNS)]
        for name, r in rows:
            if view not in r["views"]:
                continue
            h = headline(r["views"][view])
            cells = ["n/a" if h[k] is None else f"{h[k]:.2f}" for k in HEADLINE_COLUMNS]
            cached = f" (past frames at {r['context_sigma']})" if r.get("context_sigma") is not None else ""
            steps = r.get("training_step")
            lines.append(f"| {name} | `{r.get('model')}`{cached} | {'?' if steps is None else steps} | "
                         f"{r['config']['worlds']} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------- contact sheets


def _sheet_rows(gt: np.ndarray, model: np.ndarray, cols: list[int], worlds: int, tag: str = "") -> list:
    """Rows (label, frames) of true frames over model frames at time indices `cols`, for the first `worlds`."""
    rows = []
    for n in range(min(worlds, len(gt))):
        label = f"{tag[:10]} w{n}" if tag else f"w{n}"
        rows += [(f"{label} truth", [gt[n, c] for c in cols]), (f"{label} model", [model[n, c] for c in cols])]
    return rows


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], columns: list[str], path: str | Path,
                  gap: int = 2) -> Path:
    """A PNG grid: one labelled row per (label, frames) (frames uint8 (H, W, 3), rows may be shorter), column
    labels on top. Returns the path."""
    from PIL import Image, ImageDraw

    h, w = rows[0][1][0].shape[:2]
    ncols = max(len(columns), max(len(f) for _, f in rows))
    label_w, head_h = 84, 12
    img = Image.new("RGB", (label_w + ncols * (w + gap), head_h + len(rows) * (h + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for c, name in enumerate(columns):
        draw.text((label_w + c * (w + gap) + 1, 0), name[:11], fill=(0, 0, 0))
    for r, (label, frames) in enumerate(rows):
        y = head_h + r * (h + gap)
        draw.text((1, y + h // 2 - 5), label[:14], fill=(0, 0, 0))
        for c, f in enumerate(frames):
            img.paste(Image.fromarray(np.asarray(f, dtype=np.uint8)), (label_w + c * (w + gap), y))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)
    return path


# ---------------------------------------------------------------------------------------------- report


def _fmt(mc: dict | None, digits: int = 1) -> str:
    if mc is None:
        return "n/a"
    lo, hi = mc["ci95"]
    return f"{mc['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def section(result: dict) -> str:
    """Markdown for BENCHMARKS.md: per view, one table of every figure (model, do-nothing baseline, 95% CIs)."""
    cfg = result.get("config", {})
    wall = f", {result['wall_s']:.0f} s" if result.get("wall_s") else ""
    machine = in_words(result["machine"]) if result.get("machine") else "not recorded"
    lines = ["## Consistency: does the model hold a world?", "",
             f"{cfg.get('worlds', '?')} unseen worlds per scenario and view (preset `{result.get('preset', '?')}`); "
             f"PSNR in dB capped at {result.get('cap_db', PSNR_CAP):g}; mean [95% bootstrap CI over worlds]. "
             "Baseline: hold the prompt / copy the last true frame (do nothing). "
             f"Command: `{result.get('command', 'python -m benchmarks.consistency')}` on model "
             f"`{result.get('model', 'default')}`. Machine: {machine}{wall}.", ""]
    for view, r in result["views"].items():
        lines += [f"### {view.replace('_', ' ')}", "", "| scenario | figure | model | baseline |",
                  "|---|---|---:|---:|"]
        for n, v in r["still"]["steps"].items():
            lines.append(f"| still | PSNR after noop x{n} vs prompt | {_fmt(v['model'])} | {_fmt(v['baseline'])} |")
        for name, v in r["look_back"].items():
            if not isinstance(v, dict):
                continue
            lines.append(f"| look-back {name} | return vs own earlier frame | {_fmt(v['return_vs_own'])} | "
                         f"{PSNR_CAP:.1f} (trivially) |")
            lines.append(f"| look-back {name} | return vs truth | {_fmt(v['return_vs_truth']['model'])} | "
                         f"{_fmt(v['return_vs_truth']['baseline'])} |")
            lines.append(f"| look-back {name} | every frame vs truth | {_fmt(v['all_vs_truth']['model'])} | "
                         f"{_fmt(v['all_vs_truth']['baseline'])} |")
        cf = r["counterfactual"]
        lines.append(f"| counterfactual | accuracy, all classes (chance {cf['overall']['chance']:.2f}, "
                     f"{cf['classes']['mean']:.1f} classes) | {_fmt(cf['overall']['model'], 2)} | "
                     f"{_fmt(cf['overall']['copy_last'], 2)} |")
        if "autoencoder" in cf["overall"]:
            lines.append(f"| counterfactual | ceiling: the true frames through this autoencoder | "
                         f"{_fmt(cf['overall']['autoencoder'], 2)} | |")
        for a, v in cf["per_action"].items():
            lines.append(f"| counterfactual | {a} right (changes the frame in {v['changes_frame_share']:.0%}) | "
                         f"{_fmt(v['model'], 2)} | {_fmt(v['copy_last'], 2)} |")
        ap = r["approach"]
        for t, v in ap["steps"].items():
            lines.append(f"| approach ({ap['worlds']} worlds) | forward x{t}: PSNR vs truth (gain "
                         f"{_fmt(v['gain'])}) | {_fmt(v['model'])} | {_fmt(v['baseline'])} |")
        for name in ("toggle", "pickup"):
            v = r["interaction"].get(name, {})
            if v.get("worlds"):
                lines.append(f"| interaction ({v['worlds']} worlds) | {name}: nearer the true after frame | "
                             f"{_fmt(v['share']['model'], 2)} | {_fmt(v['share']['baseline'], 2)} |")
        ro = r["rollout"]
        for t, v in ro["steps"].items():
            for key, label, d in (("psnr", "PSNR vs truth", 1), ("colour_distance", "mean-RGB distance", 1),
                                  ("sharpness_ratio", "sharpness ratio", 2)):
                lines.append(f"| rollout (random play) | step {t}: {label} | {_fmt(v[key]['model'], d)} | "
                             f"{_fmt(v[key]['baseline'], d)} |")
        lines.append("")
    if cfg.get("rollout_steps") and max(cfg["rollout_steps"]) < 600:
        lines += [f"Rollouts stop at {max(cfg['rollout_steps'])} steps in this preset (600 in `--preset full`).", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI


def run(model: str = "default", preset: str = "default", sheets: str | Path | None = None,
        out: str | Path | None = None, command: str | None = None, progress: bool = True,
        sampler: dict | None = None, **overrides) -> dict:
    """Load `model`, run the suite with PRESETS[preset] (fields replaced by `overrides`, e.g. worlds=16), and
    return the full JSON report (also written to `out` if given). sampler: settings that replace the
    checkpoint's (`WorldModel.with_sampler`, e.g. {"num_steps": 3, "context_sigma": 0.1})."""
    from world_model import WorldModel

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    wm = WorldModel.load(model)
    if sampler:
        wm = wm.with_sampler(**sampler)
    start, cpu = time.perf_counter(), time.process_time()
    figures = evaluate(wm, cfg, sheets=sheets, progress=progress)
    report = {"benchmark": "consistency", "model": str(model), "preset": preset,
              "command": command or "python -m benchmarks.consistency", "machine": describe_machine(),
              "sampler": wm.config.sampler.to_dict(), "context_sigma": wm.config.diffusion.context_sigma,
              "training_step": getattr(wm, "training_metadata", {}).get("step"),
              "wall_s": round(time.perf_counter() - start, 1),
              "cpu_s": round(time.process_time() - cpu, 1), **figures}
    if out:
        write_json(out, report)
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a checkpoint folder")
    parser.add_argument("--preset", default="default", choices=list(PRESETS))
    parser.add_argument("--worlds", type=int, help="unseen worlds per scenario and view (overrides the preset)")
    parser.add_argument("--views", nargs="+", choices=["first_person", "top_down"])
    parser.add_argument("--batch", type=int, help="worlds stepped together")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--sheets", help="write contact sheets (PNG, truth over model) to this folder")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown section instead of the JSON")
    parser.add_argument("--sampler", metavar="KEY=VALUE[,...]",
                        help="sampler settings replacing the checkpoint's, e.g. num_steps=3,sigma_min=0.1 or "
                             "guidance=1.0 (keys: world_model.sampler.SamplerConfig's fields "
                             "and context_sigma)")
    args = parser.parse_args(argv)
    try:
        sampler = parse_settings(args.sampler or "")
    except ValueError as e:
        parser.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run(args.model, args.preset, sheets=args.sheets, out=args.out,
                 command=command_line("benchmarks.consistency", argv).strip(),
                 worlds=args.worlds, views=tuple(args.views) if args.views else None, batch=args.batch,
                 seed=args.seed, sampler=sampler)
    print(section(report) if args.markdown else json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
