"""The one Jinja2 set-up of every page node and hub render (autoescaping always on),
and the inline stylesheet with its hash-pinned Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    from jinja2 import Environment, Template


class Templates:
    """A package's templates through one Jinja2 environment, made at first use.

    Autoescaping is on for every template (a stored name with `<script>` shows as
    text); a missing variable fails the render instead of printing nothing;
    templates are read at first use and kept (`auto_reload=False`). `globals`
    and `filters` set before the first render are handed to the environment.

    Jinja2 is imported when a page is first rendered, not when the module that
    declares its templates is: a node that serves only the API never loads it
    (1.7 MiB of an idle node, issue 11).
    """

    def __init__(self, package: str, folder: str = "templates") -> None:
        self._package = package
        self._folder = folder
        self.globals: dict[str, Any] = {}
        self.filters: dict[str, Callable[..., Any]] = {}
        self._env: Environment | None = None

    @property
    def env(self) -> Environment:
        if self._env is None:
            from jinja2 import Environment, PackageLoader, StrictUndefined

            env = Environment(
                loader=PackageLoader(self._package, self._folder),
                autoescape=True,
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
                auto_reload=False,
            )
            env.globals.update(self.globals)
            env.filters.update(self.filters)
            self._env = env
        return self._env

    def get_template(self, name: str) -> Template:
        return self.env.get_template(name)


def environment(package: str, folder: str = "templates") -> Templates:
    """The templates of `package`'s template folder (one per module that renders)."""
    return Templates(package, folder)


@dataclass(frozen=True)
class InlineStyle:
    """A package's stylesheet for one page, inlined and allowed by its hash.

    `markup` goes into the page's <style> element unescaped: it is a file of
    the package, never input of a request or a store, and it cannot close its
    element (checked when loaded); escaping would change its bytes and break the
    hash. `headers` are the page's security headers with that hash in the
    Content-Security-Policy: nothing else may load, no script runs.
    """

    markup: Markup
    headers: Mapping[str, str]


def inline_style(package: str, path: str, *, data_images: bool = False) -> InlineStyle:
    """Load `path` (e.g. "templates/status.css") of `package` as an InlineStyle."""
    text = resources.files(package).joinpath(path).read_text(encoding="utf-8")
    if "</" in text:  # would end the <style> element early
        raise RuntimeError(f"{package}/{path} must not contain '</'")
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    images = " img-src data:;" if data_images else ""
    csp = (
        f"default-src 'none'; style-src 'sha256-{digest}';{images} "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = MappingProxyType(
        {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        }
    )
    return InlineStyle(markup=Markup(text), headers=headers)  # noqa: S704 (see the class)
