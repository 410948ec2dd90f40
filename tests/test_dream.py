"""genie-data dream: recorded episodes re-played inside a world model (same prompts, actions and labels, the model's
frames), the slot pool that keeps every step useful, resuming, errors; and the judge's episode-level verdicts."""

import json

import numpy as np
import pytest

from genie_env.data_cli import main
from genie_env.dream import DreamError, dream, dream_episodes
from genie_env.judge import JudgeWindows, episode_verdicts, positive_weights
from world_model.dataset import EpisodeDataset
from world_model.shards import Episode

ENV_ID = "genie_env/BabyAI3D-GoToRedBall-v0"


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    pytest.importorskip("genie_env.babyai3d")
    out = tmp_path_factory.mktemp("rec")
    assert main(["record", "--env", ENV_ID, "--frames", "90", "--out", str(out), "--episodes-per-shard", "4",
                 "--top-down-share", "0.3", "--seed", "1", "--quiet"]) == 0
    return out


# ---------------------------------------------------------------------------------------------- the slot pool


class _FakeState:
    """Per world: the prompt's id and the frames generated so far (enough to check the pool's bookkeeping)."""

    def __init__(self, ids, steps):
        self.ids, self.steps = list(ids), list(steps)

    def replace(self, i, other, j=0):
        self.ids[i], self.steps[i] = other.ids[j], other.steps[j]

    def select(self, indices):
        return _FakeState([self.ids[k] for k in indices], [self.steps[k] for k in indices])


class _FakeModel:
    """Frame pixel (0, 0) = (prompt id, frames generated so far in that world, the action just taken)."""

    def __init__(self):
        self.batch_sizes = []

    def reset(self, frames, generator=None, view=None):
        assert len(view) == len(frames)
        return _FakeState(frames[:, 0, 0, 0], [0] * len(frames))

    def step(self, state, actions, generator=None):
        self.batch_sizes.append(len(actions))
        out = np.zeros((len(actions), 4, 4, 3), np.uint8)
        for k, a in enumerate(actions):
            state.steps[k] += 1
            out[k, 0, 0] = (state.ids[k], state.steps[k], a)
        return out, state


def _episode(ident, actions):
    n = len(actions) + 1
    frames = np.zeros((n, 4, 4, 3), np.uint8)
    frames[0, 0, 0, 0] = ident
    success = np.zeros(n, bool)
    success[-1] = ident % 2 == 0
    return Episode(frames=frames, actions=np.array([*actions, -1], np.int16), rewards=np.zeros(n, np.float32),
                   success=success, mission=f"mission {ident}", view="first_person" if ident % 3 else "top_down")


def test_pool_steps_each_episode_under_its_own_actions():
    rng = np.random.default_rng(0)
    episodes = [_episode(i + 1, rng.integers(0, 7, int(rng.integers(1, 9))).tolist()) for i in range(11)]
    episodes.append(_episode(20, []))  # a lone prompt: nothing to generate
    model = _FakeModel()
    out = dream_episodes(model, episodes, seed=0, batch=3)
    assert max(model.batch_sizes) == 3
    assert sum(model.batch_sizes) == sum(e.num_steps for e in episodes)  # no step is wasted on ended episodes
    for e, d in zip(episodes, out):
        assert d.num_frames == e.num_frames and d.mission == e.mission and d.view == e.view
        np.testing.assert_array_equal(d.frames[0], e.frames[0])
        np.testing.assert_array_equal(d.success, e.success)
        np.testing.assert_array_equal(d.actions, e.actions)
        for t in range(1, e.num_frames):  # frame t: this episode's world, its t-th step, its own action t-1
            assert tuple(d.frames[t, 0, 0]) == (e.frames[0, 0, 0, 0], t, e.actions[t - 1])


# ---------------------------------------------------------------------------------------------- dream and the CLI


