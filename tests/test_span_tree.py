"""The complete realtime span tree on real sessions: session, turn, function, handoff and
guardrail spans, errors, sensitive data and the server-trace correlation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import function_tool
from agents.guardrail import GuardrailFunctionOutput, OutputGuardrail
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff
from agents.realtime.model_events import (
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelCachedTokensDetails,
    RealtimeModelErrorEvent,
    RealtimeModelInputTokensDetails,
    RealtimeModelOutputTokensDetails,
    RealtimeModelRawServerEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
    RealtimeModelUsageEvent,
)
from agents.realtime.model_inputs import (
    RealtimeModelSendInterrupt,
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tool_guardrails import (
    ToolGuardrailFunctionOutput,
    tool_input_guardrail,
    tool_output_guardrail,
)
from agents.tracing import FunctionSpanData, custom_span, get_current_span, trace
from agents.usage import Usage

from realtime_spans.adapters import SpanRecorder, traced

from .support import (
    END,
    audio,
    call,
    converse,
    ended,
    handoff_steps,
    make_agents,
    named,
    of_kind,
    run_script,
    tree_problems,
    turn,
    usage,
)


def _only(recorder: SpanRecorder, kind: str) -> Any:
    (span,) = of_kind(recorder, kind)
    return span


def _one_tool_agent(tool: Any, **agent_options: Any) -> RealtimeAgent:
    return RealtimeAgent(name="Clerk", tools=[tool], **agent_options)


def _single_call_steps(name: str, arguments: str = "{}") -> list[RealtimeStep]:
    return [
        RealtimeStep(
            expect=RealtimeModelSendUserInput, emit=turn("r1", call(name, "c1", arguments))
        ),
        RealtimeStep(expect=RealtimeModelSendToolOutput, emit=turn("r2")),
    ]


# -- session span ---------------------------------------------------------------------------


async def test_session_span_parents_agents_and_carries_usage_totals(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced)
    session_span = _only(recorder, "task")
    assert session_span.parent_id is None
    assert session_span.span_data.name == "Realtime session"
    assert {a.parent_id for a in of_kind(recorder, "agent")} == {session_span.span_id}
    assert session_span.span_data.usage == {
        "requests": 3,
        "input_tokens": 60,
        "output_tokens": 20,
        "total_tokens": 80,
    }
    assert session_span.error is None
    assert session_span.ended_at == max(s.ended_at for s in recorder.spans)


# -- turn spans -----------------------------------------------------------------------------


async def test_turns_are_numbered_parented_and_carry_their_usage(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced)
    turns = of_kind(recorder, "turn")
    greeter_span, specialist_span = of_kind(recorder, "agent")
    assert [t.span_data.turn for t in turns] == [1, 2, 3]
    assert [t.span_data.agent_name for t in turns] == ["Greeter", "Greeter", "Specialist"]
    assert [t.parent_id for t in turns] == [greeter_span.span_id] * 2 + [specialist_span.span_id]
    assert [t.span_data.response_id for t in turns] == ["r1", "r2", "r3"]
    assert [t.span_data.usage["total_tokens"] for t in turns] == [15, 25, 40]
    assert not any(t.span_data.interrupted or t.span_data.cut_off for t in turns)
    exported = turns[0].export()["span_data"]
    assert exported["type"] == "custom" and exported["data"]["sdk_span_type"] == "turn"
    assert exported["data"]["usage"]["input_tokens"] == 10


@pytest.mark.parametrize("ghost_open", [False, True], ids=["before", "during"])
async def test_usage_of_a_response_that_never_started_is_no_turns(
    recorder: SpanRecorder, ghost_open: bool
) -> None:
    """The model reports usage and ``turn_ended`` for a response whose ``turn_started``
    never came (before a turn, or while one is under way): that usage is on no turn span,
    and in the session's total."""
    ghost = [usage(1000, 0), RealtimeModelTurnEndedEvent(response_id="ghost")]
    if ghost_open:
        events = [
            RealtimeModelTurnStartedEvent(response_id="r1"),
            *ghost,
            usage(7, 3),
            RealtimeModelTurnEndedEvent(response_id="r1"),
        ]
    else:
        events = [*ghost, *turn("r1", usage(7, 3))]
    steps = [RealtimeStep(RealtimeModelSendUserInput, [*events, *turn("r2", usage(5, 1)), END])]
    greeter, _ = make_agents()
    await run_script(greeter, steps, trace=traced)
    turns = of_kind(recorder, "turn")
    assert [t.span_data.usage["input_tokens"] for t in turns] == [7, 5]
    assert [t.span_data.usage["total_tokens"] for t in turns] == [10, 6]
    session_usage = _only(recorder, "task").span_data.usage
    assert (session_usage["input_tokens"], session_usage["total_tokens"]) == (1012, 1016)


