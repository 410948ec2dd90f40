"""Training: a few steps write checkpoints and log.jsonl, resume after a stop, export, and the CLI end to end."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from world_model.checkpoint import CheckpointError
from world_model import WorldModel
from world_model.train_autoencoder import AutoencoderArgs
from world_model.train_dynamics import DynamicsArgs
from world_model.training import TrainArgs, train


def Trainer(args: TrainArgs, data=None):
    """The trainer of these arguments (AutoencoderTrainer or DynamicsTrainer)."""
    return args.trainer(data)

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
    base = dict(data=(), out=str(out), preset="tiny", steps=steps, batch_size=2, warmup=2,
                log_every=1, checkpoint_every=3, threads=1)
    return {"autoencoder": AutoencoderArgs, "dynamics": DynamicsArgs}[kind](**{**base, **kw})


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
    for p, q in zip(t.ema.parameters(), u.ema.parameters()):  # ... and the same EMA of the weights
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    # the checkpoint's model is the EMA; the trained weights ride along for resuming only
    saved = WorldModel.load(run, autocast=False).dynamics.state_dict()
    for k, v in t.ema.state_dict().items():
        torch.testing.assert_close(saved[k], v)
    assert any(not torch.equal(saved[k], v) for k, v in t.dyn.state_dict().items())
    assert json.loads((run / "ckpt-00000006" / "config.json").read_text())["training"]["ema_decay"] == 0.998
    # the run dir is a world-model checkpoint; export writes a compact copy
    wm = WorldModel.load(run)
    from world_model.train_cli import main

    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "export"), "--guidance", "1.0",
                 "--context-sigma", "0.05"]) == 0
    exported = WorldModel.load(tmp_path / "export")
    assert exported.config.sampler.guidance == 1.0
    assert exported.config.diffusion.context_sigma == 0.05 and wm.config.diffusion.context_sigma == 0.1
    assert exported.training_metadata["trained_context_sigma"] == 0.1
    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "sm"), "--sigma-min", "0.3",
                 "--num-steps", "3", "--guidance-min-sigma", "1.0", "--rho", "3", "--sigma-max", "8"]) == 0
    sm = WorldModel.load(tmp_path / "sm").config.sampler
    assert (sm.sigma_min, sm.num_steps, sm.guidance_min_sigma, sm.rho, sm.sigma_max) == (0.3, 3, 1.0, 3.0, 8.0)
    for bad in (["--sigma-min", "9"], ["--rho", "0"], ["--sigma-max", "0.2", "--sigma-min", "0.3"]):
        assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "bad"), *bad]) == 2
        assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="context_sigma"):
        wm.with_sampler(context_sigma=0.0)
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
    # blending a fine-tune with the checkpoint it started from (WiSE-FT): (1 - W) x its weights + W x the other's
    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "blend"), "--blend-with",
                 str(run / "ckpt-00000003"), "--blend-weight", "0.25", "--dtype", "float32"]) == 0
    blend = WorldModel.load(tmp_path / "blend", autocast=False)
    for k, v in blend.dynamics.state_dict().items():
        torch.testing.assert_close(v, 0.75 * last_two[1][k] + 0.25 * last_two[0][k])
    assert blend.training_metadata["blended_with"] == {"path": str(run / "ckpt-00000003"), "weight": 0.25,
                                                       "step": 3}
    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "bad"), "--blend-with",
                 str(run / "ckpt-00000003"), "--blend-weight", "1.5"]) == 2
    assert not (tmp_path / "bad").exists()
    other = tmp_path / "other_ae"  # the same layout over another autoencoder's weights: refused
    wm.save(other, dtype=torch.float32)
    ae = WorldModel.load(other, autocast=False)
    with torch.no_grad():
        next(ae.autoencoder.parameters()).add_(1.0)
    ae.save(other, dtype=torch.float32)
    with pytest.raises(CheckpointError, match="another autoencoder"):
        main(["export", "--dynamics", str(run), "--out", str(tmp_path / "x"), "--blend-with", str(other)])


def test_cli_on_recorded_shards(tmp_path):
    """genie-train autoencoder / dynamics on real shard folders (the pre-encoded latent cache path)."""
    from world_model.shards import Episode, ShardMeta, write_shard
    from world_model.train_cli import main

    ACTION_MEANINGS = ("stay", "up", "down", "left", "right", "jump")  # as the recordings name them

    rng = np.random.default_rng(0)
    data = tmp_path / "rec"
    data.mkdir()
    episodes = []
    for i in range(4):
        frames, actions = MovingSquares(1).episode(rng, 12)
        actions = actions % len(ACTION_MEANINGS)
        actions[-1] = -1
        episodes.append(Episode(frames=frames, actions=actions.astype(np.int16), rewards=np.zeros(12, np.float32),
                                success=np.zeros(12, bool), split="train", view="first_person"))
    write_shard(data / "shard_000000.npz", episodes,
                ShardMeta(env_id="test/Squares-v0", frame_shape=(H, H, 3), action_meanings=ACTION_MEANINGS))
    common = ["--data", str(data), "--preset", "tiny", "--steps", "2", "--batch-size", "2", "--threads", "1"]
    assert main(["autoencoder", *common, "--out", str(tmp_path / "ae")]) == 0
    assert main(["dynamics", *common, "--autoencoder", str(tmp_path / "ae"), "--window", "5",
                 "--out", str(tmp_path / "dyn")]) == 0
    assert (tmp_path / "dyn" / "latents.safetensors").is_file()
    assert log_steps(tmp_path / "dyn") == [2]
    wm = WorldModel.load(tmp_path / "dyn")
    assert wm.action_meanings == ACTION_MEANINGS and wm.num_actions == 6  # the action set comes from the shards
    # the objective ablation end to end (experiments/objective.py): two runs sharing the latent cache, one report
    from experiments.objective import main as objective_main
    from experiments.report import render

    out = tmp_path / "results" / "objective.json"
    r = objective_main(["--data", str(data), "--autoencoder", str(tmp_path / "ae"), "--preset", "tiny", "--steps",
                        "2", "--batch-size", "2", "--warmup", "1", "--episodes", "1", "--horizon", "4", "--views",
                        "first_person", "--threads", "1", "--reuse-latents", str(tmp_path / "dyn" / "latents.safetensors"),
                        "--runs", str(tmp_path / "abl"), "--out", str(out)])
    assert set(r["runs"]) == {"forcing", "augment"} and "ahead by" in r["verdict"]
    for obj in ("forcing", "augment"):
        assert (tmp_path / "abl" / f"{obj}-s0" / "latents.safetensors").stat().st_ino == \
            (tmp_path / "dyn" / "latents.safetensors").stat().st_ino  # shared, not re-encoded
        cfg = json.loads((tmp_path / "abl" / f"{obj}-s0" / "ckpt-00000002" / "config.json").read_text())
        assert cfg["diffusion"]["objective"] == obj
        assert len(r["runs"][obj]["views"]["first_person"]["psnr_curve"]) == 4
    assert (out.parent / "objective.png").is_file()
    assert "Diffusion Forcing vs noise augmentation" in render(out.parent)


def test_pad_weight_is_a_setting_of_padding(tmp_path):
    with pytest.raises(ValueError, match="add --pad-short-episodes"):
        args("dynamics", tmp_path / "p", 1, autoencoder="ae", pad_weight=4.0)
    with pytest.raises(ValueError, match="must be > 0"):
        args("dynamics", tmp_path / "p", 1, autoencoder="ae", pad_short_episodes=True, pad_weight=0.0)
    assert args("dynamics", tmp_path / "p", 1, autoencoder="ae", pad_short_episodes=True, pad_weight=4.0).pad_weight == 4.0
    with pytest.raises(ValueError, match="add --pad-short-episodes"):
        args("dynamics", tmp_path / "p", 1, autoencoder="ae", pad_at="end")
    with pytest.raises(ValueError, match="front, end"):
        args("dynamics", tmp_path / "p", 1, autoencoder="ae", pad_short_episodes=True, pad_at="middle")
    with pytest.raises(ValueError, match="add --pad-short-episodes"):
        args("dynamics", tmp_path / "p", 1, autoencoder="ae", pad_views=("first_person",))


def test_pad_views_reach_the_training_windows(tmp_path):
    """--pad-short-episodes --pad-views first_person: only first-person short episodes get a padded window."""
    from world_model.shards import Episode, ShardMeta, shard_name, write_shard
    from world_model.training import open_windows

    meta = ShardMeta(env_id="test/Fake-v0", frame_shape=(4, 4, 3), action_meanings=("noop", "forward"))
    eps = [Episode(frames=np.zeros((n, 4, 4, 3), np.uint8), actions=np.append(np.ones(n - 1), -1).astype(np.int16),
                   rewards=np.zeros(n, np.float32), success=np.zeros(n, bool), mission="m", level_seed=i,
                   policy="bot", view=v, split="train")
           for i, (n, v) in enumerate([(9, "first_person"), (3, "first_person"), (4, "top_down")])]
    write_shard(tmp_path / shard_name(0), eps, meta)
    a = args("dynamics", tmp_path / "p", 1, autoencoder="ae", data=(str(tmp_path),), pad_short_episodes=True,
             pad_views=("first_person",))
    windows = open_windows(a, window=6, pad_noop=True, pad_views=a.pad_views)
    assert windows.num_padded_episodes == 1 and windows.num_short_episodes == 1
    assert windows.window_episode[windows.window_padded].tolist() == [1]


def test_cli_requires_autoencoder_for_dynamics(tmp_path, capsys):
    from world_model.train_cli import main

    with pytest.raises(SystemExit):
        main(["dynamics", "--data", str(tmp_path), "--out", str(tmp_path / "x")])
    assert "--autoencoder" in capsys.readouterr().err


def test_ema_starts_from_a_checkpoint_without_one(autoencoder_run, tmp_path):
    """A run trained without an EMA and resumed with one starts the EMA from its weights; a resume with another
    objective is refused."""
    data, run = MovingSquares(5), tmp_path / "dyn"
    plain = Trainer(args("dynamics", run, 8, autoencoder=str(autoencoder_run), window=5, ema_decay=0.0, stop_at=3,
                         bf16=False), data=data)
    plain.run()
    assert plain.ema is None and plain.step == 3 and (run / "ckpt-00000003").is_dir()  # stop_at keeps the schedule
    lrs = [json.loads(x)["lr"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert lrs == [plain.args.lr_at(i) for i in range(3)] and plain.args.lr_at(2) > plain.args.lr_at(7)
    cont = Trainer(args("dynamics", run, 8, autoencoder=str(autoencoder_run), window=5, ema_decay=0.5, stop_at=4,
                        bf16=False), data=data)
    assert cont.resume()
    for p, q in zip(cont.ema.parameters(), plain.dyn.parameters()):
        torch.testing.assert_close(p, q)
    cont.run()
    w3 = {k: v.clone() for k, v in plain.dyn.state_dict().items()}
    for k, v in cont.ema.state_dict().items():  # one update after step 4 (decay min(0.5, 5/14)): a mix of both
        torch.testing.assert_close(v, w3[k] + (cont.dyn.state_dict()[k] - w3[k]) * (1 - 5 / 14), atol=1e-6, rtol=1e-5)
    with pytest.raises(CheckpointError, match="--objective forcing"):
        Trainer(args("dynamics", run, 8, autoencoder=str(autoencoder_run), window=5, objective="augment"),
                data=data).resume()


def test_augment_objective_trains_only_the_last_frame(autoencoder_run, tmp_path):
    """GameNGen-style noise augmentation: the loss is a function of the last frame's target alone, and the
    context frames are noised below augment_sigma_max."""
    from world_model.diffusion import Denoiser, DiffusionConfig
    from world_model.dynamics import PRESETS, Dynamics

    torch.manual_seed(0)
    dyn = Dynamics(PRESETS["tiny"])
    y = torch.randn(2, 4, 4, 16, 16)
    actions = torch.randint(0, 7, (2, 4))
    seen = {}

    def zero_net(x_in, c_noise, *a, **kw):  # F = 0: the loss is then the mean of the chosen frames' target^2
        seen["x_in"], seen["sigma"] = x_in, (4 * c_noise).exp()
        return torch.zeros_like(x_in)

    dyn.forward = zero_net
    for objective in ("augment", "forcing"):
        den = Denoiser(DiffusionConfig(objective=objective), dyn)
        loss = den.loss(y, actions, torch.Generator().manual_seed(0))
        sigma = seen["sigma"]
        cs = den.compute_conditioners(sigma)
        c_skip, c_out, c_in = (c[..., None, None, None] for c in (cs.c_skip, cs.c_out, cs.c_in))
        target = (y - c_skip * seen["x_in"] / c_in) / c_out
        per_frame = target.pow(2).mean(dim=(2, 3, 4))  # (B, T)
        if objective == "augment":
            assert (sigma[:, :-1] <= 0.7 + 1e-5).all() and (sigma[:, :-1] >= 0.01 - 1e-6).all()
            torch.testing.assert_close(loss, per_frame[:, -1].mean())
        else:  # context frames sit exactly at context_sigma and carry no loss
            ctx = (sigma - 0.1).abs() < 1e-6
            torch.testing.assert_close(loss, per_frame[~ctx].mean())
    with pytest.raises(ValueError, match="objective"):
        DiffusionConfig(objective="bogus")
    # the CLI exposes the choice and the small preset for dynamics
    from world_model.train_cli import build_parser

    ns = build_parser().parse_args(["dynamics", "--data", "x", "--out", "y", "--autoencoder", "z",
                                    "--objective", "augment", "--preset", "small", "--ema-decay", "0.99",
                                    "--change-weight", "0.5"])
    assert ns.objective == "augment" and ns.preset == "small" and ns.ema_decay == 0.99 and ns.change_weight == 0.5
    with pytest.raises(ValueError, match="preset"):
        AutoencoderArgs(data=(), out="x", preset="small")


def test_context_sigma_range_draws_context_levels_log_uniformly():
    """With context_sigma_min, context frames get levels in [min, max] (embedded, no loss) instead of one level."""
    from world_model.diffusion import Denoiser, DiffusionConfig
    from world_model.dynamics import PRESETS, Dynamics

    dyn = Dynamics(PRESETS["tiny"])
    seen = {}

    def zero_net(x_in, c_noise, *a, **kw):
        seen["sigma"] = (4 * c_noise).exp()
        return torch.zeros_like(x_in)

    dyn.forward = zero_net
    den = Denoiser(DiffusionConfig(context_sigma=0.1, context_sigma_min=0.01), dyn)
    levels = den.sample_context_sigma((20000,), torch.Generator().manual_seed(0), "cpu")
    assert levels.min() >= 0.01 - 1e-7 and levels.max() <= 0.1 + 1e-7
    # log-uniform: the median is the geometric mean of the ends, and each decade half is equally likely
    assert abs(float(levels.median()) - 0.1 ** 0.5 * 0.01 ** 0.5) < 2e-3
    y, actions = torch.randn(64, 6, 4, 16, 16), torch.randint(0, 7, (64, 6))
    den.loss(y, actions, torch.Generator().manual_seed(0))
    in_range = (seen["sigma"] >= 0.01 - 1e-6) & (seen["sigma"] <= 0.1 + 1e-6)
    assert 0.4 < in_range.float().mean() < 0.75  # context_prob 0.5 of the frames, plus the noised ones that land there
    assert len(torch.unique(seen["sigma"][in_range])) > 10  # not one fixed level
    for bad in (0.0, 0.1, 0.2):
        with pytest.raises(ValueError, match="context_sigma_min"):
            DiffusionConfig(context_sigma=0.1, context_sigma_min=bad)


def test_change_weights_favour_what_the_action_changed():
    """change_weight: positions that change from the previous frame weigh more (capped), the rest and the first frame
    of a window 1 / (1 + lambda); 0 keeps the uniform loss; the loss moves towards the changed positions' error."""
    from world_model.diffusion import Denoiser, DiffusionConfig
    from world_model.dynamics import PRESETS, Dynamics

    y = torch.zeros(2, 3, 4, 16, 16)
    y[:, 1, :, 5, 7] = 1.0  # one position changes at frame 1, and changes back at frame 2
    y[1, 2, :, 0, 0] = 0.1  # and a small change elsewhere
    den = Denoiser(DiffusionConfig(change_weight=2.0, change_cap=10.0), Dynamics(PRESETS["tiny"]))
    w = den.change_weights(y)[:, :, 0]  # (B, T, h, w)
    change = torch.zeros(2, 3, 16, 16)
    change[:, 1:] = (y[:, 1:] - y[:, :-1]).pow(2).mean(2)
    m = (change / change.mean()).clamp(max=10.0)
    torch.testing.assert_close(w, (1 + 2 * m) / 3)
    assert float(w[:, 0].max()) == pytest.approx(1 / 3)  # first frame: no predecessor
    assert float(w[0, 1, 5, 7]) == pytest.approx((1 + 2 * 10) / 3)  # capped at change_cap
    assert float(w[0, 1, 0, 0]) == pytest.approx(1 / 3) and float(w[1, 2, 0, 0]) > 1 / 3
    # "window": every frame of a window weighs a position by its largest change in the window (the first frame too)
    win = Denoiser(DiffusionConfig(change_weight=2.0, change_scope="window"), Dynamics(PRESETS["tiny"]))
    ww = win.change_weights(y)[:, :, 0]
    torch.testing.assert_close(ww, ((1 + 2 * m) / 3).amax(dim=1, keepdim=True).expand_as(ww))
    assert float(ww[0, 0, 5, 7]) == pytest.approx((1 + 2 * 10) / 3) and float(ww[0, 2, 0, 0]) == pytest.approx(1 / 3)
    # a change next to padding (frame_valid False) is no change
    valid = torch.tensor([[False, True, True], [True, True, True]])
    wv = den.change_weights(y, valid)[:, :, 0]
    assert float(wv[0, 1, 5, 7]) == pytest.approx(1 / 3) and float(wv[1, 1, 5, 7]) > 1
    with pytest.raises(ValueError, match="change_scope"):
        DiffusionConfig(change_scope="episode")
    # change_norm "window": each window's change against its own mean, so a window that changes little (window 1's
    # extra change is 100x smaller) weighs its changed positions as a window that changes a lot
    y2 = y.clone()
    y2[1] *= 0.1
    per = Denoiser(DiffusionConfig(change_weight=2.0, change_norm="window"), Dynamics(PRESETS["tiny"]))
    wp = per.change_weights(y2)[:, :, 0]
    torch.testing.assert_close(wp[1], per.change_weights(y)[:, :, 0][1])  # scale-free per window
    assert float(den.change_weights(y2)[:, :, 0][1].max()) < float(wp[1].max())  # "batch": the small one loses
    with pytest.raises(ValueError, match="change_norm"):
        DiffusionConfig(change_norm="episode")
    # "past": frame t weighs a position by its largest change in transitions 1..t-1 over their mean, never by its own
    y3 = torch.zeros(2, 4, 4, 16, 16)
    y3[:, 1, :, 5, 7] = 1.0  # transition 1 moves (5, 7); transition 2 moves it back
    y3[:, 3, :, 2, 2] = 1.0  # transition 3 (frame 3's own) moves (2, 2)
    for norm in ("batch", "window"):
        past = Denoiser(DiffusionConfig(change_weight=2.0, change_scope="past", change_norm=norm),
                        Dynamics(PRESETS["tiny"]))
        wpast = past.change_weights(y3)[:, :, 0]
        assert float(wpast[:, :2].max()) == pytest.approx(1 / 3)  # frames 0 and 1: nothing before them
        change1 = torch.zeros(16, 16)
        change1[5, 7] = 1.0
        m2 = (change1 / change1.mean()).clamp(max=10.0)  # frame 2 sees transition 1 alone
        torch.testing.assert_close(wpast[:, 2], ((1 + 2 * m2) / 3).expand(2, 16, 16))
        assert float(wpast[0, 3, 5, 7]) > 1 and float(wpast[0, 3, 2, 2]) == pytest.approx(1 / 3)  # not its own
    torch.testing.assert_close(past.change_weights(y3[:, :3])[:, :, 0], wpast[:, :3])  # later frames change nothing
    y4 = y3.clone()
    y4[:, 3] = torch.randn(2, 4, 16, 16)  # nor does the frame weighed itself
    torch.testing.assert_close(past.change_weights(y4)[:, :, 0], wpast)
    valid3 = torch.tensor([[False, True, True, True], [True, True, True, True]])  # row 0: transition 1 is padding
    wvp = past.change_weights(y3, valid3)[:, :, 0]
    assert float(wvp[0, 2].max()) == pytest.approx(1 / 3) and float(wvp[1, 2, 5, 7]) > 1
    from world_model.train_dynamics import DynamicsArgs  # the trainer passes the weight's knobs on, the cap too

    knobs = DynamicsArgs(data=("d",), out="o", autoencoder="a", change_weight=4.0, change_cap=2.0,
                         change_scope="window", change_norm="window").diffusion_config
    assert DynamicsArgs(data=("d",), out="o", autoencoder="a", change_scope="past").diffusion_config.change_scope \
        == "past"
    assert DynamicsArgs(data=("d",), out="o", autoencoder="a", p_mean=0.29).diffusion_config.p_mean == 0.29
    assert DynamicsArgs(data=("d",), out="o", autoencoder="a").diffusion_config.p_mean == DiffusionConfig().p_mean
    assert (knobs.change_weight, knobs.change_cap, knobs.change_scope, knobs.change_norm) == (4.0, 2.0, "window",
                                                                                             "window")

    class Exact(torch.nn.Module):  # the exact F-space target, plus an error of 1 at one latent position
        config = PRESETS["tiny"]

        def __init__(self, pos):
            super().__init__()
            self.pos = pos

        def forward(self, x_in, c_noise, *a, **kw):
            sigma = (4 * c_noise).exp()[..., None, None, None]
            x = x_in * (sigma**2 + 1).sqrt()
            out = (y - x / (sigma**2 + 1)) / (sigma / (sigma**2 + 1).sqrt())  # (y - c_skip x) / c_out
            out[:, :, :, self.pos[0], self.pos[1]] += 1.0
            return out

    def loss(cw, pos):
        den = Denoiser(DiffusionConfig(change_weight=cw, context_prob=0.0, null_action_prob=0.0), Exact(pos))
        return float(den.loss(y, torch.zeros(2, 3, dtype=torch.long), torch.Generator().manual_seed(0)))

    # uniform weights: an error costs the same anywhere; change weights: more where the frame changed
    assert loss(0.0, (5, 7)) == pytest.approx(loss(0.0, (9, 9)), rel=1e-4)
    assert loss(2.0, (5, 7)) > 5 * loss(2.0, (9, 9))
    for bad in ({"change_weight": -1.0}, {"change_cap": 0.0}):
        with pytest.raises(ValueError, match="change_weight"):
            DiffusionConfig(**bad)


