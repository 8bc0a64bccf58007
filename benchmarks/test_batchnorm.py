"""The BatchNorm sanity gate: ``pytest benchmarks/ -k batchnorm``.

For TD3 and for SAC on RandomEnv (the blog's toy: zero observation, reward = action, 30
steps, optimal return 30): (a) plain networks learn on every seed within a measured
number of steps, and (b) naive BatchNorm networks are flagged against plain ones by the
study's statistics (outcome ``fail``: ``underperforms`` or ``unreliable``).

Seeds default to 0-4; set ``RLCHECK_BENCH_SEEDS=100,101,102,103,104`` to run the gate on
another seed set (it must hold for any), and ``RLCHECK_DEVICE=cuda`` to train it on a GPU (one
training process then, as ``rlcheck --device cuda`` does). Widths are 64x64, as in rlcheck's default study;
``test_batchnorm_flagged_at_256`` (slow) shows the verdict holds at 256x256.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pytest

from rlcheck.engine.runner import default_workers, run_all, threads_per_worker
from rlcheck.engine.runs import RunSpec
from rlcheck.front.words import cell_reason
from rlcheck.verdicts.outcomes import CellComparison
from rlcheck.verdicts.study import Cell, StudyConfig, StudyResult, run_study

SEEDS = tuple(int(s) for s in os.environ.get("RLCHECK_BENCH_SEEDS", "0,1,2,3,4").split(","))
DEVICE = os.environ.get("RLCHECK_DEVICE", "cpu")
ON_CUDA = DEVICE.startswith("cuda")
WORKERS = 1 if ON_CUDA else default_workers()


@functools.cache
def device() -> str:
    """RLCHECK_DEVICE, checked: a device this machine lacks fails the gate's tests in one line."""
    from rlcheck.errors import UsageError
    from rlcheck.front.api import check_device

    try:
        return check_device(DEVICE)
    except UsageError as exc:
        pytest.fail(f"RLCHECK_DEVICE: {exc}", pytrace=False)


# (a) Steps within which plain nets must reach the bar, measured on calibration seeds
# 5000-5019 (disjoint from the seeds asserted here) with
# `python benchmarks/measure_gate.py learning --first-seed 5000` (eval every 100 steps,
# warm-up 250, 64x64, the seed-batched engine):
#   TD3: every seed >= 28 by step 900 (median 700), final 29.02-29.77; N = 1000.
#   SAC: no seed reaches 28, by design: with the standard target entropy -|A| = -1 the best
#   policy SAC may hold is tanh(N(m, s)) with entropy -1, whose deterministic action
#   tanh(m*) = 0.9145 returns 27.44 (`sac_entropy_limited_return` below); plain SAC
#   plateaus at 27.41-27.49 by step 5000. Within the study's 2000 steps every seed reached
#   24 by step 1700 (median 1600) and ended at 25.43-25.69, so the SAC bar is 24 (87% of that
#   limit) by N = 2000 -- the same runs as the study's plain baseline, so checking it trains nothing.
LEARNING_BUDGET = {"td3": (1000, 28.0), "sac": (2000, 24.0)}


def sac_entropy_limited_return(target_entropy: float = -1.0, horizon: int = 30) -> float:
    """RandomEnv return of the deterministic action of SAC's best policy at this entropy.

    Maximises E[tanh(u)], u ~ N(m, s), subject to the entropy of tanh(u) being at least
    `target_entropy`; returns horizon * tanh(m) at the optimum (Gauss-Hermite quadrature).
    """
    import numpy as np
    from scipy import optimize

    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()

    def entropy(m: float, s: float) -> float:
        u = m + s * nodes
        log_det = 2 * (np.log(2) - u - np.logaddexp(0, -2 * u))
        return 0.5 * np.log(2 * np.pi * np.e * s * s) + float(weights @ log_det)

    best = (-np.inf, 0.0)
    for s in np.exp(np.linspace(-5, 2, 351)):
        if entropy(0.0, s) < target_entropy:
            continue
        m = optimize.brentq(lambda m, s=s: entropy(m, s) - target_entropy, 0.0, 20.0)
        mean_action = float(weights @ np.tanh(m + s * nodes))
        best = max(best, (mean_action, float(np.tanh(m))))
    return horizon * best[1]


def study_config(
    algo: str, hidden: tuple[int, ...] = (64, 64), candidates: tuple[str, ...] = ("batchnorm",), workers: int = WORKERS
) -> StudyConfig:
    """plain vs each candidate for one algorithm; seeds grow (up to 3x) while inconclusive."""
    return StudyConfig(
        cells=(Cell(algo, steps=LEARNING_BUDGET[algo][0]),),  # as calibrated above
        nets=("plain", *candidates),
        seeds=SEEDS,
        max_seeds=3 * len(SEEDS),
        hidden=hidden,
        device=device(),
        workers=workers,
        threads=threads_per_worker(workers),
    )


@functools.cache
def batchnorm_study(
    algo: str, hidden: tuple[int, ...] = (64, 64), candidates: tuple[str, ...] = ("batchnorm",)
) -> StudyResult:
    return run_study(study_config(algo, hidden, candidates))


