"""The options of ``traced`` and ``instrument``, checked at call time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

DEFAULT_WORKFLOW_NAME = "Realtime session"


@attrs.frozen
class Options:
    """Validated tracing options.

    Attributes:
        workflow_name: name of the trace opened when no trace is active at entry (default:
            the workflow name of the session's model tracing settings, else
            ``"Realtime session"``).
        include_sensitive_data: whether tool inputs and outputs (and error details) go into
            spans (default: the SDK's ``OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA``).
        correlate_server_trace: give this trace and the Realtime API's server-side trace the
            same ``group_id``, and put the server's session id into the trace metadata.
        redact: a ``str -> str`` callable applied to every text of the conversation
            (transcripts, messages, tool inputs and outputs, error texts) before it reaches
            a span; a text it fails on (it raises, or returns no ``str``) is withheld.
        include_audio: record the conversation's audio (the caller's on transcription spans,
            the model's on speech spans); only when sensitive data is allowed.
        max_audio_seconds: the most audio one span holds; past it the audio is cut and the
            span says ``truncated``.

    Example:
        >>> Options.from_kwargs({"workflow_name": "Support line"}).workflow_name
        'Support line'
    """

    workflow_name: str | None = None
    include_sensitive_data: bool | None = None
    correlate_server_trace: bool = False
    redact: Callable[[str], str] | None = None
    include_audio: bool = False
    max_audio_seconds: float = 300.0

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        """Check keyword options: an unknown name or a wrong type raises at once.

        Example:
            >>> Options.from_kwargs({"workflow_nam": "x"})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            TypeError: unknown option 'workflow_nam'; valid options: ...
        """
        valid = sorted(field.name for field in attrs.fields(cls))
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            plural = "s" if len(unknown) > 1 else ""
            raise TypeError(f"unknown option{plural} {names}; valid options: {', '.join(valid)}")
        workflow_name = kwargs.get("workflow_name")
        if workflow_name is not None:
            if not isinstance(workflow_name, str):
                raise TypeError(f"workflow_name must be a str, got {type(workflow_name).__name__}")
            if not workflow_name.strip():
                raise ValueError("workflow_name must not be empty")
        sensitive = kwargs.get("include_sensitive_data")
        if sensitive is not None and not isinstance(sensitive, bool):
            raise TypeError(
                f"include_sensitive_data must be a bool or None, got {type(sensitive).__name__}"
            )
        correlate = kwargs.get("correlate_server_trace", False)
        if not isinstance(correlate, bool):
            raise TypeError(
                f"correlate_server_trace must be a bool, got {type(correlate).__name__}"
            )
        redact = kwargs.get("redact")
        if redact is not None and not callable(redact):
            raise TypeError(
                f"redact must be a callable taking and returning a str, got {type(redact).__name__}"
            )
        include_audio = kwargs.get("include_audio", False)
        if not isinstance(include_audio, bool):
            raise TypeError(f"include_audio must be a bool, got {type(include_audio).__name__}")
        max_seconds = kwargs.get("max_audio_seconds", 300.0)
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float):
            raise TypeError(f"max_audio_seconds must be a number, got {type(max_seconds).__name__}")
        if not max_seconds > 0 or max_seconds == float("inf"):
            raise ValueError(f"max_audio_seconds must be positive and finite, got {max_seconds!r}")
        return cls(
            workflow_name=workflow_name,
            include_audio=include_audio,
            max_audio_seconds=float(max_seconds),
            include_sensitive_data=sensitive,
            correlate_server_trace=correlate,
            redact=redact,
        )
