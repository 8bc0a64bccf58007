"""The time-limit probe sees an agent that treats a truncation as a termination.

rlcheck's own loop stores only `terminated` as the end of bootstrapping; the broken variant
here stores `terminated or truncated`, the classic bug of an agent's own loop. Bars: the plain
nets' mean critic error over the last four evaluations at 1200 steps, measured on seeds
5000-5004 (correct: TD3 0.15-0.23, SAC 0.22-0.26; broken: TD3 0.61-0.68, SAC 0.54-0.60; at 600
steps TD3's correct critic is still at 0.39-0.53); the test trains seeds 0-2.
"""

import numpy as np
import pytest

import rlcheck.engine.training as training
from rlcheck.engine.runs import RunSpec
from rlcheck.envs import TIME_LIMIT_ID

SEEDS = (0, 1, 2)
CORRECT_BELOW, BROKEN_ABOVE = 0.40, 0.45
STEPS = 1200


def _truncation_as_termination(envs, actions, observations, rewards, terminated):
    next_observations = []
    for s, (env, action) in enumerate(zip(envs.envs, envs.scale(actions), strict=True)):
        next_obs, reward, term, trunc, _ = env.step(action)
        rewards[s], terminated[s] = float(reward), float(term or trunc)  # the bug
        next_observations.append(next_obs)
        observations[s] = env.reset()[0] if (term or trunc) else next_obs
    return next_observations


def _mean_error(algo: str) -> float:
    specs = [RunSpec(algo, "plain", s, TIME_LIMIT_ID, steps=STEPS, warmup=100, eval_every=50) for s in SEEDS]
    _, _, results = training.train_seeds(specs)
    return float(np.mean([np.mean(r.eval_value_errors[-4:]) for r in results]))


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_bootstrapping_through_the_time_limit_fits_q_and_stopping_there_does_not(algo, monkeypatch):
    correct = _mean_error(algo)
    monkeypatch.setattr(training, "_step", _truncation_as_termination)
    broken = _mean_error(algo)
    assert correct < CORRECT_BELOW < BROKEN_ABOVE < broken
