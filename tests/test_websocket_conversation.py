"""The conversation in the trace (issue 11) over the SDK's real OpenAI WebSocket transport,
against the local Realtime server: server VAD, the caller's transcript before and after
the response, audio and transcript deltas, text deltas, function calls and their outputs,
and truncation on a barge-in, each read back from the spans the session produced."""

from __future__ import annotations

import base64
import json
from typing import Any

from agents.realtime.model import RealtimePlaybackTracker
from agents.tracing import Span

from realtime_spans.adapters import SpanRecorder

from .realtime_server import (
    RealtimeServer,
    Script,
    audio_message,
    events_until,
    function_call,
    item_truncated,
    nth,
    response,
    response_created,
    response_done,
    session_created,
    speech_started,
    usage,
)
from .realtime_server.events import (
    caller_utterance,
    input_transcription_completed,
    text_message,
)
from .support import make_agents, of_kind, only, tree_problems
from .test_websocket_transport import WEATHER_ARGS, acknowledging, open_session

SAID = "It is sunny in Oslo."
ASKED = "what is the weather in Oslo"
CHUNK = b"\x07\x00" * 2400  # 100 ms of PCM16 24 kHz, the caller's


def _last_chunk(message: dict[str, Any]) -> bool:
    return message.get("audio") == base64.b64encode(CHUNK).decode()


def _generation_of(recorder: SpanRecorder, turn: Span[Any]) -> Any:
    (generation,) = [g for g in of_kind(recorder, "generation") if g.parent_id == turn.span_id]
    return generation.span_data


def _long_answer(*then: dict[str, Any]) -> Script:
    """The model starts a long spoken answer (three 10 ms chunks so far), followed by
    ``then``; a barge-in's truncation is answered by :func:`_cancel_then_answer`."""
    return (
        acknowledging(interrupt_response=True)
        .when(
            "response.create",
            response_created("resp_1"),
            *audio_message("resp_1", item_id="msg_1", chunks=3, finished=False),
            *then,
        )
        .when("conversation.item.truncate", _cancel_then_answer)
    )


def _cancel_then_answer(truncate: dict[str, Any]) -> list[dict[str, Any]]:
    """The server's answer to the truncation of a barge-in: the truncated item, the cut
    response done as cancelled, then the answer to the caller's new words."""
    return [
        item_truncated("msg_1", audio_end_ms=truncate["audio_end_ms"]),
        response_done("resp_1", status="cancelled", reason="turn_detected"),
        *response("resp_2", audio_message("resp_2", item_id="msg_2", chunks=2)),
    ]


def _measured(turn: Span[Any]) -> dict[str, Any]:
    return turn.span_data.export()["data"]  # type: ignore[no-any-return]


async def _spoken_question_with_a_tool(
    realtime_server: RealtimeServer, recorder: SpanRecorder, **options: Any
) -> None:
    """The caller asks aloud; the model calls ``get_weather``, then answers aloud."""
    realtime_server.script = (
        acknowledging()
        .when(
            "input_audio_buffer.append",
            *caller_utterance("item_u1", audio_start_ms=0, audio_end_ms=100),
            input_transcription_completed("item_u1", ASKED),
            *response(
                "resp_1",
                function_call(
                    "resp_1", call_id="call_w", name="get_weather", arguments=WEATHER_ARGS
                ),
                usage=usage(input_audio=30, output_text=8),
            ),
            match=_last_chunk,
        )
        .when(
            "response.create",
            *response(
                "resp_2",
                audio_message("resp_2", item_id="msg_2", chunks=5, transcript=SAID),
                usage=usage(input_text=40, output_audio=25),
            ),
        )
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter, **options)
    async with session:
        await session.send_audio(CHUNK)
        await events_until(session, nth("agent_end", 2))


