"""The training dataset: window shapes and alignment, filters, short episodes, refusing mixed recordings."""

import numpy as np
import pytest
import torch

from world_model.dataset import DatasetError, EpisodeDataset, WindowDataset
from world_model.shards import Branches, Episode, ShardError, ShardMeta, shard_name, write_shard

MEANINGS = ("noop", "turn_left", "turn_right", "forward", "pickup", "drop", "toggle")
META = ShardMeta(env_id="test/Fake-v0", frame_shape=(6, 5, 3), action_meanings=MEANINGS)


def labelled_episode(uid, num_frames, split="train", view="first_person", shape=(6, 5, 3)):
    """Frame t of episode `uid` has pixels (uid, t, 7); actions[t] = (3t + uid) % 7; success on the last frame."""
    frames = np.zeros((num_frames, *shape), np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = uid, np.arange(num_frames)[:, None, None], 7
    actions = np.append((3 * np.arange(num_frames - 1) + uid) % 7, -1).astype(np.int16)
    success = np.zeros(num_frames, bool)
    success[-1] = True
    return Episode(frames=frames, actions=actions, rewards=success.astype(np.float32), success=success,
                   mission=f"mission {uid}", level_seed=uid, policy="bot", view=view, split=split)


LENGTHS = [12, 3, 20, 8, 16, 5, 9]  # 3 and 5 are shorter than the window of 8 used below
SPLITS = ["train", "test", "train", "test", "train", "train", "test"]
VIEWS = ["first_person", "first_person", "top_down", "first_person", "top_down", "first_person", "first_person"]


@pytest.fixture
def folder(tmp_path):
    eps = [labelled_episode(uid, n, s, v) for uid, (n, s, v) in enumerate(zip(LENGTHS, SPLITS, VIEWS))]
    write_shard(tmp_path / shard_name(0), eps[:3], META)
    write_shard(tmp_path / shard_name(1), eps[3:], META)
    (tmp_path / "shard_000002.npz.abc.tmp").write_bytes(b"leftover of a killed run: ignored")
    return tmp_path


def check_window(frames, actions, rewards, success, uid, start):
    """The window is frames start..start+T-1 of episode uid, with the recorded actions alongside."""
    T, n = len(frames), LENGTHS[uid]
    t = np.arange(start, start + T)
    assert (frames[..., 0] == uid).all() and (frames[..., 2] == 7).all()
    np.testing.assert_array_equal(frames[:, 0, 0, 1], t)
    expected = np.where(t < n - 1, (3 * t + uid) % 7, -1)  # actions[t] leads frame t -> t+1
    np.testing.assert_array_equal(actions, expected)
    assert (actions[:-1] >= 0).all()  # only the very last action may be the episode-end -1
    np.testing.assert_array_equal(success, t == n - 1)
    np.testing.assert_array_equal(rewards, (t == n - 1).astype(np.float32))


def test_getitem_windows(folder):
    data = WindowDataset.from_folders(folder, window=8)
    assert len(data) == sum(n - 8 + 1 for n in LENGTHS if n >= 8)
    seen = set()
    for i in range(len(data)):
        item = data[i]
        assert item["frames"].shape == (8, 6, 5, 3) and item["frames"].dtype == torch.uint8
        assert item["actions"].shape == (8,) and item["actions"].dtype == torch.int64
        assert item["success"].dtype == torch.bool and item["rewards"].dtype == torch.float32
        uid = int(item["frames"][0, 0, 0, 0])
        assert data.episodes.level_seeds[item["episode"]] == uid
        assert item["mission"] == f"mission {uid}"
        check_window(item["frames"].numpy(), item["actions"].numpy(), item["rewards"].numpy(),
                     item["success"].numpy(), uid, item["start"])
        seen.add((uid, item["start"]))
    assert len(seen) == len(data)  # every start exactly once
    assert (2, 12) in seen and (2, 13) not in seen  # the last window ends on the last frame
    with pytest.raises(IndexError):
        data[len(data)]
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True)
    batch = next(iter(loader))
    assert batch["frames"].shape == (4, 8, 6, 5, 3) and len(batch["mission"]) == 4


