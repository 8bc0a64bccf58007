"""The gate for a user's own networks: their factory vs a baseline on the probe suite -- the
plain MLP, or any net (``--baseline``: their previous network, say).

Each probe isolates one part of an off-policy agent, so a failure points somewhere. The
comparison is the study's (same statistics, same outcomes: rlcheck.verdicts.study); the gate fails
when any (algorithm, probe) cell's outcome is ``fail``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcheck.engine.agents import make_env, resolve_nets
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import ProgressCallback, default_workers, threads_per_worker
from rlcheck.engine.runs import RunSpec
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.errors import UsageError
from rlcheck.nets import DEFAULT_HIDDEN
from rlcheck.nets.shapes import DoesNotFit
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.curves import Metric
from rlcheck.verdicts.outcomes import OUTCOMES, CellComparison, Outcome
from rlcheck.verdicts.reference import Moved, compare, load, write
from rlcheck.verdicts.study import StudyResult, run_study

BASELINE = "plain"
CANDIDATE = "yours"


@dataclass(frozen=True)
class Probe:
    name: str
    env_id: str
    tests: str  # the part of an agent a failure points at
    metric: Metric
    steps: int
    warmup: int = 100
    eval_every: int = 50
    eval_episodes: int = 1

    def cell(self, algo: str) -> Cell:
        return Cell(algo, self.env_id, self.steps, self.warmup, self.eval_every, self.eval_episodes, self.metric)


# Budgets: the plain nets have learned each probe well within them (tests/test_check.py
# and benchmarks/test_probes.py train them and assert it), and so have correct nets of the
# baseline's size with other activations. That decides `track`'s: TD3 dips there before it
# learns, and with a Tanh, SiLU or ELU MLP it climbs out only near step 900, past the plain
# net's 400. At 600 steps such nets are judged mid-climb: "slower" on most seed sets, and
# failed where a seed falls back late (benchmarks/validity.py, design sets 31000-36000).
PROBE_SUITE: tuple[Probe, ...] = (
    Probe("constant", "rlcheck/ConstantReward-v0", "value fitting and the optimiser", "value_error", 600),
    Probe(
        "observed",
        "rlcheck/ObservedReward-v0",
        "the critic's observation path (states that differ within a batch)",
        "value_error",
        600,
        eval_episodes=10,
    ),
    Probe(
        "delayed",
        "rlcheck/DelayedReward-v0",
        "discounting and bootstrapping through a non-terminal step",
        "value_error",
        600,
    ),
    Probe(
        "action",
        "rlcheck/ActionReward-v0",
        "the policy gradient dQ/da through the critic, with identical states in a batch",
        "return",
        600,
    ),
    Probe(
        "track",
        "rlcheck/TrackObservation-v0",
        "policy and critic together: a state-dependent action, states that differ in a batch",
        "return",
        1200,
        eval_episodes=10,
    ),
    Probe(
        "random",
        RANDOM_ENV_ID,
        "the policy gradient through the critic over 30-step episodes (the BatchNorm blog's env)",
        "return",
        1000,
        warmup=250,
    ),
)
PROBES_BY_NAME = {p.name: p for p in PROBE_SUITE}
PROBES_BY_ENV = {p.env_id: p for p in PROBE_SUITE}


@dataclass(frozen=True)
class NetUnderTest:
    """The user's networks: one factory for both, or separate actor and critic factories,
    and optionally an actor per algorithm (CleanRL's TD3 and SAC actors are different classes)."""

    actor: str
    critic: str
    td3_actor: str | None = None
    sac_actor: str | None = None
    baseline: str = BASELINE  # what it is compared with; a side not given is this net too

    @classmethod
    def of(
        cls,
        net: str | None = None,
        actor_net: str | None = None,
        critic_net: str | None = None,
        td3_actor_net: str | None = None,
        sac_actor_net: str | None = None,
        baseline: str | None = None,
    ) -> NetUnderTest:
        base = baseline or BASELINE
        if net and (actor_net or critic_net or td3_actor_net or sac_actor_net):
            raise UsageError(
                "give either --net or --actor-net/--critic-net (and --td3-actor-net/--sac-actor-net), not both"
            )
        if net:
            return cls(net, net, baseline=base)
        if actor_net or critic_net or td3_actor_net or sac_actor_net:
            # One side given: the other is the baseline's, so only the given one is judged.
            return cls(actor_net or base, critic_net or base, td3_actor_net, sac_actor_net, base)
        raise UsageError("no network to check: give --net package.module:function (or --actor-net/--critic-net)")

    def actor_for(self, algo: str) -> str:
        return {"td3": self.td3_actor, "sac": self.sac_actor}.get(algo) or self.actor

    @property
    def per_algo(self) -> bool:
        return self.td3_actor is not None or self.sac_actor is not None

    @property
    def label(self) -> str:
        if self.per_algo:
            actors = ", ".join(f"{a} actor {self.actor_for(a)}" for a in ("td3", "sac"))
            return f"{actors}, critic {self.critic}"
        return self.actor if self.actor == self.critic else f"actor {self.actor}, critic {self.critic}"


def fitting_algos(
    net: NetUnderTest,
    algos: Sequence[str],
    env_id: str,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    actor_output: str = "auto",
) -> tuple[tuple[str, ...], list[str]]:
    """The algorithms the user's actor serves (a deterministic actor runs TD3, a Gaussian one SAC,
    a raw one both), and one line per network saying what rlcheck detected, or why an
    algorithm is skipped. Raises UsageError if none fits, or for a module rlcheck cannot take."""
    fits, lines = [], []
    base = net.baseline
    if net.critic == base and all(net.actor_for(algo) == base for algo in algos):
        raise UsageError(f"the network to check is the baseline ({base}) itself; give your own factory")
    with make_env(env_id) as env:
        for algo in algos:
            if net.actor_for(algo) == base and net.critic == base:
                lines.append(f"{algo} skipped: none of your networks is for {algo.upper()} (--{algo}-actor-net)")
                continue
            if base != BASELINE:
                try:
                    resolve_nets(RunSpec(algo, base, 0, env_id, hidden=tuple(hidden), actor_output=actor_output), env)
                except DoesNotFit as exc:
                    lines.append(f"{algo} skipped: the baseline: {exc}")
                    continue
            spec = RunSpec(algo, CANDIDATE, 0, env_id, hidden=tuple(hidden), actor_net=net.actor_for(algo),
                           critic_net=net.critic, actor_output=actor_output)  # fmt: skip
            try:
                actor, critic = resolve_nets(spec, env)
            except DoesNotFit as exc:
                lines.append(f"{algo} skipped: {exc}")
                continue
            fits.append(algo)
            for role, name, resolved in (
                ("actor", spec.actor_net_name, actor),
                ("critic", spec.critic_net_name, critic),
            ):
                if name != base:
                    lines.append(f"{algo} {role} {name}: {resolved.shape.describe()}")
    if not fits:
        raise UsageError(
            "; ".join(lines) + "; give an actor for an algorithm it serves (--td3-actor-net / --sac-actor-net)"
        )
    return tuple(fits), list(dict.fromkeys(lines))


def parse_probes(names: str | Sequence[str] | None) -> tuple[Probe, ...]:
    if names is None or names == "all":
        return PROBE_SUITE
    chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in chosen if n not in PROBES_BY_NAME]
    if unknown or not chosen:
        raise UsageError(
            f"unknown probe {', '.join(map(repr, unknown)) or '(none given)'}: choose from "
            f"{', '.join(PROBES_BY_NAME)} or 'all'"
        )
    return tuple(PROBES_BY_NAME[n] for n in chosen)


