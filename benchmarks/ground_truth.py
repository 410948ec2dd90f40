"""The ground truth the suites measure against: unseen 3D BabyAI worlds replayed under given actions, and the random
play that drives them.

A world is (level, level seed from ``TEST_SEEDS``); :class:`GroundTruth` keeps one raw ``BabyAI3DEnv`` per (level,
view) and replays any world under any actions, deterministically. The raw env keeps stepping after its episode
ends (the suites that need episodes to end ask for ``until_done``).
"""

from __future__ import annotations

import numpy as np

from genie_env.babyai3d import TEST_SEEDS, BabyAI3DEnv

#: Action probabilities of the evaluation policy: noop, turn_left, turn_right, forward, pickup, drop, toggle.
PLAY_PROBS = np.array([0.05, 0.2, 0.2, 0.38, 0.06, 0.04, 0.07])
#: The levels the suites draw unseen worlds from, in turn.
EVAL_LEVELS = ("GoToLocal", "OpenDoor", "OpenTwoDoors", "PickupLoc", "UnlockLocal", "PutNextLocal",
               "KeyCorridorS3R1", "GoToObj")


def random_actions(rng: np.random.Generator, n: int) -> np.ndarray:
    """n actions of the evaluation policy (int64): drawn from PLAY_PROBS, each held for 1-3 steps."""
    out = []
    while len(out) < n:
        out += [int(rng.choice(len(PLAY_PROBS), p=PLAY_PROBS))] * int(rng.integers(1, 4))
    return np.array(out[:n], dtype=np.int64)


def draw_worlds(n: int, seed: int, levels=EVAL_LEVELS) -> list[tuple[str, int]]:
    """n unseen worlds (level, level seed), levels in turn, seeds drawn from TEST_SEEDS."""
    rng = np.random.default_rng(seed)
    return [(levels[i % len(levels)], TEST_SEEDS.start + int(rng.integers(TEST_SEEDS.size))) for i in range(n)]


class GroundTruth:
    """Unseen 3D BabyAI worlds of one frame size, replayable per view."""

    def __init__(self, size: int = 64):
        self.size = size
        self._envs: dict[tuple[str, str], BabyAI3DEnv] = {}

    def env(self, level: str, level_seed: int | None, view: str, actions=(), *, seed: int | None = None,
            until_done: bool = False) -> tuple[BabyAI3DEnv, list[np.ndarray]]:
        """The env of `level` reset to `level_seed` (or, if None, by `seed`: a test-seed world drawn from it) and
        driven by `actions`, with its frames (len(actions) + 1, fewer if `until_done` and the episode ended).
        The env is shared: copy it (copy.deepcopy) before stepping it elsewhere."""
        key = (level, view)
        if key not in self._envs:
            self._envs[key] = BabyAI3DEnv(level=level, size=(self.size, self.size), view=view, worlds="test")
        env = self._envs[key]
        if level_seed is None:
            frame, _ = env.reset(seed=seed)
        else:
            frame, _ = env.reset(options={"level_seed": int(level_seed)})
        frames = [frame]
        for a in actions:
            frame, _, terminated, truncated, _ = env.step(int(a))
            frames.append(frame)
            if until_done and (terminated or truncated):
                break
        return env, frames

    def play(self, level: str, level_seed: int | None, view: str, actions=(), *, seed: int | None = None,
             until_done: bool = False) -> np.ndarray:
        """Frames uint8 (len(actions) + 1, S, S, 3) of the world under `actions` (see :meth:`env`)."""
        return np.stack(self.env(level, level_seed, view, actions, seed=seed, until_done=until_done)[1])

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
