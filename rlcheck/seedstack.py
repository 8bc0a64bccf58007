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
  does not depend on which seeds share its batch.
* ``vmap``: any other module that ``torch.func`` can batch: its parameters and buffers are
  stacked (``stack_module_state``) and the module runs under ``vmap(functional_call)``,
  BatchNorm with per-seed running statistics included.
* ``loop``: a module that neither can batch (data-dependent control flow, in-place tricks,
  random layers such as Dropout): the members run one after another (``fallback_reason``
  says why; the study prints it as a one-line notice before training).
"""

from __future__ import annotations

import copy
import dis
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.func import functional_call, stack_module_state, vmap

from rlcheck.nets import BatchRenorm1d

Strategy = Literal["fused", "vmap", "loop"]

# Layers that act on each element (or each row) alone, with no parameters or state: they
# apply to a (S, B, C) tensor unchanged.
ELEMENTWISE = (
    nn.ReLU,
    nn.Tanh,
    nn.ELU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Softplus,
    nn.Identity,
    nn.Hardtanh,
    nn.ReLU6,
)


class StackedLinear(nn.Module):
    """S independent ``nn.Linear`` layers: ``y[s] = x[s] @ weight[s] + bias[s]``."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        # (S, in, out): x @ W without a transpose; nn.Linear stores (out, in).
        self.weight = nn.Parameter(torch.stack([layer.weight.detach().t() for layer in layers]).contiguous())
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.shape[2] == 1:
            # One output: a stack of one would go to a matrix-vector kernel and round
            # differently from the batched one; a product and a row sum round the same for any S.
            y = (x * self.weight.transpose(1, 2)).sum(-1, keepdim=True)
            return y if self.bias is None else y + self.bias.unsqueeze(1)
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        state = {"weight": self.weight[s].t()}
        if self.bias is not None:
            state["bias"] = self.bias[s]
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
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers])) if first.affine else None
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers])) if first.affine else None
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
        self.weight = (
            nn.Parameter(torch.stack([m.weight.detach() for m in layers])) if first.weight is not None else None
        )
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers])) if first.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.normalized_shape, None, None, self.eps)
        if self.weight is not None:
            y = y * self.weight.unsqueeze(1)
        if self.bias is not None:
            y = y + self.bias.unsqueeze(1)
        return y

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        state = {}
        if self.weight is not None:
            state["weight"] = self.weight[s]
        if self.bias is not None:
            state["bias"] = self.bias[s]
        return state


class StackedBatchRenorm1d(BatchRenorm1d):
    """S independent :class:`rlcheck.nets.BatchRenorm1d` layers: the same forward, with (S, C)
    parameters and buffers, so statistics are taken over each seed's own batch."""

    def __init__(self, layers: Sequence[BatchRenorm1d]) -> None:
        nn.Module.__init__(self)  # not BatchRenorm1d's: its (C,) tensors are replaced by stacks
        first = layers[0]
        self.momentum, self.eps, self.warmup_steps = first.momentum, first.eps, first.warmup_steps
        self.r_max, self.d_max = first.r_max, first.d_max
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]))
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


IN_PLACE_SAFE = (StackedLinear, StackedLayerNorm, StackedBatchRenorm1d)  # they return a fresh tensor


def fusable(module: nn.Module) -> bool:
    """Whether rlcheck can fuse S copies of `module` into stacked layers (bit-identical per seed for any S)."""
    hooks = (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks, module._backward_pre_hooks)
    if any(hooks):  # the stacked layers would never call them
        return False
    if type(module) is nn.Sequential:  # exactly Sequential: a subclass may override forward
        return all(fusable(child) for child in module)
    if type(module) is nn.Linear or type(module) is BatchRenorm1d or type(module) in ELEMENTWISE:
        return True
    if type(module) is nn.BatchNorm1d:
        return module.track_running_stats
    if type(module) is nn.LayerNorm:
        return len(module.normalized_shape) == 1
    return False


# Element-wise calls a traced forward may make, as the layer that makes the same call.
_ELEMENTWISE_CALLS: dict[Callable | str, type[nn.Module]] = {
    torch.relu: nn.ReLU, F.relu: nn.ReLU, "relu": nn.ReLU,
    torch.tanh: nn.Tanh, F.tanh: nn.Tanh, "tanh": nn.Tanh,
    torch.sigmoid: nn.Sigmoid, F.sigmoid: nn.Sigmoid, "sigmoid": nn.Sigmoid,
    F.elu: nn.ELU, F.gelu: nn.GELU, F.silu: nn.SiLU, F.mish: nn.Mish, F.softplus: nn.Softplus,
    F.leaky_relu: nn.LeakyReLU, F.relu6: nn.ReLU6, F.hardtanh: nn.Hardtanh,
}  # fmt: skip


