"""Fusing S seeds' copies of a network into stacked layers (rlcheck.nets.seedstack's ``fused`` strategy).

Each stacked layer holds S independent copies of one layer, seed first, and computes all of
them in one call: one batched matrix multiply per ``Linear``, one normalisation call per
norm layer. :func:`fuse` builds the stacked network; which networks are made only of such layers, and
how a module with a ``forward`` of its own is read as one, is rlcheck.nets.tracing's.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rlcheck.nets import BatchRenorm1d


def _stacked(tensors: list[torch.Tensor], like: torch.Tensor, contiguous: bool = False) -> nn.Parameter:
    """One member's tensors stacked seed-first, as a parameter trainable where the member's is:
    a layer the user froze (``requires_grad=False``) stays frozen."""
    stacked = torch.stack(tensors)
    return nn.Parameter(stacked.contiguous() if contiguous else stacked, requires_grad=like.requires_grad)


class StackedLinear(nn.Module):
    """S independent ``nn.Linear`` layers: ``y[s] = x[s] @ weight[s] + bias[s]``.

    The tensors are laid out for the kernels, so that a forward pass is one call with no views
    to make (each view is one more node for autograd to walk back): the weight ``(S, in, out)``
    (``x @ W`` without a transpose; ``nn.Linear`` stores ``(out, in)``), or ``(S, 1, in)`` --
    ``nn.Linear``'s own layout -- for one output; the bias ``(S, 1, out)``, broadcast over the batch.
    """

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.one_output = layers[0].out_features == 1
        self.one_input = layers[0].in_features == 1
        weights = [layer.weight.detach() if self.one_output else layer.weight.detach().t() for layer in layers]
        self.weight = _stacked(weights, layers[0].weight, contiguous=True)
        bias = layers[0].bias
        self.bias = None if bias is None else _stacked([layer.bias.detach().unsqueeze(0) for layer in layers], bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.one_output:
            # A stack of one would go to a matrix-vector kernel and round differently from the
            # batched one; a product and a row sum round the same for any S.
            y = (x * self.weight).sum(-1, keepdim=True)
            return y if self.bias is None else y + self.bias
        if self.one_input:
            # Likewise for one input: a stack of one goes to another kernel (x @ W is one product
            # per output, broadcast here); so do the gradients of a batched product of one.
            y = x * self.weight
            return y if self.bias is None else y + self.bias
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        state = {"weight": self.weight[s] if self.one_output else self.weight[s].t()}
        if self.bias is not None:
            state["bias"] = self.bias[s, 0]
        return state


class StackedBatchNorm1d(nn.Module):
    """S independent ``nn.BatchNorm1d`` layers, each normalising its own seed's batch.

    The S x C features are handed to one ``F.batch_norm`` call as S*C channels, which is
    what BatchNorm computes per channel anyway (same statistics, same running-average update).
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, layers: Sequence[nn.BatchNorm1d]) -> None:
        super().__init__()
        first = layers[0]
        self.num_features, self.eps, self.momentum = first.num_features, first.eps, first.momentum
        self.weight = _stacked([m.weight.detach() for m in layers], layers[0].weight) if first.affine else None
        self.bias = _stacked([m.bias.detach() for m in layers], layers[0].bias) if first.affine else None
        self.register_buffer("running_mean", torch.stack([m.running_mean for m in layers]))  # type: ignore[misc]
        self.register_buffer("running_var", torch.stack([m.running_var for m in layers]))  # type: ignore[misc]
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.clone())  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seeds, batch, features = x.shape
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        flat = F.batch_norm(
            x.transpose(0, 1).reshape(batch, seeds * features),
            self.running_mean.view(-1),
            self.running_var.view(-1),
            None if self.weight is None else self.weight.view(-1),
            None if self.bias is None else self.bias.view(-1),
            self.training,
            factor,
            self.eps,
        )
        return flat.view(batch, seeds, features).transpose(0, 1)

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        state = {"running_mean": self.running_mean[s], "running_var": self.running_var[s]}
        state["num_batches_tracked"] = self.num_batches_tracked
        if self.weight is not None and self.bias is not None:
            state |= {"weight": self.weight[s], "bias": self.bias[s]}
        return state


