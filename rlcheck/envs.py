"""Tiny diagnostic environments, registered with gymnasium under ``rlcheck/``.

Each environment states the return an optimal policy gets, so a learning test can
assert against a number known analytically instead of one read off a lucky run.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

RANDOM_ENV_ID = "rlcheck/RandomEnv-v0"


class RandomEnv(gym.Env[np.ndarray, np.ndarray]):
    """The environment of the BatchNorm blog post: nothing to see, one thing to learn.

    The observation is always ``zeros(3)``; the action is one number in [-1, 1]; the
    reward is that action (clipped to [-1, 1]). Episodes last ``episode_length`` steps
    and end by *truncation* (a time limit, not a terminal state), so an agent must keep
    bootstrapping through the last step.

    Optimal return: ``episode_length`` (30 by default), by always playing +1.

    What it tests: the policy gradient through the critic (dQ/da must reach the actor),
    with every state identical -- exactly the batch on which a BatchNorm layer has zero
    variance and cancels whatever its input has in common.
    """

    metadata = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it an instance attribute)

    def __init__(self, episode_length: int = 30) -> None:
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._steps = 0

    @property
    def optimal_return(self) -> float:
        return float(self.episode_length)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._steps = 0
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reward = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        self._steps += 1
        truncated = self._steps >= self.episode_length
        return np.zeros(3, dtype=np.float32), reward, False, truncated, {}


def optimal_return(env: gym.Env) -> float | None:
    """The analytically optimal return of an rlcheck environment, ``None`` for others."""
    value = getattr(env.unwrapped, "optimal_return", None)
    return None if value is None else float(value)


def register_envs() -> None:
    """Register rlcheck's environments with gymnasium (idempotent)."""
    if RANDOM_ENV_ID not in gym.registry:
        # reward_threshold 28 is the blog's "has learned" line (93% of the optimum).
        gym.register(id=RANDOM_ENV_ID, entry_point="rlcheck.envs:RandomEnv", reward_threshold=28.0)


register_envs()
