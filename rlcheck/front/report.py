"""Turning a study into what people read: a table, results.json, and learning-curve figures."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcheck.front.words import (
    cell_reason,
    comparison_dict,
    diagnosis_dict,
    diagnosis_report,
    percent_confidence,
    still_learning,
)
from rlcheck.verdicts.outcomes import CellComparison
from rlcheck.verdicts.study import Cell, StudyResult

SOURCE_WORDS = {
    "environment": "from the environment (10% of the optimum minus the zero-action return)",
    "calibration": "from the baseline's critic error on calibration seeds",
    "calibration seeds": "from the baseline trained on calibration seeds 900000-900009 in this run",
}


def tolerance_sources(comparisons: Sequence[CellComparison]) -> str:
    """Where the cells' tolerances came from: fixed before the runs, or not."""
    counts: dict[str, int] = {}
    for c in comparisons:
        counts[c.tolerance_source] = counts.get(c.tolerance_source, 0) + 1
    parts = [f"{n} {'cell' if n == 1 else 'cells'} {SOURCE_WORDS.get(s, s)}" for s, n in counts.items()]
    return "(tolerances: " + "; ".join(parts) + ")"


def outcome_word(c: CellComparison) -> str:
    """A cell's outcome, a fail with what it failed on: ``fail (underperforms)``."""
    return c.outcome if c.outcome != "fail" else f"fail ({c.decisive.verdict})"


