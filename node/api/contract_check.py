"""The contract check of the test suite: openapi-core next to the node's own validation.

With `MBE_NODE_CONTRACT_CHECK=1` in the environment (tests/conftest.py sets
it, so in-process apps and the end-to-end tests' `mbe-node serve` processes
have it), the API additionally:

* checks every response against node/api/openapi.yaml with openapi-core; a
  response outside the contract is logged (`api.response_breaks_contract`)
  and replaced by a 500, so spec drift fails a test;
* checks every request with openapi-core as well, and answers 500
  (`api.request_check_disagrees`) when openapi-core and node/api/contract.py
  judge it differently (one refuses, the other accepts, or they refuse with
  another status). The fuzz tests send thousands of generated requests
  through this.

openapi-core is a test dependency (the `test` extra), imported only here, and
only when the check is on: production nodes neither load it (31 MiB) nor
spend the time (see node/api/contract.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web

ENV = "MBE_NODE_CONTRACT_CHECK"


def enabled() -> bool:
    return os.environ.get(ENV, "") not in {"", "0"}


class ContractCheck:
    """openapi-core over the same spec document the node validates with."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        try:
            from openapi_core import Config, OpenAPI
        except ImportError:
            raise RuntimeError(
                f"{ENV} needs openapi-core, from the test extra: pip install -e '.[test]'"
            ) from None
        # openapi-core only knows plain JSON; problems are JSON under another name.
        config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
        self._spec = OpenAPI.from_dict(dict(document), config=config)

    def request_status(self, request: web.Request, body: bytes) -> int | None:
        """The status openapi-core would refuse the request with, or None."""
        from openapi_core.contrib.aiohttp import AIOHTTPOpenAPIWebRequest

        errors = list(
            self._spec.iter_request_errors(AIOHTTPOpenAPIWebRequest(request, body=body or None))
        )
        return _status(errors[0]) if errors else None

    def response_error(self, request: web.Request, body: bytes, response: web.Response) -> str:
        """'' if the response keeps the contract, else the openapi-core error's type."""
        from openapi_core.contrib.aiohttp import (
            AIOHTTPOpenAPIWebRequest,
            AIOHTTPOpenAPIWebResponse,
        )
        from openapi_core.exceptions import OpenAPIError

        try:
            self._spec.validate_response(
                AIOHTTPOpenAPIWebRequest(request, body=body or None),
                AIOHTTPOpenAPIWebResponse(response),
            )
        except OpenAPIError as exc:
            return type(exc).__name__
        return ""


def _status(exc: BaseException) -> int:
    """The HTTP status the node answers an openapi-core request error with."""
    from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
    from openapi_core.templating.paths.exceptions import (
        OperationNotFound,
        PathNotFound,
    )
    from openapi_core.validation.request.exceptions import (
        SecurityValidationError,
    )

    if isinstance(exc, PathNotFound):
        return 404
    if isinstance(exc, OperationNotFound):
        return 405
    if isinstance(exc, SecurityValidationError):
        return 401
    if isinstance(exc, MediaTypeNotFound) or isinstance(exc.__cause__, MediaTypeNotFound):
        return 415
    return 400
