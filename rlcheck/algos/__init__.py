"""The off-policy algorithms rlcheck trains: TD3, SAC and CrossQ (SAC without target networks), a file each."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from rlcheck.algos.common import Batch, ReplayBuffer, SeedNoise
from rlcheck.algos.crossq import CrossQ
from rlcheck.algos.modes import NAIVE, ModeSchedule
from rlcheck.algos.sac import SAC, SACConfig
from rlcheck.algos.td3 import TD3, TD3Config
from rlcheck.errors import UsageError
from rlcheck.nets import ActorKind


class Agent(Protocol):
    """What the training loop needs from an algorithm. Tensors have the seed first: (S, B, ...)."""

    actor_kind: ActorKind  # what its actor net gives (rlcheck.nets.ActorKind): declared by the class

    @property
    def config(self) -> TD3Config | SACConfig: ...

    @property
    def noise(self) -> SeedNoise: ...

    @property
    def actor(self) -> nn.Module: ...  # the policy, over the seed-stacked user network

    @property
    def q1(self) -> nn.Module: ...  # the first critic, over the seed-stacked user network

    @property
    def q2(self) -> nn.Module: ...

    @property
    def modes(self) -> ModeSchedule: ...  # which network is in train() or eval() in each forward pass

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor: ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor: ...

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor: ...


# The registry: an algorithm is its file and its line here. What it needs of the user's
# networks is its class's ``actor_kind``; everything else asks `actor_kind_of`.
ALGORITHMS: dict[str, type[TD3] | type[SAC]] = {"td3": TD3, "sac": SAC, "crossq": CrossQ}


def actor_kind_of(algo: str) -> ActorKind:
    """The kind of actor net `algo` takes (an unknown name: rlcheck.errors.UsageError)."""
    if algo not in ALGORITHMS:
        raise UsageError(f"unknown algo {algo!r}: choose from {', '.join(ALGORITHMS)}")
    return ALGORITHMS[algo].actor_kind


__all__ = [
    "ALGORITHMS",
    "NAIVE",
    "SAC",
    "TD3",
    "Agent",
    "Batch",
    "CrossQ",
    "ModeSchedule",
    "ReplayBuffer",
    "SACConfig",
    "SeedNoise",
    "TD3Config",
    "actor_kind_of",
]
