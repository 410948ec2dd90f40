"""World model: shapes, frame-causal mask, KV cache vs recompute, seeding, fork, bounded memory, guidance,
checkpoints. Tiny random-weight presets on CPU."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from world_model import (PRESETS, Autoencoder, CheckpointError, Dynamics, SamplerConfig, WorldModel, karras_sigmas,
                         sample)
from world_model.sampler import heun_gain
from world_model.dynamics import frame_causal_mask, patchify, unpatchify

H = 64


def tiny_model(context_frames: int = 4, autocast: bool = False, seed: int = 0) -> WorldModel:
    """Tiny world model whose adaLN-Zero gates are randomised, so every input actually matters."""
    torch.manual_seed(seed)
    cfg = PRESETS["tiny"]
    cfg = replace(cfg, dynamics=replace(cfg.dynamics, context_frames=context_frames))
    wm = WorldModel.from_config(cfg, autocast=autocast)
    with torch.no_grad():
        for name, p in wm.dynamics.named_parameters():
            if "ada" in name or "patch_out" in name:
                p.normal_(0.0, 0.1)
    return wm


def prompt(B: int = 2, k: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (B, k, H, H, 3), dtype=np.uint8)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rollout(wm, state, actions, seed, **kw):
    g = gen(seed)
    return [wm.step(state, a, generator=g, **kw)[0] for a in actions]


# ---------------------------------------------------------------------------------------------- shapes


def test_shapes():
    wm = tiny_model()
    frames = prompt(3, 1)[:, 0]
    z = wm.encode(frames)
    assert z.shape == (3, 4, 16, 16)
    assert wm.decode(z).shape == (3, H, H, 3)
    x = torch.randn(2, 5, 4, 16, 16)
    p = patchify(x, 2)
    assert p.shape == (2, 5, 64, 16)
    assert torch.equal(unpatchify(p, 2, 4, 16, 16), x)
    out = wm.dynamics(x, torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.long), torch.arange(5).expand(2, 5))
    assert out.shape == x.shape
    state = wm.reset(prompt(2, 3))
    assert state.batch_size == 2 and state.time.tolist() == [3, 3]
    f, state = wm.step(state, np.array([1, 2]), generator=gen(0))
    assert f.shape == (2, H, H, 3) and f.dtype == np.uint8
    state = wm.reset(prompt(2, 1)[:, 0])  # (B, H, W, 3) is a one-frame prompt
    assert state.time.tolist() == [1, 1]
    assert wm.action_meanings[3] == "action_3"  # a config that names no actions gets generic names


def test_bad_inputs_raise_helpful_errors():
    wm = tiny_model()
    with pytest.raises(ValueError, match="resize"):
        wm.reset(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="context_frames"):
        wm.reset(prompt(1, 5))
    state = wm.reset(prompt(1, 1))
    with pytest.raises(ValueError, match="actions must be in"):
        wm.step(state, [7], generator=gen(0))
    with pytest.raises(TypeError, match="integers"):
        wm.step(state, [1.0], generator=gen(0))
    with pytest.raises(ValueError, match="unknown sampler"):
        wm.step(state, [1], generator=gen(0), sampler="ddim")


def test_frame_causal_mask():
    m = frame_causal_mask(3, 2)
    assert m.shape == (6, 6) and m[1, 0] and m[0, 1] and not m[1, 2] and m[5, 0]
    wm = tiny_model()
    x = torch.randn(1, 4, 4, 16, 16)
    c, a, pos = torch.randn(1, 4), torch.randint(0, 7, (1, 4)), torch.arange(4)[None]
    out = wm.dynamics(x, c, a, pos)
    x2 = x.clone()
    x2[:, 3] += 1.0
    a2 = a.clone()
    a2[:, 3] = (a[:, 3] + 1) % 7
    out2 = wm.dynamics(x2, c, a2, pos)
    torch.testing.assert_close(out[:, :3], out2[:, :3])
    assert not torch.allclose(out[:, 3], out2[:, 3])


# ---------------------------------------------------------------------------------------------- cache


def test_kv_cache_matches_recompute():
    wm = tiny_model(context_frames=6)
    state = wm.reset(prompt(2, 2), generator=gen(1))
    a = torch.tensor([[3], [1]])
    for step in range(3):  # up to 5 cached frames: the window has not slid yet
        x = torch.randn(2, 4, 16, 16, generator=gen(step))
        sigma = torch.tensor(0.7)
        for w in (1.0, 2.0):
            d_cache = wm._cached_denoiser(state, a, w)(x, sigma)
            d_full = wm._window_denoiser(state, a, w)(x, sigma)
            torch.testing.assert_close(d_cache, d_full, atol=1e-4, rtol=1e-4)
        wm.step(state, a[:, 0], generator=gen(10 + step))
    s1 = wm.reset(prompt(2, 1), generator=gen(2))
    s2 = s1.fork()
    f1 = rollout(wm, s1, [[1, 2], [3, 3], [0, 6]], seed=5, use_kv_cache=True)
    f2 = rollout(wm, s2, [[1, 2], [3, 3], [0, 6]], seed=5, use_kv_cache=False)
    for u, v in zip(f1, f2):
        assert np.abs(u.astype(int) - v.astype(int)).max() <= 1


def test_previous_frame_input_is_the_latest_cached_frame():
    """prev_frame models see the frame before the new one: the cache's latest slot, also after the ring wraps."""
    wm = tiny_model(context_frames=3)
    assert wm.config.dynamics.prev_frame
    state = wm.reset(prompt(2, 2), generator=gen(0))
    g = gen(1)
    for t in range(5):
        wm.step(state, [t % 7, 3], generator=g, num_steps=1)
        px, c_noise, present = wm.denoiser.cache_prev(state.cache)
        c = state.cache
        latest = c.times.argmax(dim=1)
        assert torch.equal(c.times[torch.arange(2), latest], state.time - 1)
        cs = wm.denoiser.compute_conditioners(c.sigmas[torch.arange(2), latest])
        torch.testing.assert_close(px, cs.c_in[:, None, None, None] * c.latents[torch.arange(2), latest])
        torch.testing.assert_close(c_noise, cs.c_noise)
        assert present.all()
    empty = wm.denoiser.cache_prev(type(state.cache).empty(wm.config.dynamics, 2, "cpu"))
    assert not empty[2].any()


