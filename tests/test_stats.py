import math

import numpy as np
import pytest
from scipy import stats as sps

from rlcheck.front.words import comparison_reason, percent_confidence
from rlcheck.verdicts.stats import (
    COLLAPSE_SHARE,
    SPREAD_RATIO,
    Bound,
    Group,
    Levels,
    collapses,
    collapses_that_fail,
    compare,
    fail_power,
    hedges_g,
    iqm,
    ok_power,
    return_tolerance,
    seeds_needed,
    spread_p,
    value_tolerance,
    welch_bounds,
)

RNG = np.random.default_rng(0)
ONE_CELL = Levels(alpha=0.05, comparisons=1, looks=1)  # fail tests at 0.0125, ok bounds at 0.05
GATE = Levels(alpha=0.05, comparisons=12, looks=5)  # a check: 12 cells, seeds 5-10-20-40, training on


def _group(scores, instabilities=None):
    scores = np.asarray(scores, float)
    return Group.of(scores, instabilities if instabilities is not None else np.full(scores.size, 0.4))


def test_levels_spread_alpha_over_every_test_of_every_cell_and_look():
    assert GATE.fail == pytest.approx(0.05 / (12 * 4 * 5)) and GATE.ok == pytest.approx(0.05 / 5)
    assert percent_confidence(GATE.ok) == "99.0%" and percent_confidence(GATE.fail) == "99.979%"


def test_welch_bounds_and_p_match_scipy():
    worse, better, tolerance = RNG.normal(3, 2, 7), RNG.normal(0, 1, 6), 1.0
    bound = Bound.welch(worse, better, tolerance, ONE_CELL)
    # The fail side: Welch's t statistic, min(n1, n2) - 1 = 5 degrees of freedom.
    welch_t = sps.ttest_ind(worse - tolerance, better, equal_var=False).statistic
    assert bound.p == pytest.approx(sps.t.sf(welch_t, 5))
    se = math.sqrt(worse.var(ddof=1) / 7 + better.var(ddof=1) / 6)
    assert bound.low == pytest.approx(worse.mean() - better.mean() - sps.t.ppf(1 - ONE_CELL.fail, 5) * se)
    # The ok side: Welch-Satterthwaite's, as scipy's Welch interval.
    high = sps.ttest_ind(worse, better, equal_var=False).confidence_interval(1 - 2 * ONE_CELL.ok).high
    assert bound.high == pytest.approx(high)
    assert bound.estimate == pytest.approx(worse.mean() - better.mean())


def test_hedges_g_and_iqm():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert hedges_g(a, b) == pytest.approx((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 8 - 9)))
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 100.0, -100.0, 1.5, 2.5])) == pytest.approx(1.75)


def test_tolerances():
    assert return_tolerance(initial_return=0.0, best_return=30.0) == pytest.approx(3.0)
    assert return_tolerance(initial_return=-1200.0, best_return=-200.0) == pytest.approx(100.0)
    assert value_tolerance(baseline_error=0.003, q_scale=1.0) == pytest.approx(0.0515)
    # The case: 0.09 against the baseline's 0.003 on a Q of 1 is beyond the tolerance.
    assert value_tolerance(0.003, 1.0) < 0.09 - 0.003


def test_ok_power_matches_a_simulation_and_seeds_needed_is_the_smallest_n():
    sd, n, room, level = 1.0, 6, 1.5, 0.05
    rng = np.random.default_rng(1)
    b, c = rng.normal(0, sd, (4000, n)), rng.normal(0, sd, (4000, n))
    tolerance = room  # true drop 0
    highs = [Bound.welch(x, y, tolerance, Levels(level, 1, 1)).high for x, y in zip(b, c, strict=True)]
    simulated = np.mean(np.asarray(highs) < tolerance)
    assert ok_power(sd, sd, n, room, level) == pytest.approx(simulated, abs=0.03)
    needed = seeds_needed(sd, sd, room, level)
    assert needed is not None
    assert ok_power(sd, sd, needed, room, level) >= 0.8 > ok_power(sd, sd, needed - 1, room, level)
    assert seeds_needed(sd, sd, 0.0, level) is None  # a drop at the tolerance is never bounded below it


