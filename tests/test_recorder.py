"""The recorder: policies, metadata, determinism and resume, folder checks, foreign envs, the 3D BabyAI env."""

import os

import gymnasium as gym
import numpy as np
import pytest

from genie_env import recorder
from genie_env.recorder import BotPolicy, LookaroundPolicy, RandomPolicy, RecorderError, record
from world_model.shards import list_shards, read_shard

FAKE_ID = "genie_test/FakeRGB-v0"
GRID = 5


class FakeBot:
    """Turns to face the goal column/row, then walks; logs what it is told."""

    def __init__(self, env):
        self.env, self.told = env, []

    def act(self, last_action):
        self.told.append(last_action)
        (x, y), (gx, gy) = self.env.pos, self.env.goal
        want = 0 if gx > x else 2 if gx < x else 1 if gy > y else 3  # direction index: E, S, W, N
        return 3 if self.env.dir == want else 2


class FakeRGBEnv(gym.Env):
    """A 5x5 grid seen as an 8x8 RGB image. Pixel (0, 0) = (step count, last action + 1, view flag), so a
    test can read back which action led to each frame. Reaching the goal terminates with reward 1."""

    metadata = {"render_modes": []}
    MEANINGS = ("noop", "turn_left", "turn_right", "forward")

    def __init__(self, view="first_person"):
        self.view = view
        self.observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(4)

    def _obs(self, last_action):
        img = np.zeros((8, 8, 3), np.uint8)
        img[0, 0] = (self.t, last_action + 1, 255 if self.view == "top_down" else 0)
        img[1 + self.pos[1], 1 + self.pos[0]] = (200, 40 * self.dir, 0)
        img[1 + self.goal[1], 1 + self.goal[0], 2] = 250
        return img  # the same buffer every step: the recorder must copy

    def _info(self, success=False):
        return {"mission": f"go to {self.goal}", "level_seed": self.level_seed,
                "split": "train" if self.level_seed % 2 == 0 else "test", "success": success}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.level_seed = int(self.np_random.integers(1000))
        self.t, self.dir = 0, int(self.np_random.integers(4))
        self.pos = tuple(int(v) for v in self.np_random.integers(GRID, size=2))
        self.goal = tuple(int(v) for v in self.np_random.integers(GRID, size=2))
        if self.goal == self.pos:
            self.goal = ((self.pos[0] + 1) % GRID, self.pos[1])
        return self._obs(-1), self._info()

    def step(self, action):
        self.t += 1
        if action == 1:
            self.dir = (self.dir - 1) % 4
        elif action == 2:
            self.dir = (self.dir + 1) % 4
        elif action == 3:
            dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][self.dir]
            self.pos = (min(max(self.pos[0] + dx, 0), GRID - 1), min(max(self.pos[1] + dy, 0), GRID - 1))
        done = self.pos == self.goal
        return self._obs(int(action)), float(done), done, False, self._info(done)

    def get_action_meanings(self):
        return list(self.MEANINGS)

    def make_bot(self):
        return FakeBot(self)


@pytest.fixture(scope="module", autouse=True)
def fake_env_registered():
    gym.register(FAKE_ID, entry_point=FakeRGBEnv, max_episode_steps=25)
    yield
    del gym.registry[FAKE_ID]


def shards_of(folder):
    return [read_shard(p) for p in list_shards(folder)]


def test_records_whole_aligned_episodes(tmp_path):
    summary = record(FAKE_ID, tmp_path, frames=300, episodes_per_shard=8, progress=False)
    shards = shards_of(tmp_path)
    assert summary.num_frames == sum(s.index.num_frames for s in shards) >= 300
    assert summary.shards_written == len(shards) == summary.num_shards
    assert shards[0].meta.action_meanings == FakeRGBEnv.MEANINGS
    assert shards[0].meta.frame_shape == (8, 8, 3)
    policies = set()
    for shard in shards:
        for ep in shard.episodes():
            policies.add(ep.policy)
            t, led_by = ep.frames[:, 0, 0, 0], ep.frames[:, 0, 0, 1].astype(int) - 1
            np.testing.assert_array_equal(t, np.arange(ep.num_frames))  # every frame copied, in order
            np.testing.assert_array_equal(led_by[1:], ep.actions[:-1])  # actions[j] leads frame j -> j+1
            assert ep.actions[-1] == -1
            assert ep.terminated != ep.truncated and ep.truncated == (ep.num_steps == 25)
            assert ep.success[-1] == ep.terminated and not ep.success[:-1].any()
            assert ep.rewards[-1] == float(ep.terminated)
            assert ep.mission.startswith("go to") and ep.split == ("train" if ep.level_seed % 2 == 0 else "test")
            assert ep.view == "first_person"
    assert policies == {"bot", "random", "lookaround"}


