"""The *tasks* suite: generated tasks on unseen worlds, run inside GenieWorld and in the 3D BabyAI ground truth.

The tasks themselves (:class:`genie_env.tasks.Task`, :data:`genie_env.tasks.TASKS`) live with the env. Each task is a
BabyAI level whose levels and missions MiniGrid generates ("open the red door", "go to the blue ball",
"put the red key next to the green box"). An episode is one *level seed* from the test range (``TEST_SEEDS``, never
recorded for training; ``worlds="train"`` measures the training worlds instead):

- in the **ground truth** (``BabyAI3D``) the agent plays that world; success = the BabyAI verifier's verdict;
- in **GenieWorld** the world model starts from that world's first frame (``reset(options={"level_seed": k})``), the
  mission is the world's own; success = the success judge's verdict (its probability passes the threshold) or, with
  a ``reward_fn``, its ``terminated``. Episodes run N at a time in one ``GenieWorldVectorEnv`` batch.

Both worlds stop an episode at the task's step limit (``max_steps``). Per task and world: the success rate with a
95% percentile-bootstrap interval over episodes; across tasks: the mean and the IQM with 95% stratified-bootstrap
intervals (:mod:`benchmarks.stats`). Every episode is stored with its level seed, agent seed, mission, steps and
outcome, so any number can be recomputed; the GenieWorld noise comes from one generator per task seeded by
``seed``, and episodes fill batch slots in order, so rerunning with the same ``seed`` and ``batch`` reproduces it.

JSON (``tasks.json``; ``world`` is "genie" or "ground_truth"): ``benchmark`` = "genie-bench-tasks", ``command``,
``machine``, ``arguments``, ``agent`` (its description and ``label``), ``worlds``, ``episodes``, ``seed``, ``batch``,
``where``, ``model``, ``judge``, ``judge_threshold``, ``reward_fn``, ``tasks[name]`` = {``level``, ``instruction``,
``max_steps``, ``[world]``: {``success_rate``, ``ci95``, ``mean_steps``, ``episodes``: [{level_seed, agent_seed,
mission, success, steps, return}]} (or {``skipped``: reason})}, ``aggregate[world]`` = {``mean``, ``mean_ci95``,
``iqm``, ``iqm_ci95``, ``tasks``}, ``figures``, ``videos``.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from agents.agent import Agent
from benchmarks.stats import aggregate_with_ci, bootstrap_ci
from genie_env.babyai3d import SEED_RANGES, BabyAI3DEnv
from genie_env.mission import MissionObservation
from genie_env.tasks import Task, get_task

#: The two worlds an agent is evaluated in.
WORLD_NAMES = ("genie", "ground_truth")
WORLD_TITLES = {"genie": "GenieWorld (world model)", "ground_truth": "3D BabyAI (ground truth)"}


def episode_seeds(task: Task, episodes: int, worlds: str = "test", seed: int = 0) -> list[int]:
    """`episodes` distinct level seeds of the `worlds` range for `task`, a pure function of (task, seed)."""
    if worlds not in SEED_RANGES:
        raise ValueError(f"unknown worlds {worlds!r}; choose one of {', '.join(SEED_RANGES)}")
    seeds = SEED_RANGES[worlds]
    if not 1 <= episodes <= seeds.size:
        raise ValueError(f"episodes must be in [1, {seeds.size}], got {episodes}")
    rng = np.random.default_rng([seed, zlib.crc32(task.name.encode())])
    return [seeds.start + int(i) for i in rng.choice(seeds.size, size=episodes, replace=False)]


def agent_seed(seed: int, level_seed: int) -> int:
    """The agent's sampling seed for one episode."""
    return int(np.random.SeedSequence([seed, level_seed]).generate_state(1)[0])


def _episode_record(level_seed: int, a_seed: int, mission: str, success: bool, steps: int, ret: float) -> dict:
    return {"level_seed": int(level_seed), "agent_seed": int(a_seed), "mission": mission, "success": bool(success),
            "steps": int(steps), "return": round(float(ret), 4)}


# ---------------------------------------------------------------------------------------------- the two worlds


