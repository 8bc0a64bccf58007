"""Why a network breaks off-policy learning: measurements on an agent, and findings in plain words.

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
from dataclasses import dataclass, field

import torch
from torch import nn

from rlcheck.algos import SAC, TD3, Agent, ReplayBuffer
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


@dataclass(frozen=True)
class Finding:
    what: str  # the mechanism, measured
    fix: str

    def __str__(self) -> str:
        return f"{self.what} Fix: {self.fix}"


@dataclass
class Diagnosis:
    mode_dependent_layers: dict[str, list[str]]  # network -> "name (Type)" of each such layer
    action_gradient: dict[str, float]  # "<batch>/<mode>" -> mean |dQ/da| reaching the actor
    actor_bn_amplification: float  # max 1/sqrt(running_var + eps) over the actor's BatchNorm layers
    actor_mode_gap: float  # mean |action(train mode) - action(eval mode)| on a replay-like batch
    target_buffer_gap: float  # max |target buffer - online buffer|
    max_abs_action: float  # max |deterministic action| on a replay-like batch (actions live in [-1, 1])
    forward_modes: dict[str, str]  # phase -> the mode its forward pass runs in (the agent's ModeSchedule)
    findings: list[Finding] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            "batch/mode-dependent layers: "
            + (
                "; ".join(f"{net}: {', '.join(layers)}" for net, layers in self.mode_dependent_layers.items() if layers)
                or "none"
            ),
            "mean |dQ/da| reaching the actor:",
            *(f"  {key}: {value:.3g}" for key, value in self.action_gradient.items()),
            "actor BatchNorm eval-mode amplification (max 1/sqrt(running_var + eps)): "
            f"{self.actor_bn_amplification:.3g}",
            f"actor train-vs-eval action gap: {self.actor_mode_gap:.3g}",
            f"target vs online buffer gap: {self.target_buffer_gap:.3g}",
            f"largest |action| on replay states (actions in [-1, 1]): {self.max_abs_action:.3g}",
            "mode of each forward pass: " + ", ".join(f"{phase} {mode}" for phase, mode in self.forward_modes.items()),
        ]
        lines += [f"FINDING: {f}" for f in self.findings] or ["no mechanism found that breaks learning"]
        return "\n".join(lines)


def _stacks(module: nn.Module) -> list[SeedStack]:
    return [m for m in module.modules() if isinstance(m, SeedStack)]


def mode_dependent_layers(module: nn.Module) -> list[str]:
    """The batch- or mode-dependent layers of the user's network(s) in `module`, as the factory named them."""
    layers = [(name, m) for stack in _stacks(module) for name, m in stack.member_layers()] or list(
        module.named_modules()
    )
    return [f"{name} ({type(m).__name__})" for name, m in layers if isinstance(m, MODE_DEPENDENT)]


def _per_seed(agent: TD3 | SAC, obs: torch.Tensor) -> torch.Tensor:
    """A (B, obs_dim) batch given to every seed of the agent: (S, B, obs_dim)."""
    return obs.unsqueeze(0).expand(agent.noise.members, *obs.shape)


@torch.no_grad()
def _actions(agent: TD3 | SAC, obs: torch.Tensor) -> torch.Tensor:
    return agent.actor(obs) if isinstance(agent, TD3) else agent.actor.deterministic(obs)


def action_gradient(agent: TD3 | SAC, obs: torch.Tensor, critic_mode: Mode) -> float:
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


def actor_mode_gap(agent: TD3 | SAC, obs: torch.Tensor) -> float:
    obs = _per_seed(agent, obs)
    state = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    with torch.no_grad():
        agent.actor.train()
        in_train = _actions(agent, obs)
        agent.actor.eval()
        in_eval = _actions(agent, obs)
    agent.actor.load_state_dict(state)  # train-mode forward moved running statistics back
    return float((in_train - in_eval).abs().mean())


def target_buffer_gap(agent: TD3 | SAC) -> float:
    if not hasattr(agent, "q1_target"):
        return 0.0  # no target networks (CrossQ)
    pairs: list[tuple[nn.Module, nn.Module]] = [(agent.q1_target, agent.q1), (agent.q2_target, agent.q2)]
    if isinstance(agent, TD3):
        pairs.append((agent.actor_target, agent.actor))
    gaps = [
        float((t.float() - o.float()).abs().max())
        for target, online in pairs
        for t, o in zip(target.buffers(), online.buffers(), strict=True)
        if t.numel()
    ]
    return max(gaps, default=0.0)


