"""What OpenInference leaves out, put where Phoenix shows it.

OpenInference's tracing processor maps a ``generation`` span's messages, model and usage
to its LLM attributes, but exports nothing of span data it has no mapping for: a turn's
latencies, the session's summary and a transcription span's transcript would never reach
Phoenix. When a processor has made an OpenInference span for one of those spans (it does
so when the span starts, inside the span's own context: see :mod:`._sink`), the sink calls
:func:`annotate` just before the span ends, and the data goes onto that OpenTelemetry span
as OpenInference's own ``metadata`` (JSON, which Phoenix shows as the span's metadata) and,
for a transcript, ``output.value``. Recorded audio (``include_audio``) goes where
OpenInference's audio conventions put it: the caller's utterance as ``input.audio.url``
and the agent's speech as ``output.audio.url``, each a WAV ``data:`` URI, with
``*.audio.mime_type`` and ``*.audio.transcript``. That URI is made when the span ends, on
the event loop (OpenTelemetry attributes cannot wait for an export): about 1 ms per 10 s
of PCM16 on this project's CI machine.

Nothing happens unless OpenTelemetry is already imported, the span's context holds a span
that a processor started for it (not the parent's), and that span is an OpenInference one.
"""

from __future__ import annotations

import contextvars
import json
import sys
from typing import Any, Final

from agents.tracing import SpeechSpanData, TranscriptionSpanData

from ._audio import Clip, wav_data_uri

_KIND: Final = "openinference.span.kind"


def _current_otel_span(context: contextvars.Context) -> Any:
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    return context.run(trace.get_current_span)


def annotate(
    data: Any, context: contextvars.Context, parent_context: contextvars.Context | None
) -> None:
    """Copy what OpenInference drops of ``data`` onto the OpenInference span current in the
    span's own ``context``, if a processor made one for this span.

    Example:
        >>> from agents.tracing import TranscriptionSpanData
        >>> annotate(TranscriptionSpanData(output="hi"), contextvars.copy_context(), None)
    """
    otel_span = _current_otel_span(context)
    if otel_span is None or not otel_span.is_recording():
        return
    if parent_context is not None and _current_otel_span(parent_context) is otel_span:
        return  # the parent's span: no processor made one for this span
    attributes = getattr(otel_span, "attributes", None)
    if not attributes or _KIND not in attributes:
        return  # not an OpenInference span: its processor has its own mapping
    clip = getattr(data, "clip", None)
    if isinstance(data, TranscriptionSpanData):
        if isinstance(data.output, str):
            otel_span.set_attribute("output.value", data.output)
        if isinstance(data.model, str):
            otel_span.set_attribute("llm.model_name", data.model)
        _set_audio(otel_span, "input", clip, data.output)
        details: dict[str, Any] = {
            "model": data.model,
            "input_format": data.input_format,
            "truncated": getattr(data, "truncated", None),
        }
    elif isinstance(data, SpeechSpanData):
        if isinstance(data.model, str):
            otel_span.set_attribute("llm.model_name", data.model)
        _set_audio(otel_span, "output", clip, data.input)
        details = {
            "model": data.model,
            "output_format": data.output_format,
            "first_content_at": data.first_content_at,
            "truncated": getattr(data, "truncated", None),
            "audio_heard_ms": getattr(data, "audio_heard_ms", None),
        }
    else:
        details = data.export().get("data", {})
    kept = {key: value for key, value in details.items() if value is not None}
    if kept:
        otel_span.set_attribute("metadata", json.dumps(kept, default=str))


def _set_audio(otel_span: Any, side: str, clip: Clip | None, transcript: str | None) -> None:
    if not isinstance(clip, Clip):
        return
    otel_span.set_attribute(f"{side}.audio.url", wav_data_uri(clip.audio, clip.format))
    otel_span.set_attribute(f"{side}.audio.mime_type", "audio/wav")
    if isinstance(transcript, str):
        otel_span.set_attribute(f"{side}.audio.transcript", transcript)
