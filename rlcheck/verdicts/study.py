"""The multi-seed study: every (algo, net) on several seeds, each net compared with a baseline.

Each (cell, candidate) pairing ends in one outcome (:data:`Outcome`):

* ``pass``: the comparison is ``ok`` (rlcheck.verdicts.stats: every drop beyond the tolerance is ruled out);
* ``fail``: ``underperforms`` or ``unreliable``, beyond the tolerance at the run's fail level,
  at the budget or trained on; a fail at the budget stands where training on leaves the
  difference it showed (``Comparison.beyond_tolerance``);
* ``slower``: it was below the baseline at the cell's budget, still learning and not broken
  there (``_slower_candidates``), and trained on (that cell alone, to ``slower_budget`` times
  the budget) it is ``ok`` against the baseline at the budget;
* ``undecided``: neither, even with ``max_seeds`` seeds.

Seeds are added while a comparison is ``inconclusive`` (up to ``max_seeds``). Every look at
the data, and the longer training of a slower net, is one of the planned looks over which
rlcheck.verdicts.stats.Levels spreads the error rate.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

import numpy as np

from rlcheck.engine.cache import RunCache
from rlcheck.engine.machine import processor
from rlcheck.engine.runner import Backend, ProgressCallback, kept_workers, run_all
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.curves import (
    caught_up_at,
    climbing,
    group_of,
    last_third,
    on_a_trend,
    rises_smoothly,
    rising_seeds,
    still_improving,
    tolerance_of,
    unlearned,
)
from rlcheck.verdicts.diagnose import Diagnosis, diagnose_first_on_each_env, diagnose_run, diagnosis_of
from rlcheck.verdicts.door import check_before_training
from rlcheck.verdicts.stats import FLAGGED, Comparison, compare
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
        if verdict in FLAGGED or self._failure_stands:
            return "fail"
        return "undecided"

    @property
    def _failure_stands(self) -> bool:
        """A failure at the budget that training on left open rather than cleared: trained on, the
        data still show a difference beyond the tolerance (not yet significantly), or a seed
        still collapsed. A net that only lagged leaves the difference behind; what stays open
        then is whether it is small enough, and that is `undecided`."""
        return self.extended is not None and self.stats.verdict in FLAGGED and self.extended.beyond_tolerance

    @property
    def reason(self) -> str:
        if self.extended is None:
            return self.stats.reason
        trained = f"trained on to {self.extended_steps} steps ({self.cell.steps} is the budget)"
        if self.outcome == "slower":
            when = f", within the tolerance of its score from step {self.caught_up_at} on" if self.caught_up_at else ""
            return f"{trained}, it matches the baseline{when}: {self.extended.reason}"
        if self.extended.verdict not in FLAGGED and self._failure_stands:
            return f"at the budget: {self.stats.reason}; {trained}, the failure stands: {self.extended.reason}"
        return f"at the budget: {self.stats.reason}; {trained}: {self.extended.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.stats.to_dict(),  # at the budget; its verdict and reason are also under "budget"
            "algo": self.cell.algo,
            "env": self.cell.env_id,
            "metric": self.cell.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "n_seeds": self.stats.n_candidate,
            "outcome": self.outcome,
            "verdict": self.decisive.verdict,
            "reason": self.reason,
            "budget": {"verdict": self.stats.verdict, "reason": self.stats.reason},
            "extended": None
            if self.extended is None
            else {"steps": self.extended_steps, "caught_up_at": self.caught_up_at, **self.extended.to_dict()},
        }


@dataclass
class StudyResult:
    config: StudyConfig
    runs: list[RunResult]
    comparisons: list[CellComparison]
    versions: dict[str, str] = field(default_factory=lambda: versions())
    # "algo/net" -> (the run diagnosed, its diagnosis), for failed nets (see `diagnose_failures`)
    diagnoses: dict[str, tuple[RunSpec, Diagnosis]] = field(default_factory=dict)
    # Runs of slower nets trained past their cell's budget
    extended_runs: list[RunResult] = field(default_factory=list)
    # What the door noted before training: frozen parameters, nets not fused across seeds
    notes: list[str] = field(default_factory=list)

    def diagnose_failures(self) -> None:
        """Say why: for each failed (algo, net), the mechanisms (rlcheck.verdicts.diagnose) measured on its
        first seed trained on the first failed cell -- as it was trained for the study, or, where
        that measurement was not kept (a run resumed from a log), trained again. An (algo, net)
        left undecided gets the same measurement on its first undecided cell, kept where it found
        a mechanism in a net with batch- or mode-dependent layers: the seeds could not decide, but
        the user learns what is measurably wrong. (Not for other nets: an undecided net is often
        a correct one still learning, whose half-trained actor can look "capped".)"""
        for outcome in ("fail", "undecided"):
            for comparison in self.comparisons:
                key = f"{comparison.algo}/{comparison.candidate}"
                if comparison.outcome != outcome or key in self.diagnoses:
                    continue
                spec = self.config.spec(comparison.cell, comparison.candidate, self.config.seeds[0])
                measured = next((d for r in self.runs if r.spec == spec and (d := diagnosis_of(r)) is not None), None)
                diagnosis = measured or diagnose_run(spec)
                mode_dependent = any(diagnosis.mode_dependent_layers.values())
                if outcome == "fail" or (diagnosis.findings and mode_dependent):
                    self.diagnoses[key] = (spec, diagnosis)

    def diagnoses_report(self) -> str:
        failed = {f"{c.algo}/{c.candidate}" for c in self.comparisons if c.outcome == "fail"}
        lines = []
        for key, (spec, diagnosis) in self.diagnoses.items():
            why = f"Why {key} fails" if key in failed else f"What {key}, undecided, measurably does wrong"
            lines.append(f"\n{why} (seed {spec.seed} trained on {spec.env_id} for {spec.steps} steps, measured):")
            lines += [f"  {line}" for line in diagnosis.report().splitlines()]
        return "\n".join(lines)

    def runs_of(self, cell: Cell, net: str) -> list[RunResult]:
        return [r for r in self.runs if _in_cell(r, cell) and r.spec.net == net]

    def still_learning(self, comparison: CellComparison) -> str:
        """A note for a net that failed or stayed undecided below the baseline while still
        improving smoothly when its training stopped -- what a net smaller or
        shallower than the baseline does. Empty otherwise: an erratic net's ups and downs are no trend."""
        s = comparison.decisive
        runs = self.runs_of(comparison.cell, comparison.candidate)
        if comparison.extended is not None:
            runs = [
                r
                for r in self.extended_runs
                if r.spec.net == comparison.candidate and _in_cell(r, comparison.cell, r.spec.steps)
            ]
        below = s.below
        if comparison.outcome not in ("fail", "undecided") or not below:
            return ""
        metric = comparison.cell.metric
        if not (still_improving(runs, metric, s.tolerance) and rises_smoothly(runs, metric)):
            return ""
        starts, ends = last_third(runs, metric)
        improving = sum(end > start for start, end in zip(starts, ends, strict=True))
        what, sign = ("critic error", -1.0) if comparison.cell.metric == "value_error" else ("return", 1.0)

        def mean(values: list[float]) -> str:
            return f"{sign * fmean(values):.2f}"

        base_starts, base_ends = last_third(self.runs_of(comparison.cell, comparison.baseline), comparison.cell.metric)
        baseline = comparison.baseline
        if ":" not in baseline:  # a built-in: its size is --hidden
            baseline += f", hidden {','.join(map(str, self.config.hidden))}"
        return (
            f" Still learning: over the last third of training the net's mean {what} went from "
            f"{mean(starts)} to {mean(ends)} (the baseline's: {mean(base_starts)} to {mean(base_ends)}), "
            f"improving on {improving} of {len(starts)} seeds: it learns, more slowly than the baseline. "
            f"A net smaller or shallower than the baseline ({baseline}) does that; to compare it with a "
            "plain net of its own size, give its hidden widths: --hidden 64 for one hidden layer of 64 "
            "(rlcheck_hidden under pytest)."
        )

    def seeds_used(self) -> dict[str, list[int]]:
        """ "algo/env/net" -> the seeds its runs were trained with."""
        return {
            f"{c.algo}/{c.env_id}/{n}": [r.spec.seed for r in self.runs_of(c, n)]
            for c in self.config.cells
            for n in self.config.nets
        }

    def to_dict(self) -> dict[str, Any]:
        config = self.config
        return {
            "config": {
                **asdict(config),
                "looks": config.looks,
                "fail_level": config.levels.fail,
                "ok_level": config.levels.ok,
            },
            "versions": self.versions,
            "seeds": self.seeds_used(),
            "runs": [r.to_dict() for r in self.runs],
            "extended_runs": [r.to_dict() for r in self.extended_runs],
            "notes": self.notes,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "diagnoses": {key: {"run": spec.to_dict(), **asdict(d)} for key, (spec, d) in self.diagnoses.items()},
        }


