"""The dashboard view "Verlauf" (/dashboard/trends). Being built (issue 13)."""

from __future__ import annotations

from aiohttp import web

from hub.stats.frame import Frame, render


async def page(request: web.Request, frame: Frame) -> str:
    return render("trends.html", frame)
