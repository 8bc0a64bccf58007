"""How rlcheck decides, from per-seed results, whether a candidate network learns like a baseline.

Every comparison is of one (algorithm, environment) cell: a score per seed (the mean of the
evaluations over the last third of training; a critic error is negated so that higher is
always better), a mean jump between consecutive evaluations per seed, and a ``tolerance``
(:func:`return_tolerance`, :func:`value_tolerance`): a difference smaller than it does not
matter. Three outcomes, each from a one-sided confidence bound (Welch's t, unequal variances):

* ``underperforms`` (a fail): the lower bound of the drop (baseline mean - candidate mean)
  exceeds the tolerance.
* ``unreliable`` (a fail): the lower bound of the excess spread across seeds (the mean
  absolute deviation from the group's median, candidate minus baseline) or of the excess mean
  jump exceeds the tolerance; or its seeds collapse more often than a correct net's may (a
  seed *collapses* when its score falls :data:`COLLAPSE_TOLERANCES` tolerances below the
  baseline's median; one-sided exact binomial test of the candidate's count against the
  baseline's observed share plus :data:`COLLAPSE_RATE_TOLERATED`).
* ``ok``: the upper bounds of the drop, of the excess spread and of the excess jump are all
  below the tolerance, and no candidate seed collapsed.
* ``inconclusive``: neither: more seeds may decide.

Error rates (:class:`Levels`). Each fail test is run at ``alpha / (comparisons x 4 tests x
looks)`` (Bonferroni over every test of every cell of a run and over the planned looks at
growing seeds), so a run calls *any* cell of a network whose true differences are all within
the tolerances a fail with probability at most ``alpha``. Each ``ok`` bound is at
``alpha / looks``: a cell whose true drop is a full tolerance or more is called ``ok`` with
probability at most ``alpha``. Both rest on Welch's normal approximation of a mean over seeds;
the binomial test is exact for a net whose seeds collapse at most at the tolerated share.
benchmarks/validity.py measures the rates on real networks and held-out seeds.
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

RETURN_TOLERANCE = 0.10  # of the return learning can gain over an untrained policy
VALUE_TOLERANCE_OF_BASELINE = 0.5  # a critic error up to 1.5x the baseline's ...
VALUE_TOLERANCE_OF_Q = 0.05  # ... plus 5% of the true Q's scale
COLLAPSE_TOLERANCES = 5.0  # a seed this many tolerances below the baseline's median has collapsed
# The share of its seeds a correct net may collapse on, beyond the baseline's own share: 1 in 200.
# Correct nets do not collapse where they are not still learning: on calibration seeds 5000-5014
# and the design sets of benchmarks/validity.py, no seed of the baseline or of a correct net
# trained to where its cell is judged did (docs/statistics.md). Fisher's exact test against the
# baseline's 0 of 15 cannot see 6 collapsed seeds of 15 at the gate's level; this test sees 3.
COLLAPSE_RATE_TOLERATED = 0.005
FAIL_TESTS = 4  # drop, spread, jumps, collapses
TARGET_POWER = 0.80
POWER_AT_TOLERANCES = 2.0  # the drop whose chance of being failed a comparison reports
MAX_SEEDS_NEEDED = 1000


@dataclass(frozen=True)
class Levels:
    """One-sided error levels of a run's tests (see the module docstring)."""

    alpha: float
    comparisons: int
    looks: int

    @property
    def fail(self) -> float:
        return self.alpha / (self.comparisons * FAIL_TESTS * self.looks)

    @property
    def ok(self) -> float:
        return self.alpha / self.looks


@dataclass(frozen=True)
class Group:
    """One configuration's per-seed results."""

    scores: np.ndarray  # a score per seed, higher is better
    instabilities: np.ndarray  # mean |change| between consecutive evaluations, per seed
    seeds: tuple[int, ...] = ()

    @classmethod
    def of(cls, scores: Sequence[float], instabilities: Sequence[float], seeds: Sequence[int] = ()) -> Group:
        return cls(np.asarray(scores, dtype=float), np.asarray(instabilities, dtype=float), tuple(seeds))


