"""The success judge on the world model's frames: does GenieWorld's reward fire where the ground truth's verifier does?

    python -m benchmarks.judge_on_dreams --judge default --recorded runs/data/test --dreamed runs/dream/test \
        --out benchmarks/results/judge_on_dreams.json

Inside GenieWorld the reward is the judge's verdict on generated frames. Two measurements on held-out (test-seed)
episodes, each beside the same judge on the recorded frames:

- ``dreamed``: the held-out recordings re-played inside the world model from their first frame (``genie-data
  dream``: the recorded actions, the model's frames, the verifier's success flags). Per judge and threshold:
  frame-level precision / recall / F1, the area under the ROC curve of its probabilities (success frames against
  the rest; 0.5 = no evidence), and episode-level agreement as GenieWorld uses the judge (an episode ends at its
  first firing; ``genie_env.judge.episode_verdicts``), overall and for the headline tasks' levels.
- ``one_step``: the event itself, from true context. For every solved episode the model predicts the success frame
  from the recorded frames before it (up to ``--context`` of them, with their actions) and, as the negative, the
  frame before it the same way; the judge reads the recorded frames before each, then the model's. Fire rates on
  both, their AUC, and the PSNR of the model's success frame to the recorded one. High here and low on ``dreamed``
  means the model renders the event but does not hold the world long enough to reach it; low on both means the
  judge does not recognise the model's rendering of it.

JSON: ``benchmark`` = "judge-on-dreams", ``model``, ``rows`` [{judge, episodes_from, levels, threshold, precision,
recall, f1, auc, episodes{...}, ...}], ``one_step`` [{judge, threshold, episodes, fires_model_success,
fires_recorded_success, fires_model_before, fires_recorded_before, auc_model, auc_recorded, psnr_success}],
``machine``, ``command``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe_machine, in_words
from benchmarks.result_file import command_line, publish
from genie_env.judge import JudgeWindows, SuccessJudge, judge_probabilities, judge_scores, roc_auc
from world_model.dataset import EpisodeDataset
from world_model.metrics import psnr

HEADLINE_LEVELS = ("OpenRedDoor", "GoToRedBall")
TABLE_THRESHOLD = 0.5


@torch.no_grad()
def one_step_frames(wm, episodes: EpisodeDataset, context: int, seed: int = 0) -> dict:
    """For every solved episode: the model's prediction of its first success frame t and of frame t - 1, each from
    the recorded frames before it (at most `context`) and their actions. Returns episode ids, t, and the two
    predicted frames uint8 (E, H, W, 3) (frame t - 1 is the prompt itself where t = 1: nothing to predict)."""
    g = torch.Generator().manual_seed(seed)
    ids, times, success, before = [], [], [], []
    for e in range(episodes.num_episodes):
        a, b = int(episodes.episode_offsets[e]), int(episodes.episode_offsets[e + 1])
        hits = np.flatnonzero(episodes.success[a:b])
        if not len(hits) or hits[0] == 0:
            continue
        t = int(hits[0])
        frames = []
        for target in (t, t - 1):
            if target == 0:
                frames.append(episodes.frames[a])
                continue
            lo = max(0, target - context)
            prompt = episodes.frames[a + lo:a + target][None]  # (1, k, H, W, 3)
            acts = episodes.actions[a + lo:a + target - 1][None]  # (1, k - 1)
            state = wm.reset(prompt, prompt_actions=acts if prompt.shape[1] > 1 else None, generator=g,
                             view=[str(episodes.views[e])])
            f, _ = wm.step(state, np.array([episodes.actions[a + target - 1]]), generator=g)
            frames.append(f[0])
        ids.append(e)
        times.append(t)
        success.append(frames[0])
        before.append(frames[1])
    return {"episodes": np.array(ids, int), "times": np.array(times, int), "success": np.stack(success),
            "before": np.stack(before)}


def _windows_ending(windows: JudgeWindows, ends: np.ndarray, last: np.ndarray | None) -> np.ndarray:
    """The judge's windows ending at global frames `ends`, the last frame replaced by `last` (E, H, W, 3)."""
    frames = windows.frames(ends).copy()  # (E, k, H, W, 3)
    if last is not None:
        frames[:, -1] = last
    return frames


def one_step(judge: SuccessJudge, windows: JudgeWindows, predicted: dict, threshold: float) -> dict:
    """Fire rates and AUC of the judge on the model's one-step success / before-success frames and on the recorded
    ones (the recorded frames before each as the rest of its window)."""
    ep = windows.episodes
    ends = ep.episode_offsets[predicted["episodes"]] + predicted["times"]  # global index of each success frame
    missions = [str(m) for m in ep.missions[predicted["episodes"]]]
    probs = {}
    for name, end, last in (("model_success", ends, predicted["success"]), ("recorded_success", ends, None),
                            ("model_before", ends - 1, predicted["before"]), ("recorded_before", ends - 1, None)):
        probs[name] = judge.predict(_windows_ending(windows, end, last), missions)
    both = lambda kind: (np.concatenate([probs[f"{kind}_success"], probs[f"{kind}_before"]]),  # noqa: E731
                         np.r_[np.ones(len(ends), bool), np.zeros(len(ends), bool)])
    return {"threshold": threshold, "episodes": int(len(ends)),
            **{f"fires_{k}": float((v > threshold).mean()) for k, v in probs.items()},
            "auc_model": roc_auc(*both("model")), "auc_recorded": roc_auc(*both("recorded")),
            "psnr_success": float(psnr(predicted["success"], ep.frames[ends]).mean())}


