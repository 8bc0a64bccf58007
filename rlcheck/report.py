"""Turning a study into what people read: a table, results.json, and learning-curve figures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlcheck.study import StudyResult


def _p(value: float) -> str:
    return f"{value:.2g}" if math.isfinite(value) else "-"


def summary_rows(study: StudyResult) -> list[dict[str, Any]]:
    """Per (algo, net): final returns, steps to the threshold, and the comparison's verdict."""
    verdicts = {(c.cell, c.candidate): c.stats for c in study.comparisons}
    rows = []
    for cell in study.config.cells:
        for net in study.config.nets:
            runs = study.runs_of(cell, net)
            finals = np.array([r.final_return for r in runs])
            if cell.metric == "value_error":
                finals = np.array([r.eval_value_errors[-1] for r in runs if r.eval_value_errors])
            reached = [r.steps_to_threshold for r in runs if r.steps_to_threshold is not None]
            stats = verdicts.get((cell, net))
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
                    "welch_p": stats.welch_p if stats else None,
                    "mannwhitney_p": stats.mannwhitney_p if stats else None,
                    "spread_p": stats.spread_p if stats else None,
                    "instability_p": stats.instability_p if stats else None,
                    "verdict": stats.verdict
                    if stats
                    else ("baseline" if len(study.config.nets) > 1 else "trained alone"),
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
        f"{'Welch p':>8} {'MW p':>8} {'BF p':>8} {'jump p':>8}  verdict"
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
        ps = [row[k] for k in ("welch_p", "mannwhitney_p", "spread_p", "instability_p")]
        p_cells = " ".join(f"{_p(p) if p is not None else '':>8}" for p in ps)
        env = f"{row['env'].split('/')[-1]:<19} " if several_envs else ""
        who = f"{row['algo']:<5} {env}{row['net']:<{net_width}} {row['n_seeds']:>5}"
        lines.append(f"{who}  {final:<{width}} {steps:<20} {p_cells}  {row['verdict']}")
    lines.append("")
    for c in study.comparisons:
        where = c.cell.label if several_envs else c.algo
        note = study.still_learning(c)
        lines.append(
            f"{where} {c.candidate} vs {c.baseline}: {c.stats.verdict} -- {c.stats.reason}{'.' if note else ''}{note}"
        )
    if not study.comparisons:
        lines.append("(one net, trained alone: nothing to compare, so no statistics)")
        return "\n".join(lines)
    lines.append(
        f"(score = mean evaluation {'measure' if several_envs else 'return'} over the last third of training; "
        f"tests one-sided at alpha {study.config.alpha_per_look:.3g} per look, {study.config.looks} planned looks)"
    )
    return "\n".join(lines)


# The format of results.json (docs/cli.md): raised whenever a field changes meaning or goes away.
RESULTS_SCHEMA_VERSION = 1


def write_json(study: StudyResult, path: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The study as ``results.json`` (plus `extra` top-level entries), written atomically."""
    data = {"schema_version": RESULTS_SCHEMA_VERSION, **study.to_dict()}
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


def plot_curves(study: StudyResult, out_dir: Path) -> list[Path]:
    """One figure per algorithm: mean learning curve per net with its min-max band across seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    several_envs = len({c.env_id for c in study.config.cells}) > 1
    for cell in study.config.cells:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for net in study.config.nets:
            runs = study.runs_of(cell, net)
            steps = np.asarray(runs[0].eval_steps)
            returns = np.asarray([r.eval_returns for r in runs])
            (line,) = ax.plot(steps, returns.mean(axis=0), label=f"{net} (mean of {len(runs)} seeds)")
            ax.fill_between(steps, returns.min(axis=0), returns.max(axis=0), color=line.get_color(), alpha=0.2)
        if runs[0].optimal_return is not None:
            ax.axhline(runs[0].optimal_return, color="grey", lw=0.8, ls="--", label="optimal return")
        ax.set_title(f"{cell.algo.upper()} on {cell.env_id}: mean, min and max over seeds")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return (deterministic policy)")
        ax.legend(loc="lower right")
        fig.tight_layout()
        path = out_dir / (f"{cell.algo}-{cell.env_name}.png" if several_envs else f"{cell.algo}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
