"""The GPU runner (world_model/recipes/gpu_run.sh) on the CPU with the tiny preset, and the training-loop parts it
relies on: the wall-clock budget and its lr schedule, throughput in the log, the FLOPs estimate, the OUT files."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from world_model import WorldModel
from world_model.dynamics import PRESETS
from world_model.train_autoencoder import AutoencoderArgs
from world_model.train_dynamics import DynamicsArgs
from world_model.training import train, transformer_flops

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "world_model" / "recipes" / "gpu_run.sh"


def load_runner_module():
    spec = importlib.util.spec_from_file_location("gpu_run", REPO / "world_model" / "recipes" / "gpu_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Batch:
    frames: np.ndarray  # (B, T, H, W, 3) uint8
    actions: np.ndarray  # (B, T) int64


class NoiseWindows:
    """Random 64x64 frames and actions, the interface of WindowDataset.sample_batch."""

    def __init__(self, window: int):
        self.window = window

    def sample_batch(self, batch_size: int, generator: np.random.Generator) -> Batch:
        frames = generator.integers(0, 256, (batch_size, self.window, 64, 64, 3), dtype=np.uint8)
        return Batch(frames=frames, actions=generator.integers(0, 7, (batch_size, self.window)))


def dyn_args(out: Path, ae: Path, **kw) -> DynamicsArgs:
    base = dict(data=(), out=str(out), autoencoder=str(ae), preset="tiny", steps=4, batch_size=2, warmup=2,
                log_every=1, checkpoint_every=1000, threads=1, window=3, ema_decay=0.0)
    return DynamicsArgs(**{**base, **kw})


@pytest.fixture(scope="module")
def autoencoder_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ae") / "run"
    train(AutoencoderArgs(data=(), out=str(run), preset="tiny", steps=1, batch_size=2, warmup=1, threads=1),
          data=NoiseWindows(1))
    return run


# ---------------------------------------------------------------------------------------------- training loop


def test_lr_schedule_follows_the_larger_of_step_and_time_progress():
    a = dyn_args(Path("unused"), Path("unused"), steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    assert a.lr_at(50) == a.lr_at(50, time_progress=0.0)  # no budget: the schedule in steps, as before
    assert a.lr_at(5, time_progress=0.9) == a.lr_at(5)  # warm-up is in steps
    assert a.lr_at(10, time_progress=1.0) == pytest.approx(1e-4)  # time spent: the cosine's end
    assert a.lr_at(10, time_progress=0.5) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert a.lr_at(100, time_progress=0.2) == pytest.approx(1e-4)  # steps spent: the end too
    with pytest.raises(ValueError, match="time_budget_minutes"):
        dyn_args(Path("unused"), Path("unused"), time_budget_minutes=0)


def test_time_budget_stops_with_a_checkpoint_and_logs_throughput(autoencoder_run, tmp_path):
    run = tmp_path / "dyn"
    # a budget spent before the first step: the run still takes one step and checkpoints it
    t = dyn_args(run, autoencoder_run, steps=10**6, warmup=0, time_budget_minutes=1e-5).trainer(NoiseWindows(3))
    t.run()
    assert 1 <= t.step < 10**6
    ckpts = sorted(run.glob("ckpt-*"))
    assert ckpts and ckpts[-1].name == f"ckpt-{t.step:08d}"
    rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    tokens = 3 * PRESETS["tiny"].tokens_per_frame
    assert rec["tokens_per_s"] == pytest.approx(rec["examples_per_s"] * tokens)
    assert rec["tflops"] == pytest.approx(rec["examples_per_s"] * t.flops_per_example() / 1e12)
    # the schedule's time progress is saved and continued: a resumed run starts at the cosine's end
    resumed = dyn_args(run, autoencoder_run, steps=10**6, warmup=0, time_budget_minutes=1e-5).trainer(
        NoiseWindows(3))
    resumed.resume()
    assert resumed.schedule_progress == pytest.approx(1.0)
    assert resumed.args.lr_at(resumed.step, resumed.time_progress()) == pytest.approx(
        resumed.args.lr * resumed.args.min_lr_ratio)


def test_no_budget_keeps_the_step_schedule(autoencoder_run, tmp_path):
    t = dyn_args(tmp_path / "dyn", autoencoder_run, steps=3).trainer(NoiseWindows(3))
    t.run()
    assert t.step == 3 and t.time_progress() == 0.0
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "dyn" / "log.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([t.args.lr_at(s) for s in range(3)])


def test_flops_estimate_counts_token_and_frame_layers():
    assert transformer_flops(10, 4, layers=2, width=8) == 6 * 10 * 4 + 12 * 2 * 16 * 8
    assert transformer_flops(10, 4, 2, 8, frame_params=5, frames=2) == 6 * (40 + 10) + 12 * 2 * 16 * 8


def test_dynamics_flops_per_window_of_the_default_preset(autoencoder_run, tmp_path):
    """Default preset: width 256, depth 6, 64 tokens a frame, 17-frame windows (1088 tokens): about 53 GFLOP."""
    t = dyn_args(tmp_path / "dyn", autoencoder_run, preset="default", window=None).trainer(NoiseWindows(17))
    cfg = PRESETS["default"]
    D, L = cfg.width, 17 * cfg.tokens_per_frame
    assert t.tokens_per_example() == L
    per_token = cfg.depth * 12 * D * D + t.dyn.patch_in.weight.numel() + t.dyn.patch_out.weight.numel()
    per_frame = sum(m.weight.numel() for n, m in t.dyn.named_modules()
                    if isinstance(m, torch.nn.Linear) and ("ada" in n or "noise_emb" in n))
    expected = 6 * (per_token * L + per_frame * 17) + 12 * cfg.depth * L * L * D
    assert t.flops_per_example() == pytest.approx(expected)
    assert 45e9 < t.flops_per_example() < 60e9


# ---------------------------------------------------------------------------------------------- OUT files


def test_publish_splits_large_files_and_join_restores_them(tmp_path):
    gpu_run = load_runner_module()
    src = tmp_path / "export"
    src.mkdir()
    blob = os.urandom(2500)
    (src / "model.safetensors").write_bytes(blob)
    (src / "config.json").write_text("{}")
    out = tmp_path / "out" / "model"
    names = gpu_run.publish(src, out, max_bytes=1000)
    assert names == ["model.safetensors.part0", "model.safetensors.part1", "model.safetensors.part2", "config.json"]
    assert all((out / n).stat().st_size <= 1000 for n in names)
    # a later, smaller export replaces the parts with one file
    (src / "model.safetensors").write_bytes(blob[:900])
    assert gpu_run.publish(src, out, max_bytes=1000) == ["model.safetensors", "config.json"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    (src / "model.safetensors").write_bytes(blob)
    gpu_run.publish(src, out, max_bytes=1000)
    assert not (out / "model.safetensors").exists()
    assert gpu_run.join(out) == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == blob
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]


# ---------------------------------------------------------------------------------------------- the runner


def run_runner(out: Path, minutes: float, work: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable, "PRESET": "tiny", "WORK": str(work),
                   "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1",
                   "TRAIN_ARGS": "--lr 1e-3 --warmup 5 --log-every 2", **env}
    return subprocess.run(["bash", str(RUNNER), str(out), str(minutes)], env=environment, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def check_out(out: Path, res: subprocess.CompletedProcess) -> dict:
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(p.stat().st_size < 16 * 2**20 for p in files), files
    wm = WorldModel.load(out / "model")  # loadable, whole
    assert wm.config.dynamics.width == PRESETS["tiny"].width
    shipped = json.loads((Path(__file__).parents[1] / "world_model/checkpoints/default/config.json").read_text())
    # EXPORT_ARGS: the shipped sampler, the cache refresh scaled to the tiny preset's 4-frame context
    assert wm.config.sampler.to_dict() == {**shipped["sampler"], "cache_refresh": 2}
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert rows and {"loss", "examples_per_s", "tokens_per_s", "tflops"} <= set(rows[-1])
    log = (out / "runner.log").read_text()
    assert "torch" in log and "throughput" in log and "held-out PSNR" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["train_frames"] > 0 and summary["steps"] >= 1
    assert summary["machine"]["cores_usable"] >= 1 and summary["train_run"]["preset"] == "tiny"  # for the model card
    return summary


def test_runner_on_the_cpu_leaves_a_loadable_checkpoint_and_log(tmp_path):
    """One recorder slot whose held-out recorder (asked for far more frames than it has time for) runs to the
    recording deadline: the slot's train recorder still starts and writes its one shard before training."""
    out = tmp_path / "out"
    res = run_runner(out, 1.0, tmp_path / "work", PROCS="1", LEVELS="GoToLocal", FRAMES_PER_PROC="150",
                     TEST_FRAMES="100000", RECORD_SHARE="0.3", FINAL_MARGIN_S="8", EXPORT_MINUTES="0.2")
    summary = check_out(out, res)
    assert summary["batch"] == 8  # the CPU default
    assert len(summary["data"]["train"]) == 1 and len(summary["data"]["test"]) == 1