def test_fail_power_matches_a_simulation_of_a_drop_of_twice_the_tolerance():
    sd, n, tolerance, level = 1.0, 8, 1.0, 0.01
    rng = np.random.default_rng(2)
    b, c = rng.normal(0, sd, (4000, n)), rng.normal(-2 * tolerance, sd, (4000, n))
    lows = [Bound.welch(x, y, tolerance, Levels(level * 4, 1, 1)).low for x, y in zip(b, c, strict=True)]
    simulated = np.mean(np.asarray(lows) > tolerance)
    assert 0.2 < simulated < 0.8  # a case where power is neither ~0 nor ~1
    assert fail_power(sd, sd, n, n, tolerance, level) == pytest.approx(simulated, abs=0.03)


def test_an_ok_says_what_power_it_had():
    result = compare(_group(RNG.normal(30, 0.1, 5)), _group(RNG.normal(30, 0.1, 5)), 3.0, GATE)
    assert result.fail_power > 0.99 and "would have failed with probability 100%" in comparison_reason(result)
    noisy = compare(_group(RNG.normal(30, 3.0, 5)), _group(RNG.normal(30, 3.0, 5)), 3.0, GATE)
    assert noisy.fail_power < 0.05


def _fail_rate(draw, n: int, trials: int, level: float, tolerance: float = 1.0, welch_df: bool = False) -> float:
    """How often a true drop of exactly one tolerance -- the worst case for a false fail -- is
    failed by the drop test at `level`, over `trials` simulated cells of n seeds per group.
    `draw(rng, shape)` gives baseline and candidate scores before the shift. ``welch_df``: the
    same statistic against Welch-Satterthwaite's degrees of freedom instead (what rlcheck did)."""
    rng = np.random.default_rng(n)
    fails, chunk = 0, 250_000
    for start in range(0, trials, chunk):
        m = min(chunk, trials - start)
        base, cand = draw(rng, (m, n))
        cand = cand - tolerance
        if welch_df:
            v1, v2 = base.var(-1, ddof=1) / n, cand.var(-1, ddof=1) / n
            t = (base.mean(-1) - cand.mean(-1) - tolerance) / np.sqrt(v1 + v2)
            p = sps.t.sf(t, (v1 + v2) ** 2 / ((v1**2 + v2**2) / (n - 1)))
        else:
            p = welch_bounds(base, cand, tolerance, level, 0.05)[3]
        fails += int((p < level).sum())
    return fails / trials


def _normal(sd_base, sd_cand):
    return lambda rng, shape: (rng.normal(0, sd_base, shape), rng.normal(0, sd_cand, shape))


def _bounded(rng, shape):  # returns capped at the optimum: most seeds near it, a tail below (means removed)
    return (1 - rng.beta(1, 8, shape)) - 8 / 9, (1 - rng.beta(1, 3, shape)) - 3 / 4


def _bimodal(rng, shape):  # a tenth of the seeds far below the rest, in both groups
    def draw():
        return np.where(rng.random(shape) < 0.1, -5.0, 0.0) + rng.normal(0, 0.3, shape)

    return draw(), draw()


SHAPES = {"normal": _normal(1, 1), "spreads 4x apart": _normal(1, 4), "spreads 1/4": _normal(4, 1),
          "bounded": _bounded, "bimodal": _bimodal}  # fmt: skip


@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_drop_tests_size_holds_at_the_gates_own_level(shape, n):
    """At the gate's per-test fail level (2.1e-4), on score shapes like the project's, a drop
    of exactly the tolerance is failed at most at that level (with room for simulation noise:
    400,000 cells expect ~83 fails at the level)."""
    trials = 400_000
    expected = trials * GATE.fail
    fails = _fail_rate(SHAPES[shape], n, trials, GATE.fail) * trials
    assert fails <= expected + 4 * math.sqrt(expected), f"{fails:.0f} fails, {expected:.0f} expected at most"


