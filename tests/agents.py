"""Whole agents as users write them, for `rlcheck check --agent` (rlcheck.engine.user_agents).

A CleanRL-style TD3 and SAC turned into classes (numpy in, numpy out, torch inside, their own
replay buffer and update schedule), each with switches for the classic bugs the probes are
built to see. ``make_*`` are the factories a user gives; ``BROKEN_AGENTS`` maps each bug to the
probe that isolates it. Also a few agents that break the protocol, for the door's errors.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: int = 64) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out_dim))  # fmt: skip


class Replay:
    def __init__(self, obs_dim: int, act_dim: int, size: int, seed: int) -> None:
        self.obs = np.zeros((size, obs_dim), np.float32)
        self.next_obs = np.zeros((size, obs_dim), np.float32)
        self.actions = np.zeros((size, act_dim), np.float32)
        self.rewards = np.zeros(size, np.float32)
        self.dones = np.zeros(size, np.float32)
        self.n, self.size = 0, size
        self.rng = np.random.default_rng(seed)

    def add(self, obs, action, reward, next_obs, done) -> None:
        i = self.n % self.size
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i] = (
            np.ravel(obs), np.ravel(action), reward, np.ravel(next_obs), done,
        )  # fmt: skip
        self.n += 1

    def sample(self, batch: int) -> tuple[torch.Tensor, ...]:
        idx = self.rng.integers(0, min(self.n, self.size), batch)
        return tuple(torch.as_tensor(a[idx]) for a in (self.obs, self.actions, self.rewards, self.next_obs, self.dones))


class Agent:
    """What both share: spaces, the replay buffer, when learning starts, the terminal flag."""

    family = ""
    gamma, tau, batch_size = 0.99, 0.005, 256

    def __init__(self, env: gym.Env, seed: int, bootstrap_terminal: bool = False,
                 truncation_as_termination: bool = False) -> None:  # fmt: skip
        self.obs_dim = int(np.prod(env.observation_space.shape))
        self.act_dim = int(np.prod(env.action_space.shape))
        self.low, self.high = env.action_space.low, env.action_space.high
        self.replay = Replay(self.obs_dim, self.act_dim, 100_000, seed)
        self.rng = np.random.default_rng(seed + 1)
        self.learning = False  # rlcheck's warm-up acts for us; we learn from our first own action on
        self.bootstrap_terminal, self.truncation_as_termination = bootstrap_terminal, truncation_as_termination

    def to_unit(self, action: np.ndarray) -> np.ndarray:
        return 2.0 * (np.asarray(action) - self.low) / (self.high - self.low) - 1.0

    def to_env(self, unit: np.ndarray) -> np.ndarray:
        return (self.low + (np.clip(unit, -1, 1) + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        done = terminated or (truncated and self.truncation_as_termination)
        self.replay.add(obs, self.to_unit(action), reward, next_obs, 0.0 if self.bootstrap_terminal else float(done))
        if self.learning:
            self.update(*self.replay.sample(self.batch_size))

    def q_value(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The first critic's Q, as rlcheck reports its own."""
        with torch.no_grad():
            x = torch.as_tensor(np.concatenate([obs, self.to_unit(actions)], axis=1), dtype=torch.float32)
            return self.q1(x).squeeze(1).numpy()

    def update(self, obs, actions, rewards, next_obs, dones) -> None:
        raise NotImplementedError

    def soft_update(self, net: nn.Module, target: nn.Module) -> None:
        if self.frozen_target:
            return
        with torch.no_grad():
            for p, t in zip(net.parameters(), target.parameters(), strict=True):
                t.mul_(1 - self.tau).add_(self.tau * p)

    frozen_target = False


class TD3Agent(Agent):
    family = "td3"

    def __init__(self, env: gym.Env, seed: int, actor_sign: float = 1.0, frozen_target: bool = False,
                 **bugs: bool) -> None:  # fmt: skip
        super().__init__(env, seed, **bugs)
        self.actor = nn.Sequential(mlp(self.obs_dim, self.act_dim), nn.Tanh())
        self.q1, self.q2 = mlp(self.obs_dim + self.act_dim, 1), mlp(self.obs_dim + self.act_dim, 1)
        self.actor_target, self.q1_target, self.q2_target = map(copy.deepcopy, (self.actor, self.q1, self.q2))
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=3e-4)
        self.actor_sign, self.frozen_target, self.updates = actor_sign, frozen_target, 0

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        with torch.no_grad():
            unit = self.actor(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0].numpy()
        if explore:
            self.learning = True
            unit = unit + self.rng.normal(0.0, 0.1, unit.shape)
        return self.to_env(unit)

    def update(self, obs, actions, rewards, next_obs, dones) -> None:
        with torch.no_grad():
            noise = (torch.randn_like(actions) * 0.2).clamp(-0.5, 0.5)
            next_actions = (self.actor_target(next_obs) + noise).clamp(-1, 1)
            x = torch.cat([next_obs, next_actions], 1)
            next_q = torch.min(self.q1_target(x), self.q2_target(x)).squeeze(1)
            target = rewards + self.gamma * (1 - dones) * next_q
        x = torch.cat([obs, actions], 1)
        q_loss = F.mse_loss(self.q1(x).squeeze(1), target) + F.mse_loss(self.q2(x).squeeze(1), target)
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        self.updates += 1
        if self.updates % 2 == 0:
            actor_loss = -self.actor_sign * self.q1(torch.cat([obs, self.actor(obs)], 1)).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            for net, target_net in ((self.actor, self.actor_target), (self.q1, self.q1_target),
                                    (self.q2, self.q2_target)):  # fmt: skip
                self.soft_update(net, target_net)


