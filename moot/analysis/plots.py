"""The report's figures as PNG files (matplotlib, headless; imported only when plotting)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot.errors import ConfigError

if TYPE_CHECKING:
    from moot.analysis.report import Report


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plots need matplotlib: pip install 'moot[analysis]' (or pass --no-plots)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def accuracy_plot(report: Report, path: Path) -> Path:
    plt = pyplot()
    rows = report.table("accuracy").rows
    names = [r[0] for r in rows]
    acc = [_num(r[5]) for r in rows]
    lo = [max(0.0, a - _num(r[6])) for a, r in zip(acc, rows)]
    hi = [max(0.0, _num(r[7]) - a) for a, r in zip(acc, rows)]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 3.5))
    ax.bar(range(len(names)), acc, yerr=[lo, hi], capsize=6, color="#4c72b0")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center")
    ax.set_ylim(0, 1)
    ax.set_ylabel("judge accuracy (95% CI)")
    ax.set_title("Judge accuracy by condition")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reliability_plot(report: Report, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    series: dict[str, list] = {}
    for c, _, _, n, conf, acc in report.table("reliability").rows:
        series.setdefault(c, []).append((conf, acc, n))
    for c, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=c)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("judge confidence in its answer")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def elo_plot(report: Report, path: Path) -> Path | None:
    try:
        rows = report.table("debaters").rows
    except KeyError:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for p, *_, elo, lo, hi, acc in rows:
        ax.errorbar([elo], [_num(acc)], xerr=[[max(0, elo - lo)], [max(0, hi - elo)]], fmt="o", capsize=4)
        ax.annotate(p, (elo, _num(acc)), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("debater Elo (95% CI)")
    ax.set_ylabel("judge accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Elo vs judge accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def position_plot(report: Report, path: Path) -> Path:
    """How often the judge picks the answer shown first (with its interval), and how often
    showing a question in the other order changed its verdict."""
    plt = pyplot()
    rows = report.table("position").rows
    names = [r[0] for r in rows]
    first = [_num(r[2]) for r in rows]
    err = [[max(0.0, f - _num(r[3])) for f, r in zip(first, rows)], [max(0.0, _num(r[4]) - f) for f, r in zip(first, rows)]]
    changed = [_num(r[7]) for r in rows]
    x = list(range(len(names)))
    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(names) + 2), 3.5))
    ax.bar([i - 0.2 for i in x], first, 0.4, yerr=err, capsize=5, label="picks the first shown")
    ax.bar([i + 0.2 for i in x], changed, 0.4, label="verdict changed when swapped")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=20 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center")
    ax.set_ylim(0, 1.2)  # room for the legend above the bars
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_title("Position bias")
    ax.legend(fontsize=7, loc="upper center", ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


TRAJECTORY_MIN = 5  # rounds fewer episodes reached are in the table only: a mean of 1-4 is noise


def trajectory_plot(report: Report, path: Path) -> Path | None:
    """The judge's mean belief in the correct answer after each round, per condition, with
    its 95% band; None when no judge ruled more than once."""
    try:
        rows = report.table("trajectory").rows
    except KeyError:
        return None
    plt = pyplot()
    series: dict[str, list] = {}
    for c, r, n, p, lo, hi, _ in rows:
        if n >= TRAJECTORY_MIN or r == 0:
            series.setdefault(c, []).append((r, _num(p), _num(lo), _num(hi)))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for c, pts in series.items():
        x = [q[0] for q in pts]
        (line,) = ax.plot(x, [q[1] for q in pts], marker="o", label=c)
        ax.fill_between(x, [q[2] for q in pts], [q[3] for q in pts], color=line.get_color(), alpha=0.15)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"round (0: the judge's prior; rounds {TRAJECTORY_MIN}+ episodes reached)")
    ax.set_ylabel("p(correct answer), mean (95% CI)")
    ax.set_title("The judge's belief, round by round")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_all(report: Report, out: Path) -> list[Path]:
    made = [
        accuracy_plot(report, out / "accuracy.png"),
        position_plot(report, out / "position.png"),
        reliability_plot(report, out / "reliability.png"),
        elo_plot(report, out / "elo.png"),
        trajectory_plot(report, out / "trajectory.png"),
    ]
    return [p for p in made if p is not None]
