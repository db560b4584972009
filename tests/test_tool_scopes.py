"""A tool's function span stays its own while the session works on behalf of other calls.

The session does work for one call from inside another call's task: a tool answers a
pending approval (``reject_tool_call`` sends the rejected call's output from the
answering tool's task; ``approve_tool_call`` runs the approved call inline when
``async_tool_calls=False``), switches the agent, or sends the caller's words itself. None
of that may take the answering tool's function span away from it, nor attribute what
happens to the wrong call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from agents import GuardrailFunctionOutput, RunContextWrapper, function_tool, output_guardrail
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff
from agents.realtime.model_events import RealtimeModelTranscriptDeltaEvent
from agents.realtime.model_inputs import (
    RealtimeModelSendEvent,
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tool_context import ToolContext
from agents.tracing import Span, custom_span, get_current_span

from realtime_spans.adapters import SpanRecorder, traced

from .support import END, call, converse, event_signature, of_kind, only, tree_problems, turn

ASYNC_TOOL_CALLS = pytest.mark.parametrize(
    "async_tool_calls", [True, False], ids=["tasks", "inline"]
)


class Seen:
    """What the tools saw as their current span, and the spans they made themselves."""

    def __init__(self) -> None:
        self.session: RealtimeSession | None = None
        self.current: dict[str, list[Span[Any] | None]] = {}
        self.made: dict[str, list[Span[Any]]] = {}

    def look(self, where: str) -> None:
        self.current.setdefault(where, []).append(get_current_span())

    def work(self, where: str) -> None:
        with custom_span(f"work in {where}") as span:
            self.made.setdefault(where, []).append(span)


def _function(recorder: SpanRecorder, name: str) -> Span[Any]:
    (span,) = [s for s in of_kind(recorder, "function") if s.span_data.name == name]
    return span


def _answering_agent(seen: Seen, *, extra: list[Any] | None = None) -> RealtimeAgent:
    @function_tool(needs_approval=True)
    async def refund(ctx: ToolContext[Any], amount: int) -> str:
        """Refund money; a human approves each call first."""
        seen.look("refund")
        seen.work("refund")
        return f"refunded {amount}"

    @function_tool
    async def answer_pending(ctx: ToolContext[Any], call_id: str, verdict: str) -> str:
        """The caller's spoken yes or no to a refund waiting for approval."""
        session = seen.session
        assert session is not None
        seen.look("answer_pending")
        if verdict == "approve":
            await session.approve_tool_call(call_id)
        else:
            await session.reject_tool_call(call_id)
        seen.look("answer_pending")
        seen.work("answer_pending")
        return f"{verdict}d {call_id}"

    return RealtimeAgent(
        name="Clerk", instructions="refunds", tools=[refund, answer_pending, *(extra or ())]
    )


async def _answer(
    recorder: SpanRecorder, verdict: str, async_tool_calls: bool
) -> tuple[Seen, ScriptedRealtimeModel]:
    """The model asks for a refund (c1, needs approval); the caller says yes or no, and the
    model answers with a call to ``answer_pending`` (c2), which settles c1."""
    seen = Seen()
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("refund", "c1", '{"amount": 5}'))),
        RealtimeStep(
            RealtimeModelSendUserInput,
            turn(
                "r2", call("answer_pending", "c2", f'{{"call_id": "c1", "verdict": "{verdict}"}}')
            ),
        ),
    ]
    model = ScriptedRealtimeModel(steps, strict=False)
    session = await RealtimeRunner(_answering_agent(seen), model=model).run(
        model_config={"async_tool_calls": async_tool_calls}
    )
    seen.session = traced(session, include_sensitive_data=True)
    ends: list[str] = []

    async def during(session: RealtimeSession, event: Any) -> None:
        if event.type == "tool_approval_required":
            await session.send_message(f"{verdict} it")
        if event.type == "tool_end":
            ends.append(event.tool.name)

    await converse(
        seen.session, during=during, until=lambda _: sorted(ends) == ["answer_pending", "refund"]
    )
    model.assert_complete()
    return seen, model


def _outputs(model: ScriptedRealtimeModel) -> list[str]:
    return [
        sent.tool_call.call_id
        for sent in model.sent_events
        if isinstance(sent, RealtimeModelSendToolOutput)
    ]


