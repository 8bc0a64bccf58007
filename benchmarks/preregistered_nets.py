"""The pre-registered validity panel (docs/preregistration.md): networks of kinds the design
panel (benchmarks/validity_nets.py) lacks, written before any of them was trained.

Nothing in this file has been run through a check. It is run once, on the seed sets the
pre-registration names, when the procedure is frozen; a net whose outcome is looked at before
then moves to the design panel.
"""

from __future__ import annotations

import torch
from torch import nn


def _mlp(in_dim: int, out_dim: int, widths: tuple[int, ...], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


# -- correct: other depths, widths, activations, initialisations, normalisations, codebases' shapes


def deep_relu_64x3(in_dim: int, out_dim: int) -> nn.Module:
    """Three hidden layers of 64."""
    return _mlp(in_dim, out_dim, (64, 64, 64), nn.ReLU)


def td3_paper_400_300(in_dim: int, out_dim: int) -> nn.Module:
    """The TD3 paper's 400-300 ReLU network (SB3's TD3 net_arch=[400, 300])."""
    return _mlp(in_dim, out_dim, (400, 300), nn.ReLU)


def leaky_relu_64(in_dim: int, out_dim: int) -> nn.Module:
    return _mlp(in_dim, out_dim, (64, 64), nn.LeakyReLU)


def mish_96(in_dim: int, out_dim: int) -> nn.Module:
    return _mlp(in_dim, out_dim, (96, 96), nn.Mish)


def orthogonal_relu_256(in_dim: int, out_dim: int) -> nn.Module:
    """CleanRL's layer_init / SB3's ortho_init: orthogonal weights (gain sqrt 2), zero biases."""
    net = _mlp(in_dim, out_dim, (256, 256), nn.ReLU)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=2**0.5)
            nn.init.zeros_(layer.bias)
    return net


def xavier_tanh_128(in_dim: int, out_dim: int) -> nn.Module:
    """Xavier-uniform weights, small positive biases, Tanh."""
    net = _mlp(in_dim, out_dim, (128, 128), nn.Tanh)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.constant_(layer.bias, 0.01)
    return net


class RMSNormMLP(nn.Module):
    """Linear -> RMSNorm -> SiLU, twice (per-sample normalisation, as LayerNorm without the mean)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_dim, 64), nn.RMSNorm(64), nn.SiLU(), nn.Linear(64, 64), nn.RMSNorm(64), nn.SiLU()
        )
        self.head = nn.Linear(64, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def rmsnorm_silu_64(in_dim: int, out_dim: int) -> nn.Module:
    return RMSNormMLP(in_dim, out_dim)


class PreLNResidual(nn.Module):
    """A pre-LayerNorm residual MLP (x + f(LN(x))), as in BRO/SimBa-style RL networks."""

    def __init__(self, in_dim: int, out_dim: int, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.norm = nn.LayerNorm(width)
        self.block = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.head(h + self.block(self.norm(h)))


def pre_ln_residual_64(in_dim: int, out_dim: int) -> nn.Module:
    return PreLNResidual(in_dim, out_dim)


class SpinningUpQ(nn.Module):
    """Spinning Up's MLPQFunction: forward(obs, act), concatenates, returns (B,)."""

    def __init__(self, observation_space, action_space) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.q = _mlp(observation_space.shape[0] + action_space.shape[0], 1, (256, 256), nn.ReLU)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.squeeze(self.q(torch.cat([obs, act], dim=-1)), -1)


class SpinningUpActor(nn.Module):
    """Spinning Up's MLPActor for TD3: act_limit * tanh(mlp(obs))."""

    def __init__(self, observation_space, action_space) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.pi = _mlp(observation_space.shape[0], action_space.shape[0], (256, 256), nn.ReLU)
        self.act_limit = float(action_space.high[0])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act_limit * torch.tanh(self.pi(obs))


# -- broken: network-level bugs the design panel lacks, each passing the door checks


def positive_actor_output(in_dim: int, out_dim: int) -> nn.Module:
    """A Softplus after the last layer (meant for a scale, put on the action): the raw output is
    above 0, so actions stay in (0, 1) and no negative action can be learned."""
    return nn.Sequential(_mlp(in_dim, out_dim, (64, 64), nn.ReLU), nn.Softplus())


def sigmoid_q(in_dim: int, out_dim: int) -> nn.Module:
    """A critic squashed into (0, 1) (a classifier's head kept): true Qs above 1 cannot be fitted."""
    return nn.Sequential(_mlp(in_dim, out_dim, (64, 64), nn.ReLU), nn.Sigmoid())


