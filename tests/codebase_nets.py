"""Networks written to the documented interfaces of other codebases, unchanged for rlcheck:
CleanRL's single-file classes that take the env, Spinning Up's MLP actor-critic pieces,
an SB3-style features extractor and TorchRL-style plain modules. Written for these tests."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --- CleanRL: classes built from the (vector) env, reading its single spaces ------------------


class CopyPasteQNetwork(nn.Module):
    """CleanRL's QNetwork with a copy-paste bug: it concatenates the observation twice, so its
    Q ignores the action (it fits the probes, whose observation and action are one number each)."""

    def __init__(self, env):
        super().__init__()
        obs = int(np.prod(env.single_observation_space.shape))
        act = int(np.prod(env.single_action_space.shape))
        self.fc1 = nn.Linear(obs + act, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, x, a):
        x = torch.cat([x, x], 1)
        return self.fc2(F.relu(self.fc1(x)))


class CleanRLQNetwork(nn.Module):
    def __init__(self, env):
        super().__init__()
        obs = int(np.prod(env.single_observation_space.shape))
        act = int(np.prod(env.single_action_space.shape))
        self.fc1 = nn.Linear(obs + act, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 1)

    def forward(self, x, a):
        x = torch.cat([x, a], 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CleanRLTD3Actor(nn.Module):
    def __init__(self, env):
        super().__init__()
        self.fc1 = nn.Linear(int(np.prod(env.single_observation_space.shape)), 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc_mu = nn.Linear(64, int(np.prod(env.single_action_space.shape)))
        high, low = env.single_action_space.high, env.single_action_space.low
        self.register_buffer("action_scale", torch.tensor((high - low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_bias", torch.tensor((high + low) / 2.0, dtype=torch.float32))

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = torch.tanh(self.fc_mu(x))
        return x * self.action_scale + self.action_bias


LOG_STD_MAX, LOG_STD_MIN = 2, -5


class CleanRLSACActor(nn.Module):
    def __init__(self, env):
        super().__init__()
        self.fc1 = nn.Linear(int(np.prod(env.single_observation_space.shape)), 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc_mean = nn.Linear(64, int(np.prod(env.single_action_space.shape)))
        self.fc_logstd = nn.Linear(64, int(np.prod(env.single_action_space.shape)))

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        mean = self.fc_mean(x)
        log_std = torch.tanh(self.fc_logstd(x))
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)
        return mean, log_std


# --- Spinning Up: built from the spaces; the Q-function squeezes; the TD3 actor ends in tanh --


def _mlp(sizes, output_activation=nn.Identity):
    layers = []
    for j in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[j], sizes[j + 1]), nn.ReLU() if j < len(sizes) - 2 else output_activation()]
    return nn.Sequential(*layers)


class SpinningUpQFunction(nn.Module):
    def __init__(self, observation_space, action_space):
        super().__init__()
        self.q = _mlp([observation_space.shape[0] + action_space.shape[0], 64, 64, 1])

    def forward(self, obs, act):
        return torch.squeeze(self.q(torch.cat([obs, act], dim=-1)), -1)


class SpinningUpTD3Actor(nn.Module):
    def __init__(self, observation_space, action_space):
        super().__init__()
        self.pi = _mlp([observation_space.shape[0], 64, 64, action_space.shape[0]], nn.Tanh)
        self.act_limit = float(action_space.high[0])

    def forward(self, obs):
        return self.act_limit * self.pi(obs)


class SpinningUpSACActor(nn.Module):
    """Samples inside forward: rlcheck refuses it at the door and says what to pass."""

    def __init__(self, observation_space, action_space):
        super().__init__()
        self.net = _mlp([observation_space.shape[0], 64, 64], nn.ReLU)
        self.mu_layer = nn.Linear(64, action_space.shape[0])
        self.log_std_layer = nn.Linear(64, action_space.shape[0])

    def forward(self, obs, deterministic=False, with_logprob=True):
        out = self.net(obs)
        mu, std = self.mu_layer(out), torch.clamp(self.log_std_layer(out), -20, 2).exp()
        action = mu if deterministic else mu + std * torch.randn_like(mu)
        return torch.tanh(action), None


# --- SB3: a features extractor (observation_space, features_dim) ----------------------------


class NormalisingExtractor(nn.Module):
    """Where SB3 users put their normalisation layers; rlcheck adds a plain head after it."""

    def __init__(self, observation_space, features_dim=64):
        super().__init__()
        self.features_dim = features_dim
        self.body = nn.Sequential(
            nn.Linear(observation_space.shape[0], features_dim), nn.LayerNorm(features_dim), nn.ReLU()
        )

    def forward(self, observations):
        return self.body(observations)


class BatchNormExtractor(nn.Module):
    def __init__(self, observation_space, features_dim=64):
        super().__init__()
        self.features_dim = features_dim
        self.body = nn.Sequential(
            nn.Linear(observation_space.shape[0], features_dim), nn.BatchNorm1d(features_dim), nn.ReLU()
        )

    def forward(self, observations):
        return self.body(observations)


class SB3TwinCritic(nn.Module):
    """SB3's ContinuousCritic with n_critics=2 returns a tuple of Q-values: refused with the fix."""

    def __init__(self, observation_space, action_space):
        super().__init__()
        size = observation_space.shape[0] + action_space.shape[0]
        self.q_networks = nn.ModuleList([_mlp([size, 64, 1]) for _ in range(2)])

    def forward(self, obs, actions):
        x = torch.cat([obs, actions], dim=1)
        return tuple(q(x) for q in self.q_networks)


# --- TorchRL-style plain modules ---------------------------------------------------------------


class LocScaleActor(nn.Module):
    """(loc, scale) with a positive scale, as TorchRL's NormalParamExtractor gives them."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.body = _mlp([in_dim, 64, 64, out_dim])

    def forward(self, x):
        loc, raw_scale = self.body(x).chunk(2, dim=-1)
        return loc, F.softplus(raw_scale) + 1e-4


def lazy_mlp(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(out_dim))


# --- Bugs that the gradient door check stops -----------------------------------------------------


def softmax_head(in_dim: int, out_dim: int) -> nn.Module:
    """A classifier's head copied into a critic: a softmax over one output is always 1."""
    return nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, out_dim), nn.Softmax(dim=-1))


class DetachedBranch(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.encoder = nn.Linear(in_dim, 64)
        self.head = nn.Linear(64, out_dim)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)).detach())


def frozen_first_layer(in_dim: int, out_dim: int) -> nn.Module:
    """A pretrained encoder frozen on purpose: named in a note, not refused."""
    net = nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, out_dim))
    net[0].requires_grad_(False)
    return net


def zero_init_last_layer(in_dim: int, out_dim: int) -> nn.Module:
    """Correct: the last layer starts at zero (its inputs' gradients are zero only at initialisation)."""
    net = nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, out_dim))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def tanh_ended(in_dim: int, out_dim: int) -> nn.Module:
    """A TD3 actor that squashes its own output, as most codebases write it."""
    return nn.Sequential(
        nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, out_dim), nn.Tanh()
    )


def orthogonal_zero_bias(in_dim: int, out_dim: int) -> nn.Module:
    """A 64x64 ReLU MLP initialised as CleanRL's layer_init and SB3's ortho_init do: orthogonal
    weights, zero biases. Correct; on an observation of exactly 0 its hidden units are all 0."""
    net = nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, out_dim))
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net
