"""The span sink: applies the machine's commands to the Agents SDK's tracing provider.

This is the only module that holds SDK ``Span``/``Trace`` objects or touches the tracing
context variables, so every task-context hazard of realtime tracing is handled here:

* spans are created with an explicit ``parent=`` and started/finished with
  ``mark_as_current=False``/``reset_current=False``: creating, ending or erroring a span
  never reads or writes the context of whatever task happens to run the command;
* a span's (and the trace's) start and finish run inside a context of its own, copied
  when it starts from its parent's own context (a span under the caller's span or trace:
  from the task that enters the session) and kept with it, so what a processor attached
  on a parent's start is current where its children start, as in a ``Runner`` run; a
  tracing processor that attaches something to the
  context on start and detaches it on finish (OpenInference does, for OpenTelemetry) does
  both in that one context, whichever tasks start and end the span, and never leaks into
  the caller's context;
* the ambient span and trace are *read* once, in the task that enters the session;
* the only write is :meth:`SdkSink.enter_tool_task`/:meth:`SdkSink.leave_tool_task`: a
  tool's function span (and its trace, and whatever processors put into the context when
  that span started) made current inside the task that runs that tool, and reset by that
  same task, in the same frame, so a token never crosses tasks;
* a no-op span (tracing disabled) is never made current;
* a function span still current in its tool's task is not finished under the tool: an
  end that comes while the tool runs (the session closing past its grace period, tracing
  giving up) is deferred until the tool's task lets go of it, and so are the ends of its
  ancestors and of the trace, so no span ever ends before its children.
"""

from __future__ import annotations

import base64
import contextvars
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agents.tracing import (
    AgentSpanData,
    FunctionSpanData,
    GenerationSpanData,
    GuardrailSpanData,
    HandoffSpanData,
    Span,
    SpanError,
    SpeechSpanData,
    TaskSpanData,
    Trace,
    TranscriptionSpanData,
    TurnSpanData,
    get_current_span,
    get_current_trace,
    get_trace_provider,
)
from agents.tracing.scope import Scope
from agents.tracing.span_data import SpanData
from agents.tracing.util import time_iso

from realtime_spans.core import (
    AgentSpec,
    AnnotateSpan,
    AnnotateTrace,
    AttachAudio,
    CloseTrace,
    Command,
    Diagnostic,
    EndSpan,
    ErrorInfo,
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
    SpanSpec,
    SpeechSpec,
    StartSpan,
    TranscriptionSpec,
    TurnSpec,
)

from ._audio import Clip
from ._compat import trace_is_current_somewhere
from ._otel import annotate

logger = logging.getLogger("realtime_spans")

_NO_OP = "no-op"


class TracingFault(Exception):
    """Something outside the library made the session's trace unrecordable.

    Raised by the sink when the caller's span or trace ended while the session still
    runs, or when tracing was disabled mid-session; the tap then closes the session's
    spans with this reason and stops tracing that session.

    Example:
        >>> str(TracingFault("the caller's trace ended before the session closed"))
        "the caller's trace ended before the session closed"
    """