def check_config(
    net: NetUnderTest,
    algos: Sequence[str] = ("td3", "sac"),
    probes: Sequence[Probe] = PROBE_SUITE,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    max_seeds: int | None = None,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    device: str = "cpu",
    workers: int | None = None,
    actor_output: str = "auto",
    refuse_frozen: bool = False,
    slower_budget: float = 3.0,
) -> StudyConfig:
    workers = workers or default_workers()
    split = () if net.actor == net.critic and not net.per_algo else ((CANDIDATE, net.actor, net.critic),)
    candidate = net.actor if not split else CANDIDATE
    algo_actors = tuple((a, net.actor_for(a)) for a in algos if net.per_algo)
    if candidate == net.baseline:
        raise UsageError(f"the network to check is the baseline ({net.baseline}) itself; give your own factory")
    return StudyConfig(
        cells=tuple(p.cell(algo) for p in probes for algo in algos),
        nets=(net.baseline, candidate),
        baseline=net.baseline,
        seeds=tuple(seeds),
        max_seeds=max_seeds if max_seeds is not None else 3 * len(seeds),
        hidden=tuple(hidden),
        device=device,
        workers=workers,
        threads=threads_per_worker(workers),
        split_nets=split,
        algo_actors=algo_actors,
        actor_output=actor_output,
        refuse_frozen=refuse_frozen,
        slower_budget=slower_budget,
        stop_when_flagged=True,  # a failing check returns as soon as it knows it fails
    )