@dataclass(frozen=True)
class Bound:
    """A difference of means (candidate worse = positive), its one-sided bounds, and the p-value
    of "the true difference is at most the tolerance"."""

    estimate: float
    low: float  # lower bound at 1 - Levels.fail
    high: float  # upper bound at 1 - Levels.ok
    p: float

    @classmethod
    def welch(cls, worse: np.ndarray, better: np.ndarray, tolerance: float, levels: Levels) -> Bound:
        """``mean(worse) - mean(better)``: how much larger ``worse`` is, with Welch's t."""
        estimate = float(worse.mean() - better.mean())
        v1, v2 = worse.var(ddof=1) / worse.size, better.var(ddof=1) / better.size
        se = math.sqrt(v1 + v2)
        if se == 0.0:  # no spread at all: the estimate is exact
            return cls(estimate, estimate, estimate, 0.0 if estimate > tolerance else 1.0)
        df = (v1 + v2) ** 2 / (v1**2 / (worse.size - 1) + v2**2 / (better.size - 1))
        low = estimate - float(stats.t.ppf(1.0 - levels.fail, df)) * se
        high = estimate + float(stats.t.ppf(1.0 - levels.ok, df)) * se
        return cls(estimate, low, high, float(stats.t.sf((estimate - tolerance) / se, df)))


@dataclass(frozen=True)
class Comparison:
    n_baseline: int
    n_candidate: int
    tolerance: float
    fail_level: float  # one-sided level of each fail test
    ok_level: float  # one-sided level of each ok bound
    baseline_mean: float
    candidate_mean: float
    drop: float  # baseline mean - candidate mean
    drop_low: float
    drop_high: float
    drop_p: float  # H0: drop <= tolerance
    baseline_spread: float  # mean |score - median| over seeds
    candidate_spread: float
    spread_low: float
    spread_high: float
    spread_p: float
    baseline_instability: float  # mean jump between evaluations
    candidate_instability: float
    jump_low: float
    jump_high: float
    jump_p: float
    collapse_below: float  # a seed scoring below this has collapsed
    collapsed_seeds: tuple[int, ...]  # the candidate's
    baseline_collapsed: int
    collapse_tolerated: float  # the share of seeds a correct net may collapse on here
    collapse_p: float  # one-sided exact binomial: more than that share of the candidate's seeds collapse
    seeds_needed: int | None  # per group, for 80% chance of an ok bound if the drop seen so far is the true one
    fail_power: float  # chance that a true drop of POWER_AT_TOLERANCES tolerances is failed, at these seeds
    verdict: Verdict
    reason: str
    # Also reported, deciding nothing:
    ci95_low: float  # bootstrap 95% CI of the mean difference (candidate - baseline)
    ci95_high: float
    effect_size: float  # Hedges' g (candidate - baseline), bias-corrected
    baseline_iqm: float
    candidate_iqm: float
    baseline_sd: float
    candidate_sd: float

    @property
    def mean_difference(self) -> float:
        return -self.drop

    @property
    def below(self) -> bool:
        """Not ``ok`` and its mean more than the tolerance below the baseline's (significantly or
        not yet): what a net still learning at a budget too short for it looks like."""
        return self.verdict != "ok" and self.drop > self.tolerance

    @property
    def excess_spread(self) -> float:
        """How much more the candidate's seeds spread around their median than the baseline's."""
        return self.candidate_spread - self.baseline_spread

    @property
    def excess_jump(self) -> float:
        """How much more the candidate's seeds jump between evaluations than the baseline's."""
        return self.candidate_instability - self.baseline_instability

    @property
    def beyond_tolerance(self) -> bool:
        """Whether the data show, significantly or not, a difference that matters: a drop, an
        excess spread or an excess jump beyond the tolerance, or a collapsed seed."""
        return max(self.drop, self.excess_spread, self.excess_jump) > self.tolerance or bool(self.collapsed_seeds)

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


def return_tolerance(initial_return: float, best_return: float, fraction: float = RETURN_TOLERANCE) -> float:
    """`fraction` of what learning can gain over an untrained policy.

    ``best_return`` is the environment's optimal return where known (RandomEnv: 30), else
    the baseline's best evaluation; ``initial_return`` is the baseline's mean return before
    training. Depending only on the baseline keeps the bar fixed however bad a candidate is.
    """
    return max(fraction * abs(best_return - initial_return), 1e-9)


def value_tolerance(baseline_error: float, q_scale: float) -> float:
    """A critic error worse than the baseline's by more than half of it, plus 5% of the size
    of the true Q values (mean |Q| over the probe's state-actions), matters: a critic at 0.09
    on a Q of 1 where the baseline reaches 0.003 is not ``ok``."""
    return max(VALUE_TOLERANCE_OF_BASELINE * baseline_error + VALUE_TOLERANCE_OF_Q * q_scale, 1e-9)


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