def test_bot_is_told_the_action_really_taken():
    class Stub:
        told = []

        def act(self, last_action):
            self.told.append(last_action)
            return 3

    bot = Stub()
    policy = BotPolicy(bot, num_actions=4, rng=np.random.default_rng(0), epsilon=0.5)
    taken = [policy.act() for _ in range(50)]
    assert bot.told[0] is None and bot.told[1:] == taken[:-1]
    assert 0.2 < np.mean(np.array(taken) != 3) < 0.5  # about epsilon * 3/4 noisy


def test_lookaround_and_random_policies():
    rng = np.random.default_rng(0)
    look = LookaroundPolicy(("noop", "turn_left", "turn_right", "forward", "toggle"), rng)
    actions = np.array([look.act() for _ in range(400)])
    assert np.isin(actions, [1, 2, 3]).mean() > 0.9
    runs = "".join(map(str, actions))
    assert "1111" in runs and "2222" in runs  # full circles both ways
    assert "12" in runs and "21" in runs  # turning back
    random = RandomPolicy(num_actions=7, rng=np.random.default_rng(0))
    actions = np.array([random.act() for _ in range(400)])
    assert set(actions.tolist()) == set(range(7))
    assert (actions[1:] == actions[:-1]).mean() > 0.4  # actions are held for 1-4 steps


def test_resume_after_a_kill_gives_the_same_bytes(tmp_path, monkeypatch):
    args = dict(frames=200, episodes_per_shard=3, seed=7, progress=False)
    whole = tmp_path / "whole"
    record(FAKE_ID, whole, **args)

    killed = tmp_path / "killed"
    real_write_shard = recorder.write_shard

    def dies_on_third_shard(path, episodes, meta):
        if path.name == "shard_000002.npz":
            (path.parent / (path.name + ".x1y2.tmp")).write_bytes(b"half a shard")  # what a kill leaves
            raise KeyboardInterrupt
        return real_write_shard(path, episodes, meta)

    monkeypatch.setattr(recorder, "write_shard", dies_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        record(FAKE_ID, killed, **args)
    monkeypatch.undo()
    assert sorted(p.name for p in killed.iterdir()) == [
        "dataset.json", "shard_000000.npz", "shard_000001.npz", "shard_000002.npz.x1y2.tmp"]

    summary = record(FAKE_ID, killed, **args)
    assert summary.shards_reused == 2 and summary.shards_written == summary.num_shards - 2
    names = sorted(p.name for p in whole.iterdir())
    assert names == sorted(p.name for p in killed.iterdir())  # the .tmp is gone
    for name in names:
        assert (whole / name).read_bytes() == (killed / name).read_bytes(), name

    # asking for more frames extends the same recording: the full shards are kept as they are, the last
    # (partial) one grows and keeps its first episodes
    before = shards_of(whole)
    full = {p.name: p.read_bytes() for p, s in zip(list_shards(whole), before) if s.num_episodes == 3}
    assert len(full) >= len(before) - 1
    more = record(FAKE_ID, whole, **{**args, "frames": 400})
    assert more.num_frames >= 400 and more.shards_reused == len(full)
    assert all((whole / n).read_bytes() == b for n, b in full.items())
    after = shards_of(whole)
    for old, new in zip(before, after):
        for a, b in zip(old.episodes(), new.episodes()):
            np.testing.assert_array_equal(a.frames, b.frames)
            np.testing.assert_array_equal(a.actions, b.actions)


class CountingBar(recorder.tqdm):
    """tqdm that remembers its final count and total."""

    last = None

    def close(self):
        CountingBar.last = (self.n, self.total)
        super().close()


@pytest.mark.parametrize("frames", [1, 37, 500])
def test_frames_is_what_gets_written(tmp_path, monkeypatch, capsys, frames):
    from genie_env.data_cli import main

    monkeypatch.setattr(recorder, "tqdm", CountingBar)
    assert main(["record", "--env", FAKE_ID, "--frames", str(frames), "--out", str(tmp_path)]) == 0
    shards = shards_of(tmp_path)
    episodes = [ep for s in shards for ep in s.episodes()]
    written = sum(ep.num_frames for ep in episodes)
    assert frames <= written < frames + episodes[-1].num_frames  # stops at the episode that reaches `frames`
    assert written - episodes[-1].num_frames < frames
    assert all(s.num_episodes == 64 for s in shards[:-1])
    assert CountingBar.last == (written, written)  # the bar ends full, its total what was written
    assert f"{written} frames" in capsys.readouterr().out


def _snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.parametrize("change, fragment", [
    ({"env_id": "MiniGrid-Empty-5x5-v0"}, "env_id='genie_test/FakeRGB-v0'"),
    ({"seed": 1}, "seed=0"),
    ({"episodes_per_shard": 5}, "episodes_per_shard=4"),
])
def test_existing_folder_with_other_arguments_is_refused(tmp_path, change, fragment):
    args = dict(env_id=FAKE_ID, out_dir=tmp_path, frames=50, episodes_per_shard=4, progress=False)
    record(**args)
    (tmp_path / "shard_000001.npz.abc.tmp").write_bytes(b"leftover")  # must survive a refused run too
    before = _snapshot(tmp_path)
    with pytest.raises(RecorderError, match="nothing was changed") as e:
        record(**{**args, **change})
    assert fragment in str(e.value)
    assert _snapshot(tmp_path) == before


def test_unusable_output_folder_fails_before_any_work(tmp_path, monkeypatch):
    def no_env_please(*args, **kwargs):
        raise AssertionError("the env was made before the output folder was checked")

    monkeypatch.setattr(recorder, "FrameEnv", no_env_please)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RecorderError, match="not a folder"):
        record(FAKE_ID, a_file, frames=10, progress=False)
    with pytest.raises(RecorderError, match="not writable"):
        record(FAKE_ID, a_file / "sub", frames=10, progress=False)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(RecorderError, match="not writable"):
            record(FAKE_ID, locked, frames=10, progress=False)
    with pytest.raises(RecorderError, match="unknown env id"):
        record("NoSuchEnv-v3", tmp_path / "new", frames=10, progress=False)
    assert not (tmp_path / "new").exists()


