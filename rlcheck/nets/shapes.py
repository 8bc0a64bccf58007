"""Users' networks as they write them: what shape a module has (rlcheck.nets.adapters then gives
the algorithms rlcheck's one contract, see :mod:`rlcheck.nets`).

Detected from the factory's signature, the module's ``forward`` signature, its outputs on a
sample batch and, for a deterministic actor, its ``torch.fx`` graph:

* constructors: ``fn(in_dim, out_dim)``; ``fn(observation_space, action_space)``; a class
  taking the env (CleanRL's ``Actor(env)``: rlcheck hands it a stand-in with the single and
  the batched spaces); an SB3-style features extractor ``(observation_space, features_dim)``,
  which rlcheck puts in front of a plain head;
* critics: ``forward(x)`` on ``[obs, action]`` or ``forward(obs, action)``; ``(B, 1)`` or ``(B,)``;
* deterministic actors (TD3): raw pre-activations (rlcheck applies tanh) or already squashed
  by a final tanh, possibly scaled to the env's bounds (rlcheck must not squash again);
* Gaussian actors (SAC): one ``2 * act_dim`` tensor (mean, raw log-std: rlcheck bounds it),
  a ``(mean, log_std)`` tuple whose log-std the module bounds itself, or ``(loc, scale)``.

What cannot be taken is refused with a :class:`~rlcheck.errors.UsageError` naming the fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcheck.errors import UsageError
from rlcheck.nets import ActorKind, actor_out_dim
from rlcheck.nets.tracing import ends_in_tanh

Role = Literal["actor", "critic"]
Constructor = Literal["dims", "spaces", "env", "features"]
FEATURES_DIM = 64  # what rlcheck asks of a features extractor; the plain head follows it


class DoesNotFit(UsageError):
    """The actor serves another algorithm (a deterministic actor cannot run SAC, a Gaussian one TD3)."""


@dataclass(frozen=True)
class NetShape:
    """What rlcheck detected of one network, and how it adapts it."""

    role: Role
    constructor: Constructor
    two_inputs: bool = False  # critic: forward(obs, action)
    flat_q: bool = False  # critic: (B,) instead of (B, 1)
    # actor: "raw" (rlcheck squashes), "squashed" (in [-1, 1] or scaled to the env's bounds),
    # "log-std" / "scale" (a Gaussian's parameters as a tuple)
    output: str = "raw"
    scaled: bool = False  # squashed, then scaled to the env's action bounds

    @property
    def builtin_contract(self) -> bool:
        """Whether the module already is what the algorithms take: no adapter in front of it (a
        squashed actor goes to rlcheck.nets.adapters, which may fuse the chain before its scaling)."""
        return self.constructor == "dims" and not self.two_inputs and not self.flat_q and self.output == "raw"

    def describe(self) -> str:
        made = {
            "dims": "fn(in_dim, out_dim)",
            "spaces": "fn(observation_space, action_space)",
            "env": "Class(env)",
            "features": f"features extractor (observation_space, {FEATURES_DIM}) + plain head",
        }[self.constructor]
        if self.role == "critic":
            inputs = "forward(obs, action)" if self.two_inputs else "forward([obs, action])"
            return f"{made}, {inputs} -> {'(B,)' if self.flat_q else '(B, 1)'}"
        output = {
            "raw": "raw outputs (rlcheck squashes them)",
            "squashed": "already squashed" + (", scaled to the env's bounds" if self.scaled else " into [-1, 1]"),
            "log-std": "(mean, log_std) tuple, log-std used as the module bounds it",
            "scale": "(loc, scale) tuple, scale > 0",
        }[self.output]
        return f"{made}, forward(obs) -> {output}"


def _positional(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in parameters if p.kind in kinds]


def constructor_kind(factory: Callable[..., Any]) -> Constructor:
    """How a factory is called, from its signature (a class: its ``__init__``)."""
    params = _positional(factory)
    required = [p for p in params if p.default is inspect.Parameter.empty]
    names = [p.name.lower() for p in params[:2]]
    if len(names) == 2 and names[1] == "features_dim":
        return "features"
    if len(required) == 1:
        return "env"
    annotations = [str(p.annotation) for p in params[:2]]
    if any("space" in n for n in names) or any("Space" in a or "Box" in a for a in annotations):
        return "spaces"
    return "dims"


def env_stand_in(obs_space: gym.Space, act_space: gym.Space) -> SimpleNamespace:
    """What a CleanRL-style class reads of its (vector) env: the single and the batched spaces."""
    from gymnasium.vector.utils import batch_space

    return SimpleNamespace(
        single_observation_space=obs_space,
        single_action_space=act_space,
        observation_space=batch_space(obs_space, 1),
        action_space=batch_space(act_space, 1),
        num_envs=1,
    )


def call_constructor(
    factory: Callable[..., Any],
    kind: Constructor,
    in_dim: int,
    out_dim: int,
    obs_space: gym.Space,
    act_space: gym.Space,
) -> nn.Module:
    if kind == "dims":
        return factory(in_dim, out_dim)  # type: ignore[no-any-return]
    if kind == "spaces":
        return factory(obs_space, act_space)  # type: ignore[no-any-return]
    if kind == "env":
        return factory(env_stand_in(obs_space, act_space))  # type: ignore[no-any-return]
    return factory(obs_space, FEATURES_DIM)  # type: ignore[no-any-return]


def _refuse_unsupported(module: nn.Module, name: str, role: Role) -> None:
    lazy = [
        n or type(module).__name__ for n, m in module.named_modules() if isinstance(m, nn.modules.lazy.LazyModuleMixin)
    ]
    if lazy:
        raise UsageError(
            f"net {name!r} has lazy layers ({', '.join(lazy)}); rlcheck stacks each seed's parameters before any "
            "forward pass: give their input sizes (LazyLinear(out) -> Linear(in, out); TorchRL's MLP: in_features=...)"
        )
    if role == "actor":
        arguments = set(inspect.signature(module.forward).parameters)
        if arguments & {"deterministic", "with_logprob", "with_log_prob"} or hasattr(module, "get_action_dist_params"):
            raise UsageError(
                f"actor {name!r} samples its actions inside forward; rlcheck samples them itself: pass the network "
                "that gives the Gaussian's parameters, as a module returning (mean, log_std) (Spinning Up: the body "
                "with mu_layer and log_std_layer; SB3: latent_pi with mu and log_std)"
            )


def _sample(module: nn.Module, name: str, role: Role, two_inputs: bool, obs_dim: int, act_dim: int, device: str) -> Any:
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(8, obs_dim, generator=gen).to(device)
    action = (torch.rand(8, act_dim, generator=gen) * 2 - 1).to(device)
    try:
        with torch.no_grad():
            if role == "actor":
                return module(obs)
            return module(obs, action) if two_inputs else module(torch.cat([obs, action], -1))
    except Exception as exc:
        fed = "(obs (8, {0}), action (8, {1}))" if two_inputs else "a (8, {2}) batch"
        raise UsageError(
            f"net {name!r} failed on {fed.format(obs_dim, act_dim, obs_dim + (act_dim if role == 'critic' else 0))} "
            f"with {type(exc).__name__}: {exc}; rlcheck feeds an actor forward(obs) and a critic "
            "forward([obs, action]) or forward(obs, action)"
        ) from None


def _check_finite_and_batch_of_one(
    module: nn.Module, out: Any, name: str, role: Role, two_inputs: bool, obs_dim: int, act_dim: int, device: str
) -> None:
    outputs = out if isinstance(out, (tuple, list)) else (out,)
    if any(isinstance(o, torch.Tensor) and not bool(torch.isfinite(o).all()) for o in outputs):
        raise UsageError(f"net {name!r} outputs NaN or inf on a random batch; check its initialisation")
    obs, action = torch.zeros(1, obs_dim, device=device), torch.zeros(1, act_dim, device=device)
    try:
        with torch.no_grad():
            module.eval()
            if role == "actor":
                module(obs)
            elif two_inputs:
                module(obs, action)
            else:
                module(torch.cat([obs, action], -1))
    except Exception as exc:
        raise UsageError(
            f"net {name!r} cannot run a batch of one in eval mode ({type(exc).__name__}: {exc}); "
            "agents act one observation at a time in eval mode"
        ) from None
    finally:
        module.train()


def _squashes_empirically(module: nn.Module, obs_dim: int, device: str) -> bool | None:
    """For a forward fx cannot trace: False if some output leaves [-1, 1] on large inputs
    (raw pre-activations); None if none does (it may squash: rlcheck cannot tell)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out = module(100 * torch.randn(64, obs_dim, generator=gen).to(device))
    if isinstance(out, torch.Tensor) and bool((out.abs() > 1 + 1e-6).any()):
        return False
    return None


