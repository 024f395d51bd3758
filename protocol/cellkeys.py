"""Record keys of the cell key method: what a node adds to each statistics cell.

The hub perturbs every published count with noise looked up by the cell's
*cell key* (docs/statistics.md, "Cell key method"). A cell's key is the sum,
modulo `KEY_SPACE`, of the keys of the records (cases, contacts, referrals)
counted in it. Sums of uniform keys are uniform, and sums add up over offices:
a node sends each cell's count with its key sum, and the hub computes the key
of any aggregate (region, organisation, office) by adding the offices' key sums,
without seeing a record. The same cell of the same records therefore gets the
same key, and so the same published number, in every table.

A record's key is a keyed hash of the period, the cell and the record's local
id, under a secret that never leaves the node. Rejected alternative: one random
key per record for all cells (the ABS and ONS set-up, where the agency holds the
microdata). Here the hub is not trusted with microdata: a record key shared by
every cell would make each count-1 cell carry the same number, a pseudonym that
links the cells of one client across tables and periods. Per cell and period the
keys of one record are unlinkable without the secret.
"""

from __future__ import annotations

import hashlib
from typing import Any

KEY_SPACE = 2**32
SECRET_BYTES = 32
_SEP = "\x1f"  # unit separator: cannot occur in codes, periods or ids


def add_keys(a: int, b: int) -> int:
    return (a + b) % KEY_SPACE


class RecordKeys:
    """Keys of records for one period under one office's secret.

    `key(cell, record)` hashes with BLAKE2b in keyed mode (a PRF); the state
    after absorbing the period and cell is cached, so each record costs one copy
    and one short update.
    """

    def __init__(self, secret: bytes, period: str) -> None:
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"a statistics secret is {SECRET_BYTES} bytes")
        self._base = hashlib.blake2b(key=secret, digest_size=8, person=b"mbe-cellkey-v2")
        self._base.update(period.encode() + _SEP.encode())
        self._cells: dict[str, Any] = {}  # cell name -> hash state after it

    def key(self, cell: str, record: str) -> int:
        """The key in [0, KEY_SPACE) of `record` in the cell named `cell` (any canonical text)."""
        prefix = self._cells.get(cell)
        if prefix is None:
            prefix = self._base.copy()
            prefix.update(cell.encode() + _SEP.encode())
            self._cells[cell] = prefix
        h = prefix.copy()
        h.update(record.encode())
        return int.from_bytes(h.digest(), "big") % KEY_SPACE
