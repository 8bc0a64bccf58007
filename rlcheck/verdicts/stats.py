"""How rlcheck decides, from per-seed results, whether a candidate network learns like a baseline.

Every comparison is of one (algorithm, environment) cell: a score per seed (the mean of the
evaluations over the last third of training; a critic error is negated so that higher is
always better), a mean jump between consecutive evaluations per seed, and a ``tolerance``
(rlcheck.verdicts.tolerances, fixed before the runs): a difference smaller than it does not
matter. Four fail tests, each one-sided at the run's fail level:

* ``drop``: the baseline's mean minus the candidate's is beyond the tolerance (Welch's standard
  error, ``min(n1, n2) - 1`` degrees of freedom: :func:`welch_bounds`);
* ``spread``: the candidate's seeds spread (mean absolute deviation from the median) more than
  :data:`SPREAD_RATIO` times the baseline's (Brown and Forsythe's test, against that margin:
  :func:`spread_test`), and their spread is itself beyond the tolerance (a spread that does not
  matter never fails);
* ``jump``: the candidate's mean jump exceeds the baseline's by more than the tolerance (Welch,
  as the drop);
* ``collapse``: more of the candidate's seeds collapse (score :data:`COLLAPSE_TOLERANCES`
  tolerances below the baseline's median) than a correct net's may, :data:`COLLAPSE_SHARE`
  of its seeds (one-sided exact binomial test).

The verdict: ``underperforms`` (a fail) when the drop test fires, ``unreliable`` (a fail) when
another does; ``ok`` when each test's ok bound rules its difference out (the drop's and the
jump's upper bounds below the tolerance, the spread's excess over SPREAD_RATIO times the
baseline's below 0 or its own bound below the tolerance) and no candidate seed collapsed; otherwise
``inconclusive``: more seeds may decide.

Error rates (:class:`Levels`). Each fail test is run at ``alpha / (comparisons x 4 tests x
looks)`` (Bonferroni over every test of every cell of a run and over the planned looks at
growing seeds), so a run calls *any* cell of a network a fail with probability at most
``alpha`` when its true differences are all within what the tests tolerate: drop and excess
jump within the tolerance, spread within SPREAD_RATIO times the baseline's, collapses at most
COLLAPSE_SHARE. For normal scores the drop and jump tests' sizes are at most their level
whatever the groups' spreads; the spread test's is below it on normal and heavy-tailed scores
(simulated); the binomial test is exact. Each ``ok`` bound is at
``alpha / looks`` (Welch-Satterthwaite's degrees of freedom for the drop and the jump:
approximate, simulated at 5 seeds up to 1.14x its level for spreads 4x apart).
tests/test_stats.py simulates the fail tests' sizes at the gate's own level.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
from scipy import stats

Verdict = Literal["underperforms", "unreliable", "inconclusive", "ok"]
FLAGGED: tuple[Verdict, ...] = ("underperforms", "unreliable")

RETURN_TOLERANCE = 0.10  # of the return learning can gain over an untrained policy
VALUE_TOLERANCE_OF_BASELINE = 0.5  # a critic error up to 1.5x the baseline's ...
VALUE_TOLERANCE_OF_Q = 0.05  # ... plus 5% of the true Q's scale
COLLAPSE_TOLERANCES = 5.0  # a seed this many tolerances below the baseline's median has collapsed
# The share of its seeds a correct net may collapse on, fixed in advance like the tolerance, and
# not read off the baseline's seeds in the run (a share estimated from 5 or 10 seeds taken as
# known breaks the test's level). None of 520 seeds of the 64x64 baseline on the calibration and
# design sets collapsed (one-sided 95% bound 0.57%); 1 in 100 leaves room for correct nets other
# than the baseline, and a net that loses more than one run in a hundred is not one to pass.
COLLAPSE_SHARE = 0.01
SPREAD_RATIO = 2.0  # a correct net's seeds may spread up to twice as much as the baseline's
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
        """``mean(worse) - mean(better)``: how much larger ``worse`` is (see :func:`welch_bounds`)."""
        estimate, low, high, p = welch_bounds(worse, better, tolerance, levels.fail, levels.ok)
        return cls(float(estimate), float(low), float(high), float(p))


def welch_bounds(
    worse: np.ndarray, better: np.ndarray, tolerance: float, fail_level: float, ok_level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(estimate, lower bound, upper bound, p) of ``mean(worse) - mean(better)``, seeds on the
    last axis (any leading axes are independent comparisons: the size simulations use them).

    Both bounds use Welch's standard error. The lower bound and the p-value of "the difference
    is at most `tolerance`" -- what a fail rests on, at levels near 1e-4 -- take
    ``min(n1, n2) - 1`` degrees of freedom (Banerjee's bound: the test's size is at most its
    level for normal scores whatever the ratio of the groups' variances; Welch-Satterthwaite's
    estimated degrees of freedom reach more than twice the level at 5 seeds and unequal spreads).
    The upper bound, what an ``ok`` rests on at the milder ok level, takes Welch-Satterthwaite's."""
    n1, n2 = worse.shape[-1], better.shape[-1]
    estimate = worse.mean(axis=-1) - better.mean(axis=-1)
    v1, v2 = worse.var(axis=-1, ddof=1) / n1, better.var(axis=-1, ddof=1) / n2
    se = np.sqrt(v1 + v2)
    exact = se == 0.0  # no spread at all: the estimate is exact
    safe_se = np.where(exact, 1.0, se)
    with np.errstate(invalid="ignore", divide="ignore"):
        ws_df = np.where(exact, 1.0, (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)))
    fail_df = min(n1, n2) - 1
    low = np.where(exact, estimate, estimate - stats.t.ppf(1.0 - fail_level, fail_df) * safe_se)
    high = np.where(exact, estimate, estimate + stats.t.ppf(1.0 - ok_level, ws_df) * safe_se)
    p = np.where(exact, np.where(estimate > tolerance, 0.0, 1.0), stats.t.sf((estimate - tolerance) / safe_se, fail_df))
    return estimate, low, high, p


