"""Generated conversations: tracing never changes what a realtime session does.

Hypothesis builds whole conversations for the SDK's own ``ScriptedRealtimeModel``: a
greeting at connect, exchanges started by the caller (``update_agent()``, then a message),
model turns with and without response ids, audio, transcript deltas (which run an output
guardrail, and in some conversations trip it), usage, usage and ``turn_ended`` of a
response that never started, audio interruptions, model error events, a transport
exception, single and parallel tool calls (tools that succeed, fail with a handled error
(the SDK's default error function, or a custom ``failure_error_function``), crash the
session, are slow for a few loop turns, run in a worker thread, or wait for the caller's
approval, which comes, is refused, never comes, or is left to a later tool call that
approves or rejects it), calls the model repeats, handoffs (one whose callback raises),
``update_agent()`` at random points, and a close at a random point: ``__aexit__``,
``close()`` from another task, cancelling the task that iterates, or an exception the
caller's code raises out of the session's block (sometimes with a transport whose
``close()`` fails). Every text of the conversation (the caller's messages,
tool arguments, outputs and errors, transcripts, error and exception texts) carries a card
number, so a conversation with sensitive data withheld can be searched for it in every
exported span.
Each runs in the caller's own trace (and span) or in none, traced by ``traced()`` or by
``instrument()``, with and without sensitive data.

Each conversation runs three times, each in a fresh event loop: untraced, untraced again,
and traced. The two untraced runs must be identical: evidence that the SDK is
deterministic for these scripts (no wall-clock waits: slow tools yield to the loop, and a
worker-thread tool only appears where nothing can race it), so the traced run can be
compared exactly, not as a multiset. The traced run must match them in everything a caller
can observe: the events iterated (deeply: agents, tools, outputs, errors, raw model
events), the way the conversation ended, what was sent to the model, which steps of the
script were left, what user code saw as current span (a tool: its own function span when
traced, the caller's context when not), the SDK's own warnings and errors, and the caller's
current span and trace before, during and after. The traced run's spans must form a
well-formed tree (``tree_problems``), all in one trace, none left open, agreeing with what
the caller saw (turns, calls, handoffs, agent switches, guardrails, rejections, usage:
each turn's exactly what its own response reported, the session's everything reported),
and, with sensitive data withheld, hold no text of the conversation.

Scripts are valid for the strict ``ScriptedRealtimeModel`` (every send matched by the next
step, in the order the SDK sends, checked against a prediction) whenever that order follows
from the SDK source: one tool call per model turn, tools run in background tasks or inline.
Parallel calls make the order of tool outputs depend on the tools (and guardrails interrupt
the model at moments of their own), so those conversations use ``strict=False`` and script
only the sends that trigger the next model turn, each matched by call id or text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from agents import GuardrailFunctionOutput, RunContextWrapper, function_tool, output_guardrail
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff
from agents.realtime.items import InputAudio, UserMessageItem
from agents.realtime.model_events import (
    RealtimeModelAudioDoneEvent,
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelErrorEvent,
    RealtimeModelEvent,
    RealtimeModelExceptionEvent,
    RealtimeModelInputAudioTranscriptionCompletedEvent,
    RealtimeModelItemUpdatedEvent,
    RealtimeModelOutputTextDeltaEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelToolCallEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
    RealtimeModelUsageEvent,
)
from agents.realtime.model_inputs import (
    RealtimeModelSendEvent,
    RealtimeModelSendInterrupt,
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tool_context import ToolContext
from agents.tracing import (
    Span,
    TracingProcessor,
    custom_span,
    get_current_span,
    get_current_trace,
    set_trace_processors,
    set_tracing_disabled,
    trace,
)
from agents.usage import Usage
from hypothesis import event, example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from realtime_spans.adapters import SpanRecorder, instrument, traced, uninstrument
from realtime_spans.core import SpanMachine
from tests.support import bad_log_records, event_signature, tree_problems

# -- the cast: three agents, their tools and handoffs ------------------------------------------

#: The context each run records into: what tools and handoff callbacks saw as current.
_OBSERVED: ContextVar[list[Observation] | None] = ContextVar("observed", default=None)
#: Set by the test that lets handoff callbacks do user work in spans of their own.
_CALLBACK_SPANS: ContextVar[bool] = ContextVar("callback_spans", default=False)


@dataclasses.dataclass(frozen=True)
class Observation:
    """What user code saw as current span and trace when it ran."""

    where: str
    call_id: str | None
    span: Span[Any] | None
    span_was_open: bool
    trace_id: str | None


def _observe(where: str, call_id: str | None) -> None:
    log = _OBSERVED.get()
    if log is None:
        return
    span = get_current_span()
    current_trace = get_current_trace()
    log.append(
        Observation(
            where,
            call_id,
            span,
            span is not None and span.ended_at is None,
            current_trace.trace_id if current_trace is not None else None,
        )
    )


@function_tool
async def lookup(ctx: ToolContext[Any], query: str) -> str:
    """Look something up, in a span of the tool's own."""
    _observe("lookup", ctx.tool_call_id)
    with custom_span("lookup work"):
        return f"found {query}"


@function_tool
async def slow_lookup(ctx: ToolContext[Any], query: str, turns: int) -> str:
    """Look something up over a few event-loop turns (never a real sleep)."""
    _observe("slow_lookup", ctx.tool_call_id)
    with custom_span("slow lookup work"):
        for _ in range(turns):
            await asyncio.sleep(0)
    return f"slowly found {query}"


@function_tool
async def broken(ctx: ToolContext[Any], query: str) -> str:
    """Fails; the SDK turns the error into the tool's output."""
    _observe("broken", ctx.tool_call_id)
    raise ValueError(f"broken tool failed on {query}")


@function_tool(failure_error_function=None)
async def crash(ctx: ToolContext[Any], query: str) -> str:
    """Fails with no error function: the error ends the session."""
    _observe("crash", ctx.tool_call_id)
    raise RuntimeError(f"crash tool failed on {query}")


@function_tool
def sync_lookup(ctx: ToolContext[Any], query: str) -> str:
    """A plain function: the SDK runs it in a worker thread."""
    _observe("sync_lookup", ctx.tool_call_id)
    return f"synchronously found {query}"


@function_tool(needs_approval=True)
async def refund(ctx: ToolContext[Any], query: str) -> str:
    """Refund an order: a human approves (or rejects) each call first."""
    _observe("refund", ctx.tool_call_id)
    return f"refunded {query}"


def _declined(ctx: RunContextWrapper[Any], error: Exception) -> str:
    return "The card was declined."


@function_tool(failure_error_function=_declined)
async def charge(ctx: ToolContext[Any], query: str) -> str:
    """Fails; a custom error function answers the model (the SDK then records the error's
    text on the current span, whatever the sensitive-data setting)."""
    _observe("charge", ctx.tool_call_id)
    raise ValueError(f"card declined for {query}")


#: The session the current run talks to, for tools that act on it.
_SESSION: ContextVar[RealtimeSession | None] = ContextVar("session", default=None)


@function_tool
async def settle(ctx: ToolContext[Any], call_id: str, verdict: str) -> str:
    """The caller's spoken answer to a refund still awaiting approval: approve or reject
    that other call from inside this one."""
    session = _SESSION.get()
    assert session is not None
    _observe("settle", ctx.tool_call_id)
    # Whether the call still awaits approval (the session's own bookkeeping, read only: no
    # public path says so); if not, the session ignores the answer, and so does the count.
    awaiting = call_id in session._pending_tool_calls
    if verdict == "approve":
        await session.approve_tool_call(call_id)
    else:
        await session.reject_tool_call(call_id)
        log = _SETTLED.get()
        if awaiting and log is not None:
            log.append(call_id)
    _observe("settle", ctx.tool_call_id)  # still this call's own span
    return f"{verdict}d {call_id}"


#: The calls a tool rejected in the current run.
_SETTLED: ContextVar[list[str] | None] = ContextVar("settled", default=None)