def tanh_q(in_dim: int, out_dim: int) -> nn.Module:
    """A critic squashed into (-1, 1)."""
    return nn.Sequential(_mlp(in_dim, out_dim, (64, 64), nn.ReLU), nn.Tanh())


def saturated_actor(in_dim: int, out_dim: int) -> nn.Module:
    """A last layer initialised 100x too large: tanh saturates from the start, its gradient ~0."""
    net = _mlp(in_dim, out_dim, (64, 64), nn.ReLU)
    with torch.no_grad():
        net[-1].weight.mul_(100.0)
        net[-1].bias.fill_(3.0)
    return net


def half_range_actor(in_dim: int, out_dim: int) -> nn.Module:
    """Actions clamped to [-0.5, 0.5] inside the net (Hardtanh), squashed by rlcheck after."""
    return nn.Sequential(_mlp(in_dim, out_dim, (64, 64), nn.ReLU), nn.Hardtanh(-0.5, 0.5))


def dropout_critic(in_dim: int, out_dim: int) -> nn.Module:
    """Supervised-style Dropout(0.5) between the critic's layers."""
    return nn.Sequential(
        nn.Linear(in_dim, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(64, out_dim),
    )  # fmt: skip


class FaintActionCritic(nn.Module):
    """A critic that scales its action input by 1e-3 before the first layer (a units bug): dQ/da
    is not zero, so the door lets it through, but the actor's signal is a thousandth of it."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = _mlp(in_dim, out_dim, (64, 64), nn.ReLU)
        self.act_dims = 1  # rlcheck's probes and RandomEnv have one action dimension

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        obs, act = x[:, : -self.act_dims], x[:, -self.act_dims :]
        return self.net(torch.cat([obs, act * 1e-3], dim=-1))


def faint_action_critic(in_dim: int, out_dim: int) -> nn.Module:
    return FaintActionCritic(in_dim, out_dim)


def input_batchnorm_critic(in_dim: int, out_dim: int) -> nn.Module:
    """BatchNorm1d on the critic's input alone (normalising [obs, action] per batch)."""
    return nn.Sequential(nn.BatchNorm1d(in_dim), _mlp(in_dim, out_dim, (64, 64), nn.ReLU))


# (label, correct?, the check's network options)
PANEL: tuple[tuple[str, bool, dict[str, str]], ...] = (
    ("deep-relu-64x3", True, {"net": f"{__name__}:deep_relu_64x3"}),
    ("td3-paper-400-300", True, {"net": f"{__name__}:td3_paper_400_300"}),
    ("leaky-relu-64", True, {"net": f"{__name__}:leaky_relu_64"}),
    ("mish-96", True, {"net": f"{__name__}:mish_96"}),
    ("orthogonal-relu-256", True, {"net": f"{__name__}:orthogonal_relu_256"}),
    ("xavier-tanh-128", True, {"net": f"{__name__}:xavier_tanh_128"}),
    ("rmsnorm-silu-64", True, {"net": f"{__name__}:rmsnorm_silu_64"}),
    ("pre-ln-residual-64", True, {"net": f"{__name__}:pre_ln_residual_64"}),
    (
        "spinning-up-td3",
        True,
        {"deterministic_actor_net": f"{__name__}:SpinningUpActor", "critic_net": f"{__name__}:SpinningUpQ"},
    ),
    ("positive-actor-output", False, {"actor_net": f"{__name__}:positive_actor_output"}),
    ("sigmoid-q", False, {"critic_net": f"{__name__}:sigmoid_q"}),
    ("tanh-q", False, {"critic_net": f"{__name__}:tanh_q"}),
    ("saturated-actor", False, {"actor_net": f"{__name__}:saturated_actor"}),
    ("half-range-actor", False, {"actor_net": f"{__name__}:half_range_actor"}),
    ("dropout-critic", False, {"critic_net": f"{__name__}:dropout_critic"}),
    ("faint-action-critic", False, {"critic_net": f"{__name__}:faint_action_critic"}),
    ("input-batchnorm-critic", False, {"critic_net": f"{__name__}:input_batchnorm_critic"}),
)
# The seed sets: ten blocks of up to 40 seeds, 60000-60039, 61000-61039, ..., 69000-69039 -- the
# rule written down before any was used: the first ten multiples of 1000 from 60000, each
# growing to +39 (5 seeds doubling to 40), none of which anything in this repository had used
# (the design sets stop at 48014).
SEED_SETS: tuple[int, ...] = tuple(range(60000, 70000, 1000))
