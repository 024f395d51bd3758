"""Identifier formats shared by every message and document."""

from __future__ import annotations

import re

# Node ids are chosen by the hub when a site is added: lowercase slug.
NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
# The hub's own address in sealed messages (statistics are sealed to it).
HUB_ID = "hub"
# Message and referral ids: 32 lowercase hex characters (128 bits). Referral,
# case and other record ids are 128 random bits; message ids made since issue 11
# are time-ordered (`time_ordered_id`), older random ones stay valid: nothing may
# rely on the order of ids for correctness.
MESSAGE_ID = re.compile(r"[0-9a-f]{32}")
# A time-ordered id: 48 bits of unix milliseconds, big-endian, then 80 random bits.
ID_TIME_BITS = 48
ID_RANDOM_BYTES = 10


def time_ordered_id(millis: int, random_part: bytes) -> str:
    """A message id whose first 48 bits are `millis` and whose other 80 are `random_part`.

    Ids made this way sort (as strings, too) by their time, so a database index
    on them grows at its end instead of at random places (docs/hub.md,
    "Throughput"). The 80 random bits keep an id unguessable: another office
    that saw earlier ids of a node cannot take its next one first. The format is
    `MESSAGE_ID`'s, so a receiver cannot tell it from a random id and needs not.
    """
    if not 0 <= millis < 1 << ID_TIME_BITS:
        raise ValueError(f"millis {millis} does not fit {ID_TIME_BITS} bits")
    if len(random_part) != ID_RANDOM_BYTES:
        raise ValueError(f"a time-ordered id takes {ID_RANDOM_BYTES} random bytes")
    return (millis.to_bytes(ID_TIME_BITS // 8, "big") + random_part).hex()
