"""genie-bench: statistics, the suites (tiny random-weights world model and judge), the CLI and the report."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import make_agent
from agents.bot_agent import GroundTruthOnlyError
from benchmarks import stats
from benchmarks.agreement import agreement
from benchmarks.bench_cli import main
from benchmarks.report import render
from benchmarks.tasks import episode_seeds, run_tasks
from genie_env import TEST_SEEDS
from genie_env.judge import PRESETS as JUDGE_PRESETS, SuccessJudge
from genie_env.tasks import TASKS


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_world_model):
    """A tiny world model and a tiny random judge saved as checkpoint folders, as the CLI loads them."""
    root = tmp_path_factory.mktemp("bench_ckpt")
    tiny_world_model().save(root / "wm")
    torch.manual_seed(0)
    SuccessJudge(JUDGE_PRESETS["tiny"]).save(root / "judge")
    return root / "wm", root / "judge"


@pytest.fixture(scope="module")
def wm(tiny_world_model):
    return tiny_world_model()


# ---------------------------------------------------------------------------------------------- statistics


def test_iqm_of_known_arrays():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # cuts 2 from each end: mean(3, 4, 5, 6)
    assert stats.iqm([0.0, 0.0, 1.0, 1.0]) == pytest.approx(0.5)
    assert stats.iqm([5.0, 1.0, 100.0, 2.0, 3.0]) == pytest.approx(np.mean([2.0, 3.0, 5.0]))  # int(1.25) = 1
    assert stats.iqm([7.0]) == 7.0
    np.testing.assert_allclose(stats.iqm(np.array([[1, 2, 3, 100], [0, 0, 0, 4]]), axis=1), [2.5, 0.0])


def test_bootstrap_intervals_contain_the_estimate():
    x = np.random.default_rng(0).random(50)
    lo, hi = stats.bootstrap_ci(x, seed=1)
    assert lo < x.mean() < hi
    assert stats.bootstrap_ci(x, seed=1) == (lo, hi)  # reproducible
    scores = {"a": [1, 0, 1, 1, 0, 1], "b": [0, 0, 1, 0], "c": [1, 1, 1, 0, 1]}
    agg = stats.aggregate_with_ci(scores, reps=500)
    assert agg["mean_ci95"][0] <= agg["mean"] <= agg["mean_ci95"][1]
    assert agg["iqm_ci95"][0] <= agg["iqm"] <= agg["iqm_ci95"][1]
    assert agg["mean"] == pytest.approx(np.mean([4 / 6, 1 / 4, 4 / 5]))
    assert stats.bootstrap_ci([1, 1, 1]) == (1.0, 1.0)


def test_correlations():
    assert stats.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    np.testing.assert_allclose(stats.rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    assert np.isnan(stats.pearson([1, 1, 1], [1, 2, 3]))
    c = stats.correlation_with_ci([0.1, 0.4, 0.5, 0.9, 0.2], [0.0, 0.5, 0.4, 1.0, 0.3], reps=300)
    assert c["pairs"] == 5 and 0.8 < c["pearson"]["r"] <= 1.0
    assert c["pearson"]["ci95"][0] <= c["pearson"]["r"] <= c["pearson"]["ci95"][1]
    undefined = stats.correlation_with_ci([0, 0], [0, 1], reps=50)
    assert undefined["pearson"]["r"] is None  # JSON null, not NaN


# ---------------------------------------------------------------------------------------------- tasks suite


def test_episode_seeds_are_unseen_distinct_and_reproducible():
    seeds = episode_seeds(TASKS["open-red-door"], 20, "test", seed=3)
    assert len(set(seeds)) == 20 and all(s in TEST_SEEDS for s in seeds)
    assert seeds == episode_seeds(TASKS["open-red-door"], 20, "test", seed=3)
    assert seeds != episode_seeds(TASKS["open-door"], 20, "test", seed=3)


def test_tasks_with_a_reward_fn_and_the_bot(wm):
    done = lambda frames, action, mission: (float(action == 6), action == 6)  # noqa: E731  "toggle" ends the task
    result, _ = run_tasks(make_agent("random"), ["open-red-door"], 3, wm=wm, reward_fn=done, batch=2, max_steps=30,
                          progress=False)
    genie = result["tasks"]["open-red-door"]["genie"]
    assert [e["level_seed"] for e in genie["episodes"]] == episode_seeds(TASKS["open-red-door"], 3)
    # an episode succeeds when the random agent toggles (reward 1), else it runs to the limit
    assert any(e["success"] for e in genie["episodes"])
    assert all(e["success"] == (e["return"] == 1.0) and (e["success"] or e["steps"] == 30) for e in genie["episodes"])
    again, _ = run_tasks(make_agent("random"), ["open-red-door"], 3, wm=wm, reward_fn=done, batch=2, max_steps=30,
                         progress=False)
    assert again == result  # same seed, same batch: every episode is reproduced
    bot, _ = run_tasks(make_agent("bot"), ["open-red-door"], 3, wm=wm, reward_fn=done, progress=False)
    assert "skipped" in bot["tasks"]["open-red-door"]["genie"]
    assert bot["tasks"]["open-red-door"]["ground_truth"]["success_rate"] == 1.0  # the expert solves it
    with pytest.raises(ValueError, match="no verifier"):
        run_tasks(make_agent("random"), ["open-red-door"], 1, wm=wm, progress=False)


def test_bot_refuses_genie_world(wm):
    from genie_env.genie_world import GenieWorldEnv

    with pytest.raises(GroundTruthOnlyError, match="ground-truth"):
        make_agent("bot").reset(GenieWorldEnv(model=wm))


def test_run_tasks_cli_writes_json_report_plot_and_video(checkpoints, tmp_path):
    model, judge = checkpoints
    out = tmp_path / "tasks"
    assert main(["run", "tasks", "--agent", "random", "--episodes", "2", "--model", str(model), "--judge", str(judge),
                 "--tasks", "open-red-door", "put-next-to", "--max-steps", "5", "--batch", "2", "--out", str(out),
                 "--quiet"]) == 0
    r = json.loads((out / "tasks.json").read_text())
    assert r["benchmark"] == "genie-bench-tasks" and r["agent"]["name"] == "random"
    for task in ("open-red-door", "put-next-to"):
        for world in ("genie", "ground_truth"):
            t = r["tasks"][task][world]
            assert len(t["episodes"]) == 2 and 0.0 <= t["success_rate"] <= 1.0 and len(t["ci95"]) == 2
            assert {"level_seed", "agent_seed", "mission", "success", "steps"} <= set(t["episodes"][0])
    assert set(r["aggregate"]) == {"genie", "ground_truth"} and "iqm_ci95" in r["aggregate"]["genie"]
    assert (out / "tasks.png").stat().st_size > 0 and (out / "report.md").read_text().count("| open-red-door |") == 1
    assert r["videos"] and all((out / v).is_file() for v in r["videos"])
    assert "genie-bench run tasks" in r["command"] and r["machine"]["cores_usable"] >= 1


def test_cli_errors_say_what_to_do(checkpoints, capsys, tmp_path):
    model, _ = checkpoints
    assert main(["run", "tasks", "--agent", "random", "--model", str(model), "--judge", "none",
                 "--out", str(tmp_path)]) == 2
    assert "--reward-fn" in capsys.readouterr().err
    assert main(["run", "tasks", "--agent", "bc", "--out", str(tmp_path)]) == 2
    assert "genie-agent train bc" in capsys.readouterr().err
    assert main(["run", "tasks", "--agent", "random", "--model", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path)]) == 2


def test_list(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("tasks", "fidelity", "agreement", "speed", "open-red-door", "put-next-to", "ppo-genie", "bc", "bot"):
        assert word in text


# ---------------------------------------------------------------------------------------------- other suites


def test_fidelity_suite_tiny(checkpoints, tmp_path, monkeypatch):
    model, _ = checkpoints
    # fidelity.evaluate's own timing loop (20 steps x 4 settings) is the speed suite's job; skip it here
    monkeypatch.setattr("benchmarks.fidelity.speed", lambda wm, frame: {"batch1_kv_cache_steps_per_s": 1.0})
    out = tmp_path / "fid"
    assert main(["run", "fidelity", "--episodes", "2", "--horizon", "4", "--views", "first_person", "--guidance", "1",
                 "1.5", "--memory-episodes", "2", "--warmup", "1", "--long-episodes", "2", "--long-horizon", "8",
                 "--model", str(model), "--out", str(out), "--quiet"]) == 0
    r = json.loads((out / "fidelity.json").read_text())
    fp = r["fidelity"]["first_person"]
    assert "4" in fp["autoregressive_psnr"]
    hold = fp["autoregressive_hold_prompt_psnr"]  # the show-the-prompt-frame baseline, capped like copy-last
    assert set(hold) == {"1", "4"} and all(0 < v <= 60 for v in hold.values())
    for h in ("1", "4"):  # the share of unchanged worlds and both figures over the changed ones
        share, changed = fp["prompt_unchanged_share"][h], fp["autoregressive_hold_prompt_psnr_changed"][h]
        assert 0 <= share <= 1 and (changed is None) == (share == 1)
        assert (fp["autoregressive_psnr_changed"][h] is None) == (share == 1)
        if changed is not None:
            assert changed < 100 and hold[h] <= share * 60 + (1 - share) * changed + 1e-6  # the cap only lowers
    assert "holding the prompt frame" in (out / "report.md").read_text()
    assert set(fp["delta_psnr_ceiling"]) == {"4"} and np.isfinite(fp["delta_psnr_ceiling"]["4"])
    assert "perfect dynamics through this autoencoder" in (out / "report.md").read_text()
    # one-step PSNR by kind of action, each beside the copy-the-last-frame baseline; the counts cover every sample
    kinds = fp["one_step_by_action"]
    assert kinds and set(kinds) <= {"turn", "forward", "other"} and sum(k["n"] for k in kinds.values()) == 2 * 2  # starts 0, 3
    assert all(0 < k["copy_last_psnr"] <= 60 and np.isfinite(k["psnr"]) for k in kinds.values())
    assert "copy-the-last-frame baseline" in (out / "report.md").read_text()
    full = r["memory"]["full_circle"]
    assert full["ground_truth_exact"] and full["actions"] == ["turn_left"] * 4
    assert np.isfinite(full["psnr_return_vs_before"]["mean"])
    long = r["long_rollout"]
    assert len(long["curves"]["model"]["histogram_tv"]) == 9 and long["curves"]["psnr_to_ground_truth"][0] is None
    assert long["curves"]["ground_truth"]["histogram_tv"][0] == 0.0 and "8" in long["at"]
    assert (out / "long_rollout.png").is_file() and (out / "memory.png").is_file()
    assert "Turn-around memory" in (out / "report.md").read_text()


def test_replay_reproduces_the_ground_truth_and_the_ceiling_is_zero_for_the_same_actions(wm):
    """fidelity.replay drives the same worlds again: under the recorded actions it gives the recorded frames, so the
    ΔPSNR ceiling of the same actions is 0; under other actions the worlds diverge."""
    from benchmarks.fidelity import delta_psnr_ceiling, ground_truth, replay
    from benchmarks.ground_truth import EVAL_LEVELS, random_actions

    worlds = []
    frames, actions = ground_truth(3, 6, "top_down", 64, seed=2, worlds=worlds)
    assert len(worlds) == 3 and {lvl for lvl, _ in worlds} <= set(EVAL_LEVELS)
    np.testing.assert_array_equal(replay(worlds, actions, "top_down", 64), frames)
    assert delta_psnr_ceiling(wm, frames, frames, times=(4,)) == {"4": 0.0}
    rng = np.random.default_rng(9)
    other = replay(worlds, np.stack([random_actions(rng, 6) for _ in range(3)]), "top_down", 64)
    assert other.shape == frames.shape and (other[:, 0] == frames[:, 0]).all() and (other != frames).any()


def test_agreement_from_runs_and_cli(checkpoints, tmp_path):
    def run(name, genie, truth):
        ep = lambda s: [{"success": bool(s)}]  # noqa: E731
        return {"agent": {"name": name}, "tasks": {
            f"t{i}": {"genie": {"success_rate": g, "ci95": [g, g], "episodes": ep(g)},
                      "ground_truth": {"success_rate": t, "ci95": [t, t], "episodes": ep(t)}}
            for i, (g, t) in enumerate(zip(genie, truth))}}

    r = agreement([run("a", [0.1, 0.5], [0.2, 0.6]), run("b", [0.9, 0.7], [1.0, 0.8])], seed=0)
    assert r["correlation"]["pairs"] == 4 and r["correlation"]["pearson"]["r"] == pytest.approx(
        stats.pearson([0.1, 0.5, 0.9, 0.7], [0.2, 0.6, 1.0, 0.8]))
    assert r["agent_ranking"]["spearman"] == pytest.approx(1.0)

    model, judge = checkpoints
    out = tmp_path / "agree"
    assert main(["run", "agreement", "--agent", "random", "--agent", "bot", "--episodes", "2", "--tasks",
                 "open-red-door", "go-to-object", "--max-steps", "4", "--model", str(model), "--judge", str(judge),
                 "--out", str(out), "--quiet"]) == 0
    r = json.loads((out / "agreement.json").read_text())
    assert [p["agent"] for p in r["pairs"]] == ["random", "random"]  # the bot has no GenieWorld score
    assert (out / "agreement.png").is_file()


def test_speed_suite_tiny(checkpoints, tmp_path):
    model, _ = checkpoints
    out = tmp_path / "speed"
    assert main(["run", "speed", "--batches", "1", "2", "--num-steps", "1", "2", "--speed-guidance", "1", "1.5",
                 "--repeats", "2", "--matmul-n", "128", "--gt-steps", "30", "--model", str(model), "--out", str(out),
                 "--quiet"]) == 0
    r = json.loads((out / "speed.json").read_text())
    assert len(r["settings"]) == 8 and r["matmul"]["bf16_gflops"] > 0
    by = {(s["num_steps"], s["guidance"], s["batch"]): s for s in r["settings"]}
    assert by[(2, 1.5, 1)]["flops_per_world_step"] > by[(1, 1.0, 1)]["flops_per_world_step"] > 0
    assert all(s["env_steps_per_s"] > 0 and s["share_of_peak"] > 0 for s in r["settings"])
    assert r["ground_truth_steps_per_s"]["GoToLocal"] > 0


def test_report_renders_bench_results_with_figures(checkpoints, tmp_path):
    model, judge = checkpoints
    results = tmp_path / "results"
    assert main(["run", "tasks", "--agent", "random", "--episodes", "1", "--where", "ground_truth", "--tasks",
                 "open-red-door", "--max-steps", "3", "--out", str(results / "random"), "--quiet"]) == 0
    text = render([results], out_dir=tmp_path)
    assert "## Tasks on unseen worlds: agent `random`" in text and "](results/random/tasks.png)" in text
    out = tmp_path / "B.md"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    assert out.read_text() == text


def test_headline_table_from_tasks_results(checkpoints, tmp_path):
    from agents.ppo_agent import PPOArgs, train_ppo
    from benchmarks import headline

    model, judge = checkpoints
    ppo = tmp_path / "ppo-gt-open-red-door"
    train_ppo(PPOArgs(out=str(ppo), task="open-red-door", timesteps=64, max_steps=5, num_envs=1, n_steps=64,
                      batch_size=64, n_epochs=1, quiet=True))
    sources = []
    for name, agent in (("random", "random"), ("ppo", f"ppo-gt={ppo}")):
        out = tmp_path / "bench" / name
        assert main(["run", "tasks", "--agent", agent, "--episodes", "2", "--model", str(model), "--judge", str(judge),
                     "--tasks", "open-red-door", "--max-steps", "3", "--batch", "2", "--videos", "0", "--out",
                     str(out), "--quiet"]) == 0
        sources.append(str(out / "tasks.json"))
    out = tmp_path / "results" / "headline" / "headline.json"
    headline.main([*sources, "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["benchmark"] == "genie-bench-headline" and len(r["rows"]) == 2
    ppo_row, random_row = r["rows"]  # trained agents first
    assert ppo_row["name"] == "ppo-gt" and ppo_row["trained_in"] == "ground_truth" and ppo_row["timesteps"] >= 64
    assert ppo_row["training_seconds"] > 0 and random_row["timesteps"] is None
    for row in r["rows"]:
        assert row["genie"]["episodes"] == row["ground_truth"]["episodes"] == 2
    text = render([tmp_path / "results"], out_dir=tmp_path)
    assert "## Headline: PPO trained inside GenieWorld" in text and "| open-red-door | ppo-gt@" in text
    assert "](results/headline/headline.png)" in text
    with pytest.raises(SystemExit):
        headline.main([str(tmp_path / "results" / "headline" / "headline.json"), "--out", str(tmp_path / "x.json")])


def test_model_card_wall_time_across_resumes_and_render():
    """The card's training wall time sums the sessions of a resumed run; the shipped card renders from its files."""
    from benchmarks.model_card import render, wall_seconds
    from world_model.inference import DEFAULT_CHECKPOINT

    log = [{"elapsed_s": 10.0}, {"elapsed_s": 20.0}, {"elapsed_s": 5.0}, {"elapsed_s": 7.0}]
    assert wall_seconds(log) == 27.0 and wall_seconds([]) is None
    summary = json.loads((DEFAULT_CHECKPOINT / "training_summary.json").read_text())
    fidelity = json.loads((Path(__file__).parents[1] / "benchmarks" / "results" / "fidelity.json").read_text())
    text = render(DEFAULT_CHECKPOINT, summary, fidelity, None)
    assert "## Fidelity on unseen worlds" in text and "one-step PSNR on turn actions" in text
    assert "holding-the-prompt-frame baseline" in text and "ceiling: perfect dynamics" in text
    assert "n/a" not in text.split("## Fidelity")[1].split("Speed")[0]  # the shipped result has every figure
    # no world changed by a horizon (possible on a few worlds): that figure reads n/a instead of failing
    import copy

    still = copy.deepcopy(fidelity)
    still["top_down"]["autoregressive_psnr_changed"]["64"] = None
    still["top_down"]["autoregressive_hold_prompt_psnr_changed"]["64"] = None
    row = next(line for line in render(DEFAULT_CHECKPOINT, summary, still, None).splitlines()
               if line.startswith("| autoregressive PSNR @ 64 over the worlds that changed"))
    assert row.split(" | ")[2] == "n/a (n/a)"  # the top-down cell; first person keeps its figures
    assert "n/a" not in row.split(" | ")[1]
    # a fine-tuned model (genie-train dynamics --init-from): each phase on its own line, and the total
    first = {k: v for k, v in summary["dynamics"].items()
             if k not in ("previous", "device", "view_conditioning")}  # one CPU phase
    tuned = {**summary, "dynamics": {**first, "steps": 100, "wall_time_min": 10.0,
                                     "context_sigma_range": [0.01, 0.1], "previous": first}}
    text = render(DEFAULT_CHECKPOINT, tuned, fidelity, None)
    assert f"- Dynamics: {first['steps']} steps" in text and "- Dynamics, then fine-tuned: 100 steps" in text
    assert "context noise drawn from [0.01, 0.1]" in text
    # a phase trained with padded short episodes says which and how (genie-train dynamics --pad-short-episodes)
    from benchmarks.model_card import padding_words

    words = padding_words({"pad_short_episodes": True, "pad_views": ["first_person"], "pad_at": "end"})
    assert words == ("short episodes of the first-person view padded to the window with copies of their last frame "
                     "after it, under noop")
    assert padding_words({"pad_short_episodes": False, "pad_at": "end"}) is None
    padded = {**tuned, "dynamics": {**tuned["dynamics"], "padding": words}}
    line = next(x for x in render(DEFAULT_CHECKPOINT, padded, fidelity, None).splitlines()
                if x.startswith("- Dynamics, then fine-tuned: 100 steps"))
    assert f"; {words}; the weights are an EMA" in line
    # a CPU phase on top of a lent-GPU phase: the machine line points at the phase that names its GPU
    on_gpu = {**tuned, "dynamics": {**tuned["dynamics"], "previous": {**first, "device": "NVIDIA H200"}}}
    on_gpu.pop("earlier_machine", None)
    assert "the phases marked above as on a lent GPU ran there" in render(DEFAULT_CHECKPOINT, on_gpu, fidelity, None)
    assert "the phases marked above" not in render(DEFAULT_CHECKPOINT, {**tuned, "earlier_machine": None},
                                                   fidelity, None)
    # a phase conditioned on the view (genie-train dynamics --view-conditioning) says so
    viewed = {**tuned, "dynamics": {**tuned["dynamics"], "view_conditioning": True}}
    line = next(x for x in render(DEFAULT_CHECKPOINT, viewed, fidelity, None).splitlines()
                if x.startswith("- Dynamics, then fine-tuned: 100 steps"))
    assert "; conditioned on the view; the weights are an EMA" in line
    # a top-down adapter trained alone on the top-down episodes (--view-adapter, --train-only view-adapters) says so
    adapted = {**tuned, "dynamics": {**tuned["dynamics"], "view_conditioning": True, "views": ["top_down"],
                                     "adapters": "top-down adapters of width 256", "train_only": "view-adapters"}}
    line = next(x for x in render(DEFAULT_CHECKPOINT, adapted, fidelity, None).splitlines()
                if x.startswith("- Dynamics, then fine-tuned: 100 steps"))
    assert ("; conditioned on the view; on the top-down episodes only; only its top-down adapters of width 256 "
            "trained, the rest held; the weights are an EMA") in line
    assert f"- Dynamics in all: {first['steps'] + 100} steps, {round(first['wall_time_min'] + 10.0, 1)} min" in text


