"""The multi-seed study: every (algo, net) on several seeds, each net compared with a baseline.

Seeds are added while a verdict is inconclusive (up to ``max_seeds``). Looking at the
data more than once inflates false alarms, so each look tests at ``alpha / looks``
(Bonferroni over the planned looks), which keeps the overall error rate at ``alpha``.
"""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

import numpy as np

from rlcheck.algos import Agent
from rlcheck.cache import RunCache
from rlcheck.diagnose import Diagnosis, diagnose_run
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.errors import UsageError
from rlcheck.gradients import check_gradients
from rlcheck.nets import DEFAULT_HIDDEN, VARIANTS
from rlcheck.runner import ProgressCallback, kept_workers, run_all
from rlcheck.seedstack import SeedStack
from rlcheck.stats import FLAGGED, Comparison, Group, compare, practical_margin
from rlcheck.training import RunResult, RunSpec, build_agent, env_dims, make_env

Metric = Literal["return", "value_error"]


@dataclass(frozen=True)
class Cell:
    """One (algorithm, environment) pairing: its training budget and what it is judged on.

    ``metric`` is ``"return"`` (evaluation return, higher is better) or ``"value_error"``
    (mean |Q - true Q| of the critic on an environment that knows its Q, lower is better).
    """

    algo: str
    env_id: str = RANDOM_ENV_ID
    steps: int = 2000
    warmup: int = 250
    eval_every: int = 100
    eval_episodes: int = 1
    metric: Metric = "return"

    @property
    def env_name(self) -> str:
        return self.env_id.split("/")[-1]

    @property
    def label(self) -> str:
        return f"{self.algo} {self.env_name}"


@dataclass(frozen=True)
class StudyConfig:
    cells: tuple[Cell, ...] = (Cell("td3"), Cell("sac"))
    nets: tuple[str, ...] = ("plain", "batchnorm")
    baseline: str = "plain"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_seeds: int = 15  # seeds per (cell, net) that an inconclusive verdict may grow to
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    device: str = "cpu"
    workers: int = 1
    threads: int = 1
    alpha: float = 0.05
    # (label, actor factory, critic factory) for a net whose actor and critic differ
    split_nets: tuple[tuple[str, str, str], ...] = ()
    # (algo, actor factory): the split net's actor for that algorithm, where it has one per algorithm
    algo_actors: tuple[tuple[str, str], ...] = ()
    # A gate's answer is fixed by its first flagged comparison: add no more seeds after one.
    stop_when_flagged: bool = False
    # Refuse a user's net with frozen parameters (requires_grad=False) instead of noting them.
    refuse_frozen: bool = False
    # How the actor net's output is read: rlcheck.shapes.ACTOR_OUTPUTS ("auto" detects it).
    actor_output: str = "auto"

    @property
    def algos(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.algo for c in self.cells))

    @property
    def looks(self) -> int:
        return math.ceil(self.max_seeds / len(self.seeds))

    @property
    def alpha_per_look(self) -> float:
        return self.alpha / self.looks

    def spec(self, cell: Cell, net: str, seed: int) -> RunSpec:
        actor, critic = next(((a, c) for label, a, c in self.split_nets if label == net), (None, None))
        if actor is not None:
            actor = dict(self.algo_actors).get(cell.algo, actor)
        modes, recipe = "naive", "standard"
        if net in VARIANTS:
            variant = VARIANTS[net]
            actor, critic, modes, recipe = variant.actor, variant.critic, variant.modes, variant.recipe
        return RunSpec(
            algo=cell.algo,
            net=net,
            seed=seed,
            env_id=cell.env_id,
            steps=cell.steps,
            warmup=cell.warmup,
            eval_every=cell.eval_every,
            eval_episodes=cell.eval_episodes,
            hidden=self.hidden,
            device=self.device,
            threads=self.threads,
            actor_net=actor,
            critic_net=critic,
            modes=modes,
            recipe=recipe,
            actor_output=self.actor_output,
        )


@dataclass
class CellComparison:
    cell: Cell
    baseline: str
    candidate: str
    stats: Comparison

    @property
    def algo(self) -> str:
        return self.cell.algo

    def to_dict(self) -> dict[str, Any]:
        return {
            "algo": self.cell.algo,
            "env": self.cell.env_id,
            "metric": self.cell.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "n_seeds": self.stats.n_candidate,
            "p_value": self.stats.welch_p,
            "verdict": self.stats.verdict,
            "reason": self.stats.reason,
            **self.stats.to_dict(),
        }


