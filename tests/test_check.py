import dataclasses
import json

import pytest

import rlcheck.verdicts.slower
import rlcheck.verdicts.study
from rlcheck.cli import main
from rlcheck.errors import UsageError
from rlcheck.front.words import cell_reason, check_dict, check_report
from rlcheck.verdicts.check import PROBE_SUITE, NetUnderTest, check_config, check_networks, parse_probes
from rlcheck.verdicts.study import run_study
from tests.helpers import exit_code

CHEAP = ["--algos", "td3", "--probes", "action", "--seeds", "3", "--max-seeds", "3", "--workers", "1", "--quiet"]


@pytest.mark.parametrize(
    ("net", "message"),
    [
        ("tests.no_such_module:make", "cannot import 'tests.no_such_module'"),
        ("tests.user_nets:missing", "has no callable 'missing'"),
        ("tests.user_nets:NOT_CALLABLE", "has no callable 'NOT_CALLABLE'"),
        ("tests.user_nets:raises", "raised ValueError when built as"),
        ("tests.user_nets:returns_a_function", "returned function, not a torch.nn.Module"),
        ("tests.user_nets:squeezes_output", "to (8,) with B=8; expected (B, 1)"),
        ("tests.user_nets:outputs_nan", "outputs NaN or inf"),
        ("tests.user_nets:on_meta_device", "builds its parameters on meta"),
        ("tests.user_nets:needs_a_batch", "cannot run a batch of one in eval mode"),
    ],
)
def test_contract_is_checked_at_the_door_with_one_line_and_exit_2(tmp_path, capsys, net, message):
    assert exit_code(main, ["check", "--net", net, "--out", str(tmp_path), *CHEAP]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs.jsonl").exists()  # nothing was trained


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no network to check"),
        (["--net", "plain"], "is the baseline (plain) itself"),
        (["--net", "tests.user_nets:wide_mlp", "--baseline", "tests.user_nets:wide_mlp"], "is the baseline"),
        (["--net", "tests.user_nets:wide_mlp", "--baseline", "tests.nope:make"], "cannot import 'tests.nope'"),
        (["--net", "tests.user_nets:wide_mlp", "--actor-net", "tests.user_nets:wide_mlp"], "not both"),
        (["--net", "tests.user_nets:wide_mlp", "--probes", "action,nope"], "unknown probe 'nope'"),
        (["--net", "tests.user_nets:wide_mlp", "--algos", "ddpg"], "unknown algo 'ddpg'"),
    ],
)
def test_check_usage_errors(tmp_path, capsys, args, message):
    assert exit_code(main, ["check", *args, "--out", str(tmp_path), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_probe_suite_has_five_probes_and_random_env_each_saying_what_it_tests():
    assert [p.name for p in PROBE_SUITE] == ["constant", "observed", "delayed", "action", "track", "random"]
    assert all(len(p.tests) > 20 for p in PROBE_SUITE)
    assert parse_probes("all") == PROBE_SUITE
    assert [p.name for p in parse_probes("random,action")] == ["random", "action"]


def test_nets_given_by_keyword_as_a_panel_lists_them():
    assert NetUnderTest.of(**{"net": "tests.user_nets:wide_mlp"}) == NetUnderTest.of("tests.user_nets:wide_mlp")
    with pytest.raises(UsageError, match="not both"):
        NetUnderTest.of(**{"net": "tests.user_nets:wide_mlp", "critic_net": "tests.user_nets:wide_mlp"})


def test_split_actor_and_critic_factories():
    net = NetUnderTest.of(actor_net="tests.user_nets:wide_mlp")
    assert (net.actor, net.critic) == ("tests.user_nets:wide_mlp", "plain")
    config = check_config(net, algos=("td3",), probes=parse_probes("action"), workers=1)
    spec = config.spec(config.cells[0], config.nets[1], 0)
    assert (spec.actor_net_name, spec.critic_net_name) == ("tests.user_nets:wide_mlp", "plain")
    with pytest.raises(UsageError, match=r"is the baseline \(plain\) itself"):
        check_config(NetUnderTest.of("plain"))


def test_gate_fails_naive_batchnorm_with_a_finding_and_exit_1(tmp_path, capsys, monkeypatch):
    def retrain(spec):
        raise AssertionError(f"{spec} trained again: its diagnosis should have been kept from the check's run")

    monkeypatch.setattr("rlcheck.verdicts.study.diagnose_run", retrain)
    code = exit_code(main, ["check", "--net", "tests.user_nets:naive_batchnorm", "--out", str(tmp_path), *CHEAP])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL: tests.user_nets:naive_batchnorm breaks learning" in out
    assert "td3 on action (ActionReward-v0): underperforms" in out
    assert "the policy gradient dQ/da through the critic" in out and "short)" in out
    assert "Why td3/tests.user_nets:naive_batchnorm fails" in out
    assert "FINDING: The action gradient dQ/da reaching the actor vanishes" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["comparisons"][0]["verdict"] == "underperforms"
    diagnosis = data["diagnoses"]["td3/tests.user_nets:naive_batchnorm"]
    assert diagnosis["run"]["env_id"] == "rlcheck/ActionReward-v0" and diagnosis["findings"]


def test_gate_passes_a_correct_user_mlp_and_exit_0_and_appends_to_the_ci_job_summary(tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = exit_code(main, ["check", "--net", "tests.user_nets:wide_mlp", "--out", str(tmp_path), *CHEAP])
    assert code == 0
    assert "PASS: tests.user_nets:wide_mlp" in capsys.readouterr().out
    text = summary.read_text()
    assert text.startswith("earlier step\n### rlcheck: PASS: tests.user_nets:wide_mlp learns every probe")
    assert "| td3 | ActionReward-v0 | `tests.user_nets:wide_mlp` | 3 | pass |" in text


def test_a_shallower_net_is_slower_not_broken(tmp_path, capsys):
    """It underperforms at the budget while still improving: trained on, that cell alone, it
    matches the baseline, so the check passes as SLOWER (and fails under --strict)."""
    args = ["check", "--net", "tests.user_nets:one_hidden_layer", "--out", str(tmp_path), *CHEAP]
    assert exit_code(main, args) == 0
    out = capsys.readouterr().out
    assert "SLOWER: tests.user_nets:one_hidden_layer learns every probe, more slowly" in out
    assert "td3 on action: slower: trained on to 1800 steps (600 is the budget), it matches the baseline" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["check"]["outcome"] == "slower" and data["check"]["cells"] == {"td3 ActionReward-v0": "slower"}
    extended = data["comparisons"][0]["extended"]
    assert extended["steps"] == 1800 and extended["verdict"] == "ok"
    assert {r["spec"]["steps"] for r in data["extended_runs"]} == {1800}
    assert exit_code(main, [*args, "--strict"]) == 1


def test_a_shallower_net_not_trained_on_is_told_it_is_still_learning(tmp_path, capsys):
    """With --slower-budget 1 nothing trains on: 3 seeds cannot decide the cell, and the note
    says the net was still improving and how to compare it with a baseline of its own size."""
    args = [
        "check",
        "--net",
        "tests.user_nets:one_hidden_layer",
        "--out",
        str(tmp_path),
        *CHEAP,
        "--slower-budget",
        "1",
    ]
    assert exit_code(main, args) == 0
    out = capsys.readouterr().out
    assert "UNDECIDED: no cell of tests.user_nets:one_hidden_layer failed" in out
    assert "Still learning: over the last third of training the net's mean return went from" in out
    assert "improving on 3 of 3 seeds" in out and "--hidden 64 for one hidden layer of 64" in out
    assert out.count("Still learning") == 2  # the table's verdict line too, as `rlcheck` prints it for a study
    gate = json.loads((tmp_path / "results.json").read_text())["check"]
    assert gate["outcome"] == "undecided" and gate["undecided"] == ["td3 ActionReward-v0"]
    assert exit_code(main, [*args, "--strict"]) == 1
    # ...and against a plain baseline of one hidden layer of 64 (the same network) it passes.
    assert exit_code(main, [*args, "--hidden", "64", "--max-seeds", "12"]) == 0
    assert "PASS: tests.user_nets:one_hidden_layer" in capsys.readouterr().out


def test_a_check_against_the_users_previous_net(tmp_path, capsys):
    args = ["check", "--net", "tests.user_nets:naive_batchnorm", "--baseline", "tests.user_nets:wide_mlp"]
    assert exit_code(main, [*args, "--out", str(tmp_path), *CHEAP]) == 1
    out = capsys.readouterr().out
    assert "td3 on action (ActionReward-v0): underperforms" in out
    assert "for the baseline tests.user_nets:wide_mlp, optimal 1" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["config"]["baseline"] == "tests.user_nets:wide_mlp"
    assert {r["spec"]["net"] for r in data["runs"]} == {"tests.user_nets:wide_mlp", "tests.user_nets:naive_batchnorm"}


def test_a_broken_net_gets_no_still_learning_note(tmp_path, capsys):
    exit_code(main, ["check", "--net", "tests.user_nets:naive_batchnorm", "--out", str(tmp_path), *CHEAP])
    out = capsys.readouterr().out
    assert "underperforms" in out and "Still learning" not in out


def test_cells_left_inconclusive_are_undecided_a_pass_unless_strict(monkeypatch):
    real = rlcheck.verdicts.study._compare_cell

    def forced(config, results, calibration, cell):
        inconclusive = {"verdict": "inconclusive", "decided_by": None}
        return [
            dataclasses.replace(c, stats=dataclasses.replace(c.stats, **inconclusive))
            for c in real(config, results, calibration, cell)
        ]

    monkeypatch.setattr(rlcheck.verdicts.study, "_compare_cell", forced)
    under_test = NetUnderTest.of("tests.user_nets:wide_mlp")
    config = check_config(
        under_test, algos=("td3",), probes=parse_probes("action"), seeds=(0, 1), max_seeds=2, workers=1, slower_budget=1
    )
    config = dataclasses.replace(config, cells=(dataclasses.replace(config.cells[0], steps=150, warmup=50),))
    result = check_networks(config, under_test)
    assert result.outcome == "undecided" and result.passed
    headline, cell = check_report(result).splitlines()
    assert headline == (
        "UNDECIDED: no cell of tests.user_nets:wide_mlp failed, but the seeds could not decide 1 cell(s) "
        "(the check passes; --strict fails it):"
    )
    assert cell.startswith("  - td3 on action: undecided: 2 vs 2 seeds: ")
    assert "rlcheck_strict fails it" in check_report(result, "pytest")
    answer = check_dict(result)
    assert answer["outcome"] == "undecided" and answer["cells"] == {"td3 ActionReward-v0": "undecided"}
    strict = dataclasses.replace(result, strict=True)
    assert not strict.passed and "(--strict: that fails the check)" in check_report(strict)


def test_a_check_adds_no_seeds_once_a_cell_fails(monkeypatch):
    # One cell flagged, another inconclusive: the gate has failed whatever more seeds would
    # say, so a check stops there; a study (stop_when_flagged off) grows the open cell.
    verdicts = {"rlcheck/ActionReward-v0": "underperforms", "rlcheck/ConstantReward-v0": "inconclusive"}
    real = rlcheck.verdicts.study._compare_cell

    def forced(config, results, calibration, cell):
        return [
            dataclasses.replace(c, stats=dataclasses.replace(c.stats, verdict=verdicts[cell.env_id]))
            for c in real(config, results, calibration, cell)
        ]

    monkeypatch.setattr(rlcheck.verdicts.study, "_compare_cell", forced)
    under_test = NetUnderTest.of("tests.user_nets:wide_mlp")
    config = check_config(
        under_test, algos=("td3",), probes=parse_probes("constant,action"), seeds=(0, 1), workers=1, slower_budget=1
    )
    config = dataclasses.replace(
        config, cells=tuple(dataclasses.replace(c, steps=150, warmup=50, eval_every=50) for c in config.cells)
    )
    assert config.stop_when_flagged

    def seeds_per_cell(study):
        return {c.env_id: len({r.spec.seed for r in study.runs if r.spec.env_id == c.env_id}) for c in config.cells}

    assert seeds_per_cell(run_study(config)) == {c.env_id: 2 for c in config.cells}
    grown = seeds_per_cell(run_study(dataclasses.replace(config, stop_when_flagged=False)))
    assert grown["rlcheck/ConstantReward-v0"] > 2 and grown["rlcheck/ActionReward-v0"] == 2


def test_a_committed_reference_is_written_once_then_compared(tmp_path, capsys):
    reference = tmp_path / "rlcheck-reference.json"
    args = ["check", "--net", "tests.user_nets:wide_mlp", "--reference", str(reference), *CHEAP]
    assert exit_code(main, [*args, "--out", str(tmp_path / "a")]) == 1  # none yet: written, and the check fails
    assert "there was none at" in capsys.readouterr().out
    written = json.loads(reference.read_text())
    assert written["cells"] == {"td3 ActionReward-v0": "pass"} and written["net"] == "tests.user_nets:wide_mlp"
    assert exit_code(main, [*args, "--out", str(tmp_path / "b")]) == 0
    assert "REFERENCE: every cell as in" in capsys.readouterr().out
    reference.write_text(json.dumps({**written, "cells": {"td3 ActionReward-v0": "undecided"}}))
    assert exit_code(main, [*args, "--out", str(tmp_path / "c")]) == 0  # better than the reference: said, passes
    assert "1 cell(s) got better" in capsys.readouterr().out
    moved = json.loads((tmp_path / "c" / "results.json").read_text())["check"]["reference"]["moved"]
    assert moved == [{"cell": "td3 ActionReward-v0", "was": "undecided", "now": "pass"}]


def test_a_cell_worse_than_the_reference_fails_the_check(tmp_path):
    from rlcheck.verdicts.reference import Moved, compare, load, write

    path = tmp_path / "ref.json"
    write(path, "mine", "plain", {"td3 ActionReward-v0": "pass", "sac ActionReward-v0": "slower"}, {"torch": "x"})
    write(path, "mine", "plain", {"td3 TrackObservation-v0": "pass"}, {"torch": "x"})  # one gate test's cell, merged
    reference = load(path)
    assert reference == {
        "sac ActionReward-v0": "slower",
        "td3 ActionReward-v0": "pass",
        "td3 TrackObservation-v0": "pass",
    }
    moved = compare(reference, {"td3 ActionReward-v0": "fail", "sac ActionReward-v0": "pass", "new cell": "fail"})
    assert moved == [Moved("td3 ActionReward-v0", "pass", "fail"), Moved("sac ActionReward-v0", "slower", "pass")]
    assert [m.worse for m in moved] == [True, False]
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read"):
        load(path)


def _check_a_slower_net_whose_second_look_says(monkeypatch, verdict: str, max_seeds: int, interior: bool = True):
    """Check the one-hidden-layer net on `action` (it is slower: trained on to 2x the budget)
    with the second comparison forced to `verdict`; the result and the (baseline, candidate)
    seed counts of every comparison made. `interior`: judge `action` as a probe whose optimum is
    inside the action box (trained on at once when below), which it is not."""
    if interior:
        monkeypatch.setattr(rlcheck.verdicts.study, "judged_at_budget", lambda cell: False)
        monkeypatch.setattr(rlcheck.verdicts.slower, "judged_at_budget", lambda cell: False)
    real = rlcheck.verdicts.study.compare
    calls = []

    def second_look(baseline, candidate, tolerance, levels):
        calls.append((baseline.scores.size, candidate.scores.size))
        result = real(baseline, candidate, tolerance, levels)
        return dataclasses.replace(result, verdict=verdict) if len(calls) == 2 else result

    for module in (rlcheck.verdicts.study, rlcheck.verdicts.slower):  # the first look, and those after training on
        monkeypatch.setattr(module, "compare", second_look)
    under_test = NetUnderTest.of("tests.user_nets:one_hidden_layer")
    config = check_config(under_test, algos=("td3",), probes=parse_probes("action"), seeds=(0, 1, 2),
                          max_seeds=max_seeds, workers=1, slower_budget=2)  # fmt: skip
    return check_networks(config, under_test), calls


def test_a_net_still_below_the_baseline_when_trained_on_fails(monkeypatch):
    """The longer training is judged like any look: here it is made to underperform again, and
    the cell fails, its reason saying both what happened at the budget and after."""
    result, calls = _check_a_slower_net_whose_second_look_says(monkeypatch, "underperforms", max_seeds=3)
    (cell,) = result.study.comparisons
    assert len(calls) == 2 and cell.extended_steps == 1200 and cell.outcome == "fail" and not result.passed
    reason = cell_reason(cell)
    assert reason.startswith("at the budget: ") and "; trained on to 1200 steps (600 is the budget): " in reason
    assert {r.spec.steps for r in result.study.extended_runs} == {1200}


def test_a_longer_training_that_cannot_decide_grows_its_seeds_like_any_look(monkeypatch):
    """The longer training made inconclusive at its first look: the candidate trains on for
    another block of seeds, and the baseline gets those seeds at the budget, up to --max-seeds."""
    result, calls = _check_a_slower_net_whose_second_look_says(monkeypatch, "inconclusive", max_seeds=6)
    (cell,) = result.study.comparisons
    assert calls == [(3, 3), (3, 3), (6, 6)] and cell.stats.n_candidate == 3 and cell.extended.n_candidate == 6
    assert sorted(r.spec.seed for r in result.study.extended_runs) == [0, 1, 2, 3, 4, 5]
    baseline = [r for r in result.study.runs if r.spec.net == "plain"]
    assert sorted(r.spec.seed for r in baseline) == [0, 1, 2, 3, 4, 5] and {r.spec.steps for r in baseline} == {600}


def test_where_a_saturated_actor_wins_the_probe_seeds_grow_at_the_budget_before_training_on(monkeypatch):
    """`action`'s optimum is on the action box's bound: an open cell there doubles its seeds at
    the budget (3 -> 6), and only still open and below the baseline at --max-seeds trains on."""
    result, calls = _check_a_slower_net_whose_second_look_says(monkeypatch, "inconclusive", 6, interior=False)
    (cell,) = result.study.comparisons
    assert calls[:2] == [(3, 3), (6, 6)] and cell.stats.n_candidate == 6
    assert cell.extended is None or cell.extended.n_candidate == 6


def test_an_undecided_net_is_diagnosed_and_told_what_measurably_goes_wrong(monkeypatch):
    """One seed of five collapsed: the seeds cannot decide, but where the trained agent shows a
    mechanism of its batch-dependent layers, the report says it; otherwise nothing is added."""
    import numpy as np

    from rlcheck.front.words import diagnoses_report
    from rlcheck.verdicts.diagnose import Diagnosis
    from rlcheck.verdicts.outcomes import CellComparison
    from rlcheck.verdicts.stats import Group, compare
    from rlcheck.verdicts.study import Cell, StudyConfig, StudyResult

    cell = Cell("td3", "rlcheck/ActionReward-v0", steps=300, warmup=100)
    config = StudyConfig(cells=(cell,), nets=("plain", "batchnorm"))
    rng = np.random.default_rng(0)
    scores = rng.normal(0.95, 0.01, 5)
    scores[3] = 0.1
    stats = compare(Group.of(rng.normal(0.95, 0.01, 5), [0.01] * 5), Group.of(scores, [0.01] * 5), 0.1, config.levels)
    assert stats.verdict == "inconclusive"
    collapsed = ["actor_batchnorm_collapsed"]
    for findings, layers, shown in (([], ["0: BatchNorm1d"], False), (collapsed, [], False), (collapsed, ["1"], True)):
        found = Diagnosis(
            mode_dependent_layers={"actor": layers, "critic": []},
            action_gradient={"constant states, critic in eval mode": 1.0},
            actor_bn_amplification=300.0,
            actor_mode_gap=0.0,
            target_buffer_gap=0.0,
            max_abs_action=1.0,
            forward_modes={"actor update: critic": "train"},
            findings=findings,
        )
        monkeypatch.setattr(rlcheck.verdicts.study, "diagnose_run", lambda spec, d=found: d)
        study = StudyResult(config, [], [CellComparison(cell, "plain", "batchnorm", stats)])
        study.diagnose_failures()
        report = diagnoses_report(study)
        assert ("What td3/batchnorm, undecided, measurably does wrong" in report) is shown
        assert ("running variance has collapsed" in report) is shown
