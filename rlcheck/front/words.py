"""Every sentence rlcheck says about a result, in one place: the verdicts (rlcheck.verdicts) carry
numbers, outcomes and reasons as data, and this module turns them into the console text, the
findings in results.json and report.html, and the plugin's messages.

A sentence that points at an option names it as the user met it (:data:`Door`): ``--hidden``
on the command line, ``rlcheck_hidden`` under pytest, ``hidden=`` from Python.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any, Literal

from rlcheck.requests import flag_name
from rlcheck.verdicts.check import BASELINE, PROBES_BY_ENV, CheckResult
from rlcheck.verdicts.curves import last_third, rises_smoothly, still_improving
from rlcheck.verdicts.diagnose import Diagnosis
from rlcheck.verdicts.outcomes import CellComparison
from rlcheck.verdicts.reference import Moved
from rlcheck.verdicts.stats import POWER_AT_TOLERANCES, SPREAD_RATIO, Comparison
from rlcheck.verdicts.study import StudyResult

Door = Literal["cli", "pytest", "python"]


def option_name(name: str, door: Door = "cli") -> str:
    """How the user spells the request field `name` where they came from."""
    if door == "pytest":
        return f"rlcheck_{name}"
    if door == "python":
        return f"{name}="
    return f"--{flag_name(name)}"


def option_value(name: str, value: str, door: Door = "cli") -> str:
    if door == "pytest":
        return f'{option_name(name, door)} = "{value}"'
    if door == "python":
        return f"{name}={value!r}"
    return f"{option_name(name, door)} {value}"


def percent_confidence(level: float) -> str:
    """1 - level as a percentage with the digits that tell it from 100%: 98.8%, 99.974%."""
    digits = max(1, -math.floor(math.log10(level)) - 1)
    return f"{100 * (1 - level):.{digits}f}%"


# -- a comparison ------------------------------------------------------------------------------


def comparison_reason(s: Comparison) -> str:
    """Why a comparison reached its verdict, with the numbers behind it."""
    confidence = percent_confidence(s.fail_level)
    tolerance = s.tolerance
    if s.decided_by == "drop":
        return (
            f"mean score {s.drop:.3g} below the baseline's; a drop of at least {s.drop_low:.3g} "
            f"at {confidence} confidence, beyond the tolerance {tolerance:.3g}"
        )
    if s.decided_by == "spread":
        return (
            f"scores spread across seeds: mean deviation {s.candidate_spread:.3g} vs {s.baseline_spread:.3g}, "
            f"beyond the tolerance {tolerance:.3g}; more than {SPREAD_RATIO:g}x the baseline's (by at least "
            f"{s.spread_low:.3g}) at {confidence} confidence"
        )
    if s.decided_by == "jump":
        return (
            f"returns jump between evaluations: mean jump {s.candidate_instability:.3g} vs "
            f"{s.baseline_instability:.3g}; at least {s.jump_low:.3g} more at {confidence} confidence, "
            f"beyond the tolerance {tolerance:.3g}"
        )
    if s.decided_by == "collapse":
        return (
            f"{len(s.collapsed_seeds)} of {s.n_candidate} seeds collapsed (score below {s.collapse_below:.3g}; the "
            f"baseline: {s.baseline_collapsed} of {s.n_baseline}): more than the {s.collapse_tolerated:.0%} of its "
            f"seeds a correct net may lose, at {confidence} confidence (binomial p={s.collapse_p:.2g})"
        )
    if s.verdict == "ok":
        ruled_out = f"a drop larger than {s.drop_high:.3g}" if s.drop_high > 0 else "any drop"
        return (
            f"{ruled_out} is ruled out at {percent_confidence(s.ok_level)} confidence (tolerance {tolerance:.3g}), "
            f"and so are excess spread and jumping (a drop of {POWER_AT_TOLERANCES:g}x the tolerance would have "
            f"failed with probability {s.fail_power:.0%} at these seeds)"
        )
    open_questions = []
    if not s.test("drop").cleared:
        open_questions.append(f"a drop up to {s.drop_high:.3g} is not ruled out (tolerance {tolerance:.3g})")
    if not s.test("spread").cleared:
        open_questions.append(
            f"a spread up to {s.spread_high:.3g} beyond {SPREAD_RATIO:g}x the baseline's is not ruled out"
        )
    if not s.test("jump").cleared:
        open_questions.append(f"excess jumping up to {s.jump_high:.3g} is not ruled out")
    if s.collapsed_seeds:
        many = len(s.collapsed_seeds) > 1
        open_questions.append(
            f"seed{'s' if many else ''} {', '.join(map(str, s.collapsed_seeds))} collapsed "
            f"(score below {s.collapse_below:.3g}; baseline: {s.baseline_collapsed} of {s.n_baseline})"
        )
    if s.drop >= tolerance:
        more = (
            f"the drop seen, {s.drop:.3g}, is beyond the tolerance, but not significantly at these seeds "
            f"(a fail needs a lower bound above {tolerance:.3g}; it is {s.drop_low:.3g})"
        )
    elif s.seeds_needed:
        more = f"if the drop seen is the true one, about {s.seeds_needed} seeds per group would likely decide"
    else:
        more = "far more seeds would be needed to decide"
    return f"{s.n_candidate} vs {s.n_baseline} seeds: " + "; ".join(open_questions) + f"; {more}"


def cell_reason(c: CellComparison) -> str:
    """Why a cell ended in its outcome: at the budget, and after training on where it did."""
    if c.extended is None:
        if c.unconfirmed:
            return (
                f"at the budget: {comparison_reason(c.stats)}; not trained on to confirm it, the check having "
                "stopped at a failure elsewhere"
            )
        return comparison_reason(c.stats)
    trained = f"trained on to {c.extended_steps} steps ({c.cell.steps} is the budget)"
    if c.outcome == "slower":
        when = f", within the tolerance of its score from step {c.caught_up_at} on" if c.caught_up_at else ""
        return f"{trained}, it matches the baseline{when}: {comparison_reason(c.extended)}"
    return f"at the budget: {comparison_reason(c.stats)}; {trained}: {comparison_reason(c.extended)}"


def comparison_dict(c: CellComparison) -> dict[str, Any]:
    """A cell's comparison as results.json has it: its numbers, and its reasons in words."""
    data = c.to_dict()
    data["reason"] = cell_reason(c)
    data["budget"]["reason"] = comparison_reason(c.stats)
    if c.extended is not None:
        data["extended"]["reason"] = comparison_reason(c.extended)
    return data


