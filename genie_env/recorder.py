"""Recorder: play any RGB Gymnasium env with random, expert or look-around policies; write shards.

Works with every registered env whose action space is ``Discrete`` and whose frames are RGB:
either the observation is a ``Box(0, 255, (H, W, 3), uint8)``, or the env is made with
``render_mode="rgb_array"`` and ``env.render()`` gives the frame (MiniGrid, for instance).

Policies (chosen per episode; ``"mix"`` and ``"mix2"`` draw one per episode with the weights of
``MIX_PRESETS``, or with weights of your own):

- ``random``: a uniformly random action, held for a random 1-4 steps.
- ``bot``: the env's expert (``env.unwrapped.make_bot()``, whose ``act(last_action)`` replans
  from the action really taken) with epsilon-random actions (default 10%).
- ``lookaround``: full 360-degree turns in place, turns of k steps away and back, a few forward
  moves and the odd random action; needs "turn_left", "turn_right" and "forward" among
  ``env.unwrapped.get_action_meanings()``.
- ``explore``: random play weighted towards moving (``EXPLORE_WEIGHTS``, or your own action
  weights) that tries the interaction that does something where there is one: toggle facing a
  door, pickup facing a key / ball / box, now and then drop what it carries; it turns away from
  walls rather than walking into them. Needs the same action names as ``lookaround``.
- ``lookback``: ``lookaround`` with more look-away-and-back: turns of k away and k back, and walks
  of m cells out, a turn around, m cells back and a turn around (back to the start view when the
  way is free), so a model learns that what it saw comes back.

``explore``, ``lookback`` and branching read what the agent faces from a MiniGrid-like env (its
``grid``, ``front_pos`` and ``carrying``, on ``env.unwrapped`` or ``env.unwrapped.minigrid``);
without one they play the same actions blind (no interaction preferences, no wall avoidance).

Counterfactual branches (``branch_every`` N > 0): at about one state in N (states facing a door or
an object four times as often, see ``BranchChooser``), the recorder also stores the next frame
under every action, computed on copies of the env (``copy.deepcopy``), so
the episode itself is untouched (same frames, same random draws as without branching). The branch
of the action really taken must equal the real next frame; if it does not (an env that cannot be
copied faithfully) recording stops.

Determinism and resume: shard i is generated from an RNG seeded with (seed, i), which also
draws every env reset seed, so shard i has the same content however often the run is
interrupted. A re-run with the same arguments keeps the complete shards, removes leftover
``*.tmp`` files and records only what is missing; a re-run with a larger ``frames`` extends
the recording. ``dataset.json`` in the folder records the arguments that shape the content;
a re-run with different ones is refused and nothing is touched.
"""

from __future__ import annotations

import copy
import enum
import json
import logging
import tempfile
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from world_model.shards import (
    Branches,
    Episode,
    ShardMeta,
    atomic_write,
    read_shard_index,
    shard_name,
    write_shard,
)

logger = logging.getLogger(__name__)

POLICIES = ("bot", "random", "lookaround", "explore", "lookback")
#: policy -> share of episodes, for --policy mix (the original recipe) and mix2 (more action, less
#: copying); renormalised over the policies the env offers
MIX_PRESETS = {
    "mix": {"bot": 0.5, "random": 0.3, "lookaround": 0.2},
    "mix2": {"bot": 0.4, "explore": 0.45, "lookback": 0.15},
}
MIX_WEIGHTS = MIX_PRESETS["mix"]
#: action name -> weight of the explore policy's random draws (names the env lacks are ignored;
#: actions not named get weight OTHER_ACTION_WEIGHT)
EXPLORE_WEIGHTS = {"forward": 0.5, "turn_left": 0.17, "turn_right": 0.17, "noop": 0.02,
                   "pickup": 0.05, "drop": 0.04, "toggle": 0.05}
OTHER_ACTION_WEIGHT = 0.02
MANIFEST_NAME = "dataset.json"
MANIFEST_FORMAT = "genie-env-recording"
MANIFEST_VERSION = 1  # of dataset.json (the shards have their own format_version)
EPISODE_STEP_CEILING = 100_000  # an episode this long means the env has no time limit at all


class RecorderError(ValueError):
    """The recording cannot start or go on: bad arguments, env, or output folder."""


# ----------------------------------------------------------------------------------------------
# policies: one object per episode, `act()` returns the action to take now


class RandomPolicy:
    """A uniformly random action, repeated for a random 1-4 steps (so motion is visible)."""

    name = "random"

    def __init__(self, num_actions: int, rng: np.random.Generator, max_repeat: int = 4):
        self.num_actions, self.rng, self.max_repeat = num_actions, rng, max_repeat
        self._action, self._left = 0, 0

    def act(self) -> int:
        if self._left == 0:
            self._action = int(self.rng.integers(self.num_actions))
            self._left = int(self.rng.integers(1, self.max_repeat + 1))
        self._left -= 1
        return self._action


