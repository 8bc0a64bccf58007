"""Fusing S seeds' copies of a network into stacked layers (rlcheck.nets.seedstack's ``fused`` strategy).

Each stacked layer holds S independent copies of one layer, seed first, and computes all of
them in one call: one batched matrix multiply per ``Linear``, one normalisation call per
norm layer. :func:`fusable` says which networks are made only of such layers;
:func:`as_chain` finds the same chain in a module with a ``forward`` of its own;
:func:`fuse` builds the stacked network.
"""

from __future__ import annotations

import copy
import dis
import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

from rlcheck.nets import BatchRenorm1d

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
    nodes = _traced_nodes(module, inputs=1)
    if nodes is None:
        return None
    return _chain(module, nodes[0], nodes[1:-1], nodes[-1])


def as_concat_critic_chain(module: nn.Module) -> nn.Sequential | None:
    """A critic written as ``forward(obs, action)`` that concatenates its two inputs first and is
    a chain after that (CleanRL's ``QNetwork``, Spinning Up's ``MLPQFunction``): the chain, to be
    fed ``[obs, action]``. A final ``squeeze(-1)`` is left out: the chain returns ``(B, 1)``."""
    nodes = _traced_nodes(module, inputs=2, allowed=_plain_attributes(module))
    if nodes is None or len(nodes) < 5:
        return None
    obs, action, concat, *body, output = nodes
    if not _is_concat_of(concat, obs, action):
        return None
    if body and _is_squeeze_last(body[-1]):
        return _chain(module, concat, body[:-1], None) if output.args == (body[-1],) else None
    return _chain(module, concat, body, output)


def as_squashed_chain(module: nn.Module) -> nn.Sequential | None:
    """An actor whose forward is a chain ending in ``tanh``, then scaled by constants or buffers
    (CleanRL's ``tanh(x) * action_scale + action_bias``, Spinning Up's ``act_limit * tanh(x)``):
    the chain up to and including its ``tanh``. Whether dropping the scaling is right (it must
    be the env's bounds) is for the caller to check on a sample batch."""
    nodes = _traced_nodes(module, inputs=1, allowed=_plain_attributes(module))
    if nodes is None:
        return None
    tanh = next((i for i in range(len(nodes) - 2, 0, -1) if _is_tanh_node(nodes[i], module)), None)
    if tanh is None or tanh == len(nodes) - 2:
        return None  # no tanh, or nothing after it (as_chain already takes that)
    for node in nodes[tanh + 1 : -1]:  # only arithmetic with constants or buffers after the tanh
        if node.op == "get_attr":
            continue
        name = getattr(node.target, "__name__", str(node.target)).strip("_")
        if node.op not in ("call_function", "call_method") or name not in ("mul", "add", "sub", "truediv"):
            return None
    return _chain(module, nodes[0], nodes[1 : tanh + 1], None)


def _traced_nodes(module: nn.Module, inputs: int, allowed: frozenset[str] = frozenset()) -> list[fx.Node] | None:
    if not all(_reads_only_layers(m, allowed) for m in module.modules()):
        return None
    try:
        nodes = list(fx.symbolic_trace(module).graph.nodes)
    except Exception:  # not traceable: data-dependent control flow, unsupported calls, ...
        return None
    if len(nodes) < 2 + inputs or any(n.op != "placeholder" for n in nodes[:inputs]) or nodes[-1].op != "output":
        return None
    if any(n.op == "placeholder" for n in nodes[inputs:]):
        return None  # more inputs than the caller feeds
    return nodes


def _chain(module: nn.Module, first: fx.Node, body: Sequence[fx.Node], output: fx.Node | None) -> nn.Sequential | None:
    """The layers of `body` as an ``nn.Sequential``, if each step takes the previous one's output
    alone (and `output`, where the chain is the whole forward, returns the last one's)."""
    steps: OrderedDict[str, nn.Module] = OrderedDict()
    previous = first
    for i, node in enumerate(body):
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
    if not steps or len(previous.users) != 1 or (output is not None and output.args != (previous,)):
        return None
    return nn.Sequential(steps)


def _is_concat_of(node: fx.Node, first: fx.Node, second: fx.Node) -> bool:
    if node.op != "call_function" or node.target not in (torch.cat, torch.concat, torch.concatenate):
        return False
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    pair = isinstance(tensors, (list, tuple)) and list(tensors) == [first, second]
    return pair and dim in (1, -1) and len(node.users) == 1


def _is_squeeze_last(node: fx.Node) -> bool:
    squeeze = node.target is torch.squeeze if node.op == "call_function" else node.target == "squeeze"
    if node.op not in ("call_function", "call_method") or not squeeze:
        return False
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return bool(dim == -1)


def _is_tanh_node(node: fx.Node, module: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(module.get_submodule(str(node.target)), nn.Tanh)
    if node.op == "call_function":
        return node.target in (torch.tanh, F.tanh)
    return node.op == "call_method" and node.target == "tanh"


def _plain_attributes(module: nn.Module) -> frozenset[str]:
    """Names a forward may read besides its layers: its buffers and number attributes (an
    action scale, an action limit), and the calls that concatenate and squeeze."""
    numbers = {name for name, value in vars(module).items() if isinstance(value, (int, float))}
    return frozenset({*module._buffers, *numbers, "cat", "concat", "squeeze"})


# What a forward may name to be traced: modules and functions that compute, nothing else.
_CHAIN_NAMES = (
    frozenset({"torch", "nn", "functional", "F", "training"})
    | {name for name in _ELEMENTWISE_CALLS if isinstance(name, str)}
    | {getattr(f, "__name__", "") for f in _ELEMENTWISE_CALLS if not isinstance(f, str)}
)
_STORES = frozenset(op for op in dis.opname if op.startswith(("STORE_", "DELETE_")) and "FAST" not in op)


def _reads_only_layers(module: nn.Module, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether `module`'s forward (torch's own layers aside) names only its child layers and
    element-wise functions, and stores nothing but local variables. A trace keeps only what
    happens to tensors: a forward that also logs, counts or keeps an activation would lose it."""
    if type(module).__module__.startswith("torch.") or fusable(module):
        return True
    code = getattr(type(module).forward, "__code__", None)
    if code is None or any(isinstance(const, type(code)) for const in code.co_consts):  # a nested function
        return False
    if not set(code.co_names) <= _CHAIN_NAMES | set(module._modules) | allowed:
        return False
    return not any(instruction.opname in _STORES for instruction in dis.get_instructions(code))


def _default_call(target: object, kwargs: Mapping[str, object]) -> bool:
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