def test_init_from_a_world_model_checkpoint(autoencoder_run, tmp_path):
    """--init-from starts a new run from an exported model's dynamics weights (checked: architecture and latents),
    records it in the checkpoints, and a resume with another context noise level is refused."""
    data = MovingSquares(5)
    base = tmp_path / "base"
    train(args("dynamics", base, 2, autoencoder=str(autoencoder_run), window=5), data=data)
    from world_model.train_cli import main

    assert main(["export", "--dynamics", str(base), "--out", str(tmp_path / "exported")]) == 0
    exported = WorldModel.load(tmp_path / "exported", autocast=False)
    run = tmp_path / "fine"
    a = args("dynamics", run, 4, autoencoder=str(tmp_path / "exported"), window=5, init_from=str(tmp_path / "exported"),
             context_sigma=0.05, context_sigma_min=0.01, change_weight=1.0, stop_at=1)
    t = Trainer(a, data=data)
    for k, v in exported.dynamics.state_dict().items():  # starts from the checkpoint's weights, EMA included
        torch.testing.assert_close(t.dyn.state_dict()[k], v)
        torch.testing.assert_close(t.ema.state_dict()[k], v)
    t.run()
    cfg = json.loads((run / "ckpt-00000001" / "config.json").read_text())
    assert cfg["training"]["init_from"] == {"path": str(tmp_path / "exported"), "step": 2}
    assert cfg["diffusion"]["context_sigma"] == 0.05 and cfg["diffusion"]["context_sigma_min"] == 0.01
    assert cfg["diffusion"]["change_weight"] == 1.0
    resumed = Trainer(replace_args(a, stop_at=2), data=data)
    resumed.run()
    cfg = json.loads((run / "ckpt-00000002" / "config.json").read_text())
    assert resumed.step == 2 and cfg["training"]["init_from"]["step"] == 2
    with pytest.raises(CheckpointError, match="context_sigma=0.05"):
        Trainer(replace_args(a, context_sigma=0.1), data=data).resume()
    with pytest.raises(CheckpointError, match="change_weight=1.0"):
        Trainer(replace_args(a, change_weight=0.0), data=data).resume()
    # export from a range-trained run: the sampling level is chosen, the trained range kept in the metadata
    assert main(["export", "--dynamics", str(run), "--out", str(tmp_path / "cs"), "--context-sigma", "0.02"]) == 0
    cs = WorldModel.load(tmp_path / "cs")
    assert cs.config.diffusion.context_sigma == 0.02 and cs.config.diffusion.context_sigma_min is None
    assert cs.training_metadata["trained_context_sigma"] == [0.01, 0.05]
    # wrong architecture or another autoencoder's latents: a clear error before any training
    with pytest.raises(CheckpointError, match="pick the preset"):
        Trainer(args("dynamics", tmp_path / "x", 2, autoencoder=str(autoencoder_run), window=5, preset="small",
                     init_from=str(tmp_path / "exported")), data=data)
    other_ae = tmp_path / "other_ae"
    train(args("autoencoder", other_ae, 2, seed=1), data=MovingSquares(1))
    with pytest.raises(CheckpointError, match="another autoencoder"):
        Trainer(args("dynamics", tmp_path / "y", 2, autoencoder=str(other_ae), window=5,
                     init_from=str(tmp_path / "exported")), data=data)
    with pytest.raises(ValueError, match="context_sigma_min"):
        args("dynamics", tmp_path / "z", 2, autoencoder="a", context_sigma=0.05, context_sigma_min=0.05)


