"""GenieWorld: a prompt image becomes a playable world; every step is one guided diffusion sample of the model.

``GenieWorldEnv`` is one world; :class:`genie_env.genie_world_vector.GenieWorldVectorEnv` runs N worlds in one
forward pass. Both are thin shells around :class:`GenieWorlds`, the B-world engine defined here: it owns the
world model's rollout state, the torch generator all sampling noise comes from, the recent frames and missions,
and turns frames into rewards (a user ``reward_fn`` or the learned success judge).
"""

from __future__ import annotations

import copy
import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from genie_env.babyai3d import ACTION_MEANINGS, LEVELS, TEST_SEEDS, VIEWS, BabyAI3DEnv
from genie_env.mission import MAX_MISSION_WORDS, VOCABULARY, encode_mission
from genie_env.prompts import load_prompt_image
from world_model.inference import DEFAULT_CHECKPOINT, WorldModel, WorldState
from genie_env.judge import SuccessJudge
from world_model.sampler import check_solver

#: reward_fn(frames uint8 (k, H, W, 3) (the most recent frames, oldest first), action int, mission str)
#: -> (reward float, terminated bool)
RewardFn = Callable[[np.ndarray, int, str], "tuple[float, bool]"]

#: How many recent frames a reward_fn sees (a judge sees its own k).
HISTORY_FRAMES = 4
#: The reset options GenieWorld understands.
RESET_OPTIONS = ("prompt_image", "prompt_text", "mission", "level_seed", "view")

_MODEL_CACHE: dict[tuple, WorldModel] = {}


def check_view(view, what: str) -> None:
    """Raise unless `view` is None or one of VIEWS; `what` names it in the message."""
    if view is not None and (not isinstance(view, str) or view not in VIEWS):
        raise ValueError(f"{what} must be one of {', '.join(map(repr, VIEWS))} or None, got {view!r}")


#: True in a process forked (os.fork, multiprocessing's "fork" start method) after this module was imported:
#: the parent's torch may have started its OpenMP thread pool, which does not survive a fork (a second thread
#: in the child waits forever in libgomp's barrier).
_FORKED = False


def _mark_forked() -> None:
    global _FORKED
    _FORKED = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


# ---------------------------------------------------------------------------------------------- threads


def in_worker_process() -> bool:
    """Whether this process is a worker of another Python process (multiprocessing, AsyncVectorEnv,
    SB3's SubprocVecEnv) or was forked from one that imported this module."""
    return _FORKED or multiprocessing.parent_process() is not None


def set_torch_threads(num_threads: int | None) -> None:
    """Apply an env's ``num_threads``: torch's intra-op thread count, which is per process.

    None: one thread inside a worker process (N workers on N cores each take one core instead of all of them,
    and a forked worker never starts torch's OpenMP pool again, which would hang), torch's own setting
    (every core) otherwise. An int >= 1: that many threads, set with ``torch.set_num_threads``.
    """
    if num_threads is None:
        if in_worker_process():
            torch.set_num_threads(1)
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be an int >= 1 (torch threads of this process) or None (one thread "
                         f"in a worker process, torch's default otherwise), got {num_threads!r}")
    if _FORKED and num_threads > 1:
        raise RuntimeError(
            f"num_threads={num_threads} in a forked worker process: torch's OpenMP threads do not survive a fork "
            "and more than one thread would hang. Leave num_threads=None (one thread per worker), or start the "
            "workers with spawn: gym.vector.AsyncVectorEnv(env_fns, context='spawn'), gym.make_vec(..., "
            "vectorization_mode='async', vector_kwargs={'context': 'spawn'}); or step all worlds in one process "
            "with gym.make_vec(id, num_envs=N) (the native batch, fastest)")
    torch.set_num_threads(int(num_threads))


# ---------------------------------------------------------------------------------------------- loading


def load_world_model(model: str | os.PathLike | WorldModel = "default") -> WorldModel:
    """A WorldModel from "default", a checkpoint folder / training run directory, or an instance (returned as is).

    Loaded checkpoints are cached per folder (and file modification time), so N environments made from the same
    name share one copy of the weights.
    """
    if isinstance(model, WorldModel):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be 'default', a checkpoint folder or a WorldModel, got {type(model).__name__}")
    from world_model.checkpoint import resolve_checkpoint

    if str(model) == "default":
        if not (DEFAULT_CHECKPOINT / "config.json").is_file():
            return WorldModel.load("default")  # raises the error that says how to get it
        folder = DEFAULT_CHECKPOINT
    else:
        folder = resolve_checkpoint(model)
    folder = folder.resolve()
    key = (str(folder), *(p.stat().st_mtime_ns for p in sorted(folder.iterdir()) if p.is_file()))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = WorldModel.load(folder)
    return _MODEL_CACHE[key]