def _forward_arity(module: nn.Module) -> int:
    params = [p for p in _positional(module.forward) if p.default is inspect.Parameter.empty]
    return len(params)


def detect(
    factory: Callable[..., Any],
    name: str,
    role: Role,
    actor_kind: ActorKind,
    obs_space: gym.spaces.Box,
    act_space: gym.spaces.Box,
    device: str = "cpu",
    actor_output: str = "auto",
    algo: str = "",
) -> NetShape:
    """The shape of the network `factory` builds for `role` in an algorithm whose actor is of
    `actor_kind` (`algo` names it in messages), checked on a sample batch.

    Raises :class:`DoesNotFit` for an actor of the other kind, :class:`UsageError` for a
    module rlcheck cannot take."""
    user = algo.upper() or f"an algorithm with a {actor_kind} actor"
    obs_dim, act_dim = gym.spaces.flatdim(obs_space), gym.spaces.flatdim(act_space)
    kind = constructor_kind(factory)
    in_dim = obs_dim + act_dim if role == "critic" else obs_dim
    out_dim = 1 if role == "critic" else actor_out_dim(actor_kind, act_dim)
    module = _build(factory, kind, name, in_dim, out_dim, obs_space, act_space)
    _refuse_unsupported(module, name, role)
    if kind == "features":
        return NetShape(role, kind)  # a plain head follows: rlcheck's own contract
    module = module.to(device).train()
    asked = _Asked(name, kind, obs_dim, act_dim, in_dim, out_dim, device, actor_output, act_space, actor_kind, user)
    if role == "critic":
        return _critic_shape(module, asked)
    out = _sample(module, name, role, False, obs_dim, act_dim, device)
    _check_finite_and_batch_of_one(module, out, name, role, False, obs_dim, act_dim, device)
    if isinstance(out, (tuple, list)):
        return _gaussian_shape(out, asked)
    return _tensor_actor_shape(module, out, asked)


