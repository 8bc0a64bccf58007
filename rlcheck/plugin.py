"""rlcheck's pytest plugin (entry point ``pytest11: rlcheck``): gate your network code from pytest.

Settings come from the command line or from ``[tool.pytest.ini_options]`` in your
``pyproject.toml`` (the command line wins)::

    rlcheck_net = "mypkg.nets:make_net"   # or rlcheck_actor_net / rlcheck_critic_net
    rlcheck_td3_actor_net = "mypkg.td3:Actor"  # per-algorithm actors (CleanRL's are two classes)
    rlcheck_sac_actor_net = "mypkg.sac:Actor"
    rlcheck_actor_output = "auto"         # raw, squashed, log-std, scale: where detection cannot tell
    rlcheck_algos = "td3,sac"
    rlcheck_seeds = "5"
    rlcheck_probes = "all"
    rlcheck_hidden = "64,64"              # the plain baseline's hidden widths: match your net's

Use it either way:

* run the shipped gate: ``pytest --pyargs rlcheck.gate`` (one test per algo and probe);
* or call the ``rlcheck_gate`` fixture from your own test::

      def test_my_net_passes(rlcheck_gate):
          result = rlcheck_gate("mypkg.nets:make_net", probes="action,random")
          assert result.passed, result.report()

The plugin does nothing unless one of its fixtures is used. It is loaded by every pytest
session of an environment rlcheck is installed in, so it imports torch, scipy and the rest
of rlcheck only when a fixture or the shipped gate needs them (about 4 s otherwise, tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rlcheck.verdicts.check import CheckResult
    from rlcheck.verdicts.config import Cell

SETTINGS: dict[str, str] = {
    "net": "your network factory for actor and critic, 'package.module:function'",
    "actor_net": "your actor factory (the critic stays plain unless a critic factory is given)",
    "critic_net": "your critic factory (the actor stays plain unless an actor factory is given)",
    "td3_actor_net": "your actor for TD3 only (e.g. CleanRL's td3 Actor class)",
    "sac_actor_net": "your actor for SAC only (e.g. CleanRL's sac Actor class)",
    "baseline": "compare with this net instead of the plain MLP (your previous network, say)",
    "actor_output": "how your actor's output is read: auto (default), raw, squashed, log-std or scale",
    "refuse_frozen": "true: refuse a net with frozen parameters instead of naming them in a note",
    "strict": "true: a cell the seeds cannot decide, or only slower, fails its test (default: passes with a warning)",
    "reference": "a committed file of every cell's outcome (e.g. rlcheck-reference.json, from the rootdir): "
    "a cell that got worse fails its test; where there is none, it is written and the tests fail once",
    "regen_reference": "true: write the reference from this run instead of comparing with it",
    "backend": "where jobs train: local (default) or ray (pip install 'rlcheck[ray]')",
    "ray_address": "the Ray cluster to join with backend ray (default: a local instance)",
    "max_seeds": "seeds per cell an undecided comparison may grow to (default 3x the seeds)",
    "slower_budget": "multiple of a cell's budget a still-learning net trains on to (default 3; 1: never)",
    "algos": "algorithms to gate with, comma-separated (default td3,sac)",
    "seeds": "seeds: a count (default 5) or a list like 100,101,102",
    "probes": "probes, comma-separated names or 'all' (default)",
    "hidden": "hidden widths of the plain baseline your net is compared with (default 64,64)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rlcheck", "rlcheck: gate your RL network code")
    for key, help_text in SETTINGS.items():
        group.addoption(
            f"--rlcheck-{key.replace('_', '-')}",
            dest=f"rlcheck_{key}",
            default=None,
            help=f"{help_text} [ini: rlcheck_{key}]",
        )
        parser.addini(f"rlcheck_{key}", help=help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rlcheck_gate: trains agents to gate a network factory (minutes, not seconds)")
    config.pluginmanager.register(GateSummary(), "rlcheck-gate-summary")


PROPERTY_PREFIX = "rlcheck_"


def record_cells(item: pytest.Item, result: CheckResult) -> None:
    """Attach each cell's outcome and numbers to the test (``item.user_properties``): they land
    in JUnit XML under pytest's default junit_family and reach the controller under xdist."""
    for c in result.study.comparisons:
        s = c.decisive
        for key, value in (
            ("cell", c.cell.label),
            ("outcome", c.outcome),
            ("verdict", s.verdict),
            ("seeds", s.n_candidate),
            ("drop", f"{s.drop:.4g}"),
            ("drop_bounds", f"[{s.drop_low:.4g}, {s.drop_high:.4g}]"),
            ("tolerance", f"{s.tolerance:.4g}"),
            ("reason", c.reason),
        ):
            item.user_properties.append((PROPERTY_PREFIX + key, value))


