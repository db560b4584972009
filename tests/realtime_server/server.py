"""A local server speaking the Realtime API's WebSocket protocol, driven by a :class:`Script`.

It listens on 127.0.0.1 on an ephemeral port; the SDK's ``OpenAIRealtimeWebSocketModel``
reaches it through ``model_config={"url": server.url, "api_key": API_KEY}`` (see
:meth:`RealtimeServer.model_config`). It records every handshake and every message the
client sends, runs the script's rules, and checks the protocol on the way: every event
it sends is validated against the ``openai`` models, and a ``response.create`` while one
of its responses is still in progress counts as a client error. Whatever goes wrong
inside the server is kept in :attr:`RealtimeServer.errors` and raised when it stops, so a
broken script fails the test that wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .events import validate_server_event
from .script import Close, Drop, Encoded, Script, Step

__all__ = ["API_KEY", "ConnectionRecord", "RealtimeServer", "ServerError", "running_server"]

#: The API key the server accepts (sent by the SDK as ``Authorization: Bearer ...``).
API_KEY = "test-key"
#: The model named in the connection URL.
MODEL = "gpt-realtime"
_PATH = "/v1/realtime"


class ServerError(AssertionError):
    """Something went wrong inside the test server (bad script, protocol violation...).

    Example:
        >>> raise ServerError("response.create while resp_1 is in progress")
        Traceback (most recent call last):
        ...
        tests.realtime_server.server.ServerError: response.create while resp_1 is in progress
    """


@dataclass
class ConnectionRecord:
    """One WebSocket handshake the server saw, and what happened on that connection.

    Example:
        >>> ConnectionRecord("/v1/realtime?model=gpt-realtime", {}).refused is None
        True
    """

    path: str
    headers: dict[str, str]  # names in lower case
    script: Script = field(default_factory=Script)
    refused: HTTPStatus | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    ended: bool = False
    response_in_progress: str | None = None


class RealtimeServer:
    """The running server: its address, its script and what the client sent.

    Start it with :func:`running_server` (or the test modules' ``realtime_server``
    fixture); set :attr:`script` (shared by every connection) or
    :attr:`script_per_connection` before the client connects.

    Example:
        ```python
        async with running_server() as server:
            server.script.on_connect(session_created())
            session = await RealtimeRunner(agent).run(model_config=server.model_config())
        ```
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        host: str = "127.0.0.1",
        compression: str | None = "deflate",
    ) -> None:
        self.script = script if script is not None else Script()
        #: ``"deflate"`` accepts the client's offer of permessage-deflate (the
        #: ``websockets`` default); ``None`` declines it, so messages go uncompressed.
        self.compression = compression
        #: When set, each connection gets a fresh script from it instead of :attr:`script`.
        self.script_per_connection: Callable[[], Script] | None = None
        self.host = host
        self.port = 0
        self.connections: list[ConnectionRecord] = []
        self.errors: list[BaseException] = []
        self._records: dict[ServerConnection, ConnectionRecord] = {}
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    # -- address --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``ws://`` URL of the Realtime endpoint, with the model in the query."""
        return f"ws://{self.host}:{self.port}{_PATH}?model={MODEL}"

    def model_config(self, **extra: Any) -> dict[str, Any]:
        """A ``model_config`` for ``RealtimeRunner.run()`` pointing the SDK at this server."""
        return {"url": self.url, "api_key": API_KEY, **extra}

    # -- what the client sent -------------------------------------------------------------

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every message the client sent, on every connection, in order."""
        return [message for record in self.connections for message in record.received]

    def messages(
        self, message_type: str, match: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """The client messages of one type (and matching ``match``), in order."""
        return [
            message
            for message in self.received
            if message.get("type") == message_type and (match is None or match(message))
        ]

    async def wait_for(
        self,
        message_type: str,
        *,
        match: Callable[[dict[str, Any]], bool] | None = None,
        count: int = 1,
        seconds: float = 2.0,
    ) -> dict[str, Any]:
        """Wait (at most ``seconds`` s) until the client sent ``count`` such messages.

        Returns the ``count``-th one. Raises ``AssertionError`` listing what did arrive.
        """

        def arrived() -> bool:
            return len(self.messages(message_type, match)) >= count

        await self._wait(arrived, seconds, f"{count} client message(s) {message_type!r}")
        return self.messages(message_type, match)[count - 1]

    async def wait_disconnected(self, seconds: float = 2.0) -> None:
        """Wait (at most ``seconds`` s) until every accepted connection has ended."""

        def ended() -> bool:
            return all(record.ended for record in self.connections if record.refused is None)

        await self._wait(ended, seconds, "every connection to end")

    async def _wait(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        try:
            async with asyncio.timeout(seconds), self._changed:
                await self._changed.wait_for(condition)
        except TimeoutError:
            seen = [message.get("type") for message in self.received]
            raise AssertionError(f"waited {seconds} s for {what}; the client sent {seen}") from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on an ephemeral port of :attr:`host`."""
        self._server = await serve(
            self._handle,
            self.host,
            0,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=1,
            compression=self.compression,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, seconds: float = 3.0) -> None:
        """Close every connection and stop listening, waiting at most ``seconds`` s.

        Connection handlers still running after that are cancelled (and reported).
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=True)
        try:
            async with asyncio.timeout(seconds):
                await server.wait_closed()
        except TimeoutError:
            stuck = [task for task in server.handlers.values() if not task.done()]
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=seconds)
            if server.close_task is not None and not server.close_task.done():
                server.close_task.cancel()
                await asyncio.wait([server.close_task], timeout=seconds)
            self.errors.append(ServerError(f"server did not stop within {seconds} s"))

    # -- the protocol ---------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        make_script = self.script_per_connection
        record = ConnectionRecord(
            request.path,
            {name.lower(): value for name, value in request.headers.raw_items()},
            make_script() if make_script is not None else self.script,
        )
        self.connections.append(record)
        refusal = record.script.refusal
        if refusal is None and not request.path.startswith(_PATH):
            refusal = (HTTPStatus.NOT_FOUND, "Not found\n")
        if refusal is None and request.headers.get("Authorization") != f"Bearer {API_KEY}":
            refusal = (HTTPStatus.UNAUTHORIZED, "Missing or wrong API key\n")
        if refusal is not None:
            record.refused = refusal[0]
            return connection.respond(*refusal)
        self._records[connection] = record
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        record = self._records.pop(connection)
        try:
            if await self._run(connection, record, record.script.connect_steps, {}):
                async for raw in connection:
                    message = json.loads(raw)
                    record.received.append(message)
                    self._check_client_message(record, message)
                    await self._notify()
                    rule = record.script.rule_for(message)
                    if rule is not None and not await self._run(
                        connection, record, rule.steps, message
                    ):
                        break
        except ConnectionClosed:
            pass  # the client went away mid-step
        except Exception as error:
            self.errors.append(error)
            await connection.close(1011, "test server error")
        finally:
            record.close_code = connection.close_code
            record.ended = True
            await self._notify()

    async def _run(
        self,
        connection: ServerConnection,
        record: ConnectionRecord,
        steps: Iterable[Step],
        message: dict[str, Any],
    ) -> bool:
        """Run steps in order; ``False`` once the connection was closed or dropped."""
        for step in steps:
            if isinstance(step, Close):
                await connection.close(step.code, step.reason)
                return False
            if isinstance(step, Drop):
                connection.transport.abort()
                return False
            if isinstance(step, Mapping):
                await self._send(connection, record, step)
            elif isinstance(step, Encoded):
                for event, text in zip(step.events, step.texts, strict=True):
                    self._sending(record, event)
                    await connection.send(text)
            elif not await self._run(connection, record, step(message), message):
                return False
        return True

    async def _send(
        self, connection: ServerConnection, record: ConnectionRecord, event: Mapping[str, Any]
    ) -> None:
        checked = validate_server_event(event)
        self._sending(record, checked)
        await connection.send(json.dumps(checked))

    @staticmethod
    def _sending(record: ConnectionRecord, event: dict[str, Any]) -> None:
        """Note a checked event about to be sent: the response in progress, the log."""
        kind = event["type"]
        if kind == "response.created":
            record.response_in_progress = event["response"]["id"]
        elif kind == "response.done":
            record.response_in_progress = None
        record.sent.append(event)

    def _check_client_message(self, record: ConnectionRecord, message: dict[str, Any]) -> None:
        if message.get("type") == "response.create" and record.response_in_progress:
            self.errors.append(
                ServerError(
                    f"the client sent response.create while {record.response_in_progress} "
                    "was still in progress"
                )
            )


async def _leftover_tasks(seconds: float) -> list[asyncio.Task[Any]]:
    """Tasks other than the caller still running after ``seconds`` s of grace."""
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    if others:
        await asyncio.wait(others, timeout=seconds)
    return [task for task in others if not task.done()]


@contextlib.asynccontextmanager
async def running_server(
    script: Script | None = None, *, check_tasks: bool = True
) -> AsyncIterator[RealtimeServer]:
    """Run a :class:`RealtimeServer` for the duration of the block, then stop it cleanly.

    On the way out (whatever happened in the block) the server closes its connections and
    stops within bounded time. Then, unless the block raised: an error recorded inside the
    server is raised, and with ``check_tasks`` any task still running after a short grace
    (a leak of the session, the SDK or the server) is cancelled and reported.

    Example:
        ```python
        async with running_server(Script().on_connect(session_created())) as server:
            ...
        ```
    """
    server = RealtimeServer(script)
    await server.start()
    failed = False
    try:
        yield server
    except BaseException:
        failed = True
        raise
    finally:
        await server.stop()
        leftovers = await _leftover_tasks(seconds=1.0) if check_tasks else []
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=1.0)
        if not failed:
            if server.errors:
                raise server.errors[0]
            if leftovers:
                raise ServerError(f"tasks left running after the test: {leftovers}")