class BotPolicy:
    """The env's expert bot with epsilon-random actions; the bot is told what was really done."""

    name = "bot"

    def __init__(self, bot: Any, num_actions: int, rng: np.random.Generator, epsilon: float = 0.1):
        self.bot, self.num_actions, self.rng, self.epsilon = bot, num_actions, rng, epsilon
        self._last: int | None = None

    def act(self) -> int:
        action = int(self.bot.act(self._last))
        if self.rng.random() < self.epsilon:
            action = int(self.rng.integers(self.num_actions))
        self._last = action
        return action


class Probe:
    """What the agent faces and carries, read from a MiniGrid-like env (``grid``, ``front_pos``,
    ``carrying`` on ``env.unwrapped`` or on ``env.unwrapped.minigrid``); blind (None) otherwise.

    ``front()`` names the cell in front: "empty", "wall", "door_open", "door_closed",
    "door_locked", "key", "ball", "box", "goal", "lava", ... (MiniGrid's object types), or None
    when the env cannot tell. ``carrying()`` is the carried object's type, None when empty-handed.
    """

    WALKABLE = frozenset({"empty", "door_open", "goal"})
    INTERESTING = frozenset({"door_open", "door_closed", "door_locked", "key", "ball", "box"})

    def __init__(self, env: gym.Env | None):
        inner = getattr(env.unwrapped, "minigrid", env.unwrapped) if env is not None else None
        self._grid_env = inner if all(hasattr(inner, a) for a in ("grid", "front_pos", "carrying")) else None

    @property
    def blind(self) -> bool:
        return self._grid_env is None

    def front(self) -> str | None:
        if self._grid_env is None:
            return None
        obj = self._grid_env.grid.get(*self._grid_env.front_pos)
        if obj is None:
            return "empty"
        if obj.type == "door":
            return "door_open" if obj.is_open else "door_locked" if obj.is_locked else "door_closed"
        return str(obj.type)

    def carrying(self) -> str | None:
        carried = None if self._grid_env is None else self._grid_env.carrying
        return None if carried is None else str(carried.type)


BLIND = Probe(None)


class LookaroundPolicy:
    """Looks around in place, so a world model learns what turning reveals and that turning back
    restores it. Segments, drawn with ``segment_weights`` over ``SEGMENTS``: a full circle, k turns
    away and k back, 1-3 forward moves, one random action, and a walk of m cells out and back
    (out, turn around, back, turn around; with a probe it stops going out where the way is
    blocked and walks back as many cells as it went). With a probe, forward moves into a wall
    become turns."""

    name = "lookaround"
    SEGMENTS = ("circle", "away_and_back", "forward", "random", "walk_and_back")
    SEGMENT_WEIGHTS = (0.3, 0.3, 0.3, 0.1, 0.0)

    def __init__(self, action_meanings: tuple[str, ...], rng: np.random.Generator,
                 turns_per_circle: int = 4, segment_weights: tuple[float, ...] | None = None,
                 probe: Probe = BLIND):
        self.left = action_meanings.index("turn_left")
        self.right = action_meanings.index("turn_right")
        self.forward = action_meanings.index("forward")
        self.num_actions, self.rng, self.turns_per_circle = len(action_meanings), rng, turns_per_circle
        weights = np.asarray(self.SEGMENT_WEIGHTS if segment_weights is None else segment_weights, float)
        if weights.shape != (len(self.SEGMENTS),) or weights.min() < 0 or abs(weights.sum() - 1) > 1e-6:
            raise RecorderError(f"segment_weights must be {len(self.SEGMENTS)} probabilities for "
                                f"{self.SEGMENTS} summing to 1; got {segment_weights}")
        used = np.flatnonzero(weights)  # draws over the used segments only, so lookaround draws as it always did
        self._kinds, self._p = used, weights[used]
        self.probe = probe
        self._queue: deque[int] = deque()
        self._walk: list | None = None  # a walk in progress: [cells out so far, cells left to try, turn]

    def act(self) -> int:
        if self._walk is not None:
            return self._walk_step()
        if not self._queue:
            kind = self.SEGMENTS[int(self._kinds[int(self.rng.choice(len(self._kinds), p=self._p))])]
            if kind == "walk_and_back":
                turn = self.left if self.rng.random() < 0.5 else self.right
                self._walk = [0, int(self.rng.integers(1, 4)), turn]
                return self._walk_step()
            self._queue.extend(self._segment(kind))
        action = self._queue.popleft()
        if action == self.forward and self.probe.front() not in (None, *Probe.WALKABLE):
            action = self.left if self.rng.random() < 0.5 else self.right
        return action

    def _walk_step(self) -> int:
        went, left_out, turn = self._walk
        if left_out > 0 and self.probe.front() in (None, *Probe.WALKABLE):
            self._walk = [went + 1, left_out - 1, turn]
            return self.forward
        # turned around after the way out: walk back the cells we went, then turn around again
        self._walk = None
        self._queue.extend([turn, turn] + [self.forward] * went + [turn, turn])
        return self._queue.popleft()

    def _segment(self, kind: str) -> list[int]:
        turn, back = (self.left, self.right) if self.rng.random() < 0.5 else (self.right, self.left)
        if kind == "circle":
            return [turn] * self.turns_per_circle
        if kind == "away_and_back":
            k = int(self.rng.integers(1, self.turns_per_circle))
            return [turn] * k + [back] * k
        if kind == "forward":
            return [self.forward] * int(self.rng.integers(1, 4))
        return [int(self.rng.integers(self.num_actions))]


