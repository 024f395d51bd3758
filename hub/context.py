"""Typed application keys: what every handler and background task reads from the app."""

from __future__ import annotations

from aiohttp import web

from hub.auth import NonceMemory
from hub.metrics import Metrics
from hub.publisher import DirectoryPublisher
from hub.push import DirectoryAnnouncer, PushRegistry
from hub.settings import HubSettings
from hub.storage.db import DbWorker
from protocol.keys import PrivateKeys
from support.clock import Deps

SETTINGS = web.AppKey("settings", HubSettings)
KEYS = web.AppKey("hub_keys", PrivateKeys)
DB = web.AppKey("db", DbWorker)
# The hub's clock and randomness (support/clock.py); tests pass fixed ones.
DEPS = web.AppKey("deps", Deps)
PUSH = web.AppKey("push", PushRegistry)
ANNOUNCER = web.AppKey("directory_announcer", DirectoryAnnouncer)
# Publishes the directory versions enrollments ask for (hub/publisher.py).
PUBLISHER = web.AppKey("directory_publisher", DirectoryPublisher)
METRICS = web.AppKey("metrics", Metrics)
# Request nonces held in memory while the disk is full (hub/auth.py).
NONCES = web.AppKey("nonces", NonceMemory)
