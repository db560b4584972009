"""The session tap: turns what a ``RealtimeSession`` does into core events, as it happens.

A traced session keeps its identity (``traced(session) is session``); its class becomes a
thin subclass of its own class whose overrides report to a per-session :class:`SessionTap`
and then do exactly what the original did. The tap sees:

* every session event at the moment it is queued (the session's event queue is a
  :class:`TappedEventQueue`, whose ``_put`` runs in the task that produced the event):
  the model's turns, usage, tool calls, interruptions and transport errors (wrapped in
  raw model events), tool approvals, guardrails and errors;
* each tool call's handling task (``_handle_tool_call``), where the call's function span
  is made current for the tool and the call's failure is seen;
* each tool output as it is sent (``_send_pending_tool_output``), rejections and tool
  guardrail rejections;
* each agent as it becomes active, with exactly the settings sent to the model
  (``_dispatch_snapshot_from_settings``, called at entry, on handoff and on
  ``update_agent()`` right before the agent is swapped in);
* the session methods a tool may call to send to the model (``send_message``,
  ``send_audio``, ``interrupt``, ``update_agent``, ``approve_tool_call``,
  ``reject_tool_call``), during which the calling tool's span is not current;
* entry (``__aenter__``) and the end of cleanup (``_cleanup``), whichever path closed it.

Audio and other events that cannot change a span leave the tap after a type check and
one or two dictionary lookups, without an extra call. Nothing here raises into the
session: an internal failure is logged once, the session's spans are closed with an
error, and tracing stops for that session only.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from agents.realtime.events import (
    RealtimeAudio,
    RealtimeError,
    RealtimeGuardrailTripped,
    RealtimeRawModelEvent,
    RealtimeToolApprovalRequired,
)
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
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
from agents.realtime.session import RealtimeSession
from agents.tracing import get_trace_provider

from realtime_spans.core import (
    SESSION_SPAN_ID,
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
    HandoffRoute,
    MessageSent,
    ServerSessionIdentified,
    SessionClosed,
    SessionStarted,
    SpanMachine,
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
)

from . import _compat
from ._audio import AudioRecorder
from ._options import DEFAULT_WORKFLOW_NAME, Options
from ._settings import PCM16_BYTES_PER_MS, audio_formats, model_configured
from ._sink import SdkSink, ToolTaskScope, TracingFault, is_recording

logger = logging.getLogger("realtime_spans")

TAP_ATTRIBUTE = "_realtime_spans_tap"
_MAX_ERROR_TEXT = 1000


def _count(value: object) -> int | None:
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, int(value))


def _usage(event: RealtimeModelUsageEvent) -> Usage:
    usage = event.usage
    given = event.input_tokens_details
    output = event.output_tokens_details
    cached = given.cached_tokens_details if given is not None else None
    cached_total = _count(given.cached_tokens) if given is not None else None
    if cached_total is None:
        cached_total = _count(getattr(usage.input_tokens_details, "cached_tokens", None)) or None
    return Usage(
        requests=_count(usage.requests) or 0,
        input_tokens=_count(usage.input_tokens) or 0,
        output_tokens=_count(usage.output_tokens) or 0,
        total_tokens=_count(usage.total_tokens) or 0,
        input_text_tokens=_count(given.text_tokens) if given is not None else None,
        input_audio_tokens=_count(given.audio_tokens) if given is not None else None,
        input_image_tokens=_count(given.image_tokens) if given is not None else None,
        cached_input_tokens=cached_total,
        cached_text_tokens=_count(cached.text_tokens) if cached is not None else None,
        cached_audio_tokens=_count(cached.audio_tokens) if cached is not None else None,
        cached_image_tokens=_count(cached.image_tokens) if cached is not None else None,
        output_text_tokens=_count(output.text_tokens) if output is not None else None,
        output_audio_tokens=_count(output.audio_tokens) if output is not None else None,
    )


def _text_of(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ is the exception's problem, not the session's
        return ""


def exception_info(error: BaseException, recordable: Callable[[str], str | None]) -> ErrorInfo:
    """An exception as span error: its type always, its text as ``recordable`` lets it
    through (:meth:`SessionTap.recordable`: withheld with sensitive data).

    Example:
        >>> exception_info(ValueError("bad city"), lambda text: text).message
        'ValueError: bad city'
        >>> exception_info(ValueError("bad city"), lambda text: None).message
        'ValueError'
    """
    kind = type(error).__name__
    text = recordable(_text_of(error))
    message = f"{kind}: {text}" if text else kind
    return ErrorInfo(message[:_MAX_ERROR_TEXT], {"error_type": kind})


def _error_event_info(error: object, recordable: Callable[[str], str | None]) -> ErrorInfo:
    """A session error event as span error: its type and code always, its message as
    ``recordable`` lets it through (server and SDK messages can quote tool data)."""
    if isinstance(error, BaseException):
        return exception_info(error, recordable)
    if isinstance(error, Mapping):
        fields = {key: error.get(key) for key in ("message", "type", "code")}
    else:
        fields = {key: getattr(error, key, None) for key in ("message", "type", "code")}
        if fields["message"] is None and error is not None:
            fields["message"] = str(error)
    text = fields.pop("message")
    recorded = recordable(str(text)) if text else None
    message = recorded[:_MAX_ERROR_TEXT] if recorded else "Realtime error"
    data = {key: str(value) for key, value in fields.items() if value is not None}
    return ErrorInfo(message, data or None)


class _ToolTask:
    """One task acting for one tool call (see :meth:`SessionTap.tool_task_begins`), or for
    no call (``call_id`` ``None``: :meth:`SessionTap.acting_for_no_call`)."""

    __slots__ = ("call_id", "outer", "owner", "scope", "sending", "task")

    def __init__(self, task: asyncio.Task[Any] | None, call_id: object) -> None:
        self.task = task
        self.call_id = call_id
        self.outer: _ToolTask | None = None  # what this task was acting for before (nested)
        self.owner = False
        self.sending = False  # the call's own output is being sent: the task is done with it
        self.scope: ToolTaskScope | None = None


class SessionTap:
    """The per-session bridge between a traced ``RealtimeSession`` and its span machine.

    It is created by :func:`~realtime_spans.adapters.traced` and lives in the session's
    ``__dict__``; the traced session class calls it from its overrides. Every method is
    safe to call from any task and never raises.
    """

    __slots__ = (
        "agents",
        "audio_bytes",
        "audio_response",
        "audio_totals",
        "bytes_per_ms",
        "call_owners",
        "closing",
        "entered",
        "escaped",
        "live",
        "machine",
        "model",
        "options",
        "playback",
        "recorder",
        "redact_failed",
        "said",
        "sensitive",
        "sink",
        "task_calls",
        "timers",
        "want_server_session",
    )

    def __init__(self, options: Options) -> None:
        self.options = options
        self.live = True
        self.entered = False
        self.sensitive = False
        self.machine = SpanMachine()
        self.sink: SdkSink | None = None
        self.model: object = None  # the session's model transport
        self.agents: dict[int, object] = {}  # keeps agents alive so their id() keys stay unique
        # task -> what it acts for now (innermost first: each links to the one it nests in)
        self.task_calls: dict[asyncio.Task[Any], _ToolTask] = {}
        self.call_owners: dict[str, asyncio.Task[Any]] = {}  # call id -> the task running it
        # once close() was called: (the call whose tool called it first, or None)
        self.closing: tuple[str | None] | None = None
        self.escaped: ErrorInfo | None = None  # what the `async with` body raised, if it did
        self.want_server_session = False
        self.redact_failed = False
        # The audio of the response now streaming (bytes so far), and of earlier ones.
        self.audio_response: object = None
        self.audio_bytes = 0
        self.audio_totals: dict[object, int] = {}
        self.bytes_per_ms = PCM16_BYTES_PER_MS
        self.said: dict[object, list[str]] = {}  # response id -> its text deltas, unjoined
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.recorder: AudioRecorder | None = None  # only while the session records audio
        self.playback: Any = None  # the application's playback tracker, if it gave one

    # -- plumbing -------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        sink = self.sink
        if sink is not None:
            sink.apply(self.machine.feed(event))

    def fail(self, error: BaseException) -> None:
        """Stop tracing this session: log once, close its open spans with the reason.

        A :class:`TracingFault` (the caller's trace ended first, tracing was disabled) is
        a warning; anything else is an internal error, logged with its traceback.
        """
        if not self.live:
            return
        self.live = False
        if isinstance(error, TracingFault):
            logger.warning(
                "realtime-spans stopped tracing a realtime session: %s; its open spans were "
                "closed with an error (the session itself is not affected)",
                error,
            )
            info = ErrorInfo(f"realtime-spans stopped tracing this session: {error}")
        else:
            logger.error(
                "realtime-spans stopped tracing a realtime session after an internal error; "
                "its open spans were closed with an error (the session itself is not affected)",
                exc_info=(type(error), error, error.__traceback__),
            )
            info = ErrorInfo(
                "realtime-spans stopped tracing this session after an internal error",
                {"error_type": type(error).__name__},
            )
        if self.sink is not None:
            self.sink.abandon(info)
        self._release()

    def _release(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.clear()
        self.agents.clear()
        self.task_calls.clear()
        self.call_owners.clear()
        self.said.clear()
        self.audio_totals.clear()
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    def handle(self, convert: Callable[[SessionTap, Any], Event | None], event: object) -> None:
        """Feed an event the session is queueing (a closing session queues none)."""
        try:
            core_event = convert(self, event)
            if core_event is not None:
                self.feed(core_event)
        except Exception as error:
            self.fail(error)

    def recordable(self, text: str) -> str | None:
        """What of a text from outside the library may go into a span: ``None`` (nothing)
        when sensitive data is withheld, else the text.

        Every such text passes here: tool inputs and outputs, exception texts (entry,
        transport, tool and close failures), server and SDK error messages, and the text
        of an error the SDK attaches to a function span (cleaned by the sink before the
        span ends). The library's own words, exception types and codes do not. With a
        ``redact`` option, the text is what it returns; a text it fails on is withheld
        (``None``), and the first failure in a session is logged.
        """
        if not self.sensitive:
            return None
        redact = self.options.redact
        if redact is None:
            return text
        try:
            redacted = redact(text)
        except Exception as error:
            self._redact_failed(f"it raised {type(error).__name__}")
            return None
        if not isinstance(redacted, str):
            self._redact_failed(f"it returned {type(redacted).__name__}, not str")
            return None
        return redacted

    def _redact_failed(self, why: str) -> None:
        if not self.redact_failed:
            self.redact_failed = True
            logger.warning(
                "realtime-spans: the redact option failed on a text (%s); that text, and any "
                "other it fails on in this session, is left out of the trace",
                why,
            )

    # -- timers (a turn waits for its audio to play out) ------------------------------------

    def set_timer(self, token: int, due: float) -> None:
        """Feed ``TimerFired(token)`` at monotonic time ``due`` (the sink's timer hook)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the turn ends with the session
        previous = self.timers.pop(token, None)
        if previous is not None:
            previous.cancel()
        delay = max(0.0, due - time.monotonic())
        self.timers[token] = loop.call_later(delay, self.timer_fired, token)

    def timer_fired(self, token: int) -> None:
        self.timers.pop(token, None)
        if self.live:
            try:
                self.feed(TimerFired(token, at=time.monotonic()))
            except Exception as error:
                self.fail(error)

    # -- the conversation -------------------------------------------------------------------

    def audio_starts(self, audio: RealtimeModelAudioEvent) -> None:
        """The first audio delta of a response (its later deltas are only counted)."""
        try:
            previous = self.audio_response
            if previous is not None:
                self.audio_totals[previous] = self.audio_bytes
            self.audio_response = audio.response_id
            self.audio_bytes = len(audio.data)
            self.feed(AudioStarted(audio.response_id, audio.item_id, at=time.monotonic()))
        except Exception as error:
            self.fail(error)

    def audio_ms(self, response_id: object) -> float | None:
        """How long the audio received for a response lasts (``None``: none received)."""
        if response_id == self.audio_response:
            size: int | None = self.audio_bytes
        else:
            size = self.audio_totals.get(response_id)
        return size / self.bytes_per_ms if size else None

    def message_sent(self, message: object) -> None:
        """The application sent the caller's message as text (``send_message``)."""
        try:
            text = _message_text(message)
            recorded = self.recordable(text) if text is not None else None
            self.feed(MessageSent(recorded, at=time.monotonic()))
        except Exception as error:
            self.fail(error)

    def _current_call(self) -> str | None:
        """The call the current task is working on, if any: not once its output is being
        sent (what the send causes is not the call's doing), nor inside ``update_agent()``."""
        acting = self.task_calls.get(asyncio.current_task())  # type: ignore[arg-type]
        if acting is None or acting.sending or not isinstance(acting.call_id, str):
            return None
        return acting.call_id

    # -- entry and close ------------------------------------------------------------------

    def entering(self, session: RealtimeSession) -> None:
        """The session is being entered, in the entering task, before it connects."""
        try:
            if self.entered:
                return
            self.entered = True
            if _compat.run_config(session).get("tracing_disabled", False):
                self.live = False
                return
            sink = SdkSink.from_current_context(self.recordable, self.set_timer)
            ambient_trace = sink.ambient_trace
            if ambient_trace is not None and not is_recording(ambient_trace):
                self.live = False  # inside a disabled trace: record nothing, touch nothing
                return
            options = self.options
            self.sensitive = (
                options.include_sensitive_data
                if options.include_sensitive_data is not None
                else _compat.sensitive_data_default()
            )
            settings = _compat.model_settings(session)
            server_tracing = settings.get("tracing")
            tracing = server_tracing if isinstance(server_tracing, dict) else {}
            workflow_name = (
                options.workflow_name or tracing.get("workflow_name") or DEFAULT_WORKFLOW_NAME
            )
            group_id = tracing.get("group_id")
            metadata = tracing.get("metadata")
            if options.correlate_server_trace:
                metadata = dict(metadata or {})
                if "tracing" not in settings or server_tracing is not None:
                    group_id = (
                        group_id
                        or getattr(ambient_trace, "group_id", None)
                        or get_trace_provider().gen_group_id()
                    )
                    _share_group_id(session, tracing, group_id)
                self.want_server_session = True
            self.sink = sink
            self.model = getattr(session, "_model", None)
            self.playback = _compat.playback_tracker(session)
            record_audio = options.include_audio and self.sensitive
            if record_audio:
                self._record_audio(session, sink)
            self.feed(
                SessionStarted(
                    str(workflow_name),
                    group_id=group_id if isinstance(group_id, str) else None,
                    metadata=metadata if isinstance(metadata, Mapping) else None,
                    open_trace=ambient_trace is None,
                    record_audio=record_audio,
                )
            )
            if not is_recording(sink.span(SESSION_SPAN_ID)):
                # Tracing is disabled globally (or the parent span is a no-op): the spans
                # made were no-ops; end them and stay out of the way.
                sink.abandon(ErrorInfo("tracing disabled"))
                self.live = False
        except Exception as error:
            self.fail(error)

    def _record_audio(self, session: RealtimeSession, sink: SdkSink) -> None:
        """Record this session's audio: its event queue becomes one that also keeps the
        model's audio deltas (a session that records none keeps the plain tapped queue,
        whose audio path stays as short as it is)."""
        queue = getattr(session, _compat.EVENT_QUEUE_ATTRIBUTE, None)
        if type(queue) is not TappedEventQueue or not queue.empty():
            return
        self.recorder = AudioRecorder(self.options.max_audio_seconds)
        sink.take_audio = self.take_audio
        setattr(session, _compat.EVENT_QUEUE_ATTRIBUTE, RecordingEventQueue(self))

    def take_audio(self, source: str, key: object) -> Any:
        """The recorded audio of a span's utterance or response (the sink's audio hook)."""
        recorder = self.recorder
        return recorder.take(source, key) if recorder is not None else None

    def caller_audio_sent(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """The application sent the caller's audio (``send_audio``): keep it (recording)."""
        recorder = self.recorder
        if recorder is None:
            return
        try:
            audio = args[0] if args else kwargs.get("audio")
            if isinstance(audio, bytes | bytearray | memoryview):
                recorder.caller_audio(bytes(audio), bool(kwargs.get("commit", False)))
        except Exception as error:
            self.fail(error)

    def entry_failed(self, error: BaseException) -> None:
        """Entering raised: every span opened ends, carrying the error."""
        try:
            self.feed(EntryFailed(exception_info(error, self.recordable)))
        except Exception as failure:
            self.fail(failure)
        finally:
            self.live = False
            self._release()

    def close_requested(self) -> None:
        """``close()`` was called. The first call starts the cleanup: when it came from a
        tool's own task, that tool closed the session (an "end the call" tool), and its
        call is not cancelled by the close."""
        if self.closing is None:
            try:
                self.closing = (self._closing_call(),)
            except Exception as error:
                self.fail(error)

    def body_raised(self, error: Exception) -> None:
        """The application's code in ``async with session:`` raised ``error``, which ends
        the session: the session span carries it (as any exception escaping a span's
        block does in OpenTelemetry), unless closing fails with an error of its own.
        Cancellation (a ``BaseException``) is how sessions are stopped, not an error."""
        try:
            self.escaped = exception_info(error, self.recordable)
        except Exception as failure:
            self.fail(failure)

    def closed(self, error: BaseException | None) -> None:
        """Cleanup finished (or failed): end whatever is still open."""
        try:
            if self.live:
                if self.sink is not None:
                    self.sink.check_root()
                info = exception_info(error, self.recordable) if error is not None else None
                info = info or self.escaped
                by_call = self.closing[0] if self.closing is not None else None
                self.feed(SessionClosed(info, by_call=by_call))
        except Exception as failure:
            self.fail(failure)
        finally:
            self.live = False
            self._release()

    def _closing_call(self) -> str | None:
        """The call the current task runs the tool of, if it owns one."""
        acting = self.task_calls.get(asyncio.current_task())  # type: ignore[arg-type]
        if acting is None or not acting.owner or not isinstance(acting.call_id, str):
            return None
        return acting.call_id

    # -- agents ---------------------------------------------------------------------------

    def agent_in_place(self, agent: Any, settings: Mapping[str, Any]) -> None:
        """``agent`` becomes active with ``settings``, exactly as sent to the model."""
        try:
            key = id(agent)
            self.agents[key] = agent
            tools = tuple(
                name
                for tool in settings.get("tools") or ()
                if (name := _compat.tool_trace_name(tool)) is not None
            )
            routes = tuple(
                HandoffRoute(handoff.tool_name, handoff.agent_name)
                for handoff in settings.get("handoffs") or ()
            )
            configured, self.bytes_per_ms = model_configured(settings, self.model)
            if self.recorder is not None:
                self.recorder.set_formats(*audio_formats(settings, self.model))
            self.feed(configured)
            self.feed(
                AgentActivated(
                    key, agent.name, tools=tools, handoffs=routes, call_id=self._current_call()
                )
            )
        except Exception as error:
            self.fail(error)

    # -- tool calls -----------------------------------------------------------------------

    def tool_task_begins(self, call_id: object, approved: bool) -> _ToolTask:
        """A task starts handling a tool call: make its function span current there.

        Only the first task handling a call id owns it: a second invocation reusing the id
        while the first runs (the SDK refuses it) neither takes the span nor fails it.
        """
        handling = _ToolTask(asyncio.current_task(), call_id)
        try:
            if not isinstance(call_id, str) or handling.task is None:
                return handling
            if approved:
                self.feed(ToolApproved(call_id))
            self._push(handling)
            owner = self.call_owners.get(call_id)
            if owner is not None and owner is not handling.task and not owner.done():
                return handling
            handling.owner = True
            self.call_owners[call_id] = handling.task
            if self.sink is not None:
                handling.scope = self.sink.enter_tool_task(self.machine.function_span(call_id))
        except Exception as error:
            self.fail(error)
        return handling

    def acting_for_no_call(self) -> _ToolTask:
        """The current task starts work that is no call's (``update_agent()``, even from
        inside a tool or a handoff callback): nothing it causes is attributed to a call.
        Undo with :meth:`tool_task_ends`, from the same task."""
        acting = _ToolTask(asyncio.current_task(), None)
        if acting.task is not None:
            self._push(acting)
        return acting

    def _push(self, acting: _ToolTask) -> None:
        assert acting.task is not None
        acting.outer = self.task_calls.get(acting.task)
        self.task_calls[acting.task] = acting

    def output_sending(self, pending_output: Any) -> None:
        """A tool output is about to be sent: the next response receives it (a model can
        answer before the send returns). If the current task handles the output's call,
        the call is done here: its function span stops being current, so nothing the send
        starts inherits it. An output sent for another call (a tool rejecting a call that
        awaited approval) changes nothing for the call this task handles."""
        try:
            call_id = pending_output.tool_call.call_id
            output = pending_output.output
            text = self.recordable(output) if isinstance(output, str) else None
            self.feed(MessageSent(text, at=time.monotonic(), call_id=call_id))
            acting = self.task_calls.get(asyncio.current_task())  # type: ignore[arg-type]
            if acting is None or acting.call_id is None:
                return
            if acting.call_id == call_id:
                acting.sending = True
                self._leave(acting)
        except Exception as error:
            self.fail(error)

    def suspend_tool_span(self) -> tuple[contextvars.Token[Any], ...]:
        """A session method that sends to the model (``send_message()``,
        ``reject_tool_call()``...) was called. If a tool called it from its own task, its
        function span is not current until the method returns, so nothing the send starts
        (a transport task delivering the model's answer, and the guardrails that task
        runs) inherits it. Give the result to :meth:`resume_tool_span`, from the same task.
        """
        try:
            acting = self.task_calls.get(asyncio.current_task())  # type: ignore[arg-type]
            scopes: list[ToolTaskScope] = []
            while acting is not None:
                if acting.scope is not None:
                    scopes.append(acting.scope)
                acting = acting.outer
            if not scopes or self.sink is None:
                return ()
            return self.sink.suspend_tool_task(scopes)
        except Exception as error:
            self.fail(error)
            return ()

    def resume_tool_span(self, tokens: tuple[contextvars.Token[Any], ...]) -> None:
        """Undo :meth:`suspend_tool_span`."""
        if tokens:
            try:
                SdkSink.resume_tool_task(tokens)
            except Exception as error:  # pragma: no cover - only a foreign reset could do this
                self.fail(error)

    def _leave(self, handling: _ToolTask) -> None:
        scope, handling.scope = handling.scope, None
        if scope is not None and self.sink is not None:
            try:
                self.sink.leave_tool_task(scope)
            except Exception as error:  # pragma: no cover - only a foreign reset could do this
                self.fail(error)

    def tool_task_ends(self, handling: _ToolTask) -> None:
        """The same task finished handling the call: undo what :meth:`tool_task_begins` did."""
        task = handling.task
        if task is None:
            return
        self._leave(handling)
        if self.task_calls.get(task) is handling:
            if handling.outer is None:
                del self.task_calls[task]
            else:
                self.task_calls[task] = handling.outer
        call_id = handling.call_id
        if handling.owner and isinstance(call_id, str) and self.call_owners.get(call_id) is task:
            del self.call_owners[call_id]

    def tool_task_raised(self, handling: _ToolTask, error: BaseException) -> None:
        """Handling the call raised: the call (or handoff) failed, unless it was cancelled.

        A task that did not own the call (a reused call id) reports its error on the
        session instead: the running call is not the one that failed.
        """
        call_id = handling.call_id
        if isinstance(error, asyncio.CancelledError) or not isinstance(call_id, str):
            return  # a cancelled call is ended by the close that cancelled it
        try:
            info = exception_info(error, self.recordable)
            self.feed(ToolFailed(call_id, info) if handling.owner else ErrorReported(info))
        except Exception as failure:
            self.fail(failure)

    def tool_output_sent(self, pending_output: Any) -> None:
        try:
            call_id = pending_output.tool_call.call_id
            output = pending_output.output
            text = self.recordable(output) if isinstance(output, str) else None
            self.feed(ToolOutputSent(call_id, text))
        except Exception as error:
            self.fail(error)

    def tool_rejected(self, tool_call: Any) -> None:
        try:
            self.feed(ToolRejected(tool_call.call_id))
        except Exception as error:
            self.fail(error)

    def tool_guardrail_rejected(self, call_id: object, stage: str) -> None:
        try:
            if isinstance(call_id, str):
                self.feed(ToolGuardrailRejected(call_id, stage))
        except Exception as error:
            self.fail(error)


def _share_group_id(session: RealtimeSession, tracing: Mapping[str, Any], group_id: str) -> None:
    """Send the trace's group id in the server-side tracing settings used at connect.

    The session's own model config is replaced by a copy: the caller's dicts stay as given.
    """
    config = dict(_compat.model_config(session))
    initial = dict(config.get("initial_model_settings") or {})
    initial["tracing"] = {**tracing, "group_id": group_id}
    config["initial_model_settings"] = initial
    session._model_config = config  # type: ignore[assignment]


# -- converters: a session event in, a core event (or nothing) out ---------------------------


def _message_text(message: object) -> str | None:
    """The text of a ``send_message`` input: a string, or the text parts of a message."""
    if isinstance(message, str):
        return message
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        return None
    texts = [
        part["text"]
        for part in content
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    ]
    return "\n".join(texts) if texts else None


def _turn_started(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    return TurnStarted(event.data.response_id, at=time.monotonic())  # type: ignore[union-attr]


def _turn_ended(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    response_id = event.data.response_id  # type: ignore[union-attr]
    parts = tap.said.pop(response_id, None)
    text = tap.recordable("".join(parts)) if parts else None
    audio_ms = tap.audio_ms(response_id)
    if response_id == tap.audio_response:
        tap.audio_response, tap.audio_bytes = None, 0
    else:
        tap.audio_totals.pop(response_id, None)
    if text is not None or audio_ms is not None:
        tap.feed(AgentSaid(response_id, text, audio_ms=audio_ms))
    return TurnEnded(response_id, at=time.monotonic())


def _text_delta(tap: SessionTap, event: RealtimeRawModelEvent) -> Event | None:
    delta: RealtimeModelTranscriptDeltaEvent = event.data  # type: ignore[assignment]
    response_id = delta.response_id
    parts = tap.said.get(response_id)
    if parts is not None:
        parts.append(delta.delta)  # joined once, when the response ends
        return None
    tap.said[response_id] = [delta.delta]
    return TextStarted(response_id, at=time.monotonic())


def _caller_transcribed(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    done: RealtimeModelInputAudioTranscriptionCompletedEvent = event.data  # type: ignore[assignment]
    transcript = done.transcript
    text = tap.recordable(transcript) if isinstance(transcript, str) else None
    return CallerTranscribed(done.item_id, text, at=time.monotonic())


def _item_updated(tap: SessionTap, event: RealtimeRawModelEvent) -> Event | None:
    item = event.data.item  # type: ignore[union-attr]
    if getattr(item, "type", None) != "message" or getattr(item, "role", None) != "user":
        return None
    content = getattr(item, "content", None) or ()
    if not any(getattr(part, "type", None) == "input_audio" for part in content):
        return None  # a typed message: its text was seen as it was sent
    if tap.recorder is not None:
        tap.recorder.committed(item.item_id)
    return CallerAudioCommitted(item.item_id, at=time.monotonic())


def _usage_reported(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    return UsageReported(_usage(event.data))  # type: ignore[arg-type]


def _tool_called(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    call: RealtimeModelToolCallEvent = event.data  # type: ignore[assignment]
    arguments = call.arguments
    text = tap.recordable(arguments) if isinstance(arguments, str) else None
    return ToolCalled(call.call_id, call.name, text)


def _audio_interrupted(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    item_id = getattr(event.data, "item_id", None)
    item_id = item_id if isinstance(item_id, str) else None
    generated = tap.audio_ms(tap.audio_response) if tap.audio_response is not None else None
    played = _played_ms(tap.playback, item_id) if tap.playback is not None else None
    return AudioInterrupted(item_id, at=time.monotonic(), generated_ms=generated, played_ms=played)


def _played_ms(tracker: Any, item_id: str | None) -> float | None:
    """How much of ``item_id`` the application's playback tracker says it played, read when
    the transport reports the interruption (the transport resets the tracker only after
    sending the truncation, so this is the count the model is told the caller heard)."""
    try:
        state = tracker.get_state()
        elapsed = state.get("elapsed_ms")
        if item_id is None or state.get("current_item_id") != item_id:
            return None
    except Exception:  # the application's tracker: what it cannot say, we estimate
        return None
    number = isinstance(elapsed, int | float) and not isinstance(elapsed, bool)
    return float(elapsed) if number and math.isfinite(elapsed) and elapsed >= 0 else None


def _transport_failed(tap: SessionTap, event: RealtimeRawModelEvent) -> Event:
    failure: RealtimeModelExceptionEvent = event.data  # type: ignore[assignment]
    info = exception_info(failure.exception, tap.recordable)
    if failure.context:
        info = ErrorInfo(info.message, {**(info.data or {}), "context": str(failure.context)})
    return TransportFailed(info)


def _speech_started(tap: SessionTap, data: Mapping[str, Any]) -> Event | None:
    item_id = data.get("item_id")
    if not isinstance(item_id, str):
        return None
    if tap.recorder is not None:
        tap.recorder.speech_started(item_id, data.get("audio_start_ms"))
    return CallerSpeechStarted(item_id, at=time.monotonic())


def _speech_stopped(tap: SessionTap, data: Mapping[str, Any]) -> Event | None:
    item_id = data.get("item_id")
    if not isinstance(item_id, str):
        return None
    if tap.recorder is not None:
        tap.recorder.speech_stopped(item_id, data.get("audio_end_ms"))
    return CallerSpeechStopped(item_id, at=time.monotonic())


def _audio_committed(tap: SessionTap, data: Mapping[str, Any]) -> Event | None:
    item_id = data.get("item_id")
    if not isinstance(item_id, str):
        return None
    if tap.recorder is not None:
        tap.recorder.committed(item_id)
    return CallerAudioCommitted(item_id, at=time.monotonic())


def _transcription_failed(tap: SessionTap, data: Mapping[str, Any]) -> Event | None:
    item_id = data.get("item_id")
    if not isinstance(item_id, str):
        return None
    info = _error_event_info(data.get("error"), tap.recordable)
    return CallerTranscriptionFailed(item_id, info, at=time.monotonic())


def _session_created(tap: SessionTap, data: Mapping[str, Any]) -> Event | None:
    if not tap.want_server_session:
        return None
    server_session = data.get("session")
    session_id = server_session.get("id") if isinstance(server_session, Mapping) else None
    if not isinstance(session_id, str):
        return None
    tap.want_server_session = False
    return ServerSessionIdentified(session_id)


def _approval_required(tap: SessionTap, event: RealtimeToolApprovalRequired) -> Event:
    return ToolApprovalRequested(event.call_id)


def _guardrail_tripped(tap: SessionTap, event: RealtimeGuardrailTripped) -> Event | None:
    names = tuple(str(result.guardrail.get_name()) for result in event.guardrail_results)
    if not names:
        return None
    agent = getattr(event.guardrail_results[0], "agent", None)
    key = id(agent) if agent is not None and id(agent) in tap.agents else None
    return GuardrailTripped(key, names)


def _error(tap: SessionTap, event: RealtimeError) -> Event:
    info = _error_event_info(event.error, tap.recordable)
    return ErrorReported(info, call_id=tap._current_call())


#: Server messages that can change a span, by their ``type``: the caller's speech as the
#: server's voice activity detection saw it (the OpenAI transport passes these on only as
#: raw server messages), and the server's own session id.
SERVER_CONVERTERS: dict[object, Callable[[SessionTap, Mapping[str, Any]], Event | None]] = {
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "input_audio_buffer.committed": _audio_committed,
    "conversation.item.input_audio_transcription.failed": _transcription_failed,
    "session.created": _session_created,
}

#: Raw model events that can change a span, by the type of the model event they carry.
#: ``RealtimeModelRawServerEvent`` (one per server message, audio deltas included) is not
#: here: :meth:`TappedEventQueue._put` looks up its ``type`` in :data:`SERVER_CONVERTERS`.
RAW_CONVERTERS: dict[type[Any], Callable[[SessionTap, Any], Event | None]] = {
    RealtimeModelTurnStartedEvent: _turn_started,
    RealtimeModelTurnEndedEvent: _turn_ended,
    RealtimeModelTranscriptDeltaEvent: _text_delta,
    RealtimeModelOutputTextDeltaEvent: _text_delta,
    RealtimeModelInputAudioTranscriptionCompletedEvent: _caller_transcribed,
    RealtimeModelItemUpdatedEvent: _item_updated,
    RealtimeModelUsageEvent: _usage_reported,
    RealtimeModelToolCallEvent: _tool_called,
    RealtimeModelAudioInterruptedEvent: _audio_interrupted,
    RealtimeModelExceptionEvent: _transport_failed,
}

#: Session events that can change a span, by type. Everything else (audio above all)
#: leaves the tap after one lookup in each table.
SESSION_CONVERTERS: dict[type[Any], Callable[[SessionTap, Any], Event | None]] = {
    RealtimeToolApprovalRequired: _approval_required,
    RealtimeGuardrailTripped: _guardrail_tripped,
    RealtimeError: _error,
}


# -- the traced session class ------------------------------------------------------------------

_traced_classes: dict[type[Any], type[Any]] = {}
_traced_classes_lock = threading.Lock()


def traced_class(base: type[RealtimeSession]) -> type[RealtimeSession]:
    """The traced subclass of a session class (made once per class).

    Example:
        >>> traced_class(RealtimeSession).__name__
        'RealtimeSession'
        >>> issubclass(traced_class(RealtimeSession), RealtimeSession)
        True
    """
    if getattr(base, "__realtime_spans_traced__", False):
        return base
    with _traced_classes_lock:
        cls = _traced_classes.get(base)
        if cls is None:
            cls = _traced_classes[base] = _make_traced_class(base)
        return cls


class TappedEventQueue(asyncio.Queue):  # type: ignore[type-arg]
    """The session's event queue, made to report what is queued to the session's tap.

    ``asyncio.Queue._put`` is the queue's storage hook (``LifoQueue`` and
    ``PriorityQueue`` override it): every ``put``/``put_nowait`` of the session goes
    through it, in the task that queues the event, after the session decided to queue it.

    Audio deltas and raw server messages are nearly all a session queues (three of them
    per audio delta). They leave after identity checks alone: no call, no table lookup.
    That matters more than the instruction count suggests: a session's per-event path
    already overflows the CPU's instruction cache, so every extra piece of interpreter or
    C code run per event costs cache misses (measured with cachegrind: a type-keyed
    ``dict.get`` here cost 16% more L1 misses in an audio-heavy session).
    """

    def __init__(self, tap: SessionTap) -> None:
        self._realtime_spans_tap = tap
        super().__init__()

    def _put(self, item: Any) -> None:
        self._queue.append(item)  # type: ignore[attr-defined] # what Queue._put does
        kind = type(item)
        if kind is RealtimeRawModelEvent:
            data = item.data
            kind = type(data)
            if kind is RealtimeModelAudioEvent:
                tap = self._realtime_spans_tap
                if data.response_id == tap.audio_response:
                    tap.audio_bytes += len(data.data)  # the response's audio, in bytes
                elif tap.live:
                    tap.audio_starts(data)
                return
            if kind is RealtimeModelRawServerEvent:
                message = data.data
                if type(message) is not dict:
                    return
                server = SERVER_CONVERTERS.get(message.get("type"))
                if server is not None:
                    tap = self._realtime_spans_tap
                    if tap.live:
                        tap.handle(server, message)
                return
            convert: Callable[[SessionTap, Any], Event | None] | None = RAW_CONVERTERS.get(kind)
        elif kind is RealtimeAudio:
            return
        else:
            convert = SESSION_CONVERTERS.get(kind)
        if convert is not None:
            tap = self._realtime_spans_tap
            if tap.live:
                tap.handle(convert, item)


class RecordingEventQueue(TappedEventQueue):
    """The event queue of a session that records audio (``include_audio``): it reports
    what is queued as :class:`TappedEventQueue` does, and also keeps each audio delta of
    the model for the response's speech span. Swapped in at entry only for such a session,
    so a session that records no audio never runs this code."""

    def _put(self, item: Any) -> None:
        if type(item) is RealtimeRawModelEvent:
            data = item.data
            if type(data) is RealtimeModelAudioEvent:  # the tapped queue's path, then keep it
                self._queue.append(item)  # type: ignore[attr-defined]
                tap = self._realtime_spans_tap
                if data.response_id == tap.audio_response:
                    tap.audio_bytes += len(data.data)
                elif tap.live:
                    tap.audio_starts(data)
                recorder = tap.recorder
                if recorder is not None:
                    try:
                        recorder.agent_audio(data.response_id, data.data)
                    except Exception as error:
                        tap.fail(error)
                return
        TappedEventQueue._put(self, item)


def tap_event_queue(session: RealtimeSession, tap: SessionTap) -> None:
    """Make the session's event queue report what is queued to ``tap``."""
    queue = getattr(session, _compat.EVENT_QUEUE_ATTRIBUTE, None)
    if type(queue) is not asyncio.Queue or queue.maxsize or not queue.empty():
        raise TypeError(
            f"{type(session).__name__} has no empty asyncio.Queue of events: this "
            "openai-agents release is not supported by realtime-spans"
        )
    # A new queue rather than a re-classed one: CPython keeps attribute access fast only
    # on objects that keep the class they were made with (measured: +150 ns per put).
    setattr(session, _compat.EVENT_QUEUE_ATTRIBUTE, TappedEventQueue(tap))


#: Public session methods that send to the model and that a tool may call (``update_agent``
#: is overridden on its own): while a tool's call runs them, its span is not current.
_SENDING_METHODS = (
    "send_message",
    "send_audio",
    "interrupt",
    "approve_tool_call",
    "reject_tool_call",
)


def _sending_method(base: type[RealtimeSession], name: str) -> Callable[..., Any]:
    """``base``'s method ``name`` (looked up at each call: a later patch of it is seen, as
    through inheritance), run with the calling tool's span suspended."""

    records_message = name == "send_message"
    records_audio = name == "send_audio"

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        tap: SessionTap = self._realtime_spans_tap
        if records_message and tap.live:
            tap.message_sent(args[0] if args else kwargs.get("message"))
        elif records_audio and tap.recorder is not None:
            tap.caller_audio_sent(args, kwargs)
        if not tap.task_calls:  # no tool is running anywhere: nothing can be current
            return await getattr(base, name)(self, *args, **kwargs)
        suspended = tap.suspend_tool_span()
        try:
            return await getattr(base, name)(self, *args, **kwargs)
        finally:
            tap.resume_tool_span(suspended)

    original = getattr(base, name)
    method.__name__ = original.__name__
    method.__qualname__ = f"{base.__qualname__}.{name}"
    method.__doc__ = original.__doc__
    return method


def _make_traced_class(base: type[RealtimeSession]) -> type[RealtimeSession]:
    class Traced(base):  # type: ignore[valid-type,misc]
        __slots__ = ()
        __realtime_spans_traced__ = True

        async def __aenter__(self) -> Any:
            tap: SessionTap = self._realtime_spans_tap
            if tap.live:
                tap.entering(self)
            try:
                return await base.__aenter__(self)
            except BaseException as error:
                if tap.live:
                    tap.entry_failed(error)
                raise

        async def __aexit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
            tap: SessionTap = self._realtime_spans_tap
            if tap.live and isinstance(exc_value, Exception):
                tap.body_raised(exc_value)
            return await base.__aexit__(self, exc_type, exc_value, traceback)

        async def close(self) -> None:
            tap: SessionTap = self._realtime_spans_tap
            if tap.live:
                tap.close_requested()
            return await base.close(self)

        def _dispatch_snapshot_from_settings(self, agent: Any, settings: Any) -> Any:
            snapshot = base._dispatch_snapshot_from_settings(self, agent, settings)
            tap: SessionTap = self._realtime_spans_tap
            if tap.live:
                tap.agent_in_place(agent, settings)
            return snapshot

        async def _handle_tool_call(self, event: Any, **kwargs: Any) -> None:
            tap: SessionTap = self._realtime_spans_tap
            if not tap.live:
                return await base._handle_tool_call(self, event, **kwargs)
            call_id = getattr(event, "call_id", None)
            handling = tap.tool_task_begins(call_id, bool(kwargs.get("from_pending_approval")))
            try:
                return await base._handle_tool_call(self, event, **kwargs)
            except BaseException as error:
                if tap.live:
                    tap.tool_task_raised(handling, error)
                raise
            finally:
                tap.tool_task_ends(handling)

        async def _send_pending_tool_output(self, pending_output: Any) -> bool:
            tap: SessionTap = self._realtime_spans_tap
            if not tap.live:
                return await base._send_pending_tool_output(self, pending_output)
            tap.output_sending(pending_output)
            try:
                sent = await base._send_pending_tool_output(self, pending_output)
            except asyncio.CancelledError:
                # The output was handed to the transport and the session closed while the
                # send was awaited (a scripted model delivers the reply inside the send).
                if tap.live:
                    tap.tool_output_sent(pending_output)
                raise
            if sent and tap.live:
                tap.tool_output_sent(pending_output)
            return sent

        async def update_agent(self, agent: Any) -> None:
            tap: SessionTap = self._realtime_spans_tap
            if not tap.live:
                return await base.update_agent(self, agent)
            acting = tap.acting_for_no_call()
            suspended = tap.suspend_tool_span()
            try:
                return await base.update_agent(self, agent)
            finally:
                tap.resume_tool_span(suspended)
                tap.tool_task_ends(acting)

        async def _send_tool_rejection(self, event: Any, **kwargs: Any) -> None:
            tap: SessionTap = self._realtime_spans_tap
            if tap.live:
                tap.tool_rejected(event)
            return await base._send_tool_rejection(self, event, **kwargs)

        async def _run_tool_input_guardrails(self, **kwargs: Any) -> Any:
            message = await base._run_tool_input_guardrails(self, **kwargs)
            tap: SessionTap = self._realtime_spans_tap
            if message is not None and tap.live:
                tap.tool_guardrail_rejected(
                    getattr(kwargs.get("tool_call"), "call_id", None), "input"
                )
            return message

        async def _cleanup(self) -> None:
            try:
                await base._cleanup(self)
            except BaseException as error:
                self._realtime_spans_tap.closed(error)
                raise
            self._realtime_spans_tap.closed(None)

    if _compat.has_tool_output_guardrails(base):

        async def _run_tool_output_guardrails(self: Any, **kwargs: Any) -> Any:
            output = kwargs.get("output")
            checked = await base._run_tool_output_guardrails(self, **kwargs)
            tap: SessionTap = self._realtime_spans_tap
            if checked is not output and tap.live:
                call_id = getattr(kwargs.get("tool_context"), "tool_call_id", None)
                tap.tool_guardrail_rejected(call_id, "output")
            return checked

        Traced._run_tool_output_guardrails = _run_tool_output_guardrails

    for name in _SENDING_METHODS:
        setattr(Traced, name, _sending_method(base, name))

    Traced.__name__ = base.__name__
    Traced.__qualname__ = base.__qualname__
    Traced.__module__ = base.__module__
    Traced.__doc__ = base.__doc__
    return Traced
