"""SAC: Soft Actor-Critic with twin critics and an automatically tuned entropy coefficient.

Haarnoja, Zhou, Hartikainen, Tucker, Ha, Tan, Kumar, Zhu, Gupta, Abbeel, Levine.
"Soft Actor-Critic Algorithms and Applications", 2018. https://arxiv.org/abs/1812.05905

Defaults are CleanRL's (policy lr 3e-4, critic and entropy lr 1e-3, log-std in [-5, 2],
entropy coefficient starting at 1, target entropy -|A|). One deviation: CleanRL updates the
actor twice every second step; here it is updated once every step, as in the paper --
the same number of actor updates, in the order the paper's algorithm box gives them.
Actions live in [-1, 1] inside the agent; the training loop rescales them. The agent
trains S seeds at once: every tensor has the seed first (see rlcheck/algos/common.py), and
each seed has its own entropy coefficient.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
from rlcheck.nets.seedstack import SeedStack, mark_seed_first

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    gamma: float = 0.99  # discount
    tau: float = 0.005  # target critics move this far toward the online ones per update
    batch_size: int = 256
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3  # learning rate of log(alpha), the entropy coefficient
    initial_alpha: float = 1.0
    target_entropy_per_dim: float = -1.0  # target entropy is this times |A|
    adam_betas: tuple[float, float] = (0.9, 0.999)  # torch's default


class SquashedGaussianActor(nn.Module):
    """pi(a|s) = tanh(N(mean(s), std(s))), with mean and log-std from one user network.

    A net that bounds its log-std itself (``bound_log_std=False``: CleanRL's actor squashes
    it into [-5, 2] in its own forward) has it used as it gives it."""

    def __init__(self, net: SeedStack, bound_log_std: bool = True) -> None:
        super().__init__()
        self.net, self.bound_log_std = net, bound_log_std

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_log_std = self.net(obs).chunk(2, dim=-1)
        if not self.bound_log_std:
            return mean, raw_log_std
        # Squash the log-std smoothly into [LOG_STD_MIN, LOG_STD_MAX] (as CleanRL does),
        # so its gradient never dies at a hard clamp.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw_log_std) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor, noise: SeedNoise) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in [-1, 1] and its log-probability, shape (S, B)."""
        mean, log_std = self(obs)
        eps = noise.normal(*mean.shape[1:])
        pre_tanh = mean + log_std.exp() * eps
        gaussian_log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log|d tanh(u)/du| = log(1 - tanh(u)^2), written stably as 2 (log 2 - u - softplus(-2u)).
        log_det = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
        return torch.tanh(pre_tanh), gaussian_log_prob - log_det

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


class SAC:
    actor_kind: ActorKind = "gaussian"
    relative_update_cost = 1.6  # the policy sampled twice, the entropy coefficient stepped (benchmarks/speed.py)
    default_config: SACConfig = SACConfig()
    default_modes: ModeSchedule = NAIVE

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        make_actor_net: NetFactory,
        make_critic_net: NetFactory,
        seeds: Sequence[int],
        config: SACConfig | None = None,
        modes: ModeSchedule | None = None,
        device: torch.device | str = "cpu",
        actor_output: str = "raw",
    ) -> None:
        """``actor_output``: "raw" (rlcheck bounds the log-std) or "log-std" (the net bounds it itself)."""
        config = config or self.default_config
        self.config, self.modes = config, modes or self.default_modes
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
        self.actor = SquashedGaussianActor(actor_net, bound_log_std=actor_output == "raw")
        self.q1, self.q2 = QNetwork(q1_net), QNetwork(q2_net)
        # SAC has no target actor; the target critics track the online ones (see `update_target`).
        self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)
        # One entropy coefficient per seed, shaped (S, 1) to broadcast over a seed's batch.
        self.log_alpha = torch.full((len(seeds), 1), math.log(config.initial_alpha), device=device, requires_grad=True)
        mark_seed_first(self.log_alpha)
        self.target_entropy = config.target_entropy_per_dim * act_dim
        betas = config.adam_betas
        self.actor_optimizer = Adam(self.actor.parameters(), lr=config.actor_lr, betas=betas)
        self.critic_optimizer = Adam([*self.q1.parameters(), *self.q2.parameters()], lr=config.critic_lr, betas=betas)
        self.alpha_optimizer = Adam([self.log_alpha], lr=config.alpha_lr, betas=betas)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """Actions in [-1, 1]: sampled from the policy if `explore`, else tanh(mean)."""
        set_mode(self.modes.acting, self.actor)
        if explore:
            return self.actor.sample(obs, self.noise)[0]
        return self.actor.deterministic(obs)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """tanh of the policy's mean, in whatever mode the actor is in (for measuring it)."""
        return self.actor.deterministic(obs)

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The first critic's estimate, in eval mode: what it has learned, free of batch effects."""
        set_mode("eval", self.q1)
        return self.q1(obs, action)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step each on the critics, the actor and the entropy coefficient.

        Returns detached losses (tensors, so that a GPU run is not synchronised per step)."""
        cfg = self.config
        alpha = self.alpha

        # Soft clipped double-Q target; the next action comes from the current policy.
        set_mode(self.modes.td_target, self.actor, self.q1_target, self.q2_target)
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(batch.next_obs, self.noise)
            next_q = torch.min(
                self.q1_target(batch.next_obs, next_actions), self.q2_target(batch.next_obs, next_actions)
            )
            soft_next_v = next_q - alpha * next_log_prob
            td_target = batch.rewards + cfg.gamma * (1.0 - batch.terminated) * soft_next_v

        set_mode(self.modes.critic_update, self.q1, self.q2)
        critic_loss = per_seed_mean(
            (self.q1(batch.obs, batch.actions) - td_target) ** 2 + (self.q2(batch.obs, batch.actions) - td_target) ** 2
        )
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # Policy: minimise alpha * log pi(a|s) - min Q(s, a), a reparameterised.
        set_mode(self.modes.actor_update, self.actor)
        set_mode(self.modes.critic_in_actor_update, self.q1, self.q2)
        actions, log_prob = self.actor.sample(batch.obs, self.noise)
        q = torch.min(self.q1(batch.obs, actions), self.q2(batch.obs, actions))
        actor_loss = per_seed_mean(alpha * log_prob - q)
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=self.actor_optimizer.params)  # the critics' weights need no gradient
        self.actor_optimizer.step()

        # Entropy coefficient: raise alpha when the policy's entropy is below target.
        alpha_loss = -per_seed_mean(self.log_alpha * (log_prob.detach() + self.target_entropy))
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()

        update_target(self.q1_target, self.q1, cfg.tau)
        update_target(self.q2_target, self.q2, cfg.tau)
        return {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "alpha": alpha,
        }
