"""The connection, its transactions and the migrations: what every verb
builds on."""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pipeline.errors import InvalidInput
from pipeline.io_errors import DatabaseDamaged, damaged, database_error
from pipeline.store.migrations import MIGRATIONS
from pipeline.store.records import Batch
from pipeline.store.sqlite import Database

BUSY_TIMEOUT_S = 30.0


@functools.lru_cache(maxsize=512)
def _builder(cls, columns: tuple[str, ...]) -> Callable[[tuple], object]:
    """How to build a ``cls`` record from a row with these columns: its
    fields picked by position (a listing builds hundreds of records; a dict
    per row cost more than the query)."""
    fields = tuple(cls.__dataclass_fields__)
    pick = operator.itemgetter(*(columns.index(name) for name in fields))
    if cls is Batch:
        at = fields.index("chunk_idxs")

        def build(row):
            values = list(pick(row))
            values[at] = json.loads(values[at])
            return cls(*values)
        return build
    return lambda row: cls(*pick(row))


def statements(script: str) -> list[str]:
    """A migration's SQL statements, one by one. A ";" inside a trigger's
    body does not end its CREATE TRIGGER; sqlite3.complete_statement knows."""
    out, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                out.append(pending)
            pending = ""
    if pending.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:80]}")
    return out


# The order a new store's schema is made in: its tables, their rows, then
# what reads or watches them (a trigger must not fire on the copied rows).
_MADE_IN_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}


