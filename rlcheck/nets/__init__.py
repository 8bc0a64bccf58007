"""The network factory contract, and the built-in networks of the BatchNorm study.

The contract (checked at the door by :func:`rlcheck.nets.shapes.detect`, which also takes the
shapes other codebases write and lets :mod:`rlcheck.nets.adapters` bring them to it)::

    make_net(in_dim: int, out_dim: int) -> torch.nn.Module
    module(x) maps a float tensor of shape (B, in_dim) to shape (B, out_dim)

The algorithms call a factory for every network they own:

* actor, TD3: ``make_net(obs_dim, act_dim)``; the output is squashed by ``tanh``.
* actor, SAC: ``make_net(obs_dim, 2 * act_dim)``; the output is split into the mean and
  the log-std of a tanh-squashed Gaussian.
* critic (both): ``make_net(obs_dim + act_dim, 1)``; the output is one Q value.

Actor and critic may use different factories. A factory is named by a string: a built-in
name (``plain``, ``batchnorm``, ``layernorm``) or ``"package.module:function"``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from rlcheck.errors import UsageError, import_callable
from rlcheck.requests import DEFAULT_HIDDEN  # one default for every entrance

NetFactory = Callable[[int, int], nn.Module]
# What an algorithm's actor gives: an action (TD3's deterministic actor), or a Gaussian's mean
# and log-std per action dimension (SAC and CrossQ). Each algorithm declares its kind
# (rlcheck.algos: ``actor_kind``); detection, adaptation and diagnosis ask it.
ActorKind = Literal["deterministic", "gaussian"]
ACTOR_KINDS: tuple[ActorKind, ...] = ("deterministic", "gaussian")


def actor_out_dim(kind: ActorKind, act_dim: int) -> int:
    """The width of an actor net of `kind` for `act_dim` action dimensions."""
    return act_dim if kind == "deterministic" else 2 * act_dim


class BatchRenorm1d(nn.Module):
    """Batch Renormalization (Ioffe, NeurIPS 2017, https://arxiv.org/abs/1702.03275), as CrossQ uses it.

    In train mode it normalises with the batch statistics, then corrects toward the running
    ones: ``x_hat = (x - mu_B) / sigma_B * r + d`` with ``r = sigma_B / sigma`` clipped to
    [1/r_max, r_max] and ``d = (mu_B - mu) / sigma`` clipped to [-d_max, d_max], both without
    gradient. For the first ``warmup_steps`` batches r = 1 and d = 0 (plain BatchNorm) while
    the running statistics settle. Eval mode uses the running statistics. Defaults are
    CrossQ's (Bhatt et al., ICLR 2024): momentum 0.01, eps 1e-3, warm-up 100,000, r_max 3, d_max 5.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(
        self,
        num_features: int,
        momentum: float = 0.01,
        eps: float = 1e-3,
        warmup_steps: int = 100_000,
        r_max: float = 3.0,
        d_max: float = 5.0,
    ) -> None:
        super().__init__()
        self.momentum, self.eps, self.warmup_steps, self.r_max, self.d_max = momentum, eps, warmup_steps, r_max, d_max
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Statistics over the batch dimension, -2. Parameters and buffers are (C,), or (S, C)
        # in a seed-stacked layer (rlcheck.nets.fusion.StackedBatchRenorm1d): one code for both.
        weight, bias = self.weight.unsqueeze(-2), self.bias.unsqueeze(-2)
        running_mean, running_var = self.running_mean.unsqueeze(-2), self.running_var.unsqueeze(-2)
        if not self.training:
            return weight * (x - running_mean) / torch.sqrt(running_var + self.eps) + bias
        mean, var = x.mean(-2, keepdim=True), x.var(-2, unbiased=False, keepdim=True)
        std = torch.sqrt(var + self.eps)
        x_hat = (x - mean) / std
        if self.num_batches_tracked >= self.warmup_steps:
            running_std = torch.sqrt(running_var + self.eps)
            r = (std / running_std).detach().clamp(1 / self.r_max, self.r_max)
            d = ((mean - running_mean) / running_std).detach().clamp(-self.d_max, self.d_max)
            x_hat = x_hat * r + d
        with torch.no_grad():
            self.running_mean.lerp_(mean.squeeze(-2), self.momentum)
            self.running_var.lerp_(var.squeeze(-2), self.momentum)
            self.num_batches_tracked += 1
        return weight * x_hat + bias


def _mlp(in_dim: int, out_dim: int, hidden: Sequence[int], norm: str | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if norm == "batchnorm":
            layers.append(nn.BatchNorm1d(size))
        elif norm == "layernorm":
            layers.append(nn.LayerNorm(size))
        elif norm == "batchrenorm":
            layers.append(BatchRenorm1d(size))
        layers.append(nn.ReLU())
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def plain(in_dim: int, out_dim: int, hidden: Sequence[int] = DEFAULT_HIDDEN) -> nn.Module:
    """Linear-ReLU hidden layers: the baseline every other network is compared with."""
    return _mlp(in_dim, out_dim, hidden, norm=None)


def batchnorm(in_dim: int, out_dim: int, hidden: Sequence[int] = DEFAULT_HIDDEN) -> nn.Module:
    """Linear-BatchNorm1d-ReLU, exactly as copied from a supervised-learning project."""
    return _mlp(in_dim, out_dim, hidden, norm="batchnorm")


def layernorm(in_dim: int, out_dim: int, hidden: Sequence[int] = DEFAULT_HIDDEN) -> nn.Module:
    """Linear-LayerNorm-ReLU: per-sample normalisation, so no batch dependence."""
    return _mlp(in_dim, out_dim, hidden, norm="layernorm")


def batchrenorm(in_dim: int, out_dim: int, hidden: Sequence[int] = DEFAULT_HIDDEN) -> nn.Module:
    """Linear-BatchRenorm1d-ReLU: CrossQ's networks."""
    return _mlp(in_dim, out_dim, hidden, norm="batchrenorm")


BUILTIN_NETS: dict[str, Callable[..., nn.Module]] = {
    "plain": plain,
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "batchrenorm": batchrenorm,
}


def resolve_factory(name: str, hidden: Sequence[int] = DEFAULT_HIDDEN) -> NetFactory:
    """Turn a net name (built-in or ``"module:function"``) into a factory.

    Built-ins get ``hidden``; a user's factory is used exactly as written. Raises
    :class:`UsageError` with a one-line reason for anything that cannot be resolved.
    """
    if name in BUILTIN_NETS:
        return functools.partial(BUILTIN_NETS[name], hidden=tuple(hidden))
    if ":" not in name:
        raise UsageError(
            f"unknown net {name!r}: choose one of {', '.join(BUILTIN_NETS)} "
            "or give your own factory as 'package.module:function'"
        )
    return import_callable(
        name,
        whose=f" for net {name!r}",
        wanted="give 'package.module:function' where function(in_dim, out_dim) returns an nn.Module",
    )