def test_foreign_minigrid_env_through_render(tmp_path):
    """MiniGrid's observation is a dict: frames come from render() with render_mode="rgb_array"."""
    summary = record("MiniGrid-Empty-5x5-v0", tmp_path, frames=40, episodes_per_shard=2, policy="mix",
                     env_kwargs={"tile_size": 4}, max_episode_steps=15, progress=False)
    shard = read_shard(tmp_path / "shard_000000.npz")
    assert shard.meta.frame_shape == (20, 20, 3)
    assert shard.meta.action_meanings[:3] == ("left", "right", "forward")  # MiniGrid's Actions enum
    ep = shard.episode(0)
    assert ep.policy == "random" and ep.view == "rgb" and ep.split == "unknown" and ep.level_seed == -1
    assert ep.mission == "get to the green goal square"
    assert ep.num_steps <= 15 and summary.num_frames >= 40
    assert len(np.unique(ep.frames.reshape(ep.num_frames, -1), axis=0)) > 1  # frames really change
    with pytest.raises(RecorderError, match="'bot' is not available"):
        record("MiniGrid-Empty-5x5-v0", tmp_path / "bot", frames=10, policy="bot", progress=False)


def test_top_down_share(tmp_path):
    record(FAKE_ID, tmp_path, frames=200, episodes_per_shard=10, top_down_share=0.5, progress=False)
    views = {}
    for shard in shards_of(tmp_path):
        for ep in shard.episodes():
            assert (ep.frames[:, 0, 0, 2] == (255 if ep.view == "top_down" else 0)).all()
            views[ep.view] = views.get(ep.view, 0) + 1
    assert set(views) == {"first_person", "top_down"}
    with pytest.raises(RecorderError, match="view"):
        record("MiniGrid-Empty-5x5-v0", tmp_path / "mg", frames=10, top_down_share=0.5, progress=False)


def test_babyai3d_mix(tmp_path):
    """The project's own world: a few hundred frames of every policy, both views."""
    pytest.importorskip("genie_env.babyai3d")
    env_id = "genie_env/BabyAI3D-GoToLocal-v0"
    summary = record(env_id, tmp_path, frames=300, episodes_per_shard=6, top_down_share=0.25,
                     progress=False)
    episodes = [ep for shard in shards_of(tmp_path) for ep in shard.episodes()]
    assert summary.num_frames >= 300
    assert episodes[0].frames.shape[1:] == (64, 64, 3)
    assert {ep.policy for ep in episodes} == {"bot", "random", "lookaround"}
    assert {ep.split for ep in episodes} == {"train"} and all(ep.level_seed >= 0 for ep in episodes)
    assert all(ep.mission for ep in episodes)
    bots = [ep for ep in episodes if ep.policy == "bot"]
    assert np.mean([ep.success.any() for ep in bots]) > 0.5  # the expert mostly succeeds despite the noise
