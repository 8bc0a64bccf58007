import math

import numpy as np
import pytest
from scipy import stats as sps

from rlcheck.stats import Group, compare, hedges_g, iqm, practical_margin, seeds_needed, welch_power

RNG = np.random.default_rng(0)


def _group(scores, instabilities=None):
    scores = np.asarray(scores, float)
    return Group.of(scores, instabilities if instabilities is not None else np.full(scores.size, 0.4))


def test_p_values_match_scipy_references():
    base, cand = RNG.normal(30, 1, 7), RNG.normal(27, 3, 6)
    result = compare(_group(base), _group(cand), margin=1.0)
    assert result.welch_p == pytest.approx(sps.ttest_ind(cand, base, equal_var=False, alternative="less").pvalue)
    assert result.mannwhitney_p == pytest.approx(sps.mannwhitneyu(cand, base, alternative="less").pvalue)
    assert result.spread_p == pytest.approx(sps.levene(cand, base, center="median").pvalue)
    assert result.mean_difference == pytest.approx(cand.mean() - base.mean())
    assert result.ci95_low < result.mean_difference < result.ci95_high
    assert result.baseline_iqm == pytest.approx(sps.trim_mean(base, 0.25))


def test_hedges_g_and_iqm():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert hedges_g(a, b) == pytest.approx((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 8 - 9)))
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 100.0, -100.0, 1.5, 2.5])) == pytest.approx(1.75)


def test_welch_power_matches_a_simulation():
    sd_c, sd_b, n, drop, alpha = 2.0, 1.0, 6, 2.0, 0.05
    analytic = welch_power(sd_c, sd_b, n, drop, alpha)
    rng = np.random.default_rng(1)
    c = rng.normal(-drop, sd_c, (4000, n))
    b = rng.normal(0.0, sd_b, (4000, n))
    simulated = np.mean(sps.ttest_ind(c, b, axis=1, equal_var=False, alternative="less").pvalue < alpha)
    assert analytic == pytest.approx(simulated, abs=0.03)


def test_seeds_needed_is_the_smallest_n_with_80_percent_power():
    n = seeds_needed(3.0, 3.0, 3.0, 0.05)
    assert n is not None
    assert welch_power(3.0, 3.0, n, 3.0, 0.05) >= 0.8 > welch_power(3.0, 3.0, n - 1, 3.0, 0.05)


def test_margin_is_a_tenth_of_what_learning_can_gain():
    assert practical_margin(initial_return=0.0, best_return=30.0) == pytest.approx(3.0)
    assert practical_margin(initial_return=-1200.0, best_return=-200.0) == pytest.approx(100.0)


def test_verdict_underperforms_on_a_large_significant_drop():
    result = compare(_group([30, 29.9, 30, 29.8, 30]), _group([1, -2, 3, 0, 2]), margin=3.0)
    assert result.verdict == "underperforms"


def test_verdict_ok_for_a_candidate_that_matches_the_baseline():
    result = compare(_group(RNG.normal(30, 0.1, 5)), _group(RNG.normal(30, 0.1, 5)), margin=3.0)
    assert result.verdict == "ok"


def test_a_significant_but_tiny_drop_is_ok():
    result = compare(_group([30.0, 30.01, 29.99, 30.0, 30.0]), _group([29.5, 29.51, 29.49, 29.5, 29.5]), margin=3.0)
    assert result.welch_p < 0.05 and result.verdict == "ok"


def test_verdict_unreliable_when_spread_across_seeds_explodes():
    base = [30.0, 29.9, 30.1, 30.0, 29.95, 30.05, 30.0, 29.9, 30.0, 30.1]
    cand = [30.0, 14.0, 29.0, 45.0, 30.0, 2.0, 30.0, 58.0, 29.0, 28.0]  # mean ~ the same
    result = compare(_group(base), _group(cand), margin=3.0)
    assert result.verdict == "unreliable" and "spread" in result.reason


def test_verdict_unreliable_when_returns_jump_between_evaluations():
    base = _group([27.5, 27.4, 27.6, 27.5, 27.5], [0.4, 0.38, 0.36, 0.41, 0.35])
    cand = _group([27.9, 26.3, 29.9, 27.2, 28.0], [3.7, 5.7, 9.3, 15.9, 22.3])
    result = compare(base, cand, margin=3.0)
    assert result.verdict == "unreliable" and "jump" in result.reason


def test_verdict_inconclusive_when_noise_hides_a_drop_and_says_how_many_seeds():
    base, cand = _group([30.0, 20.0, 28.0]), _group([25.0, 5.0, 30.0])
    result = compare(base, cand, margin=3.0)
    assert result.verdict == "inconclusive"
    assert result.seeds_needed is not None and result.seeds_needed > 3
    assert str(result.seeds_needed) in result.reason


def test_identical_constant_groups_are_handled_without_nan():
    result = compare(_group([30.0] * 5), _group([30.0] * 5), margin=3.0)
    assert result.verdict == "ok" and result.welch_p == 1.0 and result.spread_p == 1.0
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in result.to_dict().values())


def test_needs_two_seeds():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare(_group([1.0]), _group([1.0, 2.0]), margin=1.0)
