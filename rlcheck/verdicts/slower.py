"""Slower, not broken: which nets below the baseline at the budget are trained on, and training them on.

A net that is still learning when the cell's budget ends scores below the baseline there, and
may also jump, spread and have seeds far below it: what a broken net shows too. The rules here
(:func:`slower_candidates`) tell the two apart on the curves at the budget; :func:`train_on`
trains the lagging ones on, that cell alone, and compares them with the baseline again. Each
comparison after training on is one of the planned looks of rlcheck.verdicts.stats.Levels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import Backend, ProgressCallback, run_all
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.verdicts.config import StudyConfig
from rlcheck.verdicts.curves import caught_up_at, climbing, group_of, on_a_trend, rising_seeds, unlearned
from rlcheck.verdicts.outcomes import CellComparison, in_cell, runs_of
from rlcheck.verdicts.stats import compare


def slower_candidates(
    config: StudyConfig, results: list[RunResult], comparisons: list[CellComparison]
) -> list[CellComparison]:
    """Comparisons whose candidate scored below the baseline by more than the tolerance at the
    budget (significantly or not yet, whatever else its verdict says: a net still learning also
    jumps, spreads and has seeds far below the baseline) that lagged rather than broke there:

    * it had not stopped: some seed still rose by more than the tolerance over the last third;
    * no seed unlearned (rlcheck.verdicts.curves.unlearned): held the baseline's level at two
      evaluations in a row, then collapsed. A slower net's seeds far below have not got there
      yet; one that got there and lost it is what a broken net does, and training on would only
      wait it out;
    * its seeds below the collapse line, if any, lag too: climbing together (curves.climbing:
      their mean rose by more than the tolerance over the last third, each seed in jumps or
      not, the mean steadily) or each moving steadily one way (curves.on_a_trend: TD3 falls
      steadily into a dip on `track` before it climbs out). Seeds far below that sit still or
      swing while others learn are a broken net's, even where their swings end higher than
      they started;
    * its seeds do not jump between evaluations by more than the tolerance over the baseline's
      (the excess seen, significant or not: the size that makes a net `unreliable`). A slower
      net climbs; a net whose returns swing that much at the budget is erratic, and trained
      on it still swings, where seeds grown at the budget show it.

    Training on decides them sooner than more seeds at a budget too short for the net; it can
    clear a failure at the budget (``slower``), never blur it (CellComparison.outcome)."""
    if config.slower_budget <= 1:
        return []
    chosen = []
    for c in comparisons:
        if not c.stats.below or c.extended is not None:
            continue
        runs = runs_of(results, c.cell, c.candidate)
        metric, tolerance = c.cell.metric, c.stats.tolerance
        base = group_of(runs_of(results, c.cell, c.baseline), metric)
        learned = float(np.median(base.scores)) - tolerance
        collapsed = [r for r in runs if r.spec.seed in c.stats.collapsed_seeds]
        lagging = (
            not collapsed
            or climbing(collapsed, metric, tolerance)
            or all(on_a_trend(r, metric, tolerance) for r in collapsed)
        )
        erratic = c.stats.excess_jump > tolerance
        if (
            lagging
            and not erratic
            and rising_seeds(runs, metric, tolerance)
            and not unlearned(runs, metric, learned, c.stats.collapse_below)
        ):
            chosen.append(c)
    return chosen


def hard_failure(comparison: CellComparison, config: StudyConfig, results: list[RunResult]) -> bool:
    """A failure that training on cannot turn into "slower"."""
    return comparison.outcome == "fail" and not slower_candidates(config, results, [comparison])


def train_on(
    config: StudyConfig,
    slower: list[CellComparison],
    results: list[RunResult],
    log_path: Path | None,
    progress: ProgressCallback | None,
    resume: bool,
    cache: RunCache | None,
    backend: Backend,
) -> list[RunResult]:
    """Train each slower candidate on to `slower_budget` times its cell's budget, on the seeds
    it was judged on, and compare it again with the baseline at the budget; while that is
    inconclusive, grow both by another block of seeds (the candidate trained on, the baseline
    at the budget) up to `max_seeds`. Looks at growing seeds continue those at the budget, so
    a cell never takes more looks than the levels plan for. The baseline's new runs join
    `results`; the candidate's longer runs are returned."""
    extended_runs: list[RunResult] = []
    seeds = {id(c): sorted(r.spec.seed for r in runs_of(results, c.cell, c.candidate)) for c in slower}
    steps = {id(c): round(c.cell.steps * config.slower_budget) for c in slower}
    pending = list(slower)
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