def test_dream_writes_a_recording_with_the_recorded_labels(recording, tmp_path, tiny_world_model, capsys):
    wm = tiny_world_model()
    source = EpisodeDataset([recording])
    summary = dream(recording, tmp_path / "d", model=wm, seed=2, batch=3, episodes_per_shard=2, progress=False)
    assert summary.num_episodes == source.num_episodes and summary.shards_written >= 2
    dreamed = EpisodeDataset([tmp_path / "d"])
    assert dreamed.num_frames == source.num_frames and dreamed.meta.env_id == f"dream:{ENV_ID}"
    for key in ("actions", "success", "rewards"):
        np.testing.assert_array_equal(getattr(dreamed, key), getattr(source, key))
    for key in ("missions", "views", "policies", "level_seeds"):
        np.testing.assert_array_equal(getattr(dreamed, key), getattr(source, key))
    firsts = source.episode_offsets[:-1]
    np.testing.assert_array_equal(dreamed.frames[firsts], source.frames[firsts])  # the prompts are the recording's
    later = np.setdiff1d(np.arange(source.num_frames), firsts)
    assert not np.array_equal(dreamed.frames[later], source.frames[later])  # the rest is the model's
    assert dreamed.dreamed.all() and not source.dreamed.any()
    both = JudgeWindows(EpisodeDataset([recording, tmp_path / "d"]), frames=4)
    assert both.dreamed.sum() == source.num_frames and (~both.dreamed).sum() == source.num_frames
    manifest = json.loads((tmp_path / "d" / "dream.json").read_text())
    assert manifest["format"] == "genie-env-dream" and manifest["episodes"] == list(range(source.num_episodes))
    # the same request resumes (nothing rewritten); another one into the folder is refused
    again = dream(recording, tmp_path / "d", model=wm, seed=2, batch=3, episodes_per_shard=2, progress=False)
    assert again.shards_written == 0 and again.shards_reused == summary.shards_written
    with pytest.raises(DreamError, match="another dream"):
        dream(recording, tmp_path / "d", model=wm, seed=3, batch=3, episodes_per_shard=2, progress=False)


def test_dream_selects_policies_and_a_seeded_subset(recording, tmp_path, tiny_world_model):
    wm = tiny_world_model()
    source = EpisodeDataset([recording])
    policy = str(source.policies[0])
    dream(recording, tmp_path / "p", model=wm, policies=[policy], max_episodes=2, progress=False)
    dreamed = EpisodeDataset([tmp_path / "p"])
    assert dreamed.num_episodes == min(2, int((source.policies == policy).sum()))
    assert set(dreamed.policies.tolist()) == {policy}
    with pytest.raises(DreamError, match="no episodes of policies"):
        dream(recording, tmp_path / "q", model=wm, policies=["nobody"], progress=False)