@ASYNC_TOOL_CALLS
@pytest.mark.parametrize("verdict", ["approve", "reject"])
async def test_a_tool_answering_a_pending_call_keeps_its_own_span(
    recorder: SpanRecorder, verdict: str, async_tool_calls: bool
) -> None:
    seen, model = await _answer(recorder, verdict, async_tool_calls)
    assert sorted(_outputs(model)) == ["c1", "c2"]
    answering = _function(recorder, "answer_pending")
    refund = _function(recorder, "refund")
    # before and after settling c1, the answering tool's current span is its own
    assert [span and span.span_id for span in seen.current["answer_pending"]] == [
        answering.span_id,
        answering.span_id,
    ]
    assert [s.parent_id for s in seen.made["answer_pending"]] == [answering.span_id]
    assert answering.error is None
    assert answering.span_data.output == f"{verdict}d c1"
    if verdict == "approve":
        # the approved call runs with its own span (inline: nested in the answering task)
        assert [span and span.span_id for span in seen.current["refund"]] == [refund.span_id]
        assert [s.parent_id for s in seen.made["refund"]] == [refund.span_id]
        assert refund.error is None and refund.span_data.output == "refunded 5"
    else:
        assert "refund" not in seen.current
        assert refund.error is not None and refund.error["data"]["status"] == "rejected"
    assert recorder.open_spans == [] and tree_problems(recorder) == []


@ASYNC_TOOL_CALLS
async def test_a_tool_that_switches_the_agent_keeps_its_span_and_agent(
    recorder: SpanRecorder, async_tool_calls: bool
) -> None:
    seen = Seen()
    specialist = RealtimeAgent(name="Specialist", instructions="plan trips")

    @function_tool
    async def transfer_quietly(ctx: ToolContext[Any]) -> str:
        """Switch the agent with update_agent(), from inside the tool."""
        assert seen.session is not None
        seen.look("transfer_quietly")
        await seen.session.update_agent(specialist)
        seen.look("transfer_quietly")
        seen.work("transfer_quietly")
        return "switched"

    greeter = RealtimeAgent(name="Greeter", instructions="greet", tools=[transfer_quietly])
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("transfer_quietly", "c1"))),
        RealtimeStep(RealtimeModelSendSessionUpdate),
        RealtimeStep(RealtimeModelSendToolOutput, [*turn("r2"), END]),
    ]
    model = ScriptedRealtimeModel(steps)
    session = await RealtimeRunner(greeter, model=model).run(
        model_config={"async_tool_calls": async_tool_calls}
    )
    seen.session = traced(session)
    await converse(seen.session)
    model.assert_complete()

    tool = _function(recorder, "transfer_quietly")
    greeter_span, specialist_span = of_kind(recorder, "agent")
    assert [greeter_span.span_data.name, specialist_span.span_data.name] == [
        "Greeter",
        "Specialist",
    ]
    assert [span and span.span_id for span in seen.current["transfer_quietly"]] == [
        tool.span_id,
        tool.span_id,
    ]
    assert [s.parent_id for s in seen.made["transfer_quietly"]] == [tool.span_id]
    assert tool.parent_id == greeter_span.span_id and tool.error is None
    turn_2 = of_kind(recorder, "turn")[1]
    assert turn_2.parent_id == specialist_span.span_id
    assert recorder.open_spans == [] and tree_problems(recorder) == []


@ASYNC_TOOL_CALLS
async def test_update_agent_inside_a_handoff_callback_is_not_the_handoff(
    recorder: SpanRecorder, async_tool_calls: bool
) -> None:
    """The handoff's span names the agent the handoff put in place and ends only then;
    the agent a callback switched to on the way is a switch of its own."""
    holder = Seen()
    detour = RealtimeAgent(name="Detour", instructions="detour")
    specialist = RealtimeAgent(name="Specialist", instructions="plan trips")

    async def on_handoff(ctx: RunContextWrapper[Any]) -> None:
        assert holder.session is not None
        await holder.session.update_agent(detour)

    greeter = RealtimeAgent(
        name="Greeter",
        instructions="greet",
        handoffs=[realtime_handoff(specialist, on_handoff=on_handoff)],
    )
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("transfer_to_specialist", "c1"))),
        RealtimeStep(RealtimeModelSendSessionUpdate),  # update_agent(detour)
        RealtimeStep(RealtimeModelSendSessionUpdate),  # the handoff's own
        RealtimeStep(RealtimeModelSendToolOutput, [*turn("r2"), END]),
    ]
    model = ScriptedRealtimeModel(steps)
    session = await RealtimeRunner(greeter, model=model).run(
        model_config={"async_tool_calls": async_tool_calls}
    )
    holder.session = traced(session)
    events = await converse(holder.session)
    model.assert_complete()
    assert [(e.from_agent.name, e.to_agent.name) for e in events if e.type == "handoff"] == [
        ("Greeter", "Specialist")
    ]

    agents = of_kind(recorder, "agent")
    assert [a.span_data.name for a in agents] == ["Greeter", "Detour", "Specialist"]
    (handoff,) = of_kind(recorder, "handoff")
    assert (handoff.span_data.from_agent, handoff.span_data.to_agent) == ("Greeter", "Specialist")
    assert handoff.error is None
    assert handoff.ended_at > agents[1].started_at  # not ended by the detour
    assert of_kind(recorder, "turn")[1].parent_id == agents[2].span_id
    assert recorder.open_spans == [] and tree_problems(recorder) == []


