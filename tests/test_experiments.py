"""The studies in experiments/ (not installed; imported from the repository root): the context-noise and sampler
sweeps on a tiny random-weight world model, and the report of their results."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.report import render

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_world_model):
    """A tiny world model saved as a checkpoint folder, as the studies load it."""
    path = tmp_path_factory.mktemp("experiments_ckpt") / "wm"
    tiny_world_model().save(path)
    return path


def test_saved_results_render_every_study_and_candidate(tmp_path):
    """Every saved study result renders (objective, context noise, sampler sweeps, candidate fidelity) and no
    section prints a raw machine dict."""
    text = render(ROOT / "experiments" / "results", out_dir=ROOT / "experiments")
    for title in ("## Training objective", "## Context-noise sweep", "## Sampler sweep",
                  "## World-model fidelity on unseen worlds: `fidelity_v4` (not the shipped model)"):
        assert title in text
    assert "{'cpu'" not in text and "Machine: AMD EPYC, 2 cores" in text
    assert "](results/objective/objective.png)" in text
    assert "## Consistency of candidate models" in text and "## Consistency of the small-preset ablations" in text
    assert "## Top-down small objects through the autoencoder (a window of 11 x 11 cells" in text


def test_ablation_table_orders_arms_and_views():
    """BENCHMARKS.md's ablation table: the script's arm order (unknown arms last), first person before top-down."""
    from benchmarks.report import ablation_table

    result = json.loads((ROOT / "experiments" / "results" / "ablation_small" / "base.json").read_text())
    rows = [(Path(f"x/{arm}.json"), dict(result, training_step=i)) for i, arm in enumerate(["zeta", "patch4", "base"])]
    text = ablation_table(rows)
    lines = [line for line in text if line.startswith("| ") and "| result |" not in line]
    assert [line.split(" | ")[0] + " " + line.split(" | ")[2] for line in lines] == [
        "| base 2", "| patch4 1", "| zeta 0", "| base 2", "| patch4 1", "| zeta 0"]
    assert text.index("#### first person") < text.index("#### top down")
    assert ablation_table([]) == []


def test_context_sigma_sweep_tiny(model, tmp_path, capsys):
    """experiments.context_sigma: one model, past frames cached at several noise levels, figures per level and
    view, rendered in the report; the level changes what the model generates."""
    from experiments.context_sigma import main as sweep

    out = tmp_path / "res" / "context_sigma.json"
    r = sweep(["--model", str(model), "--sigmas", "0.01", "0.5", "--episodes", "2", "--views", "first_person",
               "--out", str(out)])
    assert set(r["levels"]) == {"0.01", "0.5"} and r["trained_context_sigma"] == 0.1
    lo, hi = r["levels"]["0.01"]["first_person"], r["levels"]["0.5"]["first_person"]
    assert set(lo["autoregressive_psnr"]) == {"1", "4", "16"} and np.isfinite(lo["delta_psnr_16"])
    ci = lo["delta_psnr_16_ci95"]
    assert ci[0] <= lo["delta_psnr_16"] <= ci[1]
    assert sum(k["n"] for k in lo["one_step_by_action"].values()) == 2 * 5  # starts 0, 3, 7, 15, 31
    assert lo["one_step_psnr"] != hi["one_step_psnr"]
    assert json.loads(out.read_text())["levels"]["0.5"]["first_person"]["one_step_psnr"] == hi["one_step_psnr"]
    assert "## Context-noise sweep" in render(out.parent, out_dir=tmp_path)
    with pytest.raises(SystemExit):
        sweep(["--model", str(model), "--sigmas", "0"])
    assert "--sigmas must all be > 0" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Heun with")
def test_sampler_sweep_tiny(model, tmp_path, capsys):
    """experiments.sampler_sweep: one model under several sampler settings on the same worlds; settings, NFE and
    frames/s per variant, rendered in the report; a bad variant is refused before any work."""
    from experiments.sampler_sweep import main as sweep

    out = tmp_path / "res" / "sweep.json"
    r = sweep(["--model", str(model), "--variant", "default", "--variant", "num_steps=2,sigma_min=0.5",
               "--variant", "solver=heun,context_sigma=0.3", "--episodes", "2", "--views", "first_person",
               "--out", str(out)])
    v = r["variants"]
    assert list(v) == ["default", "num_steps=2,sigma_min=0.5", "solver=heun,context_sigma=0.3"]
    base, fast, heun = v.values()
    assert fast["settings"]["num_steps"] == 2 and fast["settings"]["sigma_min"] == 0.5 and fast["nfe"] == 2
    assert heun["settings"]["solver"] == "heun" and heun["settings"]["context_sigma"] == 0.3
    assert heun["nfe"] == 2 * base["nfe"] - 1 and all(x["frames_per_s"] > 0 for x in v.values())
    assert base["settings"]["num_steps"] == r["sampler"]["num_steps"]
    assert fast["first_person"]["one_step_psnr"] != base["first_person"]["one_step_psnr"]
    assert set(base["first_person"]["autoregressive_psnr"]) == {"1", "4", "16"}
    assert json.loads(out.read_text())["variants"]["default"]["nfe"] == base["nfe"]
    assert "## Sampler sweep" in render(out.parent, out_dir=tmp_path)
    assert all(len(x["frames_per_s_rounds"]) == 3 for x in v.values())  # the default --speed-rounds
    fast_only = sweep(["--model", str(model), "--variant", "default", "--variant", "num_steps=1", "--speed-only",
                       "--speed-rounds", "2", "--speed-batch", "3", "--views", "first_person", "--out", str(out)])
    only = fast_only["variants"]
    assert fast_only["speed_batch"] == 3 and "3 worlds stepped together" in render(out.parent, out_dir=tmp_path)
    assert fast_only["episodes"] == 0 and "first_person" not in only["default"]
    assert len(only["num_steps=1"]["frames_per_s_rounds"]) == 2 and only["num_steps=1"]["nfe"] == 1
    assert "speed only" in render(out.parent, out_dir=tmp_path)
    no_speed = sweep(["--model", str(model), "--variant", "default", "--no-speed", "--episodes", "1", "--views",
                      "first_person", "--out", str(out)])
    assert "frames_per_s" not in no_speed["variants"]["default"]
    assert "frames/s not measured (--no-speed)" in render(out.parent, out_dir=tmp_path)
    for bad in (["--variant", "num_steps=0"], ["--variant", "steps=2"], ["--variant", "sigma_min=9"],
                ["--speed-rounds", "0"], ["--speed-batch", "0"], ["--speed-only", "--no-speed"]):
        with pytest.raises(SystemExit):
            sweep(["--model", str(model), *bad])
        assert "error" in capsys.readouterr().err


def test_sampler_actions_tiny(model, tmp_path):
    """experiments.sampler_actions: toggle / pickup shares and approach gains per (setting, noise seed) on worlds found
    once; a bad setting or world count is refused before any model runs."""
    from experiments.sampler_actions import main as probe

    out = tmp_path / "actions.jsonl"
    probe(["--model", str(model), "--settings", "default", "sigma_max=8,guidance=2.5", "--worlds", "2",
           "--noise-seeds", "0", "1", "--out", str(out)])
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["setting"], x["noise_seed"]) for x in lines] == [("default", 0), ("default", 1),
                                                               ("sigma_max=8,guidance=2.5", 0),
                                                               ("sigma_max=8,guidance=2.5", 1)]
    assert lines[2]["sampler"]["sigma_max"] == 8.0 and lines[2]["sampler"]["guidance"] == 2.5
    for x in lines:
        assert x["toggle"]["worlds"] == 2 and 0.0 <= x["toggle"]["share"] <= 1.0
        assert x["approach"]["worlds"] == 2 and set(x["approach"]["gain"]) == {"1", "2", "3"}
    with pytest.raises(ValueError, match="bad sampler setting"):
        probe(["--model", str(model), "--settings", "steps=2", "--out", str(tmp_path / "bad.jsonl")])
    with pytest.raises(SystemExit):
        probe(["--model", str(model), "--worlds", "0", "--out", str(tmp_path / "bad.jsonl")])
    assert not (tmp_path / "bad.jsonl").exists()


def test_sampler_counterfactual_tiny(model, tmp_path, capsys):
    """experiments.sampler_counterfactual: the suite's counterfactual accuracy, its per-action shares and what each
    action's frame is nearest, per sampler setting; a bad setting or world count is refused before any model runs."""
    from experiments.sampler_counterfactual import main as probe

    out = tmp_path / "cf.jsonl"
    probe(["--model", str(model), "--settings", "default", "num_steps=2", "--worlds", "2", "--out", str(out),
           "--sheets", str(tmp_path / "sheets")])
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["setting"] for x in lines] == ["default", "num_steps=2"] and lines[1]["sampler"]["num_steps"] == 2
    for x in lines:
        assert x["worlds"] == 2 and 0.0 <= x["accuracy"] <= 1.0 and set(x["per_action"]) == set(x["nearest"])
        for near in x["nearest"].values():
            shares = [v for k, v in near.items() if k != "worlds"]
            assert near["worlds"] <= 2 and (not near["worlds"] or abs(sum(shares) - 1.0) < 0.01)
    assert len(list((tmp_path / "sheets").glob("cf_top_down_*.png"))) == 2
    with pytest.raises(ValueError, match="bad sampler setting"):
        probe(["--model", str(model), "--settings", "steps=2", "--out", str(tmp_path / "bad.jsonl")])
    with pytest.raises(SystemExit):
        probe(["--model", str(model), "--worlds", "0", "--out", str(tmp_path / "bad.jsonl")])
    assert not (tmp_path / "bad.jsonl").exists()