class StackedLayerNorm(nn.Module):
    """S independent ``nn.LayerNorm`` layers over the last dimension."""

    def __init__(self, layers: Sequence[nn.LayerNorm]) -> None:
        super().__init__()
        first = layers[0]
        self.normalized_shape, self.eps = tuple(first.normalized_shape), first.eps
        # (S, 1, C), like StackedLinear's bias: broadcast over the batch without a view per call.
        weight, bias = first.weight, first.bias
        self.weight = None if weight is None else _stacked([m.weight.detach().unsqueeze(0) for m in layers], weight)
        self.bias = None if bias is None else _stacked([m.bias.detach().unsqueeze(0) for m in layers], bias)
        self._unit_affine: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The per-seed affine cannot go into the kernel (it takes one weight for all rows), but a
        # unit one can: the same bits as none, and torch's CPU kernel takes a faster path with it
        # (benchmarks/speed.py measures the step).
        unit = self._unit_affine.get((x.device, x.dtype))
        if unit is None:
            unit = (x.new_ones(self.normalized_shape), x.new_zeros(self.normalized_shape))
            self._unit_affine[(x.device, x.dtype)] = unit
        y = F.layer_norm(x, self.normalized_shape, *unit, self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        state = {}
        if self.weight is not None:
            state["weight"] = self.weight[s, 0]
        if self.bias is not None:
            state["bias"] = self.bias[s, 0]
        return state


class StackedBatchRenorm1d(BatchRenorm1d):
    """S independent :class:`rlcheck.nets.BatchRenorm1d` layers: the same forward, with (S, C)
    parameters and buffers, so statistics are taken over each seed's own batch."""

    def __init__(self, layers: Sequence[BatchRenorm1d]) -> None:
        nn.Module.__init__(self)  # not BatchRenorm1d's: its (C,) tensors are replaced by stacks
        first = layers[0]
        self.momentum, self.eps, self.warmup_steps = first.momentum, first.eps, first.warmup_steps
        self.r_max, self.d_max = first.r_max, first.d_max
        self.weight = _stacked([m.weight.detach() for m in layers], layers[0].weight)
        self.bias = _stacked([m.bias.detach() for m in layers], layers[0].bias)
        self.register_buffer("running_mean", torch.stack([m.running_mean for m in layers]))
        self.register_buffer("running_var", torch.stack([m.running_var for m in layers]))
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.clone())

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        return {
            "weight": self.weight[s],
            "bias": self.bias[s],
            "running_mean": self.running_mean[s],
            "running_var": self.running_var[s],
            "num_batches_tracked": self.num_batches_tracked,
        }


class StackedChain(nn.Sequential):
    """The stacked layers of a chain, run in order. Each layer's ``forward`` is called directly:
    these layers are rlcheck's own (a network with hooks is not fused), so the module call's
    hook machinery would only add its overhead -- per layer, several times per update."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._modules.values():
            x = layer.forward(x)  # type: ignore[union-attr]
        return x


IN_PLACE_SAFE = (StackedLinear, StackedLayerNorm, StackedBatchRenorm1d)  # they return a fresh tensor


def fuse(members: Sequence[nn.Module]) -> nn.Module:
    """The stacked layer for one layer position of every member."""
    first = members[0]
    if type(first) is nn.Sequential:
        fused = [fuse([m[i] for m in members]) for i in range(len(first))]  # type: ignore[index]
        for i in range(1, len(fused)):
            # A ReLU may overwrite what a stacked layer just produced (none of them needs its
            # own output for the backward pass): one (S, B, C) tensor less to allocate and fill.
            # Not after BatchNorm, whose output is a transposed view: autograd would then copy
            # the whole base tensor back and forth (CopySlices), which costs more than it saves.
            if type(fused[i]) is nn.ReLU and type(fused[i - 1]) in IN_PLACE_SAFE:
                fused[i] = nn.ReLU(inplace=True)
        return StackedChain(OrderedDict(zip(first._modules, fused, strict=True)))  # names kept: see `member`
    if type(first) is nn.Linear:
        return StackedLinear(members)  # type: ignore[arg-type]
    if type(first) is nn.BatchNorm1d:
        return StackedBatchNorm1d(members)  # type: ignore[arg-type]
    if type(first) is nn.LayerNorm:
        return StackedLayerNorm(members)  # type: ignore[arg-type]
    if type(first) is BatchRenorm1d:
        return StackedBatchRenorm1d(members)  # type: ignore[arg-type]
    return copy.deepcopy(first)  # element-wise, stateless