def _g(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "-"


def summary_rows(study: StudyResult) -> list[dict[str, Any]]:
    """Per (algo, net): final returns, steps to the threshold, and the comparison's outcome."""
    verdicts = {(c.cell, c.candidate): c for c in study.comparisons}
    rows = []
    for cell in study.config.cells:
        for net in study.config.nets:
            runs = study.runs_of(cell, net)
            finals = np.array([r.final_return for r in runs])
            if cell.metric == "value_error":
                finals = np.array([r.eval_value_errors[-1] for r in runs if r.eval_value_errors])
            reached = [r.steps_to_threshold for r in runs if r.steps_to_threshold is not None]
            comparison = verdicts.get((cell, net))
            stats = comparison.stats if comparison else None
            rows.append(
                {
                    "algo": cell.algo,
                    "env": cell.env_id,
                    "metric": cell.metric,
                    "net": net,
                    "n_seeds": len(runs),
                    "final_mean": float(finals.mean()),
                    "final_min": float(finals.min()),
                    "final_max": float(finals.max()),
                    "threshold": runs[0].threshold,
                    "n_reached": len(reached),
                    "median_steps_to_threshold": float(np.median(reached)) if reached else None,
                    "drop": stats.drop if stats else None,
                    "drop_low": stats.drop_low if stats else None,
                    "drop_high": stats.drop_high if stats else None,
                    "tolerance": stats.tolerance if stats else None,
                    "outcome": comparison.outcome
                    if comparison
                    else ("baseline" if len(study.config.nets) > 1 else "trained alone"),
                    "verdict": comparison.decisive.verdict if comparison else None,
                }
            )
    return rows


def format_table(study: StudyResult) -> str:
    rows = summary_rows(study)
    several_envs = len({row["env"] for row in rows}) > 1
    net_width = max([14, *(len(row["net"]) for row in rows)])
    threshold = rows[0]["threshold"] if rows else None
    reach = f"steps to {threshold:g}" if threshold is not None else "steps to threshold"
    first = f"{'algo':<5} {'env':<19} " if several_envs else f"{'algo':<5} "
    measure = "final: mean [min, max]" if several_envs else "final return: mean [min, max]"
    width = 37 if several_envs else 30
    header = (
        f"{first}{'net':<{net_width}} {'seeds':>5}  {measure:<{width}} {reach:<20} "
        f"{'drop [bounds]':<28} {'tolerance':>9}  outcome"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        final = f"{row['final_mean']:7.2f} [{row['final_min']:7.2f}, {row['final_max']:7.2f}]"
        if several_envs:
            final += " |Q err|" if row["metric"] == "value_error" else " return"
        if row["threshold"] is None:
            steps = "-"
        elif row["n_reached"]:
            steps = f"{row['median_steps_to_threshold']:.0f} ({row['n_reached']}/{row['n_seeds']} seeds)"
        else:
            steps = f"never (0/{row['n_seeds']})"
        drop = ""
        if row["drop"] is not None:
            drop = f"{_g(row['drop'])} [{_g(row['drop_low'])}, {_g(row['drop_high'])}]"
        tolerance = _g(row["tolerance"]) if row["tolerance"] is not None else ""
        env = f"{row['env'].split('/')[-1]:<19} " if several_envs else ""
        who = f"{row['algo']:<5} {env}{row['net']:<{net_width}} {row['n_seeds']:>5}"
        lines.append(f"{who}  {final:<{width}} {steps:<20} {drop:<28} {tolerance:>9}  {row['outcome']}")
    lines.append("")
    for c in study.comparisons:
        where = c.cell.label if several_envs else c.algo
        note = still_learning(study, c)
        lines.append(
            f"{where} {c.candidate} vs {c.baseline}: {outcome_word(c)} -- {cell_reason(c)}{'.' if note else ''}{note}"
        )
    if not study.comparisons:
        lines.append("(one net, trained alone: nothing to compare, so no statistics)")
        return "\n".join(lines)
    levels = study.config.levels
    lines.append(
        f"(score = mean evaluation {'measure' if several_envs else 'return'} over the last third of training "
        f"(critic errors negated); drop = baseline score - candidate score, [lower bound at "
        f"{percent_confidence(levels.fail)} confidence, upper bound at {percent_confidence(levels.ok)}]: "
        "a fail needs the lower bound above "
        f"the tolerance, a pass the upper bound below it; overall false-fail rate <= {levels.alpha:g})"
    )
    lines.append(tolerance_sources(study.comparisons))
    return "\n".join(lines)


STEP_SUMMARY = "GITHUB_STEP_SUMMARY"  # set by GitHub Actions: a Markdown file shown on the job's page


def summary_records(study: StudyResult) -> list[dict[str, str]]:
    """One flat record of text per compared cell: what a summary table shows of it. Plain strings,
    so that the pytest plugin can carry them from xdist workers to the controller."""
    records = []
    for c in study.comparisons:
        s = c.decisive
        records.append(
            {
                "cell": c.cell.label,
                "algo": c.algo,
                "env": c.cell.env_name,
                "candidate": c.candidate,
                "outcome": c.outcome,
                "verdict": s.verdict,
                "seeds": str(s.n_candidate),
                "drop": _g(s.drop),
                "drop_bounds": f"[{_g(s.drop_low)}, {_g(s.drop_high)}]",
                "tolerance": _g(s.tolerance),
                "reason": cell_reason(c),
            }
        )
    return records


def markdown_table(
    records: Sequence[dict[str, str]], headline: str, findings: Sequence[str] = (), versions: dict | None = None
) -> str:
    """The outcome table (and the failing cells' findings) as Markdown, for a CI job summary:
    one writer for the command line's summary and the pytest gate's."""
    lines = [f"### rlcheck: {headline}", ""]
    if records:
        lines += [
            "| algo | env | candidate | seeds | outcome | drop [lower, upper] | tolerance | reason |",
            "| --- | --- | --- | ---: | --- | --- | ---: | --- |",
        ]
        for r in records:
            outcome = f"**{r['outcome']}** ({r['verdict']})" if r["outcome"] == "fail" else r["outcome"]
            reason = r["reason"].replace("|", "/")
            lines.append(
                f"| {r['algo']} | {r['env']} | `{r['candidate']}` | {r['seeds']} | {outcome} | "
                f"{r['drop']} {r['drop_bounds']} | {r['tolerance']} | {reason} |"
            )
    if findings:
        lines += ["", "Failing cells:", ""] + [f"- {finding}" for finding in findings]
    if versions:
        v = versions
        lines += ["", f"<sub>rlcheck {v.get('rlcheck')}, torch {v.get('torch')}, {v.get('processor')}</sub>"]
    return "\n".join([*lines, ""])


def markdown_summary(study: StudyResult, headline: str, findings: Sequence[str] = ()) -> str:
    return markdown_table(summary_records(study), headline, findings, study.versions)


def terminal_lines(records: Sequence[dict[str, str]]) -> list[str]:
    """The gate's cells as the pytest plugin prints them at the end of a session."""
    return [
        f"{r['cell']:<26} {r['outcome']:<9} drop {r['drop']} {r['drop_bounds']} "
        f"(tolerance {r['tolerance']}, {r['seeds']} seeds)"
        for r in sorted(records, key=lambda r: r["cell"])
    ]


def append_step_summary(markdown: str) -> Path | None:
    """Append to the CI job summary where $GITHUB_STEP_SUMMARY names one; a summary that cannot
    be written costs nothing else."""
    target = os.environ.get(STEP_SUMMARY)
    if not target:
        return None
    try:
        with open(target, "a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")
    except OSError:
        return None
    return Path(target)


# The format of results.json (docs/cli.md): raised whenever a field changes meaning or goes away.
RESULTS_SCHEMA_VERSION = 2  # 2: CrossQ runs have algo "crossq" (no spec.recipe); top-level "notes"


def write_json(study: StudyResult, path: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The study as ``results.json`` (plus `extra` top-level entries), written atomically."""
    data = {"schema_version": RESULTS_SCHEMA_VERSION, **study.to_dict()}
    data["comparisons"] = [comparison_dict(c) for c in study.comparisons]  # the numbers, and the reasons in words
    data["diagnoses"] = {
        key: {"run": spec.to_dict(), **diagnosis_dict(d)} for key, (spec, d) in study.diagnoses.items()
    }
    data["summary"] = summary_rows(study)
    data |= extra or {}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False, default=_jsonable))
    tmp.replace(path)  # never leave a half-written results.json behind
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _curve_figure(study: StudyResult, cell: Cell) -> Any:
    """One cell's mean learning curve per net, with its min-max band across seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    value = cell.metric == "value_error"
    runs: list = []
    for net in study.config.nets:
        runs = study.runs_of(cell, net)
        steps = np.asarray(runs[0].eval_steps)
        curves = np.asarray([r.eval_value_errors if value else r.eval_returns for r in runs])
        (line,) = ax.plot(steps, curves.mean(axis=0), label=f"{net} (mean of {len(runs)} seeds)")
        ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
    if not value and runs and runs[0].optimal_return is not None:
        ax.axhline(runs[0].optimal_return, color="grey", lw=0.8, ls="--", label="optimal return")
    ax.set_title(f"{cell.algo.upper()} on {cell.env_id}: mean, min and max over seeds")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("critic error |Q - true Q|" if value else "evaluation return (deterministic policy)")
    ax.legend(loc="upper right" if value else "lower right")
    fig.tight_layout()
    return fig


def plot_curves(study: StudyResult, out_dir: Path) -> list[Path]:
    """One figure per cell (``td3.png``, or ``td3-ActionReward-v0.png`` where envs differ)."""
    import matplotlib.pyplot as plt

    paths = []
    several_envs = len({c.env_id for c in study.config.cells}) > 1
    for cell in study.config.cells:
        fig = _curve_figure(study, cell)
        path = out_dir / (f"{cell.algo}-{cell.env_name}.png" if several_envs else f"{cell.algo}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _inline_png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #176b2c; } .slower, .undecided { color: #8a5a00; } .fail { color: #a11; font-weight: bold; }
figure { display: inline-block; margin: .5em; } figcaption { font-size: .9em; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; } .small { font-size: .85em; color: #555; }
"""


def write_html(study: StudyResult, path: Path, headline: str, findings: Sequence[str] = (), command: str = "") -> Path:
    """A self-contained ``report.html``: the outcome, every cell's outcome with its reason, the
    learning curves (inline images), the diagnoses, seeds and versions. No external resources."""
    esc = html.escape
    comparisons = {(c.cell, c.candidate): c for c in study.comparisons}
    rows = []
    for cell in study.config.cells:
        for net in study.config.nets:
            c = comparisons.get((cell, net))
            runs = study.runs_of(cell, net)
            outcome = c.outcome if c else ("baseline" if len(study.config.nets) > 1 else "trained alone")
            shown = outcome_word(c) if c else outcome
            drop = f"{_g(c.decisive.drop)} [{_g(c.decisive.drop_low)}, {_g(c.decisive.drop_high)}]" if c else ""
            rows.append(
                f"<tr><td>{esc(cell.algo)}</td><td>{esc(cell.env_name)}</td><td><code>{esc(net)}</code></td>"
                f"<td class=num>{len(runs)}</td><td class=num>{esc(drop)}</td>"
                f"<td class=num>{_g(c.stats.tolerance) if c else ''}</td>"
                f"<td class='{esc(outcome)}'>{esc(shown)}</td><td>{esc(cell_reason(c)) if c else ''}</td></tr>"
            )
    figures = [
        f"<figure><img alt='learning curves, {esc(cell.label)}' src='{_inline_png(_curve_figure(study, cell))}'>"
        f"<figcaption>{esc(cell.label)}</figcaption></figure>"
        for cell in study.config.cells
    ]
    diagnoses = [
        f"<h3>Why {esc(key)} fails</h3><p class=small>seed {spec.seed} trained on {esc(spec.env_id)} for "
        f"{spec.steps} steps, measured</p><pre>{esc(diagnosis_report(diagnosis))}</pre>"
        for key, (spec, diagnosis) in study.diagnoses.items()
    ]
    seeds = "".join(
        f"<li>{esc(label)}: {esc(', '.join(map(str, seeds)))}</li>" for label, seeds in study.seeds_used().items()
    )
    versions = "".join(f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in study.versions.items())
    headline_class = headline.split(":")[0].strip().lower()
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rlcheck: {esc(headline)}</title>
<style>{_HTML_STYLE}</style></head>
<body>
<h1>rlcheck report</h1>
<p class="{esc(headline_class)}">{esc(headline)}</p>
{"<ul>" + "".join(f"<li>{esc(f)}</li>" for f in findings) + "</ul>" if findings else ""}
<table id="outcomes"><thead><tr><th>algo</th><th>env</th><th>net</th><th>seeds</th><th>drop [lower, upper]</th>
<th>tolerance</th><th>outcome</th><th>reason</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
<p class=small>drop = baseline score - candidate score; a fail needs its lower bound above the tolerance, a pass
its upper bound below it (docs/statistics.md).</p>
<h2>Learning curves</h2>
{"".join(figures)}
{"<h2>Diagnoses</h2>" + "".join(diagnoses) if diagnoses else ""}
<h2>Seeds and versions</h2>
<ul>{seeds}</ul><ul>{versions}</ul>
{f"<p class=small>reproduce: <code>{esc(command)}</code></p>" if command else ""}
<script>/* marks whether every figure decoded, for rlcheck's own browser test */
addEventListener("load", () => {{ document.body.dataset.figures = [...document.images].every(
  (img) => img.complete && img.naturalWidth > 0) ? "rendered" : "broken"; }});</script>
</body></html>
"""
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
