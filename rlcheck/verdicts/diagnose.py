"""Why a network breaks off-policy learning: measurements on an agent, and what they find
(rlcheck.front.words says each finding in words).

Naive BatchNorm fails TD3 and SAC through mechanisms that can be measured directly:

* **The action gradient vanishes.** The actor learns from dQ/da. On a batch of identical
  states (and so, for TD3, identical actions) a BatchNorm layer in the critic in train
  mode subtracts the batch mean, which cancels whatever the batch has in common --
  including the action. dQ/da is then ~0 in train mode, though the same critic in eval
  mode (running statistics) passes it.
* **Eval-mode amplification.** The actor's BatchNorm sees zero batch variance on constant
  states, so its ``running_var`` decays toward 0 and, in eval mode (acting),
  ``1/sqrt(running_var + eps)`` multiplies any drift by up to ~316: actions saturate at +-1
  by accident.
* **Train/eval gap.** The same actor gives different actions in the two modes, so the
  policy that is evaluated is not the one that was trained.
* **Stale target statistics.** A target network in eval mode whose BatchNorm buffers are
  not copied from the online network normalises with statistics from its first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from rlcheck.algos import Agent, ReplayBuffer
from rlcheck.algos.modes import Mode, set_mode
from rlcheck.engine.agents import make_env, member_agent
from rlcheck.engine.runs import RunResult, RunSpec
from rlcheck.engine.training import train
from rlcheck.nets import BatchRenorm1d
from rlcheck.nets.seedstack import SeedStack

BATCH_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, BatchRenorm1d)
MODE_DEPENDENT = (*BATCH_DEPENDENT, nn.modules.dropout._DropoutNd, nn.AlphaDropout)
VANISHING_RATIO = 1e-3  # dQ/da in the training mode this much smaller than in eval mode: vanished
AMPLIFICATION_LIMIT = 10.0  # 1/sqrt(running_var + eps) above this: eval mode amplifies drift
# Under this share of the actor's parameters moving its action on a state, and under a tenth of
# the share on random states, the actor is blind there. (A correct net on an all-zero state loses
# only its first layer's weights, a small share on the probes' one-number observations.)
BLIND_SHARE = 0.01
MODE_GAP_LIMIT = 0.1  # mean |action(train) - action(eval)| above this: two policies
BUFFER_GAP_LIMIT = 1e-6  # target buffers further than this from the online ones lag


# What a diagnosis can find; rlcheck.front.words says each, with its numbers and its fix.
FindingKind = Literal[
    "critic_ignores_action",  # dQ/da ~0 in every mode, on every batch
    "actions_capped",  # a trained actor's actions stay inside a narrow band: squashed twice?
    "action_gradient_vanishes",  # dQ/da vanishes in the actor update's mode on identical states, not in eval
    "actor_batchnorm_collapsed",  # eval mode amplifies drifts: running variance near 0
    "actor_mode_gap",  # the actor acts differently in train and eval mode
    "target_buffers_lag",  # targets' normalisation buffers are not copied from the online nets
    "actor_blind_on_constant_state",  # on the run's constant state almost no actor parameter moves the action
]


@dataclass
class Diagnosis:
    mode_dependent_layers: dict[str, list[str]]  # network -> "name (Type)" of each such layer
    action_gradient: dict[str, float]  # "<batch>/<mode>" -> mean |dQ/da| reaching the actor
    actor_bn_amplification: float  # max 1/sqrt(running_var + eps) over the actor's BatchNorm layers
    actor_mode_gap: float  # mean |action(train mode) - action(eval mode)| on a replay-like batch
    target_buffer_gap: float  # max |target buffer - online buffer|
    max_abs_action: float  # max |deterministic action| on a replay-like batch (actions live in [-1, 1])
    forward_modes: dict[str, str]  # phase -> the mode its forward pass runs in (the agent's ModeSchedule)
    # "constant states" (the run's first state repeated) / "random states" -> the share of the actor's
    # parameters whose gradient of the action is not zero there
    actor_parameters_reached: dict[str, float] = field(default_factory=dict)
    findings: list[FindingKind] = field(default_factory=list)

    @property
    def gradient_in_update(self) -> float:
        """|dQ/da| on identical states with the critic in the mode of the actor update."""
        return self.action_gradient[_constant_key(self.forward_modes["actor update: critic"])]

    @property
    def gradient_in_eval(self) -> float:
        return self.action_gradient["constant states, critic in eval mode"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _constant_key(update_mode: str) -> str:
    return f"constant states, critic in {update_mode} mode (as in the actor update)"


def _stacks(module: nn.Module) -> list[SeedStack]:
    return [m for m in module.modules() if isinstance(m, SeedStack)]


def mode_dependent_layers(module: nn.Module) -> list[str]:
    """The batch- or mode-dependent layers of the user's network(s) in `module`, as the factory named them."""
    layers = [(name, m) for stack in _stacks(module) for name, m in stack.member_layers()] or list(
        module.named_modules()
    )
    return [f"{name} ({type(m).__name__})" for name, m in layers if isinstance(m, MODE_DEPENDENT)]


