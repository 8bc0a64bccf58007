"""Statistics for comparing a candidate network with a baseline across seeds.

Every test comes from ``scipy.stats``; only the glue (effect size, the power of Welch's
test from the noncentral t, and the verdict rules) is written here.

The verdict rules, with ``margin`` = 10% of the return an agent can gain by learning
(see :func:`practical_margin`) and significance level ``alpha``:

* ``underperforms``: the candidate's mean score is lower (one-sided Welch p < alpha) AND
  lower by at least ``margin``.
* ``unreliable``: not lower on average, but significantly more erratic by at least
  ``margin``: across seeds (Brown-Forsythe p < alpha and the standard deviation of the
  scores larger by ``margin``) or from one evaluation to the next (one-sided Mann-Whitney
  on the per-seed mean jump between evaluations, p < alpha, and the mean jump larger by
  ``margin``).
* ``inconclusive``: neither, but Welch's test had less than 80% power to detect a drop of
  ``margin`` with these seeds; ``seeds_needed`` says how many per group would give 80%.
* ``ok``: neither, and a drop of ``margin`` would have been detected.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

Verdict = Literal["underperforms", "unreliable", "inconclusive", "ok"]
FLAGGED: tuple[Verdict, ...] = ("underperforms", "unreliable")

MARGIN_FRACTION = 0.10
TARGET_POWER = 0.80
MAX_SEEDS_NEEDED = 1000


@dataclass(frozen=True)
class Group:
    """One configuration's per-seed results."""

    scores: np.ndarray  # a return per seed (rlcheck uses the mean over the last third)
    instabilities: np.ndarray  # mean |change| between consecutive evaluations, per seed

    @classmethod
    def of(cls, scores: Sequence[float], instabilities: Sequence[float]) -> Group:
        return cls(np.asarray(scores, dtype=float), np.asarray(instabilities, dtype=float))


@dataclass(frozen=True)
class Comparison:
    n_baseline: int
    n_candidate: int
    alpha: float
    margin: float
    baseline_mean: float
    candidate_mean: float
    mean_difference: float  # candidate - baseline
    ci95_low: float  # bootstrap 95% CI of the mean difference
    ci95_high: float
    effect_size: float  # Hedges' g (candidate - baseline), bias-corrected
    baseline_iqm: float
    candidate_iqm: float
    welch_p: float  # H1: candidate mean < baseline mean
    mannwhitney_p: float  # H1: candidate scores stochastically smaller
    spread_p: float  # Brown-Forsythe (Levene, median-centred), two-sided
    instability_p: float  # Mann-Whitney, H1: candidate jumps more between evaluations
    baseline_sd: float
    candidate_sd: float
    baseline_instability: float
    candidate_instability: float
    power: float  # of the Welch test, against a true drop of `margin`
    seeds_needed: int | None  # per group, for 80% power; None if over MAX_SEEDS_NEEDED
    verdict: Verdict
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def practical_margin(initial_return: float, best_return: float, fraction: float = MARGIN_FRACTION) -> float:
    """A practically large gap: `fraction` of what learning can gain over an untrained policy.

    ``best_return`` is the environment's optimal return where known (RandomEnv: 30), else
    the baseline's best evaluation; ``initial_return`` is the baseline's mean return before
    training. Depending only on the baseline keeps the bar fixed however bad a candidate is.
    """
    return max(fraction * abs(best_return - initial_return), 1e-9)


def iqm(x: np.ndarray) -> float:
    """Interquartile mean (Agarwal et al., NeurIPS 2021): the mean of the middle 50%."""
    return float(stats.trim_mean(x, 0.25))


def hedges_g(candidate: np.ndarray, baseline: np.ndarray) -> float:
    n1, n2 = candidate.size, baseline.size
    pooled = math.sqrt(((n1 - 1) * candidate.var(ddof=1) + (n2 - 1) * baseline.var(ddof=1)) / (n1 + n2 - 2))
    diff = candidate.mean() - baseline.mean()
    if pooled == 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return float(diff / pooled * (1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0)))


