"""A world model's dynamics moved onto another autoencoder's latent (world_model/transplant.py, `genie-train
transplant`), then trained further with `genie-train dynamics --init-from`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from world_model import WorldModel
from world_model.autoencoder import Autoencoder, AutoencoderConfig
from world_model.shards import Episode, ShardMeta, shard_name, write_shard
from world_model.train_cli import main as genie_train
from world_model.train_autoencoder import AutoencoderArgs
from world_model.train_dynamics import DynamicsArgs
from world_model.training import train
from world_model.transplant import fit_linear, fit_noise_matched, noise_gain, transplant_world_model

from test_gpu_run import NoiseWindows


def frames(n: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth random 64 x 64 frames (blocky colour fields), which a random autoencoder encodes into varied latents."""
    g = np.random.default_rng(seed)
    small = g.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)


def inputs(wm: WorldModel, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c, s = wm.config.dynamics.latent_channels, wm.config.dynamics.latent_size
    return (torch.randn(2, 3, c, s, s, generator=g), torch.rand(2, 3, generator=g),
            torch.randint(0, 7, (2, 3), generator=g), torch.arange(3).expand(2, 3))


def test_fit_linear_recovers_a_linear_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g, dtype=torch.float64)
    m = torch.randn(6, 3, generator=g, dtype=torch.float64)
    fit, share = fit_linear(x, x @ m, ridge=0.0)
    assert torch.allclose(fit, m, atol=1e-8) and share == pytest.approx(1.0)
    _, share = fit_linear(x, torch.randn(500, 3, generator=g, dtype=torch.float64), ridge=0.0)
    assert share < 0.1  # noise: nothing explained


