"""One training run: a seeded agent, its environment, and evaluation along the way.

A run is a pure function of its :class:`RunSpec`: same spec, same device, same curve.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlcheck.envs  # noqa: F401  (registers rlcheck's environments)
from rlcheck.algos import ALGORITHMS, Agent, ReplayBuffer
from rlcheck.algos.crossq import CrossQ
from rlcheck.algos.modes import MODE_SCHEDULES
from rlcheck.envs import RANDOM_ENV_ID, KnownQ, optimal_return
from rlcheck.errors import UsageError
from rlcheck.nets import DEFAULT_HIDDEN, check_factory, resolve_factory

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never share start states with training


class TrainingDiverged(RuntimeError):
    """The policy produced a non-finite action: the run cannot continue."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run. ``net`` names the actor and critic networks
    unless ``actor_net`` / ``critic_net`` override it."""

    algo: str
    net: str
    seed: int
    env_id: str = RANDOM_ENV_ID
    steps: int = 2000
    warmup: int = 250  # uniform-random actions, no updates (CleanRL: "learning_starts")
    eval_every: int = 100
    eval_episodes: int = 1
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    device: str = "cpu"
    threads: int = 1
    actor_net: str | None = None
    critic_net: str | None = None
    modes: str = "naive"  # a key of rlcheck.algos.modes.MODE_SCHEDULES
    recipe: str = "standard"  # or "crossq": the algorithm's CrossQ version (SAC only)

    @property
    def actor_net_name(self) -> str:
        return self.actor_net or self.net

    @property
    def critic_net_name(self) -> str:
        return self.critic_net or self.net

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{**data, "hidden": tuple(data["hidden"])})


@dataclass
class RunResult:
    spec: RunSpec
    eval_steps: list[int]
    eval_returns: list[float]
    wall_time_s: float
    threshold: float | None  # return that counts as "learned" (the env's reward_threshold)
    optimal_return: float | None
    # mean |Q - true Q| of the first critic at each evaluation, on probes whose Q is known
    eval_value_errors: list[float] | None = None
    final_return: float = field(init=False)
    score: float = field(init=False)  # mean evaluation return over the last third of training
    instability: float = field(init=False)  # mean |change| between evaluations, last third
    steps_to_threshold: int | None = field(init=False)
    env_steps_per_s: float = field(init=False)

    def __post_init__(self) -> None:
        returns = np.asarray(self.eval_returns, dtype=float)
        self.final_return = float(returns[-1])
        self.score, self.instability = self.curve_measures(self.eval_returns)
        self.steps_to_threshold = None
        if self.threshold is not None:
            reached = np.flatnonzero(returns >= self.threshold)
            self.steps_to_threshold = int(self.eval_steps[reached[0]]) if reached.size else None
        self.env_steps_per_s = self.spec.steps / self.wall_time_s if self.wall_time_s > 0 else math.inf

    def curve_measures(self, curve: list[float]) -> tuple[float, float]:
        """(score, instability) of a curve: its mean over the last third of training, and
        the mean absolute change between consecutive evaluations over that third."""
        values = np.asarray(curve, dtype=float)
        last_third = values[np.asarray(self.eval_steps) >= self.spec.steps * 2 / 3]
        instability = float(np.abs(np.diff(last_third)).mean()) if last_third.size > 1 else 0.0
        return float(last_third.mean()), instability

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec.to_dict()
        return {
            "algo": self.spec.algo,
            "net": self.spec.net,
            "seed": self.spec.seed,
            "final_return": self.final_return,
            "score": self.score,
            "instability": self.instability,
            "steps_to_threshold": self.steps_to_threshold,
            "threshold": self.threshold,
            "optimal_return": self.optimal_return,
            "wall_time_s": self.wall_time_s,
            "env_steps_per_s": self.env_steps_per_s,
            "curve": {"steps": self.eval_steps, "returns": self.eval_returns, "value_errors": self.eval_value_errors},
            "spec": spec,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            spec=RunSpec.from_dict(data["spec"]),
            eval_steps=list(data["curve"]["steps"]),
            eval_returns=list(data["curve"]["returns"]),
            wall_time_s=data["wall_time_s"],
            threshold=data["threshold"],
            optimal_return=data["optimal_return"],
            eval_value_errors=data["curve"].get("value_errors"),
        )


def make_env(env_id: str) -> gym.Env:
    """Make an environment and check that rlcheck's algorithms can act in it."""
    try:
        env = gym.make(env_id)
    except gym.error.Error as exc:
        raise UsageError(
            f"cannot make env {env_id!r} ({exc}); give a registered gymnasium id such as "
            f"{RANDOM_ENV_ID} or Pendulum-v1 (for a third-party env, 'module:EnvId' imports it first)"
        ) from None
    if not isinstance(env.action_space, gym.spaces.Box):
        raise UsageError(
            f"env {env_id!r} has a {type(env.action_space).__name__} action space; TD3 and SAC need a "
            "continuous Box action space"
        )
    if not (np.all(np.isfinite(env.action_space.low)) and np.all(np.isfinite(env.action_space.high))):
        raise UsageError(f"env {env_id!r} has an unbounded action space; TD3 and SAC need finite bounds")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise UsageError(
            f"env {env_id!r} has a {type(env.observation_space).__name__} observation space; "
            "rlcheck's networks take a flat Box observation (wrap it with FlattenObservation)"
        )
    return env


