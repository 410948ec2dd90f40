"""The top-down small-objects benchmark: a perfect autoencoder keeps everything, one that erases the agent does not."""

import json

import numpy as np
import pytest
import torch

from benchmarks import report
from benchmarks.top_down_objects import TopDownConfig, cell_box, evaluate, main, section


class Identity:
    """An 'autoencoder' whose latents are the pixels: reconstructs every frame exactly."""

    def encode(self, pixels):
        return pixels

    def decode(self, latents):
        return latents


class Blur(Identity):
    """Averages 8x8 pixel blocks: a 3-pixel agent becomes a smudge whose heading cannot be read."""

    def decode(self, latents):
        pooled = torch.nn.functional.avg_pool2d(latents, 8)
        return torch.nn.functional.interpolate(pooled, scale_factor=8, mode="nearest")


def test_cell_box():
    rows, cols = cell_box(1, 2, (8, 8), 64)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (16, 24, 8, 16)
    rows, cols = cell_box(0, 0, (22, 22), 64)  # 2.9 pixels per cell, widened to whole pixels
    assert (rows.start, rows.stop) == (0, 3)


def test_perfect_and_blurring_autoencoders():
    cfg = TopDownConfig(worlds=2, steps=3)
    levels = ("GoToLocal", "UnlockLocal")
    perfect = evaluate(Identity(), cfg, levels=levels)
    blurred = evaluate(Blur(), cfg, levels=levels)
    for level in levels:
        p, b = perfect["levels"][level], blurred["levels"][level]
        assert p["agent_psnr"] == p["frame_psnr"] == 60.0 and p["heading_accuracy"] == 1.0
        assert b["agent_psnr"] < 30 and b["heading_accuracy"] < 1.0
        assert p["erased_agent_psnr"] == b["erased_agent_psnr"] < 30  # the reference does not depend on the model
        assert p["heading_margin_db"] < 60  # the four headings differ in the truth
    assert perfect["levels"]["GoToLocal"]["cell_px"] == 8.0 and perfect["levels"]["UnlockLocal"]["grid"] == [22, 22]
    # a window of 7 cells gives the 22 x 22 level 9 pixels per cell
    window = evaluate(Identity(), TopDownConfig(worlds=1, steps=2, cells=7), levels=("UnlockLocal",))
    assert window["levels"]["UnlockLocal"]["grid"] == [7, 7]
    assert 0.0 <= blurred["overall"]["heading_correct"]["mean"] < 1.0


def test_cli_and_report(tmp_path, tiny_world_model):
    tiny_world_model().save(tmp_path / "model")
    out = tmp_path / "top_down_objects.json"
    main(["--model", str(tmp_path / "model"), "--worlds", "1", "--steps", "2", "--levels", "GoToLocal",
          "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "top_down_objects" and "GoToLocal" in result["levels"]
    text = "\n".join(section(result))
    assert "| GoToLocal | 8x8 | 8.0 |" in text and "python -m benchmarks.top_down_objects" in text
    assert "Top-down small objects" in report.render(tmp_path)
    assert np.isfinite(result["overall"]["agent_psnr"]["mean"])


def test_cli_reads_an_autoencoder_checkpoint_alone(tmp_path, tiny_world_model):
    """--model takes an autoencoder checkpoint (format genie-autoencoder) and measures what the world model holding
    the same autoencoder measures."""
    from world_model.checkpoint import FORMAT_AUTOENCODER, FORMAT_VERSION, prefixed, save_model

    wm = tiny_world_model()
    wm.save(tmp_path / "model")
    ae = wm.autoencoder.float()
    save_model(tmp_path / "ae", {"format": FORMAT_AUTOENCODER, "format_version": FORMAT_VERSION,
                                 "autoencoder": ae.config.to_dict(), "latent_shift": ae.latent_shift.tolist(),
                                 "latent_scale": ae.latent_scale.tolist()}, prefixed("autoencoder", ae))
    args = ["--worlds", "1", "--steps", "2", "--levels", "GoToLocal"]
    from_model = main(["--model", str(tmp_path / "model"), *args])
    from_ae = main(["--model", str(tmp_path / "ae"), *args])
    assert from_ae["levels"]["GoToLocal"]["agent_psnr"] == pytest.approx(
        from_model["levels"]["GoToLocal"]["agent_psnr"], abs=0.05)
    assert from_ae["model"] == str(tmp_path / "ae")
