"""Agent spans on real sessions: the rules of DESIGN.md, one test (or more) each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import FunctionTool, function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff
from agents.realtime.model_events import (
    RealtimeModelExceptionEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.model_inputs import (
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import custom_span, get_current_span, get_current_trace, trace

from realtime_spans.adapters import SpanRecorder, traced

from .support import (
    END,
    call,
    converse,
    event_signature,
    handoff_steps,
    make_agents,
    named,
    of_kind,
    run_script,
    tree_problems,
    turn,
    usage,
)


def _agent_spans(recorder: SpanRecorder) -> list[Any]:
    return of_kind(recorder, "agent")


async def test_starting_agent_span_carries_tools_and_handoffs_as_sent(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    steps = [RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r1"), END])]
    _, model = await run_script(greeter, steps, trace=traced)

    (agent,) = _agent_spans(recorder)
    sent = model.connect_calls[0]["initial_model_settings"]
    assert agent.span_data.name == "Greeter"
    assert agent.span_data.tools == [tool.name for tool in sent["tools"]] == ["get_weather"]
    assert agent.span_data.handoffs == [h.agent_name for h in sent["handoffs"]] == ["Specialist"]
    assert tree_problems(recorder) == []


async def test_agent_span_respects_is_enabled_and_initial_settings_resolved_once(
    recorder: SpanRecorder,
) -> None:
    checks: list[str] = []

    def enabled_once(name: str, verdict: bool) -> Any:
        def check(_context: Any, _agent: Any) -> bool:
            checks.append(name)
            return verdict

        return check

    @function_tool(is_enabled=enabled_once("hidden_tool", False))
    def hidden_tool() -> str:
        """Never offered."""
        return "no"

    @function_tool(is_enabled=enabled_once("shown_tool", True))
    def shown_tool() -> str:
        """Offered."""
        return "yes"

    @function_tool
    def override_tool() -> str:
        """Given only through initial_model_settings."""
        return "override"

    billing = RealtimeAgent(name="Billing")
    hidden_desk = RealtimeAgent(name="HiddenDesk")
    agent = RealtimeAgent(
        name="Router",
        tools=[hidden_tool, shown_tool],
        handoffs=[billing, realtime_handoff(hidden_desk, is_enabled=False)],
    )

    async def run(trace_it: bool) -> tuple[Any, list[str]]:
        checks.clear()
        steps = [RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r1"), END])]
        model = ScriptedRealtimeModel(steps)
        session = await RealtimeRunner(agent, model=model).run()
        if trace_it:
            session = traced(session)
        await converse(session)
        return model.connect_calls[0]["initial_model_settings"], list(checks)

    plain_sent, plain_checks = await run(False)
    traced_sent, traced_checks = await run(True)
    assert traced_checks == plain_checks  # the library resolved nothing on its own

    (span,) = _agent_spans(recorder)
    assert span.span_data.tools == ["shown_tool"] == [t.name for t in traced_sent["tools"]]
    assert span.span_data.handoffs == ["Billing"]
    assert [t.name for t in plain_sent["tools"]] == ["shown_tool"]

    # initial_model_settings replaces the agent's tools for the first session.update only
    recorder.clear()
    steps = [RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r1"), END])]
    model = ScriptedRealtimeModel(steps)
    session = await RealtimeRunner(agent, model=model).run(
        model_config={"initial_model_settings": {"tools": [override_tool]}}
    )
    await converse(traced(session))
    (span,) = _agent_spans(recorder)
    sent_tools = model.connect_calls[0]["initial_model_settings"]["tools"]
    assert span.span_data.tools == [t.name for t in sent_tools] == ["override_tool"]


async def test_mcp_tools_appear_as_sent(recorder: SpanRecorder) -> None:
    from .mcp_server import InProcessMCPServer

    server = InProcessMCPServer(["lookup_account", "close_account"])
    agent = RealtimeAgent(name="Accounts", mcp_servers=[server])
    steps = [RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r1"), END])]
    _, model = await run_script(agent, steps, trace=traced)
    (span,) = _agent_spans(recorder)
    sent = model.connect_calls[0]["initial_model_settings"]["tools"]
    assert all(isinstance(tool, FunctionTool) for tool in sent)
    assert span.span_data.tools == [tool.name for tool in sent]
    assert sorted(span.span_data.tools) == ["close_account", "lookup_account"]


async def test_handoff_in_background_task_makes_sibling_agent_spans(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced)

    session_span = of_kind(recorder, "task")[0]
    greeter_span, specialist_span = _agent_spans(recorder)
    assert named([greeter_span, specialist_span]) == ["Greeter", "Specialist"]
    assert greeter_span.parent_id == session_span.span_id
    assert specialist_span.parent_id == session_span.span_id  # sibling, never a child
    assert specialist_span.span_data.tools == []
    turns = of_kind(recorder, "turn")
    assert [t.parent_id for t in turns] == [greeter_span.span_id] * 2 + [specialist_span.span_id]
    assert tree_problems(recorder) == []


async def test_update_agent_switches_agent_spans_like_a_handoff(recorder: SpanRecorder) -> None:
    greeter, specialist = make_agents()
    steps = [
        RealtimeStep(expect=RealtimeModelSendUserInput, emit=turn("r1")),
        RealtimeStep(expect=RealtimeModelSendSessionUpdate),
        RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r2"), END]),
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run())
    async with session:
        await session.send_message("first")
        async for event in session:
            if event.type == "agent_end":
                break
        await session.update_agent(specialist)
        await session.send_message("second")
        async for _ in session:
            pass
    model.assert_complete()

    greeter_span, specialist_span = _agent_spans(recorder)
    assert named([greeter_span, specialist_span]) == ["Greeter", "Specialist"]
    assert greeter_span.parent_id == specialist_span.parent_id
    assert greeter_span.ended_at is not None
    turn_1, turn_2 = of_kind(recorder, "turn")
    assert turn_1.parent_id == greeter_span.span_id
    assert turn_2.parent_id == specialist_span.span_id
    assert tree_problems(recorder) == []


async def test_run_config_tracing_disabled_emits_nothing(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced, config={"tracing_disabled": True})
    assert recorder.started == [] and recorder.traces == []


async def test_globally_disabled_tracing_emits_nothing(recorder: SpanRecorder) -> None:
    from agents.tracing import set_tracing_disabled

    greeter, _ = make_agents()
    set_tracing_disabled(True)
    await run_script(greeter, handoff_steps(), trace=traced)
    assert recorder.started == [] and recorder.traces == []


async def test_disabled_by_environment_emits_nothing(
    recorder: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.tracing import get_trace_provider, set_trace_provider
    from agents.tracing.provider import DefaultTraceProvider

    previous = get_trace_provider()
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    provider = DefaultTraceProvider()
    provider.register_processor(recorder)
    set_trace_provider(provider)
    try:
        greeter, _ = make_agents()
        await run_script(greeter, handoff_steps(), trace=traced)
    finally:
        set_trace_provider(previous)
    assert recorder.started == [] and recorder.traces == []


async def test_no_active_trace_opens_one_that_is_never_current(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    seen_current: list[Any] = []

    async def look(_session: Any, _event: Any) -> None:
        seen_current.append((get_current_trace(), get_current_span()))

    model = ScriptedRealtimeModel(handoff_steps())
    session = traced(await RealtimeRunner(greeter, model=model).run(), workflow_name="Hotline")
    await converse(session, during=look)

    (opened,) = recorder.traces
    assert opened.name == "Hotline"
    assert recorder.ended_trace_ids == [opened.trace_id]
    assert set(seen_current) == {(None, None)}
    assert get_current_trace() is None and get_current_span() is None
    assert {span.trace_id for span in recorder.started} == {opened.trace_id}


async def test_workflow_name_defaults_to_model_tracing_settings(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    steps = [RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r1"), END])]
    await run_script(
        greeter,
        steps,
        trace=traced,
        model_config={"initial_model_settings": {"tracing": {"workflow_name": "From settings"}}},
    )
    await run_script(greeter, [RealtimeStep(RealtimeModelSendUserInput, [END])], trace=traced)
    assert [t.name for t in recorder.traces] == ["From settings", "Realtime session"]


async def test_active_trace_is_joined_under_the_entering_tasks_span(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    with trace("Caller's trace") as outer, custom_span("caller step") as step:
        await run_script(greeter, handoff_steps(), trace=traced)
        assert get_current_span() is step and get_current_trace() is outer
    (only_trace,) = recorder.traces
    assert only_trace is outer
    session_span = of_kind(recorder, "task")[0]
    assert session_span.parent_id == step.span_id
    assert {span.trace_id for span in recorder.started} == {outer.trace_id}
    assert tree_problems(recorder) == []


async def test_entry_failure_reaches_caller_unchanged_and_closes_spans(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    refused = ConnectionRefusedError("no realtime server")
    model = ScriptedRealtimeModel(connect_error=refused)
    session = traced(await RealtimeRunner(greeter, model=model).run())
    with pytest.raises(ConnectionRefusedError) as caught:
        async with session:
            raise AssertionError("entered a session whose connect failed")
    assert caught.value is refused
    assert recorder.open_spans == []
    session_span = of_kind(recorder, "task")[0]
    agent_span = of_kind(recorder, "agent")[0]
    for span in (session_span, agent_span):  # every span opened carries the error
        assert "no realtime server" in span.error["message"]
    assert len(recorder.ended_trace_ids) == 1
    assert tree_problems(recorder) == []


async def test_entry_failure_from_bad_settings_closes_spans(recorder: SpanRecorder) -> None:
    @function_tool(name_override="transfer_to_specialist")
    def clash() -> str:
        """Collides with the handoff tool name."""
        return ""

    greeter, _ = make_agents(tools=[clash])
    model = ScriptedRealtimeModel()
    session = traced(await RealtimeRunner(greeter, model=model).run())
    with pytest.raises(Exception) as caught:
        await session.__aenter__()
    assert model.connect_calls == ()  # failed before connecting
    assert recorder.open_spans == []
    (session_span,) = of_kind(recorder, "task")
    assert type(caught.value).__name__ in session_span.error["message"]
    assert of_kind(recorder, "agent") == []  # settings failed before any agent was in place
    assert tree_problems(recorder) == []


async def test_cleanup_by_aexit(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    with trace("outer") as outer:
        before = (get_current_trace(), get_current_span())
        await run_script(greeter, handoff_steps(), trace=traced)
        assert (get_current_trace(), get_current_span()) == before
    assert outer is before[0]
    assert recorder.open_spans == [] and tree_problems(recorder) == []


async def test_cleanup_by_close_from_another_task(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel(handoff_steps(end=False))
    session = traced(await RealtimeRunner(greeter, model=model).run())
    await session.enter()
    await session.send_message("hello")
    seen = 0
    async for event in session:
        seen += 1
        if event.type == "agent_end" and getattr(event.agent, "name", "") == "Specialist":
            break
    closer = asyncio.create_task(session.close())
    await closer
    await session.close()  # closing twice is harmless
    assert seen > 0
    assert recorder.open_spans == []
    assert [s.span_data.name for s in of_kind(recorder, "agent")] == ["Greeter", "Specialist"]
    assert tree_problems(recorder) == []


async def test_cleanup_by_stored_exception_while_iterating(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    broken = RuntimeError("socket reset by peer")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                RealtimeModelTurnStartedEvent(response_id="r1"),
                RealtimeModelExceptionEvent(exception=broken, context="listener"),
            ],
        )
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run())
    with pytest.raises(RuntimeError) as caught:
        await converse(session)
    assert caught.value is broken
    assert recorder.open_spans == []
    (session_span,) = of_kind(recorder, "task")
    assert "socket reset by peer" in session_span.error["message"]
    (cut,) = of_kind(recorder, "turn")
    assert cut.span_data.cut_off is True
    assert tree_problems(recorder) == []


async def test_user_spans_after_handoff_nest_under_users_own_span(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    made: list[Any] = []

    async def user_work(_session: Any, event: Any) -> None:
        if event.type == "handoff":
            with custom_span("user work after handoff") as span:
                made.append((span, get_current_span()))

    with trace("app") as app, custom_span("request") as request:
        model = ScriptedRealtimeModel(handoff_steps())
        session = traced(await RealtimeRunner(greeter, model=model).run())
        await converse(session, during=user_work)
    ((user_span, current),) = made
    assert current is user_span
    assert user_span.parent_id == request.span_id
    assert user_span.trace_id == app.trace_id
    assert tree_problems(recorder) == []


async def test_users_own_trace_records_when_session_tracing_is_disabled(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    inner: list[Any] = []

    async def user_trace(_session: Any, event: Any) -> None:
        if event.type == "handoff":
            with trace("user trace inside") as t, custom_span("inside") as s:
                inner.append((t, s))

    model = ScriptedRealtimeModel(handoff_steps())
    session = traced(
        await RealtimeRunner(greeter, model=model, config={"tracing_disabled": True}).run()
    )
    await converse(session, during=user_trace)
    ((user_t, user_s),) = inner
    assert [t.trace_id for t in recorder.traces] == [user_t.trace_id]
    assert [s.span_id for s in recorder.spans] == [user_s.span_id]


async def test_fifty_concurrent_sessions_never_cross(recorder: SpanRecorder) -> None:
    async def one(index: int) -> None:
        greeter, _ = make_agents()
        await run_script(
            greeter, handoff_steps(), trace=lambda s: traced(s, workflow_name=f"s{index}")
        )

    await asyncio.gather(*(one(i) for i in range(50)))
    assert len(recorder.traces) == 50
    assert tree_problems(recorder) == []
    by_trace: dict[str, list[Any]] = {}
    for span in recorder.spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    for spans in by_trace.values():
        kinds = sorted(span.span_data.type for span in spans)
        assert kinds == sorted(
            ["task", "agent", "agent", "turn", "turn", "turn", "function", "handoff"]
            + ["generation"] * 3
        )
        ids = {span.span_id for span in spans}
        assert all(span.parent_id is None or span.parent_id in ids for span in spans)


async def test_iterated_events_are_identical_with_and_without_tracing(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    plain, plain_model = await run_script(greeter, handoff_steps())
    greeter, _ = make_agents()
    seen, traced_model = await run_script(greeter, handoff_steps(), trace=traced)
    assert event_signature(seen) == event_signature(plain)
    assert len(seen) > 20
    assert [type(e) for e in traced_model.sent_events] == [type(e) for e in plain_model.sent_events]


async def test_traced_twice_is_harmless_and_keeps_identity(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel([RealtimeStep(RealtimeModelSendUserInput, [END])])
    session = await RealtimeRunner(greeter, model=model).run()
    assert traced(session) is session
    assert traced(session, workflow_name="ignored") is session
    assert session.model is model
    await converse(session)
    assert len(recorder.traces) == 1 and len(of_kind(recorder, "task")) == 1


async def test_parallel_calls_of_one_tool_get_their_own_spans(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=turn(
                "r1",
                call("get_weather", "a", '{"city": "Oslo"}'),
                call("get_weather", "b", '{"city": "Rome"}'),
                usage(1, 1),
            ),
        ),
        RealtimeStep(expect=RealtimeModelSendToolOutput),
        RealtimeStep(expect=RealtimeModelSendToolOutput),
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run(), include_sensitive_data=True)
    async with session:
        await session.send_message("weather twice")
        ended = 0
        async for event in session:
            ended += event.type == "tool_end"
            if ended == 2:
                break
    model.assert_complete()
    functions = of_kind(recorder, "function")
    assert sorted((f.span_data.input, f.span_data.output) for f in functions) == [
        ('{"city": "Oslo"}', "sunny in Oslo"),
        ('{"city": "Rome"}', "sunny in Rome"),
    ]
    assert all(f.error is None for f in functions)
    assert tree_problems(recorder) == []
