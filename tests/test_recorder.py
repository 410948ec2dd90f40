"""The recorder: policies, metadata, determinism and resume, folder checks, foreign envs, the 3D BabyAI env,
counterfactual branches."""

import os

import gymnasium as gym
import numpy as np
import pytest

from genie_env import recorder
from genie_env.recorder import (
    BotPolicy,
    ExplorePolicy,
    LookaroundPolicy,
    LookbackPolicy,
    MANIFEST_NAME,
    Probe,
    RandomPolicy,
    RecorderError,
    RecordingManifest,
    record,
)
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


def test_top_down_cells(tmp_path):
    """The top-down episodes' window reaches the env, is kept in the manifest, and a resume must repeat it."""
    pytest.importorskip("genie_env.babyai3d")
    env_id = "genie_env/BabyAI3D-OpenDoor-v0"
    record(env_id, tmp_path, frames=40, episodes_per_shard=4, top_down_share=1.0, top_down_cells=9,
           max_episode_steps=10, progress=False)
    assert RecordingManifest.from_file(tmp_path / MANIFEST_NAME).top_down_cells == 9
    with pytest.raises(RecorderError, match="top_down_cells=9"):
        record(env_id, tmp_path, frames=60, episodes_per_shard=4, top_down_share=1.0, max_episode_steps=10,
               progress=False)
    with pytest.raises(RecorderError, match="give a top_down_share > 0"):
        record(env_id, tmp_path / "fp", frames=10, top_down_cells=9, progress=False)


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


# ----------------------------------------------------------------------------------------------
# counterfactual branches and the policies that change things


def _episodes(folder):
    return [ep for shard in shards_of(folder) for ep in shard.episodes()]


def test_branches_of_the_fake_env(tmp_path):
    summary = record(FAKE_ID, tmp_path, frames=300, episodes_per_shard=8, branch_every=2, progress=False)
    episodes = _episodes(tmp_path)
    branched = [ep for ep in episodes if ep.branches is not None]
    assert len(branched) > len(episodes) // 2
    assert summary.num_branch_frames == sum(len(ep.branches) for ep in branched)
    for ep in branched:
        b = ep.branches
        sources = b.source_frames
        assert len(b) == 4 * len(sources) and (np.diff(b.sources) >= 0).all()
        np.testing.assert_array_equal(b.actions, np.tile(np.arange(4), len(sources)))
        assert sources.max() < ep.num_steps  # never from the last frame: the episode is over there
        # the pixel (0, 0) of a branch frame: (step count, action + 1): one step on from its source, under its action
        np.testing.assert_array_equal(b.frames[:, 0, 0, 0], b.sources + 1)
        np.testing.assert_array_equal(b.frames[:, 0, 0, 1], b.actions + 1)
        taken = b.actions == ep.actions[b.sources]
        np.testing.assert_array_equal(b.frames[taken], ep.frames[b.sources[taken] + 1])  # the real next frame


def test_branching_does_not_change_the_episode(tmp_path):
    args = dict(frames=200, episodes_per_shard=5, seed=3, top_down_share=0.3, progress=False)
    record(FAKE_ID, tmp_path / "plain", **args)
    record(FAKE_ID, tmp_path / "branched", branch_every=3, **args)
    plain, branched = _episodes(tmp_path / "plain"), _episodes(tmp_path / "branched")
    assert len(plain) == len(branched) and any(ep.branches is not None for ep in branched)
    for a, b in zip(plain, branched):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.actions, b.actions)
        assert (a.policy, a.level_seed, a.view) == (b.policy, b.level_seed, b.view)


def test_babyai3d_branches(tmp_path):
    """The project's world, every new policy and branching: branches of the action taken are the real next
    frames, the episodes are those recorded without branching, pickup / toggle branches change something."""
    pytest.importorskip("genie_env.babyai3d")
    env_id = "genie_env/BabyAI3D-OpenDoor-v0"
    args = dict(frames=240, episodes_per_shard=4, mix={"bot": 1, "explore": 1, "lookback": 1}, top_down_share=0.5,
                seed=2, env_kwargs={"size": [24, 24]}, max_episode_steps=40, progress=False)
    record(env_id, tmp_path / "plain", **args)
    summary = record(env_id, tmp_path / "branched", branch_every=4, **args)
    plain, branched = _episodes(tmp_path / "plain"), _episodes(tmp_path / "branched")
    assert summary.num_branch_frames > 0 and {ep.policy for ep in branched} >= {"explore", "lookback"}
    assert {ep.view for ep in branched if ep.branches is not None} == {"first_person", "top_down"}
    for a, b in zip(plain, branched, strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.actions, b.actions)
        if b.branches is None:
            continue
        br = b.branches
        taken = br.actions == b.actions[br.sources]
        assert taken.sum() == len(br.source_frames)
        np.testing.assert_array_equal(br.frames[taken], b.frames[br.sources[taken] + 1])
        noop = br.actions == 0
        np.testing.assert_array_equal(br.frames[noop], b.frames[br.sources[noop]])  # noop changes nothing
        turns = np.isin(br.actions, (1, 2))
        assert (br.frames[turns] != b.frames[br.sources[turns]]).any(axis=(1, 2, 3)).all()  # turning always shows


