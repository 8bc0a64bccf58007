"""What a run is and what it gave: :class:`RunSpec` (everything that decides a run's numbers)
and :class:`RunResult` (its evaluation curve, critic errors and timing), as saved in
``runs.jsonl`` and the baseline cache."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import rlcheck.envs  # noqa: F401  (registers rlcheck's environments)
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.nets import DEFAULT_HIDDEN


class TrainingDiverged(RuntimeError):
    """The policy produced a non-finite action: the run cannot continue."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run. ``net`` names the actor and critic networks
    unless ``actor_net`` / ``critic_net`` override it."""

    algo: str
    net: str
    seed: int
    env_id: str = RANDOM_ENV_ID
    steps: int = 2000
    warmup: int = 250  # uniform-random actions, no updates (CleanRL: "learning_starts")
    eval_every: int = 100
    eval_episodes: int = 1
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    device: str = "cpu"
    threads: int = 1
    actor_net: str | None = None
    critic_net: str | None = None
    modes: str = "naive"  # a key of rlcheck.algos.modes.MODE_SCHEDULES
    actor_output: str = "auto"  # how the actor net's output is read (rlcheck.requests.ACTOR_OUTPUTS)
    # A user's whole agent ('package.module:make_agent', rlcheck.engine.user_agents) instead of
    # rlcheck's `algo` with these networks; `algo` is then the family it is compared with.
    agent: str | None = None
    # The algorithm's settings where they differ from its defaults ((name, value), a field of its
    # config class): the reference agent of a check of an SB3 model takes the model's.
    settings: tuple[tuple[str, float | int], ...] = ()

    def group_key(self) -> RunSpec:
        """What runs must share to train in one batch: everything but the seed, the environment
        and its evaluation episodes (environments must also agree on observation and action sizes)."""
        return dataclasses.replace(self, seed=0, env_id="", eval_episodes=0)

    @property
    def actor_net_name(self) -> str:
        return self.actor_net or self.net

    @property
    def critic_net_name(self) -> str:
        return self.critic_net or self.net

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.settings:
            del data["settings"]  # the defaults: logs and cache keys stay as they were without the field
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        data = dict(data)
        if data.pop("recipe", "standard") == "crossq":  # logs written while CrossQ was a "recipe" of SAC
            data["algo"] = "crossq"
        settings = tuple((str(name), value) for name, value in data.pop("settings", ()))
        return cls(**{**data, "hidden": tuple(data["hidden"]), "settings": settings})


@dataclass
class RunResult:
    spec: RunSpec
    eval_steps: list[int]
    eval_returns: list[float]
    wall_time_s: float
    threshold: float | None  # return that counts as "learned" (the env's reward_threshold)
    optimal_return: float | None
    # mean |Q - true Q| of the first critic at each evaluation, on probes whose Q is known
    eval_value_errors: list[float] | None = None
    batched_with: int = 1  # seeds trained in the same batched computation (wall time is shared)
    # the processor model it trained on (a Ray cluster's nodes may differ); compared by nothing
    processor: str = field(default="", compare=False)
    reused: bool = field(default=False, compare=False)  # taken from the baseline cache, not trained now
    # What an after-training hook (rlcheck.engine.training.AfterTraining) measured on the trained
    # agent, where it trained; the engine does not look inside. Not saved with the run.
    measured: object = field(default=None, compare=False, repr=False)
    final_return: float = field(init=False)
    score: float = field(init=False)  # mean evaluation return over the last third of training
    instability: float = field(init=False)  # mean |change| between evaluations, last third
    steps_to_threshold: int | None = field(init=False)
    env_steps_per_s: float = field(init=False)

    def __post_init__(self) -> None:
        returns = np.asarray(self.eval_returns, dtype=float)
        self.final_return = float(returns[-1])
        self.score, self.instability = self.curve_measures(self.eval_returns)
        self.steps_to_threshold = None
        if self.threshold is not None:
            reached = np.flatnonzero(returns >= self.threshold)
            self.steps_to_threshold = int(self.eval_steps[reached[0]]) if reached.size else None
        self.env_steps_per_s = self.spec.steps / self.wall_time_s if self.wall_time_s > 0 else math.inf

    def curve_measures(self, curve: list[float]) -> tuple[float, float]:
        """(score, instability) of a curve: its mean over the last third of training, and
        the mean absolute change between consecutive evaluations over that third."""
        values = np.asarray(curve, dtype=float)
        last_third = values[np.asarray(self.eval_steps) >= self.spec.steps * 2 / 3]
        instability = float(np.abs(np.diff(last_third)).mean()) if last_third.size > 1 else 0.0
        return float(last_third.mean()), instability

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec.to_dict()
        return {
            "algo": self.spec.algo,
            "net": self.spec.net,
            "seed": self.spec.seed,
            "final_return": self.final_return,
            "score": self.score,
            "instability": self.instability,
            "steps_to_threshold": self.steps_to_threshold,
            "threshold": self.threshold,
            "optimal_return": self.optimal_return,
            "wall_time_s": self.wall_time_s,
            "env_steps_per_s": self.env_steps_per_s,
            "batched_with": self.batched_with,
            "processor": self.processor,
            "curve": {"steps": self.eval_steps, "returns": self.eval_returns, "value_errors": self.eval_value_errors},
            "spec": spec,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            spec=RunSpec.from_dict(data["spec"]),
            eval_steps=list(data["curve"]["steps"]),
            eval_returns=list(data["curve"]["returns"]),
            wall_time_s=data["wall_time_s"],
            threshold=data["threshold"],
            optimal_return=data["optimal_return"],
            eval_value_errors=data["curve"].get("value_errors"),
            batched_with=data.get("batched_with", 1),
            processor=data.get("processor", ""),
        )