def test_sample_batch(folder):
    data = WindowDataset.from_folders(folder, window=8)
    batch = data.sample_batch(64, np.random.default_rng(0))
    assert batch.frames.shape == (64, 8, 6, 5, 3) and batch.frames.dtype == np.uint8
    assert batch.actions.shape == (64, 8) and batch.actions.dtype == np.int64
    assert batch.success.shape == batch.rewards.shape == (64, 8)
    for b in range(64):
        uid = int(batch.frames[b, 0, 0, 0, 0])
        assert data.episodes.level_seeds[batch.episode[b]] == uid
        assert batch.missions[b] == f"mission {uid}"
        check_window(batch.frames[b], batch.actions[b], batch.rewards[b], batch.success[b], uid, batch.start[b])
    np.testing.assert_array_equal(batch.window_success, batch.success.any(1))
    again = data.sample_batch(64, np.random.default_rng(0))
    np.testing.assert_array_equal(again.frames, batch.frames)  # same generator, same batch


def test_short_episodes_are_skipped_and_counted(folder):
    data = WindowDataset.from_folders(folder, window=8)
    summary = data.summary()
    assert summary["episodes"] == 7 and summary["episodes_too_short"] == 2
    assert summary["frames"] == sum(LENGTHS) and summary["windows"] == len(data)
    uids = {int(data[i]["frames"][0, 0, 0, 0]) for i in range(len(data))}
    assert uids == {0, 2, 3, 4, 6}
    with pytest.raises(DatasetError, match="no episode has 21 frames"):
        WindowDataset.from_folders(folder, window=21)


def test_split_and_view_filters(folder):
    train = EpisodeDataset(folder, split="train")
    assert train.level_seeds.tolist() == [0, 2, 4, 5] and set(train.splits) == {"train"}
    assert train.summary()["episodes_filtered_out"] == 3
    test = WindowDataset(EpisodeDataset(folder, split="test"), window=8)
    assert {int(test[i]["frames"][0, 0, 0, 0]) for i in range(len(test))} == {3, 6}
    top = EpisodeDataset(folder, views="top_down")
    assert top.level_seeds.tolist() == [2, 4]
    both = EpisodeDataset([folder], split="train", views=["top_down", "first_person"])
    assert both.num_episodes == 4
    episode = train.episode(1)
    assert episode.level_seed == 2 and episode.num_frames == 20 and episode.view == "top_down"
    with pytest.raises(DatasetError, match="found split/view"):
        EpisodeDataset(folder, split="validation")


