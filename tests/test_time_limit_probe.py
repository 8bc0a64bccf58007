"""The time-limit probe sees an agent that treats a truncation as a termination.

rlcheck's own loop stops bootstrapping only at `terminated`; the broken variant here reports
the time limit as a termination, which is what an agent whose own loop stores
`terminated or truncated` (the classic bug) learns from. Bars: the plain
nets' mean critic error over the last four evaluations at 1200 steps, measured on seeds
5000-5004 (correct: TD3 0.15-0.23, SAC 0.22-0.26; broken: TD3 0.61-0.68, SAC 0.54-0.60; at 600
steps TD3's correct critic is still at 0.39-0.53); the test trains seeds 0-2.
"""

import gymnasium as gym
import numpy as np
import pytest

from rlcheck.engine import training
from rlcheck.engine.runs import RunSpec
from rlcheck.envs import TIME_LIMIT_ID, TimeLimitRewardEnv

SEEDS = (0, 1, 2)
CORRECT_BELOW, BROKEN_ABOVE = 0.40, 0.45
STEPS = 1200


class TruncationAsTermination(TimeLimitRewardEnv):
    """The probe as an agent with the bug sees it: the time limit reported as a terminal state."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, False, info


BROKEN_ID = "tests/TruncationAsTermination-v0"
if BROKEN_ID not in gym.registry:
    gym.register(id=BROKEN_ID, entry_point=f"{__name__}:TruncationAsTermination")


def _mean_error(algo: str, env_id: str) -> float:
    specs = [RunSpec(algo, "plain", s, env_id, steps=STEPS, warmup=100, eval_every=50) for s in SEEDS]
    _, _, results = training.train_seeds(specs)
    return float(np.mean([np.mean(r.eval_value_errors[-4:]) for r in results]))


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_bootstrapping_through_the_time_limit_fits_q_and_stopping_there_does_not(algo):
    correct, broken = _mean_error(algo, TIME_LIMIT_ID), _mean_error(algo, BROKEN_ID)
    assert correct < CORRECT_BELOW < BROKEN_ABOVE < broken
