"""One request, one answer: a :class:`~rlcheck.requests.CheckRequest` or
:class:`~rlcheck.requests.StudyRequest` resolved into what trains, run, and (where ``out`` is
given) written out. The command line (rlcheck.front.commands), the pytest plugin
(rlcheck.plugin) and Python callers all come through here::

    import rlcheck

    result = rlcheck.run_check(net="mypkg.nets:make_net", seeds=5, probes="action,random")
    print(result.outcome)                       # pass, slower, undecided or fail
    study = rlcheck.run_study(nets="plain,layernorm", steps=1000)

Values are the command line's, as text or as Python values (``seeds=5``, ``seeds="100-104"``,
``hidden=(64, 64)``); ``out`` writes ``runs.jsonl``, ``results.json`` and ``report.html`` there
(from Python nothing is written unless it is given).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rlcheck.algos import ALGORITHMS
from rlcheck.engine.cache import RunCache, cache_from_env
from rlcheck.engine.runner import ProgressCallback, default_workers, threads_per_worker
from rlcheck.errors import UsageError
from rlcheck.front import words
from rlcheck.front.options import prepare_out
from rlcheck.front.report import append_step_summary, markdown_summary, plot_curves, write_html, write_json
from rlcheck.requests import CheckRequest, Request, StudyRequest, flag_name, in_help_order, max_seeds_for
from rlcheck.verdicts.check import (
    CheckResult,
    NetUnderTest,
    Probe,
    check_config,
    check_networks,
    fitting_algos,
    parse_probes,
)
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.reference import DEFAULT_REFERENCE
from rlcheck.verdicts.study import StudyResult
from rlcheck.verdicts.study import run_study as study_of
from rlcheck.verdicts.variants import STUDY_NETS

Notify = Callable[[str], None]


def known(names: Sequence[str], valid: Sequence[str], what: str, option: str) -> tuple[str, ...]:
    """`names`, each checked against rlcheck's registry of `what` (a factory path is a net too)."""
    for name in names:
        if name not in valid and not (what == "net" and ":" in name):
            extra = " or 'package.module:function'" if what == "net" else ""
            raise UsageError(f"{option}: unknown {what} {name!r}: choose from {', '.join(valid)}{extra}")
    return tuple(names)


def check_device(name: str) -> str:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: rlcheck supports cpu and cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return str(device)


def workers_and_device(request: Request) -> tuple[int, str]:
    """The processes and the device a request trains with: one process per core by default,
    one on a CUDA device (several would only contend for it)."""
    device = check_device(request.device)
    if request.workers is not None:
        return request.workers, device
    return (1 if device.startswith("cuda") else default_workers()), device


def backend_of(request: Request) -> str:
    if request.ray_address and request.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
    return request.backend


def max_seeds_of(request: Request) -> int:
    return max_seeds_for(request.max_seeds, request.seeds)


def as_command(request: Request) -> str:
    """The command line that makes the same request: what a report says reproduces it."""
    argv = ["rlcheck", "check"] if isinstance(request, CheckRequest) else ["rlcheck"]
    given = request.given()
    for f, option in in_help_order(type(request)):
        if f.name not in given:
            continue
        if option.flag:
            argv.append(f"--{flag_name(f.name)}")
        else:
            value = given[f.name]
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            argv += [f"--{flag_name(f.name)}", text]
    return shlex.join(argv)


# -- a study -----------------------------------------------------------------------------------


def study_config(request: StudyRequest) -> StudyConfig:
    """The study a request asks for, every derived default resolved."""
    workers, device = workers_and_device(request)
    algos = known(request.algos, list(ALGORITHMS), "algo", "--algos")
    nets = known(request.nets, list(STUDY_NETS), "net", "--nets")
    eval_episodes = request.eval_episodes or (1 if request.env.startswith("rlcheck/") else 5)
    cells = tuple(
        Cell(algo, request.env, request.steps, request.warmup, request.eval_every, eval_episodes) for algo in algos
    )
    return StudyConfig(
        cells=cells,
        nets=nets,
        baseline=nets[0] if len(nets) == 1 else request.baseline,  # one net alone is compared with nothing
        actor_output=request.actor_output,
        refuse_frozen=request.refuse_frozen,
        seeds=request.seeds,
        max_seeds=max_seeds_of(request),
        slower_budget=request.slower_budget,
        hidden=request.hidden,
        device=device,
        workers=workers,
        threads=threads_per_worker(workers),
        backend=backend_of(request),
        ray_address=request.ray_address,
    )