def test_counterfactual_nearest_counts_distinct_actions_only():
    """nearest: an action whose true frame equals another's is left out; the others count the true frame each
    generated frame is nearest."""
    from experiments.sampler_counterfactual import nearest

    A = 7
    truth = np.zeros((2, A, 4, 4, 3), np.uint8)
    for a in range(A):
        truth[:, a] = 10 * a  # every action its own frame ...
    truth[1, 3] = truth[1, 0]  # ... but in world 1 forward (3) changes nothing: it matches noop
    gen = truth.copy()
    gen[0, 3] = truth[0, 1] + 1  # world 0: forward drawn as turn_left
    r = nearest(gen, truth)
    assert r["forward"] == {"worlds": 1, "turn_left": 1.0}
    assert r["noop"] == {"worlds": 1, "noop": 1.0}  # world 1's noop shares its frame with forward
    assert r["turn_right"] == {"worlds": 2, "turn_right": 1.0}


def test_sampler_still_tiny(model, tmp_path, capsys):
    """experiments.sampler_still: still@1/8/20 per sampler setting, appended as JSON lines with the rows each frame
    costs; a bad setting is refused before any model runs."""
    from experiments.sampler_still import main as probe

    out = tmp_path / "still.jsonl"
    probe(["--model", str(model), "--settings", "default", "rho=3,guidance_min_sigma=2,guidance=1.5",
           "--worlds", "2", "--out", str(out)])
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["setting"] for x in lines] == ["default", "rho=3,guidance_min_sigma=2,guidance=1.5"]
    assert lines[1]["sampler"]["rho"] == 3.0 and set(lines[1]["still"]) == {"1", "8", "20"}
    # 3 steps 5 -> 1.28 -> 0.1 guided at sigma >= 2: only the first step runs two rows
    assert lines[1]["rows_per_frame"] == lines[1]["sampler"]["num_steps"] + 1
    with pytest.raises(ValueError, match="bad sampler setting"):
        probe(["--model", str(model), "--settings", "steps=2", "--out", str(tmp_path / "bad.jsonl")])
    assert not (tmp_path / "bad.jsonl").exists()


