"""The multi-seed study: every (algo, net) on several seeds, each net compared with a baseline.

Seeds are added while a verdict is inconclusive (up to ``max_seeds``). Looking at the
data more than once inflates false alarms, so each look tests at ``alpha / looks``
(Bonferroni over the planned looks), which keeps the overall error rate at ``alpha``.
"""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.errors import UsageError
from rlcheck.nets import DEFAULT_HIDDEN
from rlcheck.runner import ProgressCallback, run_all
from rlcheck.stats import Comparison, Group, compare, practical_margin
from rlcheck.training import RunResult, RunSpec, build_agent, make_env


@dataclass(frozen=True)
class StudyConfig:
    algos: tuple[str, ...] = ("td3", "sac")
    nets: tuple[str, ...] = ("plain", "batchnorm")
    baseline: str = "plain"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_seeds: int = 15  # seeds per (algo, net) that an inconclusive verdict may grow to
    env_id: str = RANDOM_ENV_ID
    steps: int = 2000
    warmup: int = 250
    eval_every: int = 100
    eval_episodes: int = 1
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    device: str = "cpu"
    workers: int = 1
    threads: int = 1
    alpha: float = 0.05

    @property
    def looks(self) -> int:
        return math.ceil(self.max_seeds / len(self.seeds))

    @property
    def alpha_per_look(self) -> float:
        return self.alpha / self.looks

    def spec(self, algo: str, net: str, seed: int) -> RunSpec:
        return RunSpec(
            algo=algo,
            net=net,
            seed=seed,
            env_id=self.env_id,
            steps=self.steps,
            warmup=self.warmup,
            eval_every=self.eval_every,
            eval_episodes=self.eval_episodes,
            hidden=self.hidden,
            device=self.device,
            threads=self.threads,
        )


@dataclass
class AlgoComparison:
    algo: str
    baseline: str
    candidate: str
    stats: Comparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "algo": self.algo,
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
    comparisons: list[AlgoComparison]
    versions: dict[str, str] = field(default_factory=lambda: versions())

    def runs_of(self, algo: str, net: str) -> list[RunResult]:
        return [r for r in self.runs if r.spec.algo == algo and r.spec.net == net]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": {**asdict(self.config), "looks": self.config.looks, "alpha_per_look": self.config.alpha_per_look},
            "versions": self.versions,
            "seeds": {
                f"{a}/{n}": [r.spec.seed for r in self.runs_of(a, n)]
                for a in self.config.algos
                for n in self.config.nets
            },
            "runs": [r.to_dict() for r in self.runs],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("rlcheck", "torch", "gymnasium", "numpy", "scipy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def check_config(config: StudyConfig) -> None:
    """Every check that can fail before training starts, so no run is wasted on a typo."""
    if config.baseline not in config.nets:
        raise UsageError(f"baseline net {config.baseline!r} is not among --nets {','.join(config.nets)}")
    if len(set(config.seeds)) != len(config.seeds):
        raise UsageError("--seeds lists a seed twice; give distinct seeds")
    if config.max_seeds < len(config.seeds):
        raise UsageError(f"--max-seeds {config.max_seeds} is below the {len(config.seeds)} seeds given")
    if config.steps <= config.warmup:
        raise UsageError(
            f"--steps {config.steps} leaves no training after the {config.warmup}-step warm-up; "
            f"give --steps above {config.warmup} or lower --warmup"
        )
    if config.eval_every < 1 or config.eval_episodes < 1:
        raise UsageError("--eval-every and --eval-episodes must be at least 1")
    env = make_env(config.env_id)
    generator = torch.Generator().manual_seed(0)
    for algo in config.algos:
        for net in config.nets:
            build_agent(replace(config.spec(algo, net, 0), device="cpu"), env, generator)
    env.close()


def _compare_algo(config: StudyConfig, results: list[RunResult], algo: str) -> list[AlgoComparison]:
    def group(net: str) -> list[RunResult]:
        return [r for r in results if r.spec.algo == algo and r.spec.net == net]

    baseline_runs = group(config.baseline)
    initial = float(np.mean([r.eval_returns[0] for r in baseline_runs]))
    optimum = baseline_runs[0].optimal_return
    best = optimum if optimum is not None else float(np.max(np.mean([r.eval_returns for r in baseline_runs], axis=0)))
    margin = practical_margin(initial, best)
    base = Group.of([r.score for r in baseline_runs], [r.instability for r in baseline_runs])
    comparisons = []
    for net in config.nets:
        if net == config.baseline:
            continue
        runs = group(net)
        candidate = Group.of([r.score for r in runs], [r.instability for r in runs])
        comparisons.append(
            AlgoComparison(algo, config.baseline, net, compare(base, candidate, margin, config.alpha_per_look))
        )
    return comparisons


def run_study(
    config: StudyConfig,
    log_path: Path | None = None,
    progress: ProgressCallback | None = None,
    resume: bool = False,
) -> StudyResult:
    """Run the study, growing the seed set of an algo while any of its verdicts is inconclusive."""
    check_config(config)
    seeds = {algo: list(config.seeds) for algo in config.algos}
    pending = list(config.algos)
    results: list[RunResult] = []
    comparisons: dict[str, list[AlgoComparison]] = {}
    while pending:
        specs = [
            config.spec(algo, net, seed)
            for algo in pending
            for net in config.nets
            for seed in seeds[algo]
            if not any(r.spec == config.spec(algo, net, seed) for r in results)
        ]
        results += run_all(specs, config.workers, log_path, progress, resume)
        still_open = []
        for algo in pending:
            comparisons[algo] = _compare_algo(config, results, algo)
            undecided = any(c.stats.verdict == "inconclusive" for c in comparisons[algo])
            if undecided and len(seeds[algo]) < config.max_seeds:
                start = max(seeds[algo]) + 1
                extra = min(len(config.seeds), config.max_seeds - len(seeds[algo]))
                seeds[algo] += list(range(start, start + extra))
                still_open.append(algo)
        pending = still_open
    ordered = [
        r for algo in config.algos for net in config.nets for r in results if r.spec.algo == algo and r.spec.net == net
    ]
    return StudyResult(config, ordered, [c for algo in config.algos for c in comparisons[algo]])