def load_judge(judge: str | os.PathLike | SuccessJudge | None) -> SuccessJudge | None:
    """None, "default" (the packaged judge), a judge checkpoint folder, or a SuccessJudge (returned as is)."""
    if judge is None or isinstance(judge, SuccessJudge):
        return judge
    if isinstance(judge, (str, os.PathLike)):
        return SuccessJudge.load(judge)
    raise TypeError(f"judge must be None, 'default', a judge checkpoint folder or a SuccessJudge, got "
                    f"{type(judge).__name__}")


@dataclass(frozen=True)
class SamplerSettings:
    """Per-env overrides of the checkpoint's sampler (None keeps the checkpoint's value)."""

    num_steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None

    def __post_init__(self):
        if self.num_steps is not None and (not isinstance(self.num_steps, (int, np.integer)) or self.num_steps < 1):
            raise ValueError(f"num_steps must be an int >= 1 (denoising steps per frame) or None, got {self.num_steps!r}")
        if self.guidance is not None and not np.isfinite(float(self.guidance)):
            raise ValueError(f"guidance must be a finite float (1 disables guidance) or None, got {self.guidance!r}")
        if self.sampler is not None:
            check_solver(self.sampler)


@dataclass(frozen=True)
class GenieWorldConfig:
    """What a GenieWorld is made of, one world (GenieWorldEnv) or N (GenieWorldVectorEnv).

    Both envs take it whole (``GenieWorldEnv(config)``) or field by field as keyword arguments
    (``GenieWorldEnv(model=..., judge="default")``, ``gym.make(id, model=...)``, ``gym.make_vec(id, num_envs=N,
    model=...)``); keywords given beside a config replace its fields.
    """

    model: str | os.PathLike | WorldModel = "default"
    """"default" (the shipped checkpoint), a checkpoint folder, or a ``WorldModel`` (shares its weights)."""
    num_steps: int | None = None
    """Denoising steps per frame, >= 1; None keeps the checkpoint's."""
    guidance: float | None = None
    """Classifier-free guidance weight on the action (1 disables guidance); None keeps the checkpoint's."""
    sampler: str | None = None
    """"euler" or "heun"; None keeps the checkpoint's."""
    level: str = "GoToLocal"
    """The 3D BabyAI level whose test worlds supply the prompts when none is given (``genie_env.LEVELS``)."""
    reward_fn: RewardFn | None = None
    """``reward_fn(frames, action, mission) -> (reward, terminated)``; see GenieWorldEnv's Rewards."""
    judge: str | os.PathLike | SuccessJudge | None = None
    """None, "default", a judge checkpoint folder or a ``genie_env.judge.SuccessJudge``."""
    judge_threshold: float = 0.5
    """Success probability in (0, 1) above which the judge counts the mission done."""
    mission_observation: bool = False
    """Add the encoded mission to the observation (a Dict space)."""
    look_around: bool = False
    """Prompts from the 3D BabyAI worlds (no prompt_image / prompt_text): show the model the world's four left
    turns in place (LOOK_AROUND; 5 frames, back to the start view) before play, so every direction has been seen
    (the first observation is the same frame). On 32 unseen first-person worlds under random play the default model
    then scores 34.5 dB against the truth after one step instead of 26.4, and 22.1 after 16 instead of 20.2 (holding
    the prompt: 29.5 / 21.8; experiments/LOG.md entry 26)."""
    view: str | None = None
    """The view the worlds are seen in: "first_person" or "top_down" (``genie_env.babyai3d.VIEWS``). Prompts from
    the 3D BabyAI worlds are rendered in it, and the model is told it for every prompt. None: ground-truth prompts
    in first person, and the model told each prompt's own view (first person for ground-truth and text prompts,
    unknown for a prompt image). The reset option ``view`` replaces it for one reset."""
    num_threads: int | None = None
    """Torch threads of this process, >= 1 (torch's setting is per process: the last env made wins). None: 1 inside
    a worker process (AsyncVectorEnv, SB3's SubprocVecEnv), torch's default (every core) otherwise."""

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}; choose one of {', '.join(LEVELS)}")
        if not 0.0 < float(self.judge_threshold) < 1.0:
            raise ValueError(f"judge_threshold must be in (0, 1), got {self.judge_threshold}")
        if self.reward_fn is not None and not callable(self.reward_fn):
            raise TypeError(f"reward_fn must be callable as reward_fn(frames, action, mission) -> (reward, "
                            f"terminated), got {type(self.reward_fn).__name__}")
        if not isinstance(self.look_around, (bool, np.bool_)):
            raise TypeError(f"look_around must be True or False, got {self.look_around!r}")
        check_view(self.view, "view")
        if self.num_threads is not None and (isinstance(self.num_threads, bool) or not isinstance(
                self.num_threads, (int, np.integer)) or self.num_threads < 1):
            raise ValueError(f"num_threads must be an int >= 1 (torch threads of this process) or None (one thread "
                             f"in a worker process, torch's default otherwise), got {self.num_threads!r}")
        self.sampler_settings  # checks num_steps, guidance, sampler

    @property
    def sampler_settings(self) -> SamplerSettings:
        return SamplerSettings(self.num_steps, self.guidance, self.sampler)

    @classmethod
    def from_arguments(cls, config: "GenieWorldConfig | None" = None, **kwargs) -> "GenieWorldConfig":
        """`config` (default: all defaults) with the fields named in `kwargs` replaced."""
        if config is not None and not isinstance(config, cls):
            raise TypeError(f"config must be a GenieWorldConfig or None, got {type(config).__name__}; pass the "
                            "other arguments by keyword (model=..., level=...)")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"unknown GenieWorld arguments {unknown}; the arguments are {', '.join(names)}")
        return dataclasses.replace(config or cls(), **kwargs)


