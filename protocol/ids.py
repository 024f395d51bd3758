"""Identifier formats shared by every message and document."""

from __future__ import annotations

import re

# Node ids are chosen by the hub when a site is added: lowercase slug.
NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
# The hub's own address in sealed messages (statistics are sealed to it).
HUB_ID = "hub"
# Message and referral ids: 32 lowercase hex characters (128 random bits).
MESSAGE_ID = re.compile(r"[0-9a-f]{32}")
