"""An agent for a run: its environment checked, the user's networks resolved to rlcheck's
contract, TD3/SAC/CrossQ built with one copy of each network per seed (fused where they fuse)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import rlcheck.envs  # noqa: F401  (registers rlcheck's environments)
from rlcheck.algos import ALGORITHMS, Agent, actor_kind_of
from rlcheck.algos.common import has_fused_adam
from rlcheck.algos.modes import MODE_SCHEDULES
from rlcheck.engine.runs import RunSpec
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.errors import UsageError
from rlcheck.nets import BUILTIN_NETS, actor_out_dim, resolve_factory
from rlcheck.nets.adapters import ResolvedNet, resolve
from rlcheck.nets.seedstack import SeedStack
from rlcheck.nets.shapes import constructor_kind


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


def box_of(space: gym.Space) -> gym.spaces.Box:
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
        config=dataclasses.replace(algo.default_config, **dict(spec.settings)),  # type: ignore[arg-type]
        modes=MODE_SCHEDULES[spec.modes],
        device=torch.device(spec.device),
        actor_output=actor_output,
    )
    return agent


def resolve_nets(spec: RunSpec, env: gym.Env) -> tuple[ResolvedNet, ResolvedNet]:
    """The spec's actor and critic, detected and adapted to rlcheck's contract (rlcheck.nets.adapters)."""
    obs_space, act_space = _flat_box(env.observation_space), box_of(env.action_space)
    if spec.actor_net_name == spec.critic_net_name and spec.actor_net_name not in BUILTIN_NETS:
        kind = constructor_kind(resolve_factory(spec.actor_net_name, spec.hidden))
        if kind in ("spaces", "env"):
            raise UsageError(
                f"net {spec.actor_net_name!r} is built from the {'spaces' if kind == 'spaces' else 'env'}, so one "
                "factory cannot tell an actor from a critic: give --actor-net and --critic-net (rlcheck check)"
            )
    actor_kind = actor_kind_of(spec.algo)
    actor = resolve(
        spec.actor_net_name, "actor", actor_kind, obs_space, act_space, spec.hidden, spec.device, spec.actor_output,
        spec.algo,
    )  # fmt: skip
    critic = resolve(spec.critic_net_name, "critic", actor_kind, obs_space, act_space, spec.hidden, spec.device)
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
    it (rlcheck.verdicts.diagnose), not to train it on: its optimisers start afresh."""
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
    """Whether the spec's networks fuse across seeds (rlcheck.nets.seedstack), so that a seed's curve
    is bit for bit the same whichever seeds share its batch. Networks batched by vmap or trained
    seed by seed are reproducible for the same grouping, and equal up to rounding otherwise;
    so are all networks where torch has no fused Adam for the device (torch.optim's Adam,
    which rlcheck then uses, steps a stacked tensor whole)."""
    if not has_fused_adam(torch.device(spec.device)):
        return False
    with make_env(spec.env_id) as env:
        obs_dim, act_dim = env_dims(env)
        actor, critic = resolve_nets(dataclasses.replace(spec, device="cpu"), env)
    actor_out = actor_out_dim(actor_kind_of(spec.algo), act_dim)
    sample = torch.Generator().manual_seed(0)
    stacks = [
        SeedStack.of([net.factory(in_dim, out_dim)], role, torch.randn(1, 8, in_dim, generator=sample))
        for net, role, in_dim, out_dim in (
            (actor, "actor", obs_dim, actor_out),
            (critic, "critic", obs_dim + act_dim, 1),
        )
    ]
    return all(stack.strategy == "fused" for stack in stacks)
