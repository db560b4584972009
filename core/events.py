"""What the session tells the machine: the inputs of :class:`~realtime_spans.core.SpanMachine`.

Every event is a small frozen value. An adapter builds them from what a realtime session
does, at the moment it happens; a recorded list of them is enough to rebuild the span tree
(:func:`~realtime_spans.core.replay`). Nothing here refers to the SDK: agents are named by
an opaque integer key chosen by the adapter, errors are plain text, and anything sensitive
(tool arguments and outputs) is left out by the adapter before the event is built.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

# Validators are plain functions, one call per field: an event is built for every turn,
# usage report and tool call of a session, so attrs' composed validator objects (two
# ``__call__``s for an optional field) cost the session more than the check itself.


def _is(kind: type[object], *, allow_none: bool = False) -> Any:
    """A validator accepting instances of ``kind`` (and ``None`` with ``allow_none``)."""
    expected = f"{kind.__name__} or None" if allow_none else kind.__name__

    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, kind) or (allow_none and value is None):
            return
        raise TypeError(
            f"'{attribute.name}' must be {expected}, got {value!r} ({type(value).__name__})"
        )

    return check


def _tuple_of(kind: type[object]) -> Any:
    """A validator accepting a tuple whose members are all instances of ``kind``."""

    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise TypeError(
                f"'{attribute.name}' must be a tuple, got {value!r} ({type(value).__name__})"
            )
        for member in value:
            if not isinstance(member, kind):
                raise TypeError(
                    f"'{attribute.name}' members must be {kind.__name__}, "
                    f"got {member!r} ({type(member).__name__})"
                )

    return check


_str = _is(str)
_opt_str = _is(str, allow_none=True)
_strs = _tuple_of(str)
_opt_mapping = _is(Mapping, allow_none=True)
_mapping = _is(Mapping)


def _opt_time(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator for a moment (seconds on the adapter's clock): a finite number, or
    ``None``."""
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(
            f"'{attribute.name}' must be a number or None, got {value!r} ({type(value).__name__})"
        )
    if not math.isfinite(value):
        raise ValueError(f"'{attribute.name}' must be a finite number, got {value!r}")