def test_previous_frame_changes_the_prediction():
    """Changing only the predecessor's input channels changes the next frame's output (the copy path is wired)."""
    wm = tiny_model()
    x = torch.randn(1, 1, 4, 16, 16, generator=gen(0))
    c, a, pos = torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.long), torch.arange(1)[None]
    prev = (torch.randn(1, 4, 16, 16, generator=gen(1)), torch.zeros(1), torch.ones(1, dtype=torch.bool))
    out = wm.dynamics(x, c, a, pos, prev=prev)
    out2 = wm.dynamics(x, c, a, pos, prev=(prev[0] + 1, *prev[1:]))
    assert not torch.allclose(out, out2)
    none = wm.dynamics(x, c, a, pos, prev=(prev[0], prev[1], torch.zeros(1, dtype=torch.bool)))
    torch.testing.assert_close(none, wm.dynamics(x, c, a, pos))


def test_models_without_previous_frame_input_still_work(tmp_path):
    """Checkpoints written before `prev_frame` existed (config without the key) load as prev_frame=False."""
    from world_model.dynamics import DynamicsConfig
    d = PRESETS["tiny"].dynamics.to_dict()
    d.pop("prev_frame")
    assert DynamicsConfig.from_dict(d).prev_frame is False
    cfg = PRESETS["tiny"]
    cfg = replace(cfg, dynamics=replace(cfg.dynamics, prev_frame=False))
    wm = WorldModel.from_config(cfg, autocast=False)
    state = wm.reset(prompt(2, 1), generator=gen(0))
    a = torch.tensor([[3], [1]])
    x = torch.randn(2, 4, 16, 16, generator=gen(1))
    torch.testing.assert_close(wm._cached_denoiser(state, a, 1.5)(x, torch.tensor(0.5)),
                               wm._window_denoiser(state, a, 1.5)(x, torch.tensor(0.5)), atol=1e-4, rtol=1e-4)
    wm.save(tmp_path / "old")
    assert WorldModel.load(tmp_path / "old").config.dynamics.prev_frame is False