def test_the_size_simulation_sees_welch_satterthwaites_excess():
    """The simulation can fail: the same statistic against Welch-Satterthwaite's degrees of
    freedom fails a drop of one tolerance more than twice as often as the level at 5 seeds
    with spreads 4x apart."""
    trials = 400_000
    expected = trials * GATE.fail
    fails = _fail_rate(SHAPES["spreads 4x apart"], 5, trials, GATE.fail, welch_df=True) * trials
    assert fails > expected + 4 * math.sqrt(expected) and fails > 1.8 * expected


def test_a_broken_cell_is_almost_never_called_ok():
    """A true drop of one tolerance gets an upper bound below the tolerance at most at the ok level."""
    rng = np.random.default_rng(3)
    trials = 4000
    base, cand = rng.normal(0, 0.5, (trials, 10)), rng.normal(-1.0, 0.5, (trials, 10))
    oks = sum(Bound.welch(b, c, 1.0, ONE_CELL).high < 1.0 for b, c in zip(base, cand, strict=True))
    assert trials * ONE_CELL.ok / 2 < oks < trials * ONE_CELL.ok * 1.5


def test_verdict_underperforms_on_a_large_significant_drop():
    result = compare(_group([30, 29.9, 30, 29.8, 30]), _group([1, -2, 3, 0, 2]), 3.0, GATE)
    assert result.verdict == "underperforms" and result.drop_low > 3.0
    assert "a drop of at least" in comparison_reason(result) and "99.979% confidence" in comparison_reason(result)


def test_verdict_ok_bounds_the_drop_below_the_tolerance():
    result = compare(_group(RNG.normal(30, 0.1, 5)), _group(RNG.normal(30, 0.1, 5)), 3.0, GATE)
    assert result.verdict == "ok" and result.drop_high < 3.0
    assert "is ruled out at 99.0% confidence" in comparison_reason(result)


def test_a_significant_drop_within_the_tolerance_is_ok():
    result = compare(_group([30.0, 30.01, 29.99, 30.0, 30.0]), _group([29.5, 29.51, 29.49, 29.5, 29.5]), 3.0, GATE)
    assert result.drop_low > 0 and result.verdict == "ok"


def test_a_drop_just_under_the_tolerance_is_not_ok_when_the_bound_reaches_past_it():
    """The old rule said ok here (the observed gap is under the margin); its upper bound is not."""
    rng = np.random.default_rng(4)
    base, cand = rng.normal(30, 1.0, 5), rng.normal(27.5, 1.0, 5)
    result = compare(_group(base), _group(cand), 3.0, GATE)
    assert result.drop < 3.0 < result.drop_high and result.verdict == "inconclusive"
    assert "is not ruled out" in comparison_reason(result)


def test_verdict_unreliable_when_spread_across_seeds_explodes():
    base = [30.0, 29.9, 30.1, 30.0, 29.95, 30.05, 30.0, 29.9, 30.0, 30.1]
    cand = [30.0, 14.0, 46.0, 45.0, 15.0, 2.0, 58.0, 58.0, 2.0, 30.0]  # mean ~ the same
    result = compare(_group(base), _group(cand), 3.0, ONE_CELL)
    assert result.verdict == "unreliable" and result.decided_by == "spread" and "spread" in comparison_reason(result)


def test_a_spread_within_the_tolerance_never_fails_whatever_its_ratio():
    base = RNG.normal(30, 0.01, 20)
    cand = RNG.normal(30, 1.0, 20)  # 100x the baseline's spread, a third of the tolerance
    result = compare(_group(base), _group(cand), 3.0, GATE)
    assert result.spread_p == 1.0 and result.verdict == "ok"


def _spread_fail_rate(draw, n: int, trials: int, level: float) -> float:
    rng = np.random.default_rng(100 + n)
    fails, chunk = 0, 200_000
    for start in range(0, trials, chunk):
        m = min(chunk, trials - start)
        base, cand = draw(rng, (m, n))
        fails += int((spread_p(base, cand, tolerance=1.0) < level).sum())
    return fails / trials