def _time(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        raise TypeError(f"'{attribute.name}' must be a number, got None")
    _opt_time(_inst, attribute, value)


def _opt_duration(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator for a duration in milliseconds: a finite number >= 0, or ``None``."""
    _opt_time(_inst, attribute, value)
    if value is not None and value < 0:  # type: ignore[operator]
        raise ValueError(f"'{attribute.name}' must not be negative, got {value!r}")


@attrs.frozen
class ErrorInfo:
    """An error as a span records it: a message and optional structured detail.

    Example:
        >>> ErrorInfo("Tool execution rejected", {"tool_name": "refund"}).message
        'Tool execution rejected'
    """

    message: str = attrs.field(validator=_str)
    data: Mapping[str, object] | None = attrs.field(default=None, validator=_opt_mapping)


@attrs.frozen
class Usage:
    """Token usage of one model response, or the sum of several.

    The four totals are always present; the modality details are ``None`` where the model
    did not report them. ``a + b`` adds field by field (``None`` counts as absent).

    Example:
        >>> total = Usage(input_tokens=10, output_tokens=5, total_tokens=15, requests=1)
        >>> (total + total).as_dict()["total_tokens"]
        30
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int | None = None
    input_audio_tokens: int | None = None
    input_image_tokens: int | None = None
    cached_input_tokens: int | None = None
    cached_text_tokens: int | None = None
    cached_audio_tokens: int | None = None
    cached_image_tokens: int | None = None
    output_text_tokens: int | None = None
    output_audio_tokens: int | None = None

    def __attrs_post_init__(self) -> None:
        # One pass over all counts (a validator per field cost 13 calls per usage report).
        for index, value in enumerate(_usage_values(self)):
            if type(value) is int and value >= 0:
                continue
            if value is None and index >= _REQUIRED_USAGE_FIELDS:
                continue
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                continue  # an int subclass
            kind = (
                "a non-negative int"
                if index < _REQUIRED_USAGE_FIELDS
                else "None or a non-negative int"
            )
            raise TypeError(f"{_USAGE_FIELDS[index]} must be {kind}, got {value!r}")

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage.total((self, other))

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        """The field-by-field sum of several usages (``None`` counts as absent).

        Example:
            >>> Usage.total([Usage(total_tokens=2), Usage(total_tokens=3)]).total_tokens
            5
        """
        sums: list[int | None] = [None] * len(_USAGE_FIELDS)
        for usage in usages:
            add_into(sums, usage)
        return cls(*sums)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, int]:
        """The reported fields as a flat ``{name: tokens}`` dict, absent details left out.

        Example:
            >>> Usage(input_tokens=3, output_audio_tokens=2).as_dict()["output_audio_tokens"]
            2
        """
        return {name: value for name in _USAGE_FIELDS if (value := getattr(self, name)) is not None}


_USAGE_FIELDS = tuple(field.name for field in attrs.fields(Usage))
#: The four totals come first and are never ``None``; the modality details may be.
_REQUIRED_USAGE_FIELDS: Final = 4
#: How many token counts a :class:`Usage` holds (the length of an :func:`add_into` list).
USAGE_FIELD_COUNT: Final = len(_USAGE_FIELDS)
#: A usage's fields as a tuple, in field order, read in one C call (``attrs.astuple``
#: walks the fields in Python and costs several times more).
_usage_values = operator.attrgetter(*_USAGE_FIELDS)


def add_into(sums: list[int | None], usage: Usage) -> None:
    """Add ``usage`` field by field into ``sums`` (in :class:`Usage` field order), in place.

    Example:
        >>> sums: list[int | None] = [None] * 13
        >>> add_into(sums, Usage(input_tokens=4))
        >>> sums[:3]
        [0, 4, 0]
    """
    for index, value in enumerate(_usage_values(usage)):
        if value is not None:
            current = sums[index]
            sums[index] = value if current is None else current + value


@attrs.frozen
class HandoffRoute:
    """One handoff offered to the model: the tool it calls and the agent it leads to.

    Example:
        >>> HandoffRoute("transfer_to_billing", "Billing").agent_name
        'Billing'
    """

    tool_name: str = attrs.field(validator=_str)
    agent_name: str = attrs.field(validator=_str)


_routes = _tuple_of(HandoffRoute)


@attrs.frozen
class SessionStarted:
    """The session is being entered (before it connects).

    ``open_trace`` says that no trace is active in the entering task, so the machine opens
    one; otherwise the session span joins the active one. With ``tracing_enabled=False``
    the machine stays silent for the whole session. With ``record_audio=True`` the session
    records audio: each response that speaks gets a speech span under its turn, and the
    transcription and speech spans get an :class:`~realtime_spans.core.AttachAudio` before
    they end (without it, no command differs from a session that records none).

    Example:
        >>> SessionStarted("Support line", open_trace=True).workflow_name
        'Support line'
    """

    workflow_name: str = attrs.field(validator=_str)
    group_id: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)
    metadata: Mapping[str, object] | None = attrs.field(
        default=None, validator=_opt_mapping, kw_only=True
    )
    open_trace: bool = attrs.field(default=True, validator=_is(bool), kw_only=True)
    tracing_enabled: bool = attrs.field(default=True, validator=_is(bool), kw_only=True)
    record_audio: bool = attrs.field(default=False, validator=_is(bool), kw_only=True)


@attrs.frozen
class AgentActivated:
    """An agent is now the session's active agent, with the tools and handoffs sent for it.

    Fired for the starting agent at entry, after a handoff (``call_id`` names the handoff
    call it completes) and on ``update_agent()``. ``agent`` is an opaque key: the same key
    means the same agent object.

    Example:
        >>> AgentActivated(1, "Greeter", tools=("get_weather",)).tools
        ('get_weather',)
    """

    agent: int = attrs.field(validator=_is(int))
    name: str = attrs.field(validator=_str)
    tools: tuple[str, ...] = attrs.field(default=(), validator=_strs, kw_only=True)
    handoffs: tuple[HandoffRoute, ...] = attrs.field(default=(), validator=_routes, kw_only=True)
    call_id: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)