# TD3's gate study compares naive BatchNorm and the LayerNorm control with one set of plain runs.
GATE_CANDIDATES = {"td3": ("batchnorm", "layernorm"), "sac": ("batchnorm",)}

# The gate's tests are one xdist group, and the group's worker trains with a pool over every
# core itself: the five jobs of the two studies (SAC+BN alone is ~40% of the work) then
# balance over the cores, which two xdist groups of one study each cannot do.
GATE = pytest.mark.xdist_group("batchnorm-gate")
GATE_WORKERS = 1 if ON_CUDA else os.cpu_count() or 1


# The looks each study's decision needs on the gate's seeds (`benchmarks/measure_gate.py trace`):
# TD3's at its first (5 seeds, asserted below), SAC's BatchNorm cell at its second (10). The gate
# trains the seeds of the planned looks in its first batch, so that SAC's second look costs no
# second round of training: every net here fuses its seeds, so a seed computes the same bits in
# any batch, and a study still looks at 5 seeds first and reads the next ones only if it grows.
PLANNED_LOOKS = {"td3": 1, "sac": 2}


def planned_seeds(config: StudyConfig, looks: int) -> list[int]:
    seeds = list(config.seeds)
    for _ in range(looks - 1):
        seeds += config.next_block(seeds)
    return seeds


@functools.cache
def first_look_log() -> Path:
    """Train the runs of both gate studies' planned looks (TD3 and SAC, every net) as one set of
    jobs over all cores, longest first; each study then finds them in this log."""
    specs = []
    for algo, looks in PLANNED_LOOKS.items():
        c = study_config(algo, candidates=GATE_CANDIDATES[algo], workers=GATE_WORKERS)
        specs += [c.spec(cell, net, seed) for cell in c.cells for net in c.nets for seed in planned_seeds(c, looks)]
    log = Path(tempfile.mkdtemp(prefix="rlcheck-gate-")) / "runs.jsonl"
    run_all(specs, GATE_WORKERS, log)
    return log


@functools.cache
def gate_study(algo: str) -> StudyResult:
    """The gate's study for one algorithm; seeds it adds while inconclusive train here."""
    config = study_config(algo, candidates=GATE_CANDIDATES[algo], workers=GATE_WORKERS)
    return run_study(config, first_look_log(), resume=True)


def _comparison(algo: str, candidate: str) -> CellComparison:
    return next(c for c in gate_study(algo).comparisons if c.candidate == candidate)


def test_sac_entropy_limit_matches_the_measured_plateau():
    assert sac_entropy_limited_return() == pytest.approx(27.44, abs=0.01)


@GATE
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_batchnorm_baseline_plain_nets_learn_random_env_on_every_seed(algo):
    steps, threshold = LEARNING_BUDGET[algo]
    study = gate_study(algo)
    runs = [r for r in study.runs_of(study.config.cells[0], "plain") if r.spec.seed in SEEDS]
    assert len(runs) == len(SEEDS) and all(r.spec.steps == steps for r in runs)
    reached = {r.spec.seed: max(r.eval_returns) for r in runs}
    assert all(best >= threshold for best in reached.values()), (
        f"plain {algo} did not reach {threshold} within {steps} steps on every seed: {reached}"
    )
    assert all(r.final_return >= threshold for r in runs)  # ...and holds it at the end


@GATE
def test_batchnorm_naive_td3_is_flagged():
    comparison = _comparison("td3", "batchnorm")
    assert comparison.outcome == "fail", cell_reason(comparison)
    assert comparison.stats.n_candidate == len(SEEDS)  # TD3 needs no extra seeds


@GATE
def test_batchnorm_naive_sac_is_flagged():
    comparison = _comparison("sac", "batchnorm")
    assert comparison.outcome == "fail", cell_reason(comparison)


@GATE
def test_batchnorm_gate_does_not_flag_layernorm_td3():
    # The control: a normalisation without batch dependence must pass, or the gate is a
    # false alarm that flags every change.
    comparison = _comparison("td3", "layernorm")
    assert comparison.outcome == "pass", cell_reason(comparison)


@pytest.mark.slow
def test_batchnorm_baseline_plain_sac_converges_to_its_entropy_limited_return():
    # The fast gate checks that plain SAC learns (24 by step 2000); this checks where it ends
    # up: 27 (98% of its entropy-limited 27.44) by step 3500 on every seed, measured with
    # `python benchmarks/measure_gate.py learning` (the per-seed engine: every seed of 0-19 by 3100).
    runs = run_all([RunSpec("sac", "plain", seed, steps=3500) for seed in SEEDS], WORKERS)
    reached = {r.spec.seed: max(r.eval_returns) for r in runs}
    assert all(best >= 27.0 for best in reached.values()), reached
    assert all(r.final_return < sac_entropy_limited_return() + 0.3 for r in runs)  # the limit binds


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_batchnorm_flagged_at_256(algo):
    (comparison,) = batchnorm_study(algo, hidden=(256, 256)).comparisons
    assert comparison.outcome == "fail", cell_reason(comparison)