@functools.lru_cache(maxsize=4)
def latest_schema(migrations: tuple[str, ...]) -> tuple[tuple[str, ...],
                                                       tuple[tuple[str, list[tuple]], ...],
                                                       tuple[str, ...]]:
    """What ``migrations``, run one by one on an empty database, leave: the
    CREATE statements of its tables, the rows the migrations inserted, and
    the CREATE statements of its indexes, views and triggers, as SQLite
    stores them. Run once per process, in memory. A new store is made from
    it in one transaction: each of the migrations' ALTER TABLEs re-checks
    the whole schema, which made a new store cost ~30 ms of CPU (~10 ms
    this way; the test suite makes a thousand)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN")
        for script in migrations:
            for statement in statements(script):
                conn.execute(statement)
        conn.execute("COMMIT")
        made = sorted(conn.execute(
            "SELECT type, name, sql FROM sqlite_schema "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"),
            key=lambda row: _MADE_IN_ORDER[row[0]])
        tables = tuple(sql for kind, _, sql in made if kind == "table")
        rows = tuple((name, found) for kind, name, _ in made if kind == "table"
                     for found in [conn.execute(f'SELECT * FROM "{name}"').fetchall()] if found)
        return tables, rows, tuple(sql for kind, _, sql in made if kind != "table")
    finally:
        conn.close()


# The check at open: SQLite's ``quick_check`` of the whole file while it is
# at most CHECK_BYTES; past that, of every table but those that grow with
# the documents (a row per chunk, batch, memory unit, skeleton slice or
# ladder step: 74,000 attempts on a 1,000,000-line job),
# whose damage is found by the read or write that meets it (SQLITE_CORRUPT,
# mapped by ``database_error``; a write that meets it is rolled back). The
# job table, the schema and the small tables are always checked, so the
# check costs milliseconds at any size: the whole file took 0.27 s on a
# 500,000-line job's 470 MiB store (it grows with the file: SQLite before
# 3.43 runs the walk of all b-trees as one VM step, which no progress
# handler interrupts), the small tables 0.6 ms.
CHECK_BYTES = 64 * 2**20
BULK_TABLES = ("chunks", "batches", "memory_units", "skeleton_slices", "attempts")


def check_intact(conn: sqlite3.Connection, path: Path, *,
                 whole_up_to: int | None = None) -> None:
    """Raise DatabaseDamaged if SQLite's ``quick_check`` finds damaged
    pages: in the whole file up to ``whole_up_to`` bytes (default
    ``CHECK_BYTES``), else in every table but ``BULK_TABLES``. sqlite3's
    own DatabaseError (SQLITE_CORRUPT, SQLITE_NOTADB) when it meets them
    reading, which ``database_error`` maps."""
    limit = CHECK_BYTES if whole_up_to is None else whole_up_to
    (pages,), (page_size,) = (conn.execute("PRAGMA page_count").fetchone(),
                              conn.execute("PRAGMA page_size").fetchone())
    if pages * page_size <= limit:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    else:
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            if name not in BULK_TABLES]
        problems = [row[0] for name in tables
                    for row in conn.execute(f'PRAGMA quick_check("{name}")')]
        problems = [p for p in problems if p != "ok"] or ["ok"]
    if problems != ["ok"]:
        # "*** in database main ***\nPage 51: btreeInitPage() returns error code 11\n..."
        lines = [line.strip() for p in problems for line in p.splitlines()
                 if line.strip() and not line.startswith("***")]
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise damaged(path, (lines[0] if lines else "quick_check failed") + more)


class StoreBase:
    """One SQLite connection (WAL, busy timeout) and the schema at its latest version."""

    def __init__(self, path: str | Path, *, clock=time.time, check: bool = False):
        """Open (or create) the store at ``path`` and migrate it. With
        ``check``, what a command does when it opens the store, damaged
        pages are looked for first (``check_intact``), before anything is
        written; a process's further connections to a store it checked
        (worker threads, the heartbeat, the API's threads) skip it."""
        self.path = Path(path)
        self.clock = clock
        self._cpu_started: dict[int, float] = {}  # stage run id -> process_time() at its start
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            if check:
                check_intact(conn, self.path)
        except (OSError, sqlite3.Error, DatabaseDamaged) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, DatabaseDamaged):
                raise
            mapped = database_error(exc, self.path) if isinstance(exc, sqlite3.Error) else None
            raise mapped or InvalidInput(f"cannot open the job database {self.path}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self.db = Database(conn)
        self._migrate()

    def close(self) -> None:
        self.db.conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """A write transaction that takes the write lock up front.

        ``db.atomic()`` starts a deferred transaction; a transaction that
        reads before it writes must hold the lock from the start, or two
        processes can both read the old state and one fails to upgrade.
        """
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        try:
            try:
                # inside the try: a signal (SIGTERM raises in the main
                # thread) landing just after BEGIN must not leave the
                # transaction open, or the lease given back after it is
                # never committed
                self.db.conn.execute("BEGIN IMMEDIATE")
                with self.db.atomic():  # a savepoint inside our transaction
                    yield self.db
            except BaseException:
                if self.db.conn.in_transaction:  # SQLite rolls back itself on SQLITE_FULL
                    self.db.conn.execute("ROLLBACK")
                raise
            self.db.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # a full disk or a damaged file: say which
            mapped = database_error(exc, self.path)
            if mapped is None:
                raise
            raise mapped from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Several verbs in one transaction: all of their writes, or none
        (a process killed between two of them leaves neither)."""
        with self._write():
            yield

    def _migrate(self) -> None:
        with self._write():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise InvalidInput(
                    f"the job database {self.path} was written by a newer nllb-pipeline "
                    f"(schema {version}, this one knows {len(MIGRATIONS)})"
                )
            if version == 0 and MIGRATIONS:
                # a new store: the schema all the migrations make, at once
                tables, rows, others = latest_schema(MIGRATIONS)
                for statement in tables:
                    self.db.execute(statement)
                for name, values in rows:
                    marks = ", ".join("?" * len(values[0]))
                    self.db.conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', values)
                for statement in others:
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
                return
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements(script):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={number}")

    def _one(self, cls, sql: str, params: Sequence = ()):
        found = self._all(cls, sql, params)
        return found[0] if found else None

    def _all(self, cls, sql: str, params: Sequence = ()):
        cursor = self.db.conn.execute(sql, params)
        build = _builder(cls, tuple(d[0] for d in cursor.description))
        return [build(row) for row in cursor]
