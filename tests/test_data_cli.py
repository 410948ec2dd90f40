"""genie-data: record, info (with no-change shares and branch counts), export-video, and one-line errors with
exit code 2."""

import json

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest

from genie_env.data_cli import change_summary, main
from world_model.shards import Branches, Episode, ShardMeta, read_shard, shard_name, write_shard

ENV_ID = "genie_env/BabyAI3D-GoToLocal-v0"


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    pytest.importorskip("genie_env.babyai3d")
    out = tmp_path_factory.mktemp("rec")
    assert main(["record", "--env", ENV_ID, "--frames", "120", "--out", str(out), "--episodes-per-shard", "3",
                 "--size", "32", "24", "--top-down-share", "0.3", "--seed", "3", "--quiet"]) == 0
    return out


def test_record_and_info(recording, capsys):
    shard = read_shard(recording / "shard_000000.npz")
    assert shard.meta.frame_shape == (32, 24, 3) and shard.meta.env_id == ENV_ID
    manifest = json.loads((recording / "dataset.json").read_text())
    assert manifest["env_kwargs"] == {"size": [32, 24]} and manifest["seed"] == 3
    capsys.readouterr()
    assert main(["info", "--data", str(recording)]) == 0
    text = capsys.readouterr().out
    assert ENV_ID in text and "32x24x3" in text and "success" in text and "missions" in text
    assert main(["info", "--data", str(recording), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] >= 120 and 3 * summary["shards"] - 2 <= summary["episodes"] <= 3 * summary["shards"]
    assert sum(summary["policies"].values()) == summary["episodes"]
    assert 0.0 <= summary["success_rate"] <= 1.0 and summary["missions_sample"]


def test_export_video(recording, tmp_path):
    episode = read_shard(recording / "shard_000000.npz").episode(1)
    gif, mp4 = tmp_path / "ep.gif", tmp_path / "ep.mp4"
    assert main(["export-video", "--data", str(recording), "--episode", "1", "--out", str(gif)]) == 0
    frames = iio.imread(gif)
    assert frames.shape[1:3] == (128, 96)  # 4x nearest-neighbour upscale
    changes = 1 + int(np.any(episode.frames[1:] != episode.frames[:-1], axis=(1, 2, 3)).sum())
    assert 2 <= len(frames) <= changes  # GIF merges repeated frames (keeping the timing)
    assert np.abs(frames[0][::4, ::4, :3].astype(int) - episode.frames[0]).mean() < 8  # 256-colour palette
    assert main(["export-video", "--data", str(recording), "--episode", "1", "--out", str(mp4),
                 "--scale", "3", "--fps", "5"]) == 0
    with imageio.get_reader(mp4) as reader:
        assert reader.count_frames() == episode.num_frames
        assert reader.get_meta_data()["size"] == (72, 96)  # (width, height)


def run_failing(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genie-data: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_errors_are_one_line_with_exit_code_2(recording, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    run_failing(capsys, ["record", "--env", "NoSuchEnv-v0", "--frames", "5", "--out", str(tmp_path / "a")],
                "unknown env id")
    run_failing(capsys, ["record", "--env", ENV_ID, "--frames", "5", "--out", str(a_file / "sub")], "not writable")
    run_failing(capsys, ["record", "--env", ENV_ID, "--frames", "5", "--out", str(tmp_path / "b"), "--size", "4", "4"],
                "cannot be made")
    run_failing(capsys, ["record", "--env", "genie_env/BabyAI3D-OpenRedDoor-v0", "--frames", "5",
                         "--out", str(recording), "--seed", "3", "--size", "32", "24"], "env_id=")
    run_failing(capsys, ["export-video", "--data", str(recording), "--episode", "99", "--out",
                         str(tmp_path / "x.gif")], "shard 0 has episodes 0..")
    run_failing(capsys, ["export-video", "--data", str(recording), "--out", str(tmp_path / "x.avi")], ".mp4 or .gif")
    run_failing(capsys, ["export-video", "--data", str(recording), "--shard", "999", "--out",
                         str(tmp_path / "x.gif")], "no such shard file")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "shard_000000.npz").write_bytes(b"\x00" * 100)
    run_failing(capsys, ["info", "--data", str(broken)], "corrupt")
    run_failing(capsys, ["info", "--data", str(tmp_path / "nowhere")], "not a folder")
    with pytest.raises(SystemExit) as e:  # argparse's own usage errors also exit with 2
        main(["record", "--env", ENV_ID])
    assert e.value.code == 2


def test_record_test_worlds(tmp_path):
    import genie_env  # noqa: F401  (registers the 3D BabyAI ids)
    from world_model.dataset import DatasetError, EpisodeDataset

    out = tmp_path / "test_worlds"
    assert main(["record", "--env", "genie_env/BabyAI3D-GoToObj-v0", "--frames", "60", "--worlds", "test",
                 "--episodes-per-shard", "2", "--out", str(out), "--quiet"]) == 0
    assert EpisodeDataset([out], split="test").summary()["episodes"] > 0
    with pytest.raises(DatasetError, match="no episodes with split='train'"):
        EpisodeDataset([out], split="train")


def test_info_no_change_shares_of_a_hand_made_shard(tmp_path, capsys):
    """Two episodes whose steps change or keep the frame by design, one with branches."""
    meta = ShardMeta("test/Fake-v0", (2, 2, 3), ("noop", "turn_left", "forward"))

    def episode(actions, changes, view, branches=None):
        frames = np.zeros((len(actions) + 1, 2, 2, 3), np.uint8)
        frames[1:, 0, 0, 0] = np.cumsum(changes)  # frame j+1 differs from frame j where changes[j]
        return Episode(frames=frames, actions=np.array([*actions, -1], np.int16),
                       rewards=np.zeros(len(actions) + 1, np.float32), success=np.zeros(len(actions) + 1, bool),
                       view=view, branches=branches(frames) if branches else None)

    def branches(frames):  # at frames 0 and 2: noop keeps the frame, the others change it
        sources = np.repeat([0, 2], 3)
        out = frames[sources].copy()
        out[[1, 2, 4, 5], 1, 1, 1] = 9
        return Branches(sources=sources, actions=np.tile(np.arange(3, dtype=np.int16), 2), frames=out)

    write_shard(tmp_path / shard_name(0), [
        episode([0, 1, 2, 2], [0, 1, 1, 0], "first_person", branches),  # noop still, a blocked forward
        episode([0, 0, 1, 2], [1, 0, 0, 1], "top_down"),  # a noop that changes (something moved), a turn that doesn't
    ], meta)
    s = change_summary(tmp_path)
    fp, td, both = s["no_change"]["first_person"], s["no_change"]["top_down"], s["no_change"]["all"]
    assert (fp["n"], fp["all"], fp["noop"], fp["turn_left"], fp["forward"]) == (4, 0.5, 1.0, 0.0, 0.5)
    assert (td["n"], td["all"], td["noop"], td["turn_left"], td["forward"]) == (4, 0.5, 0.5, 1.0, 0.0)
    assert (both["n"], both["all"], both["noop"], both["n_noop"], both["forward"]) == (8, 0.5, 2 / 3, 3, 1 / 3)
    b = s["branches"]
    assert (b["states"], b["frames"], b["share_of_states"]) == (2, 6, 0.25)
    assert b["no_change"] == {"noop": 1.0, "turn_left": 0.0, "forward": 0.0} and b["no_change_all"] == 1 / 3
    capsys.readouterr()
    assert main(["info", "--data", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "no change" in text and "50.0%" in text and "2 branched states (25.0% of steps), 6 frames" in text
    assert main(["info", "--data", str(tmp_path), "--index-only"]) == 0
    text = capsys.readouterr().out
    assert "no change" not in text and "6 branch frames" in text


def test_record_with_the_new_options(tmp_path, capsys):
    pytest.importorskip("genie_env.babyai3d")
    out = tmp_path / "rec"
    assert main(["record", "--env", "genie_env/BabyAI3D-OpenDoor-v0", "--frames", "80", "--out", str(out),
                 "--size", "16", "16", "--mix", "explore=0.5,lookback=0.5", "--action-weights", "forward=4,turn_left=1",
                 "--branch-every", "4", "--max-episode-steps", "30", "--quiet"]) == 0
    assert "branch frames" in capsys.readouterr().out
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["mix"] == {"explore": 0.5, "lookback": 0.5} and manifest["branch_every"] == 4
    assert manifest["action_weights"] == {"forward": 4.0, "turn_left": 1.0}
    assert main(["info", "--data", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["branches"]["frames"] == 7 * summary["branches"]["states"] > 0
    assert set(summary["no_change"]) == {"first_person", "all"}
    run_failing(capsys, ["record", "--env", ENV_ID, "--frames", "5", "--out", str(tmp_path / "x"),
                         "--mix", "bot=1", "--policy", "mix2"], "--mix gives the weights of --policy mix")
    run_failing(capsys, ["record", "--env", ENV_ID, "--frames", "5", "--out", str(tmp_path / "x"),
                         "--action-weights", "forward"], "name=weight")