async def test_a_spoken_question_a_tool_and_a_spoken_answer(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    await _spoken_question_with_a_tool(realtime_server, recorder, include_sensitive_data=True)
    assert tree_problems(recorder) == []

    asked, answered = of_kind(recorder, "turn")
    first, second = _generation_of(recorder, asked), _generation_of(recorder, answered)
    # the caller's words, matched by their item; the call the model made
    assert first.input == [{"role": "user", "content": ASKED}]
    function = {"name": "get_weather", "arguments": WEATHER_ARGS}
    called = {"id": "call_w", "type": "function", "function": function}
    assert first.output == [{"role": "assistant", "content": None, "tool_calls": [called]}]
    # the tool's output, sent before the next response, is that response's input
    assert second.input == [{"role": "tool", "tool_call_id": "call_w", "content": "sunny in Oslo"}]
    assert second.output == [{"role": "assistant", "content": SAID}]
    # the model as sent in session.update (the transport's default: no model_name set)
    sent_models = {m["session"].get("model") for m in realtime_server.messages("session.update")}
    assert sent_models - {None} == {first.model} and first.model == second.model
    assert "instructions" not in first.model_config and "tools" not in first.model_config
    assert first.usage["input_tokens"] == 30 and second.usage["output_tokens"] == 25

    # latencies: the first response answers the caller's speech but says nothing aloud
    first_measured, second_measured = _measured(asked), _measured(answered)
    assert first_measured["transcription_delay_ms"] >= 0
    assert "voice_to_voice_ms" not in first_measured
    assert "time_to_first_audio_ms" not in first_measured
    assert second_measured["time_to_first_audio_ms"] >= 0
    assert second_measured["audio_generated_ms"] == 5 * 10.0  # five 10 ms deltas
    assert "voice_to_voice_ms" not in second_measured  # a tool's output started it
    assert "audio_heard_ms" not in second_measured

    transcription = only(of_kind(recorder, "transcription")).span_data
    assert transcription.output == ASKED
    summary = only(of_kind(recorder, "task")).span_data.export()["data"]
    assert summary["turns"] == 2 and summary["interruptions"] == 0


async def test_no_word_of_the_conversation_with_sensitive_data_withheld(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    await _spoken_question_with_a_tool(realtime_server, recorder, include_sensitive_data=False)
    exported = json.dumps([span.export() for span in recorder.spans], default=str)
    for words in ("Oslo", "sunny", ASKED, SAID):  # ("get_weather", a tool's name, stays)
        assert words not in exported
    asked, answered = of_kind(recorder, "turn")
    assert _generation_of(recorder, asked).input == [{"role": "user", "content": None}]
    assert _measured(answered)["audio_generated_ms"] == 50.0  # lengths and latencies remain


async def test_a_transcript_after_response_done_lands_on_its_transcription_span_only(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "input_audio_buffer.append",
            *caller_utterance("item_u1", audio_start_ms=0, audio_end_ms=100),
            *response("resp_1", audio_message("resp_1", item_id="msg_1", transcript=SAID)),
            input_transcription_completed("item_u1", ASKED),  # after response.done
            match=_last_chunk,
        )
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter, include_sensitive_data=True)
    async with session:
        await session.send_audio(CHUNK)
        await events_until(session, nth("agent_end", 1))
        await realtime_server.wait_for("input_audio_buffer.append")

    turn = only(of_kind(recorder, "turn"))
    generation = _generation_of(recorder, turn)
    assert generation.input == [{"role": "user", "content": None}]  # it had not come yet
    assert generation.output == [{"role": "assistant", "content": SAID}]
    transcription = only(of_kind(recorder, "transcription"))
    assert transcription.span_data.output == ASKED
    measured = _measured(turn)
    # the caller's speech started this response: how long they waited for its voice
    assert measured["voice_to_voice_ms"] >= measured["time_to_first_audio_ms"] >= 0
    summary = only(of_kind(recorder, "task")).span_data.export()["data"]
    assert summary["voice_to_voice_max_ms"] == measured["voice_to_voice_ms"]
    assert tree_problems(recorder) == []


async def test_a_text_response_to_a_typed_message(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = acknowledging().when(
        "response.create",
        *response("resp_1", text_message("resp_1", item_id="msg_1", text=SAID, deltas=3)),
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter, include_sensitive_data=True)
    async with session:
        await session.send_message(ASKED)
        await events_until(session, nth("agent_end", 1))

    turn = only(of_kind(recorder, "turn"))
    generation = _generation_of(recorder, turn)
    assert generation.input == [{"role": "user", "content": ASKED}]
    assert generation.output == [{"role": "assistant", "content": SAID}]
    measured = _measured(turn)
    assert measured["time_to_first_text_ms"] >= 0
    assert not {"time_to_first_audio_ms", "audio_generated_ms", "voice_to_voice_ms"} & set(measured)
    assert tree_problems(recorder) == []


async def test_a_barge_in_says_how_much_of_the_answer_the_caller_heard(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = _long_answer(speech_started("item_u2"))  # talked over at once
    greeter, _ = make_agents()
    session = await open_session(
        realtime_server, greeter, include_sensitive_data=True, include_audio=True
    )
    async with session:
        await session.send_message("tell me a long story")
        await events_until(session, nth("agent_end", 2))

    cut, answer = of_kind(recorder, "turn")
    measured = _measured(cut)
    assert cut.span_data.interrupted is True
    assert measured["audio_generated_ms"] == 30.0
    assert 0 <= measured["audio_heard_ms"] <= measured["audio_generated_ms"]
    # with audio recorded, the cut response's speech span says where a player should stop
    speeches = {s.parent_id: s.span_data.export() for s in of_kind(recorder, "speech")}
    assert speeches[cut.span_id]["audio_heard_ms"] == measured["audio_heard_ms"]
    assert len(base64.b64decode(speeches[cut.span_id]["output"]["data"])) == 3 * 480
    (truncate,) = realtime_server.messages("conversation.item.truncate")
    assert "audio_heard_ms" not in _measured(answer)
    summary = only(of_kind(recorder, "task")).span_data.export()["data"]
    assert summary["interruptions"] == 1 and summary["turns"] == 2
    assert truncate["audio_end_ms"] <= 30
    assert tree_problems(recorder) == []


async def test_with_a_playback_tracker_what_the_caller_heard_is_what_the_client_played(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    """A client that counts what it plays (the SDK's ``RealtimePlaybackTracker``, as a
    phone bridge does): the turn's ``audio_heard_ms`` is that count, the same number the
    transport sends the model in its truncation, not the estimate from arrival times."""

    # the caller talks over the answer once two of its three chunks have played
    realtime_server.script = _long_answer().when(
        "input_audio_buffer.append", speech_started("item_u2")
    )
    tracker = RealtimePlaybackTracker()
    greeter, _ = make_agents()
    session = await open_session(
        realtime_server, greeter, model_config={"playback_tracker": tracker}
    )
    played = ended = 0
    async with session:
        await session.send_message("tell me a long story")
        async for event in session:
            if event.type == "audio" and played < 2:
                tracker.on_play_bytes(event.item_id, event.content_index, event.audio.data)
                played += 1
                if played == 2:
                    await session.send_audio(CHUNK)
            ended += event.type == "agent_end"
            if ended == 2:
                break

    (truncate,) = realtime_server.messages("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 20  # two 10 ms chunks played, by the client's count
    cut, answer = of_kind(recorder, "turn")
    assert cut.span_data.interrupted is True
    measured = _measured(cut)
    assert measured["audio_heard_ms"] == 20.0
    assert measured["audio_generated_ms"] == 30.0
    assert "audio_heard_ms" not in _measured(answer)
    assert tree_problems(recorder) == []