def still_learning(study: StudyResult, comparison: CellComparison, door: Door = "cli") -> str:
    """A note for a net that failed or stayed undecided below the baseline while still
    improving smoothly when its training stopped -- what a net smaller or
    shallower than the baseline does. Empty otherwise: an erratic net's ups and downs are no trend."""
    s = comparison.decisive
    runs = study.decisive_runs(comparison)
    if comparison.outcome not in ("fail", "undecided") or not s.below:
        return ""
    metric = comparison.cell.metric
    if not (still_improving(runs, metric, s.tolerance) and rises_smoothly(runs, metric)):
        return ""
    starts, ends = last_third(runs, metric)
    improving = sum(end > start for start, end in zip(starts, ends, strict=True))
    what, sign = ("critic error", -1.0) if metric == "value_error" else ("return", 1.0)

    def mean(values: list[float]) -> str:
        return f"{sign * fmean(values):.2f}"

    base_starts, base_ends = last_third(study.runs_of(comparison.cell, comparison.baseline), metric)
    baseline = comparison.baseline
    if ":" not in baseline:  # a built-in: its size is the request's hidden widths
        baseline += f", hidden {','.join(map(str, study.config.hidden))}"
    return (
        f" Still learning: over the last third of training the net's mean {what} went from "
        f"{mean(starts)} to {mean(ends)} (the baseline's: {mean(base_starts)} to {mean(base_ends)}), "
        f"improving on {improving} of {len(starts)} seeds: it learns, more slowly than the baseline. "
        f"A net smaller or shallower than the baseline ({baseline}) does that; to compare it with a "
        f"plain net of its own size, give its hidden widths: {option_value('hidden', '64', door)} for one "
        "hidden layer of 64."
    )


# -- a diagnosis -------------------------------------------------------------------------------