@attrs.frozen
class TurnStarted:
    """The model started a response (``turn_started``), received at ``at`` (monotonic
    seconds; ``None`` when unknown: no latency starts from it).

    Example:
        >>> TurnStarted("resp_1", at=12.5).response_id
        'resp_1'
    """

    response_id: str | None = attrs.field(default=None, validator=_opt_str)
    at: float | None = attrs.field(default=None, validator=_opt_time, kw_only=True)


@attrs.frozen
class UsageReported:
    """The model reported the usage of the response that is about to end.

    Example:
        >>> UsageReported(Usage(total_tokens=7)).usage.total_tokens
        7
    """

    usage: Usage = attrs.field(validator=_is(Usage))


@attrs.frozen
class TurnEnded:
    """The model finished a response (``turn_ended``), received at ``at``.

    Its audio may still be playing to the caller: the turn span stays open until it has
    played out (or the caller barged in), and its generation span ends now.

    Example:
        >>> TurnEnded().response_id is None
        True
    """

    response_id: str | None = attrs.field(default=None, validator=_opt_str)
    at: float | None = attrs.field(default=None, validator=_opt_time, kw_only=True)


@attrs.frozen
class AudioInterrupted:
    """The caller barged in: playback of the agent's audio item ``item_id`` was cut at
    ``at``. ``None`` for the item means the latest response.

    How much the caller heard is ``played_ms`` when the client counts what it played (the
    SDK's playback tracker), else the time its audio had been playing (from its first
    delta); at most what was generated (``generated_ms``: the audio received so far, for a
    response still generating).

    Example:
        >>> AudioInterrupted("item_1", at=3.0).item_id
        'item_1'
        >>> AudioInterrupted("item_1", at=3.0, played_ms=840.0).played_ms
        840.0
    """

    item_id: str | None = attrs.field(default=None, validator=_opt_str)
    at: float | None = attrs.field(default=None, validator=_opt_time, kw_only=True)
    generated_ms: float | None = attrs.field(default=None, validator=_opt_duration, kw_only=True)
    played_ms: float | None = attrs.field(default=None, validator=_opt_duration, kw_only=True)


@attrs.frozen
class ToolCalled:
    """The model called a tool (or a handoff, which is a tool too).

    ``arguments`` is ``None`` when sensitive data must stay out of traces.

    Example:
        >>> ToolCalled("call_1", "get_weather", '{"city": "Paris"}').name
        'get_weather'
    """

    call_id: str = attrs.field(validator=_str)
    name: str = attrs.field(validator=_str)
    arguments: str | None = attrs.field(default=None, validator=_opt_str)


@attrs.frozen
class ToolApprovalRequested:
    """The call waits for a human decision (``tool_approval_required``).

    Example:
        >>> ToolApprovalRequested("call_1").call_id
        'call_1'
    """

    call_id: str = attrs.field(validator=_str)


@attrs.frozen
class ToolApproved:
    """A call that waited for approval was approved and runs now.

    Example:
        >>> ToolApproved("call_1").call_id
        'call_1'
    """

    call_id: str = attrs.field(validator=_str)


@attrs.frozen
class ToolRejected:
    """The call was rejected by approval; its rejection message is sent as the output.

    Example:
        >>> ToolRejected("call_1").call_id
        'call_1'
    """

    call_id: str = attrs.field(validator=_str)


@attrs.frozen
class ToolGuardrailRejected:
    """A tool guardrail replaced the call's input (``stage="input"``) or output.

    Example:
        >>> ToolGuardrailRejected("call_1", "output").stage
        'output'
    """

    call_id: str = attrs.field(validator=_str)
    stage: str = attrs.field(
        default="input", validator=[_str, attrs.validators.in_(("input", "output"))]
    )