@ASYNC_TOOL_CALLS
async def test_a_tool_that_speaks_for_the_caller_keeps_its_span(
    recorder: SpanRecorder, async_tool_calls: bool
) -> None:
    """A tool sends a message itself; the model's answer calls another tool, whose span is
    its own, and errors of that answer are not pinned on the speaking tool."""
    seen = Seen()

    @function_tool
    async def lookup(ctx: ToolContext[Any], query: str) -> str:
        """Look something up."""
        seen.look("lookup")
        seen.work("lookup")
        return f"found {query}"

    @function_tool
    async def speak(ctx: ToolContext[Any]) -> str:
        """Say something to the model on the caller's behalf."""
        assert seen.session is not None
        seen.look("speak")
        await seen.session.send_message("the caller says more")
        seen.look("speak")
        seen.work("speak")
        return "spoken"

    agent = RealtimeAgent(name="Greeter", instructions="greet", tools=[speak, lookup])
    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("speak", "c1"))),
        RealtimeStep(
            RealtimeModelSendUserInput, turn("r2", call("lookup", "c2", '{"query": "q"}'))
        ),
    ]
    model = ScriptedRealtimeModel(steps, strict=False)
    session = await RealtimeRunner(agent, model=model).run(
        model_config={"async_tool_calls": async_tool_calls}
    )
    seen.session = traced(session, include_sensitive_data=True)
    ends: list[str] = []

    async def during(session: RealtimeSession, event: Any) -> None:
        if event.type == "tool_end":
            ends.append(event.tool.name)

    await converse(seen.session, during=during, until=lambda _: sorted(ends) == ["lookup", "speak"])
    model.assert_complete()

    speak_span, lookup_span = _function(recorder, "speak"), _function(recorder, "lookup")
    assert [span and span.span_id for span in seen.current["speak"]] == [speak_span.span_id] * 2
    assert [span and span.span_id for span in seen.current["lookup"]] == [lookup_span.span_id]
    assert [s.parent_id for s in seen.made["speak"]] == [speak_span.span_id]
    assert [s.parent_id for s in seen.made["lookup"]] == [lookup_span.span_id]
    assert speak_span.error is None and lookup_span.error is None
    assert (speak_span.span_data.output, lookup_span.span_data.output) == ("spoken", "found q")
    assert recorder.open_spans == [] and tree_problems(recorder) == []


#: Output guardrails run on every 20 characters of transcript.
_DEBOUNCE: dict[str, Any] = {"guardrails_settings": {"debounce_text_length": 20}}


def _user_input(text: str) -> Callable[[RealtimeModelSendEvent], bool]:
    return lambda sent: isinstance(sent, RealtimeModelSendUserInput) and sent.user_input == text


def _output_of(call_id: str) -> Callable[[RealtimeModelSendEvent], bool]:
    return lambda sent: (
        isinstance(sent, RealtimeModelSendToolOutput) and sent.tool_call.call_id == call_id
    )


def _guarded(seen: Seen, *tools: Any) -> RealtimeAgent:
    @output_guardrail
    def watch(ctx: RunContextWrapper[Any], agent: Any, text: str) -> GuardrailFunctionOutput:
        seen.look("guardrail")
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    return RealtimeAgent(
        name="Clerk", instructions="refunds", tools=list(tools), output_guardrails=[watch]
    )


def _said(response_id: str) -> RealtimeModelTranscriptDeltaEvent:
    """A transcript delta long enough to run the output guardrails (debounce: 20)."""
    return RealtimeModelTranscriptDeltaEvent(
        item_id=f"item_{response_id}", delta="all done, anything else?", response_id=response_id
    )


