"""The bodies of the ``rlcheck`` commands: the study, ``check`` and ``diagnose`` (see rlcheck.cli)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlcheck.algos import ALGORITHMS
from rlcheck.engine.cache import RunCache
from rlcheck.engine.runner import ProgressPrinter
from rlcheck.engine.runs import TrainingDiverged
from rlcheck.engine.workers import WorkerDied
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.errors import UsageError
from rlcheck.front import words
from rlcheck.front.api import (
    cache_of,
    check_device,
    default_out,
    execute_check,
    known,
    prepare_check,
    run_study,
    study_config,
)
from rlcheck.front.options import CommandParser
from rlcheck.front.report import format_table
from rlcheck.requests import (
    ACTOR_OUTPUTS,
    DEFAULT_HIDDEN,
    GROUPS,
    CheckRequest,
    Request,
    StudyRequest,
    choice_of,
    flag_name,
    in_help_order,
    parse_count,
    parse_hidden,
    parse_names,
    shown_default,
)
from rlcheck.verdicts.config import Cell, StudyConfig
from rlcheck.verdicts.diagnose import diagnose_run
from rlcheck.verdicts.study import StudyResult
from rlcheck.verdicts.variants import STUDY_NETS


def print_note(note: str) -> None:
    """A note from the door (rlcheck.verdicts.door): said before training, on stderr."""
    print(f"rlcheck: note: {note}", file=sys.stderr, flush=True)


def parser_for(kind: type[Request], prog: str, description: str) -> CommandParser:
    """A command's parser, generated from its request's fields: one option per field, in the
    request's groups, each with its help and its default (the request's: written once)."""
    parser = CommandParser(prog=prog, description=description)
    groups = {group: parser.add_argument_group(group) for group in GROUPS}
    for f, option in in_help_order(kind):
        names = [f"--{flag_name(f.name)}", *(f"--{flag_name(a)}" for a in option.aliases)]
        if option.flag:
            groups[option.group].add_argument(*names, dest=f.name, action="store_true", default=None, help=option.help)
            continue
        shown = shown_default(f, option)
        text = option.help if shown is None else f"{option.help} (default: {shown})"
        metavar = option.metavar or f.name.upper()
        groups[option.group].add_argument(*names, dest=f.name, default=None, metavar=metavar, help=text)
    return parser


def build_parser() -> CommandParser:
    return parser_for(
        StudyRequest,
        "rlcheck",
        "Reproduce the BatchNorm study: TD3 and SAC with plain vs BatchNorm networks, several seeds, statistics, "
        "a table, results.json and figures. To gate your own networks: rlcheck check --help; to see why one "
        "fails: rlcheck diagnose --help.",
    )


def build_check_parser() -> CommandParser:
    return parser_for(
        CheckRequest,
        "rlcheck check",
        "Gate your own network code: your factory vs the plain baseline on rlcheck's probe suite with TD3 and "
        "SAC. Exit 0 pass, 1 the gate found a problem, 2 usage error.",
    )


def request_of(kind: type[Request], parser: CommandParser, argv: Sequence[str]) -> Any:
    """The request a command line makes (parsed by the request's own parsers; usage errors
    raise UsageError), writing to the command's default folder where --out is not given."""
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    request = kind.of(**given)
    return request if request.out else dataclasses.replace(request, out=default_out(request))


