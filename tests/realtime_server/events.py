"""Server events of the Realtime API (GA names and payloads), built as dicts and validated.

Every builder returns plain JSON-ready dicts, exactly what goes over the socket, after
checking them against the ``openai`` package's own pydantic models
(``openai.types.realtime``): the event union the SDK itself parses with, plus a strict
pass that rejects any key the models do not declare (the models accept unknown keys
silently, so a misspelt field would otherwise go unnoticed). A wrong shape raises
:class:`InvalidServerEvent` in the test that builds it.

``session.created``/``session.updated`` are checked against
``RealtimeSessionCreateResponse``, the session object the server really sends (with
``id``, ``object`` and ``expires_at``); the event union types that field as the request
model, which lacks them.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import pydantic
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from openai.types.realtime.realtime_session_create_response import RealtimeSessionCreateResponse

__all__ = [
    "InvalidServerEvent",
    "audio_committed",
    "audio_message",
    "caller_utterance",
    "conversation_item_added",
    "function_call",
    "input_transcription_completed",
    "item_truncated",
    "response",
    "response_created",
    "response_done",
    "server_error",
    "session_created",
    "speech_started",
    "speech_stopped",
    "text_message",
    "usage",
    "validate_server_event",
]

#: The bytes of one audio delta: 10 ms of silence, PCM16 at 24 kHz mono.
AUDIO_CHUNK = b"\x00\x00" * 240

_SERVER_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
    Annotated[RealtimeServerEvent, pydantic.Field(discriminator="type")]
)
_SESSION_EVENTS = frozenset({"session.created", "session.updated"})
_event_ids = itertools.count(1)


class InvalidServerEvent(ValueError):
    """A server event that the ``openai`` package's models reject (or only half-accept).

    Example:
        >>> validate_server_event({"type": "response.created", "event_id": "e"})
        Traceback (most recent call last):
        ...
        tests.realtime_server.events.InvalidServerEvent: response.created: ...
    """


def _undeclared(value: object, path: str) -> list[str]:
    """Paths of keys present in ``value`` that no model declares."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        found.extend(f"{path}.{key}" for key in value.model_extra or {})
        for name in type(value).model_fields:
            found.extend(_undeclared(getattr(value, name), f"{path}.{name}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_undeclared(item, f"{path}[{index}]"))
    return found


def validate_server_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Check one server event against the ``openai`` models; return it as a plain dict.

    Raises:
        InvalidServerEvent: the event does not parse, or carries a key no model declares.

    Example:
        >>> validate_server_event(speech_started("item_1"))["type"]
        'input_audio_buffer.speech_started'
    """
    kind = str(event.get("type", "?"))
    plain = dict(event)
    try:
        parsed = _SERVER_EVENT.validate_python(plain)
        extra = [path for path in _undeclared(parsed, kind) if not _is_session(kind, path)]
        if kind in _SESSION_EVENTS:
            session = RealtimeSessionCreateResponse.model_validate(plain.get("session"))
            extra.extend(_undeclared(session, f"{kind}.session"))
    except pydantic.ValidationError as error:
        raise InvalidServerEvent(f"{kind}: {error}") from error
    if extra:
        raise InvalidServerEvent(f"{kind}: undeclared keys {extra}")
    return plain


def _is_session(kind: str, path: str) -> bool:
    return kind in _SESSION_EVENTS and path.startswith(f"{kind}.session")


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return validate_server_event({"type": kind, "event_id": f"event_{next(_event_ids)}", **fields})


def session_created(
    session_id: str = "sess_test",
    *,
    model: str = "gpt-realtime",
    interrupt_response: bool = True,
) -> dict[str, Any]:
    """``session.created``: the first event on every connection, with the server's defaults.

    ``interrupt_response`` is the server-VAD setting that makes the server cancel a response
    itself when the user starts speaking (the client then sends no ``response.cancel``).

    Example:
        >>> session_created("sess_42")["session"]["id"]
        'sess_42'
    """
    audio_format = {"type": "audio/pcm", "rate": 24000}
    return _event(
        "session.created",
        session={
            "id": session_id,
            "object": "realtime.session",
            "type": "realtime",
            "model": model,
            "expires_at": 1_900_000_000,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "audio": {
                "input": {
                    "format": audio_format,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 200,
                        "create_response": True,
                        "interrupt_response": interrupt_response,
                    },
                },
                "output": {"format": audio_format, "voice": "alloy", "speed": 1.0},
            },
        },
    )


def usage(
    *,
    input_text: int = 0,
    input_audio: int = 0,
    input_image: int = 0,
    cached_text: int = 0,
    cached_audio: int = 0,
    cached_image: int = 0,
    output_text: int = 0,
    output_audio: int = 0,
) -> dict[str, Any]:
    """A ``response.done`` usage object; the totals are the sums of the details given.

    Example:
        >>> usage(input_text=3, input_audio=4, output_audio=5)["total_tokens"]
        12
    """
    input_tokens = input_text + input_audio + input_image
    output_tokens = output_text + output_audio
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "image_tokens": input_image,
            "cached_tokens": cached_text + cached_audio + cached_image,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached_audio,
                "image_tokens": cached_image,
            },
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def _response(response_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": status,
        "conversation_id": "conv_test",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "metadata": None,
        **fields,
    }


def response_created(response_id: str) -> dict[str, Any]:
    """``response.created``: the model starts a response (the SDK's ``turn_started``).

    Example:
        >>> response_created("resp_1")["response"]["status"]
        'in_progress'
    """
    return _event(
        "response.created",
        response=_response(response_id, "in_progress", output=[], usage=None),
    )


def response_done(
    response_id: str,
    *,
    output: Sequence[Mapping[str, Any]] = (),
    usage: Mapping[str, Any] | None = None,
    status: str = "completed",
    reason: str | None = None,
) -> dict[str, Any]:
    """``response.done``: the response ended (the SDK's ``usage`` then ``turn_ended``).

    ``reason`` is the ``status_details.reason`` of a cancelled or incomplete response,
    e.g. ``"turn_detected"`` when the user barged in.

    Example:
        >>> done = response_done("resp_1", usage=usage(input_text=1), status="cancelled",
        ...                      reason="turn_detected")
        >>> done["response"]["status_details"]["reason"]
        'turn_detected'
    """
    details = None
    if status != "completed" or reason is not None:
        details = {"type": status, "reason": reason}
    return _event(
        "response.done",
        response=_response(
            response_id,
            status,
            output=[dict(item) for item in output],
            usage=dict(usage) if usage is not None else None,
            status_details=details,
        ),
    )


def function_call(
    response_id: str,
    *,
    call_id: str,
    name: str,
    arguments: str = "{}",
    item_id: str | None = None,
    output_index: int = 0,
) -> list[dict[str, Any]]:
    """The events of one function call inside a response, ending with the completed item.

    The SDK turns the completed ``response.output_item.done`` into its ``function_call``
    model event.

    Example:
        >>> [e["type"] for e in function_call("resp_1", call_id="c1", name="f")]
        ... # doctest: +NORMALIZE_WHITESPACE
        ['response.output_item.added', 'response.function_call_arguments.delta',
         'response.function_call_arguments.done', 'response.output_item.done']
    """
    item_id = item_id or f"item_{call_id}"
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": "",
        "status": "in_progress",
    }
    position = {"response_id": response_id, "item_id": item_id, "output_index": output_index}
    return [
        _event(
            "response.output_item.added",
            response_id=response_id,
            output_index=output_index,
            item=item,
        ),
        _event(
            "response.function_call_arguments.delta",
            call_id=call_id,
            delta=arguments,
            **position,
        ),
        _event(
            "response.function_call_arguments.done",
            call_id=call_id,
            name=name,
            arguments=arguments,
            **position,
        ),
        _event(
            "response.output_item.done",
            response_id=response_id,
            output_index=output_index,
            item={**item, "arguments": arguments, "status": "completed"},
        ),
    ]


def audio_message(
    response_id: str,
    *,
    item_id: str,
    chunks: int = 3,
    transcript: str = "Hello there.",
    output_index: int = 0,
    finished: bool = True,
    transcript_deltas: int = 1,
    audio: bytes = AUDIO_CHUNK,
) -> list[dict[str, Any]]:
    """An assistant audio message inside a response: item, audio deltas, transcript.

    Each of the ``chunks`` audio deltas carries ``audio`` (10 ms of silence by default).
    With ``finished=False`` only the start and the audio deltas are returned: the
    response is still speaking (for interruptions and connection drops). The transcript
    arrives in ``transcript_deltas`` pieces (split at word boundaries) before the audio.

    Example:
        >>> events = audio_message("resp_1", item_id="msg_1", chunks=2, finished=False)
        >>> [e["type"] for e in events][-2:]
        ['response.output_audio.delta', 'response.output_audio.delta']
    """
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    position = {"response_id": response_id, "item_id": item_id, "output_index": output_index}
    delta = base64.b64encode(audio).decode("ascii")
    events = [
        _event(
            "response.output_item.added",
            response_id=response_id,
            output_index=output_index,
            item=item,
        ),
        _event(
            "response.content_part.added",
            content_index=0,
            part={"type": "audio", "transcript": ""},
            **position,
        ),
        *(
            _event(
                "response.output_audio_transcript.delta",
                content_index=0,
                delta=piece,
                **position,
            )
            for piece in _pieces(transcript, transcript_deltas)
        ),
        *(
            _event("response.output_audio.delta", content_index=0, delta=delta, **position)
            for _ in range(chunks)
        ),
    ]
    if not finished:
        return events
    part = {"type": "audio", "transcript": transcript}
    return [
        *events,
        _event("response.output_audio.done", content_index=0, **position),
        _event(
            "response.output_audio_transcript.done",
            content_index=0,
            transcript=transcript,
            **position,
        ),
        _event("response.content_part.done", content_index=0, part=part, **position),
        _event(
            "response.output_item.done",
            response_id=response_id,
            output_index=output_index,
            item={
                **item,
                "status": "completed",
                "content": [{"type": "output_audio", "transcript": transcript}],
            },
        ),
    ]


def _pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` consecutive pieces at spaces (fewer if it has fewer words);
    joined they give ``text`` back."""
    words = text.split(" ")
    count = max(1, min(count, len(words)))
    size = -(-len(words) // count)
    groups = [words[index : index + size] for index in range(0, len(words), size)]
    return [
        " ".join(group) + (" " if index < len(groups) - 1 else "")
        for index, group in enumerate(groups)
    ]


def text_message(
    response_id: str,
    *,
    item_id: str,
    text: str = "Hello there.",
    deltas: int = 2,
    output_index: int = 0,
) -> list[dict[str, Any]]:
    """An assistant text message inside a response (a text-only session): item, text
    deltas, done.

    Example:
        >>> events = text_message("resp_1", item_id="msg_1", text="Hi there you", deltas=2)
        >>> [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        ['Hi there ', 'you']
    """
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    position = {"response_id": response_id, "item_id": item_id, "output_index": output_index}
    part = {"type": "text", "text": text}
    return [
        _event(
            "response.output_item.added",
            response_id=response_id,
            output_index=output_index,
            item=item,
        ),
        _event(
            "response.content_part.added",
            content_index=0,
            part={"type": "text", "text": ""},
            **position,
        ),
        *(
            _event("response.output_text.delta", content_index=0, delta=piece, **position)
            for piece in _pieces(text, deltas)
        ),
        _event("response.output_text.done", content_index=0, text=text, **position),
        _event("response.content_part.done", content_index=0, part=part, **position),
        _event(
            "response.output_item.done",
            response_id=response_id,
            output_index=output_index,
            item={
                **item,
                "status": "completed",
                "content": [{"type": "output_text", "text": text}],
            },
        ),
    ]


def response(
    response_id: str,
    *events: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    usage: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A whole response: ``response.created``, the events given, ``response.done``.

    The ``response.done`` lists every item completed by a ``response.output_item.done``
    among ``events``, as the server does.

    Example:
        >>> [e["type"] for e in response("resp_1")]
        ['response.created', 'response.done']
    """
    body: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, Mapping):
            body.append(dict(event))
        else:
            body.extend(dict(each) for each in event)
    output = [e["item"] for e in body if e["type"] == "response.output_item.done"]
    return [
        response_created(response_id),
        *body,
        response_done(response_id, output=output, usage=usage),
    ]


def speech_started(item_id: str, *, audio_start_ms: int = 1000) -> dict[str, Any]:
    """``input_audio_buffer.speech_started``: server VAD heard the user start speaking.

    Example:
        >>> speech_started("item_user")["item_id"]
        'item_user'
    """
    return _event(
        "input_audio_buffer.speech_started", item_id=item_id, audio_start_ms=audio_start_ms
    )


def speech_stopped(item_id: str, *, audio_end_ms: int = 2000) -> dict[str, Any]:
    """``input_audio_buffer.speech_stopped``: server VAD heard the user stop speaking
    (sent after its silence window).

    Example:
        >>> speech_stopped("item_user", audio_end_ms=2500)["audio_end_ms"]
        2500
    """
    return _event("input_audio_buffer.speech_stopped", item_id=item_id, audio_end_ms=audio_end_ms)


def audio_committed(item_id: str, *, previous_item_id: str | None = None) -> dict[str, Any]:
    """``input_audio_buffer.committed``: the caller's audio became the user item ``item_id``.

    Example:
        >>> audio_committed("item_user")["type"]
        'input_audio_buffer.committed'
    """
    return _event(
        "input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id
    )


def caller_utterance(
    item_id: str,
    *,
    audio_start_ms: int = 1000,
    audio_end_ms: int = 2000,
    previous_item_id: str | None = None,
) -> list[dict[str, Any]]:
    """What server VAD sends for one utterance of the caller: speech started, speech
    stopped, the buffer committed, and the user item added (its transcript comes later,
    see :func:`input_transcription_completed`).

    Example:
        >>> [e["type"] for e in caller_utterance("item_u1")]  # doctest: +NORMALIZE_WHITESPACE
        ['input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped',
         'input_audio_buffer.committed', 'conversation.item.added']
    """
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    return [
        speech_started(item_id, audio_start_ms=audio_start_ms),
        speech_stopped(item_id, audio_end_ms=audio_end_ms),
        audio_committed(item_id, previous_item_id=previous_item_id),
        conversation_item_added(item, item_id=item_id, previous_item_id=previous_item_id),
    ]


def input_transcription_completed(
    item_id: str, transcript: str, *, content_index: int = 0
) -> dict[str, Any]:
    """``conversation.item.input_audio_transcription.completed``: the transcription model
    finished the caller's item; it may come before or after the response that answers it.

    Example:
        >>> input_transcription_completed("item_u1", "Hello?")["transcript"]
        'Hello?'
    """
    return _event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=content_index,
        transcript=transcript,
        usage={"type": "duration", "seconds": 1.5},
    )


def item_truncated(item_id: str, *, audio_end_ms: int, content_index: int = 0) -> dict[str, Any]:
    """``conversation.item.truncated``: the server's answer to ``conversation.item.truncate``.

    Example:
        >>> item_truncated("msg_1", audio_end_ms=20)["audio_end_ms"]
        20
    """
    return _event(
        "conversation.item.truncated",
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
    )


def conversation_item_added(
    item: Mapping[str, Any], *, item_id: str, previous_item_id: str | None = None
) -> dict[str, Any]:
    """``conversation.item.added``: the server took an item the client created.

    Example:
        >>> item = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
        >>> conversation_item_added(item, item_id="item_9")["item"]["status"]
        'completed'
    """
    stored = {**item, "id": item_id, "object": "realtime.item", "status": "completed"}
    fields: dict[str, Any] = {"item": stored}
    if previous_item_id is not None:
        fields["previous_item_id"] = previous_item_id
    return _event("conversation.item.added", **fields)


def server_error(
    message: str, *, error_type: str = "server_error", code: str | None = None
) -> dict[str, Any]:
    """``error``: the server reports a problem; the session stays open (most are recoverable).

    Example:
        >>> server_error("The server had an error", code="internal")["error"]["code"]
        'internal'
    """
    return _event("error", error={"message": message, "type": error_type, "code": code})