def _dims(env: gym.Env) -> tuple[int, int]:
    return gym.spaces.flatdim(env.observation_space), gym.spaces.flatdim(env.action_space)


def _box(space: gym.Space) -> gym.spaces.Box:
    assert isinstance(space, gym.spaces.Box), "make_env lets only Box action spaces through"
    return space


def build_agent(spec: RunSpec, env: gym.Env, generator: torch.Generator) -> Agent:
    """The agent a spec describes, its networks checked against the factory contract."""
    if spec.algo not in ALGORITHMS:
        raise UsageError(f"unknown algo {spec.algo!r}: choose from {', '.join(ALGORITHMS)}")
    obs_dim, act_dim = _dims(env)
    make_actor_net = resolve_factory(spec.actor_net_name, spec.hidden)
    make_critic_net = resolve_factory(spec.critic_net_name, spec.hidden)
    actor_out = act_dim if spec.algo == "td3" else 2 * act_dim
    check_factory(make_actor_net, spec.actor_net_name, obs_dim, actor_out, spec.device)
    check_factory(make_critic_net, spec.critic_net_name, obs_dim + act_dim, 1, spec.device)
    algo = ALGORITHMS[spec.algo]
    if spec.recipe == "crossq":
        if spec.algo != "sac":
            raise UsageError("crossq is a SAC recipe (Bhatt et al., ICLR 2024); run it with --algos sac")
        algo = CrossQ
    elif spec.recipe != "standard":
        raise UsageError(f"unknown recipe {spec.recipe!r}: choose standard or crossq")
    if spec.modes not in MODE_SCHEDULES:
        raise UsageError(f"unknown train/eval schedule {spec.modes!r}: choose from {', '.join(MODE_SCHEDULES)}")
    agent: Agent = algo(
        obs_dim,
        act_dim,
        make_actor_net,
        make_critic_net,
        generator=generator,
        modes=MODE_SCHEDULES[spec.modes],
        device=torch.device(spec.device),
    )
    return agent