def replace_args(a: TrainArgs, **kw) -> TrainArgs:
    from dataclasses import replace

    return replace(a, **kw)


def test_cli_flags_are_the_fields_of_the_args_dataclasses():
    """genie-train KIND has one flag per field of its arguments dataclass, parsed back into it."""
    import dataclasses

    from world_model.cli_arguments import from_namespace
    from world_model.train_cli import build_parser

    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for kind, cls in (("autoencoder", AutoencoderArgs), ("dynamics", DynamicsArgs)):
        flags = {a.dest for a in subcommands[kind]._actions} - {"help"}
        assert flags == {f.name for f in dataclasses.fields(cls)}
    ns = parser.parse_args(["dynamics", "--data", "a", "b", "--out", "o", "--autoencoder", "ae", "--split", "all",
                            "--no-bf16", "--context-sigma-min", "0.01"])
    a = from_namespace(DynamicsArgs, ns)
    assert a.data == ("a", "b") and a.split is None and a.bf16 is False and a.batch_size == 8
    bare = from_namespace(DynamicsArgs, parser.parse_args(["dynamics", "--data", "a", "--out", "o", "--autoencoder",
                                                           "ae"]))
    assert bare.bf16 is None  # resolved by the trainer: bf16 where the device runs it natively (world_model.hardware)
    assert a.diffusion_config.context_sigma_min == 0.01  # a knob named like a DiffusionConfig field sets it