class Uncopyable(FakeRGBEnv):
    """Steps depend on a counter shared by all copies: a copy does not step like the original."""

    shared = [0]

    def step(self, action):
        self.shared[0] += 1
        obs, *rest = super().step(action)
        obs[7, 7] = self.shared[0] % 256
        return (obs, *rest)


def test_an_env_that_copies_badly_is_refused(tmp_path):
    gym.register("genie_test/Uncopyable-v0", entry_point=Uncopyable, max_episode_steps=25)
    try:
        record("genie_test/Uncopyable-v0", tmp_path / "plain", frames=30, progress=False)  # fine without branches
        with pytest.raises(RecorderError, match="cannot be branched"):
            record("genie_test/Uncopyable-v0", tmp_path / "b", frames=30, branch_every=1, progress=False)
    finally:
        del gym.registry["genie_test/Uncopyable-v0"]


class Unpicklable(FakeRGBEnv):
    """Holds a lambda: it cannot be pickled, only deep-copied."""

    def reset(self, *, seed=None, options=None):
        self.hook = lambda: None
        return super().reset(seed=seed, options=options)


def test_an_env_that_cannot_be_pickled_is_deep_copied(tmp_path):
    gym.register("genie_test/Unpicklable-v0", entry_point=Unpicklable, max_episode_steps=25)
    try:
        summary = record("genie_test/Unpicklable-v0", tmp_path, frames=40, branch_every=2, progress=False)
    finally:
        del gym.registry["genie_test/Unpicklable-v0"]
    assert summary.num_branch_frames > 0


@pytest.mark.parametrize("frames", [1, 90])
def test_frames_counts_real_frames_with_branches(tmp_path, frames):
    summary = record(FAKE_ID, tmp_path, frames=frames, branch_every=1, progress=False)
    episodes = _episodes(tmp_path)
    written = sum(ep.num_frames for ep in episodes)
    assert summary.num_frames == written and frames <= written < frames + episodes[-1].num_frames
    assert summary.num_branch_frames == 4 * sum(ep.num_steps for ep in episodes)  # every state branched


def test_resume_with_branches_and_refusals(tmp_path):
    args = dict(frames=120, episodes_per_shard=3, seed=1, policy="mix2", branch_every=2, progress=False)
    record(FAKE_ID, tmp_path, **args)
    before = {p.name: p.read_bytes() for p in list_shards(tmp_path)}
    again = record(FAKE_ID, tmp_path, **args)
    assert again.shards_written == 0 and again.num_branch_frames > 0
    assert {p.name: p.read_bytes() for p in list_shards(tmp_path)} == before
    for change, fragment in [({"branch_every": 3}, "branch_every=2"), ({"policy": "mix"}, "policy='mix2'"),
                             ({"action_weights": {"forward": 1.0}}, "action_weights=None")]:
        with pytest.raises(RecorderError, match="nothing was changed") as e:
            record(FAKE_ID, tmp_path, **{**args, **change})
        assert fragment in str(e.value)


def test_manifest_of_an_older_recorder_still_resumes(tmp_path):
    import json

    args = dict(frames=60, episodes_per_shard=3, progress=False)
    record(FAKE_ID, tmp_path, **args)
    manifest = tmp_path / "dataset.json"
    d = json.loads(manifest.read_text())
    for key in ("mix", "action_weights", "branch_every"):  # what the recorder wrote before these options
        del d[key]
    manifest.write_text(json.dumps(d))
    assert record(FAKE_ID, tmp_path, **{**args, "frames": 120}).shards_reused >= 1


def test_mix_weights_and_action_weights(tmp_path):
    record(FAKE_ID, tmp_path / "mix", frames=150, mix={"explore": 1, "lookback": 1, "bot": 0}, progress=False)
    assert {ep.policy for ep in _episodes(tmp_path / "mix")} == {"explore", "lookback"}
    record(FAKE_ID, tmp_path / "w", frames=150, policy="explore", action_weights={"turn_left": 1},
           progress=False)
    actions = np.concatenate([ep.actions[:-1] for ep in _episodes(tmp_path / "w")])
    assert (actions == 1).mean() > 0.8  # the other actions only get OTHER_ACTION_WEIGHT (moves held 1-3 steps)
    for kw, fragment in [({"mix": {"bot": 1}, "policy": "mix2"}, "go with policy 'mix'"),
                         ({"mix": {"nobody": 1}}, "unknown names"),
                         ({"mix": {"bot": -1}}, ">= 0"),
                         ({"policy": "explore", "action_weights": {"jump": 1}}, "does not have"),
                         ({"branch_every": -1}, "branch_every")]:
        with pytest.raises(RecorderError, match=fragment):
            record(FAKE_ID, tmp_path / "bad", frames=10, progress=False, **kw)


class FakeProbe(Probe):
    """A probe whose answers a test sets."""

    def __init__(self, front="empty", carrying=None):
        self._front, self._carrying = front, carrying

    def front(self):
        return self._front

    def carrying(self):
        return self._carrying