@dataclass(frozen=True)
class Prompt:
    """Where one world starts: its first frame, its mission, the ground-truth level seed (-1 if none), and the view
    the frame is rendered in (None when unknown: a user's image)."""

    frame: np.ndarray  # (S, S, 3) uint8
    mission: str
    level_seed: int = -1
    source: str = "image"  # "babyai3d", "image" or "text"
    view: str | None = None  # "first_person", "top_down" (world_model.dynamics.VIEW_IDS) or None
    observed: tuple[np.ndarray, np.ndarray] | None = None
    """Frames uint8 (n, S, S, 3) the world showed after `frame` under actions int (n,), given to the model before
    play (the look-around); the world starts at the last of them."""

    @property
    def current(self) -> np.ndarray:
        """The frame play starts from: the last observed frame, else the first."""
        return self.frame if self.observed is None else self.observed[0][-1]


#: The look-around of GenieWorldConfig.look_around: four left turns in place, back to the start view.
LOOK_AROUND = (ACTION_MEANINGS.index("turn_left"),) * 4


class PromptSource:
    """Prompts from reset options, or the first frames of unseen 3D BabyAI worlds (:data:`TEST_SEEDS`)."""

    def __init__(self, level: str, size: int, look_around: bool = False, view: str | None = None):
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
        check_view(view, "view")
        self.level, self.size, self.look_around, self.view = level, int(size), bool(look_around), view
        self._ground_truth: dict[str, BabyAI3DEnv] = {}  # one per view

    def copy(self) -> "PromptSource":
        """A source with the same settings and no ground-truth env of its own yet."""
        return PromptSource(self.level, self.size, self.look_around, self.view)

    def ground_truth(self, rng: np.random.Generator, level_seed: int | None = None,
                     view: str | None = None) -> Prompt:
        """The first frame and mission of a test world: `level_seed`, or one drawn with `rng`, rendered in `view`
        (None: first person); with look_around, also its frames under LOOK_AROUND."""
        if level_seed is None:
            level_seed = TEST_SEEDS.start + int(rng.integers(TEST_SEEDS.size))
        view = view or "first_person"
        if view not in self._ground_truth:
            self._ground_truth[view] = BabyAI3DEnv(level=self.level, size=(self.size, self.size), view=view,
                                                   worlds="test")
        world = self._ground_truth[view]
        frame, info = world.reset(options={"level_seed": int(level_seed)})
        observed = None
        if self.look_around:
            frames = [world.step(a)[0] for a in LOOK_AROUND]
            observed = (np.stack(frames), np.array(LOOK_AROUND, dtype=np.int64))
        return Prompt(frame, str(info["mission"]), int(level_seed), "babyai3d", world.view, observed)

    def check(self, options: dict) -> dict:
        """One world's reset options, checked, with a prompt image loaded as a model-sized frame; raises before
        anything is changed, so a reset that fails on a typo leaves the env as it was."""
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; GenieWorld understands {', '.join(RESET_OPTIONS)}")
        given = [k for k in ("prompt_image", "prompt_text", "level_seed") if options.get(k) is not None]
        if len(given) > 1:
            raise ValueError(f"reset options {given} each choose the prompt; pass only one of them")
        checked = dict(options)
        if options.get("prompt_image") is not None:
            checked["prompt_image"] = load_prompt_image(options["prompt_image"], (self.size, self.size))
        if options.get("prompt_text") is not None and not isinstance(options["prompt_text"], str):
            raise TypeError(f"options['prompt_text'] must be a str, got {type(options['prompt_text']).__name__}")
        if options.get("level_seed") is not None:
            level_seed = options["level_seed"]
            if isinstance(level_seed, bool) or not isinstance(level_seed, (int, np.integer)) or level_seed < 0:
                raise ValueError(f"level_seed must be an int >= 0, got {level_seed!r}")
        mission = options.get("mission")
        if mission is not None and not isinstance(mission, str):
            raise TypeError(f"options['mission'] must be a str, got {type(mission).__name__}")
        check_view(options.get("view"), "options['view']")
        if options.get("prompt_text") is not None and (options.get("view") or self.view) not in (None,
                                                                                                "first_person"):
            raise ValueError("a text prompt is rendered as a first-person room; pass view='first_person' (or no "
                             "view) with prompt_text, or a prompt_image / level_seed for a top-down world")
        return checked

    def from_options(self, options: dict, rng: np.random.Generator) -> Prompt:
        """The prompt one world's reset options describe (see GenieWorldEnv's docstring); `options` as `check`
        returned them (validated once, at reset: an autoreset reuses them without reloading the image)."""
        view = options.get("view") or self.view
        if options.get("prompt_image") is not None:
            prompt = Prompt(options["prompt_image"], "", view=view)  # None: the model is told the view is unknown
        elif options.get("prompt_text") is not None:
            from genie_env.text_prompt import from_text

            frame, mission = from_text(options["prompt_text"], size=(self.size, self.size),
                                       seed=int(rng.integers(2**31)))
            prompt = Prompt(frame, mission, -1, "text", "first_person")  # from_text renders a first-person room
        elif options.get("level_seed") is not None:
            prompt = self.ground_truth(rng, int(options["level_seed"]), view)
        else:
            prompt = self.ground_truth(rng, view=view)
        mission = options.get("mission")
        if mission is not None:
            prompt = dataclasses.replace(prompt, mission=mission)
        return prompt

    def close(self) -> None:
        for world in self._ground_truth.values():
            world.close()
        self._ground_truth = {}


