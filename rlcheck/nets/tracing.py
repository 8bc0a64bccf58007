"""Reading a user's module through its ``torch.fx`` trace: which networks are chains of layers
rlcheck knows (:func:`fusable`, :func:`as_chain`), the chain inside a critic that concatenates
its inputs or an actor that scales a ``tanh`` (:func:`as_concat_critic_chain`,
:func:`as_squashed_chain`), and whether an actor's output is squashed (:func:`ends_in_tanh`).

Shared by the contract (rlcheck.nets.shapes, rlcheck.nets.adapters) and the stacking code
(rlcheck.nets.fusion): one reading of a module, so that what is detected is what is fused.
"""

from __future__ import annotations

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
    tanh = next((i for i in range(len(nodes) - 2, 0, -1) if is_tanh(nodes[i], module)), None)
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


def is_tanh(node: fx.Node, module: nn.Module) -> bool:
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


def ends_in_tanh(module: nn.Module) -> tuple[bool, bool] | None:
    """(ends in tanh, scaled after it) from the traced graph: the output, walked back through
    multiplications and additions by constants or buffers, is a tanh. None: not traceable."""
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:
        return None
    output = next(n for n in graph.nodes if n.op == "output")
    node, scaled = output.args[0], False
    while isinstance(node, fx.Node):
        if is_tanh(node, module):
            return True, scaled
        target = getattr(node.target, "__name__", str(node.target)).strip("_")
        if node.op in ("call_function", "call_method") and target in (
            "mul",
            "add",
            "sub",
            "truediv",
            "div",
        ):
            tensors = [a for a in node.args if isinstance(a, fx.Node) and a.op not in ("get_attr",)]
            if len(tensors) != 1:
                return False, scaled
            node, scaled = tensors[0], True
            continue
        return False, scaled
    return False, scaled
