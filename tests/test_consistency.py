"""The consistency suite (benchmarks.consistency): end to end on a tiny random-weight model, its do-nothing
baselines, and the counterfactual rule on a perfect and a copy-last model."""

import copy
import json

import numpy as np
import pytest

from benchmarks import consistency as cons
from world_model.metrics import PSNR_CAP
from benchmarks.consistency import ConsistencyConfig, counterfactual_scores, evaluate, section
from benchmarks.ground_truth import GroundTruth, draw_worlds

SMALL = ConsistencyConfig(worlds=2, views=("first_person", "top_down"), still_steps=(1, 4), look_back_k=2,
                          rollout_steps=(1, 4), batch=2, sheet_worlds=2)


class CopyLast:
    """A fake world model that shows the last context frame for ever (the do-nothing model)."""

    def __init__(self, size=64, context_frames=16):
        from types import SimpleNamespace

        self.config = SimpleNamespace(autoencoder=SimpleNamespace(image_size=size),
                                      dynamics=SimpleNamespace(context_frames=context_frames),
                                      action_meanings=cons.ACTION_MEANINGS)
        self.num_actions = 7

    def reset(self, prompt_frames, prompt_actions=None, generator=None, view=None):
        f = np.asarray(prompt_frames)
        return (f[:, -1] if f.ndim == 5 else f).copy()

    def step(self, state, actions, generator=None):
        return state.copy(), state

    def fork(self, state):
        return state.copy()


def _intervals_bracket(d):
    """Every {mean, ci95} in a nested result has lo <= mean <= hi."""
    if isinstance(d, dict):
        if "ci95" in d and "mean" in d:
            lo, hi = d["ci95"]
            assert lo - 1e-9 <= d["mean"] <= hi + 1e-9, d
        for v in d.values():
            _intervals_bracket(v)
    elif isinstance(d, list):
        for v in d:
            _intervals_bracket(v)


def test_suite_runs_end_to_end_on_a_tiny_model(tiny_world_model, tmp_path):
    wm = tiny_world_model()
    r = evaluate(wm, SMALL, sheets=tmp_path / "sheets", progress=False)
    json.dumps(r)  # JSON-ready
    assert set(r["views"]) == {"first_person", "top_down"}
    for view, v in r["views"].items():
        assert set(v) == set(cons.SCENARIOS)
        assert set(v["still"]["steps"]) == {"1", "4"}
        for n, s in v["still"]["steps"].items():
            assert s["baseline"]["mean"] == PSNR_CAP and s["baseline"]["ci95"] == [PSNR_CAP, PSNR_CAP]  # truth is still
            assert s["model"]["n"] == 2
        for name in ("left_right_x2", "right_left_x2", "turn_around_left", "turn_around_right"):
            assert v["look_back"][name]["ground_truth_exact"]
            assert {"return_vs_own", "return_vs_truth", "all_vs_truth"} <= set(v["look_back"][name])
        cf = v["counterfactual"]
        assert set(cf["per_action"]) == set(cons.ACTION_MEANINGS)
        assert 0 < cf["overall"]["chance"] <= 0.5  # noop and at least one turn differ
        assert cf["overall"]["copy_last"]["mean"] == pytest.approx(cf["overall"]["chance"])
        assert 0 <= cf["overall"]["autoencoder"]["mean"] <= 1  # the tiny model's random autoencoder
        assert v["approach"]["worlds"] >= 1 and set(v["approach"]["steps"]) == {"1", "2", "3"}
        for name in ("toggle", "pickup"):
            assert v["interaction"][name]["worlds"] >= 1
            assert v["interaction"][name]["share"]["baseline"]["mean"] == 0.0
        assert set(v["rollout"]["steps"]) == {"1", "4"} and v["rollout"]["horizon"] == 4
        assert set(r["headline"][view]) >= {"still_20", "counterfactual_accuracy", "approach_gain", "toggle_opens"}
        for scenario in cons.SCENARIOS:
            assert (tmp_path / "sheets" / f"{view}_{scenario}.png").is_file()
    _intervals_bracket(r)
    md = section({**r, "preset": "test", "command": "pytest"})
    assert "### first person" in md and "### top down" in md and "counterfactual" in md


