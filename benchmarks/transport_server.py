"""The local Realtime server of ``tests/realtime_server``, run in a process of its own.

One :class:`~tests.realtime_server.RealtimeServer` per conversation (each on its own
ephemeral port of 127.0.0.1), each connection getting a fresh script of that
conversation (:func:`transport_conversation.script_factory`). The coordinator talks to
this process over a pipe: it receives the URLs once, can ask for the process's CPU time
and the server's errors (``"status"``), and stops it (``"stop"``). Records of ended
connections are dropped as new ones arrive, so a long run does not grow.

The server declines permessage-deflate (the client's ``websockets`` offers it): whether
the Realtime API compresses is not documented, and uncompressed messages make every
session cheaper to receive, so every tracer's share of it larger, not smaller.
"""

from __future__ import annotations

import asyncio
import os
import time
from multiprocessing.connection import Connection
from typing import Any

import transport_conversation as conversations

from tests.realtime_server import RealtimeServer


def serve(conn: Connection, names: list[str], cpu: int | None) -> None:
    """Process entry point: serve the named conversations until told to stop."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    asyncio.run(_serve(conn, names))


def _pruning(server: RealtimeServer, factory: Any) -> Any:
    def make() -> Any:
        server.connections[:] = [record for record in server.connections if not record.ended]
        return factory()

    return make


async def _serve(conn: Connection, names: list[str]) -> None:
    known = conversations.by_name()
    servers: dict[str, RealtimeServer] = {}
    for name in names:
        server = RealtimeServer(compression=None)
        server.script_per_connection = _pruning(server, conversations.script_factory(known[name]))
        await server.start()
        servers[name] = server
    conn.send({name: server.url for name, server in servers.items()})
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def command() -> None:
        try:
            message = conn.recv()
        except EOFError:
            message = "stop"
        if message == "stop":
            loop.remove_reader(conn.fileno())
            stopping.set()
        elif message == "status":
            errors = [repr(error) for server in servers.values() for error in server.errors]
            conn.send({"cpu_ns": time.process_time_ns(), "errors": errors[:5]})

    loop.add_reader(conn.fileno(), command)
    await stopping.wait()
    for server in servers.values():
        await server.stop(seconds=2.0)
    conn.send("stopped")
