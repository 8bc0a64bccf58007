"""A user's whole agent, driven by rlcheck: the protocol it follows, the checks at the door, and
its training run (docs/agents.md).

A factory ``make_agent(env, seed)`` returns an object with

* ``act(obs, explore) -> action``: one observation (the env's shape) in, one action in the
  env's units and bounds out; ``explore=True`` while training, ``False`` when evaluated;
* ``observe(obs, action, reward, next_obs, terminated, truncated)``: each transition of
  training, warm-up included; the agent learns here, however it likes;
* optionally ``q_value(obs, actions) -> values``: its (first) critic's Q for a batch of
  observations and actions (env units), so that the value probes can judge it.

rlcheck owns the environment loop, the warm-up's random actions, the evaluations and the seeds,
exactly as for its own agents (rlcheck.engine.training), so a run of a user's agent and a run of
rlcheck's reference differ only in the agent. Runs are one seed per process and never cached.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch

from rlcheck.engine.agents import box_of, make_env
from rlcheck.engine.machine import processor
from rlcheck.engine.runs import RunResult, RunSpec, TrainingDiverged
from rlcheck.engine.sb3_agents import (
    ReferenceSettings,
    SB3Policy,
    check_built_on_its_env,
    is_sb3_model,
    reference_settings,
    sb3_family,
)
from rlcheck.engine.training import EVAL_SEED_OFFSET, VALUE_PROBE_SIZE
from rlcheck.envs import KnownQ, optimal_return
from rlcheck.errors import UsageError, import_callable


@runtime_checkable
class CheckedAgent(Protocol):
    """What ``make_agent(env, seed)`` returns (``q_value`` is optional, so not part of the check)."""

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray: ...

    def observe(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None: ...


AgentFactory = Callable[[gym.Env, int], Any]


def load_agent_factory(path: str) -> AgentFactory:
    """``"package.module:make_agent"`` -> the factory; a one-line UsageError for anything else."""
    module_name, colon, attr = path.partition(":")
    if not colon or not module_name or not attr:
        raise UsageError(f"--agent {path!r}: give your agent factory as 'package.module:make_agent'")
    return import_callable(path, where="--agent: ", wanted="give make_agent(env, seed)")


def seed_everything(seed: int) -> None:
    """The global streams a user's agent may draw from, set before its factory runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_user_agent(path: str, env_id: str, seed: int) -> Any:
    """The user's agent for a run: globals seeded, then ``make_agent(env, seed)`` on a fresh env of
    the run's id (not the one rlcheck steps). Raises UsageError naming what is wrong."""
    factory = load_agent_factory(path)
    seed_everything(seed)
    try:
        agent = factory(make_env(env_id), seed)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"--agent {path}: make_agent(env, seed) raised {type(exc).__name__}: {exc}") from None
    if is_sb3_model(agent):
        sb3_family(path, agent)
        check_built_on_its_env(path, agent, env_id)
        return agent
    missing = [name for name in ("act", "observe") if not callable(getattr(agent, name, None))]
    if missing:
        raise UsageError(
            f"--agent {path}: the agent has no {' or '.join(missing)} method; it needs act(obs, explore) and "
            "observe(obs, action, reward, next_obs, terminated, truncated) (docs/agents.md)"
        )
    return agent


def knows_q(agent: Any) -> bool:
    return callable(getattr(agent, "q_value", None))


@dataclass(frozen=True)
class AtTheDoor:
    """What the door check found out about an agent that passed it."""

    reports_q: bool  # it has q_value, so the value probes can judge it
    family: str | None  # what its ``family`` attribute says it is (td3, sac), if anything
    reference: ReferenceSettings | None = None  # an SB3 model's settings, for the reference agent


def checked_action(path: str, action: Any, space: gym.spaces.Box, where: str) -> np.ndarray:
    """The agent's action as the env takes it; UsageError for a wrong shape or an action out of
    bounds, TrainingDiverged for NaN or inf."""
    try:
        array = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError):
        raise UsageError(f"--agent {path}: act() returned {type(action).__name__}, not an array of numbers") from None
    if array.size != int(np.prod(space.shape)):
        raise UsageError(
            f"--agent {path}: act() returned an action of shape {array.shape} {where}; the env's actions have "
            f"shape {space.shape}"
        )
    array = array.reshape(space.shape)
    if not np.isfinite(array).all():
        raise TrainingDiverged(f"--agent {path}: act() returned NaN/inf {where}")
    slack = 1e-5 * np.maximum(1.0, np.abs(space.high - space.low))
    if (array < space.low - slack).any() or (array > space.high + slack).any():
        raise UsageError(
            f"--agent {path}: act() returned {array.tolist()} {where}, outside the env's bounds "
            f"[{space.low.tolist()}, {space.high.tolist()}]; act in env units (scale or clip your actor's output)"
        )
    return np.clip(array, space.low, space.high)


def door_check(path: str, env_id: str, seed: int = 0) -> AtTheDoor:
    """Build the agent, let it act (exploring and not) on a start state and see one transition;
    raise UsageError for anything a run would trip on."""
    agent = build_user_agent(path, env_id, seed)
    if is_sb3_model(agent):
        sb3 = sb3_family(path, agent)
        _acts_at_the_start(path, SB3Policy(agent), env_id, seed)
        return AtTheDoor(True, sb3, reference_settings(agent, sb3))
    _acts_at_the_start(path, agent, env_id, seed, observe=True)
    family = getattr(agent, "family", None)
    return AtTheDoor(knows_q(agent), str(family).lower() if family else None)


