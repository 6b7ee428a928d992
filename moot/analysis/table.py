"""A report table and its three renderings: markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moot.errors import ConfigError


def output_dir(out: str | Path) -> Path:
    """The directory results are written to, made if needed; a one-line error if it cannot be."""
    d = Path(out)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{d}: cannot create the output directory ({exc.strerror})") from None
    return d


@dataclass
class Table:
    name: str  # file stem and JSON key: accuracy, comparisons, ...
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""
    # how markdown shows a column: "pct" (0.483 -> 48.3%), "p" (p-values), "num" (3 decimals),
    # "one" (1 decimal: lengths in characters and tokens)
    formats: dict[str, str] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, (_plain(v) for v in row))) for row in self.rows]

    def markdown(self) -> str:
        head = f"## {self.title}\n\n"
        if not self.rows:
            return head + "(nothing to show)\n" + (f"\n{self.note}\n" if self.note else "")
        cells = [[_show(v, self.formats.get(c, "")) for c, v in zip(self.columns, row)] for row in self.rows]
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return head + "\n".join(lines) + "\n" + (f"\n{self.note}\n" if self.note else "")

    def csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(self.columns)
        for row in self.rows:
            w.writerow(["" if (v := _plain(x)) is None else v for x in row])
        return out.getvalue()


def _plain(v: Any) -> Any:
    """numpy scalars to Python; NaN to None (JSON has no NaN)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _show(v: Any, fmt: str) -> str:
    v = _plain(v)
    if v is None:
        return "–"
    if isinstance(v, float):
        if fmt == "pct":
            return f"{v:.1%}"
        if fmt == "p":
            return f"{v:.3f}" if v >= 0.001 else "<0.001"
        if fmt == "int":
            return f"{v:.0f}"
        if fmt == "one":
            return f"{v:,.1f}"
        return f"{v:.3f}" if fmt == "num" or abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}" if fmt != "raw" else str(v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def render(tables: list[Table], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({t.name: t.records() for t in tables}, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return "\n".join(f"# {t.name}\n{t.csv()}" for t in tables)
    return "\n".join(t.markdown() for t in tables)