def diagnose(agent: TD3 | SAC, obs_dim: int, replay_obs: torch.Tensor | None = None) -> Diagnosis:
    """Measure the mechanisms on `agent` (fresh or trained); findings name each and its fix.

    ``replay_obs`` is a batch of observations the agent trains on (e.g. from its replay
    buffer); without it a standard-normal batch stands in.
    """
    device = next(agent.actor.parameters()).device
    batch = 256
    constant = torch.zeros(batch, obs_dim, device=device)
    varied = replay_obs if replay_obs is not None else torch.randn(batch, obs_dim, device=device)
    large = 100 * torch.randn(batch, obs_dim, generator=torch.Generator().manual_seed(0)).to(device)
    update_mode = agent.modes.critic_in_actor_update
    gradients = {
        f"constant states, critic in {update_mode} mode (as in the actor update)": action_gradient(
            agent, constant, update_mode
        ),
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
        forward_modes={
            "acting: actor": agent.modes.acting,
            "critic fit: critics": agent.modes.critic_update,
            "TD target: next action and target critics": agent.modes.td_target,
            "actor update: actor": agent.modes.actor_update,
            "actor update: critic": agent.modes.critic_in_actor_update,
        },
    )
    diagnosis.findings = _findings(diagnosis, update_mode)
    return diagnosis


def diagnose_run(spec: RunSpec) -> Diagnosis:
    """Train an agent as `spec` says (``steps=0``: a fresh one) and diagnose it on its own replay data."""
    agent, buffer, _ = train(spec)
    return _diagnose_trained(agent, buffer, 0)


def _diagnose_trained(agent: Agent, buffer: ReplayBuffer, member: int) -> Diagnosis:
    """Diagnose a trained single-seed agent on the replay data of member `member` of `buffer`."""
    assert isinstance(agent, TD3 | SAC)
    replay = buffer.obs[member, : min(buffer.size, 256)] if buffer.size >= 2 else None
    return diagnose(agent, buffer.obs.shape[2], replay)


# |dQ/da| below this in every mode: the critic ignores the action (float rounding aside).
NO_GRADIENT = 1e-7
# A trained actor whose actions all stay inside this band is capped (tanh(1) = 0.76 after a second tanh).
NARROW_BAND = 0.8


def _findings(d: Diagnosis, update_mode: Mode) -> list[Finding]:
    findings = []
    in_update = d.action_gradient[f"constant states, critic in {update_mode} mode (as in the actor update)"]
    in_eval = d.action_gradient["constant states, critic in eval mode"]
    if max(d.action_gradient.values()) < NO_GRADIENT:
        findings.append(
            Finding(
                f"The critic's output does not depend on the action: dQ/da is "
                f"{max(d.action_gradient.values()):.2g} in every mode, on identical and on replay states, so the "
                "actor gets no signal at all.",
                "look for what makes Q constant in the action: a softmax or a sigmoid saturating over a single "
                "output, a detach() of the action input, or an action input that is not used.",
            )
        )
    if d.max_abs_action < NARROW_BAND:
        findings.append(
            Finding(
                f"The actor's actions never leave [-{d.max_abs_action:.2f}, {d.max_abs_action:.2f}] of the range "
                "[-1, 1]: something caps them, e.g. a second squashing (tanh of a tanh is at most 0.76).",
                "if the actor ends in tanh (possibly scaled to the env's bounds), tell rlcheck with "
                "--actor-output squashed, so it does not squash again; else find what bounds its output.",
            )
        )
    if in_eval > 0 and in_update < VANISHING_RATIO * in_eval:
        findings.append(
            Finding(
                f"The action gradient dQ/da reaching the actor vanishes on a batch of identical states: "
                f"{in_update:.2g} with the critic in {update_mode} mode (as the actor is updated) vs "
                f"{in_eval:.2g} in eval mode. The critic's batch-dependent layers "
                f"({', '.join(d.mode_dependent_layers['critic']) or 'none'}) normalise the action away.",
                "put the critic in eval mode for the actor loss and the TD target (mode-aware BatchNorm), "
                "or use LayerNorm, which normalises each sample on its own.",
            )
        )
    if d.actor_bn_amplification > AMPLIFICATION_LIMIT:
        findings.append(
            Finding(
                f"The actor's BatchNorm running variance has collapsed: in eval mode (acting) it multiplies its "
                f"input by up to {d.actor_bn_amplification:.3g}, so small drifts saturate the action.",
                "remove BatchNorm from the actor (LayerNorm instead), or never run the actor's BatchNorm "
                "on batches of identical states.",
            )
        )
    if d.actor_mode_gap > 0.1:
        findings.append(
            Finding(
                f"The actor acts differently in train and eval mode (mean action gap {d.actor_mode_gap:.3g}): the "
                "policy that is evaluated is not the one that is trained.",
                "use normalisation without batch dependence in the actor (LayerNorm), or keep it in one mode.",
            )
        )
    if d.target_buffer_gap > 1e-6:
        findings.append(
            Finding(
                f"Target networks' normalisation buffers lag the online networks' (max gap {d.target_buffer_gap:.3g}).",
                "copy buffers into the targets at every target update (Polyak-average only the parameters).",
            )
        )
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
