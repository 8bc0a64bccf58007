"""Training runs: seeded agents, their environments, and evaluation along the way.

A run is a pure function of its :class:`RunSpec`: same spec, same device, same curve.
Runs that differ only in their seed train together as one batched computation
(:func:`train_seeds`): each seed has its own networks, environments, replay data and
random streams, so its curve is the one it gets when trained alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

import rlcheck.envs  # noqa: F401  (registers rlcheck's environments)
from rlcheck.algos import Agent, ReplayBuffer
from rlcheck.engine.agents import (
    box_of,
    build_agent,
    env_dims,
    make_env,
)
from rlcheck.engine.machine import processor
from rlcheck.engine.runs import RunResult, RunSpec, TrainingDiverged
from rlcheck.envs import KnownQ, optimal_return

AfterTraining = Callable[[Agent, ReplayBuffer, Sequence[RunSpec], list[RunResult]], None]
"""A measurement of a trained job, run in the process that trained it: it gets the seed-batched
agent, its replay buffer, the job's specs and their results, and may set ``results[i].measured``.
It travels to worker processes (and Ray tasks) by pickling: a module-level function, or a
``functools.partial`` of one. The engine knows nothing of what it measures
(rlcheck.verdicts.diagnose gives the study's)."""

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never share start states with training
VALUE_PROBE_SIZE = 256  # (s, a) pairs a critic's Q is compared with the true Q on


class _ActionScaler:
    """Maps the agent's actions in [-1, 1] to the environment's bounds."""

    def __init__(self, space: gym.spaces.Box) -> None:
        self.low, self.high, self.shape = space.low.astype(np.float64), space.high.astype(np.float64), space.shape

    def __call__(self, unit: np.ndarray) -> np.ndarray:
        """(S, act_dim) actions in [-1, 1] -> S actions in the env's shape and bounds."""
        unit = unit.astype(np.float64).reshape(-1, *self.shape)
        return (self.low + (unit + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)


class _Envs:
    """One environment per member (a run of the batch), stepped in lockstep; observations as one (S, obs_dim) tensor."""

    def __init__(self, env_ids: Sequence[str], device: torch.device) -> None:
        self.envs = [make_env(env_id) for env_id in env_ids]
        self.scales = [_ActionScaler(box_of(env.action_space)) for env in self.envs]
        # Members with the same bounds (the usual case: one env id) are scaled in one call.
        first = self.scales[0]
        same = all(
            np.array_equal(s.low, first.low) and np.array_equal(s.high, first.high) and s.shape == first.shape
            for s in self.scales
        )
        self.shared_scale = first if same else None
        self.device = device

    def tensor(self, observations: Sequence[np.ndarray]) -> torch.Tensor:
        flat = np.stack([np.asarray(o, dtype=np.float32).reshape(-1) for o in observations])
        return torch.from_numpy(flat).to(self.device)

    def scale(self, actions: np.ndarray) -> list[np.ndarray]:
        """(S, act_dim) actions in [-1, 1] -> each member's action in its env's shape and bounds."""
        if self.shared_scale is not None:
            return list(self.shared_scale(actions))
        return [scale(action)[0] for scale, action in zip(self.scales, actions, strict=True)]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def evaluate(agent: Agent, envs: _Envs, episodes: Sequence[int], seeds: Sequence[int]) -> list[float]:
    """Mean return per member of the deterministic policy over its `episodes` episodes (fixed start seeds)."""
    totals = np.zeros(len(envs.envs))
    observations = [np.zeros(1)] * len(envs.envs)
    for episode in range(max(episodes)):
        running = np.array([episode < n for n in episodes])
        for s in map(int, np.flatnonzero(running)):
            observations[s] = envs.envs[s].reset(seed=seeds[s] + episode)[0]
        while running.any():
            actions = envs.scale(agent.act(envs.tensor(observations).unsqueeze(1), explore=False).cpu().numpy())
            for s in map(int, np.flatnonzero(running)):  # a member whose episode ended waits for the others
                observations[s], reward, terminated, truncated, _ = envs.envs[s].step(actions[s])
                totals[s] += float(reward)
                running[s] = not (terminated or truncated)
    return list(totals / np.asarray(episodes))


class ValueProbe:
    """A fixed batch of (s, a) per member with their true Q values, for members whose env knows Q (rlcheck's probes)."""

    def __init__(
        self, envs: Sequence[gym.Env], seeds: Sequence[int], device: torch.device, n: int = VALUE_PROBE_SIZE
    ) -> None:
        probes = [env.unwrapped if isinstance(env.unwrapped, KnownQ) else None for env in envs]
        self.knows_q = [p is not None for p in probes]
        obs_dim, act_dim = env_dims(envs[0])
        obs = np.zeros((len(envs), n, obs_dim), dtype=np.float32)  # members without Q: ignored
        actions = np.zeros((len(envs), n, act_dim), dtype=np.float32)
        self.true_q = np.zeros((len(envs), n))
        for s, (probe, seed) in enumerate(zip(probes, seeds, strict=True)):
            if probe is not None:
                obs[s], actions[s] = probe.sample_state_actions(n, np.random.default_rng(seed))
                self.true_q[s] = probe.true_q(obs[s], actions[s])
        self.obs, self.actions = torch.as_tensor(obs, device=device), torch.as_tensor(actions, device=device)

    def errors(self, agent: Agent) -> list[float | None]:
        """Mean |Q(s, a) - true Q(s, a)| of each member's first critic (None where its env does not know Q)."""
        predicted = agent.q_value(self.obs, self.actions).cpu().numpy()
        errors = np.abs(predicted - self.true_q).mean(axis=1)
        return [float(e) if known else None for e, known in zip(errors, self.knows_q, strict=True)]


def run(spec: RunSpec) -> RunResult:
    """Train one agent as `spec` says and return its learning curve."""
    return train_seeds([spec])[2][0]


def run_group(specs: Sequence[RunSpec], after_training: AfterTraining | None = None) -> list[RunResult]:
    """Train runs that differ only in their seed and environment as one batched computation;
    ``after_training``, if given, then measures the trained agent (see :data:`AfterTraining`)."""
    agent, buffer, results = train_seeds(specs)
    if after_training is not None:
        after_training(agent, buffer, specs, results)
    return results


def train(spec: RunSpec, on_eval: Callable[[Agent, int], None] | None = None) -> tuple[Agent, ReplayBuffer, RunResult]:
    """Train one agent as `spec` says; return it, its replay buffer and its learning curve."""
    agent, buffer, (result,) = train_seeds([spec], on_eval)
    return agent, buffer, result


def train_seeds(
    specs: Sequence[RunSpec], on_eval: Callable[[Agent, int], None] | None = None
) -> tuple[Agent, ReplayBuffer, list[RunResult]]:
    """Train `specs` -- runs that differ only in their seed and environment -- as one batched agent.

    Each run is a member of the batch with its own networks, environment, replay data and
    random streams; the environments must agree on observation and action sizes. Returns the
    agent (its networks stacked over the members, in the order of `specs`), the replay buffer
    and one learning curve per spec. ``on_eval(agent, step)`` is called at every evaluation,
    e.g. to measure the agent as it learns.
    """
    spec = _one_group(specs)
    if spec.threads > 0:
        # Always set, even when torch reports it already: it also resets MKL's and OpenMP's own
        # counts, and a matrix multiply split over more threads rounds differently.
        torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    seeds = [s.seed for s in specs]
    env_ids = [s.env_id for s in specs]
    envs, eval_envs = _Envs(env_ids, device), _Envs(env_ids, device)
    if len({env_dims(e) for e in envs.envs}) > 1:
        raise ValueError(f"train_seeds got environments of different sizes: {sorted(set(env_ids))}")
    agent = build_agent(spec, envs.envs[0], seeds)
    obs_dim, act_dim = env_dims(envs.envs[0])
    buffer = ReplayBuffer(len(specs), min(spec.steps, 1_000_000), obs_dim, act_dim, device)
    eval_seeds = [seed + EVAL_SEED_OFFSET for seed in seeds]
    eval_episodes = [s.eval_episodes for s in specs]
    value_probe = (
        ValueProbe(envs.envs, eval_seeds, device) if any(isinstance(e.unwrapped, KnownQ) for e in envs.envs) else None
    )

    start = time.perf_counter()
    eval_steps: list[int] = []
    eval_returns: list[list[float]] = []
    value_errors: list[list[float | None]] = []
    for e, seed in zip(envs.envs, seeds, strict=True):
        e.action_space.seed(seed)
    observations = [e.reset(seed=seed)[0] for e, seed in zip(envs.envs, seeds, strict=True)]
    obs = envs.tensor(observations)
    rewards = np.zeros(len(specs), dtype=np.float32)
    terminated = np.zeros(len(specs), dtype=np.float32)
    for step in range(spec.steps + 1):
        if step % spec.eval_every == 0 or step == spec.steps:
            eval_steps.append(step)
            eval_returns.append(evaluate(agent, eval_envs, eval_episodes, eval_seeds))
            if value_probe is not None:
                value_errors.append(value_probe.errors(agent))
            if on_eval is not None:
                on_eval(agent, step)
        if step == spec.steps:
            break
        if step < spec.warmup:
            action = agent.noise.uniform(act_dim).to(device) * 2.0 - 1.0
        else:
            action = agent.act(obs.unsqueeze(1), explore=True).squeeze(1)
        action_np = action.cpu().numpy()
        if not np.isfinite(action_np).all():
            bad = specs[int(np.flatnonzero(~np.isfinite(action_np).all(axis=1))[0])]
            raise TrainingDiverged(
                f"{spec.algo}/{spec.net} seed {bad.seed} on {bad.env_id}: the policy output NaN/inf at step {step}"
            )
        next_observations = _step(envs, action_np, observations, rewards, terminated)
        buffer.add(
            obs,
            action,
            torch.from_numpy(rewards).to(device),
            envs.tensor(next_observations),
            torch.from_numpy(terminated).to(device),
        )
        obs = envs.tensor(observations)
        if step >= spec.warmup:
            agent.update(buffer.sample(agent.config.batch_size, agent.noise))
    envs.close()
    eval_envs.close()
    wall = time.perf_counter() - start
    return agent, buffer, _results(specs, envs, eval_steps, eval_returns, value_errors, wall)


def _one_group(specs: Sequence[RunSpec]) -> RunSpec:
    """The first spec, once `specs` are checked to be one batch: runs that differ only in their
    seed and environment, none twice."""
    if not specs:
        raise ValueError("train_seeds needs at least one spec")
    spec = specs[0]
    if any(s.group_key() != spec.group_key() for s in specs):
        raise ValueError("train_seeds trains runs that differ only in their seed and environment; group them first")
    if len({(s.seed, s.env_id) for s in specs}) != len(specs):
        raise ValueError(f"train_seeds got a run twice: {[(s.seed, s.env_id) for s in specs]}")
    return spec


def _step(
    envs: _Envs, actions: np.ndarray, observations: list[np.ndarray], rewards: np.ndarray, terminated: np.ndarray
) -> list[np.ndarray]:
    """Step every member's environment with its action (in [-1, 1], scaled to the env's bounds):
    fill `rewards` and `terminated`, put each member's next observation to act on in
    `observations` (a reset one where its episode ended), and return the next observations to store."""
    next_observations = []
    for s, (e, env_action) in enumerate(zip(envs.envs, envs.scale(actions), strict=True)):
        next_o, reward, term, trunc, _ = e.step(env_action)
        rewards[s], terminated[s] = float(reward), float(term)
        next_observations.append(next_o)
        # Only true termination stops bootstrapping; a time-limit truncation does not.
        observations[s] = e.reset()[0] if (term or trunc) else next_o
    return next_observations


def _results(
    specs: Sequence[RunSpec],
    envs: _Envs,
    eval_steps: list[int],
    eval_returns: list[list[float]],
    value_errors: list[list[float | None]],
    wall: float,
) -> list[RunResult]:
    results = []
    for s, (run_spec, env) in enumerate(zip(specs, envs.envs, strict=True)):
        errors = [e[s] for e in value_errors]
        results.append(
            RunResult(
                spec=run_spec,
                eval_steps=eval_steps,
                eval_returns=[returns[s] for returns in eval_returns],
                wall_time_s=wall,
                threshold=env.spec.reward_threshold if env.spec is not None else None,
                optimal_return=optimal_return(env),
                eval_value_errors=[e for e in errors if e is not None] or None,
                batched_with=len(specs),
                processor=processor(),
            )
        )
    return results
