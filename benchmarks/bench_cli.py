"""genie-bench: benchmark suites of generated tasks on unseen worlds, in the world model and in the ground truth.

    genie-bench list
    genie-bench run tasks --agent random --episodes 32 --model default --judge default --out runs/bench/random
    genie-bench run tasks --agent bc=runs/agents/bc --tasks open-red-door go-to-object
    genie-bench run consistency --consistency-preset small --out runs/bench/consistency
    genie-bench run fidelity --episodes 32 --horizon 64 --long-horizon 600 --out runs/bench/fidelity
    genie-bench run agreement --agent random --agent bc=runs/agents/bc --agent ppo-genie=runs/agents/ppo_genie
    genie-bench run speed --batches 1 16 64 --num-steps 1 2 3 4 --speed-guidance 1 1.5
    genie-bench report --results benchmarks/results runs/bench --out BENCHMARKS.md

`run` writes into --out (default runs/bench/SUITE): SUITE.json (every number, the episodes and their seeds, the
command, the machine), report.md (the same section BENCHMARKS.md gets), PNG plots and sample videos. Suites:

- tasks: success rate per task [95% bootstrap CI], mean and IQM over tasks [stratified bootstrap], in GenieWorld
  (success = the judge or --reward-fn) and in the 3D BabyAI world (success = BabyAI's verifier);
- consistency: does the model hold a world? still, look-back, counterfactual action accuracy, approach, interaction,
  rollout drift, each beside its do-nothing baseline (benchmarks/consistency.py), with contact sheets;
- fidelity: PSNR / SSIM by horizon and DeltaPSNR (benchmarks/fidelity.py), turn-around memory, long-rollout drift;
- agreement: success in GenieWorld vs the ground truth over agents x tasks, Pearson and Spearman with CIs;
- speed: GenieWorld env-steps/s by batch and sampler setting, FLOPs per frame, share of the measured matmul peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from world_model.cli_arguments import add_arguments, from_namespace
from world_model.checkpoint import CheckpointError, write_json

PROG = "genie-bench"
SUITES = {
    "consistency": "does the model hold a world? still, look-back, counterfactual actions, approach, interaction",
    "tasks": "success rates of one agent on generated tasks in unseen worlds, in GenieWorld and in the ground truth",
    "fidelity": "world model vs ground truth: PSNR/SSIM by horizon, DeltaPSNR, turn-around memory, long-rollout drift",
    "agreement": "does success inside GenieWorld rank agents x tasks like the ground truth? (Pearson, Spearman)",
    "speed": "GenieWorld env-steps/s by batch and sampler setting, FLOPs per frame, share of the matmul peak",
}


@dataclass(frozen=True)
class RunArgs:
    agent: tuple[str, ...] = ("random",)
    """tasks / agreement: agent name(s) from `genie-bench list`; NAME=PATH gives a trained agent its checkpoint"""
    agent_path: str | None = None
    """tasks: checkpoint folder of the (one) trained --agent (same as --agent NAME=PATH)"""
    greedy: bool = False
    """tasks / agreement: trained agents take their most likely action instead of sampling it"""
    tasks: tuple[str, ...] = ()
    """tasks / agreement: task names (default: every task of `genie-bench list`)"""
    episodes: int = 32
    """tasks / agreement: episodes (unseen worlds) per task and world; fidelity: worlds per perspective"""
    worlds: str = "test"
    """tasks / agreement: the level-seed range episodes come from: test (held out) or train"""
    where: tuple[str, ...] = ("genie", "ground_truth")
    """tasks: the worlds to run in: genie (the world model) and/or ground_truth (3D BabyAI)"""
    model: str = "default"
    """world-model checkpoint: default (the shipped one) or a checkpoint folder"""
    sampler: str | None = None
    """world-model sampler settings replacing the checkpoint's, KEY=VALUE[,...], e.g. num_steps=2,sigma_min=0.5
    (keys: world_model.sampler.SamplerConfig's fields and context_sigma)"""
    judge: str = "default"
    """success judge deciding GenieWorld success: default, a judge folder, or none (then --reward-fn decides)"""
    judge_threshold: float = 0.5
    """success probability above which the judge counts the mission done"""
    reward_fn: str | None = None
    """GenieWorld reward_fn as module:function; its `terminated` is the success (overrides the judge)"""
    batch: int = 16
    """tasks / agreement: GenieWorld episodes run side by side in one batch"""
    max_steps: int | None = None
    """tasks / agreement: cap on every task's step limit (default: the task's own, see `genie-bench list`)"""
    seed: int = 0
    """seed of level-seed draws, agent sampling and world-model noise (same seed -> same numbers)"""
    out: str | None = None
    """output folder (default: runs/bench/SUITE)"""
    videos: int = 1
    """sample videos per task (tasks) or per measurement (fidelity); 0 writes none"""
    video_format: str = "gif"
    """gif or mp4"""
    consistency_preset: str = "default"
    """consistency: small (8 worlds, ~2 min on 2 cores), default (32 worlds) or full (64 worlds, 600-step rollouts)"""
    horizon: int = 64
    """fidelity: autoregressive horizon of the PSNR/SSIM measurement (steps)"""
    views: tuple[str, ...] = ("first_person", "top_down")
    """fidelity: perspectives to measure"""
    guidance: tuple[float, ...] = (1.0, 1.5, 3.0)
    """fidelity: classifier-free guidance weights compared by DeltaPSNR"""
    memory_episodes: int = 16
    """fidelity: worlds of the turn-around memory test"""
    warmup: int = 4
    """fidelity: moves before turning around"""
    long_episodes: int = 8
    """fidelity: worlds of the long rollout"""
    long_horizon: int = 600
    """fidelity: steps of the long rollout"""
    batches: tuple[int, ...] = (1, 16, 64)
    """speed: worlds per batch to time"""
    num_steps: tuple[int, ...] = (1, 2, 3, 4)
    """speed: denoising steps per frame to time"""
    speed_guidance: tuple[float, ...] = (1.0, 1.5)
    """speed: guidance weights to time (1 = one branch; > 1 = action and null branches)"""
    repeats: int = 10
    """speed: timed steps per setting (the median is reported)"""
    matmul_n: int = 2048
    """speed: side of the square matmul that measures the machine's peak"""
    gt_steps: int = 1000
    """speed: ground-truth steps to time per level"""
    from_results: tuple[str, ...] = ()
    """agreement: build it from existing tasks.json files instead of running the agents"""
    threads: int | None = None
    """torch threads (default: torch's choice; speed numbers record it)"""
    quiet: bool = False
    """no progress bars"""


class UsageError(ValueError):
    """A command line that cannot run: says what to change."""


# ---------------------------------------------------------------------------------------------- list


def cmd_list() -> str:
    from agents.registry import AGENTS
    from genie_env.tasks import TASKS

    lines = ["suites:"]
    lines += [f"  {name:<10} {text}" for name, text in SUITES.items()]
    lines += ["", "tasks (unseen worlds = BabyAI3D test seeds):"]
    lines += [f"  {t.name:<18} {t.level:<13} max {t.max_steps:>3} steps  {t.instruction}" for t in TASKS.values()]
    lines += ["", "agents:"]
    for spec in AGENTS.values():
        extra = " [ground truth only]" if spec.ground_truth_only else ""
        train = f"  (checkpoint: {spec.train_command})" if spec.train_command else ""
        lines.append(f"  {spec.name:<10} {spec.description}{extra}{train}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- helpers


def _agents(args: RunArgs) -> list[tuple[str, str | None]]:
    """(name, path) per --agent, from NAME or NAME=PATH (and --agent-path for a single agent)."""
    out = []
    for item in args.agent:
        name, sep, path = item.partition("=")
        out.append((name, path if sep else None))
    if args.agent_path is not None:
        if len(out) != 1 or out[0][1] is not None:
            raise UsageError("--agent-path goes with exactly one --agent NAME; for several use --agent NAME=PATH")
        out[0] = (out[0][0], args.agent_path)
    return out


def _load_agent(name: str, path: str | None, greedy: bool):
    from agents.registry import make_agent

    return make_agent(name, path, greedy=greedy)


def _describe_agent(agent, path: str | None) -> dict:
    d = agent.describe()
    d["label"] = agent.name if path is None else f"{agent.name}@{Path(path).name}"
    return d


def _world_model(args: RunArgs):
    from genie_env.genie_world import load_world_model
    from world_model.sampler import parse_settings

    settings = parse_settings(args.sampler or "")  # a bad setting: ValueError, reported as a usage error
    wm = load_world_model(args.model)
    return wm.with_sampler(**settings) if settings else wm


def _judge(args: RunArgs):
    if args.judge.strip().lower() == "none":
        return None
    from genie_env.genie_world import load_judge

    return load_judge(args.judge)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def _write_videos(out: Path, clips: dict[str, np.ndarray], fmt: str) -> list[str]:
    from genie_env.data_cli import write_video

    folder = out / "videos"
    folder.mkdir(exist_ok=True)
    names = []
    for name, frames in clips.items():
        path = folder / f"{name}.{fmt}"
        write_video(path, frames, fps=8.0, scale=2)
        names.append(str(path.relative_to(out)))
    return names


def _side_by_side(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    """Two clips (T, H, W, 3) next to each other, the shorter one holding its last frame (or black if absent)."""
    clips = [c for c in (a, b) if c is not None]
    T = max(len(c) for c in clips)
    ref = clips[0]
    out = []
    for c in (a, b):
        if c is None:
            c = np.zeros((1, *ref.shape[1:]), np.uint8)
        out.append(np.concatenate([c, np.repeat(c[-1:], T - len(c), axis=0)]))
    return np.concatenate(out, axis=2)


# ---------------------------------------------------------------------------------------------- suites


def run_tasks_suite(args: RunArgs, out: Path) -> dict:
    from benchmarks import tasks as tasks_mod
    from genie_env.tasks import TASKS

    agents = _agents(args)
    if len(agents) != 1:
        raise UsageError("the tasks suite evaluates one agent; run it once per agent, or use the agreement suite")
    name, path = agents[0]
    agent = _load_agent(name, path, args.greedy)
    needs_genie = "genie" in args.where and not agent.needs_ground_truth
    wm = _world_model(args) if needs_genie else None
    judge, reward_fn = (_judge(args), _reward_fn(args)) if needs_genie else (None, None)
    if needs_genie and judge is None and reward_fn is None:
        raise UsageError("GenieWorld success needs a judge or a reward function: pass --judge default (or a judge "
                         "folder) or --reward-fn module:function, or run only --where ground_truth")
    task_names = list(args.tasks) or list(TASKS)
    result, samples = tasks_mod.run_tasks(
        agent, task_names, args.episodes, args.worlds, args.seed, wm=wm, judge=judge, reward_fn=reward_fn,
        judge_threshold=args.judge_threshold, batch=args.batch, max_steps=args.max_steps, which=args.where,
        videos=args.videos, progress=not args.quiet)
    result = {"agent": _describe_agent(agent, path), "episodes": args.episodes, "worlds": args.worlds,
              "seed": args.seed, "batch": args.batch, "where": list(args.where),
              "model": args.model if needs_genie else None, "judge": args.judge if needs_genie else None,
              "judge_threshold": args.judge_threshold, "reward_fn": args.reward_fn, **result}
    tasks_mod.plot(result, out / "tasks.png")
    result["figures"] = {"success per task": "tasks.png"}
    clips = {}
    for task in task_names:
        for e in range(args.videos):
            g, t = samples.get(f"{task}/genie", []), samples.get(f"{task}/ground_truth", [])
            a, b = (g[e] if e < len(g) else None), (t[e] if e < len(t) else None)
            if a is not None or b is not None:
                which = "_vs_".join(w for w, c in (("genie", a), ("ground_truth", b)) if c is not None)
                clips[f"{task}_{e}_{which}"] = _side_by_side(a, b) if a is not None and b is not None else (
                    a if a is not None else b)
    result["videos"] = _write_videos(out, clips, args.video_format) if clips else []
    return result


def run_consistency_suite(args: RunArgs, out: Path) -> dict:
    from benchmarks import consistency

    if args.consistency_preset not in consistency.PRESETS:
        raise UsageError(f"--consistency-preset must be one of {', '.join(consistency.PRESETS)}, got "
                         f"{args.consistency_preset!r}")
    cfg = dataclasses.replace(consistency.PRESETS[args.consistency_preset], seed=args.seed)
    wm = _world_model(args)
    result = {"model": args.model, "preset": args.consistency_preset, "sampler": wm.config.sampler.to_dict(),
              **consistency.evaluate(wm, cfg, sheets=out / "sheets", progress=not args.quiet)}
    result["figures"] = {f"contact sheet: {p.stem}": f"sheets/{p.name}" for p in sorted((out / "sheets").glob("*.png"))}
    return result


def run_fidelity_suite(args: RunArgs, out: Path, command: str, machine: dict) -> dict:
    from benchmarks import memory
    from benchmarks.fidelity import evaluate

    wm = _world_model(args)
    progress = not args.quiet
    fidelity = {"model": args.model, "sampler": wm.config.sampler.to_dict(), "machine": machine, "command": command,
                **evaluate(wm, args.episodes, args.horizon, list(args.views), list(args.guidance), args.seed,
                           progress=progress)}
    turn, turn_clips = memory.turn_around(wm, args.memory_episodes, args.warmup, seed=args.seed)
    long, long_clips = memory.long_rollout(wm, args.long_episodes, args.long_horizon, seed=args.seed)
    result = {"model": args.model, "sampler": wm.config.sampler.to_dict(), "seed": args.seed, "fidelity": fidelity,
              "memory": turn, "long_rollout": long}
    memory.plot_turn_around(turn, out / "memory.png")
    memory.plot_long_rollout(long, out / "long_rollout.png")
    result["figures"] = {"turn-around memory": "memory.png", "long-rollout drift": "long_rollout.png"}
    clips = {}
    if args.videos:
        clips.update({f"turn_{k}_model_vs_ground_truth": v for k, v in turn_clips.items()})
        clips.update({f"{k}_model_vs_ground_truth": v for k, v in long_clips.items()})
    result["videos"] = _write_videos(out, clips, args.video_format) if clips else []
    return result


def run_agreement_suite(args: RunArgs, out: Path) -> dict:
    from benchmarks import agreement, tasks as tasks_mod
    from genie_env.tasks import TASKS

    runs = []
    if args.from_results:
        for p in args.from_results:
            r = json.loads(Path(p).read_text())
            if r.get("benchmark") != "genie-bench-tasks":
                raise UsageError(f"{p} is not a tasks result (genie-bench run tasks ... writes tasks.json)")
            runs.append(r)
    else:
        agents = _agents(args)
        wm = _world_model(args)
        judge, reward_fn = _judge(args), _reward_fn(args)
        if judge is None and reward_fn is None:
            raise UsageError("GenieWorld success needs a judge or a reward function: pass --judge default (or a "
                             "judge folder) or --reward-fn module:function")
        task_names = list(args.tasks) or list(TASKS)
        for name, path in agents:
            agent = _load_agent(name, path, args.greedy)
            if agent.needs_ground_truth:
                print(f"{PROG}: {name} acts only in the ground truth; it has no GenieWorld score to compare, skipped",
                      file=sys.stderr)
                continue
            r, _ = tasks_mod.run_tasks(agent, task_names, args.episodes, args.worlds, args.seed, wm=wm, judge=judge,
                                       reward_fn=reward_fn, judge_threshold=args.judge_threshold, batch=args.batch,
                                       max_steps=args.max_steps, videos=0, progress=not args.quiet)
            runs.append({"benchmark": "genie-bench-tasks", "agent": _describe_agent(agent, path),
                         "episodes": args.episodes, "worlds": args.worlds, "seed": args.seed, "batch": args.batch,
                         "model": args.model, "judge": args.judge, "reward_fn": args.reward_fn, **r})
    if not runs:
        raise UsageError("no agent with a GenieWorld score to compare; pass --agent NAME (random, bc=DIR, ...)")
    first = runs[0]
    result = {"model": first.get("model", args.model), "judge": first.get("judge", args.judge),
              "reward_fn": first.get("reward_fn", args.reward_fn), "seed": args.seed,
              "from_results": list(args.from_results), **agreement.agreement(runs, seed=args.seed)}
    agreement.plot(result, out / "agreement.png")
    result["figures"] = {"agreement": "agreement.png"}
    return result


def run_speed_suite(args: RunArgs, out: Path) -> dict:
    from benchmarks import speed

    wm = _world_model(args)
    result = {"model": args.model, **speed.run_speed(
        wm, args.batches, args.num_steps, args.speed_guidance, args.repeats, args.matmul_n, gt_steps=args.gt_steps,
        seed=args.seed, progress=not args.quiet)}
    speed.plot(result, out / "speed.png")
    result["figures"] = {"env-steps/s": "speed.png"}
    return result


def _reward_fn(args: RunArgs):
    from agents.reward_fn import load_reward_fn

    return load_reward_fn(args.reward_fn)


def cmd_run(suite: str, args: RunArgs, argv: Sequence[str]) -> Path:
    """Run one suite; returns the path of its JSON."""
    import torch

    from benchmarks.machine import describe_machine
    from benchmarks.report import section_for

    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    if args.video_format not in ("gif", "mp4"):
        raise UsageError(f"--video-format must be gif or mp4, got {args.video_format!r}")
    if args.episodes < 1 or args.batch < 1 or args.videos < 0:
        raise UsageError("--episodes and --batch must be >= 1 and --videos >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/bench/{suite}")
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join([PROG, *argv])
    machine = describe_machine()
    if suite == "consistency":
        result = run_consistency_suite(args, out)
    elif suite == "tasks":
        result = run_tasks_suite(args, out)
    elif suite == "fidelity":
        result = run_fidelity_suite(args, out, command, machine)
    elif suite == "agreement":
        result = run_agreement_suite(args, out)
    elif suite == "speed":
        result = run_speed_suite(args, out)
    else:
        raise UsageError(f"suite {suite!r} has no runner")  # unreachable: SUITES is checked above
    result = {"benchmark": f"genie-bench-{suite}", "suite": suite, "command": command, "machine": machine,
              "arguments": dataclasses.asdict(args), **result}
    path = out / f"{suite}.json"
    write_json(path, result, indent=1, default=_json_default)
    lines = [f"# genie-bench {suite}", ""] + section_for(json.loads(path.read_text()), path, out)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the suites, tasks and agents")
    run = sub.add_parser("run", help="run one suite and write JSON, report.md, plots and videos")
    run.add_argument("suite", choices=sorted(SUITES), help="the suite to run")
    add_arguments(run, RunArgs)
    rep = sub.add_parser("report", help="write BENCHMARKS.md from saved results")
    rep.add_argument("--results", nargs="+", default=["benchmarks/results"],
                     help="folders holding result JSON files (searched recursively)")
    rep.add_argument("--out", default="BENCHMARKS.md", help="the Markdown file to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = build_parser().parse_args(argv)
    try:
        if ns.command == "list":
            print(cmd_list())
        elif ns.command == "run":
            path = cmd_run(ns.suite, from_namespace(RunArgs, ns), argv)
            print(f"[{PROG}] wrote {path} and {path.parent / 'report.md'}")
        elif ns.command == "report":
            from benchmarks.report import write

            print(f"[{PROG}] wrote {write(ns.results, ns.out)}")
    except (UsageError, ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
