"""The bodies of the ``rlcheck`` commands: the study, ``check`` and ``diagnose`` (see rlcheck.cli)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from rlcheck.algos import ALGORITHMS
from rlcheck.engine.cache import CACHE_ENV, RunCache, cache_from_env
from rlcheck.engine.runner import ProgressPrinter, default_workers, threads_per_worker
from rlcheck.engine.runs import TrainingDiverged
from rlcheck.engine.workers import WorkerDied
from rlcheck.envs import RANDOM_ENV_ID
from rlcheck.errors import UsageError
from rlcheck.front.options import (
    CommandParser,
    parse_hidden,
    parse_names,
    parse_seeds,
    parse_slower_budget,
    prepare_out,
)
from rlcheck.front.report import (
    append_step_summary,
    format_table,
    markdown_summary,
    plot_curves,
    write_html,
    write_json,
)
from rlcheck.nets import DEFAULT_HIDDEN
from rlcheck.nets.shapes import ACTOR_OUTPUTS
from rlcheck.verdicts.check import PROBES_BY_NAME, NetUnderTest, check_config, fitting_algos, parse_probes, run_check
from rlcheck.verdicts.diagnose import diagnose_run
from rlcheck.verdicts.reference import DEFAULT_REFERENCE
from rlcheck.verdicts.study import Cell, StudyConfig, StudyResult, run_study
from rlcheck.verdicts.variants import STUDY_NETS


def print_note(note: str) -> None:
    """A note from the door (rlcheck.verdicts.door): said before training, on stderr."""
    print(f"rlcheck: note: {note}", file=sys.stderr, flush=True)


def check_device(name: str) -> str:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: rlcheck supports cpu and cuda")
    return str(device)


def _add_common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--algos", default="td3,sac", help=f"comma-separated, from {', '.join(ALGORITHMS)}")
    parser.add_argument("--seeds", default="5", help="a count (5 = seeds 0-4) or a list (100,101,102)")
    parser.add_argument(
        "--max-seeds",
        type=int,
        default=None,
        help="grow to this many seeds while a comparison is undecided "
        "(default: 3x the seeds given; equal to --seeds disables growing)",
    )
    parser.add_argument(
        "--slower-budget",
        type=float,
        default=StudyConfig.slower_budget,
        help="a net that underperforms while still learning trains on, in that cell only, to this many "
        "times the budget, and is 'slower' if it then matches the baseline (1 turns this off)",
    )
    parser.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)), help="hidden widths of built-in nets")
    parser.add_argument("--out", default=default_out, help="output folder")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per core)")
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default=StudyConfig.backend,
        help="where jobs train: processes here, or tasks on a Ray cluster (pip install 'rlcheck[ray]')",
    )
    parser.add_argument("--ray-address", help="the Ray cluster to join (default with --backend ray: a local instance)")
    parser.add_argument("--json", action="store_true", help="print results.json to stdout instead of the table")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="rlcheck",
        description="Reproduce the BatchNorm study: TD3 and SAC with plain vs BatchNorm networks, "
        "several seeds, statistics, a table, results.json and figures. "
        "To gate your own networks: rlcheck check --help; to see why one fails: rlcheck diagnose --help.",
    )
    _add_common(parser, "rlcheck-results")
    parser.add_argument(
        "--nets",
        default=",".join(StudyConfig.nets),
        help=f"comma-separated, from {', '.join(STUDY_NETS)} or 'package.module:function'",
    )
    parser.add_argument("--baseline", default=StudyConfig.baseline, help="the net every other net is compared with")
    # Defaults are the dataclasses': one place says what a study trains when nothing is given.
    parser.add_argument("--steps", type=int, default=Cell.steps, help="environment steps per run")
    parser.add_argument("--warmup", type=int, default=Cell.warmup, help="random-action steps before learning starts")
    parser.add_argument("--eval-every", type=int, default=Cell.eval_every, help="evaluate every this many steps")
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=None,
        help="episodes per evaluation (default 1 on rlcheck's deterministic envs, 5 elsewhere)",
    )
    parser.add_argument("--env", default=RANDOM_ENV_ID, help="a registered gymnasium id with a Box action space")
    parser.add_argument("--resume", action="store_true", help="reuse finished runs from OUT/runs.jsonl")
    _add_net_shape_options(parser)
    return parser


def _add_net_shape_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor-output",
        default="auto",
        choices=ACTOR_OUTPUTS,
        help="how to read your actor's output: raw (rlcheck squashes it), squashed (ends in tanh, maybe "
        "scaled to the env's bounds), log-std or scale (a Gaussian's (mean, log_std) or (loc, scale)); "
        "default: detected",
    )
    parser.add_argument(
        "--refuse-frozen",
        action="store_true",
        help="refuse a net with frozen parameters (requires_grad=False) instead of naming them in a note",
    )


def build_check_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="rlcheck check",
        description="Gate your own network code: your factory vs the plain baseline on rlcheck's probe "
        "suite with TD3 and SAC. Exit 0 pass, 1 the gate found a problem, 2 usage error.",
    )
    parser.add_argument("--net", help="your factory for actor and critic, 'package.module:function'")
    parser.add_argument("--actor-net", help="your actor factory (the critic stays plain unless --critic-net)")
    parser.add_argument(
        "--reference",
        help=f"compare every cell's outcome with this committed file (e.g. {DEFAULT_REFERENCE}); a cell that got "
        "worse fails the check; where there is none, it is written and the check fails until it is committed",
    )
    parser.add_argument(
        "--regen-reference", action="store_true", help="write the reference from this check (default path if none)"
    )
    parser.add_argument(
        "--baseline",
        help="compare with this net instead of the plain MLP: your previous network, say "
        "('package.module:function' or a built-in); a side you do not give is the baseline's too",
    )
    parser.add_argument("--critic-net", help="your critic factory (the actor stays plain unless --actor-net)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a cell left undecided, or only slower, fails the check too (exit 1)",
    )
    parser.add_argument("--td3-actor-net", help="your actor for TD3 only (e.g. CleanRL's td3 Actor class)")
    parser.add_argument("--sac-actor-net", help="your actor for SAC only (e.g. CleanRL's sac Actor class)")
    _add_net_shape_options(parser)
    parser.add_argument("--probes", default="all", help=f"comma-separated, from {', '.join(PROBES_BY_NAME)}, or all")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="where runs of the built-in baseline are kept between checks "
        f"(default: ${CACHE_ENV}, else ~/.cache/rlcheck; ${CACHE_ENV}=off disables it)",
    )
    parser.add_argument("--no-cache", action="store_true", help="train the baseline again; read and write no cache")
    _add_common(parser, "rlcheck-check")
    return parser


def _workers_and_device(args: argparse.Namespace) -> tuple[int, str]:
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    device = check_device(args.device)
    if device.startswith("cuda") and args.workers is None:
        workers = 1  # one process keeps the GPU busy; several would only contend for it
    return workers, device


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    seeds = parse_seeds(args.seeds)
    workers, device = _workers_and_device(args)
    eval_episodes = args.eval_episodes or (1 if args.env.startswith("rlcheck/") else 5)
    cells = tuple(
        Cell(algo, args.env, args.steps, args.warmup, args.eval_every, eval_episodes)
        for algo in parse_names(args.algos, list(ALGORITHMS), "algos")
    )
    nets = parse_names(args.nets, list(STUDY_NETS), "nets")
    return StudyConfig(
        cells=cells,
        nets=nets,
        baseline=nets[0] if len(nets) == 1 else args.baseline,  # one net alone is compared with nothing
        actor_output=args.actor_output,
        refuse_frozen=args.refuse_frozen,
        seeds=seeds,
        max_seeds=args.max_seeds if args.max_seeds is not None else 3 * len(seeds),
        slower_budget=parse_slower_budget(args.slower_budget),
        hidden=parse_hidden(args.hidden),
        device=device,
        workers=workers,
        threads=threads_per_worker(workers),
        backend=_backend(args),
        ray_address=args.ray_address,
    )


def _backend(args: argparse.Namespace) -> str:
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
    return str(args.backend)


def _finish(
    study: StudyResult,
    out: Path,
    as_json: bool,
    figures: bool,
    headline: str,
    findings: Sequence[str] = (),
    extra: dict | None = None,
    command: str = "",
) -> dict:
    """Write results.json, report.html (and the figures); print the table or the JSON; append
    to the CI job summary where there is one."""
    data = write_json(study, out / "results.json", extra)
    html = write_html(study, out / "report.html", headline, findings, command)
    written = [out / "results.json", html, *(plot_curves(study, out) if figures else [])]
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(format_table(study))
        print(f"\nwrote {', '.join(str(f) for f in written)}")
    append_step_summary(markdown_summary(study, headline, findings))
    return data


def _guarded(saved: str, body: Callable[[], int]) -> int:
    """Run a command body; turn user mistakes and interruptions into one line and an exit code.

    ``saved`` tells the user where finished work is (empty when a command saves none)."""
    try:
        return body()
    except UsageError as exc:
        print(f"rlcheck: error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"rlcheck: a run failed: {exc}{saved}", file=sys.stderr)
        return 1
    except WorkerDied as exc:
        print(f"rlcheck: {exc}{saved}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nrlcheck: interrupted{saved}", file=sys.stderr)
        return 130


def study_main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        config = config_from_args(args)
        out = prepare_out(Path(args.out))
        log_path = out / "runs.jsonl"
        if not args.quiet:
            print(
                f"rlcheck: {','.join(config.algos)} x {','.join(config.nets)} x {len(config.seeds)} seeds "
                f"(up to {config.max_seeds}) on {args.env}, {args.steps} steps, "
                f"{config.workers} worker(s); runs saved to {log_path}",
                file=sys.stderr,
            )
        study = run_study(
            config, log_path, None if args.quiet else ProgressPrinter(), resume=args.resume, notify=print_note
        )
        study.diagnose_failures()
        outcomes = ", ".join(f"{c.algo} {c.candidate}: {c.outcome}" for c in study.comparisons) or "trained alone"
        headline = f"study on {args.env} -- {outcomes}"
        _finish(study, out, args.json, True, headline, command=shlex.join(["rlcheck", *argv]))
        if not args.json:
            print(study.diagnoses_report())
        return 0

    return _guarded(f"; finished runs are in {args.out}/runs.jsonl (rerun with --resume)", body)


def check_main(argv: Sequence[str]) -> int:
    args = build_check_parser().parse_args(argv)

    def body() -> int:
        net = NetUnderTest.of(
            args.net, args.actor_net, args.critic_net, args.td3_actor_net, args.sac_actor_net, args.baseline
        )
        workers, device = _workers_and_device(args)
        probes = parse_probes(args.probes)
        hidden = parse_hidden(args.hidden)
        algos, detected = fitting_algos(
            net, parse_names(args.algos, list(ALGORITHMS), "algos"), probes[0].env_id, hidden, args.actor_output
        )
        if not args.quiet:
            for line in detected:
                print(f"rlcheck check: {line}", file=sys.stderr)
        config = check_config(
            net,
            algos=algos,
            probes=probes,
            actor_output=args.actor_output,
            refuse_frozen=args.refuse_frozen,
            seeds=parse_seeds(args.seeds),
            max_seeds=args.max_seeds,
            slower_budget=parse_slower_budget(args.slower_budget),
            hidden=hidden,
            device=device,
            workers=workers,
        )
        config = dataclasses.replace(config, backend=_backend(args), ray_address=args.ray_address)
        out = prepare_out(Path(args.out))
        log_path = out / "runs.jsonl"
        log_path.unlink(missing_ok=True)  # a check always starts fresh
        if not args.quiet:
            print(
                f"rlcheck check: {net.label} vs plain on {len(config.cells)} (algo, probe) cells x "
                f"{len(config.seeds)} seeds; runs saved to {log_path}",
                file=sys.stderr,
            )
        cache = None if args.no_cache else (RunCache(Path(args.cache_dir)) if args.cache_dir else cache_from_env())
        if not args.quiet:
            print(f"rlcheck check: {_estimate(config, cache)}", file=sys.stderr)
        progress = None if args.quiet else ProgressPrinter()
        result = run_check(config, net, progress, log_path, cache, args.strict, notify=print_note)
        if args.reference or args.regen_reference:
            result.check_reference(Path(args.reference or DEFAULT_REFERENCE), regen=args.regen_reference)
        if cache is not None and cache.hits and not args.quiet:
            print(f"rlcheck check: reused {cache.hits} baseline runs from {cache.folder}", file=sys.stderr)
        # results.json holds the outcome, the findings and the diagnoses too
        findings = [result.finding(c) for c in result.failures]
        headline = result.report().splitlines()[0]
        command = shlex.join(["rlcheck", "check", *argv])
        _finish(result.study, out, args.json, False, headline, findings, {"check": result.to_dict()}, command)
        report = sys.stderr if args.json else sys.stdout
        print("\n" + result.report(), file=report)
        return 0 if result.passed else 1

    return _guarded(f"; finished runs are in {args.out}/runs.jsonl", body)


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
    parser.add_argument("--steps", type=int, default=1000, help="training steps before measuring (0: a fresh agent)")
    parser.add_argument("--warmup", type=int, default=250, help="random-action steps before learning starts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)), help="hidden widths of built-in nets")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    _add_net_shape_options(parser)
    return parser


def diagnose_main(argv: Sequence[str]) -> int:
    args = build_diagnose_parser().parse_args(argv)

    def body() -> int:
        (algo,) = parse_names(args.algo, list(ALGORITHMS), "algos")
        (net,) = parse_names(args.net, list(STUDY_NETS), "nets")
        if args.steps < 0:
            raise UsageError(f"--steps {args.steps}: give 0 (a fresh agent) or more")
        cell = Cell(algo, args.env, args.steps, min(args.warmup, args.steps), eval_every=max(args.steps, 1))
        config = StudyConfig(cells=(cell,), nets=(net,), baseline=net, hidden=parse_hidden(args.hidden),
                             device=check_device(args.device), actor_output=args.actor_output)  # fmt: skip
        spec = config.spec(cell, net, args.seed)
        diagnosis = diagnose_run(spec)
        print(f"{algo} with {net} on {args.env}, {args.steps} training steps, seed {args.seed}:")
        print(diagnosis.report())
        return 1 if diagnosis.findings else 0

    return _guarded("", body)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"check": check_main, "diagnose": diagnose_main}


def run_command(argv: Sequence[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return study_main(argv)