def test_runner_widens_the_latent_then_fine_tunes_the_widened_model(tmp_path, tiny_world_model):
    """WIDEN_LATENT: the autoencoder widened and trained with its old channels kept, the model's dynamics widened to
    match (genie-train widen) and fine-tuned: the checkpoint that comes back reads and predicts the wider latent."""
    base = tmp_path / "base"
    wm = tiny_world_model(seed=0)
    wm.save(base)
    channels = wm.config.autoencoder.latent_channels + 2
    out = tmp_path / "out"
    res = run_runner(out, 1.2, tmp_path / "work", PROCS="1", LEVELS="GoToLocal", FRAMES_PER_PROC="150",
                     TEST_FRAMES="40", RECORD_SHARE="0.3", FINAL_MARGIN_S="8", EXPORT_MINUTES="0.2",
                     AUTOENCODER=str(base), INIT_FROM=str(base), WIDEN_LATENT=str(channels), WIDEN_MINUTES="0.1",
                     WIDEN_ARGS="--batch-size 4 --lr 1e-3 --warmup 2 --detail-weight 4 --log-every 2")
    summary = check_out(out, res)
    assert summary["widen"]["latent_channels"] == channels and summary["widen"]["old_channels_kept"]
    assert "eval_psnr" in summary["widen"]["autoencoder_eval"] and summary["phases_s"]["widen"] > 0
    got = WorldModel.load(out / "model")
    assert got.config.autoencoder.latent_channels == got.config.dynamics.latent_channels == channels
    assert summary["train_run"]["init_from"].endswith("widened")


