"""TD3: Twin Delayed Deep Deterministic policy gradient.

Fujimoto, van Hoof, Meger. "Addressing Function Approximation Error in Actor-Critic
Methods", ICML 2018. https://arxiv.org/abs/1802.09477

Defaults are the paper's and CleanRL's / SB3's. Actions live in [-1, 1] inside the agent;
the training loop rescales them to the environment's bounds. The agent trains S seeds at
once: every tensor has the seed first (see rlcheck/algos/common.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rlcheck.algos.common import (
    Adam,
    Batch,
    NetSpec,
    QNetwork,
    SeedNoise,
    per_seed_mean,
    seed_stacked_nets,
    update_target,
)
from rlcheck.algos.modes import NAIVE, ModeSchedule, set_mode
from rlcheck.nets import ActorKind, NetFactory, actor_out_dim
from rlcheck.nets.seedstack import SeedStack


@dataclass(frozen=True)
class TD3Config:
    gamma: float = 0.99  # discount
    tau: float = 0.005  # target networks move this far toward the online ones per update
    batch_size: int = 256
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    exploration_noise: float = 0.1  # std of the Gaussian added to actions while collecting
    policy_noise: float = 0.2  # target policy smoothing: std of noise on the next action
    noise_clip: float = 0.5  # ... clipped to this range
    policy_delay: int = 2  # one actor (and target) update per this many critic updates


class DeterministicActor(nn.Module):
    """mu(s) = tanh(net(s)): a deterministic action in [-1, 1]^act_dim. A net that squashes
    its output itself (``squash=False``: CleanRL's and Spinning Up's actors end in tanh) is
    taken as it is: a second tanh would cap every action at tanh(1) = 0.76."""

    def __init__(self, net: SeedStack, squash: bool = True) -> None:
        super().__init__()
        self.net, self.squash = net, squash

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        action = self.net(obs)
        return torch.tanh(action) if self.squash else action


class TD3:
    actor_kind: ActorKind = "deterministic"
    relative_update_cost = 1.0  # an update's cost, TD3's = 1: for ordering jobs only (benchmarks/speed.py)
    default_config: TD3Config = TD3Config()

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        make_actor_net: NetFactory,
        make_critic_net: NetFactory,
        seeds: Sequence[int],
        config: TD3Config | None = None,
        modes: ModeSchedule = NAIVE,
        device: torch.device | str = "cpu",
        actor_output: str = "raw",
    ) -> None:
        """``actor_output``: "raw" (tanh gives the action) or "squashed" (already an action in [-1, 1])."""
        self.config, self.modes = config or self.default_config, modes
        device = torch.device(device)
        self.noise = SeedNoise(seeds, device)  # every random draw after initialisation
        actor_net, q1_net, q2_net = seed_stacked_nets(
            [
                NetSpec("actor", make_actor_net, obs_dim, actor_out_dim(self.actor_kind, act_dim)),
                NetSpec("critic", make_critic_net, obs_dim + act_dim, 1),
                NetSpec("critic", make_critic_net, obs_dim + act_dim, 1),
            ],
            seeds,
            device,
        )
        self.actor = DeterministicActor(actor_net, squash=actor_output == "raw")
        self.q1, self.q2 = QNetwork(q1_net), QNetwork(q2_net)
        # Targets start as exact copies (parameters and buffers) and keep the mode they
        # are set to by `modes.td_target`; see `update_target` for what they track.
        self.actor_target = copy.deepcopy(self.actor)
        self.q1_target = copy.deepcopy(self.q1)
        self.q2_target = copy.deepcopy(self.q2)
        for target in (self.actor_target, self.q1_target, self.q2_target):
            target.requires_grad_(False)
        self.actor_optimizer = Adam(self.actor.parameters(), lr=self.config.actor_lr)
        self.critic_optimizer = Adam([*self.q1.parameters(), *self.q2.parameters()], lr=self.config.critic_lr)
        self.updates = 0

    def _noise(self, like: torch.Tensor, std: float) -> torch.Tensor:
        return self.noise.normal(*like.shape[1:]) * std

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Actions in [-1, 1] for a (S, B, obs_dim) batch; Gaussian exploration if `explore`."""
        set_mode(self.modes.acting, self.actor)
        action = self.actor(obs)
        if explore:
            action = (action + self._noise(action, self.config.exploration_noise)).clamp(-1.0, 1.0)
        return action

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's action in [-1, 1], in whatever mode the actor is in (for measuring it)."""
        return self.actor(obs)

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The first critic's estimate, in eval mode: what it has learned, free of batch effects."""
        set_mode("eval", self.q1)
        return self.q1(obs, action)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on the critics, and every `policy_delay` steps on the actor.

        Returns detached losses (tensors, so that a GPU run is not synchronised per step)."""
        cfg = self.config
        self.updates += 1

        # Clipped double-Q target with target policy smoothing.
        set_mode(self.modes.td_target, self.actor_target, self.q1_target, self.q2_target)
        with torch.no_grad():
            noise = self._noise(batch.actions, cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_actions = (self.actor_target(batch.next_obs) + noise).clamp(-1.0, 1.0)
            next_q = torch.min(
                self.q1_target(batch.next_obs, next_actions), self.q2_target(batch.next_obs, next_actions)
            )
            td_target = batch.rewards + cfg.gamma * (1.0 - batch.terminated) * next_q

        set_mode(self.modes.critic_update, self.q1, self.q2)
        critic_loss = per_seed_mean(
            (self.q1(batch.obs, batch.actions) - td_target) ** 2 + (self.q2(batch.obs, batch.actions) - td_target) ** 2
        )
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        stats = {"critic_loss": critic_loss.detach()}

        # Delayed policy update: ascend Q1(s, mu(s)); then move all targets.
        if self.updates % cfg.policy_delay == 0:
            set_mode(self.modes.actor_update, self.actor)
            set_mode(self.modes.critic_in_actor_update, self.q1)
            actor_loss = -per_seed_mean(self.q1(batch.obs, self.actor(batch.obs)))
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward(inputs=self.actor_optimizer.params)  # the critics' weights need no gradient
            self.actor_optimizer.step()
            update_target(self.actor_target, self.actor, cfg.tau)
            update_target(self.q1_target, self.q1, cfg.tau)
            update_target(self.q2_target, self.q2, cfg.tau)
            stats["actor_loss"] = actor_loss.detach()
        return stats