async def test_turn_usage_keeps_audio_and_cached_details(recorder: SpanRecorder) -> None:
    detailed = RealtimeModelUsageEvent(
        usage=Usage(requests=1, input_tokens=12, output_tokens=11, total_tokens=23),
        input_tokens_details=RealtimeModelInputTokensDetails(
            text_tokens=5,
            audio_tokens=7,
            cached_tokens=3,
            cached_tokens_details=RealtimeModelCachedTokensDetails(text_tokens=1, audio_tokens=2),
        ),
        output_tokens_details=RealtimeModelOutputTokensDetails(text_tokens=2, audio_tokens=9),
    )
    agent = RealtimeAgent(name="Solo")
    steps = [RealtimeStep(RealtimeModelSendUserInput, [*turn("r1", detailed), END])]
    await run_script(agent, steps, trace=traced)
    assert _only(recorder, "turn").span_data.usage == {
        "requests": 1,
        "input_tokens": 12,
        "output_tokens": 11,
        "total_tokens": 23,
        "input_text_tokens": 5,
        "input_audio_tokens": 7,
        "cached_input_tokens": 3,
        "cached_text_tokens": 1,
        "cached_audio_tokens": 2,
        "output_text_tokens": 2,
        "output_audio_tokens": 9,
    }


async def test_interrupted_turn_says_so(recorder: SpanRecorder) -> None:
    agent = RealtimeAgent(name="Solo")
    barge_in = RealtimeModelAudioInterruptedEvent(item_id="item", content_index=0)
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput,
            [*turn("r1", *audio("r1"), barge_in), *turn("r2", *audio("r2", "item2")), END],
        )
    ]
    await run_script(agent, steps, trace=traced)
    first, second = of_kind(recorder, "turn")
    assert first.span_data.interrupted is True
    assert second.span_data.interrupted is False
    assert first.export()["span_data"]["data"]["interrupted"] is True


async def test_turn_open_at_close_is_cut_off(recorder: SpanRecorder) -> None:
    agent = RealtimeAgent(name="Solo")
    model = ScriptedRealtimeModel(
        [
            RealtimeStep(
                RealtimeModelSendUserInput, [RealtimeModelTurnStartedEvent(response_id="r1")]
            )
        ]
    )
    session = traced(await RealtimeRunner(agent, model=model).run())
    async with session:
        await session.send_message("hi")
        async for event in session:
            if event.type == "agent_start":
                break
    turn_span = _only(recorder, "turn")
    assert turn_span.span_data.cut_off is True
    assert turn_span.ended_at <= _only(recorder, "agent").ended_at
    assert tree_problems(recorder) == []


# -- function spans -------------------------------------------------------------------------


