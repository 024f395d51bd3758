"""Helpers with I/O that both `node/` and `hub/` need.

Pure pieces (message formats, crypto, calendar facts) live in `protocol/`;
what touches files, databases or process-wide output and is the same for the
office node and the hub lives here, once: atomic private files, the migration
runner, backup archives, TOML config files, logging set-up.

`support` may import `protocol` and third-party libraries, never `node` or
`hub` (tests/test_architecture.py); `node` and `hub` import it and still
never import each other.
"""
