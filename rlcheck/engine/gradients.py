"""The gradient door check: every trainable parameter of the online networks gets a finite,
non-zero gradient from the loss it is trained by -- before any real training starts.

A detached branch, a classifier's softmax over one output (always 1) or a layer the forward
never uses trains nothing, and no amount of seeds tells the user why a check then fails.
The check runs a few updates of the algorithm itself on a random batch, in the modes its
schedule sets, so a zero-initialised last layer (whose inputs' gradients are zero only at
initialisation) is not refused. Parameters the user froze (``requires_grad=False``, e.g. a
pretrained encoder) are named, not refused, unless asked.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rlcheck.algos import Agent
from rlcheck.algos.common import Batch
from rlcheck.errors import UsageError
from rlcheck.nets.seedstack import SeedStack

# Updates before the gradients are read: TD3 steps its actor every second update, so its
# actor has been stepped once and is read at its second step.
DOOR_UPDATES = 4
DOOR_BATCH = 32


def member_parameters(stack: SeedStack) -> Iterator[tuple[str, torch.Tensor, torch.Tensor | None]]:
    """(name in the user's module, member 0's parameter, its gradient) for every parameter."""
    if stack.strategy == "fused":
        for name, param in stack.body.named_parameters():
            yield name.replace(":", "."), param[0], None if param.grad is None else param.grad[0]
    elif stack.strategy == "vmap":
        for name, param in zip(stack._param_names, stack.params, strict=True):
            yield name, param[0], None if param.grad is None else param.grad[0]
    else:
        for name, param in stack.members[0].named_parameters():
            yield name, param, param.grad


def _action_gradient(agent: Agent, batch: Batch) -> float:
    """max |dQ1/da| over a batch, the critic in eval mode (no batch statistics involved)."""
    was_training = agent.q1.training
    agent.q1.eval()
    actions = batch.actions.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(agent.q1(batch.obs, actions).sum(), actions, allow_unused=True)
    agent.q1.train(was_training)
    return 0.0 if grad is None else float(grad.abs().max())


def _display(name: str) -> str:
    # rlcheck's adapters (rlcheck.nets.adapters) hold the user's module as `module`
    return name.removeprefix("module.")


def check_gradients(
    agent: Agent, obs_dim: int, act_dim: int, names: dict[str, str], refuse_frozen: bool = False
) -> list[str]:
    """Run :data:`DOOR_UPDATES` updates on a random batch and read each online network's gradients.

    ``names``: the net name of each role (``"actor"``, ``"critic"``), for messages. Returns
    notes on frozen parameters; raises :class:`UsageError` naming the parameters that get no
    gradient (or a non-finite one), and the frozen ones if ``refuse_frozen``."""
    members = agent.noise.members
    device = next(agent.actor.parameters()).device
    gen = torch.Generator().manual_seed(0)
    batch = Batch(
        obs=torch.randn(members, DOOR_BATCH, obs_dim, generator=gen).to(device),
        actions=(torch.rand(members, DOOR_BATCH, act_dim, generator=gen) * 2 - 1).to(device),
        rewards=torch.randn(members, DOOR_BATCH, generator=gen).to(device),
        next_obs=torch.randn(members, DOOR_BATCH, obs_dim, generator=gen).to(device),
        terminated=torch.zeros(members, DOOR_BATCH).to(device),
    )
    for _ in range(DOOR_UPDATES):
        agent.update(batch)
    dead: list[str] = []
    frozen: list[str] = []
    for role, module in (("actor", agent.actor), ("critic", agent.q1)):
        stack = next(m for m in module.modules() if isinstance(m, SeedStack))
        none, bad = [], []
        for name, param, grad in member_parameters(stack):
            if not param.requires_grad:
                frozen.append(f"{role} {names[role]!r}: {_display(name)}")
            elif grad is None or not bool(grad.abs().sum() > 0):
                none.append(_display(name))
            elif not bool(torch.isfinite(grad).all()):
                bad.append(_display(name))
        if none:
            dead.append(f"the {role} {names[role]!r} gets no gradient for {', '.join(none)}")
        if bad:
            dead.append(f"the {role} {names[role]!r} gets a non-finite gradient for {', '.join(bad)}")
    critic_dead = any(line.startswith("the critic") for line in dead)
    if not critic_dead and _action_gradient(agent, batch) == 0.0:
        # The actor learns from dQ/da alone: a critic blind to the action starves it, and the
        # actor's missing gradients would point the user at the wrong network.
        raise UsageError(
            f"the critic {names['critic']!r} ignores the action: dQ/da is 0 on a random batch, so the actor "
            "gets no gradient to learn from; look at how the critic combines its inputs (e.g. "
            "torch.cat([obs, obs]) where torch.cat([obs, action]) was meant, or an action input it never uses)"
        )
    if dead:
        raise UsageError(
            "; ".join(dead) + " from the loss it is trained by, so those parameters never learn: look for a "
            "detach(), a softmax over a single output (always 1) or a layer the forward does not use"
        )
    if frozen and refuse_frozen:
        raise UsageError(
            f"frozen parameters (requires_grad=False): {'; '.join(frozen)}; unfreeze them or drop --refuse-frozen"
        )
    return [f"frozen on purpose? {f} (requires_grad=False: rlcheck does not train it)" for f in frozen]