def test_do_nothing_model_scores_the_baselines(tmp_path):
    cfg = ConsistencyConfig(worlds=2, views=("first_person",), rollout_steps=(1, 16), sheet_worlds=1)
    r = evaluate(CopyLast(), cfg, progress=False)["views"]["first_person"]
    for s in r["still"]["steps"].values():
        assert s["model"]["mean"] == PSNR_CAP == s["baseline"]["mean"]
    cf = r["counterfactual"]["overall"]
    assert cf["model"]["mean"] == pytest.approx(cf["copy_last"]["mean"]) == pytest.approx(cf["chance"])
    assert r["interaction"]["toggle"]["share"]["model"]["mean"] == 0.0
    for v in r["approach"]["steps"].values():
        assert v["gain"]["mean"] == pytest.approx(0.0)
    lb = r["look_back"]["turn_around_left"]
    assert lb["return_vs_own"]["mean"] == PSNR_CAP == lb["return_vs_truth"]["model"]["mean"]


class Lossless(CopyLast):
    """CopyLast with an autoencoder that keeps every pixel (float frames as the latents)."""

    def encode(self, frames):
        import torch
        return torch.as_tensor(np.asarray(frames), dtype=torch.float32)

    def decode(self, latents):
        return latents.numpy().astype(np.uint8)


class Blind(Lossless):
    """An autoencoder that keeps nothing: every frame decodes to grey."""

    def decode(self, latents):
        return np.full(latents.shape, 128, dtype=np.uint8)


def test_counterfactual_ceiling_is_what_the_autoencoder_keeps():
    cfg = ConsistencyConfig(worlds=2, views=("top_down",), rollout_steps=(1,), sheet_worlds=1)
    truth = GroundTruth(64)
    try:
        lossless, _ = cons.counterfactual(Lossless(), truth, "top_down", cfg, draw_worlds(2, cfg.seed))
        blind, _ = cons.counterfactual(Blind(), truth, "top_down", cfg, draw_worlds(2, cfg.seed))
    finally:
        truth.close()
    assert lossless["overall"]["autoencoder"]["mean"] == 1.0
    # one grey frame for every action is right for one class at most: at or below chance
    assert blind["overall"]["autoencoder"]["mean"] <= blind["overall"]["chance"] < 1.0
    for r in (lossless, blind):
        assert r["overall"]["model"]["mean"] == pytest.approx(r["overall"]["chance"])  # the model still copies
    assert "autoencoder" not in evaluate(CopyLast(), cfg, progress=False)["views"]["top_down"]["counterfactual"][
        "overall"]


def _true_branches(view="first_person", n=3):
    """Ground truth of n worlds after a look-around: the last context frame (n, H, W, 3) and every action's
    next frame (n, 7, H, W, 3), each from a deepcopy of the env."""
    truth = GroundTruth(64)
    last, nxt = [], []
    prefix = [3, 1, 3, 1, 1, 1, 1]
    try:
        for lvl, s in draw_worlds(n, seed=3):
            env, frames = truth.env(lvl, s, view, prefix)
            last.append(frames[-1])
            nxt.append(np.stack([copy.deepcopy(env).step(a)[0] for a in range(7)]))
    finally:
        truth.close()
    return np.stack(last), np.stack(nxt)