async def test_function_span_keyed_by_call_with_input_and_output(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    await run_script(
        greeter, handoff_steps(), trace=lambda s: traced(s, include_sensitive_data=True)
    )
    function = _only(recorder, "function")
    assert function.span_data.name == "get_weather"
    assert function.span_data.input == '{"city": "Oslo"}'
    assert function.span_data.output == "sunny in Oslo"
    assert function.span_data.call_id == "c1"  # for processors that map it
    # and it exports exactly what the SDK's own function spans export
    plain = FunctionSpanData(name="get_weather", input='{"city": "Oslo"}', output="sunny in Oslo")
    assert function.span_data.export() == plain.export()
    assert function.parent_id == of_kind(recorder, "agent")[0].span_id
    assert function.error is None


async def test_failing_tool_records_its_error_on_its_own_span(recorder: SpanRecorder) -> None:
    @function_tool
    def forecast(city: str) -> str:
        """Forecast for a city."""
        raise ValueError(f"no forecast for {city}")

    agent = _one_tool_agent(forecast)
    with trace("app"), custom_span("request") as request:
        await run_script(
            agent,
            _single_call_steps("forecast", '{"city": "Atlantis"}'),
            trace=traced,
            until=ended("tool_end"),
        )
    function = _only(recorder, "function")
    assert function.error is not None
    assert function.error["data"]["tool_name"] == "forecast"
    assert request.error is None  # never on the caller's span
    assert all(s.error is None for s in recorder.spans if s is not function)
    assert tree_problems(recorder, external=[request.span_id]) == []


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_spans_a_tool_creates_nest_under_its_function_span(
    recorder: SpanRecorder, kind: str
) -> None:
    inside: list[Any] = []

    def work() -> str:
        with custom_span("inside the tool") as span:
            inside.append((span, get_current_span()))
        return "done"

    if kind == "sync":

        @function_tool(name_override="lookup")
        def lookup_sync() -> str:
            """Look something up (runs in a worker thread)."""
            return work()

        tool = lookup_sync
    else:

        @function_tool(name_override="lookup")
        async def lookup_async() -> str:
            """Look something up."""
            await asyncio.sleep(0)
            return work()

        tool = lookup_async

    await run_script(
        _one_tool_agent(tool), _single_call_steps("lookup"), trace=traced, until=ended("tool_end")
    )
    ((span, current),) = inside
    function = _only(recorder, "function")
    assert current is span
    assert span.parent_id == function.span_id
    assert span.trace_id == function.trace_id
    assert tree_problems(recorder) == []


async def test_tool_raising_out_of_the_handler_fails_its_span(recorder: SpanRecorder) -> None:
    @function_tool(failure_error_function=None)
    def explode() -> str:
        """Raises straight through the session."""
        raise RuntimeError("kaboom")

    agent = _one_tool_agent(explode)
    steps = [RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("explode", "c1")))]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(agent, model=model).run(), include_sensitive_data=True)
    with pytest.raises(Exception, match="kaboom"):
        await converse(session)
    function = _only(recorder, "function")
    assert "kaboom" in function.error["message"]
    assert recorder.open_spans == [] and tree_problems(recorder) == []


def _approval_agent() -> RealtimeAgent:
    @function_tool(needs_approval=True)
    def refund(amount: int) -> str:
        """Refund money."""
        return f"refunded {amount}"

    return _one_tool_agent(refund)


async def _run_approval(recorder: SpanRecorder, decide: str) -> None:
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("refund", "c1", '{"amount": 5}'))),
    ]
    if decide != "close":
        steps.append(RealtimeStep(RealtimeModelSendToolOutput, turn("r2")))
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(_approval_agent(), model=model).run())
    async with session:
        await session.send_message("refund me")
        async for event in session:
            if event.type == "tool_approval_required":
                if decide == "approve":
                    await session.approve_tool_call(event.call_id)
                elif decide == "reject":
                    await session.reject_tool_call(event.call_id)
                else:
                    break
            if event.type == "tool_end":
                break
    model.assert_complete()


async def test_approved_call_ends_normally(recorder: SpanRecorder) -> None:
    await _run_approval(recorder, "approve")
    function = _only(recorder, "function")
    assert function.error is None
    assert tree_problems(recorder) == []


async def test_rejected_call_ends_with_rejected_status(recorder: SpanRecorder) -> None:
    await _run_approval(recorder, "reject")
    error = _only(recorder, "function").error
    assert error["message"] == "Tool execution rejected"
    assert error["data"]["status"] == "rejected"


async def test_call_awaiting_approval_at_close_says_so(recorder: SpanRecorder) -> None:
    await _run_approval(recorder, "close")
    error = _only(recorder, "function").error
    assert error["data"]["status"] == "awaiting_approval"
    assert tree_problems(recorder) == []


