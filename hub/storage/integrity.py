"""Noticing a damaged hub database (docs/hub.md, "Corruption").

`quick_check` runs `PRAGMA quick_check` and returns only how many problems it
found: SQLite's messages name tables, indexes and pages, and they stay out of
logs and answers like everything stored. `is_corruption` tells an error that
says "the stored data is damaged" from one that says "busy", "full" or
"misused", so that only damage is worked around and everything else is
raised as before.
"""

from __future__ import annotations

import sqlite3

from hub.storage.engine import SQLITE, Db

# The result codes SQLite gives a damaged file.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether `exc` says the stored data is damaged.

    SQLite's own errors carry their result code; a stored text that is not
    UTF-8 is the sqlite3 module's OperationalError, without one. A plain
    DatabaseError without a code is taken as damage too.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _CORRUPT_CODES
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).startswith("Could not decode")
    return type(exc) is sqlite3.DatabaseError


def quick_check(db: Db, max_errors: int = 100) -> int:
    """`PRAGMA quick_check`: the number of problems found, 0 when the file is sound.

    A check that cannot even run (the file's header or schema is unreadable)
    counts as one problem. On PostgreSQL this only asks the server to answer:
    it keeps its own checks (data checksums, `amcheck`; docs/operations.md), and
    what it finds is for its operator, not for the hub's /health.
    """
    if db.engine != SQLITE:
        db.execute("SELECT 1").fetchone()
        return 0
    try:
        found = db.execute(f"PRAGMA quick_check({int(max_errors)})").fetchall()
    except sqlite3.DatabaseError:
        return 1
    return 0 if [tuple(r) for r in found] == [("ok",)] else max(len(found), 1)