def cpu_trained(summary: dict) -> dict:
    """The shipped training summary cut to its newest dynamics phase with no GPU-trained phase in its history (a
    base for the GPU-phase tests, whatever the shipped model's last phases were)."""
    chain, dyn = [], summary["dynamics"]
    while dyn:
        chain.append(dyn)
        dyn = dyn.get("previous")
    dyn = chain[max((i for i, d in enumerate(chain) if d.get("device")), default=-1) + 1]
    cpu = {k: v for k, v in summary.items() if k != "earlier_machine"}
    return {**cpu, "dynamics": dyn, "data": dyn.get("data", summary["data"]),
            "machine": summary.get("earlier_machine", summary["machine"])}


def test_model_card_of_a_lent_gpu_run_then_a_cpu_fine_tune(tmp_path):
    """A lent-GPU run's OUT folder (world_model/recipes/gpu_run.sh) becomes a dynamics phase with its device, batch,
    data and the machine; a CPU fine-tune of it lists both phases and splits the compute by machine."""
    from benchmarks.model_card import compute_words, gather, render
    from world_model.inference import DEFAULT_CHECKPOINT

    shipped = cpu_trained(json.loads((DEFAULT_CHECKPOINT / "training_summary.json").read_text()))
    out = tmp_path / "out"
    out.mkdir()
    (out / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s, "elapsed_s": 2.0 * s}) + "\n"
                                           for s in (10, 20, 30)))
    (out / "eval.jsonl").write_text(json.dumps({"step": 30, "eval_psnr_h1": 20.0}) + "\n")
    (out / "runner.log").write_text("[gpu_run] python 3.12.3\n[gpu_run] GPU NVIDIA H100 80GB HBM3, 79 GiB, bf16 True\n")
    args = {"preset": "default", "levels": "GoToLocal OpenDoor", "procs": 16, "data_args": "--policy mix",
            "train_args": "--lr 6e-4 --ema-decay 0.998 --context-sigma 0.1 --context-sigma-min 0.01 --log-every 10"}
    (out / "summary.json").write_text(json.dumps({"args": args, "batch": 256, "phases_s": {"record": 37.2},
                                                  "data": {"train_frames": 400_000}}))
    scratch = tmp_path / "scratch"  # a model whose dynamics the GPU run trained from scratch
    scratch.mkdir()
    config = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())
    config["training"].pop("init_from", None)
    (scratch / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="--base-summary"):
        gather(scratch, Path("-"), Path("-"), [], None, gpu_run=out)
    summary = gather(scratch, Path("-"), Path("-"), [], shipped, gpu_run=out)
    dyn = summary["dynamics"]
    assert "previous" not in dyn and "memory" not in dyn
    assert dyn["device"] == "NVIDIA H100 80GB HBM3" and dyn["batch_size"] == 256 and dyn["wall_time_min"] == 1.0
    assert dyn["ema_decay"] == 0.998 and dyn["context_sigma_range"] == [0.01, 0.1]
    assert summary["autoencoder"] == shipped["autoencoder"] and summary["data"]["frames"] == 400_000
    text = render(DEFAULT_CHECKPOINT, summary, None, None)
    assert "- Dynamics on a lent NVIDIA H100 80GB HBM3: " in text and "batch 256" in text
    assert "400,000 frames of 2 3D BabyAI levels" in text and "recorded on the GPU machine" in text
    assert "about 1 minutes of dynamics training on a lent NVIDIA H100 80GB HBM3)" in text
    tuned = {**shipped, "dynamics": {**{k: v for k, v in shipped["dynamics"].items() if k != "previous"},
                                     "wall_time_min": 60.0, "previous": dyn}, "recipe": "bash x.sh"}
    text = render(DEFAULT_CHECKPOINT, tuned, None, None)
    assert "- Dynamics on a lent NVIDIA H100" in text and "- Dynamics, then fine-tuned: " in text
    assert "  Data of that phase: 400,000 frames" in text and "- Recipe: `bash x.sh`." in text
    assert f"wall time, {dyn['steps'] * 256 + shipped['dynamics']['steps'] * 8:,} training windows." in text
    assert compute_words(tuned) == ("about 1 minutes of dynamics training on a lent NVIDIA H100 80GB HBM3 and 60 on "
                                    "2 CPU cores")