def run_ground_truth(agent: Agent, task: Task, level_seeds: Sequence[int], size: int, seed: int = 0,
                     max_steps: int | None = None, keep_frames: int = 0,
                     on_episode: Callable[[], Any] | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """Play every level seed in the 3D BabyAI world. Returns (episode records, frames of the first `keep_frames`
    episodes as uint8 (T, S, S, 3))."""
    limit = min(task.max_steps, max_steps or task.max_steps)
    env = MissionObservation(BabyAI3DEnv(level=task.level, size=(size, size), worlds="test"))
    records, videos = [], []
    try:
        for e, level_seed in enumerate(level_seeds):
            obs, info = env.reset(options={"level_seed": int(level_seed)})
            a_seed = agent_seed(seed, level_seed)
            agent.reset(env, seed=a_seed)
            mission, frames, ret, success, steps = info["mission"], [obs["image"]], 0.0, False, 0
            for steps in range(1, limit + 1):
                obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
                ret += reward
                if e < keep_frames:
                    frames.append(obs["image"])
                if terminated or truncated:
                    success = bool(info["success"])
                    break
            records.append(_episode_record(level_seed, a_seed, mission, success, steps, ret))
            if e < keep_frames:
                videos.append(np.stack(frames))
            if on_episode:
                on_episode()
    finally:
        env.close()
    return records, videos


def run_genie(agent: Agent, task: Task, level_seeds: Sequence[int], wm, judge=None, reward_fn=None,
              judge_threshold: float = 0.5, batch: int = 16, seed: int = 0, max_steps: int | None = None,
              keep_frames: int = 0, on_episode: Callable[[], Any] | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """Play every level seed inside GenieWorld, up to `batch` episodes at a time in one vector env.

    A world whose episode ends restarts from the next level seed in line (``reset_mask``); when none is left it
    idles. Success = terminated (judge or reward_fn). Returns (episode records in level-seed order, frames of the
    first `keep_frames` episodes).
    """
    from genie_env.genie_world_vector import GenieWorldVectorEnv

    if judge is None and reward_fn is None:
        raise ValueError("GenieWorld has no verifier: pass a success judge (--judge default or a judge folder) or a "
                         "reward function (--reward-fn module:function) to say when a task is done")
    limit = min(task.max_steps, max_steps or task.max_steps)
    n = len(level_seeds)
    B = max(1, min(int(batch), n))
    venv = GenieWorldVectorEnv(num_envs=B, model=wm, level=task.level, judge=judge, reward_fn=reward_fn,
                               judge_threshold=judge_threshold, mission_observation=True, max_episode_steps=limit)
    records: list[dict | None] = [None] * n
    frames: dict[int, list[np.ndarray]] = {e: [] for e in range(min(keep_frames, n))}
    slot_episode = list(range(B))  # episode index each world plays (-1: idle)
    agents = [agent.spawn() for _ in range(B)]
    next_episode = B
    try:
        obs, infos = venv.reset(seed=seed, options={"level_seed": [int(level_seeds[e]) for e in range(B)]})
        returns, missions, a_seeds = np.zeros(B), list(venv.missions), [0] * B

        def start(i: int, first_frame: np.ndarray) -> None:
            e = slot_episode[i]
            a_seeds[i] = agent_seed(seed, int(level_seeds[e]))
            agents[i].reset(venv, seed=a_seeds[i])  # an agent that needs the ground truth raises here
            returns[i], missions[i] = 0.0, venv.missions[i]
            if e in frames:
                frames[e].append(first_frame.copy())

        for i in range(B):
            start(i, obs["image"][i])
        while any(e >= 0 for e in slot_episode):
            actions = np.zeros(B, dtype=np.int64)
            for i, e in enumerate(slot_episode):
                if e >= 0:
                    actions[i] = agents[i].act({"image": obs["image"][i], "mission": obs["mission"][i]},
                                               {"mission": missions[i]})
            obs, rewards, terminated, truncated, infos = venv.step(actions)
            restart = np.zeros(B, dtype=bool)
            for i, e in enumerate(slot_episode):
                if e < 0:
                    continue
                returns[i] += rewards[i]
                done = bool(terminated[i] or truncated[i])
                if e in frames:
                    frames[e].append((_final_image(infos, i) if done else obs["image"][i]).copy())
                if not done:
                    continue
                steps = int(infos["final_info"]["step"][i])
                records[e] = _episode_record(level_seeds[e], a_seeds[i], missions[i], bool(terminated[i]), steps,
                                             returns[i])
                if on_episode:
                    on_episode()
                if next_episode < n:
                    slot_episode[i], next_episode = next_episode, next_episode + 1
                    restart[i] = True
                else:
                    slot_episode[i] = -1
            if restart.any():
                seeds = [int(level_seeds[e]) if restart[i] else int(level_seeds[0]) for i, e in enumerate(slot_episode)]
                obs, _ = venv.reset(options={"reset_mask": restart, "level_seed": seeds})
                for i in np.flatnonzero(restart):
                    start(int(i), obs["image"][i])
    finally:
        venv.close()
    return [r for r in records if r is not None], [np.stack(frames[e]) for e in sorted(frames)]


def _final_image(infos: dict, i: int) -> np.ndarray:
    """The last frame of world i's finished episode (GenieWorld's SAME_STEP autoreset keeps it in the infos)."""
    final = infos["final_obs"]
    return final["image"][i] if isinstance(final, dict) else final[i]["image"]


# ---------------------------------------------------------------------------------------------- the suite


def summarise(records: list[dict], seed: int = 0) -> dict:
    """Success rate, its 95% bootstrap interval, mean steps, and the episodes."""
    success = np.array([r["success"] for r in records], dtype=np.float64)
    lo, hi = bootstrap_ci(success, seed=seed)
    return {"success_rate": float(success.mean()), "ci95": [lo, hi],
            "mean_steps": float(np.mean([r["steps"] for r in records])), "episodes": records}


def run_tasks(agent: Agent, tasks: Sequence[str], episodes: int, worlds: str = "test", seed: int = 0,
              wm=None, judge=None, reward_fn=None, judge_threshold: float = 0.5, batch: int = 16,
              max_steps: int | None = None, size: int | None = None, which: Sequence[str] = WORLD_NAMES,
              videos: int = 1, progress: bool = True) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """Run `agent` on `tasks` in the worlds `which` ("genie" needs `wm`). Returns (the JSON result without run
    metadata, sample frames per "task/world" for the first `videos` episodes)."""
    for w in which:
        if w not in WORLD_NAMES:
            raise ValueError(f"unknown world {w!r}; choose from {', '.join(WORLD_NAMES)}")
    if "genie" in which and wm is None and not agent.needs_ground_truth:
        raise ValueError("the GenieWorld runs need a world model (--model default or a checkpoint folder)")
    size = int(wm.config.autoencoder.image_size) if wm is not None else int(size or 64)
    chosen = [get_task(t) for t in tasks]
    todo = sum(episodes for _ in chosen for w in which if not (w == "genie" and agent.needs_ground_truth))
    bar = tqdm(total=todo, desc=f"tasks ({agent.name})", unit="episode", disable=not progress)
    result: dict = {"tasks": {}, "aggregate": {}}
    samples: dict[str, list[np.ndarray]] = {}
    try:
        for task in chosen:
            level_seeds = episode_seeds(task, episodes, worlds, seed)
            entry: dict = {"level": task.level, "instruction": task.instruction,
                           "max_steps": min(task.max_steps, max_steps or task.max_steps)}
            for w in which:
                if w == "genie" and agent.needs_ground_truth:
                    entry[w] = {"skipped": f"the {agent.name} agent reads the true world state; it has no GenieWorld "
                                           "score"}
                    continue
                if w == "genie":
                    records, frames = run_genie(agent, task, level_seeds, wm, judge, reward_fn, judge_threshold,
                                                batch, seed, max_steps, videos, on_episode=bar.update)
                else:
                    records, frames = run_ground_truth(agent, task, level_seeds, size, seed, max_steps, videos,
                                                       on_episode=bar.update)
                entry[w] = summarise(records, seed)
                samples[f"{task.name}/{w}"] = frames
            result["tasks"][task.name] = entry
    finally:
        bar.close()
    for w in which:
        scores = {name: [ep["success"] for ep in t[w]["episodes"]] for name, t in result["tasks"].items()
                  if "episodes" in t.get(w, {})}
        if scores:
            result["aggregate"][w] = aggregate_with_ci(scores, seed=seed)
    return result, samples


# ---------------------------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "" if x is None or not np.isfinite(x) else f"{100 * x:.0f}%"


def _cell(entry: dict | None) -> str:
    if not entry:
        return ""
    if "skipped" in entry:
        return "n/a"
    lo, hi = entry["ci95"]
    return f"{_pct(entry['success_rate'])} [{_pct(lo)}, {_pct(hi)}]"


def section(r: dict, images: dict[str, str] | None = None) -> list[str]:
    """Markdown for one tasks result (`images`: figure name -> relative path)."""
    worlds = [w for w in WORLD_NAMES if any(w in t for t in r["tasks"].values())]
    agent = r["agent"]
    lines = [
        f"## Tasks on unseen worlds: agent `{agent['name']}`",
        "",
        f"`{r.get('command', 'genie-bench run tasks')}`: {r['episodes']} episodes per task on the {r['worlds']} "
        f"worlds (level seeds in the JSON), seed {r['seed']}{_genie_source(r) if 'genie' in worlds else ''}. "
        f"Success rate [95% bootstrap CI]. Machine: {_machine(r.get('machine', {}))}.",
        "",
        "| task | level | " + " | ".join(WORLD_TITLES[w] for w in worlds) + " |",
        "|---|---|" + "---:|" * len(worlds),
    ]
    for name, t in r["tasks"].items():
        lines.append(f"| {name} | {t['level']} | " + " | ".join(_cell(t.get(w)) for w in worlds) + " |")
    for stat in ("mean", "iqm"):
        cells = []
        for w in worlds:
            a = r["aggregate"].get(w)
            cells.append("" if a is None else f"**{_pct(a[stat])}** [{_pct(a[stat + '_ci95'][0])}, "
                                              f"{_pct(a[stat + '_ci95'][1])}]")
        lines.append(f"| **{stat.upper() if stat == 'iqm' else stat} over tasks** | | " + " | ".join(cells) + " |")
    lines.append("")
    for title, path in (images or {}).items():
        lines += [f"![{title}]({path})", ""]
    return lines


def _genie_source(r: dict) -> str:
    verdict = f"reward_fn `{r['reward_fn']}`" if r.get("reward_fn") else f"judge `{r.get('judge')}`"
    return f"; world model `{r.get('model')}`, GenieWorld success from the {verdict}"


def _machine(m: dict) -> str:
    return f"{m.get('cpu', '?')}, {m.get('cores_usable', '?')} usable cores, {m.get('memory_gb', '?')} GB"


def plot(r: dict, path) -> str:
    """Bar chart of success per task and world with 95% intervals (plus mean and IQM); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worlds = [w for w in WORLD_NAMES if any("episodes" in t.get(w, {}) for t in r["tasks"].values())]
    names = list(r["tasks"]) + ["mean", "IQM"]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(worlds))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(names)), 3.6))
    for j, w in enumerate(worlds):
        vals, lo, hi = [], [], []
        for name, t in r["tasks"].items():
            e = t.get(w, {})
            v = e.get("success_rate", np.nan)
            vals.append(v)
            lo.append(v - e["ci95"][0] if "ci95" in e else 0)
            hi.append(e["ci95"][1] - v if "ci95" in e else 0)
        a = r["aggregate"].get(w, {})
        for stat in ("mean", "iqm"):
            v = a.get(stat, np.nan)
            vals.append(v)
            ci = a.get(stat + "_ci95", [v, v])
            lo.append(v - ci[0])
            hi.append(ci[1] - v)
        ax.bar(x + (j - (len(worlds) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=3,
               label=WORLD_TITLES[w])
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(f"agent {r['agent']['name']}: {r['episodes']} episodes per task, {r['worlds']} worlds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
