"""The mbe-sync wire protocol: pure functions and frozen types, no I/O.

Nothing in this package touches a socket, a file, a clock or a random number
generator unless the caller passes one in. `node` and `hub` both build on it;
it imports neither (tests/test_architecture.py checks that).
"""

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