@function_tool
async def hang_up(ctx: ToolContext[Any]) -> str:
    """End the call: the tool closes the session itself (in a background task, the close
    cancels the tool's own task; inline, the tool goes on after it)."""
    session = _SESSION.get()
    assert session is not None
    _observe("hang_up", ctx.tool_call_id)
    # Whether this close starts the session's cleanup (the SDK's own bookkeeping, read
    # only: no public path says so): then the call is the one that closed the session.
    first = not session._closed and session._cleanup_task is None
    log = _HUNG_UP.get()
    if first and log is not None:
        log.append(ctx.tool_call_id)
    await session.close()
    return "goodbye"


#: The calls whose tool closed the session in the current run.
_HUNG_UP: ContextVar[list[str] | None] = ContextVar("hung_up", default=None)


@output_guardrail
def no_stop_words(ctx: RunContextWrapper[Any], agent: Any, text: str) -> GuardrailFunctionOutput:
    """Trips when the model says STOP (only parallel, non-strict scripts make it say so)."""
    _observe("guardrail", None)
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="STOP" in text)


def _on_handoff(ctx: RunContextWrapper[Any]) -> None:
    _observe("on_handoff", None)
    if _CALLBACK_SPANS.get():
        with custom_span("user work in on_handoff"):
            pass


def _failing_handoff(ctx: RunContextWrapper[Any]) -> None:
    _observe("failing_handoff", None)
    raise LookupError("no escalation desk is staffed")


def _make_cast() -> dict[str, RealtimeAgent[Any]]:
    alpha = RealtimeAgent(
        name="Alpha",
        instructions="You are Alpha.",
        tools=[lookup, slow_lookup, broken, crash, sync_lookup, refund, charge, settle, hang_up],
        output_guardrails=[no_stop_words],
    )
    bravo = RealtimeAgent(
        name="Bravo",
        instructions="You are Bravo.",
        tools=[lookup, broken, sync_lookup, refund, charge, settle, hang_up],
    )
    charlie = RealtimeAgent(
        name="Charlie",
        instructions="You are Charlie.",
        tools=[slow_lookup],
        output_guardrails=[no_stop_words],
    )
    charlie.tools.append(crash)
    alpha.handoffs.extend(
        [realtime_handoff(bravo, on_handoff=_on_handoff), realtime_handoff(charlie)]
    )
    bravo.handoffs.extend(
        [
            realtime_handoff(charlie, on_handoff=_on_handoff),
            realtime_handoff(charlie, tool_name_override="escalate", on_handoff=_failing_handoff),
        ]
    )
    charlie.handoffs.append(realtime_handoff(alpha, on_handoff=_on_handoff))
    return {agent.name: agent for agent in (alpha, bravo, charlie)}


AGENTS = _make_cast()
#: Output guardrails run on every 20 characters of transcript.
RUN_CONFIG: dict[str, Any] = {
    "guardrails_settings": {"debounce_text_length": 20},
    # the caller's speech is transcribed: each utterance opens its transcription span
    "model_settings": {"input_audio_transcription": {"model": "gpt-4o-transcribe"}},
}
AGENT_NAMES = tuple(AGENTS)

#: What calling a name does, per active agent: "output" (a tool output is sent), "sync"
#: (the same, from a worker thread), "approval" (the caller approves or rejects it, and an
#: output is sent; or ignores it, and nothing is), "handoff:<agent>" (session update, then
#: the transfer message), "terminal" (the call's error ends the session, or its tool closes
#: it: nothing is sent).
#: A name the agent does not have is answered "Tool ... not found": an output too.
CALLS: dict[str, dict[str, str]] = {
    "Alpha": {
        "lookup": "output",
        "slow_lookup": "output",
        "broken": "output",
        "crash": "terminal",
        "sync_lookup": "sync",
        "refund": "approval",
        "charge": "output",
        "settle": "output",
        "hang_up": "terminal",
        "transfer_to_bravo": "handoff:Bravo",
        "transfer_to_charlie": "handoff:Charlie",
    },
    "Bravo": {
        "lookup": "output",
        "broken": "output",
        "sync_lookup": "sync",
        "refund": "approval",
        "charge": "output",
        "settle": "output",
        "hang_up": "terminal",
        "transfer_to_charlie": "handoff:Charlie",
        "escalate": "terminal",
    },
    "Charlie": {
        "slow_lookup": "output",
        "crash": "terminal",
        "transfer_to_alpha": "handoff:Alpha",
    },
}
ALL_CALL_NAMES = sorted({name for calls in CALLS.values() for name in calls} | {"no_such_tool"})
#: Names that send an output whichever agent is active (so they can trigger the next turn
#: even when the active agent is not known in advance). ``settle`` is only ever called for
#: a refund left to it (see ``conversations``).
SAFE_TRIGGERS = [
    name
    for name in ALL_CALL_NAMES
    if name not in ("crash", "escalate", "hang_up", "sync_lookup", "settle")
]


DECISIONS = ["approve", "approve", "reject", "ignore"]
#: In parallel conversations, a refund's approval can also be left to a later ``settle``.
PARALLEL_DECISIONS = ["approve", "reject", "ignore", "tool", "tool", "tool"]

#: What every text of a conversation carries: with sensitive data withheld, no exported
#: span may contain it. (No span or trace id, timestamp or name can contain it.)
SECRET = "4111-1111-1111"


def _effect(agent: str, name: str) -> str:
    return CALLS[agent].get(name, "output")


# -- a conversation, as plain data ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """One tool (or handoff) call made by the model."""

    call_id: str
    name: str
    arguments: str
    effect: str  # predicted for the agent the generator believes active (exact in strict mode)
    decision: str = "approve"  # what the caller does if the call waits for approval


@dataclasses.dataclass(frozen=True)
class Response:
    """One model response: ``turn_started``, ``items``, usage, ``turn_ended``, then ``after``."""

    tag: str
    response_id: str | None
    items: tuple[tuple[Any, ...], ...]
    usage: tuple[int, int] | None
    after: tuple[tuple[Any, ...], ...]
    trigger: Call | None  # the call whose output triggers the next turn (if any)
    #: the caller's utterance this response answers: (item id, transcript, when the
    #: transcript comes: "before" the response, "during" it, "after" it, or "never")
    caller: tuple[str, str, str] | None = None

    @property
    def said(self) -> str | None:
        """What the response said (its transcript or text deltas, joined), if anything."""
        parts = [item[1] for item in self.items if item[0] in ("transcript", "text")]
        return "".join(parts) if parts else None

    @property
    def audio_chunks(self) -> int:
        return sum(item[1] for item in self.items if item[0] == "audio")

    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(item[1] for item in self.items if item[0] == "call")

    @property
    def raises(self) -> bool:
        return any(item[0] == "exception" for item in self.items)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """The user's turn: optionally ``update_agent()``, then a message, then model responses."""

    update_to: str | None
    message: str
    responses: tuple[Response, ...]


@dataclasses.dataclass(frozen=True)
class Conversation:
    """Everything one generated conversation does."""

    strict: bool
    async_tools: bool
    greeting: Response | None
    exchanges: tuple[Exchange, ...]
    ends_with_stream_end: bool
    mid_updates: tuple[tuple[int, str], ...]
    close: str  # "aexit" | "task" | "cancel" | "raise"
    close_at: int | None  # after this many events seen; None: when the stream ends
    close_error: bool
    ambient: str  # "none" | "trace" | "span"
    via: str  # "traced" | "instrument"
    sensitive: bool
    workflow_name: str | None
    audio: bool = False  # include_audio=True

    @property
    def responses(self) -> tuple[Response, ...]:
        """Every model response, in the order the model sends them."""
        greeting = (self.greeting,) if self.greeting is not None else ()
        return (*greeting, *(r for exchange in self.exchanges for r in exchange.responses))

    @property
    def has_ghosts(self) -> bool:
        """Whether the model ends a response that never started (a ``turn_ended`` that no
        turn matches, which the span machine answers with a diagnostic)."""
        return any(item[0] == "ghost" for r in self.responses for item in r.after)


# -- strategies ----------------------------------------------------------------------------

_words = st.text(alphabet="abcdefgh ", min_size=1, max_size=12)
#: A text of the conversation: it carries the card number.
_texts = _words.map(lambda words: f"{words} card {SECRET}")


