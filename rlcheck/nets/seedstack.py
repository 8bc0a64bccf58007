"""Many seeds' copies of one network, trained as one batched computation.

A :class:`SeedStack` holds one independently initialised copy of a user's network per
seed and maps a ``(S, B, in_dim)`` batch (seed first) to ``(S, B, out_dim)``: member ``s``
sees only row ``s``. Members share no parameters, so the gradient of a sum of per-seed
losses gives each member exactly the gradient it would get alone, and element-wise
optimisers (Adam) step each member as if it were alone.

Three ways to stack, tried in this order when a stack is built:

* ``fused``: a network that is an ``nn.Sequential`` (nested allowed) of layers rlcheck
  knows -- ``Linear``, ``BatchNorm1d``, ``LayerNorm``, rlcheck's ``BatchRenorm1d`` and
  element-wise activations -- becomes the same sequence of stacked layers: one batched
  matrix multiply (``baddbmm``) per ``Linear`` for all seeds, one normalisation call per
  norm layer. So does a module with a ``forward`` of its own that ``torch.fx`` traces to
  such a chain (``fc2(relu(fc1(x)))``, the way most users write an MLP), once the chain
  has been checked against the module on a sample batch in both modes. Member ``s`` of a
  fused stack computes bit for bit what it computes in a stack of one, so a seed's run
  does not depend on which seeds share its batch. The stacked layers, and which networks
  fuse, are in :mod:`rlcheck.nets.fusion`.
* ``vmap``: any other module that ``torch.func`` can batch: its parameters and buffers are
  stacked (``stack_module_state``) and the module runs under ``vmap(functional_call)``,
  BatchNorm with per-seed running statistics included.
* ``loop``: a module that neither can batch (data-dependent control flow, in-place tricks,
  random layers such as Dropout): the members run one after another (``fallback_reason``
  says why; the study prints it as a one-line notice before training).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from rlcheck.nets.fusion import fuse
from rlcheck.nets.tracing import as_chain, fusable

Strategy = Literal["fused", "vmap", "loop"]


def mark_seed_first(*tensors: torch.Tensor) -> None:
    """Mark tensors that hold one slice per member along dimension 0 (see :func:`member_slices`)."""
    for tensor in tensors:
        tensor._rlcheck_seed_first = True  # type: ignore[attr-defined]


def member_slices(tensor: torch.Tensor, like: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """`tensor` as its members' slices (views) if it -- or `like`, the tensor it belongs with:
    a parameter's gradient, moments or target copy, none of which carries the mark -- is marked
    seed-first; otherwise `tensor` whole.

    Element-wise kernels (Adam's, lerp's) compute the bulk of a tensor with vector
    instructions and its last few elements with scalar ones, which can round differently.
    Which elements fall in that tail depends on the tensor's size: stepped as one (S, ...)
    tensor, a member's numbers would depend on S. Stepped member by member, each slice is
    split exactly as the member's own tensor is when it trains alone."""
    return tensor.unbind(0) if is_seed_first(tensor if like is None else like) else (tensor,)


def is_seed_first(tensor: torch.Tensor) -> bool:
    """Whether `tensor` was marked seed-first (a copy or ``zeros_like`` of it is not)."""
    return getattr(tensor, "_rlcheck_seed_first", False)