TestName = Literal["drop", "spread", "jump", "collapse"]
TEST_ORDER: tuple[TestName, ...] = ("drop", "spread", "jump", "collapse")  # the order a verdict reads them in


@dataclass(frozen=True)
class TestRecord:
    """One of a comparison's fail tests: the statistic for each group, the candidate's excess
    (worse = positive), its one-sided bounds and the p-value of "the excess is at most what is
    tolerated", and whether its ok bound rules the difference out. For ``spread`` the statistics
    are mean absolute deviations from the median and the excess the candidate's over
    SPREAD_RATIO times the baseline's. For
    ``collapse`` the statistic is a count of collapsed seeds, the excess the candidate's share
    beyond COLLAPSE_SHARE and the bounds NaN (an exact binomial test has a p-value only)."""

    __test__ = False  # not a pytest class, whatever its name

    name: TestName
    baseline: float
    candidate: float
    excess: float
    low: float  # lower bound at 1 - fail level
    high: float  # upper bound at 1 - ok level
    p: float
    cleared: bool  # the ok bound rules the difference out

    def fires(self, level: float) -> bool:
        return self.p < level


@dataclass(frozen=True)
class Comparison:
    """A candidate's seeds against a baseline's in one cell: the fail tests (:class:`TestRecord`,
    in :data:`TEST_ORDER`), the verdict they reach and the test that decided it, and numbers
    reported alongside that decide nothing. Numbers only: rlcheck.front.words says them."""

    n_baseline: int
    n_candidate: int
    tolerance: float
    fail_level: float  # one-sided level of each fail test
    ok_level: float  # one-sided level of each ok bound
    baseline_mean: float
    candidate_mean: float
    tests: tuple[TestRecord, ...]
    collapse_below: float  # a seed scoring below this has collapsed
    collapsed_seeds: tuple[int, ...]  # the candidate's
    baseline_collapsed: int
    collapse_tolerated: float  # the share of seeds a correct net may collapse on: COLLAPSE_SHARE
    seeds_needed: int | None  # per group, for 80% chance of an ok bound if the drop seen so far is the true one
    fail_power: float  # chance that a true drop of POWER_AT_TOLERANCES tolerances is failed, at these seeds
    verdict: Verdict
    decided_by: TestName | None  # the test that fired, for underperforms / unreliable
    # Also reported, deciding nothing:
    ci95_low: float  # bootstrap 95% CI of the mean difference (candidate - baseline)
    ci95_high: float
    effect_size: float  # Hedges' g (candidate - baseline), bias-corrected
    baseline_iqm: float
    candidate_iqm: float
    baseline_sd: float
    candidate_sd: float

    def test(self, name: TestName) -> TestRecord:
        return next(t for t in self.tests if t.name == name)

    # The flat names results.json has always had, read off the tests.
    drop = property(lambda self: self.test("drop").excess)  # baseline mean - candidate mean
    drop_low = property(lambda self: self.test("drop").low)
    drop_high = property(lambda self: self.test("drop").high)
    drop_p = property(lambda self: self.test("drop").p)  # H0: drop <= tolerance
    baseline_spread = property(lambda self: self.test("spread").baseline)  # mean |score - median| over seeds
    candidate_spread = property(lambda self: self.test("spread").candidate)
    spread_low = property(lambda self: self.test("spread").low)  # of candidate - SPREAD_RATIO x baseline
    spread_high = property(lambda self: self.test("spread").high)
    spread_p = property(lambda self: self.test("spread").p)
    baseline_instability = property(lambda self: self.test("jump").baseline)  # mean jump between evaluations
    candidate_instability = property(lambda self: self.test("jump").candidate)
    jump_low = property(lambda self: self.test("jump").low)
    jump_high = property(lambda self: self.test("jump").high)
    jump_p = property(lambda self: self.test("jump").p)
    collapse_p = property(lambda self: self.test("collapse").p)  # exact binomial: more than the tolerated share

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
        """How much more the candidate's seeds spread than SPREAD_RATIO times the baseline's."""
        return self.test("spread").excess

    @property
    def excess_jump(self) -> float:
        """How much more the candidate's seeds jump between evaluations than the baseline's."""
        return self.candidate_instability - self.baseline_instability

    def to_dict(self) -> dict[str, Any]:
        """results.json's keys: the flat ones, in their order, and then the tests."""
        flat = {}
        for f in fields(self):
            if f.name == "tests":
                for name in FLAT_TEST_KEYS:
                    flat[name] = getattr(self, name)
            elif f.name != "decided_by":
                flat[f.name] = getattr(self, f.name)
        flat["collapse_p"] = self.collapse_p
        flat["decided_by"] = self.decided_by
        flat["tests"] = [asdict(t) for t in self.tests]
        return {k: _json_number(v) for k, v in flat.items()}


