"""Hostile requests to the dashboard's views and login: every answer is a German page or
a redirect to the hub's own dashboard, never a server error or a header it cannot send."""

from __future__ import annotations

import re
from html import unescape

import pytest

from hub.stats.frame import safe_next
from tests.stats.hubside import StatsHub

# What a `next` may carry once its percent-escapes are decoded (a browser's form
# sends them decoded): control characters, text that is not UTF-8, line separators.
HOSTILE_NEXT_QUERIES = (
    "a=\x00",
    "x=\x7f",
    "x=\x0b\x0c",
    "x=\x1b[31m",
    "a=\u2028\u0085",
    "a=\ufffd",
    "period=2026-11&x=" + "y" * 6000,
)


@pytest.mark.parametrize("query", HOSTILE_NEXT_QUERIES)
def test_safe_next_keeps_only_ascii_view_links(query: str) -> None:
    """Any `next` query becomes ASCII without control characters, on a view's path."""
    for path in ("/dashboard", "/dashboard/table"):
        after = safe_next(f"{path}?{query}")
        assert after.startswith(path)
        assert after.isascii()
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in after)
        assert len(after) <= 2100


async def test_login_with_control_characters_in_next_redirects(stats_hub: StatsHub) -> None:
    """A login whose `next` query holds control or non-ASCII characters still logs in
    and sends the coordinator to the view, never a 500 or a dropped connection."""
    for query in HOSTILE_NEXT_QUERIES:
        resp = await stats_hub.http.request(
            "POST",
            "/dashboard/login",
            data={"token": stats_hub.token(), "next": f"/dashboard/table?{query}"},
            allow_redirects=False,
        )
        assert resp.status == 303, query
        location = resp.headers["Location"]
        assert location.startswith("/dashboard/table"), location
        assert location.isascii()


async def test_login_form_keeps_only_a_clean_next(stats_hub: StatsHub) -> None:
    """The login form's hidden `next` holds no control character taken from the URL."""
    resp = await stats_hub.http.request(
        "GET", "/dashboard/login?next=%2Fdashboard%3Fa%3D%2500%26b%3D%251b"
    )
    assert resp.status == 200
    found = re.search(r'name="next" value="([^"]*)"', await resp.text())
    assert found is not None
    assert unescape(found.group(1)) == "/dashboard?a=%00&b=%1B"
