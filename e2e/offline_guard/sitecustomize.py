"""Loaded by the Phoenix server the e2e run starts (through ``PYTHONPATH``): keeps it off
the internet, fast.

Every connection to a non-loopback address and every DNS lookup of a name other than
``localhost`` fails at once (no timeout to wait out) and is appended to the file named by
``E2E_NETWORK_LOG``, which the e2e script reports. The file named by
``E2E_GUARD_LOADED`` is created on import, so the script knows the guard is in place.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

_LOG = os.environ.get("E2E_NETWORK_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _record(what: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(what + "\n")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    return True


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return host in _LOCAL_NAMES


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(str(address[0])):
        _record(f"connect {address!r}")
        raise OSError(101, f"e2e offline guard: no connection to {address!r}")


def connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _connect_ex(self, address)


def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, bytes):
        host = host.decode("idna")
    if host is not None and host not in _LOCAL_NAMES and not _is_ip(host):
        _record(f"resolve {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"e2e offline guard: no lookup of {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect  # type: ignore[method-assign]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = getaddrinfo

if _loaded := os.environ.get("E2E_GUARD_LOADED"):
    with open(_loaded, "a", encoding="utf-8") as marker:
        marker.write(f"{os.getpid()}\n")