@dataclass
class StudyResult:
    config: StudyConfig
    runs: list[RunResult]
    comparisons: list[CellComparison]
    versions: dict[str, str] = field(default_factory=lambda: versions())
    # "algo/net" -> (the run diagnosed, its diagnosis), for flagged nets (see `diagnose_failures`)
    diagnoses: dict[str, tuple[RunSpec, Diagnosis]] = field(default_factory=dict)

    def diagnose_failures(self) -> None:
        """Say why: for each flagged (algo, net), the mechanisms (rlcheck.diagnose) measured on its
        first seed trained on the first flagged cell -- as it was trained for the study, or, where
        that measurement was not kept (a run resumed from a log), trained again."""
        for comparison in self.comparisons:
            key = f"{comparison.algo}/{comparison.candidate}"
            if comparison.stats.verdict in FLAGGED and key not in self.diagnoses:
                spec = self.config.spec(comparison.cell, comparison.candidate, self.config.seeds[0])
                measured = next((r.diagnosis for r in self.runs if r.spec == spec and r.diagnosis is not None), None)
                self.diagnoses[key] = (spec, measured or diagnose_run(spec))

    def diagnoses_report(self) -> str:
        lines = []
        for key, (spec, diagnosis) in self.diagnoses.items():
            lines.append(
                f"\nWhy {key} fails (seed {spec.seed} trained on {spec.env_id} for {spec.steps} steps, measured):"
            )
            lines += [f"  {line}" for line in diagnosis.report().splitlines()]
        return "\n".join(lines)

    def runs_of(self, cell: Cell, net: str) -> list[RunResult]:
        return [r for r in self.runs if _in_cell(r, cell) and r.spec.net == net]

    def still_learning(self, comparison: CellComparison) -> str:
        """A note for a net that is not broken but slow: flagged ``underperforms`` because it was
        still improving when the budget ran out, on (nearly) every seed -- what a net smaller or
        shallower than the baseline does. Empty otherwise: an erratic net's ups and downs are no trend."""
        s = comparison.stats
        starts, ends = self.last_third(comparison.cell, comparison.candidate)
        improving = sum(end > start for start, end in zip(starts, ends, strict=True))
        if s.verdict != "underperforms" or improving < 0.8 * len(starts) or fmean(ends) - fmean(starts) <= s.margin:
            return ""
        what, sign = ("critic error", -1.0) if comparison.cell.metric == "value_error" else ("return", 1.0)

        def mean(values: list[float]) -> str:
            return f"{sign * fmean(values):.2f}"

        base_starts, base_ends = self.last_third(comparison.cell, comparison.baseline)
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

    def last_third(self, cell: Cell, net: str) -> tuple[list[float], list[float]]:
        """Per seed, the net's measure (higher better: value errors negated) where the last
        third of training starts, and at its end: how far it was still moving when it stopped."""
        starts, ends = [], []
        for run in self.runs_of(cell, net):
            curve = _measures(run, cell.metric)[0]
            first = next(i for i, step in enumerate(run.eval_steps) if step >= run.spec.steps * 2 / 3)
            starts.append(curve[first])
            ends.append(curve[-1])
        return starts, ends

    def to_dict(self) -> dict[str, Any]:
        config = self.config
        return {
            "config": {**asdict(config), "looks": config.looks, "alpha_per_look": config.alpha_per_look},
            "versions": self.versions,
            "seeds": {
                f"{c.algo}/{c.env_id}/{n}": [r.spec.seed for r in self.runs_of(c, n)]
                for c in config.cells
                for n in config.nets
            },
            "runs": [r.to_dict() for r in self.runs],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "diagnoses": {key: {"run": spec.to_dict(), **asdict(d)} for key, (spec, d) in self.diagnoses.items()},
        }


def _in_cell(run: RunResult, cell: Cell) -> bool:
    return run.spec.algo == cell.algo and run.spec.env_id == cell.env_id


