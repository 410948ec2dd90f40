"""Training on the model's own frames: context-noise augmentation up to context_sigma_max, the autoregressive unroll
and the counterfactual branch loss each change what they should and nothing else; the defaults train exactly as
before; resume refuses changed knobs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from test_training import MovingSquares, args
from world_model import WorldModel
from world_model.autoencoder import frames_to_pixels
from world_model.checkpoint import CheckpointError
from world_model.diffusion import Denoiser, DiffusionConfig
from world_model.dynamics import PRESETS, Dynamics
from world_model.sampler import SamplerConfig
from world_model.shards import Branches, Episode, ShardMeta, shard_name, write_shard
from world_model.train_dynamics import DynamicsArgs, fingerprint
from world_model.training import train

T_EP = 9  # frames per recorded test episode
NUM_ACTIONS = 7


def old_loss(den: Denoiser, y, actions, generator):
    """Denoiser.loss as it was before the unroll / branch knobs (verbatim), the reference of the defaults."""
    import math  # noqa: F401

    cfg, dyn_cfg = den.config, den.dynamics.config
    B, T = y.shape[:2]
    dev = y.device
    cond = torch.cat([torch.full((B, 1), dyn_cfg.start_action, device=dev, dtype=torch.long), actions[:, :-1]], 1)
    drop = torch.rand((B, T), generator=generator, device=dev) < cfg.null_action_prob
    cond = torch.where(drop, torch.full_like(cond, dyn_cfg.null_action), cond)
    sigma = den.sample_sigma((B, T), generator, dev)
    if cfg.objective == "forcing":
        is_context = torch.rand((B, T), generator=generator, device=dev) < cfg.context_prob
        sigma = torch.where(is_context, den.sample_context_sigma((B, T), generator, dev), sigma)
    else:
        is_context = torch.ones((B, T), dtype=torch.bool, device=dev)
        is_context[:, -1] = False
        lo = cfg.context_sigma / 10
        aug = lo + (cfg.augment_sigma_max - lo) * torch.rand((B, T), generator=generator, device=dev)
        sigma = torch.where(is_context, aug, sigma)
    noise = torch.randn(y.shape, generator=generator, device=dev)
    x = y + sigma[..., None, None, None] * noise
    cs = den.compute_conditioners(sigma)
    positions = torch.arange(T, device=dev).expand(B, T)
    F_x = den.dynamics(cs.network_input(x), cs.c_noise, cond, positions)
    target = cs.network_target(y, x)
    err = (F_x.float() - target).pow(2)
    if cfg.change_weight > 0:
        err = err * den.change_weights(y)
    per_frame = err.mean(dim=(2, 3, 4))
    weight = (~is_context).float()
    return (per_frame * weight).sum() / weight.sum().clamp_min(1.0)


def spy(dyn: Dynamics) -> dict:
    """Make the window forward of `dyn` return F = 0 and record what it saw: sigma, conditioning actions, inputs."""
    seen = {}

    def zero_net(x_in, c_noise, actions, positions, frame_valid=None, prev=None):
        seen.update(x_in=x_in, sigma=(4 * c_noise).exp(), cond=actions, frame_valid=frame_valid)
        return torch.zeros_like(x_in)

    dyn.forward = zero_net
    return seen


def targets_sq(den: Denoiser, y, seen) -> torch.Tensor:
    """Per-frame mean squared F-space target (B, T): the loss of each frame when F = 0."""
    cs = den.compute_conditioners(seen["sigma"])
    c_skip, c_out, c_in = (c[..., None, None, None] for c in (cs.c_skip, cs.c_out, cs.c_in))
    return ((y - c_skip * seen["x_in"] / c_in) / c_out).pow(2).mean(dim=(2, 3, 4))


# ---------------------------------------------------------------------------------------------- defaults


def test_defaults_and_disabled_knobs_give_the_loss_of_before():
    """The default config (and each new knob switched off another way) draws the same noise and gives the same loss
    as the loss before the knobs existed, bit for bit."""
    torch.manual_seed(0)
    dyn = Dynamics(PRESETS["tiny"])
    y, actions = torch.randn(3, 5, 4, 16, 16), torch.randint(0, 7, (3, 5))
    configs = [DiffusionConfig(), DiffusionConfig(context_sigma_min=0.01), DiffusionConfig(objective="augment"),
               DiffusionConfig(change_weight=1.0)]
    for cfg in configs:
        ref = old_loss(Denoiser(cfg, dyn), y, actions, torch.Generator().manual_seed(3))
        for off in ({}, {"unroll_steps": 3}, {"unroll_prob": 1.0}, {"branch_share": 0.5}, {"branch_weight": 4.0}):
            den = Denoiser(replace(cfg, **off), dyn)
            loss = den.loss(y, actions, torch.Generator().manual_seed(3))
            assert torch.equal(loss, ref), (cfg, off)
            # ... also with an all-window group (no branch rows) and all frames valid
            loss = den.loss(y, actions, torch.Generator().manual_seed(3), group=torch.full((3,), -1))
            assert torch.equal(loss, ref), (cfg, off)
    defaults = DiffusionConfig()
    assert (defaults.context_sigma_max, defaults.context_sigma_draw, defaults.unroll_steps, defaults.unroll_prob,
            defaults.branch_share, defaults.branch_weight) == (None, "log_uniform", 0, 0.0, 0.0, 1.0)
    assert not defaults.unrolls and defaults.context_sigma_range is None


# ---------------------------------------------------------------------------------------------- context noise


def test_context_sigma_max_widens_the_training_levels_only():
    """context_sigma_max draws context levels in [context_sigma, max] (uniformly with context_sigma_draw="uniform")
    and changes nothing else of the draw: same targets, same target levels; sampling still caches at
    context_sigma."""
    dyn = Dynamics(PRESETS["tiny"])
    seen = spy(dyn)
    y, actions = torch.randn(64, 6, 4, 16, 16), torch.randint(0, 7, (64, 6))
    sig = {}
    for name, extra in {"fixed": {}, "log": {"context_sigma_max": 0.7},
                        "uniform": {"context_sigma_max": 0.7, "context_sigma_draw": "uniform"}}.items():
        den = Denoiser(DiffusionConfig(context_sigma=0.01, **extra), dyn)
        den.loss(y, actions, torch.Generator().manual_seed(0))
        sig[name] = seen["sigma"]
    ctx = (sig["fixed"] - 0.01).abs() < 1e-7  # the context frames of the fixed-level draw
    assert 0.3 < ctx.float().mean() < 0.7
    for name in ("log", "uniform"):
        torch.testing.assert_close(sig[name][~ctx], sig["fixed"][~ctx])  # targets: untouched
        c = sig[name][ctx]
        assert c.min() >= 0.01 - 1e-6 and c.max() <= 0.7 + 1e-5 and len(torch.unique(c)) > 100
    den = Denoiser(DiffusionConfig(context_sigma=0.01, context_sigma_max=0.7, context_sigma_draw="uniform"), dyn)
    levels = den.sample_context_sigma((20000,), torch.Generator().manual_seed(0), "cpu")
    assert abs(float(levels.mean()) - 0.355) < 0.01  # uniform on [0.01, 0.7]
    den = Denoiser(DiffusionConfig(context_sigma=0.01, context_sigma_max=0.7), dyn)
    levels = den.sample_context_sigma((20000,), torch.Generator().manual_seed(0), "cpu")
    assert abs(float(levels.median()) - (0.01 * 0.7) ** 0.5) < 0.01  # log-uniform: the geometric mean
    both = DiffusionConfig(context_sigma=0.05, context_sigma_min=0.01, context_sigma_max=0.7)
    assert both.context_sigma_range == (0.01, 0.7) and both.trained_context_sigma == [0.01, 0.7]
    for bad in ({"context_sigma_max": 0.1}, {"context_sigma_max": 0.05}, {"context_sigma_draw": "normal"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DiffusionConfig(context_sigma=0.1, **bad)


# ---------------------------------------------------------------------------------------------- unroll


def test_unroll_puts_detached_own_predictions_in_the_context():
    """unroll_steps u: frames [s, s+u) of an unrolled window are `rollout`'s predictions (no gradient), at
    context_sigma and without loss; frame s+u is a target; the rest is the usual draw."""
    torch.manual_seed(0)
    dyn = Dynamics(PRESETS["tiny"])
    y = torch.randn(3, 6, 4, 16, 16, requires_grad=True)
    actions = torch.randint(0, 7, (3, 6))
    den = Denoiser(DiffusionConfig(unroll_steps=2, unroll_prob=1.0, null_action_prob=0.0), dyn,
                   sampler=SamplerConfig(num_steps=2, guidance=1.5))
    calls = []
    rollout = den.rollout

    def recording_rollout(y_in, cond, steps, generator):
        out = rollout(y_in, cond, steps, generator)
        calls.append((y_in.detach().clone(), cond.clone(), steps, out))
        return out

    den.rollout = recording_rollout
    loss = den.loss(y, actions, torch.Generator().manual_seed(1))
    loss.backward()  # real network: the loss has a graph, the predictions none
    (y_in, cond, steps, pred), = calls
    s = y_in.shape[1]
    assert steps == 2 and 1 <= s <= 6 - 1 - 2 and cond.shape == (3, s + 2)
    assert pred.grad_fn is None and not pred.requires_grad and pred.shape == (3, 2, 4, 16, 16)
    torch.testing.assert_close(y_in, y.detach()[:, :s])  # generated from the true earlier frames
    start = torch.full((3, 1), dyn.config.start_action)
    torch.testing.assert_close(cond, torch.cat([start, actions[:, :-1]], 1)[:, : s + 2])  # their recorded actions
    assert y.grad is not None and float(y.grad[:, s : s + 2].abs().max()) == 0.0  # replaced frames: no gradient

    # with F = 0: the unrolled frames enter at context_sigma (their inputs are the predictions plus that noise),
    # carry no loss, and the frame after them is a target
    seen = spy(dyn)
    calls.clear()
    y0 = y.detach()
    loss = den.loss(y0, actions, torch.Generator().manual_seed(1))
    (_, _, _, pred), = calls
    sigma = seen["sigma"]
    torch.testing.assert_close(sigma[:, s : s + 2], torch.full((3, 2), 0.1))
    assert bool(((sigma[:, s + 2] - 0.1).abs() > 1e-6).all())
    cs = den.compute_conditioners(sigma)
    x = seen["x_in"] / cs.c_in[..., None, None, None]
    assert float((x[:, s : s + 2] - pred).abs().max()) < 0.1 * 6  # prediction + N(0, 0.1^2) noise
    assert float((x[:, s : s + 2] - y0[:, s : s + 2]).abs().mean()) > 0.2  # not the data
    ctx = (sigma - 0.1).abs() < 1e-6
    torch.testing.assert_close(loss, targets_sq(den, y0, seen)[~ctx].mean())
    with pytest.raises(ValueError, match="unroll_steps"):
        den.loss(y0[:, :3], actions[:, :3], torch.Generator().manual_seed(1))


@pytest.mark.parametrize("attention", ["frame_causal", "factorised"])
def test_rollout_steps_as_the_world_model_does(attention):
    """One Euler step (num_steps=1, no guidance) of `rollout` is D(x; sigma_max) of fresh noise with the true frames
    at context_sigma as context: the window forward over [context, new frame] gives the same frame."""
    torch.manual_seed(0)
    dyn = Dynamics(replace(PRESETS["tiny"], attention=attention)).eval()
    cfg = DiffusionConfig(context_sigma=0.05)
    den = Denoiser(cfg, dyn, sampler=SamplerConfig(num_steps=1, guidance=1.0, sigma_max=5.0))
    y = torch.randn(2, 3, 4, 16, 16)
    cond = torch.tensor([[7, 1, 2, 3], [7, 4, 5, 6]])
    with torch.no_grad():
        pred = den.rollout(y, cond, 1, torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        x_ctx = y + 0.05 * torch.randn(y.shape, generator=g)
        x_new = 5.0 * torch.randn((2, 4, 16, 16), generator=g)
        sig = torch.tensor([[0.05, 0.05, 0.05, 5.0]]).expand(2, 4)
        ref = den(torch.cat([x_ctx, x_new[:, None]], 1), sig, cond, torch.arange(4).expand(2, 4))[:, -1]
    torch.testing.assert_close(pred[:, 0], ref, atol=2e-4, rtol=1e-3)


# ---------------------------------------------------------------------------------------------- branches


def square(x: int, y: int, color: int) -> np.ndarray:
    return MovingSquares.render(x, y, color)


def branched_episode(rng: np.random.Generator, sources: tuple[int, ...]) -> Episode:
    """An episode of T_EP frames of a moving square, branched at `sources` under every action."""
    x, y = (int(v) for v in rng.integers(8, 44, 2))
    c = int(rng.integers(4))
    actions = rng.integers(0, NUM_ACTIONS, T_EP).astype(np.int16)
    actions[-1] = -1
    frames, states = [], []
    move = {1: (-4, 0), 2: (4, 0), 3: (0, -4), 6: (0, 4)}
    for a in actions:
        frames.append(square(x, y, c))
        states.append((x, y))
        dx, dy = move.get(int(a), (0, 0))
        x, y = int(np.clip(x + dx, 0, 52)), int(np.clip(y + dy, 0, 52))
    b_src, b_act, b_frames = [], [], []
    for j in sources:
        for a in range(NUM_ACTIONS):
            dx, dy = move.get(a, (0, 0))
            bx, by = int(np.clip(states[j][0] + 3 * dx, 0, 52)), int(np.clip(states[j][1] + 3 * dy, 0, 52))
            b_src.append(j)
            b_act.append(a)
            b_frames.append(square(bx, by, (c + a) % 4))  # each action its own, distinct frame
    branches = Branches(sources=np.array(b_src, np.int64), actions=np.array(b_act, np.int16),
                        frames=np.stack(b_frames)) if sources else None
    return Episode(frames=np.stack(frames), actions=actions, rewards=np.zeros(T_EP, np.float32),
                   success=np.zeros(T_EP, bool), split="train", branches=branches)


def record(folder: Path, sources_per_episode: list[tuple[int, ...]]) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    meta = ShardMeta(env_id="test/Squares-v0", frame_shape=(64, 64, 3),
                     action_meanings=tuple(f"a{i}" for i in range(NUM_ACTIONS)))
    write_shard(folder / shard_name(0), [branched_episode(rng, s) for s in sources_per_episode], meta)
    return folder


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ae") / "run"
    train(args("autoencoder", run, 2), data=MovingSquares(1))
    return run


@pytest.fixture(scope="module")
def branch_data(tmp_path_factory) -> Path:
    # episode 0 branches at frames 6 and 1 (1: too early for a full window of 5: padded), episode 1 at frame 8
    return record(tmp_path_factory.mktemp("rec") / "branches", [(1, 6), (), (8,)])


def dyn_args(out: Path, ae: Path, data: Path, **kw) -> DynamicsArgs:
    kw = {"batch_size": 4, **kw}
    return args("dynamics", out, kw.pop("steps", 2), autoencoder=str(ae), window=5, data=(str(data),), split="train",
                **kw)


def test_branch_rows_train_each_branch_under_its_own_action_and_target(ae_run, branch_data, tmp_path):
    """branch_share: the batch's last rows are groups of one branched state, each row the recorded context and one
    branch's action leading to its own frame; the loss is that frame's alone, with context shared in the group."""
    t = dyn_args(tmp_path / "run", ae_run, branch_data, branch_share=1.0).trainer()
    ep = t.data.episodes
    assert ep.num_branches == 21 and t.branch_latents.shape == (21, *t.latents.shape[1:])
    br = t.branches
    assert br.num_states == 3
    seen_padded = False
    for step in range(20):
        latents, actions, group, valid, _ = t.batch(np.random.default_rng(step))
        assert latents.shape[:2] == (4, 5) and (group >= 0).all()
        ids, groups = br.sample(4, np.random.default_rng(step))  # the same draw, to know which branch each row is
        torch.testing.assert_close(group, torch.from_numpy(groups))
        for r, g in enumerate(ids):
            torch.testing.assert_close(latents[r, -1], t.branch_latents[g].float())  # its own target frame
            assert int(actions[r, -2]) == int(ep.branch_actions[g])  # ... under its own action
            src = int(br.source[g])
            n_ctx = min(4, src - int(br.episode_start[g]) + 1)  # recorded frames before and at the source
            torch.testing.assert_close(latents[r, 4 - n_ctx : 4], t.latents[src - n_ctx + 1 : src + 1].float())
            if n_ctx < 4:
                seen_padded = True
                assert valid is not None and not valid[r, : 4 - n_ctx].any() and valid[r, 4 - n_ctx :].all()
        for g in groups.tolist():  # a group shares its context
            rows = np.flatnonzero(groups == g)
            assert len({int(br.source[ids[r]]) for r in rows}) == 1
            assert len({int(ep.branch_actions[ids[r]]) for r in rows}) == len(rows)
    assert seen_padded

    # the loss: only each row's last frame, conditioned on the row's own branch action; context shared
    den = t.denoiser
    seen = spy(t.dyn)
    latents, actions, group, valid, _ = t.batch(np.random.default_rng(0))
    loss = t.objective.loss(latents, actions, group, valid, None, torch.Generator().manual_seed(0))
    null = t.dyn.config.null_action  # (classifier-free guidance drops an action now and then)
    assert ((seen["cond"][:, -1] == actions[:, -2]) | (seen["cond"][:, -1] == null)).all()
    assert (seen["cond"][:, -1] == actions[:, -2]).any()
    torch.testing.assert_close(loss, targets_sq(den, latents, seen)[:, -1].mean())
    first = {}
    for r, g in enumerate(group.tolist()):
        first.setdefault(g, r)
        f = first[g]
        torch.testing.assert_close(seen["sigma"][r, :-1], seen["sigma"][f, :-1])
        torch.testing.assert_close(seen["x_in"][r, :-1], seen["x_in"][f, :-1])
        torch.testing.assert_close(seen["cond"][r, :-1], seen["cond"][f, :-1])
    assert seen["sigma"][:, :-1].max() <= 0.1 + 1e-6  # context frames at the context level
    # padded rows: the first real frame is conditioned on START, padding attended by nothing
    latents, actions, group, valid, _ = next(b for b in (t.batch(np.random.default_rng(s)) for s in range(40))
                                          if b[3] is not None)
    first_real = valid & ~torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], 1)
    first_real[:, 0] = False  # frame 0 is START anyway
    assert first_real.any()
    conds = set()
    for seed in range(5):
        t.objective.loss(latents, actions, group, valid, None, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(seen["frame_valid"], valid)
        conds |= set(seen["cond"][first_real].tolist())
    assert conds <= {t.dyn.config.start_action, null} and t.dyn.config.start_action in conds  # START (or dropped)

    # a mixed batch: windows first (as without branches, same draw), then the branch rows
    t2 = dyn_args(tmp_path / "mixed", ae_run, branch_data, branch_share=0.5, branch_weight=3.0).trainer()
    plain = dyn_args(tmp_path / "plain", ae_run, branch_data, batch_size=2).trainer()
    lat, act, group, _, _ = t2.batch(np.random.default_rng(7))
    lat0, act0, g0, v0, _ = plain.batch(np.random.default_rng(7))
    assert g0 is None and v0 is None
    torch.testing.assert_close(lat[:2], lat0)
    torch.testing.assert_close(act[:2], act0)
    assert group.tolist()[:2] == [-1, -1] and (group[2:] >= 0).all()
    # branch_weight: a branch row's target counts that many window targets in the mean
    seen = spy(t2.dyn)
    loss = t2.objective.loss(lat, act, group, None, None, torch.Generator().manual_seed(0))
    per_frame = targets_sq(t2.denoiser, lat, seen)
    ctx = (seen["sigma"] - 0.1).abs() < 1e-6
    w = (~ctx).float()
    w[2:, :-1] = 0
    w[2:, -1] = 3.0
    torch.testing.assert_close(loss, (per_frame * w).sum() / w.sum())
    with pytest.raises(ValueError, match="branch"):
        dyn_args(tmp_path / "none", ae_run, record(tmp_path / "plainrec", [(), ()]), branch_share=0.5).trainer()


def test_latent_cache_holds_branches_and_rebuilds_old_caches(ae_run, branch_data, tmp_path):
    """Branch frames are encoded into the cache; a cache written before branches existed is rebuilt for data with
    branches, and kept for data without."""
    from safetensors.torch import load_file, save_file

    t = dyn_args(tmp_path / "run", ae_run, branch_data).trainer()
    path = tmp_path / "run" / "latents.safetensors"
    stored = load_file(str(path))
    assert stored["branch_latents"].shape[0] == 21
    with torch.no_grad():
        ref = t.ae.encode(frames_to_pixels(torch.from_numpy(t.data.episodes.branch_frames[:3])))
    assert float((stored["branch_latents"][:3].float() - ref).abs().mean()) < 0.1  # the frames' own latents

    def old_key(trainer) -> str:  # the fingerprint before branches
        a, ep = trainer.args, trainer.data.episodes
        import hashlib

        h = hashlib.sha256()
        for k, v in sorted(trainer.ae.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes())
        return fingerprint(ep.num_frames, ep.frames.shape, list(a.data), a.split, a.views, h.hexdigest(), a.bf16)

    # an old cache (latents only, the old key) for data with branches: rebuilt, not misread
    save_file({"latents": stored["latents"],
               "key": torch.tensor(list(old_key(t).encode()), dtype=torch.uint8)}, str(path))
    t = dyn_args(tmp_path / "run", ae_run, branch_data).trainer()
    assert load_file(str(path))["branch_latents"].shape[0] == 21 and t.branch_latents.shape[0] == 21
    # data without branches keeps the old key: an old cache is still read (here: a marked one)
    plain = record(tmp_path / "plainrec", [(), ()])
    p = dyn_args(tmp_path / "plain", ae_run, plain).trainer()
    ppath = tmp_path / "plain" / "latents.safetensors"
    assert bytes(load_file(str(ppath))["key"].tolist()).decode() == old_key(p)
    marked = load_file(str(ppath))["latents"].clone()
    marked[0] = 7
    save_file({"latents": marked, "key": torch.tensor(list(old_key(p).encode()), dtype=torch.uint8)}, str(ppath))
    p = dyn_args(tmp_path / "plain", ae_run, plain).trainer()
    assert float(p.latents[0].float().mean()) == 7 and p.branch_latents.shape[0] == 0


# ---------------------------------------------------------------------------------------------- runs


def test_knobs_are_recorded_and_resume_refuses_changes(ae_run, branch_data, tmp_path):
    """A run with every knob on trains, records the knobs in its checkpoint config, and refuses to resume with any
    of them changed; --unroll-steps too large for the window is refused up front."""
    knobs = dict(context_sigma=0.01, context_sigma_max=0.7, context_sigma_draw="uniform", unroll_steps=2,
                 unroll_prob=0.5, branch_share=0.5, branch_weight=4.0)
    a = dyn_args(tmp_path / "run", ae_run, branch_data, steps=2, **knobs)
    t = a.trainer()
    t.run()
    assert np.isfinite(json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])["loss"])
    cfg = json.loads((tmp_path / "run" / "ckpt-00000002" / "config.json").read_text())
    assert {k: cfg["diffusion"][k] for k in knobs} == knobs
    assert WorldModel.load(tmp_path / "run").config.diffusion.context_sigma == 0.01  # the sampling level
    changed = dict(context_sigma_max=0.5, context_sigma_draw="log_uniform", unroll_steps=1, unroll_prob=0.25,
                   branch_share=0.25, branch_weight=1.0)
    for k, v in changed.items():
        flag = "--" + k.replace("_", "-")
        with pytest.raises(CheckpointError, match=f"{k}=.*\\({flag}"):
            replace(a, **{k: v}).trainer().resume()
    # export picks another sampling level; the trained range stays in the metadata
    from world_model.train_cli import main

    assert main(["export", "--dynamics", str(tmp_path / "run"), "--out", str(tmp_path / "x"),
                 "--context-sigma", "0.02"]) == 0
    x = WorldModel.load(tmp_path / "x")
    assert x.config.diffusion.context_sigma == 0.02 and x.config.diffusion.context_sigma_max is None
    assert x.training_metadata["trained_context_sigma"] == [0.01, 0.7]
    with pytest.raises(ValueError, match="unroll_steps"):
        dyn_args(tmp_path / "bad", ae_run, branch_data, unroll_steps=4)