def test_memory_bounded_over_long_rollout():
    wm = tiny_model(context_frames=4)
    state = wm.reset(prompt(2, 2))
    nbytes = state.cache.nbytes()
    g = gen(0)
    for t in range(50):
        wm.step(state, np.array([t % 7, (t + 3) % 7]), generator=g, num_steps=1)
        assert int(state.cache.num_frames.max()) <= 4
        assert state.cache.nbytes() == nbytes
    assert state.time.tolist() == [52, 52]
    assert sorted(state.cache.times[0].tolist()) == [48, 49, 50, 51]


def test_worlds_at_different_times():
    """A vector env resets one world: worlds then have different cache fill levels and times."""
    wm = tiny_model(context_frames=4)
    state = wm.reset(prompt(2, 1))
    g = gen(0)
    for _ in range(5):
        wm.step(state, [1, 2], generator=g)
    fresh = wm.reset(prompt(1, 1, seed=9))
    state.replace(1, fresh)
    assert state.cache.num_frames.tolist() == [4, 1] and state.time.tolist() == [6, 1]
    a = torch.tensor([[3], [3]])
    x, sigma = torch.randn(2, 4, 16, 16, generator=gen(3)), torch.tensor(1.3)
    # world 1 has not slid: its cached and recomputed denoisers agree despite world 0's full window
    torch.testing.assert_close(wm._cached_denoiser(state, a, 1.5)(x, sigma)[1],
                               wm._window_denoiser(state, a, 1.5)(x, sigma)[1], atol=1e-4, rtol=1e-4)
    # a batch of one equals the same world inside the batch
    alone = state.select([1])
    f_alone, _ = wm.step(alone, [3], generator=gen(4), num_steps=2)
    sub = state.select([1, 0])
    f_both, _ = wm.step(sub, [3, 3], generator=gen(4), num_steps=2)
    assert np.abs(f_alone[0].astype(int) - f_both[0].astype(int)).max() <= 1


# ---------------------------------------------------------------------------------------------- sampling


def test_same_seed_same_rollout_different_seed_differs():
    wm = tiny_model()
    acts = [[1, 3], [3, 3], [2, 0], [3, 6]]
    a = rollout(wm, wm.reset(prompt(), generator=gen(0)), acts, seed=7)
    b = rollout(wm, wm.reset(prompt(), generator=gen(0)), acts, seed=7)
    c = rollout(wm, wm.reset(prompt(), generator=gen(0)), acts, seed=8)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert any(not np.array_equal(u, v) for u, v in zip(a, c))


def test_fork_is_independent():
    wm = tiny_model()
    state = wm.reset(prompt(1, 2), generator=gen(0))
    wm.step(state, [3], generator=gen(1))
    snapshot = state.fork()
    left, right = state.fork(), wm.fork(state)
    f_left = rollout(wm, left, [[1], [1], [1]], seed=3)
    f_right = rollout(wm, right, [[2], [2], [2]], seed=3)
    assert any(not np.array_equal(u, v) for u, v in zip(f_left, f_right))
    assert torch.equal(state.time, snapshot.time)
    for k_now, k_then in zip(state.cache.k, snapshot.cache.k):
        assert torch.equal(k_now, k_then)
    # the original continues exactly as its snapshot would
    assert all(np.array_equal(u, v) for u, v in zip(rollout(wm, state, [[1]], seed=3),
                                                     rollout(wm, snapshot, [[1]], seed=3)))


def test_guidance_one_equals_conditional():
    wm = tiny_model()
    state = wm.reset(prompt(2, 2))
    x, sigma = torch.randn(2, 1, 4, 16, 16), torch.full((2, 1), 0.9)
    a, pos = torch.tensor([[4], [5]]), state.time[:, None]
    cond = wm.denoiser(x, sigma, a, pos, cache=state.cache)
    guided = wm.denoiser.guided(x, sigma, a, pos, 1.0, cache=state.cache)
    torch.testing.assert_close(guided, cond, atol=1e-5, rtol=1e-5)
    strong = wm.denoiser.guided(x, sigma, a, pos, 3.0, cache=state.cache)
    assert not torch.allclose(strong, cond)


