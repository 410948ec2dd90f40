"""genie-play: play a world generated from a prompt image with the keyboard and mouse, and record it as an mp4.

    genie-play                                       # an unseen 3D BabyAI world, the shipped model
    genie-play --prompt photo.png --record run.mp4   # any image of any size
    genie-play --text "a room with a red door and a blue ball"
    genie-play --view top_down                       # an unseen world seen from above (MiniGrid's rendering)
    genie-play --headless --steps 100 --actions wwaddwe --record out.mp4 --model CKPT   # scripts and tests

Controls: W / Up forward, A / Left turn left, D / Right turn right, S / Down / Space wait (noop), E toggle (open a
door), F pick up, Q drop, left / right mouse click turn left / right, R restart (a new noise seed, same prompt),
Esc or closing the window quits. Each key press is one step: the world waits while you think. The line under the
picture shows the generation speed (frames per second) and the mission.

The recording holds the first frame and one frame per step (after a restart, the new world's frames follow),
upscaled ``--scale`` times with nearest-neighbour pixels.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

#: Letters of --actions (and keys) -> action names.
LETTER_ACTIONS = {"w": "forward", "a": "turn_left", "d": "turn_right", "s": "noop", ".": "noop", "e": "toggle",
                  "f": "pickup", "q": "drop"}


@dataclass(frozen=True)
class PlayArgs:
    """Arguments of genie-play (each field is one command-line option)."""

    prompt: str | None = field(default=None, metadata={"help": "prompt image (PNG / JPEG, any size); default: an "
                                                               "unseen 3D BabyAI world"})
    text: str | None = field(default=None, metadata={"help": "describe the prompt instead, e.g. \"a room with a red "
                                                             "door and a blue ball\""})
    mission: str | None = field(default=None, metadata={"help": "task text shown and given to the judge"})
    model: str = field(default="default", metadata={"help": "world-model checkpoint folder, or 'default'"})
    level: str = field(default="GoToLocal", metadata={"help": "3D BabyAI level of the default prompts"})
    judge: str | None = field(default=None, metadata={"help": "success judge ('default' or a folder): shows success"})
    record: str | None = field(default=None, metadata={"help": "write the frames to this mp4 file"})
    headless: bool = field(default=False, metadata={"help": "no window: play --steps actions (scripted or random)"})
    steps: int | None = field(default=None, metadata={"help": "steps to play headless (default: len(--actions) or 100)"})
    actions: str | None = field(default=None, metadata={"help": "headless actions as letters, e.g. 'wwaddwe' "
                                                                "(w a d s/. e f q; repeated to --steps)"})
    look_around: bool = field(default=False, metadata={"help": "show the model the prompt world's four turns in place "
                                                                "before play (GenieWorldConfig.look_around)"})
    view: str | None = field(default=None, metadata={"help": "'first_person' or 'top_down': the view of the prompt "
                                                             "world, and what the model is told of a --prompt image"})
    seed: int = field(default=0, metadata={"help": "seed of the prompt world, the sampling noise and random actions"})
    num_steps: int | None = field(default=None, metadata={"help": "denoising steps per frame (default: checkpoint's)"})
    guidance: float | None = field(default=None, metadata={"help": "action guidance weight (default: checkpoint's)"})
    sampler: str | None = field(default=None, metadata={"help": "'euler' or 'heun' (default: checkpoint's)"})
    fps: float = field(default=10.0, metadata={"help": "frames per second of the recording"})
    scale: int = field(default=4, metadata={"help": "upscaling of the window and the recording"})
    quiet: bool = field(default=False, metadata={"help": "headless: no progress bar"})


def parse_args(argv: Sequence[str] | None = None) -> PlayArgs:
    description, _, epilog = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(prog="genie-play", description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(PlayArgs):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
            continue
        kind = {"int": int, "int | None": int, "float": float, "float | None": float}.get(str(f.type), str)
        parser.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"])
    args = PlayArgs(**vars(parser.parse_args(argv)))
    if args.prompt is not None and args.text is not None:
        parser.error("pass --prompt or --text, not both")
    if args.view is not None and args.view not in ("first_person", "top_down"):
        parser.error(f"--view must be first_person or top_down, got {args.view!r}")
    if args.text is not None and args.view == "top_down":
        parser.error("--text describes a first-person room; drop --view top_down or pass --prompt instead")
    if args.steps is not None and args.steps < 0:
        parser.error("--steps must be >= 0")
    if args.scale < 1 or args.fps <= 0:
        parser.error("--scale must be >= 1 and --fps > 0")
    if args.actions is not None:
        bad = sorted(set(args.actions.lower()) - set(LETTER_ACTIONS))
        if bad:
            parser.error(f"--actions has unknown letters {bad}; use {', '.join(f'{k}={v}' for k, v in LETTER_ACTIONS.items())}")
    return args


def reset_options(args: PlayArgs) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.prompt is not None:
        options["prompt_image"] = args.prompt
    if args.text is not None:
        options["prompt_text"] = args.text
    if args.mission is not None:
        options["mission"] = args.mission
    return options


def letter_to_action(env) -> dict[str, int]:
    meanings = list(env.get_action_meanings())
    return {k: meanings.index(name) for k, name in LETTER_ACTIONS.items() if name in meanings}


class VideoRecorder:
    """Streams frames into an mp4 (libx264 via imageio-ffmpeg), upscaled `scale` times; counts what it wrote."""

    def __init__(self, path: str, fps: float, scale: int):
        import imageio.v2 as imageio

        self.path, self.scale, self.frames = path, int(scale), 0
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self._writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1, quality=8)

    def add(self, frame: np.ndarray) -> None:
        s = self.scale if frame.shape[0] * self.scale % 2 == 0 and frame.shape[1] * self.scale % 2 == 0 else 2 * self.scale
        self._writer.append_data(np.repeat(np.repeat(frame, s, axis=0), s, axis=1))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()


def make_env(args: PlayArgs):
    from genie_env.genie_world import GenieWorldEnv

    return GenieWorldEnv(model=args.model, num_steps=args.num_steps, guidance=args.guidance, sampler=args.sampler,
                         level=args.level, judge=args.judge, look_around=args.look_around, view=args.view)


def play_headless(env, args: PlayArgs, recorder: VideoRecorder | None) -> dict[str, Any]:
    """Play --steps scripted or random actions without a window (a progress bar on stderr unless --quiet);
    returns a summary."""
    letters = letter_to_action(env)
    steps = args.steps if args.steps is not None else (len(args.actions) if args.actions else 100)
    rng = np.random.default_rng(args.seed)
    frame, info = env.reset(seed=args.seed, options=reset_options(args))
    if recorder is not None:
        recorder.add(frame)
    from tqdm import tqdm

    total, successes, start = 0.0, 0, time.perf_counter()
    for t in tqdm(range(steps), desc="genie-play", unit="frame", disable=args.quiet, file=sys.stderr):
        if args.actions:
            action = letters[args.actions[t % len(args.actions)].lower()]
        else:
            action = int(rng.integers(env.action_space.n))
        frame, reward, terminated, _, info = env.step(action)
        total += reward
        successes += int(terminated)
        if recorder is not None:
            recorder.add(frame)
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": round(seconds, 3), "fps": round(steps / seconds, 2) if seconds > 0 else None,
            "mission": info["mission"], "total_reward": total, "terminations": successes,
            "frames_recorded": recorder.frames if recorder is not None else 0,
            "video": recorder.path if recorder is not None else None}


def play_window(env, args: PlayArgs, recorder: VideoRecorder | None,
                next_events: Callable[[], Iterable[Any]] | None = None) -> dict[str, Any]:
    """The interactive loop in a pygame window. `next_events` replaces pygame.event.get (for tests)."""
    import pygame

    from genie_env.viewer import Viewer

    viewer = Viewer(caption=f"genie-play: {args.prompt or args.text or args.level}", scale=args.scale)
    pygame.key.set_repeat(250, 120)
    letters = letter_to_action(env)
    keys = {getattr(pygame, f"K_{k}"): a for k, a in letters.items() if k.isalpha()}
    names = list(env.get_action_meanings())
    arrows = {pygame.K_UP: "forward", pygame.K_LEFT: "turn_left", pygame.K_RIGHT: "turn_right",
              pygame.K_DOWN: "noop", pygame.K_SPACE: "noop"}
    keys.update({k: names.index(n) for k, n in arrows.items() if n in names})
    mouse = {1: "turn_left", 3: "turn_right"}
    next_events = next_events or pygame.event.get
    seed, restarts, steps, step_times = args.seed, 0, 0, []
    frame, info = env.reset(seed=seed, options=reset_options(args))
    status = ""

    def show(frame_, info_):
        fps = len(step_times) / sum(step_times) if step_times else 0.0
        text = f"{fps:4.1f} fps | {info_['mission'] or '(no mission)'}{status}"
        viewer.show(frame_, text=text)
        if recorder is not None:
            recorder.add(frame_)

    show(frame, info)
    running = True
    try:
        while running:
            for event in next_events():
                action = None
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                    running = False
                    break
                if event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                    restarts += 1
                    status, step_times = "", []
                    frame, info = env.reset(seed=seed + restarts, options=reset_options(args))
                    show(frame, info)
                elif event.type == pygame.KEYDOWN and event.key in keys:
                    action = keys[event.key]
                elif event.type == pygame.MOUSEBUTTONDOWN and mouse.get(event.button) in names:
                    action = names.index(mouse[event.button])
                if action is not None:
                    t0 = time.perf_counter()
                    frame, reward, terminated, _, info = env.step(action)
                    step_times = (step_times + [time.perf_counter() - t0])[-20:]
                    steps += 1
                    if terminated:
                        status = f" | done (reward {reward:g}), R restarts"
                    show(frame, info)
            time.sleep(1 / 120)
    finally:
        viewer.close()
    return {"steps": steps, "restarts": restarts, "frames_recorded": recorder.frames if recorder is not None else 0,
            "video": recorder.path if recorder is not None else None}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from world_model.checkpoint import CheckpointError

    env = recorder = None
    try:
        env = make_env(args)
        if args.record:
            recorder = VideoRecorder(args.record, args.fps, args.scale)
        summary = (play_headless if args.headless else play_window)(env, args, recorder)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"genie-play: error: {e}", file=sys.stderr)
        return 2
    finally:
        if recorder is not None:
            recorder.close()
        if env is not None:
            env.close()
    print(" ".join(f"{k}={v}" for k, v in summary.items() if v is not None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
