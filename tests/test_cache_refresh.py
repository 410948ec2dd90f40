"""SamplerConfig.cache_refresh: a full KV cache rebuilt from its latest frames as a fresh window, so that the cached
path agrees with a recompute over the window again after the window has slid; per-world refreshes in a batch;
memory models; config checks and old checkpoints."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from world_model import PRESETS, SamplerConfig, WorldModel
from world_model.sampler import parse_settings

from test_memory import MEMORY, randomised
from test_world_model import gen, prompt, tiny_model


def step_many(wm: WorldModel, state, n: int, seed: int = 0) -> None:
    g = gen(seed)
    for t in range(n):
        wm.step(state, [t % 7] * state.batch_size, generator=g)


def denoisers_agree(wm: WorldModel, state) -> bool:
    """The cached denoiser and the window recompute give the same output for one new frame."""
    a = torch.full((state.batch_size, 1), 3)
    x, sigma = torch.randn(state.batch_size, 4, 16, 16, generator=gen(7)), torch.tensor(0.7)
    d_cache = wm._cached_denoiser(state, a, 1.0)(x, sigma)
    d_full = wm._window_denoiser(state, a, 1.0)(x, sigma)
    return torch.allclose(d_cache, d_full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cfg", ["plain", "memory"])
def test_a_refreshed_cache_agrees_with_the_window_again(cfg):
    """After the ring buffer slides, cached keys no longer match a recompute over the window; refreshing the cache
    from its latest frames makes them match (over the frames it keeps) and keeps those frames' bookkeeping."""
    if cfg == "plain":
        wm = tiny_model(context_frames=4)
    else:
        wm = randomised(replace(MEMORY, dynamics=replace(MEMORY.dynamics, context_frames=4)))
    state = wm.reset(prompt(2, 1), generator=gen(1))
    step_many(wm, state, 6)  # 7 frames through 4 slots: slid
    assert state.cache.valid.all()
    assert not denoisers_agree(wm, state)
    before = state.cache.clone()
    latest = before.times.argsort(dim=1)[:, -2:]
    wm.refresh(state, 2)
    c = state.cache
    assert c.num_frames.tolist() == [2, 2]
    b = torch.arange(2)[:, None]
    torch.testing.assert_close(c.latents[:, :2], before.latents[b, latest])
    assert torch.equal(c.times[:, :2], before.times[b, latest])
    assert torch.equal(c.actions[:, :2], before.actions[b, latest])
    assert torch.equal(c.views, before.views)
    assert denoisers_agree(wm, state)


def test_step_refreshes_only_full_caches():
    """In a batch whose worlds are at different times, only a world with a full cache is rebuilt; the other keeps
    its cache bit for bit; a world stepped alone equals the same world in the batch."""
    wm = tiny_model(context_frames=4).with_sampler(cache_refresh=2)
    state = wm.reset(prompt(2, 1), generator=gen(0))
    step_many(wm, state, 3)  # 4 frames: full
    state.replace(1, wm.reset(prompt(1, 2, seed=9), generator=gen(3)))
    assert state.cache.num_frames.tolist() == [4, 2]
    alone = state.select([0])
    untouched = state.cache.select(torch.tensor([1]))
    wm.refresh(state, 2)
    assert state.cache.num_frames.tolist() == [2, 2]
    for got, want in zip(state.cache.select(torch.tensor([1]))._tensors(), untouched._tensors()):
        assert torch.equal(got, want)
    wm.refresh(alone, 2)
    for got, want in zip(state.cache.select(torch.tensor([0]))._tensors(), alone.cache._tensors()):
        torch.testing.assert_close(got, want)


def test_rollouts_with_a_refresh_run_and_match_a_manual_refresh():
    """step() with cache_refresh=K rebuilds a full cache before generating: the same as calling refresh first."""
    wm = tiny_model(context_frames=4)
    wm_r = wm.with_sampler(cache_refresh=3)
    s1 = wm_r.reset(prompt(2, 1), generator=gen(0))
    s2 = s1.fork()
    for t in range(9):
        acts = [t % 7, (t + 3) % 7]
        if s2.cache.valid.all():
            wm.refresh(s2, 3)
        f1, _ = wm_r.step(s1, acts, generator=gen(20 + t))
        f2, _ = wm.step(s2, acts, generator=gen(20 + t))
        np.testing.assert_array_equal(f1, f2)
        assert 3 <= int(s1.cache.num_frames.min()) or t < 3
    # without a refresh the caches differ after the window slid
    s3 = wm.reset(prompt(2, 1), generator=gen(0))
    for t in range(9):
        f3, _ = wm.step(s3, [t % 7, (t + 3) % 7], generator=gen(20 + t))
    assert not np.array_equal(f1, f3)


def test_the_refresh_period_is_the_cycle_of_the_cache():
    """A full cache of S slots refreshed to K frames fills again after S - K steps (`WorldModel.refresh_period`)."""
    wm = tiny_model(context_frames=4).with_sampler(cache_refresh=1)
    assert wm.refresh_period == 3 and tiny_model(context_frames=4).refresh_period == 1
    state = wm.reset(prompt(1, 1), generator=gen(0))
    g, rebuilt = gen(1), []
    for t in range(12):
        if state.cache.valid.all():  # this step rebuilds the cache first
            rebuilt.append(t)
        wm.step(state, [1], generator=g)
    assert np.diff(rebuilt).tolist() == [wm.refresh_period] * (len(rebuilt) - 1) and len(rebuilt) >= 3


def test_cache_refresh_config_checks():
    assert SamplerConfig.from_dict({}).cache_refresh == 0  # checkpoints saved before it existed slide the cache
    assert parse_settings("cache_refresh=8") == {"cache_refresh": 8}
    with pytest.raises(ValueError, match="cache_refresh must be >= 0"):
        SamplerConfig(cache_refresh=-1)
    wm = tiny_model(context_frames=4)
    with pytest.raises(ValueError, match="below the context window"):
        wm.with_sampler(cache_refresh=4)
    state = wm.reset(prompt(1, 1))
    with pytest.raises(ValueError, match="keep must be in"):
        wm.refresh(state, 0)
    assert PRESETS["tiny"].sampler.cache_refresh == 0
