"""End to end over the SDK's real OpenAI WebSocket transport, against a local Realtime server.

Every test drives a real ``RealtimeSession`` on the SDK's own
``OpenAIRealtimeWebSocketModel`` (its listener task, its response sequencing, its event
parsing), talking over a real socket to the scripted server of ``tests/realtime_server``,
traced by ``realtime_spans.adapters.traced`` and recorded by a real ``TracingProcessor``.
No SDK code is patched.
"""

from __future__ import annotations

import asyncio
import itertools
from http import HTTPStatus
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff
from agents.realtime.session import RealtimeSession
from agents.tracing import Span, custom_span, get_current_span, get_current_trace, trace
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from realtime_spans.adapters import SpanRecorder, traced

from .realtime_server import (
    API_KEY,
    Close,
    Drop,
    InvalidServerEvent,
    RealtimeServer,
    Reply,
    Script,
    SpanWatch,
    agent_ended,
    audio_message,
    conversation_item_added,
    events_until,
    function_call,
    item_truncated,
    nth,
    response,
    response_created,
    response_done,
    running_server,
    server_error,
    session_created,
    speech_started,
    usage,
)
from .support import make_agents, named, of_kind, tree_problems

# -- scripts -------------------------------------------------------------------------------

WEATHER_ARGS = '{"city": "Oslo"}'


