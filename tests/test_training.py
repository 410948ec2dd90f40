"""Training: a few steps write checkpoints and log.jsonl, resume after a stop, export, and the CLI end to end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from world_model.checkpoint import CheckpointError
from world_model import WorldModel
from world_model.trainer import TrainArgs, Trainer, train

H = 64
COLORS = np.array([[230, 30, 30], [30, 200, 60], [40, 80, 240], [240, 220, 30]], dtype=np.uint8)


@dataclass
class Batch:
    frames: np.ndarray  # (B, T, H, W, 3) uint8
    actions: np.ndarray  # (B, T) int64


class MovingSquares:
    """Synthetic episodes: a coloured square on a checker floor, moved by the actions (1 left, 2 right,
    3 up, 6 down, others stay). Same interface as world_model.dataset.WindowDataset.sample_batch."""

    def __init__(self, window: int):
        self.window = window

    @staticmethod
    def render(x: int, y: int, color: int) -> np.ndarray:
        yy, xx = np.mgrid[:H, :H]
        img = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 90, 60).astype(np.uint8).repeat(3, -1)
        img[y : y + 12, x : x + 12] = COLORS[color]
        return img

    def episode(self, rng: np.random.Generator, T: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = (int(v) for v in rng.integers(8, 44, 2))
        c = int(rng.integers(len(COLORS)))
        actions = rng.integers(0, 7, T)
        frames = []
        for a in actions:
            frames.append(self.render(x, y, c))
            dx, dy = {1: (-4, 0), 2: (4, 0), 3: (0, -4), 6: (0, 4)}.get(int(a), (0, 0))
            x, y = int(np.clip(x + dx, 0, H - 12)), int(np.clip(y + dy, 0, H - 12))
        return np.stack(frames), actions.astype(np.int64)

    def sample_batch(self, batch_size: int, generator: np.random.Generator) -> Batch:
        eps = [self.episode(generator, self.window) for _ in range(batch_size)]
        return Batch(frames=np.stack([e[0] for e in eps]), actions=np.stack([e[1] for e in eps]))


def log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def args(kind: str, out: Path, steps: int, **kw) -> TrainArgs:
    base = dict(kind=kind, data=(), out=str(out), preset="tiny", steps=steps, batch_size=2, warmup=2,
                log_every=1, checkpoint_every=3, threads=1)
    return TrainArgs(**{**base, **kw})


@pytest.fixture(scope="module")
def autoencoder_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ae") / "run"
    train(args("autoencoder", run, 3), data=MovingSquares(1))
    return run


def test_autoencoder_run_writes_and_resumes(autoencoder_run):
    run = autoencoder_run
    assert (run / "ckpt-00000003" / "model.safetensors").is_file()
    assert log_steps(run) == [1, 2, 3]
    rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert {"step", "loss", "lr", "examples_per_s", "wall_time"} <= set(rec)
    cfg = json.loads((run / "ckpt-00000003" / "config.json").read_text())
    assert cfg["format"] == "genie-autoencoder" and "eval_psnr" in cfg["training"]
    trainer = Trainer(args("autoencoder", run, 6), data=MovingSquares(1))
    trainer.run()
    assert trainer.step == 6
    assert log_steps(run) == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-00000003", "ckpt-00000006"]


def test_dynamics_run_resumes_exactly_and_exports(autoencoder_run, tmp_path):
    data = MovingSquares(5)
    run = tmp_path / "dyn"
    straight = tmp_path / "straight"
    a = args("dynamics", run, 6, autoencoder=str(autoencoder_run), window=5)
    killed = Trainer(a, data=data)
    killed._should_stop = lambda: killed.step >= 3  # as if SIGTERM arrived during step 3
    killed.run()
    assert log_steps(run) == [1, 2, 3] and (run / "ckpt-00000003").is_dir()
    # simulate a kill after step 4's log line but before its checkpoint: the line must be dropped on resume
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "loss": 123.0}) + "\n")
    t = Trainer(a, data=data)
    t.run()
    assert t.step == 6 and log_steps(run) == [1, 2, 3, 4, 5, 6]
    assert 123.0 not in [json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines()]
    # resuming draws the same batches and noise as an uninterrupted run: same weights
    u = Trainer(args("dynamics", straight, 6, autoencoder=str(autoencoder_run), window=5), data=data)
    u.run()
    for p, q in zip(t.dyn.parameters(), u.dyn.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    # the run dir is a world-model checkpoint; export writes a compact copy
    wm = WorldModel.load(run)
    from world_model.train_cli import main

    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "export"), "--guidance", "1.0"]) == 0
    exported = WorldModel.load(tmp_path / "export")
    assert exported.config.sampler.guidance == 1.0
    state = exported.reset(data.sample_batch(2, np.random.default_rng(0)).frames[:, :2])
    frames, _ = exported.step(state, [1, 3], generator=torch.Generator().manual_seed(0))
    assert frames.shape == (2, H, H, 3)
    assert wm.config.dynamics == exported.config.dynamics and wm.config.autoencoder == exported.config.autoencoder
    # checkpoint averaging: the mean of the last K checkpoints' dynamics weights, named in the metadata
    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "avg"), "--average-last", "2",
                 "--dtype", "float32"]) == 0
    avg = WorldModel.load(tmp_path / "avg", autocast=False)
    last_two = [WorldModel.load(run / f"ckpt-0000000{i}", autocast=False).dynamics.state_dict() for i in (3, 6)]
    for k, v in avg.dynamics.state_dict().items():
        torch.testing.assert_close(v, (last_two[0][k] + last_two[1][k]) / 2)
    assert avg.training_metadata["averaged_checkpoints"] == ["ckpt-00000003", "ckpt-00000006"]
    with pytest.raises(CheckpointError, match="at least 99"):
        main(["export", "--dynamics", str(run), "--out", str(tmp_path / "x"), "--average-last", "99"])


def test_cli_on_recorded_shards(tmp_path):
    """genie-train autoencoder / dynamics on real shard folders (the pre-encoded latent cache path)."""
    from world_model.shards import Episode, ShardMeta, write_shard
    from world_model.train_cli import main

    from world_model.inference import ACTION_MEANINGS

    rng = np.random.default_rng(0)
    data = tmp_path / "rec"
    data.mkdir()
    episodes = []
    for i in range(4):
        frames, actions = MovingSquares(1).episode(rng, 12)
        actions[-1] = -1
        episodes.append(Episode(frames=frames, actions=actions.astype(np.int16), rewards=np.zeros(12, np.float32),
                                success=np.zeros(12, bool), split="train", view="first_person"))
    write_shard(data / "shard_000000.npz", episodes,
                ShardMeta(env_id="test/Squares-v0", frame_shape=(H, H, 3), action_meanings=ACTION_MEANINGS))
    common = ["--data", str(data), "--preset", "tiny", "--steps", "2", "--batch-size", "2", "--threads", "1"]
    assert main(["autoencoder", *common, "--out", str(tmp_path / "ae")]) == 0
    assert main(["dynamics", *common, "--autoencoder", str(tmp_path / "ae"), "--window", "5",
                 "--out", str(tmp_path / "dyn"), "--no-bf16"]) == 0
    assert (tmp_path / "dyn" / "latents.safetensors").is_file()
    assert log_steps(tmp_path / "dyn") == [2]
    assert isinstance(WorldModel.load(tmp_path / "dyn"), WorldModel)


def test_cli_requires_autoencoder_for_dynamics(tmp_path, capsys):
    from world_model.train_cli import main

    with pytest.raises(SystemExit):
        main(["dynamics", "--data", str(tmp_path), "--out", str(tmp_path / "x")])
    assert "--autoencoder" in capsys.readouterr().err
