"""What a study is asked to do: its cells (:class:`Cell`: an algorithm on an environment at a
budget) and everything else that decides its runs and its levels (:class:`StudyConfig`).
The checks before training (rlcheck.verdicts.door) and the study (rlcheck.verdicts.study) both read it."""

from __future__ import annotations

from dataclasses import dataclass

from rlcheck.engine.runs import RunSpec
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.requests import GROWTH, StudyRequest, seed_schedule
from rlcheck.verdicts.curves import Metric
from rlcheck.verdicts.stats import Levels
from rlcheck.verdicts.variants import VARIANTS


@dataclass(frozen=True)
class Cell:
    """One (algorithm, environment) pairing: its training budget and what it is judged on.

    ``metric`` is ``"return"`` (evaluation return, higher is better) or ``"value_error"``
    (mean |Q - true Q| of the critic on an environment that knows its Q, lower is better).
    """

    algo: str
    """td3, sac or crossq."""
    env_id: str = RANDOM_ENV_ID
    """A registered gymnasium id with a bounded Box action space."""
    steps: int = StudyRequest.steps
    """Environment steps per run: the budget."""
    warmup: int = StudyRequest.warmup
    """Random-action steps before learning starts."""
    eval_every: int = StudyRequest.eval_every
    """Steps between evaluations of the deterministic policy."""
    eval_episodes: int = 1
    """Episodes per evaluation."""
    metric: Metric = "return"

    @property
    def env_name(self) -> str:
        return self.env_id.split("/")[-1]

    @property
    def label(self) -> str:
        return f"{self.algo} {self.env_name}"


@dataclass(frozen=True)
class StudyConfig:
    """What a study trains and how it judges it; every field has the default `rlcheck` uses
    (the request's, rlcheck.requests.StudyRequest, where the user can set it)."""

    cells: tuple[Cell, ...] = (Cell("td3"), Cell("sac"))
    """The (algorithm, environment, budget) pairings every net is trained and judged on."""
    nets: tuple[str, ...] = StudyRequest.nets
    """Nets to train: built-ins and variants (rlcheck.verdicts.variants.STUDY_NETS) or 'package.module:function'."""
    baseline: str = StudyRequest.baseline
    """The net every other net is compared with; one of `nets`."""
    seeds: tuple[int, ...] = StudyRequest.seeds
    """The first block of seeds; later blocks continue from the largest."""
    max_seeds: int = GROWTH * len(StudyRequest.seeds)
    """Seeds per (cell, net) that an undecided comparison may grow to, doubling at each look."""
    hidden: tuple[int, ...] = StudyRequest.hidden
    """Hidden widths of the built-in nets."""
    device: str = "cpu"
    """Torch device every run trains on."""
    workers: int = 1
    """Processes (or, with backend "ray", the number the jobs are formed for)."""
    threads: int = 1
    """Torch threads per job."""
    alpha: float = 0.05
    """The run's overall false-fail rate (rlcheck.verdicts.stats.Levels)."""
    split_nets: tuple[tuple[str, str, str], ...] = ()
    """(label, actor factory, critic factory) for a net whose actor and critic differ."""
    algo_actors: tuple[tuple[str, str], ...] = ()
    """(algo, actor factory): a split net's actor for that algorithm, where it has one per algorithm."""
    agents: tuple[tuple[str, str], ...] = ()
    """(label, 'package.module:make_agent'): a "net" that is a user's whole agent (rlcheck.engine.user_agents),
    run on each cell's algorithm's loop and budget, compared with rlcheck's agent of that algorithm."""
    settings: tuple[tuple[str, float | int], ...] = ()
    """The algorithm's settings where rlcheck's own runs differ from its defaults (RunSpec.settings):
    a check of an SB3 model trains the reference with the model's."""
    stop_when_flagged: bool = False
    """Add no more seeds once a comparison fails (a gate's answer is fixed by its first fail)."""
    refuse_frozen: bool = False
    """Refuse a user's net with frozen parameters (requires_grad=False) instead of noting them."""
    actor_output: str = "auto"
    """How the actor's output is read: rlcheck.requests.ACTOR_OUTPUTS ("auto" detects it)."""
    slower_budget: float = StudyRequest.slower_budget
    """A candidate below the baseline at a cell's budget while still learning trains on, that
    cell alone, to this multiple of the budget: "slower" if it then matches. 1: never."""
    backend: str = "local"
    """Where jobs train: "local" (processes here) or "ray" (rlcheck.engine.ray_backend)."""
    ray_address: str | None = None
    """The Ray cluster to join with backend "ray"; None: a local instance."""
    family: int | None = None
    """Comparisons the error rate is spread over; None: this run's own (cells x candidates). A
    gate split into one run per cell (the pytest plugin) gives the whole gate's count."""

    @property
    def algos(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.algo for c in self.cells))

    @property
    def looks(self) -> int:
        """Planned looks: one per size of :func:`seed_schedule`, and one more for training a net on
        (its looks at growing seeds continue from the size it reached at the budget)."""
        return len(seed_schedule(len(self.seeds), self.max_seeds)) + (1 if self.slower_budget > 1 else 0)

    @property
    def levels(self) -> Levels:
        comparisons = self.family or len(self.cells) * max(len(self.nets) - 1, 1)
        return Levels(self.alpha, comparisons, self.looks)

    def next_block(self, seeds: list[int]) -> list[int]:
        """The seeds a cell grows by after `seeds`: as many as it has (:func:`seed_schedule`), up to `max_seeds`."""
        start = max(seeds) + 1
        return list(range(start, start + min(len(seeds), self.max_seeds - len(seeds))))

    def spec(self, cell: Cell, net: str, seed: int, steps: int | None = None) -> RunSpec:
        agent = dict(self.agents).get(net)
        actor, critic = next(((a, c) for label, a, c in self.split_nets if label == net), (None, None))
        if actor is not None:
            actor = dict(self.algo_actors).get(cell.algo, actor)
        modes, algo = "naive", cell.algo
        if net in VARIANTS:
            variant = VARIANTS[net]
            actor, critic, modes, algo = variant.actor, variant.critic, variant.modes, variant.algo_in(cell.algo, net)
        return RunSpec(
            algo=algo,
            net=net,
            seed=seed,
            env_id=cell.env_id,
            steps=steps or cell.steps,
            warmup=cell.warmup,
            eval_every=cell.eval_every,
            eval_episodes=cell.eval_episodes,
            hidden=self.hidden,
            device=self.device,
            threads=self.threads,
            actor_net=actor,
            critic_net=critic,
            modes=modes,
            actor_output=self.actor_output,
            agent=agent,
            settings=self.settings if agent is None else (),
        )
