"""Writes experiments/RESULTS.md, the tables of every study result in experiments/results/ (no figure typed by hand).

    python -m experiments.report [--results experiments/results] [--out experiments/RESULTS.md]

Study results (objective, context-noise and sampler sweeps) render with their study's ``section``, top-down
small-object results (``benchmarks.top_down_objects``) as BENCHMARKS.md renders the shipped model's; fidelity
results of candidate models render as BENCHMARKS.md renders the shipped model's, named by their file; consistency
results of candidate models (``benchmarks.consistency``) share one table of their headline figures per view.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from pathlib import Path

from benchmarks.report import load_results, fidelity_section, sampler_words, speed_table
from world_model.checkpoint import write_text

#: Study result kinds: benchmark key -> the module whose ``section(result, images)`` renders it.
STUDIES = {"genie-bench-objective": "experiments.objective",
           "genie-bench-context-sigma": "experiments.context_sigma",
           "genie-bench-sampler-sweep": "experiments.sampler_sweep",
           "wide_latent": "experiments.wide_latent", "wide_latent_fit_head": "experiments.wide_latent"}


def section_for(r: dict, json_path: Path, out_dir: Path) -> list[str]:
    """The Markdown of one study result; figures are linked relative to `out_dir`; empty for other files."""
    benchmark = r.get("benchmark")
    if benchmark == "fidelity":
        return fidelity_section(r, Path(json_path).stem) + (speed_table(r["speed"]) if "speed" in r else [])
    if benchmark == "top_down_objects":
        from benchmarks.top_down_objects import section

        return section(r)
    if benchmark in STUDIES:
        images = {title: os.path.relpath(Path(json_path).parent / name, out_dir)
                  for title, name in r.get("figures", {}).items() if (Path(json_path).parent / name).is_file()}
        return importlib.import_module(STUDIES[benchmark]).section(r, images)
    return []


#: The shipped model's consistency result, the first row of the candidates' table.
SHIPPED_CONSISTENCY = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "consistency.json"

#: Titles of the consistency tables by results subfolder ("Consistency of ...").
FOLDER_TITLES = {"candidates": "candidate models",
                 "ablation_small": "the small-preset ablations (from scratch, equal wall-clock; experiments/"
                                   "ablation_small.sh)",
                 "gpu": "models trained on a lent GPU (world_model/recipes/gpu_run.sh)",
                 "view": "v5 fine-tuned with and without view conditioning (experiments/LOG.md entry 15)",
                 "sampler": "v5's weights under other sampler settings (experiments/LOG.md entry 16)",
                 "memory": "v5 fine-tuned with and without the pose-keyed memory input (experiments/LOG.md entry "
                           "17; ft_mem_turns2_end is v6's weights)",
                 "cache_refresh": "the KV cache rebuilt from its latest 8 frames when full (experiments/LOG.md entry "
                                  "18; v5_refresh8 is v5, end is v6's weights)",
                 "pad_short": "v6 fine-tuned with short episodes padded in front (experiments/LOG.md entry 19)",
                 "pad_variants": "v6 fine-tuned with short episodes padded at the end, or in front drawn less often "
                                 "(experiments/LOG.md entry 20), only the first-person ones padded, and polished "
                                 "without padding (entry 21; consistency_64_fp_*: the 64 first-person floor worlds, "
                                 "consistency_td_*: the suite's 32 top-down worlds)",
                 "sampler_rho": "v6's weights under the sampler's noise-level spacing (rho 3) or 4 steps, and the "
                                "polished padded model under rho 3, v7's weights; v7_smax8: v7 with each frame started at sigma 8 instead "
                                "of 5 (experiments/LOG.md entry 22; "
                                "consistency_64_fp_*: the 64 first-person floor worlds, consistency_td_*: the suite's 32 "
                                "top-down worlds)",
                 "sampler_start": "v7's weights started unguided at sigma 6.5 (v7_s65g1), and v7 trained 70 minutes "
                                  "more (polish3), experiments/LOG.md entry 23 (consistency_64_fp_*: the 64 "
                                  "first-person floor worlds, consistency_td_*: the suite's 32 top-down worlds)",
                 "decoder": "v7 and v7 with its decoder fine-tuned towards fine detail (v7_dec_w4), 16 worlds per "
                            "view (experiments/LOG.md entry 24)",
                 "wide_latent": "v8 widened to an 8-channel autoencoder and fine-tuned 35 minutes (w8_plain, "
                                "experiments/LOG.md entry 27), and v9 widened the same way and fine-tuned 65 minutes "
                                "with its view input (w8vc, entry 30); consistency_td_*: the suite's 32 top-down "
                                "worlds, consistency_64_fp_*: the 64 first-person floor worlds",
                 "one_step": "v8 under action guidance 3 at every noise level, top-down (experiments/LOG.md entry "
                             "26: guidance does not teach the top-down agent its heading)",
                 "fine_latent": "the small dynamics preset from scratch, 40 CPU minutes each, on the shipped "
                                "autoencoder's 16 x 16 x 4 latent (dyn_ship) and on the fine 32 x 32 x 4 one in 4 x 4 "
                                "patches (dyn_fine), experiments/LOG.md entry 34",
                 "transplant": "v9 moved onto the fine 32 x 32 x 4 latent (genie-train transplant) before training "
                               "(tp_fine0: plain bridge; tp_fine0m: noise-matched) and fine-tuned 40 CPU minutes "
                               "(tp_fine), the same dynamics from scratch on that latent (sc_fine) and on it whitened "
                               "in 4 x 4 patches (sc_white), v9 transplanted onto the whitened latent and fine-tuned "
                               "20 minutes (tp_white), experiments/LOG.md entry 35, and 70 minutes more from its "
                               "weights (tp_white2, entry 36); consistency_td_*: the "
                               "suite's 32 top-down worlds, consistency_64_fp_*: the 64 first-person floor worlds, "
                               "small_* and sampler_*: the small preset's 8 worlds",
                 "prev_prior": "v9 transplanted onto the whitened fine latent with the denoiser's estimate started "
                               "from the previous frame where v9's latent cannot carry it (DynamicsConfig.prev_prior): "
                               "untrained (pp0, pp005, pp01: the complement map at one spread; pr0: the residual map; "
                               "ppa, pra: per action), and fine-tuned 420 steps as entry 35's tp_white (pp_a, pr_a), "
                               "pr_a with a lower context noise (pr_a_cs002), pr_a trained 45 minutes more (pr_a2), "
                               "and v9 on the same worlds (v9); experiments/LOG.md entry 36; small_*: the small "
                               "preset's 8 worlds, consistency_td_*: the suite's 32 top-down worlds, "
                               "consistency_64_fp_*: the 64 first-person floor worlds",
                 "prior_change": "entry 36's previous-frame prior trained again from a fresh transplant (onto a "
                                 "fine autoencoder trained 32 minutes on 2 threads, whitened), without (pr_b, 227 "
                                 "steps) and with the change weight of entry 33 (pr_cw, 380 steps) on one 60-minute "
                                 "budget each, pr_b's also paying the latent encoding; experiments/LOG.md entry 37; "
                                 "pr_b60 and td_pr: the same recipe at equal time with the encoding paid before, on "
                                 "both views and on the top-down view alone, td_pr2: td_pr trained on, td_mx: "
                                 "td_pr2 trained on on top-down play that walks more (the recorder's mix2), entry 38; "
                                 "td_both and td_br: td_pr's recipe on both top-down recordings and with branch rows, "
                                 "td_br2 and td_cwf: td_br trained on without and with a change weight on each "
                                 "frame's changed positions, nearest_* / sampler_cf_*: the counterfactual scenario "
                                 "alone per sampler setting (experiments.sampler_counterfactual), entry 39; "
                                 "consistency_64_fp_*: the 64 first-person floor worlds; "
                                 "small_*: the small preset's 8 worlds, consistency_td_*: the suite's 32 top-down "
                                 "worlds, eval_*: held-out curves (the top-down arms' on training episodes: "
                                 "the recording holds no top-down test episodes)",
                 "td_finetune": "v8 fine-tuned on 40% top-down play with counterfactual branches, with and without "
                                "branch rows, and on its top-down episodes only, without and with the loss "
                                "weighted towards what changes, by frame (td_only_cw) or by window (td_only_ww); "
                                "experiments/LOG.md entries 26-28; mix_plain, mix_ww and mix_vc: mixed play without and with "
                                "that weight or the view as an input, entry 29; ad_td*: v9 with a top-down adapter trained alone, "
                                "without and with change weights, entries 32-33; "
                                "consistency_td_*: the suite's 32 top-down worlds, v8 rerun beside them; "
                                "consistency_64_fp_*: the 64 first-person floor worlds, v8's in the gpu table)"}

def consistency_table(results: list[tuple[Path, dict]], title: str = "candidate models") -> list[str]:
    """The candidates' consistency headline figures, one table per view, a row per result file
    (:func:`benchmarks.consistency.headline_table`)."""
    from benchmarks.consistency import headline_table

    if not results:
        return []
    rows = [(f"shipped (benchmarks/results; {sampler_words(r.get('sampler') or {})})" if Path(p) == SHIPPED_CONSISTENCY
             else Path(p).stem, r) for p, r in results]
    return [f"## Consistency of {title}", "",
            "Headline figures of `python -m benchmarks.consistency` (the command is in each file) on the same unseen "
            "worlds (seed 0), means over worlds; the 95% intervals are in the JSON files.", ""] + headline_table(rows)


def render(results_dir: Path | str, out_dir: Path | str = ".") -> str:
    lines = ["# Experiment results", "",
             f"Generated by `python -m experiments.report` from the JSON files in `{results_dir}`; what each study "
             "decided is in [LOG.md](LOG.md).", ""]
    results = load_results([Path(results_dir)])
    for path, r in results:
        lines += section_for(r, path, Path(out_dir))
    shipped = [(SHIPPED_CONSISTENCY, json.loads(SHIPPED_CONSISTENCY.read_text()))] if SHIPPED_CONSISTENCY.is_file() \
        else []
    by_folder: dict[str, list] = {}  # one table per results subfolder (a study), the shipped model's row first
    for p, r in results:
        if r.get("benchmark") == "consistency":
            by_folder.setdefault(Path(p).parent.name, []).append((p, r))
    for folder, rows in by_folder.items():
        lines += consistency_table(shipped + rows, FOLDER_TITLES.get(folder, f"`{folder}`"))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="experiments/results", help="folder of study result JSON files")
    parser.add_argument("--out", default="experiments/RESULTS.md")
    args = parser.parse_args(argv)
    text = render(args.results, os.path.dirname(os.path.abspath(args.out)))
    write_text(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