def test_decoder_finetune_tiny(model, tmp_path):
    """experiments.decoder_finetune: only the decoder changes (encoder, latent statistics and dynamics are kept, so the
    dynamics' latents mean what they did); figures before / after per view; a second call continues the run."""
    import torch

    from experiments.decoder_finetune import detail_loss, local_contrast, main as finetune
    from genie_env.recorder import record
    from world_model import WorldModel

    env = "genie_env/BabyAI3D-GoToLocal-v0"
    record(env, tmp_path / "train", frames=24, policy="random", episodes_per_shard=4, max_episode_steps=6,
           top_down_share=0.5, progress=False)
    record(env, tmp_path / "test", frames=24, policy="random", episodes_per_shard=4, max_episode_steps=6,
           top_down_share=0.5, env_kwargs={"worlds": "test"}, progress=False)
    out = tmp_path / "dec"
    args = ["--model", str(model), "--data", str(tmp_path / "train"), "--eval-data", str(tmp_path / "test"),
            "--minutes", "0.02", "--batch-size", "4", "--eval-frames", "8", "--out", str(out)]
    r = finetune(args)
    assert r["steps"] >= 1 and set(r["before"]) == set(r["after"]) and r["before"]
    for view, f in r["after"].items():
        assert np.isfinite(f["frame_psnr"]) and f["detail_psnr"] <= f["frame_psnr"] + 20 and f["frames"] >= 1
    old, new = WorldModel.load(model, autocast=False), WorldModel.load(out, autocast=False)

    def same(a, b) -> bool:  # both stored as fp16
        return all(torch.equal(u.half().float(), v.float()) for u, v in zip(a.state_dict().values(),
                                                                            b.state_dict().values()))

    assert same(old.autoencoder.encoder, new.autoencoder.encoder) and same(old.dynamics, new.dynamics)
    assert torch.equal(old.autoencoder.latent_shift, new.autoencoder.latent_shift)
    assert torch.equal(old.autoencoder.latent_scale, new.autoencoder.latent_scale)
    assert not same(old.autoencoder.decoder, new.autoencoder.decoder)
    assert new.training_metadata["decoder_finetune"]["steps"] == r["steps"]
    assert finetune(args)["steps"] == r["steps"]  # the budget is spent: a second call continues, trains nothing more
    # the loss: plain L1 + MSE at weight 0; the weight tilts it towards high-contrast pixels
    x = torch.zeros(1, 3, 8, 8)
    x[..., 4, 4] = 1.0
    assert local_contrast(x)[0, 0, 4, 4] > local_contrast(x)[0, 0, 0, 0] == 0
    miss = torch.zeros_like(x)
    assert detail_loss(miss, x, 4.0) > detail_loss(miss, x, 0.0)
    with pytest.raises(SystemExit):
        finetune(args[:-2] + ["--out", str(tmp_path / "bad"), "--detail-weight", "-1"])


