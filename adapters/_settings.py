"""What a generation span says about the model: the settings sent for an agent, read once.

The session sends each agent's settings to the model (at entry, on handoff and on
``update_agent()``); the tap hands them here. The OpenAI WebSocket transport fills in its
own defaults for what the settings leave out (model, voice, formats, transcription, turn
detection): for that transport they are applied here too, so the span says what the model
was actually sent. Instructions, prompts and tools never go into ``model_config``: the agent
span has the tools, and the instructions are the application's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from realtime_spans.core import ModelConfigured

from ._audio import format_name

#: The settings that shape a response, as ``model_config`` shows them.
CONFIG_KEYS: Final = (
    "modalities",
    "output_modalities",
    "voice",
    "speed",
    "temperature",
    "max_output_tokens",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "turn_detection",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "audio",
)

#: Bytes per millisecond of audio, by format name: PCM16 mono at 24 kHz, G.711 at 8 kHz.
_BYTES_PER_MS: Final = {
    "pcm16": 48,
    "audio/pcm": 48,
    "g711_ulaw": 8,
    "g711_alaw": 8,
    "audio/pcmu": 8,
    "audio/pcma": 8,
}
PCM16_BYTES_PER_MS: Final = 48


def _plain(value: Any) -> Any:
    """A JSON-friendly copy (mappings, sequences, scalars; anything else as its text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump(exclude_none=True))
    return str(value)


def _format_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        kind = value.get("type")
        return kind if isinstance(kind, str) else None
    kind = getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


def _audio_side(settings: Mapping[str, Any], side: str) -> Mapping[str, Any]:
    audio = settings.get("audio")
    part = audio.get(side) if isinstance(audio, Mapping) else None
    return part if isinstance(part, Mapping) else {}


def transport_defaults(model: object) -> tuple[Mapping[str, Any], str | None]:
    """The settings and model name the transport applies where the settings say nothing.

    Example:
        >>> transport_defaults(object())
        ({}, None)
    """
    try:
        from agents.realtime import openai_realtime
    except ImportError:  # pragma: no cover - every supported release has it
        return {}, None
    if not isinstance(model, openai_realtime.OpenAIRealtimeWebSocketModel):
        return {}, None
    defaults = getattr(openai_realtime, "DEFAULT_MODEL_SETTINGS", {})
    name = getattr(openai_realtime, "DEFAULT_REALTIME_MODEL", None)
    return defaults, name if isinstance(name, str) else None


def model_configured(settings: Mapping[str, Any], model: object) -> tuple[ModelConfigured, int]:
    """The core event for the settings sent for an agent, and its output audio's bytes per
    millisecond.

    Example:
        >>> event, bytes_per_ms = model_configured(
        ...     {"model_name": "gpt-realtime", "voice": "marin", "instructions": "Be brief."},
        ...     model=None,
        ... )
        >>> event.model, dict(event.config), bytes_per_ms
        ('gpt-realtime', {'voice': 'marin'}, 48)
    """
    defaults, default_model = transport_defaults(model)
    merged: dict[str, Any] = {**defaults, **settings}
    name = merged.get("model_name") or default_model
    config = {key: _plain(merged[key]) for key in CONFIG_KEYS if merged.get(key) is not None}
    transcription = merged.get("input_audio_transcription")
    if not isinstance(transcription, Mapping):
        transcription = _audio_side(merged, "input").get("transcription")
    transcription_model = transcription.get("model") if isinstance(transcription, Mapping) else None
    input_format, output_format = _formats(merged)
    bytes_per_ms = _BYTES_PER_MS.get(output_format or "", PCM16_BYTES_PER_MS)
    event = ModelConfigured(
        name if isinstance(name, str) else None,
        config,
        transcription_model=transcription_model if isinstance(transcription_model, str) else None,
        input_format=format_name(input_format) if input_format is not None else None,
    )
    return event, bytes_per_ms


def audio_formats(settings: Mapping[str, Any], model: object) -> tuple[str | None, str | None]:
    """The input and output audio format names sent for an agent (``None``: not said).

    Example:
        >>> audio_formats({"input_audio_format": "g711_ulaw"}, model=None)
        ('g711_ulaw', None)
    """
    defaults, _ = transport_defaults(model)
    return _formats({**defaults, **settings})


def _formats(merged: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Input and output format names, from either API generation's settings."""

    def named(side: str) -> str | None:
        return _format_name(_audio_side(merged, side).get("format")) or _format_name(
            merged.get(f"{side}_audio_format")
        )

    return named("input"), named("output")
