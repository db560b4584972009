"""With sensitive data withheld, no text from the conversation reaches an exported span.

Every place where a text from outside the library becomes span data is covered: tool
inputs and outputs, a failing tool's error (the SDK's handled error, which the SDK attaches
to the function span; the exception of a tool with no error function), a transport
exception, a server error, a failed entry, a failed close and an exception the
application raises out of the session's block. With sensitive data
withheld, spans keep the exception type, the codes and the library's (and SDK's) own words,
and nothing else; with it allowed, the text is there (so these checks can fail).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from agents import RunContextWrapper, function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.model_events import (
    RealtimeModelErrorEvent,
    RealtimeModelExceptionEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.model_inputs import RealtimeModelSendToolOutput, RealtimeModelSendUserInput
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel

from realtime_spans.adapters import SpanRecorder, traced

from .support import END, call, converse, ended, of_kind, run_script, tree_problems, turn

CARD = "4111-1111-1111-1111"

#: How a session is told to withhold sensitive data (or to include it).
WITHHELD: dict[str, Callable[[pytest.MonkeyPatch], dict[str, Any]]] = {
    "option": lambda env: {"include_sensitive_data": False},
    "environment": lambda env: (
        env.setenv("OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA", "false") or {}
    ),
}
BY = pytest.mark.parametrize("by", sorted(WITHHELD))


def exported(recorder: SpanRecorder) -> str:
    """Every span and trace as processors export it, serialized."""
    items = [span.export() for span in recorder.started]
    items += [trace.export() for trace in recorder.traces]
    return json.dumps(items, default=str)


def _declined(ctx: RunContextWrapper[Any], error: Exception) -> str:
    return "The card was declined."


@function_tool(failure_error_function=_declined)
def charge(card: str) -> str:
    """Charge a card; a custom error function answers the model when it fails."""
    raise ValueError(f"card {card} declined")


@function_tool
def charge_quietly(card: str) -> str:
    """Charge a card; the SDK's default error function answers the model."""
    raise ValueError(f"card {card} declined")


async def _charge(tool: Any, options: dict[str, Any], async_tool_calls: bool) -> None:
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput,
            turn("r1", call(tool.name, "c1", json.dumps({"card": CARD}))),
        ),
        RealtimeStep(RealtimeModelSendToolOutput, turn("r2")),
    ]
    await run_script(
        RealtimeAgent(name="Clerk", instructions="take payments", tools=[tool]),
        steps,
        trace=lambda session: traced(session, **options),
        until=ended("tool_end"),
        model_config={"async_tool_calls": async_tool_calls},
    )


@BY
@pytest.mark.parametrize("async_tool_calls", [True, False], ids=["tasks", "inline"])
@pytest.mark.parametrize("tool", [charge, charge_quietly], ids=["custom", "default"])
async def test_a_failing_tools_handled_error_keeps_no_text(
    recorder: SpanRecorder,
    monkeypatch: pytest.MonkeyPatch,
    by: str,
    async_tool_calls: bool,
    tool: Any,
) -> None:
    await _charge(tool, WITHHELD[by](monkeypatch), async_tool_calls)
    (function,) = of_kind(recorder, "function")
    assert function.error == {
        "message": "Error running tool (non-fatal)",
        "data": {"tool_name": tool.name},
    }
    assert CARD not in exported(recorder)
    assert recorder.open_spans == [] and tree_problems(recorder) == []


async def test_a_failing_tools_handled_error_keeps_its_text_when_allowed(
    recorder: SpanRecorder,
) -> None:
    await _charge(charge, {"include_sensitive_data": True}, True)
    (function,) = of_kind(recorder, "function")
    assert function.error["data"] == {"tool_name": "charge", "error": f"card {CARD} declined"}


@BY
async def test_a_crashing_tools_exception_keeps_only_its_type(
    recorder: SpanRecorder, monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    @function_tool(failure_error_function=None)
    def crash(card: str) -> str:
        """Fails with no error function: the error ends the session."""
        raise ValueError(f"card {card} declined")

    options = WITHHELD[by](monkeypatch)
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput, turn("r1", call("crash", "c1", json.dumps({"card": CARD})))
        )
    ]
    model = ScriptedRealtimeModel(steps)
    agent = RealtimeAgent(name="Clerk", instructions="take payments", tools=[crash])
    session = traced(await RealtimeRunner(agent, model=model).run(), **options)
    with pytest.raises(ValueError, match=CARD):
        await converse(session)
    (function,) = of_kind(recorder, "function")
    assert function.error == {"message": "ValueError", "data": {"error_type": "ValueError"}}
    assert CARD not in exported(recorder)