class LookbackPolicy(LookaroundPolicy):
    """``LookaroundPolicy`` weighted towards coming back to what was seen: turns away and back and
    walks out and back (see ``SEGMENT_WEIGHTS``)."""

    name = "lookback"
    SEGMENT_WEIGHTS = (0.15, 0.35, 0.15, 0.05, 0.3)


class ExplorePolicy:
    """Random play weighted towards moving, trying the interaction that does something where there
    is one. Each step, with a probe:

    - facing a closed or open door: toggle with probability ``interact``; facing a locked door
      while carrying a key: toggle with probability ``interact``;
    - facing a key, ball or box with empty hands: pickup with probability ``interact`` (a box is
      toggled, which opens it, a quarter of those times);
    - carrying something and facing free floor: drop with probability ``drop``;
    - otherwise an action drawn from ``weights`` (name -> weight), forward held for
      1-``max_repeat`` steps, a turn for 1-2; a forward move into a cell that blocks it becomes one
      turn with probability 0.9.

    After an interaction the next step is drawn from the weights, so a door is not toggled back
    and forth. Without a probe only the weighted draws remain.
    """

    name = "explore"

    def __init__(self, action_meanings: tuple[str, ...], rng: np.random.Generator,
                 weights: dict[str, float] | None = None, probe: Probe = BLIND,
                 interact: float = 0.8, drop: float = 0.1, max_repeat: int = 4):
        weights = EXPLORE_WEIGHTS if weights is None else weights
        self.index = {m: i for i, m in enumerate(action_meanings)}
        p = np.array([float(weights.get(m, OTHER_ACTION_WEIGHT)) for m in action_meanings])
        if p.min() < 0 or p.sum() <= 0:
            raise RecorderError(f"action weights must be >= 0 and not all 0, got {weights}")
        self.p = p / p.sum()
        self.rng, self.probe, self.interact, self.drop, self.max_repeat = rng, probe, interact, drop, max_repeat
        self.left, self.right, self.forward = (self.index.get(m) for m in ("turn_left", "turn_right", "forward"))
        self._held, self._left = -1, 0
        self._cooldown = False

    def act(self) -> int:
        front, carrying = self.probe.front(), self.probe.carrying()
        if front is not None and not self._cooldown:
            action = self._interaction(front, carrying)
            if action is not None:
                self._cooldown, self._left = True, 0
                return action
        self._cooldown = False
        if self._left == 0:
            self._held = int(self.rng.choice(len(self.p), p=self.p))
            longest = (self.max_repeat if self._held == self.forward
                       else 2 if self._held in (self.left, self.right) else 1)
            self._left = int(self.rng.integers(1, longest + 1))
        self._left -= 1
        action = self._held
        if (action == self.forward and front is not None and front not in Probe.WALKABLE
                and self.left is not None and self.right is not None and self.rng.random() < 0.9):
            action, self._left = (self.left if self.rng.random() < 0.5 else self.right), 0
        return action

    def _interaction(self, front: str, carrying: str | None) -> int | None:
        toggle, pickup, drop = (self.index.get(m) for m in ("toggle", "pickup", "drop"))
        u = self.rng.random()
        if front in ("door_open", "door_closed") or (front == "door_locked" and carrying == "key"):
            return toggle if u < self.interact else None
        if front in ("key", "ball", "box") and carrying is None:
            if u >= self.interact:
                return None
            if front == "box" and toggle is not None and self.rng.random() < 0.25:
                return toggle
            return pickup
        if carrying is not None and front == "empty":
            return drop if u < self.drop else None
        return None


