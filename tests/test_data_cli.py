"""genie-data: record, info, export-video, and one-line errors with exit code 2."""

import json

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest

from genie_env.data_cli import main
from world_model.shards import read_shard

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