class RealtimeTurnSpanData(TurnSpanData):
    """A ``turn`` span of a realtime session: one model response, until its audio was heard.

    It is an SDK ``TurnSpanData`` (processors see ``type == "turn"``) that also exports the
    response id, whether the turn was interrupted by the caller or cut off by the close,
    and its latencies in milliseconds (``measures``, exported as keys of ``data``).

    Example:
        >>> data = RealtimeTurnSpanData(turn=1, agent_name="Greeter", response_id="resp_1")
        >>> data.measures["voice_to_voice_ms"] = 640.0
        >>> data.export()["data"]["interrupted"], data.export()["data"]["voice_to_voice_ms"]
        (False, 640.0)
    """

    __slots__ = ("cut_off", "interrupted", "measures", "response_id")

    def __init__(
        self,
        turn: int,
        agent_name: str,
        response_id: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(turn=turn, agent_name=agent_name, usage=usage)
        self.response_id = response_id
        self.interrupted = False
        self.cut_off = False
        self.measures: dict[str, float | int] = {}

    def export(self) -> dict[str, Any]:
        exported = super().export()
        data = exported["data"]
        if self.response_id is not None:
            data["response_id"] = self.response_id
        data["interrupted"] = self.interrupted
        data["cut_off"] = self.cut_off
        data.update(self.measures)
        return exported


class RealtimeSessionSpanData(TaskSpanData):
    """The session span: an SDK ``TaskSpanData`` (processors see ``type == "task"``) that
    also exports the session's summary (``turns``, ``interruptions``, the median and
    maximum ``voice_to_voice_ms``) as keys of ``data``.

    Example:
        >>> data = RealtimeSessionSpanData(name="Support line")
        >>> data.measures.update(turns=3, interruptions=1)
        >>> data.export()["data"]["turns"]
        3
    """

    __slots__ = ("measures",)

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.measures: dict[str, float | int] = {}

    def export(self) -> dict[str, Any]:
        exported = super().export()
        exported["data"].update(self.measures)
        return exported


class RealtimeFunctionSpanData(FunctionSpanData):
    """A ``function`` span of a realtime session: one tool call, with the model's call id.

    It is an SDK ``FunctionSpanData`` (processors see ``type == "function"``, and it
    exports exactly what the SDK's does) that also holds the call id as ``call_id``, where
    processors that map it look for it (the OpenTelemetry GenAI processor's
    ``gen_ai.tool.call.id``).

    Example:
        >>> data = RealtimeFunctionSpanData(name="get_weather", call_id="call_1", input=None)
        >>> data.call_id, data.export()["name"]
        ('call_1', 'get_weather')
    """

    __slots__ = ("call_id",)

    def __init__(self, name: str, call_id: str, input: str | None) -> None:
        super().__init__(name=name, input=input, output=None)
        self.call_id = call_id


def _base64(clip: Clip) -> str:
    return base64.b64encode(clip.audio).decode("ascii")


#: The SDK's own storage of the fields whose audio the spans below encode only on export.
_TRANSCRIPTION_INPUT: Any = TranscriptionSpanData.__dict__["input"]
_SPEECH_OUTPUT: Any = SpeechSpanData.__dict__["output"]


class RealtimeTranscriptionSpanData(TranscriptionSpanData):
    """A ``transcription`` span of a realtime session: one utterance of the caller.

    An SDK ``TranscriptionSpanData`` (processors see ``type == "transcription"``; it
    exports what the SDK's does): ``input`` is the caller's audio, base64, in
    ``input_format`` (``"pcm"``: PCM16 24 kHz mono; ``"g711_ulaw"``, ``"g711_alaw"``: 8 kHz)
    when the session records audio, and then the export also says whether the audio was
    cut at ``max_audio_seconds`` (``truncated``). The span keeps the raw audio; its base64
    is made each time ``input`` is read (a processor's export), never on the event loop by
    the library.

    Example:
        >>> data = RealtimeTranscriptionSpanData(input_format="pcm", model="gpt-4o-transcribe")
        >>> "truncated" in data.export(), data.export()["input"]
        (False, {'data': '', 'format': 'pcm'})
        >>> data.attach(Clip((b"\\x01\\x00",), "pcm", truncated=False))
        >>> data.input, data.export()["truncated"]
        ('AQA=', False)
    """

    __slots__ = ("_clip", "truncated")

    def __init__(self, input_format: str | None, model: str | None) -> None:
        self._clip: Clip | None = None
        super().__init__(input_format=input_format, model=model)
        self.truncated: bool | None = None  # None: no audio recorded

    @property
    def input(self) -> str | None:
        clip = self._clip
        return _base64(clip) if clip is not None else _TRANSCRIPTION_INPUT.__get__(self)

    @input.setter
    def input(self, value: str | None) -> None:
        self._clip = None
        _TRANSCRIPTION_INPUT.__set__(self, value)

    @property
    def clip(self) -> Clip | None:
        """The recorded audio, raw, if any."""
        return self._clip

    def attach(self, clip: Clip) -> None:
        """Record ``clip`` as the caller's audio of this utterance."""
        self._clip = clip
        self.input_format = clip.format
        self.truncated = clip.truncated

    def export(self) -> dict[str, Any]:
        exported = super().export()
        if self.truncated is not None:
            exported["truncated"] = self.truncated
        return exported


class RealtimeSpeechSpanData(SpeechSpanData):
    """A ``speech`` span of a realtime session: the audio of one response.

    An SDK ``SpeechSpanData`` (processors see ``type == "speech"``): ``output`` is the audio
    the model generated, base64, in ``output_format``; ``input`` the agent's transcript;
    ``first_content_at`` when its first audio arrived. The export also says whether the
    audio was cut at ``max_audio_seconds`` (``truncated``) and, for a response the caller
    interrupted, how much of it they heard (``audio_heard_ms``: a player can stop there).
    The span keeps the raw audio; its base64 is made each time ``output`` is read.

    Example:
        >>> data = RealtimeSpeechSpanData(model="gpt-realtime")
        >>> data.audio_heard_ms = 820.0
        >>> data.export()["audio_heard_ms"], data.export()["type"]
        (820.0, 'speech')
        >>> data.attach(Clip((b"\\x01", b"\\x00"), "pcm", truncated=False))
        >>> data.export()["output"]
        {'data': 'AQA=', 'format': 'pcm'}
    """

    __slots__ = ("_clip", "audio_heard_ms", "truncated")

    def __init__(self, model: str | None) -> None:
        self._clip: Clip | None = None
        super().__init__(model=model, first_content_at=time_iso())
        self.audio_heard_ms: float | None = None
        self.truncated = False

    @property
    def output(self) -> str | None:
        clip = self._clip
        return _base64(clip) if clip is not None else _SPEECH_OUTPUT.__get__(self)

    @output.setter
    def output(self, value: str | None) -> None:
        self._clip = None
        _SPEECH_OUTPUT.__set__(self, value)

    @property
    def clip(self) -> Clip | None:
        """The recorded audio, raw, if any."""
        return self._clip

    def attach(self, clip: Clip) -> None:
        """Record ``clip`` as the audio of this response."""
        self._clip = clip
        self.output_format = clip.format
        self.truncated = clip.truncated

    def export(self) -> dict[str, Any]:
        exported = super().export()
        exported["truncated"] = self.truncated
        if self.audio_heard_ms is not None:
            exported["audio_heard_ms"] = self.audio_heard_ms
        return exported


#: Span data OpenInference exports nothing of (see :mod:`._otel`).
_UNMAPPED = (
    RealtimeTurnSpanData,
    RealtimeSessionSpanData,
    TranscriptionSpanData,
    SpeechSpanData,
)


def _span_data(spec: SpanSpec) -> SpanData:
    if isinstance(spec, TurnSpec):
        return RealtimeTurnSpanData(spec.turn, spec.agent_name, spec.response_id)
    if isinstance(spec, FunctionSpec):
        return RealtimeFunctionSpanData(spec.name, spec.call_id, spec.input)
    if isinstance(spec, AgentSpec):
        return AgentSpanData(name=spec.name, handoffs=list(spec.handoffs), tools=list(spec.tools))
    if isinstance(spec, HandoffSpec):
        return HandoffSpanData(from_agent=spec.from_agent, to_agent=spec.to_agent)
    if isinstance(spec, GuardrailSpec):
        return GuardrailSpanData(name=spec.name, triggered=spec.triggered)
    if isinstance(spec, GenerationSpec):
        return GenerationSpanData(model=spec.model, model_config=dict(spec.model_config))
    if isinstance(spec, TranscriptionSpec):
        return RealtimeTranscriptionSpanData(spec.input_format, spec.model)
    if isinstance(spec, SpeechSpec):
        return RealtimeSpeechSpanData(spec.model)
    if isinstance(spec, SessionSpec):
        return RealtimeSessionSpanData(name=spec.name)
    raise TypeError(f"unknown span spec {spec!r}")


def is_recording(item: Span[Any] | Trace | None) -> bool:
    """Whether an SDK span or trace records anything (``False`` for ``None`` and no-ops).

    Example:
        >>> from agents.tracing.spans import NoOpSpan
        >>> from agents.tracing import CustomSpanData
        >>> is_recording(NoOpSpan(CustomSpanData("x", {})))
        False
    """
    if item is None:
        return False
    identifier = item.span_id if isinstance(item, Span) else item.trace_id
    return identifier != _NO_OP


def span_error(error: ErrorInfo) -> SpanError:
    """The SDK's ``SpanError`` for a core :class:`~realtime_spans.core.ErrorInfo`.

    Example:
        >>> span_error(ErrorInfo("boom"))
        {'message': 'boom', 'data': None}
    """
    return SpanError(message=error.message, data=dict(error.data) if error.data else None)


_MISSING = object()
_DROP = object()

#: Keys of an error's data that name or classify (a tool, an exception type, a status, a
#: code) rather than quote: kept as they are.
_NAMING_KEYS = frozenset({"tool_name", "error_type", "type", "code", "status", "stage"})


def _cleaned_value(key: object, value: Any, recordable: Callable[[str], str | None]) -> Any:
    if key in _NAMING_KEYS or value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = recordable(value)
        return _DROP if text is None else text
    if isinstance(value, dict):
        kept = {k: _cleaned_value(k, v, recordable) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not _DROP}
    if isinstance(value, list | tuple):
        items = (_cleaned_value(None, item, recordable) for item in value)
        return [item for item in items if item is not _DROP]
    return _cleaned_value(None, str(value), recordable)


def cleaned_error(error: SpanError, recordable: Callable[[str], str | None]) -> SpanError:
    """An error someone else set on a span of the session (the SDK attaches a failing
    tool's handled error to the function span current in the tool's task), as it may be
    exported: its message (the SDK's own words), names and codes; every other text of its
    data as ``recordable`` lets it through.

    Example:
        >>> sdk_error = SpanError(
        ...     message="Error running tool (non-fatal)",
        ...     data={"tool_name": "charge", "error": "card 4111 declined"},
        ... )
        >>> cleaned_error(sdk_error, lambda text: None)
        {'message': 'Error running tool (non-fatal)', 'data': {'tool_name': 'charge'}}
    """
    data = error.get("data")
    if not isinstance(data, dict):
        return SpanError(message=error.get("message", ""), data=None)
    kept = _cleaned_value(None, data, recordable)
    return SpanError(message=error.get("message", ""), data=kept or None)


#: What :meth:`SdkSink.enter_tool_task` set in a tool's task: the span id, and the tokens
#: to reset, oldest first.
ToolTaskScope = tuple[int, tuple["contextvars.Token[Any]", ...]]


class SdkSink:
    """Applies span commands to the SDK's tracing provider, for one session.

    Create it in the task that enters the session: it reads the span and trace current
    there, which become the root of the session's spans unless it opens its own trace.

    Example:
        >>> from realtime_spans.core import replay, SessionStarted, SessionClosed
        >>> sink = SdkSink.from_current_context()
        >>> sink.apply(replay([SessionStarted("demo"), SessionClosed()]))
        >>> sink.open_spans
        0
    """

    def __init__(
        self,
        ambient_span: Span[Any] | None,
        ambient_trace: Trace | None,
        recordable: Callable[[str], str | None] | None = None,
        set_timer: Callable[[int, float], None] | None = None,
    ) -> None:
        self._ambient_span = ambient_span
        self._ambient_trace = ambient_trace
        self._provider = get_trace_provider()  # the session's spans all come from one provider
        self._trace: Trace | None = None
        self._trace_context: contextvars.Context | None = None
        self._spans: dict[int, Span[Any]] = {}
        self._contexts: dict[int, contextvars.Context] = {}  # each open span's own context
        self._carried: dict[int, tuple[tuple[contextvars.ContextVar[Any], Any], ...]] = {}
        self._parents: dict[int, int | None] = {}  # open span -> parent span (None: root)
        self._entered: dict[int, int] = {}  # span -> tool tasks in which it is current
        self._deferred: set[int] = set()  # ended by a command, finished when nothing pins it
        self._pinning: dict[int, int] = {}  # span -> deferred children not finished yet
        self._trace_close_deferred = False
        self._recordable = recordable  # None: errors set by others are exported as they are
        self._own_errors: dict[int, SpanError] = {}  # the errors this sink set, by span
        self._timer = set_timer  # None: no timer fires (a turn ends with the session)
        #: ``take_audio(source, key)``: the recorded audio for an ``AttachAudio`` command.
        self.take_audio: Callable[[str, object], Clip | None] | None = None
        # Whether the ambient trace can tell us it ended (see trace_is_current_somewhere).
        self._watch_ambient_trace = ambient_span is None and trace_is_current_somewhere(
            ambient_trace
        )

    @classmethod
    def from_current_context(
        cls,
        recordable: Callable[[str], str | None] | None = None,
        set_timer: Callable[[int, float], None] | None = None,
    ) -> SdkSink:
        """A sink rooted at the span and trace current in the calling task (read only).

        ``recordable`` (the session's :meth:`~._tap.SessionTap.recordable`) cleans the
        errors others set on the session's spans before they end (:func:`cleaned_error`);
        ``set_timer(token, due)`` schedules the machine's timers.
        """
        return cls(get_current_span(), get_current_trace(), recordable, set_timer)

    @property
    def ambient_trace(self) -> Trace | None:
        """The trace that was current where the session was entered."""
        return self._ambient_trace

    @property
    def trace(self) -> Trace | None:
        """The trace the spans belong to: the one this sink opened, else the ambient one."""
        return self._trace if self._trace is not None else self._ambient_trace

    @property
    def open_spans(self) -> int:
        """How many spans this sink started and has not finished yet (deferred ends too)."""
        return len(self._spans)

    def check_root(self) -> None:
        """Raise :class:`TracingFault` if the caller's span or trace (the root the session's
        spans hang under) has ended while the session still runs."""
        if self._trace is not None:
            return
        span = self._ambient_span
        if span is not None and span.ended_at is not None:
            raise TracingFault("the caller's span ended before the session closed")
        if self._watch_ambient_trace and not trace_is_current_somewhere(self._ambient_trace):
            raise TracingFault("the caller's trace ended before the session closed")

    def span(self, span_id: int) -> Span[Any] | None:
        """The SDK span of a core span id, while it is open."""
        return self._spans.get(span_id)

    def apply(self, commands: Iterable[Command]) -> None:
        """Apply commands in order."""
        for command in commands:
            _APPLY[type(command)](self, command)

    # -- one method per command -----------------------------------------------------------

    def _open_trace(self, command: OpenTrace) -> None:
        metadata = dict(command.metadata) if command.metadata is not None else None
        trace = self._provider.create_trace(
            name=command.workflow_name, group_id=command.group_id, metadata=metadata
        )
        context = contextvars.copy_context()
        context.run(trace.start, False)
        self._trace, self._trace_context = trace, context

    def _annotate_trace(self, command: AnnotateTrace) -> None:
        metadata = getattr(self._trace, "metadata", None)
        if isinstance(metadata, dict):
            metadata[command.key] = command.value

    def _annotate_span(self, command: AnnotateSpan) -> None:
        data = self._spans[command.span_id].span_data
        if hasattr(data, "metadata"):
            data.metadata = {**(data.metadata or {}), command.key: command.value}

    def _close_trace(self, command: CloseTrace) -> None:
        if self._deferred:
            self._trace_close_deferred = True  # after the last deferred span
            return
        self._trace_close_deferred = False
        trace, self._trace = self._trace, None
        context, self._trace_context = self._trace_context, None
        if trace is not None and context is not None:
            context.run(trace.finish, False)

    def _start_span(self, command: StartSpan) -> None:
        self.check_root()
        parent_id = command.parent_id
        parent = self._spans[parent_id] if parent_id is not None else self._root()
        span = self._provider.create_span(span_data=_span_data(command.spec), parent=parent)
        if parent_id is not None and not is_recording(span) and is_recording(parent):
            raise TracingFault("tracing was disabled while the session ran")
        # A copy of the parent's own context: what processors attached when the parent
        # started (an OpenTelemetry span, say) is current where its children start, as in a
        # Runner run, for processors that parent through the context (OpenLLMetry's).
        inherited = self._contexts[parent_id] if parent_id is not None else self._trace_context
        context = inherited.copy() if inherited is not None else contextvars.copy_context()
        if isinstance(command.spec, FunctionSpec):
            # Keep what processors add to the context on start, for the tool's own task.
            before = dict(context)
            context.run(span.start, False)
            self._carried[command.span_id] = tuple(
                (var, value)
                for var, value in context.items()
                if before.get(var, _MISSING) is not value
            )
        else:
            context.run(span.start, False)
        self._spans[command.span_id] = span
        self._contexts[command.span_id] = context
        self._parents[command.span_id] = parent_id

    def _root(self) -> Span[Any] | Trace | None:
        if self._trace is not None:
            return self._trace
        if self._ambient_span is not None:
            return self._ambient_span
        return self._ambient_trace

    def _end_span(self, command: EndSpan) -> None:
        self._end(command.span_id)

    def _end(self, span_id: int) -> None:
        if self._entered.get(span_id) or self._pinning.get(span_id):
            if span_id not in self._deferred:
                self._deferred.add(span_id)
                parent = self._parents.get(span_id)
                if parent is not None:
                    self._pinning[parent] = self._pinning.get(parent, 0) + 1
            return
        self._finish(span_id)

    def _finish(self, span_id: int) -> None:
        span = self._spans.pop(span_id)
        parent = self._parents.pop(span_id, None)
        self._carried.pop(span_id, None)
        own = self._own_errors.pop(span_id, None)
        error = span.error
        if error is not None and error is not own and self._recordable is not None:
            span.set_error(cleaned_error(error, self._recordable))  # before any exporter sees it
        context = self._contexts.pop(span_id)
        if isinstance(span.span_data, _UNMAPPED):
            parent_context = self._contexts.get(parent) if parent is not None else None
            annotate(span.span_data, context, parent_context or self._trace_context)
        context.run(span.finish, False)
        if span_id in self._deferred:
            self._deferred.discard(span_id)
            if parent is not None:
                self._unpin(parent)
            if not self._deferred and self._trace_close_deferred:
                self._close_trace(CloseTrace())

    def _unpin(self, span_id: int) -> None:
        left = self._pinning[span_id] - 1
        if left:
            self._pinning[span_id] = left
            return
        del self._pinning[span_id]
        if span_id in self._deferred and not self._entered.get(span_id):
            self._finish(span_id)

    def _set_usage(self, command: SetUsage) -> None:
        data = self._spans[command.span_id].span_data
        data.usage = command.usage.as_dict()

    def _set_messages(self, command: SetMessages) -> None:
        data = self._spans[command.span_id].span_data
        data.input = [dict(message) for message in command.input]
        data.output = [dict(message) for message in command.output]

    def _set_measures(self, command: SetMeasures) -> None:
        data = self._spans[command.span_id].span_data
        measures = getattr(data, "measures", None)
        if isinstance(measures, dict):
            measures.update(command.measures)

    def _set_timer(self, command: SetTimer) -> None:
        if self._timer is not None:
            self._timer(command.token, command.due)

    def _set_output(self, command: SetOutput) -> None:
        data = self._spans[command.span_id].span_data
        data.output = command.output

    def _attach_audio(self, command: AttachAudio) -> None:
        data = self._spans[command.span_id].span_data
        take = self.take_audio
        clip = take(command.source, command.key) if take is not None else None
        if isinstance(data, RealtimeSpeechSpanData):
            data.input = command.text
            data.audio_heard_ms = command.heard_ms
            if clip is not None:
                data.attach(clip)
        elif isinstance(data, RealtimeTranscriptionSpanData) and clip is not None:
            data.attach(clip)

    def _set_handoff_target(self, command: SetHandoffTarget) -> None:
        data = self._spans[command.span_id].span_data
        data.to_agent = command.to_agent

    def _flag_turn(self, command: FlagTurn) -> None:
        data = self._spans[command.span_id].span_data
        if isinstance(data, RealtimeTurnSpanData):
            setattr(data, command.flag, True)

    def _set_error(self, command: SetError) -> None:
        span = self._spans[command.span_id]
        if span.error is None:  # the first error a span gets (the SDK's own, too) stays
            self._set_own_error(command.span_id, span, command.error)

    def _set_own_error(self, span_id: int, span: Span[Any], error: ErrorInfo) -> None:
        own = self._own_errors[span_id] = span_error(error)
        span.set_error(own)

    def _diagnostic(self, command: Diagnostic) -> None:
        logger.debug("realtime-spans: %s in %s: %s", command.event, command.state, command.reason)

    # -- the session's failure path -------------------------------------------------------

    def abandon(self, error: ErrorInfo) -> None:
        """End every open span, newest first, with ``error``, then the trace. Never raises.

        Used when tracing gives up on a session: children are always newer than their
        parents, so newest-first ends every child before its parent (a span a running tool
        still holds, and its ancestors, finish when the tool lets go).
        """
        for span_id in sorted(self._spans, reverse=True):
            if span_id in self._deferred:
                continue
            span = self._spans[span_id]
            try:
                if span.error is None:
                    self._set_own_error(span_id, span, error)
                self._end(span_id)
            except Exception:  # pragma: no cover - a broken provider; keep closing the rest
                logger.debug("realtime-spans: could not finish span %s", span_id, exc_info=True)
        try:
            self._close_trace(CloseTrace())
        except Exception:  # pragma: no cover
            logger.debug("realtime-spans: could not finish the trace", exc_info=True)

    # -- the one context write: a tool's span, current inside the tool's own task ---------

    def enter_tool_task(self, span_id: int | None) -> ToolTaskScope | None:
        """Make a function span current in the calling task (the task that runs the tool).

        Returns the tokens to give back to :meth:`leave_tool_task` from the same task, or
        ``None`` when there is nothing to make current (no such span, or a no-op span).
        """
        span = self._spans.get(span_id) if span_id is not None else None
        if span is None or not is_recording(span):
            return None
        assert span_id is not None
        tokens: list[contextvars.Token[Any]] = []
        trace = self.trace
        if trace is not None and Scope.get_current_trace() is not trace:
            tokens.append(Scope.set_current_trace(trace))
        tokens.append(Scope.set_current_span(span))
        tokens.extend(var.set(value) for var, value in self._carried.get(span_id, ()))
        self._entered[span_id] = self._entered.get(span_id, 0) + 1
        return span_id, tuple(tokens)

    def suspend_tool_task(
        self, scopes: Sequence[ToolTaskScope]
    ) -> tuple[contextvars.Token[Any], ...]:
        """While a tool asks the session to send something, make current in the calling
        task what was current before :meth:`enter_tool_task` (``scopes``: the task's scopes,
        innermost first): a task the send starts (a transport's delivery task) inherits
        that, not the tool's span. Returns the tokens for :meth:`resume_tool_task`, to be
        given back from the same task and frame; nothing (empty) when the innermost span
        is no longer the current span (the tool made a span of its own current: what it
        starts then is its own doing).
        """
        span = self._spans.get(scopes[0][0])
        if span is None or Scope.get_current_span() is not span:
            return ()
        before: dict[contextvars.ContextVar[Any], Any] = {}
        for _, tokens in scopes:  # innermost first: the outermost scope's old values win
            for token in tokens:
                before[token.var] = token.old_value
        restored: list[contextvars.Token[Any]] = []
        for var, old_value in before.items():
            value = old_value
            if value is contextvars.Token.MISSING:
                try:
                    value = contextvars.Context().run(var.get)  # the variable's default
                except LookupError:
                    continue
            restored.append(var.set(value))
        return tuple(restored)

    @staticmethod
    def resume_tool_task(tokens: Sequence[contextvars.Token[Any]]) -> None:
        """Undo :meth:`suspend_tool_task`, from the same task."""
        for token in reversed(tokens):
            token.var.reset(token)

    def leave_tool_task(self, scope: ToolTaskScope) -> None:
        """Undo :meth:`enter_tool_task` from the same task; finish the span if its end was
        deferred while the tool held it."""
        span_id, tokens = scope
        for token in reversed(tokens):
            token.var.reset(token)
        left = self._entered.get(span_id, 0) - 1
        if left > 0:
            self._entered[span_id] = left
            return
        self._entered.pop(span_id, None)
        if span_id in self._deferred and not self._pinning.get(span_id):
            self._finish(span_id)


_APPLY: dict[type[Any], Callable[[SdkSink, Any], None]] = {
    OpenTrace: SdkSink._open_trace,
    AnnotateTrace: SdkSink._annotate_trace,
    AnnotateSpan: SdkSink._annotate_span,
    CloseTrace: SdkSink._close_trace,
    StartSpan: SdkSink._start_span,
    EndSpan: SdkSink._end_span,
    SetUsage: SdkSink._set_usage,
    SetOutput: SdkSink._set_output,
    SetHandoffTarget: SdkSink._set_handoff_target,
    FlagTurn: SdkSink._flag_turn,
    SetError: SdkSink._set_error,
    SetMessages: SdkSink._set_messages,
    SetMeasures: SdkSink._set_measures,
    SetTimer: SdkSink._set_timer,
    AttachAudio: SdkSink._attach_audio,
    Diagnostic: SdkSink._diagnostic,
}
