"""Pieces TD3 and SAC share: seed-stacked networks, per-seed randomness, replay, target updates.

Every agent trains S seeds at once (S = 1 is one ordinary run). Every tensor carries the
seed first: observations ``(S, B, obs_dim)``, actions ``(S, B, act_dim)``, Q values and
rewards ``(S, B)``. Seeds share nothing -- not parameters, not replay data, not random
numbers -- so seed ``s`` trained beside others computes what it computes alone.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from rlcheck.nets import NetFactory
from rlcheck.nets.seedstack import SeedStack, member_slices


class Batch(NamedTuple):
    obs: torch.Tensor  # (S, B, obs_dim)
    actions: torch.Tensor  # (S, B, act_dim), normalised to [-1, 1]
    rewards: torch.Tensor  # (S, B)
    next_obs: torch.Tensor  # (S, B, obs_dim)
    terminated: torch.Tensor  # (S, B), 1.0 where the episode truly ended (no bootstrap)


def per_seed_mean(x: torch.Tensor) -> torch.Tensor:
    """Sum over seeds of each seed's mean over its batch: the loss of S independent runs.

    Its gradient for seed s's parameters is exactly the gradient of seed s's own mean loss
    (a mean over all S*B values would scale every gradient by 1/S)."""
    return x.flatten(1).mean(1).sum()


class SeedNoise:
    """Independent random streams, one per seed, drawn in blocks.

    Seed ``s`` draws from a ``torch.Generator`` seeded with ``s`` alone, so its numbers do
    not depend on which other seeds train beside it. Draws of one shape are made ahead, a
    block of calls at a time, so that S seeds cost S generator calls per block instead of
    per step.
    """

    BLOCK_ELEMENTS = 1 << 18  # per seed, per block

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.device = device
        self._blocks: dict[tuple[str, tuple[int, ...], torch.dtype], tuple[torch.Tensor, int]] = {}

    @property
    def members(self) -> int:
        """How many streams: the agent's stack size S."""
        return len(self.generators)

    def _draw(self, kind: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (kind, shape, dtype)
        block, used = self._blocks.get(key, (None, 0))
        if block is None or used == block.shape[1]:
            calls = max(1, min(256, self.BLOCK_ELEMENTS // max(1, int(torch.Size(shape).numel()))))
            draw = torch.randn if kind == "normal" else torch.rand
            block = torch.stack([draw((calls, *shape), generator=g, dtype=dtype) for g in self.generators])
            block, used = block.to(self.device), 0
        self._blocks[key] = (block, used + 1)
        return block[:, used]

    def normal(self, *shape: int) -> torch.Tensor:
        """(S, *shape) standard normal draws, one independent set per seed."""
        return self._draw("normal", shape, torch.float32)

    def uniform(self, *shape: int) -> torch.Tensor:
        """(S, *shape) draws from U[0, 1)."""
        return self._draw("uniform", shape, torch.float32)

    def integers(self, high: int, *shape: int) -> torch.Tensor:
        """(S, *shape) integers uniform in [0, high) (from float64 uniforms: high may change per call)."""
        return (self._draw("uniform", shape, torch.float64) * high).long()


class ReplayBuffer:
    """A ring buffer per seed, stored as preallocated ``(S, capacity, ...)`` tensors.

    All seeds step their environments in lockstep, so they fill the same slot each step.
    """

    def __init__(self, seeds: int, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.capacity = capacity
        self.obs = torch.zeros(seeds, capacity, obs_dim, device=device)
        self.actions = torch.zeros(seeds, capacity, act_dim, device=device)
        self.rewards = torch.zeros(seeds, capacity, device=device)
        self.next_obs = torch.zeros(seeds, capacity, obs_dim, device=device)
        self.terminated = torch.zeros(seeds, capacity, device=device)
        self._seed_offsets = torch.arange(seeds, device=device).unsqueeze(1) * capacity  # a seed's rows, flattened
        self.size = 0
        self._next = 0

    def add(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
    ) -> None:
        """One transition per seed: ``obs`` (S, obs_dim), ``action`` (S, act_dim), the rest (S,)."""
        i = self._next
        self.obs[:, i] = obs
        self.actions[:, i] = action
        self.rewards[:, i] = reward
        self.next_obs[:, i] = next_obs
        self.terminated[:, i] = terminated
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, noise: SeedNoise) -> Batch:
        """A batch per seed, each drawn uniformly from that seed's own transitions."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = noise.integers(self.size, batch_size).to(self.obs.device)
        rows = (idx + self._seed_offsets).view(-1)  # one gather per field, over the seeds' rows laid end to end
        fields = (self.obs, self.actions, self.rewards, self.next_obs, self.terminated)
        return Batch(*(f.view(-1, *f.shape[2:]).index_select(0, rows).view(*idx.shape, *f.shape[2:]) for f in fields))


class NetSpec(NamedTuple):
    name: str  # for messages
    make_net: NetFactory
    in_dim: int
    out_dim: int


def seed_stacked_nets(nets: Sequence[NetSpec], seeds: Sequence[int], device: torch.device) -> list[SeedStack]:
    """Build each seed's networks in the order given, under ``torch.manual_seed(seed)``, and
    stack each network across seeds: seed s starts from the same weights whoever trains
    beside it. The global torch generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        per_seed = []
        for seed in seeds:
            torch.manual_seed(seed)
            per_seed.append([net.make_net(net.in_dim, net.out_dim) for net in nets])
    sample = torch.Generator().manual_seed(0)
    return [
        SeedStack.of(
            [built[k] for built in per_seed], net.name, torch.randn(len(seeds), 8, net.in_dim, generator=sample)
        ).to(device)
        for k, net in enumerate(nets)
    ]


class QNetwork(nn.Module):
    """Q(s, a) for S seeds: the stacked user network applied to [s, a], one value per row."""

    def __init__(self, net: SeedStack) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class Adam:
    """Adam (Kingma & Ba, 2015) with torch's defaults, computed by the fused kernel that
    ``torch.optim.Adam(fused=True)`` calls, bit for bit the same update.

    Why not ``torch.optim.Adam`` itself: a step of it spends about 0.3 ms in Python
    bookkeeping (grouping tensors by device and dtype, hooks, graph-capture checks) around a
    kernel of 0.04 ms, three optimisers per update; and its first step imports
    ``torch._dynamo``, 3 s in every fresh process. rlcheck's updates are small enough for
    both to show. Where this torch has no fused kernel for the device (CPU before torch 2.4),
    or the parameters mix devices or dtypes, it hands over to ``torch.optim.Adam`` (which steps
    a seed-stacked tensor whole: a seed's bits may then depend on the stack's size, so the
    runner keeps every job as the spec list groups it: see ``rlcheck.engine.agents.fuses_seeds``).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.params = [p for p in params if p.requires_grad]  # a frozen layer stays as the user froze it
        self.lr, self.betas, self.eps = lr, betas, 1e-8
        kinds = {(p.device, p.dtype) for p in self.params}
        self._fallback: torch.optim.Optimizer | None = None
        if len(kinds) != 1 or not has_fused_adam(self.params[0].device):
            self._fallback = torch.optim.Adam(self.params, lr=lr, betas=betas)
            return
        # The state torch.optim.Adam(fused=True) keeps: moments like the parameter, a float32 step count.
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        # The kernel steps each seed's slice of a seed-stacked tensor as a tensor of its own, so that
        # a seed's update is the one it gets alone (see rlcheck.nets.seedstack.member_slices). The
        # slices of the persistent tensors are taken once; a gradient's, at every step.
        self._slices = [
            (member_slices(p), member_slices(m, p), member_slices(v, p), [t] * len(member_slices(p)))
            for p, m, v, t in zip(self.params, self.exp_avgs, self.exp_avg_sqs, self.steps, strict=True)
        ]
        self._all_slices = self._gather(range(len(self.params)))  # the usual step: every parameter has a gradient

    def _gather(self, indices: Iterable[int]) -> tuple[list[torch.Tensor], ...]:
        """The kernel's lists of parameter, moment and step-count slices for these parameters."""
        params: list[torch.Tensor] = []
        exp_avgs: list[torch.Tensor] = []
        exp_avg_sqs: list[torch.Tensor] = []
        steps: list[torch.Tensor] = []  # a parameter's count once per slice: read, not written, by the kernel
        for i in indices:
            param_slices, exp_avg_slices, exp_avg_sq_slices, step_slices = self._slices[i]
            params += param_slices
            exp_avgs += exp_avg_slices
            exp_avg_sqs += exp_avg_sq_slices
            steps += step_slices
        return params, exp_avgs, exp_avg_sqs, steps

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        if self._fallback is not None:
            self._fallback.step()
            return
        # Like torch.optim, a parameter without a gradient (unused this step) is left alone.
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        every = len(live) == len(self.params)
        torch._foreach_add_(self.steps if every else [self.steps[i] for i in live], 1)
        params, exp_avgs, exp_avg_sqs, steps = self._all_slices if every else self._gather(live)
        grads = [g for i in live for g in member_slices(self.params[i].grad, self.params[i])]  # type: ignore[arg-type]
        torch._fused_adam_(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


_FUSED_ADAM: dict[str, bool] = {}


def has_fused_adam(device: torch.device) -> bool:
    """Whether torch has Adam's fused kernel for this kind of device (tried once on a scalar)."""
    if device.type not in _FUSED_ADAM:
        try:
            one = [torch.zeros(1, device=device)]
            torch._fused_adam_(
                one, [torch.zeros(1, device=device)], [torch.zeros(1, device=device)], [torch.zeros(1, device=device)],
                [], [torch.ones((), device=device)], amsgrad=False, lr=1e-3, beta1=0.9, beta2=0.999,
                weight_decay=0.0, eps=1e-8, maximize=False, grad_scale=None, found_inf=None,
            )  # fmt: skip
            _FUSED_ADAM[device.type] = True
        except (AttributeError, NotImplementedError, RuntimeError):
            _FUSED_ADAM[device.type] = False
    return _FUSED_ADAM[device.type]


@torch.no_grad()
def update_target(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak-average the parameters and *copy* the buffers into the target network.

    Parameters move by ``tau`` toward the online network. Buffers (BatchNorm's
    ``running_mean``, ``running_var`` and ``num_batches_tracked``) are copied outright,
    as SB3 does: averaging only the parameters would leave a target network in eval mode
    normalising with statistics from its first step.
    """
    pair = _target_pairs.get(target)
    if pair is None or pair[0] is not online:
        # Listing the tensors walks both module trees; do it once per target, not per update.
        # Slice by slice, for the reason Adam steps that way (rlcheck.nets.seedstack.member_slices).
        pairs = list(zip(target.parameters(), online.parameters(), strict=True))
        pair = (
            online,
            [s for t, o in pairs for s in member_slices(t, o)],
            [s for _, o in pairs for s in member_slices(o)],
            list(target.buffers()),
            list(online.buffers()),
        )
        _target_pairs[target] = pair
    _, target_params, online_params, target_buffers, online_buffers = pair
    torch._foreach_lerp_(target_params, online_params, tau)
    for target_buffer, buffer in zip(target_buffers, online_buffers, strict=True):
        target_buffer.copy_(buffer)


_target_pairs: weakref.WeakKeyDictionary[nn.Module, tuple[nn.Module, list, list, list, list]] = (
    weakref.WeakKeyDictionary()
)
