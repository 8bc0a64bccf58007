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


class Agent(Protocol):
    """What the training loop needs from an algorithm. Tensors have the seed first: (S, B, ...)."""

    @property
    def config(self) -> TD3Config | SACConfig: ...

    @property
    def noise(self) -> SeedNoise: ...

    @property
    def actor(self) -> nn.Module: ...  # the policy, over the seed-stacked user network

    @property
    def q1(self) -> nn.Module: ...  # the first critic, over the seed-stacked user network

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor: ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor: ...


ALGORITHMS: dict[str, type[TD3] | type[SAC]] = {"td3": TD3, "sac": SAC, "crossq": CrossQ}

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
]
