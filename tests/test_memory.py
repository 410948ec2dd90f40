"""Pose-keyed memory (DynamicsConfig.memory): dead-reckoned poses, which earlier frame each frame gets as its memory,
the cached path agreeing with the window path, the memory input starting closed, training with --memory (from
scratch and --init-from a model without it), and old configs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from world_model import PRESETS, WorldModel
from world_model.dynamics import MEMORY_GAPS, Dynamics, DynamicsConfig, KVCache

from test_training import H, args
from test_view_conditioning import record_both_views

MEMORY = replace(PRESETS["tiny"], dynamics=replace(PRESETS["tiny"].dynamics, memory=True))
START, NULL = 7, 8
NOOP, LEFT, RIGHT, FORWARD = 0, 1, 2, 3


def randomised(cfg, seed: int = 0) -> WorldModel:
    """A tiny fp32 model whose zero-initialised layers are random, so every input (the memory's too) matters."""
    torch.manual_seed(seed)
    wm = WorldModel.from_config(cfg, autocast=False)
    with torch.no_grad():
        for p in wm.dynamics.parameters():
            if not p.any():
                p.normal_(0.0, 0.1)
        wm.dynamics.patch_in.weight[:, -wm.dynamics.config.patch_dim:].normal_(0.0, 0.1)
    return wm


def memory_of(dyn: Dynamics, cond: list[list[int]]) -> tuple[list[list[int | None]], torch.Tensor]:
    """For a window with conditioning actions `cond`: the index of each frame's memory frame (None: none), and the
    forwards-since ids."""
    a = torch.tensor(cond)
    B, T = a.shape
    x = torch.arange(B * T, dtype=torch.float32).view(B, T, 1, 1, 1).expand(B, T, 4, 16, 16).contiguous()
    mx, _, gap = dyn._memory(x, torch.zeros(B, T), a, torch.arange(T).expand(B, T), None, None, False, None)
    idx = [[int(mx[b, t, 0, 0, 0]) - b * T if gap[b, t] < MEMORY_GAPS else None for t in range(T)]
           for b in range(B)]
    return idx, gap


def test_the_memory_frame_is_the_latest_one_seen_from_the_same_heading():
    dyn = Dynamics(MEMORY.dynamics)
    idx, gap = memory_of(dyn, [
        [START, LEFT, RIGHT, LEFT, LEFT, FORWARD],  # (left, right) returns to frame 0; forward keeps the heading
        [START, RIGHT, RIGHT, RIGHT, RIGHT, NOOP],  # four right turns return to the start
        [START, LEFT, NULL, RIGHT, LEFT, LEFT],  # NULL hides an action: nothing before it is a memory after it
    ])
    assert idx[0] == [None, None, 0, 1, None, 4] and gap[0, 5] == 1 and gap[0, 2] == 0
    assert idx[1] == [None, None, None, None, 0, 4]
    assert idx[2] == [None, None, None, None, 2, None]
    poses = dyn.poses(torch.tensor([[START, LEFT, FORWARD, FORWARD, FORWARD, RIGHT]]))
    assert poses[0].tolist() == [[1, 0, 0], [1, -1, 0], [1, -1, 1], [1, -1, 2], [1, -1, 3], [1, 0, 3]]
    turns = Dynamics(replace(MEMORY.dynamics, memory_turns_only=True))  # only frames turned into get one
    assert memory_of(turns, [[START, LEFT, RIGHT, LEFT, LEFT, FORWARD]])[0] == [[None, None, 0, 1, None, None]]
    _, gap = memory_of(dyn, [[START, LEFT, FORWARD, FORWARD, FORWARD, RIGHT]])
    assert gap[0].tolist() == [MEMORY_GAPS, MEMORY_GAPS, 1, 1, 1, MEMORY_GAPS - 1]  # 3 forwards: "2 or more"


def test_the_cached_path_agrees_with_the_window_and_branches_do_not_see_each_other():
    wm = randomised(MEMORY)
    den = wm.denoiser
    B, T = 2, 5
    y = torch.randn(B, T, 4, 16, 16)
    acts = torch.tensor([[START, LEFT, RIGHT, LEFT, RIGHT], [START, RIGHT, RIGHT, RIGHT, RIGHT]])
    sigma = torch.full((B, T), 0.05)
    sigma[:, -1] = 2.0
    pos = torch.arange(T).expand(B, T)
    with torch.no_grad():
        window = den(y, sigma, acts, pos)[:, -1]
        cache = KVCache.empty(wm.config.dynamics, B, "cpu")
        for t in range(T - 1):  # one frame at a time, as a world model steps
            den.commit(y[:, t:t + 1], sigma[:, t:t + 1], acts[:, t:t + 1], pos[:, t:t + 1], cache)
        cached = den(y[:, -1:], sigma[:, -1:], acts[:, -1:], pos[:, -1:], cache=cache)[:, 0]
        torch.testing.assert_close(cached, window, rtol=1e-4, atol=1e-4)
        assert cache.poses[0, :T - 1].tolist() == [[1, 0, 0], [1, -1, 0], [1, 0, 0], [1, -1, 0]]
        # the guided pair: the action's branch has its memory frame; the NULL branch has none
        both = den._denoise(torch.cat([y[:, -1:]] * 2, 1), torch.cat([sigma[:, -1:]] * 2, 1),
                            torch.cat([acts[:, -1:], torch.full_like(acts[:, -1:], NULL)], 1),
                            torch.cat([pos[:, -1:]] * 2, 1), cache, independent=True)
        torch.testing.assert_close(both[:, 0], cached, rtol=1e-4, atol=1e-4)
        alone = den(y[:, -1:], sigma[:, -1:], torch.full_like(acts[:, -1:], NULL), pos[:, -1:], cache=cache)
        torch.testing.assert_close(both[:, 1], alone[:, 0], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="cache_inputs"):
        wm.dynamics.forward_cached(y[:, -1:], torch.zeros(B, 1), acts[:, -1:], pos[:, -1:], cache)


def test_the_memory_input_starts_closed_then_matters():
    plain = randomised(PRESETS["tiny"]).dynamics  # every layer random: the output is not trivially zero
    mem = Dynamics(MEMORY.dynamics)
    state = plain.state_dict()
    own = mem.state_dict()
    own["patch_in.weight"][:, : state["patch_in.weight"].shape[1]] = state["patch_in.weight"]
    mem.load_state_dict({**own, **{k: v for k, v in state.items() if k != "patch_in.weight"}})
    x = torch.randn(2, 5, 4, 16, 16)
    c, pos = torch.zeros(2, 5), torch.arange(5).expand(2, 5)
    a = torch.tensor([[START, LEFT, RIGHT, LEFT, RIGHT]] * 2)
    with torch.no_grad():
        torch.testing.assert_close(mem(x, c, a, pos), plain(x, c, a, pos), rtol=0, atol=0)
        mem.patch_in.weight[:, -mem.config.patch_dim:].normal_(0.0, 0.1)
        assert not torch.allclose(mem(x, c, a, pos), plain(x, c, a, pos))


def test_memory_rollouts_run_with_and_without_the_kv_cache():
    wm = randomised(MEMORY)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 3, H, H, 3), dtype=np.uint8)
    for use_kv_cache in (True, False):
        g = torch.Generator().manual_seed(0)
        state = wm.reset(frames, generator=g)
        for action in ([1, 2], [2, 1], [3, 0]):
            f, state = wm.step(state, action, generator=g, num_steps=2, use_kv_cache=use_kv_cache)
            assert f.shape == (2, H, H, 3)