def _in_cell(run: RunResult, cell: Cell, steps: int | None = None) -> bool:
    """Whether a run is of this cell, trained for its budget (or for `steps`). A variant that
    runs its own algorithm in the place of the cell's (CrossQ in a SAC cell) belongs to it too."""
    variant = VARIANTS.get(run.spec.net)
    algo = cell.algo if variant is None else variant.runs_as(cell.algo)
    return run.spec.algo == algo and run.spec.env_id == cell.env_id and run.spec.steps == (steps or cell.steps)


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform(), "processor": processor()}
    for package in ("rlcheck", "torch", "gymnasium", "numpy", "scipy"):
        module = sys.modules.get(package)
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # imported from a source tree, not pip-installed
            found[package] = str(getattr(module, "__version__", "not installed"))
    return found


def _compare_cell(config: StudyConfig, results: list[RunResult], cell: Cell) -> list[CellComparison]:
    def runs(net: str) -> list[RunResult]:
        return [r for r in results if _in_cell(r, cell) and r.spec.net == net]

    baseline = runs(config.baseline)
    tolerance = tolerance_of(cell.metric, cell.env_id, baseline)
    base = group_of(baseline, cell.metric)
    return [
        CellComparison(
            cell, config.baseline, net, compare(base, group_of(runs(net), cell.metric), tolerance, config.levels)
        )
        for net in config.nets
        if net != config.baseline
    ]


