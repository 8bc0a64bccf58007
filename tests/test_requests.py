"""rlcheck.requests: one field per option, its parser shared by the command line, the plugin and Python."""

import dataclasses
import shlex

import pytest

from rlcheck.errors import UsageError
from rlcheck.front.api import as_command
from rlcheck.front.commands import build_check_parser, build_parser, request_of
from rlcheck.requests import (
    GROUPS,
    CheckRequest,
    StudyRequest,
    options_of,
    parse_hidden,
    parse_seeds,
)
from rlcheck.verdicts.config import Cell, StudyConfig


def test_seeds_are_a_count_a_range_a_list_or_a_python_value():
    assert parse_seeds("5") == parse_seeds(5) == (0, 1, 2, 3, 4)
    assert parse_seeds("100-102") == parse_seeds([100, 101, 102]) == parse_seeds(range(100, 103)) == (100, 101, 102)
    assert parse_seeds("7,9") == (7, 9) and parse_seeds((7,)) == (7,)
    bad_seeds = (("0", "at least 1"), ("5-3", "ends before it starts"), ("a,b", "not a count"), (True, "not a count"))
    for bad, message in bad_seeds:
        with pytest.raises(UsageError, match=message):
            parse_seeds(bad)
    assert parse_hidden("32,32") == parse_hidden((32, 32)) == (32, 32)


def test_a_request_parses_text_and_python_values_alike_and_keeps_old_names_as_aliases():
    from_text = CheckRequest.of(net="a:b", seeds="3", hidden="32", strict="true", slower_budget="2")
    from_python = CheckRequest.of(net="a:b", seeds=3, hidden=(32,), strict=True, slower_budget=2.0)
    assert from_text == from_python
    assert CheckRequest.of(td3_actor_net="a:Actor") == CheckRequest.of(deterministic_actor_net="a:Actor")
    assert CheckRequest.of(sac_actor_net="a:Actor").gaussian_actor_net == "a:Actor"


def test_a_bad_value_names_the_option_as_the_user_spelled_it():
    with pytest.raises(UsageError, match=r"^--seeds 'many' is not a count"):
        CheckRequest.of(seeds="many")
    with pytest.raises(UsageError, match=r"^rlcheck_max_seeds 'x' is not an integer"):
        CheckRequest.of(lambda name: f"rlcheck_{name}", max_seeds="x")
    with pytest.raises(UsageError, match="unknown option --nett"):
        CheckRequest.of(nett="a:b")
    with pytest.raises(UsageError, match="--backend 'spark': choose from local, ray"):
        CheckRequest.of(backend="spark")


@pytest.mark.parametrize(("kind", "parser"), [(CheckRequest, build_check_parser), (StudyRequest, build_parser)])
def test_the_command_line_is_generated_from_the_request_in_its_groups(kind, parser):
    built = parser()
    dests = {a.dest for a in built._actions} - {"help"}
    assert dests == {f.name for f, _ in options_of(kind)}
    titles = [g.title for g in built._action_groups if g.title in GROUPS]
    assert titles == list(GROUPS)  # networks, probes and statistics, execution, output
    for group in built._action_groups:
        if group.title in GROUPS:
            assert {a.dest for a in group._group_actions} == {
                f.name for f, o in options_of(kind) if o.group == group.title
            }


def test_the_command_line_and_python_make_the_same_request_and_the_report_says_how():
    argv = ["--td3-actor-net", "a:Actor", "--seeds", "100-102", "--strict", "--hidden", "32", "--algos", "td3"]
    request = request_of(CheckRequest, build_check_parser(), argv)
    python = CheckRequest.of(deterministic_actor_net="a:Actor", seeds=(100, 101, 102), strict=True, hidden=(32,),
                             algos="td3", out="rlcheck-check")  # fmt: skip
    assert request == python
    again = request_of(CheckRequest, build_check_parser(), shlex.split(as_command(request))[2:])
    assert again == request


def test_defaults_are_written_once():
    assert StudyConfig().seeds == CheckRequest().seeds and StudyConfig().slower_budget == CheckRequest().slower_budget
    assert StudyConfig().hidden == CheckRequest().hidden
    cell, study = Cell("td3"), StudyRequest()
    assert (cell.steps, cell.warmup, cell.eval_every) == (study.steps, study.warmup, study.eval_every)
    assert StudyConfig().nets == study.nets and StudyConfig().baseline == study.baseline
    assert dataclasses.fields(CheckRequest)  # frozen dataclasses: one documented field per option
    with pytest.raises(dataclasses.FrozenInstanceError):
        CheckRequest().seeds = (1,)  # type: ignore[misc]