def run_study(
    request: StudyRequest | None = None,
    /,
    *,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    **values: Any,
) -> StudyResult:
    """Run a study (``rlcheck`` with the same values) and return its result; with ``out``,
    write runs.jsonl, results.json, report.html and the figures there."""
    request = _request(StudyRequest, request, values)
    config = study_config(request)
    out = prepare_out(Path(request.out)) if request.out else None
    log_path = out / "runs.jsonl" if out else None
    study = study_of(config, log_path, progress, resume=request.resume, notify=notify)
    study.diagnose_failures()
    if out is not None:
        headline = words.study_headline(study, request.env)
        study.files = write_outputs(study, out, headline, (), None, as_command(request), figures=True)
    return study


# -- a check -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedCheck:
    """A check request resolved and its networks checked at the door, before anything trains."""

    request: CheckRequest
    net: NetUnderTest
    config: StudyConfig
    detected: tuple[str, ...]  # what rlcheck detected of each network, or why an algorithm is skipped


def prepare_check(request: CheckRequest) -> PreparedCheck:
    net = NetUnderTest.of(request)
    workers, device = workers_and_device(request)
    probes = parse_probes(request.probes, agent=net.agent is not None)
    settings: tuple[tuple[str, float | int], ...] = ()
    hidden = request.hidden
    if net.agent is not None:
        cells = _agent_cells(request, net.agent, probes)
        algos, probes, detected, settings, hidden = (
            cells.algos, cells.probes, cells.lines, cells.settings, cells.hidden or request.hidden
        )  # fmt: skip
    else:
        algos = known(request.algos, list(ALGORITHMS), "algo", "--algos")
        algos, detected = fitting_algos(net, algos, probes[0].env_id, request.hidden, request.actor_output)
    config = check_config(
        net,
        algos=algos,
        probes=probes,
        seeds=request.seeds,
        max_seeds=request.max_seeds,
        hidden=hidden,
        settings=settings,
        device=device,
        workers=workers,
        actor_output=request.actor_output,
        refuse_frozen=request.refuse_frozen,
        slower_budget=request.slower_budget,
        backend=backend_of(request),
        ray_address=request.ray_address,
    )
    return PreparedCheck(request, net, config, tuple(detected))


@dataclass(frozen=True)
class AgentCells:
    """What an agent check runs, found at the door: the family it is compared with, its probes
    (the value probes only where the agent reports Q), the reference's settings and widths where
    they are read from the agent (an SB3 model's), and what was found, in lines."""

    algos: tuple[str, ...]
    probes: tuple[Probe, ...]
    lines: list[str]
    settings: tuple[tuple[str, float | int], ...] = ()
    hidden: tuple[int, ...] | None = None


def _agent_cells(request: CheckRequest, agent: str, probes: tuple[Probe, ...]) -> AgentCells:
    from rlcheck.engine.user_agents import door_check

    found = door_check(agent, probes[0].env_id)
    family, reports_q = request.like or found.family, found.reports_q
    if family not in ("td3", "sac"):
        said = f"its family attribute is {family!r}; " if family else ""
        raise UsageError(f"--agent {agent}: {said}say which agent it is compared with: --like td3 or --like sac")
    reference = found.reference if found.reference is not None and family == found.family else None
    settings, hidden = (reference.settings, reference.hidden) if reference is not None else ((), None)
    if reference is not None and (reference.taken or reference.not_taken):
        lines = [f"agent {agent}: compared with rlcheck's {family.upper()} (plain MLPs) with the model's settings"]
        if reference.taken:
            lines.append(f"agent {agent}: the reference takes the model's {', '.join(reference.taken)}")
        if reference.not_taken:
            lines.append(f"agent {agent}: the reference cannot take the model's {'; '.join(reference.not_taken)}")
    else:
        lines = [f"agent {agent}: compared with rlcheck's {family.upper()} (plain MLPs, its default settings)"]
    if found.reference is not None and reference is None:
        judged = f"an SB3 {found.family} judged as {family}"
        lines.append(f"agent {agent}: {judged}: the reference keeps its defaults, not the model's settings")
    if not reports_q:
        skipped = [p.name for p in probes if p.metric == "value_error"]
        probes = tuple(p for p in probes if p.metric != "value_error")
        if not probes:
            raise UsageError(
                f"--agent {agent} has no q_value(obs, actions), so the value probes ({', '.join(skipped)}) cannot "
                "judge it and no probe is left: add q_value, or choose return probes (--probes action,track,random)"
            )
        if skipped:
            lines.append(
                f"agent {agent} has no q_value(obs, actions): the value probes {', '.join(skipped)} are skipped"
            )
    return AgentCells((family,), probes, lines, settings, hidden)


