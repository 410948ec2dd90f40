"""The episode shard format: roundtrip (with and without counterfactual branches), version-1 shards still
load, byte-reproducibility, validation of damaged files, atomic writes."""

import json
import zipfile

import numpy as np
import pytest

from world_model.shards import (
    Branches,
    Episode,
    ShardError,
    ShardMeta,
    list_shards,
    read_shard,
    read_shard_index,
    shard_name,
    write_shard,
)

META = ShardMeta(env_id="test/Fake-v0", frame_shape=(8, 6, 3), action_meanings=("noop", "left", "right"))


def make_episode(rng, steps, **kw):
    frames = rng.integers(0, 256, size=(steps + 1, 8, 6, 3), dtype=np.uint8)
    actions = np.append(rng.integers(0, 3, size=steps), -1).astype(np.int16)
    rewards = np.zeros(steps + 1, np.float32)
    success = np.zeros(steps + 1, bool)
    if kw.pop("won", False):
        rewards[-1], success[-1] = 0.5, True
    return Episode(frames=frames, actions=actions, rewards=rewards, success=success, **kw)


@pytest.fixture
def episodes():
    rng = np.random.default_rng(0)
    return [
        make_episode(rng, 5, mission="open the red door", level_seed=3, policy="bot", view="first_person",
                     split="train", terminated=True, won=True),
        make_episode(rng, 0, mission="", level_seed=-1, policy="random", view="rgb", split="unknown"),
        make_episode(rng, 9, mission="go to the ball", level_seed=1_000_001, policy="lookaround",
                     view="top_down", split="test", truncated=True),
    ]


@pytest.fixture
def shard_path(tmp_path, episodes):
    return write_shard(tmp_path / shard_name(0), episodes, META)


