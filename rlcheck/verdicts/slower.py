"""Slower, not broken: which cells are trained on past their budget, and training them on.

A correct net that learns more slowly than the baseline is, at the budget, worse than it: what
a broken net is too. So a failure at the budget is confirmed where it can be, by training on:

* a cell whose candidate **fails** at the budget, or is **below** the baseline there (not
  ``ok``, its mean more than the tolerance under the baseline's), is trained on, that cell
  alone, to ``slower_budget`` times the budget, on the same seeds, and compared again with the
  baseline at the budget: ``ok`` there is ``slower``, a fail test firing there is ``fail``, and
  inconclusive grows both by doubling the seeds (the candidate trained on) up to ``max_seeds``;
* except on a **return probe whose optimal action is on a bound of the action box** (RandomEnv,
  ActionReward: reward = action): there an actor stuck at the bound matches the baseline once
  trained long enough whatever is broken (SAC with naive BatchNorm saturates at +1), so that
  cell is judged at the budget: a fail there is final, and only a cell still undecided at
  ``max_seeds`` and below the baseline is trained on.

Each comparison after training on is one of the planned looks of rlcheck.verdicts.stats.Levels,
and a fail is only ever called where a fail test fired at the fail level, so the error rates
of rlcheck.verdicts.stats hold for every outcome.
"""

from __future__ import annotations

import functools
from pathlib import Path

from rlcheck.engine.agents import make_env
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import Backend, ProgressCallback, run_all
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.envs import optimal_action_at_bound
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.curves import caught_up_at, group_of
from rlcheck.verdicts.outcomes import FLAGGED, CellComparison, in_cell, runs_of
from rlcheck.verdicts.stats import compare


@functools.cache
def judged_at_budget(cell: Cell) -> bool:
    """Whether a fail at the cell's budget is final: a return probe whose optimal action is on a
    bound of the action box, which a saturated actor wins when trained on."""
    if cell.metric != "return":
        return False
    with make_env(cell.env_id) as env:
        at_bound = optimal_action_at_bound(env)
    return at_bound


def trains_on(config: StudyConfig, comparison: CellComparison, seeds_left: bool) -> bool:
    """Whether a comparison at the budget is trained on (see the module docstring); `seeds_left`:
    whether its cell may still grow at the budget."""
    stats = comparison.stats
    if config.slower_budget <= 1 or comparison.extended is not None:
        return False
    if judged_at_budget(comparison.cell):
        return stats.verdict == "inconclusive" and stats.below and not seeds_left
    return stats.verdict in FLAGGED or stats.below


def train_on(
    config: StudyConfig,
    chosen: list[CellComparison],
    results: list[RunResult],
    log_path: Path | None,
    progress: ProgressCallback | None,
    resume: bool,
    cache: RunCache | None,
    backend: Backend,
) -> list[RunResult]:
    """Train each chosen candidate on to `slower_budget` times its cell's budget, on the seeds
    it was judged on, and compare it again with the baseline at the budget; while that is
    inconclusive, double both seeds (the candidate trained on, the baseline at the budget) up to
    `max_seeds`. The baseline's new runs join `results`; the candidate's longer runs are returned."""
    extended_runs: list[RunResult] = []
    seeds = {id(c): sorted(r.spec.seed for r in runs_of(results, c.cell, c.candidate)) for c in chosen}
    steps = {id(c): round(c.cell.steps * config.slower_budget) for c in chosen}
    pending = list(chosen)
    while pending:
        done = {r.spec for r in (*results, *extended_runs)}
        wanted: dict[RunSpec, None] = {}
        for c in pending:
            for seed in seeds[id(c)]:
                wanted[config.spec(c.cell, c.candidate, seed, steps=steps[id(c)])] = None
                wanted[config.spec(c.cell, c.baseline, seed)] = None
        trained = run_all(
            [spec for spec in wanted if spec not in done], config.workers, log_path, progress, resume, cache,
            backend=backend,
        )  # fmt: skip
        for run in trained:  # the baseline's runs are at a cell's budget, the candidates' past it
            (results if any(in_cell(run, c.cell) for c in pending) else extended_runs).append(run)
        still_open = []
        for c in pending:
            longer = runs_of(extended_runs, c.cell, c.candidate, steps[id(c)])
            base = group_of(runs_of(results, c.cell, c.baseline), c.cell.metric)
            c.extended = compare(base, group_of(longer, c.cell.metric), c.stats.tolerance, config.levels)
            c.extended_steps = steps[id(c)]
            c.caught_up_at = caught_up_at(longer, c.cell.metric, float(base.scores.mean()) - c.stats.tolerance)
            if c.extended.verdict == "inconclusive" and len(seeds[id(c)]) < config.max_seeds:
                seeds[id(c)] += config.next_block(seeds[id(c)])
                still_open.append(c)
        pending = still_open
    return extended_runs