@pytest.mark.filterwarnings("ignore:Heun with")
def test_samplers():
    s = karras_sigmas(4, 0.002, 5.0, 7.0)
    assert s.shape == (5,) and s[-1] == 0 and torch.all(s[:-1] > s[1:])
    assert s[0].item() == pytest.approx(5.0) and s[-2].item() == pytest.approx(0.002, rel=1e-4)
    target = torch.full((3,), 0.25)
    for solver in ("euler", "heun"):  # an exact denoiser lands on its target
        x = sample(lambda x, sig: target, 5.0 * torch.randn(3), s, solver)
        torch.testing.assert_close(x, target)
    wm = tiny_model()
    for solver in ("euler", "heun"):
        f, _ = wm.step(wm.reset(prompt(1, 1)), [3], generator=gen(0), sampler=solver, num_steps=2)
        assert f.shape == (1, H, H, 3)


def test_sampler_evaluations_and_settings():
    """Euler evaluates D at every sigma of the schedule but 0 (the last step returns D(x; sigma_min)), Heun also at
    every intermediate sigma; experiments/sampler_sweep.py counts them the same way. Bad schedules are refused."""
    from experiments.sampler_sweep import nfe
    from world_model.sampler import parse_settings as parse_variant

    for solver in ("euler", "heun"):
        for steps in (1, 2, 3):
            s = karras_sigmas(steps, 0.1, 5.0, 7.0)
            seen = []
            sample(lambda x, sig: seen.append(float(sig)) or x * 0, torch.ones(2), s, solver)
            assert len(seen) == nfe(steps, solver)
            assert seen[-1] == pytest.approx(0.1 if steps > 1 else 5.0)
    # Heun's correction on a step t -> t' lands at D_c + t' eps + k (D_n - D_c), k = (t - t') / (2 t') = heun_gain
    s = karras_sigmas(2, 0.5, 5.0, 7.0)  # 5 -> 0.5 -> 0
    a, b, eps = torch.tensor([1.0]), torch.tensor([-1.0]), torch.tensor([0.3])
    x = sample(lambda x, sig: a if sig > 1 else b, a + 5.0 * eps, s[:2], "heun")
    assert heun_gain(s) == pytest.approx(4.5)
    torch.testing.assert_close(x, a + 0.5 * eps + 4.5 * (b - a))
    assert heun_gain(karras_sigmas(40, 0.1, 5.0, 7.0)) < 1 and heun_gain(karras_sigmas(1, 0.1, 5.0, 7.0)) == 0
    wm = tiny_model()
    with pytest.warns(UserWarning, match="overshoots"):
        wm.step(wm.reset(prompt(1, 1)), [3], generator=gen(0), sampler="heun", num_steps=2)
    for bad in (dict(sigma_min=0.0), dict(sigma_min=6.0), dict(rho=0.0), dict(num_steps=0)):
        with pytest.raises(ValueError):
            SamplerConfig(**bad)
    assert parse_variant("default") == {}
    assert parse_variant("num_steps=2, sigma_min=0.5,solver=heun") == {"num_steps": 2, "sigma_min": 0.5,
                                                                        "solver": "heun"}
    for bad in ("steps=2", "num_steps", "num_steps=2.5", "guidance=strong"):
        with pytest.raises(ValueError, match="num_steps|bad"):
            parse_variant(bad)


def test_bf16_autocast_close_to_fp32():
    wm = tiny_model(autocast=False)
    wm16 = WorldModel(wm.config, wm.autoencoder, wm.dynamics, autocast=True)
    f32 = rollout(wm, wm.reset(prompt(1, 1), generator=gen(0)), [[3], [1]], seed=1)
    f16 = rollout(wm16, wm16.reset(prompt(1, 1), generator=gen(0)), [[3], [1]], seed=1)
    for u, v in zip(f32, f16):
        assert np.abs(u.astype(float) - v.astype(float)).mean() < 8.0


