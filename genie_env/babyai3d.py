"""3D BabyAI: MiniGrid's BabyAI levels seen in first person, the ground truth the world model learns from."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the BabyAI levels we wrap)
import numpy as np
from gymnasium import spaces

from genie_env.raycaster import DOOR_CLOSED, DOOR_LOCKED, DOOR_OPEN, EMPTY, OBJECT_COLORS, WALL, Palette
from genie_env.raycaster import Raycaster, Scene, Sprite

#: The BabyAI levels registered as ``genie_env/BabyAI3D-<Level>-v0``.
LEVELS = (
    "OpenRedDoor", "OpenDoor", "OpenTwoDoors", "GoToRedBall", "GoToObj", "GoToLocal",
    "PickupLoc", "UnlockLocal", "PutNextLocal", "KeyCorridorS3R1",
)

#: The action vocabulary shared by the ground-truth world, the world model and GenieWorld.
ACTION_MEANINGS = ("noop", "turn_left", "turn_right", "forward", "pickup", "drop", "toggle")
# Our action index -> MiniGrid's: noop is MiniGrid's `done`, which changes nothing in BabyAI levels.
_TO_MINIGRID = (6, 0, 1, 2, 3, 4, 5)
_FROM_MINIGRID = {m: a for a, m in enumerate(_TO_MINIGRID)}

VIEWS = ("first_person", "top_down")


@dataclass(frozen=True)
class SeedRange:
    """A half-open range of level seeds, ``[start, stop)``: one split of the worlds, Procgen style."""

    name: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def __contains__(self, seed: int) -> bool:
        return self.start <= seed < self.stop


#: Worlds for training (world model data, agents). Level seeds 0 .. 999,999.
TRAIN_SEEDS = SeedRange("train", 0, 1_000_000)
#: Held-out worlds for every evaluation: never recorded for training. Level seeds 1,000,000 .. 1,099,999.
TEST_SEEDS = SeedRange("test", 1_000_000, 1_100_000)
SEED_RANGES = {"train": TRAIN_SEEDS, "test": TEST_SEEDS}


def split_of(level_seed: int) -> str:
    """The name of the split a level seed belongs to ("train", "test" or "unknown")."""
    for name, seeds in SEED_RANGES.items():
        if level_seed in seeds:
            return name
    return "unknown"


class BabyAI3DEnv(gym.Env):
    """A BabyAI level rendered in first person by a numpy raycaster.

    ## Description
    Levels, missions ("open the red door", "pick up the ball on your left"), their verifiers and the door / key
    mechanics come from Farama MiniGrid's BabyAI suite. This env replaces the symbolic observation with a 3D
    first-person frame: walls, doors (open, closed and locked look different), keys, balls and boxes, the
    carried object, a checker floor and a ceiling. Wall, floor and ceiling colours, the light and the field of
    view are drawn from the level seed, so different worlds look different. ``view="top_down"`` shows
    MiniGrid's own overhead rendering instead (a second perspective of the same world): the whole grid, or with
    ``top_down_cells=n`` a window of at most n x n cells around the agent, so that large grids keep their small
    things (a 22 x 22 grid in 64 pixels leaves ~2.9 pixels per cell, too few for the agent's heading).

    ## Action Space
    ``Discrete(7)``: 0 noop, 1 turn_left, 2 turn_right, 3 forward, 4 pickup, 5 drop, 6 toggle (open / close /
    unlock the door in front). See :meth:`get_action_meanings` and :meth:`get_keys_to_action`.

    ## Observation Space
    ``Box(0, 255, (H, W, 3), uint8)``, the RGB frame; ``H, W = size`` (64 x 64 by default). The mission text
    is in ``info["mission"]``; :class:`genie_env.mission.MissionObservation` adds it to the observation.

    ## Rewards
    BabyAI's: ``1 - 0.9 * steps / max_steps`` when the verifier says the mission is done, else 0.

    ## Starting State
    ``reset(seed=s)`` seeds the env's generator, which draws a level seed from the chosen split (``worlds``);
    ``options={"level_seed": k}`` picks the world directly. The level seed fixes the layout, mission and look.

    ## Episode End
    Terminated when the mission is accomplished; truncated at BabyAI's own step limit for the level.

    ## Arguments
    - ``level``: one of :data:`LEVELS`.
    - ``size``: frame ``(height, width)``, default ``(64, 64)``.
    - ``view``: ``"first_person"`` (default) or ``"top_down"``.
    - ``top_down_cells``: top-down only: show a window of at most this many cells across (>= 3), centred on the
      agent and kept inside the grid (it scrolls as the agent moves); None (default): the whole grid.
    - ``worlds``: ``"train"`` (default) or ``"test"``: which :data:`SEED_RANGES` ``reset`` draws from.
    - ``render_mode``: ``"rgb_array"`` or ``"human"`` (a pygame window).

    ## Info
    ``mission`` (str), ``success`` (bool, the verifier's verdict this step), ``level_seed`` (int), ``split``.

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 10}

    def __init__(
        self,
        level: str = "GoToLocal",
        size: tuple[int, int] = (64, 64),
        view: str = "first_person",
        worlds: str = "train",
        render_mode: str | None = None,
        top_down_cells: int | None = None,
    ):
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose 'first_person' or 'top_down'")
        if top_down_cells is not None:
            if view != "top_down":
                raise ValueError(f"top_down_cells applies to view='top_down' only; got view={view!r}")
            if isinstance(top_down_cells, bool) or not isinstance(top_down_cells, (int, np.integer)) \
                    or top_down_cells < 3:
                raise ValueError(f"top_down_cells must be an int >= 3 (or None: the whole grid), got "
                                 f"{top_down_cells!r}")
            top_down_cells = int(top_down_cells)
        if worlds not in SEED_RANGES:
            raise ValueError(f"unknown worlds {worlds!r}; choose 'train' or 'test'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        size = tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (height, width) with both >= 8, got {size}")
        self.level, self.size, self.view, self.worlds = level, size, view, worlds
        self.top_down_cells = top_down_cells
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (size[0], size[1], 3), np.uint8)
        self.action_space = spaces.Discrete(len(ACTION_MEANINGS))
        self._inner = gym.make(f"BabyAI-{level}-v0").unwrapped
        # The symbolic observation MiniGrid computes after every step is never used here; skipping it makes
        # stepping several times faster. The expert bot reads the grid through gen_obs_grid, which is untouched.
        self._inner.gen_obs = _no_observation
        self._raycaster: Raycaster | None = None
        self._scene: Scene | None = None
        self._frame: np.ndarray | None = None
        self._level_seed = -1
        self._window = None

    # ---------------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        if "level_seed" in options:
            level_seed = int(options.pop("level_seed"))
            if level_seed < 0:
                raise ValueError(f"level_seed must be >= 0, got {level_seed}")
        else:
            seeds = SEED_RANGES[self.worlds]
            level_seed = seeds.start + int(self.np_random.integers(seeds.size))
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; BabyAI3D accepts only 'level_seed'")
        self._level_seed = level_seed
        with contextlib.redirect_stdout(io.StringIO()):  # BabyAI prints every rejected layout sample
            self._inner.reset(seed=level_seed)
        palette = Palette.from_seed(level_seed)
        self._raycaster = Raycaster(self.size[0], self.size[1], palette)
        self._scene = scene_of(self._inner)
        self._frame = self._draw()
        if self.render_mode == "human":
            self.render()
        return self._frame.copy(), self._info(success=False)

    def step(self, action):
        if self._scene is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(
                f"invalid action {action!r}: expected an int in [0, {self.action_space.n}) "
                f"({', '.join(f'{i}={m}' for i, m in enumerate(ACTION_MEANINGS))})"
            )
        action = int(action)
        _, reward, terminated, truncated, _ = self._inner.step(_TO_MINIGRID[action])
        if ACTION_MEANINGS[action] in ("pickup", "drop", "toggle"):
            self._scene = scene_of(self._inner)  # objects and doors may have changed
        else:
            self._scene.agent_pos = (int(self._inner.agent_pos[0]), int(self._inner.agent_pos[1]))
            self._scene.agent_dir = int(self._inner.agent_dir)
        self._frame = self._draw()
        if self.render_mode == "human":
            self.render()
        success = bool(terminated and reward > 0)
        return self._frame.copy(), float(reward), bool(terminated), bool(truncated), self._info(success)

    def render(self):
        if self._frame is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "human":
            from genie_env.viewer import Viewer

            if self._window is None:
                self._window = Viewer(caption=f"BabyAI3D-{self.level}")
            self._window.show(self._frame, text=self.mission)
            return None
        return self._frame.copy()

    def close(self):
        if self._window is not None:
            self._window.close()
            self._window = None

    # ---------------------------------------------------------------------------------------------------------
    @property
    def mission(self) -> str:
        return str(self._inner.mission) if self._scene is not None else ""

    @property
    def level_seed(self) -> int:
        return self._level_seed

    @property
    def minigrid(self):
        """The MiniGrid env underneath: its grid, agent_pos, agent_dir, front_pos and carrying are this world's
        state (read them; stepping or changing it directly desynchronises the frames)."""
        return self._inner

    def get_action_meanings(self) -> list[str]:
        return list(ACTION_MEANINGS)

    def get_keys_to_action(self) -> dict[tuple, int]:
        """Keyboard map for ``gymnasium.utils.play``: WASD / arrows move and turn, E toggle, F pick up, Q drop."""
        import pygame  # only people playing need it

        keys = {
            ("w",): 3, ("a",): 1, ("d",): 2, ("e",): 6, ("f",): 4, ("q",): 5,
            (pygame.K_UP,): 3, (pygame.K_LEFT,): 1, (pygame.K_RIGHT,): 2,
        }
        return {tuple(ord(k) if isinstance(k, str) else k for k in combo): a for combo, a in keys.items()}

    def make_bot(self) -> "ExpertBot":
        """The BabyAI bot for the current episode (call after reset): the expert, an upper bound."""
        if self._scene is None:
            raise RuntimeError("call reset() before make_bot()")
        return ExpertBot(self._inner, seed=self._level_seed)

    # ---------------------------------------------------------------------------------------------------------
    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "mission": self.mission,
            "success": success,
            "level_seed": self._level_seed,
            "split": split_of(self._level_seed),
        }

    def _draw(self) -> np.ndarray:
        if self.view == "top_down":
            return _top_down(self._inner, self.size, self.top_down_cells)
        return self._raycaster.render(self._scene)