# ----------------------------------------------------------------------------------------------
# the env, seen as a source of RGB frames


def _is_rgb_box(space: gym.Space) -> bool:
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8
            and len(space.shape) == 3 and space.shape[2] == 3)


class FrameEnv:
    """A Gymnasium env that yields RGB frames: its observation if that is an RGB image, else
    ``render()`` of an env made with ``render_mode="rgb_array"``."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], max_episode_steps: int | None = None,
                 view: str | None = None):
        self.env_id = env_id
        extra = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
        self.env = self._make(env_id, dict(env_kwargs, **extra))
        self.from_obs = _is_rgb_box(self.env.observation_space)
        if not self.from_obs:
            self.env.close()
            self.env = self._make(env_id, dict(env_kwargs, render_mode="rgb_array", **extra))
        space = self.env.action_space
        if not isinstance(space, gym.spaces.Discrete) or int(space.start) != 0:
            self.env.close()
            raise RecorderError(f"{env_id} has action space {space}; the recorder needs Discrete(n) "
                                f"starting at 0 (wrap the env to discretise its actions)")
        self.num_actions = int(space.n)
        unwrapped = self.env.unwrapped
        actions_enum = getattr(unwrapped, "actions", None)  # MiniGrid names its actions with an Enum
        if hasattr(unwrapped, "get_action_meanings"):
            self.action_meanings = tuple(str(m) for m in unwrapped.get_action_meanings())
        elif isinstance(actions_enum, type) and issubclass(actions_enum, enum.Enum):
            self.action_meanings = tuple(a.name for a in actions_enum)
        else:
            self.action_meanings = tuple(f"action_{i}" for i in range(self.num_actions))
        if len(self.action_meanings) != self.num_actions:
            raise RecorderError(f"{env_id} names {len(self.action_meanings)} "
                                f"actions but the action space has {self.num_actions}; fix the env")
        if view is None:  # the env's own name for its perspective, if it has one
            view = getattr(unwrapped, "view", None)
        self.view = view if isinstance(view, str) else "rgb"
        if self.from_obs:
            self.frame_shape = tuple(int(s) for s in self.env.observation_space.shape)
        else:  # only rendering tells the size; every episode reset is seeded, so this probe is harmless
            self.env.reset(seed=0)
            self.frame_shape = self._render().shape

    @staticmethod
    def _make(env_id: str, kwargs: dict[str, Any]) -> gym.Env:
        try:
            return gym.make(env_id, **kwargs)
        except TypeError as e:  # an unexpected keyword argument
            raise RecorderError(f"{env_id} does not accept the arguments {sorted(kwargs)} ({e}); "
                                f"drop the ones it does not know") from e
        except (ValueError, gym.error.Error) as e:  # the env refused an argument's value
            raise RecorderError(f"{env_id} cannot be made with {kwargs}: {e}") from e

    @property
    def available_policies(self) -> tuple[str, ...]:
        names = ["random"]
        if hasattr(self.env.unwrapped, "make_bot"):
            names.insert(0, "bot")
        if {"turn_left", "turn_right", "forward"} <= set(self.action_meanings):
            names.extend(["lookaround", "explore", "lookback"])
        return tuple(names)

    def make_policy(self, name: str, rng: np.random.Generator, bot_epsilon: float,
                    action_weights: dict[str, float] | None = None):
        """A fresh policy for the episode that was just reset."""
        if name == "random":
            return RandomPolicy(self.num_actions, rng)
        if name == "bot":
            return BotPolicy(self.env.unwrapped.make_bot(), self.num_actions, rng, bot_epsilon)
        if name == "lookaround":
            return LookaroundPolicy(self.action_meanings, rng)
        if name == "lookback":
            return LookbackPolicy(self.action_meanings, rng, probe=self.probe)
        if name == "explore":
            return ExplorePolicy(self.action_meanings, rng, weights=action_weights, probe=self.probe)
        raise RecorderError(f"unknown policy {name!r}; choose one of {POLICIES} or 'mix'")

    @property
    def probe(self) -> Probe:
        return Probe(self.env)

    def branch(self) -> np.ndarray:
        """(A, H, W, 3) uint8: the next frame under each action 0..A-1 from the current state, each
        stepped on its own ``copy.deepcopy`` of the env (its RNG included), so this env is untouched."""
        frames = []
        for action in range(self.num_actions):
            clone = copy.deepcopy(self.env)
            obs, *_ = clone.step(action)
            frames.append(self._frame(obs, clone))
        return np.stack(frames)

    def _render(self, env: gym.Env | None = None) -> np.ndarray:
        frame = (self.env if env is None else env).render()
        if frame is None:
            raise RecorderError(f"{self.env_id}: render() returned None although render_mode='rgb_array'")
        return np.asarray(frame)

    def _frame(self, obs: Any, env: gym.Env | None = None) -> np.ndarray:
        frame = np.array(obs if self.from_obs else self._render(env), dtype=np.uint8, copy=True)
        if frame.shape != self.frame_shape:
            raise RecorderError(f"{self.env_id} produced a frame of shape {frame.shape} after frames of "
                                f"{self.frame_shape}; the recorder needs a fixed frame size (pass a "
                                f"fixed size, e.g. --size H W)")
        return frame

    def reset(self, seed: int) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed)
        return self._frame(obs), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._frame(obs), float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        self.env.close()


class BranchChooser:
    """Which states of an episode get counterfactual branches: each state with probability
    1 / `every`, or `interesting_factor` / `every` (at most 1) when the agent faces a door or an
    object (``Probe.INTERESTING``). Draws come from a generator of their own, seeded by the
    episode's reset seed, so choosing never changes the episode's own random draws."""

    def __init__(self, every: int, reset_seed: int, probe: Probe, interesting_factor: float = 4.0):
        self.rng = np.random.default_rng([reset_seed, 0xB7A2C4])
        self.p_plain = 1.0 / every
        self.p_interesting = min(1.0, interesting_factor / every)
        self.probe = probe

    def __call__(self) -> bool:
        p = self.p_interesting if self.probe.front() in Probe.INTERESTING else self.p_plain
        return bool(self.rng.random() < p)


def play_episode(env: FrameEnv, policy_name: str, rng: np.random.Generator, reset_seed: int,
                 bot_epsilon: float = 0.1, branch_every: int = 0,
                 action_weights: dict[str, float] | None = None) -> Episode:
    """Reset `env` with `reset_seed` and play one whole episode with the named policy; with
    `branch_every` > 0, store counterfactual branches at the states a ``BranchChooser`` picks."""
    frame, info = env.reset(seed=reset_seed)
    policy = env.make_policy(policy_name, rng, bot_epsilon, action_weights)
    mission = info.get("mission", getattr(env.env.unwrapped, "mission", ""))
    frames, actions, rewards, success = [frame], [], [0.0], [False]
    choose = BranchChooser(branch_every, reset_seed, env.probe) if branch_every > 0 else None
    branch_sources, branch_frames = [], []
    terminated = truncated = False
    while not (terminated or truncated):
        if len(actions) >= EPISODE_STEP_CEILING:
            raise RecorderError(f"{env.env_id}: an episode ran {EPISODE_STEP_CEILING} steps without "
                                f"ending; pass max_episode_steps (the env has no time limit)")
        action = policy.act()
        branched = env.branch() if choose is not None and choose() else None
        frame, reward, terminated, truncated, step_info = env.step(action)
        if branched is not None:
            if not np.array_equal(branched[action], frame):
                raise RecorderError(f"{env.env_id}: a copy of the env stepped with action {action} gave another "
                                    f"frame than the env itself; it cannot be branched (copying it misses some "
                                    f"of its state, or it is not deterministic): record without branch_every")
            branch_sources.append(len(actions))
            branch_frames.append(branched)
        frames.append(frame)
        actions.append(action)
        rewards.append(reward)
        success.append(bool(step_info.get("success", reward > 0 and terminated)))
    branches = None
    if branch_sources:
        a = env.num_actions
        branches = Branches(sources=np.repeat(np.array(branch_sources, np.int64), a),
                            actions=np.tile(np.arange(a, dtype=np.int16), len(branch_sources)),
                            frames=np.concatenate(branch_frames))
    return Episode(
        frames=np.stack(frames),  # (L+1, H, W, 3)
        actions=np.array(actions + [-1], dtype=np.int16),
        rewards=np.array(rewards, dtype=np.float32),
        success=np.array(success, dtype=np.bool_),
        mission=mission if isinstance(mission, str) else str(mission),
        level_seed=int(info.get("level_seed", -1)),
        policy=policy_name,
        view=env.view,
        split=str(info.get("split", "unknown")),
        terminated=terminated,
        truncated=truncated,
        branches=branches,
    )


# ----------------------------------------------------------------------------------------------
# the recording folder


@dataclass(frozen=True)
class RecordingManifest:
    """dataset.json: the arguments that decide what every shard of a folder contains."""

    env_id: str
    env_kwargs: dict  # JSON-normalised (tuples become lists)
    seed: int
    policy: str
    episodes_per_shard: int
    top_down_share: float
    bot_epsilon: float
    max_episode_steps: int | None
    frame_shape: tuple[int, ...] | None = None  # known once the env is made
    action_meanings: tuple[str, ...] | None = None
    mix: dict | None = None  # policy -> weight for policy "mix"; None: the preset's weights
    action_weights: dict | None = None  # action name -> weight of the explore policy; None: EXPLORE_WEIGHTS
    branch_every: int = 0  # counterfactual branches at about one state in N; 0: none
    top_down_cells: int | None = None  # the top-down env's window (env kwarg top_down_cells); None: whole grid

    def to_json(self) -> str:
        d = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, **asdict(self)}
        return json.dumps(json.loads(json.dumps(d)), indent=2) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> "RecordingManifest":
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RecorderError(f"{path} is unreadable ({e}); fix or delete it, or record into a new folder") from e
        if not isinstance(d, dict) or d.get("format") != MANIFEST_FORMAT:
            raise RecorderError(f"{path} is not a genie-env recording manifest; record into a new folder")
        if d.get("format_version") != MANIFEST_VERSION:
            raise RecorderError(f"{path} has format_version {d.get('format_version')!r}, this genie-env "
                                f"writes {MANIFEST_VERSION}; record into a new folder")
        try:
            return cls(**{k: v for k, v in d.items() if k not in ("format", "format_version")})
        except TypeError as e:
            raise RecorderError(f"{path} is malformed ({e}); record into a new folder") from e

    def differences(self, other: "RecordingManifest", fields: tuple[str, ...]) -> list[str]:
        """'name: mine != other' for each of `fields` that differs (compared as JSON)."""
        a, b = json.loads(self.to_json()), json.loads(other.to_json())
        return [f"{k}={a[k]!r} (you asked for {b[k]!r})" for k in fields if a[k] != b[k]]


_ARG_FIELDS = ("env_id", "env_kwargs", "seed", "policy", "episodes_per_shard", "top_down_share",
               "bot_epsilon", "max_episode_steps", "mix", "action_weights", "branch_every", "top_down_cells")
_ENV_FIELDS = ("frame_shape", "action_meanings")


def _prepare_out_dir(out_dir: Path) -> None:
    """Create the folder if needed and prove it is writable, or fail before any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RecorderError(f"output path {out_dir} exists and is not a folder; pass a folder to --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise RecorderError(f"output folder {out_dir} is not writable ({e.strerror or e}); "
                            f"choose another --out") from e