def cache_of(request: CheckRequest) -> RunCache | None:
    if request.no_cache:
        return None
    return RunCache(Path(request.cache_dir)) if request.cache_dir else cache_from_env()


def execute_check(
    prepared: PreparedCheck,
    *,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    cache: RunCache | None = None,
    rootdir: Path | None = None,
    cells: Sequence[Cell] | None = None,
) -> CheckResult:
    """Train and judge a prepared check. `cells`: only those (algo, probe) cells, judged at the
    error levels of the whole check (the plugin's one test per cell). A relative reference path
    is taken from `rootdir` (default: the working directory)."""
    request, config = prepared.request, prepared.config
    if cells is not None:
        config = dataclasses.replace(config, cells=tuple(cells), family=len(config.cells))
    out = prepare_out(Path(request.out)) if request.out else None
    log_path = out / "runs.jsonl" if out else None
    if log_path is not None and not request.resume:
        log_path.unlink(missing_ok=True)  # a check starts fresh unless asked to resume
    result = check_networks(config, prepared.net, progress, log_path, cache, request.strict, request.resume, notify)
    if request.reference or request.regen_reference:
        reference = Path(request.reference or DEFAULT_REFERENCE)
        if not reference.is_absolute():
            reference = (rootdir or Path.cwd()) / reference
        result.check_reference(reference, regen=request.regen_reference)
    if out is not None:
        findings = [words.finding(result, c) for c in result.failures]
        headline = words.check_report(result).splitlines()[0]
        result.study.files = write_outputs(
            result.study, out, headline, findings, {"check": words.check_dict(result)}, as_command(request)
        )
    return result


def run_check(
    request: CheckRequest | None = None,
    /,
    *,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    **values: Any,
) -> CheckResult:
    """Gate your networks (``rlcheck check`` with the same values) and return the answer:
    ``result.outcome``, ``result.passed``, each cell's comparison in ``result.study.comparisons``.
    A user mistake raises :class:`rlcheck.UsageError` with one line naming the fix."""
    request = _request(CheckRequest, request, values)
    return execute_check(prepare_check(request), progress=progress, notify=notify, cache=cache_of(request))


def _request(kind: type[Request], request: Request | None, values: dict[str, Any]) -> Any:
    if request is not None and not isinstance(request, kind):
        raise UsageError(f"expected a {kind.__name__}, got {type(request).__name__}")
    spelling = lambda name: f"{name}="  # noqa: E731  (errors name a Python argument as it is written)
    if request is None:
        return kind.of(spelling, **values)
    return dataclasses.replace(request, **kind.of(spelling, **values).given()) if values else request


# -- files -------------------------------------------------------------------------------------


def write_outputs(
    study: StudyResult,
    out: Path,
    headline: str,
    findings: Sequence[str],
    extra: dict[str, Any] | None,
    command: str,
    figures: bool = False,
) -> list[Path]:
    """results.json, report.html (and the figures) in `out`; the CI job summary where there is one."""
    write_json(study, out / "results.json", extra)
    written = [out / "results.json", write_html(study, out / "report.html", headline, findings, command)]
    written += plot_curves(study, out) if figures else []
    append_step_summary(markdown_summary(study, headline, findings))
    return written


def default_out(request: Request) -> str:
    """Where the command line writes when ``--out`` is not given."""
    return "rlcheck-check" if isinstance(request, CheckRequest) else "rlcheck-results"


__all__ = ["PreparedCheck", "execute_check", "prepare_check", "run_check", "run_study", "study_config"]
