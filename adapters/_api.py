"""The public entry points: ``traced``, ``instrument`` and ``uninstrument``."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, TypeVar

import attrs
from agents.realtime.session import RealtimeSession

from . import _compat
from ._options import Options
from ._peers import warn_once_if_competing
from ._tap import TAP_ATTRIBUTE, SessionTap, tap_event_queue, traced_class

logger = logging.getLogger("realtime_spans")

S = TypeVar("S", bound=RealtimeSession)


def traced(session: S, **options: Any) -> S:
    """Trace one realtime session; returns the same session object.

    Call it before the session is entered. Spans open when the session is entered and all
    end when it closes, from whichever task and whichever path closes it. On a session
    already traced (by an earlier ``traced()``, or by :func:`instrument`) the options given
    here take effect over the ones it had, the others stay; with no options it does nothing.

    Args:
        session: a ``RealtimeSession``, e.g. from ``await RealtimeRunner(...).run()``.
        workflow_name: name of the trace opened when no trace is active at entry.
        include_sensitive_data: put tool inputs, outputs and error details into spans
            (default: ``OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA``, as the SDK does).
        correlate_server_trace: share one ``group_id`` with the Realtime API's server-side
            trace and record the server's session id in the trace metadata.
        redact: ``str -> str``, applied to every text of the conversation (transcripts,
            messages, tool inputs and outputs, error texts) before it reaches a span; a text
            it raises on (or returns no ``str`` for) is withheld, with one log line.
        include_audio: record the audio too (default ``False``: no byte of audio is kept):
            each caller utterance's audio on its ``transcription`` span, each response's
            audio on a ``speech`` span under its turn. Only when sensitive data is allowed:
            with ``include_sensitive_data=False`` no audio is recorded. ``redact`` does not
            apply to audio.
        max_audio_seconds: the most audio one span holds (default 300); past it the audio
            is cut and the span says ``truncated``.

    Raises:
        TypeError: ``session`` is not a ``RealtimeSession``, or an option is unknown or of
            the wrong type.
        ValueError: an option has a bad value, or the session was already entered (even
            one already traced: options given after entry would be dropped).

    Example:
        ```python
        from realtime_spans.adapters import traced

        runner = RealtimeRunner(agent)
        async with traced(await runner.run(), workflow_name="Support line") as session:
            await session.send_message("Hello")
            async for event in session:
                ...
        ```
    """
    checked = Options.from_kwargs(options)
    warn_once_if_competing(stacklevel=3)
    return _attach(session, checked, given=frozenset(options))


def _attach(session: S, options: Options, *, given: frozenset[str] | None = None) -> S:
    """Trace ``session`` with ``options``. On a session already traced, the options named
    in ``given`` replace its own (before entry: they are read when it is entered)."""
    if not isinstance(session, RealtimeSession):
        raise TypeError(f"traced() needs a RealtimeSession, got {type(session).__name__}")
    tap = vars(session).get(TAP_ATTRIBUTE)
    if isinstance(tap, SessionTap) and not given:
        return session
    if _compat.session_has_started(session) or (isinstance(tap, SessionTap) and tap.entered):
        raise ValueError(
            "traced() must be called before the session is entered; "
            "wrap the session returned by RealtimeRunner.run(), then enter it"
        )
    if isinstance(tap, SessionTap):
        tap.options = attrs.evolve(
            tap.options, **{name: getattr(options, name) for name in sorted(given or ())}
        )
        return session
    missing = _compat.missing_session_members(type(session))
    if missing:
        raise TypeError(
            f"{type(session).__name__} lacks {', '.join(missing)}: this openai-agents release "
            "is not supported by realtime-spans"
        )
    cls: Any = traced_class(type(session))
    tap = SessionTap(options)
    tap_event_queue(session, tap)
    vars(session)[TAP_ATTRIBUTE] = tap
    session.__class__ = cls
    return session


class _Instrumentation:
    """Process-wide state of :func:`instrument`, guarded by a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.original_init: Any = None
        self.options: Options | None = None


_state = _Instrumentation()


def instrument(**options: Any) -> None:
    """Trace every ``RealtimeSession`` created from now on, without code changes.

    Takes the options of :func:`traced`. Calling it again replaces the options for
    sessions created afterwards; :func:`uninstrument` undoes it.

    Raises:
        TypeError: an option is unknown or of the wrong type.
        ValueError: an option has a bad value.

    Example:
        ```python
        from realtime_spans.adapters import instrument

        instrument(workflow_name="Support line")
        async with await RealtimeRunner(agent).run() as session:  # traced
            ...
        ```
    """
    checked = Options.from_kwargs(options)
    warn_once_if_competing(stacklevel=3)
    with _state.lock:
        _state.options = checked
        if _state.original_init is not None:
            return
        original = RealtimeSession.__init__

        @functools.wraps(original)
        def __init__(self: RealtimeSession, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            current = _state.options
            if current is None:
                return
            try:
                _attach(self, current)
            except Exception:
                logger.exception("realtime-spans could not trace a new realtime session")

        _state.original_init = original
        RealtimeSession.__init__ = __init__  # type: ignore[method-assign]


def uninstrument() -> None:
    """Undo :func:`instrument`: ``RealtimeSession`` is exactly as the SDK defines it again.

    Sessions already traced keep tracing until they close. Calling it when not
    instrumented does nothing.

    Example:
        ```python
        from realtime_spans.adapters import instrument, uninstrument

        instrument()
        ...
        uninstrument()
        ```
    """
    with _state.lock:
        if _state.original_init is None:
            return
        RealtimeSession.__init__ = _state.original_init  # type: ignore[method-assign]
        _state.original_init = None
        _state.options = None


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect.

    Example:
        >>> is_instrumented()
        False
    """
    return _state.original_init is not None
