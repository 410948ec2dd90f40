"""genie-data: record episode shards from a Gymnasium env, inspect them, export episodes as video.

    genie-data record --env genie_env/BabyAI3D-GoToLocal-v0 --frames 100000 --out data/gotolocal
    genie-data info --data data/gotolocal          # counts, and how often a step changes nothing
    genie-data export-video --data data/gotolocal --shard 0 --episode 3 --out ep3.mp4
    genie-data dream --data data/gotolocal --out data/gotolocal-dreamed   # its episodes inside the world model

Errors the user can fix (bad env id, unwritable folder, corrupt shard) print one line and exit
with code 2. An interrupted ``record`` resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from genie_env.recorder import (EXPLORE_WEIGHTS, MANIFEST_NAME, MIX_PRESETS, OTHER_ACTION_WEIGHT, POLICIES,
                               RecorderError, record)
from world_model.shards import ShardError, list_shards, read_shard, read_shard_index, shard_name

PROG = "genie-data"
VIDEO_SUFFIXES = (".mp4", ".gif")


class UsageError(ValueError):
    """The command line asks for something that does not exist (an episode, a file type)."""


# ----------------------------------------------------------------------------------------------
# video


def write_video(path: str | Path, frames: np.ndarray, fps: float = 10.0, scale: int = 4) -> Path:
    """Write (N, H, W, 3) uint8 frames as .mp4 (H.264 via imageio-ffmpeg) or .gif, each pixel
    upscaled to a `scale` x `scale` block (nearest neighbour) so small frames stay watchable.

    A .gif merges identical consecutive frames into one longer frame (Pillow does; the timing
    stays right), so it can hold fewer frames than given; an .mp4 holds exactly N.
    """
    import imageio.v2 as imageio  # imported here: only this command needs them
    import imageio.v3 as iio

    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"cannot write {path.name}: the video file must end in .mp4 or .gif")
    if scale < 1 or fps <= 0:
        raise UsageError(f"scale ({scale}) must be >= 1 and fps ({fps}) > 0")
    frames = np.asarray(frames, dtype=np.uint8)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)  # (N, H*scale, W*scale, 3)
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, frames, extension=".gif", duration=1000.0 / fps, loop=0)  # duration in ms
        return path
    # H.264 in yuv420p needs even sides: pad the bottom/right edge by one pixel if odd
    n, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with imageio.get_writer(path, format="FFMPEG", fps=fps, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


# ----------------------------------------------------------------------------------------------
# commands


def parse_weights(text: str, what: str) -> dict[str, float]:
    """'a=0.5,b=2' -> {"a": 0.5, "b": 2.0}."""
    weights = {}
    for part in text.split(","):
        name, eq, value = part.strip().partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            raise UsageError(f"{what} must look like name=weight,name=weight (e.g. forward=4,turn_left=2), "
                             f"not {text!r}")
    return weights


def cmd_record(args: argparse.Namespace) -> int:
    env_kwargs = {} if args.size is None else {"size": tuple(args.size)}
    if args.worlds is not None:
        env_kwargs["worlds"] = args.worlds
    policy, mix = args.policy, None
    if args.mix is not None:
        if policy != "mix":
            raise UsageError(f"--mix gives the weights of --policy mix; drop --policy {policy} or --mix")
        mix = parse_weights(args.mix, "--mix")
    action_weights = None if args.action_weights is None else parse_weights(args.action_weights, "--action-weights")
    summary = record(args.env, args.out, frames=args.frames, policy=policy, seed=args.seed,
                     episodes_per_shard=args.episodes_per_shard, env_kwargs=env_kwargs,
                     top_down_share=args.top_down_share, bot_epsilon=args.bot_epsilon,
                     max_episode_steps=args.max_episode_steps, progress=not args.quiet,
                     mix=mix, action_weights=action_weights, branch_every=args.branch_every,
                     top_down_cells=args.top_down_cells)
    branches = f", {summary.num_branch_frames} branch frames" if summary.num_branch_frames else ""
    print(f"{summary.out_dir}: {summary.num_frames} frames{branches}, {summary.num_episodes} episodes in "
          f"{summary.num_shards} shards ({summary.shards_written} written, {summary.shards_reused} "
          f"already there)")
    return 0


def cmd_dream(args: argparse.Namespace) -> int:
    # imported here: torch and the world model are only needed by this command
    from genie_env.dream import DreamError, dream
    from world_model.checkpoint import CheckpointError
    from world_model.dataset import DatasetError

    try:
        summary = dream(args.data, args.out, model=args.model, split=None if args.split == "all" else args.split,
                        policies=args.policies, max_episodes=args.max_episodes, seed=args.seed, batch=args.batch,
                        episodes_per_shard=args.episodes_per_shard, progress=not args.quiet)
    except (DreamError, DatasetError, CheckpointError) as e:
        raise UsageError(str(e)) from e
    print(f"{summary.out_dir}: {summary.num_frames} frames of {summary.num_episodes} episodes dreamed "
          f"({summary.shards_written} shards written, {summary.shards_reused} already there)")
    return 0


def cmd_export_video(args: argparse.Namespace) -> int:
    shard = read_shard(Path(args.data) / shard_name(args.shard))
    if not 0 <= args.episode < shard.num_episodes:
        raise UsageError(f"shard {args.shard} has episodes 0..{shard.num_episodes - 1}, not {args.episode}")
    episode = shard.episode(args.episode)
    path = write_video(args.out, episode.frames, fps=args.fps, scale=args.scale)
    print(f"{path}: {episode.num_frames} frames, policy {episode.policy}, view {episode.view}, "
          f"mission {episode.mission!r}, success {bool(episode.success.any())}")
    return 0


def recording_summary(folder: str | Path, max_missions: int = 5) -> dict:
    """Counts over every shard of a recording folder, read without the pixels."""
    folder = Path(folder)
    paths = list_shards(folder)
    if not paths:
        raise ShardError(f"no shard_*.npz files in {folder}; record some with `{PROG} record --out {folder}`")
    policies, views, splits, missions, env_ids = Counter(), Counter(), Counter(), Counter(), Counter()
    successes_by_policy = Counter()
    episodes = frames = terminated = truncated = branch_frames = 0
    for path in paths:
        ix = read_shard_index(path)
        branch_frames += ix.num_branches
        ep_success = np.logical_or.reduceat(ix.success, ix.episode_offsets[:-1])  # (K,)
        policies.update(ix.policies.tolist())
        successes_by_policy.update(ix.policies[ep_success].tolist())
        views.update(ix.views.tolist())
        splits.update(ix.splits.tolist())
        missions.update(m for m in ix.missions.tolist() if m)
        env_ids[ix.meta.env_id] += ix.num_episodes
        episodes, frames = episodes + ix.num_episodes, frames + ix.num_frames
        terminated, truncated = terminated + int(ix.terminated.sum()), truncated + int(ix.truncated.sum())
    manifest = folder / MANIFEST_NAME
    return {
        "folder": str(folder),
        "manifest": json.loads(manifest.read_text()) if manifest.exists() else None,
        "env_ids": dict(env_ids),
        "frame_shape": list(ix.meta.frame_shape),
        "action_meanings": list(ix.meta.action_meanings),
        "shards": len(paths),
        "episodes": episodes,
        "frames": frames,
        "branch_frames": branch_frames,
        "mean_episode_frames": frames / episodes,
        "terminated": terminated,
        "truncated": truncated,
        "policies": dict(policies),
        "views": dict(views),
        "splits": dict(splits),
        "success_rate": sum(successes_by_policy.values()) / episodes,
        "success_rate_by_policy": {p: successes_by_policy[p] / n for p, n in policies.items()},
        "distinct_missions": len(missions),
        "missions_sample": [m for m, _ in missions.most_common(max_missions)],
    }


def _share(unchanged: int, n: int) -> float | None:
    return unchanged / n if n else None


def change_summary(folder: str | Path) -> dict:
    """How often a step changes nothing (frame j+1 == frame j, every pixel), per view and action,
    and what the counterfactual branches hold (a branch frame equal to the frame it branched from
    is a no-change branch). Reads every pixel, shard by shard.

    Returns {"no_change": {view: {"all": share, "n": transitions, action: share, ...}, "all": ...},
    "branches": {"states", "frames", "share_of_states", "no_change": {action: share}}}; a share
    is None where there is no transition of that kind.
    """
    paths = list_shards(folder)
    if not paths:
        raise ShardError(f"no shard_*.npz files in {folder}; record some with `{PROG} record --out {folder}`")
    counts: Counter = Counter()  # (view, action) -> transitions; ("unchanged", view, action) -> unchanged ones
    b_counts: Counter = Counter()
    states = branch_states = 0
    meanings = None
    for path in paths:
        shard = read_shard(path)
        ix, meanings = shard.index, shard.meta.action_meanings
        frames = shard.frames.reshape(len(shard.frames), -1)  # (F, H*W*3)
        same = np.zeros(len(frames), bool)  # same[j]: frame j+1 == frame j (inner frames only)
        same[:-1] = (frames[1:] == frames[:-1]).all(axis=1)
        inner = ix.actions >= 0  # the last frame of each episode leads nowhere
        view_of = np.repeat(ix.views, ix.episode_lengths)  # (F,)
        for view in np.unique(ix.views):
            for a in range(len(meanings)):
                sel = inner & (view_of == view) & (ix.actions == a)
                counts[(str(view), meanings[a])] += int(sel.sum())
                counts[("unchanged", str(view), meanings[a])] += int(same[sel].sum())
        states += int(inner.sum())
        if ix.num_branches:
            first = np.repeat(ix.episode_offsets[:-1], np.diff(ix.branch_offsets))  # (G,) episode start
            sources = first + ix.branch_sources  # (G,) global frame index
            b_same = (shard.branch_frames.reshape(ix.num_branches, -1) == frames[sources]).all(axis=1)
            for a in range(len(meanings)):
                sel = ix.branch_actions == a
                b_counts[meanings[a]] += int(sel.sum())
                b_counts[("unchanged", meanings[a])] += int(b_same[sel].sum())
            branch_states += len(np.unique(sources))
    views = sorted({v for (v, *_) in counts if v != "unchanged"})
    table = {}
    for view in [*views, "all"]:
        pick = views if view == "all" else [view]
        row = {"n": sum(counts[(v, m)] for v in pick for m in meanings)}
        row["all"] = _share(sum(counts[("unchanged", v, m)] for v in pick for m in meanings), row["n"])
        for m in meanings:
            row[m] = _share(sum(counts[("unchanged", v, m)] for v in pick), sum(counts[(v, m)] for v in pick))
            row[f"n_{m}"] = sum(counts[(v, m)] for v in pick)
        table[view] = row
    branch_frames = sum(b_counts[m] for m in meanings)
    return {
        "action_meanings": list(meanings),
        "no_change": table,
        "branches": {
            "states": branch_states,
            "frames": branch_frames,
            "share_of_states": _share(branch_states, states),
            "no_change": {m: _share(b_counts[("unchanged", m)], b_counts[m]) for m in meanings},
            "no_change_all": _share(sum(b_counts[("unchanged", m)] for m in meanings), branch_frames),
        },
    }


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def cmd_info(args: argparse.Namespace) -> int:
    s = recording_summary(args.data)
    if not args.index_only:
        s.update(change_summary(args.data))
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    rate = ", ".join(f"{p} {r:.1%}" for p, r in s["success_rate_by_policy"].items())
    print(f"{s['folder']}: {', '.join(s['env_ids'])}")
    print(f"  frames      {s['frames']} of {'x'.join(map(str, s['frame_shape']))} in {s['shards']} shards")
    print(f"  episodes    {s['episodes']} (mean {s['mean_episode_frames']:.1f} frames; "
          f"{s['terminated']} terminated, {s['truncated']} truncated)")
    print(f"  policies    {s['policies']}")
    print(f"  views       {s['views']}")
    print(f"  splits      {s['splits']}")
    print(f"  success     {s['success_rate']:.1%} of episodes ({rate})")
    print(f"  actions     {', '.join(s['action_meanings'])}")
    print(f"  missions    {s['distinct_missions']} distinct, e.g. {s['missions_sample']}")
    if args.index_only:
        print(f"  branches    {s['branch_frames']} branch frames" if s["branch_frames"] else "  branches    none")
        return 0
    meanings = s["action_meanings"]
    width = max(9, *(len(m) for m in meanings))
    print("  no change   share of steps whose next frame equals the frame before, per view and action")
    print("              " + f"{'view':<14}{'all':>8}" + "".join(f"{m:>{width + 1}}" for m in meanings))
    for view, row in s["no_change"].items():
        print("              " + f"{view:<14}{_pct(row['all']):>8}"
              + "".join(f"{_pct(row[m]):>{width + 1}}" for m in meanings))
    steps = s["no_change"]["all"]
    print("              " + f"{'(steps)':<14}{steps['n']:>8}" + "".join(f"{steps['n_' + m]:>{width + 1}}"
                                                                    for m in meanings))
    b = s["branches"]
    if b["frames"]:
        per = ", ".join(f"{m} {_pct(v)}" for m, v in b["no_change"].items())
        print(f"  branches    {b['states']} branched states ({_pct(b['share_of_states'])} of steps), "
              f"{b['frames']} frames; no change: {_pct(b['no_change_all'])} ({per})")
    else:
        print("  branches    none")
    return 0


# ----------------------------------------------------------------------------------------------
# parser


def _weights_text(weights: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in weights.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("record", help="play an env and write episode shards (resumable)")
    p.add_argument("--env", required=True, help="registered Gymnasium env id, e.g. genie_env/BabyAI3D-GoToLocal-v0")
    p.add_argument("--frames", type=int, required=True, help="frames to record; the episode that reaches this number is finished, so up to one "
                        "episode more is written")
    p.add_argument("--out", required=True, help="recording folder (created if missing)")
    p.add_argument("--policy", default="mix", choices=(*MIX_PRESETS, *POLICIES),
                   help="who plays; mix draws bot/random/lookaround per episode, mix2 bot/explore/lookback "
                        "(more moves and interactions, fewer steps that change nothing) (default: mix)")
    p.add_argument("--mix", metavar="POLICY=W,...",
                   help="weights of the policies --policy mix draws, e.g. bot=0.3,explore=0.5,lookback=0.2 "
                        f"(policies: {', '.join(POLICIES)}; default: {_weights_text(MIX_PRESETS['mix'])}; "
                        f"mix2 is {_weights_text(MIX_PRESETS['mix2'])})")
    p.add_argument("--action-weights", metavar="ACTION=W,...",
                   help="action weights of the explore policy's random draws, e.g. forward=4,turn_left=2,"
                        f"turn_right=2,noop=0.1 (unnamed actions get {OTHER_ACTION_WEIGHT:g}; default: "
                        f"{_weights_text(EXPLORE_WEIGHTS)})")
    p.add_argument("--branch-every", type=int, default=0, metavar="N",
                   help="store counterfactual branches (the next frame under every action) at about one state "
                        "in N, four times as often facing a door or an object (default: 0, none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the whole recording (default: 0)")
    p.add_argument("--episodes-per-shard", type=int, default=64, help="episodes per shard file (default: 64)")
    p.add_argument("--top-down-share", type=float, default=0.0,
                   help="share of episodes seen from the top-down view (env must accept view=; default: 0)")
    p.add_argument("--top-down-cells", type=int, default=None, metavar="N",
                   help="top-down episodes show a window of N x N cells around the agent, passed as env kwarg "
                        "top_down_cells=N (3D BabyAI; default: the whole grid)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="frame size, passed as env kwarg size=(H, W)")
    p.add_argument("--worlds", choices=["train", "test"],
                   help="seed split the env draws worlds from, passed as env kwarg worlds= (3D BabyAI; default: "
                        "the env's own, train)")
    p.add_argument("--bot-epsilon", type=float, default=0.1, help="random-action rate of the bot (default: 0.1)")
    p.add_argument("--max-episode-steps", type=int, default=None, help="time limit (default: the env's own)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("export-video", help="write one recorded episode as .mp4 or .gif")
    p.add_argument("--data", required=True, help="recording folder")
    p.add_argument("--shard", type=int, default=0, help="shard number (default: 0)")
    p.add_argument("--episode", type=int, default=0, help="episode inside the shard (default: 0)")
    p.add_argument("--out", required=True, help="video file, .mp4 or .gif")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second (default: 10)")
    p.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscale factor (default: 4)")
    p.set_defaults(func=cmd_export_video)

    p = sub.add_parser("dream", help="re-play recorded episodes inside a world model (same prompts and actions, "
                                     "the model's frames; resumable)")
    p.add_argument("--data", required=True, help="recording folder whose episodes are re-played")
    p.add_argument("--out", required=True, help="folder for the dreamed recording (created if missing)")
    p.add_argument("--model", default="default", help="world model: default or a checkpoint folder (default: default)")
    p.add_argument("--split", default="all", choices=["all", "train", "test"],
                   help="only episodes of this split (default: all)")
    p.add_argument("--policies", nargs="+", metavar="POLICY", help="only episodes these policies played (e.g. bot "
                   "explore; default: all)")
    p.add_argument("--max-episodes", type=int, default=None, metavar="N",
                   help="at most N of the selected episodes, drawn at random (seeded; default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the selection and of the sampling (default: 0)")
    p.add_argument("--batch", type=int, default=32, help="episodes stepped together (default: 32)")
    p.add_argument("--episodes-per-shard", type=int, default=64, help="episodes per shard file (default: 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dream)

    p = sub.add_parser("info", help="summarise a recording folder: counts, no-change shares, branches")
    p.add_argument("--data", required=True, help="recording folder")
    p.add_argument("--index-only", action="store_true",
                   help="skip what needs the pixels (no-change shares, branch contents): fast on large folders")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the genie-data console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(message)s")
    try:
        return args.func(args)
    except (ShardError, RecorderError, UsageError, OSError) as e:
        message = " ".join(str(e).split())  # one line, whatever the message looked like
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