@attrs.frozen
class ToolOutputSent:
    """The call's output was sent to the model; ``output`` is ``None`` when sensitive.

    Example:
        >>> ToolOutputSent("call_1", "sunny").output
        'sunny'
    """

    call_id: str = attrs.field(validator=_str)
    output: str | None = attrs.field(default=None, validator=_opt_str)


@attrs.frozen
class ToolFailed:
    """Handling the call raised; for a handoff, the handoff failed.

    Example:
        >>> ToolFailed("call_1", ErrorInfo("boom")).error.message
        'boom'
    """

    call_id: str = attrs.field(validator=_str)
    error: ErrorInfo = attrs.field(validator=_is(ErrorInfo))


@attrs.frozen
class GuardrailTripped:
    """Output guardrails tripped on the output of the agent keyed ``agent``.

    Example:
        >>> GuardrailTripped(1, ("no_refunds",)).guardrails
        ('no_refunds',)
    """

    agent: int | None = attrs.field(validator=_is(int, allow_none=True))
    guardrails: tuple[str, ...] = attrs.field(validator=_strs)


@attrs.frozen
class ErrorReported:
    """The session reported an error event; ``call_id`` when it came from a tool call.

    Example:
        >>> ErrorReported(ErrorInfo("rate limited")).call_id is None
        True
    """

    error: ErrorInfo = attrs.field(validator=_is(ErrorInfo))
    call_id: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)


@attrs.frozen
class TransportFailed:
    """The model transport raised; the session will end with this error.

    Example:
        >>> TransportFailed(ErrorInfo("socket closed")).error.message
        'socket closed'
    """

    error: ErrorInfo = attrs.field(validator=_is(ErrorInfo))


@attrs.frozen
class ServerSessionIdentified:
    """The Realtime API reported its own id for this session.

    Example:
        >>> ServerSessionIdentified("sess_123").session_id
        'sess_123'
    """

    session_id: str = attrs.field(validator=_str)


@attrs.frozen
class EntryFailed:
    """Entering the session raised (connect error, bad settings); nothing will follow.

    Example:
        >>> EntryFailed(ErrorInfo("connection refused")).error.message
        'connection refused'
    """

    error: ErrorInfo = attrs.field(validator=_is(ErrorInfo))


@attrs.frozen
class SessionClosed:
    """The session closed; ``error`` when closing itself failed or tracing gave up.

    ``by_call``: the tool call whose tool closed the session (a voice agent's "end the
    call" tool). That call did what it was asked, so its span ends without the
    "cancelled" error other calls still open at the close get.

    Example:
        >>> SessionClosed().error is None
        True
        >>> SessionClosed(by_call="call_7").by_call
        'call_7'
    """

    error: ErrorInfo | None = attrs.field(default=None, validator=_is(ErrorInfo, allow_none=True))
    by_call: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)


@attrs.frozen
class ModelConfigured:
    """The settings sent to the model for the agent about to be activated: ``model`` as
    sent, ``config`` the settings that shape its answers (voice, modalities, formats,
    temperature, turn detection; never instructions or tools), the caller's speech
    ``transcription_model`` and ``input_format``.

    Example:
        >>> ModelConfigured("gpt-realtime", {"voice": "marin"}).config["voice"]
        'marin'
    """

    model: str | None = attrs.field(validator=_opt_str)
    config: Mapping[str, object] = attrs.field(factory=dict, validator=_mapping)
    transcription_model: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)
    input_format: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)