def processor() -> str:
    """The processor's model: bit-identical runs need the same one (and the same versions)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform(), "processor": processor()}
    for package in ("rlcheck", "torch", "gymnasium", "numpy", "scipy"):
        module = sys.modules.get(package)
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # imported from a source tree, not pip-installed
            found[package] = str(getattr(module, "__version__", "not installed"))
    return found


def check_config(config: StudyConfig) -> None:
    """Every check that can fail before training starts, so no run is wasted on a typo."""
    noticed: set[tuple[str, str]] = set()
    noticed_frozen: set[str] = set()
    built: set[tuple[RunSpec, tuple[int, int]]] = set()  # an agent is checked once per shape, not per cell
    if config.baseline not in config.nets:
        raise UsageError(f"baseline net {config.baseline!r} is not among --nets {','.join(config.nets)}")
    if len(config.nets) > 1 and len(config.seeds) < 2:
        raise UsageError(
            f"--seeds {len(config.seeds)}: comparing nets needs at least 2 seeds per net (give e.g. --seeds 5); "
            "to train one net alone, give it alone (--nets plain)"
        )
    if len(set(config.seeds)) != len(config.seeds):
        raise UsageError("--seeds lists a seed twice; give distinct seeds")
    if config.max_seeds < len(config.seeds):
        raise UsageError(f"--max-seeds {config.max_seeds} is below the {len(config.seeds)} seeds given")
    for cell in config.cells:
        if cell.steps <= cell.warmup:
            raise UsageError(
                f"--steps {cell.steps} leaves no training after the {cell.warmup}-step warm-up; "
                f"give --steps above {cell.warmup} or lower --warmup"
            )
        if cell.eval_every < 1 or cell.eval_episodes < 1:
            raise UsageError("--eval-every and --eval-episodes must be at least 1")
        with make_env(cell.env_id) as env:
            shape = env_dims(env)
            for net in config.nets:
                spec = config.spec(cell, net, 0)
                if (spec.group_key(), shape) in built:
                    continue
                built.add((spec.group_key(), shape))
                # Two seeds, as the runs will have them: a net that cannot be batched across seeds says so here, once.
                agent = build_agent(spec, env, seeds=[0, 1])
                names = {"actor": spec.actor_net_name, "critic": spec.critic_net_name}
                notes = check_gradients(agent, *shape, names, config.refuse_frozen)
                _notice_unfused(net, agent, noticed)
                for note in notes:
                    if note not in noticed_frozen:
                        noticed_frozen.add(note)
                        print(f"rlcheck: note: {note}", file=sys.stderr)


def _notice_unfused(net: str, agent: Agent, noticed: set[tuple[str, str]]) -> None:
    """Say once per net and role why its seeds are not fused, and what that costs."""
    for role, module in (("actor", agent.actor), ("critic", agent.q1)):
        stack = next(m for m in module.modules() if isinstance(m, SeedStack))
        if stack.strategy == "fused" or (net, role) in noticed:
            continue
        noticed.add((net, role))
        if stack.fallback_reason:
            print(
                f"rlcheck: note: the {role} of net {net!r} cannot be batched across seeds "
                f"({stack.fallback_reason}); its seeds train one after another (slower, same results)",
                file=sys.stderr,
            )
        else:  # vmap: correct, but a user who can write the net as a chain gets a faster gate
            print(
                f"rlcheck: note: the {role} of net {net!r} is batched with torch.func.vmap, about 1.6x "
                "slower than fused layers: its forward is not a plain chain of Linear, BatchNorm1d, "
                "LayerNorm and element-wise activations (see rlcheck.fusion.as_chain)",
                file=sys.stderr,
            )


def _measures(run: RunResult, metric: Metric) -> tuple[list[float], float, float]:
    """(curve, score, instability) with higher always better: value errors are negated."""
    if metric == "return":
        return run.eval_returns, run.score, run.instability
    if run.eval_value_errors is None:
        raise UsageError(f"env {run.spec.env_id!r} does not know its Q values; judge it on metric 'return'")
    curve = [-e for e in run.eval_value_errors]
    return (curve, *run.curve_measures(curve))


def _compare_cell(config: StudyConfig, results: list[RunResult], cell: Cell) -> list[CellComparison]:
    def group(net: str) -> tuple[Group, list[list[float]]]:
        measured = [_measures(r, cell.metric) for r in results if _in_cell(r, cell) and r.spec.net == net]
        return Group.of([m[1] for m in measured], [m[2] for m in measured]), [m[0] for m in measured]

    base, base_curves = group(config.baseline)
    initial = float(np.mean([curve[0] for curve in base_curves]))
    if cell.metric == "value_error":
        best = 0.0  # a perfect critic
    else:
        optimum = next(r.optimal_return for r in results if _in_cell(r, cell))
        best = optimum if optimum is not None else float(np.max(np.mean(base_curves, axis=0)))
    margin = practical_margin(initial, best)
    comparisons = []
    for net in config.nets:
        if net != config.baseline:
            candidate, _ = group(net)
            stats = compare(base, candidate, margin, config.alpha_per_look)
            comparisons.append(CellComparison(cell, config.baseline, net, stats))
    return comparisons


def run_study(
    config: StudyConfig,
    log_path: Path | None = None,
    progress: ProgressCallback | None = None,
    resume: bool = False,
    cache: RunCache | None = None,
) -> StudyResult:
    """Run the study, growing the seeds of a cell while any of its verdicts is inconclusive."""
    check_config(config)
    seeds = {cell: list(config.seeds) for cell in config.cells}
    pending = list(config.cells)
    results: list[RunResult] = []
    comparisons: dict[Cell, list[CellComparison]] = {}
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
            candidates = [net for net in config.nets if net != config.baseline]  # the nets a failure is explained for
            results += run_all(specs, config.workers, log_path, progress, resume, cache, diagnose=candidates)
            still_open = []
            for cell in pending:
                comparisons[cell] = _compare_cell(config, results, cell)
                undecided = any(c.stats.verdict == "inconclusive" for c in comparisons[cell])
                if undecided and len(seeds[cell]) < config.max_seeds:
                    start = max(seeds[cell]) + 1
                    extra = min(len(config.seeds), config.max_seeds - len(seeds[cell]))
                    seeds[cell] += list(range(start, start + extra))
                    still_open.append(cell)
            pending = still_open
            if config.stop_when_flagged and any(c.stats.verdict in FLAGGED for cs in comparisons.values() for c in cs):
                pending = []  # the verdicts still open stay "inconclusive", with the seeds they would need
    ordered = [
        r for cell in config.cells for net in config.nets for r in results if _in_cell(r, cell) and r.spec.net == net
    ]
    return StudyResult(config, ordered, [c for cell in config.cells for c in comparisons[cell]])