def finding_words(d: Diagnosis, kind: str, door: Door = "cli") -> tuple[str, str]:
    """(what was measured, the fix) for one of a diagnosis's findings."""
    gradients = d.action_gradient
    if kind == "critic_ignores_action":
        return (
            f"The critic's output does not depend on the action: dQ/da is {max(gradients.values()):.2g} in every "
            "mode, on identical and on replay states, so the actor gets no signal at all.",
            "look for what makes Q constant in the action: a softmax or a sigmoid saturating over a single "
            "output, a detach() of the action input, or an action input that is not used.",
        )
    if kind == "actions_capped":
        return (
            f"The actor's actions never leave [-{d.max_abs_action:.2f}, {d.max_abs_action:.2f}] of the range "
            "[-1, 1]: something caps them, e.g. a second squashing (tanh of a tanh is at most 0.76).",
            "if the actor ends in tanh (possibly scaled to the env's bounds), tell rlcheck with "
            f"{option_value('actor_output', 'squashed', door)}, so it does not squash again; else find what "
            "bounds its output.",
        )
    if kind == "actor_blind_on_constant_state":
        reached = d.actor_parameters_reached
        return (
            f"On this environment's constant state only {reached['constant states']:.1%} of the actor's parameters "
            f"move its action ({reached['random states']:.0%} on random states): with zero biases and ReLU every "
            "hidden unit is 0 on an all-zero observation, so only the output bias can learn. That is the state's "
            "artefact, not a broken net: such an actor learns where observations are not exactly 0 (the gate's "
            "probes use a constant state of 1 for this reason).",
            "nothing to fix in the net if this is its only finding (initialising biases to zero is common, "
            "e.g. orthogonal init).",
        )
    if kind == "action_gradient_vanishes":
        update_mode = d.forward_modes["actor update: critic"]
        return (
            f"The action gradient dQ/da reaching the actor vanishes on a batch of identical states: "
            f"{d.gradient_in_update:.2g} with the critic in {update_mode} mode (as the actor is updated) vs "
            f"{d.gradient_in_eval:.2g} in eval mode. The critic's batch-dependent layers "
            f"({', '.join(d.mode_dependent_layers['critic']) or 'none'}) normalise the action away.",
            "put the critic in eval mode for the actor loss and the TD target (mode-aware BatchNorm), "
            "or use LayerNorm, which normalises each sample on its own.",
        )
    if kind == "actor_batchnorm_collapsed":
        return (
            f"The actor's BatchNorm running variance has collapsed: in eval mode (acting) it multiplies its "
            f"input by up to {d.actor_bn_amplification:.3g}, so small drifts saturate the action.",
            "remove BatchNorm from the actor (LayerNorm instead), or never run the actor's BatchNorm "
            "on batches of identical states.",
        )
    if kind == "actor_mode_gap":
        return (
            f"The actor acts differently in train and eval mode (mean action gap {d.actor_mode_gap:.3g}): the "
            "policy that is evaluated is not the one that is trained.",
            "use normalisation without batch dependence in the actor (LayerNorm), or keep it in one mode.",
        )
    if kind == "target_buffers_lag":
        return (
            f"Target networks' normalisation buffers lag the online networks' (max gap {d.target_buffer_gap:.3g}).",
            "copy buffers into the targets at every target update (Polyak-average only the parameters).",
        )
    raise ValueError(f"no words for finding {kind!r}")


def findings_text(d: Diagnosis, door: Door = "cli") -> list[str]:
    return [f"{what} Fix: {fix}" for what, fix in (finding_words(d, kind, door) for kind in d.findings)]


def diagnosis_report(d: Diagnosis, door: Door = "cli") -> str:
    layers = "; ".join(f"{net}: {', '.join(names)}" for net, names in d.mode_dependent_layers.items() if names)
    lines = [
        f"batch/mode-dependent layers: {layers or 'none'}",
        "mean |dQ/da| reaching the actor:",
        *(f"  {key}: {value:.3g}" for key, value in d.action_gradient.items()),
        f"actor BatchNorm eval-mode amplification (max 1/sqrt(running_var + eps)): {d.actor_bn_amplification:.3g}",
        f"actor train-vs-eval action gap: {d.actor_mode_gap:.3g}",
        f"target vs online buffer gap: {d.target_buffer_gap:.3g}",
        f"largest |action| on replay states (actions in [-1, 1]): {d.max_abs_action:.3g}",
        "actor parameters that move its action: "
        + (", ".join(f"{k} {v:.1%}" for k, v in d.actor_parameters_reached.items()) or "not measured"),
        "mode of each forward pass: " + ", ".join(f"{phase} {mode}" for phase, mode in d.forward_modes.items()),
    ]
    lines += [f"FINDING: {text}" for text in findings_text(d, door)] or ["no mechanism found that breaks learning"]
    return "\n".join(lines)


def diagnosis_dict(d: Diagnosis, door: Door = "cli") -> dict[str, Any]:
    """A diagnosis as results.json has it: its numbers, and each finding in words."""
    data = d.to_dict()
    data["findings"] = [{"what": w, "fix": f} for w, f in (finding_words(d, k, door) for k in d.findings)]
    return data


def diagnoses_report(study: StudyResult, door: Door = "cli") -> str:
    failed = {f"{c.algo}/{c.candidate}" for c in study.comparisons if c.outcome == "fail"}
    lines = []
    for key, (spec, diagnosis) in study.diagnoses.items():
        why = f"Why {key} fails" if key in failed else f"What {key}, undecided, measurably does wrong"
        lines.append(f"\n{why} (seed {spec.seed} trained on {spec.env_id} for {spec.steps} steps, measured):")
        lines += [f"  {line}" for line in diagnosis_report(diagnosis, door).splitlines()]
    return "\n".join(lines)


# -- a check -----------------------------------------------------------------------------------


def baseline_words(result: CheckResult) -> str:
    base = result.net.baseline
    if result.net.agent is not None:
        return f"rlcheck's {result.study.config.algos[0].upper()}"
    return "the plain baseline" if base == BASELINE else f"the baseline {base}"