FLAT_TEST_KEYS = (
    "drop", "drop_low", "drop_high", "drop_p", "baseline_spread", "candidate_spread", "spread_low", "spread_high",
    "spread_p", "baseline_instability", "candidate_instability", "jump_low", "jump_high", "jump_p",
)  # fmt: skip


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (tuple, list)):
        return [_json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
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
    sd_candidate: float,
    sd_baseline: float,
    n_candidate: int,
    n_baseline: int,
    margin: float,
    level: float,
    fail_side: bool = False,
) -> float:
    """Chance that a one-sided bound at `level` clears a line the true difference is `margin`
    beyond: the statistic as a noncentral t with Welch's degrees of freedom (the sds taken as
    known), against the critical value of the bound's own degrees of freedom (`fail_side`:
    ``min(n1, n2) - 1``, as :func:`welch_bounds` takes for a fail)."""
    v1, v2 = sd_candidate**2 / n_candidate, sd_baseline**2 / n_baseline
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return 1.0
    df = (v1 + v2) ** 2 / (v1**2 / (n_candidate - 1) + v2**2 / (n_baseline - 1))
    critical_df = min(n_candidate, n_baseline) - 1 if fail_side else df
    return float(stats.nct.sf(stats.t.ppf(1.0 - level, critical_df), df, margin / se))


