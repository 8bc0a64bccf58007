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
from typing import Any, Literal

from rlcheck.algos import actor_kind_of
from rlcheck.engine.agents import make_env, resolve_nets
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import ProgressCallback, default_workers, threads_per_worker
from rlcheck.engine.runs import RunSpec
from rlcheck.envs import RANDOM_ENV_LIT_ID, TIME_LIMIT_ID
from rlcheck.errors import UsageError
from rlcheck.nets import DEFAULT_HIDDEN
from rlcheck.nets.shapes import DoesNotFit
from rlcheck.requests import CheckRequest, max_seeds_for
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
    tests: str  # the part of the networks a failure points at
    metric: Metric
    steps: int
    warmup: int = 100
    eval_every: int = 50
    eval_episodes: int = 1
    in_an_agent: str = ""  # the part of a whole agent (rlcheck check --agent) a failure points at

    def cell(self, algo: str) -> Cell:
        return Cell(algo, self.env_id, self.steps, self.warmup, self.eval_every, self.eval_episodes, self.metric)


# Budgets: the plain nets have learned each probe well within them (tests/test_check.py
# and benchmarks/test_probes.py train them and assert it), and so have correct nets of the
# baseline's size with other activations. That decides `track`'s: TD3 dips there before it
# learns, and with a Tanh, SiLU or ELU MLP it climbs out only near step 900, past the plain
# net's 400. At 600 steps such nets are judged mid-climb: "slower" on most seed sets, and
# failed where a seed falls back late (benchmarks/validity.py, design sets 31000-36000).
PROBE_SUITE: tuple[Probe, ...] = (
    Probe(
        "constant",
        "rlcheck/ConstantReward-v0",
        "value fitting and the optimiser",
        "value_error",
        600,
        in_an_agent="the value fit and the optimiser, and the TD target stopping at a terminal state",
    ),
    Probe(
        "observed",
        "rlcheck/ObservedReward-v0",
        "the critic's observation path (states that differ within a batch)",
        "value_error",
        600,
        eval_episodes=10,
        in_an_agent="the critic's observation path",
    ),
    Probe(
        "delayed",
        "rlcheck/DelayedReward-v0",
        "discounting and bootstrapping through a non-terminal step",
        "value_error",
        600,
        in_an_agent="discounting, bootstrapping through a non-terminal step, and the target network's updates",
    ),
    Probe(
        "action",
        "rlcheck/ActionReward-v0",
        "the policy gradient dQ/da through the critic, with identical states in a batch",
        "return",
        600,
        in_an_agent="the actor's update: the policy gradient through the critic, and the actor loss's sign",
    ),
    Probe(
        "track",
        "rlcheck/TrackObservation-v0",
        "policy and critic together: a state-dependent action, states that differ in a batch",
        "return",
        1200,
        eval_episodes=10,
        in_an_agent="policy and critic together on a state-dependent action",
    ),
    Probe(
        "random",
        RANDOM_ENV_LIT_ID,
        "the policy gradient through the critic over 30-step episodes (the BatchNorm blog's env, its constant state 1)",
        "return",
        1000,
        warmup=250,
        in_an_agent="the whole loop over 30-step episodes: acting, storing, updating",
    ),
)
# An agent owns its TD target, so its suite adds the probe that sees how it ends an episode at a
# time limit; a network check leaves it out (rlcheck's own loop owns terminal handling, and no
# network changes it). Its budget: the plain TD3's critic is still settling there at 600 steps.
TIME_LIMIT_PROBE = Probe(
    "time-limit",
    TIME_LIMIT_ID,
    "the TD target at a time limit (agents only)",
    "value_error",
    1200,
    in_an_agent="the TD target at a time limit: bootstrapping through a truncation, stopping at a termination",
)
AGENT_SUITE: tuple[Probe, ...] = (*PROBE_SUITE, TIME_LIMIT_PROBE)
PROBES_BY_NAME = {p.name: p for p in AGENT_SUITE}
PROBES_BY_ENV = {p.env_id: p for p in AGENT_SUITE}