@ASYNC_TOOL_CALLS
@pytest.mark.parametrize("tracing", [True, False], ids=["traced", "untraced"])
@pytest.mark.parametrize("how", ["send_message", "reject_tool_call", "approve_tool_call"])
async def test_what_a_tools_session_call_starts_does_not_inherit_its_span(
    recorder: SpanRecorder, how: str, tracing: bool, async_tool_calls: bool
) -> None:
    """A tool sends through the session (the caller's words, another call's rejection): the
    model's answer may be delivered by a task the transport starts right then (the scripted
    model does). That task, and the output guardrails it runs, see the caller's context, as
    they do untraced, never the tool's span."""
    seen = Seen()

    @function_tool(needs_approval=True)
    async def refund(ctx: ToolContext[Any], amount: int) -> str:
        """Refund money; a human approves each call first."""
        return f"refunded {amount}"

    @function_tool
    async def act(ctx: ToolContext[Any]) -> str:
        """Say more for the caller, or answer the pending refund."""
        assert seen.session is not None
        seen.look("act")
        if how == "send_message":
            await seen.session.send_message("the caller says more")
        elif how == "reject_tool_call":
            await seen.session.reject_tool_call("c1")
        else:
            await seen.session.approve_tool_call("c1")
        seen.look("act")
        return "acted"

    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("refund", "c1", '{"amount": 5}'))),
        RealtimeStep(RealtimeModelSendUserInput, turn("r2", call("act", "c2"))),
        RealtimeStep(
            _user_input("the caller says more") if how == "send_message" else _output_of("c1"),
            turn("r3", _said("r3")),
        ),
    ]
    model = ScriptedRealtimeModel(steps, strict=False)
    session = await RealtimeRunner(_guarded(seen, refund, act), model=model, config=_DEBOUNCE).run(
        model_config={"async_tool_calls": async_tool_calls}
    )
    seen.session = traced(session) if tracing else session
    turns_ended = 0

    async def during(session: RealtimeSession, event: Any) -> None:
        nonlocal turns_ended
        if event.type == "tool_approval_required":
            await session.send_message("go on")
        if event.type == "agent_end":
            turns_ended += 1
            for _ in range(20):  # the guardrail task of r3's words: let it run (no clock)
                if turns_ended < 3 or "guardrail" in seen.current:
                    break
                await asyncio.sleep(0)

    await converse(seen.session, during=during, until=lambda _: "guardrail" in seen.current)
    model.assert_complete()
    assert seen.current["guardrail"] == [None]  # the caller's context: no span
    if tracing:
        act_span = _function(recorder, "act")
        assert [span and span.span_id for span in seen.current["act"]] == [act_span.span_id] * 2
        assert recorder.open_spans == [] and tree_problems(recorder) == []
    else:
        assert seen.current["act"] == [None, None]


async def _hang_up(recorder: SpanRecorder, async_tool_calls: bool, *, tracing: bool) -> Any:
    """A refund (c1) waits for approval; the caller says goodbye and the model calls
    ``end_call`` (c2), a voice agent's usual last tool: it closes the session itself."""
    seen = Seen()

    @function_tool
    async def end_call(ctx: ToolContext[Any]) -> str:
        """Hang up."""
        assert seen.session is not None
        seen.look("end_call")
        await seen.session.close()
        seen.look("end_call")  # inline, the tool goes on after the close
        return "bye"

    steps = [
        RealtimeStep(RealtimeModelSendUserInput, turn("r1", call("refund", "c1", '{"amount": 5}'))),
        # no turn_ended after the call: the session is closed by then
        RealtimeStep(RealtimeModelSendUserInput, turn("r2", call("end_call", "c2"))[:-1]),
    ]
    model = ScriptedRealtimeModel(steps, strict=False)
    agent = _answering_agent(seen, extra=[end_call])
    session = await RealtimeRunner(agent, model=model).run(
        model_config={"async_tool_calls": async_tool_calls}
    )
    seen.session = traced(session) if tracing else session

    async def during(session: RealtimeSession, event: Any) -> None:
        if event.type == "tool_approval_required":
            await session.send_message("that's all, goodbye")

    events = await converse(seen.session, during=during)
    model.assert_complete()
    return seen, event_signature(events)


@ASYNC_TOOL_CALLS
async def test_a_tool_that_ends_the_call_is_not_cancelled_by_its_own_close(
    recorder: SpanRecorder, async_tool_calls: bool
) -> None:
    _, untraced_events = await _hang_up(recorder, async_tool_calls, tracing=False)
    seen, events = await _hang_up(recorder, async_tool_calls, tracing=True)
    assert events == untraced_events
    end_call = _function(recorder, "end_call")
    assert seen.current["end_call"][0] is end_call
    assert end_call.error is None and end_call.ended_at is not None
    # the other call still open at the close says why it never finished
    refund = _function(recorder, "refund")
    assert refund.error is not None and refund.error["data"]["status"] == "awaiting_approval"
    session_span = only(of_kind(recorder, "task"))
    assert session_span.error is None
    assert recorder.open_spans == [] and tree_problems(recorder) == []
