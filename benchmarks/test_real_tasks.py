"""The algorithms learn a real gymnasium task, not only rlcheck's toys (slow: minutes).

Pendulum-v1: a random policy scores about -1200 to -1500; CleanRL's TD3 and SAC reach
about -200 within 15k-20k steps. rlcheck's defaults are CleanRL's except the warm-up.
"""

from __future__ import annotations

import pytest

from rlcheck.engine.runner import default_workers, run_all, threads_per_worker
from rlcheck.engine.runs import RunSpec


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_plain_nets_learn_pendulum(algo):
    workers = default_workers()
    specs = [
        RunSpec(
            algo,
            "plain",
            seed,
            env_id="Pendulum-v1",
            steps=15_000,
            warmup=1000,
            eval_every=5000,
            eval_episodes=5,
            hidden=(256, 256),
            threads=threads_per_worker(workers),
        )
        for seed in (0, 1)
    ]
    finals = {r.spec.seed: r.final_return for r in run_all(specs, workers)}
    assert all(final > -400 for final in finals.values()), finals