@dataclass
class CheckResult:
    """The gate's answer. Its ``outcome``, one word for the whole check as for each cell
    (rlcheck.verdicts.outcomes.Outcome): ``fail`` if any cell fails, else ``undecided`` if any cell is,
    else ``slower`` if any cell is, else ``pass``. A check passes unless it fails; with
    ``strict``, only a ``pass`` passes."""

    net: NetUnderTest
    study: StudyResult
    strict: bool = False
    # Against a committed reference (rlcheck.verdicts.reference): the cells whose outcome moved, and a note
    moved: list[Moved] = field(default_factory=list)
    reference_note: str = ""
    reference_missing: bool = False  # no reference yet: written now, and the check fails until it is committed

    @property
    def baseline_words(self) -> str:
        base = self.net.baseline
        return "the plain baseline" if base == BASELINE else f"the baseline {base}"

    def cells_with(self, outcome: Outcome) -> list[CellComparison]:
        return [c for c in self.study.comparisons if c.outcome == outcome]

    @property
    def failures(self) -> list[CellComparison]:
        return self.cells_with("fail")

    @property
    def outcome(self) -> Outcome:
        return next((o for o in reversed(OUTCOMES) if self.cells_with(o)), "pass")

    @property
    def passed(self) -> bool:
        if self.reference_missing or any(m.worse for m in self.moved):
            return False
        return self.outcome == "pass" or (self.outcome != "fail" and not self.strict)

    def check_reference(self, path: Path, regen: bool = False) -> None:
        """Compare every cell's outcome with the reference at `path`; write it where there is none
        (the check then fails, so that a reference is committed on purpose) or with `regen`."""
        cells = {c.cell.label: c.outcome for c in self.study.comparisons}
        reference = None if regen else load(path)
        if reference is None:
            write(path, self.net.label, self.net.baseline, cells, self.study.versions)
            self.reference_missing = not regen
            self.reference_note = (
                f"REFERENCE: wrote {path} from this check" if regen
                else f"REFERENCE: there was none at {path}; wrote it from this check -- commit it, then rerun"
            )  # fmt: skip
            return
        self.moved = compare(reference, cells)
        worse = [m for m in self.moved if m.worse]
        if worse:
            self.reference_note = f"REFERENCE: {len(worse)} cell(s) got worse than {path}: " + "; ".join(
                m.describe() for m in worse
            )
        elif self.moved:
            self.reference_note = (
                f"REFERENCE: {len(self.moved)} cell(s) got better than {path}: "
                + "; ".join(m.describe() for m in self.moved)
                + " (regenerate it with --regen-reference to keep the gain)"
            )
        else:
            self.reference_note = f"REFERENCE: every cell as in {path}"

    def report(self) -> str:
        """PASS, SLOWER, UNDECIDED, or FAIL, with one plain-words line per cell that is not a pass
        (and, against a reference, what moved)."""
        return self._outcome_report() + (f"\n{self.reference_note}" if self.reference_note else "")

    def _outcome_report(self) -> str:
        outcome = self.outcome
        if outcome == "pass":
            return (
                f"PASS: {self.net.label} learns every probe like {self.baseline_words}: in every cell, a drop "
                "beyond the tolerance and excess instability are ruled out at 95% confidence."
            )
        if outcome == "fail":
            lines = [f"FAIL: {self.net.label} breaks learning in {len(self.failures)} (algo, probe) cell(s):"]
            lines += [f"  - {self.finding(c)}" for c in self.failures]
            return "\n".join(lines) + self.study.diagnoses_report()
        strict = " (--strict: that fails the check)" if self.strict else " (the check passes; --strict fails it)"
        undecided, slower = self.cells_with("undecided"), self.cells_with("slower")
        if outcome == "undecided":
            lines = [
                f"UNDECIDED: no cell of {self.net.label} failed, but the seeds could not decide "
                f"{len(undecided)} cell(s){strict}:"
            ]
        else:
            lines = [
                f"SLOWER: {self.net.label} learns every probe, more slowly than {self.baseline_words} in "
                f"{len(slower)} cell(s){strict}:"
            ]
        for c in undecided + slower:
            note = self.study.still_learning(c)
            lines.append(f"  - {c.algo} on {PROBES_BY_ENV[c.cell.env_id].name}: {c.outcome}: {c.reason}{note}")
        return "\n".join(lines) + self.study.diagnoses_report()

    def to_dict(self) -> dict[str, Any]:
        """The gate's answer for ``results.json``: the outcome, each failure's finding, every cell's outcome."""
        return {
            "net": self.net.label,
            "outcome": self.outcome,
            "strict": self.strict,
            "passed": self.passed,
            "findings": [self.finding(c) for c in self.failures],
            "undecided": [c.cell.label for c in self.cells_with("undecided")],
            "slower": [c.cell.label for c in self.cells_with("slower")],
            "cells": {c.cell.label: c.outcome for c in self.study.comparisons},
            "reference": {
                "note": self.reference_note,
                "moved": [{"cell": m.cell, "was": m.was, "now": m.now} for m in self.moved],
            },
        }

    def finding(self, comparison: CellComparison) -> str:
        """What failed, in plain words, with how far from optimal."""
        probe = PROBES_BY_ENV[comparison.cell.env_id]
        s = comparison.decisive
        where = f"{comparison.cell.algo} on {probe.name} ({comparison.cell.env_name})"
        if probe.metric == "value_error":
            measured = (
                f"critic error |Q - true Q| {-s.candidate_mean:.3f} vs {-s.baseline_mean:.3f} for "
                f"{self.baseline_words} (0 is perfect)"
            )
        else:
            optimum = next(r.optimal_return for r in self.study.runs if r.spec.env_id == comparison.cell.env_id)
            measured = f"return {s.candidate_mean:.2f} vs {s.baseline_mean:.2f} for {self.baseline_words}"
            if optimum is not None:
                measured += f", optimal {optimum:g} ({abs(optimum - s.candidate_mean):.2f} short)"
        finding = f"{where}: {s.verdict}. It tests {probe.tests}. Your net: {measured}. Evidence: {comparison.reason}."
        return finding + self.study.still_learning(comparison)


def run_check(
    config: StudyConfig,
    net: NetUnderTest,
    progress: ProgressCallback | None = None,
    log_path: Path | None = None,
    cache: RunCache | None = None,
    strict: bool = False,
    resume: bool = False,
    notify: Callable[[str], None] | None = None,
) -> CheckResult:
    """Train and compare on every (algo, probe) cell (the study checks every factory at the door
    first); for each algorithm that fails, diagnose the user's net on its first failing probe (and
    on its first undecided one, kept where a mechanism was found).
    With a `cache`, baseline runs it holds are reused (rlcheck.engine.cache); with `resume`, so are the
    runs already in `log_path`. The door's notes go to `notify` before training starts."""
    study = run_study(config, log_path, progress, resume=resume, cache=cache, notify=notify)
    study.diagnose_failures()
    return CheckResult(net, study, strict)
