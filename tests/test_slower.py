"""Which cells are trained on past their budget, and what training on decides
(rlcheck.verdicts.slower): no curve shape decides anything, only the comparisons' verdicts and
whether the probe's optimal action lies on a bound of the action box."""

import numpy as np
import pytest

from rlcheck.front.words import cell_reason
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.outcomes import CellComparison
from rlcheck.verdicts.slower import judged_at_budget, trains_on
from rlcheck.verdicts.stats import Group, Levels, compare

LEVELS = Levels(0.05, 12, 5)
TRACK = Cell("td3", "rlcheck/TrackObservation-v0", 1200, 100, 50, 10)
ACTION = Cell("td3", "rlcheck/ActionReward-v0", 600, 100, 50)
CONSTANT = Cell("td3", "rlcheck/ConstantReward-v0", 600, 100, 50, metric="value_error")
RANDOM = Cell("sac")  # RandomEnv, the study's cell
CONFIG = StudyConfig(cells=(TRACK, ACTION, RANDOM), seeds=tuple(range(5)))
RNG = np.random.default_rng(11)


def _comparison(cell: Cell, drop: float, sd: float = 0.1, n: int = 10, tolerance: float = 1.0) -> CellComparison:
    base = Group.of(RNG.normal(0.0, 0.05, n), np.full(n, 0.1))
    cand = Group.of(RNG.normal(-drop, sd, n), np.full(n, 0.1))
    stats = compare(base, cand, tolerance, LEVELS)
    final = CONFIG.slower_budget <= 1 or judged_at_budget(cell)
    return CellComparison(cell, "plain", "yours", stats, final_at_budget=final)


def test_only_return_probes_whose_optimum_is_on_a_bound_are_judged_at_the_budget():
    assert judged_at_budget(RANDOM) and judged_at_budget(ACTION)
    assert not judged_at_budget(TRACK) and not judged_at_budget(CONSTANT)
    assert not judged_at_budget(Cell("td3", "Pendulum-v1", 2000))  # rlcheck does not know: trained on


def test_a_cell_failed_or_below_at_the_budget_trains_on_where_the_optimum_is_inside_the_box():
    failed, below, level = _comparison(TRACK, 5.0), _comparison(TRACK, 1.5, sd=0.8), _comparison(TRACK, 0.0)
    assert failed.stats.verdict == "underperforms" and trains_on(CONFIG, failed, seeds_left=True)
    assert below.stats.verdict == "inconclusive" and below.stats.below and trains_on(CONFIG, below, seeds_left=True)
    assert level.stats.verdict == "ok" and not trains_on(CONFIG, level, seeds_left=True)


def test_a_fail_at_the_budget_is_final_where_a_saturated_actor_wins_the_probe():
    """SAC with naive BatchNorm on RandomEnv saturates at +1 when trained on and would match."""
    failed = _comparison(RANDOM, 5.0)
    assert failed.stats.verdict == "underperforms" and not trains_on(CONFIG, failed, seeds_left=True)
    assert failed.outcome == "fail" and failed.final_at_budget
    below = _comparison(RANDOM, 1.5, sd=0.8)
    assert below.stats.verdict == "inconclusive"
    assert not trains_on(CONFIG, below, seeds_left=True)  # its seeds grow at the budget first
    assert trains_on(CONFIG, below, seeds_left=False)  # undecided at max_seeds and below: trained on


def test_no_training_on_with_a_slower_budget_of_one():
    config = StudyConfig(cells=(TRACK,), seeds=tuple(range(5)), slower_budget=1)
    assert not trains_on(config, _comparison(TRACK, 5.0), seeds_left=False)


@pytest.mark.parametrize(
    ("drop_trained_on", "sd_trained_on", "outcome"),
    [(0.0, 0.1, "slower"), (5.0, 0.1, "fail"), (1.5, 0.8, "undecided")],
)
def test_trained_on_the_comparison_there_decides(drop_trained_on, sd_trained_on, outcome):
    """A fail at the budget is confirmed only by a fail test firing trained on; matching the
    baseline there is `slower`; still open there is `undecided`, whatever the budget showed."""
    c = _comparison(TRACK, 5.0)
    assert c.stats.verdict == "underperforms" and not c.final_at_budget
    c.extended = _comparison(TRACK, drop_trained_on, sd=sd_trained_on).stats
    c.extended_steps = 3 * TRACK.steps
    assert c.outcome == outcome
    assert f"trained on to {3 * TRACK.steps} steps" in cell_reason(c)


def test_a_fail_to_be_confirmed_that_was_not_trained_on_is_undecided_and_says_why():
    """A check stops at its first final fail; a fail elsewhere that training on was to confirm
    is left undecided, not called a fail on the budget alone."""
    c = _comparison(TRACK, 5.0)
    assert c.unconfirmed and c.outcome == "undecided"
    assert "not trained on to confirm it" in cell_reason(c)