def test_model_speed_runtimes_tiny(model):
    """experiments.model_speed: every model under every runtime asked for, bf16 forced or off as named, ratios to the
    first (model, runtime)."""
    from experiments.model_speed import main as speed

    r = speed(["--model", str(model), "--runtime", "fp32", "bf16", "--batch", "1", "--rounds", "1", "--repeats", "2"])
    rows = {x["runtime"]: x for x in r["results"]}
    assert set(rows) == {"fp32", "bf16"} and rows["fp32"]["bf16"] is False and rows["bf16"]["bf16"] is True
    assert rows["fp32"]["vs_first"] == 1.0 and rows["bf16"]["env_steps_per_s"] > 0


def test_one_step_tiny(model, tmp_path):
    """experiments.one_step: per view, context length and action, the model's PSNR beside holding the last context
    frame, and sharpness; a contact sheet per view; bad context lengths are refused before any model runs."""
    from experiments.one_step import PLAYED, agent_crop, main as probe

    out, sheet = tmp_path / "one_step.json", tmp_path / "sheets"
    r = probe(["--model", str(model), "--context", "1", "3", "--worlds", "2", "--threads", "1",
               "--out", str(out), "--sheet", str(sheet)])
    assert json.loads(out.read_text())["views"].keys() == {"first_person", "top_down"}
    fig = r["views"]["top_down"]["3"]
    assert len(fig["per_action"]) == 7 and fig["per_action"]["noop"]["hold"] >= 59.9  # holding is exact under noop
    assert (sheet / "first_person_k1.png").exists()
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[8:16, 8:16] = 255  # the agent's cell (1, 1) of an 8 x 8 grid
    crop = agent_crop(frame, (1, 1), 8, out=48)
    assert crop.shape == (48, 48, 3) and crop[16:32, 16:32].min() == 255 and crop[:16].max() == 0
    assert agent_crop(frame, (0, 0), 10, out=48).shape == (48, 48, 3)  # 6-pixel cells, cut at the grid's edge
    with pytest.raises(SystemExit):
        probe(["--model", str(model), "--context", str(PLAYED + 2), "--out", str(tmp_path / "bad.json")])
    with pytest.raises(SystemExit):  # the tiny model's window is 4 frames
        probe(["--model", str(model), "--context", "5", "--out", str(tmp_path / "bad.json")])
    assert not (tmp_path / "bad.json").exists()


