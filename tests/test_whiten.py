"""An autoencoder's latent whitened in patches (AutoencoderConfig.whiten_patch, `genie-train whiten`): the same
reconstructions, unit-variance decorrelated patches, and world models that run on it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from world_model import WorldModel
from world_model.autoencoder import PRESETS as AE_PRESETS, Autoencoder, frames_to_pixels
from world_model.train_autoencoder import whiten_autoencoder
from world_model.train_cli import main as genie_train
from world_model.train_dynamics import load_autoencoder

from test_transplant import fine_autoencoder, frames, recording  # noqa: F401  (fixture)


def patches(z: torch.Tensor, p: int) -> torch.Tensor:
    B, C, h, w = z.shape
    return z.reshape(B, C, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(-1, C * p * p)


def test_whitening_keeps_the_reconstructions_and_decorrelates_the_patches():
    torch.manual_seed(0)
    plain = Autoencoder(AE_PRESETS["tiny"]).eval()
    px = frames_to_pixels(torch.from_numpy(frames(256)))
    plain.fit_latent_stats(px)
    white = Autoencoder(replace(plain.config, whiten_patch=2)).eval()
    white.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        assert torch.equal(white.encode(px), plain.encode(px))  # unfitted: the identity
        fit = white.fit_whitening(px, floor=1e-6)
        z = white.encode(px)
        assert torch.allclose(white.decode(z), plain.decode(plain.encode(px)), atol=1e-4)
    cov = torch.cov(patches(z, 2).double().T)
    assert fit["directions"] == 16 and torch.allclose(cov, torch.eye(16, dtype=torch.float64), atol=0.05)
    with pytest.raises(ValueError, match="must divide the latent side"):
        Autoencoder(replace(plain.config, whiten_patch=3))
    with pytest.raises(ValueError, match="no patch whitening"):
        plain.fit_whitening(px)


def test_genie_train_whiten_and_a_world_model_on_it(fine_autoencoder, tiny_world_model, tmp_path,  # noqa: F811
                                                    capsys):
    data = recording(tmp_path / "data", tiny_world_model(seed=0).config.action_meanings)
    out = tmp_path / "white"
    assert genie_train(["whiten", "--autoencoder", str(fine_autoencoder), "--data", str(data), "--frames", "80",
                        "--out", str(out)]) == 0
    assert "64 directions a patch" in capsys.readouterr().out
    ae = load_autoencoder(out)
    assert ae.config.whiten_patch == 4 and not torch.equal(ae.whiten, torch.eye(64))
    px = frames_to_pixels(torch.from_numpy(frames(4, seed=3)))
    base = load_autoencoder(fine_autoencoder)
    with torch.no_grad():
        assert torch.allclose(ae.decode(ae.encode(px)), base.decode(base.encode(px)), atol=1e-4)

    # a world model on it: the bf16 runtime keeps the whitening exact, and it steps
    cfg = tiny_world_model(seed=0).config
    cfg = replace(cfg, autoencoder=ae.config, dynamics=replace(cfg.dynamics, latent_size=32, patch_size=4))
    wm = WorldModel.from_config(cfg, autocast=True)
    wm.autoencoder.load_state_dict(ae.state_dict())
    runtime_ae = wm._runtime()[0]
    assert runtime_ae.whiten.dtype == torch.float32 and torch.equal(runtime_ae.whiten, ae.whiten)
    frame, _ = wm.step(wm.reset(frames(1)), [3])
    assert frame.shape == (1, 64, 64, 3)

    # refused: whitening twice, a patch that does not divide the latent, too few frames; nothing written
    for argv, message in ((["--autoencoder", str(out)], "whitened already"),
                          (["--autoencoder", str(fine_autoencoder), "--patch", "5"], "must divide the latent side"),
                          (["--autoencoder", str(fine_autoencoder), "--frames", "10"], "must be >= 64")):
        assert genie_train(["whiten", *argv, "--data", str(data), "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_whiten_autoencoder_reads_a_world_model(tiny_world_model, tmp_path):
    """The autoencoder of a world-model checkpoint can be whitened too (`load_autoencoder` reads it)."""
    wm = tiny_world_model(seed=0)
    wm.save(tmp_path / "wm", dtype=torch.float32)
    data = recording(tmp_path / "data", wm.config.action_meanings)
    path, fit = whiten_autoencoder(str(tmp_path / "wm"), [str(data)], str(tmp_path / "w"), patch=2, frames=80)
    assert Path(path).is_dir() and fit["patch"] == 2 and len(fit["eigenvalues"]) == 16
    assert np.isfinite(fit["eigenvalues"]).all()