def _spread_at(ratio, shape="normal"):
    """Baseline sd 1, candidate sd `ratio`, both beyond the tolerance 1 of the simulation."""
    if shape == "normal":
        return lambda rng, size: (rng.normal(0, 2.0, size), rng.normal(0, 2.0 * ratio, size))
    return lambda rng, size: (
        2.0 * rng.laplace(0, 1, size) / math.sqrt(2),
        2.0 * ratio * rng.laplace(0, 1, size) / math.sqrt(2),
    )


@pytest.mark.parametrize("n", [5, 10, 20])
def test_the_spread_tests_size_holds_at_the_gates_own_level(n):
    """Scores whose spread is exactly SPREAD_RATIO times the baseline's -- the worst case for a
    false fail -- are failed at most at the gate's level: normal ones, and heavy-tailed ones
    (Laplace, kurtosis 6), where the F test of variances fails 5-40x its level."""
    trials = 400_000
    expected = trials * GATE.fail
    for shape in ("normal", "laplace"):
        fails = _spread_fail_rate(_spread_at(SPREAD_RATIO, shape), n, trials, GATE.fail) * trials
        assert fails <= expected + 4 * math.sqrt(expected), f"{shape}: {fails:.0f} fails, {expected:.0f} at most"


def test_the_spread_test_has_power_against_a_net_that_is_a_lottery():
    """The baseline's mean and 20x its spread, beyond the tolerance: failed on spread mostly at
    20 seeds and almost always at 40 (the old test against an additive margin: 0.1% at 5). At
    10 seeds it rarely is: a cell that cannot decide doubles its seeds."""
    trials = 20_000
    rng = np.random.default_rng(7)
    power = {}
    for n in (10, 20, 40):
        base, cand = rng.normal(0, 0.1, (trials, n)), rng.normal(0, 2.0, (trials, n))
        power[n] = float((spread_p(base, cand, tolerance=1.0) < GATE.fail).mean())
    assert power[10] < 0.2 and power[20] > 0.75 and power[40] > 0.99, power


def test_verdict_unreliable_when_returns_jump_between_evaluations():
    base = _group([27.5, 27.4, 27.6, 27.5, 27.5], [0.4, 0.38, 0.36, 0.41, 0.35])
    cand = _group([27.9, 26.3, 29.9, 27.2, 28.0], [20.7, 21.7, 19.3, 21.9, 22.3])
    result = compare(base, cand, 3.0, GATE)
    assert result.verdict == "unreliable" and "jump" in comparison_reason(result)


def test_one_collapsed_seed_keeps_a_cell_from_ok_and_is_named():
    """Like a mode-aware BatchNorm critic that collapsed on 1 of 15 seeds: not significant on its
    own, so not a fail, but never ok; the seed is named."""
    base = Group.of(RNG.normal(29.5, 0.3, 15), np.full(15, 0.3), range(100, 115))
    scores = RNG.normal(29.5, 0.3, 15)
    scores[6] = -13.9
    result = compare(base, Group.of(scores, np.full(15, 0.3), range(200, 215)), 3.0, GATE)
    assert result.verdict == "inconclusive" and result.collapsed_seeds == (206,)
    assert "seed 206 collapsed" in comparison_reason(result)


def test_many_collapsed_seeds_are_unreliable():
    base = Group.of(RNG.normal(29.5, 0.3, 15), np.full(15, 0.3))
    scores = np.where(np.arange(15) < 9, -20.0 + RNG.normal(0, 30, 15), 29.5)  # 9 of 15 collapse, wildly
    result = compare(base, Group.of(scores, np.full(15, 0.3)), 3.0, ONE_CELL)
    assert result.collapse_p < ONE_CELL.fail and result.verdict in ("underperforms", "unreliable")


