"""The span machine: everything that decides what a realtime session's trace looks like.

Theory of operation
-------------------
A realtime session is a long conversation in which agents take turns, call tools and hand
the conversation to each other, while audio streams through. The machine turns the
session's lifecycle, fed to it as :mod:`events <realtime_spans.core.events>` in the order
they happened, into :mod:`commands <realtime_spans.core.commands>` that open and close
spans. It does no I/O and reads no clock: the same events always give the same commands,
so a recorded event log can be replayed into any sink.

The *main state* is the session's agent situation, and only it is a state machine in the
strict sense, declared with ``transitions`` in :data:`TRANSITIONS` below. A single
``transitions.Machine`` built at import checks the table (unknown states, two
destinations for one trigger and source fail at import) and compiles it into a
``(trigger, source) -> destination`` lookup; each session's machine then holds only its
state, instead of a ``transitions`` machine of its own (12 KiB and 56 us to build, about
10 us per trigger, measured: see benchmarks/README.md)::

    idle --activate--> agent_active --begin_handoff--> handing_off --settle--> agent_active
      \\__________________ close (from any state) __________________________--> closed

* ``idle``: the session span may be open, but no agent is in place yet.
* ``agent_active``: one agent is active; turns and tool calls hang under it.
* ``handing_off``: the model called a handoff tool; the outgoing agent stays active until
  the incoming one is in place (``activate`` with that call's id), or the handoff fails
  (``settle`` back, outgoing agent unchanged).
* ``closed``: every span has ended; the machine only reports what still arrives.

Turns and tool calls are *extended state* beside the main state (h11 keeps keep-alive and
protocol switches the same way): a realtime tool finishes after the response that called
it ended, and turns of the next agent can start while a tool of the previous one is still
running, so they cannot be states of their own. :data:`ACCEPTED_IN` says in which main
states each event makes sense; anything else is answered with a :class:`Diagnostic`
(lenient, the default) or an :class:`UnexpectedEvent` (``strict=True``).

Span-tree rules kept here (each one a lesson from an in-SDK attempt):

* every span has an explicit parent: agent spans hang under the session span (siblings,
  never nested), turns under the agent active when they started, tool calls and handoffs
  under the agent that requested them, guardrails under the agent whose output tripped;
* an agent span ends when the agent is no longer active *and* none of its turns or tool
  calls is open, so no child ever outlives its parent;
* every span started is ended exactly once, at the latest when the session closes; spans
  cut short by the close say why (a flag or an error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

import attrs
from transitions import Machine

from .commands import (
    AgentSpec,
    AnnotateSpan,
    AnnotateTrace,
    AttachAudio,
    CloseTrace,
    Command,
    Diagnostic,
    EndSpan,
    FlagTurn,
    FunctionSpec,
    GenerationSpec,
    GuardrailSpec,
    HandoffSpec,
    OpenTrace,
    SessionSpec,
    SetError,
    SetHandoffTarget,
    SetMeasures,
    SetMessages,
    SetOutput,
    SetTimer,
    SetUsage,
    SpeechSpec,
    StartSpan,
    TranscriptionSpec,
    TurnSpec,
)
from .conversation import CallerItem, Conversation, Exchange
from .events import (
    USAGE_FIELD_COUNT,
    AgentActivated,
    AgentSaid,
    AudioInterrupted,
    AudioStarted,
    CallerAudioCommitted,
    CallerSpeechStarted,
    CallerSpeechStopped,
    CallerTranscribed,
    CallerTranscriptionFailed,
    EntryFailed,
    ErrorInfo,
    ErrorReported,
    Event,
    GuardrailTripped,
    MessageSent,
    ModelConfigured,
    ServerSessionIdentified,
    SessionClosed,
    SessionStarted,
    TextStarted,
    TimerFired,
    ToolApprovalRequested,
    ToolApproved,
    ToolCalled,
    ToolFailed,
    ToolGuardrailRejected,
    ToolOutputSent,
    ToolRejected,
    TransportFailed,
    TurnEnded,
    TurnStarted,
    Usage,
    UsageReported,
    add_into,
)

IDLE: Final = "idle"
AGENT_ACTIVE: Final = "agent_active"
HANDING_OFF: Final = "handing_off"
CLOSED: Final = "closed"

STATES: Final = (IDLE, AGENT_ACTIVE, HANDING_OFF, CLOSED)

#: The main-state transitions, top to bottom: (trigger, source, destination).
TRANSITIONS: Final = (
    ("activate", IDLE, AGENT_ACTIVE),  # the starting agent is in place
    ("activate", AGENT_ACTIVE, AGENT_ACTIVE),  # update_agent(): switch agents
    ("activate", HANDING_OFF, HANDING_OFF),  # a handoff completed, or update_agent(), mid-handoff
    ("begin_handoff", AGENT_ACTIVE, HANDING_OFF),  # the model called a handoff tool
    ("begin_handoff", HANDING_OFF, HANDING_OFF),  # ... another one, in parallel
    ("settle", HANDING_OFF, AGENT_ACTIVE),  # no handoff is in flight any more
    ("close", IDLE, CLOSED),
    ("close", AGENT_ACTIVE, CLOSED),
    ("close", HANDING_OFF, CLOSED),
)

_OPEN: Final = frozenset({IDLE, AGENT_ACTIVE, HANDING_OFF})
_WITH_AGENT: Final = frozenset({AGENT_ACTIVE, HANDING_OFF})

#: In which main states each event is accepted; elsewhere it gets a diagnostic.
ACCEPTED_IN: Final[dict[type[Event], frozenset[str]]] = {
    SessionStarted: frozenset({IDLE}),
    AgentActivated: _OPEN,
    TurnStarted: _WITH_AGENT,
    UsageReported: _WITH_AGENT,
    TurnEnded: _WITH_AGENT,
    AudioInterrupted: _WITH_AGENT,
    ToolCalled: _WITH_AGENT,
    ToolApprovalRequested: _WITH_AGENT,
    ToolApproved: _WITH_AGENT,
    ToolRejected: _WITH_AGENT,
    ToolGuardrailRejected: _WITH_AGENT,
    ToolOutputSent: _WITH_AGENT,
    ToolFailed: _WITH_AGENT,
    GuardrailTripped: _OPEN,
    ErrorReported: _OPEN,
    TransportFailed: _OPEN,
    ServerSessionIdentified: _OPEN,
    EntryFailed: _OPEN,
    SessionClosed: _OPEN,
    ModelConfigured: _OPEN,
    CallerSpeechStarted: _OPEN,
    CallerSpeechStopped: _OPEN,
    CallerAudioCommitted: _OPEN,
    CallerTranscribed: _OPEN,
    CallerTranscriptionFailed: _OPEN,
    MessageSent: _OPEN,
    AudioStarted: _WITH_AGENT,
    TextStarted: _WITH_AGENT,
    AgentSaid: _WITH_AGENT,
    TimerFired: _OPEN,
}

SESSION_SPAN_ID: Final = 1
TRACE_KEY_SERVER_SESSION: Final = "realtime_session_id"

_HANDOFF: Final = "handoff"
_FUNCTION: Final = "function"
_UNKNOWN_TOOL: Final = "unknown"


class UnexpectedEvent(Exception):
    """Raised in strict mode for an event that does not fit the machine's state.

    Example:
        >>> try:
        ...     SpanMachine(strict=True).feed(TurnEnded())
        ... except UnexpectedEvent as error:
        ...     (error.state, error.event_name)
        ('idle', 'TurnEnded')
    """

    def __init__(self, state: str, event: object, reason: str) -> None:
        self.state = state
        self.event = event
        self.event_name = type(event).__name__
        self.reason = reason
        super().__init__(f"{self.event_name} in state {state!r}: {reason}")


@attrs.define
class _Agent:
    span_id: int
    key: int
    name: str
    tools: frozenset[str]
    routes: dict[str, str]  # handoff tool name -> target agent name


@attrs.define
class _Turn:
    span_id: int
    agent_span: int
    response_id: str | None
    exchange: Exchange
    interrupted: bool = False
    speech_span: int | None = None  # only when the session records audio
    audio_response: str | None = None  # the response id its audio came with


@attrs.define
class _Call:
    span_id: int
    agent_span: int
    kind: str
    name: str
    awaiting_approval: bool = False
    outcome: ErrorInfo | None = None  # a status to record when the call ends


def _transition_table() -> dict[tuple[str, str], str]:
    """:data:`TRANSITIONS` as a ``(trigger, source) -> destination`` lookup.

    The table is declared for, and checked by, a ``transitions`` machine built once here
    (duplicate or contradictory rows fail at import); each :class:`SpanMachine` then moves
    with one dictionary lookup instead of carrying a ``transitions`` machine of its own
    (about 12 KiB and 100 us to build, about 10 us per trigger).
    """
    declared = Machine(
        states=list(STATES),
        transitions=[list(row) for row in TRANSITIONS],
        initial=IDLE,
        auto_transitions=False,
    )
    table: dict[tuple[str, str], str] = {}
    for trigger, event in declared.events.items():
        for source, candidates in event.transitions.items():
            (only,) = candidates  # one destination per (trigger, source): deterministic
            assert only.dest is not None  # every row of TRANSITIONS names its destination
            table[(trigger, source)] = only.dest
    return table


_NEXT: Final = _transition_table()


class SpanMachine:
    """Turns the events of one realtime session into span commands.

    Args:
        strict: raise :class:`UnexpectedEvent` for an event that does not fit, instead of
            answering it with a :class:`Diagnostic` command (for tests).

    Example:
        >>> from realtime_spans.core import AgentActivated, SessionStarted, StartSpan
        >>> machine = SpanMachine()
        >>> _ = machine.feed(SessionStarted("Support line"))
        >>> [type(c).__name__ for c in machine.feed(AgentActivated(7, "Greeter"))]
        ['StartSpan']
        >>> machine.state
        'agent_active'
    """

    def __init__(self, *, strict: bool = False) -> None:
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {strict!r}")
        self._strict = strict
        self._state: str = IDLE
        self._started = False
        self._muted = False
        self._record_audio = False
        self._trace_open = False
        self._next_id = SESSION_SPAN_ID
        self._errored: set[int] = set()
        self._active: _Agent | None = None
        self._agent_spans: dict[int, int] = {}  # agent key -> its most recent open span
        self._children: dict[int, int] = {}  # open agent span -> open turns and calls
        self._retired: set[int] = set()  # agent spans no longer active, waiting for children
        self._turn_count = 0
        self._turns: dict[int, _Turn] = {}  # open turns, oldest first (generating or playing)
        self._conversation = Conversation()
        self._pending_usage: Usage | None = None
        self._total_usage: list[int | None] | None = None  # summed field by field
        self._calls: dict[str, _Call] = {}  # open tool and handoff calls, by call id
        self._finished_calls: set[str] = set()

    @property
    def state(self) -> str:
        """The main state: ``idle``, ``agent_active``, ``handing_off`` or ``closed``."""
        return self._state

    @property
    def strict(self) -> bool:
        """Whether unexpected events raise instead of producing diagnostics."""
        return self._strict

    def function_span(self, call_id: str) -> int | None:
        """The open function span of a tool call, if there is one.

        Example:
            >>> from realtime_spans.core import SessionStarted, AgentActivated, ToolCalled
            >>> machine = SpanMachine()
            >>> _ = machine.feed(SessionStarted("s"))
            >>> _ = machine.feed(AgentActivated(1, "a", tools=("lookup",)))
            >>> _ = machine.feed(ToolCalled("call_1", "lookup"))
            >>> machine.function_span("call_1")
            3
        """
        call = self._calls.get(call_id)
        return call.span_id if call is not None and call.kind != _HANDOFF else None

    def feed(self, event: Event) -> tuple[Command, ...]:
        """Consume one event and return the commands it causes, in order.

        Example:
            >>> from realtime_spans.core import SessionStarted
            >>> [type(c).__name__ for c in SpanMachine().feed(SessionStarted("s"))]
            ['OpenTrace', 'StartSpan']
        """
        if self._muted:
            if self._strict and type(event) not in _HANDLERS:
                raise UnexpectedEvent(self._state, event, "not a realtime_spans.core event")
            return ()
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return self._unexpected(event, "not a realtime_spans.core event")
        state = self._state
        if state not in ACCEPTED_IN[type(event)]:
            if state == CLOSED:
                return self._unexpected(event, "the session is closed")
            return self._unexpected(event, f"not accepted in state {state!r}")
        if not self._started and not isinstance(event, (SessionStarted, SessionClosed)):
            return self._unexpected(event, "the session has not started")
        return handler(self, event)

    # -- helpers --------------------------------------------------------------------------

    def _unexpected(self, event: object, reason: str) -> tuple[Command, ...]:
        if self._strict:
            raise UnexpectedEvent(self._state, event, reason)
        return (Diagnostic(self._state, type(event).__name__, reason),)

    def _move(self, trigger: str) -> None:
        destination = _NEXT.get((trigger, self._state))
        if destination is None:  # pragma: no cover - the table and handlers agree
            raise AssertionError(f"{trigger!r} from {self._state!r}: not in TRANSITIONS")
        self._state = destination

    def _new_id(self) -> int:
        span_id = self._next_id
        self._next_id += 1
        return span_id

    def _error(self, span_id: int, error: ErrorInfo, out: list[Command]) -> None:
        """Record an error on a span; the first error a span gets is the one it keeps."""
        if span_id not in self._errored:
            self._errored.add(span_id)
            out.append(SetError(span_id, error))

    def _adopt(self, agent_span: int) -> None:
        self._children[agent_span] += 1

    def _release(self, agent_span: int, out: list[Command]) -> None:
        """A turn or call of ``agent_span`` ended; end a retired agent with its last child."""
        left = self._children[agent_span] - 1
        self._children[agent_span] = left
        if left == 0 and agent_span in self._retired:
            self._end_agent(agent_span, out)

    def _retire_active(self, out: list[Command]) -> None:
        active = self._active
        if active is None:
            return
        self._active = None
        if self._children[active.span_id] == 0:
            self._end_agent(active.span_id, out)
        else:
            self._retired.add(active.span_id)

    def _end_agent(self, span_id: int, out: list[Command]) -> None:
        self._retired.discard(span_id)
        del self._children[span_id]
        self._agent_spans = {k: v for k, v in self._agent_spans.items() if v != span_id}
        out.append(EndSpan(span_id))

    def _handoffs_in_flight(self) -> bool:
        return any(call.kind == _HANDOFF for call in self._calls.values())

    def _latest_turn(self) -> _Turn | None:
        """The newest turn whose response is still generating."""
        for turn in reversed(self._turns.values()):
            if turn.exchange.generating:
                return turn
        return None

    def _finish_call(self, call_id: str, call: _Call, out: list[Command]) -> None:
        del self._calls[call_id]
        self._finished_calls.add(call_id)
        out.append(EndSpan(call.span_id))
        self._release(call.agent_span, out)

    # -- handlers, one per event ----------------------------------------------------------

    def _on_session_started(self, event: SessionStarted) -> tuple[Command, ...]:
        if self._started:
            return self._unexpected(event, "the session has already started")
        if not event.tracing_enabled:
            self._muted = True
            return ()
        self._started = True
        self._record_audio = event.record_audio
        out: list[Command] = []
        if event.open_trace:
            self._trace_open = True
            out.append(OpenTrace(event.workflow_name, event.group_id, event.metadata))
        out.append(StartSpan(self._new_id(), None, SessionSpec(event.workflow_name)))
        if not event.open_trace and event.group_id is not None:
            # The caller's trace has its own group: keep the session's on its span.
            out.append(AnnotateSpan(SESSION_SPAN_ID, "group_id", event.group_id))
        return tuple(out)

    def _on_agent_activated(self, event: AgentActivated) -> tuple[Command, ...]:
        out: list[Command] = []
        call = self._calls.get(event.call_id) if event.call_id is not None else None
        if call is not None and call.kind == _HANDOFF:
            assert event.call_id is not None
            if call.name != event.name:
                out.append(SetHandoffTarget(call.span_id, event.name))
            self._finish_call(event.call_id, call, out)
        self._retire_active(out)
        span_id = self._new_id()
        self._children[span_id] = 0
        self._agent_spans[event.agent] = span_id
        self._active = _Agent(
            span_id=span_id,
            key=event.agent,
            name=event.name,
            tools=frozenset(event.tools),
            routes={route.tool_name: route.agent_name for route in event.handoffs},
        )
        handoff_targets = tuple(route.agent_name for route in event.handoffs)
        out.append(
            StartSpan(span_id, SESSION_SPAN_ID, AgentSpec(event.name, event.tools, handoff_targets))
        )
        self._move("activate")
        if self.state == HANDING_OFF and not self._handoffs_in_flight():
            self._move("settle")
        return tuple(out)

    def _on_turn_started(self, event: TurnStarted) -> tuple[Command, ...]:
        if event.response_id is not None and any(
            turn.response_id == event.response_id for turn in self._turns.values()
        ):
            return ()  # a late turn_started for a response already under way
        active = self._active
        assert active is not None
        self._turn_count += 1
        span_id = self._new_id()
        generation_id = self._new_id()
        self._adopt(active.span_id)
        conversation = self._conversation
        exchange = conversation.begin(generation_id, event.at)
        self._turns[span_id] = _Turn(span_id, active.span_id, event.response_id, exchange)
        spec = GenerationSpec(conversation.model, conversation.model_config)
        return (
            StartSpan(
                span_id, active.span_id, TurnSpec(self._turn_count, active.name, event.response_id)
            ),
            StartSpan(generation_id, span_id, spec),
        )

    def _on_usage_reported(self, event: UsageReported) -> tuple[Command, ...]:
        # Usage comes just before the turn_ended of its response, without a response id:
        # hold it for the turn that ends next; with no turn open it is no turn's (a
        # response that never started). The session's total is summed at close.
        usage = event.usage
        if self._latest_turn() is not None:
            pending = self._pending_usage
            self._pending_usage = usage if pending is None else pending + usage
        if self._total_usage is None:
            self._total_usage = [None] * USAGE_FIELD_COUNT
        add_into(self._total_usage, usage)
        return ()

    def _on_turn_ended(self, event: TurnEnded) -> tuple[Command, ...]:
        turn = self._find_turn(event.response_id)
        if turn is None:
            unmatched = self._unexpected(event, "no open turn matches")
            self._pending_usage = None  # that response's usage: never the next turn's
            return unmatched
        out: list[Command] = []
        self._end_generation(turn, out)
        due = turn.exchange.playback_due()
        if turn.interrupted or due is None or event.at is None or due <= event.at:
            self._end_turn(turn, out)
        else:  # its audio is still playing: a barge-in can still cut it
            out.append(SetTimer(turn.span_id, due))
        return tuple(out)

    def _find_turn(self, response_id: str | None) -> _Turn | None:
        """The generating turn of a response (one without an id when none has it)."""
        if response_id is not None:
            for turn in self._turns.values():
                if turn.response_id == response_id and turn.exchange.generating:
                    return turn
            for turn in reversed(self._turns.values()):
                if turn.response_id is None and turn.exchange.generating:
                    return turn
            return None
        return self._latest_turn()

    def _end_generation(self, turn: _Turn, out: list[Command]) -> None:
        """The response is done: its generation span ends, with its messages and usage."""
        exchange = turn.exchange
        exchange.generating = False
        generation = exchange.generation_span
        usage, self._pending_usage = self._pending_usage, None
        if usage is not None:
            out.append(SetUsage(generation, usage))
            out.append(SetUsage(turn.span_id, usage))
        out.append(SetMessages(generation, exchange.input_messages(), exchange.output_messages()))
        out.append(EndSpan(generation))
        self._measure(turn, out)

    def _measure(self, turn: _Turn, out: list[Command]) -> None:
        measures = turn.exchange.measures(self._conversation.silence_ms)
        if measures:
            out.append(SetMeasures(turn.span_id, measures))

    def _end_turn(self, turn: _Turn, out: list[Command]) -> None:
        """End a turn whose generation has ended."""
        voice_to_voice = turn.exchange.measures(None).get("voice_to_voice_ms")
        if voice_to_voice is not None:
            self._conversation.voice_to_voice.append(voice_to_voice)
        del self._turns[turn.span_id]
        speech = turn.speech_span
        if speech is not None:  # its speech ends first, with the audio it recorded
            exchange = turn.exchange
            text, heard = exchange.said, exchange.heard_ms
            out.append(AttachAudio(speech, "agent", turn.audio_response, text, heard))
            out.append(EndSpan(speech))
        out.append(EndSpan(turn.span_id))
        self._release(turn.agent_span, out)

    def _on_timer_fired(self, event: TimerFired) -> tuple[Command, ...]:
        turn = self._turns.get(event.token)
        if turn is None or turn.exchange.generating:
            return ()  # the caller barged in first, or the session closed
        out: list[Command] = []
        self._end_turn(turn, out)
        return tuple(out)

    def _on_audio_interrupted(self, event: AudioInterrupted) -> tuple[Command, ...]:
        turn = self._playing_turn(event.item_id)
        if turn is None or turn.interrupted:
            return ()  # playback of a response whose turn has ended was cut: no turn to mark
        turn.interrupted = True
        self._conversation.interruptions += 1
        exchange = turn.exchange
        exchange.heard_ms = exchange.heard(event.at, event.generated_ms, event.played_ms)
        out: list[Command] = [FlagTurn(turn.span_id, "interrupted")]
        if not exchange.generating:
            self._measure(turn, out)
            self._end_turn(turn, out)
        return tuple(out)

    def _playing_turn(self, item_id: str | None) -> _Turn | None:
        """The open turn whose audio item is ``item_id`` (``None``: the newest turn)."""
        if item_id is None:
            return next(reversed(self._turns.values()), None)
        for turn in reversed(self._turns.values()):
            if turn.exchange.audio_item == item_id:
                return turn
        return None

    def _on_audio_started(self, event: AudioStarted) -> tuple[Command, ...]:
        turn = self._find_turn(event.response_id)
        if turn is None or turn.exchange.first_audio_at is not None:
            return ()
        turn.exchange.first_audio_at = event.at
        turn.exchange.audio_item = event.item_id
        if not self._record_audio:
            return ()
        # The session records audio: the response's speech, from its first audio on.
        turn.speech_span, turn.audio_response = self._new_id(), event.response_id
        return (StartSpan(turn.speech_span, turn.span_id, SpeechSpec(self._conversation.model)),)

    def _on_text_started(self, event: TextStarted) -> tuple[Command, ...]:
        turn = self._find_turn(event.response_id)
        if turn is not None and turn.exchange.first_text_at is None:
            turn.exchange.first_text_at = event.at
        return ()

    def _on_agent_said(self, event: AgentSaid) -> tuple[Command, ...]:
        turn = self._find_turn(event.response_id)
        if turn is None:
            return self._unexpected(event, "no open turn matches")
        turn.exchange.said = event.text
        turn.exchange.audio_ms = event.audio_ms
        return ()

    # -- the caller's side ------------------------------------------------------------------

    def _on_model_configured(self, event: ModelConfigured) -> tuple[Command, ...]:
        conversation = self._conversation
        conversation.model = event.model
        conversation.model_config = dict(event.config)
        conversation.transcription_model = event.transcription_model
        conversation.input_format = event.input_format
        return ()

    def _open_transcription(self, item: CallerItem, out: list[Command]) -> None:
        """Start the transcription span of a caller item, under the active agent."""
        if item.span_id is not None or item.done:
            return
        active = self._active
        parent = active.span_id if active is not None else SESSION_SPAN_ID
        if active is not None:
            self._adopt(parent)
        item.span_id, item.agent_span = self._new_id(), parent
        conversation = self._conversation
        spec = TranscriptionSpec(conversation.transcription_model, conversation.input_format)
        out.append(StartSpan(item.span_id, parent, spec))

    def _close_transcription(self, item: CallerItem, out: list[Command]) -> None:
        item.done = True
        span_id, item.span_id = item.span_id, None
        if span_id is None:
            return
        if self._record_audio:
            out.append(AttachAudio(span_id, "caller", item.item_id))
        out.append(EndSpan(span_id))
        if item.agent_span is not None and item.agent_span != SESSION_SPAN_ID:
            self._release(item.agent_span, out)

    def _on_caller_speech_started(self, event: CallerSpeechStarted) -> tuple[Command, ...]:
        item = self._conversation.caller(event.item_id)
        if item.started_at is None:
            item.started_at = event.at
        out: list[Command] = []
        if self._conversation.transcription_model is not None:
            self._open_transcription(item, out)
        return tuple(out)

    def _on_caller_speech_stopped(self, event: CallerSpeechStopped) -> tuple[Command, ...]:
        item = self._conversation.caller(event.item_id)
        if item.stopped_at is None:
            item.stopped_at = event.at
        return ()

    def _on_caller_audio_committed(self, event: CallerAudioCommitted) -> tuple[Command, ...]:
        conversation = self._conversation
        item = conversation.caller(event.item_id)
        conversation.commit(item)
        out: list[Command] = []
        if conversation.transcription_model is not None:
            self._open_transcription(item, out)
        return tuple(out)

    def _on_caller_transcribed(self, event: CallerTranscribed) -> tuple[Command, ...]:
        item = self._conversation.caller(event.item_id)
        if item.transcribed_at is not None:
            return ()  # a repeated transcript: the first stays
        item.transcript, item.transcribed_at = event.transcript, event.at
        out: list[Command] = []
        self._open_transcription(item, out)
        if item.span_id is not None:
            out.append(SetOutput(item.span_id, event.transcript))
        self._close_transcription(item, out)
        for turn in self._turns.values():  # the turn that answers it, while it is open
            if any(entry is item for entry in turn.exchange.inputs):
                if not turn.exchange.generating:
                    self._measure(turn, out)
                break
        return tuple(out)

    def _on_caller_transcription_failed(
        self, event: CallerTranscriptionFailed
    ) -> tuple[Command, ...]:
        item = self._conversation.caller(event.item_id)
        if item.done:
            return ()
        out: list[Command] = []
        self._open_transcription(item, out)
        if item.span_id is not None:
            self._error(item.span_id, event.error, out)
        self._close_transcription(item, out)
        return tuple(out)

    def _on_message_sent(self, event: MessageSent) -> tuple[Command, ...]:
        message: dict[str, object]
        if event.call_id is None:
            message = {"role": "user", "content": event.text}
        else:
            message = {"role": "tool", "tool_call_id": event.call_id, "content": event.text}
        self._conversation.pending.append(message)
        return ()

    def _on_tool_called(self, event: ToolCalled) -> tuple[Command, ...]:
        if event.call_id in self._calls or event.call_id in self._finished_calls:
            return ()  # the session ignores a repeated call id, and so do we
        active = self._active
        assert active is not None
        span_id = self._new_id()
        self._adopt(active.span_id)
        target = active.routes.get(event.name)
        if target is not None:
            self._calls[event.call_id] = _Call(span_id, active.span_id, _HANDOFF, target)
            self._record_call(event)
            self._move("begin_handoff")
            return (StartSpan(span_id, active.span_id, HandoffSpec(active.name, target)),)
        kind = _FUNCTION if event.name in active.tools else _UNKNOWN_TOOL
        self._calls[event.call_id] = _Call(span_id, active.span_id, kind, event.name)
        self._record_call(event)
        spec = FunctionSpec(event.name, event.call_id, event.arguments)
        return (StartSpan(span_id, active.span_id, spec),)

    def _record_call(self, event: ToolCalled) -> None:
        """The call is part of what the generating response answered."""
        turn = self._latest_turn()
        if turn is not None:
            function = {"name": event.name, "arguments": event.arguments}
            turn.exchange.tool_calls.append(
                {"id": event.call_id, "type": "function", "function": function}
            )

    def _open_function_call(self, event: Event, call_id: str) -> _Call | tuple[Command, ...]:
        call = self._calls.get(call_id)
        if call is None:
            if call_id in self._finished_calls:
                return ()
            return self._unexpected(event, f"no open tool call {call_id!r}")
        if call.kind == _HANDOFF:
            return self._unexpected(event, f"{call_id!r} is a handoff, not a tool call")
        return call

    def _on_tool_approval_requested(self, event: ToolApprovalRequested) -> tuple[Command, ...]:
        call = self._open_function_call(event, event.call_id)
        if isinstance(call, tuple):
            return call
        call.awaiting_approval = True
        return ()

    def _on_tool_approved(self, event: ToolApproved) -> tuple[Command, ...]:
        call = self._open_function_call(event, event.call_id)
        if isinstance(call, tuple):
            return call
        call.awaiting_approval = False
        return ()

    def _on_tool_rejected(self, event: ToolRejected) -> tuple[Command, ...]:
        call = self._open_function_call(event, event.call_id)
        if isinstance(call, tuple):
            return call
        call.awaiting_approval = False
        call.outcome = ErrorInfo(
            "Tool execution rejected", {"tool_name": call.name, "status": "rejected"}
        )
        return ()

    def _on_tool_guardrail_rejected(self, event: ToolGuardrailRejected) -> tuple[Command, ...]:
        call = self._open_function_call(event, event.call_id)
        if isinstance(call, tuple):
            return call
        what = "call" if event.stage == "input" else "output"
        call.outcome = ErrorInfo(
            f"Tool {what} rejected by guardrail",
            {"tool_name": call.name, "status": "guardrail_rejected", "stage": event.stage},
        )
        return ()

    def _on_tool_output_sent(self, event: ToolOutputSent) -> tuple[Command, ...]:
        call = self._calls.get(event.call_id)
        if call is None:
            if event.call_id in self._finished_calls:
                return ()  # a completed handoff's transfer message, or a late resend
            return self._unexpected(event, f"no open tool call {event.call_id!r}")
        if call.kind == _HANDOFF:
            return self._unexpected(event, "a handoff's output came before its new agent")
        out: list[Command] = []
        if event.output is not None:
            out.append(SetOutput(call.span_id, event.output))
        outcome = call.outcome
        if outcome is None and call.kind == _UNKNOWN_TOOL:
            outcome = ErrorInfo(
                f"Tool {call.name} not found", {"tool_name": call.name, "status": "not_found"}
            )
        if outcome is not None:
            self._error(call.span_id, outcome, out)
        self._finish_call(event.call_id, call, out)
        return tuple(out)

    def _on_tool_failed(self, event: ToolFailed) -> tuple[Command, ...]:
        call = self._calls.get(event.call_id)
        if call is None:
            if event.call_id in self._finished_calls:
                return ()  # its span already ended with what it had
            return self._unexpected(event, f"no open tool call {event.call_id!r}")
        out: list[Command] = []
        self._error(call.span_id, event.error, out)
        self._finish_call(event.call_id, call, out)
        if call.kind == _HANDOFF and not self._handoffs_in_flight() and self.state == HANDING_OFF:
            self._move("settle")
        return tuple(out)

    def _on_guardrail_tripped(self, event: GuardrailTripped) -> tuple[Command, ...]:
        # Under the agent whose output tripped, while its span is open; else the session
        # (never under another agent).
        parent = SESSION_SPAN_ID
        if event.agent is not None:
            parent = self._agent_spans.get(event.agent, SESSION_SPAN_ID)
        out: list[Command] = []
        for name in event.guardrails:
            span_id = self._new_id()
            out.append(StartSpan(span_id, parent, GuardrailSpec(name, True)))
            out.append(EndSpan(span_id))
        return tuple(out)

    def _on_error_reported(self, event: ErrorReported) -> tuple[Command, ...]:
        if event.call_id is not None:
            call = self._calls.get(event.call_id)
            if call is not None:
                out: list[Command] = []
                self._error(call.span_id, event.error, out)
                return tuple(out)
            if event.call_id in self._finished_calls:
                return ()  # the call's span already ended with its status
        turn = self._latest_turn()
        target = turn.span_id if turn is not None else SESSION_SPAN_ID
        out = []
        self._error(target, event.error, out)
        return tuple(out)

    def _on_transport_failed(self, event: TransportFailed) -> tuple[Command, ...]:
        out: list[Command] = []
        self._error(SESSION_SPAN_ID, event.error, out)
        return tuple(out)

    def _on_server_session_identified(self, event: ServerSessionIdentified) -> tuple[Command, ...]:
        key, value = TRACE_KEY_SERVER_SESSION, event.session_id
        span = AnnotateSpan(SESSION_SPAN_ID, key, value)
        if not self._trace_open:
            return (span,)  # the trace is the caller's: its metadata is not ours to change
        return (AnnotateTrace(key, value), span)

    def _on_entry_failed(self, event: EntryFailed) -> tuple[Command, ...]:
        # Every span opened so far carries the error that stopped the entry.
        out: list[Command] = []
        for call in self._calls.values():
            self._error(call.span_id, event.error, out)
        for turn in self._turns.values():
            self._error(turn.span_id, event.error, out)
        for agent_span in self._children:
            self._error(agent_span, event.error, out)
        return (*out, *self._close(event.error))

    def _on_session_closed(self, event: SessionClosed) -> tuple[Command, ...]:
        return self._close(event.error, event.by_call)

    def _close(self, error: ErrorInfo | None, by_call: str | None = None) -> tuple[Command, ...]:
        out: list[Command] = []
        if self._started:
            if error is not None:
                self._error(SESSION_SPAN_ID, error, out)
            for call_id, call in list(self._calls.items()):
                closed_it = call_id == by_call and call.kind == _FUNCTION
                if not closed_it or call.outcome is not None:
                    self._error(call.span_id, _cut_short(call), out)
                self._finish_call(call_id, call, out)
            for turn in list(self._turns.values()):
                if turn.exchange.generating:  # a turn only playing its audio was complete
                    out.append(FlagTurn(turn.span_id, "cut_off"))
                    self._end_generation(turn, out)
                self._end_turn(turn, out)
            for item in self._conversation.callers.values():
                self._close_transcription(item, out)
            self._retire_active(out)
            if self._total_usage is not None:
                out.append(SetUsage(SESSION_SPAN_ID, Usage(*self._total_usage)))  # type: ignore[arg-type]
            summary = self._conversation.summary(self._turn_count)
            out.append(SetMeasures(SESSION_SPAN_ID, summary))
            out.append(EndSpan(SESSION_SPAN_ID))
            if self._trace_open:
                self._trace_open = False
                out.append(CloseTrace())
        self._move("close")
        return tuple(out)


def _cut_short(call: _Call) -> ErrorInfo:
    if call.kind == _HANDOFF:
        return ErrorInfo(
            "Handoff cancelled: the session closed before the new agent was in place",
            {"to_agent": call.name, "status": "cancelled"},
        )
    if call.outcome is not None:
        return call.outcome
    if call.awaiting_approval:
        return ErrorInfo(
            "Tool call still awaiting approval when the session closed",
            {"tool_name": call.name, "status": "awaiting_approval"},
        )
    return ErrorInfo(
        "Tool call cancelled: the session closed before its output was sent",
        {"tool_name": call.name, "status": "cancelled"},
    )


_HANDLERS: Final[dict[type[Event], Callable[[SpanMachine, Event], tuple[Command, ...]]]] = {
    SessionStarted: SpanMachine._on_session_started,  # type: ignore[dict-item]
    AgentActivated: SpanMachine._on_agent_activated,  # type: ignore[dict-item]
    TurnStarted: SpanMachine._on_turn_started,  # type: ignore[dict-item]
    UsageReported: SpanMachine._on_usage_reported,  # type: ignore[dict-item]
    TurnEnded: SpanMachine._on_turn_ended,  # type: ignore[dict-item]
    AudioInterrupted: SpanMachine._on_audio_interrupted,  # type: ignore[dict-item]
    ToolCalled: SpanMachine._on_tool_called,  # type: ignore[dict-item]
    ToolApprovalRequested: SpanMachine._on_tool_approval_requested,  # type: ignore[dict-item]
    ToolApproved: SpanMachine._on_tool_approved,  # type: ignore[dict-item]
    ToolRejected: SpanMachine._on_tool_rejected,  # type: ignore[dict-item]
    ToolGuardrailRejected: SpanMachine._on_tool_guardrail_rejected,  # type: ignore[dict-item]
    ToolOutputSent: SpanMachine._on_tool_output_sent,  # type: ignore[dict-item]
    ToolFailed: SpanMachine._on_tool_failed,  # type: ignore[dict-item]
    GuardrailTripped: SpanMachine._on_guardrail_tripped,  # type: ignore[dict-item]
    ErrorReported: SpanMachine._on_error_reported,  # type: ignore[dict-item]
    TransportFailed: SpanMachine._on_transport_failed,  # type: ignore[dict-item]
    ServerSessionIdentified: SpanMachine._on_server_session_identified,  # type: ignore[dict-item]
    EntryFailed: SpanMachine._on_entry_failed,  # type: ignore[dict-item]
    SessionClosed: SpanMachine._on_session_closed,  # type: ignore[dict-item]
    ModelConfigured: SpanMachine._on_model_configured,  # type: ignore[dict-item]
    CallerSpeechStarted: SpanMachine._on_caller_speech_started,  # type: ignore[dict-item]
    CallerSpeechStopped: SpanMachine._on_caller_speech_stopped,  # type: ignore[dict-item]
    CallerAudioCommitted: SpanMachine._on_caller_audio_committed,  # type: ignore[dict-item]
    CallerTranscribed: SpanMachine._on_caller_transcribed,  # type: ignore[dict-item]
    CallerTranscriptionFailed: SpanMachine._on_caller_transcription_failed,  # type: ignore[dict-item]
    MessageSent: SpanMachine._on_message_sent,  # type: ignore[dict-item]
    AudioStarted: SpanMachine._on_audio_started,  # type: ignore[dict-item]
    TextStarted: SpanMachine._on_text_started,  # type: ignore[dict-item]
    AgentSaid: SpanMachine._on_agent_said,  # type: ignore[dict-item]
    TimerFired: SpanMachine._on_timer_fired,  # type: ignore[dict-item]
}


def replay(events: Iterable[Event], *, strict: bool = False) -> tuple[Command, ...]:
    """Feed a recorded event log to a fresh machine and return every command, in order.

    The span tree is a pure function of the log: replaying the same events always gives
    the same commands, and the same commands as feeding them one by one.

    Example:
        >>> from realtime_spans.core import SessionStarted, SessionClosed
        >>> [type(c).__name__ for c in replay([SessionStarted("s"), SessionClosed()])]
        ['OpenTrace', 'StartSpan', 'SetMeasures', 'EndSpan', 'CloseTrace']
    """
    machine = SpanMachine(strict=strict)
    commands: list[Command] = []
    for event in events:
        commands.extend(machine.feed(event))
    return tuple(commands)