def welch_less_p(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """One-sided Welch t-test p-value for mean(candidate) < mean(baseline)."""
    if candidate.std() == 0.0 and baseline.std() == 0.0:  # scipy returns NaN here
        return 0.0 if candidate.mean() < baseline.mean() else 1.0
    return float(stats.ttest_ind(candidate, baseline, equal_var=False, alternative="less").pvalue)


def welch_power(sd_candidate: float, sd_baseline: float, n: int | tuple[int, int], drop: float, alpha: float) -> float:
    """Power of the one-sided Welch test to detect a true drop of `drop` (noncentral t)."""
    n1, n2 = (n, n) if isinstance(n, int) else n
    v1, v2 = sd_candidate**2 / n1, sd_baseline**2 / n2
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return 1.0
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    critical = stats.t.ppf(1.0 - alpha, df)
    return float(stats.nct.sf(critical, df, drop / se))


def seeds_needed(sd_candidate: float, sd_baseline: float, drop: float, alpha: float) -> int | None:
    """Seeds per group for the Welch test to reach TARGET_POWER against a drop of `drop`."""
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        if welch_power(sd_candidate, sd_baseline, n, drop, alpha) >= TARGET_POWER:
            return n
    return None


def _finite_or(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


def compare(baseline: Group, candidate: Group, margin: float, alpha: float = 0.05) -> Comparison:
    """Compare a candidate with a baseline and reach one verdict (see the module docstring)."""
    b, c = baseline.scores, candidate.scores
    if b.size < 2 or c.size < 2:
        raise ValueError("a comparison needs at least 2 seeds per group")
    with warnings.catch_warnings():
        # Degenerate samples (e.g. every seed at exactly 30.0) make scipy warn and give NaN;
        # each NaN below is replaced by the value that "no evidence" means.
        warnings.simplefilter("ignore")
        welch_p = welch_less_p(c, b)
        mannwhitney_p = float(stats.mannwhitneyu(c, b, alternative="less").pvalue)
        spread_p = _finite_or(float(stats.levene(c, b, center="median").pvalue), 1.0)
        instability_p = _finite_or(
            float(stats.mannwhitneyu(candidate.instabilities, baseline.instabilities, alternative="greater").pvalue),
            1.0,
        )
        boot = stats.bootstrap(
            (c, b),
            lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
            n_resamples=4000,
            method="percentile",
            rng=np.random.default_rng(0),
        )
    sd_b, sd_c = float(b.std(ddof=1)), float(c.std(ddof=1))
    inst_b, inst_c = float(baseline.instabilities.mean()), float(candidate.instabilities.mean())
    gap = float(b.mean() - c.mean())
    power = welch_power(sd_c, sd_b, (c.size, b.size), margin, alpha)
    needed = seeds_needed(sd_c, sd_b, margin, alpha)

    verdict: Verdict
    if welch_p < alpha and gap >= margin:
        verdict = "underperforms"
        reason = f"mean score {gap:.2f} below the baseline (margin {margin:.2f}), Welch p={welch_p:.2g}"
    elif spread_p < alpha and sd_c - sd_b >= margin:
        verdict = "unreliable"
        reason = (
            f"scores spread across seeds: sd {sd_c:.2f} vs {sd_b:.2f} (margin {margin:.2f}), "
            f"Brown-Forsythe p={spread_p:.2g}"
        )
    elif instability_p < alpha and inst_c - inst_b >= margin:
        verdict = "unreliable"
        reason = (
            f"returns jump between evaluations: mean jump {inst_c:.2f} vs {inst_b:.2f} "
            f"(margin {margin:.2f}), Mann-Whitney p={instability_p:.2g}"
        )
    elif power < TARGET_POWER:
        verdict = "inconclusive"
        more = f"about {needed} seeds per group would" if needed else "far more seeds would be needed to"
        reason = f"{c.size} vs {b.size} seeds had {power:.0%} power to see a drop of {margin:.2f}; {more} decide"
    else:
        verdict = "ok"
        reason = f"no drop of {margin:.2f} or more (power {power:.0%}), no excess spread or instability"

    return Comparison(
        n_baseline=b.size,
        n_candidate=c.size,
        alpha=alpha,
        margin=margin,
        baseline_mean=float(b.mean()),
        candidate_mean=float(c.mean()),
        mean_difference=-gap,
        ci95_low=float(boot.confidence_interval.low),
        ci95_high=float(boot.confidence_interval.high),
        effect_size=hedges_g(c, b),
        baseline_iqm=iqm(b),
        candidate_iqm=iqm(c),
        welch_p=welch_p,
        mannwhitney_p=mannwhitney_p,
        spread_p=spread_p,
        instability_p=instability_p,
        baseline_sd=sd_b,
        candidate_sd=sd_c,
        baseline_instability=inst_b,
        candidate_instability=inst_c,
        power=power,
        seeds_needed=needed,
        verdict=verdict,
        reason=reason,
    )