def test_runner_trains_a_new_autoencoder_then_dynamics_from_scratch_on_it(tmp_path):
    """AE_PRESET: a new autoencoder of that preset trained on the recordings, then the dynamics from scratch on its
    latents (INIT_FROM defaults to empty): the fine preset's 32 x 32 latent read in 4 x 4 patches comes back."""
    out = tmp_path / "out"
    res = run_runner(out, 1.2, tmp_path / "work", PROCS="1", LEVELS="GoToLocal", FRAMES_PER_PROC="150",
                     TEST_FRAMES="40", RECORD_SHARE="0.3", FINAL_MARGIN_S="8", EXPORT_MINUTES="0.2",
                     AE_PRESET="fine", AE_MINUTES="0.1", AE_ARGS="--batch-size 4 --lr 1e-3 --warmup 2 --log-every 2",
                     TRAIN_ARGS="--lr 1e-3 --warmup 5 --log-every 2 --patch-size 4")
    summary = check_out(out, res)
    assert summary["fresh_autoencoder"]["preset"] == "fine" and summary["phases_s"]["autoencoder"] > 0
    assert "eval_psnr" in summary["fresh_autoencoder"]["autoencoder_eval"]
    got = WorldModel.load(out / "model")
    assert (got.config.autoencoder.latent_size, got.config.dynamics.patch_size) == (32, 4)
    assert not summary["train_run"].get("init_from")