def test_cli_errors_are_one_line(recording, tmp_path, capsys):
    assert main(["dream", "--data", str(recording), "--out", str(tmp_path / "x"), "--policies", "nobody",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no episodes of policies ['nobody']" in err and err.count("\n") == 1
    assert main(["dream", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- episode verdicts


class _Episodes:
    def __init__(self, lengths, success):
        self.episode_offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.success = np.asarray(success, bool)


def test_episode_verdicts_follow_the_first_firing():
    # three solved episodes (judge on time, early, never) and two unsolved (judge silent, judge fires)
    lengths = [3, 3, 3, 2, 2]
    truth = [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    said = [0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    windows = JudgeWindows.__new__(JudgeWindows)
    windows.episodes, windows.labels = _Episodes(lengths, truth), np.asarray(truth, bool)
    v = episode_verdicts(windows, np.asarray(said, bool))
    assert (v["episodes"], v["solved"], v["unsolved"]) == (5, 3, 2)
    assert v["fires_when_solved"] == pytest.approx(2 / 3) and v["on_time_when_solved"] == pytest.approx(1 / 3)
    assert v["early_when_solved"] == pytest.approx(1 / 3) and v["fires_when_unsolved"] == pytest.approx(1 / 2)
    assert v["accuracy"] == pytest.approx(3 / 5)


def test_positive_weights_give_dreamed_frames_their_share():
    # 100 recorded frames with 2 successes, 20 dreamed frames with 8: unbalanced, dreamed successes would be 80% of
    # the successes drawn though dreamed frames are 1/6 of all frames
    windows = JudgeWindows.__new__(JudgeWindows)
    windows.labels = np.zeros(120, bool)
    windows.labels[[10, 50, *range(100, 108)]] = True
    windows.positives = np.flatnonzero(windows.labels)
    windows.dreamed = np.arange(120) >= 100
    p = positive_weights(windows)
    assert p.sum() == pytest.approx(1.0)
    assert p[windows.dreamed[windows.positives]].sum() == pytest.approx(20 / 120)
    windows.dreamed = np.zeros(120, bool)  # one kind only: nothing to balance
    assert positive_weights(windows) is None


# ---------------------------------------------------------------------------------------------- judge on dreams


def test_roc_auc():
    from genie_env.judge import roc_auc

    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1], bool)) == 0.0
    assert roc_auc(np.full(4, 0.5), np.array([0, 1, 0, 1], bool)) == 0.5  # ties count half
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)) == 0.75
    assert roc_auc(np.ones(3), np.ones(3, bool)) is None
    assert roc_auc(np.array([0.2, 0.2, 0.2, 0.9, 0.1]), np.array([1, 0, 0, 1, 0], bool)) == pytest.approx(5 / 6)


def test_judge_on_dreams_end_to_end(recording, tmp_path, tiny_world_model, monkeypatch, capsys):
    """The benchmark on one recorded level and its dream, with a tiny judge and a tiny world model."""
    import benchmarks.judge_on_dreams as jod
    from genie_env.judge import JudgeArgs, train_judge
    from world_model.inference import WorldModel

    wm = tiny_world_model()
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "GoToRedBall").symlink_to(recording, target_is_directory=True)
    dream(recording, tmp_path / "dreamed" / "GoToRedBall", model=wm, progress=False)
    train_judge(JudgeArgs(data=(str(recording),), out=str(tmp_path / "judge"), steps=2, batch_size=8,
                          preset="tiny", quiet=True))
    monkeypatch.setattr(WorldModel, "load", classmethod(lambda cls, *a, **k: wm))
    r = jod.main(["--judge", str(tmp_path / "judge"), "--recorded", str(tmp_path / "rec"), "--dreamed",
                  str(tmp_path / "dreamed"), "--thresholds", "0.3", "--context", "3", "--out",
                  str(tmp_path / "out.json")])
    solved = int(EpisodeDataset([recording]).success.sum())
    assert solved > 0
    assert {(x["episodes_from"], x["levels"], x["threshold"]) for x in r["rows"]} == {
        (s, lv, t) for s in ("recorded", "dreamed") for lv in ("all", "GoToRedBall") for t in (0.3, 0.5)}
    assert all(x["positives"] == solved for x in r["rows"])
    steps = {x["threshold"]: x for x in r["one_step"]}
    assert steps[0.5]["episodes"] == solved and 0 <= steps[0.5]["fires_model_success"] <= 1
    assert json.loads((tmp_path / "out.json").read_text())["benchmark"] == "judge-on-dreams"
    text = capsys.readouterr().out
    assert "## Success judge on generated frames" in text and "| dreamed (" in text


def test_one_step_frames_predict_from_the_frames_before(recording, tiny_world_model):
    from benchmarks.judge_on_dreams import one_step_frames

    episodes = EpisodeDataset([recording])
    p = one_step_frames(tiny_world_model(), episodes, context=2)
    solved = [e for e in range(episodes.num_episodes)
              if episodes.success[episodes.episode_offsets[e]:episodes.episode_offsets[e + 1]].any()]
    assert p["episodes"].tolist() == solved
    assert p["success"].shape == (len(solved), 64, 64, 3) and p["success"].dtype == np.uint8
    first = episodes.episode_offsets[p["episodes"]]
    for i, t in enumerate(p["times"]):
        assert episodes.success[first[i] + t] and not episodes.success[first[i]:first[i] + t].any()
        if t == 1:  # the frame before the success is the prompt itself
            np.testing.assert_array_equal(p["before"][i], episodes.frames[first[i]])


def test_model_card_lines_of_the_judge_on_dreams():
    from benchmarks.model_card import judge_on_dreams_lines

    ep = {"fires_when_solved": 0.9, "fires_when_unsolved": 0.2}
    rows = [{"judge": "default", "levels": "all", "threshold": 0.5, "episodes_from": "recorded", "auc": 0.99,
             "episodes": ep},
            {"judge": "default", "levels": "all", "threshold": 0.5, "episodes_from": "dreamed", "auc": 0.54,
             "episodes": {"fires_when_solved": 0.05, "fires_when_unsolved": 0.08}}]
    step = [{"judge": "default", "threshold": 0.5, "fires_model_success": 0.11, "fires_recorded_success": 0.86,
             "episodes": 121, "psnr_success": 21.0}]
    text = " ".join(judge_on_dreams_lines({"rows": rows, "one_step": step, "command": "CMD"}))
    assert "AUC 0.54 (recorded frames: 0.99)" in text and "0.11 of 121 episodes" in text and "`CMD`" in text
    assert judge_on_dreams_lines({"rows": rows[:1]}) == []