def _folders(root: str) -> list[Path]:
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and list(p.glob("shard_*.npz")))
    if not folders:
        raise SystemExit(f"no recordings under {root}: record held-out worlds (genie-data record --worlds test) and "
                         "dream them (genie-data dream)")
    return folders


def evaluate(judges: list[str], recorded: str, dreamed: str, model: str = "default",
             thresholds=(0.1, 0.3, 0.5, 0.7), context: int = 8, seed: int = 0) -> dict:
    data = {}  # (episodes_from, levels) -> EpisodeDataset, read once for every judge
    for name, root in (("recorded", recorded), ("dreamed", dreamed)):
        folders = _folders(root)
        data[name, "all"] = EpisodeDataset(folders)
        for lv in HEADLINE_LEVELS:
            if any(p.name == lv for p in folders):
                data[name, lv] = EpisodeDataset([p for p in folders if p.name == lv])
    from world_model.inference import WorldModel

    predicted = one_step_frames(WorldModel.load(model), data["recorded", "all"], context, seed)
    rows, steps = [], []
    for judge_name in judges:
        judge = SuccessJudge.load(judge_name)
        for (set_name, group), episodes in data.items():
            windows = JudgeWindows(episodes, judge.config.frames)
            probs = judge_probabilities(judge, windows)
            for thr in thresholds:
                rows.append({"judge": judge_name, "episodes_from": set_name, "levels": group,
                             **judge_scores(probs, windows, thr)})
        windows = JudgeWindows(data["recorded", "all"], judge.config.frames)
        for thr in thresholds:
            steps.append({"judge": judge_name, **one_step(judge, windows, predicted, thr)})
    return {"benchmark": "judge-on-dreams", "model": model, "recorded": recorded, "dreamed": dreamed,
            "context": context, "rows": rows, "one_step": steps}


def _f(x, digits=2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def section(r: dict) -> list[str]:
    machine = in_words(r["machine"]) if r.get("machine") else "not recorded"
    lines = [
        "## Success judge on generated frames",
        "",
        "GenieWorld's reward is the judge's verdict on the world model's frames. Held-out episodes as recorded and "
        "re-played inside the world model from their first frame (`genie-data dream`: recorded actions, the model's "
        "frames, the verifier's success flags); AUC of the judge's probability, success frames against the rest (0.5: "
        "no evidence); per episode as GenieWorld uses it (an episode ends at the judge's first firing). Threshold "
        f"{TABLE_THRESHOLD}; other thresholds and the headline tasks' levels are in the JSON.",
        "",
        f"`{r.get('command', 'python -m benchmarks.judge_on_dreams')}`. World model `{r.get('model')}`. Machine: "
        f"{machine}.",
        "",
        "| judge | episodes | frame AUC | precision | recall | fires when solved | on time | fires when unsolved |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["rows"]:
        if x["levels"] == "all" and x["threshold"] == TABLE_THRESHOLD:
            e = x["episodes"]
            lines.append(f"| `{x['judge']}` | {x['episodes_from']} ({e['solved']} solved / {e['unsolved']}) | "
                         f"{_f(x['auc'])} | {_f(x['precision'])} | {_f(x['recall'])} | "
                         f"{_f(e['fires_when_solved'])} | {_f(e['on_time_when_solved'])} | "
                         f"{_f(e['fires_when_unsolved'])} |")
    lines += [
        "",
        f"The event from true context: the model predicts each solved episode's success frame (and, as the negative, "
        f"the frame before it) from up to {r.get('context')} recorded frames before it; the judge reads the recorded "
        "frames before, then the model's or the recorded frame.",
        "",
        "| judge | episodes | fires on model / recorded success | fires on model / recorded frame before | AUC model "
        "/ recorded | PSNR of the model's success frame (dB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for x in r["one_step"]:
        if x["threshold"] == TABLE_THRESHOLD:
            lines.append(f"| `{x['judge']}` | {x['episodes']} | {_f(x['fires_model_success'])} / "
                         f"{_f(x['fires_recorded_success'])} | {_f(x['fires_model_before'])} / "
                         f"{_f(x['fires_recorded_before'])} | {_f(x['auc_model'])} / {_f(x['auc_recorded'])} | "
                         f"{_f(x['psnr_success'], 1)} |")
    return lines + [""]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judge", nargs="+", default=["default"], help="judges: default or checkpoint folders")
    parser.add_argument("--recorded", default="runs/data/test",
                        help="folder holding one held-out recording folder per level (default: runs/data/test)")
    parser.add_argument("--dreamed", default="runs/dream/test",
                        help="folder holding the same recordings dreamed, one folder per level (default: runs/dream/test)")
    parser.add_argument("--model", default="default", help="world model of the one-step frames (the dreamed ones' model)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7])
    parser.add_argument("--context", type=int, default=8, help="recorded frames before a one-step prediction (at most)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    thresholds = sorted(set(args.thresholds) | {TABLE_THRESHOLD})
    result = evaluate(args.judge, args.recorded, args.dreamed, args.model, thresholds, args.context, args.seed)
    result.update(machine=describe_machine(), command=command_line("benchmarks.judge_on_dreams", argv))
    return publish(result, args.out, section(result))


if __name__ == "__main__":
    main()
