"""Stable-Baselines3 TD3 and SAC models as written, checked as agents (``pip install rlcheck[sb3]``).

A factory ``make_model(env, seed)`` that returns an SB3 model built on the env it is given is
adapted here; nothing else is asked of it. SB3 owns its training loop, so the run drives
``model.learn()`` with a callback that evaluates at rlcheck's evaluation steps (the same
deterministic-policy episodes and critic probe as every other run), and its warm-up is the
model's own ``learning_starts``. rlcheck sets the seeds: ``model.set_random_seed(seed)`` (torch,
numpy, random, the env and its action space) before learning, so a run is deterministic per
seed. The Q reported is the first critic's, on actions scaled as SB3 stores them.

This module is imported only for an object whose class comes from ``stable_baselines3``, so
rlcheck itself never needs SB3.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcheck.engine.agents import make_env
from rlcheck.engine.runs import RunSpec, TrainingDiverged
from rlcheck.errors import UsageError


def is_sb3_model(obj: Any) -> bool:
    """Whether `obj` is a Stable-Baselines3 model (checked without importing SB3)."""
    return "stable_baselines3" in sys.modules and any(
        cls.__module__.startswith("stable_baselines3.") for cls in type(obj).__mro__
    )


def sb3_family(path: str, model: Any) -> str:
    """``"td3"`` or ``"sac"`` for an SB3 TD3 (DDPG included) or SAC model; UsageError for any other."""
    from stable_baselines3 import SAC, TD3

    if isinstance(model, TD3):
        return "td3"
    if isinstance(model, SAC):
        return "sac"
    raise UsageError(
        f"--agent {path}: returned an SB3 {type(model).__name__}; rlcheck checks SB3's TD3 (or DDPG) and SAC models"
    )


@dataclass
class SB3Policy:
    """An SB3 model seen through rlcheck's agent protocol, for acting and for its Q (it learns in
    ``learn()``, not through ``observe``)."""

    model: Any

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        # predict() returns actions in env units; without explore it is the deterministic policy.
        # With explore SAC samples; TD3's predict adds no noise (its action noise lives in learn()).
        action, _ = self.model.predict(obs, deterministic=not explore)
        return np.asarray(action)

    def q_value(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        policy = self.model.policy
        obs_tensor, _ = policy.obs_to_tensor(np.asarray(obs, dtype=np.float32))
        scaled = torch.as_tensor(policy.scale_action(np.asarray(actions, dtype=np.float32)), device=self.model.device)
        with torch.no_grad():
            first_q = self.model.critic(obs_tensor, scaled.float())[0]
        return first_q.cpu().numpy().reshape(-1)


def check_built_on_its_env(path: str, model: Any, env_id: str) -> None:
    """The model must learn on the env rlcheck gave its factory (the spaces of the run's env)."""
    if model.get_env() is None:
        raise UsageError(
            f"--agent {path}: the SB3 model has no env; build it on the env rlcheck passes, e.g. TD3('MlpPolicy', env)"
        )
    with make_env(env_id) as env:
        if model.observation_space.shape != env.observation_space.shape or (
            model.action_space.shape != env.action_space.shape
        ):
            raise UsageError(
                f"--agent {path}: the SB3 model's spaces ({model.observation_space}, {model.action_space}) are not "
                f"those of {env_id}; build it on the env rlcheck passes to make_agent(env, seed)"
            )


def setting_differences(model: Any, family: str) -> list[str]:
    """The model's settings where they differ from the reference agent's (rlcheck's defaults), in
    ``name model-value vs reference-value`` form."""
    from rlcheck.algos.sac import SACConfig
    from rlcheck.algos.td3 import TD3Config
    from rlcheck.nets import DEFAULT_HIDDEN

    reference: Any = TD3Config() if family == "td3" else SACConfig()
    learning_rate = model.learning_rate if isinstance(model.learning_rate, float) else "a schedule"
    theirs: dict[str, Any] = {
        "gamma": model.gamma,
        "tau": model.tau,
        "batch size": model.batch_size,
        "learning rate": learning_rate,
        "gradient steps per env step": model.gradient_steps / model.train_freq.frequency,
        "net_arch": _net_arch(model),
    }
    ours: dict[str, Any] = {
        "gamma": reference.gamma,
        "tau": reference.tau,
        "batch size": reference.batch_size,
        "learning rate": reference.critic_lr if reference.actor_lr == reference.critic_lr else
                         f"actor {reference.actor_lr:g}, critic {reference.critic_lr:g}",
        "gradient steps per env step": 1.0,
        "net_arch": list(DEFAULT_HIDDEN),
    }  # fmt: skip
    if family == "td3":
        noise = getattr(model.action_noise, "_sigma", None)
        theirs["exploration noise"] = None if noise is None else float(np.mean(noise))
        ours["exploration noise"] = reference.exploration_noise
        theirs["policy delay"], ours["policy delay"] = model.policy_delay, reference.policy_delay
        theirs["target policy noise"], ours["target policy noise"] = model.target_policy_noise, reference.policy_noise
    return [f"{name} {theirs[name]} vs {ours[name]}" for name in theirs if theirs[name] != ours[name]]


def _net_arch(model: Any) -> Any:
    arch = model.policy_kwargs.get("net_arch") if model.policy_kwargs else None
    if arch is None:
        actor = getattr(model.policy, "actor", None)
        layers = getattr(actor, "net_arch", None)
        return list(layers) if layers is not None else "SB3's default"
    return arch


def learn_with_looks(spec: RunSpec, model: Any, look: Callable[[int, Any], None]) -> None:
    """Train an SB3 model for ``spec.steps`` env steps with ``learn()``, calling ``look(step, policy)``
    at step 0 and every ``spec.eval_every`` steps (`look` may raise TrainingDiverged: the run stops)."""
    from stable_baselines3.common.callbacks import BaseCallback

    assert spec.agent is not None
    policy = SB3Policy(model)
    looked = [0]

    class LookEvery(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % spec.eval_every == 0:
                look(self.num_timesteps, policy)
                looked.append(self.num_timesteps)
            return True

    model.set_random_seed(spec.seed)
    look(0, policy)
    try:
        model.learn(total_timesteps=spec.steps, callback=LookEvery(), progress_bar=False)
    except (UsageError, TrainingDiverged):
        raise
    except Exception as exc:
        raise UsageError(
            f"--agent {spec.agent}: the SB3 model's learn() raised {type(exc).__name__}: {exc} at step "
            f"{model.num_timesteps} of seed {spec.seed} on {spec.env_id}"
        ) from None
    if looked[-1] != spec.steps:
        look(spec.steps, policy)