def _per_seed(agent: Agent, obs: torch.Tensor) -> torch.Tensor:
    """A (B, obs_dim) batch given to every seed of the agent: (S, B, obs_dim)."""
    return obs.unsqueeze(0).expand(agent.noise.members, *obs.shape)


@torch.no_grad()
def _actions(agent: Agent, obs: torch.Tensor) -> torch.Tensor:
    return agent.deterministic_action(obs)


def action_gradient(agent: Agent, obs: torch.Tensor, critic_mode: Mode) -> float:
    """Mean |dQ1/da| at a = the actor's action, with the critic in `critic_mode`, for a
    (B, obs_dim) batch given to every seed (mean over seeds).

    Parameters and BatchNorm buffers are restored afterwards: measuring changes nothing.
    """
    obs = _per_seed(agent, obs)
    state = {k: v.clone() for k, v in agent.q1.state_dict().items()}
    was_training = agent.q1.training
    with torch.no_grad():
        set_mode(agent.modes.acting, agent.actor)
        actions = _actions(agent, obs)
    actions = actions.clone().requires_grad_(True)
    set_mode(critic_mode, agent.q1)
    (grad,) = torch.autograd.grad(agent.q1(obs, actions).sum(), actions)
    agent.q1.load_state_dict(state)
    agent.q1.train(was_training)
    return float(grad.abs().mean())


def parameters_reached(agent: Agent, obs: torch.Tensor) -> float:
    """The share of the actor's parameters (every seed's) whose gradient of the summed
    deterministic action is not zero on a (B, obs_dim) batch, the actor in its acting mode.

    A zero-bias ReLU actor on an all-zero state has every hidden unit at 0: only its output
    bias moves the action there."""
    params = [p for p in agent.actor.parameters() if p.requires_grad]
    state = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    was_training = agent.actor.training
    set_mode(agent.modes.acting, agent.actor)
    action = agent.deterministic_action(_per_seed(agent, obs))
    grads = torch.autograd.grad(action.sum(), params, allow_unused=True)
    agent.actor.load_state_dict(state)
    agent.actor.train(was_training)
    reached = sum(int((g != 0).sum()) for g in grads if g is not None)
    return reached / max(sum(p.numel() for p in params), 1)


def bn_amplification(module: nn.Module) -> float:
    """Max 1/sqrt(running_var + eps) over the BatchNorm layers of every seed's network in `module`."""
    members = [stack.member(s) for stack in _stacks(module) for s in range(stack.size)] or [module]
    factors = [
        float((1.0 / torch.sqrt(m.running_var + m.eps)).max())
        for member in members
        for m in member.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm | BatchRenorm1d) and isinstance(m.running_var, torch.Tensor)
    ]
    return max(factors, default=1.0)


def actor_mode_gap(agent: Agent, obs: torch.Tensor) -> float:
    obs = _per_seed(agent, obs)
    state = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    with torch.no_grad():
        agent.actor.train()
        in_train = _actions(agent, obs)
        agent.actor.eval()
        in_eval = _actions(agent, obs)
    agent.actor.load_state_dict(state)  # train-mode forward moved running statistics back
    return float((in_train - in_eval).abs().mean())


def target_buffer_gap(agent: Agent) -> float:
    # Each online network and its target, where the algorithm keeps one (CrossQ keeps none, SAC
    # no target actor).
    online = {"q1": agent.q1, "q2": agent.q2, "actor": agent.actor}
    pairs: list[tuple[nn.Module, nn.Module]] = [
        (target, net) for name, net in online.items() if (target := getattr(agent, f"{name}_target", None)) is not None
    ]
    gaps = [
        float((t.float() - o.float()).abs().max())
        for target, online in pairs
        for t, o in zip(target.buffers(), online.buffers(), strict=True)
        if t.numel()
    ]
    return max(gaps, default=0.0)


