"""Helpers shared by the unit tests."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from rlcheck.algos import Batch


class ModeRecorder(nn.Module):
    """A BatchNorm MLP that logs (name, training) each time it runs."""

    log: ClassVar[list[tuple[str, bool]]] = []

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.name = f"{in_dim}->{out_dim}"
        self.body = nn.Sequential(nn.Linear(in_dim, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ModeRecorder.log.append((self.name, self.training))
        return self.body(x)


def members_of(factory, seeds: int = 3, in_dim: int = 4, out_dim: int = 2) -> list[nn.Module]:
    """`seeds` copies of a factory's network, copy s initialised under torch.manual_seed(s)."""
    members = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        members.append(factory(in_dim, out_dim))
    return members


def stacked_batch(in_dim: int = 4, seeds: int = 3, batch: int = 16, seed: int = 0) -> torch.Tensor:
    """A (seeds, batch, in_dim) input for a SeedStack."""
    return torch.randn(seeds, batch, in_dim, generator=torch.Generator().manual_seed(seed))


def random_batch(n: int = 32, obs_dim: int = 3, act_dim: int = 1, seed: int = 0, seeds: int = 1) -> Batch:
    """A replay batch for an agent of `seeds` seeds: (seeds, n, ...) tensors."""
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(seeds, n, obs_dim, generator=g),
        torch.rand(seeds, n, act_dim, generator=g) * 2 - 1,
        torch.randn(seeds, n, generator=g),
        torch.randn(seeds, n, obs_dim, generator=g),
        torch.zeros(seeds, n),
    )


def exit_code(main, argv) -> int:
    """A CLI main()'s exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code