@attrs.frozen
class CallerSpeechStarted:
    """The server heard the caller start speaking (``input_audio_buffer.speech_started``);
    ``item_id`` is the conversation item the speech becomes.

    Example:
        >>> CallerSpeechStarted("item_u1", at=1.0).item_id
        'item_u1'
    """

    item_id: str = attrs.field(validator=_str)
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class CallerSpeechStopped:
    """The server decided the caller stopped speaking (``input_audio_buffer.speech_stopped``):
    the caller's wait for an answer starts here.

    Example:
        >>> CallerSpeechStopped("item_u1", at=2.0).at
        2.0
    """

    item_id: str = attrs.field(validator=_str)
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class CallerAudioCommitted:
    """The caller's audio became conversation item ``item_id`` (the buffer was committed,
    or the item was created): the next response answers it.

    Example:
        >>> CallerAudioCommitted("item_u1", at=2.1).item_id
        'item_u1'
    """

    item_id: str = attrs.field(validator=_str)
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class CallerTranscribed:
    """The transcript of the caller's item ``item_id`` is complete (``None``: withheld).

    Example:
        >>> CallerTranscribed("item_u1", "What's the weather?", at=2.4).transcript
        "What's the weather?"
    """

    item_id: str = attrs.field(validator=_str)
    transcript: str | None = attrs.field(validator=_opt_str)
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class CallerTranscriptionFailed:
    """Transcribing the caller's item ``item_id`` failed.

    Example:
        >>> CallerTranscriptionFailed("item_u1", ErrorInfo("bad audio"), at=2.4).item_id
        'item_u1'
    """

    item_id: str = attrs.field(validator=_str)
    error: ErrorInfo = attrs.field(validator=_is(ErrorInfo))
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class MessageSent:
    """A message is being sent to the model: the caller's, as text (``send_message``), or
    a tool's output (``call_id`` names its call). ``text`` is ``None`` when withheld. The
    next response receives it.

    Example:
        >>> MessageSent("Book a table", at=0.5).text
        'Book a table'
        >>> MessageSent("sunny", call_id="call_1").call_id
        'call_1'
    """

    text: str | None = attrs.field(validator=_opt_str)
    at: float | None = attrs.field(default=None, validator=_opt_time, kw_only=True)
    call_id: str | None = attrs.field(default=None, validator=_opt_str, kw_only=True)


@attrs.frozen
class AudioStarted:
    """The first audio delta of a response (item ``item_id``) was received.

    Example:
        >>> AudioStarted("resp_1", "item_a1", at=2.9).item_id
        'item_a1'
    """

    response_id: str | None = attrs.field(validator=_opt_str)
    item_id: str | None = attrs.field(default=None, validator=_opt_str)
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class TextStarted:
    """The first text (or transcript) delta of a response was received.

    Example:
        >>> TextStarted("resp_1", at=2.9).response_id
        'resp_1'
    """

    response_id: str | None = attrs.field(validator=_opt_str)
    at: float = attrs.field(validator=_time, kw_only=True)


@attrs.frozen
class AgentSaid:
    """What a response said, just before its ``TurnEnded``: its transcript or text
    (``None`` when withheld or silent) and how long its audio lasts (``audio_ms``).

    Example:
        >>> AgentSaid("resp_1", "It's sunny.", audio_ms=1200.0).audio_ms
        1200.0
    """

    response_id: str | None = attrs.field(validator=_opt_str)
    text: str | None = attrs.field(default=None, validator=_opt_str)
    audio_ms: float | None = attrs.field(default=None, validator=_opt_duration, kw_only=True)


@attrs.frozen
class TimerFired:
    """A timer the machine asked for (:class:`~realtime_spans.core.SetTimer`) is due.

    Example:
        >>> TimerFired(3, at=9.0).token
        3
    """

    token: int = attrs.field(validator=_is(int))
    at: float = attrs.field(validator=_time, kw_only=True)


Event = (
    SessionStarted
    | AgentActivated
    | TurnStarted
    | UsageReported
    | TurnEnded
    | AudioInterrupted
    | ToolCalled
    | ToolApprovalRequested
    | ToolApproved
    | ToolRejected
    | ToolGuardrailRejected
    | ToolOutputSent
    | ToolFailed
    | GuardrailTripped
    | ErrorReported
    | TransportFailed
    | ServerSessionIdentified
    | EntryFailed
    | SessionClosed
    | ModelConfigured
    | CallerSpeechStarted
    | CallerSpeechStopped
    | CallerAudioCommitted
    | CallerTranscribed
    | CallerTranscriptionFailed
    | MessageSent
    | AudioStarted
    | TextStarted
    | AgentSaid
    | TimerFired
)
"""Any input of the machine."""

EVENT_TYPES: tuple[type[Event], ...] = Event.__args__
