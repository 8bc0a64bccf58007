"""The verdict golden file: a few checks and a study, judged again from their stored runs
(benchmarks/verdict_golden.py), give every number and outcome recorded in tests/golden."""

import json

import pytest

from benchmarks.verdict_golden import CASES, GOLDEN, differences, rejudge


@pytest.mark.parametrize("case", list(CASES))
def test_stored_runs_are_judged_as_recorded(case, tmp_path):
    golden = json.loads((GOLDEN / "verdicts.json").read_text())[case]
    assert differences(golden, rejudge(case, tmp_path)) == []


def test_differences_sees_a_changed_number_and_not_an_added_key():
    assert differences({"a": [1.0, {"b": "fail"}]}, {"a": [1.0, {"b": "fail", "new": 2}], "more": 3}) == []
    assert differences({"a": [1.0, {"b": "fail"}]}, {"a": [1.0, {"b": "pass"}]}) == [
        ".a[1].b: 'fail' recorded, 'pass' now"
    ]