def test_the_noise_matched_fit_carries_unit_noise_to_unit_noise():
    """Nearly collinear inputs: the plain fit's large weights amplify noise on them; the matched ridge brings the
    noise the map carries to unit variance, at a small cost in the variance explained."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    x = torch.cat([base, base + 0.05 * torch.randn(2000, 4, generator=g, dtype=torch.float64)], 1)  # 8, rank ~4
    y = base @ torch.randn(4, 3, generator=g, dtype=torch.float64) + 0.3 * torch.randn(2000, 3, generator=g,
                                                                                       dtype=torch.float64)
    plain, share_plain = fit_linear(x, y, ridge=0.0)
    m, share, ridge = fit_noise_matched(x, y)
    assert noise_gain(plain) > 2 and noise_gain(m) == pytest.approx(1.0, rel=1e-3) and ridge > 0
    assert share_plain - 0.05 < share <= share_plain


def test_onto_its_own_autoencoder_the_model_is_unchanged(tiny_world_model):
    """Transplanted onto the autoencoder it has, the bridges are the identity (the noise-matched one included: the
    identity carries unit noise as it is): the dynamics compute what they did."""
    wm = tiny_world_model(seed=0)
    same = transplant_world_model(wm, wm.autoencoder, frames(), ridge_out=0.0)
    fit = same.training_metadata["transplanted"]
    assert fit["explained_new_to_old"] == pytest.approx(1.0) and fit["explained_old_to_new"] == pytest.approx(1.0)
    assert fit["noise_gain_new_to_old"] == pytest.approx(1.0, abs=1e-3)
    x, c, acts, pos = inputs(wm)
    with torch.no_grad():
        assert torch.allclose(same.dynamics(x, c, acts, pos), wm.dynamics(x, c, acts, pos), atol=1e-4)


@pytest.fixture(scope="module")
def fine_autoencoder(tmp_path_factory) -> Path:
    """An autoencoder run of the fine preset (a 32 x 32 latent), one training step on noise."""
    run = tmp_path_factory.mktemp("fine") / "ae"
    train(AutoencoderArgs(data=(), out=str(run), preset="fine", steps=1, batch_size=2, warmup=1, threads=1),
          data=NoiseWindows(1))
    return run


def recording(folder: Path, meanings: tuple[str, ...], n: int = 96) -> Path:
    """A recording of four episodes of `frames(n)`, both views."""
    folder.mkdir(parents=True)
    eps = [Episode(frames=f, actions=np.append(np.arange(len(f) - 1) % 7, -1).astype(np.int16),
                   rewards=np.zeros(len(f), np.float32), success=np.zeros(len(f), bool), mission="m",
                   level_seed=i, policy="random", view="top_down" if i % 2 else "first_person", split="train")
           for i, f in enumerate(np.split(frames(n), 4))]
    write_shard(folder / shard_name(0), eps, ShardMeta("test/Fake-v0", (64, 64, 3), meanings))
    return folder


def test_onto_a_finer_latent_then_trained_further(tiny_world_model, fine_autoencoder, tmp_path, capsys):
    """Onto the fine preset's 32 x 32 latent: 4 x 4 patches give the model's 8 x 8 tokens, the rest of the dynamics
    is the model's, it steps, and `genie-train dynamics --init-from` trains it on its own latents."""
    wm = tiny_world_model(seed=0)
    base, out = tmp_path / "base", tmp_path / "tp"
    wm.save(base, dtype=torch.float32)
    data = recording(tmp_path / "data", wm.config.action_meanings)
    assert genie_train(["transplant", "--model", str(base), "--autoencoder", str(fine_autoencoder), "--data",
                        str(data), "--frames", "80", "--out", str(out)]) == 0
    assert "patch size 4" in capsys.readouterr().out
    tp = WorldModel.load(out, autocast=False)
    dyn, old = tp.config.dynamics, wm.config.dynamics
    assert (dyn.latent_size, dyn.patch_size, dyn.tokens_per_frame) == (32, 4, old.tokens_per_frame)
    assert tp.training_metadata["transplanted"]["frames"] == 80
    src, dst = wm.dynamics.state_dict(), tp.dynamics.state_dict()
    assert all(torch.equal(dst[k], src[k]) for k in src if not k.startswith(("patch_in.", "patch_out.")))
    assert torch.equal(dst["patch_in.bias"], src["patch_in.bias"]) and dst["patch_in.weight"].any()
    x, c, acts, pos = inputs(tp)
    with torch.no_grad():
        assert tp.dynamics(x, c, acts, pos).shape == x.shape
    frame, _ = tp.step(tp.reset(frames(1)), [3])
    assert frame.shape == (1, 64, 64, 3)

    run = tmp_path / "dyn"
    train(DynamicsArgs(data=(), out=str(run), autoencoder=str(out), init_from=str(out), preset="tiny", patch_size=4,
                       steps=1, batch_size=2, warmup=1, threads=1, window=3, ema_decay=0.0), data=NoiseWindows(3))
    assert (run / "log.jsonl").is_file()

    # --train-only patch-io: the two ends fitted, the rest held
    io = DynamicsArgs(data=(), out=str(tmp_path / "io"), autoencoder=str(out), init_from=str(out), preset="tiny",
                      patch_size=4, steps=2, batch_size=2, warmup=1, threads=1, window=3, ema_decay=0.0, lr=1e-2,
                      train_only="patch-io").trainer(NoiseWindows(3))
    before = {k: v.clone() for k, v in io.dyn.state_dict().items()}
    io.run()
    after = io.dyn.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved == {"patch_in.weight", "patch_in.bias", "patch_out.weight", "patch_out.bias"}


def test_what_cannot_be_transplanted_is_refused(tiny_world_model, fine_autoencoder, tmp_path, capsys):
    wm = tiny_world_model(seed=0)
    torch.manual_seed(0)
    coarse = Autoencoder(AutoencoderConfig(channels=(8, 8, 8, 8), encoder_blocks=1, decoder_blocks=1, groups=4))
    assert coarse.config.latent_size == 4  # under the model's 8 x 8 tokens
    with pytest.raises(ValueError, match="multiple of 8"):
        transplant_world_model(wm, coarse, frames(64))
    with pytest.raises(ValueError, match="at least 64 frames"):
        transplant_world_model(wm, wm.autoencoder, frames(8))
    base = tmp_path / "base"
    wm.save(base, dtype=torch.float32)
    data = recording(tmp_path / "data", wm.config.action_meanings)
    capsys.readouterr()
    assert genie_train(["transplant", "--model", str(base), "--autoencoder", str(fine_autoencoder), "--data",
                        str(data), "--frames", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--frames must be >= 1" in capsys.readouterr().err and not (tmp_path / "x").exists()