@st.composite
def _content_items(
    draw: st.DrawFn, *, allow_exception: bool, allow_trip: bool
) -> list[tuple[Any, ...]]:
    names = ["audio", "transcript", "interrupt", "audio_done", "error"]
    kinds = st.sampled_from([*names, "trip"] if allow_trip else names)
    items: list[tuple[Any, ...]] = []
    text_mode = not allow_trip and draw(st.integers(0, 3)) == 0  # a text-only response
    for kind in draw(st.lists(kinds, max_size=5)):
        if kind == "audio":
            items.append(("audio", draw(st.integers(1, 3))))
        elif kind == "transcript":
            # deltas past the debounce length (20, see RUN_CONFIG) run the output guardrail
            said = draw(st.text(alphabet="xyz ", min_size=0, max_size=30))
            items.append(("text" if text_mode else "transcript", f"{said} {SECRET}"))
        elif kind == "trip":  # the guardrail trips: the session interrupts the model
            items.append(("transcript", "please STOP " + "z" * draw(st.integers(8, 30))))
        elif kind == "error":
            items.append(("error", draw(_texts)))
        else:
            items.append((kind,))
    if allow_exception:
        items.insert(draw(st.integers(0, len(items))), ("exception", draw(_texts)))
    return items


@st.composite
def _response(
    draw: st.DrawFn,
    tag: str,
    calls: Sequence[Call],
    *,
    allow_exception: bool,
    allow_trip: bool = False,
) -> Response:
    items = draw(_content_items(allow_exception=allow_exception, allow_trip=allow_trip))
    for call in calls:
        items.insert(draw(st.integers(0, len(items))), ("call", call))
    after_kinds = st.sampled_from(
        [("interrupt",), ("audio_done",), ("error", f"late error {SECRET}"), ("ghost",)]
    )
    # ("ghost", n): usage of n tokens and turn_ended of a response that never started
    after = [
        (kind[0], draw(st.integers(1, 1000))) if kind == ("ghost",) else kind
        for kind in draw(st.lists(after_kinds, max_size=1))
    ]
    caller = None
    if draw(st.booleans()):
        when = draw(st.sampled_from(["before", "during", "after", "never"]))
        # the response's tag makes each transcript unique: a late one is searched for
        caller = (f"user_{tag}", f"{draw(_words)} caller {tag} card {SECRET}", when)
        if when == "during":
            items.insert(draw(st.integers(0, len(items))), ("heard",))
        elif when == "after":
            after.insert(draw(st.integers(0, len(after))), ("heard",))
    return Response(
        tag=tag,
        caller=caller,
        response_id=f"resp_{tag}" if draw(st.booleans()) else None,
        items=tuple(items),
        usage=(
            (draw(st.integers(0, 500)), draw(st.integers(0, 500))) if draw(st.booleans()) else None
        ),
        after=tuple(after),
        trigger=calls[0] if calls else None,
    )


def _named_where_ghosts(
    greeting: Response | None, exchanges: list[Exchange]
) -> tuple[Response | None, list[Exchange]]:
    """In a conversation where a response that never started ends (a "ghost"), every
    response has an id: a ``turn_ended`` whose id no turn has ends the newest turn started
    without one (that turn's end may carry the id its start lacked), so next to an
    anonymous turn a ghost is that turn's end, not a ghost (the README says so)."""
    responses = [greeting] if greeting is not None else []
    responses += [r for exchange in exchanges for r in exchange.responses]
    if not any(item[0] == "ghost" for r in responses for item in r.after):
        return greeting, exchanges

    def named(response: Response) -> Response:
        if response.response_id is not None:
            return response
        return dataclasses.replace(response, response_id=f"resp_{response.tag}")

    return (
        named(greeting) if greeting is not None else None,
        [
            dataclasses.replace(exchange, responses=tuple(named(r) for r in exchange.responses))
            for exchange in exchanges
        ],
    )


def _hung_up(response: Response) -> Response:
    """A response that calls ``hang_up`` ends with that call: the model can send nothing
    once the session is closed (an inline tool closes it while the call is delivered)."""
    for index, item in enumerate(response.items):
        if item[0] == "call" and item[1].name == "hang_up":
            items = tuple(i for i in response.items[: index + 1] if i[0] != "heard")
            caller = response.caller
            if caller is not None and caller[2] in ("during", "after"):
                caller = (caller[0], caller[1], "never")
            return dataclasses.replace(response, items=items, usage=None, after=(), caller=caller)
    return response


def _arguments(name: str, query: str, turns: int) -> str:
    if name == "settle":
        raise AssertionError("settle calls are made by _settle_call")
    if name == "slow_lookup":
        return json.dumps({"query": query, "turns": turns})
    if name.startswith("transfer_to_") or name in ("escalate", "hang_up"):
        return "{}"
    return json.dumps({"query": query})


@st.composite
def conversations(draw: st.DrawFn, *, parallel: bool, inline: bool | None = None) -> Conversation:
    """A conversation. ``parallel``: up to three calls per turn (non-strict script)."""
    async_tools = not (draw(st.booleans()) if inline is None else inline)
    close = draw(st.sampled_from(["aexit", "task", "cancel", "raise"]))
    close_at = draw(st.none() | st.integers(3, 60))
    # A worker-thread tool finishes at a wall-clock moment: only where nothing can race it
    # (one call per turn, the conversation runs to its end).
    allow_sync = not parallel and close_at is None
    mid_updates: tuple[tuple[int, str], ...] = ()
    if parallel:
        mid_updates = tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(1, 40), st.sampled_from(AGENT_NAMES)),
                    max_size=2,
                    unique_by=lambda pair: pair[0],
                )
            )
        )

    greeting = None
    if draw(st.booleans()):
        greeting = draw(_response("greeting", (), allow_exception=False))

    # which model turn (counting from 0) has a transport exception, in one in four
    raising_turn = draw(st.sampled_from([None, None, None, *range(6)]))
    turns_made = 0
    agent = "Alpha"  # the active agent, exactly known in strict (one call per turn) scripts
    made: list[Call] = []
    left_to_a_tool: list[Call] = []  # refunds whose approval a later settle call answers
    offered: set[str] = set()
    exchanges: list[Exchange] = []
    terminal = False
    ignored = False
    for e in range(draw(st.integers(1, 3))):
        update_to = draw(st.sampled_from([None, None, *AGENT_NAMES]))
        if update_to is not None:
            agent = update_to
        responses: list[Response] = []
        for r in range(4):
            tag = f"{e}_{r}"
            counts = [0, 1, 2, 3] if parallel else [0, 1, 1]  # most turns call something
            wanted = 0 if r == 3 else draw(st.sampled_from(counts))
            calls: list[Call] = []
            for k in range(wanted):
                if parallel and k > 0 and made and draw(st.integers(0, 7)) == 0:
                    calls.append(draw(st.sampled_from(made)))  # the model repeats a call
                    continue
                if parallel and left_to_a_tool and draw(st.booleans()):
                    target = draw(st.sampled_from(left_to_a_tool))
                    left_to_a_tool.remove(target)
                    verdict = draw(st.sampled_from(["approve", "reject"]))
                    arguments = json.dumps({"call_id": target.call_id, "verdict": verdict})
                    made_call = Call(f"call_{tag}_{k}", "settle", arguments, "output")
                    calls.append(made_call)
                    made.append(made_call)
                    continue
                if parallel:
                    names = SAFE_TRIGGERS if k == 0 else [*ALL_CALL_NAMES]
                    names = [name for name in names if name not in ("sync_lookup", "settle")]
                else:
                    names = [name for name in CALLS[agent] if name != "settle"]
                    names.append("no_such_tool")
                    if not allow_sync:
                        names = [name for name in names if name != "sync_lookup"]
                if parallel or not async_tools:
                    # hang_up only where its effect is known exactly (one call per turn: the
                    # active agent has it) and in background tasks (inline, its output is
                    # sent after its own close, which the scripted model refuses; over the
                    # socket both are tested in tests/)
                    names = [name for name in names if name != "hang_up"]
                # calls that end the session are kept rare, so most conversations go deep
                ending = sorted(n for n in names if n in ("crash", "escalate", "hang_up"))
                if "hang_up" in ending and draw(st.integers(0, 9)) == 0:
                    name = "hang_up"  # a voice agent's usual last call: not as rare
                elif ending and draw(st.integers(0, 15)) == 0:
                    name = draw(st.sampled_from(ending))
                else:
                    name = draw(st.sampled_from(sorted(set(names) - set(ending))))
                arguments = _arguments(name, draw(_texts), draw(st.integers(0, 4)))
                # the trigger of the next turn must get an output: approved or rejected
                decisions = ["approve", "reject"] if parallel and k == 0 else DECISIONS
                if parallel and k > 0:
                    decisions = PARALLEL_DECISIONS
                decision = draw(st.sampled_from(decisions)) if name == "refund" else "approve"
                made_call = Call(f"call_{tag}_{k}", name, arguments, _effect(agent, name), decision)
                calls.append(made_call)
                made.append(made_call)
            # refunds of this turn left to a tool: a settle call in a later turn answers them
            for made_call in calls:
                if made_call.decision == "tool" and made_call.call_id not in offered:
                    offered.add(made_call.call_id)
                    left_to_a_tool.append(made_call)
            raises = turns_made == raising_turn and (parallel or not calls)
            turns_made += 1
            response = _hung_up(
                draw(_response(tag, calls, allow_exception=raises, allow_trip=parallel))
            )
            responses.append(response)
            if response.raises or (not parallel and calls and calls[0].effect == "terminal"):
                terminal = True
            if terminal or not calls:
                break
            if not parallel and calls[0].effect == "approval" and calls[0].decision == "ignore":
                ignored = True  # nothing more can happen: the stream ends with this turn
                break
            if not parallel and calls[0].effect.startswith("handoff:"):
                agent = calls[0].effect.split(":", 1)[1]
        exchanges.append(Exchange(update_to, f"message {e} card {SECRET}", tuple(responses)))
        if terminal or ignored:
            break

    close_error = close == "aexit" and draw(st.integers(0, 7)) == 0
    greeting, exchanges = _named_where_ghosts(greeting, exchanges)
    return Conversation(
        strict=not parallel,
        async_tools=async_tools,
        greeting=greeting,
        exchanges=tuple(exchanges),
        ends_with_stream_end=not terminal,
        mid_updates=mid_updates,
        close=close,
        close_at=close_at,
        close_error=close_error,
        ambient=draw(st.sampled_from(["none", "trace", "span"])),
        via=draw(st.sampled_from(["traced", "instrument"])),
        sensitive=draw(st.booleans()),
        workflow_name=draw(st.sampled_from([None, "Support line"])),
        audio=draw(st.booleans()),
    )