def test_six_of_fifteen_collapsed_seeds_fail_at_the_gates_level():
    """Like TD3 with mode-aware BatchNorm on RandomEnv: 6 of 15 seeds far below every baseline
    seed, the rest fine -- too spread for Welch, decided by the collapse rule."""
    base = Group.of(RNG.normal(29.3, 0.3, 15), np.full(15, 0.2))
    scores = RNG.normal(29.0, 0.5, 15)
    scores[[2, 3, 6, 9, 10, 14]] = [0.5, -2.0, 6.0, 1.0, 12.0, -0.5]
    result = compare(base, Group.of(scores, np.full(15, 0.2)), 3.0, GATE)
    assert result.collapse_p < GATE.fail and result.verdict == "unreliable"
    assert "6 of 15 seeds collapsed" in comparison_reason(result)


@pytest.mark.parametrize(("collapsed", "verdict"), [(1, "inconclusive"), (3, "inconclusive"), (4, "unreliable")])
def test_how_many_collapsed_seeds_of_fifteen_fail_at_the_gates_level(collapsed, verdict):
    """Like BatchNorm in the actor alone: a few seeds of 15 far below every baseline seed. One is
    named but cannot decide; four of fifteen are more than 1 in 100 at the gate's level."""
    base = Group.of(RNG.normal(29.3, 0.3, 15), np.full(15, 0.2))
    scores = RNG.normal(29.0, 0.5, 15)
    scores[:collapsed] = 2.0
    result = compare(base, Group.of(scores, np.full(15, 0.2)), 3.0, GATE)
    assert result.verdict == verdict and result.collapse_tolerated == COLLAPSE_SHARE


@pytest.mark.parametrize(("n", "fewest"), [(5, 3), (10, 3), (20, 4), (40, 5)])
def test_the_collapse_rule_fails_a_net_at_the_tolerated_share_at_most_at_the_fail_level(n, fewest):
    """A candidate whose seeds collapse at exactly COLLAPSE_SHARE is failed by the collapse rule
    at most at the fail level. Exactly: the rule's answer depends only on how many of the n seeds
    collapsed, so its false-fail probability is the binomial weight of the counts it fails. Its
    power in counts: the fewest collapsed seeds of n that fail."""
    baseline = np.full(n, 29.5)
    fails = []
    for k in range(n + 1):
        candidate = np.where(np.arange(n) < k, 0.0, 29.5)
        below, collapsed, baseline_collapsed, p = collapses(baseline, candidate, 3.0)
        assert below == 14.5 and collapsed.sum() == k and baseline_collapsed == 0
        fails.append(p < GATE.fail)
    false_fail = sum(sps.binom.pmf(k, n, COLLAPSE_SHARE) for k in range(n + 1) if fails[k])
    assert 0 < false_fail <= GATE.fail
    assert fails.index(True) == fewest == collapses_that_fail(n, GATE.fail)


def test_collapsed_baseline_seeds_do_not_switch_the_collapse_rule_off():
    """The old rule added the baseline's observed share to the tolerated one: one collapsed
    baseline seed of 5 let 5 of 5 collapsed candidate seeds through. Now the baseline's count is
    reported and decides nothing."""
    base = np.array([29.5, 29.4, 29.6, 29.5, 0.0])
    cand = np.zeros(5)
    _, collapsed, baseline_collapsed, p = collapses(base, cand, 3.0)
    assert baseline_collapsed == 1 and collapsed.all() and p < GATE.fail


def test_verdict_inconclusive_when_noise_hides_a_drop_and_says_how_many_seeds():
    base, cand = _group([30.0, 29.0, 28.0]), _group([29.0, 26.0, 30.0])
    result = compare(base, cand, 3.0, GATE)
    assert result.verdict == "inconclusive"
    assert result.seeds_needed is not None and result.seeds_needed > 3
    assert str(result.seeds_needed) in comparison_reason(result)


def test_identical_constant_groups_are_handled_without_nan():
    result = compare(_group([30.0] * 5), _group([30.0] * 5), 3.0, GATE)
    assert result.verdict == "ok" and result.drop_p == 1.0 and result.spread_p == 1.0
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in result.to_dict().values())


def test_needs_two_seeds():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare(_group([1.0]), _group([1.0, 2.0]), 1.0, GATE)