def ok_power(sd_candidate: float, sd_baseline: float, n: int, room: float, level: float) -> float:
    """Chance that the upper bound of the drop falls below the tolerance when the true drop is
    `room` below it."""
    return _welch_power(sd_candidate, sd_baseline, n, n, room, level)


def fail_power(
    sd_candidate: float, sd_baseline: float, n_candidate: int, n_baseline: int, tolerance: float, level: float
) -> float:
    """Chance, at these seeds and spreads, that a true drop of :data:`POWER_AT_TOLERANCES`
    tolerances is failed (its lower bound clears the tolerance) -- the power a verdict had."""
    margin = (POWER_AT_TOLERANCES - 1.0) * tolerance
    return _welch_power(sd_candidate, sd_baseline, n_candidate, n_baseline, margin, level, fail_side=True)


def seeds_needed(sd_candidate: float, sd_baseline: float, room: float, level: float) -> int | None:
    """Seeds per group for an 80% chance of an ``ok`` bound if the true drop is `room` below the
    tolerance (rlcheck uses the drop seen so far, or 0 if the candidate scored higher)."""
    if room <= 0:
        return None
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        if ok_power(sd_candidate, sd_baseline, n, room, level) >= TARGET_POWER:
            return n
    return None


def collapses(baseline: np.ndarray, candidate: np.ndarray, tolerance: float) -> tuple[float, np.ndarray, int, float]:
    """The collapse rule: (the score below which a seed has collapsed, which candidate seeds
    did, how many baseline seeds did -- reported, deciding nothing -- and the one-sided exact
    binomial p-value of "the candidate's seeds collapse at most at COLLAPSE_SHARE")."""
    below = float(np.median(baseline)) - COLLAPSE_TOLERANCES * tolerance
    collapsed = candidate < below
    baseline_collapsed = int((baseline < below).sum())
    p = float(stats.binom.sf(int(collapsed.sum()) - 1, candidate.size, COLLAPSE_SHARE))
    return below, collapsed, baseline_collapsed, p


def collapses_that_fail(n: int, level: float) -> int | None:
    """The fewest collapsed seeds of `n` that fail the collapse test at `level` (None: not even
    all n): the test's power in counts."""
    return next((k for k in range(1, n + 1) if stats.binom.sf(k - 1, n, COLLAPSE_SHARE) < level), None)


def deviations(x: np.ndarray) -> np.ndarray:
    """Each seed's absolute deviation from its group's median (seeds on the last axis)."""
    return np.abs(x - np.median(x, axis=-1, keepdims=True))


def spread_test(
    baseline: np.ndarray, candidate: np.ndarray, tolerance: float, levels: Levels
) -> tuple[float, float, Bound, bool]:
    """The spread test: (the baseline's and the candidate's mean absolute deviations from their
    medians, the bounds of the candidate's excess over SPREAD_RATIO times the baseline's, and
    whether an ok bound rules a spread that matters out).

    Brown and Forsythe's test of spread (a two-sample test on the deviations from the median)
    against the multiplicative margin: :func:`welch_bounds` on the candidate's deviations minus
    SPREAD_RATIO times the baseline's. Its p-value (:func:`spread_p`) is 1 where the candidate's
    mean deviation is within the tolerance: a spread that small does not matter, whatever the
    ratio, and refusing to fail never raises a test's size. Ruled out: the excess's upper bound
    is below 0, or the candidate's mean deviation's upper bound is below the tolerance. (The F
    test of the variance ratio, exact for normal scores, fails heavy-tailed scores at the margin
    5-40 times its level; this one stays below it: tests/test_stats.py.)"""
    d_b, d_c = deviations(baseline), deviations(candidate)
    estimate, low, high, _ = welch_bounds(d_c, SPREAD_RATIO * d_b, 0.0, levels.fail, levels.ok)
    p = float(spread_p(baseline, candidate, tolerance))
    n = d_c.size
    spread_high = float(d_c.mean() + stats.t.ppf(1.0 - levels.ok, n - 1) * d_c.std(ddof=1) / math.sqrt(n))
    cleared = float(high) < 0.0 or spread_high < tolerance
    return float(d_b.mean()), float(d_c.mean()), Bound(float(estimate), float(low), float(high), p), cleared