@dataclass(frozen=True)
class _Asked:
    """What :func:`detect` was asked about: the module's name and constructor, the sizes it is
    built for, and the algorithm's actor kind (`user` names the algorithm in messages)."""

    name: str
    kind: Constructor
    obs_dim: int
    act_dim: int
    in_dim: int
    out_dim: int
    device: str
    actor_output: str
    act_space: gym.spaces.Box
    actor_kind: ActorKind
    user: str

    @property
    def gaussian(self) -> bool:
        return self.actor_kind == "gaussian"


def _critic_shape(module: nn.Module, a: _Asked) -> NetShape:
    two_inputs = a.kind != "features" and _forward_arity(module) == 2
    out = _sample(module, a.name, "critic", two_inputs, a.obs_dim, a.act_dim, a.device)
    if isinstance(out, (tuple, list)):
        raise UsageError(
            f"critic {a.name!r} returns {len(out)} Q-values; rlcheck builds its twin critics itself: pass a critic "
            "that returns one (SB3's ContinuousCritic: n_critics=1; or a module wrapping one Q-network)"
        )
    if not isinstance(out, torch.Tensor) or tuple(out.shape) not in ((8, 1), (8,)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(
            f"net {a.name!r} maps (B, {a.in_dim}) to {got} with B=8; expected (B, 1) or (B,): one Q per sample"
        )
    _check_finite_and_batch_of_one(module, out, a.name, "critic", two_inputs, a.obs_dim, a.act_dim, a.device)
    return NetShape("critic", a.kind, two_inputs=two_inputs, flat_q=out.dim() == 1)


def _gaussian_shape(out: tuple | list, a: _Asked) -> NetShape:
    """An actor that returns a tuple: a Gaussian's (mean, log_std) or (loc, scale)."""
    name, act_dim = a.name, a.act_dim
    if len(out) != 2 or not all(isinstance(o, torch.Tensor) and tuple(o.shape) == (8, act_dim) for o in out):
        shapes = [tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__ for o in out]
        raise UsageError(
            f"actor {name!r} returns {shapes}; a Gaussian actor returns (mean, log_std) or (loc, scale), each "
            f"(B, {act_dim}) (an actor that returns (action, log_prob) samples itself: pass the network before it)"
        )
    if not a.gaussian:
        raise DoesNotFit(f"actor {name!r} is Gaussian; {a.user} takes a deterministic actor (it returns a tuple)")
    positive = bool((out[1] > 0).all())
    output = a.actor_output if a.actor_output in ("log-std", "scale") else ("scale" if positive else "log-std")
    if output == "scale" and not positive:
        raise UsageError(f"actor {name!r}: --actor-output scale, but its second output is not positive")
    return NetShape("actor", a.kind, output=output)


def _tensor_actor_shape(module: nn.Module, out: Any, a: _Asked) -> NetShape:
    """An actor that returns one tensor: a deterministic action (raw or squashed), or a
    Gaussian's mean and raw log-std side by side."""
    name, act_dim, out_dim = a.name, a.act_dim, a.out_dim
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 8:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(
            f"net {name!r} maps (B, {a.obs_dim}) to {got} with B=8; expected (B, {out_dim}) -- return one row per "
            "sample (keep the last dimension even if it is 1), or a (mean, log_std) tuple for SAC"
        )
    width = out.shape[1]
    squashed, scaled = _squashing(module, a)
    if squashed:
        if a.gaussian:
            raise DoesNotFit(
                f"actor {name!r} is deterministic (its actions are squashed); {a.user} takes a Gaussian actor"
            )
        if width != act_dim:
            raise UsageError(f"actor {name!r} returns (B, {width}) squashed actions; the env has {act_dim} action dims")
        low, high = a.act_space.low.reshape(-1), a.act_space.high.reshape(-1)
        unit_bounds = bool(np.all(low == -1) and np.all(high == 1))
        return NetShape("actor", a.kind, output="squashed", scaled=scaled and not unit_bounds)
    if width == act_dim and a.gaussian and a.kind != "dims":
        raise DoesNotFit(
            f"actor {name!r} returns {act_dim} values (a deterministic action); {a.user} takes a Gaussian actor"
        )
    if width == 2 * act_dim and not a.gaussian and a.kind != "dims":
        raise DoesNotFit(
            f"actor {name!r} returns 2 x {act_dim} values (a Gaussian's mean and log-std); {a.user} takes a "
            "deterministic actor"
        )
    if width != out_dim:
        raise UsageError(
            f"actor {name!r} maps (B, {a.obs_dim}) to (B, {width}); {a.user} needs (B, {out_dim})"
            + (" (mean and log-std)" if a.gaussian else "")
        )
    return NetShape("actor", a.kind, output="raw")


def _squashing(module: nn.Module, a: _Asked) -> tuple[bool, bool]:
    """(squashed, scaled after the squashing): as the user says, else from the traced graph,
    else from the outputs on large inputs where they leave [-1, 1]."""
    traced = ends_in_tanh(module)
    if traced is None and _squashes_empirically(module, a.obs_dim, a.device) is False:
        traced = (False, False)
    if a.actor_output in ("raw", "squashed"):
        squashed = a.actor_output == "squashed"
        return squashed, bool(traced and traced[1]) if squashed else False
    if traced is not None:
        return traced
    raise UsageError(
        f"actor {a.name!r}: rlcheck cannot trace its forward to tell whether it squashes its output; "
        "say so with --actor-output raw (rlcheck applies tanh) or --actor-output squashed"
    )


def _build(
    factory: Callable[..., Any],
    kind: Constructor,
    name: str,
    in_dim: int,
    out_dim: int,
    obs_space: gym.Space,
    act_space: gym.Space,
) -> nn.Module:
    try:
        module = call_constructor(factory, kind, in_dim, out_dim, obs_space, act_space)
    except Exception as exc:
        how = {"dims": f"({in_dim}, {out_dim})", "spaces": "(observation_space, action_space)", "env": "(env)"}.get(
            kind, f"(observation_space, {FEATURES_DIM})"
        )
        raise UsageError(f"net {name!r} raised {type(exc).__name__} when built as {how}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise UsageError(
            f"net {name!r} returned {type(module).__name__}, not a torch.nn.Module; "
            "make the factory return the module itself"
        )
    placed = {str(t.device) for t in (*module.parameters(), *module.buffers())} - {"cpu"}
    if placed:
        raise UsageError(
            f"net {name!r} builds its parameters on {', '.join(sorted(placed))}; build it on the CPU "
            "and let rlcheck move it (--device)"
        )
    return module