def finding(result: CheckResult, comparison: CellComparison, door: Door = "cli") -> str:
    """What failed, in plain words, with how far from optimal."""
    probe = PROBES_BY_ENV[comparison.cell.env_id]
    s = comparison.decisive
    where = f"{comparison.cell.algo} on {probe.name} ({comparison.cell.env_name})"
    if probe.metric == "value_error":
        measured = (
            f"critic error |Q - true Q| {-s.candidate_mean:.3f} vs {-s.baseline_mean:.3f} for "
            f"{baseline_words(result)} (0 is perfect)"
        )
    else:
        optimum = result.study.optimal_return(comparison.cell)
        measured = f"return {s.candidate_mean:.2f} vs {s.baseline_mean:.2f} for {baseline_words(result)}"
        if optimum is not None:
            measured += f", optimal {optimum:g} ({abs(optimum - s.candidate_mean):.2f} short)"
    tests, yours = (probe.in_an_agent, "Your agent") if result.net.agent is not None else (probe.tests, "Your net")
    text = f"{where}: {s.verdict}. It tests {tests}. {yours}: {measured}. Evidence: {cell_reason(comparison)}."
    return text + still_learning(result.study, comparison, door)


def moved_words(m: Moved) -> str:
    return f"{m.cell}: {m.was} in the reference, {m.now} now"


def reference_note(result: CheckResult, door: Door = "cli") -> str:
    path, state = result.reference_path, result.reference_state
    if state == "written":
        return f"REFERENCE: wrote {path} from this check"
    if state == "missing":
        return f"REFERENCE: there was none at {path}; wrote it from this check -- commit it, then rerun"
    if state != "compared":
        return ""
    worse = [m for m in result.moved if m.worse]
    if worse:
        return f"REFERENCE: {len(worse)} cell(s) got worse than {path}: " + "; ".join(map(moved_words, worse))
    if result.moved:
        regen = option_name("regen_reference", door)
        return (
            f"REFERENCE: {len(result.moved)} cell(s) got better than {path}: "
            + "; ".join(map(moved_words, result.moved))
            + f" (regenerate it with {regen} to keep the gain)"
        )
    return f"REFERENCE: every cell as in {path}"


def check_report(result: CheckResult, door: Door = "cli") -> str:
    """PASS, SLOWER, UNDECIDED, or FAIL, with one plain-words line per cell that is not a pass
    (and, against a reference, what moved)."""
    note = reference_note(result, door)
    return _outcome_report(result, door) + (f"\n{note}" if note else "")


def _outcome_report(result: CheckResult, door: Door) -> str:
    outcome, label = result.outcome, result.net.label
    diagnoses = diagnoses_report(result.study, door)
    if outcome == "pass":
        return (
            f"PASS: {label} learns every probe like {baseline_words(result)}: in every cell, a drop "
            "beyond the tolerance and excess instability are ruled out at 95% confidence."
        )
    if outcome == "fail":
        lines = [f"FAIL: {label} breaks learning in {len(result.failures)} (algo, probe) cell(s):"]
        lines += [f"  - {finding(result, c, door)}" for c in result.failures]
        return "\n".join(lines) + diagnoses
    strict = option_name("strict", door)
    strict = f" ({strict}: that fails the check)" if result.strict else f" (the check passes; {strict} fails it)"
    undecided, slower = result.cells_with("undecided"), result.cells_with("slower")
    if outcome == "undecided":
        lines = [
            f"UNDECIDED: no cell of {label} failed, but the seeds could not decide {len(undecided)} cell(s){strict}:"
        ]
    else:
        lines = [
            f"SLOWER: {label} learns every probe, more slowly than {baseline_words(result)} in "
            f"{len(slower)} cell(s){strict}:"
        ]
    for c in undecided + slower:
        note = still_learning(result.study, c, door)
        probe = PROBES_BY_ENV[c.cell.env_id].name
        lines.append(f"  - {c.algo} on {probe}: {c.outcome}: {cell_reason(c)}{note}")
    return "\n".join(lines) + diagnoses


def check_dict(result: CheckResult, door: Door = "cli") -> dict[str, Any]:
    """The check's answer for ``results.json``: the outcome, each failure's finding, every cell's outcome."""
    return {
        **result.to_dict(),
        "findings": [finding(result, c, door) for c in result.failures],
        "reference": {
            "note": reference_note(result, door),
            "moved": [{"cell": m.cell, "was": m.was, "now": m.now} for m in result.moved],
        },
    }


# -- a study -----------------------------------------------------------------------------------


def study_headline(study: StudyResult, env_id: str) -> str:
    outcomes = ", ".join(f"{c.algo} {c.candidate}: {c.outcome}" for c in study.comparisons) or "trained alone"
    return f"study on {env_id} -- {outcomes}"