def test_runner_transplants_a_model_onto_a_new_autoencoder(tmp_path, tiny_world_model):
    """AE_PRESET with INIT_FROM: the new autoencoder trained (and, AE_WHITEN, whitened in 4 x 4 patches), the model's
    dynamics moved onto its latent (genie-train transplant, fitted on the recordings) and fine-tuned from there."""
    base = tmp_path / "base"
    tiny_world_model(seed=0).save(base)
    out = tmp_path / "out"
    res = run_runner(out, 1.2, tmp_path / "work", PROCS="1", LEVELS="GoToLocal", FRAMES_PER_PROC="150",
                     TEST_FRAMES="40", RECORD_SHARE="0.3", FINAL_MARGIN_S="8", EXPORT_MINUTES="0.2",
                     AE_PRESET="fine", AE_MINUTES="0.1", AE_ARGS="--batch-size 4 --lr 1e-3 --warmup 2 --log-every 2",
                     AE_WHITEN="4", INIT_FROM=str(base), TRANSPLANT_ARGS="--prev-prior --prior-episodes 4",
                     TRAIN_ARGS="--lr 1e-3 --warmup 5 --log-every 2 --patch-size 4 --prev-prior")
    summary = check_out(out, res)
    fresh = summary["fresh_autoencoder"]
    assert fresh["transplanted_from"] == str(base) and 0 < fresh["transplant"]["explained_new_to_old"] <= 1
    assert fresh["whiten_patch"] == 4
    got = WorldModel.load(out / "model")
    assert (got.config.autoencoder.latent_size, got.config.dynamics.patch_size) == (32, 4)
    assert got.config.autoencoder.whiten_patch == 4  # the transplant and the training read the whitened latent
    prior = got.config.dynamics  # TRANSPLANT_ARGS: the prior fitted on the recordings, kept by the training
    assert prior.prev_prior and len(prior.prev_prior_gain) == prior.num_actions + 2
    assert fresh["transplant"]["prior_fit_transitions"] > 0
    assert summary["train_run"]["init_from"].endswith("transplanted")


def test_runner_refuses_a_new_autoencoder_with_a_widened_one(tmp_path):
    res = run_runner(tmp_path / "out", 1.0, tmp_path / "work", PROCS="1", LEVELS="GoToLocal", AE_PRESET="fine",
                     WIDEN_LATENT="8")
    assert res.returncode != 0 and "WIDEN_LATENT" in res.stdout + res.stderr
    res = run_runner(tmp_path / "out", 1.0, tmp_path / "work2", PROCS="1", LEVELS="GoToLocal", AE_WHITEN="4")
    assert res.returncode != 0 and "AE_PRESET" in res.stdout + res.stderr
    res = run_runner(tmp_path / "out", 1.0, tmp_path / "work3", PROCS="1", LEVELS="GoToLocal",
                     TRANSPLANT_ARGS="--prev-prior")
    assert res.returncode != 0 and "TRANSPLANT_ARGS" in res.stdout + res.stderr


def test_runner_refuses_init_from_in_the_train_args(tmp_path):
    res = run_runner(tmp_path / "out", 1.0, tmp_path / "work", PROCS="1", LEVELS="GoToLocal",
                     TRAIN_ARGS="--lr 1e-3 --init-from somewhere")
    assert res.returncode != 0 and "INIT_FROM" in res.stdout + res.stderr


@pytest.mark.slow
def test_runner_one_minute_budget(tmp_path):
    out = tmp_path / "out"
    res = run_runner(out, 1.0, tmp_path / "work", PROCS="2", LEVELS="GoToLocal OpenDoor", FRAMES_PER_PROC="400",
                     TEST_FRAMES="100", RECORD_SHARE="0.4", FINAL_MARGIN_S="12", EXPORT_MINUTES="0.25")
    summary = check_out(out, res)
    assert len(summary["data"]["train"]) == 2


def test_level_quotas_give_every_level_the_same_frames():
    quotas = load_runner_module().level_quotas
    levels = [f"L{i}" for i in range(10)]
    slots = quotas(levels, 16, 25_000)
    assert [name for name, _ in slots] == [levels[p % 10] for p in range(16)]
    per_level = {name: sum(f for n, f in slots if n == name) for name in levels}
    assert set(per_level.values()) == {40_000}  # 16 x 25,000 / 10, whether a level has one recorder or two
    assert sum(f for _, f in slots) == 16 * 25_000
    assert quotas(levels, 10, 500) == [(name, 500) for name in levels]  # one recorder per level: unchanged
    assert quotas(levels, 3, 100) == [("L0", 100), ("L1", 100), ("L2", 100)]  # fewer recorders than levels
    with pytest.raises(ValueError):
        quotas([], 4, 100)
