"""View conditioning: the dynamics' view embedding (zero at init), models without one ignore the view, training
with --view-conditioning (from scratch and --init-from an unconditioned checkpoint), and old configs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from world_model import PRESETS, WorldModel
from world_model.diffusion import Denoiser
from world_model.dynamics import VIEW_IDS, DynamicsConfig
from world_model.train_dynamics import DynamicsArgs

from test_training import H, MovingSquares, args, log_steps

VIEWED = replace(PRESETS["tiny"], dynamics=replace(PRESETS["tiny"].dynamics, views=len(VIEW_IDS)))


def randomised(cfg, seed: int = 0, view_emb: bool = False) -> WorldModel:
    """A tiny fp32 model whose zero-initialised layers are random (so every input matters); the view embedding
    stays zero unless view_emb."""
    torch.manual_seed(seed)
    wm = WorldModel.from_config(cfg, autocast=False)
    with torch.no_grad():
        for name, p in wm.dynamics.named_parameters():
            if not p.any() and (view_emb or not name.startswith("view_emb")):
                p.normal_(0.0, 0.1)
    return wm


def prompt(B: int, k: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (B, k, H, H, 3), dtype=np.uint8)


def rollout(wm: WorldModel, view, steps: int = 2, use_kv_cache: bool = True) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    state = wm.reset(prompt(2), generator=g, view=view)
    out = []
    for _ in range(steps):
        f, state = wm.step(state, [1, 2], generator=g, num_steps=2, use_kv_cache=use_kv_cache)
        out.append(f)
    return np.stack(out)


def window_output(wm: WorldModel, view) -> torch.Tensor:
    B, T = 2, 3
    torch.manual_seed(1)
    x = torch.randn(B, T, 4, 16, 16)
    return wm.dynamics(x, torch.zeros(B, T), torch.ones(B, T, dtype=torch.long), torch.arange(T).expand(B, T),
                       view=view)


def test_view_embedding_starts_at_zero_then_the_view_matters():
    wm = randomised(VIEWED)
    assert not wm.dynamics.view_emb.weight.any()  # zero-initialised: the view changes nothing yet
    np.testing.assert_array_equal(rollout(wm, "first_person"), rollout(wm, "top_down"))
    np.testing.assert_array_equal(rollout(wm, "top_down"), rollout(wm, None))
    wm = randomised(VIEWED, view_emb=True)
    ids = lambda *v: torch.tensor([VIEW_IDS[n] for n in v])  # noqa: E731
    fp, td = window_output(wm, ids("first_person", "first_person")), window_output(wm, ids("top_down", "top_down"))
    assert not torch.allclose(fp, td)
    mixed = window_output(wm, ids("first_person", "top_down"))  # one view per sequence
    torch.testing.assert_close(mixed[0], fp[0])
    torch.testing.assert_close(mixed[1], td[1])
    torch.testing.assert_close(window_output(wm, None), window_output(wm, torch.full((2,), VIEWED.dynamics.views)))
    for cached in (True, False):  # the KV-cache path and the recompute path both see the world's view
        a, b = rollout(wm, "first_person", use_kv_cache=cached), rollout(wm, "top_down", use_kv_cache=cached)
        assert not np.array_equal(a, b)
        both = rollout(wm, ["first_person", "top_down"], use_kv_cache=cached)
        np.testing.assert_array_equal(both[:, 0], a[:, 0])
        np.testing.assert_array_equal(both[:, 1], b[:, 1])
    state = wm.reset(prompt(2), view=["top_down", None])
    assert state.select([1, 0]).cache.views.tolist() == [VIEW_IDS["top_down"], VIEWED.dynamics.views][::-1]
    with pytest.raises(ValueError, match="first_person, top_down"):
        wm.reset(prompt(1), view="isometric")
    with pytest.raises(ValueError, match="one per world"):
        wm.reset(prompt(2), view=["top_down"])
    with pytest.raises(ValueError, match="views must be 0"):
        DynamicsConfig(views=3)


def test_view_dropout_replaces_the_view_by_the_unknown_one():
    wm = randomised(VIEWED, view_emb=True)
    y, actions = torch.randn(2, 3, 4, 16, 16), torch.ones(2, 3, dtype=torch.long)
    view = torch.tensor([VIEW_IDS["top_down"]] * 2)

    def loss(dropout: float, v) -> float:
        den = Denoiser(replace(VIEWED.diffusion, view_dropout=dropout), wm.dynamics)
        return den.loss(y, actions, torch.Generator().manual_seed(0), view=v).item()

    assert loss(1.0, view) == loss(0.0, None) == loss(1.0, None)  # all dropped: the unknown view
    assert loss(0.0, view) != loss(0.0, None)


def test_models_without_view_conditioning_ignore_the_view():
    wm = randomised(PRESETS["tiny"])
    assert "view_emb.weight" not in wm.dynamics.state_dict()
    base = rollout(wm, None)
    for view in ("first_person", "top_down", ["top_down", None]):
        np.testing.assert_array_equal(rollout(wm, view), base)
        np.testing.assert_array_equal(rollout(wm, view, use_kv_cache=False), rollout(wm, None, use_kv_cache=False))
    torch.testing.assert_close(window_output(wm, torch.tensor([0, 1])), window_output(wm, None), rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown views"):  # the names are checked all the same
        wm.reset(prompt(1), view="isometric")


def record_both_views(folder, meanings=tuple(map(str, range(7))), views=("first_person", "top_down")) -> None:
    """Four recorded episodes of moving squares, their views taking turns in `views`; actions named `meanings`."""
    from world_model.shards import Episode, ShardMeta, write_shard

    rng = np.random.default_rng(0)
    folder.mkdir()
    episodes = []
    for i in range(4):
        frames, actions = MovingSquares(1).episode(rng, 10)
        actions[-1] = -1
        episodes.append(Episode(frames=frames, actions=actions.astype(np.int16), rewards=np.zeros(10, np.float32),
                                success=np.zeros(10, bool), split="train", view=views[i % len(views)]))
    write_shard(folder / "shard_000000.npz", episodes,
                ShardMeta(env_id="test/Squares-v0", frame_shape=(H, H, 3), action_meanings=tuple(meanings)))


def test_view_conditioned_training_exports_and_starts_from_an_unconditioned_model(tmp_path):
    from world_model.train_cli import main

    data = tmp_path / "rec"
    record_both_views(data)
    common = ["--data", str(data), "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--threads", "1"]
    assert main(["autoencoder", *common, "--out", str(tmp_path / "ae")]) == 0
    dyn = ["dynamics", *common, "--autoencoder", str(tmp_path / "ae"), "--window", "5"]
    assert main([*dyn, "--out", str(tmp_path / "plain")]) == 0
    assert main([*dyn, "--out", str(tmp_path / "viewed"), "--view-conditioning", "--view-dropout", "0.2"]) == 0
    assert log_steps(tmp_path / "viewed") == [2]
    assert main(["export", "--dynamics", str(tmp_path / "viewed"), "--out", str(tmp_path / "export")]) == 0
    cfg = json.loads((tmp_path / "export" / "config.json").read_text())
    assert cfg["dynamics"]["views"] == len(VIEW_IDS) and cfg["diffusion"]["view_dropout"] == 0.2
    wm = WorldModel.load(tmp_path / "export")
    assert wm.config.dynamics.views == len(VIEW_IDS) and "view_emb.weight" in wm.dynamics.state_dict()
    wm.step(wm.reset(prompt(2), view=["first_person", "top_down"]), [0, 1], num_steps=1)

    # each training window carries its episode's view (the latent cache keys on frames only)
    t = args("dynamics", tmp_path / "t", 2, data=(str(data),), autoencoder=str(tmp_path / "ae"), window=5,
             view_conditioning=True).trainer()
    expected = np.array([VIEW_IDS[v] for v in t.data.episodes.views])
    for s in range(3):
        rng = np.random.default_rng(s)
        pick = np.random.default_rng(s).integers(len(t.data), size=t.args.batch_size)
        view = t.batch(rng)[4]
        assert view.tolist() == expected[t.data.window_episode[pick]].tolist()
    assert args("dynamics", tmp_path / "u", 2, data=(str(data),),
                autoencoder=str(tmp_path / "ae"), window=5).trainer().batch(np.random.default_rng(0))[4] is None

    # --init-from an unconditioned checkpoint: its weights, a zero view embedding, the same function at step 0
    plain = WorldModel.load(tmp_path / "plain", autocast=False)
    fine = args("dynamics", tmp_path / "fine", 1, data=(str(data),), autoencoder=str(tmp_path / "ae"), window=5,
                view_conditioning=True, init_from=str(tmp_path / "plain")).trainer()
    own = fine.dyn.state_dict()
    assert not own.pop("view_emb.weight").any()
    for k, v in plain.dynamics.state_dict().items():
        torch.testing.assert_close(own[k], v)
    x = torch.randn(2, 3, 4, 16, 16)
    c, a, pos = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long), torch.arange(3).expand(2, 3)
    torch.testing.assert_close(fine.dyn(x, c, a, pos, view=torch.tensor([0, 1])), plain.dynamics(x, c, a, pos))
    fine.run()
    assert json.loads((tmp_path / "fine" / "ckpt-00000001" / "config.json").read_text())["dynamics"]["views"] == 2
    # the other way round (a view-conditioned checkpoint into an unconditioned run) is refused, saying what to pass
    from world_model.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="pass --view-conditioning"):
        args("dynamics", tmp_path / "back", 1, data=(str(data),), autoencoder=str(tmp_path / "ae"), window=5,
             init_from=str(tmp_path / "export")).trainer()


def test_a_config_without_views_loads_unconditioned(tmp_path):
    wm = randomised(PRESETS["tiny"])
    wm.save(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    cfg = json.loads(path.read_text())
    del cfg["dynamics"]["views"], cfg["diffusion"]["view_dropout"]  # as written before view conditioning
    path.write_text(json.dumps(cfg))
    old = WorldModel.load(tmp_path / "old", autocast=False)
    assert old.config.dynamics.views == 0 and old.config.diffusion.view_dropout == 0.1
    np.testing.assert_array_equal(rollout(old, "top_down"), rollout(old, None))
    assert DynamicsArgs.__dataclass_fields__["view_conditioning"].default is False


ADAPTED = replace(VIEWED, dynamics=replace(VIEWED.dynamics, view_adapter=32, adapter_views=("top_down",)))


def test_view_adapters_start_closed_and_change_only_their_own_view():
    wm = randomised(ADAPTED, view_emb=True)
    with torch.no_grad():  # the adapters' modulation back to zero, as initialised: closed
        for n, p in wm.dynamics.named_parameters():
            if ".adapters." in n and ".ada." in n:
                p.zero_()
    names = [n for n, _ in wm.dynamics.named_parameters() if ".adapters." in n]
    assert names and all(".adapters.top_down." in n for n in names)
    plain = WorldModel.from_config(VIEWED, autocast=False)
    plain.load_state_dict(wm.state_dict(), strict=False)
    for view in ("first_person", "top_down", None):
        np.testing.assert_array_equal(rollout(wm, view), rollout(plain, view))
    with torch.no_grad():  # open the top-down adapters
        for n, p in wm.dynamics.named_parameters():
            if ".adapters.top_down.ada." in n:
                p.normal_(0.0, 0.1)
    for cached in (True, False):
        for view in ("first_person", None):  # untouched
            np.testing.assert_array_equal(rollout(wm, view, use_kv_cache=cached),
                                          rollout(plain, view, use_kv_cache=cached))
        td = rollout(wm, "top_down", use_kv_cache=cached)
        assert np.abs(td.astype(int) - rollout(plain, "top_down", use_kv_cache=cached)).max() > 8  # opened
        both = rollout(wm, ["first_person", "top_down"], use_kv_cache=cached)  # one view per world, in one batch
        # a batch that mixes the views takes other kernels' rounding: a pixel may land one level over
        alone = rollout(plain, "first_person", use_kv_cache=cached)
        np.testing.assert_allclose(both[:, 0].astype(int), alone[:, 0].astype(int), atol=1, rtol=0)
        np.testing.assert_allclose(both[:, 1].astype(int), td[:, 1].astype(int), atol=1, rtol=0)
    with pytest.raises(ValueError, match="only for a view-conditioned model"):
        DynamicsConfig(view_adapter=16, adapter_views=("top_down",))
    with pytest.raises(ValueError, match="adapter_views must name"):
        DynamicsConfig(views=len(VIEW_IDS), view_adapter=16, adapter_views=("side",))
    with pytest.raises(ValueError, match="adapter_views must name"):
        DynamicsConfig(views=len(VIEW_IDS), view_adapter=16)
    two = replace(ADAPTED.dynamics, adapter_views=("first_person", "top_down"))
    assert DynamicsConfig.from_dict(json.loads(json.dumps(two.to_dict()))) == two


def test_training_only_the_view_adapters(tmp_path):
    """--view-adapter with --init-from a checkpoint without adapters starts as that model; --train-only
    view-adapters on top-down episodes moves the top-down adapters alone, so first person stays bit for bit."""
    from world_model.checkpoint import CheckpointError
    from world_model.train_cli import main

    data = tmp_path / "rec"
    record_both_views(data)
    common = ["--data", str(data), "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--threads", "1"]
    assert main(["autoencoder", *common, "--out", str(tmp_path / "ae")]) == 0
    dyn = ["dynamics", *common, "--autoencoder", str(tmp_path / "ae"), "--window", "5", "--view-conditioning"]
    assert main([*dyn, "--out", str(tmp_path / "viewed")]) == 0
    base = WorldModel.load(tmp_path / "viewed", autocast=False)
    kw = dict(data=(str(data),), autoencoder=str(tmp_path / "ae"), window=5, view_conditioning=True,
              init_from=str(tmp_path / "viewed"), view_adapter=16)
    fine = args("dynamics", tmp_path / "fine", 3, **kw, train_only="view-adapters", views=("top_down",),
                view_dropout=0.0, ema_decay=0.0, lr=1e-2).trainer()
    trained = {n for n, p in fine.dyn.named_parameters() if p.requires_grad}
    assert trained and all(".adapters." in n for n in trained)
    before = {k: v.clone() for k, v in fine.dyn.state_dict().items()}
    x = torch.randn(2, 3, 4, 16, 16)
    c, a, pos = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long), torch.arange(3).expand(2, 3)
    td = torch.full((2,), VIEW_IDS["top_down"])
    torch.testing.assert_close(fine.dyn(x, c, a, pos, view=td), base.dynamics(x, c, a, pos, view=td))
    fine.run()
    after = fine.dyn.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved and all(".adapters.top_down." in k for k in moved)
    assert main(["export", "--dynamics", str(tmp_path / "fine"), "--out", str(tmp_path / "export"), "--dtype",
                 "float32"]) == 0  # the run's own precision, as `base` is read
    wm = WorldModel.load(tmp_path / "export", autocast=False)
    assert wm.config.dynamics.view_adapter == 16
    for view in ("first_person", None):
        np.testing.assert_array_equal(rollout(wm, view), rollout(base, view))
    assert not np.array_equal(rollout(wm, "top_down"), rollout(base, "top_down"))
    with pytest.raises(CheckpointError, match="pass --view-adapter 16 --adapter-views top_down"):
        args("dynamics", tmp_path / "back", 1, **dict(kw, view_adapter=0, init_from=str(tmp_path / "export")))\
            .trainer()
    with pytest.raises(ValueError, match="needs adapters to train"):
        DynamicsArgs(data=(str(data),), out=str(tmp_path / "x"), autoencoder="ae", train_only="view-adapters")
    with pytest.raises(ValueError, match="needs --view-conditioning"):
        DynamicsArgs(data=(str(data),), out=str(tmp_path / "x"), autoencoder="ae", view_adapter=8)