async def test_input_guardrail_rejected_call_says_so(recorder: SpanRecorder) -> None:
    @tool_input_guardrail
    def no_big_refunds(data: Any) -> ToolGuardrailFunctionOutput:
        return ToolGuardrailFunctionOutput.reject_content("refunds over 100 need a human")

    @function_tool(tool_input_guardrails=[no_big_refunds])
    def refund(amount: int) -> str:
        """Refund money."""
        return f"refunded {amount}"

    await run_script(
        _one_tool_agent(refund),
        _single_call_steps("refund", '{"amount": 500}'),
        trace=lambda s: traced(s, include_sensitive_data=True),
        until=ended("tool_end"),
    )
    function = _only(recorder, "function")
    assert function.error["data"] == {
        "tool_name": "refund",
        "status": "guardrail_rejected",
        "stage": "input",
    }
    assert function.span_data.output == "refunds over 100 need a human"


@pytest.mark.skipif(
    not hasattr(RealtimeSession, "_run_tool_output_guardrails"),
    reason="realtime sessions run tool output guardrails from openai-agents 0.23",
)
async def test_output_guardrail_rejected_call_says_so(recorder: SpanRecorder) -> None:
    @tool_output_guardrail
    def no_secrets(data: Any) -> ToolGuardrailFunctionOutput:
        return ToolGuardrailFunctionOutput.reject_content("output withheld")

    @function_tool(tool_output_guardrails=[no_secrets])
    def secret() -> str:
        """Reveal a secret."""
        return "the vault code"

    await run_script(
        _one_tool_agent(secret), _single_call_steps("secret"), trace=traced, until=ended("tool_end")
    )
    assert _only(recorder, "function").error["data"]["stage"] == "output"


async def test_model_calling_an_unknown_tool_gets_a_failed_function_span(
    recorder: SpanRecorder,
) -> None:
    agent = RealtimeAgent(name="Solo")
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("teleport", "c1"))),
        RealtimeStep(RealtimeModelSendToolOutput),
    ]
    await run_script(agent, steps, trace=traced, until=ended("error"))
    function = _only(recorder, "function")
    assert function.span_data.name == "teleport"
    assert function.error["message"] == "Tool teleport not found"


# -- handoff spans --------------------------------------------------------------------------


async def test_handoff_span_from_call_to_new_agent(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced)
    handoff = _only(recorder, "handoff")
    greeter_span, specialist_span = of_kind(recorder, "agent")
    assert (handoff.span_data.from_agent, handoff.span_data.to_agent) == ("Greeter", "Specialist")
    assert handoff.parent_id == greeter_span.span_id
    assert handoff.error is None
    assert handoff.ended_at <= specialist_span.started_at
    assert tree_problems(recorder) == []


async def test_failed_handoff_errors_and_leaves_the_outgoing_agent(recorder: SpanRecorder) -> None:
    def refuse(_context: Any) -> None:
        raise PermissionError("specialist line closed")

    specialist = RealtimeAgent(name="Specialist")
    greeter = RealtimeAgent(
        name="Greeter", handoffs=[realtime_handoff(specialist, on_handoff=refuse)]
    )
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("transfer_to_specialist", "h1")))
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run(), include_sensitive_data=True)
    with pytest.raises(Exception, match="specialist line closed"):
        await converse(session)
    handoff = _only(recorder, "handoff")
    assert "specialist line closed" in handoff.error["message"]
    assert named(of_kind(recorder, "agent")) == ["Greeter"]  # no new agent span
    assert handoff.ended_at < _only(recorder, "agent").ended_at
    assert tree_problems(recorder) == []


