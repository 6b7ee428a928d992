"""The shape of the code, pinned: SQL lives in the store (and the response cache, which is a
store of its own) and in analysis's read-only queries; everything else asks them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import moot

ROOT = Path(moot.__file__).parent
SQL_HOMES = ("store/", "analysis/", "models/cache.py")
STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|WITH)\b")


def sql_strings(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and STATEMENT.match(node.value):
            out.append((node.lineno, node.value.strip().splitlines()[0][:60]))
    return sorted(out)


def test_sql_text_only_in_the_store_and_analysis():
    strays = {
        str(p.relative_to(ROOT)): found
        for p in sorted(ROOT.rglob("*.py"))
        if not str(p.relative_to(ROOT)).startswith(SQL_HOMES) and (found := sql_strings(p))
    }
    assert strays == {}


def test_the_check_finds_sql_where_there_is_some(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('q = conn.execute(f"SELECT id FROM {t}")\nr = "UPDATE runs SET x = 1"\nok = "Select a seat"\n')
    assert [line for line, _ in sql_strings(f)] == [1, 2]
