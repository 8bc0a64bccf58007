"""Tiny diagnostic environments, registered with gymnasium under ``rlcheck/``.

Each environment states the return an optimal policy gets, so a learning test can
assert against a number known analytically instead of one read off a lucky run.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

RANDOM_ENV_ID = "rlcheck/RandomEnv-v0"
# The gate's `random` probe: RandomEnv with the constant state 1 instead of 0, which a zero-bias
# ReLU actor can see (on an all-zero state each of its hidden units is 0); its batches are still
# identical states, what breaks naive BatchNorm. The study keeps the blog's RandomEnv.
RANDOM_ENV_LIT_ID = "rlcheck/RandomEnvLit-v0"


class RandomEnv(gym.Env[np.ndarray, np.ndarray]):
    """The environment of the BatchNorm blog post: nothing to see, one thing to learn.

    The observation is always ``zeros(3)`` (or ``observation`` in each entry); the action is
    one number in [-1, 1]; the reward is that action (clipped to [-1, 1]). Episodes last ``episode_length`` steps
    and end by *truncation* (a time limit, not a terminal state), so an agent must keep
    bootstrapping through the last step.

    Optimal return: ``episode_length`` (30 by default), by always playing +1.

    What it tests: the policy gradient through the critic (dQ/da must reach the actor),
    with every state identical -- exactly the batch on which a BatchNorm layer has zero
    variance and cancels whatever its input has in common.
    """

    metadata = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it an instance attribute)
    optimal_action_at_bound = True  # +1: an actor stuck at its upper bound wins it

    def __init__(self, episode_length: int = 30, observation: float = 0.0) -> None:
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length
        self._state = np.full(3, observation, dtype=np.float32)
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
        return self._state.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reward = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        self._steps += 1
        truncated = self._steps >= self.episode_length
        return self._state.copy(), reward, False, truncated, {}


@runtime_checkable
class KnownQ(Protocol):
    """An environment whose exact Q function is known, so a critic can be checked against it."""

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray: ...

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


class _OneDimProbe(gym.Env[np.ndarray, np.ndarray]):
    """Shared plumbing: a (1,) observation in [-1, 1], a (1,) action in [-1, 1]."""

    metadata = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it an instance attribute)
    optimal_return: float = 0.0
    gamma: float = 0.99  # the discount the true Q values below assume (rlcheck's default)

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._obs = np.zeros(1, dtype=np.float32)

    def _observe(self, value: float) -> np.ndarray:
        self._obs = np.array([value], dtype=np.float32)
        return self._obs.copy()

    @staticmethod
    def _action(action: np.ndarray) -> float:
        return float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """The exact Q value of every (observation, action) row, for checking a critic."""
        raise NotImplementedError

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """States the probe visits and uniformly random actions, (n, 1) each."""
        raise NotImplementedError


class ConstantRewardEnv(_OneDimProbe):
    """Probe 1 -- value fitting: observation 0, reward 1, one step.

    Tests that the critic can fit a constant target and that the optimiser works; the
    policy cannot matter. Every policy gets the optimal return 1; Q(s, a) = 1.
    """

    optimal_return = 1.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._observe(0.0), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._obs.copy(), 1.0, True, False, {}

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return np.ones(len(obs))

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((n, 1), np.float32), rng.uniform(-1, 1, (n, 1)).astype(np.float32)


class ObservedRewardEnv(_OneDimProbe):
    """Probe 2 -- the observation path: observation +1 or -1 at random, reward = it, one step.

    Tests that the critic's value depends on the observation (backprop through the
    observation input, batches whose states differ). Every policy gets the optimal
    return, 0 in expectation; Q(s, a) = s.
    """

    optimal_return = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._observe(float(self.np_random.choice([-1.0, 1.0]))), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._obs.copy(), float(self._obs[0]), True, False, {}

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return obs[:, 0].astype(np.float64)

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        obs = rng.choice([-1.0, 1.0], (n, 1)).astype(np.float32)
        return obs, rng.uniform(-1, 1, (n, 1)).astype(np.float32)


class DelayedRewardEnv(_OneDimProbe):
    """Probe 3 -- discounting and bootstrapping: two steps, reward 1 only at the end.

    Observation 0 then 1; reward 0 then 1; the episode terminates after the second step.
    Tests that the TD target bootstraps through a non-terminal step and stops at a terminal
    one. Optimal return 1 (any policy); Q(0, a) = gamma, Q(1, a) = 1.
    """

    optimal_return = 1.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._observe(0.0), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._obs[0] == 0.0:
            return self._observe(1.0), 0.0, False, False, {}
        return self._obs.copy(), 1.0, True, False, {}

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return np.where(obs[:, 0] > 0.5, 1.0, self.gamma)

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        obs = rng.choice([0.0, 1.0], (n, 1)).astype(np.float32)
        return obs, rng.uniform(-1, 1, (n, 1)).astype(np.float32)


class ActionRewardEnv(_OneDimProbe):
    """Probe 4 -- the policy gradient through the critic: observation 1, reward = action, one step.

    Tests that dQ/da reaches the actor when every state in a batch is the same (RandomEnv is
    this probe over 30 steps). The state is 1, not 0: on an all-zero state a zero-bias ReLU
    actor's hidden units are all 0, and a correct net would fail on that artefact. Optimal
    return 1 (action +1); Q(1, a) = a.
    """

    optimal_return = 1.0
    optimal_action_at_bound = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._observe(1.0), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._obs.copy(), self._action(action), True, False, {}

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return np.clip(action[:, 0], -1.0, 1.0).astype(np.float64)

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.ones((n, 1), np.float32), rng.uniform(-1, 1, (n, 1)).astype(np.float32)


class TrackObservationEnv(_OneDimProbe):
    """Probe 5 -- policy and value together: observation s ~ U[-1, 1], reward -(a - s)^2, one step.

    Tests that the actor learns a state-dependent action from a critic that must model
    how state and action interact, on batches whose states differ. Optimal return 0
    (a = s); Q(s, a) = -(a - s)^2.
    """

    optimal_return = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._observe(float(self.np_random.uniform(-1.0, 1.0))), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._obs.copy(), -((self._action(action) - float(self._obs[0])) ** 2), True, False, {}

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return -((np.clip(action[:, 0], -1.0, 1.0) - obs[:, 0]) ** 2).astype(np.float64)

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        obs = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        return obs, rng.uniform(-1, 1, (n, 1)).astype(np.float32)


class TimeLimitRewardEnv(_OneDimProbe):
    """Probe 6 -- a time limit is not a terminal state: the reward comes one step after the limit.

    An episode starts at observation 0 or 1 (even odds). From 1: reward 1, and the episode
    terminates. From 0: reward 0 and observation 0.5; from 0.5: reward 0, observation 1, and
    the episode is *truncated* -- its time limit of two steps is up, though the process would
    go on to the reward. The time limit is not in the state, so Q(0.5, a) = gamma and
    Q(0, a) = gamma^2: the TD target must bootstrap through the truncated step and stop at the
    terminal one. An agent that treats truncation as termination learns Q(0.5, a) = 0; one that
    bootstraps through the terminal step learns Q(1, a) = 1 / (1 - gamma). The return no
    policy can change: 1/2 in expectation.
    """

    optimal_return = 0.5

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._observe(float(self.np_random.integers(2))), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        state = float(self._obs[0])
        if state == 1.0:
            return self._obs.copy(), 1.0, True, False, {}
        return self._observe(state + 0.5), 0.0, False, state == 0.5, {}

    def true_q(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return self.gamma ** np.round(2.0 * (1.0 - obs[:, 0].astype(np.float64)))

    def sample_state_actions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        obs = rng.choice([0.0, 0.5, 1.0], (n, 1)).astype(np.float32)
        return obs, rng.uniform(-1, 1, (n, 1)).astype(np.float32)


# The time-limit probe is registered and offered to agent checks; a network check leaves it out
# (rlcheck's own loop owns terminal handling, and no network can change it).
TIME_LIMIT_ID = "rlcheck/TimeLimitReward-v0"
PROBES: dict[str, type[gym.Env]] = {
    "rlcheck/ConstantReward-v0": ConstantRewardEnv,
    "rlcheck/ObservedReward-v0": ObservedRewardEnv,
    "rlcheck/DelayedReward-v0": DelayedRewardEnv,
    "rlcheck/ActionReward-v0": ActionRewardEnv,
    "rlcheck/TrackObservation-v0": TrackObservationEnv,
    TIME_LIMIT_ID: TimeLimitRewardEnv,
}


def optimal_return(env: gym.Env) -> float | None:
    """The analytically optimal return of an rlcheck environment, ``None`` for others."""
    value = getattr(env.unwrapped, "optimal_return", None)
    return None if value is None else float(value)


def optimal_action_at_bound(env: gym.Env) -> bool:
    """Whether an rlcheck environment's optimal action lies on a bound of its action box (a
    saturated actor wins it); False for the others and for environments rlcheck does not know."""
    return bool(getattr(env.unwrapped, "optimal_action_at_bound", False))


def q_scale(env: gym.Env) -> float | None:
    """The size of an environment's true Q values: mean |Q| over the state-actions it samples
    for the value probe (fixed draw); ``None`` where it does not know its Q."""
    probe = env.unwrapped
    if not isinstance(probe, KnownQ):
        return None
    obs, actions = probe.sample_state_actions(1024, np.random.default_rng(0))
    return float(np.abs(probe.true_q(obs, actions)).mean())


def register_envs() -> None:
    """Register rlcheck's environments with gymnasium (idempotent)."""
    if RANDOM_ENV_ID not in gym.registry:
        # reward_threshold 28 is the blog's "has learned" line (93% of the optimum).
        gym.register(id=RANDOM_ENV_ID, entry_point="rlcheck.envs:RandomEnv", reward_threshold=28.0)
    if RANDOM_ENV_LIT_ID not in gym.registry:
        gym.register(
            id=RANDOM_ENV_LIT_ID, entry_point="rlcheck.envs:RandomEnv", reward_threshold=28.0,
            kwargs={"observation": 1.0},
        )  # fmt: skip
    for env_id, cls in PROBES.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=f"rlcheck.envs:{cls.__name__}")


register_envs()