async def test_session_closed_mid_handoff_cancels_the_handoff_span(recorder: SpanRecorder) -> None:
    started = asyncio.Event()

    async def slow_transfer(_context: Any) -> None:
        started.set()
        await asyncio.Event().wait()  # never completes: the close cancels it

    specialist = RealtimeAgent(name="Specialist")
    greeter = RealtimeAgent(
        name="Greeter", handoffs=[realtime_handoff(specialist, on_handoff=slow_transfer)]
    )
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("transfer_to_specialist", "h1")))
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run())
    await session.enter()
    await session.send_message("transfer me")
    await asyncio.wait_for(started.wait(), 2)
    await asyncio.create_task(session.close())
    handoff = _only(recorder, "handoff")
    assert handoff.error["data"]["status"] == "cancelled"
    assert named(of_kind(recorder, "agent")) == ["Greeter"]
    assert recorder.open_spans == [] and tree_problems(recorder) == []


# -- guardrail spans ------------------------------------------------------------------------


async def test_tripped_output_guardrail_gets_a_span_under_its_agent(recorder: SpanRecorder) -> None:
    async def no_refunds(_context: Any, _agent: Any, text: str) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="refund" in text)

    agent = RealtimeAgent(
        name="Clerk", output_guardrails=[OutputGuardrail(no_refunds, name="no_refunds")]
    )
    text = "Sure, I will process a full refund for you right away, " * 3
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput,
            [
                RealtimeModelTurnStartedEvent(response_id="r1"),
                RealtimeModelTranscriptDeltaEvent(item_id="i1", delta=text, response_id="r1"),
            ],
        ),
        RealtimeStep(RealtimeModelSendInterrupt, [RealtimeModelTurnEndedEvent(response_id="r1")]),
        RealtimeStep(RealtimeModelSendUserInput, [END]),
    ]
    seen, _ = await run_script(agent, steps, trace=traced)
    assert "guardrail_tripped" in [event.type for event in seen]
    guardrail = _only(recorder, "guardrail")
    assert guardrail.span_data.name == "no_refunds"
    assert guardrail.span_data.triggered is True
    assert guardrail.parent_id == _only(recorder, "agent").span_id
    assert tree_problems(recorder) == []


# -- errors ---------------------------------------------------------------------------------


async def test_model_errors_land_on_the_turn_else_the_session(recorder: SpanRecorder) -> None:
    agent = RealtimeAgent(name="Solo")
    during = RealtimeModelErrorEvent(error={"message": "rate limited", "code": "rate_limit"})
    between = RealtimeModelErrorEvent(error={"message": "buffer too small", "type": "invalid"})
    steps = [RealtimeStep(RealtimeModelSendUserInput, [*turn("r1", during), between, END])]
    await run_script(agent, steps, trace=traced)
    assert _only(recorder, "turn").error == {
        "message": "rate limited",
        "data": {"code": "rate_limit"},
    }
    assert _only(recorder, "task").error == {
        "message": "buffer too small",
        "data": {"type": "invalid"},
    }
    assert recorder.open_spans == []


# -- agent span end -------------------------------------------------------------------------


async def test_agent_span_outlives_its_last_open_tool_call(recorder: SpanRecorder) -> None:
    release = asyncio.Event()

    @function_tool
    async def slow_lookup() -> str:
        """Takes a while."""
        await release.wait()
        return "found it"

    specialist = RealtimeAgent(name="Specialist")
    greeter = RealtimeAgent(name="Greeter", tools=[slow_lookup])
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("slow_lookup", "c1"))),
        RealtimeStep(RealtimeModelSendSessionUpdate),
        RealtimeStep(RealtimeModelSendToolOutput, turn("r2")),
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run())
    async with session:
        await session.send_message("look it up")
        async for event in session:
            if event.type == "tool_start":
                await session.update_agent(specialist)
                release.set()
            if event.type == "tool_end":
                break
    model.assert_complete()
    greeter_span, specialist_span = of_kind(recorder, "agent")
    function = _only(recorder, "function")
    assert function.parent_id == greeter_span.span_id
    assert specialist_span.started_at < function.ended_at <= greeter_span.ended_at
    assert of_kind(recorder, "turn")[1].parent_id == specialist_span.span_id
    assert tree_problems(recorder) == []


# -- sensitive data -------------------------------------------------------------------------