def _remove_leftovers(out_dir: Path) -> None:
    """Delete the temp files a killed run left behind (only the recorder's own names)."""
    for tmp in [*out_dir.glob("shard_*.npz.*.tmp"), *out_dir.glob(MANIFEST_NAME + ".*.tmp")]:
        logger.info("removing %s left by an interrupted run", tmp.name)
        tmp.unlink()


@dataclass(frozen=True)
class RecordingSummary:
    """What `record` did."""

    out_dir: Path
    num_shards: int
    num_episodes: int
    num_frames: int
    shards_written: int
    shards_reused: int
    num_branch_frames: int = 0  # counterfactual frames stored beside the num_frames real ones


def _mix_weights(policy: str, available: tuple[str, ...], env_id: str,
                 mix: dict[str, float] | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    if policy not in MIX_PRESETS:
        if policy not in available:
            raise RecorderError(f"policy {policy!r} is not available for {env_id} (available: "
                                f"{', '.join(available)}); 'bot' needs env.unwrapped.make_bot(), "
                                f"'lookaround', 'explore' and 'lookback' need turn_left/turn_right/forward "
                                f"action meanings")
        return (policy,), np.ones(1)
    table = MIX_PRESETS[policy] if mix is None else mix
    missing = [p for p, w in table.items() if w > 0 and p not in available]
    if missing:
        logger.info("policy %s for %s: %s unavailable, mixing %s", policy, env_id, ", ".join(missing),
                    ", ".join(p for p in table if p in available))
    names = tuple(p for p, w in table.items() if w > 0 and p in available)
    if not names:
        raise RecorderError(f"none of the mixed policies {sorted(table)} is available for {env_id} "
                            f"(available: {', '.join(available)}); give weights to some of those")
    weights = np.array([table[p] for p in names], dtype=float)
    return names, weights / weights.sum()


def _check_weights(what: str, weights: dict | None, known: tuple[str, ...] | None) -> dict | None:
    """A JSON-clean copy of name -> weight (>= 0, some > 0), names checked against `known`."""
    if weights is None:
        return None
    clean = {str(k): float(v) for k, v in dict(weights).items()}
    unknown = sorted(set(clean) - set(known)) if known is not None else []
    if unknown:
        raise RecorderError(f"{what}: unknown names {unknown}; choose among {', '.join(known)}")
    if any(not np.isfinite(v) or v < 0 for v in clean.values()) or not any(v > 0 for v in clean.values()):
        raise RecorderError(f"{what} must be finite weights >= 0, at least one > 0; got {clean}")
    return clean


def record(env_id: str, out_dir: str | Path, frames: int, policy: str = "mix", seed: int = 0,
           episodes_per_shard: int = 64, env_kwargs: dict[str, Any] | None = None,
           top_down_share: float = 0.0, bot_epsilon: float = 0.1,
           max_episode_steps: int | None = None, progress: bool = True,
           mix: dict[str, float] | None = None, action_weights: dict[str, float] | None = None,
           branch_every: int = 0, top_down_cells: int | None = None) -> RecordingSummary:
    """Record shards shard_000000.npz, ... of `env_id` into `out_dir` until >= `frames` frames.

    `policy` is one policy of ``POLICIES`` for every episode, or a mix drawn per episode: "mix"
    (``MIX_PRESETS["mix"]``, or the weights `mix` gives, policy -> weight) or "mix2". The explore
    policy draws actions with `action_weights` (action name -> weight; default ``EXPLORE_WEIGHTS``).
    With `branch_every` N > 0, about one state in N (more where the agent faces a door or an
    object) also gets the next frame under every action, stored as the episode's Branches;
    `frames` counts real frames only.

    Recording stops at the end of the episode that reaches `frames`, so it overshoots by less
    than one episode (episodes are never cut). Shards hold `episodes_per_shard` whole episodes
    each, the last one possibly fewer; a re-run with a larger `frames` completes that shard
    (its first episodes come out the same) and goes on. Episodes end with the env's own time limit unless
    `max_episode_steps` is given. With `top_down_share` > 0, that share of episodes comes from
    a second env made with ``view="top_down"`` (the env must accept a `view` kwarg), and with
    ``top_down_cells`` when that is given (3D BabyAI: a window of that many cells around the agent).
    Re-running with the same arguments resumes; see the module docstring.
    """
    if policy not in MIX_PRESETS and policy not in POLICIES:
        raise RecorderError(f"unknown policy {policy!r}; choose one of {', '.join(MIX_PRESETS)}, "
                            f"{', '.join(POLICIES)}")
    if mix is not None and policy != "mix":
        raise RecorderError(f"mix weights go with policy 'mix', not {policy!r}")
    mix = _check_weights("mix", mix, POLICIES)
    action_weights = _check_weights("action_weights", action_weights, None)
    if branch_every < 0:
        raise RecorderError(f"branch_every must be >= 0 (0: no branches), got {branch_every}")
    if seed < 0:
        raise RecorderError(f"seed must be >= 0, got {seed}")
    if top_down_cells is not None and top_down_share <= 0:
        raise RecorderError("top_down_cells sets the top-down episodes' window; give a top_down_share > 0 too")
    if frames < 1 or episodes_per_shard < 1:
        raise RecorderError(f"frames ({frames}) and episodes_per_shard ({episodes_per_shard}) must be >= 1")
    if not 0.0 <= top_down_share <= 1.0 or not 0.0 <= bot_epsilon <= 1.0:
        raise RecorderError(f"top_down_share ({top_down_share}) and bot_epsilon ({bot_epsilon}) must be in [0, 1]")
    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise RecorderError(f"unknown env id {env_id!r}: {e}") from e
    env_kwargs = dict(env_kwargs or {})
    try:
        json.dumps(env_kwargs)
    except TypeError as e:
        raise RecorderError(f"env_kwargs must be JSON-serialisable to be recorded in {MANIFEST_NAME}: {e}") from e
    wanted = RecordingManifest(env_id=env_id, env_kwargs=env_kwargs, seed=seed, policy=policy,
                               episodes_per_shard=episodes_per_shard, top_down_share=top_down_share,
                               bot_epsilon=bot_epsilon, max_episode_steps=max_episode_steps,
                               mix=mix, action_weights=action_weights, branch_every=branch_every,
                               top_down_cells=top_down_cells)

    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    existing = RecordingManifest.from_file(manifest_path) if manifest_path.exists() else None
    if existing is None and any(out_dir.glob("shard_*.npz")):
        raise RecorderError(f"{out_dir} holds shards but no {MANIFEST_NAME}; record into a new folder")
    refuse = (f"{out_dir} was recorded with {{}}; nothing was changed. Repeat the original "
              f"arguments to resume or extend it, or record into a new folder")
    if existing is not None and (diff := existing.differences(wanted, _ARG_FIELDS)):
        raise RecorderError(refuse.format(", ".join(diff)))

    envs: dict[bool, FrameEnv] = {}  # top_down? -> env
    try:
        envs[False] = FrameEnv(env_id, env_kwargs, max_episode_steps)
        if top_down_share > 0:
            top_down_kwargs = dict(env_kwargs, view="top_down")
            if top_down_cells is not None:
                top_down_kwargs["top_down_cells"] = top_down_cells
            envs[True] = FrameEnv(env_id, top_down_kwargs, max_episode_steps, view="top_down")
            if envs[True].frame_shape != envs[False].frame_shape:
                raise RecorderError(f"{env_id}: top-down frames {envs[True].frame_shape} differ from "
                                    f"{envs[False].frame_shape}; both views must have one size")
        main = envs[False]
        meta = ShardMeta(env_id=env_id, frame_shape=main.frame_shape, action_meanings=main.action_meanings)
        wanted = RecordingManifest(**{**asdict(wanted), "frame_shape": meta.frame_shape,
                                      "action_meanings": meta.action_meanings})
        if existing is not None and (diff := existing.differences(wanted, _ENV_FIELDS)):
            raise RecorderError(refuse.format(", ".join(diff)))
        names, weights = _mix_weights(policy, main.available_policies, env_id, mix)
        if action_weights is not None and (unknown := sorted(set(action_weights) - set(meta.action_meanings))):
            raise RecorderError(f"action_weights name {unknown}, which {env_id} does not have; its actions are "
                                f"{', '.join(meta.action_meanings)}")

        if existing is None:
            text = wanted.to_json().encode()
            atomic_write(manifest_path, lambda f: f.write(text))
        _remove_leftovers(out_dir)

        total = episodes = written = reused = branch_frames = 0
        with tqdm(total=frames, unit="frame", desc=f"recording {env_id}", disable=not progress) as bar:

            def advance(n: int) -> None:  # the bar counts to `frames`; the last episode may pass it
                bar.update(max(0, min(n, frames - bar.n)))

            i = 0
            while total < frames:
                path = out_dir / shard_name(i)
                index = read_shard_index(path) if path.exists() else None
                if index is not None and index.meta != meta:
                    raise RecorderError(f"{path} was recorded from {index.meta}, not {meta}; "
                                        f"delete it or record into a new folder")
                partial = index is not None and index.num_episodes < episodes_per_shard
                if index is not None and not (partial and total + index.num_frames < frames):
                    n, k, g = index.num_frames, index.num_episodes, index.num_branches
                    reused += 1
                    advance(n)
                else:  # a new shard, or a partial one that must grow: (seed, i) gives the same first episodes
                    shard = _record_shard(envs, i, seed, episodes_per_shard, names, weights,
                                          top_down_share, bot_epsilon, on_episode=advance,
                                          max_frames=frames - total, branch_every=branch_every,
                                          action_weights=action_weights)
                    write_shard(path, shard, meta)
                    n, k = sum(ep.num_frames for ep in shard), len(shard)
                    g = sum(len(ep.branches) for ep in shard if ep.branches is not None)
                    written += 1
                total, episodes, branch_frames, i = total + n, episodes + k, branch_frames + g, i + 1
            if total > frames:
                bar.total = total
                bar.update(total - bar.n)
    finally:
        for env in envs.values():
            env.close()
    return RecordingSummary(out_dir=out_dir, num_shards=i, num_episodes=episodes, num_frames=total,
                            shards_written=written, shards_reused=reused, num_branch_frames=branch_frames)


def _record_shard(envs: dict[bool, FrameEnv], index: int, seed: int, num_episodes: int,
                  names: tuple[str, ...], weights: np.ndarray, top_down_share: float,
                  bot_epsilon: float, on_episode: Callable[[int], Any],
                  max_frames: int | None = None, branch_every: int = 0,
                  action_weights: dict[str, float] | None = None) -> list[Episode]:
    """The episodes of shard `index`: a pure function of (seed, index) and the arguments.

    With `max_frames`, stops after the episode that brings the shard to `max_frames` frames; the
    episodes it has are the first ones of the full shard.
    """
    rng = np.random.default_rng([seed, index])
    episodes: list[Episode] = []
    frames = 0
    for _ in range(num_episodes):
        if max_frames is not None and frames >= max_frames:
            break
        reset_seed = int(rng.integers(2**31 - 1))
        top_down = bool(rng.random() < top_down_share)
        name = names[int(rng.choice(len(names), p=weights))]
        episode = play_episode(envs[top_down], name, rng, reset_seed, bot_epsilon, branch_every, action_weights)
        episodes.append(episode)
        frames += episode.num_frames
        on_episode(episode.num_frames)
    return episodes