class TaskReward:
    """Rewards of B worlds from their recent frames: the user's reward_fn, else the judge, else 0."""

    def __init__(self, reward_fn: RewardFn | None, judge: SuccessJudge | None, threshold: float):
        if reward_fn is not None and not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable as reward_fn(frames, action, mission) -> (reward, "
                            f"terminated), got {type(reward_fn).__name__}")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"judge_threshold must be in (0, 1), got {threshold}")
        self.reward_fn, self.judge, self.threshold = reward_fn, judge, float(threshold)

    @property
    def history(self) -> int:
        """Recent frames to keep per world."""
        return max(HISTORY_FRAMES, self.judge.config.frames if self.judge is not None else 0)

    def __call__(self, history: np.ndarray, counts: np.ndarray, actions: np.ndarray,
                 missions: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """history uint8 (B, K, H, W, 3) (oldest first; the first K - counts[b] of world b repeat its first frame)
        -> rewards float32 (B,), terminated bool (B,), success probabilities float32 (B,) or None."""
        B = history.shape[0]
        rewards, terminated, probs = np.zeros(B, np.float32), np.zeros(B, bool), None
        if self.judge is not None:
            k = self.judge.config.frames
            probs = self.judge.predict(history[:, -k:], list(missions))
            if self.reward_fn is None:
                terminated = probs > self.threshold
                rewards = terminated.astype(np.float32)
        if self.reward_fn is not None:
            for b in range(B):
                out = self.reward_fn(history[b, -int(counts[b]):], int(actions[b]), missions[b])
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError(f"reward_fn must return (reward, terminated), got {out!r}")
                rewards[b], terminated[b] = float(out[0]), bool(out[1])
        return rewards, terminated, probs


# ---------------------------------------------------------------------------------------------- the engine


class GenieWorlds:
    """B worlds of one world model: rollout state, sampling generator, recent frames, missions, rewards.

    Shared by GenieWorldEnv (B = 1) and GenieWorldVectorEnv (B = N). ``start`` (re)starts some worlds from
    prompts, ``step`` generates one frame for every world in one batched forward pass. All noise comes from
    ``generator``; memory is fixed at construction (the model's KV cache is a ring buffer, the frame history a
    (B, K, S, S, 3) array).
    """

    def __init__(self, wm: WorldModel, num_worlds: int, settings: SamplerSettings, reward: TaskReward):
        self.wm, self.settings, self.reward = wm, settings, reward
        self.num_worlds, self.size = int(num_worlds), int(wm.config.autoencoder.image_size)
        self.state: WorldState | None = None
        self.generator = torch.Generator(device=wm.device)
        self.history = np.zeros((self.num_worlds, reward.history, self.size, self.size, 3), np.uint8)
        self.counts = np.zeros(self.num_worlds, np.int64)  # real frames in each world's history
        self.steps = np.zeros(self.num_worlds, np.int64)  # frames generated since each world's start
        self.prompts: list[Prompt | None] = [None] * self.num_worlds
        self.probs = np.full(self.num_worlds, np.nan, np.float32)  # last judged success probability

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    @property
    def frames(self) -> np.ndarray:
        """The current frame of every world, uint8 (B, S, S, 3)."""
        return self.history[:, -1]

    @property
    def missions(self) -> list[str]:
        return [p.mission if p is not None else "" for p in self.prompts]

    def start(self, indices: Sequence[int], prompts: Sequence[Prompt]) -> None:
        """(Re)start worlds `indices` from `prompts` (one model reset for all of them, each in its prompt's view)."""
        indices = [int(i) for i in indices]
        frames = np.stack([p.frame for p in prompts])  # (n, S, S, 3)
        fresh = self.wm.reset(frames, generator=self.generator, view=[p.view for p in prompts])
        if self.state is None or len(indices) == self.num_worlds and indices == list(range(self.num_worlds)):
            if len(indices) != self.num_worlds:
                raise RuntimeError("the first start must start every world")
            self.state = fresh
        else:
            for j, i in enumerate(indices):
                self.state.replace(i, fresh, j)
        seen = [j for j, p in enumerate(prompts) if p.observed is not None]
        if seen:  # the look-around frames, committed as if generated (WorldModel.observe)
            rows = [indices[j] for j in seen]
            sub = self.state.select(rows)
            self.wm.observe(sub, np.stack([prompts[j].observed[0] for j in seen]),
                            np.stack([prompts[j].observed[1] for j in seen]), generator=self.generator)
            for jj, i in enumerate(rows):
                self.state.replace(i, sub, jj)
        for j, i in enumerate(indices):
            self.history[i] = prompts[j].current
            self.counts[i], self.steps[i], self.probs[i] = 1, 0, np.nan
            self.prompts[i] = prompts[j]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Generate one frame per world. actions int (B,) -> (frames uint8 (B, S, S, 3), rewards, terminated)."""
        s = self.settings
        frames, self.state = self.wm.step(self.state, actions, generator=self.generator, num_steps=s.num_steps,
                                          guidance=s.guidance, sampler=s.sampler)
        self.history[:, :-1] = self.history[:, 1:]
        self.history[:, -1] = frames
        self.counts = np.minimum(self.counts + 1, self.history.shape[1])
        self.steps += 1
        rewards, terminated, probs = self.reward(self.history, self.counts, actions, self.missions)
        if probs is not None:
            self.probs = probs.astype(np.float32)
        return self.history[:, -1].copy(), rewards, terminated

    def fork(self, seed: int | None = None) -> "GenieWorlds":
        """An independent copy at the same point (same noise stream unless `seed` reseeds the copy)."""
        if self.state is None:
            raise RuntimeError("call reset() before fork()")
        other = copy.copy(self)
        other.state = self.state.fork()
        other.generator = torch.Generator(device=self.wm.device)
        other.generator.set_state(self.generator.get_state())
        if seed is not None:
            other.generator.manual_seed(int(seed))
        other.history, other.counts, other.steps = self.history.copy(), self.counts.copy(), self.steps.copy()
        other.prompts, other.probs = list(self.prompts), self.probs.copy()
        return other

    def state_bytes(self) -> int:
        """Bytes held by the rollout state and frame history (constant over a rollout)."""
        return (self.state.cache.nbytes() if self.state is not None else 0) + self.history.nbytes

    def info(self, i: int) -> dict[str, Any]:
        """World i's info dict (see GenieWorldEnv's docstring)."""
        prompt = self.prompts[i]
        info = {"mission": prompt.mission, "level_seed": prompt.level_seed, "prompt": prompt.source,
                "view": prompt.view, "step": int(self.steps[i])}
        if self.reward.judge is not None:
            p = float(self.probs[i])
            info["success_probability"] = p
            info["success"] = bool(p > self.reward.threshold)
        return info


def mission_space(max_words: int = MAX_MISSION_WORDS) -> spaces.MultiDiscrete:
    """The encoded-mission space of :class:`genie_env.mission.MissionObservation`."""
    return spaces.MultiDiscrete(np.full(max_words, len(VOCABULARY), dtype=np.int64))


@dataclass
class WorldParts:
    """What both envs hold, built from a GenieWorldConfig: the model, the judge, the engine of B worlds, the
    prompt source and the spaces of one world."""

    wm: WorldModel
    judge: SuccessJudge | None
    worlds: GenieWorlds
    prompts: PromptSource
    observation_space: spaces.Space
    action_space: spaces.Discrete

    @classmethod
    def build(cls, config: GenieWorldConfig, num_worlds: int) -> "WorldParts":
        set_torch_threads(config.num_threads)  # first: a forked worker must not touch torch's OpenMP pool before
        wm = load_world_model(config.model)
        judge = load_judge(config.judge)
        size = int(wm.config.autoencoder.image_size)
        worlds = GenieWorlds(wm, num_worlds, config.sampler_settings,
                             TaskReward(config.reward_fn, judge, config.judge_threshold))
        image = spaces.Box(0, 255, (size, size, 3), np.uint8)
        observation_space = (spaces.Dict({"image": image, "mission": mission_space()})
                             if config.mission_observation else image)
        prompts = PromptSource(config.level, size, config.look_around, config.view)
        return cls(wm, judge, worlds, prompts, observation_space, spaces.Discrete(wm.num_actions))


# ---------------------------------------------------------------------------------------------- the env


class GenieWorldEnv(gym.Env):
    """A world generated frame by frame by an action-conditioned diffusion world model, from one prompt image.

    ## Description
    Genie 2 in a Gymnasium env. ``reset`` takes a prompt image (a photo, a sketch, a frame of a game; any size
    and mode) and encodes it as the first frame of a world; every ``step(action)`` runs the world model's guided
    diffusion sampler, with a KV cache over the recent frames, to generate the next frame. Without a prompt the
    world starts from the first frame of an unseen 3D BabyAI world (the held-out test seeds), with its mission.
    :meth:`fork` copies the world at the current frame for counterfactual rollouts.

    ## Action Space
    ``Discrete(7)``: 0 noop, 1 turn_left, 2 turn_right, 3 forward, 4 pickup, 5 drop, 6 toggle (the checkpoint's
    ``action_meanings``; see :meth:`get_action_meanings`, :meth:`get_keys_to_action`).

    ## Observation Space
    ``Box(0, 255, (S, S, 3), uint8)``, the generated RGB frame, S = the model's image size (64 for the shipped
    model). With ``mission_observation=True``: ``Dict(image=that Box, mission=MultiDiscrete)``, the mission
    encoded as in :class:`genie_env.mission.MissionObservation` (for SB3's ``MultiInputPolicy``).
    ``info["mission"]`` always holds the mission text.

    ## Rewards
    ``reward_fn(frames, action, mission) -> (reward, terminated)`` if given, where ``frames`` are the most recent
    frames uint8 (k, S, S, 3), oldest first, the new frame last (k <= 4 when no judge is used, fewer just after a
    reset). Else, with a judge, 1 (and the episode terminates) when the judge's success probability for the mission
    exceeds ``judge_threshold``, 0 otherwise. Else 0 (free play). With both, ``reward_fn`` decides and the judge's
    probability is still reported in ``info``.

    ## Starting State
    ``reset(seed=s)`` seeds the env's generator (``self.np_random``); from it come the prompt world (when none is
    given) and the seed of the torch generator all sampling noise is drawn from, so the same seed and actions give
    the same frames. Options (at most one of the first three):

    - ``prompt_image``: a path, numpy array (H, W), (H, W, 1|3|4) uint8 or float in [0, 1], or PIL image;
      transparency is composited over black for every input type (:func:`genie_env.prompts.load_prompt_image`).
    - ``prompt_text``: a description, "a room with a red door and a blue ball" (:mod:`genie_env.text_prompt`).
    - ``level_seed``: the 3D BabyAI world of ``level`` to start from.
    - ``mission``: the task text (else the ground-truth world's or the text prompt's mission, or "").
    - ``view``: "first_person" or "top_down", the view of this world (replaces the ``view`` argument for this
      reset): a 3D BabyAI prompt is rendered in it, and the model is told it; for a ``prompt_image``, the view the
      image shows (default: unknown). A text prompt is first person only.

    ## Episode End
    Terminated when ``reward_fn`` or the judge says so; truncated by Gymnasium's TimeLimit (200 steps when made
    with ``gym.make("genie_env/GenieWorld-v7")``). Memory does not grow with the episode length.

    ## Arguments
    ``config``, a :class:`GenieWorldConfig`, or its fields as keyword arguments: ``model`` ("default", a
    checkpoint folder or a ``WorldModel``), ``num_steps``, ``guidance``, ``sampler`` (None keeps the checkpoint's),
    ``level`` (whose test worlds supply default prompts), ``reward_fn`` (see Rewards), ``judge``,
    ``judge_threshold``, ``mission_observation``, ``look_around`` (prompts from 3D BabyAI worlds start after the
    model has been shown the world's four turns in place), ``view`` ("first_person" or "top_down": the view of the
    worlds; None: first-person ground-truth prompts, prompt images of unknown view), ``num_threads`` (torch threads
    of this process; None: 1 inside a worker process, torch's default otherwise). And ``render_mode``: "rgb_array"
    or "human" (a pygame window).
    To run many worlds, prefer the native batch ``gym.make_vec("genie_env/GenieWorld-v7", num_envs=N)`` (one
    process, one forward pass for all N worlds); in ``AsyncVectorEnv`` / ``SubprocVecEnv`` workers each env takes
    one thread (for W workers on C cores, ``num_threads=C // W`` may be faster).

    ## Info
    ``mission``, ``level_seed`` (-1 unless the world is a 3D BabyAI one), ``prompt`` ("babyai3d", "image" or
    "text"), ``view`` (the view the model was told: "first_person", "top_down" or None, unknown), ``step`` (frames
    generated since reset); with a judge also ``success_probability`` and ``success``.

    ## Version History
    - v7: default world model v9: v8 fine-tuned 45 CPU minutes with the view each world is rendered in as an
      input (the env tells the model each prompt's view). Top-down, 32 unseen worlds: rollouts 28.5 dB against the
      truth at 64 random steps, was 22.3 (the large grids no longer turn into a first-person room); a view turned
      back to 32.2 dB against the truth, was 29.4. First person, 64 unseen worlds: every floor of v8 kept (PSNR after
      20 noops 37.3 dB, one step nearest its own action's true frame for 85% of the distinct outcomes, forward x3
      +2.3 dB over holding the prompt); a toggled door opens in 86% of worlds, was 94% (experiments/LOG.md entry
      29). Later, with the same model: the ``view`` argument and reset option (default: as before).
    - v6: default world model v8: v7 fine-tuned 7 minutes on a lent NVIDIA H200 (2,579 steps of 256 windows on
      400k fresh frames: 9x the training windows of all its CPU phases), same recipe, sampler and speed. First
      person, 32 unseen worlds: PSNR after 20 noops 36.7 dB against the prompt, was 34.6; a view turned back to
      27.8 dB against the truth, was 24.0 (48.1 against the model's own earlier frame, was 36.4); one step lands
      nearest its own action's true frame for 86% of the distinct outcomes, was 81%; a toggled door opens in 91% of
      worlds, was 63%; a picked-up object is carried in 22%, was 0%; forward x3 +1.3 dB over holding the prompt,
      was +1.2. Top-down: still scenes 35.4 dB, was 34.4; look-back 29.4 dB against the truth, was 31.4, rollouts
      22.3 dB at 64 steps, was 25.2 (the large grid turns first-person more often) (BENCHMARKS.md, "Consistency";
      experiments/LOG.md entry 25).
    - v5: default world model v7: v6 fine-tuned 45 minutes with the first-person short episodes padded, then 75
      without, sampled with the middle noise level at 1.28 instead of 0.93 (3 Euler steps 5 -> 1.28 -> 0.1, rho 3;
      the same network work per frame). First person, 32 unseen worlds: PSNR after 20 noops 34.6 dB against the
      prompt, was 33.9; a view turned back to 24.0 dB against the truth, was 22.5; one step lands nearest its own
      action's true frame for 81% of the distinct outcomes, was 77%; forward x3 +1.2 dB over holding the prompt, was
      +1.1; a toggled door opens in 63% of worlds, was 59%; top-down look-back 31.4 dB against the truth, was 28.4,
      rollouts 25.2 dB at 64 steps, was 22.6 (BENCHMARKS.md, "Consistency"; experiments/LOG.md entry 22).
    - v4: default world model v6: v5 fine-tuned with a pose-keyed memory input (the latest frame seen from the same
      dead-reckoned heading), sampled with the KV cache rebuilt from its latest 4 frames whenever it is full. First
      person, 32 unseen worlds: PSNR after 20 noops 33.9 dB against the prompt, was 30.8; a view turned back to
      35.3 dB against the model's own earlier frame, was 24.6; one step lands nearest its own action's true frame
      for 77% of the distinct outcomes, was 56%; forward x3 +1.1 dB over holding the prompt, was +0.4; a toggled
      door opens in 59% of worlds, was 69%; top-down rollouts 22.6 dB at 64 steps, was 16.5 (BENCHMARKS.md,
      "Consistency"; experiments/LOG.md entries 17 and 18).
    - v3: the default world model's sampler: 3 Euler steps to sigma 0.1 with action guidance on the first step only,
      instead of 2 steps to 0.5 (same weights, same network work per frame in 3 calls instead of 2): first-person
      PSNR after 20 noops 30.8 dB against the prompt, was 23.6; top-down rollouts 16.4 dB at 64 steps, was 12.3;
      action figures unchanged (BENCHMARKS.md, "Consistency"; experiments/LOG.md entry 16).
    - v2: default world model v5 (v4 trained 1500 steps more) and its sampler: 2 Euler steps to sigma_min 0.5
      instead of 3 to 0.002 (1.3x the frames/s); one-step PSNR 27.8 / 32.7 dB first person / top-down, was
      26.2 / 32.7 (BENCHMARKS.md). Registered without Gymnasium's passive env checker, which counts a first
      reset that raised as checked and then fails the next step (the env validates reset options before it changes
      anything, and passes Gymnasium's and SB3's check_env).
    - v1: default world model v4 (v2 fine-tuned with a range of context noise levels, past frames cached at 0.01):
      one-step PSNR 26.2 / 32.7 dB first person / top-down, was 23.6 / 31.0 (BENCHMARKS.md).
    - v0: initial release (default world model v2 from its second revision on).
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 10}

    def __init__(self, config: GenieWorldConfig | None = None, *, render_mode: str | None = None, **kwargs):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.config = GenieWorldConfig.from_arguments(config, **kwargs)
        parts = WorldParts.build(self.config, 1)
        self.render_mode = render_mode
        self.wm, self.judge, self._worlds, self._prompts = parts.wm, parts.judge, parts.worlds, parts.prompts
        self.level = self.config.level
        self.mission_observation = self.config.mission_observation
        self.observation_space, self.action_space = parts.observation_space, parts.action_space
        self._started = False
        self._window = None

    # ------------------------------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = self._prompts.check(dict(options or {}))  # raises before anything changes
        super().reset(seed=seed)
        prompt = self._prompts.from_options(options, self.np_random)
        self._worlds.seed(int(self.np_random.integers(2**63 - 1)))
        self._worlds.start([0], [prompt])
        self._started = True
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if isinstance(action, (bool, np.bool_)) or (isinstance(action, np.ndarray) and action.dtype == np.bool_):
            raise ValueError(f"invalid action {action!r}: a bool is not an action; pass an int in "
                             f"[0, {self.action_space.n}) ({self._action_names()})")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}: expected an int in [0, {self.action_space.n}) "
                             f"({self._action_names()})")
        _, rewards, terminated = self._worlds.step(np.array([int(action)]))
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(rewards[0]), bool(terminated[0]), False, self._info()

    def render(self):
        if not self._started:
            raise RuntimeError("call reset() before render()")
        frame = self._worlds.frames[0].copy()
        if self.render_mode == "human":
            from genie_env.viewer import Viewer

            if self._window is None:
                self._window = Viewer(caption="GenieWorld")
            self._window.show(frame, text=self.mission)
            return None
        return frame

    def close(self):
        if self._window is not None:
            self._window.close()
            self._window = None
        self._prompts.close()

    # ------------------------------------------------------------------------------------------ extras

    @property
    def mission(self) -> str:
        return self._worlds.missions[0]

    @property
    def frame(self) -> np.ndarray:
        """The current frame, uint8 (S, S, 3)."""
        return self._worlds.frames[0].copy()

    @property
    def world_state(self) -> WorldState | None:
        """The world model's rollout state (KV cache of the recent frames)."""
        return self._worlds.state

    def state_bytes(self) -> int:
        """Memory held by this world's rollout state and frame history; it does not grow with the episode."""
        return self._worlds.state_bytes()

    def fork(self, seed: int | None = None) -> "GenieWorldEnv":
        """An independent copy of this world at the current frame, for counterfactual rollouts.

        The copy shares the model weights and has its own rollout state, mission, frame history, env generator
        and sampling generator (a copy of this one's state: the same actions give the same frames in both; pass
        ``seed`` to draw the copy's noise from another stream). Stepping either leaves the other untouched.
        Call it on the unwrapped env (``env.unwrapped.fork()``): the copy carries no TimeLimit.
        """
        if not self._started:
            raise RuntimeError("call reset() before fork()")
        other = copy.copy(self)
        other._worlds = self._worlds.fork(seed)
        other._np_random = copy.deepcopy(self.np_random)
        other._prompts = self._prompts.copy()
        other._window = None
        return other

    def get_action_meanings(self) -> list[str]:
        return list(self.wm.action_meanings)

    def get_keys_to_action(self) -> dict[tuple, int]:
        """Keyboard map for ``gymnasium.utils.play``: WASD / arrows move and turn, E toggle, F pick up, Q drop."""
        return BabyAI3DEnv.get_keys_to_action(self)

    # ------------------------------------------------------------------------------------------ internals

    def _action_names(self) -> str:
        return ", ".join(f"{i}={m}" for i, m in enumerate(self.wm.action_meanings))

    def _observation(self):
        frame = self._worlds.frames[0].copy()
        if self.mission_observation:
            return {"image": frame, "mission": encode_mission(self.mission)}
        return frame

    def _info(self) -> dict[str, Any]:
        return self._worlds.info(0)