class GateSummary:
    """Collects the gate tests' cells from their reports and prints them once, at the end."""

    def __init__(self) -> None:
        self.cells: list[dict[str, object]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        cell: dict[str, object] = {}
        for key, value in report.user_properties:
            if not str(key).startswith(PROPERTY_PREFIX):
                continue
            name = str(key)[len(PROPERTY_PREFIX) :]
            if name == "cell" and cell:
                self.cells.append(cell)
                cell = {}
            cell[name] = value
        if cell:
            self.cells.append(cell)

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if not self.cells:
            return
        cells = sorted(self.cells, key=lambda c: str(c["cell"]))
        terminalreporter.write_sep("-", "rlcheck gate")
        for c in cells:
            terminalreporter.write_line(
                f"{c['cell']!s:<26} {c['outcome']!s:<9} drop {c['drop']} {c['drop_bounds']} "
                f"(tolerance {c['tolerance']}, {c['seeds']} seeds)"
            )
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            lines = ["### rlcheck gate", "", "| cell | outcome | seeds | drop [lower, upper] | tolerance | reason |"]
            lines.append("| --- | --- | ---: | --- | ---: | --- |")
            for c in cells:
                outcome = f"**{c['outcome']}**" if c["outcome"] == "fail" else c["outcome"]
                reason = str(c["reason"]).replace("|", "/")
                lines.append(
                    f"| {c['cell']} | {outcome} | {c['seeds']} | {c['drop']} {c['drop_bounds']} | "
                    f"{c['tolerance']} | {reason} |"
                )
            with contextlib.suppress(OSError), open(summary, "a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n\n")


def setting(config: pytest.Config, key: str) -> str | None:
    value = config.getoption(f"rlcheck_{key}")
    if value is None:
        value = config.getini(f"rlcheck_{key}") or None
    return value


def _number(text: str | None, kind: type, key: str):  # type: ignore[no-untyped-def]
    from rlcheck.errors import UsageError

    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"rlcheck_{key} {text!r} is not a {kind.__name__}") from None


def _flag(config: pytest.Config, key: str) -> bool:
    return (setting(config, key) or "").strip().lower() in ("1", "true", "yes", "on")


NET_KEYS = ("net", "actor_net", "critic_net", "td3_actor_net", "sac_actor_net")


def _nets(config: pytest.Config) -> tuple[str | None, ...]:
    """The networks to gate, all from the command line where it names any (it wins over the
    ini file as a whole: an ini ``rlcheck_net`` and a command-line actor would contradict)."""
    given = tuple(config.getoption(f"rlcheck_{key}") for key in NET_KEYS)
    if any(given):
        return given
    return tuple(config.getini(f"rlcheck_{key}") or None for key in NET_KEYS)


def _algos(config: pytest.Config) -> tuple[str, ...]:
    from rlcheck.algos import ALGORITHMS

    algos = tuple(a.strip() for a in (setting(config, "algos") or "td3,sac").split(",") if a.strip())
    unknown = [a for a in algos if a not in ALGORITHMS]
    if unknown or not algos:
        pytest.fail(f"rlcheck: unknown algo {unknown}: choose from {', '.join(ALGORITHMS)}", pytrace=False)
    return algos


