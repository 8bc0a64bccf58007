"""The validity benchmark's targets, on a small stated subset (slow: ``pytest benchmarks/ -m slow -k validity``).

The whole benchmark (``python -m benchmarks.validity``: 14 nets x 6 held-out seed sets, hours on
2 cores) prints the table in docs/statistics.md. This runs four of its nets on its first
held-out set (benchmarks.validity.SEED_SETS[0], growing to +14), with the gate's defaults,
and asserts what the benchmark's targets say of them: a correct net is never failed (a Tanh
MLP and a one-hidden-layer MLP may be slower or undecided, never failed), naive
BatchNorm is failed, and the BatchNorm study's naive-BatchNorm verdicts hold on those seeds.
"""

from __future__ import annotations

import pytest

from benchmarks.validity import ENTRIES, SEED_SETS, check_one, study_verdicts
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import default_workers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("validity")]
START = SEED_SETS[0]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("validity")


@pytest.mark.parametrize(
    ("label", "allowed"),
    [
        ("tanh", {"pass", "slower"}),
        ("one-hidden-64", {"pass", "slower", "undecided"}),
        ("layernorm-gelu-128", {"pass", "slower"}),
    ],
)
def test_a_correct_net_is_not_failed_on_held_out_seeds(out, label, allowed):
    answer = check_one(ENTRIES[label], START, ("td3", "sac"), out, RunCache(out / "cache"), default_workers())
    assert answer["outcome"] in allowed, answer["not_pass"]


def test_naive_batchnorm_is_failed_on_held_out_seeds(out):
    answer = check_one(ENTRIES["naive-bn-both"], START, ("td3", "sac"), out, RunCache(out / "cache"), default_workers())
    assert answer["outcome"] == "fail", answer["not_pass"]


def test_the_batchnorm_studys_verdicts_hold_on_held_out_seeds(out):
    verdicts = study_verdicts(START, out, RunCache(out / "cache"), default_workers())
    assert all(v.startswith("fail") for v in verdicts.values()), verdicts
