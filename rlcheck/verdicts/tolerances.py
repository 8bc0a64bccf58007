"""A cell's tolerance -- the difference that matters -- fixed before any run of the comparison
is seen, wherever it can be:

* **return probes with a known optimum**: 10% of what learning can gain over doing nothing,
  ``0.1 * |optimum - zero-action return|``, both from the environment alone (the zero-action
  return is the mean over :data:`REFERENCE_EPISODES` seeded episodes; RandomEnv: 0, so 3);
* **value probes, against the default baseline** (the plain MLP of the default widths, at the
  probe's budget): half the baseline's critic error plus 5% of the true Q's scale, with the
  baseline's error a constant measured on calibration seeds (:data:`CALIBRATED_BASELINE_ERROR`,
  from ``python benchmarks/calibrate.py --seeds 5000-5019``), never on the seeds compared;
* **anything else** -- another baseline (``--baseline``), other widths (``--hidden``), the
  reference trained with an SB3 model's settings (``RunSpec.settings``), an
  algorithm without calibration (CrossQ), an environment without a known optimum (Pendulum) --
  the same formulas (rlcheck.verdicts.curves.tolerance_of) on the baseline trained on
  :data:`CALIBRATION_SEEDS`, seeds of their own that no comparison uses, in the run's first batch
  (``tolerance_source``: ``"calibration seeds"``). A run's seeds may not overlap them.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

from rlcheck.engine.agents import box_of, make_env
from rlcheck.engine.runs import RunResult
from rlcheck.envs import optimal_return, q_scale
from rlcheck.nets import DEFAULT_HIDDEN
from rlcheck.verdicts.config import Cell
from rlcheck.verdicts.curves import tolerance_of
from rlcheck.verdicts.stats import return_tolerance, value_tolerance

ToleranceSource = Literal["environment", "calibration", "calibration seeds"]
# The baseline's seeds for a tolerance measured in the run: far above the seeds people give.
CALIBRATION_SEEDS: tuple[int, ...] = tuple(range(900_000, 900_010))
REFERENCE_EPISODES = 1000  # seeded 0..999: the zero-action return, a deterministic number per env
DEFAULT_BASELINE = "plain"

# The plain 64x64 baseline's mean critic error |Q - true Q| over the last third of training, on
# calibration seeds 5000-5019, per (algorithm, probe env, steps, warm-up, evaluation interval):
# the probe's cell as the gate runs it. Measured by
# `python benchmarks/calibrate.py --seeds 5000-5019` (2-core AMD EPYC, torch 2.13.0 CPU).
CALIBRATED_BASELINE_ERROR: dict[tuple[str, str, int, int, int], float] = {
    ("td3", "rlcheck/ConstantReward-v0", 600, 100, 50): 0.0259,
    ("sac", "rlcheck/ConstantReward-v0", 600, 100, 50): 0.00319,
    ("td3", "rlcheck/ObservedReward-v0", 600, 100, 50): 0.006988,
    ("sac", "rlcheck/ObservedReward-v0", 600, 100, 50): 0.002248,
    ("td3", "rlcheck/DelayedReward-v0", 600, 100, 50): 0.271,
    ("sac", "rlcheck/DelayedReward-v0", 600, 100, 50): 0.1407,
    # The agent suite's time-limit probe: `python benchmarks/calibrate.py --probes time-limit`.
    ("td3", "rlcheck/TimeLimitReward-v0", 1200, 100, 50): 0.2242,
    ("sac", "rlcheck/TimeLimitReward-v0", 1200, 100, 50): 0.2594,
}


@functools.cache
def zero_action_return(env_id: str) -> float:
    """The mean return of the policy that always acts 0 (the middle of the action box), over
    :data:`REFERENCE_EPISODES` episodes reset with seeds 0, 1, ..."""
    with make_env(env_id) as env:
        box = box_of(env.action_space)
        zero = np.clip(np.zeros(box.shape, dtype=box.dtype), box.low, box.high)
        totals = []
        for seed in range(REFERENCE_EPISODES):
            env.reset(seed=seed)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(zero)
                total += float(reward)
                done = terminated or truncated
            totals.append(total)
    return float(np.mean(totals))


@functools.cache
def fixed_tolerance(
    cell: Cell, baseline: str, hidden: tuple[int, ...], settings: tuple[tuple[str, float | int], ...] = ()
) -> float | None:
    """The cell's tolerance where it can be fixed before any run (see the module docstring);
    None where it cannot."""
    with make_env(cell.env_id) as env:
        optimum, scale = optimal_return(env), q_scale(env)
    if cell.metric == "return":
        if optimum is None:
            return None
        return return_tolerance(zero_action_return(cell.env_id), optimum)
    error = CALIBRATED_BASELINE_ERROR.get((cell.algo, cell.env_id, cell.steps, cell.warmup, cell.eval_every))
    calibrated = baseline == DEFAULT_BASELINE and tuple(hidden) == DEFAULT_HIDDEN and not settings
    if error is None or not calibrated or scale is None:
        return None
    return value_tolerance(error, scale)


def tolerance_for(
    cell: Cell,
    baseline: str,
    hidden: tuple[int, ...],
    calibration_runs: list[RunResult],
    settings: tuple[tuple[str, float | int], ...] = (),
) -> tuple[float, ToleranceSource]:
    """The cell's tolerance and where it came from: fixed where it can be, else from the
    baseline's runs on CALIBRATION_SEEDS in the cell (`calibration_runs`)."""
    fixed = fixed_tolerance(cell, baseline, hidden, settings)
    if fixed is not None:
        return fixed, "environment" if cell.metric == "return" else "calibration"
    if not calibration_runs:
        raise ValueError(f"{cell.label}: no calibration runs of the baseline for its tolerance")
    return tolerance_of(cell.metric, cell.env_id, calibration_runs), "calibration seeds"