def test_memory_config_checks_and_old_configs(tmp_path):
    with pytest.raises(ValueError, match="three distinct action ids"):
        DynamicsConfig(memory=True, turn_left_action=1, turn_right_action=1)
    with pytest.raises(ValueError, match="three distinct action ids"):
        DynamicsConfig(memory=True, forward_action=7)
    wm = randomised(PRESETS["tiny"])
    wm.save(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    cfg = json.loads(path.read_text())
    for k in ("memory", "memory_turns_only", "turn_left_action", "turn_right_action", "forward_action"):
        del cfg["dynamics"][k]  # as written before the memory input
    path.write_text(json.dumps(cfg))
    assert WorldModel.load(tmp_path / "old").config.dynamics.memory is False


def test_memory_training_from_scratch_and_from_a_model_without_it(tmp_path):
    from world_model.train_cli import main

    # the action ids come from the recordings' meanings (here not in the env's order)
    meanings = ("forward", "noop", "turn_right", "turn_left", "pickup", "drop", "toggle")
    data = tmp_path / "rec"
    record_both_views(data, meanings, views=("first_person",))
    common = ["--data", str(data), "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--threads", "1"]
    assert main(["autoencoder", *common, "--out", str(tmp_path / "ae")]) == 0
    dyn = ["dynamics", *common, "--autoencoder", str(tmp_path / "ae"), "--window", "5"]
    assert main([*dyn, "--out", str(tmp_path / "plain")]) == 0
    assert main([*dyn, "--out", str(tmp_path / "mem"), "--memory"]) == 0
    assert main(["export", "--dynamics", str(tmp_path / "mem"), "--out", str(tmp_path / "export")]) == 0
    cfg = json.loads((tmp_path / "export" / "config.json").read_text())["dynamics"]
    assert cfg["memory"] and (cfg["turn_left_action"], cfg["turn_right_action"], cfg["forward_action"]) == (3, 2, 0)

    # --init-from a model without memory: its weights, a closed memory input, the same function at step 0
    plain = WorldModel.load(tmp_path / "plain", autocast=False)
    fine = args("dynamics", tmp_path / "fine", 1, data=(str(data),), autoencoder=str(tmp_path / "ae"), window=5,
                memory=True, init_from=str(tmp_path / "plain")).trainer()
    own = fine.dyn.state_dict()
    for k, v in plain.dynamics.state_dict().items():
        torch.testing.assert_close(own[k][:, : v.shape[1]] if k == "patch_in.weight" else own[k], v)
    assert not own["patch_in.weight"][:, -fine.dyn.config.patch_dim:].any()
    x = torch.randn(2, 4, 4, 16, 16)
    c, pos = torch.zeros(2, 4), torch.arange(4).expand(2, 4)
    a = torch.tensor([[7, 3, 2, 3]] * 2)
    torch.testing.assert_close(fine.dyn(x, c, a, pos), plain.dynamics(x, c, a, pos))
    fine.run()

    # the lookup rule may change when fine-tuning a memory model; it is a setting of the memory input
    turns = args("dynamics", tmp_path / "turns", 1, data=(str(data),), autoencoder=str(tmp_path / "ae"), window=5,
                 memory=True, memory_turns_only=True, init_from=str(tmp_path / "export")).trainer()
    assert turns.dyn.config.memory_turns_only
    with pytest.raises(ValueError, match="add --memory"):
        args("dynamics", tmp_path / "t", 1, data=(str(data),), autoencoder=str(tmp_path / "ae"),
             memory_turns_only=True)

    # recordings whose actions do not name turns and forward cannot dead-reckon a heading
    unnamed = tmp_path / "unnamed"
    record_both_views(unnamed, views=("first_person",))
    with pytest.raises(ValueError, match="lack turn_left, turn_right, forward"):
        args("dynamics", tmp_path / "u", 1, data=(str(unnamed),), autoencoder=str(tmp_path / "ae"), window=5,
             memory=True).trainer()