def test_model_card_of_a_lent_gpu_fine_tune_of_the_shipped_model(tmp_path):
    """A lent-GPU run that fine-tuned the shipped model (--init-from in its TRAIN_ARGS, recorded in the exported
    config) lists the shipped model's phases first, then the GPU phase with its memory input and data."""
    from benchmarks.model_card import compute_words, gather, render
    from world_model.inference import DEFAULT_CHECKPOINT

    shipped = cpu_trained(json.loads((DEFAULT_CHECKPOINT / "training_summary.json").read_text()))
    out = tmp_path / "out"
    out.mkdir()
    (out / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s, "elapsed_s": 6.0 * s}) + "\n"
                                           for s in (10, 20, 30)))
    (out / "runner.log").write_text("[gpu_run] GPU NVIDIA H200, 140 GiB, bf16 True\n")
    args = {"preset": "default", "levels": "GoToLocal OpenDoor", "procs": 16, "data_args": "--policy mix",
            "train_args": "--init-from world_model/checkpoints/default --lr 2e-4 --ema-decay 0.998 --memory "
                          "--memory-turns-only"}
    (out / "summary.json").write_text(json.dumps({"args": args, "batch": 256, "phases_s": {"record": 60.0},
                                                  "data": {"train_frames": 400_000}}))
    model = tmp_path / "model"
    model.mkdir()
    config = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())
    config["training"].update(step=30, init_from={"path": "world_model/checkpoints/default", "step": 541})
    (model / "config.json").write_text(json.dumps(config))
    dyn = gather(model, Path("-"), Path("-"), [], shipped, gpu_run=out)["dynamics"]
    assert dyn["init_from"]["path"] == "world_model/checkpoints/default" and dyn["memory"] == "turns only"
    assert dyn["previous"]["steps"] == shipped["dynamics"]["steps"] and dyn["previous"]["data"] == shipped["data"]
    summary = gather(model, Path("-"), Path("-"), [], shipped, gpu_run=out)
    assert summary["earlier_machine"] == shipped["machine"]
    text = render(model, {**summary, "recipe": "bash y.sh"}, None, None)
    assert "- Dynamics, then fine-tuned on a lent NVIDIA H200: 30 steps" in text
    assert "- Machines: the autoencoder and the earlier phases on " in text and "; the last phase on " in text
    assert "with the pose-keyed memory input (turns only)" in text.split("then fine-tuned on a lent")[1]
    assert compute_words({"dynamics": dyn}).startswith("about 3 minutes of dynamics training on a lent NVIDIA H200 and")


