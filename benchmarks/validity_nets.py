"""The networks of the validity benchmark (benchmarks/validity.py): correct ones that are not
the baseline, and broken ones with real bugs that pass rlcheck's door checks.

Correct: each learns every probe; a smaller or slower one may be reported ``slower``, never ``fail``.
Broken: each carries a bug people ship, and each passes the shape and gradient door checks,
so only training can tell. Bugs the door stops are in tests/codebase_nets.py.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _mlp(in_dim: int, out_dim: int, widths: tuple[int, ...], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for size in widths:
        layers += [nn.Linear(width, size), activation()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, out_dim))


# --- correct ---------------------------------------------------------------------------------


def tanh_mlp(in_dim: int, out_dim: int) -> nn.Module:
    """64x64 with Tanh: the baseline's size, the activation many people write."""
    return _mlp(in_dim, out_dim, (64, 64), nn.Tanh)


def silu_mlp(in_dim: int, out_dim: int) -> nn.Module:
    """64x64 with SiLU."""
    return _mlp(in_dim, out_dim, (64, 64), nn.SiLU)


def layernorm_gelu_128(in_dim: int, out_dim: int) -> nn.Module:
    """128x128, Linear-LayerNorm-GELU: the normalisation that is safe in TD learning."""
    return nn.Sequential(
        nn.Linear(in_dim, 128), nn.LayerNorm(128), nn.GELU(),
        nn.Linear(128, 128), nn.LayerNorm(128), nn.GELU(),
        nn.Linear(128, out_dim),
    )  # fmt: skip


class ResidualMLP(nn.Module):
    """A 64-wide residual block between an input and an output layer."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.inp, self.block, self.out = nn.Linear(in_dim, 64), nn.Linear(64, 64), nn.Linear(64, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.out(h + torch.relu(self.block(h)))


def residual_mlp(in_dim: int, out_dim: int) -> nn.Module:
    return ResidualMLP(in_dim, out_dim)


def wide_256(in_dim: int, out_dim: int) -> nn.Module:
    """256x256 ReLU: the size of the TD3 and SAC papers."""
    return _mlp(in_dim, out_dim, (256, 256), nn.ReLU)


class ClassMLP(nn.Module):
    """A 64x64 ELU MLP written as a class with named layers, as in most research code."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(in_dim, 64), nn.Linear(64, 64), nn.Linear(64, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.elu(self.fc1(x))
        x = nn.functional.elu(self.fc2(x))
        return self.fc3(x)


def class_mlp(in_dim: int, out_dim: int) -> nn.Module:
    return ClassMLP(in_dim, out_dim)


def one_hidden_64(in_dim: int, out_dim: int) -> nn.Module:
    """One hidden layer of 64: correct, and slower to learn than the 64x64 baseline."""
    return _mlp(in_dim, out_dim, (64,), nn.ReLU)


# --- broken ----------------------------------------------------------------------------------


def naive_batchnorm(in_dim: int, out_dim: int) -> nn.Module:
    """Linear-BatchNorm1d-ReLU copied from a supervised project, used with TD3's and SAC's naive modes."""
    return nn.Sequential(
        nn.Linear(in_dim, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, out_dim),
    )  # fmt: skip


class ObservationBlindCritic(nn.Module):
    """A two-input critic whose forward drops the observation: Q(s, a) = f(a). A refactor that
    renamed the concatenated input leaves exactly this."""

    def __init__(self, env) -> None:
        super().__init__()
        act = int(np.prod(env.single_action_space.shape))
        self.q = _mlp(act, 1, (64, 64), nn.ReLU)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.q(action)


def relu_output_critic(in_dim: int, out_dim: int) -> nn.Module:
    """A critic whose last layer is followed by ReLU (an MLP helper's default output activation):
    it cannot represent a negative Q."""
    return nn.Sequential(_mlp(in_dim, out_dim, (64, 64), nn.ReLU), nn.ReLU())


class ConstantInputActor(nn.Module):
    """An actor that feeds its layers a constant instead of the observation (a wrong variable in
    forward): the same action in every state."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = _mlp(in_dim, out_dim, (64, 64), nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.ones_like(x))


def constant_input_actor(in_dim: int, out_dim: int) -> nn.Module:
    return ConstantInputActor(in_dim, out_dim)
