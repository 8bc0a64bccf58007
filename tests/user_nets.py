"""Network factories as a user would write them, good and bad, for the gate's tests."""

from __future__ import annotations

import torch
from torch import nn


def wide_mlp(in_dim: int, out_dim: int) -> nn.Module:
    """A correct plain MLP, written differently from rlcheck's baseline (wider, Tanh)."""
    return nn.Sequential(nn.Linear(in_dim, 96), nn.Tanh(), nn.Linear(96, 96), nn.ReLU(), nn.Linear(96, out_dim))


def naive_batchnorm(in_dim: int, out_dim: int) -> nn.Module:
    """The bug: BatchNorm1d copied from a supervised-learning project."""
    return nn.Sequential(
        nn.Linear(in_dim, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, out_dim),
    )  # fmt: skip


def layernorm_mlp(in_dim: int, out_dim: int) -> nn.Module:
    """A correct MLP of the baseline's size with LayerNorm after each hidden layer."""
    return nn.Sequential(
        nn.Linear(in_dim, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU(),
        nn.Linear(64, out_dim),
    )  # fmt: skip


def one_hidden_layer(in_dim: int, out_dim: int) -> nn.Module:
    """Correct, but shallower than the 64x64 baseline: it learns, more slowly."""
    return nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, out_dim))


def squeezes_output(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.Flatten(0))


def raises(in_dim: int, out_dim: int) -> nn.Module:
    raise ValueError("hidden sizes not configured")


def returns_a_function(in_dim: int, out_dim: int):
    return lambda x: x


class _NaN(nn.Module):
    def __init__(self, out_dim: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.layer = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], self.out_dim), float("nan"))


def outputs_nan(in_dim: int, out_dim: int) -> nn.Module:
    return _NaN(out_dim)


def on_meta_device(in_dim: int, out_dim: int) -> nn.Module:
    """Parameters built on another device than the one rlcheck runs on (here: meta)."""
    return nn.Linear(in_dim, out_dim, device="meta")


class _NeedsBatch(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and x.shape[0] == 1:
            raise RuntimeError("expected more than 1 value per channel")
        return self.layer(x)


def needs_a_batch(in_dim: int, out_dim: int) -> nn.Module:
    return _NeedsBatch(in_dim, out_dim)


NOT_CALLABLE = 3


class _CustomForward(nn.Module):
    """A user module with its own forward (not an nn.Sequential): batched with torch.func.vmap."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(in_dim, 32), nn.BatchNorm1d(32), nn.Linear(32, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


def custom_forward(in_dim: int, out_dim: int) -> nn.Module:
    return _CustomForward(in_dim, out_dim)


class _Branchy(nn.Module):
    """Data-dependent control flow, which vmap cannot batch: trained seed by seed."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, 32), nn.ReLU(), nn.Linear(32, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y if bool(torch.isfinite(y).all()) else torch.zeros_like(y)


def branchy(in_dim: int, out_dim: int) -> nn.Module:
    return _Branchy(in_dim, out_dim)


class _CustomMLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(in_dim, 32), nn.Linear(32, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


def custom_mlp(in_dim: int, out_dim: int) -> nn.Module:
    """A plain MLP with its own forward: batched with torch.func.vmap."""
    return _CustomMLP(in_dim, out_dim)


class _AttributeMLP(nn.Module):
    """The way many users write an MLP: layers as attributes, a forward of their own mixing
    torch.relu, F.relu and the tensor method, a norm layer inside a nested Sequential."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, 32)
        self.body = nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32))
        self.fc2, self.head = nn.Linear(32, 32), nn.Linear(32, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = nn.functional.relu(self.body(x))
        return self.head(self.fc2(x).tanh())


def attribute_mlp(in_dim: int, out_dim: int) -> nn.Module:
    return _AttributeMLP(in_dim, out_dim)


class _Residual(nn.Module):
    """A skip connection: not a chain of layers, but vmap batches it."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(in_dim, 32), nn.Linear(32, 32), nn.Linear(32, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.head(h + torch.relu(self.fc2(h)))


def residual(in_dim: int, out_dim: int) -> nn.Module:
    return _Residual(in_dim, out_dim)


class _ModeBranch(nn.Module):
    """A chain whose forward reads self.training: fx would bake in the mode it traced in."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(in_dim, 32), nn.Linear(32, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(torch.relu(h) if self.training else torch.tanh(h))


def mode_branch(in_dim: int, out_dim: int) -> nn.Module:
    return _ModeBranch(in_dim, out_dim)


class _PlainAsAClass(nn.Module):
    """rlcheck's plain baseline (64x64, ReLU) written as a class: the same layers built in the same order."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(in_dim, 64), nn.Linear(64, 64), nn.Linear(64, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def plain_as_a_class(in_dim: int, out_dim: int) -> nn.Module:
    return _PlainAsAClass(in_dim, out_dim)


def dies_in_a_training_process(in_dim: int, out_dim: int) -> nn.Module:
    """Kills its own process, as the kernel's OOM killer would, once built in a training process
    (never in the process that runs the door checks) and once ``$RLCHECK_TEST_DIE_AFTER``, a
    log file, holds a line: the other jobs have finished by then."""
    import multiprocessing
    import os
    import signal
    import time
    from pathlib import Path

    if multiprocessing.parent_process() is not None:
        log = Path(os.environ.get("RLCHECK_TEST_DIE_AFTER", ""))
        for _ in range(600):
            if log.is_file() and log.read_text().strip():
                break
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)
    return nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, out_dim))


def _in_a_ray_worker() -> bool:
    import sys

    if "ray" not in sys.modules:
        return False
    import ray

    return bool(ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE)


def dies_once_in_a_ray_worker(in_dim: int, out_dim: int) -> nn.Module:
    """SIGKILLs the Ray worker that builds it the first time (``$RLCHECK_TEST_MARKER`` is written
    then), as a node's OOM killer would; built again, in the retried task, it is a plain MLP."""
    import os
    import signal
    from pathlib import Path

    marker = Path(os.environ.get("RLCHECK_TEST_MARKER", "/nonexistent/marker"))
    if _in_a_ray_worker() and not marker.exists():
        marker.write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, out_dim))


def dies_in_a_ray_worker(in_dim: int, out_dim: int) -> nn.Module:
    """SIGKILLs every Ray worker that builds it."""
    import os
    import signal

    if _in_a_ray_worker():
        os.kill(os.getpid(), signal.SIGKILL)
    return nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, out_dim))