def _failing_transport(error: BaseException) -> list[RealtimeStep]:
    return [
        RealtimeStep(
            RealtimeModelSendUserInput,
            [
                RealtimeModelTurnStartedEvent(response_id="r1"),
                RealtimeModelExceptionEvent(exception=error, context="Error handling event"),
            ],
        )
    ]


@pytest.mark.parametrize("sensitive", [False, True], ids=["withheld", "allowed"])
async def test_a_transport_exception_keeps_only_its_type_and_context(
    recorder: SpanRecorder, sensitive: bool
) -> None:
    error = ValueError(f"could not parse transcript {CARD}")
    model = ScriptedRealtimeModel(_failing_transport(error))
    agent = RealtimeAgent(name="Clerk", instructions="take payments")
    session = traced(
        await RealtimeRunner(agent, model=model).run(), include_sensitive_data=sensitive
    )
    with pytest.raises(ValueError):
        await converse(session)
    (session_span,) = of_kind(recorder, "task")
    text = f": could not parse transcript {CARD}" if sensitive else ""
    assert session_span.error == {
        "message": f"ValueError{text}",
        "data": {"error_type": "ValueError", "context": "Error handling event"},
    }
    assert (CARD in exported(recorder)) is sensitive


@pytest.mark.parametrize("sensitive", [False, True], ids=["withheld", "allowed"])
async def test_a_server_error_keeps_only_its_type_and_code(
    recorder: SpanRecorder, sensitive: bool
) -> None:
    server_error = {
        "message": f"Invalid value {CARD} for 'instructions'",
        "type": "invalid_request_error",
        "code": "invalid_value",
    }
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput,
            [*turn("r1", RealtimeModelErrorEvent(error=server_error)), END],
        )
    ]
    await run_script(
        RealtimeAgent(name="Clerk", instructions="take payments"),
        steps,
        trace=lambda session: traced(session, include_sensitive_data=sensitive),
    )
    (turn_span,) = of_kind(recorder, "turn")
    assert turn_span.error == {
        "message": server_error["message"] if sensitive else "Realtime error",
        "data": {"type": "invalid_request_error", "code": "invalid_value"},
    }
    assert (CARD in exported(recorder)) is sensitive


def _assert_session_error(
    recorder: SpanRecorder, kind: type[Exception], text: str, sensitive: bool
) -> None:
    """The session span carries the exception's type, and its text only when allowed."""
    (session_span,) = of_kind(recorder, "task")
    name = kind.__name__
    assert session_span.error == {
        "message": f"{name}: {text}" if sensitive else name,
        "data": {"error_type": name},
    }
    assert (CARD in exported(recorder)) is sensitive
    assert recorder.open_spans == [] and tree_problems(recorder) == []


@pytest.mark.parametrize("sensitive", [False, True], ids=["withheld", "allowed"])
@pytest.mark.parametrize("when", ["entry", "close"])
async def test_entry_and_close_failures_keep_only_their_type(
    recorder: SpanRecorder, sensitive: bool, when: str
) -> None:
    error = ConnectionError(f"gateway refused card {CARD}")
    if when == "entry":
        model = ScriptedRealtimeModel(connect_error=error)
    else:
        model = ScriptedRealtimeModel(
            [RealtimeStep(RealtimeModelSendUserInput, [END])], close_error=error
        )
    agent = RealtimeAgent(name="Clerk", instructions="take payments")
    session: RealtimeSession = traced(
        await RealtimeRunner(agent, model=model).run(), include_sensitive_data=sensitive
    )
    with pytest.raises(ConnectionError):
        await converse(session)
    _assert_session_error(recorder, ConnectionError, f"gateway refused card {CARD}", sensitive)


@pytest.mark.parametrize("sensitive", [False, True], ids=["withheld", "allowed"])
async def test_an_exception_escaping_the_sessions_block_is_the_sessions_error(
    recorder: SpanRecorder, sensitive: bool
) -> None:
    error = LookupError(f"no account for card {CARD}")
    agent = RealtimeAgent(name="Clerk", instructions="take payments")
    model = ScriptedRealtimeModel([RealtimeStep(RealtimeModelSendUserInput, turn("r1"))])
    session = traced(
        await RealtimeRunner(agent, model=model).run(), include_sensitive_data=sensitive
    )
    with pytest.raises(LookupError) as raised:
        async with session:
            await session.send_message("my card is on file")
            raise error
    assert raised.value is error  # the application's exception, unchanged
    _assert_session_error(recorder, LookupError, f"no account for card {CARD}", sensitive)
