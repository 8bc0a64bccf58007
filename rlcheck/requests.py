"""What a user asks of rlcheck: a :class:`CheckRequest` (gate your networks) or a
:class:`StudyRequest` (the BatchNorm study, or any study of nets), one field per option.

Each field carries its default, its help text, its group and the one parser that turns what a
user typed (``"100-104"``, ``"64,64"``, ``"true"``) or passed from Python (``3``, ``(64, 64)``,
``True``) into its value. The command line (``rlcheck check --help``), the pytest plugin's
settings (``--rlcheck-*`` and ``rlcheck_*`` in the ini file) and the Python API
(``rlcheck.run_check(net="pkg:make", seeds=3)``) are all generated from these fields, so a
default is written once, here.

Stdlib only: the pytest plugin imports this module in every pytest session of an environment
rlcheck is installed in, and every training process re-imports the console script. Names are
validated against rlcheck's registries (algorithms, probes, nets) where they are resolved
(rlcheck.front.api), which may import torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcheck.errors import UsageError

GROUPS = ("networks", "probes and statistics", "execution", "output")
ACTOR_OUTPUTS: tuple[str, ...] = ("auto", "raw", "squashed", "log-std", "scale")
BACKENDS: tuple[str, ...] = ("local", "ray")
DEFAULT_HIDDEN: tuple[int, ...] = (64, 64)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


# -- parsers: text (or a Python value) -> the field's value; UsageError names the option -------


def parse_names(value: str | Sequence[str], option: str = "names") -> tuple[str, ...]:
    """``"td3,sac"`` or ``("td3", "sac")``: the names, in order, none empty."""
    names = tuple(n.strip() for n in (value.split(",") if isinstance(value, str) else value) if str(n).strip())
    if not names:
        raise UsageError(f"{option} is empty; give a comma-separated list")
    return names


def parse_seeds(value: str | int | Sequence[int], option: str = "seeds") -> tuple[int, ...]:
    """``"5"`` or ``5`` means seeds 0..4; ``"100-104"`` seeds 100 to 104; ``"100,101,102"`` or a
    sequence, exactly those seeds."""
    if isinstance(value, bool):
        raise UsageError(f"{option} {value!r} is not a count, a range or a list of seeds")
    if isinstance(value, int):
        return parse_seeds(str(value), option)
    if not isinstance(value, str):
        try:
            seeds = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise UsageError(f"{option} {value!r} is not a count, a range or a list of seeds") from None
        if not seeds or any(s < 0 for s in seeds):
            raise UsageError(f"{option} must be a non-empty list of non-negative integers")
        return seeds
    text = value
    first, dash, last = text.partition("-")
    if dash and first.strip().isdigit() and last.strip().isdigit():
        if int(last) < int(first):
            raise UsageError(f"{option} {text}: the range ends before it starts; give e.g. {option} 100-104")
        return tuple(range(int(first), int(last) + 1))
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a count (e.g. 5), a range (100-104) or a list of integers (100,101,102)"
        ) from None
    if len(values) == 1 and "," not in value:
        if values[0] < 1:
            raise UsageError(f"{option} {values[0]}: give a count of at least 1, e.g. {option} 5")
        return tuple(range(values[0]))
    if any(v < 0 for v in values):
        raise UsageError(f"{option} must be non-negative integers")
    return values


def parse_hidden(value: str | Sequence[int], option: str = "hidden") -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in (value.split(",") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise UsageError(f"{option} {value!r} is not a list of layer widths like 64,64") from None
    if not sizes or any(s < 1 for s in sizes):
        raise UsageError(f"{option} {value!r}: every layer width must be a positive integer")
    return sizes


def parse_int(value: str | int, option: str) -> int:
    if isinstance(value, bool):
        raise UsageError(f"{option} {value!r} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} {value!r} is not an integer") from None


def parse_positive_int(value: str | int, option: str) -> int:
    number = parse_int(value, option)
    if number < 1:
        raise UsageError(f"{option} {number}: give at least 1")
    return number


def parse_count(value: str | int, option: str) -> int:
    number = parse_int(value, option)
    if number < 0:
        raise UsageError(f"{option} {number}: give 0 or more")
    return number


def parse_slower_budget(value: str | float, option: str = "slower-budget") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} {value!r} is not a number") from None
    if not number >= 1.0:  # also refuses NaN
        raise UsageError(f"{option} {value}: give a multiple of the budget of at least 1 (1 turns it off)")
    return number


def parse_flag(value: str | bool, option: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise UsageError(f"{option} {value!r}: give true or false")


def parse_text(value: str, option: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{option} {value!r}: give a string")
    return value


def choice_of(choices: Sequence[str]) -> Callable[[str, str], str]:
    def parse(value: str, option: str) -> str:
        if value not in choices:
            raise UsageError(f"{option} {value!r}: choose from {', '.join(choices)}")
        return value

    return parse


# -- fields ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """How one request field faces the user: its help, group, parser, and where it is offered."""

    help: str
    group: str
    parse: Callable[[Any, str], Any] = parse_text
    metavar: str | None = None
    aliases: tuple[str, ...] = ()  # earlier names of the option and setting, still accepted
    setting: bool = True  # offered by the pytest plugin (--rlcheck-NAME, ini rlcheck_NAME)
    flag: bool = False  # a switch: --NAME on the command line, true/false in the ini file
    shown: str | None = None  # the default as help shows it, where its value reads badly


def option(default: Any, help: str, group: str, **how: Any) -> Any:
    assert group in GROUPS, group
    kind = Option(help, group, **how)
    if kind.flag:
        kind = dataclasses.replace(kind, parse=parse_flag)
    return field(default=default, metadata={"option": kind})


def options_of(request: type[Request] | Request) -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    for f in dataclasses.fields(request):
        if "option" in f.metadata:
            yield f, f.metadata["option"]


# An undecided cell doubles its seeds at each look, up to this many times its first block by
# default (5 -> 10 -> 20 -> 40): few looks (each costs level), and enough seeds at the last for
# the fail tests to fire at the gate's level on the differences the gate exists for.
GROWTH = 8


def max_seeds_for(max_seeds: int | None, seeds: Sequence[int]) -> int:
    """The seeds a cell may grow to: as asked, else :data:`GROWTH` times the first block."""
    return max_seeds if max_seeds is not None else GROWTH * len(seeds)


def seed_schedule(first: int, max_seeds: int) -> tuple[int, ...]:
    """The seeds a cell is looked at with: the first block, doubled at each look, up to
    `max_seeds` (5, 40: 5, 10, 20, 40; 5, 15: 5, 10, 15)."""
    sizes = [first]
    while sizes[-1] < max_seeds:
        sizes.append(min(2 * sizes[-1], max_seeds))
    return tuple(sizes)


def flag_name(name: str) -> str:
    return name.replace("_", "-")


# The order options are listed in within their group (``--help``); a field not named here follows.
HELP_ORDER = (
    "net", "actor_net", "critic_net", "deterministic_actor_net", "gaussian_actor_net", "agent", "like", "nets",
    "baseline",
    "actor_output", "refuse_frozen", "hidden",
    "algos", "probes", "env", "steps", "warmup", "eval_every", "eval_episodes", "seeds", "max_seeds",
    "slower_budget", "strict", "reference", "regen_reference",
    "device", "workers", "backend", "ray_address", "cache_dir", "no_cache", "resume",
    "out", "json", "quiet",
)  # fmt: skip


def shown_default(f: dataclasses.Field[Any], option: Option) -> str | None:
    """A field's default as help text shows it; None where the help says what it is."""
    if option.shown is not None:
        return option.shown
    if f.default is None or option.flag:
        return None
    return ",".join(map(str, f.default)) if isinstance(f.default, tuple) else str(f.default)