@dataclass(frozen=True)
class NetUnderTest:
    """The user's networks: one factory for both, or separate actor and critic factories,
    and optionally an actor per kind (CleanRL's TD3 and SAC actors are different classes): a
    deterministic one for the algorithms that take one, a Gaussian one for the others."""

    actor: str
    critic: str
    deterministic_actor: str | None = None
    gaussian_actor: str | None = None
    baseline: str = BASELINE  # what it is compared with; a side not given is this net too
    agent: str | None = None  # a user's whole agent ('package.module:make_agent') instead of networks

    @classmethod
    def of(cls, request: CheckRequest | str | None = None, **nets: str | None) -> NetUnderTest:
        """From a check request; or, for short, from its network fields (``NetUnderTest.of("pkg:make")``,
        ``NetUnderTest.of(critic_net="pkg:Critic")``, ``NetUnderTest.of(**{"net": "pkg:make"})``)."""
        if not isinstance(request, CheckRequest):
            request = CheckRequest.of(None, **({"net": request} if request is not None else {}), **nets)
        assert isinstance(request, CheckRequest)
        base = request.baseline or BASELINE
        net, actor, critic = request.net, request.actor_net, request.critic_net
        if request.agent:
            if net or actor or critic or request.deterministic_actor_net or request.gaussian_actor_net:
                raise UsageError("give either --agent or networks (--net, --actor-net, ...), not both")
            if request.baseline:
                raise UsageError("--baseline compares networks; an agent is compared with rlcheck's agent (--like)")
            return cls(request.agent, request.agent, agent=request.agent)
        deterministic, gaussian = request.deterministic_actor_net, request.gaussian_actor_net
        if net and (actor or critic or deterministic or gaussian):
            raise UsageError(
                "give either --net or --actor-net/--critic-net (and --deterministic-actor-net/--gaussian-actor-net), "
                "not both"
            )
        if net:
            return cls(net, net, baseline=base)
        if actor or critic or deterministic or gaussian:
            # One side given: the other is the baseline's, so only the given one is judged.
            return cls(actor or base, critic or base, deterministic, gaussian, base)
        raise UsageError("no network to check: give --net package.module:function (or --actor-net/--critic-net)")

    def actor_for(self, algo: str) -> str:
        kind = actor_kind_of(algo)
        return (self.deterministic_actor if kind == "deterministic" else self.gaussian_actor) or self.actor

    @property
    def per_kind(self) -> bool:
        return self.deterministic_actor is not None or self.gaussian_actor is not None

    @property
    def label(self) -> str:
        if self.agent is not None:
            return f"agent {self.agent}"
        if self.per_kind:
            actors = ", ".join(
                f"{kind} actor {name or self.actor}"
                for kind, name in (("deterministic", self.deterministic_actor), ("Gaussian", self.gaussian_actor))
            )
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
                kind = actor_kind_of(algo)
                lines.append(
                    f"{algo} skipped: none of your networks is for {algo.upper()}, which takes a {kind} actor "
                    f"(--{kind}-actor-net)"
                )
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
            "; ".join(lines) + "; give an actor of the kind the algorithm takes (--deterministic-actor-net for td3, "
            "--gaussian-actor-net for sac and crossq)"
        )
    return tuple(fits), list(dict.fromkeys(lines))


def parse_probes(names: str | Sequence[str] | None, *, agent: bool = False) -> tuple[Probe, ...]:
    """The probes named (``"all"``: the whole suite; an agent's suite adds ``time-limit``)."""
    suite = AGENT_SUITE if agent else PROBE_SUITE
    if names is None or names == "all" or tuple(names) == ("all",):
        return suite
    chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not agent and TIME_LIMIT_PROBE.name in chosen:
        raise UsageError(
            f"probe {TIME_LIMIT_PROBE.name!r} is for agent checks (--agent): with networks, rlcheck's own loop "
            "ends the episodes and no network changes how; leave it out"
        )
    by_name = {p.name: p for p in suite}
    unknown = [n for n in chosen if n not in by_name]
    if unknown or not chosen:
        raise UsageError(
            f"unknown probe {', '.join(map(repr, unknown)) or '(none given)'}: choose from "
            f"{', '.join(by_name)} or 'all'"
        )
    return tuple(by_name[n] for n in chosen)