def test_attention_layout_and_patch_size_override_the_preset(autoencoder_run, tmp_path):
    import dataclasses

    data = MovingSquares(3)
    run = tmp_path / "st"
    t = Trainer(args("dynamics", run, 1, autoencoder=str(autoencoder_run), window=4, attention="factorised",
                     patch_size=4), data=data)
    t.run()
    cfg = WorldModel.load(run, autocast=False).config.dynamics
    assert (cfg.attention, cfg.patch_size) == ("factorised", 4)
    # the FLOPs estimate counts the pairs the factorised attention scores, not every token pair of the window
    T, N = 4, cfg.tokens_per_frame
    factorised = t.flops_per_example()
    t.dyn.config = dataclasses.replace(cfg, attention="frame_causal")
    assert t.flops_per_example() - factorised == 12 * cfg.depth * cfg.width * ((T * N) ** 2 - T * N * N - N * T * T)
    # resuming with another layout is refused, as any other change of the model
    with pytest.raises(Exception, match="attention"):
        Trainer(args("dynamics", run, 2, autoencoder=str(autoencoder_run), window=4, patch_size=4), data=data).run()


def test_context_frames_override_the_preset_and_set_the_default_window(autoencoder_run, tmp_path):
    with pytest.raises(ValueError, match="--context-frames must be >= 1"):
        args("dynamics", tmp_path / "c0", 1, autoencoder="ae", context_frames=0)
    data = MovingSquares(3)
    run = tmp_path / "ctx"
    t = Trainer(args("dynamics", run, 1, autoencoder=str(autoencoder_run), context_frames=3), data=data)
    assert t.window == 4  # context + the target frame
    t.run()
    assert WorldModel.load(run, autocast=False).config.dynamics.context_frames == 3


@pytest.mark.parametrize("env, expected", [("1", 1), ("3", 3), (None, "cores"), ("zero", "cores"), ("0", "cores")])
def test_threads_follow_omp_num_threads(tmp_path, monkeypatch, env, expected):
    """Without --threads a CPU run takes OMP_NUM_THREADS when it is a positive int, else all cores."""
    import os

    from world_model.training import setup_runtime

    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    before = torch.get_num_threads()
    try:
        setup_runtime(args("autoencoder", tmp_path, 1, threads=None, device="cpu"))
        assert torch.get_num_threads() == (os.cpu_count() if expected == "cores" else expected)
        setup_runtime(args("autoencoder", tmp_path, 1, threads=2, device="cpu"))  # --threads wins
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
