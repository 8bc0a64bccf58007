"""What one comparison of a cell ends in: its outcome (:data:`Outcome`) and the comparison behind it.

* ``pass``: the comparison at the budget is ``ok`` (rlcheck.verdicts.stats: every difference
  that matters is ruled out);
* ``fail``: ``underperforms`` or ``unreliable`` at the run's fail level -- trained on, where the
  cell was (rlcheck.verdicts.slower), else at the budget where a fail there is final;
* ``slower``: below the baseline or failed at the budget, and trained on (that cell alone, to
  ``slower_budget`` times the budget) ``ok`` against the baseline at the budget;
* ``undecided``: neither, even with ``max_seeds`` seeds (or a fail at the budget that was to be
  confirmed trained on, where a check stopped first at a final fail elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rlcheck.engine.runs import RunResult
from rlcheck.verdicts.config import Cell
from rlcheck.verdicts.stats import FLAGGED, Comparison

__all__ = ["FLAGGED", "OUTCOMES", "CellComparison", "Outcome", "in_cell", "runs_of"]
from rlcheck.verdicts.variants import VARIANTS

Outcome = Literal["pass", "slower", "undecided", "fail"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "slower", "undecided", "fail")


@dataclass
class CellComparison:
    cell: Cell
    baseline: str
    candidate: str
    stats: Comparison  # at the cell's budget
    # A net still improving when it underperformed, trained on to `extended_steps`:
    extended: Comparison | None = None
    extended_steps: int | None = None
    caught_up_at: int | None = None  # the step from which its mean stays within the tolerance of the baseline's score
    # Where the tolerance came from (rlcheck.verdicts.tolerances): "environment", "calibration"
    # (both fixed before any run) or "calibration seeds" (the baseline on seeds of its own, in the run)
    tolerance_source: str = "calibration seeds"
    # Whether a fail at the budget is final (rlcheck.verdicts.slower.judged_at_budget, or no
    # training on), rather than to be confirmed trained on
    final_at_budget: bool = True

    @property
    def algo(self) -> str:
        return self.cell.algo

    @property
    def decisive(self) -> Comparison:
        return self.extended if self.extended is not None else self.stats

    @property
    def outcome(self) -> Outcome:
        verdict = self.decisive.verdict
        if verdict == "ok":
            return "slower" if self.extended is not None else "pass"
        if verdict in FLAGGED and (self.extended is not None or self.final_at_budget):
            return "fail"
        return "undecided"

    @property
    def unconfirmed(self) -> bool:
        """Failed at the budget where a fail is to be confirmed trained on, and not trained on."""
        return self.extended is None and self.stats.verdict in FLAGGED and not self.final_at_budget

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.stats.to_dict(),  # at the budget; its verdict is also under "budget"
            "algo": self.cell.algo,
            "env": self.cell.env_id,
            "metric": self.cell.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "n_seeds": self.stats.n_candidate,
            "outcome": self.outcome,
            "tolerance_source": self.tolerance_source,
            "final_at_budget": self.final_at_budget,
            "verdict": self.decisive.verdict,
            "budget": {"verdict": self.stats.verdict},
            "extended": None
            if self.extended is None
            else {"steps": self.extended_steps, "caught_up_at": self.caught_up_at, **self.extended.to_dict()},
        }


def in_cell(run: RunResult, cell: Cell, steps: int | None = None) -> bool:
    """Whether a run is of this cell, trained for its budget (or for `steps`). A variant that
    runs its own algorithm in the place of the cell's (CrossQ in a SAC cell) belongs to it too."""
    variant = VARIANTS.get(run.spec.net)
    algo = cell.algo if variant is None else variant.runs_as(cell.algo)
    return run.spec.algo == algo and run.spec.env_id == cell.env_id and run.spec.steps == (steps or cell.steps)


def runs_of(results: list[RunResult], cell: Cell, net: str, steps: int | None = None) -> list[RunResult]:
    """The runs of `net` in `cell`, trained for its budget (or for `steps`), in their order."""
    return [r for r in results if in_cell(r, cell, steps) and r.spec.net == net]
