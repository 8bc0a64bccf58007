"""CrossQ: SAC with Batch Renormalization in place of target networks.

Bhatt, Palenicek, Belousov, Argus, Amiranashvili, Brox, Peters. "CrossQ: Batch
Normalization in Deep Reinforcement Learning for Greater Sample Efficiency and
Simplicity", ICLR 2024. https://openreview.net/forum?id=PczQtTsTIX

What changes from SAC (rlcheck/algos/sac.py), as the paper prescribes:

* no target networks: the TD target comes from the online critics, without gradient;
* one joint train-mode pass of the critic over [(s, a); (s', a')], so that its
  normalisation statistics describe the mixture of both batches (the paper's reason naive
  BatchNorm fails: (s', a') would otherwise look out of distribution);
* Batch Renormalization layers (rlcheck.nets.BatchRenorm1d, the `crossq` net) with the
  paper's warm-up of 100,000 steps -- so on rlcheck's short runs they act as BatchNorm;
* Adam with beta1 = 0.5 and learning rate 1e-3 for every network, and one actor (and
  entropy) update per 3 critic updates.

Deviation: the paper's critics are 2048 wide; rlcheck uses the study's `--hidden` so that
CrossQ is compared with the other variants at equal width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rlcheck.algos.common import Batch, per_seed_mean
from rlcheck.algos.modes import MODE_AWARE, ModeSchedule, set_mode
from rlcheck.algos.sac import SAC, SACConfig


@dataclass(frozen=True)
class CrossQConfig(SACConfig):
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    adam_betas: tuple[float, float] = (0.5, 0.999)  # the paper's beta1
    policy_delay: int = 3


class CrossQ(SAC):
    relative_update_cost = 1.0  # one joint critic pass, the actor every third update: taken as TD3's, not measured
    default_config: SACConfig = CrossQConfig()
    default_modes: ModeSchedule = MODE_AWARE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.q1_target, self.q2_target  # CrossQ has none
        self.updates = 0

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One critic step on the joint batch; every `policy_delay` steps, one actor and entropy step."""
        cfg = self.config
        assert isinstance(cfg, CrossQConfig)
        self.updates += 1
        alpha = self.alpha

        set_mode(self.modes.td_target, self.actor)
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(batch.next_obs, self.noise)

        # One pass over (s, a) and (s', a'): the normalisation sees both distributions at once.
        set_mode(self.modes.critic_update, self.q1, self.q2)
        joint_obs = torch.cat([batch.obs, batch.next_obs], dim=1)
        joint_actions = torch.cat([batch.actions, next_actions], dim=1)
        q1_now, q1_next = self.q1(joint_obs, joint_actions).chunk(2, dim=1)
        q2_now, q2_next = self.q2(joint_obs, joint_actions).chunk(2, dim=1)
        with torch.no_grad():
            soft_next_v = torch.min(q1_next, q2_next) - alpha * next_log_prob
            td_target = batch.rewards + cfg.gamma * (1.0 - batch.terminated) * soft_next_v
        critic_loss = per_seed_mean((q1_now - td_target) ** 2 + (q2_now - td_target) ** 2)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        stats = {"critic_loss": critic_loss.detach(), "alpha": alpha}

        if self.updates % cfg.policy_delay == 0:
            set_mode(self.modes.actor_update, self.actor)
            actions, log_prob = self.actor.sample(batch.obs, self.noise)
            alpha_loss = -per_seed_mean(self.log_alpha * (log_prob.detach() + self.target_entropy))
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()

            set_mode(self.modes.critic_in_actor_update, self.q1, self.q2)
            q = torch.min(self.q1(batch.obs, actions), self.q2(batch.obs, actions))
            actor_loss = per_seed_mean(alpha * log_prob - q)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward(inputs=self.actor_optimizer.params)  # the critics' weights need no gradient
            self.actor_optimizer.step()
            stats["actor_loss"] = actor_loss.detach()
        return stats
