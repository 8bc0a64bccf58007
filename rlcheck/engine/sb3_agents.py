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


@dataclass(frozen=True)
class ReferenceSettings:
    """What the reference agent takes from an SB3 model: its algorithm settings that differ from
    rlcheck's defaults (RunSpec.settings), its hidden widths, and, in words, what it cannot take."""

    settings: tuple[tuple[str, float | int], ...]
    hidden: tuple[int, ...] | None
    taken: tuple[str, ...]  # "learning rate 0.001", ...
    not_taken: tuple[str, ...]  # "gamma 0.98 (...)", ...


def reference_settings(model: Any, family: str) -> ReferenceSettings:
    """Read the model's settings for rlcheck's reference agent of its family (rlcheck.algos)."""
    from rlcheck.algos import ALGORITHMS
    from rlcheck.nets import DEFAULT_HIDDEN

    default = ALGORITHMS[family].default_config
    taken: dict[str, float | int] = {}
    not_taken: list[str] = []
    if isinstance(model.learning_rate, (int, float)):
        rates = ("actor_lr", "critic_lr", "alpha_lr") if family == "sac" else ("actor_lr", "critic_lr")
        taken.update(dict.fromkeys(rates, float(model.learning_rate)))
    else:
        not_taken.append("a learning-rate schedule (the reference keeps its constant rates)")
    taken["batch_size"], taken["tau"] = int(model.batch_size), float(model.tau)
    if model.gamma != default.gamma:
        not_taken.append(f"gamma {model.gamma} (the value probes' true Q assumes {default.gamma})")
    per_step = model.gradient_steps / model.train_freq.frequency if model.gradient_steps > 0 else None
    if per_step != 1 or model.train_freq.unit.value != "step":
        not_taken.append(f"{model.gradient_steps} gradient steps per {model.train_freq} (the reference: 1 per step)")
    if family == "td3":
        noise = model.action_noise
        sigma = np.asarray(getattr(noise, "_sigma", np.nan), dtype=float)
        if noise is None:
            taken["exploration_noise"] = 0.0
        elif type(noise).__name__ == "NormalActionNoise" and np.allclose(sigma, sigma.mean()):
            taken["exploration_noise"] = float(sigma.mean())
        else:
            not_taken.append(f"action noise {type(noise).__name__} (the reference: Gaussian)")
        taken["policy_delay"] = int(model.policy_delay)
        taken["policy_noise"], taken["noise_clip"] = float(model.target_policy_noise), float(model.target_noise_clip)
    else:
        coef = model.ent_coef
        if isinstance(coef, str) and coef.startswith("auto"):
            taken["initial_alpha"] = float(coef.split("_")[1]) if "_" in coef else 1.0
        else:
            not_taken.append(f"a fixed entropy coefficient {coef} (the reference learns its own)")
        if model.target_entropy != "auto":
            taken["target_entropy_per_dim"] = float(model.target_entropy) / int(np.prod(model.action_space.shape))
    arch = _net_arch(model)
    hidden = tuple(arch) if isinstance(arch, list) and all(isinstance(w, int) for w in arch) else None
    if hidden is None:
        not_taken.append(f"net_arch {arch} (the reference's actor and critic share one list of widths)")
    activation = (model.policy_kwargs or {}).get("activation_fn")
    if activation is not None and activation.__name__ != "ReLU":
        not_taken.append(f"activation {activation.__name__} (the reference's MLPs use ReLU)")
    settings = tuple((name, value) for name, value in taken.items() if value != getattr(default, name))
    words = [f"{name.replace('_', ' ')} {value:g}" for name, value in settings]
    if hidden is not None and hidden != DEFAULT_HIDDEN:
        words.append(f"hidden {'x'.join(map(str, hidden))}")
    return ReferenceSettings(settings, hidden if hidden != DEFAULT_HIDDEN else None, tuple(words), tuple(not_taken))


def _net_arch(model: Any) -> Any:
    arch = (model.policy_kwargs or {}).get("net_arch")
    if isinstance(arch, dict):
        return arch["pi"] if arch.get("pi") == arch.get("qf") else arch
    if arch is None:
        layers = getattr(getattr(model.policy, "actor", None), "net_arch", None)
        return list(layers) if layers is not None else "SB3's default"
    return list(arch)


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
