"""The denoiser's estimate started from the previous frame (DynamicsConfig.prev_prior, Denoiser.prior): what it adds
to D, that a network that says nothing then copies the previous frame, that the cached and recomputed paths agree,
the transplant's prior map, and the trainer's refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from world_model import WorldModel
from world_model.checkpoint import CheckpointError
from world_model.diffusion import Conditioners
from world_model.autoencoder import PRESETS as AE_PRESETS, Autoencoder
from world_model.metrics import psnr
from world_model.train_dynamics import DynamicsArgs
from world_model.dynamics import unpatchify
from world_model.transplant import (PRIOR_MAPS, fit_linear, fit_noise_matched, fit_prior, latent_tokens,
                                  transplant_world_model)

from test_gpu_run import NoiseWindows
from test_transplant import frames


def with_prior(wm: WorldModel, sigma: float | None = None) -> WorldModel:
    """`wm` with the prior (identity map) and the same weights, its context stored at the shipped model's noise
    level (0.01)."""
    cfg = replace(wm.config, dynamics=replace(wm.config.dynamics, prev_prior=True, prev_prior_sigma=sigma),
                  diffusion=replace(wm.config.diffusion, context_sigma=0.01))
    out = WorldModel.from_config(cfg, autocast=False)
    out.autoencoder.load_state_dict(wm.autoencoder.state_dict())
    out.dynamics.load_state_dict({**wm.dynamics.state_dict(), "prior_map": out.dynamics.prior_map})
    return out.eval()


def test_the_network_target_undoes_the_prior_term():
    g = torch.Generator().manual_seed(0)
    y, x, q = (torch.randn(2, 3, 4, 8, 8, generator=g) for _ in range(3))
    sigma = torch.rand(2, 3, generator=g) * 3 + 0.01
    sd = 0.5
    cs = Conditioners(c_skip=sd**2 / (sigma**2 + sd**2), c_out=sigma * sd / (sigma**2 + sd**2).sqrt(),
                      c_in=1 / (sigma**2 + sd**2).sqrt(), c_noise=sigma.log() / 4)
    assert torch.allclose(cs.denoised(x, cs.network_target(y, x, q), q), y, atol=1e-4)
    assert torch.allclose(cs.denoised(x, cs.network_target(y, x)), y, atol=1e-4)


def test_the_prior_is_the_bayes_estimate_around_the_faded_previous_frame(tiny_world_model):
    wm = with_prior(tiny_world_model(seed=0))
    den = wm.denoiser
    g = torch.Generator().manual_seed(1)
    c, size = wm.config.dynamics.latent_channels, wm.config.dynamics.latent_size
    x = torch.randn(2, 3, c, size, size, generator=g)
    sigma = torch.tensor([[0.05, 0.3, 2.0], [1.0, 0.02, 0.1]])
    acts = torch.zeros(2, 3, dtype=torch.long)
    q = den.prior(x, sigma, acts)
    sd = den.config.sigma_data
    c_skip = sd**2 / (sigma**2 + sd**2)
    g = sd**2 / (sigma**2 + sd**2)  # of each frame as the next one's predecessor
    assert torch.equal(q[:, 0], torch.zeros_like(q[:, 0]))  # no predecessor: plain EDM
    for t in (1, 2):  # s^2 = sd^2 + (g sigma_p)^2: k a little over c_skip
        s2 = sd**2 + (g[:, t - 1] * sigma[:, t - 1]) ** 2
        k = s2 / (sigma[:, t] ** 2 + s2)
        want = (((1 - k) * g[:, t - 1])[:, None, None, None] * x[:, t - 1]
                + (k - c_skip[:, t])[:, None, None, None] * x[:, t])
        assert torch.allclose(q[:, t], want, atol=1e-6)
    # the window's first frame may be padding: the first real one has no predecessor, whatever the spread
    valid = torch.tensor([[False, True, True], [True, True, True]])
    for spread in (None, 0.0, 3.0):
        wm_s = with_prior(wm, spread)
        assert not wm_s.denoiser.prior(x, sigma, acts, frame_valid=valid)[0, 1].any()
        assert not wm_s.denoiser.prior(x, sigma, acts)[:, 0].any()


def test_a_network_that_says_nothing_copies_the_previous_frame(tiny_world_model):
    """F = 0 (output projection zeroed): with the prior at spread 0 a noop step draws the prompt again, for every
    noise the sampler starts from; without the prior the same network draws noise."""
    base = tiny_world_model(seed=0)
    with torch.no_grad():
        base.dynamics.patch_out.weight.zero_()
        base.dynamics.patch_out.bias.zero_()
    prompt = frames(2, seed=3)
    for sigma, least in ((0.0, 40.0), (0.05, 25.0)):
        wm = with_prior(base, sigma)
        out, _ = wm.step(wm.reset(prompt, generator=torch.Generator().manual_seed(0)), [0, 0],
                         generator=torch.Generator().manual_seed(1))
        truth = wm.decode(wm.encode(prompt))
        assert psnr(out, truth).min() > least, sigma
    plain, _ = base.step(base.reset(prompt), [0, 0], generator=torch.Generator().manual_seed(1))
    assert psnr(plain, base.decode(base.encode(prompt))).max() < 25
    # one spread per action id: 0 for noop, wide for a turn; the same worlds, the same noise
    spreads = (0.0, 10.0) + (0.0,) * (base.config.dynamics.num_actions)
    wm = with_prior(base, spreads)
    out, _ = wm.step(wm.reset(prompt, generator=torch.Generator().manual_seed(0)), [0, 1],
                     generator=torch.Generator().manual_seed(1))
    score = psnr(out, wm.decode(wm.encode(prompt)))
    assert score[0] > 40 and score[1] < 25


def test_the_cached_and_recomputed_paths_agree(tiny_world_model):
    wm = with_prior(tiny_world_model(seed=0), 0.1)
    prompt = np.stack([frames(3, seed=4)] * 2)  # (2 worlds, 3 prompt frames)
    outs = []
    for cached in (True, False):
        state = wm.reset(prompt, generator=torch.Generator().manual_seed(0))
        out, state = wm.step(state, [1, 3], generator=torch.Generator().manual_seed(2), use_kv_cache=cached)
        outs.append(out.astype(np.float32))
    assert np.abs(outs[0] - outs[1]).max() <= 2


def test_the_transplants_prior_covers_what_its_output_cannot_say(tiny_world_model):
    """Onto its own autoencoder the bridges are the identity: the prior map is zero either way and the model computes
    what it did. Onto a 32 x 32 latent (64 numbers a token against the old 16): the residual map is what a token
    loses on the round trip new -> old -> new; the complement map the orthogonal projector onto what the old
    output cannot reach."""
    wm = tiny_world_model(seed=0)
    for kind in PRIOR_MAPS:
        same = transplant_world_model(wm, wm.autoencoder, frames(), ridge_out=0.0, prev_prior=True, prior_map=kind,
                                      prev_prior_sigma=0.1)
        assert same.config.dynamics.prev_prior and same.dynamics.prior_map.abs().max() < 1e-3, kind
        assert same.training_metadata["transplanted"]["prior_map"] == kind
    torch.manual_seed(0)
    ae = Autoencoder(AE_PRESETS["fine"]).eval()
    fine = transplant_world_model(wm, ae, frames(), prev_prior=True, prior_map="complement", prev_prior_sigma=0.1)
    m = fine.dynamics.prior_map.double()
    out = fine.dynamics.patch_out.weight.double()  # (64, width): its columns span what the output reaches
    assert torch.allclose(m, m.T, atol=1e-6) and torch.allclose(m @ m, m, atol=1e-5)
    assert (m @ out).abs().max() < 1e-4 * out.abs().max()
    assert fine.training_metadata["transplanted"]["prior_trace"] == pytest.approx(float(m.trace()), abs=0.01)
    assert float(m.trace()) >= 64 - 16 - 0.01
    fine = transplant_world_model(wm, ae, frames(), prev_prior=True, prev_prior_gain=0.5)  # residual by default
    new = latent_tokens(ae, frames(), 4)
    old = latent_tokens(wm.autoencoder, frames(), 2)
    to_old, _, _ = fit_noise_matched(new, old)
    to_new, _ = fit_linear(old, new)
    lost = new - new @ to_old @ to_new
    as_latents = lambda t: unpatchify(t.reshape(1, -1, 64, 64), 4, 4, 32, 32)  # noqa: E731
    assert torch.allclose(fine.dynamics.prior_project(as_latents(new)), as_latents(lost).float(), atol=1e-4)
    assert fine.config.dynamics.prev_prior_gain == 0.5
    with pytest.raises(ValueError, match="need --prev-prior"):
        transplant_world_model(wm, wm.autoencoder, frames(), prev_prior_sigma=0.1)
    with pytest.raises(ValueError, match="one per action id"):
        transplant_world_model(wm, wm.autoencoder, frames(), prev_prior=True, prev_prior_sigma=(0.1, 0.2))
    with pytest.raises(ValueError, match="needs episodes"):
        transplant_world_model(wm, wm.autoencoder, frames(), prev_prior=True)
    with pytest.raises(ValueError, match="unknown prior map"):
        transplant_world_model(wm, wm.autoencoder, frames(), prev_prior=True, prior_map="diagonal")
    with pytest.raises(ValueError, match="transplant the model it was made from"):
        transplant_world_model(fine, wm.autoencoder, frames())


def test_init_from_must_keep_the_prior_it_has(tiny_world_model, tmp_path):
    base, prior = tmp_path / "base", tmp_path / "prior"
    wm = tiny_world_model(seed=0)
    wm.save(base, dtype=torch.float32)
    with_prior(wm, 0.1).save(prior, dtype=torch.float32)
    common = dict(data=(), preset="tiny", steps=1, batch_size=2, warmup=1, threads=1, window=3, ema_decay=0.0)

    def trainer(name, ckpt, **kw):
        return DynamicsArgs(out=str(tmp_path / name), autoencoder=str(ckpt), **common, **kw).trainer(NoiseWindows(3))

    with pytest.raises(CheckpointError, match="drop --prev-prior"):
        trainer("a", base, init_from=str(base), prev_prior=True)
    with pytest.raises(CheckpointError, match="pass --prev-prior"):
        trainer("b", prior, init_from=str(prior))
    with pytest.raises(CheckpointError, match="without --prev-prior-sigma / --prev-prior-gain"):
        trainer("c", prior, init_from=str(prior), prev_prior=True, prev_prior_sigma=(0.2,))
    with pytest.raises(ValueError, match="need --prev-prior"):
        trainer("d", base, prev_prior_sigma=(0.1,))
    # kept, it trains with the checkpoint's spread and prior map, and the loss is finite
    t = trainer("e", prior, init_from=str(prior), prev_prior=True)
    assert t.dyn.config.prev_prior_sigma == 0.1
    t.run()
    logged = (tmp_path / "e" / "log.jsonl").read_text().splitlines()
    assert logged and np.isfinite([float(json.loads(x)["loss"]) for x in logged]).all()
    # from scratch, one spread per action id
    spreads = tuple(float(v) for v in range(wm.config.dynamics.num_actions + 2))
    assert trainer("f", base, prev_prior=True, prev_prior_sigma=spreads).dyn.config.prev_prior_sigma == spreads


def test_a_bf16_runtime_keeps_the_prior_map_exact(tiny_world_model):
    wm = with_prior(tiny_world_model(seed=0), 0.1)
    with torch.no_grad():
        wm.dynamics.prior_map.mul_(1 / 3)  # not representable in bf16
    wm.autocast = True
    _, dyn, _ = wm._runtime()
    assert next(dyn.parameters()).dtype == torch.bfloat16
    assert dyn.prior_map.dtype == torch.float32 and torch.equal(dyn.prior_map, wm.dynamics.prior_map)
    frame, _ = wm.step(wm.reset(frames(1)), [0])
    assert frame.shape == (1, 64, 64, 3)


def test_the_prior_is_fitted_per_action_on_episodes(tiny_world_model, tmp_path, capsys):
    """Under noop nothing changes (gain 1, spread 0); under turn_left the next frame is another drawn at random
    (gain near 0, a wide spread); an action never taken gets gain 1 and the mean spread. `genie-train transplant
    --prev-prior` fits them from the recordings."""
    wm = tiny_world_model(seed=0)
    f = frames(40, seed=5)
    still = (np.repeat(f[:1], 10, axis=0), np.zeros(9, np.int64))
    jumps = (f[10:40], np.ones(29, np.int64))
    eye = torch.eye(wm.config.dynamics.patch_dim)
    fit = fit_prior(wm.autoencoder, eye, wm.config.dynamics.patch_size, [still, jumps], 7)
    assert fit["transitions"] == 38 and len(fit["gains"]) == len(fit["spreads"]) == 9
    assert fit["gains"][0] == 1.0 and fit["spreads"][0] == 0.0
    assert fit["gains"][1] < 0.5 and fit["spreads"][1] > 0.1
    assert fit["gains"][2] == 1.0 and fit["spreads"][2] == pytest.approx(np.mean(fit["spreads"][:2]), abs=1e-3)

    from test_transplant import recording
    from world_model.train_cli import main as genie_train

    base, out = tmp_path / "base", tmp_path / "tp"
    wm.save(base, dtype=torch.float32)
    data = recording(tmp_path / "data", wm.config.action_meanings)
    capsys.readouterr()
    assert genie_train(["transplant", "--model", str(base), "--autoencoder", str(base), "--data", str(data),
                        "--frames", "80", "--prev-prior", "--prior-episodes", "2", "--out", str(out)]) == 0
    assert "gains (" in capsys.readouterr().out
    tp = WorldModel.load(out, autocast=False)
    dyn = tp.config.dynamics
    assert dyn.prev_prior and len(dyn.prev_prior_gain) == len(dyn.prev_prior_sigma) == dyn.num_actions + 2
    assert tp.training_metadata["transplanted"]["prior_fit_transitions"] > 0
    assert genie_train(["transplant", "--model", str(base), "--autoencoder", str(base), "--data", str(data),
                        "--prev-prior", "--prior-episodes", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--prior-episodes must be >= 1" in capsys.readouterr().err and not (tmp_path / "x").exists()