def test_roundtrip(shard_path, episodes):
    shard = read_shard(shard_path)
    assert shard.meta == META
    assert shard.num_episodes == 3
    assert shard.frames.shape == (6 + 1 + 10, 8, 6, 3) and shard.frames.dtype == np.uint8
    assert shard.index.episode_offsets.tolist() == [0, 6, 7, 17]
    for original, loaded in zip(episodes, shard.episodes()):
        for name in ("frames", "actions", "rewards", "success"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        for name in ("mission", "level_seed", "policy", "view", "split", "terminated", "truncated"):
            assert getattr(loaded, name) == getattr(original, name), name
    index = read_shard_index(shard_path)  # same content without the pixels
    assert index.num_frames == 17 and index.num_episodes == 3
    np.testing.assert_array_equal(index.actions, shard.index.actions)
    assert list_shards(shard_path.parent) == [shard_path]


def test_plain_numpy_file(shard_path):
    """A shard is an ordinary npz: readable by np.load without pickle."""
    with np.load(shard_path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert meta["format"] == "genie-env-shard" and meta["format_version"] == 2
        assert meta["frame_shape"] == [8, 6, 3] and meta["num_actions"] == 3
        assert z["missions"].dtype.kind == "U"


def test_same_episodes_same_bytes(tmp_path, episodes):
    a = write_shard(tmp_path / "a.npz", episodes, META)
    b = write_shard(tmp_path / "b.npz", episodes, META)
    assert a.read_bytes() == b.read_bytes()


def _assert_shard_error(path, *fragments):
    for read in (read_shard, read_shard_index):
        with pytest.raises(ShardError) as e:
            read(path)
        assert str(path) in str(e.value)
        for fragment in fragments:
            assert fragment in str(e.value)


def test_truncated_shard(shard_path):
    data = shard_path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        shard_path.write_bytes(data[:cut])
        _assert_shard_error(shard_path, "re-record it or delete it")


def test_random_bytes(tmp_path):
    path = tmp_path / "shard_000000.npz"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_shard_error(path, "delete it")


def test_damaged_compressed_data(shard_path):
    data = bytearray(shard_path.read_bytes())
    with zipfile.ZipFile(shard_path) as zf:
        info = zf.getinfo("frames.npy")
    middle = info.header_offset + 100 + info.compress_size // 2  # inside the deflated frames
    data[middle:middle + 64] = bytes(64)
    shard_path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="corrupt"):
        read_shard(shard_path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, x=np.zeros(3))
    _assert_shard_error(path, "missing arrays", "genie-data record")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    _assert_shard_error(tmp_path / "plain.npy")
    _assert_shard_error(tmp_path / "nonexistent.npz", "no such shard file")


def _rewrite(path, **changes):
    """Copy a shard with some arrays replaced (np.savez, bypassing write_shard's checks)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change, fragment", [
    (lambda a: {"actions": a["actions"].astype(np.int32)}, "'actions'"),
    (lambda a: {"frames": a["frames"].astype(np.float32)}, "uint8"),
    (lambda a: {"frames": a["frames"][:, :4]}, "shape"),
    (lambda a: {"episode_offsets": np.array([0, 6, 6, 17])}, "episode_offsets"),
    (lambda a: {"episode_offsets": np.array([0, 6, 7, 16])}, "episode_offsets"),
    (lambda a: {"missions": np.array([1, 2, 3])}, "'missions'"),
    (lambda a: {"splits": np.array(["train", "test"])}, "'splits'"),
    (lambda a: {"actions": np.where(a["actions"] == -1, 0, a["actions"]).astype(np.int16)}, "-1"),
    (lambda a: {"actions": np.where(a["actions"] == 2, 9, a["actions"]).astype(np.int16)}, "outside"),
    (lambda a: {"meta": np.array(json.dumps({"format": "something-else"}))}, "not a genie-env shard"),
    (lambda a: {"meta": np.array(a["meta"][()].replace('"format_version": 2', '"format_version": 7'))},
     "upgrade genie-env"),
    (lambda a: {"meta": np.array("{not json")}, "not valid JSON"),
    (lambda a: {"meta": np.array([a["meta"][()]], dtype=object)}, "'meta'"),  # pickled: never loaded
])
def test_invalid_content(shard_path, change, fragment):
    with np.load(shard_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    _rewrite(shard_path, **change(arrays))
    _assert_shard_error(shard_path, fragment)


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path, episodes, monkeypatch):
    path = tmp_path / shard_name(0)
    write_shard(path, episodes[:1], META)
    good = path.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def failing_write_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) % 4 == 0:  # a few arrays already written, then the disk "fills up"
            fp.write(b"partial")
            raise OSError(28, "No space left on device")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="No space"):
        write_shard(path, episodes, META)
    assert path.read_bytes() == good  # the old shard is intact
    with pytest.raises(OSError):
        write_shard(tmp_path / shard_name(1), episodes, META)
    assert sorted(p.name for p in tmp_path.iterdir()) == [shard_name(0)]  # no partial file, no *.tmp


def test_write_refuses_invalid_episodes(tmp_path, episodes):
    bad = Episode(frames=episodes[0].frames, actions=np.zeros(6, np.int16),  # last action must be -1
                  rewards=episodes[0].rewards, success=episodes[0].success)
    with pytest.raises(ValueError, match="-1"):
        write_shard(tmp_path / "x.npz", [bad], META)
    short = Episode(frames=episodes[0].frames, actions=episodes[0].actions[:3],
                    rewards=episodes[0].rewards, success=episodes[0].success)
    with pytest.raises(ValueError, match="L\\+1"):
        write_shard(tmp_path / "x.npz", [short], META)
    with pytest.raises(ValueError, match="at least one episode"):
        write_shard(tmp_path / "x.npz", [], META)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# counterfactual branches (format version 2)


def with_branches(episode, rng, sources):
    """`episode` plus one branch per action (3) at each of `sources`."""
    sources = np.repeat(np.asarray(sources, np.int64), 3)
    actions = np.tile(np.arange(3, dtype=np.int16), len(sources) // 3)
    frames = rng.integers(0, 256, size=(len(sources), 8, 6, 3), dtype=np.uint8)
    return Episode(**{**episode.__dict__, "branches": Branches(sources=sources, actions=actions, frames=frames)})


@pytest.fixture
def branched(episodes):
    rng = np.random.default_rng(5)
    return [with_branches(episodes[0], rng, [0, 3]), episodes[1], with_branches(episodes[2], rng, [9])]


def test_roundtrip_with_branches(tmp_path, branched):
    path = write_shard(tmp_path / shard_name(0), branched, META)
    shard = read_shard(path)
    assert shard.index.format_version == 2 and shard.index.num_branches == 9
    assert shard.index.branch_offsets.tolist() == [0, 6, 6, 9]
    for original, loaded in zip(branched, shard.episodes()):
        np.testing.assert_array_equal(loaded.frames, original.frames)
        if original.branches is None:
            assert loaded.branches is None
            continue
        for name in ("sources", "actions", "frames"):
            np.testing.assert_array_equal(getattr(loaded.branches, name), getattr(original.branches, name))
        assert loaded.branches.actions.dtype == np.int16 and loaded.branches.sources.dtype == np.int64
    assert shard.episode(0).branches.source_frames.tolist() == [0, 3]
    index = read_shard_index(path)  # branch index without the pixels
    assert index.num_branches == 9 and index.branch_sources.tolist() == [0, 0, 0, 3, 3, 3, 9, 9, 9]


def test_without_branches_written_as_empty_v2(shard_path):
    shard = read_shard(shard_path)
    assert shard.index.format_version == 2 and shard.index.num_branches == 0
    assert shard.branch_frames.shape == (0, 8, 6, 3)
    assert all(ep.branches is None for ep in shard.episodes())


def test_version_1_shard_still_loads(shard_path, episodes):
    """A shard as version 1 wrote it: no branch arrays, format_version 1 in the meta."""
    with np.load(shard_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("branch_")}
    arrays["meta"] = np.array(str(arrays["meta"][()]).replace('"format_version": 2', '"format_version": 1'))
    np.savez_compressed(shard_path, **arrays)
    for read in (read_shard, read_shard_index):
        loaded = read(shard_path)
        index = loaded if read is read_shard_index else loaded.index
        assert index.format_version == 1 and index.num_branches == 0 and index.branch_offsets is None
    shard = read_shard(shard_path)
    assert shard.branch_frames is None
    for original, loaded in zip(episodes, shard.episodes()):
        np.testing.assert_array_equal(loaded.frames, original.frames)
        assert loaded.branches is None


@pytest.mark.parametrize("change, fragment", [
    (lambda a: {"branch_actions": np.where(a["branch_actions"] == 2, 3, a["branch_actions"]).astype(np.int16)},
     "branch_actions outside"),
    (lambda a: {"branch_sources": a["branch_sources"] + 8}, "branch_sources outside"),
    (lambda a: {"branch_offsets": np.array([0, 6, 5, 9])}, "branch_offsets"),
    (lambda a: {"branch_offsets": np.array([0, 6, 9])}, "'branch_offsets'"),
    (lambda a: {"branch_frames": a["branch_frames"][:, :4]}, "branch_frames have shape"),
    (lambda a: {"branch_sources": a["branch_sources"].astype(np.int32)}, "'branch_sources'"),
])
def test_invalid_branches(tmp_path, branched, change, fragment):
    path = write_shard(tmp_path / shard_name(0), branched, META)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    _rewrite(path, **change(arrays))
    _assert_shard_error(path, fragment)


def test_some_branch_arrays_missing(tmp_path, branched):
    path = write_shard(tmp_path / shard_name(0), branched, META)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "branch_sources"}
    np.savez(path, **arrays)
    _assert_shard_error(path, "come together")


def test_write_refuses_branches_outside_the_episode(tmp_path, episodes):
    bad = with_branches(episodes[1], np.random.default_rng(0), [1])  # episode 1 has a single frame
    with pytest.raises(ValueError, match="branch_sources"):
        write_shard(tmp_path / "x.npz", [bad], META)
    with pytest.raises(ValueError, match="one G"):
        Branches(sources=np.zeros(2, np.int64), actions=np.zeros(3, np.int16), frames=np.zeros((2, 8, 6, 3), np.uint8))