def _welch_power(
    sd_candidate: float, sd_baseline: float, n_candidate: int, n_baseline: int, margin: float, level: float
) -> float:
    """Chance that a one-sided Welch bound at `level` clears a line the true difference is
    `margin` beyond (noncentral t with Welch's degrees of freedom, the sds taken as known)."""
    v1, v2 = sd_candidate**2 / n_candidate, sd_baseline**2 / n_baseline
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return 1.0
    df = (v1 + v2) ** 2 / (v1**2 / (n_candidate - 1) + v2**2 / (n_baseline - 1))
    return float(stats.nct.sf(stats.t.ppf(1.0 - level, df), df, margin / se))


def ok_power(sd_candidate: float, sd_baseline: float, n: int, room: float, level: float) -> float:
    """Chance that the upper bound of the drop falls below the tolerance when the true drop is
    `room` below it."""
    return _welch_power(sd_candidate, sd_baseline, n, n, room, level)


def fail_power(
    sd_candidate: float, sd_baseline: float, n_candidate: int, n_baseline: int, tolerance: float, level: float
) -> float:
    """Chance, at these seeds and spreads, that a true drop of :data:`POWER_AT_TOLERANCES`
    tolerances is failed (its lower bound clears the tolerance) -- the power a verdict had."""
    return _welch_power(
        sd_candidate, sd_baseline, n_candidate, n_baseline, (POWER_AT_TOLERANCES - 1.0) * tolerance, level
    )


def seeds_needed(sd_candidate: float, sd_baseline: float, room: float, level: float) -> int | None:
    """Seeds per group for an 80% chance of an ``ok`` bound if the true drop is `room` below the
    tolerance (rlcheck uses the drop seen so far, or 0 if the candidate scored higher)."""
    if room <= 0:
        return None
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        if ok_power(sd_candidate, sd_baseline, n, room, level) >= TARGET_POWER:
            return n
    return None


def percent_confidence(level: float) -> str:
    """1 - level as a percentage with the digits that tell it from 100%: 98.8%, 99.974%."""
    digits = max(1, -math.floor(math.log10(level)) - 1)
    return f"{100 * (1 - level):.{digits}f}%"


def _spread(x: np.ndarray) -> np.ndarray:
    return np.abs(x - np.median(x))


def collapses(
    baseline: np.ndarray, candidate: np.ndarray, tolerance: float
) -> tuple[float, np.ndarray, int, float, float]:
    """The collapse rule: (the score below which a seed has collapsed, which candidate seeds
    did, how many baseline seeds did, the share a correct net may collapse on -- the baseline's
    plus COLLAPSE_RATE_TOLERATED -- and the one-sided exact binomial p-value of "the candidate's
    seeds collapse at most at that share")."""
    below = float(np.median(baseline)) - COLLAPSE_TOLERANCES * tolerance
    collapsed = candidate < below
    baseline_collapsed = int((baseline < below).sum())
    tolerated = min(COLLAPSE_RATE_TOLERATED + baseline_collapsed / baseline.size, 1.0)
    p = float(stats.binomtest(int(collapsed.sum()), candidate.size, tolerated, alternative="greater").pvalue)
    return below, collapsed, baseline_collapsed, tolerated, p