def as_chain(module: nn.Module) -> nn.Module | None:
    """`module` itself if :func:`fusable`; else its forward as an ``nn.Sequential`` of its
    own layers, if ``torch.fx`` traces it to a chain that :func:`fusable` accepts: each step
    one known layer, used once, or one element-wise call with default arguments, applied to
    the previous step's output alone.

    The layers keep their paths in the module (``.`` written ``:``), so a member's state maps
    back to the user's module. None where the forward is anything else (a branch, a skip
    connection, an argument, a parameter used directly, control flow fx cannot trace)."""
    if fusable(module):
        return module
    if not all(_reads_only_layers(m) for m in module.modules()):
        return None
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:  # not traceable: data-dependent control flow, unsupported calls, ...
        return None
    nodes = list(graph.nodes)
    if len(nodes) < 3 or nodes[0].op != "placeholder" or nodes[-1].op != "output":
        return None
    steps: OrderedDict[str, nn.Module] = OrderedDict()
    previous = nodes[0]
    for i, node in enumerate(nodes[1:-1]):
        if node.args != (previous,) or len(previous.users) != 1:
            return None
        if node.op == "call_module" and isinstance(node.target, str) and not node.kwargs:
            name, layer = node.target.replace(".", ":"), module.get_submodule(node.target)
            if name in steps or not fusable(layer):
                return None
        elif node.op in ("call_function", "call_method") and _default_call(node.target, node.kwargs):
            name, layer = f"#{i}", _ELEMENTWISE_CALLS[node.target]()  # no attribute is named '#...'
        else:
            return None
        steps[name] = layer
        previous = node
    if nodes[-1].args != (previous,) or len(previous.users) != 1:
        return None
    return nn.Sequential(steps)


# What a forward may name to be traced: modules and functions that compute, nothing else.
_CHAIN_NAMES = (
    frozenset({"torch", "nn", "functional", "F", "training"})
    | {name for name in _ELEMENTWISE_CALLS if isinstance(name, str)}
    | {getattr(f, "__name__", "") for f in _ELEMENTWISE_CALLS if not isinstance(f, str)}
)
_STORES = frozenset(op for op in dis.opname if op.startswith(("STORE_", "DELETE_")) and "FAST" not in op)


def _reads_only_layers(module: nn.Module) -> bool:
    """Whether `module`'s forward (torch's own layers aside) names only its child layers and
    element-wise functions, and stores nothing but local variables. A trace keeps only what
    happens to tensors: a forward that also logs, counts or keeps an activation would lose it."""
    if type(module).__module__.startswith("torch.") or fusable(module):
        return True
    code = getattr(type(module).forward, "__code__", None)
    if code is None or any(isinstance(const, type(code)) for const in code.co_consts):  # a nested function
        return False
    if not set(code.co_names) <= _CHAIN_NAMES | set(module._modules):
        return False
    return not any(instruction.opname in _STORES for instruction in dis.get_instructions(code))


def _default_call(target: object, kwargs: dict[str, object]) -> bool:
    """Whether a traced call is an element-wise function rlcheck knows, with its default
    arguments (``inplace`` aside: it changes where the result goes, not its value)."""
    if target not in _ELEMENTWISE_CALLS:  # fx targets are functions or method names: hashable
        return False
    if not kwargs:
        return True
    try:
        parameters = inspect.signature(target).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a builtin without a signature, or a method name
        return False
    return all(
        key == "inplace" or (key in parameters and parameters[key].default == value) for key, value in kwargs.items()
    )


def _fuse(members: Sequence[nn.Module]) -> nn.Module:
    """The stacked layer for one layer position of every member."""
    first = members[0]
    if type(first) is nn.Sequential:
        fused = [_fuse([m[i] for m in members]) for i in range(len(first))]  # type: ignore[index]
        for i in range(1, len(fused)):
            # A ReLU may overwrite what a stacked layer just produced (none of them needs its
            # own output for the backward pass): one (S, B, C) tensor less to allocate and fill.
            # Not after BatchNorm, whose output is a transposed view: autograd would then copy
            # the whole base tensor back and forth (CopySlices): 6-10% of a BatchNorm update, measured.
            if type(fused[i]) is nn.ReLU and type(fused[i - 1]) in IN_PLACE_SAFE:
                fused[i] = nn.ReLU(inplace=True)
        return nn.Sequential(OrderedDict(zip(first._modules, fused, strict=True)))  # names kept: see `member`
    if type(first) is nn.Linear:
        return StackedLinear(members)  # type: ignore[arg-type]
    if type(first) is nn.BatchNorm1d:
        return StackedBatchNorm1d(members)  # type: ignore[arg-type]
    if type(first) is nn.LayerNorm:
        return StackedLayerNorm(members)  # type: ignore[arg-type]
    if type(first) is BatchRenorm1d:
        return StackedBatchRenorm1d(members)  # type: ignore[arg-type]
    return copy.deepcopy(first)  # element-wise, stateless


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
            self.body: nn.Module = _fuse(chains or members)
            mark_seed_first(*self.body.parameters())
        elif strategy == "vmap":
            params, buffers = stack_module_state(list(members))  # type: ignore[arg-type]
            self._param_names, self._buffer_names = list(params), list(buffers)
            self.params = nn.ParameterList([nn.Parameter(p.detach()) for p in params.values()])
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
        """A member's structure (layer types and names) -- not its current weights."""
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
            return self.body(x)  # type: ignore[no-any-return]
        if self.strategy == "vmap":
            # Made per call, not stored: a stored wrapper would survive deepcopy bound to the original.
            return vmap(self._member_forward)(*self._stacked_state(), x)  # type: ignore[no-any-return]
        return torch.stack([member(x[s]) for s, member in enumerate(self.members)])

    def train(self, mode: bool = True) -> SeedStack:
        super().train(mode)
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