def _acts_at_the_start(path: str, agent: Any, env_id: str, seed: int, observe: bool = False) -> None:
    """Let the agent act (exploring and not) on a start state, see one transition if it observes,
    and report Q on a few (s, a) pairs if it can."""
    with make_env(env_id) as env:
        space = box_of(env.action_space)
        obs, _ = env.reset(seed=seed)
        for explore in (True, False):
            try:
                action = agent.act(obs, explore=explore)
            except Exception as exc:
                raise UsageError(
                    f"--agent {path}: act(obs, explore={explore}) raised {type(exc).__name__}: {exc}"
                ) from None
            try:
                action = checked_action(path, action, space, f"at the start of {env_id}")
            except TrainingDiverged as exc:
                raise UsageError(f"{exc} before any training; return finite actions") from None
        next_obs, reward, terminated, truncated, _ = env.step(action)
        try:
            if observe:
                agent.observe(obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
        except Exception as exc:
            raise UsageError(f"--agent {path}: observe(...) raised {type(exc).__name__}: {exc}") from None
        if knows_q(agent) and isinstance(env.unwrapped, KnownQ):
            states, actions = env.unwrapped.sample_state_actions(4, np.random.default_rng(seed))
            _q_values(path, agent, states, actions)


def _q_values(path: str, agent: Any, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    try:
        values = np.asarray(agent.q_value(states, actions), dtype=np.float64).reshape(-1)
    except Exception as exc:
        raise UsageError(f"--agent {path}: q_value(obs, actions) raised {type(exc).__name__}: {exc}") from None
    if values.size != len(states):
        raise UsageError(
            f"--agent {path}: q_value(obs, actions) returned {values.size} values for {len(states)} (obs, action) "
            "pairs; return one Q per pair"
        )
    return values


def _call(path: str, name: str, where: str, method: Callable[..., Any], *args: Any) -> Any:
    """The agent's method called; an exception in the user's code is one line naming it and the step."""
    try:
        return method(*args)
    except (UsageError, TrainingDiverged):
        raise
    except Exception as exc:
        raise UsageError(f"--agent {path}: {name}() raised {type(exc).__name__}: {exc} {where}") from None


def evaluate(agent: Any, path: str, env: gym.Env, episodes: int, seed: int) -> float:
    """Mean return of the agent's deterministic policy over `episodes` episodes from fixed start seeds."""
    space = box_of(env.action_space)
    total = 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = checked_action(path, _call(path, "act", "when evaluated", agent.act, obs, False), space,
                                    "when evaluated")  # fmt: skip
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = bool(terminated or truncated)
    return total / episodes


def train_user_agent(spec: RunSpec) -> RunResult:
    """One run of the user's agent (``spec.agent``) as `spec` says: rlcheck's loop, seeds and
    evaluations; an SB3 model learns in its own loop, looked at on the same steps."""
    assert spec.agent is not None
    path = spec.agent
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    agent = build_user_agent(path, spec.env_id, spec.seed)
    eval_env = make_env(spec.env_id)
    eval_seed = spec.seed + EVAL_SEED_OFFSET
    probe = eval_env.unwrapped if isinstance(eval_env.unwrapped, KnownQ) else None
    if probe is not None:
        states, actions = probe.sample_state_actions(VALUE_PROBE_SIZE, np.random.default_rng(eval_seed))
        true_q = probe.true_q(states, actions)
    eval_steps: list[int] = []
    eval_returns: list[float] = []
    value_errors: list[float] = []

    def look(step: int, policy: Any) -> None:
        eval_steps.append(step)
        eval_returns.append(evaluate(policy, path, eval_env, spec.eval_episodes, eval_seed))
        if probe is not None and knows_q(policy):
            value_errors.append(float(np.abs(_q_values(path, policy, states, actions) - true_q).mean()))

    start = time.perf_counter()
    if is_sb3_model(agent):
        from rlcheck.engine.sb3_agents import learn_with_looks

        learn_with_looks(spec, agent, look)
    else:
        _rlcheck_loop(spec, agent, look)
    wall = time.perf_counter() - start
    eval_env.close()
    with make_env(spec.env_id) as env:
        threshold = env.spec.reward_threshold if env.spec is not None else None
        optimum = optimal_return(env)
    return RunResult(
        spec=spec,
        eval_steps=eval_steps,
        eval_returns=eval_returns,
        wall_time_s=wall,
        threshold=threshold,
        optimal_return=optimum,
        eval_value_errors=value_errors or None,
        batched_with=1,
        processor=processor(),
    )


def _rlcheck_loop(spec: RunSpec, agent: Any, look: Callable[[int, Any], None]) -> None:
    """rlcheck's environment loop for a protocol agent: warm-up, acting, `observe`, and `look` at
    step 0 and every ``spec.eval_every`` steps (the same loop as rlcheck's own runs)."""
    assert spec.agent is not None
    env = make_env(spec.env_id)
    space = box_of(env.action_space)
    env.action_space.seed(spec.seed)
    obs, _ = env.reset(seed=spec.seed)
    for step in range(spec.steps + 1):
        if step % spec.eval_every == 0 or step == spec.steps:
            look(step, agent)
        if step == spec.steps:
            break
        where = f"at step {step} of seed {spec.seed} on {spec.env_id}"
        if step < spec.warmup:
            action = env.action_space.sample()
        else:
            action = checked_action(spec.agent, _call(spec.agent, "act", where, agent.act, obs, True), space, where)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        transition = (obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
        _call(spec.agent, "observe", where, agent.observe, *transition)
        obs = env.reset()[0] if (terminated or truncated) else next_obs
    env.close()