def test_autocast_default_follows_the_hardware(monkeypatch):
    """autocast=None (the default) runs bf16 only where the device has it natively (emulated bf16 is several times
    slower than fp32 on AVX2-only CPUs); an explicit choice wins, and changing it drops the bf16 copy."""
    import world_model.hardware as hw

    for native in (False, True):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": native})
        hw._cpu_has_bf16.cache_clear()
        assert hw.bf16_native("cpu") is native and hw.resolve_bf16(None) is native
        assert hw.resolve_bf16(True) is True and hw.resolve_bf16(False) is False
        wm = WorldModel.from_config(PRESETS["tiny"])
        assert wm.autocast is native and wm._cache_dtype == (torch.bfloat16 if native else torch.float32)
        assert wm.with_sampler(guidance=2.0).autocast is native  # a re-sampled model keeps the rule, not a value
        assert WorldModel.from_config(PRESETS["tiny"], autocast=not native).autocast is (not native)
    wm._runtime()
    assert wm._bf16  # the bf16 copy of the native case
    wm.autocast = False
    assert not wm._bf16 and wm._runtime()[1] is wm.dynamics
    assert hw.bf16_native("meta") is False
    hw._cpu_has_bf16.cache_clear()  # this machine's own answer for the tests after this one


# ---------------------------------------------------------------------------------------------- checkpoints


def test_checkpoint_roundtrip(tmp_path):
    wm = tiny_model()
    wm.save(tmp_path / "fp32", dtype=None)
    wm.save(tmp_path / "fp16")
    cfg = json.loads((tmp_path / "fp32" / "config.json").read_text())
    assert cfg["format"] == "genie-world-model" and cfg["format_version"] == 1
    assert cfg["action_meanings"][0] == "action_0" and len(cfg["latent_scale"]) == 4
    loaded = WorldModel.load(tmp_path / "fp32", autocast=False)
    half = WorldModel.load(tmp_path / "fp16", autocast=False)
    acts = [[1, 3], [3, 6]]
    ref = rollout(wm, wm.reset(prompt(), generator=gen(0)), acts, seed=2)
    got = rollout(loaded, loaded.reset(prompt(), generator=gen(0)), acts, seed=2)
    assert all(np.array_equal(u, v) for u, v in zip(ref, got))
    got16 = rollout(half, half.reset(prompt(), generator=gen(0)), acts, seed=2)
    assert all(np.abs(u.astype(float) - v.astype(float)).mean() < 4.0 for u, v in zip(ref, got16))
    assert (tmp_path / "fp16" / "model.safetensors").stat().st_size < (tmp_path / "fp32" / "model.safetensors").stat().st_size


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        WorldModel.load(tmp_path / "nope")
    wm = tiny_model()
    good = wm.save(tmp_path / "good")

    def variant(name, edit):
        folder = tmp_path / name
        wm.save(folder)
        edit(folder)
        return folder

    no_json = variant("no_json", lambda f: (f / "config.json").unlink())
    with pytest.raises(CheckpointError, match="config.json"):
        WorldModel.load(no_json)
    bad_json = variant("bad_json", lambda f: (f / "config.json").write_text("{not json"))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        WorldModel.load(bad_json)
    no_weights = variant("no_weights", lambda f: (f / "model.safetensors").unlink())
    with pytest.raises(CheckpointError, match="missing"):
        WorldModel.load(no_weights)
    corrupt = variant("corrupt", lambda f: (f / "model.safetensors").write_bytes(b"\x00garbage" * 10))
    with pytest.raises(CheckpointError, match="safetensors"):
        WorldModel.load(corrupt)

    def set_key(key, value):
        def edit(f):
            cfg = json.loads((f / "config.json").read_text())
            cfg[key] = value
            (f / "config.json").write_text(json.dumps(cfg))
        return edit

    with pytest.raises(CheckpointError, match="format_version"):
        WorldModel.load(variant("v2", set_key("format_version", 2)))
    with pytest.raises(CheckpointError, match="format"):
        WorldModel.load(variant("other", set_key("format", "something-else")))
    default_dyn = PRESETS["default"].dynamics.to_dict()
    with pytest.raises(CheckpointError, match="different preset"):
        WorldModel.load(variant("mismatch", set_key("dynamics", default_dyn)))
    assert isinstance(WorldModel.load(good), WorldModel)


