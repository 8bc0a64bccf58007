"""Adapters that give the algorithms rlcheck's one network contract (rlcheck.nets) for a
module of any shape rlcheck detects (rlcheck.nets.shapes): ``(B, in_dim) -> (B, out_dim)``, the
critic fed ``[obs, action]``, the actor's output raw, squashed into [-1, 1] or
``[mean, log_std]``. A module already in the contract gets no adapter, so it fuses across
seeds (rlcheck.nets.fusion) as rlcheck's own nets do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcheck.nets import BUILTIN_NETS, DEFAULT_HIDDEN, ActorKind, NetFactory, plain, resolve_factory
from rlcheck.nets.shapes import FEATURES_DIM, NetShape, Role, call_constructor, detect
from rlcheck.nets.tracing import as_concat_critic_chain, as_squashed_chain


class TwoInputCritic(nn.Module):
    """A critic written as ``forward(obs, action)``, fed rlcheck's ``[obs, action]``."""

    def __init__(self, module: nn.Module, obs_dim: int, flat_q: bool) -> None:
        super().__init__()
        self.module, self.obs_dim, self.flat_q = module, obs_dim, flat_q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.module(x[..., : self.obs_dim], x[..., self.obs_dim :])
        return q.unsqueeze(-1) if self.flat_q else q


class FlatQCritic(nn.Module):
    """A critic that returns ``(B,)`` (Spinning Up squeezes), as ``(B, 1)``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x).unsqueeze(-1)  # type: ignore[no-any-return]


class UnitActions(nn.Module):
    """An actor already squashed and scaled to the env's bounds, mapped back to [-1, 1]
    (rlcheck's agents act in [-1, 1] and scale to the bounds themselves)."""

    def __init__(self, module: nn.Module, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("center", torch.as_tensor((high + low) / 2, dtype=torch.float32), persistent=False)
        self.register_buffer("half_width", torch.as_tensor((high - low) / 2, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.module(x) - self.center) / self.half_width  # type: ignore[no-any-return]


class GaussianParams(nn.Module):
    """A ``(mean, log_std)`` or ``(loc, scale)`` actor as rlcheck's one ``[mean, log_std]`` tensor."""

    def __init__(self, module: nn.Module, output: str) -> None:
        super().__init__()
        self.module, self.output = module, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, second = self.module(x)
        return torch.cat([mean, second.log() if self.output == "scale" else second], dim=-1)


class FeaturesThenHead(nn.Module):
    """An SB3-style features extractor over the observation, then a plain MLP head
    (over ``[features, action]`` for a critic)."""

    def __init__(self, extractor: nn.Module, head: nn.Module, obs_dim: int) -> None:
        super().__init__()
        self.extractor, self.head, self.obs_dim = extractor, head, obs_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.extractor(x[..., : self.obs_dim])
        return self.head(torch.cat([features, x[..., self.obs_dim :]], dim=-1))  # type: ignore[no-any-return]


def adapt(
    factory: Callable[..., Any],
    shape: NetShape,
    obs_space: gym.spaces.Box,
    act_space: gym.spaces.Box,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
) -> NetFactory:
    """A factory in rlcheck's contract, ``(in_dim, out_dim) -> module`` on ``(B, in_dim)``,
    that builds the user's module and adapts it as `shape` says. A module that already is in
    the contract is returned as built, so that it fuses (rlcheck.nets.fusion) as it always has."""
    if shape.builtin_contract:
        return factory  # type: ignore[return-value]
    obs_dim = gym.spaces.flatdim(obs_space)

    def make(in_dim: int, out_dim: int) -> nn.Module:
        if shape.constructor == "features":
            extractor = factory(obs_space, FEATURES_DIM)
            features = int(getattr(extractor, "features_dim", FEATURES_DIM))
            head_in = features + (in_dim - obs_dim)
            return FeaturesThenHead(extractor, plain(head_in, out_dim, hidden), obs_dim)
        module = call_constructor(factory, shape.constructor, in_dim, out_dim, obs_space, act_space)
        if shape.role == "critic":
            if shape.two_inputs:
                adapted: nn.Module = TwoInputCritic(module, obs_dim, shape.flat_q)
                # Concatenate-then-chain critics train fused, as the built-ins do, when the chain is theirs.
                return _same_or(as_concat_critic_chain(module), adapted, in_dim)
            return FlatQCritic(module) if shape.flat_q else module
        if shape.output in ("log-std", "scale"):
            return GaussianParams(module, shape.output)
        if shape.output == "squashed":
            low, high = act_space.low.reshape(-1), act_space.high.reshape(-1)
            adapted = UnitActions(module, low, high) if shape.scaled else module
            # tanh-then-scale to the env's bounds, mapped back to [-1, 1], is the chain up to its tanh.
            return _same_or(as_squashed_chain(module), adapted, in_dim)
        return module

    return make


def _same_or(chain: nn.Module | None, adapted: nn.Module, in_dim: int) -> nn.Module:
    """`chain` (the user's own layers, which rlcheck fuses across seeds) where it computes what
    `adapted` computes on a sample batch in train and in eval mode; else `adapted`."""
    if chain is None:
        return adapted
    sample = torch.randn(16, in_dim, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        # Copies: a BatchNorm's running statistics must not move for the check.
        ours, theirs = copy.deepcopy(chain), copy.deepcopy(adapted)
        for mode in (True, False):
            ours.train(mode)
            theirs.train(mode)
            if not torch.allclose(ours(sample), theirs(sample), rtol=1e-4, atol=1e-5):
                return adapted
    return chain


@dataclass(frozen=True)
class ResolvedNet:
    """A net name resolved for one role of one algorithm: its factory in rlcheck's contract and its shape."""

    factory: NetFactory
    shape: NetShape


def resolve(
    name: str,
    role: Role,
    actor_kind: ActorKind,
    obs_space: gym.spaces.Box,
    act_space: gym.spaces.Box,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
    device: str = "cpu",
    actor_output: str = "auto",
    algo: str = "",
) -> ResolvedNet:
    """Resolve, detect and adapt; built-in nets are in the contract by construction."""
    factory = resolve_factory(name, hidden)
    if name in BUILTIN_NETS:
        return ResolvedNet(factory, NetShape(role, "dims"))
    shape = detect(factory, name, role, actor_kind, obs_space, act_space, device, actor_output, algo)
    return ResolvedNet(adapt(factory, shape, obs_space, act_space, tuple(hidden)), shape)
