"""A comparison's outcome (rlcheck.verdicts.outcomes): the verdict at the budget, and after training on."""

import numpy as np
import pytest

from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.front.words import cell_reason
from rlcheck.verdicts.config import Cell
from rlcheck.verdicts.outcomes import CellComparison, in_cell
from rlcheck.verdicts.stats import Group, Levels, compare

LEVELS = Levels(alpha=0.05, comparisons=1, looks=1)
CELL = Cell("td3", "rlcheck/ActionReward-v0", steps=600)
BASELINE = Group.of(np.linspace(0.95, 1.0, 8), np.full(8, 0.01))


def _vs_baseline(scores: list[float], jumps: float = 0.01):
    return compare(BASELINE, Group.of(scores, np.full(len(scores), jumps)), tolerance=0.1, levels=LEVELS)


AS_GOOD = [0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995, 1.0]
FAR_BELOW = [0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.24]
OPEN_WITHIN = [0.85, 0.9, 0.95, 1.0]  # inconclusive, its mean within the tolerance
OPEN_BEYOND = [0.7, 0.85, 1.0]  # inconclusive, its mean beyond the tolerance (not significantly)


def _cell(at_budget, trained_on=None, final_at_budget=True) -> CellComparison:
    return CellComparison(
        CELL, "plain", "yours", at_budget, extended=trained_on, extended_steps=1200 if trained_on else None,
        final_at_budget=final_at_budget,
    )  # fmt: skip


def test_an_ok_at_the_budget_is_a_pass_and_one_only_after_training_on_is_slower():
    assert _vs_baseline(AS_GOOD).verdict == "ok"
    assert _cell(_vs_baseline(AS_GOOD)).outcome == "pass"
    slower = _cell(_vs_baseline(FAR_BELOW), trained_on=_vs_baseline(AS_GOOD))
    assert slower.outcome == "slower" and slower.decisive.verdict == "ok"
    assert cell_reason(slower).startswith("trained on to 1200 steps (600 is the budget), it matches the baseline")


def test_a_flagged_verdict_is_a_fail_and_an_open_one_is_undecided():
    assert _vs_baseline(FAR_BELOW).verdict == "underperforms"
    assert _cell(_vs_baseline(FAR_BELOW)).outcome == "fail"  # final at the budget
    assert _cell(_vs_baseline(FAR_BELOW), final_at_budget=False).outcome == "undecided"  # not yet confirmed
    for scores in (OPEN_WITHIN, OPEN_BEYOND):
        assert _vs_baseline(scores).verdict == "inconclusive"
        assert _cell(_vs_baseline(scores)).outcome == "undecided"


@pytest.mark.parametrize(
    ("trained_on", "outcome"),
    [(FAR_BELOW, "fail"), (OPEN_BEYOND, "undecided"), (OPEN_WITHIN, "undecided"), (AS_GOOD, "slower")],
)
def test_trained_on_a_fail_is_confirmed_only_by_a_fail_test_firing_there(trained_on, outcome):
    """Trained on, a net that failed at the budget is cleared by an ok (slower) and failed only
    where a fail test fires again; left open there -- its difference beyond the tolerance or
    not -- it is undecided: no fail rests on a difference that is not significant."""
    cell = _cell(_vs_baseline(FAR_BELOW), trained_on=_vs_baseline(trained_on), final_at_budget=False)
    assert cell.extended is not None
    assert (cell.extended.drop > cell.extended.tolerance) == (trained_on in (FAR_BELOW, OPEN_BEYOND))
    assert cell.outcome == outcome
    assert cell.to_dict()["outcome"] == outcome and cell.to_dict()["budget"]["verdict"] == "underperforms"


def test_a_run_is_in_a_cell_of_its_algorithm_environment_and_budget():
    spec = RunSpec("td3", "plain", 0, env_id=CELL.env_id, steps=600)
    run = RunResult(
        spec=spec, eval_steps=[0, 600], eval_returns=[0.0, 1.0], wall_time_s=1.0, threshold=None, optimal_return=1.0
    )
    assert in_cell(run, CELL) and not in_cell(run, CELL, steps=1200)
    assert not in_cell(run, Cell("sac", CELL.env_id, steps=600))