def spread_p(baseline: np.ndarray, candidate: np.ndarray, tolerance: float) -> np.ndarray:
    """The spread test's p-value (see :func:`spread_test`), seeds on the last axis (leading axes
    are independent comparisons: the size simulations use them)."""
    d_b, d_c = deviations(baseline), deviations(candidate)
    p = welch_bounds(d_c, SPREAD_RATIO * d_b, 0.0, 0.5, 0.5)[3]
    return np.where(d_c.mean(axis=-1) > tolerance, p, 1.0)


def compare(baseline: Group, candidate: Group, tolerance: float, levels: Levels) -> Comparison:
    """Compare a candidate with a baseline and reach one verdict (see the module docstring)."""
    b, c = baseline.scores, candidate.scores
    if b.size < 2 or c.size < 2:
        raise ValueError("a comparison needs at least 2 seeds per group")
    drop = Bound.welch(b, c, tolerance, levels)
    spread_b, spread_c, spread, spread_cleared = spread_test(b, c, tolerance, levels)
    jump = Bound.welch(candidate.instabilities, baseline.instabilities, tolerance, levels)
    collapse_below, collapsed, baseline_collapsed, collapse_p = collapses(b, c, tolerance)
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
    tests = (
        TestRecord(
            "drop", float(b.mean()), float(c.mean()), drop.estimate, drop.low, drop.high, drop.p, drop.high < tolerance
        ),
        TestRecord(
            "spread", spread_b, spread_c, spread.estimate, spread.low, spread.high, spread.p, spread_cleared
        ),
        TestRecord(
            "jump", float(baseline.instabilities.mean()), float(candidate.instabilities.mean()), jump.estimate,
            jump.low, jump.high, jump.p, jump.high < tolerance,
        ),
        TestRecord(
            "collapse", float(baseline_collapsed), float(len(collapsed_seeds)),
            len(collapsed_seeds) / c.size - COLLAPSE_SHARE, math.nan, math.nan, collapse_p, not collapsed_seeds,
        ),
    )  # fmt: skip
    fired = next((t.name for t in tests if t.fires(levels.fail)), None)
    verdict: Verdict
    if fired is not None:
        verdict = "underperforms" if fired == "drop" else "unreliable"
    elif all(t.cleared for t in tests):
        verdict = "ok"
    else:
        verdict = "inconclusive"

    return Comparison(
        n_baseline=b.size,
        n_candidate=c.size,
        tolerance=tolerance,
        fail_level=levels.fail,
        ok_level=levels.ok,
        baseline_mean=float(b.mean()),
        candidate_mean=float(c.mean()),
        tests=tests,
        collapse_below=collapse_below,
        collapsed_seeds=collapsed_seeds,
        baseline_collapsed=baseline_collapsed,
        collapse_tolerated=COLLAPSE_SHARE,
        seeds_needed=needed,
        fail_power=power,
        verdict=verdict,
        decided_by=fired,
        ci95_low=float(boot.confidence_interval.low),
        ci95_high=float(boot.confidence_interval.high),
        effect_size=hedges_g(c, b),
        baseline_iqm=iqm(b),
        candidate_iqm=iqm(c),
        baseline_sd=sd_b,
        candidate_sd=sd_c,
    )
