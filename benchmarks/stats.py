"""Statistics for benchmark figures: bootstrap confidence intervals, the interquartile mean, rank correlation.

Following Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021; the rliable library),
re-implemented here in numpy:

- per-task success rates get a percentile-bootstrap 95% interval over their episodes;
- aggregates across tasks (mean, IQM) get a *stratified* bootstrap interval: every replicate resamples the episodes
  of each task separately (the strata), with replacement, then recomputes the per-task rates and the aggregate;
- the IQM (interquartile mean) is the mean of the middle 50% of the values, ``scipy.stats.trim_mean(x, 0.25)``
  (robust to a task or two where every agent fails or succeeds);
- correlations (Pearson, and Spearman = Pearson of average ranks) get a bootstrap interval over the pairs.

Every function takes a ``numpy.random.Generator`` or an int seed, so each interval is reproducible.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

#: Bootstrap replicates used by default (rliable uses 2,000 for its figures).
DEFAULT_REPS = 2000
#: Two-sided coverage of the intervals.
DEFAULT_CONFIDENCE = 0.95


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def iqm(values: Sequence[float] | np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean after cutting int(0.25 n) values from each end of the sorted values.

    Same as ``scipy.stats.trim_mean(values, 0.25)`` (and rliable's ``aggregate_iqm``); with ``axis=None`` the values
    are flattened, else the IQM is taken along ``axis``.
    """
    x = np.asarray(values, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm of no values")
    cut = int(0.25 * n)
    x = np.sort(x, axis=axis)
    kept = np.take(x, np.arange(cut, n - cut), axis=axis)
    out = kept.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def percentile_interval(replicates: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """The (lo, hi) percentiles of bootstrap replicates (NaN replicates, e.g. undefined correlations, ignored)."""
    _check_confidence(confidence)
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(values: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean,
                 reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int | np.random.Generator | None = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic`` over ``values`` (1-D, resampled with replacement)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("bootstrap_ci of no values")
    idx = _rng(seed).integers(x.size, size=(int(reps), x.size))  # (reps, n)
    samples = x[idx]
    if statistic is np.mean:
        replicates = samples.mean(axis=1)
    else:
        replicates = np.array([statistic(s) for s in samples])
    return percentile_interval(replicates, confidence)


def stratified_bootstrap(scores: Mapping[str, Sequence[float]] | Sequence[Sequence[float]],
                         aggregate: Callable[[np.ndarray], float], reps: int = DEFAULT_REPS,
                         seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Bootstrap replicates of ``aggregate(per-task means)``, resampling episodes within each task.

    scores: per task, the scores of its episodes (e.g. 0/1 successes); tasks may have different numbers of episodes.
    Returns float64 (reps,).
    """
    groups = [np.asarray(v, dtype=np.float64).reshape(-1)
              for v in (scores.values() if isinstance(scores, Mapping) else scores)]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("stratified_bootstrap needs at least one task and at least one episode per task")
    rng = _rng(seed)
    means = np.empty((int(reps), len(groups)))  # (reps, tasks)
    for j, g in enumerate(groups):
        means[:, j] = g[rng.integers(g.size, size=(int(reps), g.size))].mean(axis=1)
    return np.array([aggregate(row) for row in means])


def aggregate_with_ci(scores: Mapping[str, Sequence[float]], reps: int = DEFAULT_REPS, seed: int = 0) -> dict:
    """Mean and IQM of the per-task means, each with a stratified-bootstrap 95% interval (JSON-ready dict)."""
    per_task = np.array([np.mean(np.asarray(v, dtype=np.float64)) for v in scores.values()])
    out = {"tasks": len(per_task)}
    for name, fn in (("mean", lambda r: float(np.mean(r))), ("iqm", lambda r: float(iqm(r)))):
        out[name] = fn(per_task)
        out[f"{name}_ci95"] = list(percentile_interval(stratified_bootstrap(scores, fn, reps, seed)))
    return out


def rankdata(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (``scipy.stats.rankdata(method="average")``)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(x.size)
    ranks[order] = np.arange(1, x.size + 1, dtype=np.float64)
    # average the ranks of each run of equal values
    boundaries = np.flatnonzero(np.diff(sorted_x) != 0) + 1
    for run in np.split(np.arange(x.size), boundaries):
        ranks[order[run]] = ranks[order[run]].mean()
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r; NaN when either side is constant (the correlation is undefined) or n < 2."""
    a, b = np.asarray(x, dtype=np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"pearson needs paired values, got {a.size} and {b.size}")
    if a.size < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    return pearson(rankdata(x), rankdata(y))


def correlation_with_ci(x: Sequence[float], y: Sequence[float], reps: int = DEFAULT_REPS, seed: int = 0) -> dict:
    """Pearson and Spearman correlations of paired values, each with a 95% bootstrap interval over the pairs.

    Replicates where a resample is constant on one side (undefined correlation) are dropped from the interval;
    ``defined_share`` says how many replicates were kept. JSON-ready; NaN values become None.
    """
    a, b = np.asarray(x, dtype=np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"correlation_with_ci needs paired values, got {a.size} and {b.size}")
    rng = _rng(seed)
    out: dict = {"pairs": int(a.size)}
    idx = rng.integers(a.size, size=(int(reps), a.size)) if a.size else np.zeros((0, 0), int)
    for name, fn in (("pearson", pearson), ("spearman", spearman)):
        value = fn(a, b)
        reps_values = np.array([fn(a[i], b[i]) for i in idx]) if a.size else np.array([])
        lo, hi = percentile_interval(reps_values)
        out[name] = {"r": _finite(value), "ci95": [_finite(lo), _finite(hi)],
                     "defined_share": float(np.isfinite(reps_values).mean()) if reps_values.size else 0.0}
    return out


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def mean_ci(values, seed: int = 0) -> dict | None:
    """{"mean", "ci95": [lo, hi], "n"} of per-world values (95% percentile bootstrap); None for no values."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return None
    lo, hi = bootstrap_ci(v, seed=seed)
    return {"mean": float(v.mean()), "ci95": [lo, hi], "n": int(v.size)}