def in_help_order(request: type[Request]) -> list[tuple[dataclasses.Field[Any], Option]]:
    rank = {name: i for i, name in enumerate(HELP_ORDER)}
    return sorted(options_of(request), key=lambda fo: (GROUPS.index(fo[1].group), rank.get(fo[0].name, len(rank))))


@dataclass(frozen=True)
class Request:
    """The fields a check and a study share (see the module docstring)."""

    algos: tuple[str, ...] = option(
        ("td3", "sac"), "algorithms, comma-separated, from td3, sac, crossq (an agent is judged as --like's)",
        "probes and statistics", parse=parse_names,
    )  # fmt: skip
    seeds: tuple[int, ...] = option(
        (0, 1, 2, 3, 4), "the first block of seeds: a count (5 = seeds 0-4), a range (100-104) or a list (100,101)",
        "probes and statistics", parse=parse_seeds, shown="5",
    )  # fmt: skip
    max_seeds: int | None = option(
        None, "grow to this many seeds per cell while a comparison is undecided, doubling at each look "
        "(default: 8x the seeds given; equal to the seeds disables growing)", "probes and statistics",
        parse=parse_positive_int, metavar="N",
    )  # fmt: skip
    slower_budget: float = option(
        3.0, "a net below the baseline at the budget while still learning trains on, in that cell only, to this "
        "many times the budget, and is 'slower' if it then matches the baseline (1 turns this off)",
        "probes and statistics", parse=parse_slower_budget, metavar="X",
    )  # fmt: skip
    hidden: tuple[int, ...] = option(
        DEFAULT_HIDDEN, "hidden widths of the built-in nets (the plain baseline): match your net's",
        "networks", parse=parse_hidden, metavar="W,W",
    )  # fmt: skip
    actor_output: str = option(
        "auto", "how your actor's output is read: raw (rlcheck squashes it), squashed (ends in tanh, maybe scaled "
        "to the env's bounds), log-std or scale (a Gaussian's (mean, log_std) or (loc, scale)); auto: detected",
        "networks", parse=choice_of(ACTOR_OUTPUTS),
    )  # fmt: skip
    refuse_frozen: bool = option(
        False, "refuse a net with frozen parameters (requires_grad=False) instead of naming them in a note",
        "networks", flag=True,
    )  # fmt: skip
    device: str = option("cpu", "torch device to train on: cpu, cuda or cuda:N", "execution")
    workers: int | None = option(
        None, "parallel training processes (default: one per core; one with a CUDA device)", "execution",
        parse=parse_positive_int, metavar="N", setting=False,
    )  # fmt: skip
    backend: str = option(
        "local", "where jobs train: processes here, or tasks on a Ray cluster (pip install 'rlcheck[ray]')",
        "execution", parse=choice_of(BACKENDS),
    )  # fmt: skip
    ray_address: str | None = option(
        None, "the Ray cluster to join with --backend ray (default: a local instance)", "execution"
    )
    resume: bool = option(False, "reuse finished runs from OUT/runs.jsonl", "execution", flag=True, setting=False)
    out: str | None = option(
        None, "output folder for runs.jsonl, results.json and report.html (the command line's default: "
        "rlcheck-results for a study, rlcheck-check for a check; from Python: nothing is written)", "output",
        setting=False, metavar="DIR",
    )  # fmt: skip
    json: bool = option(False, "print results.json to stdout instead of the table", "output", flag=True, setting=False)
    quiet: bool = option(False, "no progress lines on stderr", "output", flag=True, setting=False)

    @classmethod
    def of(cls, spelling: Callable[[str], str] | None = None, **values: Any) -> Any:
        """A request from values as a user gives them (text or Python values), each parsed by its
        field's parser; a name that is no field is a usage error. ``spelling``: how an error
        names the option (default ``--name``; the plugin's ``rlcheck_name``)."""
        spell = spelling or (lambda name: f"--{flag_name(name)}")
        known = {f.name: o for f, o in options_of(cls)}
        aliases = {a: f for f, o in known.items() for a in o.aliases}
        parsed = {}
        for name, value in values.items():
            name = aliases.get(name, name)
            if name not in known:
                raise UsageError(f"unknown option {spell(name)}: choose from {', '.join(known)}")
            if value is None:
                continue  # not given: the default
            parsed[name] = known[name].parse(value, spell(name))
        return cls(**parsed)

    def given(self) -> dict[str, Any]:
        """The fields that differ from their defaults."""
        return {f.name: getattr(self, f.name) for f, _ in options_of(self) if getattr(self, f.name) != f.default}


