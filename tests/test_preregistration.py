"""The pre-registered panel counts each net in the group its measured effect puts it in (no training)."""

import json

from benchmarks import preregistered_nets
from benchmarks.preregistered_effects import RECORD, group_of
from benchmarks.validity import preregistered_panel


def test_every_panel_net_has_a_recorded_effect_whose_group_follows_from_its_cells():
    record = json.loads(RECORD.read_text())
    assert {label for label, _, _ in preregistered_nets.PANEL} == set(record)
    for label, entry in record.items():
        assert group_of(entry["cells"]) == entry["group"], label


def test_the_run_counts_nets_by_their_measured_group_not_their_label():
    record = json.loads(RECORD.read_text())
    counted, neither = preregistered_panel()
    assert {e.label for e in neither} == {label for label, e in record.items() if e["group"] == "neither"}
    for entry in counted:
        assert entry.correct == (record[entry.label]["group"] == "correct"), entry.label
    # xavier-tanh-128 was written as a correct net; its measured effect on TD3 `track` makes it broken
    xavier = next(e for e in counted if e.label == "xavier-tanh-128")
    assert record["xavier-tanh-128"]["expected"] == "correct" and not xavier.correct