def _guarded(body: Callable[[], int], saved: Callable[[], str] = str) -> int:
    """Run a command body; turn user mistakes and interruptions into one line and an exit code.

    ``saved()`` tells the user where finished work is (empty when a command saves none): it is
    asked only when something went wrong, once the request says where its folder is."""
    try:
        return body()
    except UsageError as exc:
        print(f"rlcheck: error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"rlcheck: a run failed: {exc}{saved()}", file=sys.stderr)
        return 1
    except WorkerDied as exc:
        print(f"rlcheck: {exc}{saved()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nrlcheck: interrupted{saved()}", file=sys.stderr)
        return 130


def _print_result(study: StudyResult, data_json: bool) -> None:
    if data_json:
        print((Path(study.files[0])).read_text())
    else:
        print(format_table(study))
        print(f"\nwrote {', '.join(str(f) for f in study.files)}")


def study_main(argv: Sequence[str]) -> int:
    parser = build_parser()
    out = "rlcheck-results"

    def body() -> int:
        nonlocal out
        request: StudyRequest = request_of(StudyRequest, parser, argv)
        out = str(request.out)
        config = study_config(request)
        if not request.quiet:
            print(
                f"rlcheck: {','.join(config.algos)} x {','.join(config.nets)} x {len(config.seeds)} seeds "
                f"(up to {config.max_seeds}) on {request.env}, {request.steps} steps, "
                f"{config.workers} worker(s); runs saved to {out}/runs.jsonl",
                file=sys.stderr,
            )
        progress = None if request.quiet else ProgressPrinter()
        study = run_study(request, progress=progress, notify=print_note)
        _print_result(study, request.json)
        if not request.json:
            print(words.diagnoses_report(study))
        return 0

    return _guarded(body, lambda: f"; finished runs are in {out}/runs.jsonl (rerun with --resume)")


def check_main(argv: Sequence[str]) -> int:
    parser = build_check_parser()
    out = "rlcheck-check"

    def body() -> int:
        nonlocal out
        request: CheckRequest = request_of(CheckRequest, parser, argv)
        out = str(request.out)
        prepared = prepare_check(request)
        config, cache = prepared.config, cache_of(request)
        if not request.quiet:
            for line in prepared.detected:
                print(f"rlcheck check: {line}", file=sys.stderr)
            print(
                f"rlcheck check: {prepared.net.label} vs {prepared.net.baseline} on {len(config.cells)} (algo, probe) "
                f"cells x {len(config.seeds)} seeds; runs saved to {out}/runs.jsonl",
                file=sys.stderr,
            )
            print(f"rlcheck check: {_estimate(config, cache)}", file=sys.stderr)
        progress = None if request.quiet else ProgressPrinter()
        result = execute_check(prepared, progress=progress, notify=print_note, cache=cache)
        if cache is not None and cache.hits and not request.quiet:
            print(f"rlcheck check: reused {cache.hits} baseline runs from {cache.folder}", file=sys.stderr)
        _print_result(result.study, request.json)
        print("\n" + words.check_report(result), file=sys.stderr if request.json else sys.stdout)
        return 0 if result.passed else 1

    return _guarded(body, lambda: f"; finished runs are in {out}/runs.jsonl")


def _estimate(config: StudyConfig, cache: RunCache | None) -> str:
    """The training time of the first block of seeds, from the baseline's cached runs (a user's
    net of a similar size trains about as long): what a user waits for at the least."""
    first = [config.spec(c, config.baseline, s) for c in config.cells for s in config.seeds]
    cached = [r for spec in first if cache is not None and (r := cache.get(spec, count=False)) is not None]
    if len(cached) < len(first):
        return "first check on this machine (or after an upgrade): the baseline trains too; later checks take less"
    job_seconds = sum({(r.spec.algo, r.wall_time_s): r.wall_time_s for r in cached}.values())  # a job: one wall
    candidates = len(config.nets) - 1
    return (
        f"about {job_seconds * candidates / max(config.workers, 1):.0f} s of training for the first "
        f"{len(config.seeds)} seeds on {config.workers} worker(s), estimated from the baseline's cached runs "
        "(more if cells grow seeds or a slower net trains on)"
    )


def build_diagnose_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="rlcheck diagnose",
        description="Why does a network break TD3/SAC? Train an agent briefly and measure the mechanisms: "
        "the action gradient reaching the actor (train vs eval mode), BatchNorm amplification, the actor's "
        "train/eval gap, target buffers. Exit 0 nothing found, 1 findings, 2 usage error.",
    )
    parser.add_argument("--net", default="batchnorm", help=f"{', '.join(STUDY_NETS)} or 'package.module:function'")
    parser.add_argument("--algo", default="td3", help=f"one of {', '.join(ALGORITHMS)}")
    parser.add_argument("--env", default=RANDOM_ENV_ID, help="environment to train on")
    parser.add_argument("--steps", default="1000", help="training steps before measuring (0: a fresh agent)")
    parser.add_argument("--warmup", default="250", help="random-action steps before learning starts")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)), help="hidden widths of built-in nets")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--actor-output", default="auto", help=f"one of {', '.join(ACTOR_OUTPUTS)}")
    return parser


def diagnose_main(argv: Sequence[str]) -> int:
    args = build_diagnose_parser().parse_args(argv)

    def body() -> int:
        (algo,) = known(parse_names(args.algo, "--algo"), list(ALGORITHMS), "algo", "--algo")
        (net,) = known(parse_names(args.net, "--net"), list(STUDY_NETS), "net", "--net")
        steps, warmup = parse_count(args.steps, "--steps"), parse_count(args.warmup, "--warmup")
        output = choice_of(ACTOR_OUTPUTS)(args.actor_output, "--actor-output")
        cell = Cell(algo, args.env, steps, min(warmup, steps), eval_every=max(steps, 1))
        config = StudyConfig(cells=(cell,), nets=(net,), baseline=net, hidden=parse_hidden(args.hidden),
                             device=check_device(args.device), actor_output=output)  # fmt: skip
        seed = parse_count(args.seed, "--seed")
        diagnosis = diagnose_run(config.spec(cell, net, seed))
        print(f"{algo} with {net} on {args.env}, {steps} training steps, seed {seed}:")
        print(words.diagnosis_report(diagnosis))
        return 1 if diagnosis.findings else 0

    return _guarded(body)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"check": check_main, "diagnose": diagnose_main}


def run_command(argv: Sequence[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return study_main(argv)