def _slower_candidates(
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
        runs = [r for r in results if _in_cell(r, c.cell) and r.spec.net == c.candidate]
        metric, tolerance = c.cell.metric, c.stats.tolerance
        base = group_of([r for r in results if _in_cell(r, c.cell) and r.spec.net == c.baseline], metric)
        learned = float(np.median(base.scores)) - tolerance
        collapsed = [r for r in runs if r.spec.seed in c.stats.collapsed_seeds]
        lagging = (
            not collapsed
            or climbing(collapsed, metric, tolerance)
            or all(on_a_trend(r, metric, tolerance) for r in collapsed)
        )
        erratic = c.stats.candidate_instability - c.stats.baseline_instability > tolerance
        if (
            lagging
            and not erratic
            and rising_seeds(runs, metric, tolerance)
            and not unlearned(runs, metric, learned, c.stats.collapse_below)
        ):
            chosen.append(c)
    return chosen


def _hard_failure(comparison: CellComparison, config: StudyConfig, results: list[RunResult]) -> bool:
    """A failure that training on cannot turn into "slower"."""
    return comparison.outcome == "fail" and not _slower_candidates(config, results, [comparison])


def _next_block(config: StudyConfig, seeds: list[int]) -> list[int]:
    """The next block of seeds after `seeds`: as many as the study starts with, up to `max_seeds`."""
    start = max(seeds) + 1
    return list(range(start, start + min(len(config.seeds), config.max_seeds - len(seeds))))


def _train_on(
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
    seeds = {
        id(c): sorted(r.spec.seed for r in results if _in_cell(r, c.cell) and r.spec.net == c.candidate) for c in slower
    }
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
            (results if any(_in_cell(run, c.cell) for c in pending) else extended_runs).append(run)
        still_open = []
        for c in pending:
            longer = [r for r in extended_runs if _in_cell(r, c.cell, steps[id(c)]) and r.spec.net == c.candidate]
            base = group_of([r for r in results if _in_cell(r, c.cell) and r.spec.net == c.baseline], c.cell.metric)
            c.extended = compare(base, group_of(longer, c.cell.metric), c.stats.tolerance, config.levels)
            c.extended_steps = steps[id(c)]
            c.caught_up_at = caught_up_at(longer, c.cell.metric, float(base.scores.mean()) - c.stats.tolerance)
            if c.extended.verdict == "inconclusive" and len(seeds[id(c)]) < config.max_seeds:
                seeds[id(c)] += _next_block(config, seeds[id(c)])
                still_open.append(c)
        pending = still_open
    return extended_runs


def run_study(
    config: StudyConfig,
    log_path: Path | None = None,
    progress: ProgressCallback | None = None,
    resume: bool = False,
    cache: RunCache | None = None,
    notify: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run the study, growing the seeds of a cell while any of its comparisons is inconclusive,
    then training on the cells where a candidate underperformed while still learning.
    The door's notes (rlcheck.verdicts.door) go to `notify` before training starts, and into the result."""
    notes = check_before_training(config)
    if notify is not None:
        for note in notes:
            notify(note)
    seeds = {cell: list(config.seeds) for cell in config.cells}
    pending = list(config.cells)
    results: list[RunResult] = []
    comparisons: dict[Cell, list[CellComparison]] = {}
    candidates = [net for net in config.nets if net != config.baseline]  # the nets a failure is explained for
    extended_runs: list[RunResult] = []
    backend = Backend(config.backend, config.ray_address, gpus=1.0 / config.workers)
    with kept_workers():  # one set of training processes for every round
        while pending:
            done = {r.spec for r in results}
            specs = [
                spec
                for cell in pending
                for net in config.nets
                for seed in seeds[cell]
                if (spec := config.spec(cell, net, seed)) not in done
            ]
            results += run_all(
                specs,
                config.workers,
                log_path,
                progress,
                resume,
                cache,
                after_training=diagnose_first_on_each_env,
                measure_nets=candidates,
                backend=backend,
            )
            still_open = []
            for cell in pending:
                comparisons[cell] = _compare_cell(config, results, cell)
                undecided = any(
                    c.stats.verdict == "inconclusive" and not _slower_candidates(config, results, [c])
                    for c in comparisons[cell]
                )
                if undecided and len(seeds[cell]) < config.max_seeds:
                    seeds[cell] += _next_block(config, seeds[cell])
                    still_open.append(cell)
            pending = still_open
            if config.stop_when_flagged and any(
                _hard_failure(c, config, results) for cs in comparisons.values() for c in cs
            ):
                pending = []  # the comparisons still open stay "inconclusive", with the seeds they would need
        failed = config.stop_when_flagged and any(
            _hard_failure(c, config, results) for cs in comparisons.values() for c in cs
        )
        slower = [] if failed else _slower_candidates(config, results, [c for cs in comparisons.values() for c in cs])
        extended_runs = _train_on(config, slower, results, log_path, progress, resume, cache, backend)
    ordered = [
        r for cell in config.cells for net in config.nets for r in results if _in_cell(r, cell) and r.spec.net == net
    ]
    return StudyResult(
        config,
        ordered,
        [c for cell in config.cells for c in comparisons[cell]],
        extended_runs=extended_runs,
        notes=notes,
    )