def acknowledge_items() -> Reply:
    """A reply step: ``conversation.item.added`` for each item the client creates."""
    numbers = itertools.count(1)

    def reply(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [conversation_item_added(message["item"], item_id=f"item_client_{next(numbers)}")]

    return reply


def acknowledging(session_id: str = "sess_test", **session: Any) -> Script:
    """A script that opens with ``session.created`` (``session``: its options) and answers
    every item the client creates; the test adds what the model does."""
    return (
        Script()
        .on_connect(session_created(session_id, **session))
        .every("conversation.item.create", acknowledge_items())
    )


def handoff_conversation(
    session_id: str = "sess_conversation", *, specialist_finishes: bool = True
) -> Script:
    """Greeter calls ``get_weather``, then hands off to the specialist, who speaks.

    With ``specialist_finishes=False`` the specialist's response never ends: it is still
    speaking when the test closes the session.
    """
    if specialist_finishes:
        last = response(
            "resp_3",
            audio_message("resp_3", item_id="msg_3"),
            usage=usage(input_text=30, input_audio=5, output_audio=10),
        )
    else:
        last = [
            response_created("resp_3"),
            *audio_message("resp_3", item_id="msg_3", finished=False),
        ]
    return (
        acknowledging(session_id)
        .when(
            "response.create",
            *response(
                "resp_1",
                function_call(
                    "resp_1", call_id="call_weather", name="get_weather", arguments=WEATHER_ARGS
                ),
                usage=usage(input_text=10, output_text=5),
            ),
        )
        .when(
            "response.create",
            *response(
                "resp_2",
                function_call("resp_2", call_id="call_handoff", name="transfer_to_specialist"),
                usage=usage(input_text=20, output_text=5),
            ),
        )
        .when("response.create", *last)
    )


async def open_session(
    server: RealtimeServer, agent: RealtimeAgent, **options: Any
) -> RealtimeSession:
    """A traced session of ``agent`` on the SDK's default WebSocket model, aimed at ``server``."""
    model_config = server.model_config(**options.pop("model_config", {}))
    session = await RealtimeRunner(agent, config=options.pop("config", None)).run(
        model_config=model_config
    )
    return traced(session, **options)


async def converse(session: RealtimeSession, *, until: str = "Specialist") -> list[Any]:
    """Enter, ask for the weather, iterate until ``until``'s agent_end, leave; the events."""
    async with session:
        await session.send_message("What's the weather in Oslo?")
        return await events_until(session, agent_ended(until))


def only(spans: list[Span[Any]]) -> Span[Any]:
    """The one span of a list (fails naming them when there are more or none)."""
    assert len(spans) == 1, named(spans)
    return spans[0]


def errored(recorder: SpanRecorder) -> list[str]:
    """Kinds of the spans that carry an error."""
    return [span.span_data.type for span in recorder.spans if span.error is not None]


# -- the conversation ------------------------------------------------------------------------


async def test_two_agent_conversation_spans_over_websocket(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = handoff_conversation()
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter, include_sensitive_data=True)
    seen = await converse(session)
    await realtime_server.wait_disconnected()

    # the conversation really went over the wire, as the SDK does it
    (connection,) = realtime_server.connections
    assert connection.headers["authorization"] == f"Bearer {API_KEY}"
    assert connection.path == "/v1/realtime?model=gpt-realtime"
    assert realtime_server.script.unfired() == []
    assert len(realtime_server.messages("response.create")) == 3
    assert connection.close_code == 1000  # the client closed it on leaving the session
    assert [e.type for e in seen].count("handoff") == 1

    (session_span,) = of_kind(recorder, "task")
    greeter_span, specialist_span = of_kind(recorder, "agent")
    assert named([greeter_span, specialist_span]) == ["Greeter", "Specialist"]
    assert greeter_span.parent_id == specialist_span.parent_id == session_span.span_id

    # tools and handoffs as sent to the model: at connect, then on the handoff
    at_connect, on_handoff = realtime_server.messages(
        "session.update", lambda m: "tools" in m["session"]
    )
    assert [tool["name"] for tool in at_connect["session"]["tools"]] == [
        "get_weather",
        "transfer_to_specialist",
    ]
    assert greeter_span.span_data.tools == ["get_weather"]
    assert greeter_span.span_data.handoffs == ["Specialist"]
    assert on_handoff["session"]["tools"] == []
    assert specialist_span.span_data.tools == specialist_span.span_data.handoffs == []

    turns = of_kind(recorder, "turn")
    assert [t.span_data.turn for t in turns] == [1, 2, 3]
    assert [t.span_data.response_id for t in turns] == ["resp_1", "resp_2", "resp_3"]
    assert [t.span_data.agent_name for t in turns] == ["Greeter", "Greeter", "Specialist"]
    assert [t.parent_id for t in turns] == [greeter_span.span_id] * 2 + [specialist_span.span_id]
    assert not any(t.span_data.interrupted or t.span_data.cut_off for t in turns)

    function = only(of_kind(recorder, "function"))
    assert function.parent_id == greeter_span.span_id
    assert function.span_data.name == "get_weather"
    assert function.span_data.input == WEATHER_ARGS
    assert function.span_data.output == "sunny in Oslo"
    sent_output = realtime_server.messages(
        "conversation.item.create", lambda m: m["item"].get("call_id") == "call_weather"
    )
    assert [m["item"]["output"] for m in sent_output] == ["sunny in Oslo"]

    handoff = only(of_kind(recorder, "handoff"))
    assert handoff.parent_id == greeter_span.span_id
    assert (handoff.span_data.from_agent, handoff.span_data.to_agent) == ("Greeter", "Specialist")

    assert errored(recorder) == []
    assert recorder.open_spans == []
    assert tree_problems(recorder) == []


async def test_turn_usage_comes_from_response_done_with_audio_and_cached_details(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    first = usage(
        input_text=11,
        input_audio=23,
        input_image=2,
        cached_text=5,
        cached_audio=7,
        cached_image=1,
        output_text=13,
        output_audio=31,
    )
    second = usage(input_text=17, input_audio=19, cached_audio=3, output_audio=29)
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "response.create",
            *response("resp_1", audio_message("resp_1", item_id="m1"), usage=first),
        )
        .when(
            "response.create",
            *response("resp_2", audio_message("resp_2", item_id="m2"), usage=second),
        )
        .when("response.create", *response("resp_3", audio_message("resp_3", item_id="m3")))
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    async with session:
        for text in ("one", "two", "three"):
            await session.send_message(text)
            await events_until(session, agent_ended("Greeter"))

    turn_1, turn_2, turn_3 = of_kind(recorder, "turn")
    assert turn_1.span_data.usage == {
        "requests": 1,
        "input_tokens": 36,
        "output_tokens": 44,
        "total_tokens": 80,
        "input_text_tokens": 11,
        "input_audio_tokens": 23,
        "input_image_tokens": 2,
        "cached_input_tokens": 13,
        "cached_text_tokens": 5,
        "cached_audio_tokens": 7,
        "cached_image_tokens": 1,
        "output_text_tokens": 13,
        "output_audio_tokens": 31,
    }
    assert turn_2.span_data.usage == {
        "requests": 1,
        "input_tokens": 36,
        "output_tokens": 29,
        "total_tokens": 65,
        "input_text_tokens": 17,
        "input_audio_tokens": 19,
        "input_image_tokens": 0,
        "cached_input_tokens": 3,
        "cached_text_tokens": 0,
        "cached_audio_tokens": 3,
        "cached_image_tokens": 0,
        "output_text_tokens": 0,
        "output_audio_tokens": 29,
    }
    assert turn_3.span_data.usage is None  # response.done without usage: nothing to report
    session_span = only(of_kind(recorder, "task"))
    assert session_span.span_data.usage == {
        "requests": 2,
        "input_tokens": 72,
        "output_tokens": 73,
        "total_tokens": 145,
        "input_text_tokens": 28,
        "input_audio_tokens": 42,
        "input_image_tokens": 2,
        "cached_input_tokens": 16,
        "cached_text_tokens": 5,
        "cached_audio_tokens": 10,
        "cached_image_tokens": 1,
        "output_text_tokens": 13,
        "output_audio_tokens": 60,
    }
    assert tree_problems(recorder) == []


async def test_barge_in_while_audio_streams_marks_the_turn_interrupted(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    cancelled_usage = usage(input_text=40, input_audio=12, output_audio=9)

    def cancel_then_answer(truncate: dict[str, Any]) -> list[dict[str, Any]]:
        # The server took the truncation, cancelled the response the user talked over,
        # and its VAD answers the new user turn with a response of its own.
        return [
            item_truncated("msg_1", audio_end_ms=truncate["audio_end_ms"]),
            response_done(
                "resp_1", usage=cancelled_usage, status="cancelled", reason="turn_detected"
            ),
            *response("resp_2", audio_message("resp_2", item_id="msg_2")),
        ]

    realtime_server.script = (
        Script()
        .on_connect(session_created(interrupt_response=True))
        .when(
            "response.create",
            response_created("resp_1"),
            *audio_message("resp_1", item_id="msg_1", chunks=3, finished=False),
            speech_started("item_user_2"),  # the user talks while the assistant speaks
        )
        .when("conversation.item.truncate", cancel_then_answer)
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    async with session:
        await session.send_message("Tell me a long story")
        seen = await events_until(session, nth("agent_end", 2))

    kinds = [event.type for event in seen]
    assert kinds.count("audio_interrupted") == 1
    assert kinds.index("audio_interrupted") < kinds.index("agent_end")  # before response.done
    (truncate,) = realtime_server.messages("conversation.item.truncate")
    assert (truncate["item_id"], truncate["content_index"]) == ("msg_1", 0)
    assert 0 <= truncate["audio_end_ms"] <= 30  # never past the 3 x 10 ms of audio received
    assert realtime_server.messages("response.cancel") == []  # server VAD cancels by itself

    interrupted, answer = of_kind(recorder, "turn")
    assert interrupted.span_data.response_id == "resp_1"
    assert interrupted.span_data.interrupted is True
    assert interrupted.span_data.cut_off is False
    assert interrupted.span_data.usage == {
        "requests": 1,
        "input_tokens": 52,
        "output_tokens": 9,
        "total_tokens": 61,
        "input_text_tokens": 40,
        "input_audio_tokens": 12,
        "input_image_tokens": 0,
        "cached_input_tokens": 0,
        "cached_text_tokens": 0,
        "cached_audio_tokens": 0,
        "cached_image_tokens": 0,
        "output_text_tokens": 0,
        "output_audio_tokens": 9,
    }
    assert answer.span_data.response_id == "resp_2"
    assert answer.span_data.interrupted is False
    assert errored(recorder) == []
    assert tree_problems(recorder) == []


# -- correlation with the server-side trace --------------------------------------------------


def _tracing_update(message: dict[str, Any]) -> bool:
    """A ``session.update`` carrying server tracing (what ``_send_tracing_config`` sends)."""
    return "tracing" in message["session"]


async def test_correlated_trace_carries_server_session_id_and_shares_group_id(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = Script().on_connect(session_created("sess_correlated"))
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter, correlate_server_trace=True)
    async with session:
        # the SDK sends the tracing config in reply to session.created (_send_tracing_config)
        update = await realtime_server.wait_for("session.update", match=_tracing_update)

    (opened,) = recorder.traces
    assert opened.metadata["realtime_session_id"] == "sess_correlated"
    assert isinstance(opened.group_id, str) and opened.group_id
    assert update["session"]["tracing"]["group_id"] == opened.group_id
    assert len(realtime_server.messages("session.update", _tracing_update)) == 1
    assert tree_problems(recorder) == []


async def test_correlation_keeps_the_callers_server_tracing_settings(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = Script().on_connect(session_created("sess_caller"))
    settings = {
        "workflow_name": "Support line",
        "group_id": "grp_caller",
        "metadata": {"tier": "1"},
    }
    greeter, _ = make_agents()
    session = await open_session(
        realtime_server,
        greeter,
        correlate_server_trace=True,
        model_config={"initial_model_settings": {"tracing": settings}},
    )
    async with session:
        update = await realtime_server.wait_for("session.update", match=_tracing_update)

    assert update["session"]["tracing"] == settings
    (opened,) = recorder.traces
    assert (opened.name, opened.group_id) == ("Support line", "grp_caller")
    assert opened.metadata == {"tier": "1", "realtime_session_id": "sess_caller"}
    assert settings["metadata"] == {"tier": "1"}  # the caller's dict is left as given


async def test_without_correlation_the_server_trace_is_left_alone(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = Script().on_connect(session_created("sess_alone"))
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    async with session:
        update = await realtime_server.wait_for("session.update", match=_tracing_update)

    assert update["session"]["tracing"] == "auto"  # what the SDK sends by itself
    (opened,) = recorder.traces
    assert opened.group_id is None
    assert "realtime_session_id" not in (opened.metadata or {})


async def test_correlation_inside_the_callers_trace_shares_its_group_id(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = Script().on_connect(session_created("sess_nested"))
    greeter, _ = make_agents()
    with trace("Caller app", group_id="grp_app") as app:
        session = await open_session(realtime_server, greeter, correlate_server_trace=True)
        async with session:
            update = await realtime_server.wait_for("session.update", match=_tracing_update)
    assert recorder.traces == [app]
    assert update["session"]["tracing"]["group_id"] == app.group_id == "grp_app"
    assert app.metadata is None  # the caller's trace is left as it was
    session_span = only(of_kind(recorder, "task"))
    assert session_span.span_data.metadata == {
        "group_id": "grp_app",
        "realtime_session_id": "sess_nested",
    }
    assert session_span.export()["metadata"]["realtime_session_id"] == "sess_nested"


# -- the connection fails ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut", [Close(1011, "upstream failure"), Drop()], ids=["close-1011", "drop"]
)
async def test_socket_lost_mid_response_errors_the_session_and_cuts_the_turn(
    realtime_server: RealtimeServer, recorder: SpanRecorder, cut: Close | Drop
) -> None:
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "response.create",
            response_created("resp_1"),
            *audio_message("resp_1", item_id="msg_1", finished=False),
            cut,
        )
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    with pytest.raises(ConnectionClosedError) as caught:
        async with session:
            await session.send_message("Hello?")
            await events_until(session)  # the SDK raises the stored transport error here

    assert recorder.open_spans == []
    session_span = only(of_kind(recorder, "task"))
    assert session_span.error is not None
    assert session_span.error["message"] == f"ConnectionClosedError: {caught.value}"
    assert session_span.error["data"]["context"] == "WebSocket connection closed unexpectedly"
    assert errored(recorder) == ["task"]  # on the session span, nowhere else
    cut_turn = only(of_kind(recorder, "turn"))
    assert (cut_turn.span_data.cut_off, cut_turn.span_data.interrupted) == (True, False)
    assert cut_turn.span_data.usage is None
    assert named(of_kind(recorder, "agent")) == ["Greeter"]
    assert recorder.ended_trace_ids == [recorder.traces[0].trace_id]
    assert tree_problems(recorder) == []


async def test_socket_closed_normally_mid_response_ends_iteration_and_cuts_the_turn(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "response.create",
            response_created("resp_1"),
            *audio_message("resp_1", item_id="msg_1", finished=False),
            Close(1000, "bye"),
        )
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    async with session:
        await session.send_message("Hello?")
        seen = await events_until(session)  # ends: the SDK reports a normal end of stream

    assert "audio" in [event.type for event in seen]
    assert recorder.open_spans == []
    cut_turn = only(of_kind(recorder, "turn"))
    assert cut_turn.span_data.cut_off is True
    assert errored(recorder) == []  # a normal close is not a transport failure
    assert tree_problems(recorder) == []


@pytest.mark.parametrize("tool_finishes", [True, False], ids=["send-fails", "cancelled"])
async def test_socket_lost_while_a_tool_runs_ends_its_function_span_with_an_error(
    realtime_server: RealtimeServer, recorder: SpanRecorder, tool_finishes: bool
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @function_tool
    async def get_weather(city: str) -> str:
        """Weather in a city, once the test lets it answer."""
        started.set()
        await release.wait()
        return f"sunny in {city}"

    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "response.create",
            response_created("resp_1"),
            *function_call("resp_1", call_id="call_1", name="get_weather", arguments=WEATHER_ARGS),
            Close(1011, "upstream failure"),
        )
    )
    watch = SpanWatch.install()
    greeter = RealtimeAgent(name="Greeter", tools=[get_weather])
    session = await open_session(realtime_server, greeter, include_sensitive_data=True)
    with pytest.raises(ConnectionClosedError) as caught:
        async with session:
            await session.send_message("Weather in Oslo?")
            await asyncio.wait_for(started.wait(), timeout=2)
            await realtime_server.wait_disconnected()
            if tool_finishes:  # its output cannot be sent any more: the tool's task fails
                release.set()
                await watch.ended("function")
            await events_until(session)  # raises the transport error; close() cancels the rest

    assert recorder.open_spans == []
    session_span = only(of_kind(recorder, "task"))
    assert session_span.error is not None
    assert session_span.error["message"] == f"ConnectionClosedError: {caught.value}"
    function = only(of_kind(recorder, "function"))
    assert function.error is not None
    if tool_finishes:
        assert str(caught.value) in function.error["message"]  # the failed send, from its task
    else:
        assert function.error["data"]["status"] == "cancelled"
    assert only(of_kind(recorder, "turn")).span_data.cut_off is True
    assert tree_problems(recorder) == []


async def test_server_error_event_mid_response_lands_on_the_open_turn(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = (
        Script()
        .on_connect(session_created())
        .when(
            "response.create",
            response_created("resp_1"),
            server_error("The server had an error", code="internal_error"),
            response_done("resp_1", status="failed"),
        )
    )
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    async with session:
        await session.send_message("Hello?")
        seen = await events_until(session, agent_ended("Greeter"))

    assert "error" in [event.type for event in seen]  # the SDK's RealtimeError, not fatal
    failed_turn = only(of_kind(recorder, "turn"))
    assert failed_turn.error is not None
    assert failed_turn.error["message"] == "The server had an error"
    assert failed_turn.error["data"] == {"type": "server_error", "code": "internal_error"}
    assert errored(recorder) == ["turn"]
    assert tree_problems(recorder) == []


async def test_refused_connection_fails_entry_cleanly(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = Script().refuse(HTTPStatus.UNAUTHORIZED)
    greeter, _ = make_agents()
    plain = await RealtimeRunner(greeter).run(model_config=realtime_server.model_config())
    with pytest.raises(InvalidStatus) as untraced:
        async with plain:
            raise AssertionError("entered a session whose connection was refused")
    assert recorder.started == []

    session = await open_session(realtime_server, greeter)
    with pytest.raises(InvalidStatus) as caught:
        async with session:
            raise AssertionError("entered a session whose connection was refused")

    assert caught.value.response.status_code == 401
    assert (type(caught.value), str(caught.value)) == (type(untraced.value), str(untraced.value))
    assert [c.refused for c in realtime_server.connections] == [401, 401]
    assert recorder.open_spans == []
    session_span = only(of_kind(recorder, "task"))
    assert session_span.error is not None
    assert session_span.error["message"] == f"InvalidStatus: {caught.value}"
    assert recorder.ended_trace_ids == [recorder.traces[0].trace_id]
    assert get_current_span() is None and get_current_trace() is None
    assert tree_problems(recorder) == []


# -- the rules of DESIGN.md, once over this transport ------------------------------------------


async def test_ambient_span_and_trace_are_unchanged_around_a_websocket_session(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = handoff_conversation()
    greeter, _ = make_agents()
    current_while_iterating: list[tuple[Any, Any]] = []
    user_spans: list[tuple[Span[Any], Any]] = []

    def look(event: Any) -> None:
        current_while_iterating.append((get_current_trace(), get_current_span()))
        if event.type == "handoff":
            with custom_span("user work after handoff") as mine:
                user_spans.append((mine, get_current_span()))

    with trace("Caller app") as app, custom_span("request") as request:
        session = await open_session(realtime_server, greeter)
        async with session:
            await session.send_message("What's the weather in Oslo?")
            await events_until(session, agent_ended("Specialist"), each=look)
        assert get_current_trace() is app and get_current_span() is request
    assert get_current_trace() is None and get_current_span() is None

    assert current_while_iterating and set(current_while_iterating) == {(app, request)}
    ((mine, current),) = user_spans
    assert current is mine and mine.parent_id == request.span_id
    assert recorder.traces == [app]  # joined the caller's trace, opened none
    session_span = only(of_kind(recorder, "task"))
    assert session_span.parent_id == request.span_id
    assert {span.trace_id for span in recorder.started} == {app.trace_id}
    assert len(of_kind(recorder, "agent")) == 2
    assert tree_problems(recorder) == []


async def test_close_awaited_from_another_task_mid_response_ends_every_span(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    realtime_server.script = handoff_conversation(specialist_finishes=False)
    greeter, _ = make_agents()
    session = await open_session(realtime_server, greeter)
    await session.enter()
    await session.send_message("What's the weather in Oslo?")
    seen = await events_until(session, lambda event: event.type == "audio")
    assert "handoff" in [event.type for event in seen]

    closer = asyncio.create_task(session.close(), name="closer")
    await asyncio.wait_for(closer, timeout=5)
    await session.close()  # closing twice is harmless
    await realtime_server.wait_disconnected()

    assert realtime_server.connections[0].close_code == 1000
    assert recorder.open_spans == []
    assert named(of_kind(recorder, "agent")) == ["Greeter", "Specialist"]
    *done, speaking = of_kind(recorder, "turn")
    assert [turn.span_data.cut_off for turn in done] == [False, False]
    assert speaking.span_data.cut_off is True and speaking.span_data.agent_name == "Specialist"
    assert errored(recorder) == []
    assert recorder.ended_trace_ids == [recorder.traces[0].trace_id]
    assert get_current_span() is None and get_current_trace() is None
    assert tree_problems(recorder) == []


async def test_tool_and_handoff_run_in_background_tasks_with_only_the_tool_span_current(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    in_tool: list[tuple[Any, Any, Any]] = []
    in_handoff: list[tuple[Any, Any, Any]] = []

    @function_tool
    async def get_weather(city: str) -> str:
        """Weather in a city."""
        in_tool.append((asyncio.current_task(), get_current_span(), get_current_trace()))
        return f"sunny in {city}"

    async def on_handoff(_context: Any) -> None:
        in_handoff.append((asyncio.current_task(), get_current_span(), get_current_trace()))

    specialist = RealtimeAgent(name="Specialist")
    greeter = RealtimeAgent(
        name="Greeter",
        tools=[get_weather],
        handoffs=[realtime_handoff(specialist, on_handoff=on_handoff)],
    )
    realtime_server.script = handoff_conversation()
    session = await open_session(realtime_server, greeter)  # async_tool_calls: the default
    test_task = asyncio.current_task()
    await converse(session)

    function = only(of_kind(recorder, "function"))
    ((tool_task, tool_span, tool_trace),) = in_tool
    assert tool_task is not test_task
    assert tool_span is not None and tool_span.span_id == function.span_id
    assert tool_trace is not None and tool_trace.trace_id == function.trace_id
    ((handoff_task, handoff_span, handoff_trace),) = in_handoff
    assert handoff_task not in (test_task, tool_task)
    assert (handoff_span, handoff_trace) == (None, None)  # nothing of ours is current there

    greeter_span, specialist_span = of_kind(recorder, "agent")
    assert specialist_span.parent_id == greeter_span.parent_id  # siblings, never nested
    assert only(of_kind(recorder, "handoff")).parent_id == greeter_span.span_id
    assert get_current_span() is None and get_current_trace() is None
    assert tree_problems(recorder) == []


async def test_concurrent_sessions_on_separate_sockets_never_cross(
    realtime_server: RealtimeServer, recorder: SpanRecorder
) -> None:
    numbers = itertools.count(1)
    realtime_server.script_per_connection = lambda: handoff_conversation(f"sess_{next(numbers)}")

    async def one(index: int) -> None:
        greeter, _ = make_agents()
        session = await open_session(
            realtime_server, greeter, workflow_name=f"line {index}", correlate_server_trace=True
        )
        await converse(session)

    await asyncio.gather(*(one(index) for index in range(8)))
    await realtime_server.wait_disconnected()

    assert len(recorder.traces) == 8
    assert recorder.open_spans == [] and tree_problems(recorder) == []
    sent_group = {
        connection.sent[0]["session"]["id"]: next(
            m["session"]["tracing"]["group_id"]
            for m in connection.received
            if m["type"] == "session.update" and "tracing" in m["session"]
        )
        for connection in realtime_server.connections
    }
    assert len(sent_group) == 8
    for opened in recorder.traces:
        spans = [span for span in recorder.spans if span.trace_id == opened.trace_id]
        assert sorted(span.span_data.type for span in spans) == sorted(
            ["task", "agent", "agent", "turn", "turn", "turn", "function", "handoff"]
            + ["generation"] * 3
        )
        assert only([s for s in spans if s.span_data.type == "task"]).span_data.name == opened.name
        # this trace's server session got this trace's group id, and no other session did
        assert sent_group[opened.metadata["realtime_session_id"]] == opened.group_id
    assert len({opened.group_id for opened in recorder.traces}) == 8


# -- the server itself -----------------------------------------------------------------------


async def test_a_misshapen_server_event_fails_the_test_loudly() -> None:
    misspelt = {**speech_started("item_user"), "audio_strat_ms": 5}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with pytest.raises(InvalidServerEvent, match="audio_strat_ms"):
        async with (
            running_server(Script().on_connect(misspelt)) as server,
            connect(server.url, additional_headers=headers) as client,
        ):
            with pytest.raises(ConnectionClosedError):
                await client.recv()  # nothing is sent: the server closes with 1011
            assert client.close_code == 1011


@pytest.mark.parametrize("async_tool_calls", [True, False], ids=["tasks", "inline"])
async def test_a_tool_that_hangs_up_over_websocket_ends_as_done(
    realtime_server: RealtimeServer, recorder: SpanRecorder, async_tool_calls: bool
) -> None:
    """The model calls ``end_call``, whose tool closes the session (inline, from inside the
    transport's own listener task): the same events as without tracing, every span ended,
    and the tool's span not marked cancelled by its own close."""
    sessions: list[RealtimeSession] = []

    @function_tool
    async def end_call() -> str:
        """Hang up."""
        await sessions[-1].close()
        return "goodbye"

    def script() -> Script:
        return acknowledging().when(
            "response.create",
            response_created("resp_1"),
            *function_call("resp_1", call_id="call_end", name="end_call"),
        )

    realtime_server.script_per_connection = script
    greeter = RealtimeAgent(name="Greeter", tools=[end_call])
    seen: dict[bool, list[str]] = {}
    for tracing in (False, True):
        model_config = realtime_server.model_config()
        config = {"async_tool_calls": async_tool_calls}
        session = await RealtimeRunner(greeter, config=config).run(model_config=model_config)
        sessions.append(traced(session) if tracing else session)
        async with asyncio.timeout(5), sessions[-1]:
            await sessions[-1].send_message("that's all, thanks")
            seen[tracing] = [event.type for event in await events_until(sessions[-1])]

    assert seen[True] == seen[False] and seen[True][-1] == "tool_start"
    function = only(of_kind(recorder, "function"))
    assert function.span_data.name == "end_call"
    assert function.error is None and function.ended_at is not None
    assert only(of_kind(recorder, "task")).error is None
    assert recorder.open_spans == [] and tree_problems(recorder) == []