def test_denoise_probe_tiny(model, tmp_path):
    """experiments.denoise_probe: per noise level, the counterfactual accuracy of the noisy true latents decoded and of
    one denoiser evaluation on them, on top-down worlds whose cells the autoencoder can keep."""
    from experiments.denoise_probe import main as probe

    r = probe(["--model", str(model), "--worlds", "2", "--sigmas", "0.5", "4", "--threads", "1",
               "--out", str(tmp_path / "probe.json")])
    assert [row["sigma"] for row in r["rows"]] == [0.5, 4.0] and r["worlds"] == 2
    assert all(0 <= row["denoiser"] <= 1 and len(row["denoiser_per_action"]) == 7 for row in r["rows"])
    assert json.loads((tmp_path / "probe.json").read_text())["view"] == "top_down"
    with pytest.raises(SystemExit):
        probe(["--model", str(model), "--sigmas", "0", "--out", str(tmp_path / "bad.json")])
    assert not (tmp_path / "bad.json").exists()


def test_prompt_context_tiny(model, tmp_path):
    """experiments.prompt_context: random-play rollouts from the prompt alone and from the look-around prompt, the
    same truth for both (a full turn in place ends where it started), with holding the prompt beside them."""
    from experiments.prompt_context import main as probe

    r = probe(["--model", str(model), "--worlds", "2", "--steps", "1", "3", "--threads", "1",
               "--out", str(tmp_path / "context.json")])
    fp = r["views"]["first_person"]
    assert set(fp) == {"prompt", "look_around"} and set(fp["prompt"]) == {"1", "3"}
    assert fp["prompt"]["3"]["hold"] == fp["look_around"]["3"]["hold"]
    assert json.loads((tmp_path / "context.json").read_text())["look_around"] == [1, 1, 1, 1]
    with pytest.raises(SystemExit):
        probe(["--model", str(model), "--steps", "3", "1", "--out", str(tmp_path / "bad.json")])
    assert not (tmp_path / "bad.json").exists()