class _ActionScaler:
    """Maps the agent's actions in [-1, 1] to the environment's bounds."""

    def __init__(self, space: gym.spaces.Box) -> None:
        self.low, self.high, self.shape = space.low.astype(np.float64), space.high.astype(np.float64), space.shape

    def __call__(self, action: torch.Tensor) -> np.ndarray:
        unit = action.detach().cpu().numpy().astype(np.float64).reshape(self.shape)
        return (self.low + (unit + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)


def evaluate(agent: Agent, env: gym.Env, episodes: int, seed: int, device: torch.device) -> float:
    """Mean return of the deterministic policy over `episodes` episodes (fixed start seeds)."""
    scale = _ActionScaler(_box(env.action_space))
    total = 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(1, -1)
            action = agent.act(obs_t, explore=False)[0]
            obs, reward, terminated, truncated, _ = env.step(scale(action))
            total += float(reward)
            done = terminated or truncated
    return total / episodes


class ValueProbe:
    """A fixed batch of (s, a) with their true Q values, on envs that know Q (rlcheck's probes)."""

    def __init__(self, probe: KnownQ, seed: int, device: torch.device, n: int = 256) -> None:
        obs, actions = probe.sample_state_actions(n, np.random.default_rng(seed))
        self.true_q = probe.true_q(obs, actions)
        self.obs = torch.as_tensor(obs, device=device)
        self.actions = torch.as_tensor(actions, device=device)

    def error(self, agent: Agent) -> float:
        """Mean |Q(s, a) - true Q(s, a)| of the agent's first critic."""
        predicted = agent.q_value(self.obs, self.actions).cpu().numpy()
        return float(np.abs(predicted - self.true_q).mean())


def run(spec: RunSpec) -> RunResult:
    """Train one agent as `spec` says and return its learning curve."""
    return train(spec)[2]


def train(spec: RunSpec, on_eval: Callable[[Agent, int], None] | None = None) -> tuple[Agent, ReplayBuffer, RunResult]:
    """Train one agent as `spec` says; return it, its replay buffer and its learning curve.

    ``on_eval(agent, step)`` is called at every evaluation, e.g. to measure the agent as it learns.
    """
    if spec.threads > 0 and torch.get_num_threads() != spec.threads:
        torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    env, eval_env = make_env(spec.env_id), make_env(spec.env_id)
    torch.manual_seed(spec.seed)  # network initialisation
    generator = torch.Generator(device=device).manual_seed(spec.seed)  # every other draw
    agent = build_agent(spec, env, generator)
    obs_dim, act_dim = _dims(env)
    buffer = ReplayBuffer(min(spec.steps, 1_000_000), obs_dim, act_dim, device)
    scale = _ActionScaler(_box(env.action_space))
    eval_seed = spec.seed + EVAL_SEED_OFFSET
    probe = eval_env.unwrapped
    value_probe = ValueProbe(probe, eval_seed, device) if isinstance(probe, KnownQ) else None

    def to_tensor(o: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(o, dtype=torch.float32, device=device).reshape(-1)

    start = time.perf_counter()
    eval_steps: list[int] = []
    eval_returns: list[float] = []
    value_errors: list[float] = []
    obs_np, _ = env.reset(seed=spec.seed)
    env.action_space.seed(spec.seed)
    obs = to_tensor(obs_np)
    for step in range(spec.steps + 1):
        if step % spec.eval_every == 0 or step == spec.steps:
            eval_steps.append(step)
            eval_returns.append(evaluate(agent, eval_env, spec.eval_episodes, eval_seed, device))
            if value_probe is not None:
                value_errors.append(value_probe.error(agent))
            if on_eval is not None:
                on_eval(agent, step)
        if step == spec.steps:
            break
        if step < spec.warmup:
            action = torch.rand(act_dim, generator=generator, device=device) * 2.0 - 1.0
        else:
            action = agent.act(obs.unsqueeze(0), explore=True)[0]
            if not torch.isfinite(action).all():
                raise TrainingDiverged(
                    f"{spec.algo}/{spec.net} seed {spec.seed}: the policy output NaN/inf at step {step}"
                )
        next_obs_np, reward, terminated, truncated, _ = env.step(scale(action))
        next_obs = to_tensor(next_obs_np)
        # Only true termination stops bootstrapping; a time-limit truncation does not.
        buffer.add(obs, action, float(reward), next_obs, terminated)
        if terminated or truncated:
            obs_np, _ = env.reset()
            next_obs = to_tensor(obs_np)
        obs = next_obs
        if step >= spec.warmup:
            agent.update(buffer.sample(agent.config.batch_size, generator))
    env.close()
    eval_env.close()
    return (
        agent,
        buffer,
        RunResult(
            spec=spec,
            eval_steps=eval_steps,
            eval_returns=eval_returns,
            wall_time_s=time.perf_counter() - start,
            threshold=env.spec.reward_threshold if env.spec is not None else None,
            optimal_return=optimal_return(env),
            eval_value_errors=value_errors or None,
        ),
    )