# -- from a conversation to a ScriptedRealtimeModel script -----------------------------------


def _model_events(response: Response) -> list[RealtimeModelEvent]:
    rid = response.response_id
    stream_id = rid or f"anon_{response.tag}"
    item_id = f"item_{response.tag}"
    events: list[RealtimeModelEvent] = []
    if response.caller is not None:  # the caller spoke: server VAD, commit, their audio item
        user_item, transcript, when = response.caller
        heard = RealtimeModelInputAudioTranscriptionCompletedEvent(
            item_id=user_item, transcript=transcript
        )
        events += [
            _server("input_audio_buffer.speech_started", user_item, audio_start_ms=0),
            _server("input_audio_buffer.speech_stopped", user_item, audio_end_ms=600),
            _server("input_audio_buffer.committed", user_item),
            RealtimeModelItemUpdatedEvent(
                item=UserMessageItem(item_id=user_item, content=[InputAudio(transcript=None)])
            ),
        ]
        if when == "before":
            events.append(heard)
    events.append(RealtimeModelTurnStartedEvent(response_id=rid))

    def expand(item: tuple[Any, ...]) -> list[RealtimeModelEvent]:
        kind = item[0]
        if kind == "heard":
            return [heard]
        if kind == "text":
            return [
                RealtimeModelOutputTextDeltaEvent(
                    item_id=item_id, delta=item[1], response_id=stream_id
                )
            ]
        if kind == "audio":
            return [
                RealtimeModelAudioEvent(
                    data=b"\x00\x01" * 4, response_id=stream_id, item_id=item_id, content_index=0
                )
                for _ in range(item[1])
            ]
        if kind == "transcript":
            return [
                RealtimeModelTranscriptDeltaEvent(
                    item_id=item_id, delta=item[1], response_id=stream_id
                )
            ]
        if kind == "interrupt":
            return [RealtimeModelAudioInterruptedEvent(item_id=item_id, content_index=0)]
        if kind == "audio_done":
            return [RealtimeModelAudioDoneEvent(item_id=item_id, content_index=0)]
        if kind == "error":
            return [RealtimeModelErrorEvent(error={"message": item[1], "type": "server_error"})]
        if kind == "exception":
            return [
                RealtimeModelExceptionEvent(
                    exception=ConnectionResetError(item[1]), context="listener"
                )
            ]
        if kind == "ghost":
            return [_usage_event(item[1], 0), RealtimeModelTurnEndedEvent(response_id="ghost")]
        call: Call = item[1]
        return [
            RealtimeModelToolCallEvent(
                name=call.name, call_id=call.call_id, arguments=call.arguments
            )
        ]

    for item in response.items:
        events.extend(expand(item))
    if response.usage is not None:
        events.append(_usage_event(*response.usage))
    events.append(RealtimeModelTurnEndedEvent(response_id=rid))
    for item in response.after:
        events.extend(expand(item))
    return events


def _server(kind: str, item_id: str, **fields: Any) -> RealtimeModelRawServerEvent:
    return RealtimeModelRawServerEvent(data={"type": kind, "item_id": item_id, **fields})


