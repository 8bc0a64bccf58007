"""Training runs: seeded agents, their environments, and evaluation along the way.

A run is a pure function of its :class:`RunSpec`: same spec, same device, same curve.
Runs that differ only in their seed train together as one batched computation
(:func:`train_seeds`): each seed has its own networks, environments, replay data and
random streams, so its curve is the one it gets when trained alone.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import rlcheck.envs  # noqa: F401  (registers rlcheck's environments)
from rlcheck.adapters import ResolvedNet, resolve
from rlcheck.algos import ALGORITHMS, Agent, ReplayBuffer
from rlcheck.algos.common import has_fused_adam
from rlcheck.algos.crossq import CrossQ
from rlcheck.algos.modes import MODE_SCHEDULES
from rlcheck.envs import RANDOM_ENV_ID, KnownQ, optimal_return
from rlcheck.errors import UsageError
from rlcheck.nets import BUILTIN_NETS, DEFAULT_HIDDEN, resolve_factory
from rlcheck.seedstack import SeedStack
from rlcheck.shapes import constructor_kind

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
    actor_output: str = "auto"  # how the actor net's output is read (rlcheck.shapes.ACTOR_OUTPUTS)
    recipe: str = "standard"  # or "crossq": the algorithm's CrossQ version (SAC only)

    def group_key(self) -> RunSpec:
        """What runs must share to train in one batch: everything but the seed, the environment
        and its evaluation episodes (environments must also agree on observation and action sizes)."""
        return dataclasses.replace(self, seed=0, env_id="", eval_episodes=0)

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
    batched_with: int = 1  # seeds trained in the same batched computation (wall time is shared)
    reused: bool = field(default=False, compare=False)  # taken from the baseline cache, not trained now
    # rlcheck.diagnose.Diagnosis of the trained agent, measured where it was trained (see
    # rlcheck.diagnose.train_and_diagnose); not saved with the run.
    diagnosis: Any = field(default=None, compare=False, repr=False)
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
            "batched_with": self.batched_with,
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
            batched_with=data.get("batched_with", 1),
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


def env_dims(env: gym.Env) -> tuple[int, int]:
    """(observation size, action size): the in and out sizes of the networks an agent builds for `env`."""
    return gym.spaces.flatdim(env.observation_space), gym.spaces.flatdim(env.action_space)


def _box(space: gym.Space) -> gym.spaces.Box:
    assert isinstance(space, gym.spaces.Box), "make_env lets only Box action spaces through"
    return space


def build_agent(spec: RunSpec, env: gym.Env, seeds: Sequence[int] | None = None) -> Agent:
    """The agent a spec describes, for `seeds` (default: the spec's own), its networks
    checked against the factory contract first."""
    if spec.algo not in ALGORITHMS:
        raise UsageError(f"unknown algo {spec.algo!r}: choose from {', '.join(ALGORITHMS)}")
    obs_dim, act_dim = env_dims(env)
    actor, critic = resolve_nets(spec, env)
    algo = ALGORITHMS[spec.algo]
    if spec.recipe == "crossq":
        if spec.algo != "sac":
            raise UsageError("crossq is a SAC recipe (Bhatt et al., ICLR 2024); run it with --algos sac")
        algo = CrossQ
    elif spec.recipe != "standard":
        raise UsageError(f"unknown recipe {spec.recipe!r}: choose standard or crossq")
    if spec.modes not in MODE_SCHEDULES:
        raise UsageError(f"unknown train/eval schedule {spec.modes!r}: choose from {', '.join(MODE_SCHEDULES)}")
    # The adapter turns (loc, scale) into (mean, log_std): the algorithms see raw, squashed or log-std.
    actor_output = "log-std" if actor.shape.output == "scale" else actor.shape.output
    agent: Agent = algo(
        obs_dim,
        act_dim,
        actor.factory,
        critic.factory,
        seeds=list(seeds) if seeds is not None else [spec.seed],
        modes=MODE_SCHEDULES[spec.modes],
        device=torch.device(spec.device),
        actor_output=actor_output,
    )
    return agent


def resolve_nets(spec: RunSpec, env: gym.Env) -> tuple[ResolvedNet, ResolvedNet]:
    """The spec's actor and critic, detected and adapted to rlcheck's contract (rlcheck.adapters)."""
    obs_space, act_space = _flat_box(env.observation_space), _box(env.action_space)
    if spec.actor_net_name == spec.critic_net_name and spec.actor_net_name not in BUILTIN_NETS:
        kind = constructor_kind(resolve_factory(spec.actor_net_name, spec.hidden))
        if kind in ("spaces", "env"):
            raise UsageError(
                f"net {spec.actor_net_name!r} is built from the {'spaces' if kind == 'spaces' else 'env'}, so one "
                "factory cannot tell an actor from a critic: give --actor-net and --critic-net (rlcheck check)"
            )
    actor = resolve(
        spec.actor_net_name, "actor", spec.algo, obs_space, act_space, spec.hidden, spec.device, spec.actor_output
    )
    critic = resolve(spec.critic_net_name, "critic", spec.algo, obs_space, act_space, spec.hidden, spec.device)
    return actor, critic


def _flat_box(space: gym.Space) -> gym.spaces.Box:
    """The observation space as the networks see it: one flat float vector."""
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return space
    flat = gym.spaces.flatten_space(space)
    assert isinstance(flat, gym.spaces.Box)
    return flat


def member_agent(agent: Agent, member: int, spec: RunSpec, env: gym.Env) -> Agent:
    """Member `member` of a seed-batched agent as an agent of its own, with that member's
    current weights, buffers and per-seed tensors (SAC's entropy coefficient) -- to measure
    it (rlcheck.diagnose), not to train it on: its optimisers start afresh."""
    single = build_agent(spec, env)
    with torch.no_grad():
        for name, value in vars(agent).items():
            mine = getattr(single, name, None)
            if isinstance(value, nn.Module) and isinstance(mine, nn.Module):
                theirs = {path: m for path, m in value.named_modules() if isinstance(m, SeedStack)}
                for path, stack in mine.named_modules():
                    if isinstance(stack, SeedStack):
                        stack.load_member(theirs[path], member)
                mine.train(value.training)
            elif isinstance(value, torch.Tensor) and isinstance(mine, torch.Tensor) and _per_seed(value, agent):
                mine.copy_(value[member : member + 1])
    return single


def _per_seed(tensor: torch.Tensor, agent: Agent) -> bool:
    return tensor.dim() > 0 and tensor.shape[0] == agent.noise.members


def fuses_seeds(spec: RunSpec) -> bool:
    """Whether the spec's networks fuse across seeds (rlcheck.seedstack), so that a seed's curve
    is bit for bit the same whichever seeds share its batch. Networks batched by vmap or trained
    seed by seed are reproducible for the same grouping, and equal up to rounding otherwise;
    so are all networks where torch has no fused Adam for the device (torch.optim's Adam,
    which rlcheck then uses, steps a stacked tensor whole)."""
    if not has_fused_adam(torch.device(spec.device)):
        return False
    with make_env(spec.env_id) as env:
        obs_dim, act_dim = env_dims(env)
        actor, critic = resolve_nets(dataclasses.replace(spec, device="cpu"), env)
    actor_out = act_dim if spec.algo == "td3" else 2 * act_dim
    sample = torch.Generator().manual_seed(0)
    stacks = [
        SeedStack.of([net.factory(in_dim, out_dim)], role, torch.randn(1, 8, in_dim, generator=sample))
        for net, role, in_dim, out_dim in (
            (actor, "actor", obs_dim, actor_out),
            (critic, "critic", obs_dim + act_dim, 1),
        )
    ]
    return all(stack.strategy == "fused" for stack in stacks)


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
        self.scales = [_ActionScaler(_box(env.action_space)) for env in self.envs]
        self.device = device

    def tensor(self, observations: Sequence[np.ndarray]) -> torch.Tensor:
        flat = np.stack([np.asarray(o, dtype=np.float32).reshape(-1) for o in observations])
        return torch.from_numpy(flat).to(self.device)

    def scale(self, actions: np.ndarray) -> list[np.ndarray]:
        """(S, act_dim) actions in [-1, 1] -> each member's action in its env's shape and bounds."""
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

    def __init__(self, envs: Sequence[gym.Env], seeds: Sequence[int], device: torch.device, n: int = 256) -> None:
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


def run_group(specs: Sequence[RunSpec]) -> list[RunResult]:
    """Train runs that differ only in their seed and environment as one batched computation."""
    return train_seeds(specs)[2]


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
    if not specs:
        raise ValueError("train_seeds needs at least one spec")
    spec = specs[0]
    if any(s.group_key() != spec.group_key() for s in specs):
        raise ValueError("train_seeds trains runs that differ only in their seed and environment; group them first")
    if len({(s.seed, s.env_id) for s in specs}) != len(specs):
        raise ValueError(f"train_seeds got a run twice: {[(s.seed, s.env_id) for s in specs]}")
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
        next_observations = []
        for s, (e, env_action) in enumerate(zip(envs.envs, envs.scale(action_np), strict=True)):
            next_o, reward, term, trunc, _ = e.step(env_action)
            rewards[s], terminated[s] = float(reward), float(term)
            next_observations.append(next_o)
            # Only true termination stops bootstrapping; a time-limit truncation does not.
            observations[s] = e.reset()[0] if (term or trunc) else next_o
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
            )
        )
    return agent, buffer, results
