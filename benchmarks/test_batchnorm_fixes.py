"""BatchNorm done right vs naive, measured (slow: ``pytest benchmarks/ -k batchnorm -m slow``).

Every variant is compared with plain networks on RandomEnv by the study's statistics
(5 seeds, growing to 15 while undecided). The expectations are the outcomes rlcheck measured
(docs/batchnorm.md), including where a published fix does not
hold here: BatchNorm in TD3's *actor* stays broken on RandomEnv even with mode-aware
critics, because a constant observation starves any batch-statistics layer in the actor
(its running variance collapses to 0 and eval mode amplifies drift by ~316x).
"""

from __future__ import annotations

import functools

import pytest

from rlcheck.engine.runner import default_workers, threads_per_worker
from rlcheck.front.words import cell_reason, check_report
from rlcheck.verdicts.check import NetUnderTest, check_config, check_networks
from rlcheck.verdicts.outcomes import Outcome
from rlcheck.verdicts.study import Cell, StudyConfig, StudyResult, run_study

VARIANTS = ("batchnorm-critic", "batchnorm-modeaware", "batchnorm-critic-modeaware", "layernorm")

NOT_PASS: tuple[Outcome, ...] = ("fail", "undecided")
EXPECTED: dict[tuple[str, str], tuple[Outcome, ...]] = {
    # the critic's BatchNorm alone breaks both algorithms (dQ/da ~ 1e-8 in train mode)
    ("td3", "batchnorm-critic"): ("fail",),
    ("sac", "batchnorm-critic"): ("fail",),
    # mode-aware fixes the critic; TD3's actor BatchNorm still collapses on constant states,
    # on far more seeds than the 1 in 200 a correct net may (6 of 15 measured)
    ("td3", "batchnorm-modeaware"): ("fail",),
    ("sac", "batchnorm-modeaware"): ("pass", "slower"),
    ("sac", "batchnorm-critic-modeaware"): ("pass", "slower"),
    ("td3", "layernorm"): ("pass",),
    ("sac", "layernorm"): ("pass",),
    # CrossQ as published (SAC only): its actor's Batch Renormalization meets the same
    # constant states -- most seeds touch 28, but the finals spread widely: never a pass
    ("sac", "crossq"): NOT_PASS,
}


@functools.cache
def fixes_study(algo: str) -> StudyResult:
    workers = default_workers()
    config = StudyConfig(
        cells=(Cell(algo),),
        nets=("plain", *VARIANTS, *(("crossq",) if algo == "sac" else ())),
        max_seeds=15,
        workers=workers,
        threads=threads_per_worker(workers),
    )
    return run_study(config)


def _comparison(algo: str, net: str):
    return next(c for c in fixes_study(algo).comparisons if c.candidate == net)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "net"),
    # one xdist worker per algorithm: the study is computed once per process
    [pytest.param(a, n, marks=pytest.mark.xdist_group(f"fixes-{a}")) for a, n in EXPECTED],
    ids=[f"{a}-{n}" for a, n in EXPECTED],
)
def test_batchnorm_variant_verdict(algo, net):
    comparison = _comparison(algo, net)
    assert comparison.outcome in EXPECTED[(algo, net)], cell_reason(comparison)


@pytest.mark.slow
@pytest.mark.xdist_group("fixes-td3")
def test_batchnorm_critic_modeaware_td3_learns_on_most_seeds_and_does_not_underperform():
    # Measured: 14 of 15 seeds reach 28; one collapses to about -14. One collapsed seed is
    # not significant on its own, but it keeps the cell from a pass: undecided, the seed named.
    comparison = _comparison("td3", "batchnorm-critic-modeaware")
    study = fixes_study("td3")
    runs = study.runs_of(study.config.cells[0], "batchnorm-critic-modeaware")
    learned = sum(r.steps_to_threshold is not None for r in runs)
    assert learned >= 0.8 * len(runs)
    assert comparison.outcome != "fail", cell_reason(comparison)


# The fixes on the whole probe suite (rlcheck check), measured with seeds 0-4 (growing while
# inconclusive): the outcome of each (net, algo) gate. A mode-aware BatchNorm critic is never
# failed (under TD3 its critic error on `constant` sits at the tolerance: a drop up to 1.04
# tolerances is not ruled out at 15 seeds, so that cell stays undecided); BatchNorm in TD3's
# actor fails where states are identical
# (action, random) -- or, where its collapsed seeds are too few to decide, is undecided there
# -- and passes the one whose states differ (track).
PROBE_GATE_EXPECTED: dict[tuple[str, str], tuple[Outcome, ...]] = {
    ("batchnorm-critic-modeaware", "td3"): ("pass", "slower", "undecided"),
    ("batchnorm-critic-modeaware", "sac"): ("pass", "slower"),
    ("batchnorm-modeaware", "td3"): NOT_PASS,
    ("batchnorm-modeaware", "sac"): ("pass", "slower"),
    # CrossQ as published, at the gate's budgets: Q errors far above plain SAC's and erratic
    # returns where states are identical, on 2 of 5 seeds per probe -- never a pass; at 5 seeds
    # after training on, the seeds do not decide between fail and undecided
    ("crossq", "sac"): NOT_PASS,
}


@pytest.mark.slow
@pytest.mark.parametrize(("net", "algo"), list(PROBE_GATE_EXPECTED), ids=[f"{n}-{a}" for n, a in PROBE_GATE_EXPECTED])
def test_batchnorm_fix_on_the_probe_suite(net, algo):
    under_test = NetUnderTest.of(net)
    result = check_networks(check_config(under_test, algos=(algo,)), under_test)
    assert result.outcome in PROBE_GATE_EXPECTED[(net, algo)], check_report(result)
    if net == "batchnorm-modeaware" and algo == "td3":
        not_passed = {c.cell.env_name for c in result.study.comparisons if c.outcome in NOT_PASS}
        assert not_passed <= {"ActionReward-v0", "RandomEnv-v0"}, not_passed
