"""Attention layouts and tokens per frame of the dynamics transformer: frame-causal and factorised (spatial +
causal temporal) attention, 2x2 and 4x4 latent patches; causality, KV-cached step vs window recompute, padding
frames, bounded cache, save/load, config validation. Tiny random-weight models on CPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from world_model import PRESETS, WorldModel
from world_model.dynamics import Dynamics, DynamicsConfig, KVCache

H = 64
LAYOUTS = [("frame_causal", 2), ("frame_causal", 4), ("factorised", 2), ("factorised", 4)]


def model(attention: str, patch_size: int, context_frames: int = 6, seed: int = 0) -> WorldModel:
    """Tiny fp32 world model of the given layout whose adaLN-Zero gates are randomised (every input matters)."""
    torch.manual_seed(seed)
    cfg = PRESETS["tiny"]
    cfg = replace(cfg, dynamics=replace(cfg.dynamics, attention=attention, patch_size=patch_size,
                                        context_frames=context_frames))
    wm = WorldModel.from_config(cfg, autocast=False)
    with torch.no_grad():
        for name, p in wm.dynamics.named_parameters():
            if "ada" in name or "patch_out" in name:
                p.normal_(0.0, 0.1)
    return wm


def prompt(B: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (B, k, H, H, 3), dtype=np.uint8)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("attention,patch_size", LAYOUTS)
def test_window_is_frame_causal(attention, patch_size):
    wm = model(attention, patch_size)
    cfg = wm.config.dynamics
    assert cfg.tokens_per_frame == (16 // patch_size) ** 2
    x = torch.randn(2, 4, 4, 16, 16, generator=gen(0))
    c, a, pos = torch.randn(2, 4, generator=gen(1)), torch.randint(0, 7, (2, 4), generator=gen(2)), torch.arange(4)
    pos = pos.expand(2, 4)
    out = wm.dynamics(x, c, a, pos)
    assert out.shape == x.shape
    x2, a2 = x.clone(), a.clone()
    x2[:, 2] += 1.0
    a2[:, 2] = (a[:, 2] + 1) % 7
    out2 = wm.dynamics(x2, c, a2, pos)
    torch.testing.assert_close(out[:, :2], out2[:, :2])  # the past does not see the future
    assert not torch.allclose(out[:, 2:], out2[:, 2:])  # the changed frame and the one after it do
    # and a frame sees every position of an earlier frame (factorised: via temporal, then spatial attention)
    x3 = x.clone()
    x3[:, 0, :, :patch_size, :patch_size] += 1.0  # only the top-left token of frame 0
    out3 = wm.dynamics(x3, c, a, pos)
    assert not torch.allclose(out[:, 3, :, -patch_size:, -patch_size:], out3[:, 3, :, -patch_size:, -patch_size:])


@pytest.mark.parametrize("attention,patch_size", LAYOUTS)
def test_cached_step_equals_window_last_frame(attention, patch_size):
    """The KV-cached step's denoiser output equals a recompute over the window (cached frames + the new one) while
    the window has not slid, with and without guidance, and whole rollouts agree."""
    wm = model(attention, patch_size, context_frames=6)
    state = wm.reset(prompt(2, 2), generator=gen(1))
    a = torch.tensor([[3], [1]])
    for step in range(3):  # up to 5 cached frames
        x = torch.randn(2, 4, 16, 16, generator=gen(step))
        sigma = torch.tensor(0.7)
        for w in (1.0, 2.0):
            d_cache = wm._cached_denoiser(state, a, w)(x, sigma)
            d_full = wm._window_denoiser(state, a, w)(x, sigma)
            torch.testing.assert_close(d_cache, d_full, atol=1e-4, rtol=1e-4)
        wm.step(state, a[:, 0], generator=gen(10 + step))
    s1 = wm.reset(prompt(2, 1), generator=gen(2))
    s2 = s1.fork()
    for t, acts in enumerate([[1, 2], [3, 3], [0, 6]]):
        f1, _ = wm.step(s1, acts, generator=gen(20 + t), use_kv_cache=True)
        f2, _ = wm.step(s2, acts, generator=gen(20 + t), use_kv_cache=False)
        assert np.abs(f1.astype(int) - f2.astype(int)).max() <= 1


@pytest.mark.parametrize("attention,patch_size", LAYOUTS)
def test_worlds_at_different_times(attention, patch_size):
    """One world reset in a batch: cache fill levels differ, the window path pads (frame_valid); world 1 has not
    slid, so its cached and recomputed denoisers agree; a batch of one equals the same world in a batch."""
    wm = model(attention, patch_size, context_frames=4)
    state = wm.reset(prompt(2, 1))
    g = gen(0)
    for _ in range(5):
        wm.step(state, [1, 2], generator=g)
    state.replace(1, wm.reset(prompt(1, 2, seed=9)))
    assert state.cache.num_frames.tolist() == [4, 2] and state.time.tolist() == [6, 2]
    a = torch.tensor([[3], [3]])
    x, sigma = torch.randn(2, 4, 16, 16, generator=gen(3)), torch.tensor(1.3)
    torch.testing.assert_close(wm._cached_denoiser(state, a, 1.5)(x, sigma)[1],
                               wm._window_denoiser(state, a, 1.5)(x, sigma)[1], atol=1e-4, rtol=1e-4)
    f_alone, _ = wm.step(state.select([1]), [3], generator=gen(4), num_steps=2)
    f_both, _ = wm.step(state.select([1, 0]), [3, 3], generator=gen(4), num_steps=2)
    assert np.abs(f_alone[0].astype(int) - f_both[0].astype(int)).max() <= 1


def test_factorised_cache_layout_and_bounded_memory():
    """Factorised layers cache one temporal key/value per position and frame: (B, N*H, slots + scratch, hd),
    as many values as the frame-causal layout; the ring buffer stays the same size over a long rollout."""
    for p in (2, 4):
        cfg = model("factorised", p, context_frames=4).config.dynamics
        N, S = cfg.tokens_per_frame, cfg.context_frames
        cache = KVCache.empty(cfg, 3, "cpu")
        assert cache.k[0].shape == (3, N * cfg.heads, S + KVCache.SCRATCH_FRAMES, cfg.head_dim)
        fc = KVCache.empty(replace(cfg, attention="frame_causal"), 3, "cpu")
        assert cache.nbytes() == fc.nbytes()
    wm = model("factorised", 4, context_frames=4)
    state = wm.reset(prompt(2, 2))
    nbytes = state.cache.nbytes()
    g = gen(0)
    for t in range(12):
        wm.step(state, [t % 7, (t + 3) % 7], generator=g, num_steps=1)
        assert state.cache.nbytes() == nbytes
    assert sorted(state.cache.times[0].tolist()) == [10, 11, 12, 13]


def test_factorised_bf16_rollout_and_save_load(tmp_path):
    """The bf16 runtime runs a factorised 4x4-patch model; it saves and loads with its layout (strict)."""
    wm = model("factorised", 4)
    wm.save(tmp_path / "m")
    back = WorldModel.load(tmp_path / "m")
    assert back.config.dynamics.attention == "factorised" and back.config.dynamics.patch_size == 4
    state = back.reset(prompt(2, 1), generator=gen(0))
    f, _ = back.step(state, [1, 2], generator=gen(1))
    assert f.shape == (2, H, H, 3) and f.dtype == np.uint8


def test_config_defaults_and_validation():
    d = PRESETS["default"].dynamics.to_dict()
    d.pop("attention")
    assert DynamicsConfig.from_dict(d).attention == "frame_causal"  # checkpoints from before the option
    assert DynamicsConfig().attention == "frame_causal"
    with pytest.raises(ValueError, match="choose one of"):
        DynamicsConfig(attention="full")
    with pytest.raises(ValueError, match="must divide"):
        DynamicsConfig(patch_size=3)
    # the factorised layout adds a second attention per block (4 D^2 + biases) and 3 D more adaLN outputs
    fc = Dynamics(PRESETS["tiny"].dynamics).num_parameters()
    fa = Dynamics(replace(PRESETS["tiny"].dynamics, attention="factorised")).num_parameters()
    D, depth = PRESETS["tiny"].dynamics.width, PRESETS["tiny"].dynamics.depth
    assert fa - fc == depth * ((4 * D * D + 4 * D + 2 * (D // PRESETS["tiny"].dynamics.heads)) + 3 * D * D + 3 * D)