def test_refuses_mixed_or_missing_recordings(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    write_shard(other / shard_name(0), [labelled_episode(9, 10, shape=(4, 4, 3))],
                ShardMeta("test/Fake-v0", (4, 4, 3), MEANINGS))
    with pytest.raises(DatasetError, match="one frame size"):
        EpisodeDataset([folder, other])
    vocab = tmp_path_factory.mktemp("vocab")
    renamed = tuple(m.upper() for m in MEANINGS)
    write_shard(vocab / shard_name(0), [labelled_episode(9, 10)], ShardMeta("test/Other-v0", (6, 5, 3), renamed))
    with pytest.raises(DatasetError, match="one action set"):
        EpisodeDataset([folder, vocab])
    same_kind = tmp_path_factory.mktemp("same")
    write_shard(same_kind / shard_name(0), [labelled_episode(9, 10)], ShardMeta("test/Other-v0", (6, 5, 3), MEANINGS))
    assert EpisodeDataset([folder, same_kind]).summary()["env_ids"] == {"test/Fake-v0": 7, "test/Other-v0": 1}
    with pytest.raises(DatasetError, match="genie-data record"):
        EpisodeDataset(tmp_path_factory.mktemp("empty"))
    (folder / shard_name(1)).write_bytes(b"garbage")
    with pytest.raises(ShardError, match="delete it"):
        EpisodeDataset(folder)


def branched_episode(uid, num_frames, sources, split="train", view="first_person"):
    """labelled_episode plus one branch per action at each source: branch pixels (uid, source, 100 + action)."""
    episode = labelled_episode(uid, num_frames, split, view)
    sources = np.repeat(np.asarray(sources, np.int64), 7)
    actions = np.tile(np.arange(7, dtype=np.int16), len(sources) // 7)
    frames = np.zeros((len(sources), 6, 5, 3), np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = uid, sources[:, None, None], 100 + actions[:, None, None]
    return Episode(**{**episode.__dict__, "branches": Branches(sources=sources, actions=actions, frames=frames)})


def test_branches_follow_their_episodes(tmp_path):
    write_shard(tmp_path / shard_name(0), [branched_episode(0, 10, [2, 5]), labelled_episode(1, 6, split="test")],
                META)
    write_shard(tmp_path / shard_name(1), [branched_episode(2, 8, [0], split="test"), branched_episode(3, 9, [8])],
                META)
    old = tmp_path / "v1"  # a version-1 shard (no branch arrays) mixes in
    old.mkdir()
    write_shard(old / shard_name(0), [labelled_episode(4, 7)], META)
    with np.load(old / shard_name(0), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("branch_")}
    np.savez_compressed(old / shard_name(0), **arrays)

    data = EpisodeDataset([tmp_path, old], split="train")
    assert data.level_seeds.tolist() == [0, 3, 4]
    assert data.num_branches == 21 and data.branch_offsets.tolist() == [0, 14, 21, 21]
    assert data.summary()["branch_frames"] == 21 and data.summary()["branched_states"] == 3
    for e, (uid, sources) in enumerate([(0, [2, 5]), (3, [8])]):
        branches = data.episode(e).branches
        assert branches.source_frames.tolist() == sources
        assert (branches.frames[..., 0] == uid).all()
        np.testing.assert_array_equal(branches.frames[:, 0, 0, 1], branches.sources)
        np.testing.assert_array_equal(branches.frames[:, 0, 0, 2], 100 + branches.actions)
    assert data.episode(2).branches is None
    windows = WindowDataset(data, window=6)  # windows stay windows of real frames
    assert all(int(windows[i]["frames"][0, 0, 0, 2]) == 7 for i in range(len(windows)))


def test_short_episodes_padded_under_noop(folder):
    episodes = EpisodeDataset(folder)
    ds = WindowDataset(episodes, window=8, pad_action=0)
    assert ds.num_short_episodes == 0 and ds.num_padded_episodes == 2
    assert len(ds) == len(WindowDataset(episodes, window=8)) + 2  # one window more per short episode
    assert ds.summary()["episodes_padded"] == 2
    for i in np.flatnonzero(ds.window_padded):
        item = ds[i]
        uid = int(item["episode"])
        n = LENGTHS[uid]
        pad = 8 - n  # copies of the first frame, then the episode, ending at its last frame
        assert int(item["start"]) == -pad
        t = np.r_[np.zeros(pad, int), np.arange(n)]
        np.testing.assert_array_equal(item["frames"][:, 0, 0, 1].numpy(), t)
        expected = np.r_[np.zeros(pad, int), (3 * np.arange(n - 1) + uid) % 7, -1]  # noop, then the recorded ones
        np.testing.assert_array_equal(item["actions"].numpy(), expected)
        np.testing.assert_array_equal(item["success"].numpy(), np.arange(8) == 7)
    # sample_batch pads the same way (every window of a short episode is its padded one)
    batch = ds.sample_batch(256, np.random.default_rng(0))
    short = np.isin(batch.episode, [1, 5])
    assert short.any()
    for b in np.flatnonzero(short):
        n = LENGTHS[batch.episode[b]]
        assert (batch.actions[b, :8 - n] == 0).all() and (batch.frames[b, :8 - n + 1, 0, 0, 1] == 0).all()
        assert batch.success[b, -1] and not batch.success[b, :-1].any()
    # a padded window is drawn `window` times as often as another
    counts = np.bincount(ds.draw(200_000, np.random.default_rng(1)), minlength=len(ds))
    padded = ds.window_padded
    assert counts[padded].mean() / counts[~padded].mean() == pytest.approx(8, rel=0.1)
    # or `pad_weight` times as often, as asked
    light = WindowDataset(episodes, window=8, pad_action=0, pad_weight=2)
    counts = np.bincount(light.draw(200_000, np.random.default_rng(1)), minlength=len(light))
    assert counts[padded].mean() / counts[~padded].mean() == pytest.approx(2, rel=0.1)
    assert light.summary()["padded_draw_share"] == pytest.approx(2 * 2 / (2 * 2 + (~padded).sum()))
    with pytest.raises(DatasetError, match="pad_weight"):
        WindowDataset(episodes, window=8, pad_action=0, pad_weight=0)
    with pytest.raises(DatasetError, match="pad_action 9"):
        WindowDataset(episodes, window=8, pad_action=9)


def test_short_episodes_padded_at_the_end(folder):
    """pad_at="end": the episode from its first frame (as a rollout from a prompt), then copies of its last frame, the
    last recorded frame leading to them under noop; long episodes' windows are the same as without padding."""
    episodes = EpisodeDataset(folder)
    ds = WindowDataset(episodes, window=8, pad_action=0, pad_at="end")
    front = WindowDataset(episodes, window=8, pad_action=0)
    np.testing.assert_array_equal(ds.window_padded, front.window_padded)
    np.testing.assert_array_equal(ds.window_start[~ds.window_padded], front.window_start[~front.window_padded])
    assert ds.window_padded.sum() == 2
    for i in np.flatnonzero(ds.window_padded):
        item = ds[i]
        uid = int(item["episode"])
        n = LENGTHS[uid]
        assert int(item["start"]) == 0
        np.testing.assert_array_equal(item["frames"][:, 0, 0, 1].numpy(), np.minimum(np.arange(8), n - 1))
        expected = np.r_[(3 * np.arange(n - 1) + uid) % 7, np.zeros(8 - n + 1, int)]  # recorded, then noop
        np.testing.assert_array_equal(item["actions"].numpy(), expected)
        np.testing.assert_array_equal(item["success"].numpy(), np.arange(8) == n - 1)  # copies are not successes
        np.testing.assert_array_equal(item["rewards"].numpy(), (np.arange(8) == n - 1).astype(np.float32))
    batch = ds.sample_batch(256, np.random.default_rng(0))
    for b in np.flatnonzero(np.isin(batch.episode, [1, 5])):
        n = LENGTHS[batch.episode[b]]
        assert (batch.frames[b, :, 0, 0, 1] == np.minimum(np.arange(8), n - 1)).all()
        assert (batch.actions[b, n - 1:] == 0).all() and batch.success[b, n - 1] and batch.success[b].sum() == 1
    with pytest.raises(DatasetError, match="pad_at"):
        WindowDataset(episodes, window=8, pad_action=0, pad_at="middle")


def test_pad_views_pads_only_the_short_episodes_of_the_views_named(tmp_path):
    lengths, views = [12, 3, 10, 5], ["first_person", "first_person", "top_down", "top_down"]
    write_shard(tmp_path / shard_name(0), [labelled_episode(u, n, view=v) for u, (n, v) in
                                           enumerate(zip(lengths, views))], META)
    episodes = EpisodeDataset(tmp_path)
    every = WindowDataset(episodes, window=8, pad_action=0)
    fp = WindowDataset(episodes, window=8, pad_action=0, pad_views="first_person")
    assert (every.num_padded_episodes, every.num_short_episodes) == (2, 0)
    assert (fp.num_padded_episodes, fp.num_short_episodes) == (1, 1)  # the short top-down episode is left out
    assert len(fp) == len(every) - 1 and fp.pad_views == ("first_person",)
    assert sorted(set(fp.window_episode[fp.window_padded].tolist())) == [1]
    assert 3 not in fp.sample_batch(512, np.random.default_rng(0)).episode
    both = WindowDataset(episodes, window=8, pad_action=0, pad_views=["top_down", "first_person"])
    np.testing.assert_array_equal(both.window_start, every.window_start)
    assert fp.summary()["episodes_padded"] == 1 and fp.summary()["episodes_too_short"] == 1
    with pytest.raises(DatasetError, match="pad_action"):
        WindowDataset(episodes, window=8, pad_views="first_person")
    with pytest.raises(DatasetError, match="empty"):
        WindowDataset(episodes, window=8, pad_action=0, pad_views=[])
    with pytest.raises(DatasetError, match="none of these episodes"):
        WindowDataset(episodes, window=8, pad_action=0, pad_views="firstperson")