class SeedStack(nn.Module):
    """One copy of a network per seed; ``(S, B, in_dim) -> (S, B, out_dim)``.

    Build it with :meth:`of` from the members (each initialised under its own seed).
    ``strategy`` says how the members are batched (see the module docstring).
    """

    def __init__(
        self, members: Sequence[nn.Module], strategy: Strategy, chains: Sequence[nn.Module] | None = None
    ) -> None:
        """``chains``: for ``fused``, the members as chains of layers (:func:`as_chain`); default the members."""
        super().__init__()
        self.size, self.strategy = len(members), strategy
        self.fallback_reason: str | None = None  # why a "loop" stack could not be batched
        # The members' structure, for reports (which layers the user's network has) and
        # for `member`. Kept outside the module tree: its own tensors are stale copies.
        self._template: tuple[nn.Module, ...] = (copy.deepcopy(members[0]),)
        if strategy == "fused":
            self.body: nn.Module = fuse(chains or members)
            mark_seed_first(*self.body.parameters())
        elif strategy == "vmap":
            params, buffers = stack_module_state(list(members))  # type: ignore[arg-type]
            self._param_names, self._buffer_names = list(params), list(buffers)
            trainable = dict(members[0].named_parameters())
            self.params = nn.ParameterList(
                [nn.Parameter(p.detach(), requires_grad=trainable[n].requires_grad) for n, p in params.items()]
            )
            mark_seed_first(*self.params)
            for i, b in enumerate(buffers.values()):
                self.register_buffer(f"stacked_buffer_{i}", b.clone())
        else:
            self.members = nn.ModuleList(members)

    @classmethod
    def of(cls, members: Sequence[nn.Module], name: str = "net", sample_in: torch.Tensor | None = None) -> SeedStack:
        """The fastest stack that computes what the members compute one by one.

        ``sample_in`` (``(S, B, in_dim)``) is used to check a traced chain or a ``vmap`` stack
        against the members before it is trusted; a module neither can batch falls back to ``loop``.
        """
        if all(fusable(m) for m in members) and len({_structure(m) for m in members}) == 1:
            return cls(members, "fused")
        chains = [chain for chain in map(as_chain, members) if chain is not None]
        traced = len(chains) == len(members) and len({_structure(c) for c in chains}) == 1
        if traced and _batching_failure(members, sample_in, "fused", chains) is None:
            return cls(members, "fused", chains)
        reason = _batching_failure(members, sample_in, "vmap")
        if reason is None:
            return cls(members, "vmap")
        stack = cls(members, "loop")
        stack.fallback_reason = reason
        return stack

    @property
    def template(self) -> nn.Module:
        """A member's structure (layer types and names) -- not its current weights, nor (unless the
        stack is ``vmap``, which runs it) its current mode."""
        return self._template[0]

    def _member_forward(
        self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), (x,))  # type: ignore[no-any-return]

    def _stacked_state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = dict(zip(self._param_names, self.params, strict=True))
        buffers = {name: getattr(self, f"stacked_buffer_{i}") for i, name in enumerate(self._buffer_names)}
        return params, buffers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.strategy == "fused":
            return self.body.forward(x)  # type: ignore[no-any-return]  # rlcheck's own chain: no hooks to run
        if self.strategy == "vmap":
            # Made per call, not stored: a stored wrapper would survive deepcopy bound to the original.
            return vmap(self._member_forward)(*self._stacked_state(), x)  # type: ignore[no-any-return]
        return torch.stack([member(x[s]) for s, member in enumerate(self.members)])

    def train(self, mode: bool = True) -> SeedStack:
        super().train(mode)
        if self.strategy == "vmap":
            self.template.train(mode)  # functional_call runs the template: it must be in the same mode
        return self

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> SeedStack:  # type: ignore[override]
        super()._apply(fn, recurse)
        self.template._apply(fn, recurse)  # keep the vmap template on the members' device
        return self

    def member(self, s: int) -> nn.Module:
        """Seed ``s``'s network as a standalone module (a copy, with its current weights and buffers)."""
        if self.strategy == "loop":
            return copy.deepcopy(self.members[s])
        module = copy.deepcopy(self.template)
        if self.strategy == "vmap":
            params, buffers = self._stacked_state()
            state = {name: t[s] for name, t in (params | buffers).items()}
        else:
            state = {
                f"{prefix.replace(':', '.')}.{key}" if prefix else key: value  # see as_chain for ':'
                for prefix, stacked in _stacked_leaves(self.body)
                for key, value in stacked.member_state(s).items()  # type: ignore[operator]
            }
        module.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return module.train(self.training)

    @torch.no_grad()
    def load_member(self, other: SeedStack, s: int, into: int = 0) -> None:
        """Set member `into` of this stack to member `s` of `other`: the same network, stacked the
        same way (parameters and buffers; a shared step counter is taken as it is)."""
        if other.strategy != self.strategy:
            raise ValueError(f"cannot load a {other.strategy} stack's member into a {self.strategy} stack")
        if self.strategy == "loop":
            self.members[into].load_state_dict(other.members[s].state_dict())
        elif self.strategy == "vmap":
            for mine, theirs in zip(self._stacked_tensors(), other._stacked_tensors(), strict=True):
                mine[into].copy_(theirs[s])
        else:
            for (_, layer), (_, source) in zip(_stacked_leaves(self.body), _stacked_leaves(other.body), strict=True):
                targets = layer.member_state(into)  # type: ignore[operator]  # views into this stack's tensors
                for key, value in source.member_state(s).items():  # type: ignore[operator]
                    targets[key].copy_(value)

    def _stacked_tensors(self) -> list[torch.Tensor]:
        params, buffers = self._stacked_state()
        return [*params.values(), *buffers.values()]

    def member_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """(name, layer) of each layer of a member, as the user's factory built it."""
        return self.template.named_modules()


def _stacked_leaves(body: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in body.named_modules():
        if hasattr(module, "member_state"):
            yield name, module


def _structure(module: nn.Module) -> tuple[tuple[str, type, tuple[tuple[int, ...], ...]], ...]:
    return tuple(
        (name, type(m), tuple(tuple(p.shape) for p in m.parameters(recurse=False)))
        for name, m in module.named_modules()
    )


def _batching_failure(
    members: Sequence[nn.Module],
    sample_in: torch.Tensor | None,
    strategy: Strategy,
    chains: Sequence[nn.Module] | None = None,
) -> str | None:
    """Why a ``strategy`` stack cannot stand in for the members (None: it can), tried on a
    sample batch in train and eval mode. Every member's state is restored afterwards."""
    if sample_in is None:
        return "no sample batch to check it on"
    saved = [copy.deepcopy(m.state_dict()) for m in members]
    modes = [m.training for m in members]
    try:
        trial = SeedStack([copy.deepcopy(m) for m in members], strategy, chains)
        for training in (True, False):
            trial.train(training)
            for m in members:
                m.train(training)
            with torch.no_grad():
                batched = trial(sample_in)
                one_by_one = torch.stack([m(sample_in[s]) for s, m in enumerate(members)])
            if batched.shape != one_by_one.shape or not torch.allclose(batched, one_by_one, rtol=1e-4, atol=1e-5):
                mode = "train" if training else "eval"
                return f"{strategy} stack gives other outputs than the network alone in {mode} mode"
        return None
    except Exception as exc:  # any failure means: not batchable this way
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        how = "torch.func.vmap" if strategy == "vmap" else "its forward as a chain of layers"
        return f"{how}: {type(exc).__name__}: {first_line[:120]}"
    finally:
        for m, state, training in zip(members, saved, modes, strict=True):
            m.load_state_dict(state)
            m.train(training)