def test_wide_latent_tiny(model, tmp_path, tiny_world_model):
    """experiments.wide_latent: widening keeps the autoencoder's reconstructions; `train --keep-old` leaves the old
    channels (encoder and statistics) as they were; `widen-model` gives a world model whose dynamics predict the old
    channels exactly as before and the new ones as zero at first, which genie-train reads; `measure` writes figures
    and ceilings."""
    import torch

    from experiments.wide_latent import load_any, main as wide, widen
    from genie_env.recorder import record
    from world_model import WorldModel
    from world_model.autoencoder import frames_to_pixels

    env = "genie_env/BabyAI3D-GoToLocal-v0"
    record(env, tmp_path / "train", frames=24, policy="random", episodes_per_shard=4, max_episode_steps=6,
           top_down_share=0.5, progress=False)
    record(env, tmp_path / "test", frames=24, policy="random", episodes_per_shard=4, max_episode_steps=6,
           top_down_share=0.5, env_kwargs={"worlds": "test"}, progress=False)
    old = load_any(str(model))
    px = frames_to_pixels(torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8))
    wider = widen(old, old.config.latent_channels + 2)
    with torch.no_grad():
        assert torch.equal(wider(px), old(px))  # the new channels are read with zero weights
    with pytest.raises(ValueError, match="channels"):
        widen(old, old.config.latent_channels - 1)

    ae_dir = tmp_path / "ae"
    channels = old.config.latent_channels + 2
    r = wide(["train", "--model", str(model), "--channels", str(channels), "--data", str(tmp_path / "train"),
              "--eval-data", str(tmp_path / "test"), "--minutes", "0.02", "--batch-size", "4", "--eval-frames", "8",
              "--warmup", "1", "--lr", "1e-2", "--threads", "1", "--out", str(ae_dir)])
    assert r["steps"] >= 1 and r["keep_old"] and r["channels"] == channels
    ae = load_any(str(ae_dir))
    k = old.config.latent_channels
    with torch.no_grad():
        assert torch.allclose(ae.encode(px)[:, :k], old.encode(px), atol=1e-5)  # the old latents, unchanged
        assert not torch.equal(ae.decoder.conv_in.weight[:, k:], torch.zeros_like(ae.decoder.conv_in.weight[:, k:]))
    assert torch.equal(ae.latent_shift[:k], old.latent_shift) and torch.equal(ae.latent_scale[:k], old.latent_scale)

    wm_dir = tmp_path / "wm_wide"
    wide(["widen-model", "--model", str(model), "--autoencoder", str(ae_dir), "--out", str(wm_dir), "--threads", "1"])
    a, b = WorldModel.load(model, autocast=False), WorldModel.load(wm_dir, autocast=False)
    assert b.config.dynamics.latent_channels == channels
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, k, *old.config.latent_size * np.ones(2, int), generator=g)
    xw = torch.cat([x, torch.randn(2, 3, channels - k, *x.shape[-2:], generator=g)], 2)
    c, acts, pos = torch.rand(2, 3, generator=g), torch.randint(0, 7, (2, 3), generator=g), torch.arange(3).expand(2, 3)
    with torch.no_grad():
        fa, fb = a.dynamics(x, c, acts, pos), b.dynamics(xw, c, acts, pos)
    assert torch.allclose(fb[:, :, :k], fa, atol=1e-3) and not fb[:, :, k:].any()
    other = tmp_path / "other"
    tiny_world_model(seed=1).save(other)  # another autoencoder: its channels are not this model's latents
    with pytest.raises(ValueError, match="widened with its old channels kept"):
        wide(["widen-model", "--model", str(other), "--autoencoder", str(ae_dir), "--out", str(tmp_path / "x")])

    res = wide(["measure", "--autoencoder", str(model), str(ae_dir), "--eval-data", str(tmp_path / "test"),
                "--worlds", "2", "--eval-frames", "4", "--sheet-frames", "2", "--threads", "1",
                "--out", str(tmp_path / "m.json"), "--sheet", str(tmp_path / "m.png")])
    for r in res["autoencoders"].values():
        for v in ("top_down", "first_person"):
            assert 0 <= r["counterfactual_ceiling"][v]["overall"] <= 1 and r["counterfactual_ceiling"][v]["worlds"] == 2
    assert json.loads((tmp_path / "m.json").read_text())["worlds"] == 2 and (tmp_path / "m.png").is_file()
    md = render(tmp_path, tmp_path)
    assert "Autoencoders with a wider latent: 2 suite worlds" in md and "(m.png)" in md
    assert md.count(f"| `{ae_dir}` | {channels} |") == 1