@dataclass(frozen=True)
class CheckRequest(Request):
    """``rlcheck check``: your networks against a baseline on rlcheck's probe suite."""

    net: str | None = option(None, "your factory for actor and critic, 'package.module:function'", "networks")
    actor_net: str | None = option(
        None, "your actor factory (the critic stays the baseline's unless --critic-net)", "networks"
    )
    critic_net: str | None = option(
        None, "your critic factory (the actor stays the baseline's unless an actor is given)", "networks"
    )
    deterministic_actor_net: str | None = option(
        None, "your deterministic actor, for the algorithms that take one (TD3; e.g. CleanRL's td3 Actor class)",
        "networks", aliases=("td3_actor_net",),
    )  # fmt: skip
    gaussian_actor_net: str | None = option(
        None, "your Gaussian actor, for the algorithms that take one (SAC, CrossQ; e.g. CleanRL's sac Actor class)",
        "networks", aliases=("sac_actor_net",),
    )  # fmt: skip
    agent: str | None = option(
        None, "your whole agent instead of networks: 'package.module:make_agent', make_agent(env, seed) returning "
        "an object with act(obs, explore) and observe(obs, action, reward, next_obs, terminated, truncated) "
        "(docs/agents.md); compared with rlcheck's agent of the family --like names", "networks", metavar="FACTORY",
    )  # fmt: skip
    like: str | None = option(
        None, "the family your agent is compared with: td3 or sac (rlcheck's own, plain MLPs, its defaults); "
        "default: the agent's `family` attribute", "networks", parse=choice_of(("td3", "sac")),
    )  # fmt: skip
    baseline: str | None = option(
        None, "compare with this net instead of the plain MLP: your previous network, say ('package.module:function' "
        "or a built-in); a side you do not give is the baseline's too", "networks",
    )  # fmt: skip
    probes: tuple[str, ...] = option(
        ("all",), "probes, comma-separated, from constant, observed, delayed, action, track, random, or all",
        "probes and statistics", parse=parse_names,
    )  # fmt: skip
    strict: bool = option(
        False, "a cell left undecided, or only slower, fails the check too (exit 1)", "probes and statistics",
        flag=True,
    )  # fmt: skip
    reference: str | None = option(
        None, "compare every cell's outcome with this committed file (e.g. rlcheck-reference.json; under pytest, "
        "relative to the rootdir): a cell that got worse fails the check; where there is none, it is written and "
        "the check fails until it is committed", "probes and statistics", metavar="FILE",
    )  # fmt: skip
    regen_reference: bool = option(
        False, "write the reference from this check (rlcheck-reference.json if none is named)",
        "probes and statistics", flag=True,
    )  # fmt: skip
    cache_dir: str | None = option(
        None, "where runs of the built-in baseline are kept between checks (default: $RLCHECK_CACHE_DIR, else "
        "~/.cache/rlcheck; RLCHECK_CACHE_DIR=off disables it)", "execution", setting=False, metavar="DIR",
    )  # fmt: skip
    no_cache: bool = option(
        False, "train the baseline again; read and write no cache", "execution", flag=True, setting=False
    )

    NET_FIELDS = ("net", "actor_net", "critic_net", "deterministic_actor_net", "gaussian_actor_net", "agent")

    @property
    def nets_given(self) -> bool:
        return any(getattr(self, name) for name in self.NET_FIELDS)


@dataclass(frozen=True)
class StudyRequest(Request):
    """``rlcheck``: train nets with each algorithm on one environment and compare them with a baseline."""

    nets: tuple[str, ...] = option(
        ("plain", "batchnorm"), "nets, comma-separated: built-ins (plain, batchnorm, layernorm, ...; rlcheck --help "
        "lists them) or 'package.module:function'", "networks", parse=parse_names,
    )  # fmt: skip
    baseline: str = option("plain", "the net every other net is compared with", "networks")
    env: str = option(
        "rlcheck/RandomEnv-v0", "a registered gymnasium id with a bounded Box action space", "probes and statistics"
    )
    steps: int = option(
        2000, "environment steps per run: the budget", "probes and statistics", parse=parse_positive_int
    )
    warmup: int = option(250, "random-action steps before learning starts", "probes and statistics", parse=parse_count)
    eval_every: int = option(
        100, "evaluate the deterministic policy every this many steps", "probes and statistics",
        parse=parse_positive_int,
    )  # fmt: skip
    eval_episodes: int | None = option(
        None, "episodes per evaluation (default 1 on rlcheck's deterministic envs, 5 elsewhere)",
        "probes and statistics", parse=parse_positive_int,
    )  # fmt: skip