def test_report_of_the_shipped_results_in_order_with_machines_in_words():
    """BENCHMARKS.md from the saved results: consistency, fidelity, speed, tasks and headline, judge, then the
    ablations link; machines and samplers in words, never a raw dict."""
    root = Path(__file__).resolve().parents[1]
    text = render([root / "benchmarks" / "results"], out_dir=root)
    titles = ["## Consistency: does the model hold a world?", "## World-model fidelity on unseen worlds",
              "## World-model speed", "## Many worlds", "## Dynamics layouts", "## Ground-truth world speed",
              "## Training data throughput", "## Headline:", "## Agreement:", "## Success judge", "## Ablations"]
    positions = [text.index(t) for t in titles]
    assert positions == sorted(positions)
    assert "{'" not in text and "Machine: AMD EPYC, 2 cores, 23.5 GB memory, no GPU." in text
    assert "[experiments/LOG.md](experiments/LOG.md)" in text


def test_consistency_suite_through_genie_bench(checkpoints, tmp_path, monkeypatch):
    from benchmarks import consistency

    model, _ = checkpoints
    tiny = consistency.ConsistencyConfig(worlds=2, views=("first_person",), still_steps=(1, 2), look_back_k=1,
                                         rollout_steps=(1, 2), batch=2, sheet_worlds=1)
    monkeypatch.setitem(consistency.PRESETS, "small", tiny)
    out = tmp_path / "cons"
    assert main(["run", "consistency", "--consistency-preset", "small", "--model", str(model), "--seed", "3",
                 "--out", str(out), "--quiet", "--sampler", "num_steps=2,guidance=1.0"]) == 0
    r = json.loads((out / "consistency.json").read_text())
    assert r["benchmark"] == "genie-bench-consistency" and r["config"]["seed"] == 3 and r["config"]["worlds"] == 2
    assert r["sampler"]["num_steps"] == 2 and r["sampler"]["guidance"] == 1.0  # --sampler replaced the checkpoint's
    assert main(["run", "consistency", "--model", str(model), "--out", str(out), "--sampler", "steps=2"]) == 2
    assert set(r["views"]) == {"first_person"} and r["figures"]
    assert all((out / path).is_file() for path in r["figures"].values())
    report = (out / "report.md").read_text()
    assert "## Consistency: does the model hold a world?" in report and "| still |" in report
    assert main(["run", "consistency", "--consistency-preset", "huge", "--model", str(model), "--out", str(out)]) == 2


def test_hold_prompt_counts_identical_frames_as_unchanged():
    """A world whose frames equal its prompt scores the PSNR cap and counts as unchanged; the figures over the
    changed worlds leave it out."""
    from benchmarks.fidelity import hold_prompt

    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 256, (1, 1, 8, 8, 3), dtype=np.uint8), 5, axis=1)  # 1 + 4 identical frames
    moving = rng.integers(0, 256, (1, 5, 8, 8, 3), dtype=np.uint8)
    hold, changed, f = hold_prompt(np.concatenate([still, moving]), [1, 4])
    assert hold.shape == (2, 4) and changed.tolist() == [[False] * 4, [True] * 4]
    assert f["prompt_unchanged_share"] == {"1": 0.5, "4": 0.5}
    assert f["autoregressive_hold_prompt_psnr_changed"]["4"] == pytest.approx(hold[1, 3]) and hold[1, 3] < 20
    assert f["autoregressive_hold_prompt_psnr"]["4"] == pytest.approx((60 + hold[1, 3]) / 2)
