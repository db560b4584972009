"""What the machine asks for: the outputs of :class:`~realtime_spans.core.SpanMachine`.

Commands are data, not side effects. A sink applies them in order to a tracing backend
(the adapters apply them to the Agents SDK's trace provider). Spans are named by small
integers that the machine hands out in order, so a replayed log yields the very same
commands. ``parent_id=None`` means the root: the trace the machine opened, or the span
that was current where the session was entered.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .events import ErrorInfo, Usage


@attrs.frozen
class SessionSpec:
    """The session span (an SDK ``task`` span).

    Example:
        >>> SessionSpec("Support line").name
        'Support line'
    """

    name: str


@attrs.frozen
class AgentSpec:
    """An agent span: tool names and handoff target agent names exactly as sent to the model.

    Example:
        >>> AgentSpec("Greeter", ("get_weather",), ("Specialist",)).handoffs
        ('Specialist',)
    """

    name: str
    tools: tuple[str, ...]
    handoffs: tuple[str, ...]


@attrs.frozen
class TurnSpec:
    """A turn span: one model response, numbered from 1 within the session.

    Example:
        >>> TurnSpec(1, "Greeter", "resp_1").turn
        1
    """

    turn: int
    agent_name: str
    response_id: str | None = None


@attrs.frozen
class FunctionSpec:
    """A function span for one tool call; ``input`` is ``None`` when sensitive.

    Example:
        >>> FunctionSpec("get_weather", "call_1", None).call_id
        'call_1'
    """

    name: str
    call_id: str
    input: str | None


@attrs.frozen
class HandoffSpec:
    """A handoff span; ``to_agent`` is the target offered to the model until the new agent is in.

    Example:
        >>> HandoffSpec("Greeter", "Specialist").to_agent
        'Specialist'
    """

    from_agent: str
    to_agent: str | None


@attrs.frozen
class GuardrailSpec:
    """A guardrail span.

    Example:
        >>> GuardrailSpec("no_refunds", True).triggered
        True
    """

    name: str
    triggered: bool


@attrs.frozen
class GenerationSpec:
    """A generation span: one model response, as a model call (under its turn).

    Example:
        >>> GenerationSpec("gpt-realtime", {"voice": "marin"}).model
        'gpt-realtime'
    """

    model: str | None
    model_config: Mapping[str, object]


@attrs.frozen
class TranscriptionSpec:
    """A transcription span: one utterance of the caller and its transcript.

    Example:
        >>> TranscriptionSpec("gpt-4o-transcribe", "pcm16").input_format
        'pcm16'
    """

    model: str | None
    input_format: str | None


@attrs.frozen
class SpeechSpec:
    """A speech span: the audio of one response as the model spoke it (under its turn).

    Only made when the session records audio (``SessionStarted(record_audio=True)``).

    Example:
        >>> SpeechSpec("gpt-realtime").model
        'gpt-realtime'
    """

    model: str | None


SpanSpec = (
    SessionSpec
    | AgentSpec
    | TurnSpec
    | FunctionSpec
    | HandoffSpec
    | GuardrailSpec
    | GenerationSpec
    | TranscriptionSpec
    | SpeechSpec
)


@attrs.frozen
class OpenTrace:
    """Open a trace for the session (no trace was active at entry).

    Example:
        >>> OpenTrace("Support line", None, None).workflow_name
        'Support line'
    """

    workflow_name: str
    group_id: str | None
    metadata: Mapping[str, object] | None


@attrs.frozen
class AnnotateTrace:
    """Add one key to the metadata of the session's trace.

    Example:
        >>> AnnotateTrace("realtime_session_id", "sess_1").key
        'realtime_session_id'
    """

    key: str
    value: str


@attrs.frozen
class AnnotateSpan:
    """Add one key to a span's metadata (the session span's correlation data).

    Example:
        >>> AnnotateSpan(1, "realtime_session_id", "sess_1").span_id
        1
    """

    span_id: int
    key: str
    value: str


@attrs.frozen
class CloseTrace:
    """Finish the trace opened by :class:`OpenTrace`.

    Example:
        >>> CloseTrace()
        CloseTrace()
    """


@attrs.frozen
class StartSpan:
    """Create and start a span under ``parent_id`` (``None``: the root).

    Example:
        >>> StartSpan(2, 1, AgentSpec("Greeter", (), ())).parent_id
        1
    """

    span_id: int
    parent_id: int | None
    spec: SpanSpec


@attrs.frozen
class SetUsage:
    """Record token usage on a turn span, or the session's totals on the session span.

    Example:
        >>> SetUsage(3, Usage(total_tokens=5)).usage.total_tokens
        5
    """

    span_id: int
    usage: Usage


@attrs.frozen
class SetOutput:
    """Record a function span's output (``None`` when sensitive).

    Example:
        >>> SetOutput(4, "sunny").output
        'sunny'
    """

    span_id: int
    output: str | None


@attrs.frozen
class SetHandoffTarget:
    """Record the agent a handoff actually led to.

    Example:
        >>> SetHandoffTarget(5, "Specialist").to_agent
        'Specialist'
    """

    span_id: int
    to_agent: str


@attrs.frozen
class FlagTurn:
    """Mark a turn span: ``"interrupted"`` by the user, or ``"cut_off"`` by the session closing.

    Example:
        >>> FlagTurn(3, "interrupted").flag
        'interrupted'
    """

    span_id: int
    flag: str


@attrs.frozen
class SetError:
    """Record an error on a span.

    Example:
        >>> SetError(1, ErrorInfo("connection refused")).error.message
        'connection refused'
    """

    span_id: int
    error: ErrorInfo


@attrs.frozen
class EndSpan:
    """Finish a span. Every started span gets exactly one, after all its children's.

    Example:
        >>> EndSpan(2).span_id
        2
    """

    span_id: int


@attrs.frozen
class SetMessages:
    """Record a generation's messages: what the model received for the response since the
    previous one, and what it answered (chat-completions shape; ``content`` ``None`` where
    the words are withheld or were never transcribed).

    Example:
        >>> SetMessages(4, ({"role": "user", "content": "Hi"},), ()).input[0]["role"]
        'user'
    """

    span_id: int
    input: tuple[Mapping[str, object], ...]
    output: tuple[Mapping[str, object], ...]


@attrs.frozen
class SetMeasures:
    """Record measurements on a span (merged with those it has): a turn's latencies in
    milliseconds, the session's summary.

    Example:
        >>> SetMeasures(3, {"time_to_first_audio_ms": 420.0}).measures["time_to_first_audio_ms"]
        420.0
    """

    span_id: int
    measures: Mapping[str, float | int]


@attrs.frozen
class SetTimer:
    """Feed :class:`~realtime_spans.core.TimerFired` with ``token`` at monotonic time ``due``
    (a turn waits for its audio to play out).

    Example:
        >>> SetTimer(3, 12.5).due
        12.5
    """

    token: int
    due: float


@attrs.frozen
class AttachAudio:
    """Put recorded audio on a span just before it ends (only when audio is recorded).

    ``source`` is ``"caller"`` (a transcription span: the caller's audio of conversation
    item ``key``) or ``"agent"`` (a speech span: the audio of response ``key``). ``text``
    is the agent's transcript (a speech span's input); ``heard_ms`` how much of the
    response's audio the caller heard, when they interrupted it. The bytes themselves never
    pass through the machine: the sink takes them from whoever recorded them.

    Example:
        >>> AttachAudio(5, "agent", "resp_1", text="Hello!", heard_ms=800.0).heard_ms
        800.0
    """

    span_id: int
    source: str
    key: str | None
    text: str | None = None
    heard_ms: float | None = None


@attrs.frozen
class Diagnostic:
    """An event that did not fit (lenient mode): what came, in which state, and why.

    Example:
        >>> Diagnostic("idle", "TurnEnded", "no turn is open").reason
        'no turn is open'
    """

    state: str
    event: str
    reason: str


Command = (
    OpenTrace
    | AnnotateTrace
    | AnnotateSpan
    | CloseTrace
    | StartSpan
    | SetUsage
    | SetOutput
    | SetHandoffTarget
    | FlagTurn
    | SetError
    | EndSpan
    | SetMessages
    | SetMeasures
    | SetTimer
    | AttachAudio
    | Diagnostic
)
"""Any output of the machine."""