def test_wide_latent_curves(tmp_path):
    """experiments.wide_latent curves: block means up to the step every run reached, the difference to the first run;
    a run without a log, or shorter than one block, is a clear error and writes nothing."""
    from experiments.wide_latent import main as wide

    for name, offset in (("a", 0.0), ("b", 0.1)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"step": s, "loss": 1.0 / s + offset, "elapsed_s": 2.0 * s} for s in range(10, 60 if name == "a"
                                                                                            else 45, 10)]
        (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "curves" / "c.json"
    r = wide(["curves", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--block", "20", "--out", str(out),
              "--plot", str(tmp_path / "curves" / "c.png")])
    a, b = r["curves"][str(tmp_path / "a")], r["curves"][str(tmp_path / "b")]
    assert r["blocks"] == [[0, 20], [20, 40]]  # b stopped at step 40
    assert a["block_mean"] == pytest.approx([(1 / 10 + 1 / 20) / 2, (1 / 30 + 1 / 40) / 2], abs=1e-5)
    assert b["mean_diff_to_first"] == pytest.approx(0.1, abs=1e-5) and a["mean_diff_to_first"] == 0
    assert json.loads(out.read_text())["block"] == 20 and (tmp_path / "curves" / "c.png").is_file()
    md = render(tmp_path / "curves", tmp_path / "curves")
    assert "Training losses of widened dynamics runs" in md and "| +0.1000 |" in md and "(c.png)" in md
    with pytest.raises(SystemExit, match="log.jsonl is missing"):
        wide(["curves", "--runs", str(tmp_path / "a"), str(tmp_path / "none"), "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="less than one --block"):
        wide(["curves", "--runs", str(tmp_path / "a"), "--block", "100", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_wide_latent_fit_head(model, tmp_path):
    """experiments.wide_latent fit-head: the new channels' output rows of a widened model fitted by ridge
    regression lower their loss on the batches fitted, leave the old rows as they were, and write the model and a
    report; a model that is not widened is a clear error."""
    import torch

    from experiments.wide_latent import main as wide
    from genie_env.recorder import record
    from world_model import WorldModel
    from world_model.widen import widen_autoencoder, widen_world_model

    record("genie_env/BabyAI3D-GoToLocal-v0", tmp_path / "data", frames=48, policy="random", episodes_per_shard=4,
           max_episode_steps=16, progress=False)
    base = WorldModel.load(model, autocast=False)
    k = base.config.autoencoder.latent_channels
    wide_wm = widen_world_model(base, widen_autoencoder(base.autoencoder, k + 2))
    wide_wm.save(tmp_path / "wide", training=wide_wm.training_metadata)
    r = wide(["fit-head", "--model", str(tmp_path / "wide"), "--data", str(tmp_path / "data"), "--out",
              str(tmp_path / "fit"), "--batches", "3", "--preset", "tiny", "--threads", "1",
              "--report", str(tmp_path / "fit.json")])
    loss = r["new_channel_loss"]
    assert loss["fit_batches"]["after"] < loss["fit_batches"]["before"] and r["old_channel_loss"] > 0
    fitted = WorldModel.load(tmp_path / "fit", autocast=False).dynamics.patch_out
    pp = base.config.dynamics.patch_size ** 2
    assert torch.allclose(fitted.weight[:k * pp], wide_wm.dynamics.patch_out.weight[:k * pp], atol=1e-3)
    assert fitted.weight[k * pp:].abs().sum() > 0  # the new rows, zero before, now fitted
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved["benchmark"] == "wide_latent_fit_head" and "fit-head" in saved["command"]
    assert "new output rows of" in render(tmp_path, tmp_path)
    with pytest.raises(SystemExit, match="not a widened model"):
        wide(["fit-head", "--model", str(model), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x"),
              "--preset", "tiny", "--threads", "1"])
    assert not (tmp_path / "x").exists()


def test_latent_change_tiny(model, tmp_path, capsys):
    """experiments.latent_change: per view and action, how much latent an action moves (noop: nothing), and the
    change weights of mixed batches under each change_norm, written as JSON."""
    from experiments.latent_change import main as latent_change
    from genie_env.recorder import record

    for view, share in (("fp", 0.0), ("td", 1.0)):
        record("genie_env/BabyAI3D-GoToLocal-v0", tmp_path / view, frames=60, policy="random", top_down_share=share,
               max_episode_steps=24, episodes_per_shard=4, progress=False)
    r = latent_change(["--model", str(model), "--data", str(tmp_path / "fp"), str(tmp_path / "td"), "--episodes", "3",
                       "--batches", "1", "--out", str(tmp_path / "lc.json")])
    for view in ("first_person", "top_down"):
        per = r["views"][view]
        assert per and all(v["transitions"] > 0 and v["mean_sq_change"] >= 0 for v in per.values())
        if "noop" in per:
            assert per["noop"]["mean_sq_change"] == 0.0  # the ground truth does not move under noop
    for norm in ("batch", "window"):
        for view in ("first_person", "top_down"):
            assert all(w >= 0.2 - 1e-6 for w in r["weights"][norm][view].values())  # 1 / (1 + 4) at the least
    assert json.loads((tmp_path / "lc.json").read_text())["experiment"] == "latent_change"
    assert "change_norm window" in capsys.readouterr().out


def test_same_frames_tiny(model, tmp_path, tiny_world_model):
    """experiments.same_frames: a model against itself is identical in every view; against other weights it is not."""
    from experiments.same_frames import main as same

    r = same(["--model", str(model), "--other", str(model), "--worlds", "2", "--steps", "2",
              "--out", str(tmp_path / "same.json")])
    assert r["views"] == {"first_person": "identical", "unknown": "identical", "top_down": "identical"}
    tiny_world_model(seed=1).save(tmp_path / "other")
    r = same(["--model", str(model), "--other", str(tmp_path / "other"), "--worlds", "2", "--steps", "2"])
    assert all(v != "identical" for v in r["views"].values())
    assert json.loads((tmp_path / "same.json").read_text())["steps"] == 2


def test_demo_truth_tiny(model, tmp_path):
    """experiments.demo_truth replays genie-play's headless demo in the ground truth: the first true frame is the
    prompt the model starts from, the actions are genie-play's, and every autoencoder is measured on the truth."""
    from experiments.demo_truth import demo_episode, main as demo

    r = demo(["--model", str(model), "--autoencoder", str(model), "--steps", "3", "--seed", "0", "--every", "1",
              "--out", str(tmp_path / "demo.json"), "--sheet", str(tmp_path / "demo.png")])
    assert r["model"]["psnr"][0] == 60.0 and len(r["model"]["psnr"]) == 4
    assert r["actions"] == [int(a) for a in np.random.default_rng(0).integers(7, size=3)]
    assert 0 < r["autoencoders"][str(model)]["frame_psnr"] < 60 and (tmp_path / "demo.png").stat().st_size > 0
    ep = demo_episode(3, 0, str(model))
    assert np.array_equal(ep["truth"], demo_episode(3, 0, str(model))["truth"])  # the same world and actions
    with pytest.raises(SystemExit):
        demo(["--model", str(model), "--steps", "0"])