def _cells(config: pytest.Config) -> list[tuple[str, Cell]]:
    from rlcheck.errors import UsageError
    from rlcheck.verdicts.check import parse_probes

    try:
        probes = parse_probes(setting(config, "probes"))
    except UsageError as exc:
        pytest.fail(f"rlcheck: {exc}", pytrace=False)
    return [(f"{algo}-{probe.name}", probe.cell(algo)) for probe in probes for algo in _algos(config)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One shipped gate test per (algo, probe) cell, so a failure names its cell and xdist spreads them."""
    if "rlcheck_cell" in metafunc.fixturenames:
        cells = _cells(metafunc.config)
        metafunc.parametrize("rlcheck_cell", [c for _, c in cells], ids=[i for i, _ in cells])


GateRunner = Callable[..., "CheckResult"]


@pytest.fixture(scope="session")
def rlcheck_gate(pytestconfig: pytest.Config) -> GateRunner:
    """A function that runs the gate and returns a :class:`rlcheck.verdicts.check.CheckResult`.

    Arguments default to the rlcheck settings (``net``, ``actor_net``, ``critic_net``, ``algos``,
    ``seeds``, ``probes``, ``hidden``, ``max_seeds``, ``slower_budget``, ...); ``cells`` runs only
    the given (algo, probe) cells, judged at the error levels of the whole gate.
    A user mistake (bad factory path, wrong output shape, ...) fails the test with one line.
    """
    from rlcheck.engine.cache import cache_from_env
    from rlcheck.engine.workers import WorkerDied
    from rlcheck.errors import UsageError
    from rlcheck.front.options import parse_hidden, parse_seeds, parse_slower_budget
    from rlcheck.nets import DEFAULT_HIDDEN
    from rlcheck.nets.shapes import ACTOR_OUTPUTS
    from rlcheck.verdicts.check import NetUnderTest, check_config, fitting_algos, parse_probes, run_check

    def run(
        net: str | None = None,
        *,
        actor_net: str | None = None,
        critic_net: str | None = None,
        td3_actor_net: str | None = None,
        sac_actor_net: str | None = None,
        actor_output: str | None = None,
        baseline: str | None = None,
        algos: str | None = None,
        seeds: str | None = None,
        probes: str | None = None,
        hidden: str | None = None,
        max_seeds: str | None = None,
        slower_budget: str | None = None,
        cells: Sequence[Cell] | None = None,
    ) -> CheckResult:
        try:
            if not any((net, actor_net, critic_net, td3_actor_net, sac_actor_net)):
                net, actor_net, critic_net, td3_actor_net, sac_actor_net = _nets(pytestconfig)
            under_test = NetUnderTest.of(
                net, actor_net, critic_net, td3_actor_net, sac_actor_net, baseline or setting(pytestconfig, "baseline")
            )
            output = actor_output or setting(pytestconfig, "actor_output") or "auto"
            if output not in ACTOR_OUTPUTS:
                raise UsageError(f"rlcheck_actor_output {output!r}: choose from {', '.join(ACTOR_OUTPUTS)}")
            chosen_probes = parse_probes(probes or setting(pytestconfig, "probes"))
            hidden_sizes = parse_hidden(hidden or setting(pytestconfig, "hidden") or ",".join(map(str, DEFAULT_HIDDEN)))
            algo_names, detected = fitting_algos(
                under_test,
                tuple((algos or ",".join(_algos(pytestconfig))).split(",")),
                chosen_probes[0].env_id,
                hidden_sizes,
                output,
            )
            config = check_config(
                under_test,
                algos=algo_names,
                actor_output=output,
                refuse_frozen=_flag(pytestconfig, "refuse_frozen"),
                probes=chosen_probes,
                seeds=parse_seeds(seeds or setting(pytestconfig, "seeds") or "5"),
                max_seeds=_number(max_seeds or setting(pytestconfig, "max_seeds"), int, "max_seeds"),
                slower_budget=parse_slower_budget(
                    _number(slower_budget or setting(pytestconfig, "slower_budget"), float, "slower_budget") or 3.0
                ),
                hidden=hidden_sizes,
            )
            backend = setting(pytestconfig, "backend") or "local"
            if backend not in ("local", "ray"):
                raise UsageError(f"rlcheck_backend {backend!r}: choose local or ray")
            config = dataclasses.replace(config, backend=backend, ray_address=setting(pytestconfig, "ray_address"))
            if cells is not None:
                served = tuple(c for c in cells if c.algo in algo_names)
                if not served:
                    pytest.skip("; ".join(line for line in detected if "skipped" in line))
                # One test per cell, the error rate still spread over the whole gate's cells.
                config = dataclasses.replace(config, cells=served, family=len(config.cells))
            result = run_check(
                config,
                under_test,
                cache=cache_from_env(),
                strict=_flag(pytestconfig, "strict"),
                notify=lambda note: warnings.warn(f"rlcheck: {note}", stacklevel=1),
            )
            regen = _flag(pytestconfig, "regen_reference")
            reference = setting(pytestconfig, "reference") or ("rlcheck-reference.json" if regen else None)
            if reference:
                result.check_reference(pytestconfig.rootpath / reference, regen)
            return result
        except UsageError as exc:
            pytest.fail(f"rlcheck: {exc}", pytrace=False)
        except WorkerDied as exc:
            pytest.fail(f"rlcheck: {exc}", pytrace=False)

    return run