def check_config(
    net: NetUnderTest,
    algos: Sequence[str] = CheckRequest.algos,
    probes: Sequence[Probe] = PROBE_SUITE,
    seeds: Sequence[int] = CheckRequest.seeds,
    max_seeds: int | None = CheckRequest.max_seeds,
    hidden: Sequence[int] = CheckRequest.hidden,
    device: str = CheckRequest.device,
    workers: int | None = CheckRequest.workers,
    actor_output: str = CheckRequest.actor_output,
    refuse_frozen: bool = CheckRequest.refuse_frozen,
    slower_budget: float = CheckRequest.slower_budget,
    backend: str = CheckRequest.backend,
    ray_address: str | None = CheckRequest.ray_address,
    settings: tuple[tuple[str, float | int], ...] = (),
) -> StudyConfig:
    """The study a check runs: every (algo, probe) cell, the baseline and the user's net."""
    workers = workers or default_workers()
    split = () if net.actor == net.critic and not net.per_kind else ((CANDIDATE, net.actor, net.critic),)
    candidate = net.actor if not split and net.agent is None else CANDIDATE
    algo_actors = tuple((a, net.actor_for(a)) for a in algos if net.per_kind)
    if candidate == net.baseline:
        raise UsageError(f"the network to check is the baseline ({net.baseline}) itself; give your own factory")
    return StudyConfig(
        cells=tuple(p.cell(algo) for p in probes for algo in algos),
        nets=(net.baseline, candidate),
        baseline=net.baseline,
        seeds=tuple(seeds),
        max_seeds=max_seeds_for(max_seeds, seeds),
        hidden=tuple(hidden),
        device=device,
        workers=workers,
        threads=threads_per_worker(workers),
        split_nets=split,
        algo_actors=algo_actors,
        agents=((CANDIDATE, net.agent),) if net.agent is not None else (),
        settings=tuple(settings),
        actor_output=actor_output,
        refuse_frozen=refuse_frozen,
        slower_budget=slower_budget,
        backend=backend,
        ray_address=ray_address,
        stop_when_flagged=True,  # a failing check returns as soon as it knows it fails
    )


ReferenceState = Literal["", "written", "missing", "compared"]


@dataclass
class CheckResult:
    """The gate's answer. Its ``outcome``, one word for the whole check as for each cell
    (rlcheck.verdicts.outcomes.Outcome): ``fail`` if any cell fails, else ``undecided`` if any cell is,
    else ``slower`` if any cell is, else ``pass``. A check passes unless it fails; with
    ``strict``, only a ``pass`` passes. Numbers and outcomes only: rlcheck.front.words says them."""

    net: NetUnderTest
    study: StudyResult
    strict: bool = False
    # Against a committed reference (rlcheck.verdicts.reference): where it is, what happened to it
    # ("written" on request, "missing": written now, and the check fails until it is committed;
    # "compared"), and the cells whose outcome moved.
    reference_path: Path | None = None
    reference_state: ReferenceState = ""
    moved: list[Moved] = field(default_factory=list)

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
        if self.reference_state == "missing" or any(m.worse for m in self.moved):
            return False
        return self.outcome == "pass" or (self.outcome != "fail" and not self.strict)

    def check_reference(self, path: Path, regen: bool = False) -> None:
        """Compare every cell's outcome with the reference at `path`; write it where there is none
        (the check then fails, so that a reference is committed on purpose) or with `regen`."""
        cells = {c.cell.label: c.outcome for c in self.study.comparisons}
        reference = None if regen else load(path)
        self.reference_path = path
        if reference is None:
            write(path, self.net.label, self.net.baseline, cells, self.study.versions)
            self.reference_state = "written" if regen else "missing"
            return
        self.moved = compare(reference, cells)
        self.reference_state = "compared"

    def to_dict(self) -> dict[str, Any]:
        """The check's numbers and outcomes (rlcheck.front.words.check_dict adds the words)."""
        return {
            "net": self.net.label,
            "outcome": self.outcome,
            "strict": self.strict,
            "passed": self.passed,
            "undecided": [c.cell.label for c in self.cells_with("undecided")],
            "slower": [c.cell.label for c in self.cells_with("slower")],
            "cells": {c.cell.label: c.outcome for c in self.study.comparisons},
        }


def check_networks(
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
