"""Ports for the servers the tests start (not a pytest plugin: the plugins import it)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_GIVEN: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (an outgoing connection of this
    run cannot take it before the server binds it, as it could a port the kernel picked),
    and never handed out twice in one run."""
    high = _ephemeral_low() - 1
    for _ in range(1000):
        port = random.randint(min(20000, high - 1000), high)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")