def test_load_autoencoder_reads_the_default_model_alone():
    """load_autoencoder("default") is the shipped model's autoencoder, weights and latent statistics alike."""
    from world_model.train_dynamics import load_autoencoder

    ae, whole = load_autoencoder("default"), WorldModel.load("default").autoencoder
    assert ae.config == whole.config and not ae.training
    mine, theirs = ae.state_dict(), whole.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_default_checkpoint_missing_is_explained(monkeypatch, tmp_path):
    import world_model.inference as inference

    monkeypatch.setattr(inference, "DEFAULT_CHECKPOINT", tmp_path / "checkpoints" / "default")
    with pytest.raises(CheckpointError, match="genie-train"):
        WorldModel.load("default")


def test_parameter_counts_of_presets():
    assert Autoencoder(PRESETS["default"].autoencoder).num_parameters() < 2_500_000
    assert Dynamics(PRESETS["default"].dynamics).num_parameters() < 14_000_000


def test_fine_autoencoder_preset_keeps_space_and_the_token_count():
    """The "fine" autoencoder halves the frame once (a 32 x 32 x 4 latent); dynamics reading it in 4 x 4 patches
    have the default latent's 64 tokens a frame, and a frame round-trips to its own shape."""
    from world_model.autoencoder import PRESETS as AE_PRESETS

    ae = Autoencoder(AE_PRESETS["fine"]).eval()
    assert (AE_PRESETS["fine"].downsample, AE_PRESETS["fine"].latent_size) == (2, 32)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        z = ae.encode(x)
        assert z.shape == (2, 4, 32, 32) and ae.decode(z).shape == x.shape
    fine = replace(PRESETS["tiny"].dynamics, latent_size=32, patch_size=4)
    assert fine.tokens_per_frame == replace(PRESETS["tiny"].dynamics, latent_size=16, patch_size=2).tokens_per_frame
    assert ae.num_parameters() < Autoencoder(AE_PRESETS["default"]).num_parameters()
    wm = WorldModel.from_config(replace(PRESETS["tiny"], autoencoder=AE_PRESETS["fine"], dynamics=fine))
    f, state = wm.step(wm.reset(prompt(1, 2)), [1], generator=gen(0))
    assert f.shape == (1, H, H, 3) and state.time.tolist() == [3]


def test_attention_scratch_space_equals_concatenation():
    """The cached step writes its new keys/values into the cache's scratch space and attends to one buffer; that
    must equal concatenating the cache with them (the path taken with gradients or another dtype)."""
    from world_model.dynamics import PRESETS, Attention, KVCache, rope_angles

    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    attn = Attention(cfg)
    B, N, S = 2, cfg.tokens_per_frame, cfg.context_frames
    cache = KVCache.empty(cfg, B, "cpu")
    assert cache.k[0].shape[2] == (S + KVCache.SCRATCH_FRAMES) * N
    for buf in (cache.k[0], cache.v[0]):
        buf.normal_()
    x = torch.randn(B, 2 * N, cfg.width)
    cos, sin = rope_angles(torch.tensor([[5, 5]] * B), cfg.head_dim, cfg.rope_base)
    past_k, past_v = cache.k[0][:, :, :S * N].clone(), cache.v[0][:, :, :S * N].clone()
    with torch.enable_grad():  # the concatenating path
        want, _, _ = attn(x, cos, sin, None, past_k, past_v, S * N)
    with torch.no_grad():  # the scratch path, in place in the cache's buffers
        got, k, _ = attn(x, cos, sin, None, cache.k[0], cache.v[0], S * N)
    torch.testing.assert_close(got, want.detach())
    torch.testing.assert_close(cache.k[0][:, :, S * N:], k)  # the new keys sit in the scratch space
    torch.testing.assert_close(cache.k[0][:, :, :S * N], past_k)  # the cached ones are untouched


def test_psnr_is_per_frame_capped_and_averaged_by_the_caller():
    from world_model.metrics import PSNR_CAP, psnr, ssim

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0] ^= 1  # one frame off by one level in every value: MSE 1, 48.13 dB
    p = psnr(a, b)
    assert p.shape == (2, 3) and p[0, 0] == pytest.approx(10 * np.log10(255.0**2))
    assert (p.flatten()[1:] == PSNR_CAP).all()
    assert ssim(a, a).shape == (2, 3) and np.allclose(ssim(a, a), 1.0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, b[:1])