def diagnose(agent: Agent, obs_dim: int, replay_obs: torch.Tensor | None = None) -> Diagnosis:
    """Measure the mechanisms on `agent` (fresh or trained); findings name each and its fix.

    ``replay_obs`` is a batch of observations the agent trains on (e.g. from its replay
    buffer); without it a standard-normal batch stands in. "Constant states" are its first
    observation repeated (identical states in a batch, as on the constant-state probes; all
    zeros without replay data).
    """
    device = next(agent.actor.parameters()).device
    batch = 256
    if replay_obs is not None:
        constant = replay_obs[:1].expand(batch, -1).clone()
    else:
        constant = torch.zeros(batch, obs_dim, device=device)
    varied = replay_obs if replay_obs is not None else torch.randn(batch, obs_dim, device=device)
    large = 100 * torch.randn(batch, obs_dim, generator=torch.Generator().manual_seed(0)).to(device)
    update_mode = agent.modes.critic_in_actor_update
    gradients = {
        _constant_key(update_mode): action_gradient(agent, constant, update_mode),
        "constant states, critic in eval mode": action_gradient(agent, constant, "eval"),
        f"replay states, critic in {update_mode} mode (as in the actor update)": action_gradient(
            agent, varied, update_mode
        ),
        "replay states, critic in eval mode": action_gradient(agent, varied, "eval"),
    }
    nets = {"actor": agent.actor, "critic": agent.q1}
    diagnosis = Diagnosis(
        mode_dependent_layers={name: mode_dependent_layers(net) for name, net in nets.items()},
        action_gradient=gradients,
        actor_bn_amplification=bn_amplification(agent.actor),
        actor_mode_gap=actor_mode_gap(agent, varied),
        target_buffer_gap=target_buffer_gap(agent),
        # On replay states and on large random ones (an uncapped head saturates there, even where
        # every replay state is the same), for a trained agent only:
        # a fresh actor's actions are small by initialisation.
        max_abs_action=max(float(_actions(agent, _per_seed(agent, obs)).abs().max()) for obs in (varied, large))
        if replay_obs is not None
        else 1.0,
        actor_parameters_reached={
            "constant states": parameters_reached(agent, constant),
            "random states": parameters_reached(
                agent, torch.randn(batch, obs_dim, generator=torch.Generator().manual_seed(1)).to(device)
            ),
        },
        forward_modes={
            "acting: actor": agent.modes.acting,
            "critic fit: critics": agent.modes.critic_update,
            "TD target: next action and target critics": agent.modes.td_target,
            "actor update: actor": agent.modes.actor_update,
            "actor update: critic": agent.modes.critic_in_actor_update,
        },
    )
    diagnosis.findings = _findings(diagnosis)
    return diagnosis


def diagnose_run(spec: RunSpec) -> Diagnosis:
    """Train an agent as `spec` says (``steps=0``: a fresh one) and diagnose it on its own replay data."""
    agent, buffer, _ = train(spec)
    return _diagnose_trained(agent, buffer, 0)


def _diagnose_trained(agent: Agent, buffer: ReplayBuffer, member: int) -> Diagnosis:
    """Diagnose a trained single-seed agent on the replay data of member `member` of `buffer`."""
    replay = buffer.obs[member, : min(buffer.size, 256)] if buffer.size >= 2 else None
    return diagnose(agent, buffer.obs.shape[2], replay)


# |dQ/da| below this in every mode: the critic ignores the action (float rounding aside).
NO_GRADIENT = 1e-7
# A trained actor whose actions all stay inside this band is capped (tanh(1) = 0.76 after a second tanh).
NARROW_BAND = 0.8


def _findings(d: Diagnosis) -> list[FindingKind]:
    findings: list[FindingKind] = []
    if max(d.action_gradient.values()) < NO_GRADIENT:
        findings.append("critic_ignores_action")
    reached = d.actor_parameters_reached
    blind = bool(reached) and reached["constant states"] < min(BLIND_SHARE, 0.1 * reached["random states"])
    if blind:
        findings.append("actor_blind_on_constant_state")
    elif d.max_abs_action < NARROW_BAND:  # a blind actor's actions stay small too: not a second squashing
        findings.append("actions_capped")
    if d.gradient_in_eval > 0 and d.gradient_in_update < VANISHING_RATIO * d.gradient_in_eval:
        findings.append("action_gradient_vanishes")
    if d.actor_bn_amplification > AMPLIFICATION_LIMIT:
        findings.append("actor_batchnorm_collapsed")
    if d.actor_mode_gap > MODE_GAP_LIMIT:
        findings.append("actor_mode_gap")
    if d.target_buffer_gap > BUFFER_GAP_LIMIT:
        findings.append("target_buffers_lag")
    return findings


def diagnose_first_on_each_env(
    agent: Agent, buffer: ReplayBuffer, specs: Sequence[RunSpec], results: list[RunResult]
) -> None:
    """An after-training hook (rlcheck.engine.training.AfterTraining): diagnose the first run of a
    trained job on each environment, where it trained -- the same measurement as
    :func:`diagnose_run` (bit for bit, where the networks fuse across seeds), without training
    that run again when a study later asks why it failed. The diagnosis is ``results[i].measured``."""
    first_on_env: dict[str, int] = {}
    for member, spec in enumerate(specs):
        first_on_env.setdefault(spec.env_id, member)
    for member in first_on_env.values():
        try:
            with make_env(specs[member].env_id) as env:
                single = member_agent(agent, member, specs[member], env)
            results[member].measured = _diagnose_trained(single, buffer, member)
        except Exception:  # a measurement must not cost the runs just trained; a later
            pass  # diagnose_run (only if the run fails) trains it again and raises there


def diagnosis_of(result: RunResult) -> Diagnosis | None:
    """The diagnosis :func:`diagnose_first_on_each_env` measured on `result`'s trained agent, if any."""
    return result.measured if isinstance(result.measured, Diagnosis) else None