class SACAgent(Agent):
    family = "sac"

    def __init__(self, env: gym.Env, seed: int, actor_sign: float = 1.0, frozen_target: bool = False,
                 **bugs: bool) -> None:  # fmt: skip
        super().__init__(env, seed, **bugs)
        self.actor = mlp(self.obs_dim, 2 * self.act_dim)
        self.q1, self.q2 = mlp(self.obs_dim + self.act_dim, 1), mlp(self.obs_dim + self.act_dim, 1)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=1e-3)
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=1e-3)
        self.target_entropy = -float(self.act_dim)
        self.actor_sign, self.frozen_target = actor_sign, frozen_target

    def policy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(obs).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = -5 + 0.5 * (2 - -5) * (log_std + 1)  # CleanRL's bounds
        std = log_std.exp()
        raw = mean + std * torch.randn_like(mean)
        action = torch.tanh(raw)
        log_prob = torch.distributions.Normal(mean, std).log_prob(raw) - torch.log(1 - action.pow(2) + 1e-6)
        return action, log_prob.sum(-1), torch.tanh(mean)

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        with torch.no_grad():
            sampled, _, mean = self.policy(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
        if explore:
            self.learning = True
        return self.to_env((sampled if explore else mean)[0].numpy())

    def update(self, obs, actions, rewards, next_obs, dones) -> None:
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_actions, next_log_prob, _ = self.policy(next_obs)
            x = torch.cat([next_obs, next_actions], 1)
            next_q = torch.min(self.q1_target(x), self.q2_target(x)).squeeze(1) - alpha * next_log_prob
            target = rewards + self.gamma * (1 - dones) * next_q
        x = torch.cat([obs, actions], 1)
        q_loss = F.mse_loss(self.q1(x).squeeze(1), target) + F.mse_loss(self.q2(x).squeeze(1), target)
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        new_actions, log_prob, _ = self.policy(obs)
        x = torch.cat([obs, new_actions], 1)
        q = torch.min(self.q1(x), self.q2(x)).squeeze(1)
        actor_loss = (alpha * log_prob - self.actor_sign * q).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha.exp() * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        self.soft_update(self.q1, self.q1_target)
        self.soft_update(self.q2, self.q2_target)


def make_td3(env: gym.Env, seed: int) -> TD3Agent:
    return TD3Agent(env, seed)


def make_sac(env: gym.Env, seed: int) -> SACAgent:
    return SACAgent(env, seed)


def make_td3_bootstrapping_terminal(env: gym.Env, seed: int) -> TD3Agent:
    return TD3Agent(env, seed, bootstrap_terminal=True)


def make_sac_bootstrapping_terminal(env: gym.Env, seed: int) -> SACAgent:
    return SACAgent(env, seed, bootstrap_terminal=True)


def make_td3_frozen_target(env: gym.Env, seed: int) -> TD3Agent:
    return TD3Agent(env, seed, frozen_target=True)


def make_sac_frozen_target(env: gym.Env, seed: int) -> SACAgent:
    return SACAgent(env, seed, frozen_target=True)


def make_td3_actor_loss_sign(env: gym.Env, seed: int) -> TD3Agent:
    return TD3Agent(env, seed, actor_sign=-1.0)


def make_sac_actor_loss_sign(env: gym.Env, seed: int) -> SACAgent:
    return SACAgent(env, seed, actor_sign=-1.0)


def make_td3_truncation_as_termination(env: gym.Env, seed: int) -> TD3Agent:
    return TD3Agent(env, seed, truncation_as_termination=True)


def make_sac_truncation_as_termination(env: gym.Env, seed: int) -> SACAgent:
    return SACAgent(env, seed, truncation_as_termination=True)


# -- agents that break the protocol (the door's errors) -----------------------------------------


class _Fixed:
    family = "td3"

    def __init__(self, action) -> None:
        self.action = action

    def act(self, obs, explore):
        return self.action

    def observe(self, *transition) -> None:
        pass


def make_wrong_shape(env: gym.Env, seed: int) -> _Fixed:
    return _Fixed(np.zeros(3, np.float32))


def make_out_of_bounds(env: gym.Env, seed: int) -> _Fixed:
    return _Fixed(np.full(env.action_space.shape, 5.0, np.float32))


def make_nan_action(env: gym.Env, seed: int) -> _Fixed:
    return _Fixed(np.full(env.action_space.shape, np.nan, np.float32))


def make_raising(env: gym.Env, seed: int):
    raise RuntimeError("no GPU here")


def make_no_observe(env: gym.Env, seed: int):
    class NoObserve:
        def act(self, obs, explore):
            return np.zeros(env.action_space.shape, np.float32)

    return NoObserve()


class _Familyless(TD3Agent):
    family = ""


def make_familyless(env: gym.Env, seed: int) -> _Familyless:
    return _Familyless(env, seed)


class _NoQ(TD3Agent):
    q_value = None  # type: ignore[assignment]


def make_td3_without_q(env: gym.Env, seed: int) -> _NoQ:
    return _NoQ(env, seed)


class _NaNLater(_Fixed):
    """Acts well at the door, then returns NaN from its 20th exploring action on."""

    def __init__(self, shape) -> None:
        super().__init__(np.zeros(shape, np.float32))
        self.explored = 0

    def act(self, obs, explore):
        self.explored += explore
        return np.full_like(self.action, np.nan) if self.explored >= 20 else self.action


def make_nan_later(env: gym.Env, seed: int) -> _NaNLater:
    return _NaNLater(env.action_space.shape)
