"""Pieces TD3 and SAC share: the replay buffer, the Q-network wrapper, target updates.

All state lives in tensors on the agent's device, drawn from an explicit
``torch.Generator``, so that a run is a pure function of its seed and so that the
state of several seeds could later be stacked and trained as one batched computation.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from rlcheck.nets import NetFactory


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, obs_dim)
    actions: torch.Tensor  # (B, act_dim), normalised to [-1, 1]
    rewards: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, obs_dim)
    terminated: torch.Tensor  # (B,), 1.0 where the episode truly ended (no bootstrap)


class ReplayBuffer:
    """A fixed-size ring buffer of transitions, stored as preallocated tensors."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim, device=device)
        self.actions = torch.zeros(capacity, act_dim, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.size = 0
        self._next = 0

    def add(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: float,
        next_obs: torch.Tensor,
        terminated: bool,
    ) -> None:
        i = self._next
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self.size, (batch_size,), generator=generator, device=generator.device).to(
            self.obs.device
        )
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminated[idx])


class QNetwork(nn.Module):
    """Q(s, a): the user's network applied to the concatenation [s, a], one value per row."""

    def __init__(self, make_net: NetFactory, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.net = make_net(obs_dim + act_dim, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


@torch.no_grad()
def update_target(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak-average the parameters and *copy* the buffers into the target network.

    Parameters move by ``tau`` toward the online network. Buffers (BatchNorm's
    ``running_mean``, ``running_var`` and ``num_batches_tracked``) are copied outright,
    as SB3 does: averaging only the parameters would leave a target network in eval mode
    normalising with statistics from its first step.
    """
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)
    for target_buffer, buffer in zip(target.buffers(), online.buffers(), strict=True):
        target_buffer.copy_(buffer)
