"""report.html: self-contained, and rendered by a real headless browser."""

import os
import re
import shutil
import subprocess

import pytest

from rlcheck.front.report import markdown_summary, write_html
from rlcheck.verdicts.study import Cell, StudyConfig, run_study


@pytest.fixture(scope="module")
def tiny_study():
    cell = Cell("td3", steps=150, warmup=50, eval_every=50)
    config = StudyConfig(cells=(cell,), nets=("plain", "layernorm"), seeds=(0, 1), max_seeds=2, slower_budget=1)
    return run_study(config)


def test_the_report_is_self_contained(tiny_study, tmp_path):
    page = write_html(tiny_study, tmp_path / "report.html", "study -- td3 layernorm: undecided", command="rlcheck x")
    text = page.read_text()
    assert re.findall(r"""(?:src|href)=['"](?!data:)""", text) == []  # every image inline, no links out
    assert text.count("<img ") == 1 and "data:image/png;base64," in text
    assert "<td><code>layernorm</code></td>" in text and "td3/RandomEnv-v0" not in text.split("<h2>Seeds")[0]
    assert "reproduce: <code>rlcheck x</code>" in text and tiny_study.versions["torch"] in text


def test_the_markdown_summary_has_a_row_per_comparison(tiny_study):
    text = markdown_summary(tiny_study, "study", ["a finding"])
    assert "| td3 | RandomEnv-v0 | `layernorm` | 2 |" in text and "- a finding" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_the_report_renders_in_a_headless_browser(tiny_study, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/setup installs Debian's chromium package")
        pytest.skip("no chromium here (Debian: apt-get install chromium)")
    page = write_html(tiny_study, tmp_path / "report.html", "study -- td3 layernorm: undecided")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]  # fmt: skip
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert 'data-figures="rendered"' in dom, dom[-2000:]
    assert 'id="outcomes"' in dom and "layernorm" in dom
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.stat().st_size > 10_000  # a page with a table and a figure, not a blank one


def test_the_report_shows_each_fail_with_what_it_failed_on_and_why(tiny_study, tmp_path):
    import dataclasses
    import html

    import numpy as np

    from rlcheck.front.words import cell_reason
    from rlcheck.verdicts.outcomes import CellComparison
    from rlcheck.verdicts.stats import Group, compare

    rng = np.random.default_rng(0)
    base, broken = Group.of(rng.normal(30, 0.1, 5), [0.1] * 5), Group.of(rng.normal(0, 0.1, 5), [0.1] * 5)
    failed = CellComparison(
        tiny_study.config.cells[0], "plain", "layernorm", compare(base, broken, 3.0, tiny_study.config.levels)
    )
    study = dataclasses.replace(tiny_study, comparisons=[failed])
    text = write_html(study, tmp_path / "report.html", "FAIL").read_text()
    assert "<td class='fail'>fail (underperforms)</td>" in text and html.escape(cell_reason(failed)) in text