@pytest.mark.parametrize("view", ["first_person", "top_down"])
def test_counterfactual_rule_perfect_and_copy_last(view):
    last, gt = _true_branches(view)
    perfect = counterfactual_scores(gt, gt)
    assert perfect["right"].all() and np.all(perfect["accuracy"] == 1.0)
    assert np.all(perfect["classes"] >= 2)
    copy_last = counterfactual_scores(np.repeat(last[:, None], 7, axis=1), gt)
    # noop never changes the frame, so the copy is right only for the unchanged class: 1 / classes per world
    np.testing.assert_allclose(copy_last["accuracy"], 1.0 / copy_last["classes"])
    assert np.all(copy_last["right"][:, 0]) and not copy_last["right"][:, 1].any()


def test_action_classes_merge_identical_frames():
    a, b = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 9, np.uint8)
    np.testing.assert_array_equal(cons.action_classes(np.stack([a, b, a, b, a])), [0, 1, 0, 1, 0])
    gen = np.stack([a, b, b, b, a])[None]  # action 2 (class of a) shows b: wrong
    s = counterfactual_scores(gen, np.stack([a, b, a, b, a])[None])
    np.testing.assert_array_equal(s["right"][0], [True, True, False, True, True])
    assert s["accuracy"][0] == pytest.approx((2 / 3 + 1) / 2)


def test_counterfactual_rule_is_not_fooled_by_the_psnr_cap():
    # two true outcomes that differ by one channel of one pixel both score the 60 dB cap against either: the rule
    # ranks by squared error, so a perfect model is still right for each
    a = np.zeros((8, 8, 3), np.uint8)
    b, c = a.copy(), np.full((8, 8, 3), 200, np.uint8)
    b[0, 0, 0] = 12
    truth = np.stack([a, b, c])[None]
    s = counterfactual_scores(truth, truth)
    assert s["right"].all() and s["accuracy"][0] == 1.0


def test_a_model_with_other_actions_is_refused():
    wm = CopyLast()
    wm.config.action_meanings = tuple(f"action_{i}" for i in range(7))
    with pytest.raises(ValueError, match="3D BabyAI world"):
        evaluate(wm, SMALL)


def test_deepcopy_of_the_env_matches_a_replay():
    truth = GroundTruth(64)
    try:
        (lvl, s), = draw_worlds(1, seed=5)
        prefix = [3, 1, 3, 3, 2]
        env, _ = truth.env(lvl, s, "first_person", prefix)
        forked = [copy.deepcopy(env).step(a)[0] for a in range(7)]
        for a in range(7):
            np.testing.assert_array_equal(forked[a], truth.play(lvl, s, "first_person", prefix + [a])[-1])
    finally:
        truth.close()


def test_config_checks_and_cli(tmp_path, tiny_world_model, capsys, monkeypatch):
    with pytest.raises(ValueError, match="views"):
        ConsistencyConfig(views=("side",))
    with pytest.raises(ValueError, match="still_steps"):
        ConsistencyConfig(still_steps=(8, 1))
    folder = tmp_path / "wm"
    tiny_world_model().save(folder)
    out = tmp_path / "c.json"
    monkeypatch.setitem(cons.PRESETS, "small", SMALL)
    r = cons.main(["--model", str(folder), "--preset", "small", "--worlds", "1", "--views", "first_person",
                   "--out", str(out), "--markdown", "--sampler", "num_steps=3,sigma_max=4.0,context_sigma=0.1"])
    saved = json.loads(out.read_text())
    assert saved["benchmark"] == "consistency" and saved["preset"] == "small" and saved["config"]["worlds"] == 1
    assert saved["sampler"]["num_steps"] == 3 and saved["sampler"]["sigma_max"] == 4.0
    assert saved["context_sigma"] == 0.1 and "--sampler num_steps=3" in saved["command"]
    assert "machine" in saved and "--worlds 1" in saved["command"] and r["wall_s"] >= 0 and r["cpu_s"] >= 0
    assert "## Consistency" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a bad setting stops before anything runs, naming the keys
        cons.main(["--model", str(folder), "--sampler", "steps=3"])
    assert "num_steps" in capsys.readouterr().err
