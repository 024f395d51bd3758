"""Loopback ports for servers a test starts itself, safe with parallel test workers.

`demo.processes.free_port()` binds port 0 and closes the socket: the port is free
again at once, so until the server binds it, any other process's bind(0) (another
xdist worker starting its hub, a second engineer's test run) may be handed the
same number. The test would then talk to someone else's server, or its own would
fail to start.

`reserved_port()` closes a connection on the port from the server side first, so
the port stays in TIME_WAIT for about a minute. Linux does not hand a port with a
TIME_WAIT socket to bind(0) or to an outgoing connect(), but a server that sets
SO_REUSEADDR (asyncio's and so aiohttp's default on POSIX) binds it at once. Until
then, connecting to it is refused, as for any closed port.

The root conftest installs it as `free_port` of `demo.processes` and `demo.cluster`,
so the real-process clusters of the end-to-end tests get such ports too.
"""

from __future__ import annotations

import socket
from contextlib import closing


def reserved_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that no other process is given for about a minute."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        with closing(socket.create_connection((host, port), timeout=5)):
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first: its port enters TIME_WAIT
    return port