class ExpertBot:
    """MiniGrid's BabyAI bot speaking this env's action vocabulary.

    ``act(last_action)`` returns the bot's next action; pass the action that was really taken last step (it
    may differ from the bot's suggestion, e.g. under epsilon noise) so the bot replans from what happened.
    The bot cannot recover when a box it knew of was opened (it vanishes, MiniGrid's ``DisappearedBoxError``)
    or when noise broke an assumption of its plan (its internal asserts): it then restarts its plan from the current state once, and if that fails too it gives up and plays
    random actions (``gave_up`` becomes True) drawn from a generator seeded by the level seed.
    """

    def __init__(self, inner_env, seed: int = 0):
        from minigrid.utils.baby_ai_bot import BabyAIBot

        self._inner = inner_env
        self._bot = BabyAIBot(inner_env)
        self._first = True
        self._rng = np.random.default_rng(seed)
        self.gave_up = False

    def act(self, last_action: int | None = None) -> int:
        from minigrid.utils.baby_ai_bot import BabyAIBot, DisappearedBoxError

        if self.gave_up:
            return int(self._rng.integers(len(ACTION_MEANINGS)))
        taken = None if (self._first or last_action is None) else _TO_MINIGRID[int(last_action)]
        self._first = False
        try:
            suggestion = self._bot.replan(taken)
        except (DisappearedBoxError, AssertionError):  # the bot's own consistency checks: its plan is stale
            try:
                self._bot = BabyAIBot(self._inner)
                suggestion = self._bot.replan(None)
            except (DisappearedBoxError, AssertionError):
                self.gave_up = True
                return int(self._rng.integers(len(ACTION_MEANINGS)))
        return _FROM_MINIGRID[int(suggestion)]