def _usage_event(input_tokens: int, output_tokens: int) -> RealtimeModelUsageEvent:
    return RealtimeModelUsageEvent(
        usage=Usage(
            requests=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
    )


def _user_input(text: str) -> Callable[[RealtimeModelSendEvent], bool]:
    return lambda sent: isinstance(sent, RealtimeModelSendUserInput) and sent.user_input == text


def _tool_output(call_id: str) -> Callable[[RealtimeModelSendEvent], bool]:
    return lambda sent: (
        isinstance(sent, RealtimeModelSendToolOutput) and sent.tool_call.call_id == call_id
    )


def _session_update(agent: str) -> Callable[[RealtimeModelSendEvent], bool]:
    return lambda sent: (
        isinstance(sent, RealtimeModelSendSessionUpdate)
        and sent.session_settings.get("instructions") == f"You are {agent}."
    )


@dataclasses.dataclass
class Script:
    """The model's script, and (strict scripts) every send the SDK will make, in order."""

    steps: list[RealtimeStep]
    connect_events: list[RealtimeModelEvent]
    predicted: list[str] | None


def build_script(conversation: Conversation) -> Script:
    """The steps of a conversation: each emits the model turn that its send triggers."""
    exchanges = conversation.exchanges

    def emitted(e: int, r: int) -> list[RealtimeModelEvent]:
        events = _model_events(exchanges[e].responses[r])
        last = e == len(exchanges) - 1 and r == len(exchanges[e].responses) - 1
        if last and conversation.ends_with_stream_end:
            events.append(RealtimeModelEndOfStreamEvent())
        return events

    steps: list[RealtimeStep] = []
    predicted: list[str] = []
    for e, exchange in enumerate(exchanges):
        if exchange.update_to is not None and conversation.strict:
            steps.append(RealtimeStep(expect=_session_update(exchange.update_to)))
            predicted.append("session_update")
        steps.append(RealtimeStep(expect=_user_input(exchange.message), emit=emitted(e, 0)))
        predicted.append("user_input")
        for r, response in enumerate(exchange.responses):
            trigger = response.trigger
            if trigger is None or r + 1 == len(exchange.responses):
                continue  # no call, or a call whose output triggers nothing (the session ends)
            follow = emitted(e, r + 1) if r + 1 < len(exchange.responses) else []
            if not conversation.strict:
                steps.append(RealtimeStep(expect=_tool_output(trigger.call_id), emit=follow))
                continue
            if trigger.effect == "terminal":
                continue
            if trigger.effect.startswith("handoff:"):
                steps.append(RealtimeStep(expect=_session_update(trigger.effect.split(":")[1])))
                predicted.append("session_update")
            steps.append(RealtimeStep(expect=_tool_output(trigger.call_id), emit=follow))
            predicted.append("tool_output")
    connect_events: list[RealtimeModelEvent] = [
        RealtimeModelRawServerEvent(data={"type": "session.created", "session": {"id": "sess_1"}})
    ]
    if conversation.greeting is not None:
        connect_events.extend(_model_events(conversation.greeting))
    return Script(steps, connect_events, predicted if conversation.strict else None)


# -- driving one session like a caller would -------------------------------------------------


@dataclasses.dataclass
class Run:
    """Everything observable about one run of a conversation."""

    events: list[Any] = dataclasses.field(default_factory=list)
    outcome: tuple[str, ...] = ()
    hung: bool = False
    ambient_problems: list[str] = dataclasses.field(default_factory=list)
    observations: list[Observation] = dataclasses.field(default_factory=list)
    updates: list[str] = dataclasses.field(default_factory=list)
    rejected: list[str] = dataclasses.field(default_factory=list)
    settled: list[str] = dataclasses.field(default_factory=list)  # rejected by a tool
    hung_up: list[str] = dataclasses.field(default_factory=list)  # whose tool closed it
    sent: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    sent_kinds: list[str] = dataclasses.field(default_factory=list)
    remaining_steps: int = 0
    logs: list[logging.LogRecord] = dataclasses.field(default_factory=list)
    before: tuple[Any, Any] = (None, None)
    session_was_traced: bool = False
    predicted: list[str] | None = None


def _thresholds(conversation: Conversation) -> list[int]:
    """How many ``agent_end`` events the caller has seen when each exchange is over."""
    total = 1 if conversation.greeting is not None else 0
    marks = []
    for exchange in conversation.exchanges:
        total += len(exchange.responses)
        marks.append(total)
    return marks


async def _talk(
    session: RealtimeSession, conversation: Conversation, run: Run, signal: asyncio.Event | None
) -> None:
    before = run.before
    marks = _thresholds(conversation)
    decisions = {
        call.call_id: call.decision
        for exchange in conversation.exchanges
        for response in exchange.responses
        for call in response.calls
    }
    mid_updates = dict(conversation.mid_updates)
    exchanges = conversation.exchanges
    closer: asyncio.Task[None] | None = None
    acting = True
    agent_ends = 0
    next_exchange = 1

    def check_ambient(where: str) -> None:
        now = (get_current_trace(), get_current_span())
        if now[0] is not before[0] or now[1] is not before[1]:
            run.ambient_problems.append(f"{where}: current is {now}, was {before}")

    async def start_exchange(exchange: Exchange) -> None:
        if exchange.update_to is not None:
            await session.update_agent(AGENTS[exchange.update_to])
            run.updates.append(exchange.update_to)
        await session.send_message(exchange.message)

    async with session:
        check_ambient("after entry")
        await start_exchange(exchanges[0])
        async for event in session:
            run.events.append(event)
            check_ambient(f"at event {len(run.events)}")
            seen = len(run.events)
            if acting and conversation.close_at is not None and seen >= conversation.close_at:
                acting = False
                if conversation.close == "aexit":
                    break
                if conversation.close == "raise":
                    raise CallerGaveUp(f"the caller gave up on card {SECRET}")
                if conversation.close == "task":
                    closer = asyncio.create_task(session.close())
                elif signal is not None:
                    signal.set()
            if not acting:
                continue
            if seen in mid_updates:
                await session.update_agent(AGENTS[mid_updates[seen]])
                run.updates.append(mid_updates[seen])
            if event.type == "tool_approval_required":
                decision = decisions.get(event.call_id, "ignore")
                if decision == "approve":
                    await session.approve_tool_call(event.call_id)
                elif decision == "reject":
                    # counted before awaiting: inline, the rejection's send can raise what the
                    # model's next turn raises, after the call was rejected
                    run.rejected.append(event.call_id)
                    await session.reject_tool_call(event.call_id)
            if event.type == "agent_end":
                agent_ends += 1
                while next_exchange < len(exchanges) and agent_ends >= marks[next_exchange - 1]:
                    next_exchange += 1
                    await start_exchange(exchanges[next_exchange - 1])
    check_ambient("after exit")
    if closer is not None:
        await closer
    check_ambient("after close")


class CallerGaveUp(Exception):
    """What the caller's code raises out of the session's block (``close="raise"``)."""


async def _dialogue(
    session: RealtimeSession, conversation: Conversation, run: Run, signal: asyncio.Event | None
) -> tuple[str, ...]:
    try:
        await _talk(session, conversation, run, signal)
    except Exception as error:
        cause = error.__cause__
        return ("raised", type(error).__name__, str(error), type(cause).__name__ if cause else "")
    return ("completed",)


async def _converse(session: RealtimeSession, conversation: Conversation, run: Run) -> None:
    if conversation.close != "cancel":
        run.outcome = await _dialogue(session, conversation, run, None)
        return
    signal = asyncio.Event()
    consumer = asyncio.create_task(_dialogue(session, conversation, run, signal))
    waiter = asyncio.create_task(signal.wait())
    await asyncio.wait({consumer, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    consumer.cancel()  # a no-op when it already finished
    try:
        run.outcome = await consumer
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the timeout, not the consumer
        run.outcome = ("cancelled",)
    # When the cancel lands while ``__aexit__`` awaits ``close()``, the SDK's cleanup (which
    # ``close()`` shields) goes on after the consumer is gone. A careful caller waits for it
    # before leaving its own span and trace, as here; a careless one ends them first, which
    # the library reports as the caller's span ending first (tests/test_faults.py).
    await session.close()


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextlib.contextmanager
def _capture_logs(into: list[logging.LogRecord]) -> Iterator[None]:
    handler = _Collect(into)
    loggers = [logging.getLogger("openai.agents"), logging.getLogger("realtime_spans")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)


def _describe_send(sent: RealtimeModelSendEvent) -> tuple[Any, ...]:
    if isinstance(sent, RealtimeModelSendUserInput):
        return ("user_input", str(sent.user_input))
    if isinstance(sent, RealtimeModelSendToolOutput):
        return ("tool_output", sent.tool_call.call_id, sent.output, sent.start_response)
    if isinstance(sent, RealtimeModelSendInterrupt):
        return ("interrupt", _plain(sent))
    if isinstance(sent, RealtimeModelSendSessionUpdate):
        settings_sent = sent.session_settings
        return (
            "session_update",
            settings_sent.get("instructions"),
            tuple(tool.name for tool in settings_sent.get("tools") or ()),
            tuple(handoff.tool_name for handoff in settings_sent.get("handoffs") or ()),
        )
    return (type(sent).__name__,)


_SEND_KINDS = {
    RealtimeModelSendInterrupt: "interrupt",
    RealtimeModelSendUserInput: "user_input",
    RealtimeModelSendToolOutput: "tool_output",
    RealtimeModelSendSessionUpdate: "session_update",
}


async def _run_once(conversation: Conversation, *, traced_run: bool, run: Run) -> None:
    token = _OBSERVED.set(run.observations)
    settled_token = _SETTLED.set(run.settled)
    hung_up_token = _HUNG_UP.set(run.hung_up)
    options: dict[str, Any] = {
        "include_sensitive_data": conversation.sensitive,
        "include_audio": conversation.audio,
    }
    if conversation.workflow_name is not None:
        options["workflow_name"] = conversation.workflow_name
    try:
        with contextlib.ExitStack() as ambient:
            if conversation.ambient != "none":
                ambient.enter_context(trace("Caller's trace"))
            if conversation.ambient == "span":
                ambient.enter_context(custom_span("caller's step"))
            run.before = (get_current_trace(), get_current_span())
            script = build_script(conversation)
            model = ScriptedRealtimeModel(
                script.steps,
                connect_events=script.connect_events,
                strict=conversation.strict,
                close_error=RuntimeError("transport close failed")
                if conversation.close_error
                else None,
            )
            config = {**RUN_CONFIG, "async_tool_calls": conversation.async_tools}
            runner = RealtimeRunner(AGENTS["Alpha"], model=model, config=config)
            if traced_run and conversation.via == "instrument":
                instrument(**options)
                try:
                    session = await runner.run()
                finally:
                    uninstrument()
            else:
                session = await runner.run()
                if traced_run:
                    session = traced(session, **options)
            _SESSION.set(session)  # before entry: every task of the session inherits it
            run.session_was_traced = "_realtime_spans_tap" in vars(session)
            if run.session_was_traced and not conversation.has_ghosts:
                # Reaching into the library's internals on purpose (no public path exists): a
                # strict span machine turns any event the core did not expect into an internal
                # error, logged once at ERROR (which bad_log_records reports), so every
                # generated conversation is also a stream of events the core fully expects
                # (but for a response that ended without starting: the core reports that).
                session._realtime_spans_tap.machine = SpanMachine(strict=True)  # type: ignore[attr-defined]
            try:
                async with asyncio.timeout(20):
                    await _converse(session, conversation, run)
            except TimeoutError:
                run.hung = True
            now = (get_current_trace(), get_current_span())
            if now[0] is not run.before[0] or now[1] is not run.before[1]:
                run.ambient_problems.append(f"in the test's task afterwards: {now}")
            run.sent = [_describe_send(sent) for sent in model.sent_events]
            run.sent_kinds = [_SEND_KINDS[type(sent)] for sent in model.sent_events]
            run.remaining_steps = model.remaining_steps
            run.predicted = script.predicted
    finally:
        _HUNG_UP.reset(hung_up_token)
        _SETTLED.reset(settled_token)
        _OBSERVED.reset(token)


def run_conversation(
    conversation: Conversation,
    *,
    traced_run: bool,
    processors: Sequence[TracingProcessor] = (),
) -> tuple[Run, SpanRecorder]:
    """Run one conversation in a fresh event loop, with a recording processor installed
    (and ``processors`` after it: a peer's, for the integration tests)."""
    run = Run()
    recorder = SpanRecorder()
    set_trace_processors([recorder, *processors])
    set_tracing_disabled(False)
    try:
        with _capture_logs(run.logs):
            asyncio.run(_run_once(conversation, traced_run=traced_run, run=run))
    finally:
        set_trace_processors([])
        uninstrument()
    return run, recorder


# -- what a caller observes, comparably ------------------------------------------------------


def _plain(value: Any, depth: int = 0) -> Any:
    """A deep, comparable rendering of an event: agents and tools by name, no identities."""
    if depth > 8:
        return "..."
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return ("bytes", len(value))
    if isinstance(value, RealtimeAgent):
        return ("agent", value.name)
    if hasattr(value, "on_invoke_tool") or hasattr(value, "params_json_schema"):
        return ("tool", getattr(value, "name", "?"))
    if isinstance(value, BaseException):
        return ("exception", type(value).__name__, str(value))
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (f.name for f in dataclasses.fields(value) if f.name not in ("info", "context"))
        return (
            type(value).__name__,
            tuple((name, _plain(getattr(value, name), depth + 1)) for name in fields),
        )
    if isinstance(value, dict):
        return tuple(sorted((str(k), _plain(v, depth + 1)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_plain(item, depth + 1) for item in value)
    return type(value).__name__


def deep_signature(events: Sequence[Any]) -> list[Any]:
    """Everything the caller iterated, event by event."""
    return [_plain(event) for event in events]


#: Untraced, the SDK warns that a failing tool's error had no span to go to; traced, the
#: error lands on the tool's function span, by design. The only SDK log line tracing changes.
_NO_SPAN_FOR_TOOL_ERROR = "No active span; trace error was not attached"


def _sdk_complaints(records: Sequence[logging.LogRecord]) -> list[tuple[str, int, str]]:
    """The SDK's warnings and errors, but for the one that tracing answers by design."""
    return [
        (record.name, record.levelno, message)
        for record in records
        if record.name.startswith("openai.agents")
        and record.levelno >= logging.WARNING
        and (message := record.getMessage()) != _NO_SPAN_FOR_TOOL_ERROR
    ]


def _comparable(run: Run) -> dict[str, Any]:
    return {
        "outcome": run.outcome,
        "hung": run.hung,
        "event_signature": event_signature(run.events),
        "events": deep_signature(run.events),
        "sent": run.sent,
        "remaining_steps": run.remaining_steps,
        "updates": run.updates,
        "rejected": run.rejected,
        "settled": run.settled,
        "hung_up": run.hung_up,
        "observed_where": [(o.where, o.call_id) for o in run.observations],
        "sdk_warnings_and_errors": _sdk_complaints(run.logs),
    }


def _raw(run: Run, kind: str) -> list[Any]:
    return [
        event.data
        for event in run.events
        if event.type == "raw_model_event" and getattr(event.data, "type", None) == kind
    ]


def _spans_of(recorder: SpanRecorder, kind: str) -> list[Span[Any]]:
    return [span for span in recorder.started if span.span_data.type == kind]


_TOOLS = {"lookup", "slow_lookup", "broken", "crash", "sync_lookup", "refund", "charge", "settle"}
_SESSION_KINDS = {"task", "agent", "turn", "function", "handoff", "guardrail"}


def check_script_validity(conversation: Conversation, run: Run) -> None:
    """The script is what the SDK really does (checked on the untraced run)."""
    assert not run.hung, "the conversation hung: the script does not fit the session"
    script_errors = {"UnexpectedRealtimeSend", "RealtimeScriptError", "UnconsumedRealtimeSteps"}
    assert not script_errors & set(run.outcome[1:2] + run.outcome[3:4]), run.outcome
    errors = [e for e in run.events if e.type == "error"]
    assert not any("Tool output send failed" in str(e.error) for e in errors)
    saw_end = bool(_raw(run, "end_of_stream"))
    if conversation.strict:
        assert run.predicted is not None
        assert run.sent_kinds == run.predicted[: len(run.sent_kinds)]
        if saw_end and run.outcome == ("completed",):
            assert run.sent_kinds == run.predicted
            assert run.remaining_steps == 0


def check_untraced(run: Run, recorder: SpanRecorder) -> None:
    """Untraced: no session spans; user code sees the caller's own context."""
    assert not run.session_was_traced
    assert [s for s in recorder.started if s.span_data.type in _SESSION_KINDS] == []
    for seen in run.observations:
        assert seen.span is run.before[1], seen
    assert bad_log_records(run.logs) == []


def check_traced(conversation: Conversation, run: Run, recorder: SpanRecorder) -> None:
    """The traced run's spans: a well-formed tree that agrees with what the caller saw."""
    assert run.session_was_traced
    assert tree_problems(recorder) == []
    assert recorder.open_spans == []
    assert bad_log_records(run.logs) == []
    assert [r for r in run.logs if r.getMessage() == _NO_SPAN_FOR_TOOL_ERROR] == []

    user_trace, user_span = run.before
    (session_span,) = _spans_of(recorder, "task")
    if conversation.ambient == "none":
        (opened,) = recorder.traces
        assert opened.name == (conversation.workflow_name or "Realtime session")
        trace_id = opened.trace_id
    else:
        assert [t.trace_id for t in recorder.traces] == [user_trace.trace_id]
        trace_id = user_trace.trace_id
    assert {span.trace_id for span in recorder.started} == {trace_id}
    expected_parent = user_span.span_id if conversation.ambient == "span" else None
    assert session_span.parent_id == expected_parent
    if run.outcome[:2] == ("raised", CallerGaveUp.__name__):
        # the caller's exception ended the session: it is the session's error, unless the
        # session had one already (its first error stays); its text only when allowed
        assert session_span.error is not None
        if session_span.error["data"] == {"error_type": CallerGaveUp.__name__}:
            text = f": the caller gave up on card {SECRET}" if conversation.sensitive else ""
            assert session_span.error["message"] == CallerGaveUp.__name__ + text

    agents = _spans_of(recorder, "agent")
    agent_ids = {span.span_id for span in agents}
    assert all(span.parent_id == session_span.span_id for span in agents)
    for kind in ("turn", "function", "handoff"):
        assert all(span.parent_id in agent_ids for span in _spans_of(recorder, kind)), kind
    # A guardrail hangs under the agent whose output tripped it while that agent's span is
    # open, else under the session (never under another agent).
    for guardrail in _spans_of(recorder, "guardrail"):
        assert guardrail.parent_id in agent_ids | {session_span.span_id}
        if guardrail.parent_id in agent_ids:
            (parent,) = [agent for agent in agents if agent.span_id == guardrail.parent_id]
            assert parent.ended_at >= guardrail.ended_at

    turns = _spans_of(recorder, "turn")
    calls = _spans_of(recorder, "function") + _spans_of(recorder, "handoff")
    agent_starts = [e for e in run.events if e.type == "agent_start"]
    function_calls = {call.call_id for call in _raw(run, "function_call")}
    saw_end = bool(_raw(run, "end_of_stream"))
    assert len(turns) >= len(agent_starts)
    assert len(calls) >= len(function_calls)
    if saw_end:  # every model event came before the stream's end: the caller saw them all
        assert len(turns) == len(agent_starts)
        assert len(calls) == len(function_calls)
        usage = session_span.span_data.usage or {}
        for field in ("requests", "input_tokens", "output_tokens", "total_tokens"):
            reported = sum(getattr(u.usage, field) for u in _raw(run, "usage"))
            assert usage.get(field, 0) == reported, field
    check_turn_usage(conversation, turns)
    check_words(conversation, recorder, turns)

    tripped = sum(len(e.guardrail_results) for e in run.events if e.type == "guardrail_tripped")
    assert len(_spans_of(recorder, "guardrail")) >= tripped
    assert all(s.span_data.triggered for s in _spans_of(recorder, "guardrail"))

    handoffs_seen = Counter(
        (e.from_agent.name, e.to_agent.name) for e in run.events if e.type == "handoff"
    )
    handoff_spans = Counter(
        (s.span_data.from_agent, s.span_data.to_agent) for s in _spans_of(recorder, "handoff")
    )
    assert handoffs_seen <= handoff_spans
    switched_to = Counter(
        ["Alpha", *(e.to_agent.name for e in run.events if e.type == "handoff"), *run.updates]
    )
    assert switched_to <= Counter(span.span_data.name for span in agents)

    functions = _spans_of(recorder, "function")
    if not conversation.sensitive:
        assert all(s.span_data.input is None and s.span_data.output is None for s in functions)
        assert SECRET not in exported(recorder), "a withheld text reached an exported span"
    elif any(s.span_data.input and SECRET in s.span_data.input for s in functions):
        assert SECRET in exported(recorder)  # the search finds what is there
    broken_ends = sum(1 for e in run.events if e.type == "tool_end" and e.tool.name == "broken")
    broken_spans = [s for s in functions if s.span_data.name == "broken" and s.error]
    assert len(broken_spans) >= broken_ends
    # the call whose tool closed the session ended as done, not cancelled by that close
    for span in functions:
        if span.span_data.call_id in run.hung_up:
            assert span.span_data.name == "hang_up" and span.error is None, span.error
    rejected = [s for s in functions if s.error and s.error["message"] == "Tool execution rejected"]
    assert len(rejected) == len(run.rejected) + len(run.settled)

    # a tool sees its own function span (open, in the session's trace) and nothing else
    function_ids = {span.span_id for span in functions}
    for seen in run.observations:
        if seen.where not in _TOOLS:
            continue
        assert seen.span is not None and seen.span.span_id in function_ids, seen
        assert seen.span.span_data.name == seen.where, seen
        assert seen.span_was_open, seen
        assert seen.trace_id == trace_id, seen


def exported(recorder: SpanRecorder) -> str:
    """Every span and trace as processors export them, serialized."""
    items = [span.export() for span in recorder.started]
    items += [trace.export() for trace in recorder.traces]
    return json.dumps(items, default=str)


def check_turn_usage(conversation: Conversation, turns: Sequence[Span[Any]]) -> None:
    """Each turn's usage is exactly what its own response reported (a turn cut off by the
    close may have ended before its usage came): never another response's, never a
    response's that never started."""
    responses = conversation.responses
    assert len(turns) <= len(responses)
    for turn, response in zip(turns, responses, strict=False):
        assert turn.span_data.response_id == response.response_id, "turns out of order"
        usage = turn.span_data.usage
        if response.usage is None or (usage is None and turn.span_data.cut_off):
            assert usage is None, f"turn {response.tag} got usage it did not report"
            continue
        given_tokens, output_tokens = response.usage
        assert usage == {
            "requests": 1,
            "input_tokens": given_tokens,
            "output_tokens": output_tokens,
            "total_tokens": given_tokens + output_tokens,
        }, f"turn {response.tag}"


def _typed(conversation: Conversation) -> dict[str, str]:
    """The caller's typed message each response answers, by tag (an exchange's first)."""
    return {ex.responses[0].tag: ex.message for ex in conversation.exchanges if ex.responses}


def check_words(
    conversation: Conversation, recorder: SpanRecorder, turns: Sequence[Span[Any]]
) -> None:
    """Every generation carries exactly its own response's words: the caller's typed
    message and spoken transcript it answers (a transcript that came after the response
    ended: on no generation, only on its transcription span), the tool outputs sent for
    earlier calls, what it said and the calls it made. Latencies are never negative, and
    the caller waited at least as long as the response took to its first audio. With audio
    recorded, each response's speech span holds exactly the audio it generated."""
    sensitive = conversation.sensitive
    generations = {g.parent_id: g for g in _spans_of(recorder, "generation")}
    assert len(generations) == len(_spans_of(recorder, "generation")), "two generations a turn"
    assert set(generations) == {turn.span_id for turn in turns}
    typed = _typed(conversation)
    made_before: set[str] = set()
    late = set()
    for turn, response in zip(turns, conversation.responses, strict=False):
        data = generations[turn.span_id].span_data
        complete = not turn.span_data.cut_off
        # a response with no id: its deltas carry an id its turn_ended does not, so what it
        # said and how much audio it made are not joined to it (a known limitation: the
        # OpenAI transport always sends response ids)
        identified = response.response_id is not None
        users = [m["content"] for m in data.input if m["role"] == "user"]
        expected: list[str | None] = []
        if response.tag in typed:
            expected.append(typed[response.tag])
        if response.caller is not None:
            _, transcript, when = response.caller
            expected.append(transcript if when in ("before", "during") else None)
            if when == "after":
                late.add(transcript)
        if not sensitive:
            expected = [None for _ in expected]
        if complete:
            assert users == expected, f"generation {response.tag}: {users} != {expected}"
        else:  # cut by the close: the words that had come by then
            assert len(users) <= len(expected)
            assert all(u in (e, None) for u, e in zip(users, expected, strict=False))
        tool_ids = {m["tool_call_id"] for m in data.input if m["role"] == "tool"}
        assert tool_ids <= made_before, f"generation {response.tag} got another call's output"
        own_ids = {call.call_id for call in response.calls}
        for message in data.output:
            assert message["role"] == "assistant"
            called = {c["id"] for c in message.get("tool_calls", ())}
            assert called <= own_ids, f"generation {response.tag} made another's calls"
            if complete:
                first_made = own_ids - made_before
                assert first_made <= called, f"generation {response.tag} lost a call"
                said = response.said if sensitive and identified else None
                assert message["content"] == said, f"generation {response.tag} said otherwise"
        if complete and (response.said is not None or response.calls):
            assert len(data.output) == 1, f"generation {response.tag} has no answer"
        made_before |= own_ids

        measured = turn.span_data.export()["data"]
        for name, value in measured.items():
            if name.endswith("_ms"):
                assert value >= 0, (name, value)
        if "voice_to_voice_ms" in measured and "time_to_first_audio_ms" in measured:
            assert measured["voice_to_voice_ms"] >= measured["time_to_first_audio_ms"]
        if "audio_heard_ms" in measured and "audio_generated_ms" in measured:
            assert measured["audio_heard_ms"] <= measured["audio_generated_ms"]
        if complete and identified and response.audio_chunks:
            assert measured["audio_generated_ms"] == round(response.audio_chunks * 8 / 48, 1)

        speeches = [
            s
            for s in _spans_of(recorder, "speech")
            if s.parent_id == turn.span_id  # type: ignore[union-attr]
        ]
        if not (conversation.audio and sensitive):
            assert speeches == [], "audio recorded without include_audio or with data withheld"
        elif complete and identified and response.audio_chunks:
            (speech,) = speeches
            audio = base64.b64decode(speech.span_data.output)
            assert audio == b"\x00\x01" * 4 * response.audio_chunks, f"speech {response.tag}"

    everything_in_generations = json.dumps([g.span_data.input for g in generations.values()])
    for transcript in late:
        assert transcript not in everything_in_generations, "a late transcript on a generation"
    heard = {s.span_data.output for s in _spans_of(recorder, "transcription")} - {None}
    spoken = {r.caller[1] for r in conversation.responses if r.caller is not None}
    assert heard <= (spoken if sensitive else set()), "a transcription of words never said"
    if not (conversation.audio and sensitive):
        assert all(not s.span_data.input for s in _spans_of(recorder, "transcription"))


def check_conversation(
    conversation: Conversation, *, processors: Sequence[TracingProcessor] = ()
) -> None:
    """Run untraced twice and traced once; everything observable must agree.

    ``processors`` are registered after the recording one in every run. How many
    conversations a run generated, and what they exercised: run pytest with
    ``--hypothesis-show-statistics``.
    """
    plain, plain_recorder = run_conversation(conversation, traced_run=False, processors=processors)
    again, _ = run_conversation(conversation, traced_run=False, processors=processors)
    traced_run, recorder = run_conversation(conversation, traced_run=True, processors=processors)

    check_script_validity(conversation, plain)
    # Evidence that exact comparison is sound: the SDK itself is deterministic here.
    assert _comparable(again) == _comparable(plain)
    check_untraced(plain, plain_recorder)

    assert _comparable(traced_run) == _comparable(plain)
    assert traced_run.ambient_problems == plain.ambient_problems == []
    check_traced(conversation, traced_run, recorder)
    _label(plain, recorder)


def _label(run: Run, recorder: SpanRecorder) -> None:
    """Say what the conversation exercised (``--hypothesis-show-statistics``)."""
    event(f"ended: {run.outcome[0]} {run.outcome[1] if len(run.outcome) > 1 else ''}".strip())
    event(f"stream end seen: {bool(_raw(run, 'end_of_stream'))}")
    event(f"messages sent: {sum(1 for sent in run.sent if sent[0] == 'user_input')}")
    event(f"agent updates: {bool(run.updates)}")
    approvals = sum(1 for e in run.events if e.type == "tool_approval_required")
    event(f"approvals asked: {min(approvals, 2)}{'+' if approvals > 2 else ''}")
    event(f"guardrail tripped: {any(e.type == 'guardrail_tripped' for e in run.events)}")
    ids = [call.call_id for call in _raw(run, "function_call")]
    event(f"repeated call ids: {len(ids) != len(set(ids))}")
    kinds = Counter(span.span_data.type for span in recorder.started)
    event(f"handoff spans: {min(kinds['handoff'], 2)}{'+' if kinds['handoff'] > 2 else ''}")
    event(f"function spans: {min(kinds['function'], 3)}{'+' if kinds['function'] > 3 else ''}")
    settles = [e for e in run.events if e.type == "tool_end" and e.tool.name == "settle"]
    event(f"tools that settled another call: {min(len(settles), 2)}")
    event(f"calls rejected by a tool: {bool(run.settled)}")
    event(f"a tool closed the session: {bool(run.hung_up)}")
    charges = [e for e in run.events if e.type == "tool_end" and e.tool.name == "charge"]
    event(f"custom failure_error_function used: {bool(charges)}")
    ghosts = [u for u in _raw(run, "turn_ended") if u.response_id == "ghost"]
    event(f"responses ended without starting: {bool(ghosts)}")
    event(f"transport exception: {any(e.type == 'error' for e in run.events)}")
    cut = [s for s in recorder.started if s.error and "closed before" in s.error["message"]]
    event(f"spans cut short by the close: {bool(cut)}")


# -- the properties ----------------------------------------------------------------------------


@given(conversations(parallel=False, inline=False))
def test_one_call_per_turn_in_background_tasks(conversation: Conversation) -> None:
    """Strict scripts; tools and handoffs in background tasks (the SDK default)."""
    check_conversation(conversation)


@given(conversations(parallel=False, inline=True))
def test_one_call_per_turn_inline(conversation: Conversation) -> None:
    """Strict scripts; ``async_tool_calls=False``: tools run inside the model's listener."""
    check_conversation(conversation)


def _settled_by_a_tool(verdict: str, async_tools: bool) -> Conversation:
    """A refund left to a tool; a later turn's ``settle`` approves or rejects it. Also a
    custom ``failure_error_function``, a response that ended without starting, and texts
    withheld."""
    lookup_call = Call("c1", "lookup", json.dumps({"query": f"a {SECRET}"}), "output")
    left = Call("c2", "refund", json.dumps({"query": f"b {SECRET}"}), "approval", "tool")
    failing = Call("c3", "charge", json.dumps({"query": f"c {SECRET}"}), "output")
    settling = Call("c4", "settle", json.dumps({"call_id": "c2", "verdict": verdict}), "output")
    first = Response(
        "0_0",
        "resp_0_0",
        (("call", lookup_call), ("call", left), ("call", failing)),
        (11, 3),
        (("ghost", 1000),),
        lookup_call,
    )
    second = Response("0_1", None, (("call", settling),), (7, 2), (), settling)
    third = Response("0_2", "resp_0_2", (("transcript", f"done {SECRET}"),), (5, 1), (), None)
    return Conversation(
        strict=False,
        async_tools=async_tools,
        greeting=None,
        exchanges=(Exchange(None, f"message 0 card {SECRET}", (first, second, third)),),
        ends_with_stream_end=True,
        mid_updates=(),
        close="aexit",
        close_at=None,
        close_error=False,
        ambient="none",
        via="traced",
        sensitive=False,
        workflow_name=None,
    )


@example(_settled_by_a_tool("approve", async_tools=True))
@example(_settled_by_a_tool("reject", async_tools=True))
@example(_settled_by_a_tool("approve", async_tools=False))
@example(_settled_by_a_tool("reject", async_tools=False))
@given(conversations(parallel=True))
def test_parallel_calls_and_agent_updates_mid_turn(conversation: Conversation) -> None:
    """Up to three calls per turn, ``update_agent()`` at random points (non-strict)."""
    check_conversation(conversation)


_LOOKUP = Call("c1", "lookup", '{"query": "a"}', "output")
_TO_BRAVO = Call("c2", "transfer_to_bravo", "{}", "handoff:Bravo")
_leak_example = Conversation(
    strict=True,
    async_tools=True,
    greeting=None,
    exchanges=(
        Exchange(
            None,
            "message 0",
            (
                Response("0_0", "resp_0_0", (("call", _LOOKUP),), None, (), _LOOKUP),
                Response("0_1", "resp_0_1", (("call", _TO_BRAVO),), None, (), _TO_BRAVO),
                Response("0_2", "resp_0_2", (), None, (), None),
            ),
        ),
    ),
    ends_with_stream_end=True,
    mid_updates=(),
    close="aexit",
    close_at=None,
    close_error=False,
    ambient="span",
    via="traced",
    sensitive=True,
    workflow_name=None,
)


@example(_leak_example)
@given(conversations(parallel=False, inline=False))
def test_user_callbacks_see_the_callers_context(conversation: Conversation) -> None:
    """Handoff callbacks are user code: they must see the caller's context, traced or not."""
    token = _CALLBACK_SPANS.set(True)
    try:
        plain, _ = run_conversation(conversation, traced_run=False)
        traced_run, recorder = run_conversation(conversation, traced_run=True)
    finally:
        _CALLBACK_SPANS.reset(token)
    for seen in plain.observations:
        assert seen.span is plain.before[1]
    callbacks = [o for o in traced_run.observations if o.where in ("on_handoff", "guardrail")]
    for seen in callbacks:
        assert seen.span is traced_run.before[1], (
            f"on_handoff saw {seen.span and seen.span.span_data.export()} as current span"
        )
    assert tree_problems(recorder) == []


def test_an_output_that_was_sent_is_not_reported_as_never_sent() -> None:
    call = Call("c1", "lookup", '{"query": "a"}', "output")
    conversation = dataclasses.replace(
        _leak_example,
        exchanges=(
            Exchange(
                None,
                "message 0",
                (
                    Response("0_0", "resp_0_0", (("call", call),), None, (), call),
                    Response("0_1", "resp_0_1", (), None, (), None),
                ),
            ),
        ),
        ambient="none",
    )
    run, recorder = run_conversation(conversation, traced_run=True)
    assert run.outcome == ("completed",)
    assert [sent[:2] for sent in run.sent] == [("user_input", "message 0"), ("tool_output", "c1")]
    (function,) = _spans_of(recorder, "function")
    assert function.span_data.output == "found a"
    assert function.error is None
