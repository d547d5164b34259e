"""Loopback ports for the stack's components: free ones picked, fixed ones checked first.

    >>> pick_ports({"prometheus": 9090, "alertmanager": 0})
    {'prometheus': 9090, 'alertmanager': 40217}

A fixed port that is taken is reported before anything starts, naming the component and
the fix; a free port is one the kernel just handed out on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping

from codesync_load.errors import HarnessError

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when binding `host:port` fails (someone listens or holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def accepts_connections(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection on `host:port`."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def pick_ports(requested: Mapping[str, int]) -> dict[str, int]:
    """A port per component: the requested one if free, else HarnessError; 0 means any free port."""
    chosen: dict[str, int] = {}
    for name, port in requested.items():
        if port:
            if not 0 < port < 65536:
                raise HarnessError(f"--port {name}={port} is not a TCP port; use 1-65535, or 0 for a free port")
            if port_in_use(port):
                raise HarnessError(
                    f"{name} port {port} on {HOST} is in use; stop what listens there "
                    f"or drop --port {name}={port} to get a free port"
                )
            chosen[name] = port
    taken = set(chosen.values())
    for name, port in requested.items():
        if not port:
            candidate = free_port()
            while candidate in taken:
                candidate = free_port()
            chosen[name] = candidate
            taken.add(candidate)
    return {name: chosen[name] for name in requested}
