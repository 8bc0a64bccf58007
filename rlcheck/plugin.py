"""rlcheck's pytest plugin (entry point ``pytest11: rlcheck``): gate your network code from pytest.

Settings come from the command line or from ``[tool.pytest.ini_options]`` in your
``pyproject.toml`` (the command line wins)::

    rlcheck_net = "mypkg.nets:make_net"   # or rlcheck_actor_net / rlcheck_critic_net
    rlcheck_deterministic_actor_net = "mypkg.td3:Actor"  # per-kind actors (CleanRL's are two classes;
    rlcheck_gaussian_actor_net = "mypkg.sac:Actor"       # rlcheck_td3_actor_net / _sac_ still work)
    rlcheck_actor_output = "auto"         # raw, squashed, log-std, scale: where detection cannot tell
    rlcheck_algos = "td3,sac"
    rlcheck_seeds = "5"
    rlcheck_probes = "all"
    rlcheck_hidden = "64,64"              # the plain baseline's hidden widths: match your net's

Every setting is a field of :class:`rlcheck.requests.CheckRequest` (``pytest --help`` lists
them under "rlcheck"), parsed as ``rlcheck check`` parses it. Use it either way:

* run the shipped gate: ``pytest --pyargs rlcheck.gate`` (one test per algo and probe);
* or call the ``rlcheck_gate`` fixture from your own test::

      def test_my_net_passes(rlcheck_gate):
          result = rlcheck_gate("mypkg.nets:make_net", probes="action,random")
          assert result.passed, check_report(result, "pytest")  # from rlcheck.front.words

The plugin does nothing unless one of its fixtures is used. It is loaded by every pytest
session of an environment rlcheck is installed in, so it imports torch, scipy and the rest
of rlcheck only when a fixture or the shipped gate needs them (about 4 s otherwise, tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from rlcheck.requests import CheckRequest, flag_name, in_help_order, options_of, shown_default

if TYPE_CHECKING:
    from rlcheck.verdicts.check import CheckResult
    from rlcheck.verdicts.config import Cell

# The plugin's settings: the request's fields that a pytest session can set, with their aliases.
SETTINGS = {f.name: option for f, option in options_of(CheckRequest) if option.setting}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rlcheck", "rlcheck: gate your RL network code")
    for f, option in in_help_order(CheckRequest):
        if not option.setting:
            continue
        name, default = f.name, shown_default(f, option)
        shown = "" if default is None else f" (default: {default})"
        flags = [f"--rlcheck-{flag_name(n)}" for n in (name, *option.aliases)]
        value = "true or false: " if option.flag else ""
        group.addoption(
            *flags, dest=f"rlcheck_{name}", default=None, help=f"{value}{option.help}{shown} [ini: rlcheck_{name}]"
        )
        for ini in (name, *option.aliases):
            parser.addini(
                f"rlcheck_{ini}", help=option.help if ini == name else f"the same as rlcheck_{name}", default=None
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rlcheck_gate: trains agents to gate a network factory (minutes, not seconds)")
    config.pluginmanager.register(GateSummary(), "rlcheck-gate-summary")


def setting(config: pytest.Config, name: str, from_ini: bool = True) -> str | None:
    """A setting's text: the command line's, else (with `from_ini`) the ini file's under its
    name or an alias, else None (the request's default)."""
    value = config.getoption(f"rlcheck_{name}")
    if value is None and from_ini:
        for ini in (name, *SETTINGS[name].aliases):
            value = config.getini(f"rlcheck_{ini}") or None
            if value is not None:
                break
    return value


def request_of(config: pytest.Config, overrides: dict[str, Any] | None = None) -> CheckRequest:
    """The check a pytest session asks for: the fixture's arguments > the command line > the
    ini file > the request's defaults. The networks go as a group: where the fixture or the
    command line names any, the ini file's are not read (an ini ``rlcheck_net`` and a
    command-line actor would contradict)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    aliases = {a: name for name, option in SETTINGS.items() for a in option.aliases}
    overrides = {aliases.get(k, k): v for k, v in overrides.items()}
    nets = CheckRequest.NET_FIELDS
    values: dict[str, Any] = {name: setting(config, name) for name in SETTINGS if name not in nets}
    if any(overrides.get(n) for n in nets):
        values.update({n: overrides.get(n) for n in nets})
    else:
        from_cli = any(setting(config, n, from_ini=False) for n in nets)
        values.update({n: setting(config, n, from_ini=not from_cli) for n in nets})
    values.update({k: v for k, v in overrides.items() if k not in nets})
    return CheckRequest.of(spelling=lambda name: f"rlcheck_{name}", **values)


PROPERTY = "rlcheck_cell"


def record_cells(item: pytest.Item, result: CheckResult) -> None:
    """Attach each cell's outcome and numbers to the test (``item.user_properties``): they land
    in JUnit XML under pytest's default junit_family and reach the controller under xdist, where
    the session's summary is written from them."""
    from rlcheck.front.report import summary_records

    for record in summary_records(result.study):
        for key, value in record.items():
            item.user_properties.append((f"rlcheck_{key}", value))


class GateSummary:
    """Collects the gate tests' cells from their reports and prints them once, at the end (and
    writes the CI job summary, where there is one)."""

    def __init__(self) -> None:
        self.cells: list[dict[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        cell: dict[str, str] = {}
        for key, value in report.user_properties:
            if not str(key).startswith("rlcheck_"):
                continue
            name = str(key)[len("rlcheck_") :]
            if name == "cell" and cell:
                self.cells.append(cell)
                cell = {}
            cell[name] = str(value)
        if cell:
            self.cells.append(cell)

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if not self.cells:
            return
        from rlcheck.front.report import append_step_summary, markdown_table, terminal_lines

        terminalreporter.write_sep("-", "rlcheck gate")
        for line in terminal_lines(self.cells):
            terminalreporter.write_line(line)
        cells = sorted(self.cells, key=lambda c: c["cell"])
        append_step_summary(markdown_table(cells, "gate", (), None))


def _cells(config: pytest.Config) -> list[tuple[str, Cell]]:
    from rlcheck.algos import ALGORITHMS
    from rlcheck.errors import UsageError
    from rlcheck.front.api import known
    from rlcheck.verdicts.check import parse_probes

    try:  # only what the cells need: any other bad setting fails the tests, each in one line
        chosen = {name: setting(config, name) for name in ("algos", "probes", "like", "agent")}
        request = CheckRequest.of(spelling=lambda name: f"rlcheck_{name}", **chosen)
        # An agent is judged as the family it is like; without rlcheck_like, its own `family` decides,
        # and the other algorithm's tests skip.
        algos = (request.like,) if request.like else known(request.algos, list(ALGORITHMS), "algo", "rlcheck_algos")
        probes = parse_probes(request.probes, agent=request.agent is not None)
    except UsageError as exc:
        pytest.fail(f"rlcheck: {exc}", pytrace=False)
    return [(f"{algo}-{probe.name}", probe.cell(algo)) for probe in probes for algo in algos]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One shipped gate test per (algo, probe) cell, so a failure names its cell and xdist spreads them."""
    if "rlcheck_cell" in metafunc.fixturenames:
        cells = _cells(metafunc.config)
        metafunc.parametrize("rlcheck_cell", [c for _, c in cells], ids=[i for i, _ in cells])


GateRunner = Callable[..., "CheckResult"]


@pytest.fixture(scope="session")
def rlcheck_gate(pytestconfig: pytest.Config) -> GateRunner:
    """A function that runs the gate and returns a :class:`rlcheck.verdicts.check.CheckResult`.

    Its arguments are the fields of :class:`rlcheck.requests.CheckRequest` (``net``,
    ``actor_net``, ``critic_net``, ``algos``, ``seeds``, ``probes``, ``hidden``, ``max_seeds``,
    ``slower_budget``, ...), as text or Python values; what is not given comes from the
    rlcheck settings. ``cells`` runs only the given (algo, probe) cells, judged at the error
    levels of the whole gate. A user mistake (bad factory path, wrong output shape, ...) fails
    the test with one line.
    """
    from rlcheck.engine.cache import cache_from_env
    from rlcheck.engine.workers import WorkerDied
    from rlcheck.errors import UsageError
    from rlcheck.front.api import execute_check, prepare_check

    def run(net: str | None = None, *, cells: Sequence[Cell] | None = None, **values: Any) -> CheckResult:
        try:
            prepared = prepare_check(request_of(pytestconfig, {"net": net, **values}))
            served = None
            if cells is not None:
                served = [c for c in cells if c.algo in prepared.config.algos]
                if not served:
                    skipped = [line for line in prepared.detected if "skipped" in line]
                    pytest.skip("; ".join(skipped) or f"the check runs {', '.join(prepared.config.algos)} only")
            return execute_check(
                prepared,
                cache=cache_from_env(),
                notify=lambda note: warnings.warn(f"rlcheck: {note}", stacklevel=1),
                rootdir=pytestconfig.rootpath,
                cells=served,
            )
        except (UsageError, WorkerDied) as exc:
            pytest.fail(f"rlcheck: {exc}", pytrace=False)

    return run