MEANINGS = ("noop", "turn_left", "turn_right", "forward", "pickup", "drop", "toggle")


def test_explore_moves_and_interacts_where_it_does_something():
    rng = np.random.default_rng(0)
    free = ExplorePolicy(MEANINGS, rng, probe=FakeProbe("empty"))
    actions = np.array([free.act() for _ in range(2000)])
    share = np.bincount(actions, minlength=7) / len(actions)
    assert share[3] > 0.5 and share[1] + share[2] > 0.2 and share[0] < 0.05  # mostly moving, noop rare
    wall = ExplorePolicy(MEANINGS, rng, probe=FakeProbe("wall"))
    actions = np.array([wall.act() for _ in range(1000)])
    assert (actions == 3).mean() < 0.1  # does not walk into walls much
    for front, carrying, expected in [("door_closed", None, 6), ("door_open", None, 6), ("door_locked", "key", 6),
                                      ("key", None, 4), ("ball", None, 4)]:
        policy = ExplorePolicy(MEANINGS, np.random.default_rng(1), probe=FakeProbe(front, carrying))
        actions = np.array([policy.act() for _ in range(400)])
        assert 0.3 < (actions == expected).mean() < 0.55, (front, carrying)  # p=0.8, then a cooldown step
    policy = ExplorePolicy(MEANINGS, np.random.default_rng(2), probe=FakeProbe("door_locked", None))
    assert (np.array([policy.act() for _ in range(400)]) == 6).mean() < 0.1  # no key: toggling does nothing
    blind = ExplorePolicy(("noop", "turn_left", "turn_right", "forward"), np.random.default_rng(3))
    assert set(blind.act() for _ in range(200)) == {0, 1, 2, 3}


def test_lookaround_draws_as_before():
    """The default lookaround policy plays exactly what it did before the walk-and-back segment existed."""
    def old_lookaround(rng, n):
        out = []
        while len(out) < n:
            kind = int(rng.choice(4, p=(0.3, 0.3, 0.3, 0.1)))
            turn, back = (1, 2) if rng.random() < 0.5 else (2, 1)
            if kind == 0:
                out += [turn] * 4
            elif kind == 1:
                k = int(rng.integers(1, 4))
                out += [turn] * k + [back] * k
            elif kind == 2:
                out += [3] * int(rng.integers(1, 4))
            else:
                out += [int(rng.integers(5))]
        return out[:n]

    look = LookaroundPolicy(("noop", "turn_left", "turn_right", "forward", "toggle"), np.random.default_rng(4))
    assert [look.act() for _ in range(300)] == old_lookaround(np.random.default_rng(4), 300)


def _replay(actions):
    """(x, y, heading) after each action on an open plane."""
    x = y = d = 0
    states = []
    for a in actions:
        if a in (1, 2):
            d = (d + (1 if a == 2 else -1)) % 4
        elif a == 3:
            dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][d]
            x, y = x + dx, y + dy
        states.append((x, y, d))
    return states


def test_lookback_comes_back():
    walks = (0, 0, 0, 0, 1)  # walks out and back only
    policy = LookaroundPolicy(MEANINGS, np.random.default_rng(0), segment_weights=walks, probe=FakeProbe("empty"))
    states = _replay([policy.act() for _ in range(600)])
    assert states.count((0, 0, 0)) > 40  # every walk ends where it started, facing the same way
    assert all(abs(x) + abs(y) <= 3 for x, y, _ in states)  # 1-3 cells out
    blocked = LookaroundPolicy(MEANINGS, np.random.default_rng(0), segment_weights=walks, probe=FakeProbe("wall"))
    assert {blocked.act() for _ in range(100)} <= {1, 2}  # nowhere to go: it turns around in place
    default = LookbackPolicy(MEANINGS, np.random.default_rng(0), probe=FakeProbe("empty"))
    runs = "".join(str(default.act()) for _ in range(2000))
    assert "12" in runs and "21" in runs and ("1131" in runs or "2232" in runs)  # away and back, walks
    with pytest.raises(RecorderError, match="summing to 1"):
        LookaroundPolicy(MEANINGS, np.random.default_rng(0), segment_weights=(1, 1, 1, 1, 1))


def test_probe_reads_minigrid():
    env = gym.make("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    probe = Probe(env)
    assert not probe.blind and probe.front() in ("empty", "wall", "goal") and probe.carrying() is None
    assert Probe(gym.make(FAKE_ID)).blind and Probe(gym.make(FAKE_ID)).front() is None


def test_branches_of_a_minigrid_env_through_render(tmp_path):
    """Frames from render(): each copy renders itself (checked against the real next frame while recording)."""
    summary = record("MiniGrid-Empty-5x5-v0", tmp_path, frames=30, policy="random", env_kwargs={"tile_size": 4},
                     max_episode_steps=15, branch_every=2, progress=False)
    assert summary.num_branch_frames > 0
    episode = shards_of(tmp_path)[0].episode(0)
    assert episode.branches.frames.shape[1:] == (20, 20, 3) and set(episode.branches.actions.tolist()) == set(range(7))
