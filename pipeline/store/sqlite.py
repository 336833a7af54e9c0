"""The little the store needs on top of the standard library's sqlite3.

The store used sqlite-utils for five things: ``execute``, ``query`` (rows
as dicts), ``atomic`` (a transaction, or a savepoint inside one), and a
table's ``insert``, ``insert_all`` and ``upsert``. Importing it cost every
command, ``status`` included, about a third of a second: it imports numpy
(for its type conversions) and scans the installed packages for plugins.
These are those five, on the same connection (autocommit mode:
``isolation_level=None``, so a statement outside ``atomic`` commits at once,
as sqlite-utils' ``execute`` did).
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence


class Database:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        # as sqlite-utils set it: a trigger's own writes fire triggers too
        conn.execute("PRAGMA recursive_triggers=on")

    def execute(self, sql: str, parameters: Sequence | Mapping | None = None) -> sqlite3.Cursor:
        if parameters is None:
            return self.conn.execute(sql)
        return self.conn.execute(sql, parameters)

    def query(self, sql: str, parameters: Sequence | Mapping | None = None) -> Iterator[dict]:
        cursor = self.execute(sql, parameters)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row))

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        """A transaction; inside one, a savepoint (all of the block or none)."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
            try:
                yield self
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return
        savepoint = f"store_{secrets.token_hex(8)}"
        self.conn.execute(f"SAVEPOINT {savepoint}")
        try:
            yield self
        except BaseException:
            # a RAISE(ROLLBACK) or a full disk may have ended the transaction
            if self.conn.in_transaction:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                self.conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            raise
        self.conn.execute(f"RELEASE SAVEPOINT {savepoint}")

    def __getitem__(self, name: str) -> Table:
        return Table(self, name)


class Table:
    def __init__(self, db: Database, name: str):
        self.db, self.name = db, name
        self.last_rowid: int | None = None

    def _insert_sql(self, columns: Sequence[str], verb: str = "INSERT") -> str:
        return (f"{verb} INTO [{self.name}] ({', '.join(f'[{c}]' for c in columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})")

    def insert(self, row: Mapping) -> Table:
        cursor = self.db.execute(self._insert_sql(list(row)), list(row.values()))
        self.last_rowid = cursor.lastrowid
        return self

    def insert_all(self, rows: Iterable[Mapping], batch_size: int = 100) -> Table:
        """Rows with the same columns, ``batch_size`` to an executemany."""
        rows = iter(rows)
        while batch := list(itertools.islice(rows, batch_size)):
            columns = list(batch[0])
            self.db.conn.executemany(self._insert_sql(columns),
                                     [[row[c] for c in columns] for row in batch])
        return self

    def upsert(self, row: Mapping, pk: Sequence[str]) -> Table:
        """Insert the row, or update the one with its primary key ``pk``."""
        columns = list(row)
        keys = [pk] if isinstance(pk, str) else list(pk)
        self.db.execute(self._insert_sql(columns, "INSERT OR IGNORE"), [row[c] for c in columns])
        rest = [c for c in columns if c not in keys]
        if rest:
            self.db.execute(
                f"UPDATE [{self.name}] SET {', '.join(f'[{c}] = ?' for c in rest)} "
                f"WHERE {' AND '.join(f'[{k}] = ?' for k in keys)}",
                [row[c] for c in rest] + [row[k] for k in keys])
        return self
