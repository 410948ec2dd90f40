"""Writes a checkpoint's MODEL_CARD.md from saved measurements: no figure is typed by hand.

    python -m benchmarks.model_card --model world_model/checkpoints/default \
        --ae-run runs/train/ae --dyn-run runs/train/dyn --data runs/data/train/* \
        --fidelity benchmarks/results/fidelity.json [--judge benchmarks/results/judge.json]
        [--consistency benchmarks/results/consistency.json]

Training facts (data counts, steps, wall time, losses) are first gathered into ``MODEL/training_summary.json``
(from the run folders, which are not in the repository); the card is rendered from that file and the benchmark
JSON files, so ``--render-only`` regenerates it anywhere.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from benchmarks.machine import in_words
from benchmarks.report import sampler_words
from world_model.checkpoint import write_text


def padding_words(args: dict) -> str | None:
    """How a dynamics run padded episodes shorter than its window (`genie-train dynamics --pad-short-episodes`), in
    words for the card; None when it did not."""
    if not args.get("pad_short_episodes"):
        return None
    views = args.get("pad_views")
    where = ("with copies of their last frame after it" if args.get("pad_at") == "end"
             else "with copies of their first frame in front")
    weight = args.get("pad_weight")
    return (f"short episodes{' of the ' + ', '.join(v.replace('_', '-') for v in views) + ' view' if views else ''} "
            f"padded to the window {where}, under noop" + (f" (drawn {weight:g}x as often as a window)" if weight else ""))


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wall_seconds(log: list[dict]) -> float | None:
    """Training wall time of a run's log.jsonl across resumed sessions (each session's elapsed_s restarts at 0;
    the lines past a resumed checkpoint were dropped, so this is the time of the steps that count)."""
    ends = session_ends(log)
    return float(sum(rec["elapsed_s"] for rec in ends)) if ends else None


def session_ends(log: list[dict]) -> list[dict]:
    """The last log line of each training session (a resumed session's elapsed_s restarts below the previous)."""
    return [rec for rec, nxt in zip(log, log[1:] + [None]) if nxt is None or nxt["elapsed_s"] < rec["elapsed_s"]]


def gather(model: Path, ae_run: Path, dyn_run: Path, data: list[str], base: dict | None = None,
           gpu_run: Path | None = None) -> dict:
    """Training facts from the run folders and recordings. base: the training summary of the checkpoint a
    fine-tuning dynamics run started from (`genie-train dynamics --init-from`): its autoencoder facts are kept
    (that run folder may be gone) and its dynamics facts become the earlier phase of this model's training.
    gpu_run: the OUT folder of a lent-GPU run (world_model/recipes/gpu_run.sh) that trained these dynamics
    (with base for the frozen autoencoder's facts; no recordings: its data was recorded on the GPU machine)."""
    if gpu_run is not None:
        if base is None:
            raise SystemExit("model_card: --gpu-run needs --base-summary, the training summary of the checkpoint "
                             "whose autoencoder the GPU run used (e.g. world_model/checkpoints/default/"
                             "training_summary.json)")
        phase = gpu_run_phase(gpu_run)
        exported = json.loads((model / "config.json").read_text()).get("training", {})
        if exported.get("step") is not None:
            phase["steps"] = exported["step"]
        earlier = {}
        if exported.get("init_from"):  # fine-tuned on the GPU from base's model: base's phases come first
            phase["init_from"] = exported["init_from"]
            phase["previous"] = dict(base["dynamics"])
            phase["previous"].setdefault("data", base["data"])
            earlier = {"earlier_machine": base.get("earlier_machine") or base.get("machine")}
        d = phase["data"]
        return {"data": {"folders": [], "env_ids": [f"genie_env/BabyAI3D-{lvl}-v0" for lvl in d["levels"]],
                         "frames": d["frames"], "episodes": None, "episodes_by_view": {}, "episodes_by_policy": {},
                         "options": d["options"]},
                "machine": json.loads((gpu_run / "summary.json").read_text()).get("machine") or {
                    "cpu": "unknown CPU", "cores_usable": d["recorders"], "gpu": phase["device"]},
                **earlier, "autoencoder": base["autoencoder"], "dynamics": phase}
    from benchmarks.machine import describe_machine
    from genie_env.data_cli import recording_summary

    recordings = [recording_summary(d) for d in data]
    views: dict[str, int] = {}
    policies: dict[str, int] = {}
    for r in recordings:
        for k, v in r["views"].items():
            views[k] = views.get(k, 0) + v
        for k, v in r["policies"].items():
            policies[k] = policies.get(k, 0) + v
    summary = {
        "data": {
            "folders": [r["folder"] for r in recordings],
            "env_ids": sorted({e for r in recordings for e in r["env_ids"]}),
            "frames": sum(r["frames"] for r in recordings),
            "episodes": sum(r["episodes"] for r in recordings),
            "episodes_by_view": views,
            "episodes_by_policy": policies,
        },
        "machine": describe_machine(),
    }
    for name, run in (("autoencoder", ae_run), ("dynamics", dyn_run)):
        if name == "autoencoder" and base is not None:
            summary[name] = base[name]
            continue
        log = _read_jsonl(run / "log.jsonl")
        evals = _read_jsonl(run / "eval.jsonl")
        args = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        summary[name] = {
            "run": str(run),
            "steps": log[-1]["step"] if log else None,
            "schedule_steps": None if args.get("time_budget_minutes") else args.get("steps"),
            "time_budget_minutes": args.get("time_budget_minutes"),
            "memory": ("turns only" if args.get("memory_turns_only") else "every frame") if args.get("memory") else None,
            "padding": padding_words(args),
            "view_conditioning": bool(args.get("view_conditioning")),
            "adapters": (f"{', '.join(v.replace('_', '-') for v in args.get('adapter_views') or ())} adapters of "
                         f"width {args['view_adapter']}" if args.get("view_adapter") else None),
            "train_only": args.get("train_only"),
            "views": args.get("views"),
            "wall_time_min": round(wall_seconds(log) / 60.0, 1) if log else None,
            "sessions": len(session_ends(log)),
            "ema_decay": args.get("ema_decay"),
            "final_loss": log[-1]["loss"] if log else None,
            "batch_size": args.get("batch_size"),
            "preset": args.get("preset"),
            "last_eval": evals[-1] if evals else None,
        }
        if args.get("context_sigma_min") is not None:
            summary[name]["context_sigma_range"] = [args["context_sigma_min"], args["context_sigma"]]
    exported = json.loads((model / "config.json").read_text()).get("training", {})
    if exported.get("step") is not None:  # the exported checkpoint's own step (the log is written every N steps)
        summary["dynamics"]["steps"] = exported["step"]
    if base is not None:
        summary["dynamics"]["init_from"] = exported.get("init_from")
        summary["dynamics"]["previous"] = dict(base["dynamics"])
        if base.get("data") and base["data"].get("folders") != summary["data"]["folders"]:
            summary["dynamics"]["previous"].setdefault("data", base["data"])  # the earlier phases' own data
    return summary


def gpu_run_phase(out: Path) -> dict:
    """The dynamics training phase of a lent-GPU run, from what `world_model/recipes/gpu_run.sh` left in its OUT
    folder (summary.json, log.jsonl, eval.jsonl, runner.log), with the data it recorded there under "data"."""
    s = json.loads((out / "summary.json").read_text())
    log, evals = _read_jsonl(out / "log.jsonl"), _read_jsonl(out / "eval.jsonl")
    a, train = s["args"], s.get("train_run") or {}
    if not train:  # a summary written before the runner kept the trainer's settings: read its options
        flags = shlex.split(a.get("train_args", ""))
        opt = {f[2:].replace("-", "_"): _number(v) for f, v in zip(flags, flags[1:] + [""])
               if f.startswith("--") and v and not v.startswith("--")}
        train = {"ema_decay": opt.get("ema_decay"), "context_sigma": opt.get("context_sigma"),
                 "context_sigma_min": opt.get("context_sigma_min")}
    device = (s.get("machine") or {}).get("gpu")
    runner_log = out / "runner.log"
    if device is None and runner_log.is_file():  # "[gpu_run] GPU NVIDIA H100 80GB HBM3, 79 GiB, bf16 True"
        device = next((line.split(" GPU ", 1)[1].split(",")[0] for line in runner_log.read_text().splitlines()
                       if line.startswith("[gpu_run] GPU ")), None)
    phase = {
        "run": str(out),
        "steps": log[-1]["step"] if log else None,
        "schedule_steps": None,  # the lr schedule ends with the time budget
        "wall_time_min": round(wall_seconds(log) / 60.0, 1) if log else None,
        "sessions": 1,
        "ema_decay": train.get("ema_decay"),
        "final_loss": log[-1]["loss"] if log else None,
        "batch_size": s.get("batch"),
        "preset": a.get("preset"),
        "last_eval": evals[-1] if evals else None,
        "device": device or "GPU",
        "median_tflops": s.get("median_tflops"),
        "data": {"frames": s["data"]["train_frames"], "levels": a["levels"].split(), "recorders": a["procs"],
                 "options": a["data_args"], "record_s": s["phases_s"].get("record")},
    }
    if train.get("context_sigma_min") is not None:
        phase["context_sigma_range"] = [train["context_sigma_min"], train["context_sigma"]]
    flags = shlex.split(a.get("train_args", ""))
    if "--memory" in flags or train.get("memory"):
        phase["memory"] = "turns only" if "--memory-turns-only" in flags or train.get("memory_turns_only") \
            else "every frame"
    return phase


def compute_words(summary: dict) -> str:
    """The dynamics training compute in words, e.g. "about 4 minutes of dynamics training on a lent NVIDIA H100
    80GB HBM3 and 60 on 2 CPU cores"."""
    gpu, cpu, t = {}, 0.0, summary["dynamics"]
    while t:
        if t.get("device"):
            gpu[t["device"]] = gpu.get(t["device"], 0.0) + (t["wall_time_min"] or 0.0)
        else:
            cpu += t["wall_time_min"] or 0.0
        t = t.get("previous")
    parts = [f"{m:.0f} on a lent {dev}" for dev, m in gpu.items()]
    if cpu or not parts:
        parts.append(f"{round(cpu / 5) * 5:.0f} on 2 CPU cores")
    return "about " + " and ".join(parts).replace(" on", " minutes of dynamics training on", 1)


def _number(text: str) -> float | str:
    """A command-line option's value: a number where it reads as one (--lr 2e-4), else the text (--init-from PATH)."""
    try:
        return float(text)
    except ValueError:
        return text


def _fmt(x, digits=2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _earlier_data(summary: dict) -> bool:
    """Whether an earlier dynamics phase carries its own data (a lent-GPU run, or a fine-tune on new recordings)."""
    t = summary["dynamics"].get("previous")
    while t:
        if t.get("data"):
            return True
        t = t.get("previous")
    return False


def data_words(d: dict, where: str = "") -> str:
    """The card's line on a phase's training data (a recorded folder list, or a lent-GPU run's counts)."""
    if d.get("episodes") is None:  # recorded on a lent GPU machine: frame counts and options only
        levels = d.get("levels") or d.get("env_ids", [])
        return (f"- Data{where}: {d['frames']:,} frames of {len(levels)} 3D BabyAI levels, train seeds only, "
                f"recorded on the GPU machine (`genie-data record {d['options']}`).")
    return (f"- Data{where}: {d['frames']:,} frames in {d['episodes']:,} episodes of {len(d['env_ids'])} 3D BabyAI "
            f"levels, train seeds only; episodes by view {d['episodes_by_view']}, by policy "
            f"{d['episodes_by_policy']}.")


def judge_on_dreams_lines(r: dict) -> list[str]:
    """What the judge says on this model's frames (benchmarks.judge_on_dreams), in sentences."""
    rows = {x["episodes_from"]: x for x in r.get("rows", [])
            if x["judge"] == "default" and x["levels"] == "all" and x["threshold"] == 0.5}
    step = next((x for x in r.get("one_step", []) if x["judge"] == "default" and x["threshold"] == 0.5), None)
    if "recorded" not in rows or "dreamed" not in rows:
        return []
    rec, dre = rows["recorded"], rows["dreamed"]
    lines = [f"On this model's frames (`{r.get('command', 'python -m benchmarks.judge_on_dreams')}`: the held-out "
             f"episodes re-played inside it under their recorded actions), the judge tells success frames from the "
             f"rest at AUC {_fmt(dre.get('auc'), 2)} (recorded frames: {_fmt(rec.get('auc'), 2)}); it fires in "
             f"{_fmt(dre['episodes']['fires_when_solved'], 2)} of the solved episodes and "
             f"{_fmt(dre['episodes']['fires_when_unsolved'], 2)} of the unsolved ones (recorded: "
             f"{_fmt(rec['episodes']['fires_when_solved'], 2)} / {_fmt(rec['episodes']['fires_when_unsolved'], 2)})."]
    if step:
        lines[0] += (f" Predicting a success frame one step ahead from the recorded frames before it, the model "
                     f"draws one the judge fires on in {_fmt(step['fires_model_success'], 2)} of "
                     f"{step['episodes']} episodes (on the recorded frame: {_fmt(step['fires_recorded_success'], 2)}"
                     f"), {_fmt(step['psnr_success'], 1)} dB from the recorded frame.")
    return lines + [""]


def phase_chain(phase: dict) -> list[dict]:
    """A training phase and the phases it was fine-tuned from (its "previous" chain), oldest first."""
    phases = [phase]
    while phases[0].get("previous"):
        phases.insert(0, phases[0]["previous"])
    return phases


def render(model: Path, summary: dict, fidelity: dict | None, judge: dict | None,
           consistency: dict | None = None, judge_dreams: dict | None = None) -> str:
    config = json.loads((model / "config.json").read_text())
    ae, dyn, sampler = config["autoencoder"], config["dynamics"], config.get("sampler", {})
    d = summary["data"]
    m = summary["machine"]
    lines = [
        "# Model card: genie-env default world model",
        "",
        "Generated by `python -m benchmarks.model_card` from `training_summary.json` and the benchmark results in "
        "`benchmarks/results/`; rerun the commands named below to reproduce every figure.",
        "",
        "## What it is",
        "",
        f"An action-conditioned latent diffusion world model of the 3D BabyAI world (first-person and top-down "
        f"views), {ae['image_size']}x{ae['image_size']} RGB frames, actions "
        f"{', '.join(config['action_meanings'])}.",
        f"- Autoencoder: frames <-> {ae['latent_channels']}x{ae.get('image_size', 64) // (ae.get('pixel_patch', 1) * 2 ** (len(ae['channels']) - 1))}"
        f"x{ae.get('image_size', 64) // (ae.get('pixel_patch', 1) * 2 ** (len(ae['channels']) - 1))} latents, channels {ae['channels']}.",
        f"- Dynamics: causal DiT, width {dyn['width']}, depth {dyn['depth']}, {dyn['heads']} heads, "
        f"{(dyn['latent_size'] // dyn['patch_size']) ** 2} tokens per frame, context {dyn['context_frames']} frames, "
        + ("the previous frame's latent as extra input channels, " if dyn.get("prev_frame") else "")
        + ("a pose-keyed memory input (the latest earlier frame seen from the same dead-reckoned heading"
           + (", given to frames the agent turned into" if dyn.get("memory_turns_only") else "") + "), "
           if dyn.get("memory") else "")
        + ("the view each world is rendered in (an embedding added to the action's), " if dyn.get("views") else "")
        + (f"an adapter per block for the {', '.join(v.replace('_', '-') for v in dyn['adapter_views'])} view "
           f"(a residual MLP of width {dyn['view_adapter']} run only for worlds of that view), "
           if dyn.get("view_adapter") else "")
        + "EDM preconditioning, Diffusion Forcing training, classifier-free guidance on the action.",
        f"- Default sampler: {sampler_words(sampler)}; past frames are cached at noise level "
        f"{config.get('diffusion', {}).get('context_sigma')}"
        + (f" (trained with {config['training']['trained_context_sigma']})"
           if "trained_context_sigma" in config.get("training", {}) else "") + ".",
        "",
        "## Data and training",
        "",
        data_words(d, " (of the last phase; earlier phases with their own data list it below them)"
                   if _earlier_data(summary) else ""),
    ]
    for name in ("autoencoder", "dynamics"):
        phases = phase_chain(summary[name])
        for i, t in enumerate(phases):
            extra = ""
            if t.get("sessions", 1) > 1:
                extra += f" over {t['sessions']} resumed sessions"
            if t.get("context_sigma_range"):
                extra += f"; context noise drawn from {t['context_sigma_range']}"
            if t.get("memory"):
                extra += f"; with the pose-keyed memory input ({t['memory']})"
            if t.get("padding"):
                extra += f"; {t['padding']}"
            if t.get("view_conditioning"):
                extra += "; conditioned on the view"
            if t.get("views"):
                extra += f"; on the {', '.join(v.replace('_', '-') for v in t['views'])} episodes only"
            if t.get("train_only"):
                extra += f"; only its {t['adapters'] if t.get('adapters') else t['train_only']} trained, the rest held"
            elif t.get("adapters"):
                extra += f"; with {t['adapters']}"
            if t.get("ema_decay"):
                extra += f"; the weights are an EMA (decay {t['ema_decay']})"
            what = name.capitalize() if i == 0 else f"{name.capitalize()}, then fine-tuned"
            schedule = (f" (of a {t['schedule_steps']}-step schedule)" if t.get("schedule_steps")
                        else f" (the lr schedule ends with a {t['time_budget_minutes']:g}-minute time budget)"
                        if t.get("time_budget_minutes")
                        else " (the lr schedule ends with the time budget)" if t.get("device") else "")
            where = f" on a lent {t['device']}" if t.get("device") else ""
            lines.append(f"- {what}{where}: {t['steps']} steps{schedule}, batch "
                         f"{t['batch_size'] or 'preset default'}, {t['wall_time_min']} min wall time{extra}, final "
                         f"training loss {_fmt(t['final_loss'], 4)}.")
            if t.get("data") and t is not summary[name]:  # an earlier phase's own data (a lent-GPU run's)
                lines.append("  " + data_words(t["data"], " of that phase" if t.get("device")
                                                  else " of that and the earlier phases").lstrip("- "))
        if len(phases) > 1:
            windows = (f", {sum(t['steps'] * t['batch_size'] for t in phases):,} training windows"
                       if len({t.get("batch_size") for t in phases}) > 1 and all(t.get("batch_size") for t in phases)
                       else "")  # phases of different batch sizes: steps alone do not compare
            lines.append(f"- {name.capitalize()} in all: {sum(t['steps'] for t in phases)} steps, "
                         f"{round(sum(t['wall_time_min'] for t in phases), 1)} min wall time{windows}.")
    lines += [
        (f"- Machines: the autoencoder and the earlier phases on {in_words(summary['earlier_machine'])}; the last "
         f"phase on {in_words(m)}; bf16 autocast where native." if summary.get("earlier_machine")
         else f"- Machine: {in_words(m)}"
         + ("; the phases marked above as on a lent GPU ran there; bf16 autocast where native."
            if any(t.get("device") for t in phase_chain(summary["dynamics"])) else "; bf16 autocast.")),
        f"- Recipe: `{summary.get('recipe', 'bash world_model/recipes/train_default.sh')}`.",
        "",
    ]
    if fidelity:
        lines += ["## Fidelity on unseen worlds (test seeds)", "",
                  f"`{fidelity.get('command', 'python -m benchmarks.fidelity')}`, {fidelity['first_person']['episodes']} "
                  f"held-out worlds per view, same actions in the world model and the ground truth.", ""]
        views = [v for v in ("first_person", "top_down") if v in fidelity]
        lines += ["| figure | " + " | ".join(views) + " | floor |", "|---|" + "---:|" * len(views) + "---|"]
        floors = {"reconstruction PSNR (dB)": ">= 32", "one-step PSNR (dB)": ">= 26", "ΔPSNR_16 (dB)": ">= 2"}
        rows = [("reconstruction PSNR (dB)", lambda r: r["reconstruction_psnr"]),
                ("one-step PSNR (dB)", lambda r: r["one_step_psnr"]),
                ("one-step SSIM", lambda r: r["one_step_ssim"])]
        for kind in ("turn", "forward", "other"):
            rows.append((f"one-step PSNR on {kind} actions (copy-last-frame baseline) (dB)",
                         lambda r, k=kind: (r["one_step_by_action"][k]["psnr"],
                                            r["one_step_by_action"][k]["copy_last_psnr"])))
        for h in ("1", "4", "16", "64"):
            rows.append((f"autoregressive PSNR @ {h} (holding-the-prompt-frame baseline) (dB)",
                         lambda r, h=h: (r["autoregressive_psnr"][h], r["autoregressive_hold_prompt_psnr"][h])
                         if "autoregressive_hold_prompt_psnr" in r else r["autoregressive_psnr"][h]))
        for h in ("16", "64"):
            rows.append((f"autoregressive PSNR @ {h} over the worlds that changed (holding-the-prompt-frame baseline) "
                         f"(dB)", lambda r, h=h: (r["autoregressive_psnr_changed"][h],
                                                  r["autoregressive_hold_prompt_psnr_changed"][h])))
        for t in ("4", "16"):
            rows.append((f"ΔPSNR_{t} ceiling: perfect dynamics through this autoencoder (dB)",
                         lambda r, t=t: r["delta_psnr_ceiling"][t]))
        for w in fidelity[views[0]]["guidance"]:
            for t in ("4", "16"):
                key = f"ΔPSNR_{t} (dB)" if float(w) == fidelity[views[0]]["default_guidance"] and t == "16" else None
                rows.append((f"ΔPSNR_{t}, guidance {w} (dB)", lambda r, w=w, t=t: r["guidance"][w]["delta_psnr"].get(t)))
                if key:
                    floors[rows[-1][0]] = ">= 2"
        for name, get in rows:
            cells = []
            for v in views:
                try:
                    value = get(fidelity[v])
                    cells.append(f"{_fmt(value[0])} ({_fmt(value[1])})" if isinstance(value, tuple)
                                 else _fmt(value, 3 if "SSIM" in name else 2))
                except KeyError:
                    cells.append("n/a")
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {floors.get(name, '')} |")
        s = fidelity.get("speed", {})
        lines += ["", "Speed on this machine (median, default sampler):", ""]
        lines += [f"- {k.replace('_', ' ')}: {v:.2f}" for k, v in s.items()]
        lines.append("")
    if consistency:  # does it hold a world? every figure beside its do-nothing baseline
        from benchmarks.consistency import section as consistency_section

        lines += consistency_section(consistency).split("\n") + [""]
    if judge:
        lines += ["## Success judge", "",
                  f"`{judge.get('command', 'genie-train judge')}`: precision {_fmt(judge.get('precision'), 3)}, "
                  f"recall {_fmt(judge.get('recall'), 3)}, F1 {_fmt(judge.get('f1'), 3)} at threshold "
                  f"{judge.get('threshold')} on {judge.get('positives')} positive / {judge.get('negatives')} "
                  "negative held-out frames.", ""]
        lines += judge_on_dreams_lines(judge_dreams) if judge_dreams else []
    lines += [
        "## Limitations",
        "",
        f"- Trained on a small budget ({compute_words(summary)}): compare the ΔPSNR rows "
        "with their floor above before relying on action control, and the one-step rows before relying on detail.",
        "- The ΔPSNR rows average 16 worlds and move by a dB or more between sets of worlds: experiments/LOG.md has "
        "them over 64 worlds with 95% intervals (`python -m experiments.sampler_sweep --episodes 64`).",
        "- Textures blur and objects drift over long autoregressive rollouts: compare them with simply holding the "
        "prompt frame (in brackets beside the autoregressive rows; worlds that have not changed count as 60 dB for "
        "it, hence the rows over the worlds that changed), and ΔPSNR with what a perfect dynamics model would show "
        "through the same autoencoder (the ceiling rows).",
        "- Only the 3D BabyAI world's look: prompts from other images are out of distribution.",
        "- The judge's reward inside generated worlds inherits the generator's errors"
        + (" (its figures on this model's frames are above)." if judge_dreams else "."),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="world_model/checkpoints/default")
    parser.add_argument("--ae-run", default="runs/train/ae")
    parser.add_argument("--dyn-run", default="runs/train/dyn")
    parser.add_argument("--data", nargs="*", default=[])
    parser.add_argument("--fidelity", default="benchmarks/results/fidelity.json")
    parser.add_argument("--judge", default="benchmarks/results/judge.json")
    parser.add_argument("--consistency", default="benchmarks/results/consistency.json")
    parser.add_argument("--judge-on-dreams", default="benchmarks/results/judge_on_dreams.json")
    parser.add_argument("--gpu-run", default=None,
                        help="OUT folder of the lent-GPU run (world_model/recipes/gpu_run.sh) that trained the "
                             "dynamics, instead of --dyn-run and --data (needs --base-summary for the autoencoder)")
    parser.add_argument("--recipe", default=None,
                        help="the command that trains this model, for the card (default: bash "
                             "world_model/recipes/train_default.sh)")
    parser.add_argument("--render-only", action="store_true", help="reuse MODEL/training_summary.json")
    parser.add_argument("--summary-only", action="store_true",
                        help="write MODEL/training_summary.json and no card (a phase that later phases build on)")
    parser.add_argument("--base-summary", default=None,
                        help="training_summary.json of the checkpoint the dynamics run was fine-tuned from "
                             "(genie-train dynamics --init-from); read before the model folder is written")
    args = parser.parse_args(argv)
    model = Path(args.model)
    summary_path = model / "training_summary.json"
    if args.render_only:
        summary = json.loads(summary_path.read_text())
    else:
        base = json.loads(Path(args.base_summary).read_text()) if args.base_summary else None
        summary = gather(model, Path(args.ae_run), Path(args.dyn_run), args.data, base,
                         Path(args.gpu_run) if args.gpu_run else None)
        if args.recipe:
            summary["recipe"] = args.recipe
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        if args.summary_only:
            print(f"wrote {summary_path}")
            return
    load = lambda p: json.loads(Path(p).read_text()) if p and Path(p).is_file() else None  # noqa: E731
    text = render(model, summary, load(args.fidelity), load(args.judge), load(args.consistency),
                  load(args.judge_on_dreams))
    out = model / "MODEL_CARD.md"
    write_text(out, text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
