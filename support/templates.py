"""The one Jinja2 set-up of every page node and hub render: autoescaping always on."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined


def environment(package: str, folder: str = "templates") -> Environment:
    """An environment over `package`'s template folder, built once per process.

    Autoescaping is on for every template (a stored name with `<script>` shows as
    text); a missing variable fails the render instead of printing nothing;
    templates are read at first use and kept (`auto_reload=False`).
    """
    return Environment(
        loader=PackageLoader(package, folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
