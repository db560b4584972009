"""Audio in the trace (issue 12) over the SDK's real OpenAI WebSocket transport, against
the local Realtime server: the caller's audio is cut to each utterance by the server's
``audio_start_ms`` / ``audio_end_ms``; the model's audio deltas land on its speech span."""

from __future__ import annotations

import base64
from typing import Any

from realtime_spans.adapters import SpanRecorder

from .realtime_server import (
    RealtimeServer,
    Script,
    audio_message,
    events_until,
    nth,
    response,
    session_created,
)
from .realtime_server.events import caller_utterance, input_transcription_completed
from .support import make_agents, of_kind, only, tree_problems
from .test_websocket_transport import open_session

CHUNK_MS = 100
CHUNKS = 6


def chunk(number: int) -> bytes:
    """100 ms of PCM16 24 kHz audio made of one repeated byte: chunk ``number`` of the caller."""
    return bytes([number]) * (48 * CHUNK_MS)


def last_append(message: dict[str, Any]) -> bool:
    return base64.b64decode(message.get("audio", "")) == chunk(CHUNKS)


async def test_the_callers_audio_is_cut_by_the_servers_speech_offsets(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    spoken = b"\x11\x22" * 240  # 10 ms a delta
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "input_audio_buffer.append",
            # server VAD heard the caller from 150 ms to 420 ms of the audio sent
            *caller_utterance("item_u1", audio_start_ms=150, audio_end_ms=420),
            input_transcription_completed("item_u1", "is it open"),
            *response(
                "resp_1",
                audio_message("resp_1", item_id="msg_1", chunks=4, audio=spoken, transcript="Yes."),
            ),
            match=last_append,
        )
    )
    greeter, _ = make_agents()
    session = await open_session(
        realtime_server, greeter, include_audio=True, include_sensitive_data=True
    )
    async with session:
        for number in range(1, CHUNKS + 1):
            await session.send_audio(chunk(number))
        await events_until(session, nth("agent_end", 1))

    assert tree_problems(recorder) == []
    sent = b"".join(chunk(number) for number in range(1, CHUNKS + 1))
    transcription = only(of_kind(recorder, "transcription")).span_data.export()
    assert base64.b64decode(transcription["input"]["data"]) == sent[48 * 150 : 48 * 420]
    assert transcription["input"]["format"] == "pcm"
    assert transcription["output"] == "is it open"
    assert transcription["model"] == "gpt-4o-mini-transcribe"  # the transport's default

    turn = only(of_kind(recorder, "turn"))
    speech = only(of_kind(recorder, "speech"))
    assert speech.parent_id == turn.span_id
    exported = speech.span_data.export()
    assert base64.b64decode(exported["output"]["data"]) == spoken * 4
    assert exported["input"] == "Yes."
    assert exported["output"]["format"] == "pcm"


async def test_a_g711_session_over_the_socket_records_g711_cut_at_max_audio_seconds(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    # u-law from the caller (8 bytes a ms), A-law from the model, 50 ms kept of each side
    ulaw, more = bytes([0x7F]) * 8 * 40, bytes([0x70]) * 8 * 40  # 40 ms each
    alaw = bytes([0xD5]) * 8 * 10  # 10 ms a delta, 8 deltas: 80 ms
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "input_audio_buffer.append",
            *caller_utterance("item_u1", audio_start_ms=0, audio_end_ms=80),
            input_transcription_completed("item_u1", "hola"),
            *response(
                "resp_1",
                audio_message("resp_1", item_id="msg_1", chunks=8, audio=alaw, transcript="Hi."),
            ),
            match=lambda message: base64.b64decode(message.get("audio", "")) == more,
        )
    )
    greeter, _ = make_agents()
    session = await open_session(
        realtime_server,
        greeter,
        include_audio=True,
        include_sensitive_data=True,
        max_audio_seconds=0.05,
        config={
            "model_settings": {
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "g711_alaw",
            }
        },
    )
    async with session:
        await session.send_audio(ulaw)
        await session.send_audio(more)
        await events_until(session, nth("agent_end", 1))

    assert tree_problems(recorder) == []
    heard = only(of_kind(recorder, "transcription")).span_data.export()
    assert heard["input"]["format"] == "g711_ulaw" and heard["truncated"] is True
    # the caller's side keeps the utterance's last 50 ms (its buffer drops the oldest audio
    # as it streams, before the server says where the utterance began)
    assert base64.b64decode(heard["input"]["data"]) == (ulaw + more)[-8 * 50 :]
    spoken = only(of_kind(recorder, "speech")).span_data.export()
    assert spoken["output"]["format"] == "g711_alaw" and spoken["truncated"] is True
    # the model's side keeps the response's first 50 ms
    assert base64.b64decode(spoken["output"]["data"]) == (alaw * 8)[: 8 * 50]
    # the turn measures all the audio the model made, not only what was kept
    assert only(of_kind(recorder, "turn")).span_data.export()["data"]["audio_generated_ms"] == 80.0
