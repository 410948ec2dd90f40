"""The success judge: trains on a tiny bot recording, saves / loads, predicts probabilities, evaluates."""

import json

import numpy as np
import pytest
import torch

from genie_env.recorder import record
from world_model.checkpoint import CheckpointError
from world_model.inference import PRESETS as WM_PRESETS, WorldModel
from genie_env.judge import (DEFAULT_JUDGE_CHECKPOINT, PRESETS, JudgeArgs, JudgeConfig, SuccessJudge, build_vocabulary,
                             evaluate_judge, main, train_judge)

ENV_ID = "genie_env/BabyAI3D-GoToRedBall-v0"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge_data")
    record(ENV_ID, root / "train", frames=300, policy="bot", episodes_per_shard=16, progress=False)
    record(ENV_ID, root / "test", frames=100, policy="bot", episodes_per_shard=16, env_kwargs={"worlds": "test"},
           progress=False)
    return root / "train", root / "test"


@pytest.fixture(scope="module")
def trained(recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("judge") / "ckpt"
    judge = train_judge(JudgeArgs(data=(str(recordings[0]),), out=str(out), steps=8, batch_size=16, preset="tiny",
                                  quiet=True))
    return judge, out


def test_trains_saves_and_loads(trained):
    judge, out = trained
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    raw = json.loads((out / "config.json").read_text())
    assert raw["format"] == "genie-success-judge" and raw["format_version"] == 1
    assert raw["training"]["steps"] == 8 and raw["training"]["positives"] > 0
    assert judge.config.vocabulary == build_vocabulary(["go to the red ball", "go to a red ball"])
    loaded = SuccessJudge.load(out)
    assert loaded.config == judge.config
    for a, b in zip(judge.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_predicts_probabilities(trained):
    judge, _ = trained
    frames = np.random.default_rng(0).integers(0, 256, (5, 4, 64, 64, 3), dtype=np.uint8)
    p = judge.predict(frames, ["go to the red ball"] * 4 + ["an unknown mission"])
    assert p.shape == (5,) and p.dtype == np.float32 and ((p >= 0) & (p <= 1)).all()
    small = judge.predict(frames[:, :, :32, :32], ["go to the red ball"] * 5)  # other sizes are resized
    assert small.shape == (5,)
    with pytest.raises(ValueError, match=r"\(B, 4, H, W, 3\)"):
        judge.predict(frames[:, :3], ["x"] * 5)
    with pytest.raises(ValueError, match="one mission per window"):
        judge.predict(frames, ["x"] * 2)


def test_evaluate_reports_on_held_out_episodes(trained, recordings):
    judge, _ = trained
    report = evaluate_judge(judge, recordings[1], split="test")
    assert {"precision", "recall", "f1", "threshold", "positives", "negatives"} <= report.keys()
    assert report["positives"] > 0 and report["negatives"] > 0 and report["threshold"] == 0.5
    assert all(0.0 <= report[k] <= 1.0 for k in ("precision", "recall", "f1"))


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match="train_judge"):
        SuccessJudge.load(tmp_path / "nothing")
    WorldModel.from_config(WM_PRESETS["tiny"]).save(tmp_path / "wm")
    with pytest.raises(CheckpointError, match="not 'genie-success-judge'"):
        SuccessJudge.load(tmp_path / "wm")
    if not (DEFAULT_JUDGE_CHECKPOINT / "config.json").exists():
        with pytest.raises(CheckpointError, match="genie-train judge"):
            SuccessJudge.load("default")
    with pytest.raises(ValueError, match="vocabulary"):
        JudgeConfig(vocabulary=("a", "b"))


def test_training_needs_successes(tmp_path):
    record(ENV_ID, tmp_path / "random", frames=40, policy="random", episodes_per_shard=4, max_episode_steps=5,
           progress=False)
    from world_model.dataset import DatasetError

    with pytest.raises(DatasetError, match="policy bot"):
        train_judge(JudgeArgs(data=(str(tmp_path / "random"),), out=str(tmp_path / "out"), steps=1, preset="tiny",
                              quiet=True))


def test_cli(recordings, tmp_path, capsys, tiny_world_model):
    from genie_env.dream import dream

    dream(recordings[1], tmp_path / "dreamed", model=tiny_world_model(), progress=False)
    code = main(["--data", str(recordings[0]), "--out", str(tmp_path / "cli"), "--steps", "2", "--batch-size", "8",
                 "--preset", "tiny", "--quiet", "--eval-data", str(recordings[1]), "--eval-dreamed",
                 str(tmp_path / "dreamed"), "--report", str(tmp_path / "judge.json")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["evaluation"]["positives"] > 0
    # the dreamed episodes are the held-out ones: the same labels, other frames
    assert report["dreamed"]["positives"] == report["evaluation"]["positives"]
    assert report["dreamed"]["episodes"]["solved"] == report["evaluation"]["episodes"]["solved"] > 0
    saved = json.loads((tmp_path / "judge.json").read_text())
    assert saved["benchmark"] == "judge" and saved["dreamed"] == report["dreamed"]
    from benchmarks.report import judge_section

    table = "\n".join(judge_section(saved))
    assert "| recorded (ground-truth frames) |" in table and "| dreamed (" in table
    assert SuccessJudge.load(tmp_path / "cli").config.frames == PRESETS["tiny"].frames
