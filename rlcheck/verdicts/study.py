"""The multi-seed study: every (algo, net) on several seeds, each net compared with a baseline.

Each (cell, candidate) pairing ends in one outcome (rlcheck.verdicts.outcomes: ``pass``,
``slower``, ``undecided`` or ``fail``). Seeds are added while a comparison is ``inconclusive``
(doubling, up to ``max_seeds``); cells that fail or are below the baseline at the budget are
trained on where that can confirm a fail (rlcheck.verdicts.slower). Every look at the data, and
the longer training of a net, is one of the planned looks over which
rlcheck.verdicts.stats.Levels spreads the error rate.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rlcheck.engine.cache import RunCache
from rlcheck.engine.machine import processor
from rlcheck.engine.runner import Backend, ProgressCallback, kept_workers, run_all
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.curves import group_of
from rlcheck.verdicts.diagnose import Diagnosis, diagnose_first_on_each_env, diagnose_run, diagnosis_of
from rlcheck.verdicts.door import check_before_training
from rlcheck.verdicts.outcomes import CellComparison, runs_of
from rlcheck.verdicts.slower import judged_at_budget, train_on, trains_on
from rlcheck.verdicts.stats import compare
from rlcheck.verdicts.tolerances import CALIBRATION_SEEDS, fixed_tolerance, tolerance_for

__all__ = ["Cell", "StudyConfig", "StudyResult", "run_study", "versions"]


@dataclass
class StudyResult:
    config: StudyConfig
    runs: list[RunResult]
    comparisons: list[CellComparison]
    versions: dict[str, str] = field(default_factory=lambda: versions())
    # "algo/net" -> (the run diagnosed, its diagnosis), for failed nets (see `diagnose_failures`)
    diagnoses: dict[str, tuple[RunSpec, Diagnosis]] = field(default_factory=dict)
    # Runs of nets trained past their cell's budget
    extended_runs: list[RunResult] = field(default_factory=list)
    # The baseline's runs on rlcheck.verdicts.tolerances.CALIBRATION_SEEDS, for the tolerances of
    # cells that cannot be fixed in advance
    calibration_runs: list[RunResult] = field(default_factory=list)
    # What the door noted before training: frozen parameters, nets not fused across seeds
    notes: list[str] = field(default_factory=list)
    # The files the front wrote of it (results.json, report.html, figures), where it wrote any
    files: list[Path] = field(default_factory=list)

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
                if spec.agent is not None:  # a user's agent: no networks rlcheck can open; the probe points
                    continue
                measured = next((d for r in self.runs if r.spec == spec and (d := diagnosis_of(r)) is not None), None)
                diagnosis = measured or diagnose_run(spec)
                mode_dependent = any(diagnosis.mode_dependent_layers.values())
                if outcome == "fail" or (diagnosis.findings and mode_dependent):
                    self.diagnoses[key] = (spec, diagnosis)

    def runs_of(self, cell: Cell, net: str) -> list[RunResult]:
        return runs_of(self.runs, cell, net)

    def decisive_runs(self, comparison: CellComparison) -> list[RunResult]:
        """The candidate's runs its outcome was decided on: trained on, where it was, else at the budget."""
        if comparison.extended is not None:
            return runs_of(self.extended_runs, comparison.cell, comparison.candidate, comparison.extended_steps)
        return self.runs_of(comparison.cell, comparison.candidate)

    def optimal_return(self, cell: Cell) -> float | None:
        return next((r.optimal_return for r in self.runs if r.spec.env_id == cell.env_id), None)

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
            "calibration_runs": [r.to_dict() for r in self.calibration_runs],
            "notes": self.notes,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "diagnoses": {key: {"run": spec.to_dict(), **d.to_dict()} for key, (spec, d) in self.diagnoses.items()},
        }


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform(), "processor": processor()}
    for package in ("rlcheck", "torch", "gymnasium", "numpy", "scipy"):
        module = sys.modules.get(package)
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # imported from a source tree, not pip-installed
            found[package] = str(getattr(module, "__version__", "not installed"))
    return found


def _calibrated_cells(config: StudyConfig) -> list[Cell]:
    """The cells whose tolerance is measured on the baseline's CALIBRATION_SEEDS in the run."""
    return [c for c in config.cells if fixed_tolerance(c, config.baseline, config.hidden, config.settings) is None]


def _compare_cell(
    config: StudyConfig, results: list[RunResult], calibration: list[RunResult], cell: Cell
) -> list[CellComparison]:
    baseline = runs_of(results, cell, config.baseline)
    calibration_runs = runs_of(calibration, cell, config.baseline)
    tolerance, source = tolerance_for(cell, config.baseline, config.hidden, calibration_runs, config.settings)
    base = group_of(baseline, cell.metric)
    final = config.slower_budget <= 1 or judged_at_budget(cell)
    comparisons = []
    for net in config.nets:
        if net != config.baseline:
            candidate = group_of(runs_of(results, cell, net), cell.metric)
            comparison = compare(base, candidate, tolerance, config.levels)
            comparisons.append(
                CellComparison(cell, config.baseline, net, comparison, tolerance_source=source, final_at_budget=final)
            )
    return comparisons


def _final_failure(comparison: CellComparison) -> bool:
    """A fail that training on cannot turn into "slower"."""
    return comparison.outcome == "fail"


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
    calibration_specs = {
        config.spec(cell, config.baseline, seed) for cell in _calibrated_cells(config) for seed in CALIBRATION_SEEDS
    }
    calibration: list[RunResult] = []
    with kept_workers():  # one set of training processes for every round
        while pending:
            done = {r.spec for r in (*results, *calibration)}
            specs = [
                spec
                for cell in pending
                for net in config.nets
                for seed in seeds[cell]
                if (spec := config.spec(cell, net, seed)) not in done
            ]
            specs += [spec for spec in sorted(calibration_specs, key=str) if spec not in done]  # the first batch
            trained = run_all(
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
            calibration += [r for r in trained if r.spec in calibration_specs]
            results += [r for r in trained if r.spec not in calibration_specs]
            still_open = []
            for cell in pending:
                comparisons[cell] = _compare_cell(config, results, calibration, cell)
                # Seeds grow at the budget where a comparison is open there: not one that
                # training on will decide (rlcheck.verdicts.slower).
                open_here = any(
                    c.stats.verdict == "inconclusive" and not trains_on(config, c, seeds_left=True)
                    for c in comparisons[cell]
                )
                if open_here and len(seeds[cell]) < config.max_seeds:
                    seeds[cell] += config.next_block(seeds[cell])
                    still_open.append(cell)
            pending = still_open
            if config.stop_when_flagged and any(_final_failure(c) for cs in comparisons.values() for c in cs):
                pending = []  # the comparisons still open stay "inconclusive", with the seeds they would need
        failed = config.stop_when_flagged and any(_final_failure(c) for cs in comparisons.values() for c in cs)
        chosen = [
            c
            for cell, cs in comparisons.items()
            for c in cs
            if not failed and trains_on(config, c, seeds_left=len(seeds[cell]) < config.max_seeds)
        ]
        extended_runs = train_on(config, chosen, results, log_path, progress, resume, cache, backend)
    ordered = [r for cell in config.cells for net in config.nets for r in runs_of(results, cell, net)]
    return StudyResult(
        config,
        ordered,
        [c for cell in config.cells for c in comparisons[cell]],
        extended_runs=extended_runs,
        notes=notes,
        calibration_runs=calibration,
    )
