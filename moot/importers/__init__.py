"""Published transcripts into moot's store: one importer per format, one way of writing.

An importer reads a format and yields `Imported` episodes: a stable key (so importing the
same data twice adds nothing) and the events a live run would have published for it. The
events go through the run writer's own code, so an imported database has exactly the
schema, JSON shapes and views of a generated one, and every moot tool reads it.

    moot import nyu-debate ../shared/data/nyu-debate-2023 --out runs/nyu.db
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from moot.errors import ConfigError
from moot.transcript.events import Event

# format name -> module with `NAME`, `DESCRIPTION` and `read(path) -> Iterator[Imported]`
FORMATS = {
    "nyu-debate": "moot.importers.nyu_debate",
    "khan-csv": "moot.importers.khan_csv",
    "moot-jsonl": "moot.importers.moot_jsonl",
}


@dataclass(frozen=True, slots=True)
class Imported:
    key: str  # unique within the format, stable across imports (e.g. the room's name)
    events: Callable[[int], list[Event]]  # the episode's events, given its id


@dataclass(slots=True)
class ImportSummary:
    path: Path
    imported: int
    skipped: int  # already in the database
    rows: int

    def lines(self) -> list[str]:
        return [
            f"database   {self.path}",
            f"episodes   {self.imported} imported, {self.skipped} already there",
            f"rows       {self.rows:,}",
        ]


def reader(fmt: str) -> Callable[[Path], Iterator[Imported]]:
    if fmt not in FORMATS:
        raise ConfigError(f"import format {fmt!r}: unknown (known: {', '.join(FORMATS)})")
    return importlib.import_module(FORMATS[fmt]).read


def import_path(fmt: str, source: str | Path, out: str | Path) -> ImportSummary:
    """Read `source` in `fmt` and add its episodes to the database `out` (made if new).

    Everything is read and checked before anything is written, and the episodes are written
    in one transaction: bad input leaves the database as it was."""
    from moot import store
    from moot.store.writer import StoreWriter
    from moot.workflows.run import versions

    read = reader(fmt)
    src = Path(source)
    if not src.exists():
        raise ConfigError(f"{src}: no such file or directory")
    items = list(read(src))
    out = Path(out)
    conn = store.connect(out, create=True)
    try:
        run = store.run_record(conn)
        if run is not None and "imported" not in run[1]:
            raise ConfigError(f"{out}: holds a moot run; import into a database of its own")
        known = store.import_keys(conn)
        next_id = store.next_episode_id(conn)
        events: list[Event] = []
        imported = 0
        for item in items:
            key = f"{fmt}:{item.key}"
            if key in known:
                continue
            known.add(key)
            for e in (batch := item.events(next_id + imported)):
                if getattr(e, "attributes", None) is not None:
                    e.attributes["import_key"] = key  # type: ignore[union-attr,index]
            events.extend(batch)
            imported += 1
        if run is None:
            run = (f"import-{fmt}-{int(time.time())}", {})
            store.create_run(
                conn,
                {
                    "id": run[0],
                    "name": f"import-{fmt}",
                    "scenario_yaml": "",
                    "config": {"imported": {"format": fmt, "source": str(src.resolve())}},
                    "versions": versions(),
                    "models": {},
                    "started_at": time.time(),
                },
            )
        rows = StoreWriter(conn).write_now(events) if events else 0
        store.finish_run(conn, run[0], "done", time.time())
    finally:
        conn.close()
    return ImportSummary(out, imported, len(items) - imported, rows)