def test_action_meanings_come_from_the_config(tmp_path):
    """A checkpoint names its actions as its recordings did; one that names none gets action_0, action_1, ..."""
    wm = tiny_model()
    named = replace(wm.config, action_meanings=("a", "b", "c", "d", "e", "f", "g"))
    WorldModel(named, wm.autoencoder, wm.dynamics).save(tmp_path / "named")
    assert WorldModel.load(tmp_path / "named").action_meanings == ("a", "b", "c", "d", "e", "f", "g")
    cfg = json.loads((tmp_path / "named" / "config.json").read_text())
    del cfg["action_meanings"]
    (tmp_path / "named" / "config.json").write_text(json.dumps(cfg))
    assert WorldModel.load(tmp_path / "named").action_meanings == tuple(f"action_{i}" for i in range(7))
    with pytest.raises(ValueError, match="name every action or none"):
        replace(wm.config, action_meanings=("a", "b"))


def test_guidance_only_above_a_noise_level():
    """guidance_min_sigma: guided steps at sigma >= it, unguided below. Above every sigma of the schedule the step
    equals the unguided one; at 0 it equals the fully guided one; in between it is neither."""
    wm = tiny_model()
    state = wm.reset(prompt(2, 1))

    def frame(**settings):
        return wm.with_sampler(**{"num_steps": 3, "sigma_min": 0.1, "guidance": 3.0, **settings}).step(
            state.fork(), [3, 1], generator=gen(0))[0].astype(int)

    unguided, guided = frame(guidance_min_sigma=6.0), frame(guidance_min_sigma=0.0)
    assert np.array_equal(unguided, frame(guidance=1.0))
    assert np.array_equal(guided, frame(guidance_min_sigma=0.05))
    first_only = frame(guidance_min_sigma=1.0)  # schedule 5 -> 0.93 -> 0.1: guided on the first step only
    assert not np.array_equal(first_only, guided) and not np.array_equal(first_only, unguided)
    with pytest.raises(ValueError, match="guidance_min_sigma"):
        SamplerConfig(guidance_min_sigma=-1.0)


def test_sampler_config_of_an_older_checkpoint_guides_every_step():
    """A config saved before guidance_min_sigma existed keeps sampling as it did (guidance at every step); new
    configs round-trip."""
    old = {"num_steps": 2, "sigma_min": 0.5, "sigma_max": 5.0, "rho": 7.0, "solver": "euler", "guidance": 1.5}
    assert SamplerConfig.from_dict(old).guidance_min_sigma == 0.0
    new = SamplerConfig()
    assert new.guidance_min_sigma > 0 and SamplerConfig.from_dict(new.to_dict()) == new


def test_observe_continues_as_a_longer_prompt():
    """observe(frames, actions) after a one-frame reset gives the world the context a reset on all the frames gives
    (the same cached keys up to float error, the same next frames), advances its time, and a bad call changes
    nothing."""
    wm = tiny_model(context_frames=6)
    frames, acts = prompt(1, 3, seed=4), np.array([[1, 3]])
    longer = wm.reset(frames, prompt_actions=acts, generator=gen(0))
    g = gen(0)
    observed = wm.observe(wm.reset(frames[:, :1], generator=g), frames[:, 1:], acts, generator=g)
    assert observed.time.tolist() == longer.time.tolist() == [3]
    S, N = wm.config.dynamics.context_frames, wm.config.dynamics.tokens_per_frame  # slots; scratch space after
    assert torch.equal(observed.cache.valid, longer.cache.valid)
    for k_obs, k_long in zip(observed.cache.k, longer.cache.k):
        torch.testing.assert_close(k_obs[:, :, :S * N], k_long[:, :, :S * N], atol=1e-4, rtol=1e-4)
    for u, v in zip(rollout(wm, observed, [[2], [3]], seed=5), rollout(wm, longer, [[2], [3]], seed=5)):
        assert np.abs(u.astype(int) - v.astype(int)).max() <= 1
    before = observed.fork()
    with pytest.raises(ValueError, match="frames must be uint8"):
        wm.observe(observed, prompt(2, 1), [[1], [1]])  # two worlds' frames for a one-world state
    with pytest.raises(ValueError, match="actions must be in"):
        wm.observe(observed, prompt(1, 1), [[9]])
    assert observed.time.tolist() == before.time.tolist()
    assert all(torch.equal(a, b) for a, b in zip(observed.cache.k, before.cache.k))
