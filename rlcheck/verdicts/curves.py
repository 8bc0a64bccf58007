"""What a cell's runs say, read off their learning curves: each run's score and jump on the
cell's metric (higher always better), the cell's tolerance from the baseline's runs (where it
cannot be fixed in advance: rlcheck.verdicts.tolerances), and, for the report only, whether a
net was still learning when its training stopped. No verdict reads a curve's shape."""

from __future__ import annotations

from statistics import fmean
from typing import Literal

import numpy as np

from rlcheck.engine.agents import make_env
from rlcheck.engine.runs import RunResult
from rlcheck.envs import q_scale
from rlcheck.errors import UsageError
from rlcheck.verdicts.stats import Group, return_tolerance, value_tolerance

Metric = Literal["return", "value_error"]
# A net's rise over the last third of training is smooth when, on the median seed, the path it
# travelled is at most this many times its rise (a seed that did not rise has an infinite ratio).
# Smoothness only decides whether the report calls a net "still learning" (a hint to raise the
# budget), never an outcome.
SMOOTH_PATH = 2.0


def last_third(runs: list[RunResult], metric: Metric) -> tuple[list[float], list[float]]:
    """Per seed, the measure (higher better: value errors negated) where the last third of
    training starts, and at its end: how far it was still moving when it stopped."""
    starts, ends = [], []
    for run in runs:
        third = last_third_curve(run, metric)
        starts.append(third[0])
        ends.append(third[-1])
    return starts, ends


def last_third_curve(run: RunResult, metric: Metric) -> list[float]:
    curve = measures(run, metric)[0]
    first = next(i for i, step in enumerate(run.eval_steps) if step >= run.spec.steps * 2 / 3)
    return curve[first:]


def still_improving(runs: list[RunResult], metric: Metric, tolerance: float) -> bool:
    """Whether a net was still improving when its training stopped: over the last third of
    training its mean measure over the seeds rose by more than the tolerance. Not every seed
    need rise. With a smooth rise, what the "still learning" note needs."""
    starts, ends = last_third(runs, metric)
    return fmean(ends) - fmean(starts) > tolerance


def rises_smoothly(runs: list[RunResult], metric: Metric) -> bool:
    """Whether the median seed's path over the last third of training (the sum of its moves
    between evaluations) is at most SMOOTH_PATH times its rise: a trend, not ups and downs."""
    paths = []
    for run in runs:
        third = np.asarray(last_third_curve(run, metric))
        rise = third[-1] - third[0]
        paths.append(np.abs(np.diff(third)).sum() / rise if rise > 0 else np.inf)
    return float(np.median(paths)) <= SMOOTH_PATH


def measures(run: RunResult, metric: Metric) -> tuple[list[float], float, float]:
    """(curve, score, instability) with higher always better: value errors are negated."""
    if metric == "return":
        return run.eval_returns, run.score, run.instability
    if run.eval_value_errors is None:
        raise UsageError(f"env {run.spec.env_id!r} does not know its Q values; judge it on metric 'return'")
    curve = [-e for e in run.eval_value_errors]
    return (curve, *run.curve_measures(curve))


def tolerance_of(metric: Metric, env_id: str, baseline_runs: list[RunResult]) -> float:
    """A cell's tolerance (rlcheck.verdicts.stats), from the baseline's runs alone."""
    curves = [measures(r, metric)[0] for r in baseline_runs]
    if metric == "value_error":
        with make_env(env_id) as env:
            scale = q_scale(env) or 1.0
        return value_tolerance(-fmean(measures(r, metric)[1] for r in baseline_runs), scale)
    initial = fmean(curve[0] for curve in curves)
    optimum = baseline_runs[0].optimal_return
    best = optimum if optimum is not None else float(np.max(np.mean(curves, axis=0)))
    return return_tolerance(initial, best)


def group_of(runs: list[RunResult], metric: Metric) -> Group:
    measured = [measures(r, metric) for r in runs]
    return Group.of([m[1] for m in measured], [m[2] for m in measured], [r.spec.seed for r in runs])


def caught_up_at(runs: list[RunResult], metric: Metric, target: float) -> int | None:
    """The evaluation step from which the mean over seeds stays at `target` or above."""
    mean_curve = np.mean([measures(r, metric)[0] for r in runs], axis=0)
    below = np.flatnonzero(mean_curve < target)
    first = 0 if below.size == 0 else int(below[-1]) + 1
    return int(runs[0].eval_steps[first]) if first < len(mean_curve) else None