def scene_of(env) -> Scene:
    """The raycaster's view of a MiniGrid env: solid cells, door colours, sprites, carried object."""
    grid = env.grid
    cells = np.zeros((grid.width, grid.height), dtype=np.int8)
    door_colors = np.zeros((grid.width, grid.height, 3), dtype=np.float32)
    sprites = []
    for idx, obj in enumerate(grid.grid):
        if obj is None:
            continue
        x, y = idx % grid.width, idx // grid.width
        if obj.type == "wall":
            cells[x, y] = WALL
        elif obj.type == "door":
            cells[x, y] = DOOR_OPEN if obj.is_open else (DOOR_LOCKED if obj.is_locked else DOOR_CLOSED)
            door_colors[x, y] = OBJECT_COLORS[obj.color]
        elif obj.type in ("key", "ball", "box", "goal", "lava"):
            cells[x, y] = EMPTY
            sprites.append(Sprite(x, y, obj.type, "orange" if obj.type == "lava" else obj.color))
    carrying = env.carrying
    held = Sprite(-1, -1, carrying.type, carrying.color) if carrying is not None else None
    return Scene(cells, door_colors, sprites, (int(env.agent_pos[0]), int(env.agent_pos[1])), int(env.agent_dir), held)


def _no_observation():
    return {}