async def test_sensitive_data_stays_out_when_not_allowed(recorder: SpanRecorder) -> None:
    @function_tool(failure_error_function=None)
    def leak(secret: str) -> str:
        """Fails with the secret in its message."""
        raise ValueError(f"bad secret {secret}")

    greeter, _ = make_agents()
    await run_script(
        greeter, handoff_steps(), trace=lambda s: traced(s, include_sensitive_data=False)
    )
    function = _only(recorder, "function")
    assert function.span_data.input is None and function.span_data.output is None

    recorder.clear()
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput, turn("r1", call("leak", "c1", '{"secret": "hunter2"}'))
        )
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(
        await RealtimeRunner(_one_tool_agent(leak), model=model).run(), include_sensitive_data=False
    )
    with pytest.raises(ValueError, match="hunter2"):
        await converse(session)
    failed = _only(recorder, "function")
    assert failed.error["message"] == "ValueError"
    assert "hunter2" not in repr([s.export() for s in recorder.spans])


async def test_sensitive_data_default_follows_the_sdk_environment_variable(
    recorder: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    greeter, _ = make_agents()
    monkeypatch.setenv("OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA", "false")
    await run_script(greeter, handoff_steps(), trace=traced)
    assert _only(recorder, "function").span_data.input is None

    recorder.clear()
    monkeypatch.setenv("OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA", "true")
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced)
    assert _only(recorder, "function").span_data.input == '{"city": "Oslo"}'


# -- the server trace -----------------------------------------------------------------------

_CREATED = RealtimeModelRawServerEvent(
    data={"type": "session.created", "session": {"id": "sess_42", "type": "realtime"}}
)


async def test_correlation_shares_group_id_and_records_server_session_id(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    _, model = await run_script(
        greeter,
        handoff_steps(),
        trace=lambda s: traced(s, correlate_server_trace=True),
        connect_events=[_CREATED],
    )
    (opened,) = recorder.traces
    sent_tracing = model.connect_calls[0]["initial_model_settings"]["tracing"]
    assert opened.group_id is not None and opened.group_id.startswith("group_")
    assert sent_tracing == {"group_id": opened.group_id}
    assert opened.metadata == {"realtime_session_id": "sess_42"}


async def test_correlation_keeps_the_users_server_tracing_settings(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    tracing = {"workflow_name": "Phone line", "group_id": "grp_user", "metadata": {"tier": "gold"}}
    _, model = await run_script(
        greeter,
        handoff_steps(),
        trace=lambda s: traced(s, correlate_server_trace=True),
        connect_events=[_CREATED],
        model_config={"initial_model_settings": {"tracing": tracing}},
    )
    (opened,) = recorder.traces
    assert (opened.name, opened.group_id) == ("Phone line", "grp_user")
    assert opened.metadata == {"tier": "gold", "realtime_session_id": "sess_42"}
    assert model.connect_calls[0]["initial_model_settings"]["tracing"] == tracing
    assert tracing == {
        "workflow_name": "Phone line",
        "group_id": "grp_user",
        "metadata": {"tier": "gold"},
    }


async def test_correlation_inside_a_callers_trace_annotates_the_session_span(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    with trace("app") as app:
        _, model = await run_script(
            greeter,
            handoff_steps(),
            trace=lambda s: traced(s, correlate_server_trace=True),
            connect_events=[_CREATED],
        )
    sent_group = model.connect_calls[0]["initial_model_settings"]["tracing"]["group_id"]
    assert app.group_id is None and app.metadata is None  # the caller's trace is untouched
    session_span = _only(recorder, "task")
    assert session_span.span_data.metadata == {
        "group_id": sent_group,
        "realtime_session_id": "sess_42",
    }


async def test_without_correlation_the_model_is_sent_exactly_what_it_would_be(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    _, plain = await run_script(greeter, handoff_steps(), connect_events=[_CREATED])
    greeter, _ = make_agents()
    _, traced_model = await run_script(
        greeter, handoff_steps(), trace=traced, connect_events=[_CREATED]
    )
    plain_settings = plain.connect_calls[0]["initial_model_settings"]
    traced_settings = traced_model.connect_calls[0]["initial_model_settings"]
    assert "tracing" not in traced_settings
    assert set(traced_settings) == set(plain_settings)
    assert recorder.traces[0].metadata is None
