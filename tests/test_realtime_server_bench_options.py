"""What the transport benchmark asks of the local Realtime server: pre-encoded steps
(``Encoded``: checked once when built, sent as they are, and seen by a real session over
the SDK's WebSocket transport exactly as the same events sent as dict steps), and a server
that declines permessage-deflate."""

from __future__ import annotations

import json

import pytest
from agents.realtime import RealtimeRunner
from websockets.asyncio.client import connect

from realtime_spans.adapters import SpanRecorder, traced

from .realtime_server import (
    API_KEY,
    Encoded,
    InvalidServerEvent,
    RealtimeServer,
    Script,
    agent_ended,
    audio_message,
    events_until,
    response,
    running_server,
    sdk_errors,
    session_created,
    usage,
)
from .realtime_server.script import Step
from .support import make_agents, of_kind


def _answer() -> list[dict[str, object]]:
    return response(
        "resp_1",
        audio_message("resp_1", item_id="msg_1", chunks=4, transcript_deltas=2),
        usage=usage(input_text=10, output_audio=20),
    )


def test_encoded_events_are_checked_once_when_built() -> None:
    events = _answer()
    encoded = Encoded.of(events)
    assert list(encoded.events) == events
    assert [json.loads(text) for text in encoded.texts] == events
    with pytest.raises(InvalidServerEvent, match=r"response\.created"):
        Encoded.of([{"type": "response.created", "event_id": "e", "response": {"id": 3}}])


async def _kinds_seen(answer: list[Step], recorder: SpanRecorder) -> tuple[list[str], list[str]]:
    script = Script().on_connect(session_created()).when("response.create", *answer)
    async with running_server(script) as server:
        greeter, _ = make_agents()
        session = traced(await RealtimeRunner(greeter).run(model_config=server.model_config()))
        async with session:
            await session.send_message("Hello")
            seen = await events_until(session, agent_ended("Greeter"))
        await server.wait_disconnected()
        (connection,) = server.connections
        sent = [event["type"] for event in connection.sent]
        assert connection.response_in_progress is None
    kinds = [
        event.data.data["type"]
        if event.type == "raw_model_event" and event.data.type == "raw_server_event"
        else event.type
        for event in seen
    ]
    assert [turn.span_data.response_id for turn in of_kind(recorder, "turn")] == ["resp_1"]
    return kinds, sent


async def test_a_session_sees_encoded_steps_as_it_sees_dict_steps(
    recorder: SpanRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    as_dicts = await _kinds_seen(list(_answer()), recorder)
    recorder.clear()
    as_encoded = await _kinds_seen([Encoded.of(_answer())], recorder)
    assert as_encoded == as_dicts
    kinds, sent = as_encoded
    assert sent[0] == "session.created" and sent[-1] == "response.done"
    assert kinds.count("response.output_audio.delta") == kinds.count("audio") == 4
    assert sdk_errors(caplog.records) == []


@pytest.mark.parametrize(("compression", "negotiated"), [("deflate", True), (None, False)])
async def test_the_server_accepts_or_declines_compression(
    compression: str | None, negotiated: bool
) -> None:
    server = RealtimeServer(Script().on_connect(session_created()), compression=compression)
    await server.start()
    try:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with connect(server.url, additional_headers=headers) as client:
            extensions = client.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert json.loads(await client.recv())["type"] == "session.created"
        assert ("permessage-deflate" in extensions) is negotiated
    finally:
        await server.stop()
    assert server.errors == []
