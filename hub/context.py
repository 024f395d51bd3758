"""Typed application keys: what every handler and background task reads from the app."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from hub.metrics import Metrics
from hub.push import DirectoryAnnouncer, PushRegistry
from hub.settings import HubSettings
from hub.storage.db import DbWorker
from protocol.keys import PrivateKeys

Clock = Callable[[], float]
RandomBytes = Callable[[int], bytes]

SETTINGS = web.AppKey("settings", HubSettings)
KEYS = web.AppKey("hub_keys", PrivateKeys)
DB = web.AppKey("db", DbWorker)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
RANDOM: web.AppKey[RandomBytes] = web.AppKey("random_bytes")
PUSH = web.AppKey("push", PushRegistry)
ANNOUNCER = web.AppKey("directory_announcer", DirectoryAnnouncer)
METRICS = web.AppKey("metrics", Metrics)
