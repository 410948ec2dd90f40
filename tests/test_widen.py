"""A wider latent from a trained model (world_model/widen.py): `genie-train autoencoder --init-from ...
--latent-channels N --keep-old-channels`, `genie-train widen`, then `genie-train dynamics` from the widened model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from world_model import WorldModel
from world_model.autoencoder import frames_to_pixels, reconstruction_loss
from world_model.train_autoencoder import AutoencoderArgs
from world_model.train_cli import main as genie_train
from world_model.train_dynamics import DynamicsArgs, load_autoencoder
from world_model.training import train
from world_model.widen import widen_autoencoder

from test_gpu_run import NoiseWindows


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_world_model):
    folder = tmp_path_factory.mktemp("widen") / "base"
    tiny_world_model(seed=0).save(folder, dtype=torch.float32)
    return folder


def pixels(n: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return frames_to_pixels(torch.randint(0, 256, (n, 64, 64, 3), dtype=torch.uint8, generator=g))


def test_widened_autoencoder_reconstructs_as_before(base):
    old = load_autoencoder(base)
    wide = widen_autoencoder(old, old.config.latent_channels + 2)
    px = pixels()
    with torch.no_grad():
        assert torch.equal(wide(px), old(px))  # the new channels are read with zero weights
        assert torch.equal(wide.encode(px)[:, :old.config.latent_channels], old.encode(px))
    with pytest.raises(ValueError, match="must be >="):
        widen_autoencoder(old, old.config.latent_channels - 1)


def test_detail_weight_counts_edges_more():
    x = torch.zeros(1, 3, 8, 8)
    x[..., 3:5, 3:5] = 1.0  # a small bright square: its edges have local contrast, the flat floor none
    miss = x.clone()
    miss[..., 3:5, 3:5] = 0.0  # the small object lost
    flat_miss = x + 0.25 * (x == 0)  # the floor a little off everywhere
    assert torch.isclose(reconstruction_loss(x, x, 4.0), torch.tensor(0.0))
    # plain L1 + MSE ranks the floor's error with the object's; the detail weight puts the lost object first
    assert (reconstruction_loss(miss, x, 4.0) / reconstruction_loss(flat_miss, x, 4.0)
            > reconstruction_loss(miss, x, 0.0) / reconstruction_loss(flat_miss, x, 0.0))


def test_widen_keep_old_channels_then_widen_the_dynamics(base, tmp_path, capsys):
    old_wm = WorldModel.load(base, autocast=False)
    k = old_wm.config.autoencoder.latent_channels
    channels = k + 2
    run = tmp_path / "ae"
    args = AutoencoderArgs(data=(), out=str(run), preset="tiny", steps=3, batch_size=2, warmup=1, lr=1e-2,
                           threads=1, init_from=str(base), latent_channels=channels, keep_old_channels=True,
                           detail_weight=4.0, ema_decay=0.5, weight_decay=0.1)
    train(args, data=NoiseWindows(1))
    train(AutoencoderArgs(**{**args.__dict__, "steps": 5}), data=NoiseWindows(1))  # resumed, still kept
    ae = load_autoencoder(run)
    px = pixels()
    with torch.no_grad():
        assert ae.config.latent_channels == channels
        assert torch.allclose(ae.encode(px)[:, :k], old_wm.autoencoder.encode(px), atol=1e-5)  # the old latents
        assert not ae.decoder.conv_in.weight[:, k:].eq(0).all()  # the decoder learnt to read the new ones
    assert torch.equal(ae.latent_shift[:k], old_wm.autoencoder.latent_shift)
    assert torch.equal(ae.latent_scale[:k], old_wm.autoencoder.latent_scale)

    wide = tmp_path / "wide"
    assert genie_train(["widen", "--model", str(base), "--autoencoder", str(run), "--out", str(wide)]) == 0
    wm = WorldModel.load(wide, autocast=False)
    assert wm.config.dynamics.latent_channels == channels
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, k, *old_wm.config.autoencoder.latent_size * np.ones(2, int), generator=g)
    xw = torch.cat([x, torch.randn(2, 3, channels - k, *x.shape[-2:], generator=g)], 2)
    c, acts, pos = torch.rand(2, 3, generator=g), torch.randint(0, 7, (2, 3), generator=g), torch.arange(3).expand(2, 3)
    with torch.no_grad():
        fa, fb = old_wm.dynamics(x, c, acts, pos), wm.dynamics(xw, c, acts, pos)
    assert torch.allclose(fb[:, :, :k], fa, atol=1e-4) and not fb[:, :, k:].any()  # the old model, new rows zero

    # the dynamics trainer starts from the widened model on its own latents
    dyn = tmp_path / "dyn"
    train(DynamicsArgs(data=(), out=str(dyn), autoencoder=str(wide), init_from=str(wide), preset="tiny", steps=1,
                       batch_size=2, warmup=1, threads=1, window=3, ema_decay=0.0), data=NoiseWindows(3))
    assert (dyn / "log.jsonl").is_file()

    # another model's autoencoder is not this model's widened: a clear error, nothing written
    other = tmp_path / "other"
    WorldModel.from_config(old_wm.config).save(other)
    capsys.readouterr()
    assert genie_train(["widen", "--model", str(other), "--autoencoder", str(run), "--out", str(tmp_path / "x")]) == 2
    assert "old channels kept" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_keep_old_channels_needs_a_model_to_widen(base):
    with pytest.raises(ValueError, match="keep_old_channels needs --init-from"):
        AutoencoderArgs(data=(), out="x", keep_old_channels=True, latent_channels=8)
    with pytest.raises(ValueError, match="widened, not narrowed"):
        AutoencoderArgs(data=(), out="x", preset="tiny", init_from=str(base), latent_channels=1).trainer(NoiseWindows(1))
    k = load_autoencoder(base).config.latent_channels
    with pytest.raises(ValueError, match="is --init-from's own"):
        AutoencoderArgs(data=(), out="x", preset="tiny", init_from=str(base), latent_channels=k,
                        keep_old_channels=True).trainer(NoiseWindows(1))