def compare(baseline: Group, candidate: Group, tolerance: float, levels: Levels) -> Comparison:
    """Compare a candidate with a baseline and reach one verdict (see the module docstring)."""
    b, c = baseline.scores, candidate.scores
    if b.size < 2 or c.size < 2:
        raise ValueError("a comparison needs at least 2 seeds per group")
    drop = Bound.welch(b, c, tolerance, levels)
    spread = Bound.welch(_spread(c), _spread(b), tolerance, levels)
    jump = Bound.welch(candidate.instabilities, baseline.instabilities, tolerance, levels)
    collapse_below, collapsed, baseline_collapsed, collapse_tolerated, collapse_p = collapses(b, c, tolerance)
    seeds = candidate.seeds or tuple(range(c.size))
    collapsed_seeds = tuple(s for s, down in zip(seeds, collapsed, strict=True) if down)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate samples (every seed at 30.0): scipy warns, the CI is NaN
        boot = stats.bootstrap(
            (c, b),
            lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
            n_resamples=4000,
            method="percentile",
            rng=np.random.default_rng(0),
        )
    sd_b, sd_c = float(b.std(ddof=1)), float(c.std(ddof=1))
    needed = seeds_needed(sd_c, sd_b, tolerance - max(drop.estimate, 0.0), levels.ok)
    power = fail_power(sd_c, sd_b, c.size, b.size, tolerance, levels.fail)
    confidence = percent_confidence(levels.fail)

    verdict: Verdict
    if drop.p < levels.fail:
        verdict = "underperforms"
        reason = (
            f"mean score {drop.estimate:.3g} below the baseline's; a drop of at least {drop.low:.3g} "
            f"at {confidence} confidence, beyond the tolerance {tolerance:.3g}"
        )
    elif spread.p < levels.fail:
        verdict = "unreliable"
        reason = (
            f"scores spread across seeds: mean deviation {_spread(c).mean():.3g} vs {_spread(b).mean():.3g}; "
            f"at least {spread.low:.3g} more at {confidence} confidence, beyond the tolerance {tolerance:.3g}"
        )
    elif jump.p < levels.fail:
        verdict = "unreliable"
        reason = (
            f"returns jump between evaluations: mean jump {candidate.instabilities.mean():.3g} vs "
            f"{baseline.instabilities.mean():.3g}; at least {jump.low:.3g} more at {confidence} confidence, "
            f"beyond the tolerance {tolerance:.3g}"
        )
    elif collapse_p < levels.fail:
        verdict = "unreliable"
        reason = (
            f"{len(collapsed_seeds)} of {c.size} seeds collapsed (score below {collapse_below:.3g}; the baseline: "
            f"{baseline_collapsed} of {b.size}): more than {collapse_tolerated:.1%} of its seeds collapse, "
            f"at {confidence} confidence (binomial p={collapse_p:.2g})"
        )
    elif max(drop.high, spread.high, jump.high) < tolerance and not collapsed_seeds:
        verdict = "ok"
        ruled_out = f"a drop larger than {drop.high:.3g}" if drop.high > 0 else "any drop"
        reason = (
            f"{ruled_out} is ruled out at {percent_confidence(levels.ok)} confidence (tolerance {tolerance:.3g}), "
            f"and so are excess spread and jumping (a drop of {POWER_AT_TOLERANCES:g}x the tolerance would have "
            f"failed with probability {power:.0%} at these seeds)"
        )
    else:
        verdict = "inconclusive"
        open_questions = []
        if drop.high >= tolerance:
            open_questions.append(f"a drop up to {drop.high:.3g} is not ruled out (tolerance {tolerance:.3g})")
        if spread.high >= tolerance:
            open_questions.append(f"excess spread up to {spread.high:.3g} is not ruled out")
        if jump.high >= tolerance:
            open_questions.append(f"excess jumping up to {jump.high:.3g} is not ruled out")
        if collapsed_seeds:
            open_questions.append(
                f"seed{'s' if len(collapsed_seeds) > 1 else ''} {', '.join(map(str, collapsed_seeds))} collapsed "
                f"(score below {collapse_below:.3g}; baseline: {baseline_collapsed} of {b.size})"
            )
        if drop.estimate >= tolerance:
            more = (
                f"the drop seen, {drop.estimate:.3g}, is beyond the tolerance, but not significantly at these seeds "
                f"(a fail needs a lower bound above {tolerance:.3g}; it is {drop.low:.3g})"
            )
        elif needed:
            more = f"if the drop seen is the true one, about {needed} seeds per group would likely decide"
        else:
            more = "far more seeds would be needed to decide"
        reason = f"{c.size} vs {b.size} seeds: " + "; ".join(open_questions) + f"; {more}"

    return Comparison(
        n_baseline=b.size,
        n_candidate=c.size,
        tolerance=tolerance,
        fail_level=levels.fail,
        ok_level=levels.ok,
        baseline_mean=float(b.mean()),
        candidate_mean=float(c.mean()),
        drop=drop.estimate,
        drop_low=drop.low,
        drop_high=drop.high,
        drop_p=drop.p,
        baseline_spread=float(_spread(b).mean()),
        candidate_spread=float(_spread(c).mean()),
        spread_low=spread.low,
        spread_high=spread.high,
        spread_p=spread.p,
        baseline_instability=float(baseline.instabilities.mean()),
        candidate_instability=float(candidate.instabilities.mean()),
        jump_low=jump.low,
        jump_high=jump.high,
        jump_p=jump.p,
        collapse_below=collapse_below,
        collapsed_seeds=collapsed_seeds,
        baseline_collapsed=baseline_collapsed,
        collapse_tolerated=collapse_tolerated,
        collapse_p=collapse_p,
        seeds_needed=needed,
        fail_power=power,
        verdict=verdict,
        reason=reason,
        ci95_low=float(boot.confidence_interval.low),
        ci95_high=float(boot.confidence_interval.high),
        effect_size=hedges_g(c, b),
        baseline_iqm=iqm(b),
        candidate_iqm=iqm(c),
        baseline_sd=sd_b,
        candidate_sd=sd_c,
    )