def _top_down(inner, size: tuple[int, int], cells: int | None = None) -> np.ndarray:
    """MiniGrid's overhead rendering of the whole grid (or of the window of `cells` around the agent, see
    :func:`top_down_window`), resized to ``size`` (height, width)."""
    grid, agent_pos = top_down_window(inner, cells)
    return render_top_down(grid, agent_pos, inner.agent_dir, size)


def top_down_window(inner, cells: int | None) -> tuple[Any, tuple[int, int]]:
    """(grid, agent position in it) that the top-down view shows: MiniGrid env `inner`'s whole grid for `cells`
    None, else the window of min(cells, grid size) cells per side centred on the agent, shifted to stay inside the
    grid (a copy of those cells; objects are shared with the env)."""
    ax, ay = int(inner.agent_pos[0]), int(inner.agent_pos[1])
    grid = inner.grid
    if cells is None or (cells >= grid.width and cells >= grid.height):
        return grid, (ax, ay)
    w, h = min(cells, grid.width), min(cells, grid.height)
    x0 = min(max(ax - w // 2, 0), grid.width - w)
    y0 = min(max(ay - h // 2, 0), grid.height - h)
    return grid.slice(x0, y0, w, h), (ax - x0, ay - y0)


def render_top_down(grid, agent_pos, agent_dir: int, size: tuple[int, int]) -> np.ndarray:
    """The top-down view of a MiniGrid ``grid`` with the agent at ``agent_pos`` (x, y) facing ``agent_dir``
    (``agent_pos`` outside the grid, e.g. (-1, -1): no agent drawn), resized to ``size`` (height, width): uint8
    (H, W, 3). Grid cell (x, y) covers columns [x W / grid.width, (x + 1) W / grid.width) of the frame, and rows
    likewise."""
    from PIL import Image

    tile = max(4, int(np.ceil(max(size) / min(grid.width, grid.height))))
    frame = grid.render(tile, agent_pos, agent_dir, highlight_mask=None)
    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR))
